/*
 * src/direct.c
 *
 * Row access for the hot path without planning or executor start-up: every
 * points operation reads and writes a handful of rows by key, and going
 * through SPI for each (plan lookup, executor start, CHECK expressions read
 * again, portal, snapshot) cost several times the work itself.  Reads are
 * index scans; writes go through ExecSimpleRelationInsert/Update, which
 * maintain the indexes, check constraints and fire row triggers like an
 * INSERT or UPDATE statement would.
 *
 * Visibility: reads use a snapshot taken when the wallet is locked (so they
 * see what the lock waited for, under READ COMMITTED), advanced to the
 * current command before each read so that the operation sees its own
 * writes.  Under REPEATABLE READ and SERIALIZABLE, a wallet changed since the
 * transaction's snapshot is a serialization failure, as for an UPDATE.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class_d.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type_d.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "utils/memutils.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "direct.h"

static const char *const table_names[DT_COUNT] = {
	"wallet", "ledger", "lot", "customer", "event"
};

struct DirectScan
{
	Relation	rel;			/* opened by DirectReadBegin, else NULL */
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
};

#define ATTCACHE 24

/* The state of the one operation in progress in this backend */
typedef struct DirectState
{
	Oid			nsp;
	EState	   *estate;
	Snapshot	snapshot;		/* registered; NULL until the first read */
	bool		after_triggers; /* AfterTriggerBeginQuery was called */
	Relation	rel[DT_COUNT];
	ResultRelInfo *rri[DT_COUNT];
	TupleTableSlot *row[DT_COUNT];
	/* column numbers looked up, by the address of the (literal) name */
	const char *attname[DT_COUNT][ATTCACHE];
	int			attno[DT_COUNT][ATTCACHE];
} DirectState;

static DirectState D;

/*
 * Start an operation: connect to SPI (for its rare statements) and prepare
 * direct access.  DirectEnd finishes both.
 */
void
DirectBegin(void)
{
	List	   *rtable = NIL;
	int			t;

	SPI_connect();
	memset(&D, 0, sizeof(D));
	D.nsp = get_namespace_oid("loyalty", false);
	D.estate = CreateExecutorState();
	for (t = 0; t < DT_COUNT; t++)
	{
		RangeTblEntry *rte = makeNode(RangeTblEntry);

		rte->rtekind = RTE_RELATION;
		rte->relid = get_relname_relid(table_names[t], D.nsp);
		/* a schema older than the module has no outbox yet: no events */
		if (!OidIsValid(rte->relid) && t != DT_EVENT)
			elog(ERROR, "table loyalty.%s does not exist", table_names[t]);
		rte->relkind = RELKIND_RELATION;
		rte->rellockmode = t == DT_CUSTOMER ? AccessShareLock : RowExclusiveLock;
		rtable = lappend(rtable, rte);
	}
	ExecInitRangeTable(D.estate, rtable);
}

/* End it: fire what row triggers queued, close everything, leave SPI */
void
DirectEnd(void)
{
	int			t;

	if (D.after_triggers)
		AfterTriggerEndQuery(D.estate);
	for (t = 0; t < DT_COUNT; t++)
	{
		if (D.rri[t])
			ExecCloseIndices(D.rri[t]);
		if (D.rel[t])
			table_close(D.rel[t], NoLock);
	}
	ExecResetTupleTable(D.estate->es_tupleTable, false);
	/* relations the trigger machinery opened (foreign key checks) */
	ExecCloseResultRelations(D.estate);
	ExecCloseRangeTableRelations(D.estate);
	FreeExecutorState(D.estate);
	if (D.snapshot)
		UnregisterSnapshot(D.snapshot);
	memset(&D, 0, sizeof(D));
	SPI_finish();
}

/* The table exists (only the outbox may not, before the schema is updated) */
bool
DirectHasTable(DirectTable t)
{
	RangeTblEntry *rte = list_nth(D.estate->es_range_table, t);

	return OidIsValid(rte->relid);
}

static Relation
Table(DirectTable t)
{
	if (D.rel[t] == NULL)
	{
		RangeTblEntry *rte = list_nth(D.estate->es_range_table, t);

		D.rel[t] = table_open(rte->relid, rte->rellockmode);
	}
	return D.rel[t];
}

/*
 * A CHECK constraint's expression, parsed and planned once per backend (the
 * executor would parse its stored text again for every statement).  Keyed
 * by that text, so a changed constraint is a new entry.
 */
typedef struct CheckCache
{
	char	   *ccbin;
	Expr	   *expr;
	struct CheckCache *next;
} CheckCache;

static CheckCache *check_cache = NULL;

static Expr *
CheckExpr(const char *ccbin)
{
	CheckCache *c;
	MemoryContext old;

	for (c = check_cache; c; c = c->next)
		if (strcmp(c->ccbin, ccbin) == 0)
			return c->expr;
	old = MemoryContextSwitchTo(CacheMemoryContext);
	c = palloc(sizeof(CheckCache));
	c->ccbin = pstrdup(ccbin);
	c->expr = expression_planner(stringToNode(ccbin));
	c->next = check_cache;
	check_cache = c;
	MemoryContextSwitchTo(old);
	return c->expr;
}

/* Give the result relation its CHECK expressions, from the cache */
static void
PrepareChecks(ResultRelInfo *rri)
{
	TupleConstr *constr = RelationGetDescr(rri->ri_RelationDesc)->constr;
	MemoryContext old;
	int			i;

	if (constr == NULL || constr->num_check == 0)
		return;
	old = MemoryContextSwitchTo(D.estate->es_query_cxt);
	rri->ri_ConstraintExprs = palloc0(sizeof(ExprState *) * constr->num_check);
	for (i = 0; i < constr->num_check; i++)
		rri->ri_ConstraintExprs[i] = ExecInitExpr(CheckExpr(constr->check[i].ccbin), NULL);
	MemoryContextSwitchTo(old);
}

/* The table ready for writing: result relation, indexes, after triggers */
static ResultRelInfo *
Writable(DirectTable t)
{
	if (D.rri[t] == NULL)
	{
		D.rri[t] = makeNode(ResultRelInfo);
		InitResultRelInfo(D.rri[t], Table(t), t + 1, NULL, 0);
		ExecOpenIndices(D.rri[t], false);
		PrepareChecks(D.rri[t]);
		if (!D.after_triggers)
		{
			AfterTriggerBeginQuery();
			D.after_triggers = true;
		}
	}
	return D.rri[t];
}

/* Take a new snapshot: reads see everything committed until now */
static void
NewSnapshot(void)
{
	if (D.snapshot)
		UnregisterSnapshot(D.snapshot);
	D.snapshot = RegisterSnapshot(GetTransactionSnapshot());
}

/* The reading snapshot, advanced so that it sees this operation's writes */
static Snapshot
ReadSnapshot(void)
{
	CommandCounterIncrement();
	if (D.snapshot == NULL)
		NewSnapshot();
	D.snapshot->curcid = GetCurrentCommandId(false);
	return D.snapshot;
}

/* Column number of a column, by name (remembered for the operation) */
int
DirectAttno(DirectTable t, const char *column)
{
	TupleDesc	desc;
	int			i;

	for (i = 0; i < ATTCACHE && D.attname[t][i]; i++)
		if (D.attname[t][i] == column)
			return D.attno[t][i];
	desc = RelationGetDescr(Table(t));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), column) == 0)
		{
			int			slot;

			for (slot = 0; slot < ATTCACHE && D.attname[t][slot]; slot++)
				;
			if (slot < ATTCACHE)
			{
				D.attname[t][slot] = column;
				D.attno[t][slot] = i + 1;
			}
			return i + 1;
		}
	}
	elog(ERROR, "column \"%s\" of loyalty.%s does not exist", column, table_names[t]);
	return 0;
}

Datum
DirectGet(TupleTableSlot *row, DirectTable t, const char *column, bool *isnull)
{
	return slot_getattr(row, DirectAttno(t, column), isnull);
}

void
DirectSet(TupleTableSlot *row, DirectTable t, const char *column, Datum value, bool isnull)
{
	int			attno = DirectAttno(t, column);

	row->tts_values[attno - 1] = value;
	row->tts_isnull[attno - 1] = isnull;
}

/* An empty row of the table, every column NULL, to fill with DirectSet */
TupleTableSlot *
DirectNewRow(DirectTable t)
{
	TupleTableSlot *row;

	if (D.row[t] == NULL)
		D.row[t] = ExecInitExtraTupleSlot(D.estate, RelationGetDescr(Table(t)), &TTSOpsVirtual);
	row = D.row[t];
	ExecClearTuple(row);
	memset(row->tts_isnull, true, sizeof(bool) * row->tts_tupleDescriptor->natts);
	return row;
}

/*
 * The next value of the table's id (its identity sequence "<table>_id_seq"),
 * for a row built with DirectNewRow: the executor's simple insert computes
 * no defaults.  The sequence is looked up again if it was recreated.
 */
int64
DirectNextId(DirectTable t)
{
	static Oid	seq[DT_COUNT];

	if (!OidIsValid(seq[t]) || get_rel_relkind(seq[t]) != RELKIND_SEQUENCE)
		seq[t] = get_relname_relid(psprintf("%s_id_seq", table_names[t]),
								   get_namespace_oid("loyalty", false));
	if (!OidIsValid(seq[t]))
		elog(ERROR, "sequence loyalty.%s_id_seq does not exist", table_names[t]);
	return nextval_internal(seq[t], false);
}

/* Insert a row built with DirectNewRow */
void
DirectInsert(DirectTable t, TupleTableSlot *row)
{
	ResultRelInfo *rri = Writable(t);

	ExecStoreVirtualTuple(row);
	D.estate->es_snapshot = ReadSnapshot();
	D.estate->es_output_cid = GetCurrentCommandId(true);
	ExecSimpleRelationInsert(rri, D.estate, row);
}

/*
 * Whether an update of old to row fires nothing but foreign key checks of
 * keys it leaves as they were.  PostgreSQL checks a key again, even
 * unchanged, when the old version is this transaction's own: a wallet that
 * a checkout redeems from and then accrues to is checked against its
 * customer and currency, each check a query that KEY SHARE-locks the row it
 * finds (a WAL record and a dirty page for the customer, and a multixact on
 * the currency row that every checkout of the programme shares).  Its own
 * version was written by an earlier statement or an earlier update of this
 * operation, whose immediate checks have run; so with the keys unchanged,
 * a deferrable constraint aside, there is nothing to check.  Any other row
 * trigger on UPDATE (a user's audit trigger, say) keeps the full path.
 */
static bool
OnlyUnchangedKeys(ResultRelInfo *rri, TupleTableSlot *old, TupleTableSlot *row)
{
	TriggerDesc *td = rri->ri_TrigDesc;
	TupleDesc	desc = RelationGetDescr(rri->ri_RelationDesc);

	if (td == NULL)
		return true;
	if (td->trig_update_before_row || td->trig_update_instead_row ||
		td->trig_update_before_statement || td->trig_update_after_statement ||
		td->trig_update_new_table || td->trig_update_old_table)
		return false;
	slot_getallattrs(old);
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *tg = &td->triggers[i];
		HeapTuple	con;
		AttrNumber	attnums[INDEX_MAX_KEYS];
		AttrNumber	confkey[INDEX_MAX_KEYS];
		int			nkeys;
		bool		same = true;

		if (!TRIGGER_FOR_ROW(tg->tgtype) || !TRIGGER_FOR_UPDATE(tg->tgtype))
			continue;
		if (RI_FKey_trigger_type(tg->tgfoid) != RI_TRIGGER_FK || tg->tgdeferrable ||
			!OidIsValid(tg->tgconstraint))
			return false;
		con = SearchSysCache1(CONSTROID, ObjectIdGetDatum(tg->tgconstraint));
		if (!HeapTupleIsValid(con))
			return false;
		DeconstructFkConstraintRow(con, &nkeys, attnums, confkey, NULL, NULL, NULL, NULL, NULL);
		for (int k = 0; k < nkeys && same; k++)
		{
			int			a = attnums[k] - 1;
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (old->tts_isnull[a] != row->tts_isnull[a] ||
				(!old->tts_isnull[a] &&
				 !datumIsEqual(old->tts_values[a], row->tts_values[a], att->attbyval, att->attlen)))
				same = false;
		}
		ReleaseSysCache(con);
		if (!same)
			return false;
	}
	return true;
}

/*
 * Replace the row old (read or locked by this operation) with row; old then
 * holds the new version.  As an UPDATE statement would (constraints,
 * indexes, row triggers), except for the foreign key checks of keys the
 * update leaves unchanged (OnlyUnchangedKeys).
 */
void
DirectUpdate(DirectTable t, TupleTableSlot *old, TupleTableSlot *row)
{
	ResultRelInfo *rri = Writable(t);
	Relation	rel = rri->ri_RelationDesc;

	ExecStoreVirtualTuple(row);
	D.estate->es_snapshot = ReadSnapshot();
	D.estate->es_output_cid = GetCurrentCommandId(true);
	if (OnlyUnchangedKeys(rri, old, row))
	{
		bool		update_indexes;

		CheckCmdReplicaIdentity(rel, CMD_UPDATE);
		if (rel->rd_att->constr && rel->rd_att->constr->has_generated_stored)
			ExecComputeStoredGenerated(rri, D.estate, row, CMD_UPDATE);
		if (rel->rd_att->constr)
			ExecConstraints(rri, row, D.estate);
		simple_table_tuple_update(rel, &old->tts_tid, row, D.estate->es_snapshot, &update_indexes);
		if (rri->ri_NumIndices > 0 && update_indexes)
			list_free(ExecInsertIndexTuples(rri, row, D.estate, true, false, NULL, NIL));
	}
	else
		ExecSimpleRelationUpdate(rri, D.estate, NULL, old, row);
	/* old becomes the row just written, for a later update in this operation */
	if (!table_tuple_fetch_row_version(Table(t), &row->tts_tid, SnapshotAny, old))
		elog(ERROR, "row just written to loyalty.%s not found", table_names[t]);
}

/* Scan keys: the index's leading columns equal to keys */
static ScanKey
Keys(Relation index, int nkeys, DirectKey *keys)
{
	ScanKey		sk = palloc(sizeof(ScanKeyData) * nkeys);
	int			i;

	for (i = 0; i < nkeys; i++)
		ScanKeyEntryInitialize(&sk[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
							   index->rd_indcollation[i],
							   keys[i].type == INT8OID ? F_INT8EQ : F_TEXTEQ,
							   keys[i].value);
	return sk;
}

static Relation
OpenIndex(Oid nsp, const char *name)
{
	Oid			oid = get_relname_relid(name, nsp);

	if (!OidIsValid(oid))
		elog(ERROR, "index loyalty.%s does not exist", name);
	return index_open(oid, AccessShareLock);
}

static DirectScan *
ScanBegin(DirectTable t, const char *index, int nkeys, DirectKey *keys, Snapshot snapshot)
{
	DirectScan *s = palloc(sizeof(DirectScan));
	Relation	rel = Table(t);

	s->rel = NULL;
	s->index = OpenIndex(D.nsp, index);
	s->scan = index_beginscan(rel, s->index, snapshot, nkeys, 0);
	index_rescan(s->scan, Keys(s->index, nkeys, keys), nkeys, NULL, 0);
	s->slot = table_slot_create(rel, &D.estate->es_tupleTable);
	return s;
}

/* Rows of table t whose index entry starts with keys, as the operation sees them */
DirectScan *
DirectScanBegin(DirectTable t, const char *index, int nkeys, DirectKey *keys)
{
	return ScanBegin(t, index, nkeys, keys, ReadSnapshot());
}

/* The next row, or NULL; a row stays valid until the next call */
TupleTableSlot *
DirectScanNext(DirectScan *s)
{
	return index_getnext_slot(s->scan, ForwardScanDirection, s->slot) ? s->slot : NULL;
}

void
DirectScanEnd(DirectScan *s)
{
	index_endscan(s->scan);
	index_close(s->index, NoLock);
}

/*
 * Reading outside an operation, for the read-only functions (calculate,
 * identify): rows of loyalty.table whose entry in loyalty.index starts with
 * keys, as the active snapshot (the calling statement's) sees them, without
 * SPI, planning or an executor.  Table and index are locked AccessShare, as
 * a query would (so it works on a standby too).  DirectScanNext gives the
 * rows; DirectReadEnd closes the scan.
 */
DirectScan *
DirectReadBegin(const char *table, const char *index, int nkeys, DirectKey *keys)
{
	return DirectReadBeginAt(table, index, nkeys, keys, GetActiveSnapshot());
}

/* The same with another snapshot, which the caller keeps registered */
DirectScan *
DirectReadBeginAt(const char *table, const char *index, int nkeys, DirectKey *keys,
				  Snapshot snapshot)
{
	Oid			nsp = get_namespace_oid("loyalty", false);
	Oid			relid = get_relname_relid(table, nsp);
	DirectScan *s = palloc(sizeof(DirectScan));

	if (!OidIsValid(relid))
		elog(ERROR, "table loyalty.%s does not exist", table);
	s->rel = table_open(relid, AccessShareLock);
	s->index = OpenIndex(nsp, index);
	s->scan = index_beginscan(s->rel, s->index, snapshot, nkeys, 0);
	index_rescan(s->scan, Keys(s->index, nkeys, keys), nkeys, NULL, 0);
	s->slot = table_slot_create(s->rel, NULL);
	return s;
}

/* Keys of a scan */
DirectKey
DirectInt8Key(int64 value)
{
	return (DirectKey) {INT8OID, Int64GetDatum(value)};
}

DirectKey
DirectTextKey(const char *value)
{
	return (DirectKey) {TEXTOID, CStringGetTextDatum(value)};
}

/* Column number of a column of a DirectReadBegin scan's table */
int
DirectReadAttno(DirectScan *s, const char *column)
{
	TupleDesc	desc = RelationGetDescr(s->rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), column) == 0)
			return i + 1;
	}
	elog(ERROR, "column \"%s\" of loyalty.%s does not exist", column,
		 RelationGetRelationName(s->rel));
	return 0;
}

/* A column of the current row of a DirectReadBegin scan, by name */
Datum
DirectReadGet(DirectScan *s, const char *column, bool *isnull)
{
	return slot_getattr(s->slot, DirectReadAttno(s, column), isnull);
}

/* An integer column of the current row; if_null for SQL NULL */
int64
DirectReadInt8(DirectScan *s, const char *column, int64 if_null)
{
	bool		isnull;
	Datum		d = DirectReadGet(s, column, &isnull);

	return isnull ? if_null : DatumGetInt64(d);
}

int32
DirectReadInt4(DirectScan *s, const char *column, int32 if_null)
{
	bool		isnull;
	Datum		d = DirectReadGet(s, column, &isnull);

	return isnull ? if_null : DatumGetInt32(d);
}

/* A text column of the current row as a C string; NULL for SQL NULL */
char *
DirectReadText(DirectScan *s, const char *column)
{
	bool		isnull;
	Datum		d = DirectReadGet(s, column, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

void
DirectReadEnd(DirectScan *s)
{
	ExecDropSingleTupleTableSlot(s->slot);
	index_endscan(s->scan);
	index_close(s->index, NoLock);
	table_close(s->rel, NoLock);
	pfree(s);
}

/* The one row with this key, or NULL; it stays valid until DirectEnd */
TupleTableSlot *
DirectFetch(DirectTable t, const char *index, int nkeys, DirectKey *keys)
{
	DirectScan *s = DirectScanBegin(t, index, nkeys, keys);
	TupleTableSlot *row = DirectScanNext(s);

	DirectScanEnd(s);
	return row;
}

/*
 * The row version at tid, which this operation read (and nobody else can
 * have changed: the wallet lock guards it); NULL if it is not visible.
 */
TupleTableSlot *
DirectFetchTid(DirectTable t, ItemPointer tid)
{
	Relation	rel = Table(t);
	TupleTableSlot *slot = table_slot_create(rel, &D.estate->es_tupleTable);

	return table_tuple_fetch_row_version(rel, tid, ReadSnapshot(), slot) ? slot : NULL;
}

/*
 * The one row with this key in a unique index as it is now, committed or
 * this transaction's: a row another transaction is writing is waited for.
 * NULL if there is none.
 */
TupleTableSlot *
DirectFetchLatest(DirectTable t, const char *index, int nkeys, DirectKey *keys)
{
	for (;;)
	{
		SnapshotData dirty;
		DirectScan *s;
		TupleTableSlot *row;
		TransactionId xwait;

		CommandCounterIncrement();
		InitDirtySnapshot(dirty);
		dirty.xmin = dirty.xmax = InvalidTransactionId;	/* set only when a row is seen */
		s = ScanBegin(t, index, nkeys, keys, &dirty);
		row = DirectScanNext(s);
		xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
		DirectScanEnd(s);
		if (row == NULL || !TransactionIdIsValid(xwait))
			return row;
		XactLockTableWait(xwait, Table(t), &row->tts_tid, XLTW_InsertIndexUnique);
	}
}

/*
 * Lock the wallet row (customer_id, currency) as UPDATE would, waiting for
 * (or, with skip_locked, passing over) a transaction that holds it.  Returns
 * the locked row as it is now, or NULL with *locked false if there is no
 * such wallet (or it is in use and skip_locked).  Reads after the lock see
 * what it waited for.
 */
TupleTableSlot *
DirectLockWallet(int64 customer_id, const char *currency, bool skip_locked, bool *locked)
{
	Relation	rel = Table(DT_WALLET);
	TupleTableSlot *slot = table_slot_create(rel, &D.estate->es_tupleTable);
	DirectKey	keys[2] = {{INT8OID, Int64GetDatum(customer_id)},
	{TEXTOID, CStringGetTextDatum(currency)}};

	*locked = false;
	for (;;)
	{
		SnapshotData dirty;
		DirectScan *s;
		bool		found;
		TransactionId xwait;
		TM_FailureData tmfd;
		TM_Result	res;

		/* find the row's newest version, committed or not */
		CommandCounterIncrement();
		InitDirtySnapshot(dirty);
		dirty.xmin = dirty.xmax = InvalidTransactionId;	/* set only when a row is seen */
		s = ScanBegin(DT_WALLET, "wallet_pkey", 2, keys, &dirty);
		found = index_getnext_slot(s->scan, ForwardScanDirection, slot);
		xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
		DirectScanEnd(s);
		if (!found)
			return NULL;
		if (TransactionIdIsValid(xwait))
		{
			/* being inserted or changed by a transaction in progress */
			if (skip_locked)
				return NULL;
			XactLockTableWait(xwait, rel, &slot->tts_tid, XLTW_Lock);
			continue;
		}

		/*
		 * A version this transaction wrote needs no lock of its own: the one
		 * it replaced carries this transaction's update (or the insert is
		 * ours), so every other writer already waits for it, and undoing the
		 * (sub)transaction that wrote it undoes what it was written for.
		 * Locking it again would only log a lock record per ledger entry.
		 */
		if (!TransactionIdIsCurrentTransactionId(
												 HeapTupleHeaderGetXmin(ExecFetchSlotHeapTuple(slot, false, NULL)->t_data)))
		{
			res = table_tuple_lock(rel, &slot->tts_tid, GetLatestSnapshot(), slot,
								   GetCurrentCommandId(false), LockTupleNoKeyExclusive,
								   skip_locked ? LockWaitSkip : LockWaitBlock, 0, &tmfd);
			switch (res)
			{
				case TM_Ok:
					break;
				case TM_WouldBlock:
					return NULL;
				case TM_Updated:
				case TM_Deleted:
					if (IsolationUsesXactSnapshot())
						ereport(ERROR,
								(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
								 errmsg("could not serialize access due to concurrent update")));
					continue;	/* find the new version and lock it */
				default:
					elog(ERROR, "unexpected result %d locking the wallet of customer " INT64_FORMAT,
						 (int) res, customer_id);
			}
			if (IsolationUsesXactSnapshot() &&
				!table_tuple_satisfies_snapshot(rel, slot, GetTransactionSnapshot()))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
		}
		NewSnapshot();
		*locked = true;
		return slot;
	}
}
