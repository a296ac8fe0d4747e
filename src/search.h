/*
 * src/search.h
 *
 * The best-benefit search of loyalty.calculate, apart from SQL: a receipt's
 * lines, the candidate promotions with what each would give on each line,
 * the customer's spendable lots, and the evaluation of a combination of
 * promotions (caps, stacking, points paid and earned) that both the branch
 * and bound search and the exhaustive check use.
 *
 * Amounts are integers: money in minor units, points in minor units of
 * their currency.  A combination's value is scaled by SEARCH_SCALE so that
 * earned points, worth a fraction of a minor unit of money, compare exactly.
 */
#ifndef LOYALTY_SEARCH_H
#define LOYALTY_SEARCH_H

#include "benefit.h"

#define SEARCH_SCALE		INT64CONST(10000)
#define SEARCH_MAX_EXHAUSTIVE 20	/* choices the exhaustive check accepts */

typedef __int128 int128_t;

typedef struct SLine
{
	int64		amount;			/* price x quantity */
	int64		unit_price;
	int64		qty_milli;		/* quantity in thousandths */
	int32		units;			/* whole units; 0 when the quantity is not whole */
	int64		floor;			/* the least the line may come to */
	bool		points_ok;		/* points may pay for it */
} SLine;

typedef struct SPromo
{
	const Benefit *benefit;		/* what it gives, as the catalogue read it */
	const BenefitOps *ops;		/* its kind's operations */
	BenefitRole role;
	int			group;			/* stacking group number, or -1 */
	bool		exclusive;
	int64	   *disc;			/* per line: money off (line benefits) */
	int64	   *fpoints;		/* per line: points a fixed price in points takes */
	int64	   *lineval;		/* per line: what it is worth there, scaled */
	bool	   *elig;			/* per line: the line condition holds */
	int			currency;		/* of points_per, bonus_lot, fixed price in points */
	bool		in_points;		/* a price in points (benefit->in_points) */
	bool	  **part_elig;		/* per bundle component: its lines */
	int			receipt_group;	/* group of a receipt-level benefit, or -1 */
	int			twin_of;		/* an earlier searched candidate that is the same
								 * in every way that counts, or -1 */
	bool		fixed;			/* not searched: applies unless an exclusive
								 * promotion does (see SearchIndex) */
	bool		decided_out;	/* not searched: in no best combination */
	int64		ub;				/* most it can add to any combination, scaled */
} SPromo;

typedef struct SCurrency
{
	int64		value_num;		/* one minor unit of points is worth */
	int64		value_den;		/* value_num / value_den minor units of money */
	int64		value_scaled;	/* its worth as earned: value x weight x SCALE */
	int64		spendable;		/* effective balance less held; 0 if none */
	int64		request;		/* points asked to spend; -1: as many as allowed */
} SCurrency;

typedef struct SLot
{
	int			currency;
	int64		remaining;
	bool	   *pays;			/* per line, for a restricted lot; NULL: any line */
} SLot;

typedef struct SProblem
{
	int			nlines;
	SLine	   *lines;
	int			npromos;		/* candidates, in tie-break order */
	SPromo	   *promos;
	int			ngroups;
	int			ncurrencies;
	SCurrency  *currencies;
	int			nlots;			/* in spending order */
	SLot	   *lots;
	int64		total;			/* sum of line amounts */
	int32		max_discount_bp;
	int32		max_points_bp;
	int64		discount_step;
	int32		accrual_rate_bp;
	int			base_currency;	/* of the base accrual and multipliers */
	bool		can_spend;
	bool		can_earn;
	bool		exhaustive;		/* every candidate a choice, nothing assumed */
	bool	   *line_off;		/* [promo * nlines + line]: a line a price in
								 * points of the best leaves (SearchSplit), or
								 * NULL */
	/* built by SearchIndex, once the candidates are in their final order */
	bool		indexed;
	int		   *line_first;		/* [nlines + 1]: where each line's list starts */
	int		   *line_cands;		/* candidates with a line benefit worth something
								 * on the line, in candidate order */
	int			nsearched;		/* candidates the search decides, in order */
	int		   *searched;
	int		   *search_pos;		/* [promo]: its place in searched, or -1 */
	void	   *scratch;		/* of SearchEvaluate */
} SProblem;

/*
 * The search's arithmetic, which the kinds' operations (src/kinds/) use too.
 *
 * Points at their scaled worth.  Capped far above any receipt (a receipt
 * comes to at most 10^12 minor units, 10^16 scaled), so that sums of values
 * never overflow.
 */
#define VALUE_CAP	INT64CONST(1000000000000000000)
static inline int64
Worth(int64 points, int64 value_scaled)
{
	int128_t	v = (int128_t) points * value_scaled;

	return v > VALUE_CAP / 16 ? VALUE_CAP / 16 : (int64) v;
}

/* floor(a * b / c) for non-negative a, b and positive c */
static inline int64
MulDiv(int64 a, int64 b, int64 c)
{
	return (int64) (((int128_t) a * b) / c);
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

/* Points of the base accrual that money earns, with extra percent of the rate */
static inline int64
EarnPoints(const SProblem *p, int64 money, int32 extra_pct)
{
	const SCurrency *c = &p->currencies[p->base_currency];

	/* money x rate/10000 x extra/100 is money; in points, x den/num */
	return (int64) (((int128_t) money * p->accrual_rate_bp * extra_pct * c->value_den) /
					((int128_t) 1000000 * c->value_num));
}

/* The sum of the amounts of the lines where c's line condition holds */
static inline int64
EligibleAmount(const SProblem *p, const SPromo *c)
{
	int64		sum = 0;

	for (int i = 0; i < p->nlines; i++)
		if (c->elig[i])
			sum += p->lines[i].amount;
	return sum;
}

/* Where every amount of a combination went (SearchEvaluate with detail) */
typedef struct SDetail
{
	int64	   *part;			/* [promo * nlines + line]: money off */
	int64	   *fpaid;			/* [promo * nlines + line]: points of a fixed price in points */
	int64	   *fmoney;			/* [promo * nlines + line]: money those points paid */
	int64	   *lot_points;		/* [lot * nlines + line]: requested points paid */
	int64	   *lot_money;		/* [lot * nlines + line]: money they paid */
	int64	   *earn;			/* [(promo + 1) * nlines + line]: points earned; row 0
								 * is the base accrual */
	int64	   *promo_earn;		/* [promo + 1]: points earned, row 0 the base */
	int64	   *promo_discount;	/* [promo]: money off in all */
	bool	   *capped;			/* [promo]: reduced by a cap */
	bool	   *below_threshold;	/* [promo]: receipt_off under its threshold */
	bool	   *won;			/* [promo]: a points per money, bonus lot or gift
								 * that applies (the best of its receipt group) */
} SDetail;

typedef struct SOutcome
{
	int64		value;			/* scaled */
	int64		uncapped;		/* the same before the cap on discounts */
	int64		discount;
	int64		points_money;	/* money paid with points, fixed prices included */
	int64		fixed_money;	/* of which fixed prices in points */
	int64		gifts;
	int64		earned_value;	/* scaled */
	int64		denied_value;	/* what the prices in points that the caps
								 * left no room for would give, scaled */
	bool		cap_bound;
} SOutcome;

typedef struct SResult
{
	bool	   *chosen;			/* [promo] */
	SOutcome	outcome;
	bool		optimal;
	int64		explored;		/* combinations evaluated */
} SResult;

/* Why a candidate does not apply (SearchWhyNot) */
typedef enum SearchWhy
{
	SEARCH_WHY_BETTER,			/* a better combination leaves it out */
	SEARCH_WHY_THRESHOLD,		/* a receipt discount under its threshold */
	SEARCH_WHY_CAP				/* the caps leave it no room */
} SearchWhy;

extern int64 SpreadLargestRemainder(int64 total, const int64 *weight, const int64 *cap,
									int n, int64 *out);
extern void SearchPrepare(SProblem *p);
extern bool SearchShows(const SProblem *p, const SDetail *det, int k);
extern void SearchBestSet(const SProblem *p, const bool *chosen, bool *best_set);
extern SearchWhy SearchWhyNot(const SProblem *p, const bool *best_set, const SDetail *best, int k);
extern void SearchIndex(SProblem *p);
extern void SearchEvaluate(const SProblem *p, const bool *in, SOutcome *out, SDetail *detail);
extern SDetail *SearchDetailAlloc(const SProblem *p);
extern void SearchBranchAndBound(SProblem *p, double budget_ms, SResult *result);
extern void SearchExhaustive(SProblem *p, SResult *result);

#endif
