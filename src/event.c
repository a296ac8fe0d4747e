/*
 * src/event.c
 *
 * The outbox: rows of loyalty.event written in the transaction of the
 * change they report, so that an event exists exactly when its change was
 * committed.  With the setting loyalty.notify_events on (off by default),
 * the trigger event_notify sends NOTIFY loyalty_events, with the id of the
 * transaction's first event, once per transaction (delivered when it
 * commits): a listener takes events until there are none, so one wake-up
 * per transaction is enough, and a job that writes thousands of events in
 * a transaction does not fill the notification queue.  Off by default:
 * every notifying transaction holds a database-wide lock while it commits
 * its notifications and flushes its commit record, so notifying
 * transactions commit one at a time (half the ledger's rate at 16 clients).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "storage/proc.h"
#include "utils/rel.h"

#include "direct.h"
#include "event.h"

PG_FUNCTION_INFO_V1(loyalty_event_notify);

bool		loyalty_notify_events = false;

/*
 * The local transaction that has notified already (0: none).  A
 * subtransaction that aborts takes its notification with it, so any
 * subtransaction abort forgets it: at worst a second notification.
 */
static LocalTransactionId notified_lxid = InvalidLocalTransactionId;

static void
ForgetNotified(SubXactEvent event, SubTransactionId mySubid,
			   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		notified_lxid = InvalidLocalTransactionId;
}

void
loyalty_event_init(void)
{
	RegisterSubXactCallback(ForgetNotified, NULL);
	DefineCustomBoolVariable("loyalty.notify_events",
							 "Sends NOTIFY loyalty_events, once per transaction that writes events, with the id of its first event.",
							 "Every transaction that notifies takes a database-wide lock while it commits, "
							 "so notifying transactions commit one at a time; turn it on for the writers "
							 "(ALTER DATABASE or ALTER ROLE ... SET) when consumers LISTEN rather than poll.",
							 &loyalty_notify_events, false,
							 PGC_USERSET, 0, NULL, NULL, NULL);
}

/*
 * Append an event of the programme (customer_id 0: none) between
 * DirectBegin and DirectEnd.  Before the schema is updated to have the
 * outbox, nothing is written.
 */
void
EventAppend(int64 program_id, const char *type, int64 customer_id, Jsonb *payload,
			TimestampTz at)
{
	TupleTableSlot *row;

	if (!DirectHasTable(DT_EVENT))
		return;
	row = DirectNewRow(DT_EVENT);
	DirectSet(row, DT_EVENT, "id", Int64GetDatum(DirectNextId(DT_EVENT)), false);
	DirectSet(row, DT_EVENT, "program_id", Int64GetDatum(program_id), false);
	DirectSet(row, DT_EVENT, "type", CStringGetTextDatum(type), false);
	DirectSet(row, DT_EVENT, "customer_id", Int64GetDatum(customer_id), customer_id == 0);
	DirectSet(row, DT_EVENT, "payload", JsonbPGetDatum(payload), false);
	DirectSet(row, DT_EVENT, "created_at", TimestampTzGetDatum(at), false);
	DirectInsert(DT_EVENT, row);
}

/*
 * event_notify(): AFTER INSERT FOR EACH ROW trigger of loyalty.event:
 * NOTIFY loyalty_events, payload the event's id, for the first event of
 * each transaction.
 */
Datum
loyalty_event_notify(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	int			attno;
	bool		isnull;
	Datum		id;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("event_notify must be an AFTER INSERT FOR EACH ROW trigger")));
	if (loyalty_notify_events && notified_lxid != MyProc->lxid)
	{
		attno = SPI_fnumber(RelationGetDescr(td->tg_relation), "id");
		id = heap_getattr(td->tg_trigtuple, attno, RelationGetDescr(td->tg_relation), &isnull);
		if (!isnull)
		{
			Async_Notify("loyalty_events",
						 psprintf(INT64_FORMAT, DatumGetInt64(id)));
			notified_lxid = MyProc->lxid;
		}
	}
	return PointerGetDatum(NULL);
}
