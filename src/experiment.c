/*
 * src/experiment.c
 *
 * Experiments: a programme's customers split into variants by a hash of
 * their id (docs/experiments.md, "Assignment"), each variant with the
 * promotions and challenges only its customers get while the experiment
 * applies.  The catalogue keeps the active experiments and, on each
 * promotion and challenge a variant lists, a mask per experiment of the
 * variants that list it; calculate and commit assign the receipt's
 * customer once and ask the masks.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "experiment.h"
#include "program.h"
#include "wallet.h"

static KeptQuery variants_query = {
	"SELECT e.id, e.code, COALESCE(e.salt, e.code), e.starts_at, e.ends_at,"
	"       v.code, v.weight, v.promotions, v.challenges"
	"  FROM loyalty.experiment e JOIN loyalty.experiment_variant v ON v.experiment_id = e.id"
	" WHERE e.program_id = $1 AND e.active"
	" ORDER BY e.code COLLATE \"C\", v.code COLLATE \"C\"",
	1, {INT8OID}, NULL
};

/* The mask array of a promotion or challenge, made on first use */
static uint64 *
Masks(uint64 **masks, int n)
{
	if (*masks == NULL)
		*masks = palloc0(sizeof(uint64) * Max(n, 1));
	return *masks;
}

/*
 * The programme's active experiments into the catalogue being compiled (in
 * its context, connected to SPI), after its promotions and challenges: the
 * masks of what their variants list.  A schema older than the library has
 * none.  Codes a variant lists that are not in the catalogue (a promotion
 * paused, a challenge inactive) gate nothing.
 */
void
ExperimentLoad(Catalog *cat)
{
	Datum		args[1] = {Int64GetDatum(cat->program_id)};
	MemoryContext here = CurrentMemoryContext;
	int			n = 0;
	int64		last = 0;

	cat->nexperiments = 0;
	cat->experiments = NULL;
	if (!TableHasColumn("experiment_variant", "weight"))
		return;
	RunKept(&variants_query, args, NULL, 0);
	MemoryContextSwitchTo(here);
	if (SPI_processed == 0)
		return;
	/* the experiments first, then their variants */
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));

		if (r == 0 || id != last)
			n++;
		last = id;
	}
	cat->experiments = palloc0(sizeof(CatExperiment) * n);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(t, desc, 1, &isnull));
		CatExperiment *e;
		int			x;
		Datum		d;

		if (cat->nexperiments == 0 || cat->experiments[cat->nexperiments - 1].id != id)
		{
			e = &cat->experiments[cat->nexperiments++];
			e->id = id;
			e->code = SPI_getvalue(t, desc, 2);
			e->salt = SPI_getvalue(t, desc, 3);
			e->starts_at = DatumGetTimestampTz(SPI_getbinval(t, desc, 4, &isnull));
			d = SPI_getbinval(t, desc, 5, &isnull);
			e->has_end = !isnull;
			e->ends_at = isnull ? 0 : DatumGetTimestampTz(d);
			e->variants = palloc(sizeof(char *) * EXPERIMENT_MAX_VARIANTS);
			e->upto = palloc(sizeof(int64) * EXPERIMENT_MAX_VARIANTS);
		}
		e = &cat->experiments[cat->nexperiments - 1];
		if (e->nvariants == EXPERIMENT_MAX_VARIANTS)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("experiment \"%s\" has more than %d variants", e->code, EXPERIMENT_MAX_VARIANTS)));
		x = e->nvariants++;
		e->variants[x] = SPI_getvalue(t, desc, 6);
		e->upto[x] = (x > 0 ? e->upto[x - 1] : 0) +
			DatumGetInt32(SPI_getbinval(t, desc, 7, &isnull));

		/* what the variant lists */
		for (int col = 8; col <= 9; col++)
		{
			Datum	   *codes;
			int			ncodes;

			if (SPI_getbinval(t, desc, col, &isnull), isnull)
				continue;
			ncodes = SpiArrayElements(t, desc, col, TEXTOID, &codes);
			for (int i = 0; i < ncodes; i++)
			{
				char	   *code = TextDatumGetCString(codes[i]);

				if (col == 8)
				{
					for (int k = 0; k < cat->npromos; k++)
						if (strcmp(cat->promos[k].code, code) == 0)
							Masks(&cat->promos[k].exp_masks, n)[cat->nexperiments - 1] |= UINT64CONST(1) << x;
				}
				else
				{
					for (int k = 0; k < cat->nchallenges; k++)
						if (strcmp(cat->challenges[k].code, code) == 0)
							Masks(&cat->challenges[k].exp_masks, n)[cat->nexperiments - 1] |= UINT64CONST(1) << x;
				}
			}
		}
	}
}

/* The variant of a customer: the first whose running weight exceeds md5's bucket */
int
ExperimentVariant(const CatExperiment *e, int64 customer)
{
	char	   *text = psprintf("%s:" INT64_FORMAT, e->salt, customer);
	char		hex[33];
	const char *errstr = NULL;
	uint32		h = 0;
	int64		b;

	if (!pg_md5_hash(text, strlen(text), hex, &errstr))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not hash the assignment of experiment \"%s\": %s", e->code,
						errstr ? errstr : "unknown error")));
	for (int i = 0; i < 8; i++)
	{
		char		ch = hex[i];

		h = (h << 4) | (uint32) (ch <= '9' ? ch - '0' : ch - 'a' + 10);
	}
	b = (int64) h % e->upto[e->nvariants - 1];
	for (int x = 0; x < e->nvariants; x++)
		if (b < e->upto[x])
			return x;
	return e->nvariants - 1;
}

/*
 * The receipt's variant in each experiment of the catalogue (in its order),
 * or NULL if the programme has none
 */
int *
ExperimentAssign(const Catalog *cat, TimestampTz at, bool found, int64 customer)
{
	int		   *variants;

	if (cat->nexperiments == 0)
		return NULL;
	variants = palloc(sizeof(int) * cat->nexperiments);
	for (int e = 0; e < cat->nexperiments; e++)
	{
		const CatExperiment *x = &cat->experiments[e];

		if (at < x->starts_at || (x->has_end && at >= x->ends_at))
			variants[e] = VARIANT_NOT_APPLYING;
		else if (!found)
			variants[e] = VARIANT_NO_CUSTOMER;
		else
			variants[e] = ExperimentVariant(x, customer);
	}
	return variants;
}

/* Whether what the masks gate applies to the receipt of these variants */
bool
ExperimentAllows(const Catalog *cat, const uint64 *masks, const int *variants)
{
	if (masks == NULL || variants == NULL)
		return true;
	for (int e = 0; e < cat->nexperiments; e++)
	{
		if (masks[e] == 0 || variants[e] == VARIANT_NOT_APPLYING)
			continue;
		if (variants[e] < 0 || !(masks[e] & (UINT64CONST(1) << variants[e])))
			return false;
	}
	return true;
}
