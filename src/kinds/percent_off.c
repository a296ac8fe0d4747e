/*
 * src/kinds/percent_off.c
 *
 * {"kind": "percent_off", "percent": 10}: a percent off each line, rounded
 * down to the programme's discount step.
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "percent", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	out->percent_bp = BenefitPercent(r);
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	BenefitRenderScaled(jb, "percent", b->percent_bp, 2);
}

static int64
Prepare(const SProblem *p, SPromo *c)
{
	for (int i = 0; i < p->nlines; i++)
		if (c->elig[i])
			c->disc[i] = Step(p, MulDiv(p->lines[i].amount, c->benefit->percent_bp, 10000));
	return 0;
}

const BenefitOps BenefitKind_percent_off = {
	.name = "percent_off",
	.role = ROLE_LINE,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
};
