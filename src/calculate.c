/*
 * src/calculate.c
 *
 * loyalty.calculate(receipt jsonb) returns jsonb: read the receipt, find
 * the customer with their wallets, lots, segments, personal offers, coupons
 * and counters, match every line against the compiled catalogue, keep the
 * promotions whose gates hold, search the best combination (src/search.c),
 * and answer with every amount spread over the lines.  Writes nothing; the
 * same receipt at the same "at" gives the same answer.
 */
#include "postgres.h"

#include "catalog/pg_collation_d.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"
#include "utils/timestamp.h"

#include "access.h"
#include "calculate.h"
#include "catalog.h"
#include "condcode.h"
#include "conddocs.h"
#include "customer.h"
#include "direct.h"
#include "jsonbuild.h"
#include "jsonread.h"
#include "lot.h"
#include "product.h"
#include "plan.h"
#include "program.h"
#include "search.h"
#include "wallet.h"

PG_FUNCTION_INFO_V1(loyalty_calculate);
PG_FUNCTION_INFO_V1(loyalty_calculate_compact);
PG_FUNCTION_INFO_V1(loyalty_recompute);
PG_FUNCTION_INFO_V1(loyalty_period_start);

int			loyalty_max_lines = 1000;
int			loyalty_max_receipt_bytes = 1048576;
double		loyalty_search_budget_ms = 5.0;
int			loyalty_log_min_duration = -1;

#define QTY_EXPONENT 3			/* quantities to thousandths */
#define RECEIPT_MAX INT64CONST(1000000000000)	/* 10^12 minor units of money */
#define MAX_CODE 64

void
loyalty_calculate_init(void)
{
	DefineCustomIntVariable("loyalty.max_lines",
							"Most lines calculate accepts in one receipt.",
							NULL, &loyalty_max_lines, 1000, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("loyalty.max_receipt_size",
							"Largest receipt document calculate accepts.",
							NULL, &loyalty_max_receipt_bytes, 1048576, 1024, 64 * 1048576,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomRealVariable("loyalty.search_time_budget",
							 "Milliseconds the best-benefit search may take before it answers with the best found.",
							 NULL, &loyalty_search_budget_ms, 5.0, 0.1, 10000.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("loyalty.log_min_duration_calculate",
							"Logs each calculation that takes at least this long.",
							"-1 logs none, 0 every calculation.  The log line names the programme, the receipt id, "
							"the lines, the candidate promotions and the search's work; no customer data.",
							&loyalty_log_min_duration, -1, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
}

/* Log a calculation that took at least loyalty.log_min_duration_calculate */
static void
LogSlowCalculation(TimestampTz started, const char *program, const char *receipt_id,
				   int lines, int candidates, int64 explored, bool optimal, bool as_committed)
{
	long		secs;
	int			usecs;
	double		ms;

	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	ms = secs * 1000.0 + usecs / 1000.0;
	if (ms < loyalty_log_min_duration)
		return;
	ereport(LOG,
			(errmsg("loyalty.%s took %.3f ms", as_committed ? "recompute" : "calculate", ms),
			 errdetail("Programme \"%s\", receipt \"%s\", %d lines, %d candidate promotions, "
					   INT64_FORMAT " combinations explored, %s.",
					   program, receipt_id ? receipt_id : "", lines, candidates, explored,
					   optimal ? "optimal" : "stopped by loyalty.search_time_budget"),
			 errhidestmt(true)));
}

/* A line of the receipt */
typedef struct RLine
{
	int32		no;
	char	   *sku;
	int64		qty_milli;
	int64		unit_price;
	int64		amount;
	Jsonb	   *doc;
	Jsonb	   *product;
	CondValue  *row;
} RLine;

/* A points currency's request: none, as many as allowed, or an amount */
#define REQUEST_NONE	(-2)
#define REQUEST_MAX		(-1)

typedef struct Coupon
{
	char	   *code;			/* as sent */
	bool		found;
	int64		promotion_id;
	char	   *kind;
	int64		customer_id;	/* personal; 0 otherwise */
	int32		uses;
	int32		use_limit;		/* 0: none */
	bool		in_window;
	bool		ends;			/* its validity has an end */
	TimestampTz end;
	char	   *state;
	const char *reason;			/* why rejected, or NULL */
	int			promo;			/* catalogue index of its promotion, or -1 */
} Coupon;

/*
 * A lot of the customer's: the wallet module's Lot (calculate fills id,
 * remaining, valid_to, priority and restriction, what LotOrder and the
 * search read), with its currency's index and its compiled restriction
 */
typedef struct CLot
{
	Lot			lot;
	int			currency;		/* index in the catalogue's currencies */
	CondProgram *restrict_prog; /* its restriction, compiled */
} CLot;

/* Everything one call reads */
typedef struct Calc
{
	Catalog    *cat;
	Jsonb	   *doc;
	JsonDoc		jd;
	char	   *receipt_id;
	char	   *store;
	char	   *city;
	char	   *country;
	char	   *channel;
	TimestampTz at;
	int			at_offset;		/* its UTC offset in seconds west (as pg_tm) */
	char	   *at_text;		/* local wall-clock text the window checks read */
	int			weekday;		/* ISO 1..7 of the local date */
	int			hour;
	DateADT		local_date;
	int			nlines;
	RLine	   *lines;
	int			ncoupons;
	Coupon	   *coupons;
	int64	   *request;		/* per catalogue currency */
	bool		exhaustive;
	bool		explain;		/* "explain": the whole answer */
	bool		as_committed;	/* recomputed as committed: see Gate */
	/* the customer */
	bool		identified;		/* an identifier was sent */
	bool		found;
	char	   *not_found_reason;
	int64		customer_id;
	char	   *status;
	char	   *tier;
	char	   *birth_date;
	StrList		segments;
	Jsonb	   *customer_doc;
	int			nwallets;
	Wallet	   *wallets;		/* currency, balance, held, version, effective */
	int64	   *held;			/* per catalogue currency */
	int64	   *spendable;
	int			nlots;
	CLot	   *lots;
	/* per catalogue promotion */
	/* personal offers usable at "at" */
	int			noffers;
	int		   *offer_promo;	/* catalogue index */
	int32	   *offer_uses;		/* uses left; -2 without limit */
	/* conditions */
	CondValue  *base_row;
	int			nattrs;
	int		   *variants;		/* per experiment: ExperimentAssign */
} Calc;

/* ---- reading the receipt ---- */

static char *
OptString(Calc *c, const char *key, int maxlen)
{
	JsonbValue	v;

	if (!JrKey(&c->doc->root, key, &v) || v.type == jbvNull)
		return NULL;
	return JrString(&c->jd, key, &v, maxlen);
}

/*
 * The span of "at" a receipt may name: from 2000-01-01 to 2100-01-01 (UTC,
 * the end excluded).  A date outside it is a till's broken clock or a typo
 * ("2026-06-01T10:00+03:00 BC"), never a sale.
 */
#define AT_FIRST	INT64CONST(0)	/* 2000-01-01 00:00:00 UTC, PostgreSQL's epoch */
#define AT_END		(INT64CONST(36525) * USECS_PER_DAY)	/* 2100-01-01 00:00:00 UTC */

/* Refuse a receipt's "at" that is not a timestamp as calculate reads one */
static void pg_attribute_noreturn()
BadAt(const char *text)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
			 errmsg("receipt field \"at\" is not a timestamp with its UTC offset: \"%s\"", text),
			 errhint("Send the store's local time with its offset, e.g. \"2026-03-07T12:30:00+03:00\".")));
}

/*
 * Does text have the shape YYYY-MM-DD(T| )HH:MM[:SS[.f...]] followed by Z or
 * an offset +HH, +HH:MM or +HHMM (or -)?  Nothing else: no words ("BC",
 * "now"), no zone names, and no offset left to the session's time zone.
 */
static bool
AtShape(const char *t)
{
	const char *p = t;
	int			n;

#define DIGITS(k) for (n = 0; n < (k); n++, p++) if (!isdigit((unsigned char) *p)) return false
	DIGITS(4);
	if (*p++ != '-')
		return false;
	DIGITS(2);
	if (*p++ != '-')
		return false;
	DIGITS(2);
	if (*p != 'T' && *p != ' ')
		return false;
	p++;
	DIGITS(2);
	if (*p++ != ':')
		return false;
	DIGITS(2);
	if (*p == ':')
	{
		p++;
		DIGITS(2);
		if (*p == '.')
		{
			p++;
			if (!isdigit((unsigned char) *p))
				return false;
			while (isdigit((unsigned char) *p))
				p++;
		}
	}
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0';
	if (*p != '+' && *p != '-')
		return false;
	p++;
	DIGITS(2);
	if (*p == ':')
		p++;
	if (*p == '\0')
		return true;
	DIGITS(2);
	return *p == '\0';
#undef DIGITS
}

static void
ReadAt(Calc *c)
{
	JsonbValue	v;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (JrKey(&c->doc->root, "at", &v) && v.type != jbvNull)
	{
		char	   *text;
		char	   *field[MAXDATEFIELDS];
		int			ftype[MAXDATEFIELDS];
		char		workbuf[MAXDATELEN + MAXDATEFIELDS];
		int			nf;
		int			dtype;
		int			dterr;

		if (v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("receipt field \"at\" must be a string: a timestamp with its UTC offset"),
					 errhint("Send the store's local time with its offset, e.g. \"2026-03-07T12:30:00+03:00\".")));
		if (v.val.string.len > 64)
			BadAt(psprintf("%.64s...", pnstrdup(v.val.string.val, v.val.string.len)));
		text = pnstrdup(v.val.string.val, v.val.string.len);

		/*
		 * A date and a time as written, with its offset.  A receipt
		 * recomputed as committed keeps the "at" it was committed with:
		 * before 0.11 a date and a time without an offset was read in the
		 * session's time zone, and a return of such a receipt must still
		 * work.
		 */
		if (c->as_committed ?
			!(strlen(text) >= 16 && isdigit((unsigned char) text[0]) && text[4] == '-' &&
			  text[7] == '-' && (text[10] == 'T' || text[10] == ' ')) :
			!AtShape(text))
			BadAt(text);
		dterr = ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
		if (dterr == 0)
			dterr = DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz);
		if (dterr != 0 || dtype != DTK_DATE || tm.tm_hour > 23)
			BadAt(text);
		/* the local wall clock is what is written; the instant takes the offset */
		if (tm2timestamp(&tm, fsec, &tz, &c->at) != 0 ||
			(!c->as_committed && (c->at < AT_FIRST || c->at >= AT_END)))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("receipt field \"at\" is out of range: \"%s\"", text),
					 errdetail("A receipt's \"at\" lies from 2000-01-01 to 2100-01-01 (UTC, the end excluded).")));
		c->at_offset = tz;
	}
	else
	{
		/* the transaction's start, on the session's wall clock */
		c->at = GetCurrentTransactionStartTimestamp();
		if (timestamp2tm(c->at, &tz, &tm, &fsec, NULL, NULL) != 0)
			elog(ERROR, "timestamp out of range");
		c->at_offset = tz;
	}
	/* the wall clock as read, for the weekday, hour and date conditions */
	c->at_text = psprintf("%04d-%02d-%02dT%02d:%02d:%02d",
						  tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	c->local_date = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
	c->weekday = j2day(c->local_date + POSTGRES_EPOCH_JDATE);
	if (c->weekday == 0)
		c->weekday = 7;
	c->hour = tm.tm_hour;
}

/*
 * "at" for the answer: ISO 8601 with the offset the receipt was written in
 * (the session's when it gave none), whatever the session's DateStyle:
 * 2026-03-07T12:30:00+03:00, with microseconds when there are any.
 */
static char *
AtIso(TimestampTz at, int tz_west)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			east = -tz_west;
	char		frac[8] = "";

	if (timestamp2tm(at - (int64) tz_west * USECS_PER_SEC, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "timestamp out of range");
	if (fsec != 0)
		snprintf(frac, sizeof(frac), ".%06d", (int) fsec);
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac,
					east < 0 ? '-' : '+', abs(east) / 3600, abs(east) % 3600 / 60);
}

/* A Jsonb of its own for a container inside the receipt */
static Jsonb *
ContainerJsonb(JsonbValue *v)
{
	return JsonbValueToJsonb(v);
}

static void
ReadLines(Calc *c)
{
	JsonbValue	v;
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;
	int			max_lines = loyalty_max_lines;

	if (!JrKey(&c->doc->root, "lines", &v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("receipt field \"lines\" is missing"),
				 errhint("A receipt needs at least one line: {\"lines\": [{\"line\": 1, \"sku\": \"A1\", \"qty\": 1, \"price\": 100.00}]}.")));
	if (!JrIsArray(&v) || JsonContainerSize(v.val.binary.data) == 0)
		JrFail(&c->jd, "lines", "a non-empty array of lines");
	if ((int) JsonContainerSize(v.val.binary.data) > max_lines)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("receipt has %u lines, more than loyalty.max_lines (%d)",
						JsonContainerSize(v.val.binary.data), max_lines)));
	c->lines = palloc0(sizeof(RLine) * JsonContainerSize(v.val.binary.data));
	it = JsonbIteratorInit(v.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		RLine	   *l;
		JsonbValue	f;
		JsonbContainer *obj;
		char		path[64];	/* the field, for errors */
		int128		amount;

		if (tok != WJB_ELEM)
			continue;
		l = &c->lines[n];
		if (!JrIsObject(&e))
			JrFail(&c->jd, psprintf("lines[%d]", n), "an object");
		obj = e.val.binary.data;
		l->doc = ContainerJsonb(&e);
		l->no = n + 1;
		if (JrKey(obj, "line", &f))
		{
			snprintf(path, sizeof(path), "lines[%d].line", n);
			l->no = JrInt(&c->jd, path, &f, 1, 1000000);
		}
		for (int j = 0; j < n; j++)
			if (c->lines[j].no == l->no)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("receipt field \"lines[%d].line\" repeats line number %d", n, l->no),
						 errhint("Every line of a receipt needs a number of its own.")));
		if (JrKey(obj, "sku", &f) && f.type != jbvNull)
		{
			snprintf(path, sizeof(path), "lines[%d].sku", n);
			l->sku = JrString(&c->jd, path, &f, 128);
		}
		snprintf(path, sizeof(path), "lines[%d].qty", n);
		if (!JrKey(obj, "qty", &f))
			JrFail(&c->jd, path, "a number greater than 0");
		if (f.type == jbvNumeric && !numeric_is_nan(f.val.numeric) &&
			!numeric_is_inf(f.val.numeric) &&
			DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(f.val.numeric),
											  NumericGetDatum(int64_to_numeric(0)))) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("receipt field \"%s\" must be greater than 0", path)));
		l->qty_milli = JrScaled(&c->jd, path, &f, QTY_EXPONENT, 1, INT64CONST(1000000000), NULL);
		snprintf(path, sizeof(path), "lines[%d].price", n);
		if (!JrKey(obj, "price", &f))
			JrFail(&c->jd, path, "a number");
		l->unit_price = JrScaled(&c->jd, path, &f, c->cat->money_exponent, 0,
								 INT64CONST(100000000000000), NULL);
		amount = ((int128) l->unit_price * l->qty_milli + 500) / 1000;
		if (amount > INT64CONST(100000000000000))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("receipt line %d comes to more than the calculation accepts", l->no)));
		l->amount = (int64) amount;
		if (JrKey(obj, "attributes", &f) && !JrIsObject(&f) && f.type != jbvNull)
			JrFail(&c->jd, psprintf("lines[%d].attributes", n), "an object");
		n++;
	}
	c->nlines = n;
}

/* "points": "max", a number (the default currency), or {"currency": "max" | number} */
static void
ReadPoints(Calc *c)
{
	Catalog    *cat = c->cat;
	JsonbValue	v;

	c->request = palloc(sizeof(int64) * Max(cat->ncurrencies, 1));
	for (int i = 0; i < cat->ncurrencies; i++)
		c->request[i] = REQUEST_NONE;
	if (!JrKey(&c->doc->root, "points", &v) || v.type == jbvNull)
		return;
	if (v.type == jbvString || v.type == jbvNumeric)
	{
		int			d = cat->default_currency;

		if (v.type == jbvString)
		{
			if (v.val.string.len != 3 || memcmp(v.val.string.val, "max", 3) != 0)
				JrFail(&c->jd, "points", "\"max\", a number of points, or an object by currency");
			c->request[d] = REQUEST_MAX;
		}
		else
			c->request[d] = JrScaled(&c->jd, "points", &v, cat->currencies[d].exponent, 0,
									 INT64CONST(1000000000000), NULL);
		return;
	}
	if (!JrIsObject(&v))
		JrFail(&c->jd, "points", "\"max\", a number of points, or an object by currency");
	{
		JsonbIterator *it = JsonbIteratorInit(v.val.binary.data);
		JsonbValue	k;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			char	   *code;
			char	   *path;
			JsonbValue	val;
			int			i;

			if (tok != WJB_KEY)
				continue;
			code = pnstrdup(k.val.string.val, k.val.string.len);
			path = psprintf("points.%s", code);
			i = CatalogCurrencyIndex(cat, code);
			if (i < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("receipt field \"%s\" names an unknown points currency", path),
						 errhint("The programme's currencies are in loyalty.currency.")));
			tok = JsonbIteratorNext(&it, &val, true);
			if (val.type == jbvString && val.val.string.len == 3 &&
				memcmp(val.val.string.val, "max", 3) == 0)
				c->request[i] = REQUEST_MAX;
			else
				c->request[i] = JrScaled(&c->jd, path, &val, cat->currencies[i].exponent, 0,
										 INT64CONST(1000000000000), NULL);
		}
	}
}

static void
ReadCoupons(Calc *c)
{
	JsonbValue	v;
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;

	if (!JrKey(&c->doc->root, "coupons", &v) || v.type == jbvNull)
		return;
	if (!JrIsArray(&v))
		JrFail(&c->jd, "coupons", "an array of coupon codes");
	if (JsonContainerSize(v.val.binary.data) > 100)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("receipt field \"coupons\" has more than 100 codes")));
	c->coupons = palloc0(sizeof(Coupon) * Max(JsonContainerSize(v.val.binary.data), 1));
	it = JsonbIteratorInit(v.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		if (tok == WJB_ELEM)
		{
			c->coupons[n].code = JrString(&c->jd, psprintf("coupons[%d]", n), &e, MAX_CODE);
			c->coupons[n].promo = -1;
			n++;
		}
	c->ncoupons = n;
}

/*
 * An identifier longer than this (an e-mail address's limit) cannot be one:
 * it is not looked up, and the receipt goes on anonymous, as for any
 * identifier that does not read.
 */
#define MAX_IDENTIFIER_TEXT 320

/* The customer object: exactly one of card, phone, email, id */
static void
ReadCustomer(Calc *c, const LoyaltyProgram *program, MemoryContext callcxt, FoundCustomer *found)
{
	static const char *const kinds[] = {"card", "phone", "email", "id", NULL};
	JsonbValue	v;
	JsonbValue	f;
	const char *kind = NULL;
	char	   *value = NULL;

	if (!JrKey(&c->doc->root, "customer", &v) || v.type == jbvNull)
		return;
	if (!JrIsObject(&v))
		JrFail(&c->jd, "customer", "an object with one of card, phone, email or id");
	JrUnknownKeys(&c->jd, "customer", v.val.binary.data, kinds);
	for (const char *const *k = kinds; *k; k++)
		if (JrKey(v.val.binary.data, *k, &f))
		{
			char	   *path = psprintf("customer.%s", *k);

			if (kind)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("receipt field \"customer\" names the customer twice (%s and %s)", kind, *k)));
			kind = *k;
			if (f.type == jbvNumeric && strcmp(kind, "id") == 0)
				value = psprintf("%lld", (long long) JrScaled(&c->jd, path, &f, 0, 1, PG_INT64_MAX, NULL));
			else if (f.type != jbvString)
				JrFail(&c->jd, path, "a string");
			else if (f.val.string.len == 0 || f.val.string.len > MAX_IDENTIFIER_TEXT)
				value = NULL;	/* unreadable: the till carries on without it */
			else
				value = pnstrdup(f.val.string.val, f.val.string.len);
		}
	if (kind == NULL)
		JrFail(&c->jd, "customer", "an object with one of card, phone, email or id");
	c->identified = true;
	if (value == NULL)
	{
		c->found = false;
		c->not_found_reason = "invalid_identifier";
		return;
	}
	c->found = FindReceiptCustomer(program, kind, value, callcxt,
								   found, &c->not_found_reason);
	if (c->found)
		c->customer_id = found->id;
}

/*
 * The customer the receipt names, as calculate finds them: commit locks
 * their wallets before it calculates.  Returns false for none (anonymous,
 * unreadable, not found).
 */
bool
PlanFindCustomer(Jsonb *doc, const LoyaltyProgram *program, int64 *customer_id)
{
	Calc		c;
	FoundCustomer fc;

	memset(&c, 0, sizeof(c));
	c.doc = doc;
	c.jd.name = "receipt";
	ReadCustomer(&c, program, CurrentMemoryContext, &fc);
	*customer_id = c.found ? c.customer_id : 0;
	return c.found;
}

/* ---- reading the database ---- */

/*
 * Everything is read by index with the statement's snapshot (direct.c):
 * a handful of rows per receipt, each found by key, where planning and
 * starting a statement would cost more than the reading.
 */

/* Does the tstzrange column hold "at"? */
static bool
RangeHolds(DirectScan *s, const char *column, TimestampTz at)
{
	static TypeCacheEntry *typcache = NULL;
	bool		isnull;
	Datum		d = DirectReadGet(s, column, &isnull);

	if (isnull)
		return false;
	if (typcache == NULL)
		typcache = lookup_type_cache(TSTZRANGEOID, TYPECACHE_RANGE_INFO);
	return range_contains_elem_internal(typcache, DatumGetRangeTypeP(d), TimestampTzGetDatum(at));
}

/* Does the tstzrange column end?  *end is its upper bound if so */
static bool
RangeEnd(DirectScan *s, const char *column, TimestampTz *end)
{
	static TypeCacheEntry *typcache = NULL;
	bool		isnull;
	Datum		d = DirectReadGet(s, column, &isnull);
	RangeBound lower,
				upper;
	bool		empty;

	if (isnull)
		return false;
	if (typcache == NULL)
		typcache = lookup_type_cache(TSTZRANGEOID, TYPECACHE_RANGE_INFO);
	range_deserialize(typcache, DatumGetRangeTypeP(d), &lower, &upper, &empty);
	if (empty || upper.infinite)
		return false;
	*end = DatumGetTimestampTz(upper.val);
	return true;
}

/* Products of the lines that name a sku, as documents conditions read */
static void
LoadProducts(Calc *c)
{
	for (int i = 0; i < c->nlines; i++)
	{
		RLine	   *l = &c->lines[i];

		if (l->sku == NULL)
			continue;
		for (int j = 0; j < i && l->product == NULL; j++)
			if (c->lines[j].sku && strcmp(c->lines[j].sku, l->sku) == 0)
				l->product = c->lines[j].product;
		if (l->product == NULL)
			l->product = ProductDoc(c->cat->program_id, l->sku);
	}
}

/* Lots in the ledger's spending order, restricted ones first */
static int
lot_cmp(const void *a, const void *b)
{
	return LotOrder(&((const CLot *) a)->lot, &((const CLot *) b)->lot, true);
}

/* The customer's segments, wallets, holds, lots and personal offers */
static void
LoadCustomer(Calc *c, const FoundCustomer *fc)
{
	Catalog    *cat = c->cat;
	DirectKey	key = DirectInt8Key(c->customer_id);
	DirectScan *s;
	JsonBuild	jb = NULL;
	int			nalloc;
	bool		isnull;
	bool		any_held = false;	/* a wallet's held: a hold not yet resolved */
	bool		any_points = false; /* a wallet's balance: a lot with points */

	c->status = fc->status;
	c->tier = fc->tier;
	c->birth_date = fc->birth_date;

	/* segments, in the index's order (by code) */
	nalloc = 4;
	c->segments.items = palloc(sizeof(char *) * nalloc);
	s = DirectReadBegin("segment_member", "segment_member_pkey", 1, &key);
	while (DirectScanNext(s))
	{
		if (c->segments.n == nalloc)
			c->segments.items = repalloc(c->segments.items, sizeof(char *) * (nalloc *= 2));
		c->segments.items[c->segments.n++] = DirectReadText(s, "segment");
	}
	DirectReadEnd(s);

	/* the document customer.* conditions read */
	JbBeginObject(&jb, NULL);
	JbInt(&jb, "id", c->customer_id);
	JbTextIf(&jb, "status", fc->status);
	JbTextIf(&jb, "tier", fc->tier);
	JbTextIf(&jb, "birthday", fc->birth_date);
	JbTextIf(&jb, "home_city", fc->home_city);
	JbBeginArray(&jb, "segments");
	for (int i = 0; i < c->segments.n; i++)
		JbText(&jb, NULL, c->segments.items[i]);
	JbEndArray(&jb);
	if (fc->attributes)
		JbJsonb(&jb, "attributes",
				DatumGetJsonbP(DirectFunctionCall1(jsonb_strip_nulls, JsonbPGetDatum(fc->attributes))));
	c->customer_doc = JbFinish(&jb);

	/* wallets, by currency */
	nalloc = 2;
	c->wallets = palloc0(sizeof(Wallet) * nalloc);
	s = DirectReadBegin("wallet", "wallet_pkey", 1, &key);
	while (DirectScanNext(s))
	{
		Wallet	   *w;

		if (c->nwallets == nalloc)
		{
			c->wallets = repalloc(c->wallets, sizeof(Wallet) * nalloc * 2);
			memset(c->wallets + nalloc, 0, sizeof(Wallet) * nalloc);
			nalloc *= 2;
		}
		w = &c->wallets[c->nwallets++];
		w->currency = DirectReadText(s, "currency");
		w->balance = DirectReadInt8(s, "balance", 0);
		w->version = DirectReadInt8(s, "version", 0);
		any_points |= w->balance > 0;
		any_held |= DirectReadInt8(s, "held", 0) != 0;
	}
	DirectReadEnd(s);

	/*
	 * What active holds take now, when the points would be spent.  A
	 * wallet's held counts every hold until it is resolved, expired ones
	 * included (docs/points.md), so with none held there is none to read.
	 */
	s = any_held ? DirectReadBegin("hold", "hold_wallet_active_idx", 1, &key) : NULL;
	while (s && DirectScanNext(s))
	{
		char	   *status = DirectReadText(s, "status");
		char	   *cur = DirectReadText(s, "currency");
		TimestampTz expires = DatumGetTimestampTz(DirectReadGet(s, "expires_at", &isnull));

		if (strcmp(status, "active") != 0 || expires <= GetCurrentTransactionStartTimestamp())
			continue;
		for (int w = 0; w < c->nwallets; w++)
			if (strcmp(c->wallets[w].currency, cur) == 0)
				c->wallets[w].held += DirectReadInt8(s, "amount", 0);
	}
	if (s)
		DirectReadEnd(s);

	/*
	 * lots valid at "at" and now, in spending order: points are spent when
	 * the receipt is committed, so a lot that has expired since a receipt
	 * written offline does not pay it.  A wallet's balance is what its live
	 * lots hold: with no points in any, there is no lot to read.
	 */
	nalloc = 4;
	c->lots = palloc0(sizeof(CLot) * nalloc);
	s = any_points ? DirectReadBegin("lot", "lot_wallet_live_idx", 1, &key) : NULL;
	while (s && DirectScanNext(s))
	{
		CLot	   *lot;
		Datum		to;
		int			cur;
		TimestampTz now = GetCurrentTransactionStartTimestamp();

		bool		to_null;

		if (!DatumGetBool(DirectReadGet(s, "live", &isnull)))
			continue;
		to = DirectReadGet(s, "valid_to", &to_null);
		if (!LotValidThrough(DatumGetTimestampTz(DirectReadGet(s, "valid_from", &isnull)),
							 !to_null, to_null ? 0 : DatumGetTimestampTz(to),
							 Min(c->at, now), Max(c->at, now)))
			continue;
		isnull = to_null;
		cur = CatalogCurrencyIndex(cat, DirectReadText(s, "currency"));
		if (cur < 0)
			continue;
		if (c->nlots == nalloc)
			c->lots = repalloc(c->lots, sizeof(CLot) * (nalloc *= 2));
		lot = &c->lots[c->nlots++];
		memset(lot, 0, sizeof(CLot));
		lot->currency = cur;
		lot->lot.has_valid_to = !isnull;
		lot->lot.valid_to = isnull ? 0 : DatumGetTimestampTz(to);
		lot->lot.id = DirectReadInt8(s, "id", 0);
		lot->lot.remaining = DirectReadInt8(s, "remaining", 0);
		lot->lot.priority = DirectReadInt4(s, "priority", 0);
		lot->lot.restriction = DirectReadText(s, "restriction");
	}
	if (s)
		DirectReadEnd(s);
	qsort(c->lots, c->nlots, sizeof(CLot), lot_cmp);
	for (int l = 0; l < c->nlots; l++)
		for (int w = 0; w < c->nwallets; w++)
			if (strcmp(c->wallets[w].currency, cat->currencies[c->lots[l].currency].code) == 0)
				c->wallets[w].effective += c->lots[l].lot.remaining;

	/* personal offers of active promotions usable at "at" (if any is for them) */
	nalloc = 4;
	c->offer_promo = palloc(sizeof(int) * nalloc);
	c->offer_uses = palloc(sizeof(int32) * nalloc);
	s = cat->has_personal ? DirectReadBegin("personal_offer", "personal_offer_pkey", 1, &key) : NULL;
	while (s && DirectScanNext(s))
	{
		int			k = CatalogPromoIndex(cat, DirectReadInt8(s, "promotion_id", 0));

		if (k < 0 || !RangeHolds(s, "valid", c->at))
			continue;
		if (c->noffers == nalloc)
		{
			nalloc *= 2;
			c->offer_promo = repalloc(c->offer_promo, sizeof(int) * nalloc);
			c->offer_uses = repalloc(c->offer_uses, sizeof(int32) * nalloc);
		}
		c->offer_promo[c->noffers] = k;
		c->offer_uses[c->noffers++] = DirectReadInt4(s, "uses_left", -2);
	}
	if (s)
		DirectReadEnd(s);
}

/* The coupons the receipt names, by code regardless of case */
static void
LoadCoupons(Calc *c)
{
	for (int i = 0; i < c->ncoupons; i++)
	{
		Coupon	   *cp = &c->coupons[i];
		DirectKey	keys[2];
		DirectScan *s;

		keys[0] = DirectInt8Key(c->cat->program_id);
		keys[1] = DirectTextKey(str_tolower(cp->code, strlen(cp->code), DEFAULT_COLLATION_OID));
		s = DirectReadBegin("coupon", "coupon_code_idx", 2, keys);
		if (DirectScanNext(s))
		{
			char	   *kind = DirectReadText(s, "kind");

			cp->found = true;
			cp->promotion_id = DirectReadInt8(s, "promotion_id", 0);
			cp->kind = kind;
			cp->customer_id = DirectReadInt8(s, "customer_id", 0);
			cp->uses = DirectReadInt4(s, "uses", 0);
			cp->use_limit = DirectReadInt4(s, "use_limit", strcmp(kind, "multi_use") == 0 ? 0 : 1);
			cp->in_window = RangeHolds(s, "valid", c->at);
			cp->ends = RangeEnd(s, "valid", &cp->end);
			cp->state = DirectReadText(s, "state");
		}
		DirectReadEnd(s);
	}
}

/* Counters of promotions with limits: per customer this period, and global */
typedef struct Usage
{
	int64		customer_uses;
	int64		total_uses;
	int64		money;
} Usage;

/* First day of the limit period that holds a date (docs/promotions.md) */
static DateADT
DayPeriodStart(DateADT day, LimitPeriod period)
{
	int			y,
				m,
				d;
	int			weekday = j2day(day + POSTGRES_EPOCH_JDATE);	/* 0: Sunday */

	j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	switch (period)
	{
		case PERIOD_DAY:
			return day;
		case PERIOD_WEEK:
			return day - (weekday == 0 ? 6 : weekday - 1);
		case PERIOD_MONTH:
			return date2j(y, m, 1) - POSTGRES_EPOCH_JDATE;
		case PERIOD_YEAR:
			return date2j(y, 1, 1) - POSTGRES_EPOCH_JDATE;
		default:
			return DATEVAL_NOBEGIN;
	}
}

/*
 * period_start(period, day): the first day of the limit period that holds
 * day, as calculate and commit count uses (-infinity for a period that is
 * none of day, week, month, year: for ever).  A day that is not finite is
 * its own period's start.
 */
Datum
loyalty_period_start(PG_FUNCTION_ARGS)
{
	char	   *period = text_to_cstring(PG_GETARG_TEXT_PP(0));
	DateADT		day = PG_GETARG_DATEADT(1);
	LimitPeriod p = LimitPeriodOf(period);

	if (p == PERIOD_EVER)
		PG_RETURN_DATEADT(DATEVAL_NOBEGIN);
	if (DATE_NOT_FINITE(day))
		PG_RETURN_DATEADT(day);
	/* the first date there is, Julian day 0, is a Monday: every start exists */
	PG_RETURN_DATEADT(DayPeriodStart(day, p));
}

static DateADT
PeriodStart(Calc *c, LimitPeriod period)
{
	return DayPeriodStart(c->local_date, period);
}

/* First day of the promotion's limit period that holds the receipt's date */
DateADT
PlanPeriodStart(const ReceiptPlan *plan, LimitPeriod period)
{
	return DayPeriodStart(plan->local_date, period);
}

static void
LoadUsage(Calc *c, int n, const int *promo, Usage *usage)
{
	Catalog    *cat = c->cat;

	for (int m = 0; m < n; m++)
	{
		CatPromo   *p = &cat->promos[promo[m]];

		if (p->limit_per_customer <= 0 && p->limit_total <= 0 && p->budget <= 0)
			continue;
		/* the global count (customer 0), then the customer's */
		for (int who = 0; who < (c->found ? 2 : 1); who++)
		{
			DirectKey	keys[2] = {DirectInt8Key(p->id), DirectInt8Key(who == 0 ? 0 : c->customer_id)};
			DirectScan *s = DirectReadBegin("counter", "counter_pkey", 2, keys);

			while (DirectScanNext(s))
			{
				bool		isnull;
				DateADT		start = DatumGetDateADT(DirectReadGet(s, "period_start", &isnull));

				if (who == 0 && DATE_NOT_FINITE(start))
				{
					usage[m].total_uses += DirectReadInt8(s, "uses", 0);
					usage[m].money += DirectReadInt8(s, "money", 0);
				}
				else if (who == 1 && p->limit_period != PERIOD_NONE &&
						 start == PeriodStart(c, p->limit_period))
					usage[m].customer_uses += DirectReadInt8(s, "uses", 0);
			}
			DirectReadEnd(s);
		}
	}
}

static bool
InList(const StrList *list, const char *s)
{
	if (s == NULL)
		return false;
	for (int i = 0; i < list->n; i++)
		if (strcmp(list->items[i], s) == 0)
			return true;
	return false;
}

/* Is "at" inside the promotion's active window? */
static bool
Running(const CatPromo *p, TimestampTz at)
{
	if (p->has_from && (p->from_inc ? at < p->from : at <= p->from))
		return false;
	if (p->has_to && (p->to_inc ? at > p->to : at >= p->to))
		return false;
	return true;
}

/* The deepest false clause of a condition, for the reason it failed */
typedef struct FailedClause
{
	int			depth;
	char	   *clause;
} FailedClause;

static void
NoteFalse(void *arg, int depth, const char *clause, int attr, bool result)
{
	FailedClause *f = arg;

	if (!result && depth > f->depth)
	{
		f->depth = depth;
		f->clause = pstrdup(clause);
	}
}

/* Does the receipt carry a valid coupon of promotion k? */
static bool
HasCoupon(const Calc *c, int k)
{
	for (int i = 0; i < c->ncoupons; i++)
		if (c->coupons[i].reason == NULL && c->coupons[i].promo == k)
			return true;
	return false;
}

/*
 * Why promotion k cannot apply to this receipt, or NULL if it can; *detail
 * says more where there is more to say.  usage is its counters.
 */
static const char *
Gate(Calc *c, int k, const Usage *usage, char **detail)
{
	CatPromo   *p = &c->cat->promos[k];
	BenefitRole role;

	*detail = NULL;

	/*
	 * A receipt recomputed as committed (loyalty.recompute) held its day,
	 * place, audience and limits then: its promotions are asked only what
	 * its lines and totals are now.
	 */
	if (c->as_committed)
		goto benefit;
	if (p->weekdays && !(p->weekdays & (1 << c->weekday)))
		return "wrong_day";
	if (p->hours && !(p->hours & (1 << c->hour)))
		return "wrong_hour";
	if ((p->countries.n && !InList(&p->countries, c->country)) ||
		(p->cities.n && !InList(&p->cities, c->city)) ||
		(p->stores.n && !InList(&p->stores, c->store)) ||
		(p->channels.n && !InList(&p->channels, c->channel)))
		return "wrong_place";
	if (!ExperimentAllows(c->cat, p->exp_masks, c->variants))
		return "experiment";
	switch (p->audience)
	{
		case AUD_ALL:
			break;
		case AUD_TIERS:
			if (!c->found || !InList(&p->tiers, c->tier))
			{
				*detail = "for customers of certain tiers";
				return "audience";
			}
			break;
		case AUD_SEGMENTS:
			{
				bool		in = false;

				for (int i = 0; c->found && i < c->segments.n; i++)
					in |= InList(&p->segments, c->segments.items[i]);
				if (!in)
				{
					*detail = "for customers of certain segments";
					return "audience";
				}
				break;
			}
		case AUD_PERSONAL:
			{
				int32		uses = -1;	/* none */

				for (int i = 0; i < c->noffers; i++)
					if (c->offer_promo[i] == k)
						uses = c->offer_uses[i];
				if (uses == -1 || uses == 0)
				{
					*detail = uses == 0 ? "the personal offer is used up" :
						"for customers with a personal offer";
					return "audience";
				}
				break;
			}
		case AUD_BIRTHDAY:
			{
				CondValue	b,
							d;
				int			dist = -1;

				if (c->found && c->birth_date)
				{
					/* the receipt's local date, as written in "at" */
					loyalty_cond_set_text(&b, c->birth_date, strlen(c->birth_date), true);
					loyalty_cond_set_text(&d, psprintf("%.10s", c->at_text), 10, true);
					dist = cond_birthday_distance(&b, &d);
				}
				if (dist < 0 || dist > p->birthday_days)
				{
					*detail = psprintf("within %d days of the customer's birthday", p->birthday_days);
					return "audience";
				}
				break;
			}
		case AUD_COUPON:
			if (!HasCoupon(c, k))
			{
				*detail = "for holders of its coupon";
				return "audience";
			}
			break;
	}
	if (p->limit_per_customer > 0)
	{
		if (!c->found)
			return "customer_required";
		if (usage->customer_uses >= p->limit_per_customer)
		{
			*detail = psprintf("%d per customer per %s", p->limit_per_customer,
							   p->limit_period == PERIOD_DAY ? "day" :
							   p->limit_period == PERIOD_WEEK ? "week" :
							   p->limit_period == PERIOD_MONTH ? "month" :
							   p->limit_period == PERIOD_YEAR ? "year" : "all time");
			return "limit_reached";
		}
	}
	if (p->limit_total > 0 && usage->total_uses >= p->limit_total)
	{
		*detail = psprintf("%lld uses in all", (long long) p->limit_total);
		return "limit_reached";
	}
	if (p->budget > 0 && usage->money >= p->budget)
		return "budget_exhausted";
benefit:
	/* what earns points needs a customer to earn them; a price in points, one who spends */
	role = BenefitRoleOf(p->benefit.kind);
	if (role == ROLE_EARN || role == ROLE_MULTIPLIER)
	{
		if (!c->found)
			return "customer_required";
		if (strcmp(c->status, "blocked") == 0)
			return "customer_blocked";
	}
	else if (p->benefit.in_points)
	{
		if (!c->found)
			return "customer_required";
		if (strcmp(c->status, "active") != 0)
		{
			*detail = psprintf("the customer's account is %s", c->status);
			return "points_not_spendable";
		}
		if (c->request[p->benefit.currency_index] == REQUEST_NONE)
		{
			*detail = psprintf("the receipt spends no %s", p->benefit.currency);
			return "points_not_requested";
		}
	}
	if (p->receipt_cond && !loyalty_cond_eval(p->receipt_cond, c->base_row))
	{
		FailedClause f = {-1, NULL};

		loyalty_cond_explain(p->receipt_cond, c->base_row, NoteFalse, &f);
		*detail = f.clause;
		return "receipt_condition";
	}
	return NULL;
}

/* Check each coupon; a valid one unlocks its promotion */
static void
CheckCoupons(Calc *c)
{
	Catalog    *cat = c->cat;

	for (int i = 0; i < c->ncoupons; i++)
	{
		Coupon	   *cp = &c->coupons[i];

		for (int j = 0; j < i && cp->reason == NULL; j++)
			if (pg_strcasecmp(c->coupons[j].code, cp->code) == 0)
				cp->reason = "duplicate";
		if (cp->reason)
			continue;
		if (!cp->found)
			cp->reason = "unknown";
		else if (strcmp(cp->state, "cancelled") == 0)
			cp->reason = "cancelled";
		else if (strcmp(cp->state, "redeemed") == 0 || (cp->use_limit > 0 && cp->uses >= cp->use_limit))
			cp->reason = "used_up";
		else if (!cp->in_window)
			cp->reason = "not_valid_now";
		else if (strcmp(cp->kind, "personal") == 0 &&
				 (!c->found || cp->customer_id != c->customer_id))
			cp->reason = "other_customer";
		if (cp->reason)
			continue;
		cp->promo = CatalogPromoIndex(cat, cp->promotion_id);
		if (cp->promo < 0)
			cp->reason = "promotion_not_active";
		else if (!Running(&cat->promos[cp->promo], c->at))
			cp->reason = "promotion_not_running";
	}
}

/* Which lines a restricted lot may pay; NULL for an unrestricted one */
static bool *
LotPays(Calc *c, CLot *lot)
{
	bool	   *pays;

	if (lot->lot.restriction == NULL)
		return NULL;
	pays = palloc0(sizeof(bool) * c->nlines);
	if (lot->restrict_prog == NULL)
		return pays;			/* a restriction that is not a condition pays nothing */
	for (int i = 0; i < c->nlines; i++)
		pays[i] = loyalty_cond_eval(lot->restrict_prog, c->lines[i].row);
	return pays;
}

/* Compile lot restrictions before rows are sized: they may add attributes */
static void
CompileRestrictions(Calc *c)
{
	for (int l = 0; l < c->nlots; l++)
		if (c->lots[l].lot.restriction)
			c->lots[l].restrict_prog = CatalogCondition(c->cat, c->lots[l].lot.restriction);
}

/* Rows of condition values: the receipt's and customer's, then each line's */
static void
ResolveRows(Calc *c)
{
	CondDocs	docs;
	JsonbParseState *ps = NULL;
	JsonbValue	k,
				v;
	int			n = loyalty_cond_dict_size(c->cat->dict);

	memset(&docs, 0, sizeof(docs));

	/*
	 * What calculate derives for the receipt comes before what the document
	 * says: "at" as the receipt's local wall clock (for weekday and hour),
	 * and "total", what its lines come to before discounts, in major units
	 * (a "total" the till sends is not what calculate counts).  The rest of
	 * the receipt's attributes are the document's.
	 */
	{
		int64		total = 0;

		for (int i = 0; i < c->nlines; i++)
			total += c->lines[i].amount;
		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "at";
		k.val.string.len = 2;
		pushJsonbValue(&ps, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = c->at_text;
		v.val.string.len = strlen(c->at_text);
		pushJsonbValue(&ps, WJB_VALUE, &v);
		k.val.string.val = "total";
		k.val.string.len = 5;
		pushJsonbValue(&ps, WJB_KEY, &k);
		v.type = jbvNumeric;
		v.val.numeric = NumericFromScaled(total, c->cat->money_exponent);
		pushJsonbValue(&ps, WJB_VALUE, &v);
	}
	docs.doc[COND_RECEIPT] = JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
	docs.fallback[COND_RECEIPT] = c->doc;
	docs.doc[COND_CUSTOMER] = c->customer_doc;

	c->nattrs = n;
	c->base_row = palloc0(sizeof(CondValue) * Max(n, 1));
	loyalty_cond_resolve_row(c->base_row, c->cat->dict, COND_RECEIPT, &docs);
	loyalty_cond_resolve_row(c->base_row, c->cat->dict, COND_CUSTOMER, &docs);
	for (int i = 0; i < c->nlines; i++)
	{
		RLine	   *l = &c->lines[i];

		l->row = palloc(sizeof(CondValue) * Max(n, 1));
		memcpy(l->row, c->base_row, sizeof(CondValue) * n);
		docs.doc[COND_LINE] = l->doc;
		docs.fallback[COND_LINE] = l->product;
		loyalty_cond_resolve_row(l->row, c->cat->dict, COND_LINE, &docs);
	}
}

/* ---- the answer ---- */

/* A candidate of the search and the catalogue promotion it is */
typedef struct Cand
{
	int			promo;
	bool	   *elig;
	SPromo		s;
} Cand;

/* The candidates' order: priority, then code (sorts indexes into cands) */
typedef struct CandOrder
{
	const Catalog *cat;
	const Cand *cands;
} CandOrder;

static int
cand_cmp(const void *a, const void *b, void *arg)
{
	const CandOrder *o = arg;
	const Cand *x = &o->cands[*(const int *) a],
			   *y = &o->cands[*(const int *) b];
	const Catalog *cat = o->cat;
	const CatPromo *px = &cat->promos[x->promo],
			   *py = &cat->promos[y->promo];

	if (px->priority != py->priority)
		return px->priority > py->priority ? -1 : 1;
	return strcmp(px->code, py->code);
}

/* Why a promotion was not applied */
typedef struct Rejection
{
	int			promo;
	const char *reason;
	char	   *detail;
} Rejection;

static void
JbMoney(JsonBuild *jb, const char *key, Catalog *cat, int64 v)
{
	JbNumeric(jb, key, NumericFromScaled(v, cat->money_exponent));
}

static void
JbPoints(JsonBuild *jb, const char *key, Catalog *cat, int cur, int64 v)
{
	JbNumeric(jb, key, NumericFromScaled(v, cat->currencies[cur].exponent));
}

static int
PlanPromoCurrency(const Catalog *cat, const CatPromo *p)
{
	if (BenefitRoleOf(p->benefit.kind) == ROLE_MULTIPLIER || p->benefit.currency_index < 0)
		return cat->default_currency;
	return p->benefit.currency_index;
}

/* Did the combination apply catalogue promotion promo (as candidate j)? */
static bool
AppliedPromo(int promo, int ncands, const Cand *cands, const bool *chosen,
			 const SDetail *det, const SProblem *prob)
{
	for (int j = 0; j < ncands; j++)
		if (cands[j].promo == promo && chosen[j] && SearchShows(prob, det, j))
			return true;
	return false;
}

/* Of two valid coupons, the one to use first: the sooner to expire */
static bool
CouponBefore(const Coupon *a, const Coupon *b)
{
	if (a->ends != b->ends)
		return a->ends;
	return a->ends && a->end < b->end;
}

/*
 * The coupons the answer uses: for each applied promotion for coupon
 * holders, one of its valid coupons, the one that expires first (ties: the
 * first on the receipt).  Returns a flag per coupon of the receipt.
 */
static bool *
ChooseCoupons(Calc *c, int ncands, const Cand *cands, const bool *chosen,
			  const SDetail *det, const SProblem *prob)
{
	bool	   *used = palloc0(sizeof(bool) * Max(c->ncoupons, 1));

	for (int i = 0; i < c->ncoupons; i++)
	{
		Coupon	   *cp = &c->coupons[i];
		int			best = -1;
		bool		done = false;

		if (cp->reason || c->cat->promos[cp->promo].audience != AUD_COUPON ||
			!AppliedPromo(cp->promo, ncands, cands, chosen, det, prob))
			continue;
		for (int j = 0; j < c->ncoupons; j++)
			if (c->coupons[j].reason == NULL && c->coupons[j].promo == cp->promo)
			{
				done |= used[j];
				if (best < 0 || CouponBefore(&c->coupons[j], &c->coupons[best]))
					best = j;
			}
		if (!done)
			used[best] = true;
	}
	return used;
}

/* Why valid coupon i is not used */
static const char *
UnusedCouponReason(Calc *c, int i, int ncands, const Cand *cands, const bool *chosen,
				   const SDetail *det, const SProblem *prob)
{
	Coupon	   *cp = &c->coupons[i];

	if (!AppliedPromo(cp->promo, ncands, cands, chosen, det, prob))
		return "promotion_not_applied";
	if (c->cat->promos[cp->promo].audience != AUD_COUPON)
		return "coupon_not_required";
	return "another_coupon_used";
}

/*
 * The memory of a call: one context is kept between calls (reset, with its
 * first block), so that a call allocates from memory already mapped rather
 * than growing and trimming the heap every time.  While in use it is a
 * child of the caller's context, so an error frees it with that.
 */
#define CALL_BLOCK_SIZE (512 * 1024)

static MemoryContext SpareCxt = NULL;

static MemoryContext
CalcContext(MemoryContext parent)
{
	MemoryContext cxt = SpareCxt;

	SpareCxt = NULL;
	if (cxt == NULL)
		return AllocSetContextCreate(parent, "loyalty calculate", 0, CALL_BLOCK_SIZE,
									 ALLOCSET_DEFAULT_MAXSIZE);
	MemoryContextSetParent(cxt, parent);
	return cxt;
}

static void
CalcContextDone(MemoryContext cxt)
{
	if (SpareCxt != NULL)
	{
		MemoryContextDelete(cxt);	/* a nested call kept one already */
		return;
	}
	MemoryContextReset(cxt);
	MemoryContextSetParent(cxt, TopMemoryContext);
	SpareCxt = cxt;
}

/* Candidates by code, in jsonb's order of keys (ranked with the catalogue) */
static int
code_cmp(const void *a, const void *b, void *arg)
{
	const CandOrder *o = arg;
	int			x = o->cat->promos[o->cands[*(const int *) a].promo].code_rank;
	int			y = o->cat->promos[o->cands[*(const int *) b].promo].code_rank;

	return x < y ? -1 : x > y ? 1 : 0;
}

static int
int_cmp_asc(const void *a, const void *b)
{
	int			x = *(const int *) a,
				y = *(const int *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The calculation of a receipt: over the programme's active promotions, or,
 * with only (an int8[]), over those promotions whatever their status now,
 * as committed (see Gate).
 */
ReceiptPlan *
PlanCalculate(Jsonb *doc, ArrayType *only, bool explain)
{
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext cxt;
	int		   *by_code;
	bool	   *used;
	ReceiptPlan	   *plan;
	Calc		c;
	FoundCustomer fc;
	Catalog    *cat;
	char	   *program;
	JsonbValue	v;
	bool	  **elig;			/* by number among the matched */
	int		   *matched;		/* catalogue indexes */
	int			nmatched = 0;
	int			nalloc;
	Usage	   *usage;
	Rejection  *rejected;
	int			nrejected = 0;
	Cand	   *cands;
	int			ncands = 0;
	SProblem	prob;
	SResult		res;
	SDetail    *det;
	bool	   *best_set = NULL;	/* SearchBestSet, once a reason is asked */
	int			L;
	TimestampTz started = loyalty_log_min_duration >= 0 ? GetCurrentTimestamp() : 0;

	memset(&c, 0, sizeof(c));
	memset(&fc, 0, sizeof(fc));
	c.explain = explain;
	if (VARSIZE(doc) > (Size) loyalty_max_receipt_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("receipt is %zu bytes, more than loyalty.max_receipt_size (%d)",
						(Size) VARSIZE(doc), loyalty_max_receipt_bytes)));
	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("receipt must be a JSON object")));
	c.doc = doc;
	c.jd.name = "receipt";
	if (!JrKey(&doc->root, "program", &v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("receipt field \"program\" is missing")));
	program = JrString(&c.jd, "program", &v, 64);

	cxt = CalcContext(callcxt);
	SPI_connect();
	if (only)
	{
		/* compiled for this call: it goes with the call's context */
		MemoryContextSwitchTo(cxt);
		cat = c.cat = CatalogOf(program, only);
		c.as_committed = true;
	}
	else
		cat = c.cat = CatalogGet(program);
	RequireProgram(cat->program_id, "programme \"%s\"", program);
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	L = 0;

	/* the receipt */
	if (JrKey(&doc->root, "currency", &v) && v.type != jbvNull)
	{
		char	   *cur = JrString(&c.jd, "currency", &v, 64);

		if (strcmp(cur, cat->money_currency) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("receipt field \"currency\" is \"%s\", but programme \"%s\" takes %s",
							cur, cat->code, cat->money_currency)));
	}
	ReadAt(&c);
	c.receipt_id = OptString(&c, "receipt_id", 128);
	c.store = OptString(&c, "store", 128);
	c.city = OptString(&c, "city", 128);
	c.country = OptString(&c, "country", 2);
	c.channel = OptString(&c, "channel", 32);
	ReadLines(&c);
	L = c.nlines;
	{
		int64		total = 0;

		for (int i = 0; i < L; i++)
			total += c.lines[i].amount;	/* each at most 10^14: no overflow */
		if (total > RECEIPT_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("receipt comes to more than the calculation accepts"),
					 errdetail("Its lines come to %lld minor units; at most %lld are accepted.",
							   (long long) total, (long long) RECEIPT_MAX)));
	}
	ReadPoints(&c);
	ReadCoupons(&c);
	if (JrKey(&doc->root, "search", &v) && v.type != jbvNull)
	{
		char	   *mode = JrString(&c.jd, "search", &v, 32);

		if (strcmp(mode, "exhaustive") == 0)
		{
			/* a check for tests: its time grows as 2^n (the caller, not the definer) */
			if (!superuser_arg(GetOuterUserId()))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("receipt field \"search\": only a superuser may ask for the exhaustive search")));
			c.exhaustive = true;
		}
		else if (strcmp(mode, "branch_and_bound") != 0)
			JrFail(&c.jd, "search", "\"branch_and_bound\" or \"exhaustive\"");
	}

	if (JrKey(&doc->root, "explain", &v) && v.type != jbvNull)
	{
		if (v.type != jbvBool)
			JrFail(&c.jd, "explain", "true or false");
		c.explain = v.val.boolean;
	}

	/* the customer and what they hold */
	ReadCustomer(&c, &cat->program, CurrentMemoryContext, &fc);
	if (c.found)
		LoadCustomer(&c, &fc);
	c.variants = ExperimentAssign(cat, c.at, c.found, c.customer_id);
	LoadProducts(&c);
	LoadCoupons(&c);
	CheckCoupons(&c);
	CompileRestrictions(&c);
	ResolveRows(&c);

	/*
	 * Which lines each promotion's line condition takes: the promotions some
	 * line matches, numbered in the catalogue's scratch (work stays in
	 * proportion to what the receipt matches, not to the catalogue).
	 */
	if (++cat->call == 0)
	{
		memset(cat->stamp, 0, sizeof(uint32) * cat->npromos);
		cat->call = 1;
	}
	nalloc = 64;
	matched = palloc(sizeof(int) * nalloc);
	elig = palloc(sizeof(bool *) * nalloc);
	loyalty_cond_index_receipt(cat->index, c.base_row);
	for (int i = 0; i < L; i++)
	{
		int			n = loyalty_cond_index_line_unordered(cat->index, c.lines[i].row, cat->match_buf);

		for (int j = 0; j < n; j++)
		{
			int			k = cat->match_buf[j];

			if (cat->stamp[k] != cat->call)
			{
				/* a promotion not running, or broken, is left out at once */
				cat->stamp[k] = cat->call;
				cat->slot[k] = -1;
				if (cat->promos[k].broken || (!c.as_committed && !Running(&cat->promos[k], c.at)))
					continue;
				if (nmatched == nalloc)
				{
					nalloc *= 2;
					matched = repalloc(matched, sizeof(int) * nalloc);
					elig = repalloc(elig, sizeof(bool *) * nalloc);
				}
				cat->slot[k] = nmatched;
				matched[nmatched] = k;
				elig[nmatched++] = palloc0(sizeof(bool) * L);
			}
			if (cat->slot[k] >= 0)
				elig[cat->slot[k]][i] = true;
		}
	}

	/* gates, in catalogue order */
	qsort(matched, nmatched, sizeof(int), int_cmp_asc);
	{
		bool	  **by_slot = palloc(sizeof(bool *) * Max(nmatched, 1));

		for (int m = 0; m < nmatched; m++)
			by_slot[m] = elig[cat->slot[matched[m]]];
		elig = by_slot;
	}
	usage = palloc0(sizeof(Usage) * Max(nmatched, 1));
	if (!c.as_committed)
		LoadUsage(&c, nmatched, matched, usage);
	rejected = palloc(sizeof(Rejection) * Max(nmatched, 1));
	cands = palloc0(sizeof(Cand) * Max(nmatched, 1));
	for (int m = 0; m < nmatched; m++)
	{
		int			k = matched[m];
		char	   *detail;
		const char *reason;

		reason = Gate(&c, k, &usage[m], &detail);
		if (reason)
		{
			rejected[nrejected++] = (Rejection) {k, reason, detail};
			continue;
		}
		cands[ncands].elig = elig[m];
		cands[ncands++].promo = k;
	}

	/* the problem */
	memset(&prob, 0, sizeof(prob));
	prob.nlines = L;
	prob.lines = palloc0(sizeof(SLine) * Max(L, 1));
	for (int i = 0; i < L; i++)
	{
		RLine	   *l = &c.lines[i];
		SLine	   *s = &prob.lines[i];

		s->amount = l->amount;
		s->unit_price = l->unit_price;
		s->qty_milli = l->qty_milli;
		s->units = (l->qty_milli % 1000 == 0 && l->qty_milli / 1000 <= 10000) ? l->qty_milli / 1000 : 0;
		s->floor = Min(l->amount, cat->min_line_price);
		s->points_ok = !(cat->points_excluded && loyalty_cond_eval(cat->points_excluded, l->row));
	}
	prob.ngroups = cat->ngroups;
	prob.ncurrencies = cat->ncurrencies;
	prob.currencies = palloc0(sizeof(SCurrency) * Max(cat->ncurrencies, 1));
	prob.can_spend = c.found && strcmp(c.status, "active") == 0;
	prob.can_earn = c.found && strcmp(c.status, "blocked") != 0;
	c.held = palloc0(sizeof(int64) * Max(cat->ncurrencies, 1));
	c.spendable = palloc0(sizeof(int64) * Max(cat->ncurrencies, 1));
	for (int w = 0; w < c.nwallets; w++)
	{
		int			cur = CatalogCurrencyIndex(cat, c.wallets[w].currency);

		if (cur < 0)
			continue;
		c.held[cur] = c.wallets[w].held;
		c.spendable[cur] = Max(0, c.wallets[w].effective - c.wallets[w].held);
	}
	for (int i = 0; i < cat->ncurrencies; i++)
	{
		SCurrency  *s = &prob.currencies[i];
		CatCurrency *cc = &cat->currencies[i];

		s->value_num = cc->value_num;
		s->value_den = cc->value_den;
		s->value_scaled = (int64) (((int128) cc->value_num * SEARCH_SCALE * cat->earn_weight_bp) /
								   ((int128) cc->value_den * 10000));
		/* what the receipt asks to spend bounds prices in points too */
		s->spendable = !prob.can_spend || c.request[i] == REQUEST_NONE ? 0 :
			c.request[i] == REQUEST_MAX ? c.spendable[i] : Min(c.request[i], c.spendable[i]);
		s->request = c.request[i] == REQUEST_MAX ? -1 : Max(c.request[i], 0);
	}
	prob.nlots = c.nlots;
	prob.lots = palloc0(sizeof(SLot) * Max(c.nlots, 1));
	for (int l = 0; l < c.nlots; l++)
	{
		prob.lots[l].currency = c.lots[l].currency;
		prob.lots[l].remaining = c.lots[l].lot.remaining;
		prob.lots[l].pays = LotPays(&c, &c.lots[l]);
	}
	prob.max_discount_bp = cat->max_discount_bp;
	prob.max_points_bp = cat->max_points_bp;
	prob.discount_step = cat->discount_step;
	prob.accrual_rate_bp = cat->accrual_rate_bp;
	prob.base_currency = cat->default_currency;
	if (cat->ncurrencies == 0)
		prob.can_earn = prob.can_spend = false;

	prob.npromos = ncands;
	prob.promos = palloc0(sizeof(SPromo) * Max(ncands, 1));
	for (int j = 0; j < ncands; j++)
	{
		CatPromo   *p = &cat->promos[cands[j].promo];
		SPromo	   *s = &prob.promos[j];
		const Benefit *b = &p->benefit;

		s->benefit = b;
		s->ops = BenefitOpsOf(b->kind);
		s->role = s->ops->role;
		s->group = BenefitRoleIsReceiptLevel(s->role) ? -1 : p->group;
		s->receipt_group = BenefitRoleIsReceiptLevel(s->role) ? p->group : -1;
		s->exclusive = p->exclusive;
		s->elig = cands[j].elig;
		s->currency = PlanPromoCurrency(cat, p);
		s->in_points = b->in_points;
		if (b->nparts > 0)
		{
			s->part_elig = palloc(sizeof(bool *) * b->nparts);
			for (int q = 0; q < b->nparts; q++)
			{
				s->part_elig[q] = palloc0(sizeof(bool) * L);
				for (int i = 0; i < L; i++)
					s->part_elig[q][i] = s->elig[i] &&
						loyalty_cond_eval(p->part_conds[q], c.lines[i].row);
			}
		}
	}
	SearchPrepare(&prob);
	for (int j = 0; j < ncands; j++)
		cands[j].s = prob.promos[j];
	/* a candidate that can give nothing here is not searched */
	{
		int			kept = 0;

		for (int j = 0; j < ncands; j++)
		{
			if (cands[j].s.ub <= 0 && cands[j].s.role == ROLE_RECEIPT_OFF)
				rejected[nrejected++] = (Rejection) {cands[j].promo, "below_threshold",
					DatumGetCString(DirectFunctionCall1(numeric_out,
														NumericGetDatum(NumericFromScaled(cands[j].s.benefit->threshold, cat->money_exponent))))};
			else if (cands[j].s.ub <= 0 && cands[j].s.role == ROLE_LINE)
				rejected[nrejected++] = (Rejection) {cands[j].promo, "no_benefit", NULL};
			else
				cands[kept++] = cands[j];
		}
		ncands = kept;
	}
	{
		int		   *order = palloc(sizeof(int) * Max(ncands, 1));
		Cand	   *sorted = palloc(sizeof(Cand) * Max(ncands, 1));
		CandOrder	arg = {cat, cands};

		for (int j = 0; j < ncands; j++)
			order[j] = j;
		qsort_arg(order, ncands, sizeof(int), cand_cmp, &arg);
		for (int j = 0; j < ncands; j++)
			sorted[j] = cands[order[j]];
		cands = sorted;
	}
	prob.npromos = ncands;
	for (int j = 0; j < ncands; j++)
		prob.promos[j] = cands[j].s;

	if (c.exhaustive)
		SearchExhaustive(&prob, &res);
	else
		SearchBranchAndBound(&prob, loyalty_search_budget_ms, &res);
	det = SearchDetailAlloc(&prob);
	SearchEvaluate(&prob, res.chosen, &res.outcome, det);

	/* the plan */
	MemoryContextSwitchTo(cxt);
	plan = palloc0(sizeof(ReceiptPlan));
	plan->cxt = cxt;
	plan->cat = cat;
	plan->as_committed = c.as_committed;
	plan->explain = c.explain;
	plan->receipt_id = c.receipt_id;
	plan->at = c.at;
	plan->at_offset = c.at_offset;
	plan->local_date = c.local_date;
	plan->identified = c.identified;
	plan->found = c.found;
	plan->not_found_reason = c.not_found_reason;
	plan->customer_id = c.customer_id;
	plan->status = c.status;
	plan->ident_kind = c.found ? fc.ident_kind : NULL;
	plan->ident_value = c.found ? fc.ident_value : NULL;
	plan->store = c.store;
	plan->tier = c.tier;
	plan->segments = c.segments;
	plan->variants = c.variants;
	plan->can_spend = prob.can_spend;
	plan->wallets = palloc0(sizeof(PlanWallet) * Max(c.nwallets, 1));
	for (int w = 0; w < c.nwallets; w++)
	{
		int			cur = CatalogCurrencyIndex(cat, c.wallets[w].currency);

		if (cur < 0)
			continue;
		plan->wallets[plan->nwallets++] = (PlanWallet) {
			c.wallets[w].currency, cur, c.wallets[w].effective, c.wallets[w].held,
			c.spendable[cur], c.wallets[w].version
		};
	}
	plan->nlots = c.nlots;
	plan->lots = palloc(sizeof(PlanLot) * Max(c.nlots, 1));
	for (int lot = 0; lot < c.nlots; lot++)
		plan->lots[lot] = (PlanLot) {c.lots[lot].lot.id, c.lots[lot].currency};

	/*
	 * Promotions' points are listed in jsonb's order of their codes (shorter
	 * first, then bytewise), so that rendering finds its keys sorted; by_code
	 * lists the candidates in that order.
	 */
	by_code = palloc(sizeof(int) * Max(ncands, 1));
	for (int j = 0; j < ncands; j++)
		by_code[j] = j;
	{
		CandOrder	order = {cat, cands};

		qsort_arg(by_code, ncands, sizeof(int), code_cmp, &order);
	}
	plan->nlines = L;
	plan->lines = palloc0(sizeof(PlanLine) * Max(L, 1));
	plan->line_rows = palloc(sizeof(CondValue *) * Max(L, 1));
	for (int i = 0; i < L; i++)
		plan->line_rows[i] = c.lines[i].row;
	for (int i = 0; i < L; i++)
	{
		RLine	   *l = &c.lines[i];
		PlanLine   *pl = &plan->lines[i];

		pl->no = l->no;
		pl->sku = l->sku;
		pl->qty_milli = l->qty_milli;
		pl->price = l->unit_price;
		pl->amount = l->amount;
		pl->discounts = palloc(sizeof(PlanDiscount) * Max(ncands, 1));
		for (int j = 0; j < ncands; j++)
		{
			pl->discount += Max(det->part[j * L + i], 0);
			if (det->part[j * L + i] > 0)
				pl->discounts[pl->ndiscounts++] = (PlanDiscount) {cands[j].promo, det->part[j * L + i]};
		}
		pl->paid = palloc(sizeof(PlanPaid) * Max(c.nlots, 1));
		for (int lot = 0; lot < c.nlots; lot++)
			if (det->lot_points[lot * L + i] > 0)
			{
				pl->points_money += det->lot_money[lot * L + i];
				pl->paid[pl->npaid++] = (PlanPaid) {lot, det->lot_points[lot * L + i], det->lot_money[lot * L + i]};
			}
		pl->to_pay = l->amount - pl->discount - pl->points_money;
		/* per currency: the total, the base accrual, and what each promotion adds */
		pl->earned = palloc0(sizeof(PlanEarn) * Max(cat->ncurrencies, 1));
		for (int cur = 0; cur < cat->ncurrencies; cur++)
		{
			PlanEarn   *e = &pl->earned[pl->nearned];

			e->currency = cur;
			e->base = cur == cat->default_currency ? det->earn[i] : 0;
			e->points = Max(e->base, 0);
			e->promos = palloc(sizeof(PlanPromoEarn) * Max(ncands, 1));
			for (int x = 0; x < ncands; x++)
			{
				int			j = by_code[x];

				if (det->earn[(j + 1) * L + i] > 0 &&
					PlanPromoCurrency(cat, &cat->promos[cands[j].promo]) == cur)
				{
					e->points += det->earn[(j + 1) * L + i];
					e->promos[e->npromos++] = (PlanPromoEarn) {cands[j].promo, det->earn[(j + 1) * L + i]};
				}
			}
			if (e->points > 0)
				pl->nearned++;
		}
		plan->to_pay += pl->to_pay;
		plan->amount += l->amount;
	}
	plan->discount = res.outcome.discount;
	plan->points_money = res.outcome.points_money;
	plan->points_spent = palloc0(sizeof(int64) * Max(cat->ncurrencies, 1));
	for (int lot = 0; lot < c.nlots; lot++)
		for (int i = 0; i < L; i++)
			plan->points_spent[c.lots[lot].currency] += det->lot_points[lot * L + i];
	plan->points_earned = palloc0(sizeof(int64) * Max(cat->ncurrencies, 1));
	if (cat->ncurrencies > 0)
		plan->points_earned[cat->default_currency] = det->promo_earn[0];
	for (int j = 0; j < ncands; j++)
		plan->points_earned[PlanPromoCurrency(cat, &cat->promos[cands[j].promo])] += det->promo_earn[j + 1];

	plan->gifts = palloc(sizeof(int) * Max(ncands, 1));
	plan->bonus = palloc(sizeof(int) * Max(ncands, 1));
	plan->applied = palloc(sizeof(PlanApplied) * Max(ncands, 1));
	plan->not_applied = palloc(sizeof(PlanNotApplied) * (ncands + nrejected + 1));
	for (int j = 0; j < ncands; j++)
	{
		CatPromo   *p = &cat->promos[cands[j].promo];

		if (det->won[j] && prob.promos[j].role == ROLE_GIFT)
			plan->gifts[plan->ngifts++] = cands[j].promo;
		if (res.chosen[j] && prob.promos[j].ops->own_lot && det->promo_earn[j + 1] > 0)
			plan->bonus[plan->nbonus++] = cands[j].promo;
		if (res.chosen[j] && SearchShows(&prob, det, j))
			plan->applied[plan->napplied++] = (PlanApplied) {
				cands[j].promo, det->capped[j], det->promo_discount[j], det->promo_earn[j + 1],
				PlanPromoCurrency(cat, p)
			};
		else if (c.explain)
		{
			SearchWhy	why;

			if (best_set == NULL)
			{
				best_set = palloc(sizeof(bool) * Max(ncands, 1));
				SearchBestSet(&prob, res.chosen, best_set);
			}
			why = SearchWhyNot(&prob, best_set, det, j);
			plan->not_applied[plan->nnot_applied++] = (PlanNotApplied) {
				cands[j].promo,
				why == SEARCH_WHY_THRESHOLD ? "below_threshold" :
				why == SEARCH_WHY_CAP ? "cap" : "excluded_by_better",
				why == SEARCH_WHY_THRESHOLD ?
				DatumGetCString(DirectFunctionCall1(numeric_out,
													NumericGetDatum(NumericFromScaled(p->benefit.threshold, cat->money_exponent)))) :
				NULL
			};
		}
	}
	for (int r = 0; r < nrejected && c.explain; r++)
		plan->not_applied[plan->nnot_applied++] = (PlanNotApplied) {
			rejected[r].promo, rejected[r].reason, rejected[r].detail
		};

	/*
	 * Coupons: a promotion for coupon holders that applies uses one coupon,
	 * the valid one of it that expires first (then the first on the
	 * receipt); commit consumes only those.  A valid coupon no benefit used
	 * is not_used and stays as it is: its promotion did not apply, needs no
	 * coupon, or used another.
	 */
	used = ChooseCoupons(&c, ncands, cands, res.chosen, det, &prob);
	plan->ncoupons = c.ncoupons;
	plan->coupons = palloc0(sizeof(PlanCoupon) * Max(c.ncoupons, 1));
	for (int i = 0; i < c.ncoupons; i++)
	{
		Coupon	   *cp = &c.coupons[i];
		PlanCoupon *pc = &plan->coupons[i];

		pc->code = cp->code;
		pc->promo = cp->promo;
		if (cp->reason)
		{
			pc->status = COUPON_REJECTED;
			pc->reason = cp->reason;
		}
		else if (used[i])
			pc->status = COUPON_ACCEPTED;
		else
		{
			pc->status = COUPON_NOT_USED;
			pc->reason = UnusedCouponReason(&c, i, ncands, cands, res.chosen, det, &prob);
		}
	}
	plan->optimal = res.optimal;
	plan->explored = res.explored;
	plan->candidates = ncands;
	MemoryContextSwitchTo(callcxt);
	if (loyalty_log_min_duration >= 0)
		LogSlowCalculation(started, cat->code, c.receipt_id, L, ncands, res.explored,
						   res.optimal, c.as_committed);
	return plan;
}

/* ---- the answer ---- */

/*
 * The elements of one of a line's arrays, pushed into the array jb has
 * open: its discounts, the lots that paid it, its points
 */
void
PlanRenderLine(ReceiptPlan *plan, int i, PlanLinePart part, JsonBuild *jb)
{
	Catalog    *cat = plan->cat;
	PlanLine   *l = &plan->lines[i];

	if (part == LINE_DISCOUNTS)
		for (int d = 0; d < l->ndiscounts; d++)
		{
			JbBeginObject(jb, NULL);
			JbMoney(jb, "amount", cat, l->discounts[d].amount);
			JbText(jb, "promotion", cat->promos[l->discounts[d].promo].code);
			JbEndObject(jb);
		}
	else if (part == LINE_POINTS_PAID)
		for (int k = 0; k < l->npaid; k++)
		{
			PlanPaid   *pp = &l->paid[k];
			int			cur = plan->lots[pp->lot].currency;

			JbBeginObject(jb, NULL);
			JbInt(jb, "lot", plan->lots[pp->lot].id);
			JbMoney(jb, "amount", cat, pp->money);
			JbPoints(jb, "points", cat, cur, pp->points);
			JbText(jb, "currency", cat->currencies[cur].code);
			JbEndObject(jb);
		}
	else
		for (int k = 0; k < l->nearned; k++)
		{
			PlanEarn   *e = &l->earned[k];

			JbBeginObject(jb, NULL);
			if (e->base > 0)
				JbPoints(jb, "base", cat, e->currency, e->base);
			JbPoints(jb, "points", cat, e->currency, e->points);
			JbText(jb, "currency", cat->currencies[e->currency].code);
			JbBeginObject(jb, "by_promotion");
			for (int x = 0; x < e->npromos; x++)
				JbPoints(jb, cat->promos[e->promos[x].promo].code, cat, e->currency, e->promos[x].points);
			JbEndObject(jb);
			JbEndObject(jb);
		}
}

/*
 * A line of the default answer, pushed into the array jb has open: its
 * number, money and what it earns per currency.  Commit stores the answer
 * without these (the receipt's line_ and earned_ arrays hold them) and a
 * replay renders them back from there with this same function.
 */
void
PlanRenderLineSummary(Catalog *cat, const PlanLine *l, JsonBuild *jb)
{
	JbBeginObject(jb, NULL);
	JbInt(jb, "line", l->no);
	JbMoney(jb, "to_pay", cat, l->to_pay);
	JbMoney(jb, "discount", cat, l->discount);
	JbMoney(jb, "points_amount", cat, l->points_money);
	JbBeginObject(jb, "points_earned");
	for (int k = 0; k < l->nearned; k++)
		JbPoints(jb, cat->currencies[l->earned[k].currency].code, cat,
				 l->earned[k].currency, l->earned[k].points);
	JbEndObject(jb);
	JbEndObject(jb);
}

/* The answer's totals */
void
PlanRenderTotals(ReceiptPlan *plan, JsonBuild *jb)
{
	Catalog    *cat = plan->cat;

	JbBeginObject(jb, "totals");
	JbMoney(jb, "amount", cat, plan->amount);
	JbMoney(jb, "discount", cat, plan->discount);
	JbMoney(jb, "points_paid", cat, plan->points_money);
	JbMoney(jb, "to_pay", cat, plan->to_pay);
	JbBeginObject(jb, "points_spent");
	for (int cur = 0; cur < cat->ncurrencies; cur++)
		if (plan->points_spent[cur] > 0)
			JbPoints(jb, cat->currencies[cur].code, cat, cur, plan->points_spent[cur]);
	JbEndObject(jb);
	JbBeginObject(jb, "points_earned");
	for (int cur = 0; cur < cat->ncurrencies; cur++)
		if (plan->points_earned[cur] > 0)
			JbPoints(jb, cat->currencies[cur].code, cat, cur, plan->points_earned[cur]);
	JbEndObject(jb);
	JbEndObject(jb);
}

/* Why the promotions that matched and do not apply do not (explain) */
static void
PlanRenderNotApplied(ReceiptPlan *plan, JsonBuild *jb)
{
	Catalog    *cat = plan->cat;

	JbBeginArray(jb, "not_applied");
	for (int n = 0; n < plan->nnot_applied; n++)
	{
		PlanNotApplied *pn = &plan->not_applied[n];
		const CatPromo *p = &cat->promos[pn->promo];

		JbBeginObject(jb, NULL);
		JbText(jb, "code", p->code);
		JbText(jb, "name", p->name);
		if (pn->detail)
			JbText(jb, "detail", pn->detail);
		JbText(jb, "reason", pn->reason);
		JbEndObject(jb);
	}
	JbEndArray(jb);
}

/*
 * The answer's members, pushed into the object jb has open: the plan as
 * docs/receipts.md shows it, money and points in major units.
 */
/*
 * The experiments that apply to the receipt and the customer's variant in
 * each: [{"code", "variant"}] in the experiments' order, or nothing
 */
static void
PlanRenderExperiments(const ReceiptPlan *plan, JsonBuild *jb)
{
	const Catalog *cat = plan->cat;
	bool		any = false;

	for (int e = 0; plan->variants && e < cat->nexperiments; e++)
		any |= plan->variants[e] >= 0;
	if (!any)
		return;
	JbBeginArray(jb, "experiments");
	for (int e = 0; e < cat->nexperiments; e++)
	{
		if (plan->variants[e] < 0)
			continue;
		JbBeginObject(jb, NULL);
		JbText(jb, "code", cat->experiments[e].code);
		JbText(jb, "variant", cat->experiments[e].variants[plan->variants[e]]);
		JbEndObject(jb);
	}
	JbEndArray(jb);
}

void
PlanRender(ReceiptPlan *plan, JsonBuild *jb)
{
	Catalog    *cat = plan->cat;

	JbText(jb, "program", cat->code);
	JbText(jb, "receipt_id", plan->receipt_id);
	JbText(jb, "at", AtIso(plan->at, plan->at_offset));
	JbText(jb, "currency", cat->money_currency);

	if (!plan->identified)
		JbNull(jb, "customer");
	else
	{
		JbBeginObject(jb, "customer");
		JbBool(jb, "found", plan->found);
		if (!plan->found)
			JbText(jb, "reason", plan->not_found_reason);
		else
		{
			JbInt(jb, "id", plan->customer_id);
			JbText(jb, "status", plan->status);
			JbText(jb, "tier", plan->tier);
			JbBeginArray(jb, "segments");
			for (int i = 0; i < plan->segments.n; i++)
				JbText(jb, NULL, plan->segments.items[i]);
			JbEndArray(jb);
			if (!plan->can_spend)
				JbText(jb, "points_spending", psprintf("not allowed: the account is %s", plan->status));
			JbBeginArray(jb, "wallets");
			for (int w = 0; w < plan->nwallets; w++)
			{
				PlanWallet *pw = &plan->wallets[w];

				JbBeginObject(jb, NULL);
				JbText(jb, "currency", pw->currency);
				JbPoints(jb, "balance", cat, pw->index, pw->balance);
				JbPoints(jb, "held", cat, pw->index, pw->held);
				JbPoints(jb, "available", cat, pw->index, pw->available);
				JbInt(jb, "version", pw->version);
				JbEndObject(jb);
			}
			JbEndArray(jb);
		}
		JbEndObject(jb);
	}
	PlanRenderExperiments(plan, jb);

	JbBeginArray(jb, "lines");
	for (int i = 0; i < plan->nlines; i++)
	{
		PlanLine   *l = &plan->lines[i];

		if (!plan->explain)
		{
			PlanRenderLineSummary(cat, l, jb);
			continue;
		}
		JbBeginObject(jb, NULL);
		JbInt(jb, "line", l->no);
		JbMoney(jb, "to_pay", cat, l->to_pay);
		JbMoney(jb, "discount", cat, l->discount);
		JbMoney(jb, "points_amount", cat, l->points_money);
		JbNumeric(jb, "qty", DatumGetNumeric(DirectFunctionCall1(numeric_trim_scale,
																  NumericGetDatum(NumericFromScaled(l->qty_milli, QTY_EXPONENT)))));
		JbText(jb, "sku", l->sku);
		JbMoney(jb, "price", cat, l->price);
		JbMoney(jb, "amount", cat, l->amount);
		JbBeginArray(jb, "discounts");
		PlanRenderLine(plan, i, LINE_DISCOUNTS, jb);
		JbEndArray(jb);
		JbBeginArray(jb, "points_paid");
		PlanRenderLine(plan, i, LINE_POINTS_PAID, jb);
		JbEndArray(jb);
		JbBeginArray(jb, "points_earned");
		PlanRenderLine(plan, i, LINE_POINTS_EARNED, jb);
		JbEndArray(jb);
		JbEndObject(jb);
	}
	JbEndArray(jb);

	JbBeginArray(jb, "gifts");
	for (int g = 0; g < plan->ngifts; g++)
	{
		const CatPromo *p = &cat->promos[plan->gifts[g]];

		JbBeginObject(jb, NULL);
		JbText(jb, "promotion", p->code);
		JbText(jb, "sku", p->benefit.sku);
		JbTextIf(jb, "name", p->benefit.name);
		JbMoney(jb, "value", cat, p->benefit.amount);
		JbEndObject(jb);
	}
	JbEndArray(jb);

	JbBeginArray(jb, "bonus_lots");
	for (int b = 0; b < plan->nbonus; b++)
	{
		const CatPromo *p = &cat->promos[plan->bonus[b]];

		JbBeginObject(jb, NULL);
		JbText(jb, "promotion", p->code);
		JbText(jb, "currency", p->benefit.currency);
		JbPoints(jb, "points", cat, p->benefit.currency_index, p->benefit.points);
		if (p->benefit.valid_days > 0)
			JbInt(jb, "valid_days", p->benefit.valid_days);
		else
			JbNull(jb, "valid_days");
		JbTextIf(jb, "restriction", p->benefit.restriction);
		JbEndObject(jb);
	}
	JbEndArray(jb);

	PlanRenderTotals(plan, jb);

	JbBeginObject(jb, "promotions");
	JbBeginArray(jb, "applied");
	for (int a = 0; a < plan->napplied; a++)
	{
		PlanApplied *pa = &plan->applied[a];
		const CatPromo *p = &cat->promos[pa->promo];

		JbBeginObject(jb, NULL);
		JbText(jb, "code", p->code);
		if (plan->explain)
			JbText(jb, "kind", BenefitOpsOf(p->benefit.kind)->name);
		JbText(jb, "name", p->name);
		if (pa->capped)
			JbBool(jb, "capped", true);
		JbMoney(jb, "discount", cat, pa->discount);
		if (pa->points_earned > 0)
			JbPoints(jb, "points_earned", cat, pa->currency, pa->points_earned);
		JbEndObject(jb);
	}
	JbEndArray(jb);
	if (plan->explain)
		PlanRenderNotApplied(plan, jb);
	JbEndObject(jb);

	JbBeginArray(jb, "coupons");
	for (int i = 0; i < plan->ncoupons; i++)
	{
		PlanCoupon *pc = &plan->coupons[i];
		static const char *const status[] = {"accepted", "rejected", "not_used"};

		JbBeginObject(jb, NULL);
		JbText(jb, "code", pc->code);
		JbText(jb, "status", status[pc->status]);
		if (pc->reason)
			JbText(jb, "reason", pc->reason);
		if (pc->promo >= 0)
			JbText(jb, "promotion", cat->promos[pc->promo].code);
		JbEndObject(jb);
	}
	JbEndArray(jb);

	if (plan->explain)
	{
		JbBool(jb, "optimal", plan->optimal);
		JbInt(jb, "explored", plan->explored);
		JbInt(jb, "candidates", plan->candidates);
	}
	JbInt(jb, "catalog_generation", cat->generation);
}

/* The plan's answer, in the caller's memory */
Jsonb *
PlanAnswer(ReceiptPlan *plan)
{
	MemoryContext old = MemoryContextSwitchTo(plan->cxt);
	JsonBuild	jb = NULL;
	Jsonb	   *result;

	JbBeginObject(&jb, NULL);
	PlanRender(plan, &jb);
	result = JbFinish(&jb);
	MemoryContextSwitchTo(old);
	return JbCopy(CurrentMemoryContext, result);
}

/* Done with the plan: its memory is kept for the next call */
void
PlanFree(ReceiptPlan *plan)
{
	CalcContextDone(plan->cxt);
}

/* The answer of a calculation, logged if slow */
static Datum
CalculateAnswer(Jsonb *doc, ArrayType *only, bool explain)
{
	ReceiptPlan	   *plan = PlanCalculate(doc, only, explain);
	Jsonb	   *answer = PlanAnswer(plan);

	PlanFree(plan);
	PG_RETURN_JSONB_P(answer);
}

/* loyalty.calculate(receipt jsonb) returns jsonb: the compact answer unless "explain" */
Datum
loyalty_calculate_compact(PG_FUNCTION_ARGS)
{
	return CalculateAnswer(PG_GETARG_JSONB_P(0), NULL, false);
}

/*
 * The entry point loyalty.calculate had before 0.13, kept for a database
 * whose schema is older than the library (the library is installed before
 * ALTER EXTENSION UPDATE runs; a replica is promoted before it can): it
 * answers in the whole form unless the receipt says "explain": false, as
 * those versions' SQL (their commit reads each line's breakdown) expects.
 */
Datum
loyalty_calculate(PG_FUNCTION_ARGS)
{
	return CalculateAnswer(PG_GETARG_JSONB_P(0), NULL, true);
}

/*
 * loyalty.recompute(receipt jsonb, promotions bigint[]) returns jsonb: the
 * calculation over only these promotions as a committed receipt had them
 * (their day, place, audience, limits and coupons held), for what is left of
 * it after a return
 */
Datum
loyalty_recompute(PG_FUNCTION_ARGS)
{
	ArrayType  *ids = PG_GETARG_ARRAYTYPE_P(1);

	if (ARR_NDIM(ids) > 1 || array_contains_nulls(ids))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("promotions must be a one-dimensional array of ids without nulls")));
	return CalculateAnswer(PG_GETARG_JSONB_P(0), ids, false);
}
