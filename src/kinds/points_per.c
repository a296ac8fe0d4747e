/*
 * src/kinds/points_per.c
 *
 * {"kind": "points_per", "per": 20.00, "points": 1, "currency": "coins"}:
 * points for each whole step of money the eligible lines paid, once per
 * receipt, spread over those lines in proportion to what they paid.
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "per", "points", "currency", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	out->per = BenefitMoney(r, "per", 1);
	out->points = BenefitPoints(r, out);
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	BenefitRenderMoney(jb, "per", b->per, ctx);
	BenefitRenderPoints(jb, "points", b, ctx);
}

static int64
Earn(const SProblem *p, const SPromo *c, const int64 *paid, int64 *weight)
{
	int64		sum = 0;

	for (int i = 0; i < p->nlines; i++)
	{
		weight[i] = c->elig[i] ? paid[i] : 0;
		sum += weight[i];
	}
	return (sum / c->benefit->per) * c->benefit->points;
}

/* At most what the lines earn at their full amounts */
static int64
Prepare(const SProblem *p, SPromo *c)
{
	if (!p->can_earn)
		return 0;
	return Worth((EligibleAmount(p, c) / c->benefit->per) * c->benefit->points,
				 p->currencies[c->currency].value_scaled);
}

const BenefitOps BenefitKind_points_per = {
	.name = "points_per",
	.role = ROLE_EARN,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
	.earn = Earn,
};
