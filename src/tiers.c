/*
 * src/tiers.c
 *
 * Which tier a customer's purchases qualify for, and the lift a commit
 * gives: docs/tiers.md is the contract.
 *
 *   qualified_tier(program, spend, receipts)  the highest tier they reach
 *   lift_tier(program, customer, receipt)     move the customer up to it
 *
 * A programme's tiers are read by TiersRead, which the compiled catalogue
 * (src/catalog.c) calls too, so that a commit decides its lift without
 * reading them again.  The purchases over the programme's window are
 * loyalty.purchases (one definition, in SQL, inlined into the statement
 * kept here); the customer row is locked before the decision, as the
 * review job locks it.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
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

/*
 * The programme's tiers, highest rank first, into *out (in the current
 * memory context), read with the latest snapshot if latest (as the
 * catalogue reads); the caller is connected to SPI, and SPI_tuptable holds
 * their rows afterwards, in the same order, each beginning with the tier's
 * own columns.
 */
void
TiersRead(int64 program_id, bool latest, Tiers *out)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		arg = Int64GetDatum(program_id);
	TupleDesc	desc;
	int			col_spend;
	int			col_receipts;
	int			col_any;
	int			col_window;
	int			col_code;
	int			col_rank;
	bool		isnull;

	if (!latest)
		RunKept(&tiers_query, &arg, NULL, 0);
	else
	{
		if (tiers_query.plan == NULL)
			tiers_query.plan = PrepareKept(tiers_query.sql, tiers_query.nargs, tiers_query.argtypes);
		if (SPI_execute_snapshot(tiers_query.plan, &arg, NULL, GetLatestSnapshot(), InvalidSnapshot,
								 true, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read loyalty.tier");
	}
	MemoryContextSwitchTo(cxt);		/* SPI left its own current */
	memset(out, 0, sizeof(Tiers));
	out->n = (int) SPI_processed;
	if (out->n == 0)
		return;
	desc = SPI_tuptable->tupdesc;
	col_spend = SPI_fnumber(desc, "min_spend_minor");
	col_receipts = SPI_fnumber(desc, "min_receipts");
	col_any = SPI_fnumber(desc, "any_of");
	col_window = SPI_fnumber(desc, "tier_window");
	col_code = SPI_fnumber(desc, "code");
	col_rank = SPI_fnumber(desc, "rank");
	out->tiers = palloc(sizeof(Tier) * out->n);
	for (int i = 0; i < out->n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		Tier	   *tier = &out->tiers[i];
		Datum		v;

		tier->code = SPI_getvalue(t, desc, col_code);
		tier->rank = DatumGetInt32(SPI_getbinval(t, desc, col_rank, &isnull));
		v = SPI_getbinval(t, desc, col_spend, &isnull);
		tier->has_spend = !isnull;
		tier->min_spend = isnull ? 0 : DatumGetInt64(v);
		v = SPI_getbinval(t, desc, col_receipts, &isnull);
		tier->has_receipts = !isnull;
		tier->min_receipts = isnull ? 0 : DatumGetInt32(v);
		tier->any = DatumGetBool(SPI_getbinval(t, desc, col_any, &isnull));
	}
	out->window = *DatumGetIntervalP(SPI_getbinval(SPI_tuptable->vals[0], desc, col_window, &isnull));
}

/*
 * The index of the highest tier that spend (minor units) and receipts
 * qualify for, or -1; a NULL figure is unknown.  A tier without thresholds
 * takes everyone; "all" needs each threshold it has (an unknown figure
 * passes), "any" one of them (an unknown figure does not).
 */
static int
BestTier(const Tiers *tiers, int64 spend, bool spend_null, int32 receipts, bool receipts_null)
{
	for (int i = 0; i < tiers->n; i++)
	{
		const Tier *t = &tiers->tiers[i];
		bool		qualifies;

		if (!t->has_spend && !t->has_receipts)
			qualifies = true;
		else if (t->any)
			qualifies = (t->has_spend && !spend_null && spend >= t->min_spend) ||
				(t->has_receipts && !receipts_null && receipts >= t->min_receipts);
		else
			qualifies = (!t->has_spend || spend_null || spend >= t->min_spend) &&
				(!t->has_receipts || receipts_null || receipts >= t->min_receipts);
		if (qualifies)
			return i;
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
	Tiers		tiers;
	HeapTuple	result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "qualified_tier must return a row");
	rdesc = BlessTupleDesc(rdesc);
	SPI_connect();
	TiersRead(PG_GETARG_INT64(0), false, &tiers);
	best = BestTier(&tiers, PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1), PG_ARGISNULL(1),
					PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2), PG_ARGISNULL(2));
	if (best < 0)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}
	/* the tier's own columns come first in the statement's row */
	desc = SPI_tuptable->tupdesc;
	values = palloc(sizeof(Datum) * rdesc->natts);
	nulls = palloc(sizeof(bool) * rdesc->natts);
	for (int a = 0; a < rdesc->natts; a++)
		values[a] = SPI_getbinval(SPI_tuptable->vals[best], desc, a + 1, &nulls[a]);
	result = heap_form_tuple(rdesc, values, nulls);
	{
		HeapTupleHeader row = SPI_returntuple(result, rdesc);

		SPI_finish();
		PG_RETURN_HEAPTUPLEHEADER(row);
	}
}

/*
 * Move the customer up to the best tier their purchases over the window
 * qualify for, if it ranks above their tier; the caller is connected to
 * SPI.  The customer row is locked first, and a customer already in the
 * highest tier is left there without reading their purchases.
 */
void
TierLift(const Tiers *tiers, int64 program_id, int64 customer_id, const char *receipt_id)
{
	int64		spend = 0;
	int32		receipts = 0;
	int			best;
	bool		isnull;
	bool		no_tier;
	bool		no_rank;
	Datum		tier;
	int32		cur_rank;

	if (tiers->n == 0)
		return;
	{
		Datum		arg = Int64GetDatum(customer_id);

		/* the customer's tier as it is once a review of them has finished */
		RunKept(&tier_of_query, &arg, NULL, 1);
		if (SPI_processed == 0)
			return;
		tier = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &no_tier);
		cur_rank = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &no_rank));
		if (!no_rank && cur_rank >= tiers->tiers[0].rank)
			return;
		if (!no_tier)
			tier = PointerGetDatum(PG_DETOAST_DATUM_COPY(tier));
	}
	{
		Datum		args[3] = {Int64GetDatum(program_id), Int64GetDatum(customer_id),
		IntervalPGetDatum((Interval *) &tiers->window)};

		RunKept(&stats_query, args, NULL, 1);
		if (SPI_processed > 0)
		{
			spend = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			receipts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		}
	}
	best = BestTier(tiers, spend, false, receipts, false);
	if (best < 0 || (!no_rank && tiers->tiers[best].rank <= cur_rank))
		return;
	{
		Datum		args[7] = {Int64GetDatum(program_id), Int64GetDatum(customer_id),
			no_tier ? (Datum) 0 : tier, CStringGetTextDatum(tiers->tiers[best].code),
			Int64GetDatum(spend), Int32GetDatum(receipts),
		receipt_id ? CStringGetTextDatum(receipt_id) : (Datum) 0};
		char		nulls[8] = "       ";

		nulls[2] = no_tier ? 'n' : ' ';
		nulls[6] = receipt_id ? ' ' : 'n';
		RunKept(&change_query, args, nulls, 1);
	}
}

/* lift_tier(program, customer, receipt) returns void */
Datum
loyalty_lift_tier(PG_FUNCTION_ARGS)
{
	Tiers		tiers;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	SPI_connect();
	TiersRead(PG_GETARG_INT64(0), false, &tiers);
	TierLift(&tiers, PG_GETARG_INT64(0), PG_GETARG_INT64(1),
			 PG_ARGISNULL(2) ? NULL : TextDatumGetCString(PG_GETARG_DATUM(2)));
	SPI_finish();
	PG_RETURN_VOID();
}
