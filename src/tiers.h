/*
 * src/tiers.h
 *
 * Tiers: a programme's tiers as the catalogue keeps them, the best one a
 * customer's purchases qualify for, and the lift a commit gives
 * (src/tiers.c; docs/tiers.md is the contract).
 */
#ifndef LOYALTY_TIERS_H
#define LOYALTY_TIERS_H

#include "datatype/timestamp.h"

typedef struct Tier
{
	char	   *code;
	int32		rank;
	bool		has_spend;		/* a condition on money paid */
	int64		min_spend;		/* minor units */
	bool		has_receipts;	/* a condition on receipts */
	int32		min_receipts;
	bool		any;			/* one condition is enough */
} Tier;

/* A programme's tiers, highest rank first, and the window they look back */
typedef struct Tiers
{
	int			n;
	Tier	   *tiers;
	Interval	window;
} Tiers;

extern void TiersRead(int64 program_id, bool latest, Tiers *out);
extern void TierLift(const Tiers *tiers, int64 program_id, int64 customer_id,
					 const char *receipt_id);

#endif
