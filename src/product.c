/*
 * src/product.c
 *
 * The products receipts name, kept per backend.  A till's receipt names
 * skus that other receipts named a moment ago, and a condition reads of a
 * line what the catalogue says of its sku (category, brand, attributes);
 * reading those rows by index for every line of every receipt was the
 * larger part of a calculation's reading.  So each backend keeps the
 * document of every sku it read (or that it is unknown) in a hash table by
 * programme and sku, up to loyalty.product_cache_size entries, and empties
 * it when full.
 *
 * Every statement that changes loyalty.product runs the trigger
 * loyalty.product_changed(), which invalidates the table's relcache entry;
 * when the invalidation reaches a backend (at its next transaction start or
 * lock) the callback below marks the cache stale and the next lookup
 * empties it.  A row is read with the latest snapshot, and kept only if no
 * invalidation arrived since the lookup began: a change committed after the
 * read sends its invalidation after the read's snapshot was taken, so it
 * always empties the cache after the row was kept, never before.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "direct.h"
#include "jsonbuild.h"
#include "product.h"

PG_FUNCTION_INFO_V1(loyalty_product_changed);

#define SKU_MAX 128				/* the column's CHECK */

int			loyalty_product_cache_size = 50000;

typedef struct ProductKey
{
	int64		program_id;
	char		sku[SKU_MAX + 1];
} ProductKey;

typedef struct ProductEntry
{
	ProductKey	key;
	Jsonb	   *doc;			/* NULL: no such product */
} ProductEntry;

static MemoryContext ProductCxt = NULL;
static HTAB *Products = NULL;
static bool ProductStale = false;
static uint64 ProductInvalidations = 0;
static Oid	ProductRelid = InvalidOid;

/* Relcache callback: loyalty.product (or everything) was invalidated */
static void
ProductInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || ProductRelid == InvalidOid || relid == ProductRelid)
	{
		ProductStale = true;
		ProductInvalidations++;
		/* looked up again: the extension may have been dropped and created */
		ProductRelid = InvalidOid;
	}
}

void
loyalty_product_init(void)
{
	DefineCustomIntVariable("loyalty.product_cache_size",
							"Most products each backend keeps for calculate (0: none).",
							"A full cache is emptied and fills again.",
							&loyalty_product_cache_size, 50000, 0, 10000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	CacheRegisterRelcacheCallback(ProductInvalidate, (Datum) 0);
}

/* Keys hash and compare over the sku's characters only, not the padding */
static uint32
KeyHash(const void *key, Size keysize)
{
	const ProductKey *k = key;

	return hash_combine(hash_bytes_uint32((uint32) k->program_id),
						hash_bytes((const unsigned char *) k->sku, strlen(k->sku)));
}

static int
KeyMatch(const void *key1, const void *key2, Size keysize)
{
	const ProductKey *a = key1,
			   *b = key2;

	return a->program_id == b->program_id ? strcmp(a->sku, b->sku) : 1;
}

/* An empty cache, the old one dropped */
static void
ResetCache(void)
{
	HASHCTL		ctl;

	if (ProductCxt)
		MemoryContextDelete(ProductCxt);
	ProductCxt = AllocSetContextCreate(CacheMemoryContext, "loyalty products",
									   ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(ProductKey);
	ctl.entrysize = sizeof(ProductEntry);
	ctl.hash = KeyHash;
	ctl.match = KeyMatch;
	ctl.hcxt = ProductCxt;
	Products = hash_create("loyalty products", 1024, &ctl,
						   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	ProductStale = false;
	if (ProductRelid == InvalidOid)
		ProductRelid = get_relname_relid("product", get_namespace_oid("loyalty", false));
}

/* The document of the row, as conditions read it: null members left out */
static Jsonb *
ReadDoc(int64 program_id, const char *sku, Snapshot snapshot)
{
	DirectKey	keys[2] = {DirectInt8Key(program_id), DirectTextKey(sku)};
	DirectScan *s = DirectReadBeginAt("product", "product_pkey", 2, keys, snapshot);
	Jsonb	   *doc = NULL;

	if (DirectScanNext(s))
	{
		JsonBuild	jb = NULL;
		bool		isnull;
		Datum		attributes = DirectReadGet(s, "attributes", &isnull);

		JbBeginObject(&jb, NULL);
		JbText(&jb, "sku", sku);
		JbTextIf(&jb, "name", DirectReadText(s, "name"));
		JbTextIf(&jb, "category", DirectReadText(s, "category"));
		JbTextIf(&jb, "brand", DirectReadText(s, "brand"));
		if (!isnull)
			JbJsonb(&jb, "attributes",
					DatumGetJsonbP(DirectFunctionCall1(jsonb_strip_nulls, attributes)));
		doc = JbFinish(&jb);
	}
	DirectReadEnd(s);
	return doc;
}

/*
 * The document {sku, name, category, brand, attributes} of a product, in
 * the caller's context; NULL if the programme has no such sku.
 */
Jsonb *
ProductDoc(int64 program_id, const char *sku)
{
	ProductKey	key;
	ProductEntry *e;
	bool		found;
	uint64		before;
	Snapshot	snapshot;
	Jsonb	   *doc;

	if (strlen(sku) > SKU_MAX || loyalty_product_cache_size == 0)
		return ReadDoc(program_id, sku, GetActiveSnapshot());
	if (Products == NULL || ProductStale || hash_get_num_entries(Products) >= loyalty_product_cache_size)
		ResetCache();
	key.program_id = program_id;
	strcpy(key.sku, sku);
	e = hash_search(Products, &key, HASH_FIND, NULL);
	if (e)
	{
		/* a copy: the cache may be emptied before the caller is done */
		if (e->doc == NULL)
			return NULL;
		doc = palloc(VARSIZE(e->doc));
		memcpy(doc, e->doc, VARSIZE(e->doc));
		return doc;
	}

	/* a miss: read with the latest snapshot; keep it unless invalidated meanwhile */
	before = ProductInvalidations;
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	doc = ReadDoc(program_id, sku, snapshot);
	UnregisterSnapshot(snapshot);
	if (ProductInvalidations == before && !ProductStale)
	{
		e = hash_search(Products, &key, HASH_ENTER, &found);
		e->doc = NULL;
		if (doc)
		{
			e->doc = MemoryContextAlloc(ProductCxt, VARSIZE(doc));
			memcpy(e->doc, doc, VARSIZE(doc));
		}
	}
	return doc;
}

/*
 * Trigger loyalty.product_changed(), after each statement that changes
 * loyalty.product: every backend's cache of products is emptied once the
 * change commits.
 */
Datum
loyalty_product_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("product_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
