/*
 * src/loyalty.c
 *
 * The module: its magic block and _PG_init, which reserves the "loyalty."
 * prefix for the settings each concept defines.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "access.h"
#include "calculate.h"
#include "catalog.h"
#include "event.h"
#include "product.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Load-time set-up of every concept */
void
_PG_init(void)
{
	loyalty_access_init();
	loyalty_calculate_init();
	loyalty_catalog_init();
	loyalty_event_init();
	loyalty_product_init();
	MarkGUCPrefixReserved("loyalty");
}
