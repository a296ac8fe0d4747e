
-- src/tiers.sql — tiers and rule-based segments: the audiences promotions
-- address by who the customer is.  A tier is qualified for by money spent
-- or receipts made over the programme's rolling window: a customer moves up
-- as soon as a receipt qualifies them (a trigger on the receipt), and down
-- only at the programme's review date (the job review_tiers); every change
-- is recorded in tier_change and emits tier_changed.  A rule segment is
-- rebuilt by the job refresh_segments from a condition over the customer's
-- document and purchase statistics (recency, frequency, monetary).  Their
-- benefits are promotions whose audience is the tier or the segment.

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
COMMENT ON COLUMN @extschema@.tier.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.tier.code IS 'the code customer.tier holds and promotions'' tiers name';
COMMENT ON COLUMN @extschema@.tier.name IS 'display name';
COMMENT ON COLUMN @extschema@.tier.rank IS 'higher is better; a tier without conditions (rank 0 by convention) is the base every customer qualifies for';
COMMENT ON COLUMN @extschema@.tier.min_spend IS 'money paid over the window (after refunds), in major units; NULL: no such condition';
COMMENT ON COLUMN @extschema@.tier.min_receipts IS 'receipts over the window (not cancelled or wholly refunded); NULL: no such condition';
COMMENT ON COLUMN @extschema@.tier.qualify IS 'all: every condition given must hold; any: one of them is enough';
COMMENT ON COLUMN @extschema@.tier.created_at IS 'when the tier was created';
ALTER TABLE @extschema@.tier ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.tier USING (@extschema@.program_open(program_id));
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier', '');
-- the compiled catalogue keeps the tiers (a commit decides its lift on them)
CREATE TRIGGER tier_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.tier
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();

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
    actor       text NOT NULL DEFAULT @extschema@.actor()
);
CREATE INDEX tier_change_customer_idx ON @extschema@.tier_change (customer_id, changed_at);
-- the day series of the reports read tier changes by time (src/reports.sql)
CREATE INDEX tier_change_changed_at_brin ON @extschema@.tier_change USING brin (changed_at);
COMMENT ON TABLE @extschema@.tier_change IS 'every change of a customer''s tier: from, to, why, and the spend and receipts that decided it';
COMMENT ON COLUMN @extschema@.tier_change.id IS 'the order of the changes';
COMMENT ON COLUMN @extschema@.tier_change.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.tier_change.customer_id IS 'the customer whose tier changed';
COMMENT ON COLUMN @extschema@.tier_change.from_tier IS 'the tier code before; NULL: none';
COMMENT ON COLUMN @extschema@.tier_change.to_tier IS 'the tier code after; NULL: none';
COMMENT ON COLUMN @extschema@.tier_change.reason IS 'qualified: a receipt lifted the customer; review: the periodic review moved them (up or down)';
COMMENT ON COLUMN @extschema@.tier_change.spend IS 'money paid over the window, in minor units, when the change was decided';
COMMENT ON COLUMN @extschema@.tier_change.receipts IS 'receipts over the window when the change was decided';
COMMENT ON COLUMN @extschema@.tier_change.receipt_id IS 'the receipt that qualified the customer (reason qualified)';
COMMENT ON COLUMN @extschema@.tier_change.changed_at IS 'when';
COMMENT ON COLUMN @extschema@.tier_change.actor IS 'the role in effect (loyalty.actor())';
ALTER TABLE @extschema@.tier_change ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.tier_change USING (@extschema@.program_open(program_id));
CREATE TRIGGER tier_change_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.tier_change
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.forbid_history_change(
        'A tier change is history: a new change is recorded instead.');
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
-- they reach), in C (src/tiers.c), as lift_tier decides: the highest rank
-- whose thresholds the figures meet ("all": every threshold the tier has,
-- "any": one of them; a tier without thresholds takes everyone).
CREATE FUNCTION @extschema@.qualified_tier(pid bigint, spend bigint, receipts integer)
RETURNS @extschema@.tier
AS 'MODULE_PATHNAME', 'loyalty_qualified_tier'
LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp;
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
-- window now qualifies them for; it never lowers one.  Called by commit
-- (not a trigger: a restore inserts receipts again and must lift nobody).
CREATE FUNCTION @extschema@.lift_tier(pid bigint, cid bigint, rid text)
RETURNS void
AS 'MODULE_PATHNAME', 'loyalty_lift_tier'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.lift_tier(bigint, bigint, text) IS
'move a customer up to the best tier they now qualify for (called by commit for its receipt)';

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
    PERFORM @extschema@.require_every_program('loyalty.review_tiers');
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
    PERFORM @extschema@.require_every_program('loyalty.refresh_segments');
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
    @extschema@.lift_tier(bigint, bigint, text),
    @extschema@.review_tiers(integer, interval),
    @extschema@.customer_document(@extschema@.customer, bigint, integer, timestamptz, integer),
    @extschema@.refresh_segments(interval, boolean)
FROM PUBLIC;
