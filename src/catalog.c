/*
 * src/catalog.c
 *
 * The per-backend cache of compiled promotion catalogues, one per
 * programme, in a memory context under CacheMemoryContext.
 *
 * Every statement that changes promotions, programmes or currencies runs the
 * trigger loyalty.catalog_changed(), which bumps the catalogue generation
 * and invalidates the relcache entry of loyalty.catalog_generation; when the
 * invalidation reaches a backend (at its next transaction start or lock) the
 * callback below marks the cache stale, and the next calculate reads the
 * generation and recompiles if it moved.  Calls between changes read no
 * catalogue table at all.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "jsonread.h"
#include "program.h"

PG_FUNCTION_INFO_V1(loyalty_catalog_changed);

/* The compiled catalogues of this backend */
static MemoryContext CatalogCxt = NULL;
static List *Catalogs = NIL;
static bool CatalogStale = true;
static int64 CatalogGeneration = -1;
static Oid	GenerationRelid = InvalidOid;

/* Relcache callback: the generation table (or everything) was invalidated */
static void
CatalogInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || GenerationRelid == InvalidOid || relid == GenerationRelid)
	{
		CatalogStale = true;
		/* looked up again: the extension may have been dropped and created */
		GenerationRelid = InvalidOid;
	}
}

void
loyalty_catalog_init(void)
{
	CacheRegisterRelcacheCallback(CatalogInvalidate, (Datum) 0);
}

static Oid
GenerationTable(void)
{
	Oid			nsp = get_namespace_oid("loyalty", false);
	Oid			relid = get_relname_relid("catalog_generation", nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table loyalty.catalog_generation is missing")));
	return relid;
}

/* Trigger: bump the generation; the invalidation goes out at commit */
Datum
loyalty_catalog_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalog_changed() must be called as a trigger")));
	SPI_connect();
	if (SPI_execute("UPDATE loyalty.catalog_generation"
					" SET generation = pg_catalog.nextval('loyalty.catalog_generation_seq'),"
					" changed_at = pg_catalog.now()", false, 0) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the row of loyalty.catalog_generation is missing"),
				 errhint("Reinstall the extension, or insert the row: INSERT INTO loyalty.catalog_generation VALUES (true, nextval('loyalty.catalog_generation_seq'), now()).")));
	SPI_finish();
	CacheInvalidateRelcacheByRelid(GenerationTable());
	return PointerGetDatum(NULL);
}

/* Strings of a text[] column, in the current context */
static StrList
ReadStrList(HeapTuple tuple, TupleDesc desc, int col)
{
	StrList		list = {0, NULL};
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (isnull)
		return list;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	list.items = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			list.items[list.n++] = TextDatumGetCString(elems[i]);
	return list;
}

/* Bits of an int4[] column's elements */
static int32
ReadMask(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int32		mask = 0;

	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), INT4OID, 4, true, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i] && DatumGetInt32(elems[i]) >= 0 && DatumGetInt32(elems[i]) < 31)
			mask |= 1 << DatumGetInt32(elems[i]);
	return mask;
}

static int64
GetInt64(HeapTuple tuple, TupleDesc desc, int col, int64 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? dflt : DatumGetInt64(d);
}

static int32
GetInt32(HeapTuple tuple, TupleDesc desc, int col, int32 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

/* A loyalty.condition column compiled over the catalogue's dictionary */
static CondProgram *
GetCondition(Catalog *cat, HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	if (isnull)
		return NULL;
	/* a copy: the program may point into the value, and SPI frees the tuple */
	return loyalty_cond_load((Condition *) PG_DETOAST_DATUM_COPY(d), cat->dict);
}

/* An error that reading bad text or a bad document gives, not a failure of the server */
bool
IsReadError(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_INVALID_PARAMETER_VALUE ||
		sqlerrcode == ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE ||
		sqlerrcode == ERRCODE_UNDEFINED_OBJECT ||
		sqlerrcode == ERRCODE_INVALID_TEXT_REPRESENTATION ||
		sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED;
}

/*
 * A stored benefit read again, or false with a warning: one that no longer
 * reads (its currency was deleted since) must not stop the others.
 */
static bool
ParseStoredBenefit(Jsonb *doc, const BenefitContext *ctx, Benefit *out,
				   const char *promo_code, const char *program_code)
{
	MemoryContext here = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		BenefitParse(doc, ctx, out);
	}
	PG_CATCH();
	{
		ErrorData  *err;

		/* parsing is pure: nothing to release but the error */
		MemoryContextSwitchTo(here);
		err = CopyErrorData();
		if (!IsReadError(err->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("promotion \"%s\" of programme \"%s\" is left out: %s",
						promo_code, program_code, err->message),
				 errhint("Save its benefit again with UPDATE loyalty.promotion SET benefit = ...")));
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* Promotions by code as jsonb orders object keys: shorter first, then bytewise */
static int
code_key_cmp(const void *a, const void *b, void *arg)
{
	const Catalog *cat = arg;
	const char *x = cat->promos[*(const int *) a].code;
	const char *y = cat->promos[*(const int *) b].code;
	size_t		lx = strlen(x),
				ly = strlen(y);

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return memcmp(x, y, lx);
}

/*
 * The promotions' columns as the catalogue reads them, and the two ways to
 * choose them: the programme's active promotions, or the promotions with
 * these ids whatever their status (a receipt recomputed as committed).
 */
#define PROMO_COLUMNS \
	"SELECT id, code, name," \
	" pg_catalog.lower_inf(active), pg_catalog.lower_inc(active), pg_catalog.lower(active)," \
	" pg_catalog.upper_inf(active), pg_catalog.upper_inc(active), pg_catalog.upper(active)," \
	" weekdays::int4[]," \
	" (SELECT pg_catalog.array_agg(h) FROM pg_catalog.generate_series(0, 23) h" \
	"   WHERE h OPERATOR(pg_catalog.<@) hours)," \
	" countries, cities, stores, channels, audience, tiers, segments, birthday_days::int4," \
	" line_condition, receipt_condition, benefit, stacking_group, priority, exclusive," \
	" limit_per_customer, limit_period, limit_total," \
	" pg_catalog.ceil(budget OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric," \
	"   (SELECT money_exponent FROM loyalty.program WHERE id OPERATOR(pg_catalog.=) $1)))::int8" \
	" FROM loyalty.promotion"

/*
 * Whether a change of loyalty.tier bumps the generation (its trigger came
 * with 0.17): until ALTER EXTENSION UPDATE, the library reads the tiers at
 * each commit instead of keeping them
 */
static bool
TiersKept(void)
{
	static SPIPlanPtr plan = NULL;

	if (plan == NULL)
		plan = PrepareKept("SELECT 1 FROM pg_catalog.pg_trigger"
						   " WHERE tgrelid OPERATOR(pg_catalog.=) 'loyalty.tier'::pg_catalog.regclass"
						   "   AND tgname OPERATOR(pg_catalog.=) 'tier_catalog_changed'", 0, NULL);
	if (SPI_execute_plan(plan, NULL, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_trigger");
	return SPI_processed > 0;
}

/*
 * Read the programme, its currencies and its promotions: the active ones, or
 * those of ids (an int8[]) whatever their status
 */
static void
LoadCatalog(Catalog *cat, const char *code, Datum ids)
{
	static SPIPlanPtr program_plan = NULL;
	static SPIPlanPtr currency_plan = NULL;
	static SPIPlanPtr promo_plan = NULL;
	static SPIPlanPtr promo_ids_plan = NULL;
	Datum		arg;
	Datum		args[2];
	HeapTuple	t;
	TupleDesc	desc;
	List	   *groups = NIL;
	CondProgram **line_conds;
	CondProgram *always;

	if (program_plan == NULL)
	{
		Oid			types[1] = {TEXTOID};

		program_plan = PrepareKept(
			"SELECT id, code, money_currency, money_exponent::int4, default_currency,"
			" accrual_rate_bp, max_discount_bp, max_points_bp,"
			" (min_line_price OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric, money_exponent))::int8,"
			" (discount_step OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric, money_exponent))::int8,"
			" (earn_weight OPERATOR(pg_catalog.*) 10000)::int4, points_excluded, accrual_delay"
			" FROM loyalty.program WHERE code OPERATOR(pg_catalog.=) $1", 1, types);
	}
	if (currency_plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		/* the value of one minor unit of points in minor units of money, as a fraction */
		currency_plan = PrepareKept(
			"SELECT c.code, c.exponent::int4,"
			" (c.money_per_unit OPERATOR(pg_catalog.*) 100000000)::int8,"
			" (100000000::numeric OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric, c.exponent)"
			"  OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent))::int8"
			" FROM loyalty.currency c JOIN loyalty.program p ON p.id OPERATOR(pg_catalog.=) c.program_id"
			" WHERE c.program_id OPERATOR(pg_catalog.=) $1 ORDER BY c.code", 1, types);
	}
	if (promo_plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		promo_plan = PrepareKept(PROMO_COLUMNS
			" WHERE program_id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'active'"
			" ORDER BY id", 1, types);
	}
	if (promo_ids_plan == NULL && ids != (Datum) 0)
	{
		Oid			types[2] = {INT8OID, INT8ARRAYOID};

		promo_ids_plan = PrepareKept(PROMO_COLUMNS
			" WHERE program_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) ANY ($2)"
			" ORDER BY id", 2, types);
	}

	/*
	 * SPI returns to its own context after every call: switch back to the
	 * catalogue's after each, so that what is compiled outlives the call.
	 */
	MemoryContextSwitchTo(cat->cxt);
	arg = CStringGetTextDatum(code);
	if (SPI_execute_snapshot(program_plan, &arg, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read loyalty.program");
	MemoryContextSwitchTo(cat->cxt);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("programme \"%s\" does not exist", code),
				 errhint("SELECT code FROM loyalty.program lists the programmes.")));
	t = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	cat->program_id = GetInt64(t, desc, 1, 0);
	cat->code = SPI_getvalue(t, desc, 2);
	cat->money_currency = SPI_getvalue(t, desc, 3);
	cat->money_exponent = GetInt32(t, desc, 4, 2);
	{
		char	   *dflt = SPI_getvalue(t, desc, 5);

		cat->accrual_rate_bp = GetInt32(t, desc, 6, 0);
		cat->max_discount_bp = GetInt32(t, desc, 7, 10000);
		cat->max_points_bp = GetInt32(t, desc, 8, 10000);
		cat->min_line_price = GetInt64(t, desc, 9, 0);
		cat->discount_step = GetInt64(t, desc, 10, 0);
		cat->earn_weight_bp = GetInt32(t, desc, 11, 10000);
		cat->dict = loyalty_cond_dict_create();
		cat->points_excluded = GetCondition(cat, t, desc, 12);
		{
			bool		isnull;
			Datum		delay = SPI_getbinval(t, desc, 13, &isnull);

			if (!isnull)
				cat->accrual_delay = *DatumGetIntervalP(delay);
		}

		TiersRead(cat->program_id, true, &cat->tiers);
		cat->tiers_kept = TiersKept();

		arg = Int64GetDatum(cat->program_id);
		if (SPI_execute_snapshot(currency_plan, &arg, NULL, GetLatestSnapshot(), InvalidSnapshot,
								 true, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read loyalty.currency");
		MemoryContextSwitchTo(cat->cxt);
		cat->ncurrencies = SPI_processed;
		cat->currencies = palloc0(sizeof(CatCurrency) * Max(cat->ncurrencies, 1));
		cat->default_currency = 0;
		for (int i = 0; i < cat->ncurrencies; i++)
		{
			CatCurrency *c = &cat->currencies[i];

			t = SPI_tuptable->vals[i];
			desc = SPI_tuptable->tupdesc;
			c->code = SPI_getvalue(t, desc, 1);
			c->exponent = GetInt32(t, desc, 2, 0);
			c->value_num = GetInt64(t, desc, 3, 1);
			c->value_den = GetInt64(t, desc, 4, 1);
			if (c->value_num <= 0 || c->value_den <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("currency \"%s\" of programme \"%s\" is worth too little to price",
								c->code, code)));
			if (strcmp(c->code, dflt) == 0)
				cat->default_currency = i;
		}
	}

	args[0] = Int64GetDatum(cat->program_id);
	args[1] = ids;
	if (SPI_execute_snapshot(ids != (Datum) 0 ? promo_ids_plan : promo_plan, args, NULL,
							 GetLatestSnapshot(), InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read loyalty.promotion");
	MemoryContextSwitchTo(cat->cxt);
	cat->npromos = SPI_processed;
	cat->promos = palloc0(sizeof(CatPromo) * Max(cat->npromos, 1));
	cat->slot = palloc(sizeof(int) * Max(cat->npromos, 1));
	cat->stamp = palloc0(sizeof(uint32) * Max(cat->npromos, 1));
	cat->match_buf = palloc(sizeof(int) * (cat->npromos + 1));
	{
		BenefitContext bctx;
		const char **codes = palloc(sizeof(char *) * Max(cat->ncurrencies, 1));
		int		   *exps = palloc(sizeof(int) * Max(cat->ncurrencies, 1));

		for (int i = 0; i < cat->ncurrencies; i++)
		{
			codes[i] = cat->currencies[i].code;
			exps[i] = cat->currencies[i].exponent;
		}
		bctx.money_exponent = cat->money_exponent;
		bctx.default_currency = cat->ncurrencies > 0 ? codes[cat->default_currency] : "";
		bctx.ncurrencies = cat->ncurrencies;
		bctx.currencies = codes;
		bctx.exponents = exps;

		for (int k = 0; k < cat->npromos; k++)
		{
			CatPromo   *p = &cat->promos[k];
			bool		isnull;
			char	   *s;

			t = SPI_tuptable->vals[k];
			desc = SPI_tuptable->tupdesc;
			p->id = GetInt64(t, desc, 1, 0);
			p->code = SPI_getvalue(t, desc, 2);
			p->name = SPI_getvalue(t, desc, 3);
			p->has_from = !DatumGetBool(SPI_getbinval(t, desc, 4, &isnull));
			p->from_inc = DatumGetBool(SPI_getbinval(t, desc, 5, &isnull));
			if (p->has_from)
				p->from = DatumGetTimestampTz(SPI_getbinval(t, desc, 6, &isnull));
			p->has_to = !DatumGetBool(SPI_getbinval(t, desc, 7, &isnull));
			p->to_inc = DatumGetBool(SPI_getbinval(t, desc, 8, &isnull));
			if (p->has_to)
				p->to = DatumGetTimestampTz(SPI_getbinval(t, desc, 9, &isnull));
			p->weekdays = ReadMask(t, desc, 10);
			p->hours = ReadMask(t, desc, 11);
			p->countries = ReadStrList(t, desc, 12);
			p->cities = ReadStrList(t, desc, 13);
			p->stores = ReadStrList(t, desc, 14);
			p->channels = ReadStrList(t, desc, 15);
			s = SPI_getvalue(t, desc, 16);
			p->audience = strcmp(s, "tiers") == 0 ? AUD_TIERS :
				strcmp(s, "segments") == 0 ? AUD_SEGMENTS :
				strcmp(s, "personal") == 0 ? AUD_PERSONAL :
				strcmp(s, "birthday") == 0 ? AUD_BIRTHDAY :
				strcmp(s, "coupon") == 0 ? AUD_COUPON : AUD_ALL;
			cat->has_personal |= p->audience == AUD_PERSONAL;
			p->tiers = ReadStrList(t, desc, 17);
			p->segments = ReadStrList(t, desc, 18);
			p->birthday_days = GetInt32(t, desc, 19, 0);
			p->line_cond = GetCondition(cat, t, desc, 20);
			p->receipt_cond = GetCondition(cat, t, desc, 21);
			if (!ParseStoredBenefit(DatumGetJsonbP(SPI_getbinval(t, desc, 22, &isnull)), &bctx,
									&p->benefit, p->code, code))
			{
				p->broken = true;
				continue;
			}
			if (p->benefit.nparts > 0)
			{
				p->part_conds = palloc(sizeof(CondProgram *) * p->benefit.nparts);
				for (int i = 0; i < p->benefit.nparts; i++)
					p->part_conds[i] = loyalty_cond_load(p->benefit.parts[i].condition, cat->dict);
			}
			p->group_name = SPI_getvalue(t, desc, 23);
			p->group = -1;
			if (p->group_name)
			{
				ListCell   *lc;
				int			g = 0;

				foreach(lc, groups)
				{
					if (strcmp((char *) lfirst(lc), p->group_name) == 0)
						break;
					g++;
				}
				if (lc == NULL)
					groups = lappend(groups, p->group_name);
				p->group = g;
			}
			p->priority = GetInt32(t, desc, 24, 0);
			p->exclusive = DatumGetBool(SPI_getbinval(t, desc, 25, &isnull));
			p->limit_per_customer = GetInt32(t, desc, 26, 0);
			s = SPI_getvalue(t, desc, 27);
			p->limit_period = s == NULL ? PERIOD_NONE : LimitPeriodOf(s);
			p->limit_total = GetInt64(t, desc, 28, 0);
			p->budget = GetInt64(t, desc, 29, 0);
		}
	}
	cat->ngroups = list_length(groups);

	/* its rules for identifiers, for finding the receipt's customer */
	LoadProgram(cat->code, &cat->program);
	MemoryContextSwitchTo(cat->cxt);

	/* its fraud rules, their conditions over the same dictionary */
	if (ids == (Datum) 0)
	{
		FraudLoadRules(cat);
		CampaignLoad(cat);
		ExperimentLoad(cat);
	}

	/* the codes' order as keys of a jsonb object, for answers built in it */
	{
		int		   *order = palloc(sizeof(int) * Max(cat->npromos, 1));

		for (int k = 0; k < cat->npromos; k++)
			order[k] = k;
		qsort_arg(order, cat->npromos, sizeof(int), code_key_cmp, cat);
		for (int r = 0; r < cat->npromos; r++)
			cat->promos[order[r]].code_rank = r;
		pfree(order);
	}

	/* the index over line conditions; "true" for promotions without one */
	always = loyalty_cond_load(loyalty_cond_parse("true", 4), cat->dict);
	line_conds = palloc(sizeof(CondProgram *) * Max(cat->npromos, 1));
	for (int k = 0; k < cat->npromos; k++)
		line_conds[k] = cat->promos[k].line_cond ? cat->promos[k].line_cond : always;
	cat->index = loyalty_cond_index_build(line_conds, cat->npromos, cat->dict);
}

/*
 * Read the generation; drop every compiled catalogue if it moved.  The flag
 * is cleared before the read, so that an invalidation that arrives while
 * reading (at the lock) marks the cache stale again; the read and the
 * compiling that follows use the latest snapshot, so that they see every
 * change whose invalidation has arrived, whatever the caller's isolation.
 */
static void
CheckGeneration(void)
{
	static SPIPlanPtr plan = NULL;
	int64		generation;
	bool		isnull;

	CatalogStale = false;
	if (GenerationRelid == InvalidOid)
		GenerationRelid = GenerationTable();
	if (plan == NULL)
		plan = PrepareKept("SELECT generation FROM loyalty.catalog_generation", 0, NULL);
	if (SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read loyalty.catalog_generation");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the row of loyalty.catalog_generation is missing")));
	generation = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (generation != CatalogGeneration && CatalogCxt != NULL)
	{
		MemoryContextDelete(CatalogCxt);
		CatalogCxt = NULL;
		Catalogs = NIL;
	}
	CatalogGeneration = generation;
}

/*
 * The compiled catalogue of the programme with this code, compiling it if
 * needed; the caller is connected to SPI.
 */
Catalog *
CatalogGet(const char *program_code)
{
	ListCell   *lc;
	Catalog    *cat;
	MemoryContext old;
	MemoryContext cxt;

	if (CatalogStale)
		CheckGeneration();
	foreach(lc, Catalogs)
	{
		cat = lfirst(lc);
		if (strcmp(cat->code, program_code) == 0)
			return cat;
	}
	if (CatalogCxt == NULL)
		CatalogCxt = AllocSetContextCreate(CacheMemoryContext, "loyalty catalogue",
										   ALLOCSET_DEFAULT_SIZES);
	/* compile in a context of its own, kept only if compiling succeeds */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty catalogue compilation",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	cat = palloc0(sizeof(Catalog));
	cat->cxt = cxt;
	cat->generation = CatalogGeneration;
	LoadCatalog(cat, program_code, (Datum) 0);
	MemoryContextSwitchTo(CatalogCxt);
	Catalogs = lappend(Catalogs, cat);
	MemoryContextSwitchTo(old);
	MemoryContextSetParent(cxt, CatalogCxt);
	return cat;
}

/*
 * The compiled catalogue of the programme with this id (an operation of the
 * ledger knows its programme by id); NULL if there is no such programme.
 * The caller is connected to SPI.
 */
Catalog *
CatalogGetById(int64 program_id)
{
	static KeptQuery code_query = {
		"SELECT code FROM loyalty.program WHERE id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL
	};
	ListCell   *lc;
	Datum		arg = Int64GetDatum(program_id);

	if (CatalogStale)
		CheckGeneration();
	foreach(lc, Catalogs)
	{
		Catalog    *cat = lfirst(lc);

		if (cat->program_id == program_id)
			return cat;
	}
	RunKept(&code_query, &arg, NULL, 1);
	if (SPI_processed != 1)
		return NULL;
	return CatalogGet(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

/*
 * A catalogue of the programme with this code holding only the promotions of
 * ids (an int8[]), whatever their status now; compiled in the current memory
 * context and not kept.  The caller is connected to SPI.
 */
Catalog *
CatalogOf(const char *program_code, ArrayType *ids)
{
	MemoryContext here = CurrentMemoryContext;
	Catalog    *cat = palloc0(sizeof(Catalog));

	cat->cxt = here;
	cat->generation = CatalogGeneration;
	LoadCatalog(cat, program_code, PointerGetDatum(ids));
	MemoryContextSwitchTo(here);
	return cat;
}

/*
 * The programme's tiers as a commit decides its lift on them: those kept,
 * or, while the schema does not bump the generation when they change (a
 * 0.17 library before ALTER EXTENSION UPDATE), read afresh in the current
 * memory context.  The caller is connected to SPI.
 */
const Tiers *
CatalogTiers(const Catalog *cat)
{
	Tiers	   *fresh;

	if (cat->tiers_kept)
		return &cat->tiers;
	fresh = palloc(sizeof(Tiers));
	TiersRead(cat->program_id, false, fresh);
	return fresh;
}

/*
 * A condition text compiled over the catalogue's dictionary, kept with it;
 * NULL for a text that is not a condition (a lot's restriction may be a
 * label), which is kept too.  The text is parsed in a context of its own
 * first, so that a failure leaves nothing in the catalogue's.
 */
CondProgram *
CatalogCondition(Catalog *cat, const char *text)
{
	ListCell   *lc;
	MemoryContext here = CurrentMemoryContext;
	MemoryContext tmp;
	Condition  *volatile parsed = NULL;
	CatCondition *cc;

	foreach(lc, cat->conditions)
	{
		cc = lfirst(lc);
		if (strcmp(cc->text, text) == 0)
			return cc->program;
	}
	tmp = AllocSetContextCreate(here, "loyalty condition", ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(tmp);
	PG_TRY();
	{
		parsed = loyalty_cond_parse(text, strlen(text));
	}
	PG_CATCH();
	{
		ErrorData  *err;

		MemoryContextSwitchTo(here);
		err = CopyErrorData();
		if (!IsReadError(err->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		parsed = NULL;
	}
	PG_END_TRY();

	/* a bounded cache: restrictions come from a handful of promotions */
	MemoryContextSwitchTo(cat->cxt);
	cc = palloc(sizeof(CatCondition));
	cc->text = pstrdup(text);
	cc->program = NULL;
	if (parsed)
	{
		/* the program may point into the value: keep a copy of it here */
		Condition  *kept = palloc(VARSIZE(parsed));

		memcpy(kept, parsed, VARSIZE(parsed));
		cc->program = loyalty_cond_load(kept, cat->dict);
	}
	if (list_length(cat->conditions) < 1000)
		cat->conditions = lappend(cat->conditions, cc);
	MemoryContextSwitchTo(here);
	MemoryContextDelete(tmp);
	return cc->program;
}

/* The catalogue index of the points currency with this code, or -1 */
int
CatalogCurrencyIndex(const Catalog *cat, const char *code)
{
	for (int i = 0; i < cat->ncurrencies; i++)
		if (strcmp(cat->currencies[i].code, code) == 0)
			return i;
	return -1;
}

/* The catalogue index of the active promotion with this id, or -1 */
int
CatalogPromoIndex(const Catalog *cat, int64 id)
{
	int			lo = 0,
				hi = cat->npromos - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (cat->promos[mid].id == id)
			return mid;
		if (cat->promos[mid].id < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* A promotion's limit_period: day, week, month, year; anything else is for ever */
LimitPeriod
LimitPeriodOf(const char *s)
{
	return strcmp(s, "day") == 0 ? PERIOD_DAY :
		strcmp(s, "week") == 0 ? PERIOD_WEEK :
		strcmp(s, "month") == 0 ? PERIOD_MONTH :
		strcmp(s, "year") == 0 ? PERIOD_YEAR : PERIOD_EVER;
}
