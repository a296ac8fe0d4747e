/*
 * src/kinds/multiplier.c
 *
 * {"kind": "multiplier", "factor": 2}: the base accrual multiplied on the
 * lines it holds (the extra, factor - 1, is what it earns), in the
 * programme's default currency.  On a line it competes with the line
 * benefits of its stacking group at the worth of what it earns there.
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "factor", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	JsonbValue	v;

	BenefitNeed(r, "factor", &v);
	out->factor_pct = (int32) JrScaled(&r->doc, "factor", &v, 2, 101, 10000, NULL);
	BenefitCurrency(r, out);
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	BenefitRenderScaled(jb, "factor", b->factor_pct, 2);
}

static int64
Prepare(const SProblem *p, SPromo *c)
{
	int32		extra = c->benefit->factor_pct - 100;
	int64		value_scaled = p->currencies[p->base_currency].value_scaled;

	if (!p->can_earn)
		return 0;
	/* at least 1, so that a weight of 0 still lets it hold lines */
	for (int i = 0; i < p->nlines; i++)
		if (c->elig[i])
			c->lineval[i] = Max(1, Worth(EarnPoints(p, p->lines[i].amount, extra) + 1,
										 value_scaled));
	return Worth(EarnPoints(p, EligibleAmount(p, c), extra), value_scaled);
}

const BenefitOps BenefitKind_multiplier = {
	.name = "multiplier",
	.role = ROLE_MULTIPLIER,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
};
