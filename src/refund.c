/*
 * src/refund.c
 *
 * loyalty.refund(program, receipt_id, lines, refund_id, reason): a partial
 * return of a committed receipt, in one transaction (docs/receipts.md,
 * "Returns").  Each line returned gives back its share of what it cost, of
 * the points that paid it (to the same lots) and of the points it earned
 * (from the queue first, then taken back from the wallet), in proportion to
 * the quantity returned; shares are cumulative (share(total, prev, upto,
 * qty) = floor(total * upto / qty) - floor(total * prev / qty)), so that
 * returning a line in parts gives back exactly what returning it at once
 * would.  The lines kept are recomputed with the receipt's own promotions
 * as committed: the discount they no longer earn is kept back from the
 * money, and promotions that no longer hold give their counter uses back.
 *
 * The receipt's lines are read from its typed arrays (line_*, paid_*,
 * earned_*); the quantities returned are written back into
 * line_refunded_qty.  The receipt's id is locked first (a refund racing a
 * cancel or another refund of it waits), the queue is touched before any
 * wallet (a release never waits for a wallet), then the customer's wallets
 * are locked in the one order and the ledger's C functions return the
 * points (ReceiptReturnLots) and take back the accruals released
 * (ReceiptTakeBack).  A refund is idempotent by refund_id: the same request
 * again returns the first result with "replayed": true and writes nothing.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "direct.h"
#include "event.h"
#include "fraud.h"
#include "jsonbuild.h"
#include "jsonread.h"
#include "program.h"
#include "wallet.h"

PG_FUNCTION_INFO_V1(loyalty_refund);

#define RECEIPT_ROW(entries) \
	"SELECT status, customer_id, at, accruals, counters, answer, document, discount_lost," \
	"       line_no, line_qty, line_refunded_qty, line_to_pay, line_discount," \
	"       paid_line, paid_lot, paid_currency, paid_points," \
	"       earned_line, earned_currency, earned_points, " entries ", line_amount" \
	"  FROM loyalty.receipt t" \
	" WHERE t.program_id = $1 AND t.receipt_id = $2 AND t.committed_at = $3"
static KeptQuery receipt_query = {
	RECEIPT_ROW(RECEIPT_ENTRY_COLUMNS), 3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
/* the schema before 0.18: commit's entries are found by their keys alone */
static KeptQuery receipt_query_0_17 = {
	RECEIPT_ROW(RECEIPT_ENTRY_COLUMNS_0_17), 3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL
};
static KeptQuery replay_query = {
	"SELECT request, lines, result FROM loyalty.receipt_refund f"
	" WHERE f.program_id = $1 AND f.receipt_id = $2 AND f.refund_id = $3",
	3, {INT8OID, TEXTOID, TEXTOID}, NULL
};
static KeptQuery queue_query = {
	"SELECT q.id, q.amount FROM loyalty.accrual_queue q"
	" WHERE q.program_id = $1 AND q.receipt_id = $2 AND q.currency = $3"
	" ORDER BY q.kind <> 'regular', q.id FOR UPDATE",
	3, {INT8OID, TEXTOID, TEXTOID}, NULL
};
static KeptQuery dequeue_query = {
	"DELETE FROM loyalty.accrual_queue q WHERE q.id = $1",
	1, {INT8OID}, NULL
};
static KeptQuery cut_query = {
	"UPDATE loyalty.accrual_queue q SET amount = q.amount - $2 WHERE q.id = $1",
	2, {INT8OID, INT8OID}, NULL
};
/*
 * The lot of the receipt's first accrual in a currency, regular before
 * bonus lots: among the entries the receipt names ($4, $5 in the wallets of
 * customer $6; commit writes the regular accrual first), or released from
 * the queue and found by its key
 */
static KeptQuery accrual_lot_query = {
	"SELECT x.lot_id FROM ("
	"  SELECT e.lot_id, false AS bonus, e.version FROM" RECEIPT_NAMED_ENTRIES
	"   WHERE w.currency = $3 AND e.operation = 'accrue'"
	"  UNION ALL"
	"  SELECT e.lot_id, (a ->> 'kind') <> 'regular', e.version"
	"    FROM pg_catalog.jsonb_array_elements($2) a"
	"    JOIN loyalty.ledger e ON e.program_id = $1 AND e.idempotency_key = (a ->> 'key')"
	"   WHERE a ->> 'currency' = $3) x"
	" ORDER BY x.bonus, x.version LIMIT 1",
	6, {INT8OID, JSONBOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID, INT8OID}, NULL
};
/* the lines kept, calculated again with the receipt's own promotions */
static KeptQuery recompute_query = {
	"SELECT loyalty.recompute((($1 - '{points,coupons}'::text[])"
	"                          || pg_catalog.jsonb_build_object('lines', $2::jsonb,"
	"                               'at', COALESCE($1 -> 'at', pg_catalog.to_jsonb(pg_catalog.to_char("
	"                                        pg_catalog.timezone('UTC', $3::timestamptz),"
	"                                        'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'))))),"
	"                         loyalty.applied_promotion_ids($4, $5))",
	5, {JSONBOID, JSONBOID, TIMESTAMPTZOID, INT8OID, JSONBOID}, NULL
};
/*
 * the counters of promotions the lines kept no longer get (all of them when
 * nothing is kept, $3 NULL), and the receipt's counters with those marked
 * returned by this refund
 */
static KeptQuery counters_query = {
	"WITH back AS ("
	"  SELECT COALESCE(pg_catalog.jsonb_agg(c ORDER BY o), '[]') AS b"
	"    FROM pg_catalog.jsonb_array_elements($1) WITH ORDINALITY AS rc (c, o)"
	"   WHERE (c -> 'returned') IS NULL"
	"     AND (c ->> 'promotion_id')::bigint <> ALL (loyalty.applied_promotion_ids($2, $3)))"
	" SELECT back.b,"
	"        (SELECT COALESCE(pg_catalog.jsonb_agg(CASE WHEN back.b @> pg_catalog.jsonb_build_array(c)"
	"                                              THEN c || pg_catalog.jsonb_build_object('returned', $4::text)"
	"                                              ELSE c END ORDER BY o), '[]')"
	"           FROM pg_catalog.jsonb_array_elements($1) WITH ORDINALITY AS rc (c, o))"
	"   FROM back",
	4, {JSONBOID, INT8OID, JSONBOID, TEXTOID}, NULL
};
static KeptQuery counter_uses_query = {
	"SELECT loyalty.return_counter_uses($1)",
	1, {JSONBOID}, NULL
};
static KeptQuery insert_query = {
	"INSERT INTO loyalty.receipt_refund (program_id, receipt_id, refund_id, request, lines, money,"
	"                                    money_withheld, points_returned, points_taken, debt, result,"
	"                                    actor, reason, discount_withheld, counters_returned)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, loyalty.actor(), $12, $13, $14)",
	14, {INT8OID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, INT8OID, INT8OID, JSONBOID, JSONBOID,
	JSONBOID, JSONBOID, TEXTOID, INT8OID, JSONBOID}, NULL
};
static KeptQuery update_query = {
	"UPDATE loyalty.receipt t"
	"   SET status = $4, discount_lost = t.discount_lost + $5, counters = COALESCE($6, t.counters),"
	"       line_refunded_qty = $7"
	" WHERE t.program_id = $1 AND t.receipt_id = $2 AND t.committed_at = $3",
	7, {INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, INT8OID, JSONBOID, 1231 /* numeric[] */}, NULL
};

/* The receipt's lines and what they were paid with and earned */
typedef struct RefundReceipt
{
	int			nlines;
	int32	   *no;
	Numeric    *qty;
	Numeric    *refunded;		/* updated as the request is applied */
	int64	   *to_pay;
	int64	   *discount;
	int64	   *amount;
	int			npaid;
	int32	   *paid_line;		/* 1-based place in the lines */
	int64	   *paid_lot;
	char	  **paid_currency;
	int64	   *paid_points;
	int			nearned;
	int32	   *earned_line;
	char	  **earned_currency;
	int64	   *earned_points;
} RefundReceipt;

/* One line of the request, checked */
typedef struct RefundItem
{
	int			pos;			/* 0-based place in the lines */
	Numeric		qty;			/* returned now */
} RefundItem;

/* Points per currency (returned, taken, owed), in first-seen order */
typedef struct PerCurrency
{
	int			n;
	char	  **currency;
	int64	   *points;
} PerCurrency;

/* Points of one lot of one currency, to return */
typedef struct LotPoints
{
	char	   *currency;
	int64		lot;
	int64		points;
} LotPoints;

static Datum
Col(int column, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, isnull);
}

static Numeric
NumOp(PGFunction op, Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(op, NumericGetDatum(a), NumericGetDatum(b)));
}

static int
NumCmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a), NumericGetDatum(b)));
}

static char *
NumText(Numeric n)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));
}

/*
 * The share of total for quantity prev to upto of qty: floor(total * upto /
 * qty) - floor(total * prev / qty), in numeric as refund has always
 * computed it (loyalty.share)
 */
static int64
Share(int64 total, Numeric prev, Numeric upto, Numeric qty)
{
	Numeric		t = int64_to_numeric(total);
	Numeric		hi = DatumGetNumeric(DirectFunctionCall1(numeric_floor,
														 NumericGetDatum(NumOp(numeric_div, NumOp(numeric_mul, t, upto), qty))));
	Numeric		lo = DatumGetNumeric(DirectFunctionCall1(numeric_floor,
														 NumericGetDatum(NumOp(numeric_div, NumOp(numeric_mul, t, prev), qty))));

	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(NumOp(numeric_sub, hi, lo))));
}

/* A quantity in thousandths */
static int64
Milli(Numeric qty)
{
	return DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 NumericGetDatum(NumOp(numeric_mul, qty,
																   int64_to_numeric(1000)))));
}

/* The elements of an array column of the receipt row just read */
static int
Elements(int column, Oid type, Datum **items)
{
	return SpiArrayElements(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, type, items);
}
static void
ReadLines(RefundReceipt *rr, int first)
{
	Datum	   *d;
	int			n;

	rr->nlines = Elements(first, INT4OID, &d);
	rr->no = palloc(sizeof(int32) * Max(rr->nlines, 1));
	for (int i = 0; i < rr->nlines; i++)
		rr->no[i] = DatumGetInt32(d[i]);
#define LINE_ARRAY(col, type, field, conv) \
	do { \
		if (Elements(col, type, &d) != rr->nlines) \
			elog(ERROR, "a receipt's line arrays differ in length"); \
		rr->field = palloc(sizeof(*rr->field) * Max(rr->nlines, 1)); \
		for (int i = 0; i < rr->nlines; i++) \
			rr->field[i] = conv(d[i]); \
	} while (0)
	LINE_ARRAY(first + 1, NUMERICOID, qty, DatumGetNumeric);
	LINE_ARRAY(first + 2, NUMERICOID, refunded, DatumGetNumeric);
	LINE_ARRAY(first + 3, INT8OID, to_pay, DatumGetInt64);
	LINE_ARRAY(first + 4, INT8OID, discount, DatumGetInt64);
	LINE_ARRAY(first + 14, INT8OID, amount, DatumGetInt64);
#undef LINE_ARRAY
#define LIST_ARRAY(col, type, count, field, conv) \
	do { \
		n = Elements(col, type, &d); \
		if (n != rr->count) \
			elog(ERROR, "a receipt's line arrays differ in length"); \
		rr->field = palloc(sizeof(*rr->field) * Max(n, 1)); \
		for (int i = 0; i < n; i++) \
			rr->field[i] = conv(d[i]); \
	} while (0)
	rr->npaid = Elements(first + 5, INT4OID, &d);
	LIST_ARRAY(first + 5, INT4OID, npaid, paid_line, DatumGetInt32);
	LIST_ARRAY(first + 6, INT8OID, npaid, paid_lot, DatumGetInt64);
	LIST_ARRAY(first + 7, TEXTOID, npaid, paid_currency, TextDatumGetCString);
	LIST_ARRAY(first + 8, INT8OID, npaid, paid_points, DatumGetInt64);
	rr->nearned = Elements(first + 9, INT4OID, &d);
	LIST_ARRAY(first + 9, INT4OID, nearned, earned_line, DatumGetInt32);
	LIST_ARRAY(first + 10, TEXTOID, nearned, earned_currency, TextDatumGetCString);
	LIST_ARRAY(first + 11, INT8OID, nearned, earned_points, DatumGetInt64);
#undef LIST_ARRAY
}

static void
AddPoints(PerCurrency *pc, const char *currency, int64 points)
{
	for (int i = 0; i < pc->n; i++)
		if (strcmp(pc->currency[i], currency) == 0)
		{
			pc->points[i] += points;
			return;
		}
	if (pc->n == 0)
	{
		pc->currency = palloc(sizeof(char *) * 8);
		pc->points = palloc(sizeof(int64) * 8);
	}
	else if (pc->n % 8 == 0)
	{
		pc->currency = repalloc(pc->currency, sizeof(char *) * (pc->n + 8));
		pc->points = repalloc(pc->points, sizeof(int64) * (pc->n + 8));
	}
	pc->currency[pc->n] = pstrdup(currency);
	pc->points[pc->n++] = points;
}

/* The currencies of pc in bytewise order (the wallets' lock order) */
static int *
CurrencyOrder(const PerCurrency *pc)
{
	int		   *order = palloc(sizeof(int) * Max(pc->n, 1));

	for (int i = 0; i < pc->n; i++)
	{
		int			j = i;

		while (j > 0 && strcmp(pc->currency[order[j - 1]], pc->currency[i]) > 0)
		{
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	return order;
}

static void
RenderPerCurrency(JsonBuild *jb, const char *key, const PerCurrency *pc)
{
	JbBeginObject(jb, key);
	for (int i = 0; i < pc->n; i++)
		JbInt(jb, pc->currency[i], pc->points[i]);
	JbEndObject(jb);
}

static Jsonb *
PerCurrencyJsonb(const PerCurrency *pc)
{
	JsonBuild	jb = NULL;

	JbBeginObject(&jb, NULL);
	for (int i = 0; i < pc->n; i++)
		JbInt(&jb, pc->currency[i], pc->points[i]);
	return JbFinish(&jb);
}

static int
LotPointsCmp(const void *a, const void *b)
{
	const LotPoints *x = a;
	const LotPoints *y = b;
	int			c = strcmp(x->currency, y->currency);

	if (c != 0)
		return c;
	return x->lot < y->lot ? -1 : x->lot > y->lot;
}

/* A kept line of the document, for recompute */
typedef struct KeptLine
{
	int32		no;
	Jsonb	   *line;
} KeptLine;

static int
KeptLineCmp(const void *a, const void *b)
{
	const KeptLine *x = a;
	const KeptLine *y = b;

	return x->no < y->no ? -1 : x->no > y->no;
}

static Jsonb *
Concat(Jsonb *a, Jsonb *b)
{
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(a), JsonbPGetDatum(b)));
}

/* The request's items, checked one by one (the errors refund has always given) */
static int
CheckRequest(Jsonb *lines, const RefundReceipt *rr, const char *rid, RefundItem *items)
{
	JsonbIterator *it = JsonbIteratorInit(&lines->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue	line;
		JsonbValue	qty;
		bool		has_qty;
		Numeric		num;
		int32		no;
		int			pos = -1;
		Numeric		left;
		Numeric		back;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data) ||
			!JrKey(v.val.binary.data, "line", &line) || line.type != jbvNumeric ||
			NumCmp(line.val.numeric,
				   DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(line.val.numeric),
													   Int32GetDatum(0)))) != 0 ||
			NumCmp(DatumGetNumeric(DirectFunctionCall1(numeric_abs, NumericGetDatum(line.val.numeric))),
				   int64_to_numeric(PG_INT32_MAX)) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("lines[%d] must be an object with a whole number \"line\"", n)));
		no = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(line.val.numeric)));
		has_qty = JrKey(v.val.binary.data, "qty", &qty);
		if (has_qty && qty.type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("lines[%d].qty must be a number", n)));
		for (int i = 0; i < rr->nlines; i++)
			if (rr->no[i] == no)
			{
				pos = i;
				break;
			}
		if (pos < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("receipt \"%s\" has no line %d", rid, no)));
		for (int i = 0; i < n; i++)
			if (items[i].pos == pos)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("line %d is named twice", no)));
		left = NumOp(numeric_sub, rr->qty[pos], rr->refunded[pos]);
		back = has_qty ? qty.val.numeric : left;
		num = int64_to_numeric(0);
		if (has_qty && NumCmp(back, num) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("lines[%d].qty must be greater than 0", n)));
		if (NumCmp(rr->refunded[pos], rr->qty[pos]) >= 0)
			ereport(ERROR,
					(errcode(MAKE_SQLSTATE('2', '3', 'L', '0', '3')),
					 errmsg("line %d of receipt \"%s\" was returned already", no, rid),
					 errhint("A line is returned at most once in all.")));
		if (NumCmp(back, left) > 0)
			ereport(ERROR,
					(errcode(MAKE_SQLSTATE('2', '3', 'L', '0', '3')),
					 errmsg("line %d of receipt \"%s\" has %s left to return, not %s", no, rid,
							NumText(left), NumText(back)),
					 errdetail("%s of %s were returned already.", NumText(rr->refunded[pos]),
							   NumText(rr->qty[pos]))));
		items[n].pos = pos;
		items[n].qty = back;
		n++;
	}
	return n;
}

/*
 * The next line of the document's lines: false at the end; else true, with
 * *d the line and *pos its place in the receipt (-1 if the receipt has no
 * such line).  A line without a number is numbered by its place, as
 * calculate does.
 */
static bool
NextDocLine(JsonbIterator **it, RefundReceipt *rr, int *o, JsonbValue *d, int *pos)
{
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(it, d, true)) != WJB_DONE)
	{
		JsonbValue	ln;
		int32		no;

		if (tok != WJB_ELEM)
			continue;
		(*o)++;
		if (d->type != jbvBinary)
			continue;
		if (JrKey(d->val.binary.data, "line", &ln) && ln.type == jbvNumeric)
			no = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(ln.val.numeric)));
		else
			no = *o;
		*pos = -1;
		for (int i = 0; i < rr->nlines; i++)
			if (rr->no[i] == no)
			{
				*pos = i;
				break;
			}
		return true;
	}
	return false;
}

/* The document's lines by their place in the receipt (NULL where it has none) */
static void
DocLinesByPos(Jsonb *document, RefundReceipt *rr, Jsonb **by_pos)
{
	JsonbValue	doc_lines;
	JsonbIterator *it;
	JsonbValue	d;
	int			o = 0;
	int			pos;

	memset(by_pos, 0, sizeof(Jsonb *) * rr->nlines);
	if (document == NULL || !JrKey(&document->root, "lines", &doc_lines) || doc_lines.type != jbvBinary)
		return;
	it = JsonbIteratorInit(doc_lines.val.binary.data);
	while (NextDocLine(&it, rr, &o, &d, &pos))
		if (pos >= 0 && by_pos[pos] == NULL)
			by_pos[pos] = JsonbValueToJsonb(&d);
}

/*
 * The fraud rules' check of the return (the wallets locked): its lines'
 * documents, products and money.
 */
static void
CheckFraud(const char *code, const char *rid, const char *fid, int64 customer, Jsonb *document,
		   RefundReceipt *rr, RefundItem *items, int nitems, int64 *item_money)
{
	Catalog    *cat = CatalogGet(code);
	FraudOp		op;
	Jsonb	  **by_pos;

	if (!FraudAnyRule(cat, FO_REFUND))
		return;
	by_pos = palloc(sizeof(Jsonb *) * Max(rr->nlines, 1));
	DocLinesByPos(document, rr, by_pos);
	memset(&op, 0, sizeof(op));
	op.kind = FO_REFUND;
	op.reference = psprintf("%s/%s", rid, fid);
	op.customer = customer;
	op.store = JrMemberString(document, "store");
	op.subject[FS_STORE] = op.store;
	op.at = GetCurrentTransactionStartTimestamp();
	op.receipt_doc = document;
	op.nlines = nitems;
	op.line_docs = palloc(sizeof(Jsonb *) * Max(nitems, 1));
	op.line_skus = palloc(sizeof(char *) * Max(nitems, 1));
	op.line_money = item_money;
	for (int i = 0; i < nitems; i++)
	{
		op.line_docs[i] = by_pos[items[i].pos];
		op.line_skus[i] = JrMemberString(op.line_docs[i], "sku");
	}
	op.currency = -1;
	FraudCheck(cat, &op);
}

Datum
loyalty_refund(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	char	   *code;
	char	   *rid;
	Jsonb	   *lines;
	char	   *fid;
	char	   *reason;
	LoyaltyProgram program;
	char	   *policy;
	int			exponent;
	Datum		committed_at;
	char	   *status;
	int64		customer;
	TimestampTz at;
	Jsonb	   *accruals;
	Datum		entry_currency;
	Datum		entry_version;
	Jsonb	   *counters;
	Jsonb	   *answer;
	Jsonb	   *document;
	int64		discount_lost;
	RefundReceipt rr;
	RefundItem *items;
	int			nitems;
	JsonBuild	req = NULL;
	JsonBuild	per_line = NULL;
	int64		money = 0;
	int64		withheld = 0;
	int64		lost_delta = 0;
	LotPoints  *ret;
	int			nret = 0;
	PerCurrency tb = {0};		/* earned points to take back, per currency */
	PerCurrency returned = {0};
	PerCurrency owed = {0};
	ReceiptEntry *entries;
	int			nentries = 0;
	Jsonb	   *counters_back = NULL;
	Jsonb	   *counters_after = NULL;
	bool		partly = false;
	int64	   *item_money;
	JsonBuild	jb = NULL;
	Jsonb	   *req_jsonb;
	Jsonb	   *result;
	Jsonb	   *payload;
	bool		isnull;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("program, receipt_id, lines and refund_id must not be null")));
	code = text_to_cstring(PG_GETARG_TEXT_PP(0));
	rid = text_to_cstring(PG_GETARG_TEXT_PP(1));
	lines = PG_GETARG_JSONB_P(2);
	fid = text_to_cstring(PG_GETARG_TEXT_PP(3));
	reason = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (fid[0] == '\0' || pg_mbstrlen(fid) > 128)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("refund_id must be 1 to 128 characters"),
				 errhint("The refund id makes a refund safe to repeat: send the same id again when the outcome is unknown.")));

	SPI_connect();
	LoadProgram(code, &program);
	if (!JB_ROOT_IS_ARRAY(lines) || JB_ROOT_IS_SCALAR(lines) || JB_ROOT_COUNT(lines) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lines must be a non-empty JSON array of {\"line\": n, \"qty\": q}")));
	ReceiptShortfallRules(program.id, &policy, &exponent);

	/* the receipt's id locked (a refund or cancel of it in progress is waited for), and its row */
	committed_at = ReceiptLockRow(program.id, rid, code,
								  ReceiptNamesEntries() ? &receipt_query : &receipt_query_0_17);
	{
		Datum		c;

		status = TextDatumGetCString(Col(1, &isnull));
		c = Col(2, &isnull);
		customer = isnull ? 0 : DatumGetInt64(c);
		at = DatumGetTimestampTz(Col(3, &isnull));
		accruals = DatumGetJsonbPCopy(Col(4, &isnull));
		counters = DatumGetJsonbPCopy(Col(5, &isnull));
		answer = DatumGetJsonbPCopy(Col(6, &isnull));
		c = Col(7, &isnull);
		document = isnull ? NULL : DatumGetJsonbPCopy(c);
		discount_lost = DatumGetInt64(Col(8, &isnull));
		ReadLines(&rr, 9);
		entry_currency = SPI_datumTransfer(Col(21, &isnull), false, -1);
		entry_version = SPI_datumTransfer(Col(22, &isnull), false, -1);
	}

	/* the same refund again: its first result */
	{
		Datum		values[3] = {Int64GetDatum(program.id), CStringGetTextDatum(rid),
		CStringGetTextDatum(fid)};

		RunKept(&replay_query, values, NULL, 1);
		if (SPI_processed == 1)
		{
			Jsonb	   *request = DatumGetJsonbP(Col(1, &isnull));
			Jsonb	   *first;
			JsonBuild	again = NULL;

			if (DatumGetBool(DirectFunctionCall2(jsonb_ne, JsonbPGetDatum(request), JsonbPGetDatum(lines))))
			{
				Jsonb	   *done = DatumGetJsonbP(Col(2, &isnull));

				ereport(ERROR,
						(errcode(MAKE_SQLSTATE('2', '3', 'L', '0', '2')),
						 errmsg("refund \"%s\" of receipt \"%s\" was made with other lines", fid, rid),
						 errdetail("It returned %s.", JsonbToCString(NULL, &done->root, VARSIZE(done))),
						 errhint("Give a new return a new refund_id.")));
			}
			first = DatumGetJsonbP(Col(3, &isnull));
			JbBeginObject(&again, NULL);
			JbBool(&again, "replayed", true);
			result = JbCopy(callcxt, Concat(first, JbFinish(&again)));
			SPI_finish();
			PG_RETURN_JSONB_P(result);
		}
	}
	if (strcmp(status, "cancelled") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("receipt \"%s\" of programme \"%s\" was cancelled: nothing is left to refund", rid, code)));

	/* the lines asked for, checked one by one */
	items = palloc(sizeof(RefundItem) * JB_ROOT_COUNT(lines));
	nitems = CheckRequest(lines, &rr, rid, items);
	JbBeginArray(&req, NULL);
	for (int i = 0; i < nitems; i++)
	{
		JbBeginObject(&req, NULL);
		JbInt(&req, "line", rr.no[items[i].pos]);
		JbNumeric(&req, "qty", items[i].qty);
		JbEndObject(&req);
	}
	req_jsonb = JbFinishArray(&req);

	/* each line's share, cumulative over its returns */
	ret = palloc(sizeof(LotPoints) * Max(rr.npaid, 1));
	item_money = palloc(sizeof(int64) * Max(nitems, 1));
	JbBeginArray(&per_line, NULL);
	for (int i = 0; i < nitems; i++)
	{
		int			pos = items[i].pos;
		Numeric		prev = rr.refunded[pos];
		Numeric		upto = NumOp(numeric_add, prev, items[i].qty);
		int64		line_money = Share(rr.to_pay[pos], prev, upto, rr.qty[pos]);
		PerCurrency line_ret = {0};
		PerCurrency line_tb = {0};

		money += line_money;
		item_money[i] = line_money;
		for (int x = 0; x < rr.npaid; x++)
		{
			int64		amount;

			if (rr.paid_line[x] != pos + 1)
				continue;
			amount = Share(rr.paid_points[x], prev, upto, rr.qty[pos]);
			if (amount <= 0)
				continue;
			ret[nret++] = (LotPoints) {rr.paid_currency[x], rr.paid_lot[x], amount};
			AddPoints(&line_ret, rr.paid_currency[x], amount);
		}
		for (int x = 0; x < rr.nearned; x++)
		{
			int64		amount;

			if (rr.earned_line[x] != pos + 1)
				continue;
			amount = Share(rr.earned_points[x], prev, upto, rr.qty[pos]);
			if (amount <= 0 || customer == 0)
				continue;
			AddPoints(&tb, rr.earned_currency[x], amount);
			AddPoints(&line_tb, rr.earned_currency[x], amount);
		}
		rr.refunded[pos] = upto;
		JbBeginObject(&per_line, NULL);
		JbInt(&per_line, "line", rr.no[pos]);
		JbNumeric(&per_line, "qty", items[i].qty);
		JbNumeric(&per_line, "money", NumericFromScaled(line_money, exponent));
		RenderPerCurrency(&per_line, "points_returned", &line_ret);
		RenderPerCurrency(&per_line, "points_taken", &line_tb);
		JbEndObject(&per_line);
	}

	/*
	 * Points earned and still queued come off the queue first (before the
	 * wallet locks: a release never waits for a wallet), regular accruals
	 * before bonus lots; what is left is taken back from the wallet.
	 */
	{
		int		   *order = CurrencyOrder(&tb);
		int64	   *want = palloc(sizeof(int64) * Max(tb.n, 1));

		for (int o = 0; o < tb.n; o++)
		{
			int			c = order[o];
			Datum		values[3] = {Int64GetDatum(program.id), CStringGetTextDatum(rid),
			CStringGetTextDatum(tb.currency[c])};
			int			nq;
			int64	   *qid;
			int64	   *qamount;

			want[c] = tb.points[c];
			RunKept(&queue_query, values, NULL, 0);
			nq = (int) SPI_processed;
			qid = palloc(sizeof(int64) * Max(nq, 1));
			qamount = palloc(sizeof(int64) * Max(nq, 1));
			for (int q = 0; q < nq; q++)
			{
				qid[q] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[q], SPI_tuptable->tupdesc, 1, &isnull));
				qamount[q] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[q], SPI_tuptable->tupdesc, 2, &isnull));
			}
			for (int q = 0; q < nq && want[c] > 0; q++)
			{
				int64		cut = Min(want[c], qamount[q]);
				Datum		args[2] = {Int64GetDatum(qid[q]), Int64GetDatum(cut)};

				if (cut == qamount[q])
					RunKept(&dequeue_query, args, NULL, 0);
				else
					RunKept(&cut_query, args, NULL, 0);
				want[c] -= cut;
			}
		}

		if (customer)
			ReceiptLockWallets(customer);
		CheckFraud(code, rid, fid, customer, document, &rr, items, nitems, item_money);
		/* the challenges the lines gave to count what is left of them */
		{
			ReturnedLine *rl = palloc(sizeof(ReturnedLine) * Max(nitems, 1));

			for (int i = 0; i < nitems; i++)
			{
				int			pos = items[i].pos;

				rl[i].pos = pos;
				rl[i].qty_milli = Milli(rr.qty[pos]);
				rl[i].after_milli = Milli(rr.refunded[pos]);
				rl[i].before_milli = Milli(NumOp(numeric_sub, rr.refunded[pos], items[i].qty));
				rl[i].spend = rr.amount[pos] - rr.discount[pos];
			}
			CampaignReturn(program.id, rid, customer, nitems, rl);
		}

		/* points that paid the lines go back to their lots */
		entries = palloc(sizeof(ReceiptEntry) * (nret + tb.n + 1));
		qsort(ret, nret, sizeof(LotPoints), LotPointsCmp);
		for (int i = 0; i < nret;)
		{
			int			j = i;
			int			nlots = 0;
			int64	   *ids = palloc(sizeof(int64) * nret);
			int64	   *amounts = palloc(sizeof(int64) * nret);
			int64		total = 0;
			EntryResult r;
			int64		amount;

			for (; j < nret && strcmp(ret[j].currency, ret[i].currency) == 0; j++)
			{
				if (nlots > 0 && ids[nlots - 1] == ret[j].lot)
					amounts[nlots - 1] += ret[j].points;
				else
				{
					ids[nlots] = ret[j].lot;
					amounts[nlots++] = ret[j].points;
				}
				total += ret[j].points;
			}
			EntryResultInit(&r, NULL);
			amount = ReceiptReturnLots(customer, ret[i].currency, nlots, ids, amounts, rid, NULL, &r);
			entries[nentries++] = (ReceiptEntry) {ret[i].currency, amount, r.version};
			AddPoints(&returned, ret[i].currency, total);
			i = j;
		}

		/*
		 * Points earned and released are taken back from the wallet (the
		 * accrual's lot first); what was spent since is owed or kept in money
		 */
		for (int o = 0; o < tb.n; o++)
		{
			int			c = order[o];
			int64		lot = 0;
			EntryResult r;
			int64		taken;
			int64		short_by;

			if (want[c] <= 0)
				continue;
			{
				Datum		values[6] = {Int64GetDatum(program.id), JsonbPGetDatum(accruals),
					CStringGetTextDatum(tb.currency[c]), entry_currency, entry_version,
				Int64GetDatum(customer)};
				Datum		l;

				RunKept(&accrual_lot_query, values, NULL, 1);
				if (SPI_processed == 1)
				{
					l = Col(1, &isnull);
					lot = isnull ? 0 : DatumGetInt64(l);
				}
			}
			EntryResultInit(&r, NULL);
			taken = ReceiptTakeBack(customer, tb.currency[c], lot, want[c], rid, NULL,
									strcmp(policy, "debt") == 0 ? "debt" : "forgive", &r);
			entries[nentries++] = (ReceiptEntry) {tb.currency[c], taken, r.version};
			short_by = want[c] + taken;
			if (short_by > 0 && strcmp(policy, "debt") == 0)
				AddPoints(&owed, tb.currency[c], short_by);
			else if (short_by > 0)
				withheld += ReceiptPointsMoney(program.id, tb.currency[c], short_by);
		}
	}
	withheld = Min(withheld, money);

	/*
	 * What the return breaks: the lines kept, recomputed with the receipt's
	 * own promotions as committed, may earn less discount than they got ("3
	 * for 2" with one of the three returned).  The loss so far is kept back
	 * from the money (as far as this return gives any); a later return that
	 * ends it gives it back.  Promotions that no longer hold give their
	 * counter uses back.
	 */
	if (document != NULL)
	{
		JsonbValue	doc_lines;
		KeptLine   *kept = NULL;
		int			nkept = 0;
		int64		kept_discount = 0;
		int64		lost = 0;
		Jsonb	   *now_answer = NULL;

		if (JrKey(&document->root, "lines", &doc_lines) && doc_lines.type == jbvBinary)
		{
			JsonbIterator *it = JsonbIteratorInit(doc_lines.val.binary.data);
			JsonbValue	d;
			int			o = 0;
			int			pos;

			kept = palloc(sizeof(KeptLine) * Max(rr.nlines, 1));
			while (NextDocLine(&it, &rr, &o, &d, &pos))
			{
				int32		no;
				JsonBuild	part = NULL;

				if (pos < 0 || nkept >= rr.nlines || NumCmp(rr.refunded[pos], rr.qty[pos]) >= 0)
					continue;
				no = rr.no[pos];
				JbBeginObject(&part, NULL);
				JbInt(&part, "line", no);
				JbNumeric(&part, "qty", NumOp(numeric_sub, rr.qty[pos], rr.refunded[pos]));
				kept[nkept].no = no;
				kept[nkept++].line = Concat(JsonbValueToJsonb(&d), JbFinish(&part));
				kept_discount += rr.discount[pos] - Share(rr.discount[pos], int64_to_numeric(0),
														  rr.refunded[pos], rr.qty[pos]);
			}
		}
		if (nkept > 0)
		{
			JsonBuild	ka = NULL;
			Datum		values[5];

			qsort(kept, nkept, sizeof(KeptLine), KeptLineCmp);
			JbBeginArray(&ka, NULL);
			for (int i = 0; i < nkept; i++)
				JbJsonb(&ka, NULL, kept[i].line);
			values[0] = JsonbPGetDatum(document);
			values[1] = JsonbPGetDatum(JbFinishArray(&ka));
			values[2] = TimestampTzGetDatum(at);
			values[3] = Int64GetDatum(program.id);
			values[4] = JsonbPGetDatum(answer);
			RunKept(&recompute_query, values, NULL, 1);
			now_answer = DatumGetJsonbPCopy(Col(1, &isnull));
			{
				JsonbValue	totals;
				JsonbValue	discount;
				int64		now_discount = 0;

				if (JrKey(&now_answer->root, "totals", &totals) && totals.type == jbvBinary &&
					JrKey(totals.val.binary.data, "discount", &discount) && discount.type == jbvNumeric &&
					ScaledFromNumeric(discount.val.numeric, exponent, &now_discount) != SCALED_OK)
					elog(ERROR, "the recomputed discount of receipt \"%s\" does not fit", rid);
				lost = Max(kept_discount - now_discount, 0);
			}
		}
		lost_delta = lost - discount_lost;
		if (lost_delta > 0)
			lost_delta = Min(lost_delta, money - withheld);
		/* the counter uses of promotions the lines kept no longer get */
		{
			Datum		values[4] = {JsonbPGetDatum(counters), Int64GetDatum(program.id),
				now_answer ? JsonbPGetDatum(now_answer) : (Datum) 0, CStringGetTextDatum(fid)};

			RunKept(&counters_query, values, now_answer ? NULL : "  n ", 1);
			counters_back = DatumGetJsonbPCopy(Col(1, &isnull));
			counters_after = DatumGetJsonbPCopy(Col(2, &isnull));
		}
		{
			Datum		values[1] = {JsonbPGetDatum(counters_back)};

			RunKept(&counter_uses_query, values, NULL, 0);
		}
	}

	if (counters_back == NULL)
	{
		JsonBuild	none = NULL;

		JbBeginArray(&none, NULL);
		counters_back = JbFinishArray(&none);
	}
	for (int i = 0; i < rr.nlines; i++)
		if (NumCmp(rr.refunded[i], rr.qty[i]) < 0)
			partly = true;

	/* the result: what the event says, and the ledger entries */
	JbBeginObject(&jb, NULL);
	JbText(&jb, "program", code);
	JbText(&jb, "receipt_id", rid);
	JbText(&jb, "refund_id", fid);
	JbText(&jb, "status", partly ? "partly_refunded" : "refunded");
	if (customer)
		JbInt(&jb, "customer_id", customer);
	else
		JbNull(&jb, "customer_id");
	JbJsonb(&jb, "lines", JbFinishArray(&per_line));
	JbNumeric(&jb, "money", NumericFromScaled(money - withheld - lost_delta, exponent));
	JbNumeric(&jb, "money_withheld", NumericFromScaled(withheld, exponent));
	JbNumeric(&jb, "discount_withheld", NumericFromScaled(lost_delta, exponent));
	JbJsonb(&jb, "counters_returned", counters_back);
	RenderPerCurrency(&jb, "points_returned", &returned);
	RenderPerCurrency(&jb, "points_taken", &tb);
	RenderPerCurrency(&jb, "debt", &owed);
	payload = JbFinish(&jb);
	result = ReceiptResult(payload, entries, nentries);

	{
		Datum		values[14];

		values[0] = Int64GetDatum(program.id);
		values[1] = CStringGetTextDatum(rid);
		values[2] = CStringGetTextDatum(fid);
		values[3] = JsonbPGetDatum(lines);
		values[4] = JsonbPGetDatum(req_jsonb);
		values[5] = Int64GetDatum(money - withheld - lost_delta);
		values[6] = Int64GetDatum(withheld);
		values[7] = JsonbPGetDatum(PerCurrencyJsonb(&returned));
		values[8] = JsonbPGetDatum(PerCurrencyJsonb(&tb));
		values[9] = JsonbPGetDatum(PerCurrencyJsonb(&owed));
		values[10] = JsonbPGetDatum(result);
		values[11] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
		values[12] = Int64GetDatum(lost_delta);
		values[13] = JsonbPGetDatum(counters_back);
		RunKept(&insert_query, values, reason ? NULL : "           n  ", 0);
	}
	DirectBegin();
	EventAppend(program.id, "refund", customer, payload, GetCurrentTransactionStartTimestamp());
	DirectEnd();
	{
		Datum	   *qty = palloc(sizeof(Datum) * Max(rr.nlines, 1));
		int			dims[1] = {rr.nlines};
		int			lbs[1] = {1};
		Datum		values[7];

		for (int i = 0; i < rr.nlines; i++)
			qty[i] = NumericGetDatum(rr.refunded[i]);
		values[0] = Int64GetDatum(program.id);
		values[1] = CStringGetTextDatum(rid);
		values[2] = committed_at;
		values[3] = CStringGetTextDatum(partly ? "partly_refunded" : "refunded");
		values[4] = Int64GetDatum(lost_delta);
		values[5] = counters_after ? JsonbPGetDatum(counters_after) : (Datum) 0;
		values[6] = PointerGetDatum(construct_md_array(qty, NULL, 1, dims, lbs, NUMERICOID, -1, false,
													   TYPALIGN_INT));
		RunKept(&update_query, values, counters_after ? NULL : "     n ", 0);
	}

	result = JbCopy(callcxt, result);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}
