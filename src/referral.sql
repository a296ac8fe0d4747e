-- src/referral.sql — referrals: a customer's code, given by a new customer
-- at enrolment; both are rewarded once the new customer's first receipt
-- has been kept for the programme's return window (the job
-- settle_referrals).  docs/campaigns.md ("Referrals") is the contract.

CREATE TABLE @extschema@.referral_scheme (
    program_id      bigint PRIMARY KEY REFERENCES @extschema@.program (id),
    currency        text NOT NULL,
    referrer_points bigint NOT NULL CHECK (referrer_points OPERATOR(pg_catalog.>=) 0),
    referee_points  bigint NOT NULL CHECK (referee_points OPERATOR(pg_catalog.>=) 0),
    valid_for       interval CHECK (valid_for OPERATOR(pg_catalog.>) '0'::interval),
    return_days     integer NOT NULL DEFAULT 14
                    CHECK (return_days OPERATOR(pg_catalog.>=) 0 AND return_days OPERATOR(pg_catalog.<=) 365),
    offer_days      integer NOT NULL DEFAULT 90
                    CHECK (offer_days OPERATOR(pg_catalog.>=) 1 AND offer_days OPERATOR(pg_catalog.<=) 3660),
    active          boolean NOT NULL DEFAULT true,
    FOREIGN KEY (program_id, currency) REFERENCES @extschema@.currency (program_id, code),
    CONSTRAINT referral_scheme_reward_check
        CHECK (referrer_points OPERATOR(pg_catalog.+) referee_points OPERATOR(pg_catalog.>) 0)
);
COMMENT ON TABLE @extschema@.referral_scheme IS 'a programme''s referrals: what the referrer and the new customer earn, and when';
COMMENT ON COLUMN @extschema@.referral_scheme.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.referral_scheme.currency IS 'the currency of both rewards';
COMMENT ON COLUMN @extschema@.referral_scheme.referrer_points IS 'what the customer whose code was given earns (0: nothing)';
COMMENT ON COLUMN @extschema@.referral_scheme.referee_points IS 'what the new customer earns (0: nothing)';
COMMENT ON COLUMN @extschema@.referral_scheme.valid_for IS 'how long the reward lots count from when they are given; NULL: until spent';
COMMENT ON COLUMN @extschema@.referral_scheme.return_days IS 'N: a receipt qualifies once committed N days ago and not returned';
COMMENT ON COLUMN @extschema@.referral_scheme.offer_days IS 'a receipt committed within this many days of the enrolment may qualify; after them an unqualified referral expires';
COMMENT ON COLUMN @extschema@.referral_scheme.active IS 'false: codes are refused at enrolment and nothing is settled';
ALTER TABLE @extschema@.referral_scheme ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.referral_scheme USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.referral_code (
    program_id  bigint NOT NULL,
    code        text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[A-Z0-9]{4,16}$'),
    customer_id bigint NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (program_id, code),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id)
);
COMMENT ON TABLE @extschema@.referral_code IS 'a customer''s referral code (referral_code() gives it, creating it the first time)';
COMMENT ON COLUMN @extschema@.referral_code.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.referral_code.code IS 'eight characters of A-Z and 2-9 without I, O, 0 and 1; matched without regard to case, spaces or dashes';
COMMENT ON COLUMN @extschema@.referral_code.customer_id IS 'the customer it refers to';
COMMENT ON COLUMN @extschema@.referral_code.created_at IS 'when it was created';
ALTER TABLE @extschema@.referral_code ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.referral_code USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.referral (
    program_id      bigint NOT NULL,
    referee_id      bigint NOT NULL,
    referrer_id     bigint NOT NULL,
    code            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at      timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state OPERATOR(pg_catalog.=) ANY ('{pending,rewarded,expired,refused}'::text[])),
    checked_at      timestamptz,
    receipt_id      text,
    settled_at      timestamptz,
    reason          text,
    referrer_lot_id bigint,
    referee_lot_id  bigint,
    PRIMARY KEY (program_id, referee_id),
    FOREIGN KEY (program_id, referee_id) REFERENCES @extschema@.customer (program_id, id),
    FOREIGN KEY (program_id, referrer_id) REFERENCES @extschema@.customer (program_id, id),
    CONSTRAINT referral_self_check CHECK (referee_id OPERATOR(pg_catalog.<>) referrer_id),
    CONSTRAINT referral_settled_check
        CHECK ((state OPERATOR(pg_catalog.=) 'pending') OPERATOR(pg_catalog.=) (settled_at IS NULL))
);
CREATE INDEX referral_pending_idx ON @extschema@.referral (checked_at NULLS FIRST)
    WHERE state OPERATOR(pg_catalog.=) 'pending';
CREATE INDEX referral_referrer_idx ON @extschema@.referral (referrer_id);
COMMENT ON TABLE @extschema@.referral IS 'a new customer who gave a referral code at enrolment, and what became of it';
COMMENT ON COLUMN @extschema@.referral.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.referral.referee_id IS 'the new customer';
COMMENT ON COLUMN @extschema@.referral.referrer_id IS 'the customer whose code was given';
COMMENT ON COLUMN @extschema@.referral.code IS 'the code as stored';
COMMENT ON COLUMN @extschema@.referral.created_at IS 'the enrolment';
COMMENT ON COLUMN @extschema@.referral.expires_at IS 'created_at + the scheme''s offer_days: a receipt committed before it may qualify';
COMMENT ON COLUMN @extschema@.referral.state IS 'pending; rewarded; expired (no receipt qualified in time); refused (a customer blocked or merged)';
COMMENT ON COLUMN @extschema@.referral.checked_at IS 'when settle_referrals last looked at it (it takes the least recently checked first)';
COMMENT ON COLUMN @extschema@.referral.receipt_id IS 'the receipt that qualified it';
COMMENT ON COLUMN @extschema@.referral.settled_at IS 'when it left pending';
COMMENT ON COLUMN @extschema@.referral.reason IS 'why it was refused';
COMMENT ON COLUMN @extschema@.referral.referrer_lot_id IS 'the referrer''s reward lot';
COMMENT ON COLUMN @extschema@.referral.referee_lot_id IS 'the new customer''s reward lot';
ALTER TABLE @extschema@.referral ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.referral USING (@extschema@.program_open(program_id));

-- A code as typed, in its stored form: upper case, no spaces or dashes.
CREATE FUNCTION @extschema@.referral_code_normal(code text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.upper(pg_catalog.regexp_replace(code, '[\s-]', '', 'g'))
$$;
COMMENT ON FUNCTION @extschema@.referral_code_normal(text) IS
'a referral code as typed, in its stored form (upper case, without spaces or dashes)';

-- The programme's active scheme, or 55000.
CREATE FUNCTION @extschema@.referral_scheme_of(pid bigint, program text)
RETURNS @extschema@.referral_scheme
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s @extschema@.referral_scheme;
BEGIN
    SELECT * INTO s FROM @extschema@.referral_scheme x WHERE x.program_id OPERATOR(pg_catalog.=) pid;
    IF NOT FOUND OR NOT s.active THEN
        RAISE EXCEPTION 'programme "%" has no active referral scheme', program
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN s;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.referral_scheme_of(bigint, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.referral_code(program text, customer_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    c @extschema@.customer;
    found_code text;
    candidate text;
    alphabet constant text := 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
    bytes bytea;
BEGIN
    IF program IS NULL OR customer_id IS NULL THEN
        RAISE EXCEPTION 'referral_code: % is null', CASE WHEN program IS NULL THEN 'program' ELSE 'customer_id' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pid := @extschema@.program_id(program);
    PERFORM @extschema@.referral_scheme_of(pid, program);
    SELECT * INTO c FROM @extschema@.customer x
     WHERE x.id OPERATOR(pg_catalog.=) referral_code.customer_id AND x.program_id OPERATOR(pg_catalog.=) pid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist in programme "%"', customer_id, program
            USING ERRCODE = 'no_data_found';
    END IF;
    IF c.status OPERATOR(pg_catalog.<>) 'active' THEN
        RAISE EXCEPTION 'customer % is %: no referral code', customer_id, c.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- the customer's code; else eight characters drawn from a random UUID's
    -- bytes: a clash with another code draws again, and a concurrent call
    -- that gave this customer a code first has it read back
    LOOP
        SELECT r.code INTO found_code FROM @extschema@.referral_code r
         WHERE r.customer_id OPERATOR(pg_catalog.=) referral_code.customer_id;
        IF FOUND THEN
            RETURN found_code;
        END IF;
        bytes := pg_catalog.uuid_send(pg_catalog.gen_random_uuid());
        candidate := '';
        FOR i IN 0 .. 7 LOOP
            candidate := candidate OPERATOR(pg_catalog.||)
                pg_catalog.substr(alphabet, 1 OPERATOR(pg_catalog.+) (pg_catalog.get_byte(bytes, i) OPERATOR(pg_catalog.%) 32), 1);
        END LOOP;
        INSERT INTO @extschema@.referral_code (program_id, code, customer_id)
        VALUES (pid, candidate, referral_code.customer_id)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            RETURN candidate;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.referral_code(text, bigint) IS
'the customer''s referral code, created the first time it is asked for';

-- The referrer of a code given at enrolment, checked before the new
-- customer's identifiers are bound: the code must be the programme's and
-- its referrer active, and no identifier given may be one the referrer
-- holds or held (P0L05).
CREATE FUNCTION @extschema@.referral_referrer(pid bigint, program text, code text,
                                              card text, phone text, email text)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    referrer bigint;
    status text;
    shared record;
BEGIN
    PERFORM @extschema@.referral_scheme_of(pid, program);
    SELECT r.customer_id, c.status INTO referrer, status
      FROM @extschema@.referral_code r JOIN @extschema@.customer c ON c.id OPERATOR(pg_catalog.=) r.customer_id
     WHERE r.program_id OPERATOR(pg_catalog.=) pid
       AND r.code OPERATOR(pg_catalog.=) @extschema@.referral_code_normal(referral_referrer.code);
    IF referrer IS NULL THEN
        RAISE EXCEPTION 'referral_code "%" is not a code of programme "%"', code, program
            USING ERRCODE = 'undefined_object';
    END IF;
    IF status OPERATOR(pg_catalog.<>) 'active' THEN
        RAISE EXCEPTION 'referral_code "%": its customer is %', code, status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT t.kind, t.value INTO shared
      FROM (VALUES ('card', card), ('phone', phone), ('email', email)) AS t(kind, value)
      JOIN @extschema@.identifier i
        ON i.program_id OPERATOR(pg_catalog.=) pid AND i.kind OPERATOR(pg_catalog.=) t.kind
       AND i.value OPERATOR(pg_catalog.=) @extschema@.normalize_identifier(program, t.kind, t.value)
     WHERE t.value IS NOT NULL AND i.customer_id OPERATOR(pg_catalog.=) referrer
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'referral_code "%" is the new customer''s own: the % % is the referrer''s', code, shared.kind, shared.value
            USING ERRCODE = 'P0L05',
                  HINT = 'A customer cannot refer themselves; enrol without the code.';
    END IF;
    RETURN referrer;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.referral_referrer(bigint, text, text, text, text, text) FROM PUBLIC;

-- The referral of a new customer, after the enrolment bound its identifiers.
CREATE FUNCTION @extschema@.referral_insert(pid bigint, referee bigint, referrer bigint, code text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.referral (program_id, referee_id, referrer_id, code, expires_at)
    SELECT pid, referee, referrer, @extschema@.referral_code_normal(code),
           pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(days => s.offer_days)
      FROM @extschema@.referral_scheme s WHERE s.program_id OPERATOR(pg_catalog.=) pid;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.referral_insert(bigint, bigint, bigint, text) FROM PUBLIC;

-- The job: the pending referrals, least recently checked first.  A
-- referral whose referee has a receipt committed before expires_at, at
-- least return_days ago, and neither cancelled nor refunded whole (the
-- earliest such receipt) is rewarded: both customers' lots, idempotent by
-- their keys; one of a blocked or merged customer is refused; one without
-- such a receipt past expires_at (and none committed before it that may
-- still qualify) expires.  A customer on fraud_hold waits.
CREATE FUNCTION @extschema@.settle_referrals(batch_limit integer DEFAULT 1000,
                                             time_budget interval DEFAULT '50 seconds')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer := @extschema@.job_limit(batch_limit);
    deadline timestamptz := @extschema@.job_deadline(time_budget);
    f record;
    ee @extschema@.customer;
    er @extschema@.customer;
    q record;
    waiting boolean;
    lot_er bigint;
    lot_ee bigint;
    valid_to timestamptz;
    settled integer := 0;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.settle_referrals');
    FOR f IN
        SELECT r.program_id, r.referee_id, r.referrer_id, r.expires_at,
               s.currency, s.referrer_points, s.referee_points, s.valid_for, s.return_days
          FROM @extschema@.referral r
          JOIN @extschema@.referral_scheme s ON s.program_id OPERATOR(pg_catalog.=) r.program_id
         WHERE r.state OPERATOR(pg_catalog.=) 'pending' AND s.active
         ORDER BY r.checked_at NULLS FIRST, r.referee_id
         LIMIT lim
           FOR UPDATE OF r SKIP LOCKED
    LOOP
        EXIT WHEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>) deadline;
        SELECT * INTO ee FROM @extschema@.customer WHERE id OPERATOR(pg_catalog.=) f.referee_id;
        SELECT * INTO er FROM @extschema@.customer WHERE id OPERATOR(pg_catalog.=) f.referrer_id;
        IF ee.status OPERATOR(pg_catalog.=) ANY ('{blocked,merged}'::text[])
           OR er.status OPERATOR(pg_catalog.=) ANY ('{blocked,merged}'::text[]) THEN
            UPDATE @extschema@.referral SET state = 'refused', settled_at = pg_catalog.now(), checked_at = pg_catalog.now(),
                   reason = CASE WHEN ee.status OPERATOR(pg_catalog.=) ANY ('{blocked,merged}'::text[])
                                 THEN 'the new customer is ' OPERATOR(pg_catalog.||) ee.status
                                 ELSE 'the referrer is ' OPERATOR(pg_catalog.||) er.status END
             WHERE program_id OPERATOR(pg_catalog.=) f.program_id AND referee_id OPERATOR(pg_catalog.=) f.referee_id;
            settled := settled OPERATOR(pg_catalog.+) 1;
            CONTINUE;
        END IF;
        SELECT t.receipt_id, t.committed_at INTO q
          FROM @extschema@.receipt t
         WHERE t.customer_id OPERATOR(pg_catalog.=) f.referee_id
           AND t.program_id OPERATOR(pg_catalog.=) f.program_id
           AND t.committed_at OPERATOR(pg_catalog.<) f.expires_at
           AND t.committed_at OPERATOR(pg_catalog.<=)
               (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => f.return_days))
           AND t.status OPERATOR(pg_catalog.=) ANY ('{committed,partly_refunded}'::text[])
         ORDER BY t.committed_at, t.receipt_id
         LIMIT 1;
        IF FOUND AND ee.status OPERATOR(pg_catalog.=) 'active' AND er.status OPERATOR(pg_catalog.=) 'active' THEN
            valid_to := pg_catalog.now() OPERATOR(pg_catalog.+) f.valid_for;
            lot_er := NULL;
            lot_ee := NULL;
            IF f.referrer_points OPERATOR(pg_catalog.>) 0 THEN
                lot_er := (@extschema@.accrue(f.referrer_id, f.currency, f.referrer_points,
                               valid_to => valid_to, kind => 'referral', receipt => q.receipt_id,
                               idempotency_key => pg_catalog.format('loyalty:referral:%s:%s:referrer', f.program_id, f.referee_id),
                               reason => pg_catalog.format('referral of customer %s', f.referee_id))).lot_id;
            END IF;
            IF f.referee_points OPERATOR(pg_catalog.>) 0 THEN
                lot_ee := (@extschema@.accrue(f.referee_id, f.currency, f.referee_points,
                               valid_to => valid_to, kind => 'referral', receipt => q.receipt_id,
                               idempotency_key => pg_catalog.format('loyalty:referral:%s:%s:referee', f.program_id, f.referee_id),
                               reason => pg_catalog.format('referred by customer %s', f.referrer_id))).lot_id;
            END IF;
            UPDATE @extschema@.referral
               SET state = 'rewarded', settled_at = pg_catalog.now(), checked_at = pg_catalog.now(),
                   receipt_id = q.receipt_id, referrer_lot_id = lot_er, referee_lot_id = lot_ee
             WHERE program_id OPERATOR(pg_catalog.=) f.program_id AND referee_id OPERATOR(pg_catalog.=) f.referee_id;
            INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
            SELECT f.program_id, 'referral_rewarded', v.customer, pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'role', v.role, 'referrer_id', f.referrer_id, 'referee_id', f.referee_id,
                       'receipt_id', q.receipt_id, 'currency', f.currency, 'points', v.points, 'lot_id', v.lot))
              FROM (VALUES ('referrer', f.referrer_id, f.referrer_points, lot_er),
                           ('referee', f.referee_id, f.referee_points, lot_ee)) v (role, customer, points, lot)
             WHERE v.points OPERATOR(pg_catalog.>) 0;
            settled := settled OPERATOR(pg_catalog.+) 1;
            CONTINUE;
        END IF;
        -- none qualifies yet: one committed in time may still, unless returned
        waiting := EXISTS (SELECT 1 FROM @extschema@.receipt t
                            WHERE t.customer_id OPERATOR(pg_catalog.=) f.referee_id
                              AND t.program_id OPERATOR(pg_catalog.=) f.program_id
                              AND t.committed_at OPERATOR(pg_catalog.<) f.expires_at
                              AND t.status OPERATOR(pg_catalog.=) ANY ('{committed,partly_refunded}'::text[]));
        IF f.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() AND NOT waiting THEN
            UPDATE @extschema@.referral SET state = 'expired', settled_at = pg_catalog.now(), checked_at = pg_catalog.now()
             WHERE program_id OPERATOR(pg_catalog.=) f.program_id AND referee_id OPERATOR(pg_catalog.=) f.referee_id;
            settled := settled OPERATOR(pg_catalog.+) 1;
        ELSE
            UPDATE @extschema@.referral SET checked_at = pg_catalog.now()
             WHERE program_id OPERATOR(pg_catalog.=) f.program_id AND referee_id OPERATOR(pg_catalog.=) f.referee_id;
        END IF;
    END LOOP;
    RETURN settled;
END
$$;
COMMENT ON FUNCTION @extschema@.settle_referrals(integer, interval) IS
'reward the pending referrals whose new customer''s first receipt was kept for the return window, refuse those of blocked or merged customers, expire those past offer_days; returns how many were settled';

REVOKE ALL ON FUNCTION @extschema@.referral_code(text, bigint),
    @extschema@.settle_referrals(integer, interval) FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_scheme', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_code', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral', '');
