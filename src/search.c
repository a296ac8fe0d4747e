/*
 * src/search.c
 *
 * The best-benefit search.  SearchPrepare works out what each candidate
 * promotion would give on each line on its own; SearchEvaluate gives the
 * value of one combination (stacking, clamps, caps, points paid and earned);
 * SearchBranchAndBound finds the combination of greatest value, and
 * SearchExhaustive enumerates every combination to check it.
 *
 * A combination's value: money off, plus money paid with points, plus gifts,
 * scaled by SEARCH_SCALE, plus points earned at their money value times the
 * programme's weight.  Among combinations of equal value the one that
 * includes the earlier candidate (candidates come in priority order) wins,
 * so that both searches agree on one answer.
 *
 * The bound: adding candidate c to any combination raises its value by at
 * most ub(c), what c gives on its own at full line amounts; so a partial
 * combination's value plus the ub of every candidate still open bounds all
 * of its completions.  This holds because every rule of the evaluation takes
 * from a line only what is left on it: a discount lowers what points may
 * pay and what earns points by no more than itself, a line keeps only the
 * best promotion of each stacking group, and caps only cut.
 */
#include "postgres.h"

#include <time.h>

#include "search.h"

typedef __int128 int128_t;

/* floor(a * b / c) for non-negative a, b and positive c */
static inline int64
MulDiv(int64 a, int64 b, int64 c)
{
	return (int64) (((int128_t) a * b) / c);
}

/*
 * Spread total over n items in proportion to weight, each at most cap[i]
 * (cap NULL: no cap), by largest remainder: the parts sum to total exactly
 * unless the caps cannot hold it.  Ties go to the earlier item.  Returns
 * what was spread.
 */
int64
SpreadLargestRemainder(int64 total, const int64 *weight, const int64 *cap,
					   int n, int64 *out)
{
	bool	   *done = palloc0(sizeof(bool) * Max(n, 1));
	int64	   *rem = palloc(sizeof(int64) * Max(n, 1));
	int64		left = total;

	for (int i = 0; i < n; i++)
	{
		out[i] = 0;
		if (weight[i] <= 0 || (cap && cap[i] <= 0))
			done[i] = true;
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
	pfree(done);
	pfree(rem);
	return total - left;
}

/* Round a discount down to the programme's step */
static inline int64
Step(const SProblem *p, int64 d)
{
	return p->discount_step > 1 ? d - d % p->discount_step : d;
}

/* Points of currency c that money m buys at most, and what they are worth */
static inline int64
PointsFor(const SCurrency *c, int64 money)
{
	return MulDiv(money, c->value_den, c->value_num);
}

static inline int64
MoneyOf(const SCurrency *c, int64 points)
{
	return MulDiv(points, c->value_num, c->value_den);
}

/* One unit of a line, for the benefits that pick units */
typedef struct Unit
{
	int64		price;
	int			line;
} Unit;

static int
unit_cmp_asc(const void *a, const void *b)
{
	const Unit *x = a,
			   *y = b;

	if (x->price != y->price)
		return x->price < y->price ? -1 : 1;
	return x->line > y->line ? -1 : x->line < y->line ? 1 : 0;
}

/* n_for_m: of the eligible whole units, the cheapest (buy - pay) of every buy are free */
static void
PrepareNForM(const SProblem *p, SPromo *c)
{
	int			n = 0;
	Unit	   *units;
	int64		free_units;
	int64		count = 0;

	for (int i = 0; i < p->nlines; i++)
		if (c->elig[i])
			count += p->lines[i].units;
	free_units = (count / c->buy) * (c->buy - c->pay);
	if (free_units == 0)
		return;
	units = palloc(sizeof(Unit) * count);
	for (int i = 0; i < p->nlines; i++)
		if (c->elig[i])
			for (int u = 0; u < p->lines[i].units; u++)
				units[n++] = (Unit) {p->lines[i].unit_price, i};
	qsort(units, n, sizeof(Unit), unit_cmp_asc);
	for (int64 k = 0; k < free_units; k++)
		c->disc[units[k].line] += units[k].price;
	pfree(units);
}

/*
 * bundle: complete sets, one after the other, each component taking its
 * units from the dearest eligible lines left; a set is formed while its
 * units cost more than the bundle price, and the difference is spread over
 * its lines in proportion to their prices.
 */
static void
PrepareBundle(const SProblem *p, SPromo *c)
{
	int32	   *left = palloc(sizeof(int32) * p->nlines);
	int32	   *taken = palloc0(sizeof(int32) * p->nlines);
	int64	   *weight = palloc(sizeof(int64) * p->nlines);
	int64	   *part = palloc(sizeof(int64) * p->nlines);

	for (int i = 0; i < p->nlines; i++)
		left[i] = p->lines[i].units;
	for (;;)
	{
		int64		value = 0;
		bool		complete = true;

		memset(taken, 0, sizeof(int32) * p->nlines);
		for (int k = 0; k < c->nparts && complete; k++)
			for (int q = 0; q < c->part_qty[k]; q++)
			{
				int			best = -1;

				for (int i = 0; i < p->nlines; i++)
					if (c->part_elig[k][i] && left[i] - taken[i] > 0 &&
						(best < 0 || p->lines[i].unit_price > p->lines[best].unit_price))
						best = i;
				if (best < 0)
				{
					complete = false;
					break;
				}
				taken[best]++;
				value += p->lines[best].unit_price;
			}
		if (!complete || value <= c->price)
			break;
		for (int i = 0; i < p->nlines; i++)
		{
			weight[i] = taken[i] * p->lines[i].unit_price;
			left[i] -= taken[i];
		}
		SpreadLargestRemainder(value - c->price, weight, NULL, p->nlines, part);
		for (int i = 0; i < p->nlines; i++)
			c->disc[i] += part[i];
	}
	pfree(left);
	pfree(taken);
	pfree(weight);
	pfree(part);
}

/* Points of the base accrual that money earns, with extra percent of the rate */
static inline int64
EarnPoints(const SProblem *p, int64 money, int32 extra_pct)
{
	const SCurrency *c = &p->currencies[p->base_currency];

	/* money x rate/10000 x extra/100 is money; in points, x den/num */
	return (int64) (((int128_t) money * p->accrual_rate_bp * extra_pct * c->value_den) /
					((int128_t) 1000000 * c->value_num));
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
		int64		ub = 0;
		int64		elig_amount = 0;

		c->disc = palloc0(sizeof(int64) * p->nlines);
		c->fpoints = palloc0(sizeof(int64) * p->nlines);
		c->lineval = palloc0(sizeof(int64) * p->nlines);
		for (int i = 0; i < p->nlines; i++)
			if (c->elig[i])
				elig_amount += p->lines[i].amount;

		switch (c->kind)
		{
			case BEN_PERCENT_OFF:
				for (int i = 0; i < p->nlines; i++)
					if (c->elig[i])
						c->disc[i] = Step(p, MulDiv(p->lines[i].amount, c->percent_bp, 10000));
				break;
			case BEN_AMOUNT_OFF:
				for (int i = 0; i < p->nlines; i++)
					if (c->elig[i])
						c->disc[i] = Min(p->lines[i].amount,
										 (c->price * p->lines[i].qty_milli + 500) / 1000);
				break;
			case BEN_FIXED_PRICE:
				for (int i = 0; i < p->nlines; i++)
				{
					SLine	   *l = &p->lines[i];

					if (!c->elig[i])
						continue;
					if (c->in_points)
					{
						const SCurrency *cur = &p->currencies[c->currency];
						int64		money;

						if (l->units == 0 || !p->can_spend)
							continue;
						c->fpoints[i] = c->points * l->units;
						money = Min(l->amount, MoneyOf(cur, c->fpoints[i]));
						c->disc[i] = l->amount - money;
						c->lineval[i] = l->amount * SEARCH_SCALE;
					}
					else
						c->disc[i] = Max(0, l->amount - (c->price * l->qty_milli + 500) / 1000);
				}
				break;
			case BEN_N_FOR_M:
				PrepareNForM(p, c);
				break;
			case BEN_BUNDLE:
				PrepareBundle(p, c);
				break;
			case BEN_MULTIPLIER:
				if (p->can_earn)
				{
					int64		pts = EarnPoints(p, elig_amount, c->factor_extra) + 1;

					for (int i = 0; i < p->nlines; i++)
						if (c->elig[i])
							c->lineval[i] = (EarnPoints(p, p->lines[i].amount, c->factor_extra) + 1) *
								p->currencies[p->base_currency].value_scaled;
					ub = pts * p->currencies[p->base_currency].value_scaled;
				}
				break;
			case BEN_RECEIPT_OFF:
				ub = (c->percent_bp > 0 ? MulDiv(elig_amount, c->percent_bp, 10000) :
					  Min(c->amount, elig_amount)) * SEARCH_SCALE;
				break;
			case BEN_POINTS_PER:
				if (p->can_earn)
					ub = (elig_amount / c->per) * c->points *
						p->currencies[c->currency].value_scaled;
				break;
			case BEN_BONUS_LOT:
				if (p->can_earn)
					ub = c->points * p->currencies[c->currency].value_scaled;
				break;
			case BEN_GIFT:
				ub = c->amount * SEARCH_SCALE;
				break;
			case BEN_NKINDS:
				pg_unreachable();
		}
		if (!BenefitIsReceiptLevel(c->kind) && c->kind != BEN_MULTIPLIER)
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
	int64	   *avail;			/* per currency: spendable, less what is reserved */
	int		   *best;			/* per group: the promotion holding the line */
	int64	   *lot_left;
	int64	   *weight;
	int64	   *part;
	bool	   *covered;		/* [promo * nlines + line]: fixed price in points affordable */
	bool	   *holds;			/* [promo * nlines + line]: the benefit applies there */
	Reserve    *res;			/* points reserved by fixed prices in points */
	int			nres;
} Eval;

/* Is candidate k's benefit applied on line i, given what holds the groups there */
static inline bool
Holds(const SProblem *p, const bool *in, const Eval *e, int k, int i)
{
	const SPromo *c = &p->promos[k];

	if (!in[k] || c->lineval[i] <= 0 || BenefitIsReceiptLevel(c->kind))
		return false;
	if (c->in_points && !e->covered[k * p->nlines + i])
		return false;
	return c->group < 0 || e->best[c->group] == k;
}

/*
 * The value of the combination in[]: fills out, and when detail is not NULL
 * where every amount went.
 */
void
SearchEvaluate(const SProblem *p, const bool *in, SOutcome *out, SDetail *detail)
{
	int			L = p->nlines;
	Eval		e;
	int64		discount = 0;
	int64		fixed_money = 0;
	int64		points_money = 0;
	int64		earned_value = 0;
	int64		gifts = 0;
	int64		cap;

	memset(out, 0, sizeof(*out));
	e.line_disc = palloc0(sizeof(int64) * L);
	e.room = palloc(sizeof(int64) * L);
	e.paid_points = palloc0(sizeof(int64) * L);
	e.avail = palloc(sizeof(int64) * Max(p->ncurrencies, 1));
	e.holds = palloc0(sizeof(bool) * Max(p->npromos * L, 1));
	e.res = palloc(sizeof(Reserve) * Max(p->npromos * L * p->nlots, 1));
	e.nres = 0;
	e.best = palloc(sizeof(int) * Max(p->ngroups, 1));
	e.lot_left = palloc(sizeof(int64) * Max(p->nlots, 1));
	e.weight = palloc(sizeof(int64) * L);
	e.part = palloc(sizeof(int64) * L);
	e.covered = palloc0(sizeof(bool) * Max(p->npromos * L, 1));

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

			if (need <= 0 || need > e.avail[c->currency])
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
		for (int g = 0; g < p->ngroups; g++)
			e.best[g] = -1;
		for (int k = 0; k < p->npromos; k++)
		{
			const SPromo *c = &p->promos[k];

			if (!in[k] || c->group < 0 || c->lineval[i] <= 0 ||
				BenefitIsReceiptLevel(c->kind) ||
				(c->in_points && !e.covered[k * L + i]))
				continue;
			if (e.best[c->group] < 0 ||
				c->lineval[i] > p->promos[e.best[c->group]].lineval[i])
				e.best[c->group] = k;
		}
		for (int k = 0; k < p->npromos; k++)
		{
			const SPromo *c = &p->promos[k];
			int64		take;

			if (!Holds(p, in, &e, k, i))
				continue;
			e.holds[k * L + i] = true;
			if (c->kind == BEN_MULTIPLIER)
				continue;
			take = Min(c->disc[i], e.room[i]);
			e.room[i] -= take;
			e.line_disc[i] += take;
			if (detail)
				detail->part[k * L + i] = take;
			if (c->in_points)
			{
				/* the points pay what is left of the line, down to its floor */
				int64		money = Min(e.room[i], MoneyOf(&p->currencies[c->currency], c->fpoints[i]));

				e.room[i] -= money;
				e.paid_points[i] += money;
				fixed_money += money;
				if (detail)
				{
					detail->fpaid[k * L + i] = c->fpoints[i];
					detail->fmoney[k * L + i] = money;
				}
			}
		}
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

	/* receipt discounts above a threshold, on what the lines come to now */
	for (int k = 0; k < p->npromos; k++)
	{
		const SPromo *c = &p->promos[k];
		int64		base = 0;
		int64		d;

		if (!in[k] || c->kind != BEN_RECEIPT_OFF)
			continue;
		for (int i = 0; i < L; i++)
		{
			e.weight[i] = c->elig[i] ? p->lines[i].amount - e.line_disc[i] - e.paid_points[i] : 0;
			base += e.weight[i];
		}
		if (base < c->threshold || base == 0)
		{
			if (detail)
				detail->below_threshold[k] = true;
			continue;
		}
		d = c->percent_bp > 0 ? Step(p, MulDiv(base, c->percent_bp, 10000)) : c->amount;
		SpreadLargestRemainder(d, e.weight, e.room, L, e.part);
		for (int i = 0; i < L; i++)
		{
			e.room[i] -= e.part[i];
			e.line_disc[i] += e.part[i];
			if (detail)
				detail->part[k * L + i] = e.part[i];
		}
	}

	for (int i = 0; i < L; i++)
		discount += e.line_disc[i];

	/* the cap on discounts (points paid come out of what it leaves) */
	cap = MulDiv(p->total, p->max_discount_bp, 10000);
	if (discount > cap)
	{
		int64		cut = discount - cap;

		out->cap_bound = true;
		SpreadLargestRemainder(cut, e.line_disc, e.line_disc, L, e.part);
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
					w[k] = detail->part[k * L + i];
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
		discount = cap;
	}

	/* requested points: lots in spending order, within both caps */
	if (p->can_spend && p->nlots > 0)
	{
		int64		to_pay = p->total - discount - fixed_money;
		int64		room_total = Min(cap - discount,
									 MulDiv(to_pay, p->max_points_bp, 10000));
		int64	   *budget = palloc(sizeof(int64) * Max(p->ncurrencies, 1));

		for (int c = 0; c < p->ncurrencies; c++)
			budget[c] = p->currencies[c].request < 0 ? e.avail[c] :
				Min(p->currencies[c].request, e.avail[c]);
		for (int l = 0; l < p->nlots && room_total > 0; l++)
		{
			const SLot *lot = &p->lots[l];
			const SCurrency *cur = &p->currencies[lot->currency];

			for (int i = 0; i < L && room_total > 0; i++)
			{
				int64		m,
							pts,
							money;

				if (budget[lot->currency] <= 0 || e.lot_left[l] <= 0)
					break;
				if (!p->lines[i].points_ok || e.room[i] <= 0 || (lot->pays && !lot->pays[i]))
					continue;
				m = Min(e.room[i], room_total);
				pts = Min(PointsFor(cur, m), Min(e.lot_left[l], budget[lot->currency]));
				money = MoneyOf(cur, pts);
				if (pts <= 0)
					continue;
				e.lot_left[l] -= pts;
				budget[lot->currency] -= pts;
				e.room[i] -= money;
				e.paid_points[i] += money;
				room_total -= money;
				points_money += money;
				if (detail)
				{
					detail->lot_points[l * L + i] += pts;
					detail->lot_money[l * L + i] += money;
				}
			}
		}
		pfree(budget);
	}

	/* points earned on the money paid */
	if (p->can_earn)
	{
		const SCurrency *base_cur = &p->currencies[p->base_currency];
		int64		base = 0;

		for (int i = 0; i < L; i++)
			e.weight[i] = p->lines[i].amount - e.line_disc[i] - e.paid_points[i];
		for (int i = 0; i < L; i++)
			base += e.weight[i];
		if (p->accrual_rate_bp > 0)
		{
			int64		pts = EarnPoints(p, base, 100);

			earned_value += pts * base_cur->value_scaled;
			if (detail)
			{
				detail->promo_earn[0] = pts;
				SpreadLargestRemainder(pts, e.weight, NULL, L, detail->earn);
			}
		}
		for (int k = 0; k < p->npromos; k++)
		{
			const SPromo *c = &p->promos[k];
			int64		paid = 0;
			int64		pts = 0;
			int64		value_scaled;

			if (!in[k])
				continue;
			if (c->kind == BEN_MULTIPLIER)
			{
				/* a multiplier earns on the lines it holds */
				for (int i = 0; i < L; i++)
				{
					e.part[i] = e.holds[k * L + i] ? e.weight[i] : 0;
					paid += e.part[i];
				}
				pts = EarnPoints(p, paid, c->factor_extra);
				value_scaled = base_cur->value_scaled;
			}
			else if (c->kind == BEN_POINTS_PER)
			{
				for (int i = 0; i < L; i++)
				{
					e.part[i] = c->elig[i] ? e.weight[i] : 0;
					paid += e.part[i];
				}
				pts = (paid / c->per) * c->points;
				value_scaled = p->currencies[c->currency].value_scaled;
			}
			else if (c->kind == BEN_BONUS_LOT)
			{
				for (int i = 0; i < L; i++)
					e.part[i] = c->elig[i] ? p->lines[i].amount : 0;
				pts = c->points;
				value_scaled = p->currencies[c->currency].value_scaled;
			}
			else
				continue;
			earned_value += pts * value_scaled;
			if (detail)
			{
				detail->promo_earn[k + 1] = pts;
				SpreadLargestRemainder(pts, e.part, NULL, L, detail->earn + (k + 1) * L);
			}
		}
	}

	for (int k = 0; k < p->npromos; k++)
		if (in[k] && p->promos[k].kind == BEN_GIFT)
			gifts += p->promos[k].amount;

	if (detail)
		for (int k = 0; k < p->npromos; k++)
		{
			detail->promo_discount[k] = 0;
			for (int i = 0; i < L; i++)
				detail->promo_discount[k] += detail->part[k * L + i];
		}

	out->discount = discount;
	out->points_money = points_money + fixed_money;
	out->gifts = gifts;
	out->earned_value = earned_value;
	out->value = (discount + points_money + fixed_money + gifts) * SEARCH_SCALE + earned_value;

	pfree(e.line_disc);
	pfree(e.room);
	pfree(e.paid_points);
	pfree(e.avail);
	pfree(e.holds);
	pfree(e.res);
	pfree(e.best);
	pfree(e.lot_left);
	pfree(e.weight);
	pfree(e.part);
	pfree(e.covered);
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
	return d;
}

/* May candidate k join the combination in[0..k-1]? */
static bool
Compatible(const SProblem *p, const bool *in, int k, int upto)
{
	const SPromo *c = &p->promos[k];

	for (int j = 0; j < upto; j++)
	{
		if (!in[j] || j == k)
			continue;
		if (c->exclusive || p->promos[j].exclusive)
			return false;
		if (c->receipt_group >= 0 && p->promos[j].receipt_group == c->receipt_group)
			return false;
	}
	return true;
}

/* State of the branch and bound */
typedef struct BB
{
	const SProblem *p;
	bool	   *in;
	bool	   *best;
	int64		best_value;
	bool		have_best;
	int64		explored;
	int64		nodes;
	struct timespec start;
	double		budget_ms;
	bool		stopped;
} BB;

static double
ElapsedMs(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000.0 + (now.tv_nsec - start->tv_nsec) / 1e6;
}

static void
Branch(BB *bb, int k)
{
	const SProblem *p = bb->p;
	SOutcome	o;

	if (bb->stopped)
		return;
	if ((++bb->nodes & 63) == 0 && bb->budget_ms > 0 && ElapsedMs(&bb->start) > bb->budget_ms)
	{
		bb->stopped = true;
		return;
	}
	if (k == p->npromos)
	{
		SearchEvaluate(p, bb->in, &o, NULL);
		bb->explored++;
		if (!bb->have_best || o.value > bb->best_value)
		{
			bb->have_best = true;
			bb->best_value = o.value;
			memcpy(bb->best, bb->in, sizeof(bool) * p->npromos);
		}
		return;
	}
	if (bb->have_best)
	{
		/* what is decided, plus the most each open candidate could add */
		int64		bound;

		SearchEvaluate(p, bb->in, &o, NULL);
		bound = o.value;
		for (int j = k; j < p->npromos; j++)
			if (Compatible(p, bb->in, j, k))
				bound += p->promos[j].ub;
		if (bound <= bb->best_value)
			return;
	}
	if (Compatible(p, bb->in, k, k))
	{
		bb->in[k] = true;
		Branch(bb, k + 1);
		bb->in[k] = false;
	}
	Branch(bb, k + 1);
}

/*
 * The combination of greatest value, by depth-first branch and bound,
 * including a candidate before excluding it; stops after budget_ms (0: no
 * limit) with the best found and optimal false.
 */
void
SearchBranchAndBound(const SProblem *p, double budget_ms, SResult *result)
{
	BB			bb;

	memset(&bb, 0, sizeof(bb));
	bb.p = p;
	bb.in = palloc0(sizeof(bool) * Max(p->npromos, 1));
	bb.best = palloc0(sizeof(bool) * Max(p->npromos, 1));
	bb.budget_ms = budget_ms;
	clock_gettime(CLOCK_MONOTONIC, &bb.start);
	Branch(&bb, 0);
	if (!bb.have_best)
		memset(bb.best, 0, sizeof(bool) * Max(p->npromos, 1));
	result->chosen = bb.best;
	SearchEvaluate(p, bb.best, &result->outcome, NULL);
	result->optimal = !bb.stopped;
	result->explored = bb.explored;
	pfree(bb.in);
}

/*
 * Every combination, from the one including all candidates down (the order
 * in which the branch and bound meets them), keeping the first of greatest
 * value.
 */
void
SearchExhaustive(const SProblem *p, SResult *result)
{
	int			n = p->npromos;
	bool	   *in = palloc0(sizeof(bool) * Max(n, 1));
	bool	   *best = palloc0(sizeof(bool) * Max(n, 1));
	bool		have = false;
	int64		best_value = 0;

	if (n > SEARCH_MAX_EXHAUSTIVE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("exhaustive search over %d candidate promotions is too large", n),
				 errdetail("It accepts at most %d.", SEARCH_MAX_EXHAUSTIVE)));
	result->explored = 0;
	for (int64 mask = (INT64CONST(1) << n) - 1; mask >= 0; mask--)
	{
		SOutcome	o;
		bool		valid = true;

		for (int k = 0; k < n; k++)
			in[k] = (mask >> (n - 1 - k)) & 1;
		for (int k = 0; k < n && valid; k++)
			if (in[k] && !Compatible(p, in, k, n))
				valid = false;
		if (!valid)
			continue;
		SearchEvaluate(p, in, &o, NULL);
		result->explored++;
		if (!have || o.value > best_value)
		{
			have = true;
			best_value = o.value;
			memcpy(best, in, sizeof(bool) * Max(n, 1));
		}
	}
	result->chosen = best;
	SearchEvaluate(p, best, &result->outcome, NULL);
	result->optimal = true;
	pfree(in);
}
