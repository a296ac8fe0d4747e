/*
 * src/reports.c
 *
 * promotion_day(program_id, day): what each promotion gave on one day, the
 * rows of the view promotion_performance.  The figures live in the typed
 * arrays of each receipt row (its lines' discounts by promotion and points
 * by promotion), some tens of thousands of lines a day in a large chain:
 * unnesting them with SQL costs tens of microseconds a line, reading them
 * here one or two.
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
	int64		id;				/* hash key */
	int64		receipts;
	int64		lines;
	double		discount;		/* in minor units of money */
	double		points;			/* in millionths of a point */
	double		points_money;	/* in minor units of money */
	int64		last_receipt;	/* the receipt last counted (its ordinal in the scan) */
	int64		last_line;		/* the line last counted (its ordinal in the scan) */
} PromoDay;

/* A currency's code and exponent */
typedef struct DayCurrency
{
	char	   *code;
	int			exponent;
} DayCurrency;

static KeptQuery exponent_query = {
	"SELECT money_exponent::int4 FROM loyalty.program WHERE id = $1",
	1, {INT8OID}, NULL
};
static KeptQuery currencies_query = {
	"SELECT code, exponent::int4 FROM loyalty.currency WHERE program_id = $1",
	1, {INT8OID}, NULL
};
static KeptQuery codes_query = {
	"SELECT id, code FROM loyalty.promotion WHERE program_id = $1",
	1, {INT8OID}, NULL
};

/* The entry of promotion id, created at zero if new */
static PromoDay *
Promo(HTAB *promos, int64 id)
{
	bool		found;
	PromoDay   *p = hash_search(promos, &id, HASH_ENTER, &found);

	if (!found)
	{
		memset(p, 0, sizeof(PromoDay));
		p->id = id;
		p->last_receipt = -1;
		p->last_line = -1;
	}
	return p;
}

/*
 * Count the line, its receipt and the money paid with points on it for the
 * promotion, once each
 */
static void
CountLine(PromoDay *p, int64 receipt, int64 line, double points_money)
{
	if (p->last_line == line)
		return;
	p->lines++;
	p->points_money += points_money;
	p->last_line = line;
	if (p->last_receipt != receipt)
		p->receipts++;
	p->last_receipt = receipt;
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
	HTAB	   *promos;
	HTAB	   *codes;
	MemoryContext rows;
	MemoryContext old;
	int			money_exponent;
	int			ncurrencies;
	DayCurrency *currencies;
	bool		isnull;
	Portal		portal;
	int64		receipt_no = 0;
	int64		line_base = 0;
	HASH_SEQ_STATUS seq;
	PromoDay   *p;
	static SPIPlanPtr receipts_plan = NULL;

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
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(PromoDay);
	ctl.hcxt = CurrentMemoryContext;
	promos = hash_create("loyalty promotion_day", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	SPI_connect();
	RunKept(&exponent_query, args, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("programme " INT64_FORMAT " does not exist", program_id)));
	money_exponent = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	RunKept(&currencies_query, args, NULL, 0);
	ncurrencies = (int) SPI_processed;
	currencies = MemoryContextAlloc(rsinfo->econtext->ecxt_per_query_memory,
									sizeof(DayCurrency) * Max(ncurrencies, 1));
	for (int c = 0; c < ncurrencies; c++)
	{
		currencies[c].code = MemoryContextStrdup(rsinfo->econtext->ecxt_per_query_memory,
												 TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[c],
																				   SPI_tuptable->tupdesc, 1, &isnull)));
		currencies[c].exponent = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[c], SPI_tuptable->tupdesc, 2, &isnull));
	}

	/* the day's receipts not cancelled, in batches */
	if (receipts_plan == NULL)
	{
		Oid			types[3] = {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};

		receipts_plan = PrepareKept("SELECT line_qty::float8[], line_refunded_qty::float8[], line_points_money,"
									" discount_line, discount_promotion, discount_amount,"
									" earned_line, earned_currency, earned_by_entry, earned_by_promotion,"
									" earned_by_points FROM loyalty.receipt"
									" WHERE program_id = $1 AND committed_at >= $2 AND committed_at < $3"
									" AND status <> 'cancelled'",
									3, types);
	}
	portal = SPI_cursor_open(NULL, receipts_plan, args, NULL, true);
	/* the arrays of a batch go with it */
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
			Datum	   *qty,
					   *returned,
					   *points_money,
					   *dline,
					   *dpromo,
					   *damount,
					   *eline,
					   *ecur,
					   *bentry,
					   *bpromo,
					   *bpoints;
			int			n = SpiArrayElements(t, d, 1, FLOAT8OID, &qty);
			int			nd,
						ne,
						nb;
			double	   *kept;

			if (SpiArrayElements(t, d, 2, FLOAT8OID, &returned) != n ||
				SpiArrayElements(t, d, 3, INT8OID, &points_money) != n)
				elog(ERROR, "a receipt's line arrays differ in length");
			nd = SpiArrayElements(t, d, 4, INT4OID, &dline);
			if (SpiArrayElements(t, d, 5, INT8OID, &dpromo) != nd || SpiArrayElements(t, d, 6, INT8OID, &damount) != nd)
				elog(ERROR, "a receipt's discount arrays differ in length");
			ne = SpiArrayElements(t, d, 7, INT4OID, &eline);
			if (SpiArrayElements(t, d, 8, TEXTOID, &ecur) != ne)
				elog(ERROR, "a receipt's accrual arrays differ in length");
			nb = SpiArrayElements(t, d, 9, INT4OID, &bentry);
			if (SpiArrayElements(t, d, 10, INT8OID, &bpromo) != nb || SpiArrayElements(t, d, 11, INT8OID, &bpoints) != nb)
				elog(ERROR, "a receipt's accrual arrays differ in length");
			receipt_no++;
			/* the share of each line kept after returns */
			kept = palloc(sizeof(double) * Max(n, 1));
			for (int l = 0; l < n; l++)
			{
				double		q = DatumGetFloat8(qty[l]);

				kept[l] = q > 0 ? (q - DatumGetFloat8(returned[l])) / q : 0;
			}
			for (int x = 0; x < nd; x++)
			{
				int			l = DatumGetInt32(dline[x]) - 1;

				if (l < 0 || l >= n || DatumGetFloat8(qty[l]) <= 0)
					continue;
				p = Promo(promos, DatumGetInt64(dpromo[x]));
				p->discount += kept[l] * (double) DatumGetInt64(damount[x]);
				CountLine(p, receipt_no, line_base + l, kept[l] * (double) DatumGetInt64(points_money[l]));
			}
			for (int x = 0; x < nb; x++)
			{
				int			e = DatumGetInt32(bentry[x]) - 1;
				int			l;
				int			exponent = POINTS_EXPONENT;
				char	   *cur;
				double		scale;

				if (e < 0 || e >= ne)
					continue;
				l = DatumGetInt32(eline[e]) - 1;
				if (l < 0 || l >= n || DatumGetFloat8(qty[l]) <= 0)
					continue;
				cur = TextDatumGetCString(ecur[e]);
				for (int c = 0; c < ncurrencies; c++)
					if (strcmp(currencies[c].code, cur) == 0)
						exponent = currencies[c].exponent;
				/* minor units of the currency as millionths of a point */
				scale = pow(10.0, POINTS_EXPONENT - exponent);
				p = Promo(promos, DatumGetInt64(bpromo[x]));
				p->points += kept[l] * (double) DatumGetInt64(bpoints[x]) * scale;
				CountLine(p, receipt_no, line_base + l, kept[l] * (double) DatumGetInt64(points_money[l]));
			}
			line_base += n;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rows);
		SPI_freetuptable(SPI_tuptable);
	}
	MemoryContextDelete(rows);
	SPI_cursor_close(portal);

	/* the promotions' codes ("#" and the id of one deleted since) */
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(int64) + sizeof(char *);
	codes = hash_create("loyalty promotion_day codes", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	RunKept(&codes_query, args, NULL, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	  **code = (char **) ((char *) hash_search(codes, &id, HASH_ENTER, NULL) + sizeof(int64));

		*code = MemoryContextStrdup(rsinfo->econtext->ecxt_per_query_memory,
									TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i],
																	  SPI_tuptable->tupdesc, 2, &isnull)));
	}
	SPI_finish();

	hash_seq_init(&seq, promos);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[6];
		bool		nulls[6] = {false};
		char	   *found = hash_search(codes, &p->id, HASH_FIND, NULL);

		values[0] = found ? CStringGetTextDatum(*(char **) (found + sizeof(int64)))
			: CStringGetTextDatum(psprintf("#" INT64_FORMAT, p->id));
		values[1] = Int64GetDatum(p->receipts);
		values[2] = Int64GetDatum(p->lines);
		values[3] = Major(p->discount, money_exponent);
		values[4] = Major(p->points, POINTS_EXPONENT);
		values[5] = Major(p->points_money, money_exponent);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	hash_destroy(promos);
	hash_destroy(codes);
	PG_RETURN_VOID();
}
