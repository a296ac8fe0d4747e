/*
 * src/cancel.c
 *
 * loyalty.cancel(program, receipt_id, reason): a committed receipt undone
 * as a whole, in one transaction (docs/receipts.md).  The receipt's id is
 * locked first (a cancel racing a refund or another cancel of it waits),
 * then, before any wallet, its accruals still queued are removed (a
 * release never waits for a wallet); then the customer's wallets are
 * locked in the one order, the points it spent go back to the lots that
 * paid (ReceiptReturnLots), the accruals already released are taken back
 * (ReceiptTakeBack: what was spent since is owed or kept in money, as the
 * programme's refund_shortfall says), and the coupon, personal offer and
 * counter uses are given back.  The result is kept on the receipt: a second
 * cancel returns it with "replayed": true and writes nothing.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "campaigns.h"
#include "direct.h"
#include "event.h"
#include "jsonbuild.h"
#include "jsonread.h"
#include "program.h"
#include "wallet.h"

PG_FUNCTION_INFO_V1(loyalty_cancel);

#define RECEIPT_ROW(entries) \
	"SELECT status, cancel_result, customer_id, points_spent, accruals, coupons, offers, counters," \
	entries \
	"  FROM loyalty.receipt t" \
	" WHERE t.program_id = $1 AND t.receipt_id = $2 AND t.committed_at = $3"
static KeptQuery receipt_query = {
	RECEIPT_ROW(RECEIPT_ENTRY_COLUMNS), 3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
/* the schema before 0.18: commit's entries are found by their keys alone */
static KeptQuery receipt_query_0_17 = {
	RECEIPT_ROW(RECEIPT_ENTRY_COLUMNS_0_17), 3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery dequeue_query = {
	"WITH gone AS (DELETE FROM loyalty.accrual_queue q"
	"               WHERE q.program_id = $1 AND q.receipt_id = $2 RETURNING q.idempotency_key)"
	" SELECT COALESCE(pg_catalog.array_agg(g.idempotency_key), '{}') FROM gone g",
	2, {INT8OID, TEXTOID}, NULL
};
/*
 * The redemption of each currency the receipt spent: among the entries the
 * receipt names ($4, $5: currency and version in the wallets of customer
 * $6), or by its key (receipts committed before 0.18)
 */
static KeptQuery spent_query = {
	"SELECT e.currency, e.lot_ids, e.lot_amounts FROM" RECEIPT_NAMED_ENTRIES
	" WHERE e.operation = 'redeem'"
	" UNION ALL "
	"SELECT l.currency, l.lot_ids, l.lot_amounts"
	"  FROM pg_catalog.jsonb_object_keys($2) c (currency)"
	"  JOIN loyalty.ledger l ON l.program_id = $1"
	"   AND l.idempotency_key = ('loyalty:redeem:' || $3 || ':' || c.currency)"
	" ORDER BY 1",
	6, {INT8OID, JSONBOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID, INT8OID}, NULL
};
/*
 * The accruals released: at commit (among the entries the receipt names),
 * or from the queue, by their keys (those dequeued just now are not)
 */
static KeptQuery released_query = {
	"SELECT e.currency, e.lot_id, e.amount FROM" RECEIPT_NAMED_ENTRIES
	" WHERE e.operation = 'accrue'"
	" UNION ALL "
	"SELECT l.currency, l.lot_id, l.amount"
	"  FROM pg_catalog.jsonb_array_elements($2) a"
	"  JOIN loyalty.ledger l ON l.program_id = $1 AND l.idempotency_key = (a ->> 'key')"
	" WHERE (a ->> 'key') <> ALL ($3)"
	" ORDER BY 1, 2",
	6, {INT8OID, JSONBOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8OID}, NULL
};
static KeptQuery coupons_query = {
	"UPDATE loyalty.coupon o"
	"   SET uses = o.uses - 1,"
	"       state = CASE WHEN o.state = 'redeemed' THEN 'issued' ELSE o.state END"
	" WHERE o.program_id = $1"
	"   AND pg_catalog.lower(o.code) = ANY (SELECT pg_catalog.lower(c) FROM pg_catalog.unnest($2) c)"
	"   AND o.uses > 0",
	2, {INT8OID, TEXTARRAYOID}, NULL
};
static KeptQuery offers_query = {
	"UPDATE loyalty.personal_offer o SET uses_left = o.uses_left + 1"
	" WHERE o.customer_id = $1 AND o.promotion_id = ANY ($2) AND o.uses_left IS NOT NULL",
	2, {INT8OID, INT8ARRAYOID}, NULL
};
static KeptQuery counters_query = {
	"SELECT loyalty.return_counter_uses($1)",
	1, {JSONBOID}, NULL
};
static KeptQuery cancelled_query = {
	"UPDATE loyalty.receipt t"
	"   SET status = 'cancelled', cancelled_at = pg_catalog.now(), cancel_reason = $4,"
	"       cancel_result = $5"
	" WHERE t.program_id = $1 AND t.receipt_id = $2 AND t.committed_at = $3",
	5, {INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, JSONBOID}, NULL
};

/* Points owed per currency */
typedef struct Owed
{
	char	   *currency;
	int64		points;
} Owed;

static Datum
Col(int row, int column, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, isnull);
}

/* Each int8 of an array column */
static int
Int8s(Datum array, int64 **out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(array), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	*out = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			elog(ERROR, "a ledger entry's lot array holds a null");
		(*out)[i] = DatumGetInt64(elems[i]);
	}
	return n;
}

static void
AddOwed(Owed *owed, int *nowed, const char *currency, int64 points)
{
	for (int i = 0; i < *nowed; i++)
		if (strcmp(owed[i].currency, currency) == 0)
		{
			owed[i].points += points;
			return;
		}
	owed[*nowed].currency = pstrdup(currency);
	owed[(*nowed)++].points = points;
}

Datum
loyalty_cancel(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	char	   *code;
	char	   *rid;
	char	   *reason;
	LoyaltyProgram program;
	char	   *policy;
	int			exponent;
	Datum		committed_at;
	char	   *status;
	int64		customer = 0;
	Jsonb	   *points_spent;
	Jsonb	   *accruals;
	Datum		coupons;
	Datum		offers;
	Jsonb	   *counters;
	Datum		queued;
	int			ndequeued;
	Datum		entry_currency;
	Datum		entry_version;
	ReceiptEntry *entries = NULL;
	int			nentries = 0;
	Owed	   *owed = NULL;
	int			nowed = 0;
	int64		withheld = 0;
	JsonBuild	jb = NULL;
	Jsonb	   *payload;
	Jsonb	   *result;
	bool		isnull;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("program and receipt_id must not be null")));
	code = text_to_cstring(PG_GETARG_TEXT_PP(0));
	rid = text_to_cstring(PG_GETARG_TEXT_PP(1));
	reason = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));

	SPI_connect();
	LoadProgram(code, &program);
	ReceiptShortfallRules(program.id, &policy, &exponent);

	/* the receipt's id locked (a refund or cancel of it in progress is waited for), and its row */
	committed_at = ReceiptLockRow(program.id, rid, code,
								  ReceiptNamesEntries() ? &receipt_query : &receipt_query_0_17);
	{
		Datum		c;

		status = TextDatumGetCString(Col(0, 1, &isnull));
		if (strcmp(status, "cancelled") == 0)
		{
			Jsonb	   *first = DatumGetJsonbP(Col(0, 2, &isnull));
			JsonBuild	again = NULL;

			JbBeginObject(&again, NULL);
			JbBool(&again, "replayed", true);
			result = JbCopy(callcxt, DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
																		  JsonbPGetDatum(first),
																		  JsonbPGetDatum(JbFinish(&again)))));
			SPI_finish();
			PG_RETURN_JSONB_P(result);
		}
		if (strcmp(status, "committed") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("receipt \"%s\" of programme \"%s\" was %s: it cannot be cancelled", rid, code,
							strcmp(status, "refunded") == 0 ? "refunded" : "refunded in part"),
					 errhint("Return the other lines with loyalty.refund.")));
		c = Col(0, 3, &isnull);
		customer = isnull ? 0 : DatumGetInt64(c);
		points_spent = DatumGetJsonbPCopy(Col(0, 4, &isnull));
		accruals = DatumGetJsonbPCopy(Col(0, 5, &isnull));
		coupons = SPI_datumTransfer(Col(0, 6, &isnull), false, -1);
		offers = SPI_datumTransfer(Col(0, 7, &isnull), false, -1);
		counters = DatumGetJsonbPCopy(Col(0, 8, &isnull));
		entry_currency = SPI_datumTransfer(Col(0, 9, &isnull), false, -1);
		entry_version = SPI_datumTransfer(Col(0, 10, &isnull), false, -1);
	}

	/*
	 * Accruals still queued go; a release in progress is waited for.  This
	 * comes before the wallet locks: a release never waits for a wallet.
	 */
	{
		Datum		values[2] = {Int64GetDatum(program.id), CStringGetTextDatum(rid)};

		RunKept(&dequeue_query, values, NULL, 1);
		queued = SPI_datumTransfer(Col(0, 1, &isnull), false, -1);
		ndequeued = ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(queued)),
								   ARR_DIMS(DatumGetArrayTypeP(queued)));
	}
	if (customer)
		ReceiptLockWallets(customer);

	/* points spent go back to the lots that paid */
	{
		Datum		values[6] = {Int64GetDatum(program.id), JsonbPGetDatum(points_spent),
			CStringGetTextDatum(rid), entry_currency, entry_version, Int64GetDatum(customer)};
		int			n;
		char	  **currency;
		int64	  **ids;
		int64	  **amounts;
		int		   *nlots;

		RunKept(&spent_query, values, NULL, 0);
		n = (int) SPI_processed;
		currency = palloc(sizeof(char *) * Max(n, 1));
		ids = palloc(sizeof(int64 *) * Max(n, 1));
		amounts = palloc(sizeof(int64 *) * Max(n, 1));
		nlots = palloc(sizeof(int) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			currency[i] = TextDatumGetCString(Col(i, 1, &isnull));
			nlots[i] = Int8s(Col(i, 2, &isnull), &ids[i]);
			if (Int8s(Col(i, 3, &isnull), &amounts[i]) != nlots[i])
				elog(ERROR, "a redemption of receipt \"%s\" has lots and amounts of other lengths", rid);
		}
		entries = palloc(sizeof(ReceiptEntry) * (n + 1));
		for (int i = 0; i < n; i++)
		{
			EntryResult r;
			int64		amount;

			/* the redemption's lot_amounts are what each lot gave */
			EntryResultInit(&r, NULL);
			amount = ReceiptReturnLots(customer, currency[i], nlots[i], ids[i], amounts[i], rid, NULL, &r);
			entries[nentries++] = (ReceiptEntry) {currency[i], amount, r.version};
		}
	}

	/* accruals already released are taken back */
	{
		Datum		values[6] = {Int64GetDatum(program.id), JsonbPGetDatum(accruals), queued,
			entry_currency, entry_version, Int64GetDatum(customer)};
		int			n;
		char	  **currency;
		int64	   *lot;
		int64	   *amount;
		const char *shortfall = strcmp(policy, "debt") == 0 ? "debt" : "forgive";

		RunKept(&released_query, values, NULL, 0);
		n = (int) SPI_processed;
		currency = palloc(sizeof(char *) * Max(n, 1));
		lot = palloc(sizeof(int64) * Max(n, 1));
		amount = palloc(sizeof(int64) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			Datum		l = Col(i, 2, &isnull);

			currency[i] = TextDatumGetCString(Col(i, 1, &isnull));
			lot[i] = isnull ? 0 : DatumGetInt64(l);
			amount[i] = DatumGetInt64(Col(i, 3, &isnull));
		}
		entries = repalloc(entries, sizeof(ReceiptEntry) * (nentries + n + 1));
		owed = palloc(sizeof(Owed) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			EntryResult r;
			int64		taken;
			int64		short_by;

			EntryResultInit(&r, NULL);
			taken = ReceiptTakeBack(customer, currency[i], lot[i], amount[i], rid, NULL, shortfall, &r);
			entries[nentries++] = (ReceiptEntry) {currency[i], taken, r.version};
			short_by = amount[i] + taken;
			if (short_by > 0 && strcmp(policy, "debt") == 0)
				AddOwed(owed, &nowed, currency[i], short_by);
			else if (short_by > 0)
				withheld += ReceiptPointsMoney(program.id, currency[i], short_by);
		}
	}

	/* coupon, offer and counter uses are given back */
	{
		Datum		values[2] = {Int64GetDatum(program.id), coupons};

		RunKept(&coupons_query, values, NULL, 0);
	}
	{
		Datum		values[2] = {Int64GetDatum(customer), offers};

		RunKept(&offers_query, values, customer ? NULL : "n ", 0);
	}
	{
		Datum		values[1] = {JsonbPGetDatum(counters)};

		RunKept(&counters_query, values, NULL, 0);
	}

	/* the challenges it gave to count without it */
	CampaignReturn(program.id, rid, customer, -1, NULL);

	/* the result: what the event says, and the ledger entries */
	JbBeginObject(&jb, NULL);
	JbText(&jb, "program", code);
	JbText(&jb, "receipt_id", rid);
	JbText(&jb, "status", "cancelled");
	JbTimestamp(&jb, "cancelled_at", GetCurrentTransactionStartTimestamp());
	if (customer)
		JbInt(&jb, "customer_id", customer);
	else
		JbNull(&jb, "customer_id");
	JbInt(&jb, "accruals_dequeued", ndequeued);
	JbBeginObject(&jb, "debt");
	for (int i = 0; i < nowed; i++)
		JbInt(&jb, owed[i].currency, owed[i].points);
	JbEndObject(&jb);
	JbNumeric(&jb, "money_withheld", NumericFromScaled(withheld, exponent));
	payload = JbFinish(&jb);
	result = ReceiptResult(payload, entries, nentries);
	{
		Datum		values[5] = {Int64GetDatum(program.id), CStringGetTextDatum(rid), committed_at,
			reason ? CStringGetTextDatum(reason) : (Datum) 0, JsonbPGetDatum(result)};

		RunKept(&cancelled_query, values, reason ? NULL : "   n ", 0);
	}
	DirectBegin();
	EventAppend(program.id, "receipt_cancelled", customer, payload, GetCurrentTransactionStartTimestamp());
	DirectEnd();

	result = JbCopy(callcxt, result);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}
