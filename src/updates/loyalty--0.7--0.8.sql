-- loyalty 0.7 -> 0.8: the outbox of events (src/events.sql): loyalty.event,
-- take_events, NOTIFY loyalty_events, the events of receipts, refunds and
-- cancels, balance_changed from every ledger entry (in the module), the jobs
-- notice_expiring and purge_events with the programme's expiry_notice and
-- event_retention; tiers and rule segments (src/tiers.sql): loyalty.tier,
-- tier_change, the receipt trigger that lifts a customer, the jobs
-- review_tiers and refresh_segments; jobs(), job_health and run_job know the
-- new jobs.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.8'" to load this file. \quit


-- src/events.sql — the outbox of events.  Each change writes its events in
-- its own transaction, so an event exists exactly when its change was
-- committed: balance_changed (every ledger entry, written by the ledger's C
-- code), receipt_committed, receipt_cancelled and refund (triggers on the
-- receipt tables), points_expiring (the job notice_expiring), tier_changed
-- (src/tiers.sql).  A transaction that writes events sends NOTIFY
-- loyalty_events once, with the id of its first event, at commit (setting
-- loyalty.notify_events); loyalty.take_events hands them over.

-- How long before a lot expires its customer hears of it, and how long an
-- event nobody took is kept.
ALTER TABLE @extschema@.program
    ADD COLUMN expiry_notice interval DEFAULT '14 days'
    CHECK (expiry_notice OPERATOR(pg_catalog.>) '0'::interval),
    ADD COLUMN event_retention interval DEFAULT '30 days'
    CHECK (event_retention OPERATOR(pg_catalog.>) '0'::interval);
COMMENT ON COLUMN @extschema@.program.expiry_notice IS 'how long before points expire the job notice_expiring emits a points_expiring event; NULL: never';
COMMENT ON COLUMN @extschema@.program.event_retention IS 'events older than this that no consumer took are deleted by the job purge_events; NULL: kept until taken';

-- A lot's notice is sent once; the partial index holds the lots that still
-- need one, so the job reads only new lots.  Spending part of a lot
-- changes none of its columns: still a HOT update.
ALTER TABLE @extschema@.lot ADD COLUMN expiry_noticed_at timestamptz;
COMMENT ON COLUMN @extschema@.lot.expiry_noticed_at IS 'when the points_expiring event that names the lot was written (or the lot was passed over as already expired); NULL: not yet';
CREATE INDEX lot_notice_idx ON @extschema@.lot (valid_to, id)
    WHERE live AND valid_to IS NOT NULL AND expiry_noticed_at IS NULL;

CREATE TABLE @extschema@.event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL,
    type        text NOT NULL
                CHECK (type OPERATOR(pg_catalog.=) ANY
                       ('{balance_changed,receipt_committed,receipt_cancelled,refund,points_expiring,tier_changed}'::text[])),
    customer_id bigint,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000);
CREATE INDEX event_program_idx ON @extschema@.event (program_id, id);
COMMENT ON TABLE @extschema@.event IS 'the outbox: events written with the change they report, until loyalty.take_events hands them over (or purge_events drops them after the programme''s event_retention)';
COMMENT ON COLUMN @extschema@.event.id IS 'increasing in the order events were written; a consumer deduplicates by it';
COMMENT ON COLUMN @extschema@.event.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.event.type IS 'balance_changed, receipt_committed, receipt_cancelled, refund, points_expiring or tier_changed';
COMMENT ON COLUMN @extschema@.event.customer_id IS 'the customer; NULL for a receipt without one';
COMMENT ON COLUMN @extschema@.event.payload IS 'what happened, by type (docs/events.md)';
COMMENT ON COLUMN @extschema@.event.created_at IS 'the time of the transaction that wrote it';
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

-- The events of the receipt tables: a commit inserts the receipt, a cancel
-- sets its status to cancelled, a refund inserts a receipt_refund row.
-- Replays write nothing, so they emit nothing.
CREATE FUNCTION @extschema@.receipt_event()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'receipt_refund' THEN
        INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
        VALUES (NEW.program_id, 'refund', (NEW.result OPERATOR(pg_catalog.->>) 'customer_id')::bigint,
                NEW.result OPERATOR(pg_catalog.-) '{ledger,replayed}'::text[]);
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
        VALUES (NEW.program_id, 'receipt_committed', NEW.customer_id, pg_catalog.jsonb_build_object(
                    'receipt_id', NEW.receipt_id, 'store', NEW.store, 'at', NEW.at,
                    'committed_at', NEW.committed_at,
                    'totals', NEW.answer OPERATOR(pg_catalog.->) 'totals',
                    'accrual', NEW.answer OPERATOR(pg_catalog.#>) '{commit,accrual}',
                    'release_at', NEW.answer OPERATOR(pg_catalog.#>) '{commit,release_at}',
                    'coupons', pg_catalog.to_jsonb(NEW.coupons)));
    ELSIF NEW.status OPERATOR(pg_catalog.=) 'cancelled' AND OLD.status OPERATOR(pg_catalog.<>) 'cancelled' THEN
        INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
        VALUES (NEW.program_id, 'receipt_cancelled', NEW.customer_id,
                NEW.cancel_result OPERATOR(pg_catalog.-) '{ledger,replayed}'::text[]);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.receipt_event() IS
'trigger: the receipt_committed, receipt_cancelled and refund events of the receipt tables';
CREATE TRIGGER receipt_committed_event AFTER INSERT ON @extschema@.receipt
    FOR EACH ROW EXECUTE FUNCTION @extschema@.receipt_event();
CREATE TRIGGER receipt_cancelled_event AFTER UPDATE OF status ON @extschema@.receipt
    FOR EACH ROW WHEN (NEW.status OPERATOR(pg_catalog.=) 'cancelled')
    EXECUTE FUNCTION @extschema@.receipt_event();
CREATE TRIGGER refund_event AFTER INSERT ON @extschema@.receipt_refund
    FOR EACH ROW EXECUTE FUNCTION @extschema@.receipt_event();

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
        SELECT g.id INTO pid FROM @extschema@.program g WHERE g.code OPERATOR(pg_catalog.=) program;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'programme "%" does not exist', program
                USING ERRCODE = 'undefined_object',
                      HINT = 'SELECT code FROM loyalty.program lists the programmes.';
        END IF;
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

-- The arguments every job function takes, checked in one place: a time
-- budget becomes the deadline, a batch limit must be positive.
CREATE FUNCTION @extschema@.job_deadline(time_budget interval)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF time_budget IS NULL OR time_budget OPERATOR(pg_catalog.<=) '0'::interval THEN
        RAISE EXCEPTION 'time_budget must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) time_budget;
END
$$;
COMMENT ON FUNCTION @extschema@.job_deadline(interval) IS
'the deadline of a job given its time_budget (22023 unless positive)';

CREATE FUNCTION @extschema@.job_limit(batch_limit integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF batch_limit IS NULL OR batch_limit OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_limit must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN batch_limit;
END
$$;
COMMENT ON FUNCTION @extschema@.job_limit(integer) IS
'a job''s batch_limit, checked (22023 unless positive)';

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
    @extschema@.job_deadline(interval),
    @extschema@.job_limit(integer),
    @extschema@.event_notify(),
    @extschema@.receipt_event(),
    @extschema@.take_events(integer, text),
    @extschema@.notice_expiring(integer, interval),
    @extschema@.purge_events(integer)
FROM PUBLIC;


-- src/tiers.sql — tiers and rule-based segments: the audiences promotions
-- address by who the customer is.  A tier is qualified for by money spent
-- or receipts made over the programme's rolling window: a customer moves up
-- as soon as a receipt qualifies them (a trigger on the receipt), and down
-- only at the programme's review date (the job review_tiers); every change
-- is recorded in tier_change and emits tier_changed.  A rule segment is
-- rebuilt by the job refresh_segments from a condition over the customer's
-- document and purchase statistics (recency, frequency, monetary).  Their
-- benefits are promotions whose audience is the tier or the segment.

ALTER TABLE @extschema@.program
    ADD COLUMN tier_window interval NOT NULL DEFAULT '365 days'
    CHECK (tier_window OPERATOR(pg_catalog.>) '0'::interval),
    ADD COLUMN tier_review text NOT NULL DEFAULT 'quarter'
    CHECK (tier_review OPERATOR(pg_catalog.=) ANY ('{month,quarter,year}'::text[]));
COMMENT ON COLUMN @extschema@.program.tier_window IS 'the rolling window over which spend and receipts qualify for a tier';
COMMENT ON COLUMN @extschema@.program.tier_review IS 'month, quarter or year: customers move down a tier only at the start of one, when review_tiers reviews them';

CREATE TABLE @extschema@.tier (
    program_id   bigint NOT NULL REFERENCES @extschema@.program (id),
    code         text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name         text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    rank         integer NOT NULL CHECK (rank OPERATOR(pg_catalog.>=) 0),
    min_spend    numeric CHECK (min_spend OPERATOR(pg_catalog.>=) 0),
    min_receipts integer CHECK (min_receipts OPERATOR(pg_catalog.>=) 0),
    qualify      text NOT NULL DEFAULT 'all'
                 CHECK (qualify OPERATOR(pg_catalog.=) ANY ('{all,any}'::text[])),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (program_id, code),
    UNIQUE (program_id, rank)
);
COMMENT ON TABLE @extschema@.tier IS 'a level of a programme that customers qualify for by spend or receipts over the programme''s tier_window';
COMMENT ON COLUMN @extschema@.tier.code IS 'the code customer.tier holds and promotions'' tiers name';
COMMENT ON COLUMN @extschema@.tier.rank IS 'higher is better; the tier of rank 0, if any, is the base every customer qualifies for';
COMMENT ON COLUMN @extschema@.tier.min_spend IS 'money paid over the window (after refunds), in major units; NULL: no such condition';
COMMENT ON COLUMN @extschema@.tier.min_receipts IS 'receipts over the window (not cancelled or wholly refunded); NULL: no such condition';
COMMENT ON COLUMN @extschema@.tier.qualify IS 'all: every condition given must hold; any: one of them is enough';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier', '');

ALTER TABLE @extschema@.customer
    ADD COLUMN tier_since timestamptz,
    ADD COLUMN tier_reviewed_at timestamptz NOT NULL DEFAULT '-infinity';
COMMENT ON COLUMN @extschema@.customer.tier_since IS 'when the customer got the current tier';
COMMENT ON COLUMN @extschema@.customer.tier_reviewed_at IS 'when review_tiers last reviewed the customer; -infinity: never';
CREATE INDEX customer_tier_review_idx ON @extschema@.customer (program_id, tier_reviewed_at);

CREATE TABLE @extschema@.tier_change (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL,
    customer_id bigint NOT NULL,
    from_tier   text,
    to_tier     text,
    reason      text NOT NULL CHECK (reason OPERATOR(pg_catalog.=) ANY ('{qualified,review}'::text[])),
    spend       bigint NOT NULL,
    receipts    integer NOT NULL,
    receipt_id  text,
    changed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    actor       text NOT NULL DEFAULT pg_catalog."session_user"()
);
CREATE INDEX tier_change_customer_idx ON @extschema@.tier_change (customer_id, changed_at);
COMMENT ON TABLE @extschema@.tier_change IS 'every change of a customer''s tier: from, to, why, and the spend and receipts that decided it';
COMMENT ON COLUMN @extschema@.tier_change.reason IS 'qualified: a receipt lifted the customer; review: the periodic review moved them (up or down)';
COMMENT ON COLUMN @extschema@.tier_change.spend IS 'money paid over the window, in minor units, when the change was decided';
COMMENT ON COLUMN @extschema@.tier_change.receipt_id IS 'the receipt that qualified the customer (reason qualified)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier_change', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.tier_change', 'id'), '');

-- What the customers of a programme bought since a time, per customer:
-- money paid after refunds (minor units), receipts that still stand, and
-- the last one's time.  Plain SQL without a SET clause, so that the
-- planner inlines it and pushes a filter on customer_id down to the index
-- (customer_stats) or aggregates the whole window in one pass
-- (refresh_segments); every name is qualified.
CREATE FUNCTION @extschema@.purchases(pid bigint, since timestamptz)
RETURNS TABLE (customer_id bigint, spend bigint, receipts integer, last_at timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT r.customer_id,
           COALESCE(pg_catalog.sum(r.to_pay OPERATOR(pg_catalog.-) COALESCE(f.money, 0)), 0)::bigint,
           (pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'refunded'))::integer,
           pg_catalog.max(r.committed_at) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'refunded')
      FROM @extschema@.receipt r
      LEFT JOIN LATERAL (SELECT pg_catalog.sum(x.money) AS money FROM @extschema@.receipt_refund x
                          WHERE x.program_id OPERATOR(pg_catalog.=) r.program_id
                            AND x.receipt_id OPERATOR(pg_catalog.=) r.receipt_id) f
             ON r.status OPERATOR(pg_catalog.<>) 'committed'
     WHERE r.program_id OPERATOR(pg_catalog.=) pid AND r.customer_id IS NOT NULL
       AND r.committed_at OPERATOR(pg_catalog.>=) since
       AND r.status OPERATOR(pg_catalog.<>) 'cancelled'
     GROUP BY r.customer_id
$$;
COMMENT ON FUNCTION @extschema@.purchases(bigint, timestamptz) IS
'per customer of a programme since a time: money paid after refunds (minor units), receipts not cancelled or wholly refunded, the last one''s time';

-- One customer's purchases (zeros without any).
CREATE FUNCTION @extschema@.customer_stats(pid bigint, cid bigint, since timestamptz,
                                           OUT spend bigint, OUT receipts integer, OUT last_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(p.spend, 0), COALESCE(p.receipts, 0), p.last_at
      FROM (SELECT 1) one
      LEFT JOIN @extschema@.purchases(pid, since) p ON p.customer_id OPERATOR(pg_catalog.=) cid
$$;
COMMENT ON FUNCTION @extschema@.customer_stats(bigint, bigint, timestamptz) IS
'a customer''s purchases since a time: money paid after refunds (minor units), receipts not cancelled or wholly refunded, the last one''s time';

-- The best tier the figures qualify for (NULL if the programme has none
-- they reach).
CREATE FUNCTION @extschema@.qualified_tier(pid bigint, spend bigint, receipts integer)
RETURNS @extschema@.tier
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.* FROM @extschema@.tier t, @extschema@.program g
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND g.id OPERATOR(pg_catalog.=) pid
       AND CASE WHEN t.min_spend IS NULL AND t.min_receipts IS NULL THEN true
                WHEN t.qualify OPERATOR(pg_catalog.=) 'any' THEN
                     spend OPERATOR(pg_catalog.>=) @extschema@.minor_units(t.min_spend, g.money_exponent)
                     OR receipts OPERATOR(pg_catalog.>=) t.min_receipts
                ELSE COALESCE(spend OPERATOR(pg_catalog.>=) @extschema@.minor_units(t.min_spend, g.money_exponent), true)
                     AND COALESCE(receipts OPERATOR(pg_catalog.>=) t.min_receipts, true) END
     ORDER BY t.rank DESC LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.qualified_tier(bigint, bigint, integer) IS
'the highest tier of the programme that this spend (minor units) and receipt count qualify for';

-- Move a customer from one tier to another, if the customer still has the
-- first (a commit and the review may decide at once): the change, its
-- record and its event.  Returns whether it moved.
CREATE FUNCTION @extschema@.change_tier(pid bigint, cid bigint, from_tier text, to_tier text,
                                        reason text, spend bigint, receipts integer, receipt_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE @extschema@.customer c
       SET tier = to_tier, tier_since = pg_catalog.now(), updated_at = pg_catalog.now()
     WHERE c.id OPERATOR(pg_catalog.=) cid AND c.tier IS NOT DISTINCT FROM from_tier;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO @extschema@.tier_change (program_id, customer_id, from_tier, to_tier, reason, spend,
                                         receipts, receipt_id)
    VALUES (pid, cid, from_tier, to_tier, reason, spend, receipts, receipt_id);
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (pid, 'tier_changed', cid, pg_catalog.jsonb_build_object(
                'from', from_tier, 'to', to_tier, 'reason', reason, 'receipts', receipts,
                'spend', @extschema@.major_units(spend, (SELECT g.money_exponent FROM @extschema@.program g
                                                          WHERE g.id OPERATOR(pg_catalog.=) pid)),
                'receipt_id', receipt_id));
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.change_tier(bigint, bigint, text, text, text, bigint, integer, text) IS
'move a customer from from_tier to to_tier if they still have from_tier, with a tier_change row and a tier_changed event';

-- A committed receipt lifts its customer at once to the best tier the
-- window now qualifies them for; it never lowers one.
CREATE FUNCTION @extschema@.receipt_tier()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st record;
    best @extschema@.tier;
    cur text;
    cur_rank integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @extschema@.tier t WHERE t.program_id OPERATOR(pg_catalog.=) NEW.program_id) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO st FROM @extschema@.customer_stats(NEW.program_id, NEW.customer_id,
        pg_catalog.now() OPERATOR(pg_catalog.-) (SELECT g.tier_window FROM @extschema@.program g
                                                  WHERE g.id OPERATOR(pg_catalog.=) NEW.program_id));
    best := @extschema@.qualified_tier(NEW.program_id, st.spend, st.receipts);
    IF best.code IS NULL THEN
        RETURN NULL;
    END IF;
    -- the customer's tier as it is once a review of them has finished
    SELECT c.tier, t.rank INTO cur, cur_rank
      FROM @extschema@.customer c
      LEFT JOIN @extschema@.tier t ON t.program_id OPERATOR(pg_catalog.=) c.program_id
                                  AND t.code OPERATOR(pg_catalog.=) c.tier
     WHERE c.id OPERATOR(pg_catalog.=) NEW.customer_id
       FOR NO KEY UPDATE OF c;
    IF cur_rank IS NULL OR best.rank OPERATOR(pg_catalog.>) cur_rank THEN
        PERFORM @extschema@.change_tier(NEW.program_id, NEW.customer_id, cur, best.code, 'qualified',
                                        st.spend, st.receipts, NEW.receipt_id);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.receipt_tier() IS
'trigger: a committed receipt moves its customer up to the best tier they now qualify for';
CREATE TRIGGER receipt_tier AFTER INSERT ON @extschema@.receipt
    FOR EACH ROW WHEN (NEW.customer_id IS NOT NULL)
    EXECUTE FUNCTION @extschema@.receipt_tier();

-- The job review_tiers: from the start of each review period (month,
-- quarter or year), every customer of a programme with tiers is reviewed
-- once: moved to the tier the window qualifies them for, up or down.
-- Customers are claimed with SKIP LOCKED, a chunk at a time.
CREATE FUNCTION @extschema@.review_tiers(batch_limit integer DEFAULT 10000,
                                         time_budget interval DEFAULT '50 seconds')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer := @extschema@.job_limit(batch_limit);
    deadline timestamptz := @extschema@.job_deadline(time_budget);
    g record;
    c record;
    st record;
    best @extschema@.tier;
    done integer := 0;
    chunk integer;
BEGIN
    FOR g IN SELECT p.id, p.tier_window, pg_catalog.date_trunc(p.tier_review, pg_catalog.now()) AS review_from
               FROM @extschema@.program p
              WHERE EXISTS (SELECT 1 FROM @extschema@.tier t WHERE t.program_id OPERATOR(pg_catalog.=) p.id)
              ORDER BY p.id
    LOOP
        LOOP
            chunk := 0;
            FOR c IN SELECT u.id, u.tier FROM @extschema@.customer u
                      WHERE u.program_id OPERATOR(pg_catalog.=) g.id
                        AND u.tier_reviewed_at OPERATOR(pg_catalog.<) g.review_from
                        AND u.status OPERATOR(pg_catalog.<>) 'merged'
                      ORDER BY u.tier_reviewed_at, u.id
                      LIMIT LEAST(500, lim OPERATOR(pg_catalog.-) done)
                        FOR NO KEY UPDATE SKIP LOCKED
            LOOP
                SELECT * INTO st FROM @extschema@.customer_stats(g.id, c.id,
                    pg_catalog.now() OPERATOR(pg_catalog.-) g.tier_window);
                best := @extschema@.qualified_tier(g.id, st.spend, st.receipts);
                IF best.code IS DISTINCT FROM c.tier THEN
                    PERFORM @extschema@.change_tier(g.id, c.id, c.tier, best.code, 'review',
                                                    st.spend, st.receipts, NULL);
                END IF;
                UPDATE @extschema@.customer u SET tier_reviewed_at = pg_catalog.now()
                 WHERE u.id OPERATOR(pg_catalog.=) c.id;
                chunk := chunk OPERATOR(pg_catalog.+) 1;
            END LOOP;
            done := done OPERATOR(pg_catalog.+) chunk;
            IF done OPERATOR(pg_catalog.>=) lim OR pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) deadline THEN
                RETURN done;
            END IF;
            EXIT WHEN chunk OPERATOR(pg_catalog.=) 0;
        END LOOP;
    END LOOP;
    RETURN done;
END
$$;
COMMENT ON FUNCTION @extschema@.review_tiers(integer, interval) IS
'review the customers not yet reviewed in the current review period of their programme: each moves to the tier the window qualifies them for, up or down; returns how many were reviewed';

-- Rule-based segments
ALTER TABLE @extschema@.segment
    ADD COLUMN kind text NOT NULL DEFAULT 'static'
    CHECK (kind OPERATOR(pg_catalog.=) ANY ('{static,rule}'::text[])),
    ADD COLUMN rule @extschema@.condition,
    ADD COLUMN stats_window interval NOT NULL DEFAULT '365 days'
    CHECK (stats_window OPERATOR(pg_catalog.>) '0'::interval),
    ADD COLUMN refresh_every interval NOT NULL DEFAULT '1 day'
    CHECK (refresh_every OPERATOR(pg_catalog.>) '0'::interval),
    ADD COLUMN refreshed_at timestamptz,
    ADD COLUMN members bigint,
    ADD CONSTRAINT segment_rule_check CHECK ((kind OPERATOR(pg_catalog.=) 'rule') OPERATOR(pg_catalog.=) (rule IS NOT NULL));
COMMENT ON COLUMN @extschema@.segment.kind IS 'static: members are added and removed by hand; rule: refresh_segments keeps the customers the rule holds for';
COMMENT ON COLUMN @extschema@.segment.rule IS 'a condition over customer.* (the document calculate reads, with recency_days, frequency and monetary over stats_window)';
COMMENT ON COLUMN @extschema@.segment.stats_window IS 'the window of the purchase statistics the rule reads';
COMMENT ON COLUMN @extschema@.segment.refresh_every IS 'how often refresh_segments rebuilds a rule segment';
COMMENT ON COLUMN @extschema@.segment.refreshed_at IS 'when the rule segment was last rebuilt; NULL: never';
COMMENT ON COLUMN @extschema@.segment.members IS 'members after the last rebuild';
CREATE INDEX segment_member_segment_idx ON @extschema@.segment_member (program_id, segment);

-- The customer as a segment rule reads it: what calculate reads as
-- customer.* (id, status, tier, birthday, home_city, segments, attributes)
-- and the purchase statistics: recency_days (days since the last receipt;
-- absent without one), frequency (receipts), monetary (money paid, in
-- major units).
CREATE FUNCTION @extschema@.customer_document(c @extschema@.customer, spend bigint, receipts integer,
                                              last_at timestamptz, money_exponent integer)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'id', c.id, 'status', c.status, 'tier', c.tier,
               'birthday', pg_catalog.to_char(c.birth_date, 'YYYY-MM-DD'), 'home_city', c.home_city,
               'segments', COALESCE((SELECT pg_catalog.jsonb_agg(m.segment ORDER BY m.segment)
                                       FROM @extschema@.segment_member m
                                      WHERE m.customer_id OPERATOR(pg_catalog.=) c.id), '[]'),
               'attributes', c.attributes,
               'recency_days', pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) last_at)
                                                OPERATOR(pg_catalog./) 86400)::integer,
               'frequency', COALESCE(receipts, 0),
               'monetary', @extschema@.major_units(COALESCE(spend, 0), money_exponent)))
$$;
COMMENT ON FUNCTION @extschema@.customer_document(@extschema@.customer, bigint, integer, timestamptz, integer) IS
'the customer document segment rules read: calculate''s customer.* with recency_days, frequency and monetary';

-- The job refresh_segments: rebuild the rule segments that are due, each
-- in one statement (the members the rule holds for are added, the others
-- removed), claimed with SKIP LOCKED so that two workers share them.
CREATE FUNCTION @extschema@.refresh_segments(time_budget interval DEFAULT '50 seconds',
                                             force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline timestamptz := @extschema@.job_deadline(time_budget);
    s record;
    n bigint;
    gained bigint;
    lost bigint;
    refreshed integer := 0;
BEGIN
    IF force IS NULL THEN
        RAISE EXCEPTION 'force must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    LOOP
        SELECT g.program_id, g.code, g.rule, g.stats_window, p.money_exponent INTO s
          FROM @extschema@.segment g JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) g.program_id
         WHERE g.kind OPERATOR(pg_catalog.=) 'rule'
           AND (force OR g.refreshed_at IS NULL
                OR g.refreshed_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.-) g.refresh_every))
           AND (g.refreshed_at IS NULL OR g.refreshed_at OPERATOR(pg_catalog.<) pg_catalog.now())
         ORDER BY g.refreshed_at NULLS FIRST, g.program_id, g.code
         LIMIT 1
           FOR NO KEY UPDATE OF g SKIP LOCKED;
        EXIT WHEN NOT FOUND;
        WITH stats AS (
            SELECT * FROM @extschema@.purchases(s.program_id,
                                                pg_catalog.now() OPERATOR(pg_catalog.-) s.stats_window)),
        wanted AS (
            SELECT c.id
              FROM @extschema@.customer c
              LEFT JOIN stats t ON t.customer_id OPERATOR(pg_catalog.=) c.id
             WHERE c.program_id OPERATOR(pg_catalog.=) s.program_id
               AND c.status OPERATOR(pg_catalog.<>) 'merged'
               AND @extschema@.matches(s.rule, '{}'::jsonb,
                                       pg_catalog.jsonb_build_object('at', pg_catalog.now()),
                                       @extschema@.customer_document(c, t.spend, t.receipts, t.last_at,
                                                                     s.money_exponent))),
        added AS (
            INSERT INTO @extschema@.segment_member (customer_id, program_id, segment)
            SELECT w.id, s.program_id, s.code FROM wanted w
            ON CONFLICT DO NOTHING
            RETURNING 1),
        removed AS (
            DELETE FROM @extschema@.segment_member m
             WHERE m.program_id OPERATOR(pg_catalog.=) s.program_id
               AND m.segment OPERATOR(pg_catalog.=) s.code
               AND m.customer_id OPERATOR(pg_catalog.<>) ALL (ARRAY(SELECT w.id FROM wanted w))
            RETURNING 1)
        SELECT (SELECT pg_catalog.count(*) FROM wanted), (SELECT pg_catalog.count(*) FROM added),
               (SELECT pg_catalog.count(*) FROM removed)
          INTO n, gained, lost;
        RAISE DEBUG 'loyalty.refresh_segments: segment % of programme %: % members, % added, % removed',
            s.code, s.program_id, n, gained, lost;
        UPDATE @extschema@.segment g SET refreshed_at = pg_catalog.now(), members = n
         WHERE g.program_id OPERATOR(pg_catalog.=) s.program_id AND g.code OPERATOR(pg_catalog.=) s.code;
        refreshed := refreshed OPERATOR(pg_catalog.+) 1;
        EXIT WHEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) deadline;
    END LOOP;
    RETURN refreshed;
END
$$;
COMMENT ON FUNCTION @extschema@.refresh_segments(interval, boolean) IS
'rebuild the rule segments due (refresh_every since the last rebuild; all with force): add the customers the rule holds for, remove the others; returns how many segments were rebuilt';

REVOKE ALL ON FUNCTION
    @extschema@.purchases(bigint, timestamptz),
    @extschema@.customer_stats(bigint, bigint, timestamptz),
    @extschema@.qualified_tier(bigint, bigint, integer),
    @extschema@.change_tier(bigint, bigint, text, text, text, bigint, integer, text),
    @extschema@.receipt_tier(),
    @extschema@.review_tiers(integer, interval),
    @extschema@.customer_document(@extschema@.customer, bigint, integer, timestamptz, integer),
    @extschema@.refresh_segments(interval, boolean)
FROM PUBLIC;


-- src/jobs.sql and src/receipt.sql: the new jobs

CREATE OR REPLACE FUNCTION @extschema@.jobs()
RETURNS TABLE (job text, schedule text, command text, description text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('loyalty.release_accruals', '* * * * *',
            'CALL loyalty.run_job(''release_accruals'', ''50 seconds'')',
            'releases the accruals of the queue that are due as lots'),
           ('loyalty.expire_due', '* * * * *',
            'CALL loyalty.run_job(''expire_due'', ''50 seconds'')',
            'records expired lots as expire entries in the ledger'),
           ('loyalty.release_expired_holds', '* * * * *',
            'CALL loyalty.run_job(''release_expired_holds'', ''50 seconds'')',
            'marks holds past their deadline expired, with release entries'),
           ('loyalty.notice_expiring', '*/10 * * * *',
            'CALL loyalty.run_job(''notice_expiring'', ''50 seconds'')',
            'emits a points_expiring event per wallet for lots entering their programme''s expiry_notice window'),
           ('loyalty.purge_events', '41 * * * *',
            'SELECT loyalty.purge_events(100000)',
            'deletes events that no consumer took within their programme''s event_retention'),
           ('loyalty.review_tiers', '29 * * * *',
            'CALL loyalty.run_job(''review_tiers'', ''50 seconds'')',
            'from the start of each review period, moves every customer to the tier the window qualifies them for, up or down'),
           ('loyalty.refresh_segments', '53 * * * *',
            'SELECT loyalty.refresh_segments(''50 seconds'')',
            'rebuilds the rule segments whose refresh_every has passed'),
           ('loyalty.create_partitions', '17 * * * *',
            'SELECT loyalty.create_partitions(3)',
            'keeps monthly partitions of receipts and receipt lines three months ahead')
$$;

CREATE OR REPLACE FUNCTION @extschema@.job_health_rows()
RETURNS TABLE (job text, schedule text, scheduled boolean, active boolean,
               last_start timestamptz, last_duration interval, last_status text,
               last_message text, runs_failed_last_day bigint,
               backlog bigint, oldest_due_age interval)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    due record;
BEGIN
    FOR job, schedule IN SELECT d.job, d.schedule FROM @extschema@.jobs() d ORDER BY d.job LOOP
        scheduled := NULL;
        active := NULL;
        last_start := NULL;
        last_duration := NULL;
        last_status := NULL;
        last_message := NULL;
        runs_failed_last_day := NULL;
        IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
            EXECUTE $q$
                SELECT j.jobid IS NOT NULL, j.active, r.start_time,
                       r.end_time OPERATOR(pg_catalog.-) r.start_time, r.status, r.return_message,
                       (SELECT pg_catalog.count(*) FROM cron.job_run_details f
                         WHERE f.jobid OPERATOR(pg_catalog.=) j.jobid
                           AND f.status OPERATOR(pg_catalog.=) 'failed'
                           AND f.start_time OPERATOR(pg_catalog.>)
                               (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day'))
                  FROM (SELECT 1) one
                  LEFT JOIN cron.job j ON j.jobname OPERATOR(pg_catalog.=) $1
                       AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
                  LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details d
                                      WHERE d.jobid OPERATOR(pg_catalog.=) j.jobid
                                      ORDER BY d.runid DESC LIMIT 1) r ON true
                 ORDER BY j.jobid DESC NULLS LAST LIMIT 1 $q$
              INTO scheduled, active, last_start, last_duration, last_status, last_message,
                   runs_failed_last_day
             USING job;
        END IF;
        -- each job's own backlog; a job without one shows NULL
        IF job OPERATOR(pg_catalog.=) 'loyalty.expire_due' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(l.valid_to) INTO due
              FROM @extschema@.lot l
             WHERE l.live AND l.valid_to IS NOT NULL AND l.valid_to OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_accruals' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(q.release_at) INTO due
              FROM @extschema@.accrual_queue q
             WHERE q.release_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_expired_holds' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(h.expires_at) INTO due
              FROM @extschema@.hold h
             WHERE h.status OPERATOR(pg_catalog.=) 'active'
               AND h.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.notice_expiring' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(l.valid_to OPERATOR(pg_catalog.-) g.expiry_notice) INTO due
              FROM @extschema@.lot l
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) l.program_id
             WHERE l.live AND l.valid_to IS NOT NULL AND l.expiry_noticed_at IS NULL
               AND l.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()
               AND l.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) g.expiry_notice);
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.purge_events' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(e.created_at OPERATOR(pg_catalog.+) g.event_retention) INTO due
              FROM @extschema@.event e
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) e.program_id
             WHERE e.created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) g.event_retention);
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.review_tiers' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(pg_catalog.date_trunc(g.tier_review, pg_catalog.now())) INTO due
              FROM @extschema@.program g
              JOIN @extschema@.customer u ON u.program_id OPERATOR(pg_catalog.=) g.id
             WHERE EXISTS (SELECT 1 FROM @extschema@.tier t WHERE t.program_id OPERATOR(pg_catalog.=) g.id)
               AND u.tier_reviewed_at OPERATOR(pg_catalog.<) pg_catalog.date_trunc(g.tier_review, pg_catalog.now())
               AND u.status OPERATOR(pg_catalog.<>) 'merged';
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.refresh_segments' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(COALESCE(s.refreshed_at OPERATOR(pg_catalog.+) s.refresh_every, pg_catalog.now())) INTO due
              FROM @extschema@.segment s
             WHERE s.kind OPERATOR(pg_catalog.=) 'rule'
               AND (s.refreshed_at IS NULL
                    OR s.refreshed_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.-) s.refresh_every));
        ELSE
            SELECT NULL::bigint AS count, NULL::timestamptz AS min INTO due;
        END IF;
        backlog := due.count;
        oldest_due_age := pg_catalog.now() OPERATOR(pg_catalog.-) due.min;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE PROCEDURE @extschema@.run_job(job text, time_budget interval DEFAULT '50 seconds')
LANGUAGE plpgsql
AS $$
DECLARE
    deadline timestamptz := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) time_budget;
    slice interval;
    n bigint;
    idle integer := 0;
BEGIN
    IF job IS NULL OR job OPERATOR(pg_catalog.<>) ALL ('{release_accruals,expire_due,release_expired_holds,notice_expiring,review_tiers}'::text[]) THEN
        RAISE EXCEPTION 'job "%" cannot run in slices', job
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The jobs that run in slices are release_accruals, expire_due, release_expired_holds, notice_expiring and review_tiers.';
    END IF;
    IF time_budget IS NULL OR time_budget OPERATOR(pg_catalog.<=) '0'::interval THEN
        RAISE EXCEPTION 'time_budget must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP
        slice := LEAST('200 milliseconds'::interval, deadline OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp());
        EXIT WHEN slice OPERATOR(pg_catalog.<=) '0'::interval;
        IF job OPERATOR(pg_catalog.=) 'release_accruals' THEN
            n := @extschema@.release_accruals(slice);
        ELSIF job OPERATOR(pg_catalog.=) 'expire_due' THEN
            n := @extschema@.expire_due(100000, slice);
        ELSIF job OPERATOR(pg_catalog.=) 'notice_expiring' THEN
            n := @extschema@.notice_expiring(100000, slice);
        ELSIF job OPERATOR(pg_catalog.=) 'review_tiers' THEN
            n := @extschema@.review_tiers(100000, slice);
        ELSE
            n := @extschema@.release_expired_holds(100000, slice);
        END IF;
        COMMIT;
        -- a slice that did nothing met only rows other workers or tills
        -- hold, or nothing due: after three in a row, stop
        IF n OPERATOR(pg_catalog.>) 0 THEN
            idle := 0;
        ELSE
            idle := idle OPERATOR(pg_catalog.+) 1;
            EXIT WHEN idle OPERATOR(pg_catalog.>=) 3;
            PERFORM pg_catalog.pg_sleep(0.05);
        END IF;
    END LOOP;
END
$$;

COMMENT ON COLUMN @extschema@.job_health.backlog IS 'rows due now that the job has not done: accruals past release_at, lots past valid_to, holds past expires_at, lots in their notice window (not yet expired) without a notice, events past their retention, customers not yet reviewed this review period, rule segments due for a rebuild';

COMMENT ON PROCEDURE @extschema@.run_job(text, interval) IS
'run release_accruals, expire_due, release_expired_holds, notice_expiring or review_tiers in transactions of at most 0.2 s until three in a row find nothing to do or time_budget is spent (CALL it outside a transaction block)';
