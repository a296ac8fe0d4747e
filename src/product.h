/*
 * src/product.h
 *
 * The products receipts name, cached per backend (src/product.c).
 */
#ifndef LOYALTY_PRODUCT_H
#define LOYALTY_PRODUCT_H

#include "utils/jsonb.h"

extern int	loyalty_product_cache_size;

extern void loyalty_product_init(void);
extern Jsonb *ProductDoc(int64 program_id, const char *sku);

#endif
