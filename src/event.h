/*
 * src/event.h
 *
 * The outbox of events (loyalty.event), written with the change they report.
 */
#ifndef LOYALTY_EVENT_H
#define LOYALTY_EVENT_H

#include "utils/jsonb.h"
#include "utils/timestamp.h"

extern bool loyalty_notify_events;

extern void loyalty_event_init(void);
extern void EventAppend(int64 program_id, const char *type, int64 customer_id,
						Jsonb *payload, TimestampTz at);

#endif
