/*
 * src/kinds/fixed_price.c
 *
 * {"kind": "fixed_price", "price": 499.00}: each unit at a price (of the
 * quantity, rounded half up), the line's amount above it off.
 * {"kind": "fixed_price", "points": 50, "currency": "coins"}: each whole unit
 * for points, where they are worth less than the line and points may pay
 * for it; the search reserves them from the customer's lots.
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "price", "points", "currency", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	JsonbValue	v;
	bool		has_price = BenefitHas(r, "price", &v);

	if (has_price == BenefitHas(r, "points", &v))
		BenefitFail("benefit fixed_price needs exactly one of \"price\" and \"points\"");
	if (has_price)
	{
		if (BenefitHas(r, "currency", &v))
			BenefitFail("benefit field \"currency\" goes only with \"points\"");
		out->amount = BenefitMoney(r, "price", 0);
	}
	else
	{
		out->in_points = true;
		out->points = BenefitPoints(r, out);
	}
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	if (b->in_points)
		BenefitRenderPoints(jb, "points", b, ctx);
	else
		BenefitRenderMoney(jb, "price", b->amount, ctx);
}

static int64
Prepare(const SProblem *p, SPromo *c)
{
	const Benefit *b = c->benefit;

	for (int i = 0; i < p->nlines; i++)
	{
		const SLine *l = &p->lines[i];

		if (!c->elig[i])
			continue;
		if (b->in_points)
		{
			const SCurrency *cur = &p->currencies[c->currency];
			int64		money;

			if (l->units == 0 || !p->can_spend || !l->points_ok)
				continue;
			money = MoneyOf(cur, b->points * l->units);	/* <= 1e12 x 1e4 */
			/* only where the points are worth less than the line */
			if (money >= l->amount)
				continue;
			c->fpoints[i] = b->points * l->units;
			c->disc[i] = l->amount - money;
		}
		else
			c->disc[i] = (int64) Max(0, (int128_t) l->amount -
									 ((int128_t) b->amount * l->qty_milli + 500) / 1000);
	}
	return 0;
}

const BenefitOps BenefitKind_fixed_price = {
	.name = "fixed_price",
	.role = ROLE_LINE,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
};
