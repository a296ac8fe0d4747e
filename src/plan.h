/*
 * src/plan.h
 *
 * The plan of a receipt: what calculate decided, in typed form (integers
 * of minor units, catalogue indexes, lot ids).  loyalty.calculate renders it
 * as its jsonb answer; loyalty.commit writes it to the ledger, the counters
 * and the receipt tables.  Nothing reads the rendered answer back.
 */
#ifndef LOYALTY_PLAN_H
#define LOYALTY_PLAN_H

#include "utils/array.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "jsonbuild.h"

/* Money off a line by one promotion */
typedef struct PlanDiscount
{
	int			promo;			/* catalogue index */
	int64		amount;			/* minor units of money */
} PlanDiscount;

/* Points paying for a line from one lot */
typedef struct PlanPaid
{
	int			lot;			/* index in ReceiptPlan.lots */
	int64		points;			/* minor units of the lot's currency */
	int64		money;			/* what they pay, minor units of money */
} PlanPaid;

/* Points one promotion adds to a line */
typedef struct PlanPromoEarn
{
	int			promo;			/* catalogue index */
	int64		points;
} PlanPromoEarn;

/* Points a line earns in one currency */
typedef struct PlanEarn
{
	int			currency;		/* catalogue index */
	int64		base;			/* the programme's rate (default currency) */
	int64		points;			/* base and every promotion's */
	int			npromos;		/* in jsonb's order of their codes */
	PlanPromoEarn *promos;
} PlanEarn;

typedef struct PlanLine
{
	int32		no;
	const char *sku;
	int64		qty_milli;
	int64		price;
	int64		amount;
	int64		discount;
	int64		points_money;
	int64		to_pay;
	int			ndiscounts;		/* in the search's order of candidates */
	PlanDiscount *discounts;
	int			npaid;			/* in spending order of the lots */
	PlanPaid   *paid;
	int			nearned;		/* in catalogue order of currencies */
	PlanEarn   *earned;
} PlanLine;

/* A lot of the customer the calculation read */
typedef struct PlanLot
{
	int64		id;
	int			currency;		/* catalogue index */
} PlanLot;

/* A promotion the answer applies */
typedef struct PlanApplied
{
	int			promo;			/* catalogue index */
	bool		capped;
	int64		discount;		/* minor units of money */
	int64		points_earned;	/* minor units of its currency */
	int			currency;
} PlanApplied;

/* A promotion that matched and does not apply, and why */
typedef struct PlanNotApplied
{
	int			promo;
	const char *reason;
	const char *detail;			/* or NULL */
} PlanNotApplied;

typedef enum PlanCouponStatus
{
	COUPON_ACCEPTED,
	COUPON_REJECTED,
	COUPON_NOT_USED
} PlanCouponStatus;

typedef struct PlanCoupon
{
	const char *code;			/* as sent */
	PlanCouponStatus status;
	const char *reason;			/* rejected or not used: why */
	int			promo;			/* catalogue index, or -1 */
} PlanCoupon;

/* A wallet of the customer as the calculation read it */
typedef struct PlanWallet
{
	const char *currency;
	int			index;			/* catalogue index */
	int64		balance;		/* the points that count */
	int64		held;
	int64		available;
	int64		version;
} PlanWallet;

typedef struct ReceiptPlan
{
	MemoryContext cxt;			/* the plan lives here (PlanFree) */
	Catalog    *cat;
	bool		as_committed;	/* recomputed as committed */
	bool		explain;		/* the receipt asked for the whole answer */
	const char *receipt_id;		/* or NULL */
	TimestampTz at;
	int			at_offset;		/* seconds west of UTC */
	DateADT		local_date;		/* the receipt's date on its own clock */
	/* the customer */
	bool		identified;
	bool		found;
	const char *not_found_reason;
	int64		customer_id;
	const char *status;
	const char *tier;
	StrList		segments;
	bool		can_spend;
	const char *ident_kind;		/* the identifier it was found by, or NULL */
	const char *ident_value;	/* normalised */
	const char *store;			/* the receipt's, or NULL */
	int		   *variants;		/* per catalogue experiment (ExperimentAssign), or
								 * NULL when the programme has none */
	int			nwallets;
	PlanWallet *wallets;
	/* what it gives */
	int			nlines;
	PlanLine   *lines;
	CondValue **line_rows;		/* each line's condition values (fraud rules) */
	int			nlots;
	PlanLot    *lots;
	int64		amount;
	int64		discount;
	int64		points_money;
	int64		to_pay;
	int64	   *points_spent;	/* per catalogue currency */
	int64	   *points_earned;	/* per catalogue currency, bonus lots included */
	int			ngifts;
	int		   *gifts;			/* catalogue indexes */
	int			nbonus;
	int		   *bonus;			/* catalogue indexes of bonus-lot promotions */
	int			napplied;		/* in the search's order */
	PlanApplied *applied;
	int			nnot_applied;	/* with "explain" only */
	PlanNotApplied *not_applied;
	int			ncoupons;		/* as sent */
	PlanCoupon *coupons;
	/* the search */
	bool		optimal;
	int64		explored;
	int			candidates;
} ReceiptPlan;

extern ReceiptPlan *PlanCalculate(Jsonb *doc, ArrayType *only, bool explain);
extern bool PlanFindCustomer(Jsonb *doc, const LoyaltyProgram *program, int64 *customer_id);
typedef enum PlanLinePart
{
	LINE_DISCOUNTS,
	LINE_POINTS_PAID,
	LINE_POINTS_EARNED
} PlanLinePart;

extern void PlanRender(ReceiptPlan *plan, JsonBuild *jb);
extern void PlanRenderLine(ReceiptPlan *plan, int line, PlanLinePart part, JsonBuild *jb);
extern void PlanRenderTotals(ReceiptPlan *plan, JsonBuild *jb);
extern void PlanRenderLineSummary(Catalog *cat, const PlanLine *line, JsonBuild *jb);
extern Jsonb *PlanAnswer(ReceiptPlan *plan);
extern void PlanFree(ReceiptPlan *plan);
extern DateADT PlanPeriodStart(const ReceiptPlan *plan, LimitPeriod period);

#endif
