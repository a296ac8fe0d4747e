/*
 * src/lot.h
 *
 * What every path that reads lots agrees on: when a lot's points may be
 * spent.  (The lot as redemption reads it, and the functions that choose and
 * write lots, are in wallet.h.)
 */
#ifndef LOYALTY_LOT_H
#define LOYALTY_LOT_H

#include "datatype/timestamp.h"

extern bool LotValidThrough(TimestampTz valid_from, bool has_valid_to, TimestampTz valid_to,
							TimestampTz from, TimestampTz to);

#endif
