/*
 * src/wallet.c
 *
 * Wallets: locking the one row an operation changes, recording what has
 * expired in it before anything else ("the touch"), appending ledger entries
 * with the next version, replaying idempotency keys, and the sweeps that
 * record expired lots and holds of wallets nobody touched.
 *
 * The statements run through SPI with plans kept for the life of the
 * backend.  They name the schema and leave operators unqualified: every
 * SQL-callable function of the extension runs with
 * search_path = pg_catalog, pg_temp.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "common/int.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "access.h"
#include "direct.h"
#include "event.h"
#include "jsonbuild.h"
#include "program.h"
#include "wallet.h"

/* Creating a wallet: the customer is share-locked so a merge cannot pass */
static KeptQuery customer_query = {
	"SELECT c.program_id, c.status, c.merged_into,"
	" (SELECT p.code FROM loyalty.program p WHERE p.id = c.program_id),"
	" EXISTS (SELECT 1 FROM loyalty.currency k"
	"         WHERE k.program_id = c.program_id AND k.code = $2)"
	" FROM loyalty.customer c WHERE c.id = $1 FOR SHARE OF c",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery create_query = {
	"INSERT INTO loyalty.wallet (customer_id, currency, program_id)"
	" VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
	3, {INT8OID, TEXTOID, INT8OID}, NULL
};

static KeptQuery expired_lots_query = {
	"SELECT id, remaining FROM loyalty.lot"
	" WHERE customer_id = $1 AND currency = $2 AND live AND valid_to <= $3"
	" ORDER BY valid_to, id",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
/*
 * A sweep takes the expired lots no other sweep has claimed, and keeps the
 * wallet's next expiry at the earliest lot it leaves live (one it passed
 * over, or one to come), so that a later touch finds what it left.
 */
static KeptQuery expired_lots_unclaimed_query = {
	"SELECT id, remaining FROM loyalty.lot"
	" WHERE customer_id = $1 AND currency = $2 AND live AND valid_to <= $3"
	" ORDER BY valid_to, id FOR UPDATE SKIP LOCKED",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery next_expiry_left_query = {
	"SELECT min(valid_to) FROM loyalty.lot"
	" WHERE customer_id = $1 AND currency = $2 AND live AND valid_to IS NOT NULL"
	" AND NOT id = ANY ($3)",
	3, {INT8OID, TEXTOID, INT8ARRAYOID}, NULL
};
static KeptQuery next_expiry_query = {
	"SELECT min(valid_to) FROM loyalty.lot"
	" WHERE customer_id = $1 AND currency = $2 AND live AND valid_to > $3",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery expired_holds_query = {
	"SELECT id, amount FROM loyalty.hold"
	" WHERE customer_id = $1 AND currency = $2 AND status = 'active' AND expires_at <= $3"
	" ORDER BY expires_at, id",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery expired_holds_unclaimed_query = {
	"SELECT id, amount FROM loyalty.hold"
	" WHERE customer_id = $1 AND currency = $2 AND status = 'active' AND expires_at <= $3"
	" ORDER BY expires_at, id FOR UPDATE SKIP LOCKED",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery expire_hold_query = {
	"UPDATE loyalty.hold SET status = 'expired', resolved_version = $2, resolved_at = now()"
	" WHERE id = $1",
	2, {INT8OID, INT8OID}, NULL
};

/*
 * What is due, in deadline order, after the position ($2, $3) a sweep
 * reached; rows another sweep has claimed are passed over, so that several
 * workers share the work instead of meeting on the same wallets.
 */
static KeptQuery due_lots_query = {
	"SELECT customer_id, currency, valid_to, id FROM loyalty.lot"
	" WHERE live AND valid_to <= $1 AND (valid_to, id) > ($2, $3)"
	" ORDER BY valid_to, id LIMIT $4 FOR UPDATE SKIP LOCKED",
	4, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID}, NULL
};
static KeptQuery due_holds_query = {
	"SELECT customer_id, currency, expires_at, id FROM loyalty.hold"
	" WHERE status = 'active' AND expires_at <= $1 AND (expires_at, id) > ($2, $3)"
	" ORDER BY expires_at, id LIMIT $4 FOR UPDATE SKIP LOCKED",
	4, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID}, NULL
};

/* Column of the first row of the last SPI result, and whether it is NULL */
static Datum
Col(int column, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, isnull);
}

static int64
ColInt64(int row, int column)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
								  column, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* Fill w from its locked row; NULL Datums are zero */
static Datum
WalletCol(Wallet *w, const char *column, bool *isnull)
{
	return DirectGet(w->row, DT_WALLET, column, isnull);
}

static void
ReadWallet(Wallet *w)
{
	bool		isnull;
	Datum		d;

	w->program_id = DatumGetInt64(WalletCol(w, "program_id", &isnull));
	w->balance = DatumGetInt64(WalletCol(w, "balance", &isnull));
	w->held = DatumGetInt64(WalletCol(w, "held", &isnull));
	w->version = DatumGetInt64(WalletCol(w, "version", &isnull));
	w->version_locked = w->version;
	d = WalletCol(w, "next_expiry", &isnull);
	w->has_next_expiry = !isnull;
	w->next_expiry = isnull ? 0 : DatumGetTimestampTz(d);
	d = WalletCol(w, "merged_into", &isnull);
	w->merged_into = isnull ? 0 : DatumGetInt64(d);
	w->restricted = DatumGetInt64(WalletCol(w, "restricted", &isnull));
	d = WalletCol(w, "debt", &isnull);
	w->debt = isnull ? 0 : DatumGetInt64(d);
	d = WalletCol(w, "pending_until", &isnull);
	w->has_pending_until = !isnull;
	w->pending_until = isnull ? 0 : DatumGetTimestampTz(d);
}

/* The wallet may have lots that start to count later */
bool
WalletPending(Wallet *w)
{
	return w->has_pending_until && w->pending_until > w->now;
}

/* The customer's status, for operations that spend (advisory: not locked) */
static void
ReadCustomerStatus(Wallet *w)
{
	DirectKey	key = {INT8OID, Int64GetDatum(w->customer_id)};
	TupleTableSlot *c = DirectFetch(DT_CUSTOMER, "customer_pkey", 1, &key);
	bool		isnull;

	if (c == NULL)
		elog(ERROR, "customer " INT64_FORMAT " of a wallet does not exist", w->customer_id);
	text_to_cstring_buffer(DatumGetTextPP(DirectGet(c, DT_CUSTOMER, "status", &isnull)),
						   w->customer_status, sizeof(w->customer_status));
}

/* A customer merged into another takes no more operations */
void
ReportMerged(int64 customer_id, int64 target)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT,
					customer_id, target),
			 errhint("Use customer " INT64_FORMAT ".", target)));
}

/*
 * Check that the customer exists, is not merged away and that the currency is
 * one of its programme's, share-locking the customer; returns its programme.
 */
static int64
CheckCustomerCurrency(int64 customer_id, const char *currency)
{
	Datum		args[2] = {Int64GetDatum(customer_id), CStringGetTextDatum(currency)};
	bool		isnull;
	Datum		merged;

	RunKept(&customer_query, args, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("customer " INT64_FORMAT " does not exist", customer_id)));
	RequireProgram(DatumGetInt64(Col(1, &isnull)), "customer " INT64_FORMAT, customer_id);
	merged = Col(3, &isnull);
	if (!isnull)
		ReportMerged(customer_id, DatumGetInt64(merged));
	if (!DatumGetBool(Col(5, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("currency \"%s\" does not exist in programme \"%s\"", currency,
						TextDatumGetCString(Col(4, &isnull))),
				 errhint("SELECT code FROM loyalty.currency lists the currencies.")));
	return DatumGetInt64(Col(1, &isnull));
}

/*
 * Lock the wallet (customer_id, currency) and read it into *w.  A missing
 * wallet is created (WALLET_CREATE) once the customer and currency are
 * checked.  Returns false only in WALLET_SKIP_LOCKED mode, when the wallet is
 * in use by another transaction, missing, or merged away.  WALLET_SPEND also
 * reads the customer's status and the wallet's live lots.
 */
bool
WalletLock(Wallet *w, int64 customer_id, const char *currency, WalletLockMode mode)
{
	bool		skip = (mode & WALLET_SKIP_LOCKED) != 0;
	int			attempt;

	memset(w, 0, sizeof(Wallet));
	w->customer_id = customer_id;
	w->currency = currency;
	w->now = GetCurrentTransactionStartTimestamp();

	for (attempt = 0; attempt < 2; attempt++)
	{
		Datum		args[3];
		bool		locked;

		w->row = DirectLockWallet(customer_id, currency, skip, &locked);
		if (locked)
		{
			ReadWallet(w);
			RequireProgram(w->program_id, "customer " INT64_FORMAT, customer_id);
			if (w->merged_into)
			{
				if (skip)
					return false;
				ReportMerged(customer_id, w->merged_into);
			}
			if (mode & WALLET_SPEND)
				ReadCustomerStatus(w);
			return true;
		}
		if (skip)
			return false;
		args[0] = Int64GetDatum(customer_id);
		args[1] = CStringGetTextDatum(currency);
		args[2] = Int64GetDatum(CheckCustomerCurrency(customer_id, currency));
		if (mode & WALLET_EXISTING)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("customer " INT64_FORMAT " has no \"%s\" wallet",
							customer_id, currency)));
		RunKept(&create_query, args, NULL, 0);
	}
	elog(ERROR, "wallet of customer " INT64_FORMAT " in \"%s\" vanished while locked",
		 customer_id, currency);
	return false;
}

/*
 * Lock two wallets in a fixed order (customer, then currency), so that two
 * operations on the same pair never deadlock.  The first, which pays, is
 * created if missing and read for spending; the second per mode_b.
 */
void
WalletLockPair(Wallet *a, int64 customer_a, const char *currency_a,
			   Wallet *b, int64 customer_b, const char *currency_b,
			   WalletLockMode mode_b)
{
	WalletLockMode mode_a = WALLET_CREATE | WALLET_SPEND;

	bool		a_first = customer_a < customer_b ||
		(customer_a == customer_b && strcmp(currency_a, currency_b) < 0);

	if (a_first)
	{
		WalletLock(a, customer_a, currency_a, mode_a);
		WalletLock(b, customer_b, currency_b, mode_b);
	}
	else
	{
		WalletLock(b, customer_b, currency_b, mode_b);
		WalletLock(a, customer_a, currency_a, mode_a);
	}
}

/* Points of a blocked account or one on fraud hold cannot be spent */
void
WalletCheckSpending(Wallet *w)
{
	if (w->customer_status[0] == '\0')
		elog(ERROR, "wallet was not locked for spending");
	if (strcmp(w->customer_status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("customer " INT64_FORMAT " is %s: points cannot be spent",
						w->customer_id, w->customer_status),
				 errhint("Points can be spent again when the account is active.")));
}

/* The caller's expected_version argument, if given, must be the version locked */
void
WalletCheckVersion(Wallet *w, FunctionCallInfo fcinfo, int argno)
{
	int64		expected;

	if (PG_ARGISNULL(argno))
		return;
	expected = PG_GETARG_INT64(argno);
	if (expected != w->version_locked)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("wallet version mismatch: expected " INT64_FORMAT ", found " INT64_FORMAT,
						expected, w->version_locked),
				 errdetail("The \"%s\" wallet of customer " INT64_FORMAT " changed since it was read.",
						   w->currency, w->customer_id),
				 errhint("Read the balance again and retry.")));
}

static void UpdateWallet(Wallet *w, int64 balance, int64 held, int64 version);

/* Recompute the exact next expiry of the wallet's lots that have not expired */
static void
RefreshNextExpiry(Wallet *w)
{
	Datum		args[3] = {Int64GetDatum(w->customer_id), CStringGetTextDatum(w->currency),
	TimestampTzGetDatum(w->now)};
	bool		isnull;
	Datum		d;

	RunKept(&next_expiry_query, args, NULL, 1);
	d = Col(1, &isnull);
	w->has_next_expiry = !isnull;
	w->next_expiry = isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * Record what has expired in a locked wallet before anything else happens to
 * it: each lot past valid_to with points left gets an expire entry, each hold
 * past its deadline a release entry.  The wallet's next_expiry spares the
 * lot lookup while nothing can have expired, unless force is set.  force is
 * the sweeps' touch: it passes over lots and holds another sweep has
 * claimed (that sweep records them, or a later touch does), so that two
 * sweeps never wait for each other.  Returns the lots expired;
 * *holds_released (if not NULL) gets the holds released.
 */
int
WalletTouch(Wallet *w, bool force, int *holds_released)
{
	Datum		args[3] = {Int64GetDatum(w->customer_id), CStringGetTextDatum(w->currency),
	TimestampTzGetDatum(w->now)};
	int			nlots = 0;
	int			nholds = 0;
	int			i;

	if (force || (w->has_next_expiry && w->next_expiry <= w->now))
	{
		Lot		   *lots;

		RunKept(force ? &expired_lots_unclaimed_query : &expired_lots_query, args, NULL, 0);
		nlots = (int) SPI_processed;
		lots = palloc0(sizeof(Lot) * Max(nlots, 1));
		for (i = 0; i < nlots; i++)
		{
			lots[i].id = ColInt64(i, 1);
			lots[i].remaining = lots[i].take = ColInt64(i, 2);
		}
		/* the next expiry after these lots, which each entry then writes */
		if (force)
		{
			Datum	   *ids = palloc(sizeof(Datum) * Max(nlots, 1));
			Datum		left[3];
			bool		isnull;
			Datum		d;

			for (i = 0; i < nlots; i++)
				ids[i] = Int64GetDatum(lots[i].id);
			left[0] = args[0];
			left[1] = args[1];
			left[2] = PointerGetDatum(construct_array(ids, nlots, INT8OID, 8, FLOAT8PASSBYVAL,
													  TYPALIGN_DOUBLE));
			RunKept(&next_expiry_left_query, left, NULL, 1);
			d = Col(1, &isnull);
			w->has_next_expiry = !isnull;
			w->next_expiry = isnull ? 0 : DatumGetTimestampTz(d);
		}
		else
			RefreshNextExpiry(w);
		if (nlots == 0)
			UpdateWallet(w, w->balance, w->held, w->version);
		for (i = 0; i < nlots; i++)
		{
			Entry		e = {0};

			e.operation = "expire";
			e.amount = -lots[i].take;
			e.lot_id = lots[i].id;
			e.reason = "lot expired";
			e.lots = &lots[i];
			e.nlots = 1;
			WalletAppend(w, &e, NULL);
		}
	}

	if (w->held > 0)
	{
		int64	   *ids;
		int64	   *amounts;

		RunKept(force ? &expired_holds_unclaimed_query : &expired_holds_query, args, NULL, 0);
		nholds = (int) SPI_processed;
		ids = palloc(sizeof(int64) * Max(nholds, 1));
		amounts = palloc(sizeof(int64) * Max(nholds, 1));
		for (i = 0; i < nholds; i++)
		{
			ids[i] = ColInt64(i, 1);
			amounts[i] = ColInt64(i, 2);
		}
		for (i = 0; i < nholds; i++)
		{
			Datum		upd[2] = {Int64GetDatum(ids[i]), Int64GetDatum(w->version + 1)};
			Entry		e = {0};

			RunKept(&expire_hold_query, upd, NULL, 0);
			e.operation = "release";
			e.held_amount = -amounts[i];
			e.hold_id = ids[i];
			e.reason = "hold expired";
			WalletAppend(w, &e, NULL);
		}
	}
	if (holds_released)
		*holds_released = nholds;
	return nlots;
}

/* The role in effect (the login role, or the one set by SET ROLE), recorded as the actor of a change */
static char *
SessionActor(void)
{
	return GetUserNameFromId(GetOuterUserId(), false);
}

/* Prepare *result to receive the entry an operation writes or replays */
void
EntryResultInit(EntryResult *result, FunctionCallInfo fcinfo)
{
	memset(result, 0, sizeof(EntryResult));
	result->fcinfo = fcinfo;
	result->callcxt = CurrentMemoryContext;
	result->isnull = true;
}

/*
 * Keep a ledger row (its columns in values/nulls) as the operation's result,
 * built in the caller's context with the function's declared row type.
 */
static void
KeepEntry(EntryResult *result, TupleDesc desc, Datum *values, bool *nulls)
{
	int			hold = DirectAttno(DT_LEDGER, "hold_id") - 1;
	TupleDesc	rdesc;

	result->hold_id = nulls[hold] ? 0 : DatumGetInt64(values[hold]);
	result->version = DatumGetInt64(values[DirectAttno(DT_LEDGER, "version") - 1]);
	if (result->fcinfo &&
		get_call_result_type(result->fcinfo, NULL, &rdesc) == TYPEFUNC_COMPOSITE)
	{
		MemoryContext old = MemoryContextSwitchTo(result->callcxt);

		if (rdesc->natts != desc->natts)
			elog(ERROR, "result type does not match loyalty.ledger");
		rdesc = BlessTupleDesc(CreateTupleDescCopy(rdesc));
		result->datum = HeapTupleGetDatum(heap_form_tuple(rdesc, values, nulls));
		result->isnull = false;
		MemoryContextSwitchTo(old);
	}
}

/* A lot created in the wallet that expires sooner moves next_expiry earlier */
void
LowerNextExpiry(Wallet *w, NewLot *lot)
{
	if (lot->has_valid_to && (!w->has_next_expiry || lot->valid_to < w->next_expiry))
	{
		w->has_next_expiry = true;
		w->next_expiry = lot->valid_to;
	}
}

static inline void
SetText(TupleTableSlot *row, DirectTable t, const char *column, const char *value)
{
	DirectSet(row, t, column, value ? CStringGetTextDatum(value) : (Datum) 0, value == NULL);
}

static inline void
SetInt64(TupleTableSlot *row, DirectTable t, const char *column, int64 value)
{
	DirectSet(row, t, column, Int64GetDatum(value), false);
}

/* Set an id, zero being NULL */
static inline void
SetId(TupleTableSlot *row, DirectTable t, const char *column, int64 value)
{
	DirectSet(row, t, column, Int64GetDatum(value), value == 0);
}

/*
 * Take each lot's take from it (a negative take gives points back to the
 * lot, within what it was created with); the lots and amounts, as int8[],
 * become the usage recorded in the entry about to be appended (NULL if
 * none).  Points given back to a lot whose window has closed are recorded
 * as expired by the wallet's next touch.
 */
static void
SpendLots(Wallet *w, Lot *lots, int n, Datum *lot_ids, Datum *lot_amounts)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *amounts = palloc(sizeof(Datum) * Max(n, 1));
	int			m = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		DirectKey	key = {INT8OID, Int64GetDatum(lots[i].id)};
		TupleTableSlot *old;
		TupleTableSlot *row;
		bool		isnull;
		int64		remaining;
		int64		amount;
		int64		left;
		Datum		d;
		int			natts;

		if (lots[i].take == 0)
			continue;
		old = lots[i].has_tid ? DirectFetchTid(DT_LOT, &lots[i].tid) :
			DirectFetch(DT_LOT, "lot_pkey", 1, &key);
		if (old == NULL)
			elog(ERROR, "lot " INT64_FORMAT " does not exist", lots[i].id);
		remaining = DatumGetInt64(DirectGet(old, DT_LOT, "remaining", &isnull));
		amount = DatumGetInt64(DirectGet(old, DT_LOT, "amount", &isnull));
		left = remaining - lots[i].take;
		if (left < 0 || left > amount ||
			DatumGetInt64(DirectGet(old, DT_LOT, "customer_id", &isnull)) != w->customer_id ||
			strcmp(TextDatumGetCString(DirectGet(old, DT_LOT, "currency", &isnull)), w->currency) != 0)
			elog(ERROR, "lot " INT64_FORMAT " has " INT64_FORMAT " of " INT64_FORMAT " left, not " INT64_FORMAT " to take",
				 lots[i].id, remaining, amount, lots[i].take);
		DirectGet(old, DT_LOT, "restriction", &isnull);
		if (!isnull)
			w->restricted -= lots[i].take;
		d = DirectGet(old, DT_LOT, "valid_to", &isnull);
		if (lots[i].take < 0 && !isnull &&
			(!w->has_next_expiry || DatumGetTimestampTz(d) < w->next_expiry))
		{
			w->has_next_expiry = true;
			w->next_expiry = DatumGetTimestampTz(d);
		}
		slot_getallattrs(old);
		natts = old->tts_tupleDescriptor->natts;
		row = DirectNewRow(DT_LOT);
		memcpy(row->tts_values, old->tts_values, sizeof(Datum) * natts);
		memcpy(row->tts_isnull, old->tts_isnull, sizeof(bool) * natts);
		SetInt64(row, DT_LOT, "remaining", left);
		DirectSet(row, DT_LOT, "live", BoolGetDatum(left > 0), false);
		DirectUpdate(DT_LOT, old, row);
		lots[i].remaining = left;
		lots[i].tid = old->tts_tid;		/* DirectUpdate left the new version in old */
		ids[m] = Int64GetDatum(lots[i].id);
		amounts[m] = Int64GetDatum(lots[i].take);
		m++;
	}
	*lot_ids = *lot_amounts = (Datum) 0;
	if (m > 0)
	{
		*lot_ids = PointerGetDatum(construct_array(ids, m, INT8OID, 8, FLOAT8PASSBYVAL,
												   TYPALIGN_DOUBLE));
		*lot_amounts = PointerGetDatum(construct_array(amounts, m, INT8OID, 8, FLOAT8PASSBYVAL,
													   TYPALIGN_DOUBLE));
	}
}

/* Write the wallet row's new balance, held, version, next expiry, merge */
static void
UpdateWallet(Wallet *w, int64 balance, int64 held, int64 version)
{
	TupleTableSlot *row = DirectNewRow(DT_WALLET);
	int			natts = w->row->tts_tupleDescriptor->natts;

	slot_getallattrs(w->row);
	memcpy(row->tts_values, w->row->tts_values, sizeof(Datum) * natts);
	memcpy(row->tts_isnull, w->row->tts_isnull, sizeof(bool) * natts);
	SetInt64(row, DT_WALLET, "balance", balance);
	SetInt64(row, DT_WALLET, "held", held);
	SetInt64(row, DT_WALLET, "version", version);
	DirectSet(row, DT_WALLET, "next_expiry", TimestampTzGetDatum(w->next_expiry),
			  !w->has_next_expiry);
	SetInt64(row, DT_WALLET, "restricted", w->restricted);
	SetInt64(row, DT_WALLET, "debt", w->debt);
	DirectSet(row, DT_WALLET, "pending_until", TimestampTzGetDatum(w->pending_until),
			  !w->has_pending_until);
	DirectSet(row, DT_WALLET, "updated_at", TimestampTzGetDatum(w->now), false);
	DirectSet(row, DT_WALLET, "merged_into", Int64GetDatum(w->merged_into), w->merged_into == 0);
	DirectUpdate(DT_WALLET, w->row, row);
}

/*
 * The event of an entry just appended: balance_changed, with the wallet's
 * new version, the change and what the wallet holds after it.
 */
static void
BalanceChanged(Wallet *w, Entry *e)
{
	JsonBuild	jb = NULL;

	JbBeginObject(&jb, NULL);
	JbText(&jb, "currency", w->currency);
	JbInt(&jb, "version", w->version);
	JbText(&jb, "operation", e->operation);
	JbInt(&jb, "amount", e->amount);
	JbInt(&jb, "held_amount", e->held_amount);
	JbInt(&jb, "balance", w->balance);
	JbInt(&jb, "held", w->held);
	JbTextIf(&jb, "receipt_id", e->receipt_id);
	EventAppend(w->program_id, "balance_changed", w->customer_id, JbFinish(&jb), w->now);
}

/*
 * Append an entry to a locked wallet: the lot it creates (e->new_lot), the
 * points it takes from lots (e->lots, recorded in the entry), the wallet row's
 * new balance, held and version, and the ledger entry.  The result, if
 * wanted, is the entry as written.
 */
void
WalletAppend(Wallet *w, Entry *e, EntryResult *result)
{
	int64		balance;
	int64		held;
	int64		version = w->version + 1;
	TupleTableSlot *row;
	Datum		lot_ids = (Datum) 0;
	Datum		lot_amounts = (Datum) 0;

	if (pg_add_s64_overflow(w->balance, e->amount, &balance))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("balance of customer " INT64_FORMAT " in \"%s\" would be out of range",
						w->customer_id, w->currency),
				 errdetail("Balance " INT64_FORMAT ", change " INT64_FORMAT ".",
						   w->balance, e->amount)));
	held = w->held + e->held_amount;
	if (balance < 0 || held < 0)
		elog(ERROR, "ledger entry would leave balance " INT64_FORMAT " held " INT64_FORMAT,
			 balance, held);

	if (e->new_lot)
	{
		if (e->new_lot->amount != e->amount)
			elog(ERROR, "a lot created with an entry must hold the entry's amount");
		e->lot_id = CreateLot(w, version, e->new_lot);
	}
	if (e->nlots > 0)
		SpendLots(w, e->lots, e->nlots, &lot_ids, &lot_amounts);
	UpdateWallet(w, balance, held, version);

	row = DirectNewRow(DT_LEDGER);
	SetInt64(row, DT_LEDGER, "program_id", w->program_id);
	SetInt64(row, DT_LEDGER, "customer_id", w->customer_id);
	SetText(row, DT_LEDGER, "currency", w->currency);
	SetInt64(row, DT_LEDGER, "version", version);
	SetText(row, DT_LEDGER, "operation", e->operation);
	SetInt64(row, DT_LEDGER, "amount", e->amount);
	SetInt64(row, DT_LEDGER, "held_amount", e->held_amount);
	SetInt64(row, DT_LEDGER, "balance_after", balance);
	SetInt64(row, DT_LEDGER, "held_after", held);
	SetId(row, DT_LEDGER, "lot_id", e->lot_id);
	SetId(row, DT_LEDGER, "hold_id", e->hold_id);
	SetText(row, DT_LEDGER, "receipt_id", e->receipt_id);
	SetId(row, DT_LEDGER, "peer_customer_id", e->peer_customer_id);
	SetText(row, DT_LEDGER, "peer_currency", e->peer_currency);
	SetText(row, DT_LEDGER, "idempotency_key", e->idempotency_key);
	DirectSet(row, DT_LEDGER, "lot_ids", lot_ids, lot_ids == (Datum) 0);
	DirectSet(row, DT_LEDGER, "lot_amounts", lot_amounts, lot_amounts == (Datum) 0);
	SetText(row, DT_LEDGER, "actor", e->actor ? e->actor : SessionActor());
	SetText(row, DT_LEDGER, "reason", e->reason);
	DirectSet(row, DT_LEDGER, "created_at", TimestampTzGetDatum(w->now), false);
	DirectInsert(DT_LEDGER, row);

	w->balance = balance;
	w->held = held;
	w->version = version;
	if (result)
		KeepEntry(result, row->tts_tupleDescriptor, row->tts_values, row->tts_isnull);
	BalanceChanged(w, e);
}

/*
 * An accrual that created lot_id with lot_amount points pays the wallet's
 * debt first: a "debt" entry takes what is owed, as far as the new lot
 * holds, from that lot.
 */
void
WalletPayDebt(Wallet *w, int64 lot_id, int64 lot_amount)
{
	Lot			lot = {0};
	Entry		e = {0};
	int64		pay = Min(w->debt, lot_amount);

	if (pay <= 0)
		return;
	lot.id = lot_id;
	lot.take = pay;
	e.operation = "debt";
	e.amount = -pay;
	e.reason = "pays what a refund left owing";
	e.lots = &lot;
	e.nlots = 1;
	w->debt -= pay;
	WalletAppend(w, &e, NULL);
}

/* Mark a wallet whose customer was merged away; it takes no more operations */
void
WalletSetMerged(Wallet *w, int64 target)
{
	w->merged_into = target;
	UpdateWallet(w, w->balance, w->held, w->version);
}

/* The replayed entry names the same other customer or currency, if any */
static bool
SamePeer(TupleTableSlot *row, const Entry *expect)
{
	bool		isnull;
	Datum		d;

	if (expect->peer_customer_id != 0)
	{
		d = DirectGet(row, DT_LEDGER, "peer_customer_id", &isnull);
		if (isnull || DatumGetInt64(d) != expect->peer_customer_id)
			return false;
	}
	if (expect->peer_currency != NULL)
	{
		d = DirectGet(row, DT_LEDGER, "peer_currency", &isnull);
		if (isnull || strcmp(TextDatumGetCString(d), expect->peer_currency) != 0)
			return false;
	}
	return true;
}

/*
 * If the idempotency key was used before in the wallet's programme, check
 * that it was for the same operation and keep its entry as the result:
 * returns true, and the caller writes nothing.  A key used for something
 * else is an error.  An entry with the key that another transaction is
 * writing right now is waited for (under the same wallet's lock that cannot
 * happen; for another wallet it is a key used twice).
 */
bool
WalletReplay(Wallet *w, const char *key, const Entry *expect, bool check_amounts,
			 EntryResult *result)
{
	DirectKey	keys[2] = {{INT8OID, Int64GetDatum(w->program_id)},
	{TEXTOID, CStringGetTextDatum(key)}};
	TupleTableSlot *row;
	bool		isnull;
	int64		customer;
	char	   *currency;
	char	   *operation;
	int64		amount;
	int64		held_amount;
	int64		version;
	Datum		hold;

	row = DirectFetchLatest(DT_LEDGER, "ledger_idempotency_key_idx", 2, keys);
	if (row == NULL)
		return false;
	customer = DatumGetInt64(DirectGet(row, DT_LEDGER, "customer_id", &isnull));
	currency = TextDatumGetCString(DirectGet(row, DT_LEDGER, "currency", &isnull));
	operation = TextDatumGetCString(DirectGet(row, DT_LEDGER, "operation", &isnull));
	amount = DatumGetInt64(DirectGet(row, DT_LEDGER, "amount", &isnull));
	held_amount = DatumGetInt64(DirectGet(row, DT_LEDGER, "held_amount", &isnull));
	version = DatumGetInt64(DirectGet(row, DT_LEDGER, "version", &isnull));
	hold = DirectGet(row, DT_LEDGER, "hold_id", &isnull);

	if (customer != w->customer_id || strcmp(currency, w->currency) != 0 ||
		strcmp(operation, expect->operation) != 0 ||
		(check_amounts && (amount != expect->amount || held_amount != expect->held_amount)) ||
		(expect->hold_id != 0 && (isnull || DatumGetInt64(hold) != expect->hold_id)) ||
		!SamePeer(row, expect))
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_KEY_REUSED),
				 errmsg("idempotency key \"%s\" was already used for another operation", key),
				 errdetail("It recorded %s of " INT64_FORMAT " (held " INT64_FORMAT ") in the \"%s\" wallet of customer " INT64_FORMAT " at version " INT64_FORMAT ".",
						   operation, amount, held_amount, currency, customer, version),
				 errhint("Use a new key for a new operation.")));
	slot_getallattrs(row);
	KeepEntry(result, row->tts_tupleDescriptor, row->tts_values, row->tts_isnull);
	return true;
}

/* Due items a sweep reads at a time */
#define SWEEP_CHUNK 500

/*
 * expire_due(batch_limit, time_budget) and release_expired_holds(...): go
 * through what is due in deadline order and touch its wallets, passing over
 * wallets in use (their own operation touches them) and never coming back
 * within the call, until batch_limit items are recorded (finishing the
 * wallet at hand), nothing due is left, or the time budget is spent.
 * Returns how many were recorded.
 */
int32
WalletSweep(FunctionCallInfo fcinfo, bool holds)
{
	int64		limit = PG_ARGISNULL(0) ? 10000 : PG_GETARG_INT32(0);
	Interval   *budget = PG_ARGISNULL(1) ? NULL : PG_GETARG_INTERVAL_P(1);
	int64		budget_us = 10 * USECS_PER_SEC;
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz after_due = DT_NOBEGIN;
	int64		after_id = 0;
	bool		isnull;
	int64		done = 0;
	bool		stop = false;

	RequireEveryProgram(holds ? "loyalty.release_expired_holds" : "loyalty.expire_due");
	if (limit <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_limit must be positive, not " INT64_FORMAT, limit)));
	if (budget)
	{
		budget_us = budget->time + (int64) budget->day * USECS_PER_DAY +
			(int64) budget->month * DAYS_PER_MONTH * USECS_PER_DAY;
		if (budget_us <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time_budget must be positive")));
	}

	while (!stop)
	{
		/* claim no more than the call may still record */
		Datum		args[4] = {TimestampTzGetDatum(now), TimestampTzGetDatum(after_due),
		Int64GetDatum(after_id), Int64GetDatum(Min(SWEEP_CHUNK, limit - done))};
		int			n;
		int			i;
		int64	   *customers;
		char	  **currencies;

		/* one SPI and executor state per chunk, so that a long run stays small */
		DirectBegin();
		RunKept(holds ? &due_holds_query : &due_lots_query, args, NULL, 0);
		n = (int) SPI_processed;
		if (n == 0)
		{
			DirectEnd();
			break;
		}
		customers = palloc(sizeof(int64) * n);
		currencies = palloc(sizeof(char *) * n);
		for (i = 0; i < n; i++)
		{
			customers[i] = ColInt64(i, 1);
			currencies[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		}
		after_due = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[n - 1],
													  SPI_tuptable->tupdesc, 3, &isnull));
		after_id = ColInt64(n - 1, 4);

		for (i = 0; i < n && !stop; i++)
		{
			Wallet		w;
			int			released;
			int			expired;

			if (i > 0 && customers[i] == customers[i - 1] &&
				strcmp(currencies[i], currencies[i - 1]) == 0)
				continue;
			if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(),
										   (int) Min(budget_us / 1000, PG_INT32_MAX)))
			{
				stop = true;
				break;
			}
			CHECK_FOR_INTERRUPTS();
			if (!WalletLock(&w, customers[i], currencies[i], WALLET_SKIP_LOCKED))
				continue;
			expired = WalletTouch(&w, true, &released);
			done += holds ? released : expired;
			stop = done >= limit;
		}
		DirectEnd();
	}
	return (int32) Min(done, PG_INT32_MAX);
}
