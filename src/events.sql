
-- src/events.sql — the outbox of events.  Each change writes its events in
-- its own transaction, so an event exists exactly when its change was
-- committed: balance_changed (every ledger entry, written by the ledger's C
-- code), receipt_committed, receipt_cancelled and refund (triggers on the
-- receipt tables), points_expiring (the job notice_expiring), tier_changed
-- (src/tiers.sql).  A transaction that writes events sends NOTIFY
-- loyalty_events once, with the id of its first event, at commit (setting
-- loyalty.notify_events); loyalty.take_events hands them over.

CREATE TABLE @extschema@.event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL,
    type        text NOT NULL
                CHECK (type OPERATOR(pg_catalog.=) ANY
                       ('{balance_changed,receipt_committed,receipt_cancelled,refund,points_expiring,tier_changed,fraud_flagged,fraud_hold,fraud_released,fraud_confirmed,challenge_progress,challenge_completed,achievement_unlocked,referral_rewarded}'::text[])),
    customer_id bigint,
    payload     jsonb COMPRESSION lz4 NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000);
CREATE INDEX event_program_idx ON @extschema@.event (program_id, id);
COMMENT ON TABLE @extschema@.event IS 'the outbox: events written with the change they report, until loyalty.take_events hands them over (or purge_events drops them after the programme''s event_retention)';
COMMENT ON COLUMN @extschema@.event.id IS 'increasing in the order events were written; a consumer deduplicates by it';
COMMENT ON COLUMN @extschema@.event.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.event.type IS 'balance_changed, receipt_committed, receipt_cancelled, refund, points_expiring, tier_changed, fraud_flagged, fraud_hold, fraud_released, fraud_confirmed, challenge_progress, challenge_completed, achievement_unlocked or referral_rewarded';
COMMENT ON COLUMN @extschema@.event.customer_id IS 'the customer; NULL for a receipt without one';
COMMENT ON COLUMN @extschema@.event.payload IS 'what happened, by type (docs/events.md)';
COMMENT ON COLUMN @extschema@.event.created_at IS 'the time of the transaction that wrote it';
ALTER TABLE @extschema@.event ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.event USING (@extschema@.program_open(program_id));
SELECT pg_catalog.pg_extension_config_dump('@extschema@.event', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.event', 'id'), '');

CREATE FUNCTION @extschema@.event_notify()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'loyalty_event_notify';
COMMENT ON FUNCTION @extschema@.event_notify() IS
'trigger: NOTIFY loyalty_events with the id of the transaction''s first event, once per transaction, unless loyalty.notify_events is off';
CREATE TRIGGER event_notify AFTER INSERT ON @extschema@.event
    FOR EACH ROW EXECUTE FUNCTION @extschema@.event_notify();

-- The events of receipts (receipt_committed, receipt_cancelled, refund)
-- are written by commit, cancel and refund themselves, beside the rows they
-- write: not by triggers, so that a restore (which inserts the rows again)
-- writes no event twice.  Replays write nothing, so they emit nothing.

-- Hand events over: delete up to batch of the oldest (of one programme, or
-- of all) and return them in id order.  The caller's transaction owns them:
-- if it rolls back they are there again; two consumers never get the same
-- event (SKIP LOCKED), so a consumer that commits after its sink has them
-- hands each event over exactly once, and one that may fail between the
-- sink and its commit resends them with the same ids.
CREATE FUNCTION @extschema@.take_events(batch integer DEFAULT 100, program text DEFAULT NULL)
RETURNS SETOF @extschema@.event
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    IF batch IS NULL OR batch OPERATOR(pg_catalog.<) 1 OR batch OPERATOR(pg_catalog.>) 100000 THEN
        RAISE EXCEPTION 'batch must be between 1 and 100000, not %', COALESCE(batch::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF program IS NOT NULL THEN
        pid := @extschema@.program_id(program);
        -- two statements rather than "pid IS NULL OR ...", so that each
        -- reads its own index in order: (program_id, id) here, the key below
        RETURN QUERY
        WITH taken AS (
            DELETE FROM @extschema@.event e
             WHERE e.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT f.id FROM @extschema@.event f
                    WHERE f.program_id OPERATOR(pg_catalog.=) pid
                    ORDER BY f.program_id, f.id LIMIT batch
                      FOR UPDATE SKIP LOCKED))
            RETURNING e.*)
        SELECT * FROM taken ORDER BY taken.id;
    ELSE
        PERFORM @extschema@.require_every_program('loyalty.take_events of every programme');
        RETURN QUERY
        WITH taken AS (
            DELETE FROM @extschema@.event e
             WHERE e.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT f.id FROM @extschema@.event f ORDER BY f.id LIMIT batch
                      FOR UPDATE SKIP LOCKED))
            RETURNING e.*)
        SELECT * FROM taken ORDER BY taken.id;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.take_events(integer, text) IS
'hand over up to batch of the oldest events (of one programme, or all), deleting them in the caller''s transaction: a rollback gives them back';

-- The job notice_expiring: for lots entering their programme's
-- expiry_notice window, one points_expiring event per wallet with the lots
-- and points that expire.  It locks the wallets (skipping those in use), as
-- every writer of lots does, and marks the lots; lots already past their
-- end are marked without an event (their expire entry reports them).
CREATE FUNCTION @extschema@.notice_expiring(batch_limit integer DEFAULT 10000,
                                            time_budget interval DEFAULT '50 seconds')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer := @extschema@.job_limit(batch_limit);
    deadline timestamptz := @extschema@.job_deadline(time_budget);
    horizon interval;
    done integer := 0;
    lots integer;
    events integer;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.notice_expiring');
    SELECT pg_catalog.max(g.expiry_notice) INTO horizon FROM @extschema@.program g;
    IF horizon IS NULL THEN
        RETURN 0;
    END IF;
    LOOP
        WITH candidate AS (
            SELECT l.id, l.customer_id, l.currency
              FROM @extschema@.lot l
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) l.program_id
             WHERE l.live AND l.valid_to IS NOT NULL AND l.expiry_noticed_at IS NULL
               AND l.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) horizon)
               AND l.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) g.expiry_notice)
             ORDER BY l.valid_to, l.id
             LIMIT LEAST(500, lim OPERATOR(pg_catalog.-) done)),
        locked AS (
            SELECT w.customer_id, w.currency
              FROM @extschema@.wallet w
             WHERE (w.customer_id, w.currency) IN (SELECT c.customer_id, c.currency FROM candidate c)
               FOR NO KEY UPDATE SKIP LOCKED),
        marked AS (
            UPDATE @extschema@.lot l SET expiry_noticed_at = pg_catalog.now()
              FROM candidate c, locked k
             WHERE l.id OPERATOR(pg_catalog.=) c.id
               AND k.customer_id OPERATOR(pg_catalog.=) c.customer_id
               AND k.currency OPERATOR(pg_catalog.=) c.currency
               AND l.live AND l.expiry_noticed_at IS NULL
            RETURNING l.id, l.program_id, l.customer_id, l.currency, l.remaining, l.valid_to),
        written AS (
            INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
            SELECT m.program_id, 'points_expiring', m.customer_id, pg_catalog.jsonb_build_object(
                       'currency', m.currency, 'points', pg_catalog.sum(m.remaining),
                       'expires_at', pg_catalog.min(m.valid_to),
                       'lots', pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                   'lot_id', m.id, 'points', m.remaining, 'valid_to', m.valid_to)
                               ORDER BY m.valid_to, m.id))
              FROM marked m
             WHERE m.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()
             GROUP BY m.program_id, m.customer_id, m.currency
            RETURNING 1)
        SELECT (SELECT pg_catalog.count(*) FROM marked), (SELECT pg_catalog.count(*) FROM written)
          INTO lots, events;
        done := done OPERATOR(pg_catalog.+) lots;
        EXIT WHEN lots OPERATOR(pg_catalog.=) 0 OR done OPERATOR(pg_catalog.>=) lim
               OR pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) deadline;
    END LOOP;
    RETURN done;
END
$$;
COMMENT ON FUNCTION @extschema@.notice_expiring(integer, interval) IS
'emit points_expiring events for lots entering their programme''s expiry_notice window, one per wallet, each lot once; returns the lots marked';

-- The job purge_events: events nobody took within the programme's
-- event_retention are deleted, oldest first.
CREATE FUNCTION @extschema@.purge_events(batch_limit integer DEFAULT 100000)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer := @extschema@.job_limit(batch_limit);
    gone integer;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.purge_events');
    WITH old AS (
        SELECT e.id FROM @extschema@.event e
          JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) e.program_id
         WHERE g.event_retention IS NOT NULL
           AND e.created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) g.event_retention)
         ORDER BY e.id LIMIT lim
           FOR UPDATE OF e SKIP LOCKED),
    gone_rows AS (
        DELETE FROM @extschema@.event e USING old WHERE e.id OPERATOR(pg_catalog.=) old.id RETURNING 1)
    SELECT pg_catalog.count(*) INTO gone FROM gone_rows;
    IF gone OPERATOR(pg_catalog.>) 0 THEN
        RAISE LOG 'loyalty.purge_events: % events older than their programme''s event_retention were deleted untaken', gone;
    END IF;
    RETURN gone;
END
$$;
COMMENT ON FUNCTION @extschema@.purge_events(integer) IS
'delete up to batch_limit events that no consumer took within their programme''s event_retention; returns how many';

REVOKE ALL ON FUNCTION
    @extschema@.event_notify(),
    @extschema@.take_events(integer, text),
    @extschema@.notice_expiring(integer, interval),
    @extschema@.purge_events(integer)
FROM PUBLIC;
