/*
 * src/program.c
 *
 * Programmes: loading one by its code.  The plan is prepared once per backend
 * and kept; the plan cache replans it when the table changes.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "access.h"
#include "program.h"

/* Prepare a query through SPI and keep its generic plan for the life of the backend */
SPIPlanPtr
PrepareKept(const char *query, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	/*
	 * Always the generic plan: the statements are key lookups whose plan does
	 * not depend on the values, and custom plans would be planned on every
	 * call (array arguments make them look cheaper than the generic one).
	 */
	plan = SPI_prepare_cursor(query, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 query, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/*
 * Execute a kept statement (preparing it the first time) with a fresh
 * snapshot, so that a read after a row lock sees what the lock waited for.
 * NULL nulls means no argument is NULL.  Returns the SPI result code.
 */
int
RunKept(KeptQuery *query, Datum *values, const char *nulls, long tcount)
{
	int			rc;

	if (query->plan == NULL)
		query->plan = PrepareKept(query->sql, query->nargs, query->argtypes);
	rc = SPI_execute_plan(query->plan, values, nulls, false, tcount);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed for \"%s\": %s",
			 query->sql, SPI_result_code_string(rc));
	return rc;
}

/*
 * Load the programme with the given code into *program; the caller is
 * connected to SPI.  An unknown code is an error: it is a configuration
 * mistake of the caller, not a routine event at a till.
 */
void
LoadProgram(const char *code, LoyaltyProgram *program)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = CStringGetTextDatum(code);
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		country;

	if (plan == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};

		plan = PrepareKept("SELECT id, phone_country, card_min_length::int4,"
						   " card_max_length::int4, card_luhn"
						   " FROM loyalty.program WHERE code OPERATOR(pg_catalog.=) $1",
						   1, argtypes);
	}
	if (SPI_execute_plan(plan, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read loyalty.program");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("programme \"%s\" does not exist", code),
				 errhint("SELECT code FROM loyalty.program lists the programmes.")));

	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	program->id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	RequireProgram(program->id, "programme \"%s\"", code);
	program->code = code;		/* the caller's string, which outlives SPI */
	country = SPI_getbinval(tuple, desc, 2, &isnull);
	program->phone_country = isnull ? NULL :
		LookupPhoneCountry(TextDatumGetCString(country));
	program->card.min_length = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
	program->card.max_length = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
	program->card.luhn = DatumGetBool(SPI_getbinval(tuple, desc, 5, &isnull));
}

/*
 * The elements of a one-dimensional array column of an SPI row (the
 * receipt's typed lines), in the current memory context; a NULL array is an
 * error
 */
int
SpiArrayElements(HeapTuple row, TupleDesc desc, int column, Oid type, Datum **items)
{
	return SpiArrayElementsNulls(row, desc, column, type, items, NULL);
}

/* The same, with the elements' nulls (NULL: no element may be null) */
int
SpiArrayElementsNulls(HeapTuple row, TupleDesc desc, int column, Oid type, Datum **items, bool **nulls)
{
	bool		isnull;
	Datum		v = SPI_getbinval(row, desc, column, &isnull);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			n;

	if (isnull)
		elog(ERROR, "column %d of a receipt row is a null array", column);
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	deconstruct_array(DatumGetArrayTypePCopy(v), type, typlen, typbyval, typalign, items, nulls, &n);
	return n;
}

/* A one-dimensional array of n elements of type (empty when n is 0) */
Datum
SpiArray(Oid type, Datum *items, bool *nulls, int n)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	if (n == 0)
		return PointerGetDatum(construct_empty_array(type));
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(items, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

/* A text[] of n strings; a NULL string is a null element */
Datum
SpiTextArray(const char *const *items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		nulls[i] = items[i] == NULL;
		d[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(items[i]);
	}
	return SpiArray(TEXTOID, d, nulls, n);
}

Datum
SpiInt8Array(const int64 *items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(items[i]);
	return SpiArray(INT8OID, d, NULL, n);
}

Datum
SpiInt4Array(const int32 *items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int32GetDatum(items[i]);
	return SpiArray(INT4OID, d, NULL, n);
}

/* qsort's comparison of int64 values */
int
Int64Cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}
