/*
 * src/search.c
 *
 * The best-benefit search.  SearchPrepare works out what each candidate
 * promotion would give on each line on its own; SearchEvaluate gives the
 * value of one combination (stacking, clamps, caps, points paid and earned);
 * SearchBranchAndBound finds the combination of greatest value, and
 * SearchExhaustive enumerates every combination to check it.
 *
 * A combination's value (docs/promotions.md, "The best combination"):
 * money off after the cap, plus gifts, scaled by SEARCH_SCALE, plus the
 * points its promotions earn on the full amounts of their lines at their
 * money value times the programme's weight.  Points paid count nothing:
 * they are the customer's own.  Of combinations of equal value the one
 * worth more before the cap wins, then the one that applies the earlier
 * candidate (candidates come in priority order, then code), then the one
 * that leaves out the earlier candidate (Better), so that both searches
 * agree on one answer.
 *
 * Every candidate is a choice, but those that can only add (SearchIndex,
 * FixIndependent).  The bound: adding candidate c to any combination raises
 * its value by at most ub(c), what c gives on its own at full line amounts;
 * so a partial combination's value plus the ub of every candidate still
 * open bounds all of its completions.  This holds because every rule of
 * the evaluation takes from a line only what is left on it: a line keeps
 * only the best promotion of each stacking group, points earned are valued
 * on the full amounts, caps only cut; a price in points the caps dropped
 * may come back as more join (NodeBound counts it).  Under a cap that binds
 * the value is at most the cap plus what may be earned (CappedBound).
 */
#include "postgres.h"

#include <limits.h>
#include <time.h>

#include "miscadmin.h"

#include "search.h"

/*
 * Spread total over n items in proportion to weight, each at most cap[i]
 * (cap NULL: no cap), by largest remainder: the parts sum to total exactly
 * unless the caps cannot hold it.  Ties go to the earlier item.  Returns
 * what was spread.
 *
 * docs/promotions.md, "Spreading": items whose exact share reaches their cap
 * take it and drop out, and the rest is shared again.  A pass here drops
 * items one after the other with what is left going down and the pass's sum
 * of weights kept, which only ever drops an item the exact rule drops too
 * (each one dropped raises the share of the others); the next pass, on the
 * items still in, starts from exact figures again, so the items dropped and
 * the final shares are the rule's.
 */
int64
SpreadLargestRemainder(int64 total, const int64 *weight, const int64 *cap,
					   int n, int64 *out)
{
	bool		done_buf[64];
	int64		rem_buf[64];
	bool	   *done = n <= 64 ? done_buf : palloc(sizeof(bool) * n);
	int64	   *rem = n <= 64 ? rem_buf : palloc(sizeof(int64) * n);
	int64		left = total;

	for (int i = 0; i < n; i++)
	{
		out[i] = 0;
		done[i] = weight[i] <= 0 || (cap && cap[i] <= 0);
	}
	while (left > 0)
	{
		int128_t	wsum = 0;
		bool		clipped = false;
		int64		given = 0;

		for (int i = 0; i < n; i++)
			if (!done[i])
				wsum += weight[i];
		if (wsum == 0)
			break;
		/* items whose share reaches their cap take the cap and drop out */
		for (int i = 0; i < n; i++)
			if (!done[i] && cap &&
				(int128_t) left * weight[i] >= (int128_t) (cap[i] - out[i]) * wsum)
			{
				left -= cap[i] - out[i];
				out[i] = cap[i];
				done[i] = true;
				clipped = true;
			}
		if (clipped)
			continue;
		for (int i = 0; i < n; i++)
			if (!done[i])
			{
				int128_t	num = (int128_t) left * weight[i];
				int64		share = (int64) (num / wsum);

				rem[i] = (int64) (num % wsum);	/* < wsum, compared below */
				out[i] += share;
				given += share;
			}
		left -= given;
		while (left > 0)
		{
			int			best = -1;

			for (int i = 0; i < n; i++)
				if (!done[i] && rem[i] >= 0 && (best < 0 || rem[i] > rem[best]))
					best = i;
			if (best < 0)
				break;
			out[best]++;
			rem[best] = -1;
			left--;
		}
		break;
	}
	if (n > 64)
	{
		pfree(done);
		pfree(rem);
	}
	return total - left;
}

/*
 * Work out what every candidate gives on each line on its own, what it is
 * worth there (what decides the stacking group on a line), and its bound.
 */
void
SearchPrepare(SProblem *p)
{
	p->total = 0;
	for (int i = 0; i < p->nlines; i++)
		p->total += p->lines[i].amount;

	for (int k = 0; k < p->npromos; k++)
	{
		SPromo	   *c = &p->promos[k];
		int64		ub;

		c->disc = palloc0(sizeof(int64) * p->nlines);
		c->fpoints = palloc0(sizeof(int64) * p->nlines);
		c->lineval = palloc0(sizeof(int64) * p->nlines);
		ub = c->ops->prepare(p, c);
		/* a line benefit is worth its lines, the money off them by default */
		if (c->role == ROLE_LINE)
			for (int i = 0; i < p->nlines; i++)
			{
				if (c->lineval[i] == 0)
					c->lineval[i] = c->disc[i] * SEARCH_SCALE;
				ub += c->lineval[i];
			}
		c->ub = ub;
	}
}

/* Points of a lot reserved for a fixed price in points on a line */
typedef struct Reserve
{
	int			promo;
	int			line;
	int			lot;
	int64		points;
} Reserve;

/* Scratch of one evaluation */
typedef struct Eval
{
	int64	   *line_disc;		/* money off per line */
	int64	   *room;			/* what a line may still lose */
	int64	   *paid_points;	/* money paid with points per line */
	int64	   *pre_receipt;	/* what each line came to before receipt discounts */
	int64	   *avail;			/* per currency: spendable, less what is reserved */
	int		   *best;			/* per group: the promotion holding the line */
	int64	   *lot_left;
	int64	   *weight;
	int64	   *part;
	int64	   *most;			/* per line: the points a lot may pay there */
	bool	   *covered;		/* [promo * nlines + line]: fixed price in points affordable */
	bool	   *holds;			/* [promo * nlines + line]: the benefit applies there */
	int64	   *add_value;		/* [promo]: what a receipt benefit that only adds is
								 * worth, scaled; -1 if it is not in */
	int64	   *add_points;		/* [promo]: the points it earns */
	bool	   *add_won;		/* [promo]: it applies */
	int64	   *full;			/* per line: its amount, which points earned
								 * are valued on */
	Reserve    *res;			/* points reserved by fixed prices in points */
	int			nres;
	int64	   *fixed_disc;		/* per line: money off of a price in points */
	bool	   *denied;			/* [promo * nlines + line]: a price in points the
								 * caps leave no room for */
	bool		any_in_points;	/* some candidate is a price in points */
	bool	   *gave;			/* [promo]: it applies (AppliedSet) */
	SDetail    *why;			/* of SearchWhyNot, when used */
} Eval;

/*
 * Which points per money, bonus lots and gifts apply.  They take nothing
 * from the lines; of one receipt stacking group the one worth most applies
 * (the earliest on a tie), and none if a receipt discount of the group does.
 */
static void
AdditiveWinners(const SProblem *p, const bool *in, Eval *e, const int64 *paid)
{
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];

		e->add_value[k] = -1;
		e->add_won[k] = false;
		if (!in[k] || !BenefitRoleOnlyAdds(c->role))
			continue;
		e->add_points[k] = 0;
		if (c->role == ROLE_GIFT)
			e->add_value[k] = c->benefit->amount * SEARCH_SCALE;
		else if (!p->can_earn)
			e->add_value[k] = 0;
		else
		{
			e->add_points[k] = c->ops->earn(p, c, paid, e->part);
			e->add_value[k] = Worth(e->add_points[k], p->currencies[c->currency].value_scaled);
		}
	}
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];
		bool		won = e->add_value[k] >= 0;

		if (won && c->receipt_group >= 0)
			for (int j = 0; j < p->npromos && won; j++)
			{
				const SPromo *o = &p->promos[j];

				if (j == k || !in[j] || o->receipt_group != c->receipt_group)
					continue;
				if (o->role == ROLE_RECEIPT_OFF ||
					(e->add_value[j] >= 0 &&
					 (e->add_value[j] > e->add_value[k] || (e->add_value[j] == e->add_value[k] && j < k))))
					won = false;
			}
		e->add_won[k] = won;
	}
}

/*
 * Points earned on paid[] (per line): the base accrual, multipliers on the
 * lines they hold, points per money, bonus lots; their value, scaled.
 * With detail, the winners of the receipt groups are those already chosen
 * (on what the combination is worth), and every amount is written down.
 */
static int64
Earn(const SProblem *p, const bool *in, Eval *e, const int64 *paid, SDetail *detail)
{
	const SCurrency *base_cur = &p->currencies[p->base_currency];
	int			L = p->nlines;
	int64		value = 0;
	int64		base = 0;

	for (int i = 0; i < L; i++)
		base += paid[i];
	if (p->accrual_rate_bp > 0)
	{
		int64		pts = EarnPoints(p, base, 100);

		value += Worth(pts, base_cur->value_scaled);
		if (detail)
		{
			detail->promo_earn[0] = pts;
			SpreadLargestRemainder(pts, paid, NULL, L, detail->earn);
		}
	}
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];
		int64		sum = 0;
		int64		pts;

		if (!in[k] || c->role != ROLE_MULTIPLIER)
			continue;
		/* a multiplier earns on the lines it holds */
		for (int i = 0; i < L; i++)
		{
			e->part[i] = e->holds[k * L + i] ? paid[i] : 0;
			sum += e->part[i];
		}
		pts = EarnPoints(p, sum, c->benefit->factor_pct - 100);
		value += Worth(pts, base_cur->value_scaled);
		if (!detail)
			e->gave[k] = pts > 0;
		else
		{
			detail->promo_earn[k + 1] = pts;
			SpreadLargestRemainder(pts, e->part, NULL, L, detail->earn + (k + 1) * L);
		}
	}
	if (!detail)
		AdditiveWinners(p, in, e, paid);
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];
		int64		pts;

		if (!e->add_won[k] || c->role != ROLE_EARN)
			continue;
		pts = c->ops->earn(p, c, paid, e->part);
		value += Worth(pts, p->currencies[c->currency].value_scaled);
		if (!detail)
			e->gave[k] = pts > 0;
		else
		{
			detail->won[k] = pts > 0;
			detail->promo_earn[k + 1] = pts;
			SpreadLargestRemainder(pts, e->part, NULL, L, detail->earn + (k + 1) * L);
		}
	}
	return value;
}

/* Forget what an evaluation wrote into detail */
static void
DetailReset(const SProblem *p, SDetail *d)
{
	Size		L = Max(p->nlines, 1);
	Size		P = Max(p->npromos, 1);

	memset(d->part, 0, sizeof(int64) * P * L);
	memset(d->fpaid, 0, sizeof(int64) * P * L);
	memset(d->fmoney, 0, sizeof(int64) * P * L);
	memset(d->lot_points, 0, sizeof(int64) * Max(p->nlots, 1) * L);
	memset(d->lot_money, 0, sizeof(int64) * Max(p->nlots, 1) * L);
	memset(d->earn, 0, sizeof(int64) * (P + 1) * L);
	memset(d->promo_earn, 0, sizeof(int64) * (P + 1));
	memset(d->promo_discount, 0, sizeof(int64) * P);
	memset(d->capped, 0, sizeof(bool) * P);
	memset(d->below_threshold, 0, sizeof(bool) * P);
	memset(d->won, 0, sizeof(bool) * P);
}

/*
 * A price in points that the caps leave no room for: the last one, in the
 * order prices in points take their points (candidates, then lines), that
 * holds its line is denied there.
 */
static void
DenyLastInPoints(const SProblem *p, Eval *e)
{
	int			L = p->nlines;

	for (int k = p->npromos - 1; k >= 0; k--)
		if (p->promos[k].in_points)
			for (int i = L - 1; i >= 0; i--)
				if (e->holds[k * L + i])
				{
					e->denied[k * L + i] = true;
					return;
				}
	elog(ERROR, "a price in points exceeds the caps, but none holds a line");
}

static bool EvaluateOnce(const SProblem *p, const bool *in, SOutcome *out, SDetail *detail,
						 Eval *scratch);

/*
 * The value of the combination in[]: fills out, and when detail is not NULL
 * where every amount went.  A price in points applies whole or not at all:
 * where the caps leave no room for the last one, it is denied on that line
 * and the combination evaluated again (prices in points are few).
 */
void
SearchEvaluate(const SProblem *p, const bool *in, SOutcome *out, SDetail *detail)
{
	Eval	   *e = (Eval *) p->scratch;
	int			L = p->nlines;

	if (!p->indexed)
		elog(ERROR, "SearchEvaluate before SearchIndex");
	if (e->any_in_points)
		memset(e->denied, 0, sizeof(bool) * Max(p->npromos * L, 1));
	while (!EvaluateOnce(p, in, out, detail, e))
	{
		DenyLastInPoints(p, e);
		if (detail)
			DetailReset(p, detail);
	}
	/*
	 * What the denied prices in points would give: a combination with more
	 * in may leave them room (more discounts before one leave it less money
	 * off), so a bound on what it is worth counts them (NodeBound).
	 */
	if (e->any_in_points)
		for (int k = 0; k < p->npromos; k++)
			for (int i = 0; i < L; i++)
				if (e->denied[k * L + i])
				{
					out->denied_value += p->promos[k].disc[i] * SEARCH_SCALE;
					if (detail)
						detail->capped[k] = true;
				}
}

/*
 * One evaluation of in[] with the prices in points denied so far; false if
 * the caps leave no room for a price in points that holds a line.
 */
static bool
EvaluateOnce(const SProblem *p, const bool *in, SOutcome *out, SDetail *detail,
			 Eval *scratch)
{
	int			L = p->nlines;
	Eval		e;
	int64		discount = 0;
	int64		fixed_money = 0;
	int64		fixed_disc = 0;
	int64		points_money = 0;
	int64		earned_value = 0;
	int64		gifts = 0;
	int64		discount_before_cap;
	int64		cap;
	int64		points_cap;

	memset(out, 0, sizeof(*out));
	e = *scratch;
	memset(e.line_disc, 0, sizeof(int64) * L);
	memset(e.fixed_disc, 0, sizeof(int64) * L);
	memset(e.paid_points, 0, sizeof(int64) * L);
	memset(e.holds, 0, sizeof(bool) * Max(p->npromos * L, 1));
	memset(e.covered, 0, sizeof(bool) * Max(p->npromos * L, 1));
	memset(e.gave, 0, sizeof(bool) * Max(p->npromos, 1));
	e.nres = 0;
	for (int l = 0; l < p->nlots; l++)
		e.lot_left[l] = p->lots[l].remaining;
	for (int i = 0; i < L; i++)
		e.room[i] = Max(0, p->lines[i].amount - p->lines[i].floor);

	/*
	 * Fixed prices in points reserve their points first, from the lots that
	 * may pay the line, candidates in order and lines in order, whatever
	 * else the combination holds: one the points do not cover is not applied
	 * on that line, and points reserved for a line that another promotion of
	 * the group wins stay unspent.
	 */
	for (int c = 0; c < p->ncurrencies; c++)
		e.avail[c] = p->currencies[c].spendable;
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];

		if (!in[k] || !c->in_points)
			continue;
		for (int i = 0; i < L; i++)
		{
			int64		need = c->fpoints[i];
			int64		there = 0;

			if (need <= 0 || need > e.avail[c->currency] || e.denied[k * L + i] ||
				(p->line_off && p->line_off[k * L + i]))
				continue;
			for (int l = 0; l < p->nlots; l++)
				if (p->lots[l].currency == c->currency && (!p->lots[l].pays || p->lots[l].pays[i]))
					there += e.lot_left[l];
			if (there < need)
				continue;
			e.covered[k * L + i] = true;
			e.avail[c->currency] -= need;
			for (int l = 0; l < p->nlots && need > 0; l++)
			{
				int64		t;

				if (p->lots[l].currency != c->currency || (p->lots[l].pays && !p->lots[l].pays[i]))
					continue;
				t = Min(need, e.lot_left[l]);
				if (t <= 0)
					continue;
				e.lot_left[l] -= t;
				need -= t;
				e.res[e.nres++] = (Reserve) {k, i, l, t};
			}
		}
	}

	/* line benefits: the best of each stacking group holds the line */
	for (int i = 0; i < L; i++)
	{
		int			first = p->line_first[i];
		int			last = p->line_first[i + 1];

		for (int x = first; x < last; x++)
		{
			int			k = p->line_cands[x];
			const SPromo *c = &p->promos[k];

			if (in[k] && c->group >= 0)
				e.best[c->group] = -1;
		}
		for (int x = first; x < last; x++)
		{
			int			k = p->line_cands[x];
			const SPromo *c = &p->promos[k];

			if (!in[k] || c->group < 0 || (c->in_points && !e.covered[k * L + i]))
				continue;
			if (e.best[c->group] < 0 ||
				c->lineval[i] > p->promos[e.best[c->group]].lineval[i])
				e.best[c->group] = k;
		}
		for (int x = first; x < last; x++)
		{
			int			k = p->line_cands[x];
			const SPromo *c = &p->promos[k];
			int64		take;

			if (!in[k] || (c->in_points && !e.covered[k * L + i]) ||
				(c->group >= 0 && e.best[c->group] != k))
				continue;
			if (c->in_points)
			{
				/*
				 * A price in points: its points pay their worth, and its money
				 * off the rest of the line down to its floor.  Where what is
				 * left of the line (after the benefits before it) is worth
				 * less than its points, it does not take the line: the
				 * customer never pays more in points than the line.
				 */
				int64		worth = MoneyOf(&p->currencies[c->currency], c->fpoints[i]);

				if (e.room[i] < worth)
					continue;
				e.holds[k * L + i] = true;
				e.gave[k] = true;
				take = Min(c->disc[i], e.room[i] - worth);
				e.room[i] -= take + worth;
				e.line_disc[i] += take;
				e.fixed_disc[i] += take;
				fixed_disc += take;
				e.paid_points[i] += worth;
				fixed_money += worth;
				if (detail)
				{
					detail->part[k * L + i] = take;
					detail->fpaid[k * L + i] = c->fpoints[i];
					detail->fmoney[k * L + i] = worth;
				}
				continue;
			}
			e.holds[k * L + i] = true;
			if (c->role == ROLE_MULTIPLIER)
				continue;
			take = Min(c->disc[i], e.room[i]);
			e.room[i] -= take;
			e.line_disc[i] += take;
			e.gave[k] |= take > 0;
			if (detail)
				detail->part[k * L + i] = take;
		}
	}

	/*
	 * Points reserved for a line that its price in points did not take
	 * (another of its group holds it, or too little of the line was left)
	 * go back to what the receipt may spend.
	 */
	for (int r = 0; r < e.nres; r++)
		if (!e.holds[e.res[r].promo * L + e.res[r].line])
		{
			e.lot_left[e.res[r].lot] += e.res[r].points;
			e.avail[p->promos[e.res[r].promo].currency] += e.res[r].points;
		}

	/* which lots paid the fixed prices in points that hold their lines */
	if (detail)
		for (int r = 0; r < e.nres; r++)
		{
			const Reserve *res = &e.res[r];
			int			kl = res->promo * L + res->line;
			int64		money;

			if (!e.holds[kl])
				continue;
			/* the money goes with the points; the last lot takes the rest */
			money = MulDiv(detail->fmoney[kl], res->points, detail->fpaid[kl]);
			if (r + 1 == e.nres || e.res[r + 1].promo != res->promo || e.res[r + 1].line != res->line)
			{
				int64		before = 0;

				for (int q = r - 1; q >= 0 && e.res[q].promo == res->promo && e.res[q].line == res->line; q--)
					before += MulDiv(detail->fmoney[kl], e.res[q].points, detail->fpaid[kl]);
				money = detail->fmoney[kl] - before;
			}
			detail->lot_points[res->lot * L + res->line] += res->points;
			detail->lot_money[res->lot * L + res->line] += money;
		}

	for (int i = 0; i < L; i++)
		e.pre_receipt[i] = p->lines[i].amount - e.line_disc[i] - e.paid_points[i];

	/* receipt discounts above a threshold, on what the lines come to now */
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];
		int64		base = 0;
		int64		d;

		if (!in[k] || c->role != ROLE_RECEIPT_OFF)
			continue;
		for (int i = 0; i < L; i++)
		{
			e.weight[i] = c->elig[i] ? p->lines[i].amount - e.line_disc[i] - e.paid_points[i] : 0;
			base += e.weight[i];
		}
		if (base < c->benefit->threshold || base == 0)
		{
			/* lines that come to nothing are not under a threshold of 0 */
			if (detail && base < c->benefit->threshold)
				detail->below_threshold[k] = true;
			continue;
		}
		d = c->benefit->percent_bp > 0 ? Step(p, MulDiv(base, c->benefit->percent_bp, 10000)) :
			c->benefit->amount;
		SpreadLargestRemainder(d, e.weight, e.room, L, e.part);
		for (int i = 0; i < L; i++)
		{
			e.gave[k] |= e.part[i] > 0;
			e.room[i] -= e.part[i];
			e.line_disc[i] += e.part[i];
			if (detail)
				detail->part[k * L + i] = e.part[i];
		}
	}

	for (int i = 0; i < L; i++)
		discount += e.line_disc[i];
	discount_before_cap = discount;

	/*
	 * The caps.  max_discount_bp bounds the discounts plus all points paid;
	 * max_points_bp bounds the points paid against what the receipt comes
	 * to after the discounts.  A price in points counts as both: its money
	 * off as a discount, its points as points paid.  It is never cut: the
	 * prices in points come first under the cap on discounts, and one that
	 * does not fit, with those before it, is denied (the caller evaluates
	 * again without it).  The other discounts are cut, in proportion, to
	 * what the prices in points leave of the cap.
	 */
	cap = MulDiv(p->total, p->max_discount_bp, 10000);
	if (fixed_disc + fixed_money > cap)
		return false;
	if (discount - fixed_disc > cap - fixed_disc - fixed_money)
	{
		int64		cut = (discount - fixed_disc) - (cap - fixed_disc - fixed_money);

		out->cap_bound = true;
		for (int i = 0; i < L; i++)
			e.weight[i] = e.line_disc[i] - e.fixed_disc[i];
		SpreadLargestRemainder(cut, e.weight, e.weight, L, e.part);
		for (int i = 0; i < L; i++)
		{
			if (e.part[i] == 0)
				continue;
			/* within the line, from each promotion in proportion to its part */
			if (detail)
			{
				int64	   *w = palloc(sizeof(int64) * p->npromos);
				int64	   *o = palloc(sizeof(int64) * p->npromos);

				for (int k = 0; k < p->npromos; k++)
					w[k] = p->promos[k].in_points ? 0 : detail->part[k * L + i];
				SpreadLargestRemainder(e.part[i], w, w, p->npromos, o);
				for (int k = 0; k < p->npromos; k++)
					if (o[k] > 0)
					{
						detail->part[k * L + i] -= o[k];
						detail->capped[k] = true;
					}
				pfree(w);
				pfree(o);
			}
			e.line_disc[i] -= e.part[i];
			e.room[i] += e.part[i];
		}
		discount -= cut;
	}
	points_cap = MulDiv(p->total - discount, p->max_points_bp, 10000);
	if (fixed_money > points_cap)
		return false;

	/*
	 * Requested points: lots in spending order, within both caps.  Each lot
	 * pays the lines it may pay together: as many of its points as the
	 * lines, the caps and the request take, spread over those lines in
	 * proportion to what each comes to now (after the discounts and the
	 * points paid before), each line at most the points its room buys
	 * (largest remainder); a line's points are then cut to what its money
	 * needs.  So the points of a receipt are spread over its lines, and a
	 * return gives back the points of the lines returned.
	 */
	if (p->can_spend && p->nlots > 0)
	{
		int64		room_total = Min(cap - discount - fixed_money, points_cap - fixed_money);
		int64	   *budget = palloc(sizeof(int64) * Max(p->ncurrencies, 1));
		int64	   *most = e.most;

		for (int c = 0; c < p->ncurrencies; c++)
			budget[c] = p->currencies[c].request < 0 ? e.avail[c] :
				Min(p->currencies[c].request, e.avail[c]);
		for (int l = 0; l < p->nlots && room_total > 0; l++)
		{
			const SLot *lot = &p->lots[l];
			const SCurrency *cur = &p->currencies[lot->currency];
			int64		pts = Min(e.lot_left[l], budget[lot->currency]);
			int64		fits = 0;

			if (pts <= 0)
				continue;
			for (int i = 0; i < L; i++)
			{
				bool		may = p->lines[i].points_ok && e.room[i] > 0 &&
					(lot->pays == NULL || lot->pays[i]);

				most[i] = may ? PointsFor(cur, e.room[i]) : 0;
				e.weight[i] = most[i] > 0 ? p->lines[i].amount - e.line_disc[i] - e.paid_points[i] : 0;
				fits += most[i];
			}
			pts = Min(pts, Min(fits, PointsFor(cur, room_total)));
			if (pts <= 0)
				continue;
			SpreadLargestRemainder(pts, e.weight, most, L, e.part);
			for (int i = 0; i < L; i++)
			{
				int64		money = MoneyOf(cur, e.part[i]);
				int64		need;

				if (money <= 0)
					continue;
				/* no point more than the money needs */
				need = (int64) (((int128_t) money * cur->value_den + cur->value_num - 1) / cur->value_num);
				e.lot_left[l] -= need;
				budget[lot->currency] -= need;
				e.room[i] -= money;
				e.paid_points[i] += money;
				room_total -= money;
				points_money += money;
				if (detail)
				{
					detail->lot_points[l * L + i] += need;
					detail->lot_money[l * L + i] += money;
				}
			}
		}
		pfree(budget);
	}

	/*
	 * Points earned.  What a combination is worth counts them on the full
	 * amounts of the lines they are earned on: what a multiplier, points per
	 * money or a bonus lot gives, whatever the discounts.  So a discount is
	 * worth its money off, and what the promotions give adds up; the base
	 * accrual is the same for all.  The answer shows them on the money paid.
	 */
	if (p->can_earn)
	{
		earned_value = Earn(p, in, &e, e.full, NULL);
		if (detail)
		{
			for (int i = 0; i < L; i++)
				e.weight[i] = p->lines[i].amount - e.line_disc[i] - e.paid_points[i];
			(void) Earn(p, in, &e, e.weight, detail);
		}
	}
	else
		AdditiveWinners(p, in, &e, e.full);
	for (int k = 0; k < p->npromos; k++)
		if (e.add_won[k] && p->promos[k].role == ROLE_GIFT)
		{
			e.gave[k] = true;
			gifts += p->promos[k].benefit->amount;
			if (detail)
				detail->won[k] = true;
		}

	if (detail)
		for (int k = 0; k < p->npromos; k++)
		{
			detail->promo_discount[k] = 0;
			for (int i = 0; i < L; i++)
				detail->promo_discount[k] += detail->part[k * L + i];
		}

	out->discount = discount;
	out->points_money = points_money + fixed_money;
	out->fixed_money = fixed_money;
	out->gifts = gifts;
	out->earned_value = earned_value;
	/* points paid are the customer's own: only what they save counts */
	out->value = (discount + gifts) * SEARCH_SCALE + earned_value;
	out->uncapped = (discount_before_cap + gifts) * SEARCH_SCALE + earned_value;
	return true;
}

SDetail *
SearchDetailAlloc(const SProblem *p)
{
	SDetail    *d = palloc0(sizeof(SDetail));
	int			L = Max(p->nlines, 1);
	int			P = Max(p->npromos, 1);

	d->part = palloc0(sizeof(int64) * P * L);
	d->fpaid = palloc0(sizeof(int64) * P * L);
	d->fmoney = palloc0(sizeof(int64) * P * L);
	d->lot_points = palloc0(sizeof(int64) * Max(p->nlots, 1) * L);
	d->lot_money = palloc0(sizeof(int64) * Max(p->nlots, 1) * L);
	d->earn = palloc0(sizeof(int64) * (P + 1) * L);
	d->promo_earn = palloc0(sizeof(int64) * (P + 1));
	d->promo_discount = palloc0(sizeof(int64) * P);
	d->capped = palloc0(sizeof(bool) * P);
	d->below_threshold = palloc0(sizeof(bool) * P);
	d->won = palloc0(sizeof(bool) * P);
	return d;
}

/* Do a and b give the same on every line and compete alike? */
static bool
Twins(const SProblem *p, const SPromo *a, const SPromo *b)
{
	int			L = p->nlines;
	const Benefit *x = a->benefit,
			   *y = b->benefit;

	if (a->ub != b->ub || x->kind != y->kind || a->group != b->group ||
		a->receipt_group != b->receipt_group ||
		a->exclusive != b->exclusive || a->in_points != b->in_points ||
		a->currency != b->currency || x->threshold != y->threshold ||
		x->amount != y->amount || x->percent_bp != y->percent_bp || x->per != y->per ||
		x->points != y->points || x->buy != y->buy ||
		x->pay != y->pay || x->nparts != y->nparts || x->factor_pct != y->factor_pct ||
		memcmp(a->elig, b->elig, sizeof(bool) * L) != 0 ||
		memcmp(a->disc, b->disc, sizeof(int64) * L) != 0 ||
		memcmp(a->fpoints, b->fpoints, sizeof(int64) * L) != 0 ||
		memcmp(a->lineval, b->lineval, sizeof(int64) * L) != 0)
		return false;
	for (int q = 0; q < x->nparts; q++)
		if (x->parts[q].qty != y->parts[q].qty ||
			memcmp(a->part_elig[q], b->part_elig[q], sizeof(bool) * L) != 0)
			return false;
	return true;
}

/* Greater worth first; then the candidates' order */
static int
searched_cmp(const void *a, const void *b, void *arg)
{
	const SProblem *p = arg;
	int			x = *(const int *) a,
				y = *(const int *) b;

	if (p->promos[x].ub != p->promos[y].ub)
		return p->promos[x].ub > p->promos[y].ub ? -1 : 1;
	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Can including candidate c never lower what a combination is worth, nor
 * change what the others give?  So for what only adds points or a gift and
 * competes with nothing: points per money, bonus lots and gifts outside a
 * stacking group, multipliers outside one (they take nothing from a line,
 * and earn only more).  Those apply unless an exclusive promotion does; every
 * other candidate is a choice of the search.  A discount is not: it lowers
 * what a receipt discount's lines come to (below its threshold, perhaps),
 * what earns points, and what the caps leave to the others.
 */
static bool
SearchNeverHurts(const SPromo *c)
{
	if (c->exclusive)
		return false;
	if (BenefitRoleOnlyAdds(c->role))
		return c->receipt_group < 0;
	if (c->role == ROLE_MULTIPLIER)
		return c->group < 0;
	return false;
}

/*
 * Line benefits that including can only make better: mark them fixed.
 *
 * A discount k (percent off, amount off, a fixed price in money, not
 * exclusive) raises what every combination is worth, whatever else is in,
 * when it takes all it gives and nothing else moves: on each of its lines
 * no other candidate of its stacking group gives anything, and all the
 * line benefits of all candidates together fit in the line above its
 * floor; the cap on discounts can never bind (all the discounts of all
 * candidates fit in it); no price in points is a candidate (whose points
 * the caps on points and the room of a line decide); and every receipt
 * discount on its lines stays above its threshold and can spread in full,
 * whatever the line benefits take.  Then k adds to a combination at least
 * its money off over what another of its group would give on its lines,
 * less what a percent receipt discount on its lines loses with it (points
 * earned are valued on the full amounts: a discount does not change them):
 * when that is more than nothing, k is in every best combination, and the
 * search need not decide it.
 */
static void
FixIndependent(SProblem *p)
{
	int			L = p->nlines;
	int64	   *line_sum = palloc0(sizeof(int64) * Max(L, 1));
	int64	   *room = palloc(sizeof(int64) * Max(L, 1));
	int64	   *rmax = palloc0(sizeof(int64) * Max(p->npromos, 1));
	int64		receipt_all = 0;
	int64		dmax_total = 0;
	int64		cap = MulDiv(p->total, p->max_discount_bp, 10000);
	bool	   *holds = NULL;	/* per receipt discount: it holds, whatever */
	int		   *lines = NULL;

	for (int k = 0; k < p->npromos; k++)
		if (p->promos[k].in_points)
			goto done;
	for (int i = 0; i < L; i++)
		room[i] = Max(0, p->lines[i].amount - p->lines[i].floor);
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];

		if (c->role == ROLE_RECEIPT_OFF)
		{
			rmax[k] = c->ub / SEARCH_SCALE;
			receipt_all += rmax[k];
		}
		else if (!BenefitRoleIsReceiptLevel(c->role) && c->group < 0)
			for (int i = 0; i < L; i++)
				line_sum[i] += c->disc[i];
	}
	/* of a stacking group, one benefit holds a line: its greatest counts */
	for (int i = 0; i < L; i++)
		for (int x = p->line_first[i]; x < p->line_first[i + 1]; x++)
		{
			const SPromo *c = &p->promos[p->line_cands[x]];
			bool		greatest = c->group >= 0;

			for (int y = p->line_first[i]; y < p->line_first[i + 1] && greatest; y++)
			{
				const SPromo *o = &p->promos[p->line_cands[y]];

				if (y != x && o->group == c->group &&
					(o->disc[i] > c->disc[i] || (o->disc[i] == c->disc[i] && y < x)))
					greatest = false;
			}
			if (greatest)
				line_sum[i] += c->disc[i];
		}
	for (int i = 0; i < L; i++)
		dmax_total += Min(room[i], line_sum[i]);
	/* the cap on discounts must never bind */
	if (p->max_discount_bp < 10000 && dmax_total + receipt_all > cap)
		goto done;

	/*
	 * Whether each receipt discount stays above its threshold and can spread
	 * in full whatever the line benefits take does not depend on the
	 * candidate: decided once.  Its base is what its lines come to after the
	 * most the line benefits can take, less the most the receipt discounts
	 * before it take; its slack, the room left on its lines.
	 */
	holds = palloc0(sizeof(bool) * Max(p->npromos, 1));
	{
		int64		before = 0; /* the most the receipt discounts before take */

		for (int r = 0; r < p->npromos; r++)
		{
			const SPromo *o = &p->promos[r];
			int64		base = 0;
			int64		slack = 0;

			if (o->role != ROLE_RECEIPT_OFF)
				continue;
			for (int i = 0; i < L; i++)
				if (o->elig[i])
				{
					base += p->lines[i].amount - Min(room[i], line_sum[i]);
					slack += room[i] - Min(room[i], line_sum[i]);
				}
			base -= before;
			holds[r] = !(base < o->benefit->threshold || base <= 0 || rmax[r] > base ||
						 slack < receipt_all);
			before += rmax[r];
		}
	}
	lines = palloc(sizeof(int) * Max(L, 1));

	for (int k = 0; k < p->npromos; k++)
	{
		SPromo	   *c = &p->promos[k];
		int64		t = 0;
		int64		gain = 0;		/* money it adds at least */
		int64		lost = 0;		/* money a percent receipt discount loses */
		bool		ok = true;
		int			nlines = 0; /* the lines it gives something on */

		if (c->exclusive || c->in_points || c->role != ROLE_LINE)
			continue;
		for (int i = 0; i < L && ok; i++)
		{
			int64		other = 0;	/* the most another of its group gives here */

			if (c->disc[i] <= 0)
				continue;
			lines[nlines++] = i;
			if (line_sum[i] > room[i])
				ok = false;
			/* it must hold the line against its group, whatever is in */
			if (c->group >= 0)
				for (int x = p->line_first[i]; x < p->line_first[i + 1] && ok; x++)
				{
					int			j = p->line_cands[x];
					const SPromo *o = &p->promos[j];

					if (j == k || o->group != c->group)
						continue;
					if (o->role == ROLE_MULTIPLIER || o->lineval[i] >= c->lineval[i])
						ok = false;
					other = Max(other, o->disc[i]);
				}
			t += c->disc[i];
			gain += c->disc[i] - other;
		}
		if (!ok || gain <= 0)
			continue;
		/* the receipt discounts on its lines */
		for (int r = 0; r < p->npromos && ok; r++)
		{
			const SPromo *o = &p->promos[r];
			bool		touches = false;
			int64		part = 0;

			if (o->role != ROLE_RECEIPT_OFF)
				continue;
			for (int x = 0; x < nlines; x++)
				if (o->elig[lines[x]])
				{
					touches = true;
					part += c->disc[lines[x]];
				}
			if (!touches)
				continue;
			if (!holds[r])
				ok = false;
			else if (o->benefit->percent_bp > 0)
				lost += MulDiv(part, o->benefit->percent_bp, 10000) + Max(1, p->discount_step);
		}
		if (!ok)
			continue;
		if (gain > lost)
			c->fixed = true;
	}
done:
	pfree(line_sum);
	pfree(room);
	pfree(rmax);
	if (holds)
		pfree(holds);
	if (lines)
		pfree(lines);
}

/*
 * A receipt stacking group of points per money, bonus lots and gifts only
 * (no receipt discount, nothing exclusive): one applies, and what each is
 * worth does not depend on anything else (points are valued on the full
 * amounts).  The one worth most (on a tie, one that gives something, at a
 * weight of 0 say, then the first, as the tie rule wants) is in every best
 * combination if it gives anything (EarnerGives); the others in none.
 * Decided here, not searched.
 */
static bool
EarnerGives(const SProblem *p, const SPromo *c, const int64 *full, int64 *weight)
{
	if (c->role == ROLE_GIFT)
		return true;
	if (!p->can_earn)
		return false;
	return c->ops->earn(p, c, full, weight) > 0;
}

static void
DecideEarnerGroups(SProblem *p)
{
	int		   *winner = palloc(sizeof(int) * Max(p->ngroups, 1));
	bool	   *only = palloc(sizeof(bool) * Max(p->ngroups, 1));
	bool	   *gives = palloc0(sizeof(bool) * Max(p->npromos, 1));
	int64	   *full = palloc(sizeof(int64) * Max(p->nlines, 1));
	int64	   *weight = palloc(sizeof(int64) * Max(p->nlines, 1));

	for (int g = 0; g < p->ngroups; g++)
	{
		winner[g] = -1;
		only[g] = true;
	}
	/* whether each earner of a receipt group gives anything, on the full amounts */
	for (int i = 0; i < p->nlines; i++)
		full[i] = p->lines[i].amount;
	for (int k = 0; k < p->npromos; k++)
		if (p->promos[k].receipt_group >= 0 && BenefitRoleOnlyAdds(p->promos[k].role))
			gives[k] = EarnerGives(p, &p->promos[k], full, weight);
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];
		int			g = c->receipt_group;

		if (g < 0)
			continue;
		if (c->exclusive || !BenefitRoleOnlyAdds(c->role))
			only[g] = false;
		else if (winner[g] < 0 || c->ub > p->promos[winner[g]].ub ||
				 (c->ub == p->promos[winner[g]].ub && gives[k] && !gives[winner[g]]))
			winner[g] = k;
	}
	for (int k = 0; k < p->npromos; k++)
	{
		SPromo	   *c = &p->promos[k];
		int			g = c->receipt_group;

		if (g < 0 || !only[g])
			continue;
		if (k == winner[g] && gives[k])
			c->fixed = true;
		else
			c->decided_out = true;
	}
	pfree(winner);
	pfree(only);
	pfree(gives);
	pfree(full);
	pfree(weight);
}

/*
 * Decide which candidates the search decides, index each line's candidates,
 * and allocate the evaluation's scratch; once the candidates are in their
 * final order.  Every candidate is a choice of the search, but those that
 * can never hurt (SearchNeverHurts): they apply unless an exclusive
 * promotion does.
 */
void
SearchIndex(SProblem *p)
{
	int			L = p->nlines;
	int			n = 0;
	int			last_in_points = -1;	/* the last price in points before k */
	Eval	   *e;

	p->line_first = palloc(sizeof(int) * (L + 1));
	p->line_cands = palloc(sizeof(int) * Max(p->npromos * L, 1));
	for (int i = 0; i < L; i++)
	{
		p->line_first[i] = n;
		for (int k = 0; k < p->npromos; k++)
			if (p->promos[k].lineval[i] > 0 && !BenefitRoleIsReceiptLevel(p->promos[k].role))
				p->line_cands[n++] = k;
	}
	p->line_first[L] = n;

	for (int k = 0; k < p->npromos; k++)
		p->promos[k].fixed = p->promos[k].decided_out = false;
	if (!p->exhaustive)
	{
		FixIndependent(p);
		DecideEarnerGroups(p);
	}
	p->searched = palloc(sizeof(int) * Max(p->npromos, 1));
	p->nsearched = 0;
	for (int k = 0; k < p->npromos; k++)
	{
		SPromo	   *c = &p->promos[k];

		c->twin_of = -1;
		if (k > 0 && p->promos[k - 1].in_points)
			last_in_points = k - 1;
		if (!p->exhaustive)
			c->fixed |= SearchNeverHurts(c);
		if (!c->fixed && !c->decided_out)
		{
			/* an earlier searched twin: the same benefit on the same lines */
			/*
			 * Not receipt discounts: they apply in the candidates' order,
			 * and where one comes decides what the others' lines come to.
			 * Nor two with a price in points between them: whether it takes
			 * a line depends on what came before it there.
			 */
			for (int x = 0; x < p->nsearched && c->twin_of < 0 && !c->in_points &&
				 c->role != ROLE_RECEIPT_OFF; x++)
				if (p->searched[x] > last_in_points &&
					Twins(p, &p->promos[p->searched[x]], c))
					c->twin_of = p->searched[x];
			p->searched[p->nsearched++] = k;
		}
	}

	/*
	 * The search decides the weightiest first (a stable sort: a twin stays
	 * after the candidate it twins), so that the many small choices (one
	 * receipt discount of fifteen) come last, where the bound is tight.
	 * Ties do not follow this order but the candidates' own (Better).
	 */
	qsort_arg(p->searched, p->nsearched, sizeof(int), searched_cmp, p);
	p->search_pos = palloc(sizeof(int) * Max(p->npromos, 1));
	for (int k = 0; k < p->npromos; k++)
		p->search_pos[k] = -1;
	for (int x = 0; x < p->nsearched; x++)
		p->search_pos[p->searched[x]] = x;

	e = palloc0(sizeof(Eval));
	e->line_disc = palloc0(sizeof(int64) * Max(L, 1));
	e->room = palloc(sizeof(int64) * Max(L, 1));
	e->paid_points = palloc0(sizeof(int64) * Max(L, 1));
	e->pre_receipt = palloc0(sizeof(int64) * Max(L, 1));
	e->avail = palloc(sizeof(int64) * Max(p->ncurrencies, 1));
	e->holds = palloc0(sizeof(bool) * Max(p->npromos * L, 1));
	{
		/* every reservation but the last of a line empties a lot */
		Size		n_in_points = 0;

		for (int k = 0; k < p->npromos; k++)
			if (p->promos[k].in_points)
				n_in_points++;
		e->res = palloc(sizeof(Reserve) * (n_in_points * (Size) L + p->nlots + 1));
	}
	e->best = palloc(sizeof(int) * Max(p->ngroups, 1));
	e->lot_left = palloc(sizeof(int64) * Max(p->nlots, 1));
	e->weight = palloc(sizeof(int64) * Max(L, 1));
	e->part = palloc(sizeof(int64) * Max(L, 1));
	e->most = palloc(sizeof(int64) * Max(L, 1));
	e->covered = palloc0(sizeof(bool) * Max(p->npromos * L, 1));
	e->add_value = palloc(sizeof(int64) * Max(p->npromos, 1));
	e->add_points = palloc(sizeof(int64) * Max(p->npromos, 1));
	e->add_won = palloc0(sizeof(bool) * Max(p->npromos, 1));
	e->full = palloc(sizeof(int64) * Max(L, 1));
	for (int i = 0; i < L; i++)
		e->full[i] = p->lines[i].amount;
	e->fixed_disc = palloc0(sizeof(int64) * Max(L, 1));
	e->denied = palloc0(sizeof(bool) * Max(p->npromos * L, 1));
	for (int k = 0; k < p->npromos; k++)
		e->any_in_points |= p->promos[k].in_points;
	e->gave = palloc0(sizeof(bool) * Max(p->npromos, 1));
	p->scratch = e;
	p->indexed = true;
}

/* May searched candidate k join the searched candidates already in in[]? */
static bool
Compatible(const SProblem *p, const bool *in, int k)
{
	const SPromo *c = &p->promos[k];

	for (int x = 0; x < p->nsearched; x++)
	{
		int			j = p->searched[x];

		if (!in[j] || j == k)
			continue;
		if (c->exclusive || p->promos[j].exclusive)
			return false;
		if (c->receipt_group >= 0 && p->promos[j].receipt_group == c->receipt_group)
			return false;
	}
	return true;
}

/*
 * Can line candidate k hold no line, whatever else joins?  So when on each
 * of its lines a promotion of its stacking group that is in (and not priced
 * in points, whose lines depend on the points) is worth more, or as much and
 * comes first.  Then k changes nothing, in this combination or any larger.
 */
static bool
Shadowed(const SProblem *p, const bool *in, int k)
{
	const SPromo *c = &p->promos[k];

	/* a price in points reserves points even where it holds nothing */
	if (c->group < 0 || BenefitRoleIsReceiptLevel(c->role) || c->in_points)
		return false;
	for (int i = 0; i < p->nlines; i++)
	{
		bool		held = false;

		if (c->lineval[i] <= 0)
			continue;
		for (int x = p->line_first[i]; x < p->line_first[i + 1] && !held; x++)
		{
			int			j = p->line_cands[x];
			const SPromo *o = &p->promos[j];

			if (j != k && in[j] && o->group == c->group && !o->in_points &&
				(o->lineval[i] > c->lineval[i] || (o->lineval[i] == c->lineval[i] && j < k)))
				held = true;
		}
		if (!held)
			return false;
	}
	return true;
}

/* Line discounts apply unless an exclusive promotion does */
static void
SetFixed(const SProblem *p, bool *in)
{
	bool		exclusive = false;

	for (int x = 0; x < p->nsearched; x++)
		if (in[p->searched[x]] && p->promos[p->searched[x]].exclusive)
			exclusive = true;
	for (int k = 0; k < p->npromos; k++)
		if (p->promos[k].fixed)
			in[k] = !exclusive;
}

/*
 * Does candidate k give anything in the answer of the combination evaluated
 * with detail: money off after the cap, a price in points taken, points
 * earned on the money paid, a gift?  What the answer lists as applied (and
 * commit counts as a use); a promotion the cap cut to nothing, or that
 * earns nothing on the money paid, is not.
 */
bool
SearchShows(const SProblem *p, const SDetail *det, int k)
{
	int			L = p->nlines;

	if (det->promo_discount[k] > 0 || det->promo_earn[k + 1] > 0 || det->won[k])
		return true;
	for (int i = 0; i < L; i++)
		if (det->fpaid[k * L + i] > 0)
			return true;
	return false;
}

/*
 * Why candidate k, left out of the best combination best_set[] (or in
 * the combination the search chose without giving anything), does not
 * apply: with it added to the best, a receipt discount under its threshold
 * is SEARCH_WHY_THRESHOLD, a price in points the caps leave no room for (or
 * a discount the cap cut to nothing) SEARCH_WHY_CAP; otherwise, or where it
 * cannot join (its receipt group taken, an exclusive promotion),
 * SEARCH_WHY_BETTER.  best_set is SearchBestSet of what the search chose;
 * best is the detail of that choice, which says it for a candidate in.
 */
SearchWhy
SearchWhyNot(const SProblem *p, const bool *best_set, const SDetail *best, int k)
{
	const SPromo *c = &p->promos[k];
	Eval	   *e = (Eval *) p->scratch;
	bool	   *in;
	const SDetail *d;
	SOutcome	o;

	if (c->role != ROLE_RECEIPT_OFF && !c->in_points && !best_set[k])
		return SEARCH_WHY_BETTER;
	for (int j = 0; j < p->npromos; j++)
		if (best_set[j] && j != k &&
			(p->promos[j].exclusive || c->exclusive ||
			 (c->receipt_group >= 0 && p->promos[j].receipt_group == c->receipt_group)))
			return SEARCH_WHY_BETTER;
	if (best_set[k])
		d = best;
	else
	{
		in = palloc(sizeof(bool) * p->npromos);
		memcpy(in, best_set, sizeof(bool) * p->npromos);
		in[k] = true;
		if (!e->why)
			e->why = SearchDetailAlloc(p);
		DetailReset(p, e->why);
		SearchEvaluate(p, in, &o, e->why);
		pfree(in);
		d = e->why;
	}
	if (d->below_threshold[k])
		return SEARCH_WHY_THRESHOLD;
	if (d->capped[k] && (c->in_points || best_set[k]))
		return SEARCH_WHY_CAP;
	return SEARCH_WHY_BETTER;
}

/*
 * Which candidates of the combination in[] apply: give something as the
 * combination is valued (SearchEvaluate: money off before the cap, a price
 * in points taken, points earned on the full amounts, a gift).  What ties
 * compare.
 */
static void
AppliedSet(const SProblem *p, const bool *in, bool *applied)
{
	Eval	   *e = (Eval *) p->scratch;
	SOutcome	o;

	SearchEvaluate(p, in, &o, NULL);
	for (int k = 0; k < p->npromos; k++)
		applied[k] = in[k] && e->gave[k];
}

/*
 * The best combination as the rules of the best choose it: the combination
 * the search chose, less the promotions decided in before the search that
 * give nothing as it is valued.  Those the search decided are in or out by
 * the rules already (a promotion that gives nothing is left out on a tie);
 * one decided in beforehand is in only because it can never hurt, and one
 * that gives nothing is no part of the best (an exclusive promotion may
 * join without it).
 */
void
SearchBestSet(const SProblem *p, const bool *chosen, bool *best_set)
{
	AppliedSet(p, chosen, best_set);
	for (int k = 0; k < p->npromos; k++)
		best_set[k] |= chosen[k] && !p->promos[k].fixed;
}


/* State of the branch and bound */
typedef struct BB
{
	const SProblem *p;
	bool	   *in;
	bool	   *best;
	bool	   *best_applied;	/* what the best applies, when known */
	bool		best_applied_known;
	bool	   *applied;		/* scratch of Better */
	SOutcome	best_outcome;
	bool		have_best;
	int64		explored;
	int64		nodes;
	struct timespec start;
	double		budget_ms;
	bool		stopped;
	int64	   *group_ub;		/* scratch of the bound, per stacking group */
	bool	   *group_taken;	/* and whether a searched candidate in holds it */
	bool	   *line_open;		/* per line: an open candidate is worth something there */
	int64	   *line_group_ub;	/* and per line and stacking group */
	int64	   *line_group_held;	/* what holds each line and group now */
	int64	   *pre;			/* per depth: pre_receipt of the node's evaluation */
	int64		base_value;		/* the base accrual on the full amounts, scaled */
	int64	   *rg_value;		/* scratch of CappedBound, per stacking group */
	int		   *rg_taken;
	int64	   *mline;			/* [group * nlines + line] */
	bool	   *mgroup;
	int64	   *suffix_ub;		/* [x]: the ub of the searched from x on */
	int		   *earners;		/* the candidates CappedBound reads */
	int			nearners;
	int64		cap_floor;		/* the least CappedBound can say without
								 * prices in points */
	int			npp;			/* prices in points on a line (CapMoneyBound) */
	int		   *pp_promo;		/* in order of money off per money of the cap */
	int64	   *pp_off;			/* its money off there */
	int64	   *pp_weight;		/* the cap it uses: money off plus the points' worth */
	int		   *discounts;		/* the candidates that give money off but no
								 * price in points */
	int			ndiscounts;
} BB;

/* Prices in points by money off per money of the cap they use, most first */
typedef struct PPItem
{
	int			promo;
	int64		off;
	int64		weight;
} PPItem;

static int
ppitem_cmp(const void *a, const void *b)
{
	const PPItem *x = a,
			   *y = b;
	int128_t	l = (int128_t) x->off * y->weight;
	int128_t	r = (int128_t) y->off * x->weight;

	if (l != r)
		return l > r ? -1 : 1;
	return x->promo < y->promo ? -1 : x->promo > y->promo ? 1 : 0;
}

/* The most a subtree's combinations can be worth, and worth before the cap */
typedef struct Bound
{
	int64		value;
	int64		uncapped;
} Bound;

/*
 * Is the combination a (outcome ao) better than b (outcome bo)?  Greater
 * value; then greater value before the cap on discounts (under a cap that
 * binds, the combination whose promotions give more); then the one that
 * applies (AppliedSet) the first candidate, in the candidates' order
 * (priority, then code), on which what they apply differs; then the one
 * that leaves out the first candidate on which they differ (one that gives
 * nothing is not part of the best).  The sets of what
 * a and b apply are computed when needed, into a_applied and b_applied
 * (b_applied may be given: b_known).
 */
static bool
Better(const SProblem *p, const SOutcome *ao, const bool *a, bool *a_applied,
	   const SOutcome *bo, const bool *b, bool *b_applied, bool b_known)
{
	if (ao->value != bo->value)
		return ao->value > bo->value;
	if (ao->uncapped != bo->uncapped)
		return ao->uncapped > bo->uncapped;
	AppliedSet(p, a, a_applied);
	if (!b_known)
		AppliedSet(p, b, b_applied);
	for (int k = 0; k < p->npromos; k++)
		if (a_applied[k] != b_applied[k])
			return a_applied[k];
	/*
	 * Rule 4, over the combinations as the rules see them: one decided in
	 * before the search (it can never hurt) that gives nothing is no part
	 * of either (an exclusive promotion alone leaves it out).
	 */
	for (int k = 0; k < p->npromos; k++)
	{
		bool		ak = a[k] && (!p->promos[k].fixed || a_applied[k]);
		bool		bk = b[k] && (!p->promos[k].fixed || b_applied[k]);

		if (ak != bk)
			return bk;
	}
	return false;
}

/* Keep the combination in, with outcome o, if it is better than the best */
static void
Consider(BB *bb, const SOutcome *o, const bool *in)
{
	const SProblem *p = bb->p;
	bool		known = bb->best_applied_known;

	if (bb->have_best)
	{
		if (o->value != bb->best_outcome.value)
		{
			if (o->value < bb->best_outcome.value)
				return;
		}
		else if (o->uncapped != bb->best_outcome.uncapped)
		{
			if (o->uncapped < bb->best_outcome.uncapped)
				return;
		}
		else
		{
			/* a tie: Better computes what each applies */
			bb->best_applied_known = true;
			if (!Better(p, o, in, bb->applied, &bb->best_outcome, bb->best,
						bb->best_applied, known))
				return;
			/* the new best's applied set is in bb->applied: swap it in */
			{
				bool	   *t = bb->best_applied;

				bb->best_applied = bb->applied;
				bb->applied = t;
			}
			bb->best_outcome = *o;
			memcpy(bb->best, in, sizeof(bool) * p->npromos);
			return;
		}
	}
	bb->have_best = true;
	bb->best_outcome = *o;
	memcpy(bb->best, in, sizeof(bool) * p->npromos);
	bb->best_applied_known = false;
}

/*
 * Does every combination that keeps what bb->in decides before search
 * position x lose a tie to the best found?  Such a combination applies no
 * candidate decided out.  Let f be the first candidate (in the candidates'
 * order) that the best applies and that is decided out: a combination of
 * the subtree differs from the best at f or before, and can win the tie
 * only by applying, before f, a candidate that the best does not apply and
 * that is in or still open.  If there is none, the whole subtree loses.
 */
static bool
LosesTies(BB *bb, int x)
{
	const SProblem *p = bb->p;
	int			f = INT_MAX;

	if (!bb->best_applied_known)
	{
		AppliedSet(p, bb->best, bb->best_applied);
		bb->best_applied_known = true;
	}
	for (int y = 0; y < x; y++)
	{
		int			k = p->searched[y];

		if (!bb->in[k] && bb->best_applied[k])
			f = Min(f, k);
	}
	for (int y = x; y < p->nsearched; y++)
	{
		int			k = p->searched[y];

		/* exclusive candidates are tried apart, never in the tree */
		if (!bb->in[k] && p->promos[k].exclusive && bb->best_applied[k])
			f = Min(f, k);
	}
	if (f == INT_MAX)
		return false;
	/* an open candidate of a receipt group taken by one in cannot join */
	memset(bb->group_taken, 0, sizeof(bool) * Max(p->ngroups, 1));
	for (int y = 0; y < x; y++)
	{
		int			k = p->searched[y];

		if (bb->in[k] && p->promos[k].receipt_group >= 0)
			bb->group_taken[p->promos[k].receipt_group] = true;
	}
	for (int k = 0; k < f; k++)
	{
		const SPromo *c = &p->promos[k];

		if (bb->best_applied[k])
			continue;
		/* one in that its group outdoes on every line never applies */
		if (bb->in[k] && !Shadowed(p, bb->in, k))
			return false;
		if (p->search_pos[k] >= x && !c->exclusive &&
			!(c->receipt_group >= 0 && bb->group_taken[c->receipt_group]))
			return false;		/* open, and may join */
	}
	return true;
}

/* Can no combination of the subtree at x, bounded by bound, beat the best? */
static bool
CannotWin(BB *bb, int x, Bound bound)
{
	if (bound.value != bb->best_outcome.value)
		return bound.value < bb->best_outcome.value;
	if (bound.uncapped != bb->best_outcome.uncapped)
		return bound.uncapped < bb->best_outcome.uncapped;
	return LosesTies(bb, x);
}

static double
ElapsedMs(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000.0 + (now.tv_nsec - start->tv_nsec) / 1e6;
}

/*
 * What receipt discount c can give at most when the lines come to pre
 * before receipt discounts (whatever joins, they come to no more).
 */
static int64
ReceiptOffBound(const SProblem *p, const SPromo *c, const int64 *pre)
{
	int64		base = 0;
	int64		money;

	for (int i = 0; i < p->nlines; i++)
		if (c->elig[i])
			base += pre[i];
	if (base < c->benefit->threshold || base <= 0)
		return 0;
	money = c->benefit->percent_bp > 0 ? MulDiv(base, c->benefit->percent_bp, 10000) :
		Min(c->benefit->amount, base);
	return money * SEARCH_SCALE;
}

/* May candidate k be in a combination below the node (CappedBound)? */
static inline bool
MayBeIn(const BB *bb, int x, int joining, bool exclusive_in, int k)
{
	const SProblem *p = bb->p;

	if (bb->in[k] || k == joining)
		return true;
	return p->search_pos[k] >= x && !p->promos[k].exclusive && !exclusive_in;
}

/*
 * The most money off a combination below the node can give under the cap
 * on discounts.  The money off and the points' worth of the prices in
 * points taken, and the other discounts, fit in the cap together (step 4):
 * what the other discounts that may be in can give at most fills the cap
 * first (a unit of money off per unit of the cap), then the prices in
 * points by money off per unit of the cap, the last in part (the fractional
 * knapsack, rounded up).  Without prices in points, the cap.
 */
static int64
CapMoneyBound(BB *bb, int x, int joining, bool exclusive_in)
{
	const SProblem *p = bb->p;
	int64		cap = MulDiv(p->total, p->max_discount_bp, 10000);
	int64		money = 0;
	int64		left;

	if (bb->npp == 0)
		return cap;
	for (int n = 0; n < bb->ndiscounts && money < cap; n++)
		if (MayBeIn(bb, x, joining, exclusive_in, bb->discounts[n]))
			money += p->promos[bb->discounts[n]].ub / SEARCH_SCALE + 1;
	if (money >= cap)
		return cap;
	left = cap - money;
	for (int n = 0; n < bb->npp && left > 0; n++)
	{
		if (!MayBeIn(bb, x, joining, exclusive_in, bb->pp_promo[n]))
			continue;
		if (bb->pp_weight[n] <= left)
		{
			money += bb->pp_off[n];
			left -= bb->pp_weight[n];
		}
		else
		{
			money += (int64) (((int128_t) bb->pp_off[n] * left + bb->pp_weight[n] - 1) /
							  bb->pp_weight[n]);
			left = 0;
		}
	}
	return Min(money, cap);
}

/*
 * The most a combination that keeps bb->in (and joining, when not -1) and
 * decides the searched candidates from x on can be worth when the cap on
 * discounts binds: the cap, plus what the promotions that may be in can
 * earn or give at most, valued as a combination is (on the full amounts).
 * Of a receipt stacking group one applies: the one in, or the greatest of
 * those open; of the multipliers of a stacking group one holds each line:
 * the greatest factor there; the base accrual is the same for all.
 */
static int64
CappedBound(BB *bb, int x, int joining, bool exclusive_in)
{
	const SProblem *p = bb->p;
	int			L = p->nlines;
	int64		value = bb->base_value;
	bool		any_mgroup = false;

	for (int g = 0; g < p->ngroups; g++)
	{
		bb->rg_value[g] = 0;
		bb->rg_taken[g] = -1;
		bb->mgroup[g] = false;
	}
	for (int n = 0; n < bb->nearners; n++)
	{
		int			k = bb->earners[n];
		const SPromo *c = &p->promos[k];
		bool		in = bb->in[k] || k == joining;
		int64		v = 0;

		if (!in && (p->search_pos[k] < x || c->exclusive || exclusive_in))
			continue;			/* out, or can no longer join */
		if (BenefitRoleOnlyAdds(c->role))
			v = c->ub;
		else if (c->role == ROLE_MULTIPLIER && c->group >= 0)
		{
			/* per line, the greatest factor of the group */
			if (!bb->mgroup[c->group])
			{
				bb->mgroup[c->group] = true;
				memset(&bb->mline[c->group * L], 0, sizeof(int64) * L);
			}
			any_mgroup = true;
			for (int i = 0; i < L; i++)
				if (c->elig[i])
					bb->mline[c->group * L + i] = Max(bb->mline[c->group * L + i],
													  p->lines[i].amount * (c->benefit->factor_pct - 100));
			continue;
		}
		else if (c->role == ROLE_MULTIPLIER)
			v = c->ub;
		else if (c->role != ROLE_RECEIPT_OFF)
			continue;
		if (c->receipt_group < 0)
			value += v;
		else if (in)
			bb->rg_taken[c->receipt_group] = k;
		else
			bb->rg_value[c->receipt_group] = Max(bb->rg_value[c->receipt_group], v);
	}
	for (int g = 0; g < p->ngroups; g++)
	{
		int			k = bb->rg_taken[g];

		if (k >= 0)
			value += p->promos[k].role == ROLE_RECEIPT_OFF ? 0 : p->promos[k].ub;
		else
			value += bb->rg_value[g];
	}
	if (any_mgroup && p->can_earn)
	{
		const SCurrency *cur = &p->currencies[p->base_currency];

		for (int g = 0; g < p->ngroups; g++)
		{
			int128_t	sum = 0;

			if (!bb->mgroup[g])
				continue;
			for (int i = 0; i < L; i++)
				sum += bb->mline[g * L + i];
			/* as EarnPoints, with the factors inside the sum */
			value += Worth((int64) ((sum * p->accrual_rate_bp * cur->value_den) /
									((int128_t) 1000000 * cur->value_num)),
						   cur->value_scaled);
		}
	}
	return CapMoneyBound(bb, x, joining, exclusive_in) * SEARCH_SCALE + value;
}

/*
 * The most a combination that keeps bb->in and decides the searched
 * candidates from x on can be worth: value (what bb->in is worth, its
 * outcome o, its lines before receipt discounts pre, if known) plus the most
 * each open candidate could add, and no more than the cap allows.  joining:
 * a candidate counted in value by its ub but not yet in o (IncludeCannotWin),
 * or -1.
 */
static Bound
NodeBound(BB *bb, int x, const SOutcome *o, int64 extra, const int64 *pre,
		  int joining)
{
	const SProblem *p = bb->p;
	int64		bound = extra + o->denied_value;	/* what may be added */
	Bound		result;
	bool		exclusive_in = false;
	bool		per_line = false;	/* an open candidate counted per line */

	/*
	 * First the plain sum of what every open candidate could add on its own
	 * (what follows only ever says less): when even that cannot beat the
	 * best on value, nothing more is needed.
	 */
	result.value = o->value + bound + bb->suffix_ub[x];
	result.uncapped = o->uncapped + bound + bb->suffix_ub[x];
	if (bb->have_best && result.value < bb->best_outcome.value)
		return result;

	/* what Compatible would say of each open candidate, in one pass */
	memset(bb->group_taken, 0, sizeof(bool) * Max(p->ngroups, 1));
	for (int y = 0; y < p->nsearched; y++)
	{
		const SPromo *c = &p->promos[p->searched[y]];

		if (!bb->in[p->searched[y]])
			continue;
		exclusive_in |= c->exclusive;
		if (c->receipt_group >= 0)
			bb->group_taken[c->receipt_group] = true;
	}

	/*
	 * Of one receipt group at most one can join, and on a line at most
	 * one of each stacking group holds it: count only the greatest.
	 */
	memset(bb->group_ub, 0, sizeof(int64) * Max(p->ngroups, 1));
	for (int y = x; y < p->nsearched; y++)
	{
		int			j = p->searched[y];
		const SPromo *c = &p->promos[j];
		int64		ub = c->ub;

		if (bb->in[j] || c->exclusive || exclusive_in ||
			(c->receipt_group >= 0 && bb->group_taken[c->receipt_group]))
			continue;
		if (c->role == ROLE_RECEIPT_OFF && pre)
			ub = ReceiptOffBound(p, c, pre);
		if (c->receipt_group >= 0)
			bb->group_ub[c->receipt_group] = Max(bb->group_ub[c->receipt_group], ub);
		else if (c->group < 0 || BenefitRoleIsReceiptLevel(c->role))
			bound += ub;
		else
		{
			if (!per_line)
			{
				memset(bb->line_group_ub, 0, sizeof(int64) * Max(p->ngroups * p->nlines, 1));
				memset(bb->line_open, 0, sizeof(bool) * Max(p->nlines, 1));
			}
			per_line = true;
			for (int i = 0; i < p->nlines; i++)
			{
				int64	   *m = &bb->line_group_ub[i * p->ngroups + c->group];

				if (c->lineval[i] > *m)
				{
					*m = c->lineval[i];
					bb->line_open[i] = true;
				}
			}
		}
	}
	for (int g = 0; g < p->ngroups; g++)
		bound += bb->group_ub[g];
	if (per_line)
	{
		/*
		 * On a line, a newcomer of a stacking group gains at most what it
		 * is worth there over the discount that holds the group now (what
		 * holds it only ever grows).
		 */
		for (int i = 0; i < p->nlines; i++)
		{
			if (!bb->line_open[i])
				continue;
			memset(&bb->line_group_held[i * p->ngroups], 0, sizeof(int64) * p->ngroups);
			for (int y = p->line_first[i]; y < p->line_first[i + 1]; y++)
			{
				int			j = p->line_cands[y];
				const SPromo *h = &p->promos[j];

				/*
				 * A multiplier's worth there is an estimate from above, and a
				 * price in points may not be covered: neither counts as held.
				 */
				if (bb->in[j] && h->group >= 0 && !h->in_points && h->role != ROLE_MULTIPLIER)
				{
					int64	   *held = &bb->line_group_held[i * p->ngroups + h->group];

					*held = Max(*held, h->lineval[i]);
				}
			}
			for (int g = 0; g < p->ngroups; g++)
				bound += Max(0, bb->line_group_ub[i * p->ngroups + g] -
							 bb->line_group_held[i * p->ngroups + g]);
		}
	}

	/*
	 * And the cap: the discounts never pass it, whatever joins; points
	 * earned and gifts come only from what may be in (CappedBound).
	 */
	result.uncapped = o->uncapped + bound;
	result.value = o->value + bound;
	/* the cap, when it can say less than the rest (and it matters) */
	if (p->max_discount_bp < 10000 && (result.value > bb->cap_floor || bb->npp > 0) &&
		result.value >= bb->best_outcome.value)
		result.value = Min(result.value, CappedBound(bb, x, joining, exclusive_in));
	return result;
}

/*
 * Can no combination with candidate k joined (and bb->in, worth value with
 * outcome o) beat the best found?  Decided without evaluating it: k adds at
 * most its whole worth (ub; a receipt discount's as the lines come to now),
 * the others what the bound gives them without k (on k's lines they may
 * lose to it, never gain), and of k's receipt group nothing else can join.
 * Not for a price in points, whose points may be wanted elsewhere.  Of a
 * receipt group of many (one receipt discount of fifteen), or of many
 * "3 for 2" of one stacking group, a member that cannot beat the best is
 * then passed over rather than evaluated in turn.
 */
static bool
IncludeCannotWin(BB *bb, int x, int k, const SOutcome *o, const int64 *pre)
{
	const SProblem *p = bb->p;
	const SPromo *c = &p->promos[k];
	int64		ub;
	Bound		bound;
	bool		cannot;

	if (!bb->have_best || o == NULL || c->in_points)
		return false;
	ub = c->role == ROLE_RECEIPT_OFF && pre ? ReceiptOffBound(p, c, pre) : c->ub;
	if (c->receipt_group >= 0)
		bb->in[k] = true;		/* its receipt group is taken */
	bound = NodeBound(bb, x + 1, o, ub, pre, k);
	bb->in[k] = true;			/* and k decided in, for the tie */
	cannot = CannotWin(bb, x + 1, bound);
	bb->in[k] = false;
	return cannot;
}

/*
 * Decide the x-th searched candidate (exclusive ones are tried apart).
 * known is the value of bb->in if the caller has it: excluding a candidate
 * leaves the combination as it was, so that branch needs no evaluation.
 */
static void
Branch(BB *bb, int x, const SOutcome *known, const int64 *known_pre)
{
	const SProblem *p = bb->p;
	SOutcome	o;
	bool		have_known = known != NULL;
	const int64 *pre = known_pre;	/* what the lines came to before receipt
									 * discounts, when known */
	int			k;

	if (bb->stopped)
		return;
	CHECK_FOR_INTERRUPTS();
	if ((++bb->nodes & 63) == 0 && bb->budget_ms > 0 && ElapsedMs(&bb->start) > bb->budget_ms)
	{
		bb->stopped = true;
		return;
	}
	while (x < p->nsearched && p->promos[p->searched[x]].exclusive)
		x++;
	if (have_known)
		o = *known;
	else if (x == p->nsearched || bb->have_best)
	{
		SearchEvaluate(p, bb->in, &o, NULL);
		have_known = true;
		if (x < p->nsearched)
		{
			int64	   *copy = bb->pre + (int64) x * p->nlines;

			memcpy(copy, ((Eval *) p->scratch)->pre_receipt, sizeof(int64) * p->nlines);
			pre = copy;
		}
	}
	/* else not needed: nothing to prune against yet */
	if (x == p->nsearched)
	{
		bb->explored++;
		Consider(bb, &o, bb->in);
		return;
	}
	k = p->searched[x];
	if (bb->have_best)
	{
		/* what is decided, plus the most each open candidate could add */
		if (CannotWin(bb, x, NodeBound(bb, x, &o, 0, pre, -1)))
			return;
	}
	/*
	 * A twin of an earlier candidate left out is left out too: with the
	 * earlier one instead, a combination is worth the same and wins the tie.
	 */
	/*
	 * One that the candidates in outdo on every line gives nothing, whatever
	 * joins: with it every completion is worth the same as without, and
	 * loses the tie.
	 */
	if (Compatible(p, bb->in, k) &&
		(p->promos[k].twin_of < 0 || bb->in[p->promos[k].twin_of]) &&
		!Shadowed(p, bb->in, k) &&
		!IncludeCannotWin(bb, x, k, have_known ? &o : NULL, pre))
	{
		bb->in[k] = true;
		Branch(bb, x + 1, NULL, NULL);
		bb->in[k] = false;
	}
	Branch(bb, x + 1, have_known ? &o : NULL, pre);
}

/*
 * The combination of greatest value.  Line discounts are not searched: each
 * line takes the best of each stacking group, decided line by line.  The
 * other candidates are decided by a depth-first branch and bound that
 * includes a candidate before excluding it (so the first best found wins a
 * tie, as Better wants); each exclusive candidate is then tried alone.
 * Stops after budget_ms (0: no limit) with the best found, optimal false.
 */
static void
BranchAndBound(SProblem *p, double budget_ms, SResult *result, const bool *seed)
{
	BB			bb;
	bool	   *alone;

	if (!p->indexed)
		SearchIndex(p);
	memset(&bb, 0, sizeof(bb));
	bb.p = p;
	bb.in = palloc0(sizeof(bool) * Max(p->npromos, 1));
	bb.best = palloc0(sizeof(bool) * Max(p->npromos, 1));
	bb.best_applied = palloc0(sizeof(bool) * Max(p->npromos, 1));
	bb.applied = palloc0(sizeof(bool) * Max(p->npromos, 1));
	bb.budget_ms = budget_ms;
	bb.group_ub = palloc0(sizeof(int64) * Max(p->ngroups, 1));
	bb.group_taken = palloc0(sizeof(bool) * Max(p->ngroups, 1));
	bb.line_open = palloc0(sizeof(bool) * Max(p->nlines, 1));
	bb.line_group_ub = palloc0(sizeof(int64) * Max(p->ngroups * p->nlines, 1));
	bb.line_group_held = palloc0(sizeof(int64) * Max(p->ngroups * p->nlines, 1));
	bb.pre = palloc(sizeof(int64) * Max(p->nsearched * p->nlines, 1));
	bb.suffix_ub = palloc0(sizeof(int64) * (p->nsearched + 1));
	for (int x = p->nsearched - 1; x >= 0; x--)
		bb.suffix_ub[x] = bb.suffix_ub[x + 1] +
			(p->promos[p->searched[x]].exclusive ? 0 : p->promos[p->searched[x]].ub);
	bb.rg_value = palloc(sizeof(int64) * Max(p->ngroups, 1));
	bb.rg_taken = palloc(sizeof(int) * Max(p->ngroups, 1));
	bb.mline = palloc(sizeof(int64) * Max(p->ngroups * p->nlines, 1));
	bb.mgroup = palloc(sizeof(bool) * Max(p->ngroups, 1));
	if (p->can_earn && p->accrual_rate_bp > 0)
		bb.base_value = Worth(EarnPoints(p, p->total, 100),
							  p->currencies[p->base_currency].value_scaled);
	bb.cap_floor = MulDiv(p->total, p->max_discount_bp, 10000) * SEARCH_SCALE + bb.base_value;
	bb.earners = palloc(sizeof(int) * Max(p->npromos, 1));
	for (int k = 0; k < p->npromos; k++)
	{
		BenefitRole role = p->promos[k].role;

		if (BenefitRoleOnlyAdds(role) || role == ROLE_MULTIPLIER ||
			(role == ROLE_RECEIPT_OFF && p->promos[k].receipt_group >= 0))
			bb.earners[bb.nearners++] = k;
	}
	/* what CapMoneyBound reads, when prices in points are candidates */
	for (int k = 0; k < p->npromos; k++)
		for (int i = 0; i < p->nlines && p->promos[k].in_points; i++)
			bb.npp += p->promos[k].fpoints[i] > 0;
	if (bb.npp > 0)
	{
		PPItem	   *items = palloc(sizeof(PPItem) * bb.npp);
		int			n = 0;

		bb.discounts = palloc(sizeof(int) * p->npromos);
		for (int k = 0; k < p->npromos; k++)
		{
			BenefitRole role = p->promos[k].role;

			if (!p->promos[k].in_points &&
				(role == ROLE_LINE || role == ROLE_RECEIPT_OFF))
				bb.discounts[bb.ndiscounts++] = k;
		}

		for (int k = 0; k < p->npromos; k++)
			for (int i = 0; i < p->nlines && p->promos[k].in_points; i++)
				if (p->promos[k].fpoints[i] > 0)
				{
					const SPromo *c = &p->promos[k];

					items[n].promo = k;
					items[n].off = c->disc[i];
					items[n].weight = c->disc[i] +
						MoneyOf(&p->currencies[c->currency], c->fpoints[i]);
					n++;
				}
		qsort(items, bb.npp, sizeof(PPItem), ppitem_cmp);
		bb.pp_promo = palloc(sizeof(int) * bb.npp);
		bb.pp_off = palloc(sizeof(int64) * bb.npp);
		bb.pp_weight = palloc(sizeof(int64) * bb.npp);
		for (n = 0; n < bb.npp; n++)
		{
			bb.pp_promo[n] = items[n].promo;
			bb.pp_off[n] = items[n].off;
			bb.pp_weight[n] = Max(items[n].weight, 1);
		}
		pfree(items);
	}
	clock_gettime(CLOCK_MONOTONIC, &bb.start);
	alone = palloc0(sizeof(bool) * Max(p->npromos, 1));

	/* a combination known to be good: the search need only beat it */
	if (seed)
	{
		SOutcome	o;

		memcpy(alone, seed, sizeof(bool) * p->npromos);
		SetFixed(p, alone);
		SearchEvaluate(p, alone, &o, NULL);
		Consider(&bb, &o, alone);
	}
	SetFixed(p, bb.in);
	Branch(&bb, 0, NULL, NULL);
	/* and each exclusive candidate alone */
	for (int x = 0; x < p->nsearched && !bb.stopped; x++)
	{
		int			k = p->searched[x];
		SOutcome	o;

		if (!p->promos[k].exclusive)
			continue;
		memset(alone, 0, sizeof(bool) * p->npromos);
		alone[k] = true;
		SetFixed(p, alone);
		SearchEvaluate(p, alone, &o, NULL);
		bb.explored++;
		Consider(&bb, &o, alone);
	}
	result->chosen = bb.best;
	if (bb.have_best)
		result->outcome = bb.best_outcome;
	else
	{
		SetFixed(p, bb.best);
		SearchEvaluate(p, bb.best, &result->outcome, NULL);
	}
	result->optimal = !bb.stopped;
	result->explored = bb.explored;
	pfree(bb.in);
	pfree(alone);
}

/*
 * Every combination of the searched candidates (line discounts applying as
 * in the branch and bound), keeping the best by Better: the check the
 * branch and bound is tested against.
 */
static void
Exhaustive(SProblem *p, SResult *result)
{
	int			n;
	bool	   *in;
	bool	   *best;
	bool	   *applied;
	bool	   *best_applied;
	bool		have = false;
	SOutcome	best_outcome;

	if (!p->indexed)
		SearchIndex(p);
	n = p->nsearched;
	if (n > SEARCH_MAX_EXHAUSTIVE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("exhaustive search over %d choices is too large", n),
				 errdetail("It accepts at most %d (a price in points is a choice on each of its lines).",
						   SEARCH_MAX_EXHAUSTIVE)));
	in = palloc0(sizeof(bool) * Max(p->npromos, 1));
	best = palloc0(sizeof(bool) * Max(p->npromos, 1));
	applied = palloc0(sizeof(bool) * Max(p->npromos, 1));
	best_applied = palloc0(sizeof(bool) * Max(p->npromos, 1));
	result->explored = 0;
	for (int64 mask = 0; mask < (INT64CONST(1) << n); mask++)
	{
		SOutcome	o;
		bool		valid = true;

		CHECK_FOR_INTERRUPTS();
		for (int x = 0; x < n; x++)
			in[p->searched[x]] = (mask >> x) & 1;
		for (int x = 0; x < n && valid; x++)
			if (in[p->searched[x]] && !Compatible(p, in, p->searched[x]))
				valid = false;
		if (!valid)
			continue;
		SetFixed(p, in);
		SearchEvaluate(p, in, &o, NULL);
		result->explored++;
		if (!have || Better(p, &o, in, applied, &best_outcome, best, best_applied, false))
		{
			have = true;
			best_outcome = o;
			memcpy(best, in, sizeof(bool) * Max(p->npromos, 1));
		}
	}
	result->chosen = best;
	SearchEvaluate(p, best, &result->outcome, NULL);
	result->optimal = true;
	pfree(in);
}

/*
 * A price in points is a choice on each line it can take: of the lines a
 * combination offers it, it reserves points only for those, so that the
 * points go where they save most (a smaller request never beats "max").
 * The search runs on a copy of the problem where each price in points
 * (not exclusive: one alone takes every line it can) that may take more
 * than one line is one candidate per line, in line order at its place;
 * evaluated, a combination of the copy is the same as the combination of
 * the promotions with the lines left out in line_off.  NULL when no price
 * in points needs it; else origin[] and line[] map each candidate of the
 * copy to its promotion and, for one of a price in points, its line (-1).
 */
/* The lines a price in points is searched on one by one: 0 or 1 if none */
static int
SplitLines(const SProblem *p, const SPromo *c)
{
	int			lines = 0;

	if (c->in_points && !c->exclusive)
		for (int i = 0; i < p->nlines; i++)
			lines += c->fpoints[i] > 0;
	return lines;
}

static SProblem *
SearchSplit(const SProblem *p, int **origin, int **line)
{
	int			L = p->nlines;
	int			n = 0;
	int			m = 0;
	bool		need = false;
	SProblem   *q;

	for (int k = 0; k < p->npromos; k++)
	{
		int			lines = SplitLines(p, &p->promos[k]);

		need |= lines > 1;
		n += Max(lines, 1);
	}
	if (!need)
		return NULL;
	q = palloc(sizeof(SProblem));
	*q = *p;
	q->npromos = n;
	q->promos = palloc0(sizeof(SPromo) * n);
	q->indexed = false;
	q->scratch = NULL;
	q->line_off = NULL;
	*origin = palloc(sizeof(int) * n);
	*line = palloc(sizeof(int) * n);
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];

		if (SplitLines(p, c) <= 1)
		{
			q->promos[m] = *c;
			(*origin)[m] = k;
			(*line)[m++] = -1;
			continue;
		}
		for (int i = 0; i < L; i++)
		{
			SPromo	   *s = &q->promos[m];

			if (c->fpoints[i] <= 0)
				continue;
			*s = *c;
			s->disc = palloc0(sizeof(int64) * L);
			s->fpoints = palloc0(sizeof(int64) * L);
			s->lineval = palloc0(sizeof(int64) * L);
			s->elig = palloc0(sizeof(bool) * L);
			s->disc[i] = c->disc[i];
			s->fpoints[i] = c->fpoints[i];
			s->lineval[i] = c->lineval[i];
			s->elig[i] = true;
			s->ub = c->lineval[i];
			(*origin)[m] = k;
			(*line)[m++] = i;
		}
	}
	return q;
}

/*
 * The result of the search over the copy q, for p: a promotion is chosen
 * when one of its candidates is, and a price in points chosen leaves out
 * the lines whose candidates are not.
 */
static void
SearchJoin(SProblem *p, const SProblem *q, const int *origin, const int *line,
		   const SResult *r, SResult *result)
{
	int			L = p->nlines;

	result->chosen = palloc0(sizeof(bool) * Max(p->npromos, 1));
	p->line_off = palloc0(sizeof(bool) * Max(p->npromos * L, 1));
	for (int k = 0; k < q->npromos; k++)
		if (r->chosen[k])
			result->chosen[origin[k]] = true;
	for (int k = 0; k < q->npromos; k++)
		if (line[k] >= 0 && !r->chosen[k] && result->chosen[origin[k]])
			p->line_off[origin[k] * L + line[k]] = true;
	if (!p->indexed)
		SearchIndex(p);
	SetFixed(p, result->chosen);
	SearchEvaluate(p, result->chosen, &result->outcome, NULL);
	result->optimal = r->optimal;
	result->explored = r->explored;
}

/*
 * The best combination by the branch and bound, within budget_ms (0: no
 * limit); result->optimal is false when the budget stopped it.
 */
void
SearchBranchAndBound(SProblem *p, double budget_ms, SResult *result)
{
	int		   *origin;
	int		   *line;
	SProblem   *q;

	if (p->indexed && p->exhaustive)
		elog(ERROR, "SearchBranchAndBound after an index for the exhaustive search");
	q = SearchSplit(p, &origin, &line);
	if (q == NULL)
		BranchAndBound(p, budget_ms, result, NULL);
	else
	{
		/*
		 * First the best with every price in points taking all the lines it
		 * can (quick: the lines are no choices); the search over the lines
		 * starts from it, so that when its time runs out the answer is
		 * never worse.
		 */
		SResult		whole;
		SResult		r;
		bool	   *seed = palloc0(sizeof(bool) * q->npromos);
		struct timespec start;
		double		left = budget_ms;

		clock_gettime(CLOCK_MONOTONIC, &start);
		BranchAndBound(p, budget_ms, &whole, NULL);
		for (int k = 0; k < q->npromos; k++)
			seed[k] = whole.chosen[origin[k]];
		if (budget_ms > 0)
			left = Max(budget_ms - ElapsedMs(&start), 0.001);
		BranchAndBound(q, left, &r, seed);
		r.explored += whole.explored;
		SearchJoin(p, q, origin, line, &r, result);
	}
}

/* The best combination by enumerating every one (SEARCH_MAX_EXHAUSTIVE) */
void
SearchExhaustive(SProblem *p, SResult *result)
{
	int		   *origin;
	int		   *line;
	SProblem   *q;

	if (p->indexed && !p->exhaustive)
		elog(ERROR, "SearchExhaustive after an index for the branch and bound");
	p->exhaustive = true;
	q = SearchSplit(p, &origin, &line);
	if (q == NULL)
		Exhaustive(p, result);
	else
	{
		SResult		r;

		Exhaustive(q, &r);
		SearchJoin(p, q, origin, line, &r, result);
	}
}
