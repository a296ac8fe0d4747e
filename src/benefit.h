/*
 * src/benefit.h
 *
 * What a promotion gives: the benefit document of loyalty.promotion, read
 * into integers of minor units once, when it is saved (normalize_benefit)
 * and when the catalogue is compiled.
 */
#ifndef LOYALTY_BENEFIT_H
#define LOYALTY_BENEFIT_H

#include "utils/jsonb.h"

#include "condition.h"

typedef enum BenefitKind
{
	BEN_PERCENT_OFF,			/* percent off each line */
	BEN_AMOUNT_OFF,				/* amount off each unit */
	BEN_FIXED_PRICE,			/* each unit at a price, in money or in points */
	BEN_N_FOR_M,				/* of every buy units, pay for pay: the cheapest free */
	BEN_BUNDLE,					/* a set of components at a price */
	BEN_RECEIPT_OFF,			/* amount or percent off the lines above a threshold */
	BEN_POINTS_PER,				/* points per step of money paid, per receipt */
	BEN_MULTIPLIER,				/* the base accrual of the lines multiplied */
	BEN_BONUS_LOT,				/* points as a lot of their own */
	BEN_GIFT,					/* a gift line */
	BEN_NKINDS
} BenefitKind;

#define BENEFIT_MAX_COMPONENTS 16

typedef struct BundlePart
{
	Condition  *condition;
	int32		qty;
} BundlePart;

/* The currencies a benefit may name, and the programme's money */
typedef struct BenefitContext
{
	int			money_exponent;
	const char *default_currency;
	int			ncurrencies;
	const char **currencies;
	const int  *exponents;
} BenefitContext;

typedef struct Benefit
{
	BenefitKind kind;
	int32		percent_bp;		/* percent_off, receipt_off: 10% is 1000 */
	int64		amount;			/* amount_off, receipt_off, fixed price, bundle price,
								 * gift value: minor units of money */
	bool		in_points;		/* fixed_price: the price is points */
	int64		threshold;		/* receipt_off: minor units of money */
	int32		buy;			/* n_for_m */
	int32		pay;
	int			nparts;			/* bundle */
	BundlePart *parts;
	int64		per;			/* points_per: minor units of money per step */
	int64		points;			/* points_per, bonus_lot, fixed_price in points:
								 * minor units of the currency */
	const char *currency;		/* of points; the programme's default if not named */
	int			currency_index;	/* in BenefitContext.currencies */
	int32		factor_pct;		/* multiplier: x2 is 200 */
	int32		valid_days;		/* bonus_lot: 0 for never expiring */
	char	   *restriction;	/* bonus_lot: condition text, or NULL */
	char	   *sku;			/* gift */
	char	   *name;			/* gift */
} Benefit;

extern const char *const BenefitKindNames[BEN_NKINDS];

extern void BenefitParse(Jsonb *doc, const BenefitContext *ctx, Benefit *out);
extern Jsonb *BenefitToJsonb(const Benefit *b, const BenefitContext *ctx);
extern bool BenefitIsReceiptLevel(BenefitKind kind);

#endif
