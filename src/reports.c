/*
 * src/reports.c
 *
 * promotion_day(program_id, day): what each promotion gave on one day, the
 * rows of the view promotion_performance.  The figures live in the jsonb of
 * each receipt line (its discounts by promotion, its points by promotion),
 * some tens of thousands of lines a day in a large chain: expanding them
 * with SQL functions costs tens of microseconds a line, reading them here
 * costs one or two.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "access.h"
#include "jsonread.h"
#include "program.h"

PG_FUNCTION_INFO_V1(loyalty_promotion_day);

#define CODE_MAX 64				/* promotion codes: ^[A-Za-z0-9_-]{1,64}$ */
#define POINTS_EXPONENT 6		/* points are added up in millionths */
#define FETCH 1000

/* What one promotion gave */
typedef struct PromoDay
{
	char		code[CODE_MAX + 1];	/* hash key */
	uint32		no;				/* its number among the day's promotions */
	int64		receipts;
	int64		lines;
	double		discount;		/* in minor units of money */
	double		points;			/* in millionths of a point */
	double		points_money;	/* in minor units of money */
	int64		last_line;		/* the line last counted (its ordinal in the scan) */
} PromoDay;

/* A receipt id, as a key */
typedef struct ReceiptKey
{
	char		id[129];
} ReceiptKey;

/*
 * A receipt a promotion was counted on: the promotion's number and a 64-bit
 * hash of the receipt id (two ids of a day share one with odds of about
 * 10^-10, which would count their receipts once)
 */
typedef struct CountedKey
{
	uint32		no;
	uint64		receipt;
} CountedKey;

/* The state of one call */
typedef struct DayScan
{
	HTAB	   *promos;
	HTAB	   *counted;
	uint32		npromos;
} DayScan;

static KeptQuery exponent_query = {
	"SELECT money_exponent::int4 FROM loyalty.program WHERE id = $1",
	1, {INT8OID}, NULL
};
static KeptQuery cancelled_query = {
	"SELECT receipt_id FROM loyalty.receipt"
	" WHERE program_id = $1 AND committed_at >= $2 AND committed_at < $3 AND status = 'cancelled'",
	3, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID}, NULL
};

/* The entry of promotion code, created at zero if new */
static PromoDay *
Promo(DayScan *scan, const char *code, int len)
{
	char		key[CODE_MAX + 1];
	bool		found;
	PromoDay   *p;

	if (len > CODE_MAX)
		len = CODE_MAX;
	memset(key, 0, sizeof(key));
	memcpy(key, code, len);
	p = hash_search(scan->promos, key, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) p) + sizeof(p->code), 0, sizeof(PromoDay) - sizeof(p->code));
		p->no = scan->npromos++;
		p->last_line = -1;
	}
	return p;
}

/*
 * Count the line, its receipt and the money paid with points on it for the
 * promotion, once each
 */
static void
CountLine(DayScan *scan, PromoDay *p, uint64 receipt, int64 ordinal, double points_money)
{
	CountedKey	key;
	bool		found;

	if (p->last_line == ordinal)
		return;
	p->lines++;
	p->points_money += points_money;
	p->last_line = ordinal;
	memset(&key, 0, sizeof(key));
	key.no = p->no;
	key.receipt = receipt;
	hash_search(scan->counted, &key, HASH_ENTER, &found);
	if (!found)
		p->receipts++;
}

/* A jsonb number as minor units of exponent; 0 if it is not a number that fits */
static int64
Minor(const JsonbValue *v, int exponent)
{
	int64		out;

	if (v->type != jbvNumeric || ScaledFromNumeric(v->val.numeric, exponent, &out) != SCALED_OK)
		return 0;
	return out;
}

/*
 * Add one line: its discounts ([{"promotion", "amount"}]) and the points of
 * its accrual by promotion ([{"by_promotion": {code: points}}]), scaled by
 * the share kept after returns.
 */
static void
AddLine(DayScan *scan, uint64 receipt, int64 ordinal, Jsonb *discounts, Jsonb *earned,
		double kept, double points_money, int money_exponent)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	it = JsonbIteratorInit(&discounts->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue	code;
		JsonbValue	amount;
		PromoDay   *p;

		if (tok != WJB_ELEM || v.type != jbvBinary ||
			!JrKey(v.val.binary.data, "promotion", &code) || code.type != jbvString ||
			!JrKey(v.val.binary.data, "amount", &amount))
			continue;
		p = Promo(scan, code.val.string.val, code.val.string.len);
		p->discount += kept * (double) Minor(&amount, money_exponent);
		CountLine(scan, p, receipt, ordinal, kept * points_money);
	}
	it = JsonbIteratorInit(&earned->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue	by;
		JsonbIterator *bit;
		JsonbValue	k;
		JsonbValue	pts;

		if (tok != WJB_ELEM || v.type != jbvBinary ||
			!JrKey(v.val.binary.data, "by_promotion", &by) || by.type != jbvBinary)
			continue;
		bit = JsonbIteratorInit(by.val.binary.data);
		while ((tok = JsonbIteratorNext(&bit, &k, true)) != WJB_DONE)
		{
			PromoDay   *p;

			if (tok != WJB_KEY)
				continue;
			if (JsonbIteratorNext(&bit, &pts, true) != WJB_VALUE)
				break;
			p = Promo(scan, k.val.string.val, k.val.string.len);
			p->points += kept * (double) Minor(&pts, POINTS_EXPONENT);
			CountLine(scan, p, receipt, ordinal, kept * points_money);
		}
	}
}

/* A double of minor units as a numeric of major units, rounded to them */
static Datum
Major(double minor, int exponent)
{
	return NumericGetDatum(NumericFromScaled((int64) llround(minor), exponent));
}

/*
 * promotion_day(program_id bigint, day date) returns table (promotion,
 * receipts, lines, discount, points_issued, points_money): the receipts
 * committed that day (session time zone) and not cancelled
 */
Datum
loyalty_promotion_day(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		program_id;
	DateADT		day;
	Datum		args[3];
	HASHCTL		ctl;
	DayScan		scan;
	HTAB	   *cancelled;
	MemoryContext rows;
	MemoryContext old;
	int			money_exponent;
	bool		isnull;
	Portal		portal;
	int64		ordinal = 0;
	HASH_SEQ_STATUS seq;
	PromoDay   *p;
	static SPIPlanPtr lines_plan = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("program_id and day must not be null")));
	program_id = PG_GETARG_INT64(0);
	day = PG_GETARG_DATEADT(1);
	if (DATE_NOT_FINITE(day))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("day must be a finite date")));
	RequireProgram(program_id, "programme " INT64_FORMAT, program_id);
	InitMaterializedSRF(fcinfo, 0);

	args[0] = Int64GetDatum(program_id);
	args[1] = DirectFunctionCall1(date_timestamptz, DateADTGetDatum(day));
	args[2] = DirectFunctionCall1(date_timestamptz, DateADTGetDatum(day + 1));

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = CODE_MAX + 1;
	ctl.entrysize = sizeof(PromoDay);
	ctl.hcxt = CurrentMemoryContext;
	scan.promos = hash_create("loyalty promotion_day", 256, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	scan.npromos = 0;
	ctl.keysize = sizeof(CountedKey);
	ctl.entrysize = sizeof(CountedKey);
	scan.counted = hash_create("loyalty promotion_day receipts", 4096, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(((ReceiptKey *) 0)->id);
	ctl.entrysize = sizeof(ReceiptKey);
	cancelled = hash_create("loyalty promotion_day cancelled", 256, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	SPI_connect();
	RunKept(&exponent_query, args, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("programme " INT64_FORMAT " does not exist", program_id)));
	money_exponent = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/* the day's cancelled receipts, whose lines count for nothing */
	RunKept(&cancelled_query, args, NULL, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char		key[129] = {0};

		text_to_cstring_buffer(DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
															  1, &isnull)), key, sizeof(key));
		hash_search(cancelled, key, HASH_ENTER, NULL);
	}

	/* the day's lines, in batches */
	if (lines_plan == NULL)
	{
		Oid			types[3] = {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};

		lines_plan = PrepareKept("SELECT receipt_id, qty::float8, refunded_qty::float8, points_money,"
								 " discounts, points_earned FROM loyalty.receipt_line"
								 " WHERE program_id = $1 AND committed_at >= $2 AND committed_at < $3",
								 3, types);
	}
	portal = SPI_cursor_open(NULL, lines_plan, args, NULL, true);
	/* the detoasted documents of a batch go with it */
	rows = AllocSetContextCreate(CurrentMemoryContext, "loyalty promotion_day batch",
								 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, FETCH);
		if (SPI_processed == 0)
			break;
		old = MemoryContextSwitchTo(rows);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			char		receipt[129] = {0};
			double		qty;
			double		returned;

			text_to_cstring_buffer(DatumGetTextPP(SPI_getbinval(t, d, 1, &isnull)), receipt, sizeof(receipt));
			ordinal++;
			if (hash_search(cancelled, receipt, HASH_FIND, NULL) != NULL)
				continue;
			qty = DatumGetFloat8(SPI_getbinval(t, d, 2, &isnull));
			returned = DatumGetFloat8(SPI_getbinval(t, d, 3, &isnull));
			if (qty <= 0)
				continue;
			AddLine(&scan, hash_bytes_extended((const unsigned char *) receipt, strlen(receipt), 0), ordinal,
					DatumGetJsonbP(SPI_getbinval(t, d, 5, &isnull)),
					DatumGetJsonbP(SPI_getbinval(t, d, 6, &isnull)),
					(qty - returned) / qty,
					(double) DatumGetInt64(SPI_getbinval(t, d, 4, &isnull)),
					money_exponent);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rows);
		SPI_freetuptable(SPI_tuptable);
	}
	MemoryContextDelete(rows);
	SPI_cursor_close(portal);
	SPI_finish();

	hash_seq_init(&seq, scan.promos);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[6];
		bool		nulls[6] = {false};

		values[0] = CStringGetTextDatum(p->code);
		values[1] = Int64GetDatum(p->receipts);
		values[2] = Int64GetDatum(p->lines);
		values[3] = Major(p->discount, money_exponent);
		values[4] = Major(p->points, POINTS_EXPONENT);
		values[5] = Major(p->points_money, money_exponent);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	hash_destroy(scan.promos);
	hash_destroy(scan.counted);
	hash_destroy(cancelled);
	PG_RETURN_VOID();
}
