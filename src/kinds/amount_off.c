/*
 * src/kinds/amount_off.c
 *
 * {"kind": "amount_off", "amount": 100.00}: an amount off each unit (of the
 * quantity, rounded half up to the minor unit), at most the line.
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "amount", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	out->amount = BenefitMoney(r, "amount", 1);
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	BenefitRenderMoney(jb, "amount", b->amount, ctx);
}

static int64
Prepare(const SProblem *p, SPromo *c)
{
	for (int i = 0; i < p->nlines; i++)
		if (c->elig[i])
			c->disc[i] = (int64) Min((int128_t) p->lines[i].amount,
									 ((int128_t) c->benefit->amount * p->lines[i].qty_milli + 500) / 1000);
	return 0;
}

const BenefitOps BenefitKind_amount_off = {
	.name = "amount_off",
	.role = ROLE_LINE,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
};
