/*
 * src/ledger.c
 *
 * The SQL-callable operations on points: accrue, redeem, adjust, transfer,
 * convert, the merge of wallets, the sweeps and the balance.  Each one locks
 * the wallets it changes (wallet.c), records what has expired in them, checks
 * what may be spent, and appends its ledger entries; a repeated idempotency
 * key returns the first entry and writes nothing.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "access.h"
#include "direct.h"
#include "fraud.h"
#include "program.h"
#include "wallet.h"

PG_FUNCTION_INFO_V1(loyalty_accrue);
PG_FUNCTION_INFO_V1(loyalty_redeem);
PG_FUNCTION_INFO_V1(loyalty_adjust);
PG_FUNCTION_INFO_V1(loyalty_transfer);
PG_FUNCTION_INFO_V1(loyalty_convert);
PG_FUNCTION_INFO_V1(loyalty_merge_wallets);
PG_FUNCTION_INFO_V1(loyalty_expire_due);
PG_FUNCTION_INFO_V1(loyalty_release_expired_holds);
PG_FUNCTION_INFO_V1(loyalty_balance);

static KeptQuery exponent_query = {
	"SELECT exponent::int4 FROM loyalty.currency WHERE program_id = $1 AND code = $2",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery wallets_of_query = {
	"SELECT currency FROM loyalty.wallet WHERE customer_id = $1 AND merged_into IS NULL"
	" ORDER BY currency",
	1, {INT8OID}, NULL
};
static KeptQuery balance_customer_query = {
	"SELECT c.merged_into,"
	" (SELECT p.code FROM loyalty.program p WHERE p.id = c.program_id),"
	" $2::text IS NULL OR EXISTS (SELECT 1 FROM loyalty.currency k"
	"                              WHERE k.program_id = c.program_id AND k.code = $2),"
	" c.program_id"
	" FROM loyalty.customer c WHERE c.id = $1",
	2, {INT8OID, TEXTOID}, NULL
};
static KeptQuery balance_query = {
	"SELECT k.code, COALESCE(b.balance, 0), COALESCE(b.held, 0), COALESCE(b.available, 0),"
	" COALESCE(b.pending, 0), COALESCE(b.restricted, 0), b.next_expiry_at,"
	" COALESCE(b.next_expiry_amount, 0), COALESCE(b.version, 0)"
	" FROM loyalty.customer c"
	" JOIN loyalty.currency k ON k.program_id = c.program_id"
	" LEFT JOIN loyalty.balances b ON b.customer_id = c.id AND b.currency = k.code"
	" WHERE c.id = $1 AND ($2::text IS NULL OR k.code = $2)"
	" ORDER BY k.code",
	2, {INT8OID, TEXTOID}, NULL
};

/* A required bigint argument */
int64
ArgInt64(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	return PG_GETARG_INT64(argno);
}

/* A required amount of points: a positive bigint */
int64
ArgPositive(FunctionCallInfo fcinfo, int argno, const char *name)
{
	int64		value = ArgInt64(fcinfo, argno, name);

	if (value <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be positive, not " INT64_FORMAT, name, value),
				 errhint("Amounts are whole minor units of the currency.")));
	return value;
}

/* A text argument, never empty; NULL allowed unless required */
static char *
TextArg(FunctionCallInfo fcinfo, int argno, const char *name, bool required)
{
	char	   *value;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", name)));
		return NULL;
	}
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name),
				 required ? 0 : errhint("Pass NULL to leave it out.")));
	return value;
}

/* An optional text argument; NULL when absent, an error when empty */
char *
ArgTextOrNull(FunctionCallInfo fcinfo, int argno, const char *name)
{
	return TextArg(fcinfo, argno, name, false);
}

/* A required, non-empty text argument */
char *
ArgText(FunctionCallInfo fcinfo, int argno, const char *name)
{
	return TextArg(fcinfo, argno, name, true);
}

/* An optional timestamptz argument, which must be finite */
static bool
ArgTimestamp(FunctionCallInfo fcinfo, int argno, const char *name, TimestampTz *value)
{
	if (PG_ARGISNULL(argno))
		return false;
	*value = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_NOT_FINITE(*value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite time", name),
				 errhint("Pass NULL for a lot that never expires.")));
	return true;
}

/* Lot kinds are short lower-case names */
static void
CheckKind(const char *kind)
{
	int			i;
	bool		ok = kind[0] >= 'a' && kind[0] <= 'z' && strlen(kind) <= 32;

	for (i = 1; ok && kind[i]; i++)
		ok = (kind[i] >= 'a' && kind[i] <= 'z') || (kind[i] >= '0' && kind[i] <= '9') ||
			kind[i] == '_';
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lot kind \"%s\" is not valid", kind),
				 errhint("A kind is a lower-case name of up to 32 letters, digits and _, such as regular, birthday or promo.")));
}

/*
 * Start an operation on the wallet of arguments 0 and 1 (customer,
 * currency): begin, lock it, and replay e's idempotency key.  Returns true
 * if the operation is to be done, false if the key replayed its first entry
 * into result.  DirectEnd finishes either way.
 */
static bool
BeginOperation(Wallet *w, FunctionCallInfo fcinfo, WalletLockMode mode, Entry *e,
			   EntryResult *result)
{
	int64		customer = ArgInt64(fcinfo, 0, "customer");
	char	   *currency = ArgText(fcinfo, 1, "currency");

	return BeginWalletEntry(w, customer, currency, mode, e, true, result);
}

/* The same for a wallet named by the caller */
bool
BeginWalletEntry(Wallet *w, int64 customer, const char *currency, WalletLockMode mode,
				 Entry *e, bool check_amounts, EntryResult *result)
{
	DirectBegin();
	WalletLock(w, customer, currency, mode);
	return !e->idempotency_key || !WalletReplay(w, e->idempotency_key, e, check_amounts, result);
}

/*
 * Accrue a lot into the customer's wallet (created if missing): one
 * "accrue" entry, what it owes paid first.  result receives the entry.
 */
int64
LedgerAccrue(int64 customer, const char *currency, NewLot *lot, const char *receipt,
			 const char *idempotency_key, const char *reason, EntryResult *result)
{
	Entry		e = {0};
	Wallet		w;

	e.new_lot = lot;
	e.operation = "accrue";
	e.amount = lot->amount;
	e.receipt_id = receipt;
	e.idempotency_key = idempotency_key;
	e.reason = reason;
	if (BeginWalletEntry(&w, customer, currency, WALLET_CREATE, &e, true, result))
	{
		WalletTouch(&w, false, NULL);
		WalletAppend(&w, &e, result);
		WalletPayDebt(&w, e.lot_id, lot->amount);
	}
	DirectEnd();
	return e.lot_id;
}

/*
 * accrue(customer, currency, amount, valid_from, valid_to, kind, priority,
 *        restriction, receipt, idempotency_key, reason) returns ledger
 */
Datum
loyalty_accrue(PG_FUNCTION_ARGS)
{
	int64		amount = ArgPositive(fcinfo, 2, "amount");
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz valid_from = now;
	TimestampTz valid_to = 0;
	bool		has_valid_to;
	char	   *kind = ArgText(fcinfo, 5, "kind");
	int32		priority = PG_ARGISNULL(6) ? 0 : PG_GETARG_INT32(6);
	char	   *restriction = ArgTextOrNull(fcinfo, 7, "restriction");
	NewLot		lot = {0};
	EntryResult result;
	const char *receipt;
	const char *key;
	const char *reason;
	int64		customer;
	const char *currency;

	ArgTimestamp(fcinfo, 3, "valid_from", &valid_from);
	has_valid_to = ArgTimestamp(fcinfo, 4, "valid_to", &valid_to);
	if (has_valid_to && valid_to <= valid_from)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("valid_to must be later than valid_from")));
	if (has_valid_to && valid_to <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the lot would have expired already: valid_to is not after now()")));
	CheckKind(kind);
	lot.amount = amount;
	lot.valid_from = valid_from;
	lot.has_valid_to = has_valid_to;
	lot.valid_to = valid_to;
	lot.kind = kind;
	lot.priority = priority;
	lot.restriction = restriction;
	receipt = ArgTextOrNull(fcinfo, 8, "receipt");
	key = ArgTextOrNull(fcinfo, 9, "idempotency_key");
	reason = ArgTextOrNull(fcinfo, 10, "reason");
	customer = ArgInt64(fcinfo, 0, "customer");
	currency = ArgText(fcinfo, 1, "currency");
	EntryResultInit(&result, fcinfo);
	LedgerAccrue(customer, currency, &lot, receipt, key, reason, &result);
	PG_RETURN_DATUM(result.datum);
}

/*
 * redeem(customer, currency, amount, applicable, receipt, expected_version,
 *        idempotency_key, reason) returns ledger
 */
Datum
loyalty_redeem(PG_FUNCTION_ARGS)
{
	int64		amount = ArgPositive(fcinfo, 2, "amount");
	Applicable	app;
	Entry		e = {0};
	EntryResult result;
	Wallet		w;

	ApplicableFromArray(&app, PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3));
	e.operation = "redeem";
	e.amount = -amount;
	e.receipt_id = ArgTextOrNull(fcinfo, 4, "receipt");
	e.idempotency_key = ArgTextOrNull(fcinfo, 6, "idempotency_key");
	e.reason = ArgTextOrNull(fcinfo, 7, "reason");
	EntryResultInit(&result, fcinfo);

	if (BeginOperation(&w, fcinfo, WALLET_CREATE | WALLET_SPEND, &e, &result))
	{
		WalletCheckVersion(&w, fcinfo, 5);
		WalletCheckSpending(&w);
		WalletTouch(&w, false, NULL);
		TakePoints(&w, &app, amount, w.held, &e);
		WalletAppend(&w, &e, &result);
		FraudCheckLedger(w.program_id, FO_REDEEM, w.customer_id, w.currency, amount, e.idempotency_key);
	}
	DirectEnd();
	PG_RETURN_DATUM(result.datum);
}

/*
 * adjust(customer, currency, delta, reason, actor, valid_to, expected_version,
 *        idempotency_key) returns ledger
 */
Datum
loyalty_adjust(PG_FUNCTION_ARGS)
{
	int64		delta = ArgInt64(fcinfo, 2, "delta");
	TimestampTz valid_to = 0;
	bool		has_valid_to = ArgTimestamp(fcinfo, 5, "valid_to", &valid_to);
	Applicable	everything = {true, 0, NULL};
	NewLot		lot = {0};
	Entry		e = {0};
	EntryResult result;
	Wallet		w;

	if (delta == 0 || delta == PG_INT64_MIN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("delta must be a non-zero amount, not " INT64_FORMAT, delta)));
	if (has_valid_to && (delta < 0 || valid_to <= GetCurrentTransactionStartTimestamp()))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("valid_to must be later than now() and is only for a positive delta")));
	e.operation = "adjust";
	e.amount = delta;
	e.reason = ArgText(fcinfo, 3, "reason");
	e.actor = ArgTextOrNull(fcinfo, 4, "actor");
	e.idempotency_key = ArgTextOrNull(fcinfo, 7, "idempotency_key");
	EntryResultInit(&result, fcinfo);

	if (BeginOperation(&w, fcinfo, WALLET_CREATE, &e, &result))
	{
		WalletCheckVersion(&w, fcinfo, 6);
		WalletTouch(&w, false, NULL);
		if (delta > 0)
		{
			lot.amount = delta;
			lot.valid_from = w.now;
			lot.has_valid_to = has_valid_to;
			lot.valid_to = valid_to;
			lot.kind = "adjustment";
			e.new_lot = &lot;
		}
		else
			TakePoints(&w, &everything, -delta, w.held, &e);
		WalletAppend(&w, &e, &result);
		FraudCheckLedger(w.program_id, FO_ADJUST, w.customer_id, w.currency, delta, e.idempotency_key);
	}
	DirectEnd();
	PG_RETURN_DATUM(result.datum);
}

/*
 * Re-create in wallet b, for its entry about to be appended, the points taken
 * from lots (their take, or with shares given, shares[i]) with each lot's
 * window, priority and restriction.
 */
static void
CopyLots(Wallet *b, Lot *lots, int n, int64 *shares, const char *kind)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		int64		amount = shares ? shares[i] : lots[i].take;
		NewLot		lot;

		if (amount <= 0)
			continue;
		LotToNew(&lots[i], amount, kind, &lot);
		CreateLot(b, b->version + 1, &lot);
	}
}

/*
 * Move the takes of a's lots to b, each with its window, as the
 * transfer_out / transfer_in pair of entries.
 */
static void
AppendTransfer(Wallet *a, Wallet *b, Lot *lots, int n, int64 amount,
			   const char *key, const char *reason, EntryResult *result)
{
	Entry		out = {0};
	Entry		in = {0};

	CopyLots(b, lots, n, NULL, NULL);
	out.operation = "transfer_out";
	out.lots = lots;
	out.nlots = n;
	out.amount = -amount;
	out.peer_customer_id = b->customer_id;
	out.idempotency_key = key;
	out.reason = reason;
	in.operation = "transfer_in";
	in.amount = amount;
	in.peer_customer_id = a->customer_id;
	in.reason = reason;
	WalletAppend(a, &out, result);
	WalletAppend(b, &in, NULL);
}

/* Points move only between customers of one programme */
static void
CheckSameProgram(Wallet *a, Wallet *b)
{
	if (a->program_id != b->program_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customers " INT64_FORMAT " and " INT64_FORMAT " belong to different programmes",
						a->customer_id, b->customer_id)));
}

/*
 * transfer(from_customer, to_customer, currency, amount, reason,
 *          idempotency_key) returns the transfer_out entry
 */
Datum
loyalty_transfer(PG_FUNCTION_ARGS)
{
	int64		from = ArgInt64(fcinfo, 0, "from_customer");
	int64		to = ArgInt64(fcinfo, 1, "to_customer");
	char	   *currency = ArgText(fcinfo, 2, "currency");
	int64		amount = ArgPositive(fcinfo, 3, "amount");
	char	   *reason;
	Applicable	everything = {true, 0, NULL};
	Entry		expect = {0};
	EntryResult result;
	Wallet		a;
	Wallet		b;

	if (from == to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot transfer points from customer " INT64_FORMAT " to itself", from)));
	reason = ArgText(fcinfo, 4, "reason");	/* a manual change says why */
	expect.operation = "transfer_out";
	expect.amount = -amount;
	expect.peer_customer_id = to;
	expect.idempotency_key = ArgTextOrNull(fcinfo, 5, "idempotency_key");
	EntryResultInit(&result, fcinfo);

	DirectBegin();
	WalletLockPair(&a, from, currency, &b, to, currency, WALLET_CREATE);
	CheckSameProgram(&a, &b);
	if (!expect.idempotency_key ||
		!WalletReplay(&a, expect.idempotency_key, &expect, true, &result))
	{
		WalletCheckSpending(&a);
		WalletTouch(&a, false, NULL);
		WalletTouch(&b, false, NULL);
		TakePoints(&a, &everything, amount, a.held, &expect);
		AppendTransfer(&a, &b, expect.lots, expect.nlots, amount, expect.idempotency_key,
					   reason, &result);
		FraudCheckLedger(a.program_id, FO_TRANSFER_OUT, from, currency, amount, expect.idempotency_key);
		FraudCheckLedger(b.program_id, FO_TRANSFER_IN, to, currency, amount, expect.idempotency_key);
	}
	DirectEnd();
	PG_RETURN_DATUM(result.datum);
}

/* Digits of minor units of a currency of the wallet's programme */
static int
CurrencyExponent(Wallet *w)
{
	Datum		args[2] = {Int64GetDatum(w->program_id), CStringGetTextDatum(w->currency)};
	bool		isnull;

	RunKept(&exponent_query, args, NULL, 1);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* floor(points * rate * 10^shift) as a bigint (22003 if out of range) */
static int64
ConvertAmount(int64 points, Numeric rate, int shift)
{
	Datum		scale = DirectFunctionCall3(numeric_in, CStringGetDatum(psprintf("1e%d", shift)),
											ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	Datum		x = DirectFunctionCall1(int8_numeric, Int64GetDatum(points));

	Datum		top = DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MAX));

	x = DirectFunctionCall2(numeric_mul, x, NumericGetDatum(rate));
	x = DirectFunctionCall2(numeric_mul, x, scale);
	x = DirectFunctionCall1(numeric_floor, x);
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, x, top)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("converting " INT64_FORMAT " points at this rate is out of range", points),
				 errhint("Check the rate: it is whole target points per whole source point.")));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, x));
}

/*
 * Spread total over the lots in proportion to their take, by largest
 * remainder, so that the shares add up exactly.
 */
static int64 *
SpreadOverLots(Lot *lots, int n, int64 taken, int64 total)
{
	int64	   *shares = palloc0(sizeof(int64) * Max(n, 1));
	int128	   *remainders = palloc0(sizeof(int128) * Max(n, 1));
	int64		given = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		int128		product = (int128) lots[i].take * total;

		shares[i] = (int64) (product / taken);
		remainders[i] = product % taken;
		given += shares[i];
	}
	while (given < total)
	{
		int			best = -1;

		for (i = 0; i < n; i++)
			if (lots[i].take > 0 && (best < 0 || remainders[i] > remainders[best]))
				best = i;
		shares[best]++;
		remainders[best] = -1;
		given++;
	}
	return shares;
}

/*
 * convert(customer, from_currency, to_currency, rate, reason,
 *         idempotency_key) returns the source entry, or NULL if there was
 *         nothing to convert
 */
Datum
loyalty_convert(PG_FUNCTION_ARGS)
{
	int64		customer = ArgInt64(fcinfo, 0, "customer");
	char	   *from = ArgText(fcinfo, 1, "from_currency");
	char	   *to = ArgText(fcinfo, 2, "to_currency");
	Numeric		rate;
	Entry		out = {0};
	Entry		in = {0};
	EntryResult result;
	Wallet		a;
	Wallet		b;

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rate must not be null")));
	rate = PG_GETARG_NUMERIC(3);
	if (numeric_is_nan(rate) || numeric_is_inf(rate) ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(rate),
										  DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate must be a positive number")));
	if (strcmp(from, to) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot convert \"%s\" to itself", from)));
	out.operation = "convert";
	out.peer_currency = to;
	out.reason = ArgText(fcinfo, 4, "reason");	/* a manual change says why */
	out.idempotency_key = ArgTextOrNull(fcinfo, 5, "idempotency_key");
	in.operation = "convert";
	in.peer_currency = from;
	in.reason = out.reason;
	EntryResultInit(&result, fcinfo);

	DirectBegin();
	WalletLockPair(&a, customer, from, &b, customer, to, WALLET_CREATE);
	if (!out.idempotency_key || !WalletReplay(&a, out.idempotency_key, &out, false, &result))
	{
		Lot		   *lots;
		int			n;
		int			i;
		int64		taken = 0;

		WalletCheckSpending(&a);
		WalletTouch(&a, false, NULL);
		WalletTouch(&b, false, NULL);
		if (a.held > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("customer " INT64_FORMAT " has " INT64_FORMAT " \"%s\" on hold",
							customer, a.held, from),
					 errhint("Capture or release the holds before converting.")));
		n = LoadLots(&a, &lots);
		for (i = 0; i < n; i++)
		{
			lots[i].take = lots[i].remaining;
			taken += lots[i].take;
		}
		if (taken > 0)
		{
			int64		total = ConvertAmount(taken, rate,
											  CurrencyExponent(&b) - CurrencyExponent(&a));

			if (total == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("converting " INT64_FORMAT " \"%s\" at this rate gives no \"%s\"",
								taken, from, to),
						 errhint("Check the rate: it is whole target points per whole source point.")));

			if (total > 0)
				CopyLots(&b, lots, n, SpreadOverLots(lots, n, taken, total), "converted");
			out.lots = lots;
			out.nlots = n;
			out.amount = -taken;
			in.amount = total;
			WalletAppend(&a, &out, &result);
			if (total > 0)
				WalletAppend(&b, &in, NULL);
		}
	}
	DirectEnd();
	if (result.isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result.datum);
}

/*
 * merge_wallets(source, target, reason) returns the wallets moved: every
 * lot of every wallet of source, pending and restricted ones too, moves to
 * target's wallet of the same currency with its window; the source wallets
 * are closed.  The caller (merge_customers) has locked both customers.
 */
Datum
loyalty_merge_wallets(PG_FUNCTION_ARGS)
{
	int64		source = ArgInt64(fcinfo, 0, "source");
	int64		target = ArgInt64(fcinfo, 1, "target");
	char	   *reason = ArgText(fcinfo, 2, "reason");
	Datum		arg = Int64GetDatum(source);
	char	  **currencies;
	int			n;
	int			i;

	if (source == target)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot merge customer " INT64_FORMAT " into itself", source)));
	DirectBegin();
	RunKept(&wallets_of_query, &arg, NULL, 0);
	n = (int) SPI_processed;
	currencies = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		currencies[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	for (i = 0; i < n; i++)
	{
		Wallet		a;
		Wallet		b;
		Lot		   *lots;
		int			m;
		int			j;
		int64		taken = 0;

		WalletLockPair(&a, source, currencies[i], &b, target, currencies[i], WALLET_CREATE);
		CheckSameProgram(&a, &b);
		WalletTouch(&a, false, NULL);
		WalletTouch(&b, false, NULL);
		if (a.held > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("customer " INT64_FORMAT " has " INT64_FORMAT " \"%s\" on hold",
							source, a.held, currencies[i]),
					 errhint("Capture or release the holds before merging.")));
		m = LoadLots(&a, &lots);
		for (j = 0; j < m; j++)
		{
			lots[j].take = lots[j].remaining;
			taken += lots[j].take;
		}
		if (taken > 0)
			AppendTransfer(&a, &b, lots, m, taken, NULL, reason, NULL);
		WalletSetMerged(&a, target);
	}
	DirectEnd();
	PG_RETURN_INT32(n);
}

/* expire_due(batch_limit, time_budget) returns the lots recorded as expired */
Datum
loyalty_expire_due(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(WalletSweep(fcinfo, false));
}

/* release_expired_holds(batch_limit, time_budget) returns the holds released */
Datum
loyalty_release_expired_holds(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(WalletSweep(fcinfo, true));
}

/*
 * balance(customer, currency default NULL): one row per currency of the
 * customer's programme, read from loyalty.balances without locking.
 */
Datum
loyalty_balance(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		customer = ArgInt64(fcinfo, 0, "customer");
	char	   *currency = ArgTextOrNull(fcinfo, 1, "currency");
	Datum		args[2] = {Int64GetDatum(customer), currency ? CStringGetTextDatum(currency) : 0};
	const char *nulls = currency ? NULL : " n";
	bool		isnull;
	Datum		merged;
	uint64		i;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	RunKept(&balance_customer_query, args, nulls, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("customer " INT64_FORMAT " does not exist", customer)));
	RequireProgram(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)),
				   "customer " INT64_FORMAT, customer);
	merged = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		ReportMerged(customer, DatumGetInt64(merged));
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("currency \"%s\" does not exist in programme \"%s\"", currency,
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
				 errhint("SELECT code FROM loyalty.currency lists the currencies.")));
	RunKept(&balance_query, args, nulls, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		values[9];
		bool		isnulls[9];

		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, isnulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnulls);
	}
	SPI_finish();
	return (Datum) 0;
}
