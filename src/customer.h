/*
 * src/customer.h
 *
 * Finding the customer of a receipt (src/customer.c).
 */
#ifndef LOYALTY_CUSTOMER_H
#define LOYALTY_CUSTOMER_H

#include "program.h"
#include "utils/jsonb.h"

/* what a lookup found; strings are allocated in the caller's context */
typedef struct FoundCustomer
{
	char	   *ident_status;	/* of the identifier; "active" for an id */
	int64		id;
	char	   *status;
	char	   *tier;
	char	   *birth_date;
	char	   *home_city;
	Jsonb	   *attributes;
	const char *ident_kind;		/* the identifier it was found by (card, phone, */
	const char *ident_value;	/* email), normalised; NULL for an id */
} FoundCustomer;

extern bool FindReceiptCustomer(const LoyaltyProgram *program, const char *kind_name,
								const char *value, MemoryContext resultcxt,
								FoundCustomer *found, char **reason);

#endif
