/*
 * src/tiers.c
 *
 * Which tier a customer's purchases qualify for, and the lift a commit
 * gives: docs/tiers.md is the contract.
 *
 *   qualified_tier(program, spend, receipts)  the highest tier they reach
 *   lift_tier(program, customer, receipt)     move the customer up to it
 *
 * The purchases over the programme's window are loyalty.purchases (one
 * definition, in SQL, inlined into the statement kept here); the customer
 * row is locked before the decision, as the review job locks it.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "access.h"
#include "program.h"
#include "tiers.h"

PG_FUNCTION_INFO_V1(loyalty_qualified_tier);
PG_FUNCTION_INFO_V1(loyalty_lift_tier);

/* The programme's tiers, highest first, with the threshold of spend in minor units */
static KeptQuery tiers_query = {
	"SELECT t.*, loyalty.minor_units(t.min_spend, g.money_exponent) AS min_spend_minor,"
	"       t.qualify OPERATOR(pg_catalog.=) 'any' AS any_of, g.tier_window"
	"  FROM loyalty.tier t JOIN loyalty.program g ON g.id OPERATOR(pg_catalog.=) t.program_id"
	" WHERE t.program_id OPERATOR(pg_catalog.=) $1"
	" ORDER BY t.rank DESC",
	1, {INT8OID}, NULL
};
static KeptQuery stats_query = {
	"SELECT p.spend, p.receipts FROM loyalty.purchases($1, pg_catalog.now() OPERATOR(pg_catalog.-) $3) p"
	" WHERE p.customer_id OPERATOR(pg_catalog.=) $2",
	3, {INT8OID, INT8OID, INTERVALOID}, NULL
};
static KeptQuery tier_of_query = {
	"SELECT c.tier, t.rank FROM loyalty.customer c"
	"  LEFT JOIN loyalty.tier t ON t.program_id OPERATOR(pg_catalog.=) c.program_id"
	"                          AND t.code OPERATOR(pg_catalog.=) c.tier"
	" WHERE c.id OPERATOR(pg_catalog.=) $1"
	"   FOR NO KEY UPDATE OF c",
	1, {INT8OID}, NULL
};
static KeptQuery change_query = {
	"SELECT loyalty.change_tier($1, $2, $3, $4, 'qualified', $5, $6, $7)",
	7, {INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID, INT4OID, TEXTOID}, NULL
};

/* The programme's tiers, highest first; SPI_tuptable holds them */
static SPITupleTable *
ReadTiers(int64 program_id, uint64 *ntiers)
{
	Datum		arg = Int64GetDatum(program_id);

	RunKept(&tiers_query, &arg, NULL, 0);
	*ntiers = SPI_processed;
	return SPI_tuptable;
}

/*
 * The row of the highest tier that spend (minor units) and receipts
 * qualify for, or -1; a NULL figure is unknown.  A tier without thresholds
 * takes everyone; "all" needs each threshold it has (an unknown figure
 * passes), "any" one of them (an unknown figure does not).
 */
static int
BestTier(SPITupleTable *tiers, uint64 ntiers, int64 spend, bool spend_null,
		 int32 receipts, bool receipts_null)
{
	TupleDesc	desc = tiers->tupdesc;
	int			col_spend = SPI_fnumber(desc, "min_spend_minor");
	int			col_receipts = SPI_fnumber(desc, "min_receipts");
	int			col_any = SPI_fnumber(desc, "any_of");

	for (uint64 i = 0; i < ntiers; i++)
	{
		HeapTuple	t = tiers->vals[i];
		bool		no_spend;
		bool		no_receipts;
		bool		isnull;
		int64		min_spend = DatumGetInt64(SPI_getbinval(t, desc, col_spend, &no_spend));
		int32		min_receipts = DatumGetInt32(SPI_getbinval(t, desc, col_receipts, &no_receipts));
		bool		any = DatumGetBool(SPI_getbinval(t, desc, col_any, &isnull));
		bool		qualifies;

		if (no_spend && no_receipts)
			qualifies = true;
		else if (any)
			qualifies = (!no_spend && !spend_null && spend >= min_spend) ||
				(!no_receipts && !receipts_null && receipts >= min_receipts);
		else
			qualifies = (no_spend || spend_null || spend >= min_spend) &&
				(no_receipts || receipts_null || receipts >= min_receipts);
		if (qualifies)
			return (int) i;
	}
	return -1;
}

/* qualified_tier(program, spend, receipts) returns tier, NULL for none */
Datum
loyalty_qualified_tier(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	int			best;
	SPITupleTable *tiers;
	uint64		ntiers;
	HeapTuple	result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "qualified_tier must return a row");
	rdesc = BlessTupleDesc(rdesc);
	SPI_connect();
	tiers = ReadTiers(PG_GETARG_INT64(0), &ntiers);
	best = BestTier(tiers, ntiers, PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1), PG_ARGISNULL(1),
					PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2), PG_ARGISNULL(2));
	if (best < 0)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}
	/* the tier's own columns come first in the statement's row */
	desc = tiers->tupdesc;
	values = palloc(sizeof(Datum) * rdesc->natts);
	nulls = palloc(sizeof(bool) * rdesc->natts);
	for (int a = 0; a < rdesc->natts; a++)
		values[a] = SPI_getbinval(tiers->vals[best], desc, a + 1, &nulls[a]);
	result = heap_form_tuple(rdesc, values, nulls);
	{
		HeapTupleHeader row = SPI_returntuple(result, rdesc);

		SPI_finish();
		PG_RETURN_HEAPTUPLEHEADER(row);
	}
}

/*
 * Move the customer up to the best tier their purchases over the window
 * qualify for, if it ranks above their tier (locked first); the caller is
 * connected to SPI.
 */
void
TierLift(int64 program_id, int64 customer_id, const char *receipt_id)
{
	int64		spend = 0;
	int32		receipts = 0;
	int			best;
	SPITupleTable *tiers;
	uint64		ntiers;
	Datum		window;
	bool		isnull;
	char	   *code;
	int32		rank;

	/* the programme's tiers and window first: none, nothing to do */
	tiers = ReadTiers(program_id, &ntiers);
	if (ntiers == 0)
		return;
	window = SPI_getbinval(tiers->vals[0], tiers->tupdesc, SPI_fnumber(tiers->tupdesc, "tier_window"), &isnull);
	{
		Datum		args[3] = {Int64GetDatum(program_id), Int64GetDatum(customer_id), window};

		RunKept(&stats_query, args, NULL, 1);
		if (SPI_processed > 0)
		{
			spend = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			receipts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		}
	}
	best = BestTier(tiers, ntiers, spend, false, receipts, false);
	if (best < 0)
		return;
	code = SPI_getvalue(tiers->vals[best], tiers->tupdesc, SPI_fnumber(tiers->tupdesc, "code"));
	rank = DatumGetInt32(SPI_getbinval(tiers->vals[best], tiers->tupdesc,
									   SPI_fnumber(tiers->tupdesc, "rank"), &isnull));
	{
		Datum		arg = Int64GetDatum(customer_id);
		bool		no_tier;
		bool		no_rank;
		Datum		tier;
		int32		cur_rank;

		/* the customer's tier as it is once a review of them has finished */
		RunKept(&tier_of_query, &arg, NULL, 1);
		if (SPI_processed == 0)
			return;
		tier = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &no_tier);
		cur_rank = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &no_rank));
		if (!no_rank && rank <= cur_rank)
			return;
		{
			Datum		args[7] = {Int64GetDatum(program_id), Int64GetDatum(customer_id),
				no_tier ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(tier)),
				CStringGetTextDatum(code), Int64GetDatum(spend), Int32GetDatum(receipts),
			receipt_id ? CStringGetTextDatum(receipt_id) : (Datum) 0};
			char		nulls[8] = "       ";

			nulls[2] = no_tier ? 'n' : ' ';
			nulls[6] = receipt_id ? ' ' : 'n';
			RunKept(&change_query, args, nulls, 1);
		}
	}
}

/* lift_tier(program, customer, receipt) returns void */
Datum
loyalty_lift_tier(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	SPI_connect();
	TierLift(PG_GETARG_INT64(0), PG_GETARG_INT64(1),
			 PG_ARGISNULL(2) ? NULL : TextDatumGetCString(PG_GETARG_DATUM(2)));
	SPI_finish();
	PG_RETURN_VOID();
}
