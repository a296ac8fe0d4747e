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
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "program.h"
#include "wallet.h"

#define WALLET_COLUMNS \
	"SELECT w.program_id, w.balance, w.held, w.version, w.next_expiry, w.merged_into"

static KeptQuery lock_query = {
	WALLET_COLUMNS " FROM loyalty.wallet w"
	" WHERE w.customer_id = $1 AND w.currency = $2 FOR UPDATE",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery lock_skip_query = {
	WALLET_COLUMNS " FROM loyalty.wallet w"
	" WHERE w.customer_id = $1 AND w.currency = $2 FOR UPDATE SKIP LOCKED",
	2, {INT8OID, TEXTOID}, NULL
};
/*
 * For spending, the customer's status and the wallet's live lots too, read in
 * one statement.  The lots come from the statement's snapshot; they are the
 * lots under the lock only if the wallet's version in that snapshot ("seen")
 * is the version locked, since every change of a lot writes a ledger entry.
 * After waiting for another transaction's lock they are not, and are read
 * again.  (The customer's status is advisory and not locked.)
 */
static KeptQuery lock_spend_query = {
	WALLET_COLUMNS ", c.status,"
	" (SELECT v.version FROM loyalty.wallet v WHERE v.customer_id = $1 AND v.currency = $2),"
	" l.id, l.amount, l.remaining, l.valid_from, l.valid_to, l.priority, l.kind, l.restriction"
	" FROM loyalty.wallet w JOIN loyalty.customer c ON c.id = w.customer_id"
	" LEFT JOIN LATERAL (SELECT * FROM loyalty.lot"
	"                    WHERE customer_id = w.customer_id AND currency = w.currency"
	"                      AND remaining > 0) l ON true"
	" WHERE w.customer_id = $1 AND w.currency = $2 FOR UPDATE OF w",
	2, {INT8OID, TEXTOID}, NULL
};

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

/*
 * Appending an entry: the wallet row takes the new balance, held, version and
 * next expiry, the ledger the entry ($1-$18).  Two variants do more in the
 * same statement: create the lot the entry credits ($19-$24), or take points
 * from lots and record their usage ($19-$21; no entry if a lot is missing).
 */
#define UPDATE_WALLET \
	"w AS (UPDATE loyalty.wallet" \
	"      SET balance = $4, held = $5, version = $6, next_expiry = $7, updated_at = now()" \
	"      WHERE customer_id = $1 AND currency = $2)"
#define INSERT_LEDGER \
	" INSERT INTO loyalty.ledger (program_id, customer_id, currency, version," \
	"   operation, amount, held_amount, balance_after, held_after, lot_id, hold_id," \
	"   receipt_id, peer_customer_id, peer_currency, idempotency_key, actor, reason)"
#define ENTRY_ARGTYPES \
	INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, \
	TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID, TEXTOID, \
	TEXTOID, TEXTOID, TEXTOID

static KeptQuery append_query = {
	"WITH " UPDATE_WALLET INSERT_LEDGER
	" VALUES ($3, $1, $2, $6, $8, $9, $10, $4, $5, $11, $12, $13, $14, $15, $16, $17, $18)"
	" RETURNING *",
	18, {ENTRY_ARGTYPES}, NULL
};
static KeptQuery append_lot_query = {
	"WITH l AS (INSERT INTO loyalty.lot (program_id, customer_id, currency, amount, remaining,"
	"             valid_from, valid_to, kind, priority, restriction, created_version,"
	"             source_lot_id)"
	"           VALUES ($3, $1, $2, $9, $9, $19, $20, $21, $22, $23, $6, $24) RETURNING id), "
	UPDATE_WALLET INSERT_LEDGER
	" SELECT $3, $1, $2, $6, $8, $9, $10, $4, $5, l.id, $12, $13, $14, $15, $16, $17, $18"
	" FROM l RETURNING *",
	24, {ENTRY_ARGTYPES, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, INT4OID, TEXTOID, INT8OID},
	NULL
};
static KeptQuery append_spend_query = {
	"WITH x AS (SELECT * FROM unnest($19::bigint[], $20::bigint[]) AS x (lot_id, amount)),"
	" u AS (UPDATE loyalty.lot l SET remaining = l.remaining - x.amount"
	"       FROM x WHERE l.id = x.lot_id AND l.customer_id = $1 AND l.currency = $2"
	"       RETURNING l.id),"
	" g AS (INSERT INTO loyalty.lot_usage (customer_id, currency, version, lot_id, amount)"
	"       SELECT $1, $2, $6, x.lot_id, x.amount FROM x), "
	UPDATE_WALLET INSERT_LEDGER
	" SELECT $3, $1, $2, $6, $8, $9, $10, $4, $5, $11, $12, $13, $14, $15, $16, $17, $18"
	" WHERE (SELECT count(*) FROM u) = $21 RETURNING *",
	21, {ENTRY_ARGTYPES, INT8ARRAYOID, INT8ARRAYOID, INT8OID}, NULL
};

static KeptQuery replay_query = {
	"SELECT * FROM loyalty.ledger WHERE program_id = $1 AND idempotency_key = $2",
	2, {INT8OID, TEXTOID}, NULL
};

static KeptQuery expired_lots_query = {
	"SELECT id, remaining FROM loyalty.lot"
	" WHERE customer_id = $1 AND currency = $2 AND remaining > 0 AND valid_to <= $3"
	" ORDER BY valid_to, id",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery next_expiry_query = {
	"SELECT min(valid_to) FROM loyalty.lot"
	" WHERE customer_id = $1 AND currency = $2 AND remaining > 0 AND valid_to > $3",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery set_next_expiry_query = {
	"UPDATE loyalty.wallet SET next_expiry = $3 WHERE customer_id = $1 AND currency = $2",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery expired_holds_query = {
	"SELECT id, amount FROM loyalty.hold"
	" WHERE customer_id = $1 AND currency = $2 AND status = 'active' AND expires_at <= $3"
	" ORDER BY expires_at, id",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery expire_hold_query = {
	"UPDATE loyalty.hold SET status = 'expired', resolved_version = $2, resolved_at = now()"
	" WHERE id = $1",
	2, {INT8OID, INT8OID}, NULL
};
static KeptQuery set_merged_query = {
	"UPDATE loyalty.wallet SET merged_into = $3, updated_at = now()"
	" WHERE customer_id = $1 AND currency = $2",
	3, {INT8OID, TEXTOID, INT8OID}, NULL
};

static KeptQuery due_lots_query = {
	"SELECT DISTINCT customer_id, currency FROM"
	" (SELECT customer_id, currency FROM loyalty.lot"
	"  WHERE remaining > 0 AND valid_to <= $1 ORDER BY valid_to LIMIT $2) d",
	2, {TIMESTAMPTZOID, INT8OID}, NULL
};
static KeptQuery due_holds_query = {
	"SELECT DISTINCT customer_id, currency FROM"
	" (SELECT customer_id, currency FROM loyalty.hold"
	"  WHERE status = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT $2) d",
	2, {TIMESTAMPTZOID, INT8OID}, NULL
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

/* Fill w from the rows of a lock query */
static void
ReadWallet(Wallet *w, bool spend)
{
	bool		isnull;
	Datum		d;
	int			i;

	w->program_id = DatumGetInt64(Col(1, &isnull));
	w->balance = DatumGetInt64(Col(2, &isnull));
	w->held = DatumGetInt64(Col(3, &isnull));
	w->version = DatumGetInt64(Col(4, &isnull));
	w->version_locked = w->version;
	d = Col(5, &isnull);
	w->has_next_expiry = !isnull;
	w->next_expiry = isnull ? 0 : DatumGetTimestampTz(d);
	d = Col(6, &isnull);
	if (!isnull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT,
						w->customer_id, DatumGetInt64(d)),
				 errhint("Use customer " INT64_FORMAT ".", DatumGetInt64(d))));
	if (!spend)
		return;
	text_to_cstring_buffer(DatumGetTextPP(Col(7, &isnull)),
						   w->customer_status, sizeof(w->customer_status));
	d = Col(8, &isnull);
	if (isnull || DatumGetInt64(d) != w->version)
		return;					/* lots changed while we waited for the lock */
	Col(9, &isnull);
	w->nlots = isnull ? 0 : (int) SPI_processed;
	w->lots = palloc0(sizeof(Lot) * Max(w->nlots, 1));
	for (i = 0; i < w->nlots; i++)
		ReadLot(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 9, &w->lots[i]);
	w->lots_fresh = true;
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
	merged = Col(3, &isnull);
	if (!isnull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT,
						customer_id, DatumGetInt64(merged)),
				 errhint("Use customer " INT64_FORMAT ".", DatumGetInt64(merged))));
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
 * in use by another transaction or does not exist.
 */
bool
WalletLock(Wallet *w, int64 customer_id, const char *currency, WalletLockMode mode)
{
	Datum		args[3] = {Int64GetDatum(customer_id), CStringGetTextDatum(currency), 0};
	int			attempt;

	memset(w, 0, sizeof(Wallet));
	w->customer_id = customer_id;
	w->currency = currency;
	w->now = GetCurrentTransactionStartTimestamp();

	for (attempt = 0; attempt < 2; attempt++)
	{
		bool		spend = (mode & WALLET_SPEND) && !(mode & WALLET_SKIP_LOCKED);

		RunKept((mode & WALLET_SKIP_LOCKED) ? &lock_skip_query :
				spend ? &lock_spend_query : &lock_query, args, NULL, spend ? 0 : 1);
		if (SPI_processed >= 1)
		{
			ReadWallet(w, spend);
			return true;
		}
		if (mode & WALLET_SKIP_LOCKED)
			return false;
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
 * lot lookup while nothing can have expired, unless force is set.  Returns
 * the lots expired; *holds_released (if not NULL) gets the holds released.
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

		RunKept(&expired_lots_query, args, NULL, 0);
		nlots = (int) SPI_processed;
		lots = palloc0(sizeof(Lot) * Max(nlots, 1));
		for (i = 0; i < nlots; i++)
		{
			lots[i].id = ColInt64(i, 1);
			lots[i].remaining = lots[i].take = ColInt64(i, 2);
		}
		/* the next expiry after these lots, which each entry then writes */
		RefreshNextExpiry(w);
		if (nlots == 0)
		{
			Datum		set[3] = {args[0], args[1], TimestampTzGetDatum(w->next_expiry)};

			RunKept(&set_next_expiry_query, set, w->has_next_expiry ? NULL : "  n", 0);
		}
		if (nlots > 0)
			w->lots_fresh = false;
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

		RunKept(&expired_holds_query, args, NULL, 0);
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

/* The session user, recorded as the actor of a change */
static char *
SessionActor(void)
{
	return GetUserNameFromId(GetSessionUserId(), false);
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
 * Keep the ledger row of the last SPI result as the operation's result,
 * built in the caller's context with the function's declared row type.
 */
static void
KeepEntry(EntryResult *result)
{
	HeapTuple	row = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	Datum		hold = SPI_getbinval(row, desc, SPI_fnumber(desc, "hold_id"), &isnull);
	TupleDesc	rdesc;

	result->hold_id = isnull ? 0 : DatumGetInt64(hold);
	if (get_call_result_type(result->fcinfo, NULL, &rdesc) == TYPEFUNC_COMPOSITE)
	{
		MemoryContext old = MemoryContextSwitchTo(result->callcxt);
		Datum	   *values = palloc(sizeof(Datum) * desc->natts);
		bool	   *nulls = palloc(sizeof(bool) * desc->natts);

		if (rdesc->natts != desc->natts)
			elog(ERROR, "result type does not match loyalty.ledger");
		heap_deform_tuple(row, desc, values, nulls);
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

/* Set a text argument, or NULL */
static inline void
TextArg(Datum *args, char *nulls, int i, const char *value)
{
	args[i] = value ? CStringGetTextDatum(value) : (Datum) 0;
	nulls[i] = value ? ' ' : 'n';
}

/* Set an id argument, zero being NULL */
static inline void
IdArg(Datum *args, char *nulls, int i, int64 value)
{
	args[i] = Int64GetDatum(value);
	nulls[i] = value ? ' ' : 'n';
}

/*
 * Append an entry to a locked wallet in one statement: the wallet row takes
 * the new balance, held and version, the ledger the entry, and with it the
 * lot it creates (e->new_lot) or the lots it spends (e->lots) are written.
 * The result, if wanted, is the entry as written.
 */
void
WalletAppend(Wallet *w, Entry *e, EntryResult *result)
{
	Datum		args[24];
	char		nulls[24];
	int64		balance;
	int64		held;
	KeptQuery  *query = &append_query;

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
		LowerNextExpiry(w, e->new_lot);

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(w->customer_id);
	args[1] = CStringGetTextDatum(w->currency);
	args[2] = Int64GetDatum(w->program_id);
	args[3] = Int64GetDatum(balance);
	args[4] = Int64GetDatum(held);
	args[5] = Int64GetDatum(w->version + 1);
	args[6] = TimestampTzGetDatum(w->next_expiry);
	nulls[6] = w->has_next_expiry ? ' ' : 'n';
	args[7] = CStringGetTextDatum(e->operation);
	args[8] = Int64GetDatum(e->amount);
	args[9] = Int64GetDatum(e->held_amount);
	IdArg(args, nulls, 10, e->lot_id);
	IdArg(args, nulls, 11, e->hold_id);
	TextArg(args, nulls, 12, e->receipt_id);
	IdArg(args, nulls, 13, e->peer_customer_id);
	TextArg(args, nulls, 14, e->peer_currency);
	TextArg(args, nulls, 15, e->idempotency_key);
	TextArg(args, nulls, 16, e->actor ? e->actor : SessionActor());
	TextArg(args, nulls, 17, e->reason);

	if (e->new_lot)
	{
		NewLot	   *l = e->new_lot;

		if (l->amount != e->amount)
			elog(ERROR, "a lot created with an entry must hold the entry's amount");
		query = &append_lot_query;
		args[18] = TimestampTzGetDatum(l->valid_from);
		args[19] = TimestampTzGetDatum(l->valid_to);
		nulls[19] = l->has_valid_to ? ' ' : 'n';
		TextArg(args, nulls, 20, l->kind);
		args[21] = Int32GetDatum(l->priority);
		TextArg(args, nulls, 22, l->restriction);
		IdArg(args, nulls, 23, l->source_lot_id);
	}
	else if (e->nlots > 0)
	{
		Datum	   *ids;
		Datum	   *amounts;
		int			m = TakenLots(e->lots, e->nlots, &ids, &amounts);

		if (m > 0)
		{
			query = &append_spend_query;
			args[18] = PointerGetDatum(construct_array(ids, m, INT8OID, 8, FLOAT8PASSBYVAL,
													   TYPALIGN_DOUBLE));
			args[19] = PointerGetDatum(construct_array(amounts, m, INT8OID, 8, FLOAT8PASSBYVAL,
													   TYPALIGN_DOUBLE));
			args[20] = Int64GetDatum(m);
		}
	}

	RunKept(query, args, nulls, 0);
	if (SPI_processed != 1)
		elog(ERROR, "ledger entry of customer " INT64_FORMAT " was not written", w->customer_id);
	w->lots_fresh = false;
	w->balance = balance;
	w->held = held;
	w->version++;
	if (result)
		KeepEntry(result);
}

/* Mark a wallet whose customer was merged away; it takes no more operations */
void
WalletSetMerged(Wallet *w, int64 target)
{
	Datum		args[3] = {Int64GetDatum(w->customer_id), CStringGetTextDatum(w->currency),
	Int64GetDatum(target)};

	RunKept(&set_merged_query, args, NULL, 0);
}

/*
 * If the idempotency key was used before in the wallet's programme, check
 * that it was for the same operation and keep its entry as the result:
 * returns true, and the caller writes nothing.  A key used for something
 * else is an error.
 */
bool
WalletReplay(Wallet *w, const char *key, const Entry *expect, bool check_amounts,
			 EntryResult *result)
{
	Datum		args[2] = {Int64GetDatum(w->program_id), CStringGetTextDatum(key)};
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	int64		customer;
	char	   *currency;
	char	   *operation;
	int64		amount;
	int64		held_amount;
	int64		version;
	Datum		hold;

	RunKept(&replay_query, args, NULL, 1);
	if (SPI_processed == 0)
		return false;
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	customer = DatumGetInt64(SPI_getbinval(row, desc, SPI_fnumber(desc, "customer_id"), &isnull));
	currency = SPI_getvalue(row, desc, SPI_fnumber(desc, "currency"));
	operation = SPI_getvalue(row, desc, SPI_fnumber(desc, "operation"));
	amount = DatumGetInt64(SPI_getbinval(row, desc, SPI_fnumber(desc, "amount"), &isnull));
	held_amount = DatumGetInt64(SPI_getbinval(row, desc, SPI_fnumber(desc, "held_amount"), &isnull));
	version = DatumGetInt64(SPI_getbinval(row, desc, SPI_fnumber(desc, "version"), &isnull));
	hold = SPI_getbinval(row, desc, SPI_fnumber(desc, "hold_id"), &isnull);

	if (customer != w->customer_id || strcmp(currency, w->currency) != 0 ||
		strcmp(operation, expect->operation) != 0 ||
		(check_amounts && (amount != expect->amount || held_amount != expect->held_amount)) ||
		(expect->hold_id != 0 && (isnull || DatumGetInt64(hold) != expect->hold_id)))
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_KEY_REUSED),
				 errmsg("idempotency key \"%s\" was already used for another operation", key),
				 errdetail("It recorded %s of " INT64_FORMAT " (held " INT64_FORMAT ") in the \"%s\" wallet of customer " INT64_FORMAT " at version " INT64_FORMAT ".",
						   operation, amount, held_amount, currency, customer, version),
				 errhint("Use a new key for a new operation.")));
	KeepEntry(result);
	return true;
}

/*
 * expire_due(batch_limit, time_budget) and release_expired_holds(...): touch
 * wallets with something due, skipping wallets in use (their own operation
 * touches them), until batch_limit items are recorded, nothing due is left
 * or the time budget is spent.  Returns how many were recorded.
 */
int32
WalletSweep(FunctionCallInfo fcinfo, bool holds)
{
	int64		limit = PG_ARGISNULL(0) ? 10000 : PG_GETARG_INT32(0);
	Interval   *budget = PG_ARGISNULL(1) ? NULL : PG_GETARG_INTERVAL_P(1);
	int64		budget_us = 10 * USECS_PER_SEC;
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int64		done = 0;
	bool		out_of_time = false;

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

	SPI_connect();
	while (done < limit && !out_of_time)
	{
		Datum		args[2] = {TimestampTzGetDatum(now), Int64GetDatum(limit - done)};
		int			n;
		int			i;
		int64	   *customers;
		char	  **currencies;
		int64		before = done;

		RunKept(holds ? &due_holds_query : &due_lots_query, args, NULL, 0);
		n = (int) SPI_processed;
		if (n == 0)
			break;
		customers = palloc(sizeof(int64) * n);
		currencies = palloc(sizeof(char *) * n);
		for (i = 0; i < n; i++)
		{
			customers[i] = ColInt64(i, 1);
			currencies[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		}
		for (i = 0; i < n; i++)
		{
			Wallet		w;
			int			released;
			int			expired;

			if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(),
										   (int) Min(budget_us / 1000, PG_INT32_MAX)))
			{
				out_of_time = true;
				break;
			}
			CHECK_FOR_INTERRUPTS();
			if (!WalletLock(&w, customers[i], currencies[i], WALLET_SKIP_LOCKED))
				continue;
			expired = WalletTouch(&w, true, &released);
			done += holds ? released : expired;
		}
		if (done == before)
			break;				/* everything due is in wallets in use */
	}
	SPI_finish();
	return (int32) Min(done, PG_INT32_MAX);
}
