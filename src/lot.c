/*
 * src/lot.c
 *
 * Points lots: reading a wallet's live lots, what of them may be spent now,
 * choosing which lots pay for a redemption, and writing the consumption
 * (recorded in the ledger entry) or a new lot.  The caller holds the wallet lock,
 * which guards the wallet's lots too.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class_d.h"
#include "catalog/pg_type_d.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "direct.h"
#include "program.h"
#include "wallet.h"

static bool LotApplies(Lot *l, Applicable *app);

/* A lot as read from its row */
static void
ReadLot(TupleTableSlot *row, Lot *l)
{
	bool		isnull;
	Datum		d;

	l->id = DatumGetInt64(DirectGet(row, DT_LOT, "id", &isnull));
	l->amount = DatumGetInt64(DirectGet(row, DT_LOT, "amount", &isnull));
	l->remaining = DatumGetInt64(DirectGet(row, DT_LOT, "remaining", &isnull));
	l->valid_from = DatumGetTimestampTz(DirectGet(row, DT_LOT, "valid_from", &isnull));
	d = DirectGet(row, DT_LOT, "valid_to", &isnull);
	l->has_valid_to = !isnull;
	l->valid_to = isnull ? 0 : DatumGetTimestampTz(d);
	l->priority = DatumGetInt32(DirectGet(row, DT_LOT, "priority", &isnull));
	l->kind = TextDatumGetCString(DirectGet(row, DT_LOT, "kind", &isnull));
	d = DirectGet(row, DT_LOT, "restriction", &isnull);
	l->restriction = isnull ? NULL : TextDatumGetCString(d);
	l->take = 0;
	l->tid = row->tts_tid;
	l->has_tid = true;
}

/*
 * Read the wallet's live lots in redemption order (the index's order), all
 * of them, or with enough > 0 only until the lots that app may spend hold
 * enough points.
 */
static int
ReadLots(Wallet *w, Applicable *app, int64 enough, Lot **lots)
{
	DirectKey	keys[2] = {{INT8OID, Int64GetDatum(w->customer_id)},
	{TEXTOID, CStringGetTextDatum(w->currency)}};
	DirectScan *scan;
	TupleTableSlot *row;
	int			size = 8;
	int			n = 0;
	int64		found = 0;

	*lots = palloc0(sizeof(Lot) * size);
	scan = DirectScanBegin(DT_LOT, "lot_wallet_live_idx", 2, keys);
	while ((enough <= 0 || found < enough) && (row = DirectScanNext(scan)) != NULL)
	{
		Lot		   *l;

		if (n == size)
		{
			size *= 2;
			*lots = repalloc(*lots, sizeof(Lot) * size);
		}
		l = &(*lots)[n++];
		ReadLot(row, l);
		if (enough > 0 && LotEffective(w, l) && LotApplies(l, app))
			found += l->remaining;
	}
	DirectScanEnd(scan);
	return n;
}

/* The wallet's lots with points left (an index range scan) */
int
LoadLots(Wallet *w, Lot **lots)
{
	return ReadLots(w, NULL, 0, lots);
}

/*
 * The one definition of when a lot's points may be spent: throughout
 * [from, to], that is valid_from <= from and to < valid_to.  "Now" is the
 * start of the transaction (now()), on every path: a lot written by a
 * transaction that began later is pending for this one, though its row is
 * visible.  calculate asks for the span between the receipt's "at" and now.
 */
bool
LotValidThrough(TimestampTz valid_from, bool has_valid_to, TimestampTz valid_to,
				TimestampTz from, TimestampTz to)
{
	return valid_from <= from && (!has_valid_to || valid_to > to);
}

/* The lot counts now: valid_from <= now < valid_to */
bool
LotEffective(Wallet *w, Lot *l)
{
	return LotValidThrough(l->valid_from, l->has_valid_to, l->valid_to, w->now, w->now);
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
 * The one spending order of lots, for the ledger and for calculate: with
 * restricted_first, the restricted lots (those the caller says apply) before
 * the others; then the soonest to expire (never-expiring last), then higher
 * priority, then the oldest.  A qsort comparison: negative if a is spent
 * before b.
 */
int
LotOrder(const Lot *a, const Lot *b, bool restricted_first)
{
	if (restricted_first && (a->restriction != NULL) != (b->restriction != NULL))
		return a->restriction != NULL ? -1 : 1;
	if (a->has_valid_to != b->has_valid_to)
		return a->has_valid_to ? -1 : 1;
	if (a->has_valid_to && a->valid_to != b->valid_to)
		return a->valid_to < b->valid_to ? -1 : 1;
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return a->id < b->id ? -1 : (a->id > b->id ? 1 : 0);
}

/* Redemption order: LotOrder, restricted lots first unless app takes all */
static int
RedemptionOrder(const void *pa, const void *pb, void *arg)
{
	Applicable *app = (Applicable *) arg;

	return LotOrder(*(Lot *const *) pa, *(Lot *const *) pb, !app->all);
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
 * Create a lot in the wallet for the ledger entry (w, version) about to be
 * appended; returns its id.  The wallet's summary follows: next_expiry moves
 * earlier, restricted and pending_until grow, as the lot requires.
 */
int64
CreateLot(Wallet *w, int64 version, NewLot *lot)
{
	TupleTableSlot *row = DirectNewRow(DT_LOT);
	int64		id = DirectNextId(DT_LOT);

	DirectSet(row, DT_LOT, "id", Int64GetDatum(id), false);
	DirectSet(row, DT_LOT, "program_id", Int64GetDatum(w->program_id), false);
	DirectSet(row, DT_LOT, "customer_id", Int64GetDatum(w->customer_id), false);
	DirectSet(row, DT_LOT, "currency", CStringGetTextDatum(w->currency), false);
	DirectSet(row, DT_LOT, "amount", Int64GetDatum(lot->amount), false);
	DirectSet(row, DT_LOT, "remaining", Int64GetDatum(lot->amount), false);
	DirectSet(row, DT_LOT, "valid_from", TimestampTzGetDatum(lot->valid_from), false);
	DirectSet(row, DT_LOT, "valid_to", TimestampTzGetDatum(lot->valid_to), !lot->has_valid_to);
	DirectSet(row, DT_LOT, "kind", CStringGetTextDatum(lot->kind), false);
	DirectSet(row, DT_LOT, "priority", Int32GetDatum(lot->priority), false);
	DirectSet(row, DT_LOT, "restriction",
			  lot->restriction ? CStringGetTextDatum(lot->restriction) : (Datum) 0,
			  lot->restriction == NULL);
	DirectSet(row, DT_LOT, "created_version", Int64GetDatum(version), false);
	DirectSet(row, DT_LOT, "source_lot_id", Int64GetDatum(lot->source_lot_id),
			  lot->source_lot_id == 0);
	DirectSet(row, DT_LOT, "live", BoolGetDatum(true), false);
	DirectSet(row, DT_LOT, "created_at", TimestampTzGetDatum(w->now), false);
	DirectInsert(DT_LOT, row);
	LowerNextExpiry(w, lot);
	if (lot->restriction)
		w->restricted += lot->amount;
	/*
	 * pending_until is the latest valid_from of the wallet's lots, whatever
	 * this transaction's now: a lot starting at this transaction's now()
	 * is pending for a transaction that began earlier and reads the wallet
	 * after this one commits, and the summary must not count it for that one.
	 */
	if (!w->has_pending_until || lot->valid_from > w->pending_until)
	{
		w->has_pending_until = true;
		w->pending_until = lot->valid_from;
	}
	return id;
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

/*
 * The wallet's summary answers what may be spent without reading its lots
 * when no lot is pending and the operation may spend every lot, or none of
 * the restricted ones; then it is the balance less the restricted points.
 */
static bool
SummaryAvailable(Wallet *w, Applicable *app, int64 *available)
{
	if (WalletPending(w) || !(app->all || app->n == 0 || w->restricted == 0))
		return false;
	*available = w->balance - (app->all ? 0 : w->restricted);
	return true;
}

/*
 * Choose the lots that pay amount for the entry e about to be appended, in
 * redemption order, or refuse if the lots that apply, less what is held by
 * others, do not reach it (held_other: the held points the operation does
 * not release itself).  When the summary answers, only the lots that pay are
 * read.
 */
void
TakePoints(Wallet *w, Applicable *app, int64 amount, int64 held_other, Entry *e)
{
	Lot		   *lots;
	int			n;
	int64		available;

	if (SummaryAvailable(w, app, &available) && available - held_other >= amount)
	{
		n = ReadLots(w, app, amount, &lots);
		if (AllocateLots(w, lots, n, app, amount) == amount)
		{
			e->lots = lots;
			e->nlots = n;
			return;
		}
	}
	n = LoadLots(w, &lots);
	if (LotsAvailable(w, lots, n, app) - held_other < amount ||
		AllocateLots(w, lots, n, app, amount) != amount)
		ReportInsufficient(w, lots, n, app, amount, held_other);
	e->lots = lots;
	e->nlots = n;
}

/* Refuse if the wallet cannot give amount to app beyond held_other */
void
RequirePoints(Wallet *w, Applicable *app, int64 amount, int64 held_other)
{
	Lot		   *lots;
	int			n;
	int64		available;

	if (SummaryAvailable(w, app, &available) && available - held_other >= amount)
		return;
	n = LoadLots(w, &lots);
	if (LotsAvailable(w, lots, n, app) - held_other < amount)
		ReportInsufficient(w, lots, n, app, amount, held_other);
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
