/*
 * src/campaigns.c
 *
 * Challenges: goals over a customer's receipts (receipts, spend, quantity,
 * distinct values, streaks, steps of a quest), moved by commit in its own
 * transaction and taken back by cancel and refund.  docs/campaigns.md is
 * the contract; this file computes exactly what it says.
 *
 * What a receipt gives is kept as items, one per challenge and matching line
 * (loyalty.challenge_receipt, one row a receipt): the value at commit and
 * the value now, after returns.  A customer's progress is a function of
 * their items: additive goals add a receipt's items at commit, the others
 * (distinct, streak, steps) and every return count them again from the
 * customer's rows.  The progress row (challenge, customer) is locked FOR
 * UPDATE, after the customer's wallets, so that two receipts of one
 * customer complete a challenge once.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/memutils.h"

#include "campaigns.h"
#include "catalog.h"
#include "direct.h"
#include "event.h"
#include "jsonbuild.h"
#include "plan.h"
#include "program.h"
#include "wallet.h"

/* Challenges of a programme: the catalogue's (active) or those named */
#define CHALLENGE_COLUMNS \
	"SELECT c.id, c.code, c.starts_at, c.ends_at, c.duration, c.enrolment = 'opt_in', c.audience," \
	"       c.tiers, c.segments, c.goal, c.condition, c.distinct_of, c.streak_unit = 'week'," \
	"       (CASE c.goal WHEN 'spend' THEN c.target * pg_catalog.power(10::numeric, g.money_exponent)" \
	"                    WHEN 'quantity' THEN c.target * 1000 ELSE c.target END)::int8," \
	"       c.reward_currency, c.reward_points, c.reward_valid_for, c.reward_kind," \
	"       c.reward_restriction::text, c.reward_promotion, c.reward_achievement, c.reward_level," \
	"       c.keep_reward," \
	"       ARRAY(SELECT s.condition FROM loyalty.challenge_step s" \
	"              WHERE s.challenge_id = c.id ORDER BY s.step)" \
	"  FROM loyalty.challenge c JOIN loyalty.program g ON g.id = c.program_id"

static KeptQuery active_query = {
	CHALLENGE_COLUMNS " WHERE c.program_id = $1 AND c.active ORDER BY c.id",
	1, {INT8OID}, NULL
};
static KeptQuery named_query = {
	CHALLENGE_COLUMNS " WHERE c.id = ANY ($1) ORDER BY c.id",
	1, {INT8ARRAYOID}, NULL
};
static KeptQuery progress_query = {
	"SELECT p.challenge_id, p.enrolled_at, p.window_end, p.progress, p.state = 'completed',"
	"       p.completions, p.reward_lot_id, p.reward_coupon"
	"  FROM loyalty.challenge_progress p"
	" WHERE p.customer_id = $1 AND p.challenge_id = ANY ($2)"
	" ORDER BY p.challenge_id FOR UPDATE",
	2, {INT8OID, INT8ARRAYOID}, NULL
};
static KeptQuery enrol_query = {
	"INSERT INTO loyalty.challenge_progress (challenge_id, customer_id, program_id, enrolled_at, window_end)"
	" SELECT u.id, $2, $3, u.enrolled_at, u.window_end"
	"   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($4::timestamptz[]),"
	"                   pg_catalog.unnest($5::timestamptz[])) u (id, enrolled_at, window_end)"
	" ON CONFLICT (challenge_id, customer_id) DO NOTHING",
	5, {INT8ARRAYOID, INT8OID, INT8OID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID}, NULL
};
static KeptQuery item_query = {
	"INSERT INTO loyalty.challenge_receipt (program_id, receipt_id, customer_id, at, day, challenge_id,"
	"                                       line_no, total, value, key)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
	9, {INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID, DATEOID, INT8ARRAYOID, INT4ARRAYOID,
		INT8ARRAYOID, TEXTARRAYOID}, NULL
};
static KeptQuery items_query = {
	"SELECT r.receipt_id, r.at, r.day, r.challenge_id, r.value, r.key"
	"  FROM loyalty.challenge_receipt r"
	" WHERE r.customer_id = $1 AND r.challenge_id OPERATOR(pg_catalog.&&) $2",
	2, {INT8OID, INT8ARRAYOID}, NULL
};
static KeptQuery update_query = {
	"UPDATE loyalty.challenge_progress p"
	"   SET progress = u.progress, state = CASE WHEN u.done THEN 'completed' ELSE 'active' END,"
	"       completions = u.completions,"
	"       completed_at = CASE WHEN NOT u.done THEN NULL"
	"                           WHEN p.state = 'completed' THEN p.completed_at ELSE pg_catalog.now() END,"
	"       completed_receipt = CASE WHEN NOT u.done THEN NULL"
	"                                WHEN p.state = 'completed' THEN p.completed_receipt ELSE $8 END,"
	"       reward_lot_id = u.lot, reward_coupon = u.coupon, updated_at = pg_catalog.now()"
	"  FROM ROWS FROM (pg_catalog.unnest($2::int8[]), pg_catalog.unnest($3::int8[]),"
	"                  pg_catalog.unnest($4::bool[]), pg_catalog.unnest($5::int4[]),"
	"                  pg_catalog.unnest($6::int8[]), pg_catalog.unnest($7::text[]))"
	"       u (id, progress, done, completions, lot, coupon)"
	" WHERE p.customer_id = $1 AND p.challenge_id = u.id",
	8, {INT8OID, INT8ARRAYOID, INT8ARRAYOID, BOOLARRAYOID, INT4ARRAYOID, INT8ARRAYOID,
		TEXTARRAYOID, TEXTOID}, NULL
};
static KeptQuery receipt_items_query = {
	"SELECT r.customer_id, r.challenge_id, r.line_no, r.total, r.value"
	"  FROM loyalty.challenge_receipt r"
	" WHERE r.program_id = $1 AND r.receipt_id = $2 FOR UPDATE",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery receipt_values_query = {
	"UPDATE loyalty.challenge_receipt SET value = $3 WHERE program_id = $1 AND receipt_id = $2",
	3, {INT8OID, TEXTOID, INT8ARRAYOID}, NULL
};
static KeptQuery coupon_query = {
	"INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind, customer_id, issue_reason)"
	" SELECT $1, $2, p.id, 'personal', $3, $4 FROM loyalty.promotion p"
	"  WHERE p.program_id = $1 AND p.code = $5",
	5, {INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID}, NULL
};
static KeptQuery coupon_back_query = {
	"UPDATE loyalty.coupon SET state = 'cancelled'"
	" WHERE program_id = $1 AND pg_catalog.lower(code) = pg_catalog.lower($2)"
	"   AND state = 'issued' AND uses = 0",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery level_query = {
	"SELECT COALESCE(pg_catalog.max(a.level), 0) FROM loyalty.customer_achievement a"
	" WHERE a.customer_id = $1 AND a.achievement = $2",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery unlock_query = {
	"INSERT INTO loyalty.customer_achievement (program_id, customer_id, achievement, challenge_id,"
	"                                          level, receipt_id)"
	" VALUES ($1, $2, $3, $4, $5, $6)"
	" ON CONFLICT (customer_id, achievement, challenge_id)"
	" DO UPDATE SET level = EXCLUDED.level, unlocked_at = pg_catalog.now(), receipt_id = EXCLUDED.receipt_id",
	6, {INT8OID, INT8OID, TEXTOID, INT8OID, INT4OID, TEXTOID}, NULL
};
static KeptQuery lock_query = {
	"DELETE FROM loyalty.customer_achievement WHERE customer_id = $1 AND challenge_id = $2",
	2, {INT8OID, INT8OID}, NULL
};

/* One item of a receipt: what a matching line gives a challenge */
typedef struct ChItem
{
	int			challenge;		/* index in the challenges at hand */
	int32		line;
	int64		value;
	const char *key;			/* "" when none */
} ChItem;

/* A receipt's items, as read back for counting */
typedef struct RecItems
{
	const char *receipt_id;
	TimestampTz at;
	DateADT		day;
	int			n;
	int64	   *challenge;
	int64	   *value;
	char	  **key;
} RecItems;

/* A customer's enrolment, as locked */
typedef struct Enrolment
{
	bool		exists;
	bool		counts;			/* this receipt counts for it */
	TimestampTz enrolled_at;
	bool		has_window_end;
	TimestampTz window_end;
	int64		progress;
	bool		completed;
	int32		completions;
	int64		lot;
	char	   *coupon;
	int64		delta;			/* the receipt's additive items */
} Enrolment;

static ChallengeGoal
GoalOf(const char *s)
{
	static const char *const names[] = {"receipts", "spend", "quantity", "distinct", "streak", "steps"};

	for (int i = 0; i < (int) lengthof(names); i++)
		if (strcmp(names[i], s) == 0)
			return (ChallengeGoal) i;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("challenge goal \"%s\" is not known to this library", s)));
	return CG_RECEIPTS;
}

static char **
TextArrayItems(Datum d, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;
	int			k = 0;

	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		if (!nulls[i])
			out[k++] = TextDatumGetCString(elems[i]);
	*n = k;
	return out;
}

/*
 * The challenges of the last query into out[] (in the current context);
 * with a dictionary, their conditions compiled over it.
 */
static int
ReadChallenges(Challenge *out, CondDict *dict)
{
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Challenge  *c = &out[i];
		bool		isnull;
		Datum		d;
		char	   *s;

		memset(c, 0, sizeof(*c));
		c->id = DatumGetInt64(SPI_getbinval(t, desc, 1, &isnull));
		c->code = SPI_getvalue(t, desc, 2);
		c->starts_at = DatumGetTimestampTz(SPI_getbinval(t, desc, 3, &isnull));
		d = SPI_getbinval(t, desc, 4, &isnull);
		c->has_end = !isnull;
		c->ends_at = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(t, desc, 5, &isnull);
		c->has_duration = !isnull;
		if (!isnull)
			c->duration = *DatumGetIntervalP(d);
		c->opt_in = DatumGetBool(SPI_getbinval(t, desc, 6, &isnull));
		s = SPI_getvalue(t, desc, 7);
		c->audience = strcmp(s, "tiers") == 0 ? AUD_TIERS : strcmp(s, "segments") == 0 ? AUD_SEGMENTS : AUD_ALL;
		d = SPI_getbinval(t, desc, 8, &isnull);
		if (!isnull)
			c->tiers = TextArrayItems(d, &c->ntiers);
		d = SPI_getbinval(t, desc, 9, &isnull);
		if (!isnull)
			c->segments = TextArrayItems(d, &c->nsegments);
		c->goal = GoalOf(SPI_getvalue(t, desc, 10));
		c->distinct_attr = -1;
		if (dict)
		{
			d = SPI_getbinval(t, desc, 11, &isnull);
			c->cond = isnull ? NULL : loyalty_cond_load((Condition *) PG_DETOAST_DATUM_COPY(d), dict);
			s = SPI_getvalue(t, desc, 12);
			if (s)
			{
				CondScope	scope = COND_LINE;

				if (strncmp(s, "receipt.", 8) == 0)
					scope = COND_RECEIPT, s += 8;
				else if (strncmp(s, "customer.", 9) == 0)
					scope = COND_CUSTOMER, s += 9;
				c->distinct_attr = loyalty_cond_dict_intern(dict, scope, s, strlen(s));
			}
		}
		c->weeks = DatumGetBool(SPI_getbinval(t, desc, 13, &isnull)) && !isnull;
		c->target = DatumGetInt64(SPI_getbinval(t, desc, 14, &isnull));
		c->reward_currency = SPI_getvalue(t, desc, 15);
		d = SPI_getbinval(t, desc, 16, &isnull);
		c->reward_points = isnull ? 0 : DatumGetInt64(d);
		if (c->reward_points == 0)
			c->reward_currency = NULL;
		d = SPI_getbinval(t, desc, 17, &isnull);
		c->has_valid_for = !isnull;
		if (!isnull)
			c->reward_valid_for = *DatumGetIntervalP(d);
		c->reward_kind = SPI_getvalue(t, desc, 18);
		c->reward_restriction = SPI_getvalue(t, desc, 19);
		c->reward_promotion = SPI_getvalue(t, desc, 20);
		c->reward_achievement = SPI_getvalue(t, desc, 21);
		c->reward_level = DatumGetInt32(SPI_getbinval(t, desc, 22, &isnull));
		c->keep_reward = DatumGetBool(SPI_getbinval(t, desc, 23, &isnull));
		d = SPI_getbinval(t, desc, 24, &isnull);
		if (!isnull)
		{
			ArrayType  *a = DatumGetArrayTypePCopy(d);
			Datum	   *elems;
			bool	   *nulls;

			deconstruct_array(a, ARR_ELEMTYPE(a), -1, false, TYPALIGN_INT, &elems, &nulls, &c->nsteps);
			c->steps = palloc0(sizeof(CondProgram *) * Max(c->nsteps, 1));
			for (int k = 0; dict && k < c->nsteps; k++)
				c->steps[k] = loyalty_cond_load((Condition *) PG_DETOAST_DATUM_COPY(elems[k]), dict);
		}
	}
	return (int) SPI_processed;
}

/*
 * The programme's active challenges into the catalogue being compiled (in
 * its context, connected to SPI).  A schema older than the library has none.
 */
void
CampaignLoad(Catalog *cat)
{
	Datum		args[1] = {Int64GetDatum(cat->program_id)};
	MemoryContext here = CurrentMemoryContext;

	cat->nchallenges = 0;
	cat->challenges = NULL;
	if (!TableHasColumn("challenge", "id"))
		return;
	RunKept(&active_query, args, NULL, 0);
	MemoryContextSwitchTo(here);
	cat->challenges = palloc0(sizeof(Challenge) * Max(SPI_processed, 1));
	cat->nchallenges = ReadChallenges(cat->challenges, cat->dict);
}

static bool
Listed(char **items, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(items[i], s) == 0)
			return true;
	return false;
}

/* Whether the customer, as the plan found them, may enrol */
static bool
InAudience(const Challenge *c, const ReceiptPlan *plan)
{
	switch (c->audience)
	{
		case AUD_TIERS:
			return Listed(c->tiers, c->ntiers, plan->tier);
		case AUD_SEGMENTS:
			for (int i = 0; i < plan->segments.n; i++)
				if (Listed(c->segments, c->nsegments, plan->segments.items[i]))
					return true;
			return false;
		default:
			return true;
	}
}

static void
AddItem(ChItem **items, int *n, int *cap, int challenge, int32 line, int64 value, const char *key)
{
	if (*n == *cap)
	{
		*cap = Max(16, *cap * 2);
		*items = *items ? repalloc(*items, sizeof(ChItem) * *cap) : palloc(sizeof(ChItem) * *cap);
	}
	(*items)[*n].challenge = challenge;
	(*items)[*n].line = line;
	(*items)[*n].value = value;
	(*items)[*n].key = key;
	(*n)++;
}

/* What the attribute holds: one key per scalar (each element of an array) */
static void
DistinctItems(ChItem **items, int *n, int *cap, int challenge, int32 line, const CondValue *v)
{
	if (v->kind == COND_SCALAR)
		AddItem(items, n, cap, challenge, line, 1, pnstrdup(v->str, v->len));
	else if (v->kind == COND_ARRAY)
		for (int e = 0; e < v->nelems; e++)
			if (v->elems[e].kind == COND_SCALAR)
				AddItem(items, n, cap, challenge, line, 1, pnstrdup(v->elems[e].str, v->elems[e].len));
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
rec_cmp(const void *a, const void *b)
{
	const RecItems *x = a;
	const RecItems *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return strcmp(x->receipt_id, y->receipt_id);
}

/* The period of a streak a date falls in: days since 2000-01-01, or ISO weeks */
static int64
Period(const Challenge *c, DateADT day)
{
	/* 2000-01-03 was a Monday: weeks start on it */
	int64		d = (int64) day - 2;

	if (!c->weeks)
		return (int64) day;
	return d >= 0 ? d / 7 : -((-d + 6) / 7);
}

/*
 * A customer's progress in challenge c from all their receipts' items
 * (docs/campaigns.md, "How progress counts").
 */
static int64
Count(const Challenge *c, RecItems *recs, int nrecs)
{
	int64		total = 0;
	int			nkeys = 0;
	char	  **keys = NULL;
	int64	   *periods = NULL;
	int			nperiods = 0;

	if (c->goal == CG_STEPS)
		qsort(recs, nrecs, sizeof(RecItems), rec_cmp);
	for (int r = 0; r < nrecs; r++)
	{
		RecItems   *ri = &recs[r];
		bool		any = false;

		for (int i = 0; i < ri->n; i++)
		{
			if (ri->challenge[i] != c->id || ri->value[i] <= 0)
				continue;
			any = true;
			switch (c->goal)
			{
				case CG_SPEND:
				case CG_QUANTITY:
					total += ri->value[i];
					break;
				case CG_DISTINCT:
					keys = keys ? repalloc(keys, sizeof(char *) * (nkeys + 1)) : palloc(sizeof(char *));
					keys[nkeys++] = ri->key[i];
					break;
				default:
					break;
			}
		}
		if (!any)
			continue;
		switch (c->goal)
		{
			case CG_RECEIPTS:
				total++;
				break;
			case CG_STREAK:
				periods = periods ? repalloc(periods, sizeof(int64) * (nperiods + 1)) : palloc(sizeof(int64));
				periods[nperiods++] = Period(c, ri->day);
				break;
			case CG_STEPS:
				/* the steps it does in order, from where the customer is */
				for (bool more = true; more && total < c->nsteps;)
				{
					char		want[12];

					more = false;
					snprintf(want, sizeof(want), "%d", (int) total + 1);
					for (int i = 0; i < ri->n; i++)
						if (ri->challenge[i] == c->id && ri->value[i] > 0 && strcmp(ri->key[i], want) == 0)
						{
							total++;
							more = true;
							break;
						}
				}
				break;
			default:
				break;
		}
	}
	if (c->goal == CG_DISTINCT && nkeys > 0)
	{
		qsort(keys, nkeys, sizeof(char *), str_cmp);
		total = 1;
		for (int i = 1; i < nkeys; i++)
			total += strcmp(keys[i], keys[i - 1]) != 0;
	}
	if (c->goal == CG_STREAK && nperiods > 0)
	{
		int64		run = 1;

		qsort(periods, nperiods, sizeof(int64), Int64Cmp);
		total = 1;
		for (int i = 1; i < nperiods; i++)
		{
			if (periods[i] == periods[i - 1])
				continue;
			run = periods[i] == periods[i - 1] + 1 ? run + 1 : 1;
			total = Max(total, run);
		}
	}
	return total;
}

/* An int8[] (or int4[]) column of an SPI row as int64 values */
static int64 *
Int8Column(HeapTuple t, TupleDesc desc, int column, Oid type, int *n)
{
	Datum	   *elems;
	int64	   *out;

	*n = SpiArrayElements(t, desc, column, type, &elems);
	out = palloc(sizeof(int64) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = type == INT4OID ? DatumGetInt32(elems[i]) : DatumGetInt64(elems[i]);
	return out;
}

/* Every item of the customer's receipts for the challenges ids[] */
static RecItems *
ReadItems(int64 customer, const int64 *ids, int nids, int *nrecs)
{
	Datum		args[2] = {Int64GetDatum(customer), SpiInt8Array(ids, nids)};
	RecItems   *recs;

	RunKept(&items_query, args, NULL, 0);
	recs = palloc0(sizeof(RecItems) * Max(SPI_processed, 1));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum	   *keys;
		int			n;

		recs[r].receipt_id = SPI_getvalue(t, desc, 1);
		recs[r].at = DatumGetTimestampTz(SPI_getbinval(t, desc, 2, &isnull));
		recs[r].day = DatumGetDateADT(SPI_getbinval(t, desc, 3, &isnull));
		recs[r].challenge = Int8Column(t, desc, 4, INT8OID, &recs[r].n);
		recs[r].value = Int8Column(t, desc, 5, INT8OID, &n);
		n = SpiArrayElements(t, desc, 6, TEXTOID, &keys);
		if (n != recs[r].n)
			elog(ERROR, "challenge_receipt row of receipt \"%s\" has arrays of different lengths",
				 recs[r].receipt_id);
		recs[r].key = palloc(sizeof(char *) * Max(n, 1));
		for (int i = 0; i < n; i++)
			recs[r].key[i] = TextDatumGetCString(keys[i]);
	}
	*nrecs = (int) SPI_processed;
	return recs;
}

/* Lock and read the customer's enrolments in ids[] into e[] (same order) */
static void
ReadEnrolments(int64 customer, const int64 *ids, int n, Enrolment *e)
{
	Datum		args[2] = {Int64GetDatum(customer), SpiInt8Array(ids, n)};

	RunKept(&progress_query, args, NULL, 0);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(t, desc, 1, &isnull));
		Datum		d;

		for (int i = 0; i < n; i++)
		{
			if (ids[i] != id)
				continue;
			e[i].exists = true;
			e[i].enrolled_at = DatumGetTimestampTz(SPI_getbinval(t, desc, 2, &isnull));
			d = SPI_getbinval(t, desc, 3, &isnull);
			e[i].has_window_end = !isnull;
			e[i].window_end = isnull ? 0 : DatumGetTimestampTz(d);
			e[i].progress = DatumGetInt64(SPI_getbinval(t, desc, 4, &isnull));
			e[i].completed = DatumGetBool(SPI_getbinval(t, desc, 5, &isnull));
			e[i].completions = DatumGetInt32(SPI_getbinval(t, desc, 6, &isnull));
			d = SPI_getbinval(t, desc, 7, &isnull);
			e[i].lot = isnull ? 0 : DatumGetInt64(d);
			e[i].coupon = SPI_getvalue(t, desc, 8);
		}
	}
}

static void
Event(int64 program_id, const char *type, int64 customer, JsonBuild *jb)
{
	Jsonb	   *payload = JbFinish(jb);

	DirectBegin();
	EventAppend(program_id, type, customer, payload, GetCurrentTransactionStartTimestamp());
	DirectEnd();
}

/* The reward of completion number e->completions */
static void
Grant(int64 program_id, const Challenge *c, int64 customer, const char *rid, Enrolment *e)
{
	char	   *key = psprintf("loyalty:challenge:" INT64_FORMAT ":" INT64_FORMAT ":%d",
							   c->id, customer, e->completions);
	char	   *reason = psprintf("challenge %s completed", c->code);
	JsonBuild	jb = NULL;

	e->lot = 0;
	e->coupon = NULL;
	if (c->reward_currency)
	{
		NewLot		lot = {0};
		EntryResult result;
		TimestampTz now = GetCurrentTransactionStartTimestamp();

		lot.amount = c->reward_points;
		lot.valid_from = now;
		lot.has_valid_to = c->has_valid_for;
		if (c->has_valid_for)
			lot.valid_to = DatumGetTimestampTz(DirectFunctionCall2(timestamp_pl_interval,
																   TimestampTzGetDatum(now),
																   IntervalPGetDatum(&c->reward_valid_for)));
		lot.kind = c->reward_kind;
		lot.restriction = c->reward_restriction;
		EntryResultInit(&result, NULL);
		e->lot = LedgerAccrue(customer, c->reward_currency, &lot, rid, key, reason, &result);
	}
	if (c->reward_promotion)
	{
		char	   *code = psprintf("CH" INT64_FORMAT "-" INT64_FORMAT "-%d", c->id, customer, e->completions);
		Datum		args[5] = {Int64GetDatum(program_id), CStringGetTextDatum(code), Int64GetDatum(customer),
		CStringGetTextDatum(reason), CStringGetTextDatum(c->reward_promotion)};

		RunKept(&coupon_query, args, NULL, 0);
		if (SPI_processed == 1)
			e->coupon = code;
	}
	if (c->reward_achievement)
	{
		Datum		args[6] = {Int64GetDatum(program_id), Int64GetDatum(customer),
			CStringGetTextDatum(c->reward_achievement), Int64GetDatum(c->id),
		Int32GetDatum(c->reward_level), CStringGetTextDatum(rid)};
		bool		isnull;
		int32		before;

		RunKept(&level_query, args + 1, NULL, 1);
		before = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		RunKept(&unlock_query, args, NULL, 0);
		if (c->reward_level > before)
		{
			JbBeginObject(&jb, NULL);
			JbText(&jb, "achievement", c->reward_achievement);
			JbInt(&jb, "level", c->reward_level);
			JbText(&jb, "challenge", c->code);
			JbText(&jb, "receipt_id", rid);
			Event(program_id, "achievement_unlocked", customer, &jb);
		}
	}
	JbBeginObject(&jb, NULL);
	JbText(&jb, "challenge", c->code);
	JbText(&jb, "receipt_id", rid);
	JbInt(&jb, "completions", e->completions);
	if (c->reward_currency)
	{
		JbText(&jb, "currency", c->reward_currency);
		JbInt(&jb, "points", c->reward_points);
		if (e->lot)
			JbInt(&jb, "lot_id", e->lot);
	}
	if (e->coupon)
		JbText(&jb, "coupon", e->coupon);
	if (c->reward_achievement)
	{
		JbText(&jb, "achievement", c->reward_achievement);
		JbInt(&jb, "level", c->reward_level);
	}
	Event(program_id, "challenge_completed", customer, &jb);
}

/* A return took progress below the target: the reward goes back */
static void
TakeBack(int64 program_id, const Challenge *c, int64 customer, const char *rid, Enrolment *e)
{
	if (c->reward_currency)
	{
		char	   *policy;
		int			exponent;
		EntryResult result;

		ReceiptShortfallRules(program_id, &policy, &exponent);
		EntryResultInit(&result, NULL);
		ReceiptTakeBack(customer, c->reward_currency, e->lot, c->reward_points, rid,
						psprintf("loyalty:challenge:" INT64_FORMAT ":" INT64_FORMAT ":%d:back",
								 c->id, customer, e->completions),
						strcmp(policy, "debt") == 0 ? "debt" : "forgive", &result);
	}
	if (e->coupon)
	{
		Datum		args[2] = {Int64GetDatum(program_id), CStringGetTextDatum(e->coupon)};

		RunKept(&coupon_back_query, args, NULL, 0);
	}
	if (c->reward_achievement)
	{
		Datum		args[2] = {Int64GetDatum(customer), Int64GetDatum(c->id)};

		RunKept(&lock_query, args, NULL, 0);
	}
	e->lot = 0;
	e->coupon = NULL;
}

/* Write the progress of the enrolments that moved, with their events */
static void
WriteProgress(int64 program_id, const Challenge *const *cs, Enrolment *e, int n,
			  int64 customer, const char *rid, bool returning)
{
	int64	   *ids = palloc(sizeof(int64) * Max(n, 1));
	int64	   *progress = palloc(sizeof(int64) * Max(n, 1));
	Datum	   *done = palloc(sizeof(Datum) * Max(n, 1));
	int32	   *completions = palloc(sizeof(int32) * Max(n, 1));
	int64	   *lots = palloc(sizeof(int64) * Max(n, 1));
	char	  **coupons = palloc(sizeof(char *) * Max(n, 1));
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		const Challenge *c = cs[i];
		bool		was = e[i].completed;
		JsonBuild	jb = NULL;

		if (!e[i].counts)
			continue;
		if (!was && e[i].progress >= c->target)
			e[i].completed = true;
		else if (was && returning && e[i].progress < c->target && !c->keep_reward)
			e[i].completed = false;
		JbBeginObject(&jb, NULL);
		JbText(&jb, "challenge", c->code);
		JbText(&jb, "receipt_id", rid);
		JbInt(&jb, "progress", e[i].progress);
		JbInt(&jb, "target", c->target);
		JbText(&jb, "state", e[i].completed ? "completed" : "active");
		if (returning)
			JbBool(&jb, "returned", true);
		Event(program_id, "challenge_progress", customer, &jb);
		/* then what the change of state gives or takes */
		if (!was && e[i].completed)
		{
			e[i].completions++;
			Grant(program_id, c, customer, rid, &e[i]);
		}
		else if (was && !e[i].completed)
			TakeBack(program_id, c, customer, rid, &e[i]);
		ids[m] = c->id;
		progress[m] = e[i].progress;
		done[m] = BoolGetDatum(e[i].completed);
		completions[m] = e[i].completions;
		lots[m] = e[i].lot;
		coupons[m] = e[i].coupon;
		m++;
	}
	if (m > 0)
	{
		Datum		args[8] = {Int64GetDatum(customer), SpiInt8Array(ids, m), SpiInt8Array(progress, m),
			SpiArray(BOOLOID, done, NULL, m),
			SpiInt4Array(completions, m), SpiInt8Array(lots, m),
		SpiTextArray((const char *const *) coupons, m), CStringGetTextDatum(rid)};

		RunKept(&update_query, args, NULL, 0);
	}
}

/*
 * A committed receipt's progress (its customer's wallets locked, the
 * receipt written): what its lines give each challenge the customer is
 * enrolled in, or enrols in by it.
 */
void
CampaignCommit(Catalog *cat, const ReceiptPlan *plan, const char *rid)
{
	ChItem	   *items = NULL;
	int			nitems = 0;
	int			cap = 0;
	int		   *cand;
	int			ncand = 0;
	int64	   *ids;
	Enrolment  *e;
	const Challenge **cs;
	int64		customer = plan->customer_id;
	TimestampTz at = plan->at;
	bool		recount = false;

	if (cat->nchallenges == 0 || !plan->found || plan->status == NULL || strcmp(plan->status, "active") != 0)
		return;
	for (int c = 0; c < cat->nchallenges; c++)
	{
		const Challenge *ch = &cat->challenges[c];

		if (at < ch->starts_at || (!ch->has_duration && ch->has_end && at >= ch->ends_at))
			continue;
		if (!ExperimentAllows(cat, ch->exp_masks, plan->variants))
			continue;
		for (int i = 0; i < plan->nlines; i++)
		{
			const PlanLine *l = &plan->lines[i];
			const CondValue *row = plan->line_rows[i];

			if (ch->goal == CG_STEPS)
			{
				for (int s = 0; s < ch->nsteps; s++)
					if (loyalty_cond_eval(ch->steps[s], row))
						AddItem(&items, &nitems, &cap, c, l->no, 1, psprintf("%d", s + 1));
				continue;
			}
			if (ch->cond && !loyalty_cond_eval(ch->cond, row))
				continue;
			switch (ch->goal)
			{
				case CG_SPEND:
					if (l->amount - l->discount > 0)
						AddItem(&items, &nitems, &cap, c, l->no, l->amount - l->discount, "");
					break;
				case CG_QUANTITY:
					if (l->qty_milli > 0)
						AddItem(&items, &nitems, &cap, c, l->no, l->qty_milli, "");
					break;
				case CG_DISTINCT:
					DistinctItems(&items, &nitems, &cap, c, l->no, &row[ch->distinct_attr]);
					break;
				default:
					AddItem(&items, &nitems, &cap, c, l->no, 1, "");
					break;
			}
		}
	}
	if (nitems == 0)
		return;

	/* the challenges it gives to, in catalogue (id) order */
	cand = palloc(sizeof(int) * cat->nchallenges);
	for (int i = 0; i < nitems; i++)
		if (ncand == 0 || cand[ncand - 1] != items[i].challenge)
			cand[ncand++] = items[i].challenge;
	ids = palloc(sizeof(int64) * ncand);
	cs = palloc(sizeof(Challenge *) * ncand);
	for (int j = 0; j < ncand; j++)
	{
		cs[j] = &cat->challenges[cand[j]];
		ids[j] = cs[j]->id;
	}
	e = palloc0(sizeof(Enrolment) * ncand);
	ReadEnrolments(customer, ids, ncand, e);

	/* enrol where it enrols; keep what counts */
	{
		int64	   *new_ids = palloc(sizeof(int64) * ncand);
		Datum	   *new_at = palloc(sizeof(Datum) * ncand);
		Datum	   *new_end = palloc(sizeof(Datum) * ncand);
		bool	   *new_end_null = palloc(sizeof(bool) * ncand);
		int			nnew = 0;

		for (int j = 0; j < ncand; j++)
		{
			const Challenge *ch = cs[j];

			if (!e[j].exists)
			{
				if (ch->opt_in || !InAudience(ch, plan) || (ch->has_end && at >= ch->ends_at))
					continue;
				e[j].enrolled_at = at;
				e[j].has_window_end = ch->has_duration || ch->has_end;
				if (ch->has_duration)
					e[j].window_end = DatumGetTimestampTz(DirectFunctionCall2(timestamp_pl_interval,
																			  TimestampTzGetDatum(at),
																			  IntervalPGetDatum(&ch->duration)));
				else
					e[j].window_end = ch->ends_at;
				new_ids[nnew] = ch->id;
				new_at[nnew] = TimestampTzGetDatum(at);
				new_end[nnew] = TimestampTzGetDatum(e[j].window_end);
				new_end_null[nnew] = !e[j].has_window_end;
				nnew++;
			}
			else if (at < e[j].enrolled_at || (e[j].has_window_end && at >= e[j].window_end))
				continue;
			e[j].counts = true;
			if (ch->goal == CG_DISTINCT || ch->goal == CG_STREAK || ch->goal == CG_STEPS)
				recount = true;
		}
		if (nnew > 0)
		{
			Datum		args[5] = {SpiInt8Array(new_ids, nnew), Int64GetDatum(customer),
				Int64GetDatum(cat->program_id),
				SpiArray(TIMESTAMPTZOID, new_at, NULL, nnew), SpiArray(TIMESTAMPTZOID, new_end, new_end_null, nnew)};

			RunKept(&enrol_query, args, NULL, 0);
			if (SPI_processed != (uint64) nnew)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("receipt \"%s\": the customer enrolled in a challenge while committing", rid),
						 errhint("Calculate the receipt again.")));
		}
	}

	/* the receipt's items of the challenges it counts for */
	{
		int64	   *cid = palloc(sizeof(int64) * nitems);
		int32	   *line = palloc(sizeof(int32) * nitems);
		int64	   *value = palloc(sizeof(int64) * nitems);
		char	  **key = palloc(sizeof(char *) * nitems);
		int			m = 0;

		for (int i = 0; i < nitems; i++)
		{
			int			j = 0;

			while (cand[j] != items[i].challenge)
				j++;
			if (!e[j].counts)
				continue;
			cid[m] = cs[j]->id;
			line[m] = items[i].line;
			value[m] = items[i].value;
			key[m] = (char *) items[i].key;
			e[j].delta += cs[j]->goal == CG_RECEIPTS ? 0 : items[i].value;
			m++;
		}
		if (m == 0)
			return;
		{
			Datum		args[9] = {Int64GetDatum(cat->program_id), CStringGetTextDatum(rid),
				Int64GetDatum(customer), TimestampTzGetDatum(at), DateADTGetDatum(plan->local_date),
				SpiInt8Array(cid, m), SpiInt4Array(line, m), SpiInt8Array(value, m),
			SpiTextArray((const char *const *) key, m)};

			RunKept(&item_query, args, NULL, 0);
		}
	}

	/* the new progress */
	if (recount)
	{
		int			nrecs;
		RecItems   *recs = ReadItems(customer, ids, ncand, &nrecs);

		for (int j = 0; j < ncand; j++)
			if (e[j].counts && (cs[j]->goal == CG_DISTINCT || cs[j]->goal == CG_STREAK || cs[j]->goal == CG_STEPS))
				e[j].progress = Count(cs[j], recs, nrecs);
	}
	for (int j = 0; j < ncand; j++)
	{
		if (!e[j].counts)
			continue;
		if (cs[j]->goal == CG_RECEIPTS)
			e[j].progress++;
		else if (cs[j]->goal == CG_SPEND || cs[j]->goal == CG_QUANTITY)
			e[j].progress += e[j].delta;
	}
	WriteProgress(cat->program_id, cs, e, ncand, customer, rid, false);
}

/*
 * A return of the receipt (its customer's wallets locked): the items of
 * the lines returned give what is left of them, and each challenge they
 * gave to counts again.  nlines < 0: a cancel, every line returned whole.
 */
void
CampaignReturn(int64 program_id, const char *rid, int64 customer, int nlines,
			   const ReturnedLine *lines)
{
	Datum		args[3] = {Int64GetDatum(program_id), CStringGetTextDatum(rid), 0};
	int			n;
	int64	   *cid;
	int64	   *line;
	int64	   *total;
	int64	   *value;
	bool		changed = false;
	bool	   *moved;
	int64	   *ids;
	int			nids = 0;
	Challenge  *cs;
	const Challenge **csp;
	Enrolment  *e;
	RecItems   *recs;
	int			nrecs;

	if (customer == 0 || !TableHasColumn("challenge_receipt", "value"))
		return;
	RunKept(&receipt_items_query, args, NULL, 0);
	if (SPI_processed != 1)
		return;
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		int			m;

		cid = Int8Column(t, desc, 2, INT8OID, &n);
		line = Int8Column(t, desc, 3, INT4OID, &m);
		total = Int8Column(t, desc, 4, INT8OID, &m);
		value = Int8Column(t, desc, 5, INT8OID, &m);
	}
	/* the challenges its items gave to, as they are now (active or not) */
	ids = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
		ids[i] = cid[i];
	qsort(ids, n, sizeof(int64), Int64Cmp);
	for (int i = 0; i < n; i++)
		if (nids == 0 || ids[nids - 1] != ids[i])
			ids[nids++] = ids[i];
	{
		Datum		a[1] = {SpiInt8Array(ids, nids)};

		RunKept(&named_query, a, NULL, 0);
		cs = palloc0(sizeof(Challenge) * Max(SPI_processed, 1));
		nids = ReadChallenges(cs, NULL);
	}
	moved = palloc0(sizeof(bool) * Max(nids, 1));
	for (int i = 0; i < n; i++)
	{
		const Challenge *c = NULL;
		int64		now = value[i];

		for (int j = 0; j < nids; j++)
			if (cs[j].id == cid[i])
				c = &cs[j];
		if (c == NULL)
			continue;			/* a challenge dropped: nothing to count */
		if (nlines < 0)
			now = 0;
		else
			for (int k = 0; k < nlines; k++)
			{
				const ReturnedLine *r = &lines[k];

				if (r->no != line[i])
					continue;
				if (r->left_milli <= 0 || r->qty_milli <= 0)
					now = 0;
				else if (c->goal == CG_QUANTITY)
					now = Min(total[i], r->left_milli);
				else if (c->goal == CG_SPEND)
					/* the total less its cumulative share returned, as refund counts money */
					now = total[i] - (int64) (((__int128) total[i] * (r->qty_milli - r->left_milli)) / r->qty_milli);
				else
					now = total[i];
			}
		if (now != value[i])
		{
			value[i] = now;
			changed = true;
			moved[c - cs] = true;
		}
	}
	if (!changed)
		return;
	args[2] = SpiInt8Array(value, n);
	RunKept(&receipt_values_query, args, NULL, 0);

	/* the challenges whose items moved */
	csp = palloc(sizeof(Challenge *) * Max(nids, 1));
	{
		int			m = 0;

		for (int j = 0; j < nids; j++)
			if (moved[j])
			{
				csp[m] = &cs[j];
				ids[m] = cs[j].id;
				m++;
			}
		nids = m;
	}
	e = palloc0(sizeof(Enrolment) * Max(nids, 1));
	ReadEnrolments(customer, ids, nids, e);
	recs = ReadItems(customer, ids, nids, &nrecs);
	for (int j = 0; j < nids; j++)
	{
		if (!e[j].exists)
			continue;
		e[j].counts = true;
		e[j].progress = Count(csp[j], recs, nrecs);
	}
	WriteProgress(program_id, csp, e, nids, customer, rid, true);
}
