-- src/fraud.sql — fraud controls: velocity rules checked in the operation's
-- transaction (src/fraud.c), their tallies, the cases they open and the
-- admin's review of them.  docs/fraud.md is the contract.

CREATE TABLE @extschema@.fraud_rule (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL REFERENCES @extschema@.program (id),
    code        text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[[:alnum:]_.-]{1,64}$'),
    name        text,
    measure     text NOT NULL
                CHECK (measure OPERATOR(pg_catalog.=) ANY
                       ('{points_earned,points_spent,receipts,refunds,money_refunded,distinct_cards,distinct_phones,distinct_stores,holds,adjustments}'::text[])),
    subject     text NOT NULL
                CHECK (subject OPERATOR(pg_catalog.=) ANY ('{customer,identifier,store,actor,device}'::text[])),
    currency    text,
    "window"    interval NOT NULL,
    resolution  interval,
    threshold   bigint NOT NULL CHECK (threshold OPERATOR(pg_catalog.>=) 0),
    action      text NOT NULL CHECK (action OPERATOR(pg_catalog.=) ANY ('{flag,hold,refuse}'::text[])),
    condition   @extschema@.condition,
    message     text,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (program_id, code)
);
COMMENT ON TABLE @extschema@.fraud_rule IS 'a velocity rule: what an operation adds to a measure of its subject over a sliding window, the most the window may hold, and what happens to the operation that takes it past';
COMMENT ON COLUMN @extschema@.fraud_rule.id IS 'the rule id';
COMMENT ON COLUMN @extschema@.fraud_rule.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.fraud_rule.code IS 'unique in the programme: named by refusals, cases and events';
COMMENT ON COLUMN @extschema@.fraud_rule.name IS 'a description for people';
COMMENT ON COLUMN @extschema@.fraud_rule.measure IS 'points_earned, points_spent (minor units of currency), receipts, refunds, money_refunded (minor units of money), distinct_cards, distinct_phones, distinct_stores, holds or adjustments (docs/fraud.md says which operation adds what)';
COMMENT ON COLUMN @extschema@.fraud_rule.subject IS 'whose window: customer, identifier (the card, phone or e-mail a receipt names), store, actor (the role, loyalty.actor()) or device (the receipt''s "device")';
COMMENT ON COLUMN @extschema@.fraud_rule.currency IS 'the points currency of points_earned and points_spent (set to the programme''s default when NULL); NULL for the other measures';
COMMENT ON COLUMN @extschema@.fraud_rule."window" IS 'how far back the measure counts: a whole number of seconds, days or hours (no months), a whole multiple of resolution';
COMMENT ON COLUMN @extschema@.fraud_rule.resolution IS 'the step the window slides by: operations are counted in buckets this long; set when NULL to window / 60 if that is a whole number of seconds, else 1 second';
COMMENT ON COLUMN @extschema@.fraud_rule.threshold IS 'the most the window may hold: the operation that takes the measure past it trips the rule';
COMMENT ON COLUMN @extschema@.fraud_rule.action IS 'flag (a case), hold (a case, and the customer goes to fraud_hold; customer and identifier subjects only) or refuse (the operation fails with SQLSTATE P0L04)';
COMMENT ON COLUMN @extschema@.fraud_rule.condition IS 'NULL, or the lines that count (a line condition): only receipts and refunds match a rule with a condition';
COMMENT ON COLUMN @extschema@.fraud_rule.message IS 'what a refusal says to the till (its errdetail); NULL: a message naming the rule';
COMMENT ON COLUMN @extschema@.fraud_rule.active IS 'false: not checked (its tallies are dropped at their next change)';
COMMENT ON COLUMN @extschema@.fraud_rule.created_at IS 'when the rule was made';
COMMENT ON COLUMN @extschema@.fraud_rule.updated_at IS 'set by the trigger fraud_rule_check on every UPDATE';
ALTER TABLE @extschema@.fraud_rule ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.fraud_rule USING (@extschema@.program_open(program_id));

-- The seconds of an interval with no months; NULL if it has months.
CREATE FUNCTION @extschema@.fraud_seconds(i interval)
RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN pg_catalog.date_part('month', i) OPERATOR(pg_catalog.=) 0
                   AND pg_catalog.date_part('year', i) OPERATOR(pg_catalog.=) 0
                  THEN pg_catalog.date_part('epoch', i)::numeric END $$;

CREATE FUNCTION @extschema@.fraud_rule_check()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w numeric := @extschema@.fraud_seconds(NEW."window");
    r numeric;
    points boolean := NEW.measure OPERATOR(pg_catalog.=) ANY ('{points_earned,points_spent}'::text[]);
BEGIN
    IF w IS NULL OR w OPERATOR(pg_catalog.<=) 0 OR w OPERATOR(pg_catalog.<>) pg_catalog.trunc(w)
       OR w OPERATOR(pg_catalog.>) 31622400 THEN
        RAISE EXCEPTION 'fraud rule "%": window must be a whole number of seconds from 1 second to 366 days, without months, not "%"',
              NEW.code, NEW."window"
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Write it in days, hours, minutes or seconds: ''30 days'', ''1 hour''.';
    END IF;
    IF NEW.resolution IS NULL THEN
        NEW.resolution := CASE WHEN (w OPERATOR(pg_catalog.%) 60) OPERATOR(pg_catalog.=) 0
                               THEN pg_catalog.make_interval(secs => (w OPERATOR(pg_catalog./) 60)::double precision)
                               ELSE '1 second'::interval END;
    END IF;
    r := @extschema@.fraud_seconds(NEW.resolution);
    IF r IS NULL OR r OPERATOR(pg_catalog.<=) 0 OR r OPERATOR(pg_catalog.<>) pg_catalog.trunc(r)
       OR (w OPERATOR(pg_catalog.%) r) OPERATOR(pg_catalog.<>) 0
       OR (w OPERATOR(pg_catalog./) r) OPERATOR(pg_catalog.>) 10000 THEN
        RAISE EXCEPTION 'fraud rule "%": resolution must be a whole number of seconds that divides the window into at most 10000 steps, not "%"',
              NEW.code, NEW.resolution
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF points THEN
        IF NEW.currency IS NULL THEN
            SELECT g.default_currency INTO NEW.currency FROM @extschema@.program g
             WHERE g.id OPERATOR(pg_catalog.=) NEW.program_id;
        ELSIF NOT EXISTS (SELECT FROM @extschema@.currency c
                           WHERE c.program_id OPERATOR(pg_catalog.=) NEW.program_id
                             AND c.code OPERATOR(pg_catalog.=) NEW.currency) THEN
            RAISE EXCEPTION 'fraud rule "%": currency "%" does not exist in the programme', NEW.code, NEW.currency
                USING ERRCODE = 'undefined_object';
        END IF;
    ELSIF NEW.currency IS NOT NULL THEN
        RAISE EXCEPTION 'fraud rule "%": currency is only for points_earned and points_spent, not %', NEW.code, NEW.measure
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.action OPERATOR(pg_catalog.=) 'hold'
       AND NEW.subject OPERATOR(pg_catalog.<>) ALL ('{customer,identifier}'::text[]) THEN
        RAISE EXCEPTION 'fraud rule "%": hold puts a customer on hold, so its subject must be customer or identifier, not %',
              NEW.code, NEW.subject
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Flag or refuse by store, actor or device.';
    END IF;
    -- what an operation can add for each subject (docs/fraud.md)
    IF (NEW.subject OPERATOR(pg_catalog.=) 'identifier'
        AND NEW.measure OPERATOR(pg_catalog.<>) ALL ('{points_earned,points_spent,receipts,distinct_stores}'::text[]))
       OR (NEW.subject OPERATOR(pg_catalog.=) 'device'
        AND NEW.measure OPERATOR(pg_catalog.<>) ALL ('{points_earned,points_spent,receipts,distinct_cards,distinct_phones,distinct_stores}'::text[]))
       OR (NEW.subject OPERATOR(pg_catalog.=) 'store'
        AND NEW.measure OPERATOR(pg_catalog.=) ANY ('{distinct_stores,holds,adjustments}'::text[])) THEN
        RAISE EXCEPTION 'fraud rule "%": no operation adds to % by %', NEW.code, NEW.measure, NEW.subject
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'docs/fraud.md lists the measures each subject has.';
    END IF;
    IF NEW.condition IS NOT NULL
       AND NEW.measure OPERATOR(pg_catalog.<>) ALL ('{points_earned,points_spent,receipts,refunds,money_refunded,distinct_cards,distinct_phones,distinct_stores}'::text[]) THEN
        RAISE EXCEPTION 'fraud rule "%": a condition chooses lines, and % has none', NEW.code, NEW.measure
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- what its tallies hold is of its measure, subject and currency
        IF NEW.measure OPERATOR(pg_catalog.<>) OLD.measure OR NEW.subject OPERATOR(pg_catalog.<>) OLD.subject
           OR NEW.currency IS DISTINCT FROM OLD.currency OR NEW.program_id OPERATOR(pg_catalog.<>) OLD.program_id THEN
            RAISE EXCEPTION 'fraud rule "%": its programme, measure, subject and currency cannot change', OLD.code
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Make a new rule, and set active = false on this one.';
        END IF;
        NEW.updated_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER fraud_rule_check
    BEFORE INSERT OR UPDATE ON @extschema@.fraud_rule
    FOR EACH ROW EXECUTE FUNCTION @extschema@.fraud_rule_check();
CREATE TRIGGER fraud_rule_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.fraud_rule
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();

-- One row per subject that an active rule counts: every rule's buckets of
-- that subject, as parallel arrays (src/fraud.c reads and writes them).
CREATE TABLE @extschema@.fraud_tally (
    program_id   bigint NOT NULL,
    subject_kind text NOT NULL,
    subject      text NOT NULL,
    rule_id      bigint[] NOT NULL,
    bucket       bigint[] NOT NULL,
    amount       bigint[] NOT NULL,
    item         text[] NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (program_id, subject_kind, subject)
) WITH (fillfactor = 80);
COMMENT ON TABLE @extschema@.fraud_tally IS 'what the operations of one subject added to the windows of the rules that count it: element i of the arrays is one bucket of one rule (written by the operations, in C)';
COMMENT ON COLUMN @extschema@.fraud_tally.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.fraud_tally.subject_kind IS 'customer, identifier, store, actor or device';
COMMENT ON COLUMN @extschema@.fraud_tally.subject IS 'the customer id, kind:value of the identifier, store code, role name or device';
COMMENT ON COLUMN @extschema@.fraud_tally.rule_id IS 'the rule of each element';
COMMENT ON COLUMN @extschema@.fraud_tally.bucket IS 'the start of the bucket the amount fell in (a distinct item: the last it was seen in), in microseconds since 2000-01-01 UTC';
COMMENT ON COLUMN @extschema@.fraud_tally.amount IS 'what the bucket adds to the measure (1 for a distinct item)';
COMMENT ON COLUMN @extschema@.fraud_tally.item IS 'the distinct card, phone or store; NULL for the other measures';
COMMENT ON COLUMN @extschema@.fraud_tally.updated_at IS 'when an operation last changed it';
ALTER TABLE @extschema@.fraud_tally ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.fraud_tally USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.fraud_case (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id   bigint NOT NULL REFERENCES @extschema@.program (id),
    rule_id      bigint NOT NULL REFERENCES @extschema@.fraud_rule (id),
    rule_code    text NOT NULL,
    action       text NOT NULL CHECK (action OPERATOR(pg_catalog.=) ANY ('{flag,hold}'::text[])),
    subject_kind text NOT NULL,
    subject      text NOT NULL,
    customer_id  bigint REFERENCES @extschema@.customer (id),
    store        text,
    tally        bigint NOT NULL,
    threshold    bigint NOT NULL,
    state        text NOT NULL DEFAULT 'open'
                 CHECK (state OPERATOR(pg_catalog.=) ANY ('{open,confirmed,released}'::text[])),
    opened_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    decided_at   timestamptz,
    decided_by   text,
    reason       text,
    forfeited    bigint NOT NULL DEFAULT 0,
    CHECK ((state OPERATOR(pg_catalog.=) 'open') OPERATOR(pg_catalog.=) (decided_at IS NULL))
);
CREATE UNIQUE INDEX fraud_case_open_idx ON @extschema@.fraud_case (rule_id, subject_kind, subject)
    WHERE state OPERATOR(pg_catalog.=) 'open';
CREATE INDEX fraud_case_customer_idx ON @extschema@.fraud_case (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX fraud_case_day_idx ON @extschema@.fraud_case (program_id, opened_at);
COMMENT ON TABLE @extschema@.fraud_case IS 'the review queue: a rule tripped by a subject (flag or hold), open until an admin releases or confirms it';
COMMENT ON COLUMN @extschema@.fraud_case.id IS 'the case id';
COMMENT ON COLUMN @extschema@.fraud_case.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.fraud_case.rule_id IS 'the rule that tripped';
COMMENT ON COLUMN @extschema@.fraud_case.rule_code IS 'its code when it tripped';
COMMENT ON COLUMN @extschema@.fraud_case.action IS 'flag or hold, the rule''s action when it tripped';
COMMENT ON COLUMN @extschema@.fraud_case.subject_kind IS 'customer, identifier, store, actor or device';
COMMENT ON COLUMN @extschema@.fraud_case.subject IS 'who tripped it (as in fraud_tally.subject)';
COMMENT ON COLUMN @extschema@.fraud_case.customer_id IS 'the customer of the operation that opened it (the one held by a hold); NULL if it had none';
COMMENT ON COLUMN @extschema@.fraud_case.store IS 'the store of the operation that opened it, if it had one';
COMMENT ON COLUMN @extschema@.fraud_case.tally IS 'what the window held with that operation';
COMMENT ON COLUMN @extschema@.fraud_case.threshold IS 'the rule''s threshold then';
COMMENT ON COLUMN @extschema@.fraud_case.state IS 'open, confirmed (loyalty.confirm_fraud) or released (loyalty.release_hold)';
COMMENT ON COLUMN @extschema@.fraud_case.opened_at IS 'when it was opened';
COMMENT ON COLUMN @extschema@.fraud_case.decided_at IS 'when it was confirmed or released';
COMMENT ON COLUMN @extschema@.fraud_case.decided_by IS 'the actor who decided';
COMMENT ON COLUMN @extschema@.fraud_case.reason IS 'why, as the admin wrote it';
COMMENT ON COLUMN @extschema@.fraud_case.forfeited IS 'the accruals (queue rows) confirm_fraud forfeited';
ALTER TABLE @extschema@.fraud_case ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.fraud_case USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.fraud_case_operation (
    case_id      bigint NOT NULL REFERENCES @extschema@.fraud_case (id),
    program_id   bigint NOT NULL,
    n            integer NOT NULL,
    operation    text NOT NULL,
    reference    text,
    customer_id  bigint,
    store        text,
    tally        bigint NOT NULL,
    at           timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (case_id, n)
);
COMMENT ON TABLE @extschema@.fraud_case_operation IS 'the operations that tripped a case: the one that opened it, then each that tripped its rule by its subject again while it was open';
COMMENT ON COLUMN @extschema@.fraud_case_operation.case_id IS 'the case';
COMMENT ON COLUMN @extschema@.fraud_case_operation.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.fraud_case_operation.n IS '1 for the operation that opened the case, then in order';
COMMENT ON COLUMN @extschema@.fraud_case_operation.operation IS 'commit, refund, redeem, transfer_out, transfer_in, adjust or hold';
COMMENT ON COLUMN @extschema@.fraud_case_operation.reference IS 'the receipt id (commit), receipt id and refund id (refund: "R/F"), or the ledger idempotency key when the operation had one';
COMMENT ON COLUMN @extschema@.fraud_case_operation.customer_id IS 'the customer of the operation';
COMMENT ON COLUMN @extschema@.fraud_case_operation.store IS 'its store';
COMMENT ON COLUMN @extschema@.fraud_case_operation.tally IS 'what the window held with it';
COMMENT ON COLUMN @extschema@.fraud_case_operation.at IS 'the instant the window was measured at: the receipt''s "at" for a commit, now() for the rest';
COMMENT ON COLUMN @extschema@.fraud_case_operation.created_at IS 'the time of the transaction';
ALTER TABLE @extschema@.fraud_case_operation ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.fraud_case_operation USING (@extschema@.program_open(program_id));

SELECT pg_catalog.pg_extension_config_dump('@extschema@.fraud_rule', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.fraud_rule', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.fraud_tally', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.fraud_case', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.fraud_case', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.fraud_case_operation', '');

-- A rule tripped by a subject with flag or hold (called by src/fraud.c in
-- the operation's transaction): the open case of the rule and subject gets
-- the operation, or a case is opened with it; opening a hold case puts the
-- customer on fraud_hold.  Returns whether the customer is on fraud_hold.
CREATE FUNCTION @extschema@.fraud_trip(rule bigint, subject_kind text, subject text,
                                       customer bigint, tally bigint, operation text,
                                       reference text, at timestamptz, store text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.fraud_rule;
    k @extschema@.fraud_case;
    n integer;
    was text;
BEGIN
    SELECT * INTO STRICT r FROM @extschema@.fraud_rule WHERE id OPERATOR(pg_catalog.=) fraud_trip.rule;
    SELECT * INTO k FROM @extschema@.fraud_case c
     WHERE c.rule_id OPERATOR(pg_catalog.=) r.id AND c.subject_kind OPERATOR(pg_catalog.=) fraud_trip.subject_kind
       AND c.subject OPERATOR(pg_catalog.=) fraud_trip.subject AND c.state OPERATOR(pg_catalog.=) 'open'
       FOR UPDATE;
    IF FOUND THEN
        SELECT pg_catalog.max(o.n) OPERATOR(pg_catalog.+) 1 INTO n
          FROM @extschema@.fraud_case_operation o WHERE o.case_id OPERATOR(pg_catalog.=) k.id;
    ELSE
        INSERT INTO @extschema@.fraud_case (program_id, rule_id, rule_code, action, subject_kind,
                                            subject, customer_id, store, tally, threshold)
        VALUES (r.program_id, r.id, r.code, r.action, fraud_trip.subject_kind, fraud_trip.subject,
                fraud_trip.customer, fraud_trip.store, fraud_trip.tally, r.threshold)
        RETURNING * INTO k;
        n := 1;
    END IF;
    INSERT INTO @extschema@.fraud_case_operation (case_id, program_id, n, operation, reference,
                                                  customer_id, store, tally, at)
    VALUES (k.id, r.program_id, n, fraud_trip.operation, fraud_trip.reference, fraud_trip.customer,
            fraud_trip.store, fraud_trip.tally, fraud_trip.at);
    IF n OPERATOR(pg_catalog.=) 1 THEN
        IF r.action OPERATOR(pg_catalog.=) 'hold' AND fraud_trip.customer IS NOT NULL THEN
            SELECT c.status INTO was FROM @extschema@.customer c
             WHERE c.id OPERATOR(pg_catalog.=) fraud_trip.customer FOR UPDATE;
            IF was OPERATOR(pg_catalog.=) 'active' THEN
                UPDATE @extschema@.customer c SET status = 'fraud_hold', updated_at = pg_catalog.now()
                 WHERE c.id OPERATOR(pg_catalog.=) fraud_trip.customer;
                INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail, reason)
                VALUES (r.program_id, fraud_trip.customer, 'fraud_hold',
                        pg_catalog.jsonb_build_object('case_id', k.id, 'rule', r.code,
                            'status', pg_catalog.jsonb_build_object('from', was, 'to', 'fraud_hold')),
                        pg_catalog.format('fraud rule %s', r.code));
            END IF;
        END IF;
        INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
        VALUES (r.program_id, CASE WHEN r.action OPERATOR(pg_catalog.=) 'hold' THEN 'fraud_hold' ELSE 'fraud_flagged' END,
                fraud_trip.customer,
                pg_catalog.jsonb_build_object('case_id', k.id, 'rule', r.code, 'measure', r.measure,
                    'subject_kind', fraud_trip.subject_kind, 'subject', fraud_trip.subject,
                    'tally', fraud_trip.tally, 'threshold', r.threshold, 'operation', fraud_trip.operation,
                    'reference', fraud_trip.reference, 'store', fraud_trip.store,
                    'at', fraud_trip.at));
    END IF;
    RETURN fraud_trip.customer IS NOT NULL
           AND (SELECT c.status FROM @extschema@.customer c WHERE c.id OPERATOR(pg_catalog.=) fraud_trip.customer)
               OPERATOR(pg_catalog.=) 'fraud_hold';
END
$$;
COMMENT ON FUNCTION @extschema@.fraud_trip(bigint, text, text, bigint, bigint, text, text, timestamptz, text) IS
'internal (src/fraud.c): record that a flag or hold rule tripped, opening its case (and the hold) or adding the operation to the open one; true if the customer is on fraud_hold';

-- The rule's window of the subject starts afresh: its elements are dropped.
CREATE FUNCTION @extschema@.fraud_forget(pid bigint, rule bigint, kind text, subj text)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE @extschema@.fraud_tally t
       SET (rule_id, bucket, amount, item) =
           (SELECT COALESCE(pg_catalog.array_agg(u.r ORDER BY u.o), '{}'),
                   COALESCE(pg_catalog.array_agg(u.b ORDER BY u.o), '{}'),
                   COALESCE(pg_catalog.array_agg(u.a ORDER BY u.o), '{}'),
                   COALESCE(pg_catalog.array_agg(u.i ORDER BY u.o), '{}')
              FROM ROWS FROM (pg_catalog.unnest(t.rule_id), pg_catalog.unnest(t.bucket),
                              pg_catalog.unnest(t.amount), pg_catalog.unnest(t.item))
                   WITH ORDINALITY AS u (r, b, a, i, o)
             WHERE u.r OPERATOR(pg_catalog.<>) rule),
           updated_at = pg_catalog.now()
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.subject_kind OPERATOR(pg_catalog.=) kind
       AND t.subject OPERATOR(pg_catalog.=) subj
$$;

-- The open case of this id, locked; P0002 if there is none, 55000 if decided.
CREATE FUNCTION @extschema@.fraud_case_for_update(case_id bigint, reason text)
RETURNS @extschema@.fraud_case
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k @extschema@.fraud_case;
BEGIN
    IF fraud_case_for_update.case_id IS NULL THEN
        RAISE EXCEPTION 'case_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.require_reason(fraud_case_for_update.reason);
    -- the subject's tally first, then the case: the order of an operation
    -- that trips the rule (src/fraud.c), so that the two wait, not deadlock
    SELECT * INTO k FROM @extschema@.fraud_case c WHERE c.id OPERATOR(pg_catalog.=) fraud_case_for_update.case_id;
    IF FOUND THEN
        PERFORM FROM @extschema@.fraud_tally t
          WHERE t.program_id OPERATOR(pg_catalog.=) k.program_id AND t.subject_kind OPERATOR(pg_catalog.=) k.subject_kind
            AND t.subject OPERATOR(pg_catalog.=) k.subject
            FOR NO KEY UPDATE;
        SELECT * INTO k FROM @extschema@.fraud_case c WHERE c.id OPERATOR(pg_catalog.=) fraud_case_for_update.case_id
           FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'fraud case % does not exist', fraud_case_for_update.case_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM @extschema@.require_program(k.program_id, pg_catalog.format('fraud case %s', k.id));
    IF k.state OPERATOR(pg_catalog.<>) 'open' THEN
        RAISE EXCEPTION 'fraud case % is % already', k.id, k.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Decided by %s at %s: %s.', k.decided_by, k.decided_at, k.reason);
    END IF;
    RETURN k;
END
$$;

-- Decide a case: its state, the window of its rule and subject afresh, the
-- customer's status (a hold case that is the customer's last open one),
-- the customer's log and the event.
CREATE FUNCTION @extschema@.fraud_decide(k @extschema@.fraud_case, state text, reason text,
                                         to_status text, forfeit boolean)
RETURNS @extschema@.fraud_case
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was text;
    gone bigint := 0;
    n bigint;
BEGIN
    -- forfeit: every accrual of the customer not released yet, held or not
    -- (the held ones by the queue's index of them, the others by the
    -- customer's receipts)
    IF forfeit AND k.action OPERATOR(pg_catalog.=) 'hold' AND k.customer_id IS NOT NULL THEN
        UPDATE @extschema@.accrual_queue q
           SET release_at = 'infinity', held_release_at = NULL, forfeited_case = k.id
         WHERE q.customer_id OPERATOR(pg_catalog.=) k.customer_id AND q.held_release_at IS NOT NULL;
        GET DIAGNOSTICS gone = ROW_COUNT;
        UPDATE @extschema@.accrual_queue q
           SET release_at = 'infinity', held_release_at = NULL, forfeited_case = k.id
          FROM @extschema@.receipt t
         WHERE t.customer_id OPERATOR(pg_catalog.=) k.customer_id
           AND q.program_id OPERATOR(pg_catalog.=) t.program_id AND q.receipt_id OPERATOR(pg_catalog.=) t.receipt_id
           AND q.customer_id OPERATOR(pg_catalog.=) k.customer_id AND q.forfeited_case IS NULL;
        GET DIAGNOSTICS n = ROW_COUNT;
        gone := gone OPERATOR(pg_catalog.+) n;
    END IF;
    UPDATE @extschema@.fraud_case c
       SET state = fraud_decide.state, decided_at = pg_catalog.now(), decided_by = @extschema@.actor(),
           reason = fraud_decide.reason, forfeited = gone
     WHERE c.id OPERATOR(pg_catalog.=) k.id
    RETURNING * INTO k;
    PERFORM @extschema@.fraud_forget(k.program_id, k.rule_id, k.subject_kind, k.subject);
    IF k.action OPERATOR(pg_catalog.=) 'hold' AND k.customer_id IS NOT NULL
       AND NOT EXISTS (SELECT FROM @extschema@.fraud_case c
                        WHERE c.customer_id OPERATOR(pg_catalog.=) k.customer_id
                          AND c.action OPERATOR(pg_catalog.=) 'hold' AND c.state OPERATOR(pg_catalog.=) 'open') THEN
        SELECT c.status INTO was FROM @extschema@.customer c
         WHERE c.id OPERATOR(pg_catalog.=) k.customer_id FOR UPDATE;
        IF was OPERATOR(pg_catalog.=) 'fraud_hold' THEN
            UPDATE @extschema@.customer c SET status = to_status, updated_at = pg_catalog.now()
             WHERE c.id OPERATOR(pg_catalog.=) k.customer_id;
        END IF;
    END IF;
    IF k.customer_id IS NOT NULL THEN
        INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail, reason)
        VALUES (k.program_id, k.customer_id,
                CASE WHEN fraud_decide.state OPERATOR(pg_catalog.=) 'released' THEN 'fraud_release' ELSE 'fraud_confirm' END,
                pg_catalog.jsonb_build_object('case_id', k.id, 'rule', k.rule_code, 'forfeited', gone)
                OPERATOR(pg_catalog.||)
                CASE WHEN was OPERATOR(pg_catalog.=) 'fraud_hold'
                     THEN pg_catalog.jsonb_build_object('status',
                              pg_catalog.jsonb_build_object('from', was, 'to', to_status))
                     ELSE '{}'::jsonb END,
                fraud_decide.reason);
    END IF;
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (k.program_id, CASE WHEN fraud_decide.state OPERATOR(pg_catalog.=) 'released' THEN 'fraud_released' ELSE 'fraud_confirmed' END,
            k.customer_id,
            pg_catalog.jsonb_build_object('case_id', k.id, 'rule', k.rule_code, 'subject_kind', k.subject_kind,
                'subject', k.subject, 'status', (SELECT c.status FROM @extschema@.customer c
                                                  WHERE c.id OPERATOR(pg_catalog.=) k.customer_id),
                'forfeited', gone, 'reason', fraud_decide.reason));
    RETURN k;
END
$$;

CREATE FUNCTION @extschema@.release_hold(case_id bigint, reason text)
RETURNS @extschema@.fraud_case
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@.fraud_decide(@extschema@.fraud_case_for_update(release_hold.case_id, release_hold.reason),
                                    'released', release_hold.reason, 'active', false);
END
$$;
COMMENT ON FUNCTION @extschema@.release_hold(bigint, text) IS
'a case was a false alarm: released, its rule''s window of the subject starts afresh, and the customer of a hold case goes back to active (when no other hold case of theirs is open) with the accruals held released at their times';

CREATE FUNCTION @extschema@.confirm_fraud(case_id bigint, reason text, forfeit boolean DEFAULT true)
RETURNS @extschema@.fraud_case
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF confirm_fraud.forfeit IS NULL THEN
        RAISE EXCEPTION 'forfeit must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN @extschema@.fraud_decide(@extschema@.fraud_case_for_update(confirm_fraud.case_id, confirm_fraud.reason),
                                    'confirmed', confirm_fraud.reason, 'blocked', confirm_fraud.forfeit);
END
$$;
COMMENT ON FUNCTION @extschema@.confirm_fraud(bigint, text, boolean) IS
'a case was fraud: confirmed, its rule''s window of the subject starts afresh, the customer of a hold case goes to blocked (when no other hold case of theirs is open) and, with forfeit, every accrual of the customer not released yet is forfeited (never released; a later cancel or refund of their receipts takes them off the queue)';

CREATE FUNCTION @extschema@.set_customer_status(program text, customer_id bigint, status text, reason text)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF set_customer_status.status IS NULL THEN
        RAISE EXCEPTION 'status must not be null' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'active, blocked or fraud_hold.';
    END IF;
    RETURN @extschema@.update_customer(set_customer_status.program, set_customer_status.customer_id,
                                       set_customer_status.reason, status => set_customer_status.status);
END
$$;
COMMENT ON FUNCTION @extschema@.set_customer_status(text, bigint, text, text) IS
'set a customer''s status (active, blocked or fraud_hold), logged with its reason: loyalty.update_customer with the status alone';

-- Accruals held while the customer was on fraud_hold go back to their
-- release times when the customer is active again (release_hold, or an
-- admin's update_customer).
CREATE FUNCTION @extschema@.fraud_unhold()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE @extschema@.accrual_queue q
       SET release_at = q.held_release_at, held_release_at = NULL
     WHERE q.customer_id OPERATOR(pg_catalog.=) NEW.id AND q.held_release_at IS NOT NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER customer_fraud_unhold
    AFTER UPDATE OF status ON @extschema@.customer
    FOR EACH ROW WHEN (NEW.status OPERATOR(pg_catalog.=) 'active' AND OLD.status OPERATOR(pg_catalog.<>) 'active')
    EXECUTE FUNCTION @extschema@.fraud_unhold();

-- For analysts: cases by programme, rule, store and day.
CREATE VIEW @extschema@.fraud_cases_daily AS
SELECT c.program_id,
       p.code AS program,
       c.rule_code AS rule,
       c.action,
       c.store,
       (c.opened_at AT TIME ZONE 'UTC')::date AS day,
       pg_catalog.count(*) AS cases,
       pg_catalog.count(*) FILTER (WHERE c.state OPERATOR(pg_catalog.=) 'open') AS open,
       pg_catalog.count(*) FILTER (WHERE c.state OPERATOR(pg_catalog.=) 'confirmed') AS confirmed,
       pg_catalog.count(*) FILTER (WHERE c.state OPERATOR(pg_catalog.=) 'released') AS released,
       pg_catalog.round(pg_catalog.count(*) FILTER (WHERE c.state OPERATOR(pg_catalog.=) 'released')::numeric
                        OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS false_positive_rate
  FROM @extschema@.fraud_case c
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) c.program_id
 WHERE @extschema@.program_open(c.program_id)
 GROUP BY c.program_id, p.code, c.rule_code, c.action, c.store, (c.opened_at AT TIME ZONE 'UTC')::date;
COMMENT ON VIEW @extschema@.fraud_cases_daily IS 'fraud cases by programme, rule, store and day they were opened (UTC): how many, open, confirmed, released, and the false-positive rate (released / all)';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.program IS 'its code';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.rule IS 'the rule''s code when it tripped';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.action IS 'flag or hold';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.store IS 'the store of the operation that opened the case; NULL if none';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.day IS 'the day the cases were opened, in UTC';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.cases IS 'cases opened';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.open IS 'of them, still open';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.confirmed IS 'of them, confirmed as fraud';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.released IS 'of them, released (false alarms)';
COMMENT ON COLUMN @extschema@.fraud_cases_daily.false_positive_rate IS 'released / cases, to four places';

REVOKE ALL ON FUNCTION
    @extschema@.fraud_trip(bigint, text, text, bigint, bigint, text, text, timestamptz, text),
    @extschema@.fraud_forget(bigint, bigint, text, text),
    @extschema@.fraud_case_for_update(bigint, text),
    @extschema@.fraud_decide(@extschema@.fraud_case, text, text, text, boolean),
    @extschema@.release_hold(bigint, text),
    @extschema@.confirm_fraud(bigint, text, boolean),
    @extschema@.set_customer_status(text, bigint, text, text),
    @extschema@.fraud_unhold()
FROM PUBLIC;
