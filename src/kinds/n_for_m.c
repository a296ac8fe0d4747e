/*
 * src/kinds/n_for_m.c
 *
 * {"kind": "n_for_m", "buy": 3, "pay": 2}: of every buy whole units of the
 * eligible lines, buy - pay are free, the cheapest.
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "buy", "pay", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	out->buy = BenefitInt(r, "buy", 2, 1000);
	out->pay = BenefitInt(r, "pay", 1, out->buy - 1);
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	JbInt(jb, "buy", b->buy);
	JbInt(jb, "pay", b->pay);
}

/*
 * n_for_m: of the eligible whole units, F = (units / buy) x (buy - pay) are
 * free, the cheapest.  Lines priced below the F-th cheapest unit give all
 * their units.  Of the lines at that price, which units are free is no
 * matter of price: the value of the free units left is spread over them
 * in proportion to their units, each at most its room, what one cannot
 * take going to the others (so that two promotions freeing units of one
 * price do not both pick the same line's).
 */
static int64
Prepare(const SProblem *p, SPromo *c)
{
	const Benefit *b = c->benefit;
	int64	   *weight = palloc0(sizeof(int64) * Max(p->nlines, 1));
	int64	   *room = palloc0(sizeof(int64) * Max(p->nlines, 1));
	int64		count = 0;
	int64		free_units;
	int64		edge = -1;		/* the price of the last free unit */
	int64		below = 0;		/* units priced below it */
	int64	   *part;

	for (int i = 0; i < p->nlines; i++)
		if (c->elig[i] && p->lines[i].units > 0)
			count += p->lines[i].units;
	free_units = (count / b->buy) * (b->buy - b->pay);
	if (free_units <= 0)
		goto done;
	/* the edge price: the least price with at least free_units units up to it */
	for (;;)
	{
		int64		next = -1;
		int64		n = 0;

		for (int i = 0; i < p->nlines; i++)
			if (c->elig[i] && p->lines[i].units > 0 && p->lines[i].unit_price > edge &&
				(next < 0 || p->lines[i].unit_price < next))
				next = p->lines[i].unit_price;
		for (int i = 0; i < p->nlines; i++)
			if (c->elig[i] && p->lines[i].units > 0 && p->lines[i].unit_price == next)
				n += p->lines[i].units;
		edge = next;
		if (below + n >= free_units)
			break;
		below += n;
	}
	for (int i = 0; i < p->nlines; i++)
	{
		const SLine *l = &p->lines[i];

		if (!c->elig[i] || l->units <= 0)
			continue;
		if (l->unit_price < edge)
			c->disc[i] = l->units * l->unit_price;
		else if (l->unit_price == edge)
		{
			weight[i] = l->units;
			room[i] = Max(0, l->amount - l->floor);
		}
	}
	part = palloc(sizeof(int64) * p->nlines);
	SpreadLargestRemainder((free_units - below) * edge, weight, room, p->nlines, part);
	for (int i = 0; i < p->nlines; i++)
		c->disc[i] += part[i];
	pfree(part);
done:
	pfree(weight);
	pfree(room);
	return 0;
}

const BenefitOps BenefitKind_n_for_m = {
	.name = "n_for_m",
	.role = ROLE_LINE,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
};
