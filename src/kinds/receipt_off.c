/*
 * src/kinds/receipt_off.c
 *
 * {"kind": "receipt_off", "threshold": 3000.00, "amount": 300.00}, or
 * "percent": 5 instead of "amount": money off what the eligible lines come
 * to after the line benefits, when that is at least the threshold; spread
 * over them in proportion (search.c, ROLE_RECEIPT_OFF).
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "threshold", "amount", "percent", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	JsonbValue	v;
	bool		has_amount = BenefitHas(r, "amount", &v);

	out->threshold = BenefitMoney(r, "threshold", 0);
	if (has_amount == BenefitHas(r, "percent", &v))
		BenefitFail("benefit receipt_off needs exactly one of \"amount\" and \"percent\"");
	if (has_amount)
		out->amount = BenefitMoney(r, "amount", 1);
	else
		out->percent_bp = BenefitPercent(r);
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	BenefitRenderMoney(jb, "threshold", b->threshold, ctx);
	if (b->percent_bp > 0)
		BenefitRenderScaled(jb, "percent", b->percent_bp, 2);
	else
		BenefitRenderMoney(jb, "amount", b->amount, ctx);
}

/* The lines only ever come to less than their amounts */
static int64
Prepare(const SProblem *p, SPromo *c)
{
	const Benefit *b = c->benefit;
	int64		base = EligibleAmount(p, c);

	if (base < b->threshold || base <= 0)
		return 0;
	return (b->percent_bp > 0 ? MulDiv(base, b->percent_bp, 10000) :
			Min(b->amount, base)) * SEARCH_SCALE;
}

const BenefitOps BenefitKind_receipt_off = {
	.name = "receipt_off",
	.role = ROLE_RECEIPT_OFF,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
};
