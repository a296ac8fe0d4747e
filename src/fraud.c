/*
 * src/fraud.c
 *
 * Velocity rules, checked in the transaction of the operation they watch.
 * A programme's active rules are compiled with its catalogue (their
 * conditions over the catalogue's dictionary, so that commit matches them
 * on the rows calculate resolved).  An operation adds to the rules of each
 * of its subjects (customer, identifier, store, actor, device): the row of
 * loyalty.fraud_tally of that subject holds every rule's buckets, and is
 * locked, folded and written back, subject by subject in a fixed order, so
 * that two operations of one subject count one after the other and neither
 * slips under a threshold the other crosses.  A refuse rule crossed fails
 * the operation (P0L04); a flag or hold rule crossed opens a case
 * (loyalty.fraud_trip).  docs/fraud.md is the contract.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "common/int.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "access.h"
#include "catalog.h"
#include "conddocs.h"
#include "fraud.h"
#include "plan.h"
#include "product.h"
#include "program.h"
#include "wallet.h"

static const char *const measure_names[] = {
	"points_earned", "points_spent", "receipts", "refunds", "money_refunded",
	"distinct_cards", "distinct_phones", "distinct_stores", "holds", "adjustments", NULL
};
static const char *const subject_names[] = {
	"customer", "identifier", "store", "actor", "device", NULL
};
static const char *const action_names[] = {"flag", "hold", "refuse", NULL};
static const char *const operation_names[] = {
	"commit", "refund", "redeem", "transfer_out", "transfer_in", "adjust", "hold"
};

static KeptQuery rules_query = {
	"SELECT r.id, r.code, r.measure, r.subject, r.currency,"
	"       pg_catalog.date_part('epoch', r.resolution)::int8,"
	"       pg_catalog.date_part('epoch', r.\"window\")::int8, r.threshold, r.action, r.condition,"
	"       r.message"
	"  FROM loyalty.fraud_rule r"
	" WHERE r.program_id OPERATOR(pg_catalog.=) $1 AND r.active ORDER BY r.id",
	1, {INT8OID}, NULL
};
static KeptQuery tally_query = {
	"SELECT t.rule_id, t.bucket, t.amount, t.item FROM loyalty.fraud_tally t"
	" WHERE t.program_id OPERATOR(pg_catalog.=) $1 AND t.subject_kind OPERATOR(pg_catalog.=) $2"
	"   AND t.subject OPERATOR(pg_catalog.=) $3 FOR NO KEY UPDATE",
	3, {INT8OID, TEXTOID, TEXTOID}, NULL
};
static KeptQuery tally_insert = {
	"INSERT INTO loyalty.fraud_tally (program_id, subject_kind, subject, rule_id, bucket, amount, item)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
	7, {INT8OID, TEXTOID, TEXTOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID}, NULL
};
static KeptQuery tally_update = {
	"UPDATE loyalty.fraud_tally t SET rule_id = $4, bucket = $5, amount = $6, item = $7,"
	"       updated_at = pg_catalog.now()"
	" WHERE t.program_id OPERATOR(pg_catalog.=) $1 AND t.subject_kind OPERATOR(pg_catalog.=) $2"
	"   AND t.subject OPERATOR(pg_catalog.=) $3",
	7, {INT8OID, TEXTOID, TEXTOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID}, NULL
};
static KeptQuery trip_query = {
	"SELECT loyalty.fraud_trip($1, $2, $3, $4, $5, $6, $7, $8, $9)",
	9, {INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID}, NULL
};
static KeptQuery status_query = {
	"SELECT c.status FROM loyalty.customer c WHERE c.id OPERATOR(pg_catalog.=) $1 FOR SHARE",
	1, {INT8OID}, NULL
};

/*
 * One element of a tally row: a bucket of a rule, or a distinct item.  A
 * bucket is kept by its start (so that a rule's resolution may change: its
 * elements are read in the new one)
 */
typedef struct TallyEl
{
	int64		rule;
	int64		bucket;			/* start: microseconds since 2000-01-01 UTC */
	int64		amount;
	char	   *item;			/* distinct measures; NULL otherwise */
} TallyEl;

/* A rule crossed by the operation */
typedef struct Trip
{
	const FraudRule *rule;
	const char *subject;
	int64		tally;
} Trip;

static int
NameIndex(const char *const *names, const char *s, const char *what)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("fraud rule %s \"%s\" is not known to this library", what, s)));
	return -1;
}

static bool
IsDistinct(FraudMeasure m)
{
	return m == FM_DISTINCT_CARDS || m == FM_DISTINCT_PHONES || m == FM_DISTINCT_STORES;
}

/*
 * The programme's active rules into the catalogue being compiled (in its
 * context, connected to SPI).  A schema older than the library has none.
 */
void
FraudLoadRules(Catalog *cat)
{
	Datum		args[1] = {Int64GetDatum(cat->program_id)};
	MemoryContext here = CurrentMemoryContext;

	cat->nfraud = 0;
	cat->fraud = NULL;
	if (!OidIsValid(get_relname_relid("fraud_rule", get_namespace_oid("loyalty", false))))
		return;
	RunKept(&rules_query, args, NULL, 0);
	/* the rules go with the catalogue, whatever context the query left */
	MemoryContextSwitchTo(here);
	cat->fraud = palloc0(sizeof(FraudRule) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		FraudRule  *r = &cat->fraud[cat->nfraud];
		bool		isnull;
		char	   *currency = SPI_getvalue(t, desc, 5);
		Datum		cond;
		int64		resolution = DatumGetInt64(SPI_getbinval(t, desc, 6, &isnull));

		r->id = DatumGetInt64(SPI_getbinval(t, desc, 1, &isnull));
		r->code = SPI_getvalue(t, desc, 2);
		r->measure = (FraudMeasure) NameIndex(measure_names, SPI_getvalue(t, desc, 3), "measure");
		r->subject = (FraudSubject) NameIndex(subject_names, SPI_getvalue(t, desc, 4), "subject");
		r->currency = currency ? CatalogCurrencyIndex(cat, currency) : -1;
		r->window_seconds = DatumGetInt64(SPI_getbinval(t, desc, 7, &isnull));
		if (resolution <= 0 || r->window_seconds % resolution != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("fraud rule \"%s\" has a resolution that does not divide its window", r->code)));
		r->resolution = resolution * USECS_PER_SEC;
		r->nbuckets = r->window_seconds / resolution;
		r->threshold = DatumGetInt64(SPI_getbinval(t, desc, 8, &isnull));
		r->action = (FraudAction) NameIndex(action_names, SPI_getvalue(t, desc, 9), "action");
		cond = SPI_getbinval(t, desc, 10, &isnull);
		/* a copy: the program may point into the value, and SPI frees the tuple */
		r->cond = isnull ? NULL : loyalty_cond_load((Condition *) PG_DETOAST_DATUM_COPY(cond), cat->dict);
		r->message = SPI_getvalue(t, desc, 11);
		/* a points rule of a currency gone counts nothing */
		if (currency && r->currency < 0)
			continue;
		cat->nfraud++;
	}
}

/* Whether an operation of this kind can add to one of the rules */
bool
FraudAnyRule(const Catalog *cat, FraudOpKind kind)
{
	for (int i = 0; i < cat->nfraud; i++)
	{
		FraudMeasure m = cat->fraud[i].measure;

		switch (kind)
		{
			case FO_COMMIT:
				if (m == FM_POINTS_EARNED || m == FM_POINTS_SPENT || m == FM_RECEIPTS || IsDistinct(m))
					return true;
				break;
			case FO_REFUND:
				if (m == FM_REFUNDS || m == FM_MONEY_REFUNDED)
					return true;
				break;
			case FO_REDEEM:
			case FO_TRANSFER_OUT:
				if (m == FM_POINTS_SPENT && cat->fraud[i].cond == NULL)
					return true;
				break;
			case FO_TRANSFER_IN:
				if (m == FM_POINTS_EARNED && cat->fraud[i].cond == NULL)
					return true;
				break;
			case FO_ADJUST:
				if (m == FM_ADJUSTMENTS)
					return true;
				break;
			case FO_HOLD:
				if (m == FM_HOLDS)
					return true;
				break;
		}
	}
	return false;
}

/* The condition row of a returned line: its document, its product's, the receipt's */
static CondValue *
RefundLineRow(Catalog *cat, FraudOp *op, int i)
{
	int			n = loyalty_cond_dict_size(cat->dict);
	CondValue  *row = palloc0(sizeof(CondValue) * Max(n, 1));
	CondDocs	docs;

	memset(&docs, 0, sizeof(docs));
	docs.doc[COND_RECEIPT] = op->receipt_doc;
	docs.doc[COND_LINE] = op->line_docs[i];
	docs.fallback[COND_LINE] = op->line_skus[i] ? ProductDoc(cat->program_id, op->line_skus[i]) : NULL;
	loyalty_cond_resolve_row(row, cat->dict, COND_RECEIPT, &docs);
	loyalty_cond_resolve_row(row, cat->dict, COND_CUSTOMER, &docs);
	loyalty_cond_resolve_row(row, cat->dict, COND_LINE, &docs);
	return row;
}

/*
 * What the operation adds to the rule's measure: false if nothing, else
 * *amount, and *item for a distinct measure.
 */
static bool
Contribution(Catalog *cat, const FraudRule *r, FraudOp *op, CondValue ***rows,
			 int64 *amount, const char **item)
{
	*amount = 0;
	*item = NULL;
	if (r->cond && op->kind != FO_COMMIT && op->kind != FO_REFUND)
		return false;
	switch (op->kind)
	{
		case FO_COMMIT:
			{
				const ReceiptPlan *p = op->plan;
				bool		any = r->cond == NULL;
				int64		earned = 0;
				int64		spent = 0;

				if (r->cond == NULL)
				{
					if (r->currency >= 0 && p->found)
					{
						earned = p->points_earned[r->currency];
						spent = p->points_spent[r->currency];
					}
				}
				else
					for (int i = 0; i < p->nlines; i++)
					{
						const PlanLine *l = &p->lines[i];

						if (!loyalty_cond_eval(r->cond, p->line_rows[i]))
							continue;
						any = true;
						for (int e = 0; e < l->nearned; e++)
							if (l->earned[e].currency == r->currency)
								earned += l->earned[e].points;
						for (int q = 0; q < l->npaid; q++)
							if (p->lots[l->paid[q].lot].currency == r->currency)
								spent += l->paid[q].points;
					}
				if (!any)
					return false;
				switch (r->measure)
				{
					case FM_POINTS_EARNED:
						*amount = earned;
						break;
					case FM_POINTS_SPENT:
						*amount = spent;
						break;
					case FM_RECEIPTS:
						*amount = 1;
						break;
					case FM_DISTINCT_CARDS:
					case FM_DISTINCT_PHONES:
						if (op->ident_kind &&
							strcmp(op->ident_kind, r->measure == FM_DISTINCT_CARDS ? "card" : "phone") == 0)
							*item = op->ident_value;
						break;
					case FM_DISTINCT_STORES:
						*item = op->store;
						break;
					default:
						break;
				}
				break;
			}
		case FO_REFUND:
			{
				int64		money = 0;
				bool		any = false;

				for (int i = 0; i < op->nlines; i++)
				{
					if (r->cond)
					{
						if (*rows == NULL)
							*rows = palloc0(sizeof(CondValue *) * Max(op->nlines, 1));
						if ((*rows)[i] == NULL)
							(*rows)[i] = RefundLineRow(cat, op, i);
						if (!loyalty_cond_eval(r->cond, (*rows)[i]))
							continue;
					}
					any = true;
					money += op->line_money[i];
				}
				if (r->measure == FM_REFUNDS && any)
					*amount = 1;
				else if (r->measure == FM_MONEY_REFUNDED)
					*amount = money;
				break;
			}
		case FO_REDEEM:
		case FO_TRANSFER_OUT:
			if (r->measure == FM_POINTS_SPENT && r->currency == op->currency)
				*amount = op->points;
			break;
		case FO_TRANSFER_IN:
			if (r->measure == FM_POINTS_EARNED && r->currency == op->currency)
				*amount = op->points;
			break;
		case FO_ADJUST:
			if (r->measure == FM_ADJUSTMENTS)
				*amount = 1;
			break;
		case FO_HOLD:
			if (r->measure == FM_HOLDS)
				*amount = 1;
			break;
	}
	if (IsDistinct(r->measure))
		return *item != NULL;
	return *amount > 0;
}

/* floor(at / step), also before 2000 */
static int64
BucketOf(TimestampTz at, int64 step)
{
	int64		b = at / step;

	if (at % step != 0 && at < 0)
		b--;
	return b;
}

static Datum
Int8ArrayDatum(TallyEl *els, int n, int field)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(field == 0 ? els[i].rule : field == 1 ? els[i].bucket : els[i].amount);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
ItemArrayDatum(TallyEl *els, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = els[i].item == NULL;
		d[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(els[i].item);
	}
	return PointerGetDatum(construct_md_array(d, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/* The elements of the locked tally row (none if there is no row) */
static int
ReadTally(int64 program_id, const char *kind, const char *subject, TallyEl **out, bool *exists)
{
	Datum		args[3] = {Int64GetDatum(program_id), CStringGetTextDatum(kind),
	CStringGetTextDatum(subject)};
	HeapTuple	row;
	TupleDesc	desc;
	Datum	   *rules,
			   *buckets,
			   *amounts,
			   *items;
	bool	   *inulls;
	bool		isnull;
	int			n;
	int			m;
	TallyEl    *els;

	RunKept(&tally_query, args, NULL, 0);
	*exists = SPI_processed == 1;
	if (!*exists)
	{
		*out = NULL;
		return 0;
	}
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(row, desc, 1, &isnull)), INT8OID, 8,
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &rules, NULL, &n);
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(row, desc, 2, &isnull)), INT8OID, 8,
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &buckets, NULL, &m);
	if (m != n)
		goto damaged;
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(row, desc, 3, &isnull)), INT8OID, 8,
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &amounts, NULL, &m);
	if (m != n)
		goto damaged;
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(row, desc, 4, &isnull)), TEXTOID, -1,
					  false, TYPALIGN_INT, &items, &inulls, &m);
	if (m != n)
		goto damaged;
	els = palloc(sizeof(TallyEl) * Max(n, 1));
	for (int i = 0; i < n; i++)
		els[i] = (TallyEl) {DatumGetInt64(rules[i]), DatumGetInt64(buckets[i]),
			DatumGetInt64(amounts[i]), inulls[i] ? NULL : TextDatumGetCString(items[i])};
	*out = els;
	return n;

damaged:
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the fraud tally of %s \"%s\" is damaged: its arrays differ in length", kind, subject),
			 errhint("Delete the row: its windows start afresh.")));
	return 0;
}

static int
TallyElCmp(const void *a, const void *b)
{
	const TallyEl *x = a;
	const TallyEl *y = b;

	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	if (x->item && y->item)
		return strcmp(x->item, y->item);
	return (x->item != NULL) - (y->item != NULL);
}

/*
 * Fold the operation into the tally of one subject: the elements of rules
 * no longer active and those out of their windows go, the operation's
 * contributions come in; the rules crossed are added to trips.
 */
static void
FoldSubject(Catalog *cat, FraudOp *op, FraudSubject s, CondValue ***rows, Trip *trips, int *ntrips)
{
	const char *kind = subject_names[s];
	const char *subject = op->subject[s];
	int			nrel = 0;
	int		   *rel = palloc(sizeof(int) * cat->nfraud);
	int64	   *add = palloc(sizeof(int64) * cat->nfraud);
	const char **item = palloc(sizeof(char *) * cat->nfraud);
	TallyEl    *els;
	int			n;
	int			nkept;
	bool		exists;
	int			before = *ntrips;

	for (int i = 0; i < cat->nfraud; i++)
		if (cat->fraud[i].subject == s &&
			Contribution(cat, &cat->fraud[i], op, rows, &add[nrel], &item[nrel]))
			rel[nrel++] = i;
	if (nrel == 0)
		return;

	for (;;)
	{
		n = ReadTally(cat->program_id, kind, subject, &els, &exists);
		/* room for what comes in */
		els = els ? repalloc(els, sizeof(TallyEl) * (n + nrel)) : palloc(sizeof(TallyEl) * nrel);

		/* what stays: elements of active rules of this subject, in their windows */
		nkept = 0;
		for (int i = 0; i < n; i++)
		{
			const FraudRule *r = NULL;

			for (int k = 0; k < cat->nfraud && r == NULL; k++)
				if (cat->fraud[k].id == els[i].rule && cat->fraud[k].subject == s)
					r = &cat->fraud[k];
			if (r == NULL || (els[i].item != NULL) != IsDistinct(r->measure) ||
				BucketOf(els[i].bucket, r->resolution) <= BucketOf(op->at, r->resolution) - r->nbuckets)
				continue;
			els[nkept++] = els[i];
		}
		n = nkept;

		for (int j = 0; j < nrel; j++)
		{
			const FraudRule *r = &cat->fraud[rel[j]];
			int64		b = BucketOf(op->at, r->resolution);
			int64		tally = 0;
			int			hit = -1;
			int			count = 0;

			for (int i = 0; i < n; i++)
				if (els[i].rule == r->id &&
					(item[j] ? strcmp(els[i].item, item[j]) == 0 :
					 BucketOf(els[i].bucket, r->resolution) == b))
					hit = i;
			if (hit < 0)
				els[n++] = (TallyEl) {r->id, b * r->resolution, item[j] ? 1 : add[j],
					item[j] ? pstrdup(item[j]) : NULL};
			else if (item[j])
				els[hit].bucket = Max(els[hit].bucket, b * r->resolution);
			else if (pg_add_s64_overflow(els[hit].amount, add[j], &els[hit].amount))
				els[hit].amount = PG_INT64_MAX;

			/*
			 * Distinct items: the most recent threshold + 1 are enough to
			 * know whether the window holds more than the threshold (those
			 * dropped are older, so they leave the window first).
			 */
			if (item[j])
			{
				for (int i = 0; i < n; i++)
					count += els[i].rule == r->id;
				while (count > r->threshold + 1)
				{
					int			oldest = -1;

					for (int i = 0; i < n; i++)
						if (els[i].rule == r->id && (oldest < 0 || els[i].bucket < els[oldest].bucket))
							oldest = i;
					els[oldest] = els[--n];
					count--;
				}
			}
			for (int i = 0; i < n; i++)
				if (els[i].rule == r->id && pg_add_s64_overflow(tally, els[i].amount, &tally))
					tally = PG_INT64_MAX;
			if (tally > r->threshold)
				trips[(*ntrips)++] = (Trip) {r, subject, tally};
		}
		qsort(els, n, sizeof(TallyEl), TallyElCmp);

		{
			Datum		args[7] = {Int64GetDatum(cat->program_id), CStringGetTextDatum(kind),
				CStringGetTextDatum(subject), Int8ArrayDatum(els, n, 0), Int8ArrayDatum(els, n, 1),
			Int8ArrayDatum(els, n, 2), ItemArrayDatum(els, n)};

			if (exists)
			{
				RunKept(&tally_update, args, NULL, 0);
				break;
			}
			RunKept(&tally_insert, args, NULL, 0);
			if (SPI_processed == 1)
				break;
			/* another transaction made the row meanwhile: count after it */
			*ntrips = before;
		}
	}
}

/* What a refusal says: the rule's message, or one naming the rule */
static void pg_attribute_noreturn()
Refuse(const Trip *t)
{
	const FraudRule *r = t->rule;

	ereport(ERROR,
			(errcode(MAKE_SQLSTATE('P', '0', 'L', '0', '4')),
			 errmsg("refused by fraud rule \"%s\"", r->code),
			 r->message ? errdetail_internal("%s", r->message) :
			 errdetail("The %s of %s \"%s\" in the last %lld seconds would be %lld, more than %lld.",
					   measure_names[r->measure], subject_names[r->subject], t->subject,
					   (long long) r->window_seconds, (long long) t->tally, (long long) r->threshold),
			 errhint("The operation was not made; an admin can change the rule (loyalty.fraud_rule).")));
}

/*
 * Check the operation against the programme's rules, in its transaction
 * (connected to SPI, the operation's wallets locked).  Refuses with P0L04
 * if a refuse rule is crossed; records a case for each flag or hold rule
 * crossed.  Returns whether the operation's customer is on fraud_hold
 * because of it (a hold rule crossed).
 */
bool
FraudCheck(Catalog *cat, FraudOp *op)
{
	Trip	   *trips;
	int			ntrips = 0;
	CondValue **rows = NULL;
	bool		held = false;

	if (cat->nfraud == 0)
		return false;
	if (op->customer && op->subject[FS_CUSTOMER] == NULL)
		op->subject[FS_CUSTOMER] = psprintf(INT64_FORMAT, op->customer);
	if (op->subject[FS_ACTOR] == NULL)
		op->subject[FS_ACTOR] = ActorName();
	trips = palloc(sizeof(Trip) * cat->nfraud);
	for (int s = 0; s < FRAUD_NSUBJECTS; s++)
		if (op->subject[s])
			FoldSubject(cat, op, (FraudSubject) s, &rows, trips, &ntrips);
	for (int t = 0; t < ntrips; t++)
		if (trips[t].rule->action == FA_REFUSE)
			Refuse(&trips[t]);
	for (int t = 0; t < ntrips; t++)
	{
		const FraudRule *r = trips[t].rule;
		Datum		args[9] = {Int64GetDatum(r->id), CStringGetTextDatum(subject_names[r->subject]),
			CStringGetTextDatum(trips[t].subject), Int64GetDatum(op->customer),
			Int64GetDatum(trips[t].tally), CStringGetTextDatum(operation_names[op->kind]),
			op->reference ? CStringGetTextDatum(op->reference) : (Datum) 0,
		TimestampTzGetDatum(op->at), op->store ? CStringGetTextDatum(op->store) : (Datum) 0};
		char		nulls[10] = "         ";
		bool		isnull;

		nulls[3] = op->customer ? ' ' : 'n';
		nulls[6] = op->reference ? ' ' : 'n';
		nulls[8] = op->store ? ' ' : 'n';
		RunKept(&trip_query, args, nulls, 1);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) &&
			r->action == FA_HOLD)
			held = true;
	}
	return held;
}

/*
 * The check of an operation of the ledger on one wallet (connected to SPI,
 * the wallet locked): its customer and actor, at now().
 */
bool
FraudCheckLedger(int64 program_id, FraudOpKind kind, int64 customer, const char *currency,
				 int64 points, const char *reference)
{
	Catalog    *cat = CatalogGetById(program_id);
	FraudOp		op;

	if (cat == NULL || !FraudAnyRule(cat, kind))
		return false;
	memset(&op, 0, sizeof(op));
	op.kind = kind;
	op.reference = reference;
	op.customer = customer;
	op.at = GetCurrentTransactionStartTimestamp();
	op.currency = currency ? CatalogCurrencyIndex(cat, currency) : -1;
	op.points = points;
	return FraudCheck(cat, &op);
}

/* Whether the queue can hold accruals (the schema of 0.20 on) */
bool
FraudQueueHolds(void)
{
	return TableHasColumn("accrual_queue", "held_release_at");
}

/*
 * Whether the customer is on fraud_hold, read under a share lock of their
 * row: an accrual is held only after this (connected to SPI).  A change of
 * the status (release_hold, update_customer) updates the row, so it waits
 * for the transaction that holds an accrual, and its release of the held
 * accruals then sees it; or this waits for the change, and sees its result.
 */
bool
FraudStillHeld(int64 customer)
{
	Datum		arg = Int64GetDatum(customer);
	char	   *status;

	RunKept(&status_query, &arg, NULL, 1);
	if (SPI_processed != 1)
		return false;
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return status != NULL && strcmp(status, "fraud_hold") == 0;
}
