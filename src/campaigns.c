/*
 * src/campaigns.c
 *
 * Challenges: goals over a customer's receipts (receipts, spend, quantity,
 * distinct values, streaks, steps of a quest), moved by commit in its own
 * transaction and taken back by cancel and refund.  docs/campaigns.md is
 * the contract; this file computes exactly what it says.
 *
 * What a receipt gives is kept as one entry per challenge it counts for
 * (loyalty.challenge_receipt, one row a receipt): what it gave at commit,
 * what it gives now after returns, and which of its lines gave it.  The
 * customer's progress row keeps what its goal needs to move by a receipt
 * alone (the distinct values with their items, the periods of a streak
 * with their receipts, a quest's latest receipt), so a commit reads no
 * earlier receipt; a return subtracts what its lines gave.  Only a quest
 * counts again from the customer's receipts, after a return or a receipt
 * older than its latest.  A customer's enrolments are one challenge_state
 * row, read once and written back once, only if it is still the version
 * read: the customer's wallets, locked first, make two receipts of one
 * customer count one after the other, so a challenge is completed once.
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
/* a customer's enrolments: one row (docs/campaigns.md, "Concurrency and replays") */
static KeptQuery state_query = {
	"SELECT s.xmin, s.challenge_id, s.enrolled_at, s.window_end, s.progress, s.completions,"
	"       s.completed_at, s.completed_receipt, s.reward_lot_id, s.reward_coupon, s.last_at, s.last_receipt,"
	"       s.key_challenge, s.keys, s.key_counts, s.period_challenge, s.periods, s.period_counts"
	"  FROM loyalty.challenge_state s WHERE s.customer_id = $1",
	1, {INT8OID}, NULL
};
#define STATE_ARRAYS 17
#define STATE_ARRAY_TYPES \
	INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID, INT4ARRAYOID, \
	TIMESTAMPTZARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, \
	INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, INT4ARRAYOID
/* the element types of the arrays, by their column in state_query (from 2) less one */
static const Oid state_types[STATE_ARRAYS + 1] = {InvalidOid, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID,
INT8OID, TEXTOID, INT4OID, INT8OID, INT4OID, INT4OID};
static KeptQuery state_update_query = {
	"UPDATE loyalty.challenge_state s"
	"   SET challenge_id = $3, enrolled_at = $4, window_end = $5, progress = $6, completions = $7,"
	"       completed_at = $8, completed_receipt = $9, reward_lot_id = $10, reward_coupon = $11,"
	"       last_at = $12, last_receipt = $13, key_challenge = $14, keys = $15, key_counts = $16,"
	"       period_challenge = $17, periods = $18, period_counts = $19, updated_at = pg_catalog.now()"
	" WHERE s.customer_id = $1 AND s.xmin OPERATOR(pg_catalog.=) $2",
	19, {INT8OID, XIDOID, STATE_ARRAY_TYPES}, NULL
};
static KeptQuery state_insert_query = {
	"INSERT INTO loyalty.challenge_state (customer_id, program_id, challenge_id, enrolled_at, window_end,"
	"                                     progress, completions, completed_at, completed_receipt,"
	"                                     reward_lot_id, reward_coupon, last_at, last_receipt, key_challenge,"
	"                                     keys, key_counts, period_challenge, periods, period_counts)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
	" ON CONFLICT (customer_id) DO NOTHING",
	19, {INT8OID, INT8OID, STATE_ARRAY_TYPES}, NULL
};
static KeptQuery item_query = {
	"INSERT INTO loyalty.challenge_receipt (program_id, receipt_id, customer_id, at, day, challenge_id,"
	"                                       total, value, key, lines, alive, key_of, key_line)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12)",
	12, {INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID, DATEOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID,
		BYTEAOID, BYTEAOID, INT4ARRAYOID, INT4ARRAYOID}, NULL
};
/* a quest's receipts, in the order its steps are done */
static KeptQuery steps_query = {
	"SELECT r.receipt_id, r.at, r.challenge_id, r.key_of, r.key_line, r.key, r.alive"
	"  FROM loyalty.challenge_receipt r"
	" WHERE r.customer_id = $1 AND r.challenge_id OPERATOR(pg_catalog.@>) ARRAY[$2::int8]"
	" ORDER BY r.at, r.receipt_id COLLATE \"C\"",
	2, {INT8OID, INT8OID}, NULL
};
static KeptQuery receipt_items_query = {
	"SELECT r.challenge_id, r.total, r.value, r.key, r.lines, r.alive, r.key_of, r.key_line, r.day"
	"  FROM loyalty.challenge_receipt r"
	" WHERE r.program_id = $1 AND r.receipt_id = $2 FOR UPDATE",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery receipt_values_query = {
	"UPDATE loyalty.challenge_receipt SET value = $3, alive = $4 WHERE program_id = $1 AND receipt_id = $2",
	4, {INT8OID, TEXTOID, INT8ARRAYOID, BYTEAOID}, NULL
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

/*
 * What a receipt gives one challenge: an element of challenge_receipt's
 * arrays.  Its lines that count are a bitmap over the receipt's lines in
 * their order (bit p % 8 of byte p / 8 for the line at 0-based place p).
 */
typedef struct ChEntry
{
	int			challenge;		/* index in the challenges at hand */
	int64		total;			/* what it gave at commit */
	uint8	   *lines;
} ChEntry;

/* A line's value of distinct_of (distinct) or a step it does (steps) */
typedef struct ChKey
{
	int			entry;			/* index of its entry */
	int32		pos;			/* 0-based place of its line */
	char	   *key;
} ChKey;

/* A customer's enrolment, as read, with the state its goal keeps */
typedef struct Enrolment
{
	int64		id;				/* the challenge */
	bool		exists;
	bool		counts;			/* this receipt counts for it */
	TimestampTz enrolled_at;
	bool		has_window_end;
	TimestampTz window_end;
	int64		progress;
	bool		completed;
	TimestampTz completed_at;
	char	   *completed_receipt;
	int32		completions;
	int64		lot;
	char	   *coupon;
	/* distinct: the values counted, sorted, with their live items */
	int			nkeys;
	char	  **keys;
	int32	   *key_counts;
	/* streak: the periods with a receipt, ascending, with their receipts */
	int			nperiods;
	int32	   *periods;
	int32	   *period_counts;
	/* steps: the latest receipt counted, by (at, receipt_id) */
	bool		has_last;
	TimestampTz last_at;
	char	   *last_receipt;
} Enrolment;

/* A customer's challenge_state row, decoded: their enrolments by id */
typedef struct ChState
{
	bool		exists;
	TransactionId seen;			/* the xmin of the row read */
	int			n;
	Enrolment  *e;
} ChState;

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
	if (!TableHasColumn("challenge_receipt", "alive"))
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

static inline bool
BitGet(const uint8 *bits, int pos)
{
	return (bits[pos >> 3] >> (pos & 7)) & 1;
}

static inline void
BitSet(uint8 *bits, int pos)
{
	bits[pos >> 3] |= (uint8) (1 << (pos & 7));
}

static bytea *
Bytea(const uint8 *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(b), data, len);
	return b;
}

/* A bytea column of an SPI row, copied: its bytes and length */
static uint8 *
ByteaColumn(HeapTuple t, TupleDesc desc, int column, int *len)
{
	bool		isnull;
	Datum		d = SPI_getbinval(t, desc, column, &isnull);
	bytea	   *b;
	uint8	   *out;

	if (isnull)
		elog(ERROR, "column %d of a challenge_receipt row is null", column);
	b = DatumGetByteaPP(d);
	*len = VARSIZE_ANY_EXHDR(b);
	out = palloc(Max(*len, 1));
	memcpy(out, VARDATA_ANY(b), *len);
	return out;
}

/* An int8[] column of an SPI row */
static int64 *
Int8Column(HeapTuple t, TupleDesc desc, int column, int *n)
{
	Datum	   *elems;
	int64	   *out;

	*n = SpiArrayElements(t, desc, column, INT8OID, &elems);
	out = palloc(sizeof(int64) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = DatumGetInt64(elems[i]);
	return out;
}

static int32 *
Int4Column(HeapTuple t, TupleDesc desc, int column, int *n)
{
	Datum	   *elems;
	int32	   *out;

	*n = SpiArrayElements(t, desc, column, INT4OID, &elems);
	out = palloc(sizeof(int32) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = DatumGetInt32(elems[i]);
	return out;
}

static char **
TextColumn(HeapTuple t, TupleDesc desc, int column, int *n)
{
	Datum	   *elems;
	char	  **out;

	*n = SpiArrayElements(t, desc, column, TEXTOID, &elems);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = TextDatumGetCString(elems[i]);
	return out;
}

static void
AddKey(ChKey **keys, int *n, int *cap, int entry, int32 pos, char *key)
{
	if (*n == *cap)
	{
		*cap = Max(16, *cap * 2);
		*keys = *keys ? repalloc(*keys, sizeof(ChKey) * *cap) : palloc(sizeof(ChKey) * *cap);
	}
	(*keys)[*n].entry = entry;
	(*keys)[*n].pos = pos;
	(*keys)[*n].key = key;
	(*n)++;
}

/* What the attribute holds: one key per scalar (each element of an array) */
static bool
DistinctKeys(ChKey **keys, int *n, int *cap, int entry, int32 pos, const CondValue *v)
{
	int			before = *n;

	if (v->kind == COND_SCALAR)
		AddKey(keys, n, cap, entry, pos, pnstrdup(v->str, v->len));
	else if (v->kind == COND_ARRAY)
		for (int e = 0; e < v->nelems; e++)
			if (v->elems[e].kind == COND_SCALAR)
				AddKey(keys, n, cap, entry, pos, pnstrdup(v->elems[e].str, v->elems[e].len));
	return *n > before;
}

/*
 * A distinct value's live items change by delta: a new value is inserted in
 * its (bytewise) place, one left with none is removed.
 */
static void
CountKey(Enrolment *e, const char *key, int32 delta)
{
	int			lo = 0;
	int			hi = e->nkeys;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;
		int			cmp = strcmp(e->keys[mid], key);

		if (cmp == 0)
		{
			e->key_counts[mid] += delta;
			if (e->key_counts[mid] <= 0)
			{
				memmove(&e->keys[mid], &e->keys[mid + 1], sizeof(char *) * (e->nkeys - mid - 1));
				memmove(&e->key_counts[mid], &e->key_counts[mid + 1], sizeof(int32) * (e->nkeys - mid - 1));
				e->nkeys--;
			}
			return;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (delta <= 0)
		return;
	e->keys = e->keys ? repalloc(e->keys, sizeof(char *) * (e->nkeys + 1)) : palloc(sizeof(char *));
	e->key_counts = e->key_counts ? repalloc(e->key_counts, sizeof(int32) * (e->nkeys + 1)) : palloc(sizeof(int32));
	memmove(&e->keys[lo + 1], &e->keys[lo], sizeof(char *) * (e->nkeys - lo));
	memmove(&e->key_counts[lo + 1], &e->key_counts[lo], sizeof(int32) * (e->nkeys - lo));
	e->keys[lo] = pstrdup(key);
	e->key_counts[lo] = delta;
	e->nkeys++;
}

/* A period's receipts change by delta (as CountKey, over periods) */
static void
CountPeriod(Enrolment *e, int32 period, int32 delta)
{
	int			lo = 0;
	int			hi = e->nperiods;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (e->periods[mid] == period)
		{
			e->period_counts[mid] += delta;
			if (e->period_counts[mid] <= 0)
			{
				memmove(&e->periods[mid], &e->periods[mid + 1], sizeof(int32) * (e->nperiods - mid - 1));
				memmove(&e->period_counts[mid], &e->period_counts[mid + 1], sizeof(int32) * (e->nperiods - mid - 1));
				e->nperiods--;
			}
			return;
		}
		if (e->periods[mid] < period)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (delta <= 0)
		return;
	e->periods = e->periods ? repalloc(e->periods, sizeof(int32) * (e->nperiods + 1)) : palloc(sizeof(int32));
	e->period_counts = e->period_counts ? repalloc(e->period_counts, sizeof(int32) * (e->nperiods + 1)) : palloc(sizeof(int32));
	memmove(&e->periods[lo + 1], &e->periods[lo], sizeof(int32) * (e->nperiods - lo));
	memmove(&e->period_counts[lo + 1], &e->period_counts[lo], sizeof(int32) * (e->nperiods - lo));
	e->periods[lo] = period;
	e->period_counts[lo] = delta;
	e->nperiods++;
}

/* The longest run of consecutive periods */
static int64
LongestRun(const Enrolment *e)
{
	int64		best = 0;
	int64		run = 0;

	for (int i = 0; i < e->nperiods; i++)
	{
		run = i > 0 && e->periods[i] == e->periods[i - 1] + 1 ? run + 1 : 1;
		best = Max(best, run);
	}
	return best;
}

/* The steps a receipt does in order, from `done` steps done */
static int64
StepsFrom(int64 done, int nsteps, char *const *keys, int nkeys)
{
	for (bool more = true; more && done < nsteps;)
	{
		char		want[12];

		more = false;
		snprintf(want, sizeof(want), "%d", (int) done + 1);
		for (int i = 0; i < nkeys; i++)
			if (strcmp(keys[i], want) == 0)
			{
				done++;
				more = true;
				break;
			}
	}
	return done;
}

/* Whether the receipt (at, rid) comes after the quest's latest one */
static bool
AfterLast(const Enrolment *e, TimestampTz at, const char *rid)
{
	return !e->has_last || at > e->last_at || (at == e->last_at && strcmp(rid, e->last_receipt) > 0);
}

/*
 * A quest's progress counted again from all the customer's receipts, in
 * their order, each doing the steps it can from where the last left off:
 * after a return, or a receipt that comes before the latest one counted.
 */
static void
StepsRecount(int64 customer, const Challenge *c, Enrolment *e)
{
	Datum		args[2] = {Int64GetDatum(customer), Int64GetDatum(c->id)};
	int64		done = 0;

	RunKept(&steps_query, args, NULL, 0);
	e->has_last = false;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			n,
					nk,
					m,
					len,
					mine = 0;
		int64	   *cid = Int8Column(t, desc, 3, &n);
		int32	   *key_of = Int4Column(t, desc, 4, &nk);
		int32	   *key_line = Int4Column(t, desc, 5, &m);
		char	  **key = TextColumn(t, desc, 6, &m);
		uint8	   *alive = ByteaColumn(t, desc, 7, &len);
		char	  **live = palloc(sizeof(char *) * Max(nk, 1));
		int			nlive = 0;

		while (mine < n && cid[mine] != c->id)
			mine++;
		for (int k = 0; k < nk; k++)
			if (key_of[k] == mine + 1 && key_line[k] >= 1 && key_line[k] <= len * 8 &&
				BitGet(alive, key_line[k] - 1))
				live[nlive++] = key[k];
		if (nlive == 0)
			continue;
		done = StepsFrom(done, c->nsteps, live, nlive);
		e->has_last = true;
		e->last_receipt = SPI_getvalue(t, desc, 1);
		e->last_at = DatumGetTimestampTz(SPI_getbinval(t, desc, 2, &isnull));
	}
	e->progress = done;
}

static int
enrolment_cmp(const void *a, const void *b)
{
	int64		x = ((const Enrolment *) a)->id;
	int64		y = ((const Enrolment *) b)->id;

	return x < y ? -1 : x > y;
}

static Enrolment *
StateFind(ChState *st, int64 id)
{
	Enrolment	key = {.id = id};

	return st->n == 0 ? NULL : bsearch(&key, st->e, st->n, sizeof(Enrolment), enrolment_cmp);
}

/* The customer's challenge_state row into st: every enrolment, by id */
static void
ReadState(int64 customer, ChState *st)
{
	Datum		args[1] = {Int64GetDatum(customer)};
	HeapTuple	t;
	TupleDesc	desc;
	bool		isnull;
	Datum	   *d[STATE_ARRAYS + 1];
	bool	   *z[STATE_ARRAYS + 1];
	int			n[STATE_ARRAYS + 1];

	memset(st, 0, sizeof(*st));
	RunKept(&state_query, args, NULL, 0);
	if (SPI_processed != 1)
		return;
	t = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	st->exists = true;
	st->seen = DatumGetTransactionId(SPI_getbinval(t, desc, 1, &isnull));
	for (int c = 1; c <= STATE_ARRAYS; c++)
		n[c] = SpiArrayElementsNulls(t, desc, c + 1, state_types[c], &d[c], &z[c]);
	for (int c = 2; c <= 11; c++)
		if (n[c] != n[1])
			elog(ERROR, "challenge_state row of customer " INT64_FORMAT " has arrays of different lengths", customer);
	if (n[13] != n[12] || n[14] != n[12] || n[16] != n[15] || n[17] != n[15])
		elog(ERROR, "challenge_state row of customer " INT64_FORMAT " has arrays of different lengths", customer);
	st->n = n[1];
	st->e = palloc0(sizeof(Enrolment) * Max(st->n, 1));
	for (int i = 0; i < st->n; i++)
	{
		Enrolment  *e = &st->e[i];

		e->id = DatumGetInt64(d[1][i]);
		e->exists = true;
		e->enrolled_at = DatumGetTimestampTz(d[2][i]);
		e->has_window_end = !z[3][i];
		e->window_end = z[3][i] ? 0 : DatumGetTimestampTz(d[3][i]);
		e->progress = DatumGetInt64(d[4][i]);
		e->completions = DatumGetInt32(d[5][i]);
		e->completed = !z[6][i];
		e->completed_at = z[6][i] ? 0 : DatumGetTimestampTz(d[6][i]);
		e->completed_receipt = z[7][i] ? NULL : TextDatumGetCString(d[7][i]);
		e->lot = z[8][i] ? 0 : DatumGetInt64(d[8][i]);
		e->coupon = z[9][i] ? NULL : TextDatumGetCString(d[9][i]);
		e->has_last = !z[10][i];
		e->last_at = z[10][i] ? 0 : DatumGetTimestampTz(d[10][i]);
		e->last_receipt = z[11][i] ? "" : TextDatumGetCString(d[11][i]);
	}
	qsort(st->e, st->n, sizeof(Enrolment), enrolment_cmp);
	/* the values and periods, each to its enrolment, in their stored order */
	for (int k = 0; k < n[12]; k++)
	{
		Enrolment  *e = StateFind(st, DatumGetInt64(d[12][k]));

		if (e == NULL || z[13][k] || z[14][k])
			continue;			/* a value of no enrolment: dropped */
		e->keys = e->keys ? repalloc(e->keys, sizeof(char *) * (e->nkeys + 1)) : palloc(sizeof(char *));
		e->key_counts = e->key_counts ? repalloc(e->key_counts, sizeof(int32) * (e->nkeys + 1)) : palloc(sizeof(int32));
		e->keys[e->nkeys] = TextDatumGetCString(d[13][k]);
		e->key_counts[e->nkeys] = DatumGetInt32(d[14][k]);
		e->nkeys++;
	}
	for (int k = 0; k < n[15]; k++)
	{
		Enrolment  *e = StateFind(st, DatumGetInt64(d[15][k]));

		if (e == NULL || z[16][k] || z[17][k])
			continue;
		e->periods = e->periods ? repalloc(e->periods, sizeof(int32) * (e->nperiods + 1)) : palloc(sizeof(int32));
		e->period_counts = e->period_counts ? repalloc(e->period_counts, sizeof(int32) * (e->nperiods + 1)) : palloc(sizeof(int32));
		e->periods[e->nperiods] = DatumGetInt32(d[16][k]);
		e->period_counts[e->nperiods] = DatumGetInt32(d[17][k]);
		e->nperiods++;
	}
}

/*
 * Read the customer's enrolments in ids[] into e[] (same order), from
 * their challenge_state row (kept in st).  The row is not locked: the
 * operation holds its customer's wallets, and writes it back only if it
 * is still the version read (WriteState).
 */
static void
ReadEnrolments(int64 customer, const int64 *ids, int n, Enrolment *e, ChState *st)
{
	ReadState(customer, st);
	for (int i = 0; i < n; i++)
	{
		Enrolment  *found = StateFind(st, ids[i]);

		if (found)
			e[i] = *found;
		else
		{
			memset(&e[i], 0, sizeof(Enrolment));
			e[i].id = ids[i];
		}
	}
}

/* An enrolment into st, in place of the one of its challenge or in its place by id */
static void
StatePut(ChState *st, const Enrolment *x)
{
	Enrolment  *found = StateFind(st, x->id);
	int			at = 0;

	if (found)
	{
		*found = *x;
		return;
	}
	while (at < st->n && st->e[at].id < x->id)
		at++;
	st->e = st->e ? repalloc(st->e, sizeof(Enrolment) * (st->n + 1)) : palloc(sizeof(Enrolment));
	memmove(&st->e[at + 1], &st->e[at], sizeof(Enrolment) * (st->n - at));
	st->e[at] = *x;
	st->n++;
}

/*
 * The customer's challenge_state row written back: updated if it is still
 * the version read, inserted if they had none; else 40001, nothing written.
 */
static void
WriteState(int64 program_id, int64 customer, const ChState *st, const char *rid)
{
	int			n = st->n;
	int			nk = 0,
				np = 0;
	Datum	   *d[STATE_ARRAYS + 1];
	bool	   *z[STATE_ARRAYS + 1];
	Datum		args[STATE_ARRAYS + 2];

	for (int i = 0; i < n; i++)
	{
		nk += st->e[i].nkeys;
		np += st->e[i].nperiods;
	}
	for (int c = 1; c <= STATE_ARRAYS; c++)
	{
		int			len = c <= 11 ? n : c <= 14 ? nk : np;

		d[c] = palloc0(sizeof(Datum) * Max(len, 1));
		z[c] = palloc0(sizeof(bool) * Max(len, 1));
	}
	nk = np = 0;
	for (int i = 0; i < n; i++)
	{
		const Enrolment *e = &st->e[i];

		d[1][i] = Int64GetDatum(e->id);
		d[2][i] = TimestampTzGetDatum(e->enrolled_at);
		z[3][i] = !e->has_window_end;
		d[3][i] = TimestampTzGetDatum(e->window_end);
		d[4][i] = Int64GetDatum(e->progress);
		d[5][i] = Int32GetDatum(e->completions);
		z[6][i] = !e->completed;
		d[6][i] = TimestampTzGetDatum(e->completed_at);
		z[7][i] = !e->completed || e->completed_receipt == NULL;
		d[7][i] = z[7][i] ? (Datum) 0 : CStringGetTextDatum(e->completed_receipt);
		z[8][i] = e->lot == 0;
		d[8][i] = Int64GetDatum(e->lot);
		z[9][i] = e->coupon == NULL;
		d[9][i] = e->coupon ? CStringGetTextDatum(e->coupon) : (Datum) 0;
		z[10][i] = !e->has_last;
		d[10][i] = TimestampTzGetDatum(e->last_at);
		z[11][i] = !e->has_last;
		d[11][i] = e->has_last ? CStringGetTextDatum(e->last_receipt) : (Datum) 0;
		for (int k = 0; k < e->nkeys; k++, nk++)
		{
			d[12][nk] = Int64GetDatum(e->id);
			d[13][nk] = CStringGetTextDatum(e->keys[k]);
			d[14][nk] = Int32GetDatum(e->key_counts[k]);
		}
		for (int k = 0; k < e->nperiods; k++, np++)
		{
			d[15][np] = Int64GetDatum(e->id);
			d[16][np] = Int32GetDatum(e->periods[k]);
			d[17][np] = Int32GetDatum(e->period_counts[k]);
		}
	}
	args[0] = Int64GetDatum(customer);
	args[1] = st->exists ? TransactionIdGetDatum(st->seen) : Int64GetDatum(program_id);
	for (int c = 1; c <= STATE_ARRAYS; c++)
		args[c + 1] = SpiArray(state_types[c], d[c], z[c], c <= 11 ? n : c <= 14 ? nk : np);
	RunKept(st->exists ? &state_update_query : &state_insert_query, args, NULL, 0);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("receipt \"%s\": the customer's challenges changed meanwhile", rid),
				 errhint("Try the operation again.")));
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

/*
 * Write the progress of the enrolments that moved: one challenge_progress
 * event for the receipt, then what each change of state gives or takes
 * (with its own events), then the customer's row.
 */
static void
WriteProgress(int64 program_id, const Challenge *const *cs, Enrolment *e, int n,
			  int64 customer, const char *rid, bool returning, ChState *st)
{
	bool	   *was = palloc(sizeof(bool) * Max(n, 1));
	JsonBuild	jb = NULL;

	/* the new states, and the receipt's event */
	JbBeginObject(&jb, NULL);
	JbText(&jb, "receipt_id", rid);
	if (returning)
		JbBool(&jb, "returned", true);
	JbBeginArray(&jb, "challenges");
	for (int i = 0; i < n; i++)
	{
		const Challenge *c = cs[i];

		if (!e[i].counts)
			continue;
		was[i] = e[i].completed;
		if (!was[i] && e[i].progress >= c->target)
		{
			e[i].completed = true;
			e[i].completed_at = GetCurrentTransactionStartTimestamp();
			e[i].completed_receipt = (char *) rid;
		}
		else if (was[i] && returning && e[i].progress < c->target && !c->keep_reward)
		{
			e[i].completed = false;
			e[i].completed_receipt = NULL;
		}
		JbBeginObject(&jb, NULL);
		JbText(&jb, "challenge", c->code);
		JbInt(&jb, "progress", e[i].progress);
		JbInt(&jb, "target", c->target);
		JbText(&jb, "state", e[i].completed ? "completed" : "active");
		JbEndObject(&jb);
	}
	JbEndArray(&jb);
	Event(program_id, "challenge_progress", customer, &jb);

	for (int i = 0; i < n; i++)
	{
		if (!e[i].counts)
			continue;
		if (!was[i] && e[i].completed)
		{
			e[i].completions++;
			Grant(program_id, cs[i], customer, rid, &e[i]);
		}
		else if (was[i] && !e[i].completed)
			TakeBack(program_id, cs[i], customer, rid, &e[i]);
		e[i].exists = true;
		StatePut(st, &e[i]);
	}
	WriteState(program_id, customer, st, rid);
}

/*
 * A committed receipt's progress (its customer's wallets locked, the
 * receipt written): what its lines give each challenge the customer is
 * enrolled in, or enrols in by it.  Progress moves by what the receipt
 * gives and the state the enrolment keeps; no earlier receipt is read
 * (but a quest's receipt that comes before the latest one counted).
 */
void
CampaignCommit(Catalog *cat, const ReceiptPlan *plan, const char *rid)
{
	ChEntry    *entries;
	int			nentries = 0;
	ChKey	   *keys = NULL;
	int			nkeys = 0;
	int			kcap = 0;
	int			nbytes = (plan->nlines + 7) / 8;
	int64	   *ids;
	Enrolment  *e;
	ChState		st;
	const Challenge **cs;
	int			m = 0;
	int64		customer = plan->customer_id;
	TimestampTz at = plan->at;

	if (cat->nchallenges == 0 || plan->nlines == 0 || !plan->found || plan->status == NULL ||
		strcmp(plan->status, "active") != 0)
		return;
	entries = palloc(sizeof(ChEntry) * cat->nchallenges);
	for (int ci = 0; ci < cat->nchallenges; ci++)
	{
		const Challenge *ch = &cat->challenges[ci];
		ChEntry    *en = &entries[nentries];
		int			first_key = nkeys;

		if (at < ch->starts_at || (!ch->has_duration && ch->has_end && at >= ch->ends_at))
			continue;
		if (!ExperimentAllows(cat, ch->exp_masks, plan->variants))
			continue;
		en->challenge = ci;
		en->total = 0;
		en->lines = NULL;
		for (int i = 0; i < plan->nlines; i++)
		{
			const PlanLine *l = &plan->lines[i];
			const CondValue *row = plan->line_rows[i];
			bool		hit = false;

			if (ch->goal == CG_STEPS)
			{
				for (int s = 0; s < ch->nsteps; s++)
					if (loyalty_cond_eval(ch->steps[s], row))
					{
						AddKey(&keys, &nkeys, &kcap, nentries, i, psprintf("%d", s + 1));
						hit = true;
					}
			}
			else if (ch->cond == NULL || loyalty_cond_eval(ch->cond, row))
				switch (ch->goal)
				{
					case CG_SPEND:
						if ((hit = l->amount - l->discount > 0))
							en->total += l->amount - l->discount;
						break;
					case CG_QUANTITY:
						if ((hit = l->qty_milli > 0))
							en->total += l->qty_milli;
						break;
					case CG_DISTINCT:
						hit = DistinctKeys(&keys, &nkeys, &kcap, nentries, i, &row[ch->distinct_attr]);
						break;
					default:
						hit = true;
						break;
				}
			if (hit)
			{
				if (en->lines == NULL)
					en->lines = palloc0(nbytes);
				BitSet(en->lines, i);
			}
		}
		if (en->lines == NULL)
			continue;
		if (ch->goal == CG_RECEIPTS || ch->goal == CG_STREAK)
			en->total = 1;
		else if (ch->goal == CG_DISTINCT || ch->goal == CG_STEPS)
			en->total = nkeys - first_key;
		nentries++;
	}
	if (nentries == 0)
		return;

	/* the customer's enrolments in the challenges it gives to, in catalogue (id) order */
	ids = palloc(sizeof(int64) * nentries);
	cs = palloc(sizeof(Challenge *) * nentries);
	for (int j = 0; j < nentries; j++)
	{
		cs[j] = &cat->challenges[entries[j].challenge];
		ids[j] = cs[j]->id;
	}
	e = palloc0(sizeof(Enrolment) * nentries);
	ReadEnrolments(customer, ids, nentries, e, &st);

	/* enrol where it enrols (written with the row); keep what counts */
	for (int j = 0; j < nentries; j++)
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
		}
		else if (at < e[j].enrolled_at || (e[j].has_window_end && at >= e[j].window_end))
			continue;
		e[j].counts = true;
		m++;
	}
	if (m == 0)
		return;

	/* the receipt's row: the entries of the challenges it counts for */
	{
		int64	   *cid = palloc(sizeof(int64) * m);
		int64	   *total = palloc(sizeof(int64) * m);
		uint8	   *lines = palloc0(Max(m * nbytes, 1));
		uint8	   *alive = palloc0(Max(nbytes, 1));
		int		   *place = palloc(sizeof(int) * nentries);
		char	  **key = palloc(sizeof(char *) * Max(nkeys, 1));
		int32	   *key_of = palloc(sizeof(int32) * Max(nkeys, 1));
		int32	   *key_line = palloc(sizeof(int32) * Max(nkeys, 1));
		int			nk = 0;
		int			w = 0;

		for (int j = 0; j < nentries; j++)
		{
			place[j] = -1;
			if (!e[j].counts)
				continue;
			place[j] = w;
			cid[w] = ids[j];
			total[w] = entries[j].total;
			memcpy(lines + w * nbytes, entries[j].lines, nbytes);
			w++;
		}
		for (int i = 0; i < plan->nlines; i++)
			BitSet(alive, i);
		for (int k = 0; k < nkeys; k++)
			if (place[keys[k].entry] >= 0)
			{
				key[nk] = keys[k].key;
				key_of[nk] = place[keys[k].entry] + 1;
				key_line[nk] = keys[k].pos + 1;
				nk++;
			}
		{
			Datum		args[12] = {Int64GetDatum(cat->program_id), CStringGetTextDatum(rid),
				Int64GetDatum(customer), TimestampTzGetDatum(at), DateADTGetDatum(plan->local_date),
				SpiInt8Array(cid, m), SpiInt8Array(total, m), SpiTextArray((const char *const *) key, nk),
				PointerGetDatum(Bytea(lines, m * nbytes)), PointerGetDatum(Bytea(alive, nbytes)),
			SpiInt4Array(key_of, nk), SpiInt4Array(key_line, nk)};

			RunKept(&item_query, args, NULL, 0);
		}
	}

	/* the new progress */
	for (int j = 0; j < nentries; j++)
	{
		const Challenge *ch = cs[j];
		char	  **mine;
		int			nmine = 0;

		if (!e[j].counts)
			continue;
		switch (ch->goal)
		{
			case CG_RECEIPTS:
				e[j].progress++;
				break;
			case CG_SPEND:
			case CG_QUANTITY:
				e[j].progress += entries[j].total;
				break;
			case CG_DISTINCT:
				for (int k = 0; k < nkeys; k++)
					if (keys[k].entry == j)
						CountKey(&e[j], keys[k].key, 1);
				e[j].progress = e[j].nkeys;
				break;
			case CG_STREAK:
				CountPeriod(&e[j], (int32) Period(ch, plan->local_date), 1);
				e[j].progress = LongestRun(&e[j]);
				break;
			case CG_STEPS:
				if (!AfterLast(&e[j], at, rid))
				{
					StepsRecount(customer, ch, &e[j]);
					break;
				}
				mine = palloc(sizeof(char *) * Max(nkeys, 1));
				for (int k = 0; k < nkeys; k++)
					if (keys[k].entry == j)
						mine[nmine++] = keys[k].key;
				e[j].progress = StepsFrom(e[j].progress, ch->nsteps, mine, nmine);
				e[j].has_last = true;
				e[j].last_at = at;
				e[j].last_receipt = (char *) rid;
				break;
		}
	}
	WriteProgress(cat->program_id, cs, e, nentries, customer, rid, false, &st);
}

/* What f(refunded) = total - floor(total * refunded / qty) loses from before to after */
static int64
SpendLost(int64 total, int64 qty, int64 before, int64 after)
{
	if (qty <= 0)
		return 0;
	return (int64) (((__int128) total * after) / qty) - (int64) (((__int128) total * before) / qty);
}

/*
 * A return of the receipt (its customer's wallets locked): each entry
 * gives what its lines left give, and the progress of each challenge whose
 * entry moved loses the difference.  nlines < 0: a cancel, every line
 * returned whole.
 */
void
CampaignReturn(int64 program_id, const char *rid, int64 customer, int nlines,
			   const ReturnedLine *lines)
{
	Datum		args[4] = {Int64GetDatum(program_id), CStringGetTextDatum(rid), 0, 0};
	int			n,
				m,
				nk,
				len,
				nbytes;
	int64	   *cid;
	int64	   *value;
	char	  **key;
	uint8	   *bits;
	uint8	   *alive;
	uint8	   *after;
	int32	   *key_of;
	int32	   *key_line;
	DateADT		day;
	int64	   *before;
	int64	   *ids;
	int			nids = 0;
	Challenge  *cs;
	int		   *chal;
	const Challenge **csp;
	Enrolment  *e;
	ChState		st;
	int		   *moved;
	int			nmoved = 0;

	if (customer == 0 || !TableHasColumn("challenge_receipt", "alive"))
		return;
	RunKept(&receipt_items_query, args, NULL, 0);
	if (SPI_processed != 1)
		return;
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		cid = Int8Column(t, desc, 1, &n);
		value = Int8Column(t, desc, 3, &m);
		key = TextColumn(t, desc, 4, &nk);
		bits = ByteaColumn(t, desc, 5, &len);
		alive = ByteaColumn(t, desc, 6, &nbytes);
		key_of = Int4Column(t, desc, 7, &m);
		if (m != nk)
			elog(ERROR, "challenge_receipt row of receipt \"%s\" has keys of different lengths", rid);
		key_line = Int4Column(t, desc, 8, &m);
		if (m != nk || len != n * nbytes)
			elog(ERROR, "challenge_receipt row of receipt \"%s\" has keys or lines of different lengths", rid);
		day = DatumGetDateADT(SPI_getbinval(t, desc, 9, &isnull));
	}
	/* the lines left after the return */
	after = palloc0(Max(nbytes, 1));
	if (nlines >= 0)
	{
		memcpy(after, alive, nbytes);
		for (int k = 0; k < nlines; k++)
			if (lines[k].pos >= 0 && lines[k].pos < nbytes * 8 &&
				lines[k].qty_milli - lines[k].after_milli <= 0)
				after[lines[k].pos >> 3] &= (uint8) ~(1 << (lines[k].pos & 7));
	}

	/* the challenges its entries gave to, as they are now (active or not) */
	ids = palloc(sizeof(int64) * Max(n, 1));
	memcpy(ids, cid, sizeof(int64) * n);
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

	/* what each entry gives now */
	before = palloc(sizeof(int64) * Max(n, 1));
	chal = palloc(sizeof(int) * Max(n, 1));
	moved = palloc(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		const uint8 *mine = bits + i * nbytes;
		const Challenge *c = NULL;
		int64		now = value[i];

		before[i] = value[i];
		chal[i] = -1;
		for (int j = 0; j < nids; j++)
			if (cs[j].id == cid[i])
				chal[i] = j, c = &cs[j];
		if (c == NULL || value[i] == 0)
			continue;			/* a challenge dropped, or nothing left to take */
		switch (c->goal)
		{
			case CG_RECEIPTS:
			case CG_STREAK:
				now = 0;
				for (int b = 0; b < nbytes; b++)
					if (mine[b] & after[b])
						now = 1;
				break;
			case CG_SPEND:
			case CG_QUANTITY:
				if (nlines < 0)
					now = 0;
				else
					for (int k = 0; k < nlines; k++)
					{
						const ReturnedLine *r = &lines[k];

						if (r->pos < 0 || r->pos >= nbytes * 8 || !BitGet(mine, r->pos))
							continue;
						now -= c->goal == CG_QUANTITY ? r->after_milli - r->before_milli
							: SpendLost(r->spend, r->qty_milli, r->before_milli, r->after_milli);
					}
				now = Max(now, 0);
				break;
			case CG_DISTINCT:
			case CG_STEPS:
				now = 0;
				for (int k = 0; k < nk; k++)
					if (key_of[k] == i + 1 && key_line[k] >= 1 && key_line[k] <= nbytes * 8 &&
						BitGet(after, key_line[k] - 1))
						now++;
				break;
		}
		if (now != value[i])
		{
			value[i] = now;
			moved[nmoved++] = i;
		}
	}
	args[2] = SpiInt8Array(value, n);
	args[3] = PointerGetDatum(Bytea(after, nbytes));
	RunKept(&receipt_values_query, args, NULL, 0);
	if (nmoved == 0)
		return;

	/* the progress of the challenges whose entries moved (entries are in id order) */
	csp = palloc(sizeof(Challenge *) * nmoved);
	e = palloc0(sizeof(Enrolment) * nmoved);
	for (int x = 0; x < nmoved; x++)
	{
		csp[x] = &cs[chal[moved[x]]];
		ids[x] = csp[x]->id;
	}
	ReadEnrolments(customer, ids, nmoved, e, &st);
	for (int x = 0; x < nmoved; x++)
	{
		int			i = moved[x];
		const Challenge *c = csp[x];

		if (!e[x].exists)
			continue;
		e[x].counts = true;
		switch (c->goal)
		{
			case CG_RECEIPTS:
			case CG_SPEND:
			case CG_QUANTITY:
				e[x].progress -= before[i] - value[i];
				break;
			case CG_DISTINCT:
				for (int k = 0; k < nk; k++)
					if (key_of[k] == i + 1 && key_line[k] >= 1 && key_line[k] <= nbytes * 8 &&
						BitGet(alive, key_line[k] - 1) && !BitGet(after, key_line[k] - 1))
						CountKey(&e[x], key[k], -1);
				e[x].progress = e[x].nkeys;
				break;
			case CG_STREAK:
				CountPeriod(&e[x], (int32) Period(c, day), -1);
				e[x].progress = LongestRun(&e[x]);
				break;
			case CG_STEPS:
				StepsRecount(customer, c, &e[x]);
				break;
		}
		e[x].progress = Max(e[x].progress, 0);
	}
	WriteProgress(program_id, csp, e, nmoved, customer, rid, true, &st);
}
