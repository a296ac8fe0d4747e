/*
 * src/benefit.c
 *
 * The benefit document of a promotion.  normalize_benefit checks it when a
 * promotion is saved (the promotion_check trigger) and stores its normal
 * form; the catalogue compiler reads the same form with BenefitParse.
 *
 *   {"kind": "percent_off", "percent": 10}
 *   {"kind": "amount_off", "amount": 100.00}                 per unit
 *   {"kind": "fixed_price", "price": 499.00}                 per unit
 *   {"kind": "fixed_price", "points": 50, "currency": "coins"}   paid in points
 *   {"kind": "n_for_m", "buy": 3, "pay": 2}                  cheapest units free
 *   {"kind": "bundle", "price": 999.00,
 *    "components": [{"condition": "category <@ 'ski'", "qty": 1}, ...]}
 *   {"kind": "receipt_off", "threshold": 3000.00, "amount": 300.00 | "percent": 5}
 *   {"kind": "points_per", "per": 20.00, "points": 1, "currency": "coins"}
 *   {"kind": "multiplier", "factor": 2}
 *   {"kind": "bonus_lot", "points": 500, "currency": "bonus", "valid_days": 30,
 *    "restriction": "category <@ 'ski'"}
 *   {"kind": "gift", "sku": "MUG-1", "value": 300.00, "name": "a mug"}
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "access.h"
#include "benefit.h"
#include "jsonbuild.h"
#include "jsonread.h"
#include "program.h"

PG_FUNCTION_INFO_V1(loyalty_normalize_benefit);

#define BENEFIT_OPS(name, NAME) &BenefitKind_##name,
const BenefitOps *const BenefitKinds[BEN_NKINDS] = {
	BENEFIT_KINDS(BENEFIT_OPS)
};
#undef BENEFIT_OPS

#define MONEY_MAX	INT64CONST(100000000000000)	/* 10^14 minor units */
#define POINTS_MAX	INT64CONST(1000000000)		/* 10^9 minor units of points */

/* Name the benefit field whose condition failed to parse */
static void
ConditionFieldContext(void *arg)
{
	errcontext("benefit field \"%s\"", (const char *) arg);
}

/* A condition given as text in a field */
Condition *
BenefitCondition(const BenefitReader *r, const char *path, const JsonbValue *v)
{
	char	   *text = JrString(&r->doc, path, v, 65536);
	ErrorContextCallback cb;
	Condition  *c;

	cb.callback = ConditionFieldContext;
	cb.arg = (void *) path;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	c = loyalty_cond_parse(text, strlen(text));
	error_context_stack = cb.previous;
	return c;
}

/* A member, if the document has it */
bool
BenefitHas(const BenefitReader *r, const char *key, JsonbValue *v)
{
	return JrKey(r->obj, key, v);
}

/* A required member */
void
BenefitNeed(const BenefitReader *r, const char *key, JsonbValue *v)
{
	if (!JrKey(r->obj, key, v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s field \"%s\" is missing", r->doc.name, key)));
}

/* A document whose fields do not go together */
void
BenefitFail(const char *message)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message)));
}

/* The points currency a benefit names, or the programme's default */
void
BenefitCurrency(const BenefitReader *r, Benefit *out)
{
	JsonbValue	v;
	const BenefitContext *ctx = r->ctx;
	const char *code = ctx->default_currency;

	if (JrKey(r->obj, "currency", &v))
		code = JrString(&r->doc, "currency", &v, 32);
	for (int i = 0; i < ctx->ncurrencies; i++)
		if (strcmp(ctx->currencies[i], code) == 0)
		{
			out->currency = ctx->currencies[i];
			out->currency_index = i;
			return;
		}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("benefit field \"currency\" names an unknown currency \"%s\"", code),
			 errhint("The programme's currencies are in loyalty.currency.")));
}

/* "points" in minor units of the benefit's currency, read first */
int64
BenefitPoints(const BenefitReader *r, Benefit *out)
{
	JsonbValue	v;

	BenefitCurrency(r, out);
	BenefitNeed(r, "points", &v);
	return JrScaled(&r->doc, "points", &v, r->ctx->exponents[out->currency_index],
					1, POINTS_MAX, NULL);
}

/* Money in minor units, at least min */
int64
BenefitMoney(const BenefitReader *r, const char *key, int64 min)
{
	JsonbValue	v;

	BenefitNeed(r, key, &v);
	return JrScaled(&r->doc, key, &v, r->ctx->money_exponent, min, MONEY_MAX, NULL);
}

/* A percent with at most two decimals, above 0 and at most 100, in basis points */
int32
BenefitPercent(const BenefitReader *r)
{
	JsonbValue	v;

	BenefitNeed(r, "percent", &v);
	return (int32) JrScaled(&r->doc, "percent", &v, 2, 1, 10000, NULL);
}

/* A required whole number in [min, max] */
int32
BenefitInt(const BenefitReader *r, const char *key, int32 min, int32 max)
{
	JsonbValue	v;

	BenefitNeed(r, key, &v);
	return JrInt(&r->doc, key, &v, min, max);
}

/* Read and check a benefit document; errors name the field */
void
BenefitParse(Jsonb *jb, const BenefitContext *ctx, Benefit *out)
{
	BenefitReader r = {{"benefit"}, &jb->root, ctx};
	JsonbValue	v;
	char	   *kind;
	int			k;

	memset(out, 0, sizeof(*out));
	out->currency_index = -1;
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("benefit must be a JSON object"),
				 errhint("For example {\"kind\": \"percent_off\", \"percent\": 10}.")));
	BenefitNeed(&r, "kind", &v);
	kind = JrString(&r.doc, "kind", &v, 32);
	for (k = 0; k < BEN_NKINDS; k++)
		if (strcmp(kind, BenefitKinds[k]->name) == 0)
			break;
	if (k == BEN_NKINDS)
	{
		StringInfoData names;

		initStringInfo(&names);
		for (int i = 0; i < BEN_NKINDS; i++)
			appendStringInfo(&names, "%s%s", i == 0 ? "" : i == BEN_NKINDS - 1 ? " and " : ", ",
							 BenefitKinds[i]->name);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("benefit kind \"%s\" is unknown", kind),
				 errhint("The kinds are %s.", names.data)));
	}
	out->kind = (BenefitKind) k;
	JrUnknownKeys(&r.doc, NULL, r.obj, BenefitKinds[k]->fields);
	BenefitKinds[k]->parse(&r, out);
}

void
BenefitRenderScaled(JsonBuild *jb, const char *key, int64 v, int exponent)
{
	JbNumeric(jb, key, NumericFromScaled(v, exponent));
}

void
BenefitRenderMoney(JsonBuild *jb, const char *key, int64 v, const BenefitContext *ctx)
{
	BenefitRenderScaled(jb, key, v, ctx->money_exponent);
}

/* "points" at the scale of the benefit's currency, and "currency" */
void
BenefitRenderPoints(JsonBuild *jb, const char *key, const Benefit *b,
					const BenefitContext *ctx)
{
	BenefitRenderScaled(jb, key, b->points, ctx->exponents[b->currency_index]);
	JbText(jb, "currency", b->currency);
}

/* The normal form of a benefit: every field explicit, numbers at their scale */
Jsonb *
BenefitToJsonb(const Benefit *b, const BenefitContext *ctx)
{
	JsonBuild	jb = NULL;

	JbBeginObject(&jb, NULL);
	JbText(&jb, "kind", BenefitKinds[b->kind]->name);
	BenefitKinds[b->kind]->render(&jb, b, ctx);
	return JbFinish(&jb);
}

/* Read a programme's money exponent and currencies through SPI */
static void
LoadBenefitContext(int64 program_id, BenefitContext *ctx, MemoryContext outer)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = Int64GetDatum(program_id);

	if (plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		plan = PrepareKept("SELECT p.money_exponent::int4, p.default_currency,"
						   " c.code, c.exponent::int4"
						   " FROM loyalty.program p LEFT JOIN loyalty.currency c"
						   " ON c.program_id OPERATOR(pg_catalog.=) p.id"
						   " WHERE p.id OPERATOR(pg_catalog.=) $1 ORDER BY c.code",
						   1, types);
	}
	if (SPI_execute_plan(plan, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read loyalty.program");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("programme %lld does not exist", (long long) program_id)));
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		const char **codes = palloc0(sizeof(char *) * SPI_processed);
		int		   *exps = palloc0(sizeof(int) * SPI_processed);
		int			n = 0;

		ctx->money_exponent = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], desc, 1, &isnull));
		ctx->default_currency = SPI_getvalue(SPI_tuptable->vals[0], desc, 2);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			Datum		e = SPI_getbinval(SPI_tuptable->vals[i], desc, 4, &isnull);

			if (isnull)
				continue;
			codes[n] = SPI_getvalue(SPI_tuptable->vals[i], desc, 3);
			exps[n++] = DatumGetInt32(e);
		}
		ctx->currencies = codes;
		ctx->exponents = exps;
		ctx->ncurrencies = n;
		MemoryContextSwitchTo(spi);
	}
}

/* normalize_benefit(benefit jsonb, program_id bigint) returns jsonb */
Datum
loyalty_normalize_benefit(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	int64		program_id = PG_GETARG_INT64(1);
	BenefitContext ctx;
	Benefit		b;
	MemoryContext outer = CurrentMemoryContext;

	RequireProgram(program_id, "programme " INT64_FORMAT, program_id);
	SPI_connect();
	LoadBenefitContext(program_id, &ctx, outer);
	SPI_finish();
	BenefitParse(doc, &ctx, &b);
	PG_RETURN_JSONB_P(BenefitToJsonb(&b, &ctx));
}
