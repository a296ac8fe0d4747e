/*
 * src/kinds/bonus_lot.c
 *
 * {"kind": "bonus_lot", "points": 500, "currency": "bonus", "valid_days": 30,
 *  "restriction": "category <@ 'ski'"}: points once per receipt, as a lot of
 * their own with its validity and restriction; spread over the eligible
 * lines in proportion to their amounts.
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "points", "currency", "valid_days",
"restriction", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	JsonbValue	v;

	out->points = BenefitPoints(r, out);
	if (BenefitHas(r, "valid_days", &v) && v.type != jbvNull)
		out->valid_days = JrInt(&r->doc, "valid_days", &v, 1, 3660);
	if (BenefitHas(r, "restriction", &v) && v.type != jbvNull)
		out->restriction = loyalty_cond_print(BenefitCondition(r, "restriction", &v));
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	BenefitRenderPoints(jb, "points", b, ctx);
	if (b->valid_days > 0)
		JbInt(jb, "valid_days", b->valid_days);
	else
		JbNull(jb, "valid_days");
	JbText(jb, "restriction", b->restriction);
}

static int64
Earn(const SProblem *p, const SPromo *c, const int64 *paid, int64 *weight)
{
	for (int i = 0; i < p->nlines; i++)
		weight[i] = c->elig[i] ? p->lines[i].amount : 0;
	return c->benefit->points;
}

static int64
Prepare(const SProblem *p, SPromo *c)
{
	if (!p->can_earn)
		return 0;
	return Worth(c->benefit->points, p->currencies[c->currency].value_scaled);
}

const BenefitOps BenefitKind_bonus_lot = {
	.name = "bonus_lot",
	.role = ROLE_EARN,
	.own_lot = true,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
	.earn = Earn,
};
