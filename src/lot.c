/*
 * src/lot.c
 *
 * Points lots: reading a wallet's live lots, what of them may be spent now,
 * choosing which lots pay for a redemption, and writing the consumption
 * (with its lot_usage rows) or a new lot.  The caller holds the wallet lock,
 * which guards the wallet's lots too.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "program.h"
#include "wallet.h"

static KeptQuery lots_query = {
	"SELECT id, amount, remaining, valid_from, valid_to, priority, kind, restriction"
	" FROM loyalty.lot WHERE customer_id = $1 AND currency = $2 AND remaining > 0"
	" ORDER BY id",
	2, {INT8OID, TEXTOID}, NULL
};

static KeptQuery create_query = {
	"INSERT INTO loyalty.lot (program_id, customer_id, currency, amount, remaining,"
	" valid_from, valid_to, kind, priority, restriction, created_version, source_lot_id)"
	" VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
	11, {INT8OID, INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID,
	INT4OID, TEXTOID, INT8OID, INT8OID}, NULL
};

/* Read a lot from the row's columns first.. (id, amount, remaining, valid_from,
 * valid_to, priority, kind, restriction) */
void
ReadLot(HeapTuple row, TupleDesc desc, int first, Lot *l)
{
	bool		isnull;
	Datum		d;

	l->id = DatumGetInt64(SPI_getbinval(row, desc, first, &isnull));
	l->amount = DatumGetInt64(SPI_getbinval(row, desc, first + 1, &isnull));
	l->remaining = DatumGetInt64(SPI_getbinval(row, desc, first + 2, &isnull));
	l->valid_from = DatumGetTimestampTz(SPI_getbinval(row, desc, first + 3, &isnull));
	d = SPI_getbinval(row, desc, first + 4, &isnull);
	l->has_valid_to = !isnull;
	l->valid_to = isnull ? 0 : DatumGetTimestampTz(d);
	l->priority = DatumGetInt32(SPI_getbinval(row, desc, first + 5, &isnull));
	l->kind = SPI_getvalue(row, desc, first + 6);
	l->restriction = SPI_getvalue(row, desc, first + 7);
	l->take = 0;
}

/*
 * The wallet's lots with points left.  The lock for spending read them
 * already, in the same snapshot as the wallet row; they are used once, if
 * nothing has changed the lots since.
 */
int
LoadLots(Wallet *w, Lot **lots)
{
	Datum		args[2] = {Int64GetDatum(w->customer_id), CStringGetTextDatum(w->currency)};
	int			n;
	int			i;

	if (w->lots_fresh)
	{
		w->lots_fresh = false;
		*lots = w->lots;
		return w->nlots;
	}
	RunKept(&lots_query, args, NULL, 0);
	n = (int) SPI_processed;
	*lots = palloc0(sizeof(Lot) * Max(n, 1));
	for (i = 0; i < n; i++)
		ReadLot(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &(*lots)[i]);
	return n;
}

/* The lot counts now: valid_from <= now < valid_to */
static inline bool
LotEffective(Wallet *w, Lot *l)
{
	return l->valid_from <= w->now && (!l->has_valid_to || l->valid_to > w->now);
}

/* The lot may be spent by an operation with these applicable restrictions */
static bool
LotApplies(Lot *l, Applicable *app)
{
	int			i;

	if (l->restriction == NULL || app->all)
		return true;
	for (i = 0; i < app->n; i++)
		if (strcmp(app->restrictions[i], l->restriction) == 0)
			return true;
	return false;
}

/* Points the operation could spend, before holds */
int64
LotsAvailable(Wallet *w, Lot *lots, int n, Applicable *app)
{
	int64		sum = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (LotEffective(w, &lots[i]) && LotApplies(&lots[i], app))
			sum += lots[i].remaining;
	return sum;
}

/* Points of lots that start to count later */
int64
LotsPending(Wallet *w, Lot *lots, int n)
{
	int64		sum = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (lots[i].valid_from > w->now)
			sum += lots[i].remaining;
	return sum;
}

/*
 * Redemption order: restricted lots the caller says apply, then the soonest
 * to expire (never-expiring last), then higher priority, then the oldest.
 */
static int
RedemptionOrder(const void *pa, const void *pb, void *arg)
{
	const Lot  *a = *(Lot *const *) pa;
	const Lot  *b = *(Lot *const *) pb;
	Applicable *app = (Applicable *) arg;

	if (!app->all && (a->restriction != NULL) != (b->restriction != NULL))
		return a->restriction != NULL ? -1 : 1;
	if (a->has_valid_to != b->has_valid_to)
		return a->has_valid_to ? -1 : 1;
	if (a->has_valid_to && a->valid_to != b->valid_to)
		return a->valid_to < b->valid_to ? -1 : 1;
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return a->id < b->id ? -1 : (a->id > b->id ? 1 : 0);
}

/*
 * Choose the lots that pay amount, in redemption order, setting each lot's
 * take.  Returns the points found, which is less than amount only when the
 * lots do not hold enough.
 */
int64
AllocateLots(Wallet *w, Lot *lots, int n, Applicable *app, int64 amount)
{
	Lot		  **order = palloc(sizeof(Lot *) * Max(n, 1));
	int			m = 0;
	int			i;
	int64		left = amount;

	for (i = 0; i < n; i++)
	{
		lots[i].take = 0;
		if (LotEffective(w, &lots[i]) && LotApplies(&lots[i], app))
			order[m++] = &lots[i];
	}
	qsort_arg(order, m, sizeof(Lot *), RedemptionOrder, app);
	for (i = 0; i < m && left > 0; i++)
	{
		order[i]->take = Min(order[i]->remaining, left);
		left -= order[i]->take;
	}
	pfree(order);
	return amount - left;
}

/*
 * The ids and takes of the lots an entry spends, as int8 datums for the
 * statement that writes it; each lot's remaining drops by its take.
 * Returns how many lots give something.
 */
int
TakenLots(Lot *lots, int n, Datum **ids, Datum **amounts)
{
	int			m = 0;
	int			i;

	*ids = palloc(sizeof(Datum) * Max(n, 1));
	*amounts = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (lots[i].take <= 0)
			continue;
		(*ids)[m] = Int64GetDatum(lots[i].id);
		(*amounts)[m] = Int64GetDatum(lots[i].take);
		lots[i].remaining -= lots[i].take;
		m++;
	}
	return m;
}

/*
 * Create a lot in the wallet for the ledger entry (w, version) about to be
 * appended, when one entry credits several lots (transfers, conversions,
 * merges); returns its id.  The wallet's next_expiry moves earlier if the
 * lot expires sooner.
 */
int64
CreateLot(Wallet *w, int64 version, NewLot *lot)
{
	Datum		args[11];
	char		nulls[11];
	bool		isnull;

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(w->program_id);
	args[1] = Int64GetDatum(w->customer_id);
	args[2] = CStringGetTextDatum(w->currency);
	args[3] = Int64GetDatum(lot->amount);
	args[4] = TimestampTzGetDatum(lot->valid_from);
	args[5] = TimestampTzGetDatum(lot->valid_to);
	nulls[5] = lot->has_valid_to ? ' ' : 'n';
	args[6] = CStringGetTextDatum(lot->kind);
	args[7] = Int32GetDatum(lot->priority);
	args[8] = lot->restriction ? CStringGetTextDatum(lot->restriction) : 0;
	nulls[8] = lot->restriction ? ' ' : 'n';
	args[9] = Int64GetDatum(version);
	args[10] = Int64GetDatum(lot->source_lot_id);
	nulls[10] = lot->source_lot_id ? ' ' : 'n';
	RunKept(&create_query, args, nulls, 1);
	LowerNextExpiry(w, lot);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* A new lot of amount points with the window and restriction of lot */
void
LotToNew(Lot *lot, int64 amount, const char *kind, NewLot *out)
{
	out->amount = amount;
	out->valid_from = lot->valid_from;
	out->has_valid_to = lot->has_valid_to;
	out->valid_to = lot->valid_to;
	out->kind = kind ? kind : lot->kind;
	out->priority = lot->priority;
	out->restriction = lot->restriction;
	out->source_lot_id = lot->id;
}

/* The applicable restrictions given as a text[] argument (NULL: none) */
void
ApplicableFromArray(Applicable *app, ArrayType *array)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	memset(app, 0, sizeof(Applicable));
	if (array == NULL)
		return;
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("applicable must be a one-dimensional array")));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	app->restrictions = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		if (!nulls[i])
			app->restrictions[app->n++] = TextDatumGetCString(elems[i]);
}

/* Refuse an operation that wants more than the wallet can give */
void
ReportInsufficient(Wallet *w, Lot *lots, int n, Applicable *app,
				   int64 requested, int64 held_other)
{
	Applicable	everything = {true, 0, NULL};
	int64		available = LotsAvailable(w, lots, n, app);
	int64		effective = LotsAvailable(w, lots, n, &everything);

	ereport(ERROR,
			(errcode(ERRCODE_LOYALTY_INSUFFICIENT_POINTS),
			 errmsg("not enough points: customer " INT64_FORMAT " has " INT64_FORMAT " \"%s\" available, " INT64_FORMAT " requested",
					w->customer_id, Max(available - held_other, 0), w->currency, requested),
			 errdetail("Balance " INT64_FORMAT ", held " INT64_FORMAT ", pending " INT64_FORMAT ", in lots restricted elsewhere " INT64_FORMAT ".",
					   effective, held_other, LotsPending(w, lots, n), effective - available)));
}
