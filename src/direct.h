/*
 * src/direct.h
 *
 * Row access for the hot path without planning or starting the executor:
 * index lookups, the wallet row lock, and inserts and updates through the
 * executor's simple-relation routines (the ones logical replication applies
 * changes with), which maintain indexes, check constraints and fire row
 * triggers.  One operation opens what it needs between DirectBegin and
 * DirectEnd, which also connect to and leave SPI for its rarer statements.
 */
#ifndef LOYALTY_DIRECT_H
#define LOYALTY_DIRECT_H

#include "access/tableam.h"
#include "executor/tuptable.h"

typedef enum DirectTable
{
	DT_WALLET,
	DT_LEDGER,
	DT_LOT,
	DT_CUSTOMER,
	DT_EVENT,
	DT_COUNT
} DirectTable;

/* A key of an index scan: leading columns equal to these values */
typedef struct DirectKey
{
	Oid			type;			/* INT8OID or TEXTOID */
	Datum		value;
} DirectKey;

typedef struct DirectScan DirectScan;

extern void DirectBegin(void);
extern void DirectEnd(void);
extern int	DirectAttno(DirectTable t, const char *column);
extern TupleTableSlot *DirectNewRow(DirectTable t);
extern int64 DirectNextId(DirectTable t);
extern bool DirectHasTable(DirectTable t);
extern void DirectInsert(DirectTable t, TupleTableSlot *row);
extern void DirectUpdate(DirectTable t, TupleTableSlot *old, TupleTableSlot *row);
extern DirectScan *DirectScanBegin(DirectTable t, const char *index, int nkeys, DirectKey *keys);
extern TupleTableSlot *DirectScanNext(DirectScan *scan);
extern void DirectScanEnd(DirectScan *scan);
extern TupleTableSlot *DirectFetch(DirectTable t, const char *index, int nkeys, DirectKey *keys);
extern TupleTableSlot *DirectFetchTid(DirectTable t, ItemPointer tid);
extern TupleTableSlot *DirectLockWallet(int64 customer_id, const char *currency,
										bool skip_locked, bool *locked);
extern TupleTableSlot *DirectFetchLatest(DirectTable t, const char *index, int nkeys,
										 DirectKey *keys);

/* Reading outside an operation, with the active snapshot */
extern DirectScan *DirectReadBegin(const char *table, const char *index, int nkeys,
								   DirectKey *keys);
extern DirectScan *DirectReadBeginAt(const char *table, const char *index, int nkeys,
									 DirectKey *keys, Snapshot snapshot);
extern int	DirectReadAttno(DirectScan *scan, const char *column);
extern Datum DirectReadGet(DirectScan *scan, const char *column, bool *isnull);
extern char *DirectReadText(DirectScan *scan, const char *column);
extern int64 DirectReadInt8(DirectScan *scan, const char *column, int64 if_null);
extern int32 DirectReadInt4(DirectScan *scan, const char *column, int32 if_null);
extern DirectKey DirectInt8Key(int64 value);
extern DirectKey DirectTextKey(const char *value);
extern void DirectReadEnd(DirectScan *scan);

/* Column values of a slot read by DirectScanNext / DirectFetch */
extern Datum DirectGet(TupleTableSlot *row, DirectTable t, const char *column, bool *isnull);
extern void DirectSet(TupleTableSlot *row, DirectTable t, const char *column, Datum value, bool isnull);

#endif
