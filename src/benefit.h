/*
 * src/benefit.h
 *
 * What a promotion gives: the benefit document of loyalty.promotion, read
 * into integers of minor units once, when it is saved (normalize_benefit)
 * and when the catalogue is compiled.
 *
 * Each kind of benefit is one file of src/kinds/ holding its table of
 * operations (BenefitOps): the fields its document may have, how they are
 * read and written back in normal form, and what it gives on a receipt's
 * lines on its own together with the most it can add (prepare), or the
 * points it earns on what the lines paid (earn).  The search and the
 * answer work on a kind's role, never on the kind: a role says how a
 * benefit meets the others (a line benefit holds a line against its
 * stacking group, a receipt discount comes after the line discounts, an
 * earning only adds points) and what commit writes for it.  Adding a kind of
 * an existing role is one file of src/kinds/ and its line in BENEFIT_KINDS.
 */
#ifndef LOYALTY_BENEFIT_H
#define LOYALTY_BENEFIT_H

#include "utils/jsonb.h"

#include "condition.h"
#include "jsonbuild.h"
#include "jsonread.h"

/* The kinds, in the order their names are listed in messages: X(name, NAME) */
#define BENEFIT_KINDS(X) \
	X(percent_off, PERCENT_OFF) \
	X(amount_off, AMOUNT_OFF) \
	X(fixed_price, FIXED_PRICE) \
	X(n_for_m, N_FOR_M) \
	X(bundle, BUNDLE) \
	X(receipt_off, RECEIPT_OFF) \
	X(points_per, POINTS_PER) \
	X(multiplier, MULTIPLIER) \
	X(bonus_lot, BONUS_LOT) \
	X(gift, GIFT)

typedef enum BenefitKind
{
#define BENEFIT_ENUM(name, NAME) BEN_##NAME,
	BENEFIT_KINDS(BENEFIT_ENUM)
#undef BENEFIT_ENUM
	BEN_NKINDS
} BenefitKind;

/*
 * How a benefit meets the others in the search (docs/promotions.md, "How
 * promotions combine") and what commit writes for it.
 */
typedef enum BenefitRole
{
	ROLE_LINE,					/* money off lines, or a price in points: of a
								 * stacking group the one worth most holds a
								 * line; written as the lines' discounts */
	ROLE_MULTIPLIER,			/* the base accrual multiplied on the lines it
								 * holds, as a line benefit holds them; written
								 * as points earned on the lines */
	ROLE_RECEIPT_OFF,			/* money off what the lines come to after the
								 * line benefits, above a threshold */
	ROLE_EARN,					/* points per receipt that only add; of a receipt
								 * stacking group the one worth most */
	ROLE_GIFT					/* a gift line that only adds */
} BenefitRole;

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

/* A benefit document being read: errors name the field (BenefitNeed...) */
typedef struct BenefitReader
{
	JsonDoc		doc;
	JsonbContainer *obj;
	const BenefitContext *ctx;
} BenefitReader;

struct SProblem;
struct SPromo;

typedef struct BenefitOps
{
	const char *name;			/* its "kind" */
	BenefitRole role;
	bool		own_lot;		/* ROLE_EARN: its points are a lot of their own,
								 * with the benefit's validity and restriction */
	const char *const *fields;	/* the members its document may have, "kind"
								 * among them */
	/* read the fields into out (kind and currency_index are set) */
	void		(*parse) (const BenefitReader *r, Benefit *out);
	/* write them back in normal form: every field explicit, numbers at scale */
	void		(*render) (JsonBuild *jb, const Benefit *b, const BenefitContext *ctx);

	/*
	 * On a receipt (search.h): fill the candidate's disc, fpoints and lineval
	 * per line as it gives them on its own, and return the most it can add to
	 * any combination, scaled, beyond its lines' worth: a line benefit
	 * returns 0 and the search adds up its lineval (its disc, scaled, where
	 * it leaves lineval 0).
	 */
	int64		(*prepare) (const struct SProblem *p, struct SPromo *c);

	/*
	 * ROLE_EARN: the points it earns when the lines paid paid[], and into
	 * weight[] what they are spread over the lines by.
	 */
	int64		(*earn) (const struct SProblem *p, const struct SPromo *c,
						 const int64 *paid, int64 *weight);
} BenefitOps;

#define BENEFIT_DECLARE(name, NAME) extern const BenefitOps BenefitKind_##name;
BENEFIT_KINDS(BENEFIT_DECLARE)
#undef BENEFIT_DECLARE

extern const BenefitOps *const BenefitKinds[BEN_NKINDS];

static inline const BenefitOps *
BenefitOpsOf(BenefitKind kind)
{
	return BenefitKinds[kind];
}

static inline BenefitRole
BenefitRoleOf(BenefitKind kind)
{
	return BenefitKinds[kind]->role;
}

/* Benefits decided per receipt rather than per line */
static inline bool
BenefitRoleIsReceiptLevel(BenefitRole role)
{
	return role == ROLE_RECEIPT_OFF || role == ROLE_EARN || role == ROLE_GIFT;
}

/* Benefits that take nothing from the lines and only add */
static inline bool
BenefitRoleOnlyAdds(BenefitRole role)
{
	return role == ROLE_EARN || role == ROLE_GIFT;
}

extern void BenefitParse(Jsonb *doc, const BenefitContext *ctx, Benefit *out);
extern Jsonb *BenefitToJsonb(const Benefit *b, const BenefitContext *ctx);

/* What the kinds read their fields with; errors name the field */
extern void BenefitNeed(const BenefitReader *r, const char *key, JsonbValue *v);
extern bool BenefitHas(const BenefitReader *r, const char *key, JsonbValue *v);
extern void BenefitCurrency(const BenefitReader *r, Benefit *out);
extern int64 BenefitPoints(const BenefitReader *r, Benefit *out);
extern int64 BenefitMoney(const BenefitReader *r, const char *key, int64 min);
extern int32 BenefitPercent(const BenefitReader *r);
extern int32 BenefitInt(const BenefitReader *r, const char *key, int32 min, int32 max);
extern Condition *BenefitCondition(const BenefitReader *r, const char *path,
								   const JsonbValue *v);
extern void BenefitFail(const char *message) pg_attribute_noreturn();

/* ...and write them back with */
extern void BenefitRenderMoney(JsonBuild *jb, const char *key, int64 v,
							   const BenefitContext *ctx);
extern void BenefitRenderPoints(JsonBuild *jb, const char *key, const Benefit *b,
								const BenefitContext *ctx);
extern void BenefitRenderScaled(JsonBuild *jb, const char *key, int64 v, int exponent);

#endif
