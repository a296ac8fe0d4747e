/*
 * src/hold.c
 *
 * Holds: points reserved for a payment in progress.  A hold counts against
 * what may be spent from the moment it is placed until it is captured,
 * released, or its deadline passes; past the deadline it stops counting on
 * every read, and the next touch of the wallet (or release_expired_holds)
 * records its release.  A hold resolves exactly once.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "direct.h"
#include "fraud.h"
#include "program.h"
#include "wallet.h"

PG_FUNCTION_INFO_V1(loyalty_hold);
PG_FUNCTION_INFO_V1(loyalty_capture);
PG_FUNCTION_INFO_V1(loyalty_release);

/* The longest a hold may last: a payment in progress, not a reservation */
#define HOLD_MAX_TTL_DAYS 31

static KeptQuery insert_query = {
	"INSERT INTO loyalty.hold (program_id, customer_id, currency, amount, applicable,"
	" expires_at, receipt_id, created_version)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
	8, {INT8OID, INT8OID, TEXTOID, INT8OID, TEXTARRAYOID, TIMESTAMPTZOID, TEXTOID, INT8OID}, NULL
};
static KeptQuery wallet_of_query = {
	"SELECT customer_id, currency FROM loyalty.hold WHERE id = $1",
	1, {INT8OID}, NULL
};
static KeptQuery read_query = {
	"SELECT status, amount, expires_at, applicable, receipt_id, captured, resolved_version"
	" FROM loyalty.hold WHERE id = $1",
	1, {INT8OID}, NULL
};
static KeptQuery resolve_query = {
	"UPDATE loyalty.hold SET status = $2, captured = $3, resolved_version = $4,"
	" resolved_at = now() WHERE id = $1",
	4, {INT8OID, TEXTOID, INT8OID, INT8OID}, NULL
};

typedef struct Hold
{
	int64		id;
	char	   *status;
	int64		amount;
	TimestampTz expires_at;
	ArrayType  *applicable;
	char	   *receipt_id;
	int64		resolved_version;
} Hold;

/*
 * hold(customer, currency, amount, ttl, applicable, receipt, expected_version,
 *      idempotency_key) returns the hold id
 */
Datum
loyalty_hold(PG_FUNCTION_ARGS)
{
	int64		customer = ArgInt64(fcinfo, 0, "customer");
	char	   *currency = ArgText(fcinfo, 1, "currency");
	int64		amount = ArgPositive(fcinfo, 2, "amount");
	Interval   *ttl = PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3);
	ArrayType  *applicable = PG_ARGISNULL(4) ? NULL : PG_GETARG_ARRAYTYPE_P(4);
	Applicable	app;
	Entry		e = {0};
	EntryResult result;
	Wallet		w;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz expires_at;
	int64		hold_id;

	if (ttl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ttl must not be null")));
	expires_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														 TimestampTzGetDatum(now),
														 IntervalPGetDatum(ttl)));
	if (expires_at <= now || expires_at > now + HOLD_MAX_TTL_DAYS * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be positive and at most %d days", HOLD_MAX_TTL_DAYS)));
	ApplicableFromArray(&app, applicable);
	e.operation = "hold";
	e.held_amount = amount;
	e.receipt_id = ArgTextOrNull(fcinfo, 5, "receipt");
	e.idempotency_key = ArgTextOrNull(fcinfo, 7, "idempotency_key");
	EntryResultInit(&result, fcinfo);

	DirectBegin();
	WalletLock(&w, customer, currency, WALLET_CREATE | WALLET_SPEND);
	if (e.idempotency_key && WalletReplay(&w, e.idempotency_key, &e, true, &result))
		hold_id = result.hold_id;
	else
	{
		Datum		args[8];
		char		nulls[8] = "        ";
		bool		isnull;

		WalletCheckVersion(&w, fcinfo, 6);
		WalletCheckSpending(&w);
		WalletTouch(&w, false, NULL);
		RequirePoints(&w, &app, amount, w.held);
		args[0] = Int64GetDatum(w.program_id);
		args[1] = Int64GetDatum(customer);
		args[2] = CStringGetTextDatum(currency);
		args[3] = Int64GetDatum(amount);
		args[4] = PointerGetDatum(applicable);
		nulls[4] = applicable ? ' ' : 'n';
		args[5] = TimestampTzGetDatum(expires_at);
		args[6] = e.receipt_id ? CStringGetTextDatum(e.receipt_id) : 0;
		nulls[6] = e.receipt_id ? ' ' : 'n';
		args[7] = Int64GetDatum(w.version + 1);
		RunKept(&insert_query, args, nulls, 1);
		hold_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											  1, &isnull));
		e.hold_id = hold_id;
		WalletAppend(&w, &e, &result);
		FraudCheckLedger(w.program_id, FO_HOLD, customer, currency, amount, e.idempotency_key);
	}
	DirectEnd();
	PG_RETURN_INT64(hold_id);
}

/* Lock the wallet of hold id and read the hold as it is under the lock */
static void
LockHold(int64 id, Wallet *w, Hold *h)
{
	Datum		arg = Int64GetDatum(id);
	TupleDesc	desc;
	HeapTuple	row;
	bool		isnull;
	Datum		d;
	int64		customer;
	char	   *currency;

	RunKept(&wallet_of_query, &arg, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("hold " INT64_FORMAT " does not exist", id)));
	customer = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	currency = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	WalletLock(w, customer, currency, WALLET_EXISTING | WALLET_SPEND);

	RunKept(&read_query, &arg, NULL, 1);
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	h->id = id;
	h->status = SPI_getvalue(row, desc, 1);
	h->amount = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	h->expires_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 3, &isnull));
	d = SPI_getbinval(row, desc, 4, &isnull);
	h->applicable = isnull ? NULL : DatumGetArrayTypePCopy(d);
	h->receipt_id = SPI_getvalue(row, desc, 5);
	d = SPI_getbinval(row, desc, 7, &isnull);
	h->resolved_version = isnull ? 0 : DatumGetInt64(d);
}

/* A hold that is captured, released or past its deadline cannot be resolved again */
static void
CheckHoldActive(Wallet *w, Hold *h, const char *action)
{
	if (strcmp(h->status, "active") != 0 && strcmp(h->status, "expired") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_HOLD_RESOLVED),
				 errmsg("cannot %s hold " INT64_FORMAT ": it was %s at version " INT64_FORMAT,
						action, h->id, h->status, h->resolved_version),
				 errhint("A hold is captured or released once.")));
	if (strcmp(h->status, "expired") == 0 || h->expires_at <= w->now)
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_HOLD_EXPIRED),
				 errmsg("cannot %s hold " INT64_FORMAT ": it expired at %s",
						action, h->id, timestamptz_to_str(h->expires_at)),
				 errhint("Its points are no longer reserved; place a new hold.")));
}

/* Mark the hold resolved by the entry about to be appended */
static void
ResolveHold(Wallet *w, Hold *h, const char *status, int64 captured)
{
	Datum		args[4] = {Int64GetDatum(h->id), CStringGetTextDatum(status),
	Int64GetDatum(captured), Int64GetDatum(w->version + 1)};

	RunKept(&resolve_query, args, captured ? NULL : "  n ", 0);
}

/* capture(hold, amount default all, idempotency_key) returns ledger */
Datum
loyalty_capture(PG_FUNCTION_ARGS)
{
	int64		id = ArgInt64(fcinfo, 0, "hold");
	Entry		e = {0};
	EntryResult result;
	Wallet		w;
	Hold		h;

	if (!PG_ARGISNULL(1))
		ArgPositive(fcinfo, 1, "amount");
	e.operation = "capture";
	e.hold_id = id;
	e.idempotency_key = ArgTextOrNull(fcinfo, 2, "idempotency_key");
	EntryResultInit(&result, fcinfo);

	DirectBegin();
	LockHold(id, &w, &h);
	/* a replay must ask for what the first call took */
	e.amount = -(PG_ARGISNULL(1) ? h.amount : PG_GETARG_INT64(1));
	e.held_amount = -h.amount;
	if (!e.idempotency_key || !WalletReplay(&w, e.idempotency_key, &e, true, &result))
	{
		int64		amount = -e.amount;
		Applicable	app;

		CheckHoldActive(&w, &h, "capture");
		if (amount > h.amount)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot capture " INT64_FORMAT " from hold " INT64_FORMAT " of " INT64_FORMAT,
							amount, id, h.amount)));
		WalletCheckSpending(&w);
		WalletTouch(&w, false, NULL);
		ApplicableFromArray(&app, h.applicable);
		TakePoints(&w, &app, amount, w.held - h.amount, &e);
		ResolveHold(&w, &h, "captured", amount);
		e.receipt_id = h.receipt_id;
		WalletAppend(&w, &e, &result);
	}
	DirectEnd();
	PG_RETURN_DATUM(result.datum);
}

/* release(hold, idempotency_key) returns ledger */
Datum
loyalty_release(PG_FUNCTION_ARGS)
{
	int64		id = ArgInt64(fcinfo, 0, "hold");
	Entry		e = {0};
	EntryResult result;
	Wallet		w;
	Hold		h;

	e.operation = "release";
	e.hold_id = id;
	e.idempotency_key = ArgTextOrNull(fcinfo, 1, "idempotency_key");
	EntryResultInit(&result, fcinfo);

	DirectBegin();
	LockHold(id, &w, &h);
	e.held_amount = -h.amount;
	if (!e.idempotency_key || !WalletReplay(&w, e.idempotency_key, &e, true, &result))
	{
		CheckHoldActive(&w, &h, "release");
		WalletTouch(&w, false, NULL);
		ResolveHold(&w, &h, "released", 0);
		e.receipt_id = h.receipt_id;
		WalletAppend(&w, &e, &result);
	}
	DirectEnd();
	PG_RETURN_DATUM(result.datum);
}
