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

const char *const BenefitKindNames[BEN_NKINDS] = {
	"percent_off", "amount_off", "fixed_price", "n_for_m", "bundle",
	"receipt_off", "points_per", "multiplier", "bonus_lot", "gift"
};

#define MONEY_MAX	INT64CONST(100000000000000)	/* 10^14 minor units */
#define POINTS_MAX	INT64CONST(1000000000)		/* 10^9 minor units of points */

/* Benefits decided per receipt rather than per line */
bool
BenefitIsReceiptLevel(BenefitKind kind)
{
	return kind == BEN_RECEIPT_OFF || kind == BEN_POINTS_PER ||
		kind == BEN_BONUS_LOT || kind == BEN_GIFT;
}

/* Name the benefit field whose condition failed to parse */
static void
ConditionFieldContext(void *arg)
{
	errcontext("benefit field \"%s\"", (const char *) arg);
}

/* A condition given as text in a field */
static Condition *
ParseConditionField(const JsonDoc *doc, const char *path, const JsonbValue *v)
{
	char	   *text = JrString(doc, path, v, 65536);
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

/* A required member */
static void
Need(const JsonDoc *doc, JsonbContainer *obj, const char *key, JsonbValue *v)
{
	if (!JrKey(obj, key, v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s field \"%s\" is missing", doc->name, key)));
}

/* The points currency a benefit names, or the programme's default */
static void
ReadCurrency(const JsonDoc *doc, JsonbContainer *obj, const BenefitContext *ctx,
			 Benefit *out)
{
	JsonbValue	v;
	const char *code = ctx->default_currency;

	if (JrKey(obj, "currency", &v))
		code = JrString(doc, "currency", &v, 32);
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

static int64
ReadPoints(const JsonDoc *doc, JsonbContainer *obj, const BenefitContext *ctx,
		   Benefit *out)
{
	JsonbValue	v;

	ReadCurrency(doc, obj, ctx, out);
	Need(doc, obj, "points", &v);
	return JrScaled(doc, "points", &v, ctx->exponents[out->currency_index],
					1, POINTS_MAX, NULL);
}

static int64
ReadMoney(const JsonDoc *doc, JsonbContainer *obj, const char *key,
		  const BenefitContext *ctx, int64 min)
{
	JsonbValue	v;

	Need(doc, obj, key, &v);
	return JrScaled(doc, key, &v, ctx->money_exponent, min, MONEY_MAX, NULL);
}

/* A percent with at most two decimals, above 0 and at most 100, in basis points */
static int32
ReadPercent(const JsonDoc *doc, JsonbContainer *obj)
{
	JsonbValue	v;

	Need(doc, obj, "percent", &v);
	return (int32) JrScaled(doc, "percent", &v, 2, 1, 10000, NULL);
}

/* Read and check a benefit document; errors name the field */
void
BenefitParse(Jsonb *jb, const BenefitContext *ctx, Benefit *out)
{
	JsonDoc		doc = {"benefit"};
	JsonbContainer *obj = &jb->root;
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
	Need(&doc, obj, "kind", &v);
	kind = JrString(&doc, "kind", &v, 32);
	for (k = 0; k < BEN_NKINDS; k++)
		if (strcmp(kind, BenefitKindNames[k]) == 0)
			break;
	if (k == BEN_NKINDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("benefit kind \"%s\" is unknown", kind),
				 errhint("The kinds are percent_off, amount_off, fixed_price, n_for_m, bundle, receipt_off, points_per, multiplier, bonus_lot and gift.")));
	out->kind = (BenefitKind) k;

	switch (out->kind)
	{
		case BEN_PERCENT_OFF:
			{
				static const char *const known[] = {"kind", "percent", NULL};

				JrUnknownKeys(&doc, NULL, obj, known);
				out->percent_bp = ReadPercent(&doc, obj);
				break;
			}
		case BEN_AMOUNT_OFF:
			{
				static const char *const known[] = {"kind", "amount", NULL};

				JrUnknownKeys(&doc, NULL, obj, known);
				out->amount = ReadMoney(&doc, obj, "amount", ctx, 1);
				break;
			}
		case BEN_FIXED_PRICE:
			{
				static const char *const known[] = {"kind", "price", "points", "currency", NULL};
				bool		has_price = JrKey(obj, "price", &v);

				JrUnknownKeys(&doc, NULL, obj, known);
				if (has_price == JrKey(obj, "points", &v))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("benefit fixed_price needs exactly one of \"price\" and \"points\"")));
				if (has_price)
				{
					if (JrKey(obj, "currency", &v))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("benefit field \"currency\" goes only with \"points\"")));
					out->amount = ReadMoney(&doc, obj, "price", ctx, 0);
				}
				else
				{
					out->in_points = true;
					out->points = ReadPoints(&doc, obj, ctx, out);
				}
				break;
			}
		case BEN_N_FOR_M:
			{
				static const char *const known[] = {"kind", "buy", "pay", NULL};

				JrUnknownKeys(&doc, NULL, obj, known);
				Need(&doc, obj, "buy", &v);
				out->buy = JrInt(&doc, "buy", &v, 2, 1000);
				Need(&doc, obj, "pay", &v);
				out->pay = JrInt(&doc, "pay", &v, 1, out->buy - 1);
				break;
			}
		case BEN_BUNDLE:
			{
				static const char *const known[] = {"kind", "price", "components", NULL};
				static const char *const part_known[] = {"condition", "qty", NULL};
				JsonbIterator *it;
				JsonbValue	e;
				JsonbIteratorToken tok;
				int			n = 0;

				JrUnknownKeys(&doc, NULL, obj, known);
				out->amount = ReadMoney(&doc, obj, "price", ctx, 0);
				Need(&doc, obj, "components", &v);
				if (!JrIsArray(&v) ||
					JsonContainerSize(v.val.binary.data) < 2 ||
					JsonContainerSize(v.val.binary.data) > BENEFIT_MAX_COMPONENTS)
					JrFail(&doc, "components",
						   psprintf("an array of 2 to %d components", BENEFIT_MAX_COMPONENTS));
				out->parts = palloc0(sizeof(BundlePart) * JsonContainerSize(v.val.binary.data));
				it = JsonbIteratorInit(v.val.binary.data);
				while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
				{
					JsonbValue	f;
					char	   *path;

					if (tok != WJB_ELEM)
						continue;
					path = psprintf("components[%d]", n);
					if (!JrIsObject(&e))
						JrFail(&doc, path, "an object with \"condition\" and \"qty\"");
					JrUnknownKeys(&doc, path, e.val.binary.data, part_known);
					if (!JrKey(e.val.binary.data, "condition", &f))
						JrFail(&doc, psprintf("%s.condition", path), "a condition");
					out->parts[n].condition = ParseConditionField(&doc, psprintf("%s.condition", path), &f);
					out->parts[n].qty = 1;
					if (JrKey(e.val.binary.data, "qty", &f))
						out->parts[n].qty = JrInt(&doc, psprintf("%s.qty", path), &f, 1, 100);
					n++;
				}
				out->nparts = n;
				break;
			}
		case BEN_RECEIPT_OFF:
			{
				static const char *const known[] = {"kind", "threshold", "amount", "percent", NULL};
				bool		has_amount = JrKey(obj, "amount", &v);

				JrUnknownKeys(&doc, NULL, obj, known);
				out->threshold = ReadMoney(&doc, obj, "threshold", ctx, 0);
				if (has_amount == JrKey(obj, "percent", &v))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("benefit receipt_off needs exactly one of \"amount\" and \"percent\"")));
				if (has_amount)
					out->amount = ReadMoney(&doc, obj, "amount", ctx, 1);
				else
					out->percent_bp = ReadPercent(&doc, obj);
				break;
			}
		case BEN_POINTS_PER:
			{
				static const char *const known[] = {"kind", "per", "points", "currency", NULL};

				JrUnknownKeys(&doc, NULL, obj, known);
				out->per = ReadMoney(&doc, obj, "per", ctx, 1);
				out->points = ReadPoints(&doc, obj, ctx, out);
				break;
			}
		case BEN_MULTIPLIER:
			{
				static const char *const known[] = {"kind", "factor", NULL};

				JrUnknownKeys(&doc, NULL, obj, known);
				Need(&doc, obj, "factor", &v);
				out->factor_pct = (int32) JrScaled(&doc, "factor", &v, 2, 101, 10000, NULL);
				ReadCurrency(&doc, obj, ctx, out);
				break;
			}
		case BEN_BONUS_LOT:
			{
				static const char *const known[] = {"kind", "points", "currency", "valid_days",
				"restriction", NULL};

				JrUnknownKeys(&doc, NULL, obj, known);
				out->points = ReadPoints(&doc, obj, ctx, out);
				if (JrKey(obj, "valid_days", &v) && v.type != jbvNull)
					out->valid_days = JrInt(&doc, "valid_days", &v, 1, 3660);
				if (JrKey(obj, "restriction", &v) && v.type != jbvNull)
				{
					out->restriction = loyalty_cond_print(ParseConditionField(&doc, "restriction", &v));
				}
				break;
			}
		case BEN_GIFT:
			{
				static const char *const known[] = {"kind", "sku", "value", "name", NULL};

				JrUnknownKeys(&doc, NULL, obj, known);
				Need(&doc, obj, "sku", &v);
				out->sku = JrString(&doc, "sku", &v, 128);
				out->amount = ReadMoney(&doc, obj, "value", ctx, 0);
				if (JrKey(obj, "name", &v) && v.type != jbvNull)
					out->name = JrString(&doc, "name", &v, 200);
				break;
			}
		case BEN_NKINDS:
			pg_unreachable();
	}
}

static void
JbScaled(JsonBuild *jb, const char *key, int64 value, int exponent)
{
	JbNumeric(jb, key, NumericFromScaled(value, exponent));
}

/* The normal form of a benefit: every field explicit, numbers at their scale */
Jsonb *
BenefitToJsonb(const Benefit *b, const BenefitContext *ctx)
{
	JsonBuild	jb = NULL;
	int			mx = ctx->money_exponent;
	int			px = b->currency_index >= 0 ? ctx->exponents[b->currency_index] : 0;

	JbBeginObject(&jb, NULL);
	JbText(&jb, "kind", BenefitKindNames[b->kind]);
	switch (b->kind)
	{
		case BEN_PERCENT_OFF:
			JbScaled(&jb, "percent", b->percent_bp, 2);
			break;
		case BEN_AMOUNT_OFF:
			JbScaled(&jb, "amount", b->amount, mx);
			break;
		case BEN_FIXED_PRICE:
			if (b->in_points)
			{
				JbScaled(&jb, "points", b->points, px);
				JbText(&jb, "currency", b->currency);
			}
			else
				JbScaled(&jb, "price", b->amount, mx);
			break;
		case BEN_N_FOR_M:
			JbInt(&jb, "buy", b->buy);
			JbInt(&jb, "pay", b->pay);
			break;
		case BEN_BUNDLE:
			JbScaled(&jb, "price", b->amount, mx);
			JbBeginArray(&jb, "components");
			for (int i = 0; i < b->nparts; i++)
			{
				JbBeginObject(&jb, NULL);
				JbText(&jb, "condition", loyalty_cond_print(b->parts[i].condition));
				JbInt(&jb, "qty", b->parts[i].qty);
				JbEndObject(&jb);
			}
			JbEndArray(&jb);
			break;
		case BEN_RECEIPT_OFF:
			JbScaled(&jb, "threshold", b->threshold, mx);
			if (b->percent_bp > 0)
				JbScaled(&jb, "percent", b->percent_bp, 2);
			else
				JbScaled(&jb, "amount", b->amount, mx);
			break;
		case BEN_POINTS_PER:
			JbScaled(&jb, "per", b->per, mx);
			JbScaled(&jb, "points", b->points, px);
			JbText(&jb, "currency", b->currency);
			break;
		case BEN_MULTIPLIER:
			JbScaled(&jb, "factor", b->factor_pct, 2);
			break;
		case BEN_BONUS_LOT:
			JbScaled(&jb, "points", b->points, px);
			JbText(&jb, "currency", b->currency);
			if (b->valid_days > 0)
				JbInt(&jb, "valid_days", b->valid_days);
			else
				JbNull(&jb, "valid_days");
			JbText(&jb, "restriction", b->restriction);
			break;
		case BEN_GIFT:
			JbText(&jb, "sku", b->sku);
			JbScaled(&jb, "value", b->amount, mx);
			JbText(&jb, "name", b->name);
			break;
		case BEN_NKINDS:
			pg_unreachable();
	}
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
