/*
 * src/catalog.h
 *
 * The compiled promotion catalogue of a programme, kept per backend: its
 * settings and currencies, its active promotions with their conditions
 * compiled over one attribute dictionary, and an index of the line
 * conditions.  Rebuilt only when the catalogue generation moved.
 */
#ifndef LOYALTY_CATALOG_H
#define LOYALTY_CATALOG_H

#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/timestamp.h"

#include "benefit.h"
#include "campaigns.h"
#include "condition.h"
#include "experiment.h"
#include "fraud.h"
#include "program.h"
#include "tiers.h"

typedef enum Audience
{
	AUD_ALL,
	AUD_TIERS,
	AUD_SEGMENTS,
	AUD_PERSONAL,
	AUD_BIRTHDAY,
	AUD_COUPON
} Audience;

typedef enum LimitPeriod
{
	PERIOD_NONE,
	PERIOD_DAY,
	PERIOD_WEEK,
	PERIOD_MONTH,
	PERIOD_YEAR,
	PERIOD_EVER
} LimitPeriod;

extern LimitPeriod LimitPeriodOf(const char *s);

/* A list of strings (countries, tiers...); n == 0 means "any" */
typedef struct StrList
{
	int			n;
	char	  **items;
} StrList;

typedef struct CatCurrency
{
	char	   *code;
	int			exponent;
	int64		value_num;		/* one minor unit of points is worth */
	int64		value_den;		/* value_num / value_den minor units of money */
} CatCurrency;

typedef struct CatPromo
{
	int64		id;
	char	   *code;
	int			code_rank;		/* its place in jsonb's order of keys */
	char	   *name;
	bool		has_from;		/* the active window */
	bool		from_inc;
	TimestampTz from;
	bool		has_to;
	bool		to_inc;
	TimestampTz to;
	int32		weekdays;		/* bit d for ISO weekday d; 0: every day */
	int32		hours;			/* bit h for local hour h; 0: all day */
	StrList		countries;
	StrList		cities;
	StrList		stores;
	StrList		channels;
	Audience	audience;
	StrList		tiers;
	StrList		segments;
	int32		birthday_days;
	CondProgram *line_cond;		/* NULL: every line */
	CondProgram *receipt_cond;	/* NULL: always */
	Benefit		benefit;
	CondProgram **part_conds;	/* bundle components */
	char	   *group_name;
	int			group;			/* number of stacking_group, or -1 */
	int32		priority;
	bool		exclusive;
	int32		limit_per_customer;
	LimitPeriod limit_period;
	int64		limit_total;	/* 0: none */
	int64		budget;			/* minor units of money; 0: none */
	bool		broken;			/* its benefit no longer reads: left out */
	uint64	   *exp_masks;		/* per experiment, the variants that list it;
								 * NULL: listed by none */
} CatPromo;

/* A condition compiled on demand (lot restrictions), by its text */
typedef struct CatCondition
{
	char	   *text;
	CondProgram *program;
} CatCondition;

typedef struct Catalog
{
	int64		program_id;
	LoyaltyProgram program;		/* its rules for identifiers */
	char	   *code;
	char	   *money_currency;
	int			money_exponent;
	int			default_currency;	/* index in currencies */
	int32		accrual_rate_bp;
	int32		max_discount_bp;
	int32		max_points_bp;
	int64		min_line_price;
	int64		discount_step;
	int32		earn_weight_bp;
	Interval	accrual_delay;	/* how long earned points wait in the queue */
	Tiers		tiers;			/* its tiers, highest first: CatalogTiers */
	bool		tiers_kept;		/* a change of the tiers bumps the generation
								 * (the schema is 0.17's or later) */
	CondProgram *points_excluded;	/* NULL: points pay any line */
	int			ncurrencies;
	CatCurrency *currencies;
	int			npromos;		/* in id order */
	CatPromo   *promos;
	bool		has_personal;	/* one of them is for personal offers */
	int			ngroups;
	CondDict   *dict;
	CondIndex  *index;			/* over every promotion's line condition
								 * (true where it has none) */
	List	   *conditions;		/* of CatCondition */
	int			nfraud;			/* its active fraud rules, in id order */
	FraudRule  *fraud;
	int			nchallenges;	/* its active challenges, in id order */
	Challenge  *challenges;
	int			nexperiments;	/* its active experiments, by code */
	CatExperiment *experiments;
	/*
	 * Scratch of one calculation: slot[k] numbers promotion k among those
	 * the receipt's lines matched, valid when stamp[k] is this call's
	 * number (so that nothing needs clearing, even after an error).
	 */
	int		   *slot;
	uint32	   *stamp;
	int		   *match_buf;		/* npromos + 1 */
	uint32		call;
	int64		generation;
	MemoryContext cxt;
} Catalog;

extern Catalog *CatalogGet(const char *program_code);
extern Catalog *CatalogGetById(int64 program_id);
extern Catalog *CatalogOf(const char *program_code, ArrayType *ids);
extern CondProgram *CatalogCondition(Catalog *cat, const char *text);
extern int	CatalogPromoIndex(const Catalog *cat, int64 id);
extern int	CatalogCurrencyIndex(const Catalog *cat, const char *code);
extern const Tiers *CatalogTiers(const Catalog *cat);
extern bool IsReadError(int sqlerrcode);
extern void loyalty_catalog_init(void);

#endif
