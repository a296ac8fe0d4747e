/*
 * src/tiers.h
 *
 * Tiers: the lift a commit gives (src/tiers.c).
 */
#ifndef LOYALTY_TIERS_H
#define LOYALTY_TIERS_H

extern void TierLift(int64 program_id, int64 customer_id, const char *receipt_id);

#endif
