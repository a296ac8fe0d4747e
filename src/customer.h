/*
 * src/customer.h
 *
 * Finding the customer of a receipt (src/customer.c).
 */
#ifndef LOYALTY_CUSTOMER_H
#define LOYALTY_CUSTOMER_H

extern bool FindReceiptCustomer(const char *program_code, const char *kind_name,
								const char *value, MemoryContext resultcxt,
								int64 *id, char **reason);

#endif
