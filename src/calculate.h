/*
 * src/calculate.h
 *
 * loyalty.calculate: the receipt calculation at the till.
 */
#ifndef LOYALTY_CALCULATE_H
#define LOYALTY_CALCULATE_H

extern int	loyalty_max_lines;
extern int	loyalty_max_receipt_bytes;
extern double loyalty_search_budget_ms;

extern void loyalty_calculate_init(void);

#endif
