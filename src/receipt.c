/*
 * src/receipt.c
 *
 * The ledger operations of a receipt's life that loyalty.commit,
 * loyalty.cancel and the accrual queue need beyond accrue and redeem:
 *
 *   spend_lots      spend exactly the points calculate chose, lot by lot
 *   return_lots     give points back to the lots they were taken from
 *   take_back       take back an accrual: from its lot, the rest from any,
 *                   what is missing as a debt if the caller allows it
 *   release_accruals  release the accrual queue's due rows as lots
 *
 * The first three are internal (called by the receipt functions with
 * amounts read from the ledger or from calculate's answer); each locks its
 * wallet, records what has expired, and appends one ledger entry.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "access.h"
#include "direct.h"
#include "fraud.h"
#include "jsonbuild.h"
#include "program.h"
#include "wallet.h"

PG_FUNCTION_INFO_V1(loyalty_spend_lots);
PG_FUNCTION_INFO_V1(loyalty_return_lots);
PG_FUNCTION_INFO_V1(loyalty_take_back);
PG_FUNCTION_INFO_V1(loyalty_release_accruals);

static KeptQuery rules_query = {
	"SELECT refund_shortfall, money_exponent::int4 FROM loyalty.program WHERE id = $1",
	1, {INT8OID}, NULL
};
static KeptQuery key_query = {
	"SELECT committed_at FROM loyalty.receipt_key t"
	" WHERE t.program_id = $1 AND t.receipt_id = $2 FOR UPDATE",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery money_query = {
	"SELECT loyalty.points_money($1, $2, $3)",
	3, {INT8OID, TEXTOID, INT8OID}, NULL
};

/* Most lots one entry names */
#define MAX_ENTRY_LOTS 10000

/* Queue rows claimed at a time */
#define RELEASE_CHUNK 500

/*
 * The due rows of a slice, and whether each one's customer is on fraud_hold
 * (the set of held customers read once for the slice, from the partial
 * index customer_fraud_hold_idx, hashed: not a customer lookup per row).
 */
static KeptQuery claim_query = {
	"SELECT q.id, q.customer_id, q.currency, q.amount, q.kind, q.priority,"
	"       $1 + q.valid_for, q.restriction, q.receipt_id, q.idempotency_key,"
	"       q.customer_id IN (SELECT c.id FROM loyalty.customer c WHERE c.status = 'fraud_hold')"
	"  FROM loyalty.accrual_queue q"
	" WHERE q.release_at <= $1"
	" ORDER BY q.release_at, q.id LIMIT $2"
	"   FOR UPDATE OF q SKIP LOCKED",
	2, {TIMESTAMPTZOID, INT8OID}, NULL
};
/* due accruals of customers on fraud_hold wait, held, until released */
static KeptQuery hold_query = {
	"UPDATE loyalty.accrual_queue SET held_release_at = release_at, release_at = 'infinity'"
	" WHERE id = ANY ($1)",
	1, {INT8ARRAYOID}, NULL
};
static KeptQuery released_query = {
	"DELETE FROM loyalty.accrual_queue WHERE id = ANY ($1)",
	1, {INT8ARRAYOID}, NULL
};
static KeptQuery merged_query = {
	"SELECT merged_into FROM loyalty.wallet WHERE customer_id = $1 AND currency = $2",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery wallets_query = {
	"SELECT 1 FROM loyalty.wallet w WHERE w.customer_id OPERATOR(pg_catalog.=) $1"
	" ORDER BY w.currency COLLATE pg_catalog.\"C\" FOR NO KEY UPDATE",
	1, {INT8OID}, NULL
};
static KeptQuery move_query = {
	"UPDATE loyalty.accrual_queue SET customer_id = $2 WHERE id = $1",
	2, {INT8OID, INT8OID}, NULL
};

/*
 * The lots and amounts of arguments ids_arg and amounts_arg: two int8
 * arrays of the same length, 1 to MAX_ENTRY_LOTS elements, no NULLs, each
 * lot once, every amount positive.  Returns the count.
 */
static int
ArgLotAmounts(FunctionCallInfo fcinfo, int ids_arg, int amounts_arg, int64 **ids, int64 **amounts)
{
	ArrayType  *a;
	ArrayType  *b;
	Datum	   *da;
	Datum	   *db;
	bool	   *na;
	bool	   *nb;
	int			n;
	int			m;

	if (PG_ARGISNULL(ids_arg) || PG_ARGISNULL(amounts_arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("lot_ids and amounts must not be null")));
	a = PG_GETARG_ARRAYTYPE_P(ids_arg);
	b = PG_GETARG_ARRAYTYPE_P(amounts_arg);
	if (ARR_NDIM(a) > 1 || ARR_NDIM(b) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("lot_ids and amounts must be one-dimensional arrays")));
	deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &da, &na, &n);
	deconstruct_array(b, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &db, &nb, &m);
	if (n != m || n == 0 || n > MAX_ENTRY_LOTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lot_ids and amounts must have the same number of elements, from 1 to %d",
						MAX_ENTRY_LOTS),
				 errdetail("lot_ids has %d, amounts %d.", n, m)));
	*ids = palloc(sizeof(int64) * n);
	*amounts = palloc(sizeof(int64) * n);
	for (int i = 0; i < n; i++)
	{
		if (na[i] || nb[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("lot_ids and amounts must not contain nulls")));
		(*ids)[i] = DatumGetInt64(da[i]);
		(*amounts)[i] = DatumGetInt64(db[i]);
		if ((*amounts)[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("amounts must be positive, not " INT64_FORMAT, (*amounts)[i])));
		for (int j = 0; j < i; j++)
			if ((*ids)[j] == (*ids)[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("lot " INT64_FORMAT " is named twice", (*ids)[i])));
	}
	return n;
}

/* The sum of n positive amounts, which must stay in range */
static int64
SumAmounts(const int64 *amounts, int n)
{
	int64		sum = 0;

	for (int i = 0; i < n; i++)
		if (pg_add_s64_overflow(sum, amounts[i], &sum))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("amounts add up to more than a bigint holds")));
	return sum;
}

/* The lot of lots[0..n) with this id, or NULL */
static Lot *
FindLot(Lot *lots, int n, int64 id)
{
	for (int i = 0; i < n; i++)
		if (lots[i].id == id)
			return &lots[i];
	return NULL;
}

/*
 * Lock all the customer's wallets, in the order of their currency codes
 * (the one order every operation on several wallets takes): commit, cancel
 * and refund do before they read what the wallets hold.
 */
void
ReceiptLockWallets(int64 customer)
{
	Datum		values[1] = {Int64GetDatum(customer)};

	RunKept(&wallets_query, values, NULL, 0);
}

/*
 * spend_lots(customer, currency, lot_ids, amounts, receipt, idempotency_key)
 * returns ledger: a redemption that takes exactly amounts[i] from lot
 * lot_ids[i].  Each lot must count now and hold its amount, and the whole
 * must fit in what holds leave; otherwise the points moved since they were
 * chosen, and the error is 40001 so that the caller calculates again.
 */
Datum
loyalty_spend_lots(PG_FUNCTION_ARGS)
{
	int64	   *ids;
	int64	   *amounts;
	int			n = ArgLotAmounts(fcinfo, 2, 3, &ids, &amounts);
	int64		customer = ArgInt64(fcinfo, 0, "customer");
	char	   *currency = ArgText(fcinfo, 1, "currency");
	EntryResult result;

	EntryResultInit(&result, fcinfo);
	ReceiptSpendLots(customer, currency, n, ids, amounts, ArgTextOrNull(fcinfo, 4, "receipt"),
					 ArgTextOrNull(fcinfo, 5, "idempotency_key"), &result);
	PG_RETURN_DATUM(result.datum);
}

/*
 * The redemption of spend_lots, for commit: n lots, each once, each amount
 * positive.
 */
void
ReceiptSpendLots(int64 customer, const char *currency, int n, const int64 *ids,
				 const int64 *amounts, const char *receipt, const char *idempotency_key,
				 EntryResult *result)
{
	int64		total = SumAmounts(amounts, n);
	Applicable	all = {true, 0, NULL};
	Entry		e = {0};
	Wallet		w;

	e.amount = -total;
	e.operation = "redeem";
	e.receipt_id = receipt;
	e.idempotency_key = idempotency_key;
	if (BeginWalletEntry(&w, customer, currency, WALLET_EXISTING | WALLET_SPEND, &e, true, result))
	{
		Lot		   *lots;
		int			nlots;

		WalletCheckSpending(&w);
		WalletTouch(&w, false, NULL);
		nlots = LoadLots(&w, &lots);
		for (int i = 0; i < n; i++)
		{
			Lot		   *l = FindLot(lots, nlots, ids[i]);

			if (l == NULL || !LotEffective(&w, l) || l->remaining < amounts[i])
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("lot " INT64_FORMAT " of customer " INT64_FORMAT " no longer has " INT64_FORMAT " \"%s\" to spend",
								ids[i], w.customer_id, amounts[i], w.currency),
						 l == NULL ? errdetail("The lot has no points left in this wallet.") :
						 !LotEffective(&w, l) ? errdetail("The lot does not count now.") :
						 errdetail("It has " INT64_FORMAT " left.", l->remaining),
						 errhint("Calculate the receipt again.")));
			l->take = amounts[i];
		}
		if (LotsAvailable(&w, lots, nlots, &all) - w.held < total)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("customer " INT64_FORMAT " no longer has " INT64_FORMAT " \"%s\" to spend",
							w.customer_id, total, w.currency),
					 errdetail("Holds reserve " INT64_FORMAT " of the wallet's points.", w.held),
					 errhint("Calculate the receipt again.")));
		e.lots = lots;
		e.nlots = nlots;
		WalletAppend(&w, &e, result);
	}
	DirectEnd();
}

/*
 * return_lots(customer, currency, lot_ids, amounts, receipt, idempotency_key)
 * returns ledger: a refund entry that gives amounts[i] back to lot
 * lot_ids[i], keeping its window; the entry's lot_amounts are negative (the
 * view lot_usage then nets out per lot).  A lot may not get back more than
 * it was created with.
 */
Datum
loyalty_return_lots(PG_FUNCTION_ARGS)
{
	int64	   *ids;
	int64	   *amounts;
	int			n = ArgLotAmounts(fcinfo, 2, 3, &ids, &amounts);
	int64		customer = ArgInt64(fcinfo, 0, "customer");
	char	   *currency = ArgText(fcinfo, 1, "currency");
	EntryResult result;

	EntryResultInit(&result, fcinfo);
	ReceiptReturnLots(customer, currency, n, ids, amounts, ArgTextOrNull(fcinfo, 4, "receipt"),
					  ArgTextOrNull(fcinfo, 5, "idempotency_key"), &result);
	PG_RETURN_DATUM(result.datum);
}

/*
 * The entry of return_lots, for cancel and refund: n lots, each once, each
 * amount positive.  Returns the entry's amount.
 */
int64
ReceiptReturnLots(int64 customer, const char *currency, int n, const int64 *ids,
				  const int64 *amounts, const char *receipt, const char *idempotency_key,
				  EntryResult *result)
{
	int64		total = SumAmounts(amounts, n);
	Entry		e = {0};
	Wallet		w;

	e.amount = total;
	e.operation = "refund";
	e.receipt_id = receipt;
	e.idempotency_key = idempotency_key;
	if (BeginWalletEntry(&w, customer, currency, WALLET_EXISTING, &e, true, result))
	{
		Lot		   *lots = palloc0(sizeof(Lot) * n);

		WalletTouch(&w, false, NULL);
		for (int i = 0; i < n; i++)
		{
			DirectKey	key = DirectInt8Key(ids[i]);
			TupleTableSlot *row = DirectFetch(DT_LOT, "lot_pkey", 1, &key);
			bool		isnull;

			if (row == NULL ||
				DatumGetInt64(DirectGet(row, DT_LOT, "customer_id", &isnull)) != w.customer_id ||
				strcmp(TextDatumGetCString(DirectGet(row, DT_LOT, "currency", &isnull)), w.currency) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("lot " INT64_FORMAT " is not a lot of the \"%s\" wallet of customer " INT64_FORMAT,
								ids[i], w.currency, w.customer_id)));
			if (DatumGetInt64(DirectGet(row, DT_LOT, "amount", &isnull)) -
				DatumGetInt64(DirectGet(row, DT_LOT, "remaining", &isnull)) < amounts[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("lot " INT64_FORMAT " cannot get back " INT64_FORMAT ": only " INT64_FORMAT " of it was taken",
								ids[i], amounts[i],
								DatumGetInt64(DirectGet(row, DT_LOT, "amount", &isnull)) -
								DatumGetInt64(DirectGet(row, DT_LOT, "remaining", &isnull)))));
			lots[i].id = ids[i];
			lots[i].take = -amounts[i];
		}
		e.lots = lots;
		e.nlots = n;
		WalletAppend(&w, &e, result);
	}
	DirectEnd();
	return e.amount;
}

/*
 * take_back(customer, currency, lot, amount, receipt, idempotency_key,
 *           shortfall) returns ledger: a refund entry that takes the points
 * of an accrual back, from the lot it created as far as they are left in
 * it, the rest from the wallet's other points in redemption order.  What
 * holds reserve is not taken.  If the wallet cannot give amount, shortfall
 * decides: 'error' (the default) fails with P0L01; 'debt' takes what it can
 * and the rest becomes the wallet's debt, which the next accruals pay
 * first; 'forgive' takes what it can and leaves the rest to the caller
 * (who withholds it in money).  The entry's amount says what was taken.
 */
Datum
loyalty_take_back(PG_FUNCTION_ARGS)
{
	int64		lot_id = ArgInt64(fcinfo, 2, "lot");
	int64		amount = ArgPositive(fcinfo, 3, "amount");
	char	   *shortfall = PG_ARGISNULL(6) ? "error" : text_to_cstring(PG_GETARG_TEXT_PP(6));
	int64		customer;
	char	   *currency;
	EntryResult result;

	if (strcmp(shortfall, "error") != 0 && strcmp(shortfall, "debt") != 0 &&
		strcmp(shortfall, "forgive") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shortfall must be error, debt or forgive, not \"%s\"", shortfall)));
	customer = ArgInt64(fcinfo, 0, "customer");
	currency = ArgText(fcinfo, 1, "currency");
	EntryResultInit(&result, fcinfo);
	ReceiptTakeBack(customer, currency, lot_id, amount, ArgTextOrNull(fcinfo, 4, "receipt"),
					ArgTextOrNull(fcinfo, 5, "idempotency_key"), shortfall, &result);
	PG_RETURN_DATUM(result.datum);
}

/*
 * The entry of take_back, for cancel and refund: amount positive, shortfall
 * one of error, debt, forgive.  Returns the entry's amount (minus what was
 * taken).
 */
int64
ReceiptTakeBack(int64 customer, const char *currency, int64 lot_id, int64 amount,
				const char *receipt, const char *idempotency_key, const char *shortfall,
				EntryResult *result)
{
	Applicable	all = {true, 0, NULL};
	Entry		e = {0};
	Wallet		w;

	e.amount = -amount;
	e.operation = "refund";
	e.receipt_id = receipt;
	e.idempotency_key = idempotency_key;
	if (BeginWalletEntry(&w, customer, currency, WALLET_EXISTING, &e, false, result))
	{
		Lot		   *lots;
		int			nlots;
		Lot		   *own;
		int64		first = 0;
		int64		can;
		int64		take = amount;

		WalletTouch(&w, false, NULL);
		nlots = LoadLots(&w, &lots);
		can = Max(LotsAvailable(&w, lots, nlots, &all) - w.held, 0);
		if (can < amount)
		{
			if (strcmp(shortfall, "error") == 0)
				ReportInsufficient(&w, lots, nlots, &all, amount, w.held);
			take = can;
			e.amount = -take;
			if (strcmp(shortfall, "debt") == 0)
			{
				w.debt += amount - can;
				e.reason = psprintf(INT64_FORMAT " owed as debt: the points were spent", amount - can);
			}
			else
				e.reason = psprintf(INT64_FORMAT " not taken: the points were spent", amount - can);
		}
		/* the accrual's own lot first, then the others in redemption order */
		own = FindLot(lots, nlots, lot_id);
		if (own && LotEffective(&w, own))
		{
			first = Min(own->remaining, take);
			own->remaining -= first;
		}
		if (AllocateLots(&w, lots, nlots, &all, take - first) != take - first)
			ReportInsufficient(&w, lots, nlots, &all, amount, w.held);
		if (own && first > 0)
		{
			own->remaining += first;
			own->take += first;
		}
		e.lots = lots;
		e.nlots = nlots;
		WalletAppend(&w, &e, result);
	}
	DirectEnd();
	return e.amount;
}

/* One claimed row of the accrual queue */
typedef struct QueuedAccrual
{
	int64		id;
	int64		customer_id;
	char	   *currency;
	int64		amount;
	char	   *kind;
	int32		priority;
	bool		has_valid_to;
	TimestampTz valid_to;
	char	   *restriction;
	char	   *receipt_id;
	char	   *key;
	bool		held;			/* its customer is on fraud_hold */
} QueuedAccrual;

static char *
QueueText(int row, int column)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column);
}

static Datum
QueueDatum(int row, int column, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, isnull);
}

/*
 * Lock the wallet of a queued accrual without waiting for a checkout that
 * holds it.  Returns false if it is in use; a wallet merged away moves the
 * row to the surviving customer (released on a later pass); a missing one is
 * created.
 */
static bool
LockForRelease(Wallet *w, QueuedAccrual *q, bool *moved)
{
	Datum		args[2];

	*moved = false;
	if (WalletLock(w, q->customer_id, q->currency, WALLET_SKIP_LOCKED))
		return true;
	args[0] = Int64GetDatum(q->customer_id);
	args[1] = CStringGetTextDatum(q->currency);
	RunKept(&merged_query, args, NULL, 1);
	if (SPI_processed == 0)
		return WalletLock(w, q->customer_id, q->currency, WALLET_CREATE);
	{
		bool		isnull;
		Datum		target = QueueDatum(0, 1, &isnull);

		if (!isnull)
		{
			Datum		margs[2] = {Int64GetDatum(q->id), target};

			RunKept(&move_query, margs, NULL, 0);
			*moved = true;
		}
	}
	return false;
}

/*
 * release_accruals(time_budget) returns bigint: release the queue's rows
 * due at now() as lots and accrue entries, a chunk at a time claimed with
 * FOR UPDATE SKIP LOCKED (so that several workers share the queue), passing
 * over wallets in use, until nothing due is left that this call can take or
 * the budget is spent.  Each row's idempotency key makes a second release
 * of the same accrual a replay.  Returns how many rows were released.
 */
Datum
loyalty_release_accruals(PG_FUNCTION_ARGS)
{
	Interval   *budget = PG_ARGISNULL(0) ? NULL : PG_GETARG_INTERVAL_P(0);
	int64		budget_ms = 50 * 1000;
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	MemoryContext callcxt = CurrentMemoryContext;
	int64		released = 0;
	bool		stop = false;

	RequireEveryProgram("loyalty.release_accruals");
	if (budget)
	{
		int64		us = budget->time + (int64) budget->day * USECS_PER_DAY +
			(int64) budget->month * DAYS_PER_MONTH * USECS_PER_DAY;

		if (us <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time_budget must be positive")));
		budget_ms = Max(us / 1000, 1);
	}

	while (!stop)
	{
		Datum		args[2] = {TimestampTzGetDatum(now), Int64GetDatum(RELEASE_CHUNK)};
		QueuedAccrual *rows;
		Datum	   *done;
		Datum	   *held;
		int			nheld = 0;
		int			ndone = 0;
		int			nmoved = 0;
		int			n;

		/* one SPI and executor state per chunk, so a long run stays small */
		DirectBegin();
		RunKept(&claim_query, args, NULL, 0);
		n = (int) SPI_processed;
		rows = palloc(sizeof(QueuedAccrual) * Max(n, 1));
		done = palloc(sizeof(Datum) * Max(n, 1));
		held = palloc(sizeof(Datum) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			QueuedAccrual *q = &rows[i];
			bool		isnull;
			Datum		d;

			q->id = DatumGetInt64(QueueDatum(i, 1, &isnull));
			q->customer_id = DatumGetInt64(QueueDatum(i, 2, &isnull));
			q->currency = QueueText(i, 3);
			q->amount = DatumGetInt64(QueueDatum(i, 4, &isnull));
			q->kind = QueueText(i, 5);
			q->priority = DatumGetInt32(QueueDatum(i, 6, &isnull));
			d = QueueDatum(i, 7, &isnull);
			q->has_valid_to = !isnull;
			q->valid_to = isnull ? 0 : DatumGetTimestampTz(d);
			q->restriction = QueueText(i, 8);
			q->receipt_id = QueueText(i, 9);
			q->key = QueueText(i, 10);
			d = QueueDatum(i, 11, &isnull);
			q->held = !isnull && DatumGetBool(d) && FraudQueueHolds();
		}
		for (int i = 0; i < n; i++)
		{
			QueuedAccrual *q = &rows[i];
			Wallet		w;
			bool		moved;
			NewLot		lot = {0};
			Entry		e = {0};
			EntryResult replay;

			if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(),
										   (int) Min(budget_ms, PG_INT32_MAX)))
			{
				stop = true;
				break;
			}
			CHECK_FOR_INTERRUPTS();
			/* on hold as the customer is now, under a lock a release waits for */
			if (q->held && FraudStillHeld(q->customer_id))
			{
				held[nheld++] = Int64GetDatum(q->id);
				continue;
			}
			if (!LockForRelease(&w, q, &moved))
			{
				nmoved += moved;
				continue;
			}
			lot.amount = q->amount;
			lot.valid_from = now;
			lot.has_valid_to = q->has_valid_to && q->valid_to > now;
			lot.valid_to = q->valid_to;
			lot.kind = q->kind;
			lot.priority = q->priority;
			lot.restriction = q->restriction;
			e.operation = "accrue";
			e.amount = q->amount;
			e.new_lot = &lot;
			e.receipt_id = q->receipt_id;
			e.idempotency_key = q->key;
			EntryResultInit(&replay, NULL);
			if (!WalletReplay(&w, q->key, &e, true, &replay))
			{
				WalletTouch(&w, false, NULL);
				WalletAppend(&w, &e, NULL);
				WalletPayDebt(&w, e.lot_id, q->amount);
			}
			done[ndone++] = Int64GetDatum(q->id);
		}
		if (ndone > 0)
		{
			Datum		ids = PointerGetDatum(construct_array(done, ndone, INT8OID, 8,
															  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

			RunKept(&released_query, &ids, NULL, 0);
		}
		if (nheld > 0)
		{
			Datum		ids = PointerGetDatum(construct_array(held, nheld, INT8OID, 8,
															  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

			RunKept(&hold_query, &ids, NULL, 0);
		}
		released += ndone;
		/* nothing due is left, or all of it is in use elsewhere */
		if (n < RELEASE_CHUNK || (ndone == 0 && nmoved == 0 && nheld == 0))
			stop = true;
		DirectEnd();
		MemoryContextSwitchTo(callcxt);
	}
	PG_RETURN_INT64(released);
}

/*
 * Whether the receipt row names the ledger entries commit wrote
 * (entry_currency, entry_version: the schema of 0.18 on), which then carry
 * no keys; before, cancel and refund find them by their keys.
 */
bool
ReceiptNamesEntries(void)
{
	return ReceiptHasColumn("entry_version");
}

/* Whether the table of the extension has the column (the schema's version decides) */
bool
TableHasColumn(const char *table, const char *column)
{
	Oid			relid = get_relname_relid(table, get_namespace_oid("loyalty", false));

	return OidIsValid(relid) && get_attnum(relid, column) != InvalidAttrNumber;
}

/* Whether loyalty.receipt has the column */
bool
ReceiptHasColumn(const char *column)
{
	return TableHasColumn("receipt", column);
}

/* The programme's refund_shortfall and the exponent of its money */
void
ReceiptShortfallRules(int64 program_id, char **policy, int *exponent)
{
	Datum		values[1] = {Int64GetDatum(program_id)};
	bool		isnull;

	RunKept(&rules_query, values, NULL, 1);
	*policy = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*exponent = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/*
 * The receipt's id locked (a refund or cancel of it in progress is waited
 * for), or no_data_found if it was not committed; then its row read by
 * row_query ($1 the programme, $2 the receipt id, $3 its committed_at),
 * left in SPI_tuptable.  Returns committed_at.
 */
Datum
ReceiptLockRow(int64 program_id, const char *receipt, const char *program_code,
			   KeptQuery *row_query)
{
	Datum		values[3] = {Int64GetDatum(program_id), CStringGetTextDatum(receipt), (Datum) 0};
	bool		isnull;

	RunKept(&key_query, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("receipt \"%s\" of programme \"%s\" was not committed", receipt, program_code)));
	values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	RunKept(row_query, values, NULL, 1);
	if (SPI_processed != 1)
		elog(ERROR, "receipt \"%s\" has its key but no row", receipt);
	return values[2];
}

/* What points (minor units of a currency) are worth in minor units of money, rounded up */
int64
ReceiptPointsMoney(int64 program_id, const char *currency, int64 points)
{
	Datum		values[3] = {Int64GetDatum(program_id), CStringGetTextDatum(currency), Int64GetDatum(points)};
	bool		isnull;

	RunKept(&money_query, values, NULL, 1);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* The result of a cancel or refund: its event's payload, not replayed, and its ledger entries */
Jsonb *
ReceiptResult(Jsonb *payload, const ReceiptEntry *entries, int n)
{
	JsonBuild	jb = NULL;

	JbBeginObject(&jb, NULL);
	JbBool(&jb, "replayed", false);
	JbBeginArray(&jb, "ledger");
	for (int i = 0; i < n; i++)
	{
		JbBeginObject(&jb, NULL);
		JbText(&jb, "currency", entries[i].currency);
		JbText(&jb, "operation", "refund");
		JbInt(&jb, "amount", entries[i].amount);
		JbInt(&jb, "version", entries[i].version);
		JbEndObject(&jb);
	}
	JbEndArray(&jb);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(payload),
											  JsonbPGetDatum(JbFinish(&jb))));
}
