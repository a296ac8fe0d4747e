/*
 * src/commit.c
 *
 * loyalty.commit(receipt jsonb, expected jsonb) returns jsonb: write a
 * receipt as calculate plans it.  The receipt id is claimed first (a
 * replay returns the first answer and writes nothing); the customer's
 * wallets are locked, and the receipt is calculated under the locks; the
 * plan (src/plan.h) then goes straight to the writes: coupon, personal
 * offer and counter uses, the redemption of exactly the lots it chose, the
 * accrual (at once, or queued), the receipt, its lines and its event.  What
 * the customer saw no longer holding is SQLSTATE 40001: calculate again.
 * docs/receipts.md is the contract.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "access.h"
#include "campaigns.h"
#include "catalog.h"
#include "direct.h"
#include "event.h"
#include "fraud.h"
#include "jsonbuild.h"
#include "jsonread.h"
#include "plan.h"
#include "program.h"
#include "tiers.h"
#include "wallet.h"

PG_FUNCTION_INFO_V1(loyalty_commit);
PG_FUNCTION_INFO_V1(loyalty_answer_changes);

#define MAX_RECEIPT_ID 128

static KeptQuery key_query = {
	"INSERT INTO loyalty.receipt_key (program_id, receipt_id, committed_at, digest)"
	" VALUES ($1, $2, pg_catalog.now(), $3) ON CONFLICT DO NOTHING",
	3, {INT8OID, TEXTOID, BYTEAOID}, NULL
};
static KeptQuery replay_query = {
	"SELECT loyalty.receipt_replay($1, $2, $3)",
	3, {INT8OID, TEXTOID, BYTEAOID}, NULL
};
/* What a replay renders the default answer's lines from */
static KeptQuery replay_lines_query = {
	"SELECT t.line_no, t.line_to_pay, t.line_discount, t.line_points_money,"
	"       t.earned_line, t.earned_currency, t.earned_points"
	"  FROM loyalty.receipt_key k"
	"  JOIN loyalty.receipt t ON t.program_id OPERATOR(pg_catalog.=) k.program_id"
	"                        AND t.receipt_id OPERATOR(pg_catalog.=) k.receipt_id"
	"                        AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at"
	" WHERE k.program_id OPERATOR(pg_catalog.=) $1 AND k.receipt_id OPERATOR(pg_catalog.=) $2",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery refuse_query = {
	"SELECT loyalty.refuse_moved($1, $2, $3, $4, $5)",
	5, {JSONBOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}, NULL
};
static KeptQuery coupon_query = {
	"UPDATE loyalty.coupon o"
	"   SET uses = o.uses OPERATOR(pg_catalog.+) 1,"
	"       state = CASE WHEN o.uses OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=)"
	"                         COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END)"
	"                    THEN 'redeemed' ELSE o.state END"
	" WHERE o.program_id OPERATOR(pg_catalog.=) $1"
	"   AND pg_catalog.lower(o.code) OPERATOR(pg_catalog.=) pg_catalog.lower($2)"
	"   AND o.state OPERATOR(pg_catalog.=) 'issued'"
	"   AND (o.uses OPERATOR(pg_catalog.<)"
	"        COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END)"
	"        OR COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END) IS NULL)",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery offer_query = {
	"UPDATE loyalty.personal_offer o SET uses_left = o.uses_left OPERATOR(pg_catalog.-) 1"
	" WHERE o.customer_id OPERATOR(pg_catalog.=) $1 AND o.promotion_id OPERATOR(pg_catalog.=) $2"
	"   AND o.uses_left OPERATOR(pg_catalog.>) 0",
	2, {INT8OID, INT8OID}, NULL
};
static KeptQuery offer_limited_query = {
	"SELECT 1 FROM loyalty.personal_offer o"
	" WHERE o.customer_id OPERATOR(pg_catalog.=) $1 AND o.promotion_id OPERATOR(pg_catalog.=) $2"
	"   AND o.uses_left IS NOT NULL",
	2, {INT8OID, INT8OID}, NULL
};
/* a use counted: per customer and period ($5 its limit), or in all (customer 0) */
static KeptQuery counter_customer_query = {
	"INSERT INTO loyalty.counter AS t (promotion_id, customer_id, period_start, uses, money)"
	" VALUES ($1, $2, $3, 1, $4)"
	" ON CONFLICT (promotion_id, customer_id, period_start) DO UPDATE"
	"   SET uses = t.uses OPERATOR(pg_catalog.+) 1, money = t.money OPERATOR(pg_catalog.+) $4,"
	"       updated_at = pg_catalog.now()"
	" WHERE t.uses OPERATOR(pg_catalog.<) $5",
	5, {INT8OID, INT8OID, DATEOID, INT8OID, INT8OID}, NULL
};
static KeptQuery counter_total_query = {
	"INSERT INTO loyalty.counter AS t (promotion_id, customer_id, period_start, uses, money)"
	" VALUES ($1, 0, '-infinity', 1, $2)"
	" ON CONFLICT (promotion_id, customer_id, period_start) DO UPDATE"
	"   SET uses = t.uses OPERATOR(pg_catalog.+) 1, money = t.money OPERATOR(pg_catalog.+) $2,"
	"       updated_at = pg_catalog.now()"
	" WHERE ($3::bigint IS NULL OR t.uses OPERATOR(pg_catalog.<) $3)"
	"   AND ($4::bigint IS NULL OR t.money OPERATOR(pg_catalog.<) $4)",
	4, {INT8OID, INT8OID, INT8OID, INT8OID}, NULL
};
static KeptQuery counter_reached_query = {
	"SELECT 1 FROM loyalty.counter t"
	" WHERE t.promotion_id OPERATOR(pg_catalog.=) $1 AND t.customer_id OPERATOR(pg_catalog.=) 0"
	"   AND t.period_start OPERATOR(pg_catalog.=) '-infinity' AND t.uses OPERATOR(pg_catalog.>=) $2",
	2, {INT8OID, INT8OID}, NULL
};
static KeptQuery wallet_query = {
	"INSERT INTO loyalty.wallet (customer_id, currency, program_id) VALUES ($1, $2, $3)"
	" ON CONFLICT DO NOTHING",
	3, {INT8OID, TEXTOID, INT8OID}, NULL
};
/* held while the customer is on fraud_hold: never due until released */
static KeptQuery held_query = {
	"INSERT INTO loyalty.accrual_queue (program_id, receipt_id, customer_id, currency, amount,"
	"                                   kind, valid_for, restriction, idempotency_key, release_at,"
	"                                   held_release_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'infinity', $10)",
	10, {INT8OID, TEXTOID, INT8OID, TEXTOID, INT8OID, TEXTOID, INTERVALOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID}, NULL
};
static KeptQuery queue_query = {
	"INSERT INTO loyalty.accrual_queue (program_id, receipt_id, customer_id, currency, amount,"
	"                                   kind, valid_for, restriction, idempotency_key, release_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	10, {INT8OID, TEXTOID, INT8OID, TEXTOID, INT8OID, TEXTOID, INTERVALOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID}, NULL
};
/*
 * The receipt row: its columns and arguments since 0.15 (the lines in
 * typed arrays), to which 0.18 adds the entries commit wrote
 */
#define RECEIPT_COLUMNS \
	"INSERT INTO loyalty.receipt (program_id, receipt_id, committed_at, customer_id, at, store," \
	"                             amount, discount, points_money, to_pay, points_spent, points_earned," \
	"                             accruals, coupons, counters, offers, answer, actor, document," \
	"                             line_no, line_sku, line_qty, line_price, line_amount, line_discount," \
	"                             line_points_money, line_to_pay, line_refunded_qty," \
	"                             discount_line, discount_promotion, discount_amount," \
	"                             paid_line, paid_lot, paid_currency, paid_points, paid_money," \
	"                             earned_line, earned_currency, earned_base, earned_points," \
	"                             earned_by_entry, earned_by_promotion, earned_by_points"
#define RECEIPT_VALUES \
	" VALUES ($1, $2, pg_catalog.now(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15," \
	"         $16, loyalty.actor(), $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29," \
	"         $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41"
#define RECEIPT_TYPES \
	INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, \
	JSONBOID, JSONBOID, JSONBOID, TEXTARRAYOID, JSONBOID, INT8ARRAYOID, JSONBOID, JSONBOID, \
	INT4ARRAYOID, TEXTARRAYOID, 1231 /* numeric[] */, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, \
	INT8ARRAYOID, INT8ARRAYOID, 1231, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, \
	INT4ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, \
	INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, \
	INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID
static KeptQuery receipt_query = {
	RECEIPT_COLUMNS ", entry_currency, entry_version)" RECEIPT_VALUES ", $42, $43)",
	43, {RECEIPT_TYPES, TEXTARRAYOID, INT8ARRAYOID}, NULL
};
/* The schema of 0.15 to 0.17 (no entry_ arrays: commit's entries carry keys) */
static KeptQuery receipt_query_0_17 = {
	RECEIPT_COLUMNS ")" RECEIPT_VALUES ")",
	41, {RECEIPT_TYPES}, NULL
};

/*
 * The schema before 0.15 (lines in the table receipt_line), which this
 * library still writes between its installation and ALTER EXTENSION UPDATE
 */
static KeptQuery receipt_query_0_14 = {
	"INSERT INTO loyalty.receipt (program_id, receipt_id, committed_at, customer_id, at, store,"
	"                             amount, discount, points_money, to_pay, points_spent, points_earned,"
	"                             accruals, coupons, counters, offers, answer, actor, document)"
	" VALUES ($1, $2, pg_catalog.now(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
	"         $16, loyalty.actor(), $17)",
	17, {INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID,
		JSONBOID, JSONBOID, JSONBOID, TEXTARRAYOID, JSONBOID, INT8ARRAYOID, JSONBOID, JSONBOID},
	NULL
};
static KeptQuery lines_query_0_14 = {
	"INSERT INTO loyalty.receipt_line (program_id, receipt_id, committed_at, line, sku, qty, price,"
	"                                  amount, discount, points_money, to_pay, discounts,"
	"                                  points_paid, points_earned)"
	" SELECT $1, $2, pg_catalog.now(), u.*"
	"   FROM ROWS FROM (pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::text[]),"
	"                   pg_catalog.unnest($5::numeric[]), pg_catalog.unnest($6::int8[]),"
	"                   pg_catalog.unnest($7::int8[]), pg_catalog.unnest($8::int8[]),"
	"                   pg_catalog.unnest($9::int8[]), pg_catalog.unnest($10::int8[]),"
	"                   pg_catalog.unnest($11::jsonb[]), pg_catalog.unnest($12::jsonb[]),"
	"                   pg_catalog.unnest($13::jsonb[])) AS u",
	13, {INT8OID, TEXTOID, INT4ARRAYOID, TEXTARRAYOID, 1231 /* numeric[] */, INT8ARRAYOID,
		INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, 3807 /* jsonb[] */,
	3807, 3807}, NULL
};

/* An accrual the receipt makes: regular per currency, then its bonus lots */
typedef struct Accrual
{
	char	   *key;
	int			currency;		/* catalogue index */
	int64		amount;
	const char *kind;
	int32		valid_days;		/* 0: no end */
	const char *restriction;
	int			first;			/* ordinal of its first bonus lot */
} Accrual;

/* A ledger entry the commit wrote, for its answer */
typedef struct Written
{
	const char *currency;
	const char *operation;
	int64		amount;
	int64		version;
} Written;

/* Everything one commit does, as it goes */
typedef struct Commit
{
	ReceiptPlan *plan;
	Catalog    *cat;
	Jsonb	   *doc;
	const char *rid;
	int64		program_id;
	int64		customer;		/* 0: none */
	int			ncoupons;
	const char **coupons;		/* used, as sent */
	int			noffers;
	int64	   *offers;			/* promotion ids */
	JsonBuild	counters;		/* the counters array, open */
	int64	   *spent;			/* per catalogue currency */
	int64	   *earned;
	int			naccruals;
	Accrual    *accruals;
	int			nwritten;
	Written    *written;
	bool		keyed;			/* the schema predates 0.18: entries carry keys */
	bool		queued;			/* the accruals went to the queue */
	bool		held;			/* the customer is on fraud_hold: they wait there */
} Commit;

static Datum
Text(const char *s)
{
	return CStringGetTextDatum(s);
}

/* Run a kept statement, with NULL for each argument whose null flag is 'n' */
static uint64
Run(KeptQuery *q, Datum *values, const char *nulls)
{
	RunKept(q, values, nulls, 0);
	return SPI_processed;
}

/*
 * A use the calculation counted on is gone (a coupon, a personal offer, a
 * limit, a budget): loyalty.refuse_moved tells 40001 from a disagreement of
 * commit and calculate, and raises.
 */
static void pg_attribute_noreturn()
Refuse(Commit *k, const char *coupon, const char *promotion, const char *what)
{
	Datum		values[5] = {JsonbPGetDatum(k->doc), Text(k->rid), coupon ? Text(coupon) : 0,
	promotion ? Text(promotion) : 0, Text(what)};
	char		nulls[6] = "     ";

	nulls[2] = coupon ? ' ' : 'n';
	nulls[3] = promotion ? ' ' : 'n';
	Run(&refuse_query, values, nulls);
	elog(ERROR, "refuse_moved returned");
}

/* The member of a jsonb object, or NULL */
static Jsonb *
Member(Jsonb *j, const char *key, const char *key2)
{
	JsonbValue	v;
	JsonbValue *found;

	if (j == NULL || !JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
		return NULL;
	found = getKeyJsonValueFromContainer(&j->root, key, strlen(key), &v);
	if (found == NULL)
		return NULL;
	j = JsonbValueToJsonb(found);
	return key2 ? Member(j, key2, NULL) : j;
}

static bool
SameJsonb(Jsonb *a, Jsonb *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return compareJsonbContainers(&a->root, &b->root) == 0;
}

/*
 * The parts of an answer that decide money and points: a commit refuses
 * when the answer the till saw differs from its own in any of them.
 */
static const char *const AnswerParts[][2] = {
	{"totals", NULL}, {"lines", NULL}, {"promotions", "applied"},
	{"coupons", NULL}, {"gifts", NULL}, {"bonus_lots", NULL}
};

/* A part of an answer, read in place; false when it has none */
static bool
Part(Jsonb *j, int i, JsonbValue *out)
{
	const char *key = AnswerParts[i][0];
	const char *key2 = AnswerParts[i][1];

	if (j == NULL || !JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j) ||
		!getKeyJsonValueFromContainer(&j->root, key, strlen(key), out))
		return false;
	if (key2 == NULL)
		return true;
	return out->type == jbvBinary && JsonContainerIsObject(out->val.binary.data) &&
		getKeyJsonValueFromContainer(out->val.binary.data, key2, strlen(key2), out);
}

/* Which of the parts differ: a flag per part; returns how many */
static int
AnswerChanges(Jsonb *seen, Jsonb *now, bool *changed)
{
	int			n = 0;

	for (int i = 0; i < (int) lengthof(AnswerParts); i++)
	{
		JsonbValue	a;
		JsonbValue	b;
		bool		has_a = Part(seen, i, &a);
		bool		has_b = Part(now, i, &b);

		if (!has_a || !has_b)
			changed[i] = has_a != has_b;
		else if (a.type == jbvBinary && b.type == jbvBinary)
			changed[i] = compareJsonbContainers(a.val.binary.data, b.val.binary.data) != 0;
		else
			changed[i] = !SameJsonb(JsonbValueToJsonb(&a), JsonbValueToJsonb(&b));
		n += changed[i];
	}
	return n;
}

static const char *
PartName(int i)
{
	return AnswerParts[i][1] ? psprintf("%s.%s", AnswerParts[i][0], AnswerParts[i][1]) : AnswerParts[i][0];
}

/* The answer the till saw must be the one commit calculated now */
static void
CheckExpected(Commit *k, Jsonb *expected, Jsonb *answer)
{
	bool		changed[lengthof(AnswerParts)];
	StringInfoData list;
	Jsonb	   *seen;
	Jsonb	   *now;

	if (AnswerChanges(expected, answer, changed) == 0)
		return;
	initStringInfo(&list);
	for (int i = 0; i < (int) lengthof(AnswerParts); i++)
		if (changed[i])
			appendStringInfo(&list, "%s%s", list.len ? ", " : "", PartName(i));
	seen = Member(expected, "totals", NULL);
	now = Member(answer, "totals", NULL);
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("receipt \"%s\" calculates differently now: %s changed", k->rid, list.data),
			 errdetail("Totals seen: %s; now: %s.",
					   seen ? JsonbToCString(NULL, &seen->root, VARSIZE(seen)) : "",
					   now ? JsonbToCString(NULL, &now->root, VARSIZE(now)) : ""),
			 errhint("A wallet, coupon or limit moved since the calculation: calculate again, show it, and commit that.")));
}

/* answer_changes(seen jsonb, now jsonb) returns text[]: the parts that differ */
Datum
loyalty_answer_changes(PG_FUNCTION_ARGS)
{
	bool		changed[lengthof(AnswerParts)];
	Datum		names[lengthof(AnswerParts)];
	int			n = 0;

	AnswerChanges(PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0),
				  PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1), changed);
	for (int i = 0; i < (int) lengthof(AnswerParts); i++)
		if (changed[i])
			names[n++] = CStringGetTextDatum(PartName(i));
	PG_RETURN_ARRAYTYPE_P(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Coupons: one use each, if still there to use */
static void
UseCoupons(Commit *k)
{
	ReceiptPlan *plan = k->plan;

	k->coupons = palloc(sizeof(char *) * Max(plan->ncoupons, 1));
	for (int i = 0; i < plan->ncoupons; i++)
	{
		Datum		values[2] = {Int64GetDatum(k->program_id), Text(plan->coupons[i].code)};

		if (plan->coupons[i].status != COUPON_ACCEPTED)
			continue;
		if (Run(&coupon_query, values, NULL) == 0)
			Refuse(k, plan->coupons[i].code, NULL,
				   psprintf("coupon \"%s\" was used up", plan->coupons[i].code));
		k->coupons[k->ncoupons++] = plan->coupons[i].code;
	}
}

static int
applied_cmp(const void *a, const void *b)
{
	int			x = ((const PlanApplied *) a)->promo;
	int			y = ((const PlanApplied *) b)->promo;

	return x < y ? -1 : x > y ? 1 : 0;
}

static void
AddCounter(Commit *k, int64 promotion, int64 customer, DateADT start, int64 money)
{
	JbBeginObject(&k->counters, NULL);
	JbInt(&k->counters, "promotion_id", promotion);
	JbInt(&k->counters, "customer_id", customer);
	JbText(&k->counters, "period_start", JsonEncodeDateTime(NULL, DateADTGetDatum(start), DATEOID, NULL));
	JbInt(&k->counters, "money", money);
	JbEndObject(&k->counters);
}

/*
 * Personal offers and usage counters of the promotions applied, in id
 * order.  Money is counted in minor units, as calculate compares it.
 */
static void
UsePromotions(Commit *k)
{
	ReceiptPlan *plan = k->plan;
	PlanApplied *applied = palloc(sizeof(PlanApplied) * Max(plan->napplied, 1));

	memcpy(applied, plan->applied, sizeof(PlanApplied) * plan->napplied);
	qsort(applied, plan->napplied, sizeof(PlanApplied), applied_cmp);	/* the catalogue is in id order */
	k->offers = palloc(sizeof(int64) * Max(plan->napplied, 1));
	JbBeginArray(&k->counters, NULL);
	for (int a = 0; a < plan->napplied; a++)
	{
		CatPromo   *p = &k->cat->promos[applied[a].promo];
		int64		money = applied[a].discount;

		if (p->audience == AUD_PERSONAL)
		{
			Datum		values[2] = {Int64GetDatum(k->customer), Int64GetDatum(p->id)};

			if (Run(&offer_query, values, NULL) > 0)
				k->offers[k->noffers++] = p->id;
			else if (Run(&offer_limited_query, values, NULL) > 0)
				Refuse(k, NULL, p->code,
					   psprintf("the personal offer of promotion \"%s\" was used up", p->code));
		}
		if (p->limit_per_customer > 0)
		{
			DateADT		start = PlanPeriodStart(plan, p->limit_period);
			Datum		values[5] = {Int64GetDatum(p->id), Int64GetDatum(k->customer),
			DateADTGetDatum(start), Int64GetDatum(money), Int64GetDatum(p->limit_per_customer)};

			if (Run(&counter_customer_query, values, NULL) == 0)
				Refuse(k, NULL, p->code,
					   psprintf("customer " INT64_FORMAT " reached the limit of promotion \"%s\"",
								k->customer, p->code));
			AddCounter(k, p->id, k->customer, start, money);
		}
		if (p->limit_total > 0 || p->budget > 0)
		{
			Datum		values[4] = {Int64GetDatum(p->id), Int64GetDatum(money),
			Int64GetDatum(p->limit_total), Int64GetDatum(p->budget)};
			char		nulls[5] = "    ";

			nulls[2] = p->limit_total > 0 ? ' ' : 'n';
			nulls[3] = p->budget > 0 ? ' ' : 'n';
			if (Run(&counter_total_query, values, nulls) == 0)
			{
				Datum		reached[2] = {Int64GetDatum(p->id), Int64GetDatum(p->limit_total)};

				Refuse(k, NULL, p->code,
					   psprintf("promotion \"%s\" %s", p->code,
								p->limit_total > 0 && Run(&counter_reached_query, reached, NULL) > 0 ?
								"reached its limit of uses" : "spent its budget"));
			}
			AddCounter(k, p->id, 0, DATEVAL_NOBEGIN, money);
		}
	}
}

/*
 * A replayed answer stored without its lines (the default answer since
 * 0.19): the lines rendered back from the receipt's line_ and earned_
 * arrays, as commit rendered them.  A currency the catalogue no longer
 * has cannot be rendered; wallets refer to their currency, so it cannot
 * have gone while the receipt's points are in one.
 */
static Jsonb *
ReplayLines(Catalog *cat, int64 program_id, const char *rid, Jsonb *answer)
{
	Datum		values[2] = {Int64GetDatum(program_id), CStringGetTextDatum(rid)};
	HeapTuple	row;
	TupleDesc	desc;
	Datum	   *no,
			   *to_pay,
			   *discount,
			   *points_money,
			   *earned_line,
			   *earned_currency,
			   *earned_points;
	int			n,
				ne;
	PlanLine   *lines;
	JsonBuild	jb = NULL;

	RunKept(&replay_lines_query, values, NULL, 1);
	if (SPI_processed != 1)
		elog(ERROR, "receipt \"%s\" has no row to replay its lines from", rid);
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	n = SpiArrayElements(row, desc, 1, INT4OID, &no);
	if (SpiArrayElements(row, desc, 2, INT8OID, &to_pay) != n ||
		SpiArrayElements(row, desc, 3, INT8OID, &discount) != n ||
		SpiArrayElements(row, desc, 4, INT8OID, &points_money) != n)
		elog(ERROR, "a receipt's line arrays differ in length");
	ne = SpiArrayElements(row, desc, 5, INT4OID, &earned_line);
	if (SpiArrayElements(row, desc, 6, TEXTOID, &earned_currency) != ne ||
		SpiArrayElements(row, desc, 7, INT8OID, &earned_points) != ne)
		elog(ERROR, "a receipt's earned arrays differ in length");

	lines = palloc0(sizeof(PlanLine) * Max(n, 1));
	for (int e = 0; e < ne; e++)
	{
		int32		place = DatumGetInt32(earned_line[e]);

		if (place < 1 || place > n)
			elog(ERROR, "receipt \"%s\": an accrual names line %d of %d", rid, place, n);
		lines[place - 1].nearned++;
	}
	for (int i = 0; i < n; i++)
	{
		lines[i].no = DatumGetInt32(no[i]);
		lines[i].to_pay = DatumGetInt64(to_pay[i]);
		lines[i].discount = DatumGetInt64(discount[i]);
		lines[i].points_money = DatumGetInt64(points_money[i]);
		lines[i].earned = palloc0(sizeof(PlanEarn) * Max(lines[i].nearned, 1));
		lines[i].nearned = 0;
	}
	/* the accruals of each line in the order commit stored them */
	for (int e = 0; e < ne; e++)
	{
		char	   *code = TextDatumGetCString(earned_currency[e]);
		PlanLine   *l = &lines[DatumGetInt32(earned_line[e]) - 1];
		PlanEarn   *pe;

		pe = &l->earned[l->nearned++];
		pe->currency = CatalogCurrencyIndex(cat, code);
		if (pe->currency < 0)
			elog(ERROR, "receipt \"%s\" earned points currency \"%s\", which the programme no longer has",
				 rid, code);
		pe->points = DatumGetInt64(earned_points[e]);
	}

	JbBeginObject(&jb, NULL);
	JbBeginArray(&jb, "lines");
	for (int i = 0; i < n; i++)
		PlanRenderLineSummary(cat, &lines[i], &jb);
	JbEndArray(&jb);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(answer),
											  JsonbPGetDatum(JbFinish(&jb))));
}

/* The answer to store: the default answer's lines are in the line arrays */
static Jsonb *
StoredAnswer(Commit *k, Jsonb *answer)
{
	if (k->plan->explain)
		return answer;
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(answer),
											  CStringGetTextDatum("lines")));
}

/* Catalogue currencies in the order of their codes */
static int *
CurrenciesByCode(Catalog *cat)
{
	int		   *order = palloc(sizeof(int) * Max(cat->ncurrencies, 1));

	for (int i = 0; i < cat->ncurrencies; i++)
	{
		int			j = i;

		while (j > 0 && strcmp(cat->currencies[order[j - 1]].code, cat->currencies[i].code) > 0)
		{
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	return order;
}

static void
Wrote(Commit *k, const char *currency, const char *operation, int64 amount, int64 version)
{
	k->written[k->nwritten++] = (Written) {currency, operation, amount, version};
}

/* Points spent: exactly the lots calculate chose, per currency */
static void
SpendPoints(Commit *k, const int *by_code)
{
	ReceiptPlan *plan = k->plan;
	int64	   *per_lot = palloc0(sizeof(int64) * Max(plan->nlots, 1));

	for (int i = 0; i < plan->nlines; i++)
		for (int p = 0; p < plan->lines[i].npaid; p++)
			per_lot[plan->lines[i].paid[p].lot] += plan->lines[i].paid[p].points;
	for (int x = 0; x < k->cat->ncurrencies; x++)
	{
		int			cur = by_code[x];
		const char *code = k->cat->currencies[cur].code;
		int64	   *ids = palloc(sizeof(int64) * Max(plan->nlots, 1));
		int64	   *amounts = palloc(sizeof(int64) * Max(plan->nlots, 1));
		int			n = 0;
		EntryResult result;

		/* by lot id */
		for (int l = 0; l < plan->nlots; l++)
		{
			int			j;

			if (plan->lots[l].currency != cur || per_lot[l] <= 0)
				continue;
			for (j = n; j > 0 && ids[j - 1] > plan->lots[l].id; j--)
			{
				ids[j] = ids[j - 1];
				amounts[j] = amounts[j - 1];
			}
			ids[j] = plan->lots[l].id;
			amounts[j] = per_lot[l];
			n++;
		}
		if (n == 0)
			continue;
		EntryResultInit(&result, NULL);
		ReceiptSpendLots(k->customer, code, n, ids, amounts, k->rid,
						 k->keyed ? psprintf("loyalty:redeem:%s:%s", k->rid, code) : NULL,
						 &result);
		for (int i = 0; i < n; i++)
			k->spent[cur] += amounts[i];
		Wrote(k, code, "redeem", -k->spent[cur], result.version);
	}
}

/*
 * Points earned: the regular accrual per currency (what the receipt earns
 * less its bonus lots), then the bonus lots, those alike (currency,
 * validity, restriction) as one, each numbered in that order.
 */
static void
PlanAccruals(Commit *k, const int *by_code)
{
	ReceiptPlan *plan = k->plan;
	Catalog    *cat = k->cat;
	int64	   *bonus = palloc0(sizeof(int64) * Max(cat->ncurrencies, 1));
	Accrual    *lots = palloc0(sizeof(Accrual) * Max(plan->nbonus, 1));
	int			nlots = 0;

	k->accruals = palloc0(sizeof(Accrual) * (cat->ncurrencies + plan->nbonus + 1));
	if (k->customer == 0)
		return;
	for (int b = 0; b < plan->nbonus; b++)
	{
		const Benefit *ben = &cat->promos[plan->bonus[b]].benefit;
		int			g;

		bonus[ben->currency_index] += ben->points;
		for (g = 0; g < nlots; g++)
			if (lots[g].currency == ben->currency_index &&
				lots[g].valid_days == Max(ben->valid_days, 0) &&
				((lots[g].restriction == NULL && ben->restriction == NULL) ||
				 (lots[g].restriction && ben->restriction &&
				  strcmp(lots[g].restriction, ben->restriction) == 0)))
				break;
		if (g == nlots)
			lots[nlots++] = (Accrual) {NULL, ben->currency_index, 0, "promo",
				Max(ben->valid_days, 0), ben->restriction, b};
		lots[g].amount += ben->points;
	}
	for (int x = 0; x < cat->ncurrencies; x++)
	{
		int			cur = by_code[x];

		if (plan->points_earned[cur] - bonus[cur] > 0)
			k->accruals[k->naccruals++] = (Accrual) {NULL, cur, plan->points_earned[cur] - bonus[cur],
				"regular", 0, NULL, 0};
	}
	for (int x = 0; x < cat->ncurrencies; x++)
		for (int g = 0; g < nlots; g++)	/* in order of their first lot */
			if (lots[g].currency == by_code[x] && lots[g].amount > 0)
				k->accruals[k->naccruals++] = lots[g];
	for (int a = 0; a < k->naccruals; a++)
	{
		k->accruals[a].key = psprintf("loyalty:accrual:%s:%d", k->rid, a + 1);
		k->earned[k->accruals[a].currency] += k->accruals[a].amount;
	}
}

static Interval *
Days(int32 days)
{
	Interval   *i = palloc0(sizeof(Interval));

	i->day = days;
	return i;
}

/*
 * The accruals: queued for the programme's delay, or lots at once; held in
 * the queue while the customer is on fraud_hold (release_at then stays 0)
 */
static const char *
Accrue(Commit *k, Interval *delay, TimestampTz *release_at)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Catalog    *cat = k->cat;

	if (k->naccruals == 0)
		return "none";
	if (delay->month != 0 || delay->day != 0 || delay->time != 0 || k->held)
	{
		*release_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
															  TimestampTzGetDatum(now),
															  IntervalPGetDatum(delay)));
		/* the wallets exist before the queue names them */
		for (int a = 0; a < k->naccruals; a++)
		{
			Datum		values[3] = {Int64GetDatum(k->customer),
			Text(cat->currencies[k->accruals[a].currency].code), Int64GetDatum(k->program_id)};

			Run(&wallet_query, values, NULL);
		}
		for (int a = 0; a < k->naccruals; a++)
		{
			Accrual    *x = &k->accruals[a];
			Datum		values[10] = {Int64GetDatum(k->program_id), Text(k->rid),
				Int64GetDatum(k->customer), Text(cat->currencies[x->currency].code),
				Int64GetDatum(x->amount), Text(x->kind),
				x->valid_days > 0 ? IntervalPGetDatum(Days(x->valid_days)) : 0,
				x->restriction ? Text(x->restriction) : 0, Text(x->key),
			TimestampTzGetDatum(*release_at)};
			char		nulls[11] = "          ";

			nulls[6] = x->valid_days > 0 ? ' ' : 'n';
			nulls[7] = x->restriction ? ' ' : 'n';
			Run(k->held ? &held_query : &queue_query, values, nulls);
		}
		k->queued = true;
		if (k->held)
		{
			*release_at = 0;
			return "held";
		}
		return "queued";
	}
	for (int a = 0; a < k->naccruals; a++)
	{
		Accrual    *x = &k->accruals[a];
		NewLot		lot = {0};
		EntryResult result;

		lot.amount = x->amount;
		lot.valid_from = now;
		lot.has_valid_to = x->valid_days > 0;
		if (lot.has_valid_to)
			lot.valid_to = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
																   TimestampTzGetDatum(now),
																   IntervalPGetDatum(Days(x->valid_days))));
		lot.kind = x->kind;
		lot.restriction = x->restriction;
		EntryResultInit(&result, NULL);
		LedgerAccrue(k->customer, cat->currencies[x->currency].code, &lot, k->rid,
					 k->keyed ? x->key : NULL, NULL, &result);
		Wrote(k, cat->currencies[x->currency].code, "accrue", x->amount, result.version);
	}
	return "released";
}

/* Points per currency as an object of integers (minor units) */
static void
JbPerCurrency(JsonBuild *jb, const char *key, Catalog *cat, const int *by_code, const int64 *points)
{
	JbBeginObject(jb, key);
	for (int x = 0; x < cat->ncurrencies; x++)
		if (points[by_code[x]] > 0)
			JbInt(jb, cat->currencies[by_code[x]].code, points[by_code[x]]);
	JbEndObject(jb);
}

static Jsonb *
PerCurrency(Catalog *cat, const int *by_code, const int64 *points)
{
	JsonBuild	jb = NULL;

	JbBeginObject(&jb, NULL);
	for (int x = 0; x < cat->ncurrencies; x++)
		if (points[by_code[x]] > 0)
			JbInt(&jb, cat->currencies[by_code[x]].code, points[by_code[x]]);
	return JbFinish(&jb);
}

static Jsonb *
AccrualsJsonb(Commit *k)
{
	JsonBuild	jb = NULL;

	JbBeginArray(&jb, NULL);
	for (int a = 0; a < k->naccruals; a++)
	{
		Accrual    *x = &k->accruals[a];

		JbBeginObject(&jb, NULL);
		if (k->queued || k->keyed)
			JbText(&jb, "key", x->key);
		else
			JbNull(&jb, "key");
		JbText(&jb, "currency", k->cat->currencies[x->currency].code);
		JbInt(&jb, "amount", x->amount);
		JbText(&jb, "kind", x->kind);
		if (x->valid_days > 0)
			JbText(&jb, "valid_for", DatumGetCString(DirectFunctionCall1(interval_out,
																		 IntervalPGetDatum(Days(x->valid_days)))));
		else
			JbNull(&jb, "valid_for");
		if (x->restriction)
			JbText(&jb, "restriction", x->restriction);
		else
			JbNull(&jb, "restriction");
		JbEndObject(&jb);
	}
	return JbFinishArray(&jb);
}

/*
 * The receipt's lines as the receipt row's typed arrays (values[0..23], in
 * the order of the columns line_no .. earned_by_points): per line, then per
 * discount, per payment with points, per accrual of a line in a currency and
 * per promotion's part of one, each naming its line (or accrual) by its
 * 1-based place.
 */
#define LINE_COLUMNS 24
static void
LineArrays(Commit *k, Datum *values)
{
	ReceiptPlan *plan = k->plan;
	Catalog    *cat = k->cat;
	int			n = plan->nlines;
	int			nd = 0,
				np = 0,
				ne = 0,
				nb = 0;
	Datum	   *line[9];
	bool	   *skus_null = palloc0(sizeof(bool) * Max(n, 1));
	Datum	   *disc[3];
	Datum	   *paid[5];
	Datum	   *earn[4];
	Datum	   *by[3];
	int			d = 0,
				p = 0,
				e = 0,
				b = 0;
	Datum		zero = NumericGetDatum(NumericFromScaled(0, 0));

	for (int i = 0; i < n; i++)
	{
		PlanLine   *l = &plan->lines[i];

		nd += l->ndiscounts;
		np += l->npaid;
		ne += l->nearned;
		for (int x = 0; x < l->nearned; x++)
			nb += l->earned[x].npromos;
	}
	for (int c = 0; c < 9; c++)
		line[c] = palloc(sizeof(Datum) * Max(n, 1));
	for (int c = 0; c < 3; c++)
		disc[c] = palloc(sizeof(Datum) * Max(nd, 1));
	for (int c = 0; c < 5; c++)
		paid[c] = palloc(sizeof(Datum) * Max(np, 1));
	for (int c = 0; c < 4; c++)
		earn[c] = palloc(sizeof(Datum) * Max(ne, 1));
	for (int c = 0; c < 3; c++)
		by[c] = palloc(sizeof(Datum) * Max(nb, 1));

	for (int i = 0; i < n; i++)
	{
		PlanLine   *l = &plan->lines[i];

		line[0][i] = Int32GetDatum(l->no);
		skus_null[i] = l->sku == NULL;
		line[1][i] = l->sku ? Text(l->sku) : 0;
		line[2][i] = DirectFunctionCall1(numeric_trim_scale,
										 NumericGetDatum(NumericFromScaled(l->qty_milli, 3)));
		line[3][i] = Int64GetDatum(l->price);
		line[4][i] = Int64GetDatum(l->amount);
		line[5][i] = Int64GetDatum(l->discount);
		line[6][i] = Int64GetDatum(l->points_money);
		line[7][i] = Int64GetDatum(l->to_pay);
		line[8][i] = zero;
		for (int x = 0; x < l->ndiscounts; x++, d++)
		{
			disc[0][d] = Int32GetDatum(i + 1);
			disc[1][d] = Int64GetDatum(cat->promos[l->discounts[x].promo].id);
			disc[2][d] = Int64GetDatum(l->discounts[x].amount);
		}
		for (int x = 0; x < l->npaid; x++, p++)
		{
			PlanPaid   *pp = &l->paid[x];

			paid[0][p] = Int32GetDatum(i + 1);
			paid[1][p] = Int64GetDatum(plan->lots[pp->lot].id);
			paid[2][p] = Text(cat->currencies[plan->lots[pp->lot].currency].code);
			paid[3][p] = Int64GetDatum(pp->points);
			paid[4][p] = Int64GetDatum(pp->money);
		}
		for (int x = 0; x < l->nearned; x++, e++)
		{
			PlanEarn   *pe = &l->earned[x];

			earn[0][e] = Int32GetDatum(i + 1);
			earn[1][e] = Text(cat->currencies[pe->currency].code);
			earn[2][e] = Int64GetDatum(pe->base);
			earn[3][e] = Int64GetDatum(pe->points);
			for (int y = 0; y < pe->npromos; y++, b++)
			{
				by[0][b] = Int32GetDatum(e + 1);
				by[1][b] = Int64GetDatum(cat->promos[pe->promos[y].promo].id);
				by[2][b] = Int64GetDatum(pe->promos[y].points);
			}
		}
	}
	values[0] = SpiArray(INT4OID, line[0], NULL, n);
	values[1] = SpiArray(TEXTOID, line[1], skus_null, n);
	values[2] = SpiArray(NUMERICOID, line[2], NULL, n);
	for (int c = 3; c < 8; c++)
		values[c] = SpiArray(INT8OID, line[c], NULL, n);
	values[8] = SpiArray(NUMERICOID, line[8], NULL, n);
	values[9] = SpiArray(INT4OID, disc[0], NULL, nd);
	values[10] = SpiArray(INT8OID, disc[1], NULL, nd);
	values[11] = SpiArray(INT8OID, disc[2], NULL, nd);
	values[12] = SpiArray(INT4OID, paid[0], NULL, np);
	values[13] = SpiArray(INT8OID, paid[1], NULL, np);
	values[14] = SpiArray(TEXTOID, paid[2], NULL, np);
	values[15] = SpiArray(INT8OID, paid[3], NULL, np);
	values[16] = SpiArray(INT8OID, paid[4], NULL, np);
	values[17] = SpiArray(INT4OID, earn[0], NULL, ne);
	values[18] = SpiArray(TEXTOID, earn[1], NULL, ne);
	values[19] = SpiArray(INT8OID, earn[2], NULL, ne);
	values[20] = SpiArray(INT8OID, earn[3], NULL, ne);
	values[21] = SpiArray(INT4OID, by[0], NULL, nb);
	values[22] = SpiArray(INT8OID, by[1], NULL, nb);
	values[23] = SpiArray(INT8OID, by[2], NULL, nb);
}

/* The receipt's lines in the table of the schema before 0.15, in one statement */
static void
InsertLines_0_14(Commit *k)
{
	ReceiptPlan *plan = k->plan;
	int			n = plan->nlines;
	Datum		arrays[LINE_COLUMNS];
	Datum		values[13];
	static const PlanLinePart parts[3] = {LINE_DISCOUNTS, LINE_POINTS_PAID, LINE_POINTS_EARNED};

	/* line_no .. line_to_pay, as the arrays of 0.15 have them */
	LineArrays(k, arrays);
	values[0] = Int64GetDatum(k->program_id);
	values[1] = Text(k->rid);
	memcpy(values + 2, arrays, sizeof(Datum) * 8);
	/* each line's discounts, lots paid and points earned as jsonb */
	for (int p = 0; p < 3; p++)
	{
		Datum	   *parts_of_lines = palloc(sizeof(Datum) * Max(n, 1));

		for (int i = 0; i < n; i++)
		{
			JsonBuild	jb = NULL;

			JbBeginArray(&jb, NULL);
			PlanRenderLine(plan, i, parts[p], &jb);
			parts_of_lines[i] = JsonbPGetDatum(JbFinishArray(&jb));
		}
		values[10 + p] = SpiArray(JSONBOID, parts_of_lines, NULL, n);
	}
	Run(&lines_query_0_14, values, NULL);
}

/* The event of the commit, in the outbox */
static void
AppendEvent(Commit *k, const char *store, const char *accrual, bool has_release, TimestampTz release_at)
{
	JsonBuild	jb = NULL;
	Jsonb	   *payload;

	JbBeginObject(&jb, NULL);
	JbText(&jb, "receipt_id", k->rid);
	if (store)
		JbText(&jb, "store", store);
	else
		JbNull(&jb, "store");
	JbTimestamp(&jb, "at", k->plan->at);
	JbTimestamp(&jb, "committed_at", GetCurrentTransactionStartTimestamp());
	PlanRenderTotals(k->plan, &jb);
	JbText(&jb, "accrual", accrual);
	if (has_release)
		JbTimestamp(&jb, "release_at", release_at);
	else
		JbNull(&jb, "release_at");
	JbBeginArray(&jb, "coupons");
	for (int i = 0; i < k->ncoupons; i++)
		JbText(&jb, NULL, k->coupons[i]);
	JbEndArray(&jb);
	payload = JbFinish(&jb);
	DirectBegin();
	EventAppend(k->program_id, "receipt_committed", k->customer, payload,
				GetCurrentTransactionStartTimestamp());
	DirectEnd();
}

/*
 * The fraud rules' check of the receipt (its wallets locked; its points
 * spent as calculated, so that a hold it trips leaves them spent): a refuse
 * rule crossed is an error, and nothing stays written; the accruals of a
 * customer on fraud_hold, before or because of it, are held in the queue.
 */
static void
CheckFraud(Commit *k, Jsonb *doc)
{
	ReceiptPlan *plan = k->plan;

	if (FraudAnyRule(k->cat, FO_COMMIT))
	{
		FraudOp		op;

		memset(&op, 0, sizeof(op));
		op.kind = FO_COMMIT;
		op.reference = k->rid;
		op.customer = k->customer;
		op.store = plan->store;
		op.at = plan->at;
		op.plan = plan;
		op.ident_kind = plan->ident_kind;
		op.ident_value = plan->ident_value;
		if (plan->ident_kind)
			op.subject[FS_IDENTIFIER] = psprintf("%s:%s", plan->ident_kind, plan->ident_value);
		op.subject[FS_STORE] = plan->store;
		op.subject[FS_DEVICE] = JrMemberString(doc, "device");
		op.currency = -1;
		k->held = FraudCheck(k->cat, &op);
	}
	if (k->customer && plan->status && strcmp(plan->status, "fraud_hold") == 0)
		k->held = true;
	if (k->held && !FraudQueueHolds())
		k->held = false;		/* the schema before 0.20 cannot hold them */
	/* as the customer is now, under a lock that a release waits for */
	if (k->held)
		k->held = FraudStillHeld(k->customer);
}

static bytea *
Digest(Jsonb *doc)
{
	char	   *text = JsonbToCString(NULL, &doc->root, VARSIZE(doc));
	char	   *utf8 = pg_server_to_any(text, strlen(text), PG_UTF8);
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	bytea	   *digest = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) utf8, strlen(utf8)) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(digest), PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute the receipt's digest: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	SET_VARSIZE(digest, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return digest;
}

Datum
loyalty_commit(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	Jsonb	   *doc;
	Jsonb	   *expected = NULL;
	JsonbValue	v;
	char	   *pcode;
	LoyaltyProgram program;
	Commit		k;
	bytea	   *digest;
	bool		isnull;
	int64		customer = 0;
	int		   *by_code;
	const char *accrual;
	TimestampTz release_at = 0;
	bool		lines_in_row;
	JsonBuild	jb = NULL;
	Jsonb	   *result;
	char	   *store;
	Catalog    *cat;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("receipt must not be null")));
	doc = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("receipt must be a JSON object")));
	if (!PG_ARGISNULL(1))
	{
		expected = PG_GETARG_JSONB_P(1);
		if (!JB_ROOT_IS_OBJECT(expected) || JB_ROOT_IS_SCALAR(expected))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("expected must be the JSON object calculate returned")));
	}
	if (!getKeyJsonValueFromContainer(&doc->root, "program", 7, &v) || v.type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("receipt field \"program\" is missing or not a string")));
	pcode = pnstrdup(v.val.string.val, v.val.string.len);

	memset(&k, 0, sizeof(k));
	k.doc = doc;
	SPI_connect();
	/* the programme's compiled catalogue, which the calculation below reads too */
	cat = CatalogGet(pcode);
	RequireProgram(cat->program_id, "programme \"%s\"", pcode);
	program = cat->program;
	k.program_id = program.id;
	if (!getKeyJsonValueFromContainer(&doc->root, "receipt_id", 10, &v) || v.type != jbvString ||
		v.val.string.len == 0 ||
		pg_mbstrlen_with_len(v.val.string.val, v.val.string.len) > MAX_RECEIPT_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("receipt field \"receipt_id\" must be a string of 1 to 128 characters to commit"),
				 errhint("The receipt id makes a commit safe to repeat: send the same id again when the outcome is unknown.")));
	k.rid = pnstrdup(v.val.string.val, v.val.string.len);

	/*
	 * Claim the id.  A transaction committing the same id is waited for; if
	 * it committed, this is a replay.
	 */
	digest = Digest(doc);
	{
		Datum		values[3] = {Int64GetDatum(k.program_id), Text(k.rid), PointerGetDatum(digest)};

		if (Run(&key_query, values, NULL) == 0)
		{
			Jsonb	   *replayed;

			RunKept(&replay_query, values, NULL, 1);
			/* a copy: the next query frees the row it points into */
			replayed = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
														 1, &isnull));
			if (!JrKey(&replayed->root, "lines", &v))
				replayed = ReplayLines(cat, k.program_id, k.rid, replayed);
			result = JbCopy(callcxt, replayed);
			SPI_finish();
			PG_RETURN_JSONB_P(result);
		}
	}
	/*
	 * Lock the customer's wallets, then calculate with what they hold now:
	 * the calculation reads with a snapshot taken after the locks, so that
	 * it sees what they waited for.
	 */
	if (PlanFindCustomer(doc, &program, &customer))
		ReceiptLockWallets(customer);
	PushActiveSnapshot(GetTransactionSnapshot());
	k.plan = PlanCalculate(doc, NULL, false);
	PopActiveSnapshot();
	k.cat = k.plan->cat;
	k.customer = k.plan->found ? k.plan->customer_id : 0;
	if (k.customer != customer)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("receipt \"%s\": the customer's identifier moved while committing", k.rid),
				 errhint("Calculate the receipt again.")));

	by_code = CurrenciesByCode(k.cat);
	k.spent = palloc0(sizeof(int64) * Max(k.cat->ncurrencies, 1));
	k.earned = palloc0(sizeof(int64) * Max(k.cat->ncurrencies, 1));
	k.written = palloc(sizeof(Written) * (2 * k.cat->ncurrencies + k.plan->nbonus + 1));
	/*
	 * The schema the receipt goes into: its lines in the row since 0.15,
	 * commit's ledger entries named there (and carrying no keys) since 0.18
	 */
	lines_in_row = ReceiptHasColumn("line_no");
	k.keyed = !ReceiptNamesEntries();
	UseCoupons(&k);
	UsePromotions(&k);
	SpendPoints(&k, by_code);
	/* after the spending the till showed, before the accrual it may hold */
	CheckFraud(&k, doc);
	PlanAccruals(&k, by_code);
	accrual = Accrue(&k, &k.cat->accrual_delay, &release_at);

	/*
	 * The answer, with what the commit did; the till must have seen the same
	 * (or nothing of this stands: an error rolls every write back)
	 */
	JbBeginObject(&jb, NULL);
	PlanRender(k.plan, &jb);
	JbBeginObject(&jb, "commit");
	JbText(&jb, "status", "committed");
	JbBool(&jb, "replayed", false);
	JbTimestamp(&jb, "committed_at", GetCurrentTransactionStartTimestamp());
	JbText(&jb, "accrual", accrual);
	if (release_at != 0)
		JbTimestamp(&jb, "release_at", release_at);
	else
		JbNull(&jb, "release_at");
	JbPerCurrency(&jb, "points_spent", k.cat, by_code, k.spent);
	JbPerCurrency(&jb, "points_earned", k.cat, by_code, k.earned);
	JbBeginArray(&jb, "ledger");
	for (int w = 0; w < k.nwritten; w++)
	{
		JbBeginObject(&jb, NULL);
		JbText(&jb, "currency", k.written[w].currency);
		JbText(&jb, "operation", k.written[w].operation);
		JbInt(&jb, "amount", k.written[w].amount);
		JbInt(&jb, "version", k.written[w].version);
		JbEndObject(&jb);
	}
	JbEndArray(&jb);
	JbEndObject(&jb);
	result = JbFinish(&jb);
	if (expected)
		CheckExpected(&k, expected, result);

	store = JrMemberString(doc, "store");
	{
		Datum		values[17 + LINE_COLUMNS + 2];
		char		nulls[17 + LINE_COLUMNS + 2 + 1];

		memset(nulls, ' ', sizeof(nulls) - 1);
		nulls[sizeof(nulls) - 1] = '\0';

		values[0] = Int64GetDatum(k.program_id);
		values[1] = Text(k.rid);
		values[2] = Int64GetDatum(k.customer);
		nulls[2] = k.customer ? ' ' : 'n';
		values[3] = TimestampTzGetDatum(k.plan->at);
		values[4] = store ? Text(store) : 0;
		nulls[4] = store ? ' ' : 'n';
		values[5] = Int64GetDatum(k.plan->amount);
		values[6] = Int64GetDatum(k.plan->discount);
		values[7] = Int64GetDatum(k.plan->points_money);
		values[8] = Int64GetDatum(k.plan->to_pay);
		values[9] = JsonbPGetDatum(PerCurrency(k.cat, by_code, k.spent));
		values[10] = JsonbPGetDatum(PerCurrency(k.cat, by_code, k.earned));
		values[11] = JsonbPGetDatum(AccrualsJsonb(&k));
		values[12] = SpiTextArray(k.coupons, k.ncoupons);
		values[13] = JsonbPGetDatum(JbFinishArray(&k.counters));
		values[14] = SpiInt8Array(k.offers, k.noffers);
		values[15] = JsonbPGetDatum(lines_in_row ? StoredAnswer(&k, result) : result);
		values[16] = JsonbPGetDatum(doc);
		if (!lines_in_row)
			Run(&receipt_query_0_14, values, nulls);
		else if (k.keyed)
		{
			LineArrays(&k, values + 17);
			Run(&receipt_query_0_17, values, nulls);
		}
		else
		{
			const char **currencies = palloc(sizeof(char *) * Max(k.nwritten, 1));
			int64	   *versions = palloc(sizeof(int64) * Max(k.nwritten, 1));

			for (int w = 0; w < k.nwritten; w++)
			{
				currencies[w] = k.written[w].currency;
				versions[w] = k.written[w].version;
			}
			LineArrays(&k, values + 17);
			values[17 + LINE_COLUMNS] = SpiTextArray(currencies, k.nwritten);
			values[17 + LINE_COLUMNS + 1] = SpiInt8Array(versions, k.nwritten);
			Run(&receipt_query, values, nulls);
		}
	}
	AppendEvent(&k, store, accrual, release_at != 0, release_at);
	if (k.customer)
	{
		TierLift(CatalogTiers(k.cat), k.program_id, k.customer, k.rid);
		CampaignCommit(k.cat, k.plan, k.rid);
	}
	if (!lines_in_row)
		InsertLines_0_14(&k);

	result = JbCopy(callcxt, result);
	PlanFree(k.plan);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}
