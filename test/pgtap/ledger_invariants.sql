-- Randomised invariants of the points ledger.  About 4000 mixed operations
-- over 50 customers in two currencies (accruals pending, expiring and
-- permanent, restricted lots, redemptions, holds captured in full or in part
-- or released, adjustments, transfers, conversions, idempotent replays, stale
-- expected versions, merges), with time moved forward now and then by moving
-- every window back.  Each call runs in its own subtransaction; its SQLSTATE
-- is recorded and compared with what a model of the wallets predicts, and
-- after the run the ledger, lots, holds and wallets are checked against each
-- other and against the model.  The seed is printed; LOYALTY_TEST_SEED
-- repeats a run.
BEGIN;
-- The footprint checks disable sequential scans; a plan that needs one anyway
-- then costs enough for JIT compilation, which would dominate the run.
SET LOCAL jit = off;
SELECT plan(52);

\ir seed.psql

INSERT INTO loyalty.program (code, name, default_currency) VALUES ('inv', 'Invariants', 'bonus');
INSERT INTO loyalty.currency (program_id, code, name, exponent, money_per_unit)
SELECT p.id, v.code, v.name, v.exponent, v.money_per_unit
  FROM loyalty.program p,
       (VALUES ('bonus', 'Bonus', 0, 1.0), ('miles', 'Miles', 2, 0.5)) v (code, name, exponent, money_per_unit)
 WHERE p.code = 'inv';
SET CONSTRAINTS ALL IMMEDIATE;

-- The customers, and whom the run merged them into.
CREATE TEMP TABLE cust (id bigint PRIMARY KEY, merged_into bigint);
INSERT INTO cust (id)
SELECT loyalty.enroll('inv', email => 'inv' || n || '@example.com') FROM generate_series(1, 50) n;

-- Every call: what it ran, what the model predicted, what happened, and a
-- footprint of the tables before and after (see footprint()).
CREATE TEMP TABLE op_log (
    n         int PRIMARY KEY,
    step      int NOT NULL,
    kind      text NOT NULL,
    call      text NOT NULL,
    customers bigint[],
    predicted text NOT NULL,
    allowed   text[] NOT NULL,
    state     text,
    message   text,
    entry     loyalty.ledger,
    value     bigint,
    before    bigint[],
    after     bigint[],
    ms        float8
);
-- What a check made right after a call found wrong (n: the call; NULL: mid-run).
CREATE TEMP TABLE problem (n int, what text NOT NULL, detail text);
-- The reference model: each wallet's balance and held points as the returned
-- entries say (expiries, which the extension records on its own, are added
-- from the ledger at the end).
CREATE TEMP TABLE model (
    customer_id bigint,
    currency    text,
    balance     bigint NOT NULL DEFAULT 0,
    held        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, currency)
);
INSERT INTO model (customer_id, currency) SELECT id, code FROM cust, (VALUES ('bonus'), ('miles')) c (code);
-- Holds placed, with the status and deadline the model gives them.
CREATE TEMP TABLE my_hold (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    currency    text NOT NULL,
    amount      bigint NOT NULL,
    applicable  text[],
    expires_at  timestamptz NOT NULL,
    status      text NOT NULL
);
-- Idempotency keys of successful calls, with the call to replay.
CREATE TEMP TABLE my_key (
    key         text PRIMARY KEY,
    n           int NOT NULL,
    kind        text NOT NULL,
    call        text NOT NULL,
    ret         text NOT NULL,
    customer_id bigint NOT NULL,
    currency    text NOT NULL,
    peer        bigint,
    amount      bigint,
    hold_id     bigint,
    entry       loyalty.ledger,
    value       bigint
);
CREATE TEMP TABLE shift (step int, d interval);

CREATE FUNCTION pg_temp.rnd(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql AS
$$ SELECT lo + floor(random() * (hi - lo + 1))::bigint $$;

CREATE FUNCTION pg_temp.pick_customer(p_not bigint DEFAULT NULL) RETURNS bigint LANGUAGE sql AS
$$ SELECT id FROM cust WHERE merged_into IS NULL AND id IS DISTINCT FROM p_not ORDER BY random() LIMIT 1 $$;

CREATE FUNCTION pg_temp.pick_currency() RETURNS text LANGUAGE sql AS
$$ SELECT CASE WHEN random() < 0.6 THEN 'bonus' ELSE 'miles' END $$;

CREATE FUNCTION pg_temp.pick_applicable() RETURNS text[] LANGUAGE sql AS
$$ SELECT CASE pg_temp.rnd(1, 5) WHEN 1 THEN '{fuel}' WHEN 2 THEN '{pharmacy}'
                                 WHEN 3 THEN '{fuel,pharmacy}' WHEN 4 THEN '{toys}' END::text[] $$;

-- An amount to ask for: mostly p_usual, sometimes right at what is available
-- (one or two points either side), where a refusal turns into a success.
CREATE FUNCTION pg_temp.near(p_usual bigint, p_available bigint) RETURNS bigint LANGUAGE sql AS $$
SELECT CASE WHEN random() < 0.15 AND p_available > 0 THEN GREATEST(1, p_available + pg_temp.rnd(-2, 2))
            ELSE p_usual END
$$;

-- Points of the wallet's lots valid now that an operation with these
-- applicable restrictions (or all of them) may spend.
CREATE FUNCTION pg_temp.eff(p_c bigint, p_cur text, p_app text[], p_all boolean) RETURNS bigint
LANGUAGE sql AS $$
SELECT COALESCE(sum(remaining), 0)::bigint FROM loyalty.lot
 WHERE customer_id = p_c AND currency = p_cur AND remaining > 0
   AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
   AND (restriction IS NULL OR p_all OR restriction = ANY (p_app))
$$;

-- Points reserved by the model's live holds on the wallet.
CREATE FUNCTION pg_temp.held_live(p_c bigint, p_cur text) RETURNS bigint LANGUAGE sql AS $$
SELECT COALESCE(sum(amount), 0)::bigint FROM my_hold
 WHERE customer_id = p_c AND currency = p_cur AND status = 'active' AND expires_at > now()
$$;

-- The lots a spend of p_amt should take, {lot id: points}, in redemption
-- order: applicable restricted lots first, then the soonest to expire
-- (never-expiring last), then higher priority, then the oldest.
CREATE FUNCTION pg_temp.alloc(p_c bigint, p_cur text, p_amt bigint, p_app text[], p_all boolean)
RETURNS jsonb LANGUAGE sql AS $$
SELECT jsonb_object_agg(id, LEAST(remaining, p_amt - taken_before))
  FROM (SELECT id, remaining,
               COALESCE(sum(remaining) OVER (ORDER BY (NOT p_all AND restriction IS NOT NULL) DESC,
                                                      valid_to ASC NULLS LAST, priority DESC, id
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS taken_before
          FROM loyalty.lot
         WHERE customer_id = p_c AND currency = p_cur AND remaining > 0
           AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
           AND (restriction IS NULL OR p_all OR restriction = ANY (p_app))) s
 WHERE taken_before < p_amt
$$;

-- What a call may change: the involved customers' ledger entries, lot
-- usages (kept in the entries: lot_ids) and wallets, and the newest lot and hold; with p_global, the number
-- of ledger entries and lot usages of everyone too.  Only by primary keys or
-- over tables that are never updated: every change rewrites rows, and the
-- versions left behind in this one transaction make other scans slow.
CREATE FUNCTION pg_temp.footprint(p_c bigint[], p_global boolean) RETURNS bigint[] LANGUAGE sql
SET enable_seqscan = off AS $$
SELECT ARRAY[(SELECT count(*) FROM loyalty.ledger WHERE customer_id = ANY (p_c)),
             (SELECT COALESCE(sum(cardinality(lot_ids)), 0) FROM loyalty.ledger WHERE customer_id = ANY (p_c)),
             w.n, w.versions, w.points,
             COALESCE((SELECT id FROM loyalty.lot ORDER BY id DESC LIMIT 1), 0),
             COALESCE((SELECT id FROM loyalty.hold ORDER BY id DESC LIMIT 1), 0),
             CASE WHEN p_global THEN (SELECT count(*) FROM loyalty.ledger) END,
             CASE WHEN p_global THEN (SELECT COALESCE(sum(cardinality(lot_ids)), 0) FROM loyalty.ledger) END]
  FROM (SELECT count(*) AS n, COALESCE(sum(version), 0)::bigint AS versions,
               COALESCE(sum(balance * 3 + held), 0)::bigint AS points
          FROM loyalty.wallet WHERE customer_id = ANY (p_c)) w
$$;

CREATE FUNCTION pg_temp.note(p_n int, p_what text, p_detail text) RETURNS void LANGUAGE sql AS
$$ INSERT INTO problem VALUES (p_n, p_what, p_detail) $$;

CREATE FUNCTION pg_temp.model_add(p_c bigint, p_cur text, p_balance bigint, p_held bigint)
RETURNS void LANGUAGE sql AS $$
UPDATE model SET balance = balance + p_balance, held = held + p_held
 WHERE customer_id = p_c AND currency = p_cur
$$;

-- Run one call in a subtransaction and log it.  p_ret: 'entry' for the
-- functions returning a ledger row, 'value' for those returning a number.
CREATE FUNCTION pg_temp.attempt(p_step int, p_kind text, p_call text, p_customers bigint[],
                                p_predicted text, p_allowed text[], p_ret text DEFAULT 'entry')
RETURNS pg_temp.op_log LANGUAGE plpgsql AS $$
DECLARE
    r pg_temp.op_log;
    e loyalty.ledger;
    started timestamptz;
    global boolean;
BEGIN
    r.n := (SELECT COALESCE(max(n), 0) + 1 FROM op_log);
    r.step := p_step;
    r.kind := p_kind;
    r.call := p_call;
    r.customers := p_customers;
    r.predicted := p_predicted;
    r.allowed := p_allowed;
    -- the whole ledger is counted around a third of the calls expected to write nothing
    global := (p_predicted <> '00000' OR p_kind = 'replay') AND random() < 0.35;
    r.before := pg_temp.footprint(p_customers, global);
    started := clock_timestamp();
    BEGIN
        IF p_ret = 'entry' THEN
            EXECUTE p_call INTO STRICT e;
            IF e.version IS NOT NULL THEN
                r.entry := e;
            END IF;
        ELSE
            EXECUTE p_call INTO STRICT r.value;
        END IF;
        r.state := '00000';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS r.state = RETURNED_SQLSTATE, r.message = MESSAGE_TEXT;
    END;
    r.ms := 1000 * extract(epoch FROM clock_timestamp() - started);
    r.after := pg_temp.footprint(p_customers, global);
    INSERT INTO op_log VALUES (r.*);
    -- an entry returned is the row in the ledger
    IF r.entry IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM loyalty.ledger l
            WHERE l.customer_id = (r.entry).customer_id AND l.currency = (r.entry).currency
              AND l.version = (r.entry).version AND to_jsonb(l) = to_jsonb(r.entry)) THEN
        PERFORM pg_temp.note(r.n, 'returned entry', to_jsonb(r.entry)::text);
    END IF;
    RETURN r;
END
$$;

CREATE FUNCTION pg_temp.remember_key(p_key text, r pg_temp.op_log, p_ret text, p_c bigint, p_cur text,
                                     p_peer bigint, p_amount bigint, p_hold bigint,
                                     p_entry loyalty.ledger)
RETURNS void LANGUAGE sql AS $$
INSERT INTO my_key SELECT p_key, r.n, r.kind, r.call, p_ret, p_c, p_cur, p_peer, p_amount, p_hold, p_entry, r.value
 WHERE p_key IS NOT NULL
$$;

-- The lots spent by entry e: each valid now and allowed, and taken in
-- redemption order (p_predicted, from alloc() before the call).  One lot at a
-- time by its key: without statistics the planner takes the growing lot
-- table for a small one and scans it whole.
CREATE FUNCTION pg_temp.check_spend(p_n int, e loyalty.ledger, p_app text[], p_all boolean, p_predicted jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    actual jsonb;
    u record;
    l loyalty.lot;
BEGIN
    SELECT jsonb_object_agg(x.lot_id, x.amount) INTO actual FROM loyalty.lot_usage x
     WHERE x.customer_id = e.customer_id AND x.currency = e.currency AND x.version = e.version;
    IF actual IS DISTINCT FROM p_predicted THEN
        PERFORM pg_temp.note(p_n, 'allocation', format('predicted %s, took %s', p_predicted, actual));
    END IF;
    FOR u IN SELECT x.lot_id FROM loyalty.lot_usage x
              WHERE x.customer_id = e.customer_id AND x.currency = e.currency AND x.version = e.version LOOP
        SELECT * INTO l FROM loyalty.lot WHERE id = u.lot_id;
        IF NOT COALESCE(l.customer_id = e.customer_id AND l.currency = e.currency
                        AND l.valid_from <= now() AND (l.valid_to IS NULL OR l.valid_to > now())
                        AND (l.restriction IS NULL OR p_all OR l.restriction = ANY (p_app)), false) THEN
            PERFORM pg_temp.note(p_n, 'spent lot', format('lot %s of %s/%s, %s..%s, restriction %s', u.lot_id,
                                                          l.customer_id, l.currency, l.valid_from, l.valid_to,
                                                          l.restriction));
        END IF;
    END LOOP;
END
$$;

-- The newest entry of a wallet.
CREATE FUNCTION pg_temp.last_entry(p_c bigint, p_cur text) RETURNS loyalty.ledger LANGUAGE sql AS $$
SELECT * FROM loyalty.ledger WHERE customer_id = p_c AND currency = p_cur ORDER BY version DESC LIMIT 1
$$;

------------------------------------------------------------------------------
-- The operations.  Each picks its arguments at random, predicts the outcome
-- from the model, runs the call through attempt(), checks what it returned,
-- and brings the model up to date.
------------------------------------------------------------------------------

CREATE FUNCTION pg_temp.do_accrue(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c bigint := pg_temp.pick_customer();
    cur text := pg_temp.pick_currency();
    amt bigint := pg_temp.rnd(1, 400);
    prio int := pg_temp.rnd(0, 2);
    knd text := (ARRAY['regular', 'promo', 'birthday'])[pg_temp.rnd(1, 3)];
    vf timestamptz;
    vt timestamptz;
    restr text;
    k text;
    r pg_temp.op_log;
    e loyalty.ledger;
    l loyalty.lot;
BEGIN
    IF random() < 0.2 THEN
        vf := now() + make_interval(hours => pg_temp.rnd(1, 24 * 20)::int);
    END IF;
    IF random() < 0.45 THEN
        vt := COALESCE(vf, now()) + make_interval(hours => pg_temp.rnd(1, 24 * 60)::int);
    END IF;
    IF random() < 0.2 THEN
        restr := (ARRAY['fuel', 'pharmacy'])[pg_temp.rnd(1, 2)];
    END IF;
    IF random() < 0.3 THEN
        k := 'accrue-' || p_step;
    END IF;
    r := pg_temp.attempt(p_step, 'accrue', format(
        'SELECT * FROM loyalty.accrue(%s, %L, %s, valid_from => %L, valid_to => %L, kind => %L,'
        ' priority => %s, restriction => %L, receipt => %L, idempotency_key => %L)',
        c, cur, amt, vf, vt, knd, prio, restr, 'R' || p_step, k), ARRAY[c], '00000', '{00000}');
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    e := r.entry;
    SELECT * INTO l FROM loyalty.lot WHERE id = e.lot_id;
    IF NOT COALESCE(e.operation = 'accrue' AND e.customer_id = c AND e.currency = cur
                    AND e.amount = amt AND e.held_amount = 0
                    AND l.customer_id = c AND l.currency = cur AND l.amount = amt AND l.remaining = amt
                    AND l.valid_from = COALESCE(vf, now()) AND l.valid_to IS NOT DISTINCT FROM vt
                    AND l.kind = knd AND l.priority = prio AND l.restriction IS NOT DISTINCT FROM restr
                    AND l.created_version = e.version, false) THEN
        PERFORM pg_temp.note(r.n, 'result', format('%s / lot %s', to_jsonb(e), to_jsonb(l)));
    END IF;
    PERFORM pg_temp.model_add(c, cur, e.amount, 0);
    PERFORM pg_temp.remember_key(k, r, 'entry', c, cur, NULL, amt, NULL, e);
END
$$;

CREATE FUNCTION pg_temp.do_redeem(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c bigint := pg_temp.pick_customer();
    cur text := pg_temp.pick_currency();
    amt bigint := CASE WHEN random() < 0.05 THEN pg_temp.rnd(500, 5000) ELSE pg_temp.rnd(1, 250) END;
    app text[];
    ev bigint;
    k text;
    pred jsonb;
    r pg_temp.op_log;
    e loyalty.ledger;
BEGIN
    IF random() < 0.5 THEN
        app := pg_temp.pick_applicable();
    END IF;
    IF random() < 0.2 THEN
        ev := COALESCE((SELECT version FROM loyalty.wallet WHERE customer_id = c AND currency = cur), 0);
    END IF;
    IF random() < 0.3 THEN
        k := 'redeem-' || p_step;
    END IF;
    amt := pg_temp.near(amt, pg_temp.eff(c, cur, app, false) - pg_temp.held_live(c, cur));
    pred := pg_temp.alloc(c, cur, amt, app, false);
    r := pg_temp.attempt(p_step, 'redeem', format(
        'SELECT * FROM loyalty.redeem(%s, %L, %s, applicable => %L::text[], receipt => %L,'
        ' expected_version => %L, idempotency_key => %L)', c, cur, amt, app, 'R' || p_step, ev, k),
        ARRAY[c],
        CASE WHEN pg_temp.eff(c, cur, app, false) - pg_temp.held_live(c, cur) >= amt THEN '00000' ELSE 'P0L01' END,
        '{00000,P0L01}');
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    e := r.entry;
    IF NOT COALESCE(e.operation = 'redeem' AND e.customer_id = c AND e.currency = cur
                    AND e.amount = -amt AND e.held_amount = 0, false) THEN
        PERFORM pg_temp.note(r.n, 'result', to_jsonb(e)::text);
    END IF;
    PERFORM pg_temp.check_spend(r.n, e, app, false, pred);
    PERFORM pg_temp.model_add(c, cur, e.amount, 0);
    PERFORM pg_temp.remember_key(k, r, 'entry', c, cur, NULL, amt, NULL, e);
END
$$;

CREATE FUNCTION pg_temp.do_hold(p_step int, p_c bigint DEFAULT NULL, p_cur text DEFAULT NULL,
                                p_amt bigint DEFAULT NULL, p_ttl text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c bigint := COALESCE(p_c, pg_temp.pick_customer());
    cur text := COALESCE(p_cur, pg_temp.pick_currency());
    amt bigint := COALESCE(p_amt, pg_temp.rnd(1, 200));
    ttl text := COALESCE(p_ttl, (ARRAY['15 minutes', '2 hours', '1 day', '3 days', '10 days', '20 days',
                                       '30 days'])[pg_temp.rnd(1, 7)]);
    app text[];
    ev bigint;
    k text;
    r pg_temp.op_log;
    e loyalty.ledger;
    h loyalty.hold;
BEGIN
    IF p_c IS NULL AND random() < 0.5 THEN
        app := pg_temp.pick_applicable();
    END IF;
    IF random() < 0.1 THEN
        ev := COALESCE((SELECT version FROM loyalty.wallet WHERE customer_id = c AND currency = cur), 0);
    END IF;
    IF random() < 0.3 THEN
        k := 'hold-' || p_step || '-' || c || cur;
    END IF;
    IF p_amt IS NULL THEN
        amt := pg_temp.near(amt, pg_temp.eff(c, cur, app, false) - pg_temp.held_live(c, cur));
    END IF;
    r := pg_temp.attempt(p_step, 'hold', format(
        'SELECT loyalty.hold(%s, %L, %s, %L, %L::text[], %L, %L, %L)',
        c, cur, amt, ttl, app, 'R' || p_step, ev, k),
        ARRAY[c],
        CASE WHEN pg_temp.eff(c, cur, app, false) - pg_temp.held_live(c, cur) >= amt THEN '00000' ELSE 'P0L01' END,
        '{00000,P0L01}', 'value');
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    SELECT * INTO e FROM loyalty.ledger WHERE hold_id = r.value AND operation = 'hold';
    SELECT * INTO h FROM loyalty.hold WHERE id = r.value;
    IF NOT COALESCE(e.customer_id = c AND e.currency = cur AND e.amount = 0 AND e.held_amount = amt
                    AND h.customer_id = c AND h.currency = cur AND h.amount = amt AND h.status = 'active'
                    AND h.expires_at = now() + ttl::interval AND h.applicable IS NOT DISTINCT FROM app
                    AND h.created_version = e.version, false) THEN
        PERFORM pg_temp.note(r.n, 'result', format('%s / hold %s', to_jsonb(e), to_jsonb(h)));
    END IF;
    INSERT INTO my_hold VALUES (r.value, c, cur, amt, app, now() + ttl::interval, 'active');
    PERFORM pg_temp.model_add(c, cur, 0, e.held_amount);
    PERFORM pg_temp.remember_key(k, r, 'value', c, cur, NULL, amt, r.value, e);
END
$$;

-- A hold of a customer not merged away: mostly a live one, sometimes one
-- past its deadline, else any (resolved ones too).
CREATE FUNCTION pg_temp.pick_hold(p_not bigint DEFAULT NULL) RETURNS my_hold LANGUAGE plpgsql AS $$
DECLARE
    h my_hold;
    x float8 := random();
BEGIN
    IF x < 0.75 THEN
        SELECT m.* INTO h FROM my_hold m JOIN cust c ON c.id = m.customer_id
         WHERE c.merged_into IS NULL AND m.status = 'active' AND (m.expires_at > now()) = (x < 0.55)
           AND m.id IS DISTINCT FROM p_not
         ORDER BY random() LIMIT 1;
    END IF;
    IF h.id IS NULL THEN
        SELECT m.* INTO h FROM my_hold m JOIN cust c ON c.id = m.customer_id
         WHERE c.merged_into IS NULL AND m.id IS DISTINCT FROM p_not
         ORDER BY random() LIMIT 1;
    END IF;
    RETURN h;
END
$$;

CREATE FUNCTION pg_temp.do_capture(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    h my_hold := pg_temp.pick_hold();
    x float8 := random();
    amt bigint;
    taken bigint;
    k text;
    predicted text;
    pred jsonb;
    r pg_temp.op_log;
    e loyalty.ledger;
    t loyalty.hold;
BEGIN
    IF h.id IS NULL THEN
        RETURN;
    END IF;
    amt := CASE WHEN x < 0.45 THEN NULL WHEN x < 0.92 THEN pg_temp.rnd(1, h.amount)
                ELSE h.amount + pg_temp.rnd(1, 10) END;
    taken := COALESCE(amt, h.amount);
    IF random() < 0.3 THEN
        k := 'capture-' || p_step;
    END IF;
    predicted := CASE
        WHEN h.status IN ('captured', 'released') THEN 'P0L03'
        WHEN h.expires_at <= now() THEN 'P0L02'
        WHEN taken > h.amount THEN '22023'
        WHEN pg_temp.eff(h.customer_id, h.currency, h.applicable, false)
             - (pg_temp.held_live(h.customer_id, h.currency) - h.amount) < taken THEN 'P0L01'
        ELSE '00000' END;
    pred := pg_temp.alloc(h.customer_id, h.currency, taken, h.applicable, false);
    r := pg_temp.attempt(p_step, 'capture', format('SELECT * FROM loyalty.capture(%s, %L, %L)', h.id, amt, k),
                         ARRAY[h.customer_id], predicted, '{00000,P0L01,P0L02,P0L03,22023}');
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    e := r.entry;
    SELECT * INTO t FROM loyalty.hold WHERE id = h.id;
    IF NOT COALESCE(e.operation = 'capture' AND e.customer_id = h.customer_id AND e.currency = h.currency
                    AND e.amount = -taken AND e.held_amount = -h.amount AND e.hold_id = h.id
                    AND t.status = 'captured' AND t.captured = taken AND t.resolved_version = e.version, false) THEN
        PERFORM pg_temp.note(r.n, 'result', format('%s / hold %s', to_jsonb(e), to_jsonb(t)));
    END IF;
    UPDATE my_hold SET status = 'captured' WHERE id = h.id;
    PERFORM pg_temp.check_spend(r.n, e, h.applicable, false, pred);
    PERFORM pg_temp.model_add(h.customer_id, h.currency, e.amount, e.held_amount);
    PERFORM pg_temp.remember_key(k, r, 'entry', h.customer_id, h.currency, NULL, amt, h.id, e);
END
$$;

CREATE FUNCTION pg_temp.do_release(p_step int, p_hold bigint DEFAULT NULL) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    h my_hold;
    k text;
    r pg_temp.op_log;
    e loyalty.ledger;
    t loyalty.hold;
BEGIN
    IF p_hold IS NULL THEN
        h := pg_temp.pick_hold();
    ELSE
        SELECT * INTO h FROM my_hold WHERE id = p_hold;
    END IF;
    IF h.id IS NULL THEN
        RETURN;
    END IF;
    IF random() < 0.3 THEN
        k := 'release-' || p_step || '-' || h.id;
    END IF;
    r := pg_temp.attempt(p_step, 'release', format('SELECT * FROM loyalty.release(%s, %L)', h.id, k),
                         ARRAY[h.customer_id],
                         CASE WHEN h.status IN ('captured', 'released') THEN 'P0L03'
                              WHEN h.expires_at <= now() THEN 'P0L02' ELSE '00000' END,
                         '{00000,P0L02,P0L03}');
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    e := r.entry;
    SELECT * INTO t FROM loyalty.hold WHERE id = h.id;
    IF NOT COALESCE(e.operation = 'release' AND e.customer_id = h.customer_id AND e.currency = h.currency
                    AND e.amount = 0 AND e.held_amount = -h.amount AND e.hold_id = h.id
                    AND t.status = 'released' AND t.captured IS NULL AND t.resolved_version = e.version, false) THEN
        PERFORM pg_temp.note(r.n, 'result', format('%s / hold %s', to_jsonb(e), to_jsonb(t)));
    END IF;
    UPDATE my_hold SET status = 'released' WHERE id = h.id;
    PERFORM pg_temp.model_add(h.customer_id, h.currency, e.amount, e.held_amount);
    PERFORM pg_temp.remember_key(k, r, 'entry', h.customer_id, h.currency, NULL, NULL, h.id, e);
END
$$;

CREATE FUNCTION pg_temp.do_adjust(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c bigint := pg_temp.pick_customer();
    cur text := pg_temp.pick_currency();
    delta bigint := CASE WHEN random() < 0.5 THEN pg_temp.rnd(1, 300) ELSE -pg_temp.rnd(1, 200) END;
    vt timestamptz;
    ev bigint;
    k text;
    pred jsonb;
    r pg_temp.op_log;
    e loyalty.ledger;
    l loyalty.lot;
BEGIN
    IF delta > 0 AND random() < 0.3 THEN
        vt := now() + make_interval(hours => pg_temp.rnd(1, 24 * 60)::int);
    END IF;
    IF random() < 0.1 THEN
        ev := COALESCE((SELECT version FROM loyalty.wallet WHERE customer_id = c AND currency = cur), 0);
    END IF;
    IF random() < 0.3 THEN
        k := 'adjust-' || p_step;
    END IF;
    IF delta < 0 THEN
        delta := -pg_temp.near(-delta, pg_temp.eff(c, cur, NULL, true) - pg_temp.held_live(c, cur));
    END IF;
    pred := pg_temp.alloc(c, cur, -delta, NULL, true);
    r := pg_temp.attempt(p_step, 'adjust', format(
        'SELECT * FROM loyalty.adjust(%s, %L, %s, %L, actor => %L, valid_to => %L,'
        ' expected_version => %L, idempotency_key => %L)',
        c, cur, delta, 'correction ' || p_step, 'tester', vt, ev, k),
        ARRAY[c],
        CASE WHEN delta > 0 OR pg_temp.eff(c, cur, NULL, true) - pg_temp.held_live(c, cur) >= -delta
             THEN '00000' ELSE 'P0L01' END,
        '{00000,P0L01}');
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    e := r.entry;
    IF NOT COALESCE(e.operation = 'adjust' AND e.customer_id = c AND e.currency = cur AND e.amount = delta
                    AND e.held_amount = 0 AND e.actor = 'tester' AND e.reason = 'correction ' || p_step, false) THEN
        PERFORM pg_temp.note(r.n, 'result', to_jsonb(e)::text);
    END IF;
    IF delta > 0 THEN
        SELECT * INTO l FROM loyalty.lot WHERE id = e.lot_id;
        IF NOT COALESCE(l.customer_id = c AND l.currency = cur AND l.amount = delta AND l.remaining = delta
                        AND l.valid_from = now() AND l.valid_to IS NOT DISTINCT FROM vt
                        AND l.restriction IS NULL AND l.created_version = e.version, false) THEN
            PERFORM pg_temp.note(r.n, 'result', format('%s / lot %s', to_jsonb(e), to_jsonb(l)));
        END IF;
    ELSE
        PERFORM pg_temp.check_spend(r.n, e, NULL, true, pred);
    END IF;
    PERFORM pg_temp.model_add(c, cur, e.amount, 0);
    PERFORM pg_temp.remember_key(k, r, 'entry', c, cur, NULL, delta, NULL, e);
END
$$;

CREATE FUNCTION pg_temp.do_transfer(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a bigint := pg_temp.pick_customer();
    b bigint := pg_temp.pick_customer(a);
    cur text := pg_temp.pick_currency();
    amt bigint := pg_temp.rnd(1, 200);
    k text;
    pred jsonb;
    r pg_temp.op_log;
    e loyalty.ledger;
    i loyalty.ledger;
BEGIN
    IF random() < 0.3 THEN
        k := 'transfer-' || p_step;
    END IF;
    amt := pg_temp.near(amt, pg_temp.eff(a, cur, NULL, true) - pg_temp.held_live(a, cur));
    pred := pg_temp.alloc(a, cur, amt, NULL, true);
    r := pg_temp.attempt(p_step, 'transfer', format('SELECT * FROM loyalty.transfer(%s, %s, %L, %s, %L, %L)',
                                                    a, b, cur, amt, 'gift ' || p_step, k),
                         ARRAY[a, b],
                         CASE WHEN pg_temp.eff(a, cur, NULL, true) - pg_temp.held_live(a, cur) >= amt
                              THEN '00000' ELSE 'P0L01' END,
                         '{00000,P0L01}');
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    e := r.entry;
    i := pg_temp.last_entry(b, cur);
    IF NOT COALESCE(e.operation = 'transfer_out' AND e.customer_id = a AND e.currency = cur
                    AND e.amount = -amt AND e.held_amount = 0 AND e.peer_customer_id = b
                    AND i.operation = 'transfer_in' AND i.amount = amt AND i.peer_customer_id = a
                    AND i.held_amount = 0, false) THEN
        PERFORM pg_temp.note(r.n, 'result', format('%s / in %s', to_jsonb(e), to_jsonb(i)));
    END IF;
    PERFORM pg_temp.check_spend(r.n, e, NULL, true, pred);
    PERFORM pg_temp.model_add(a, cur, e.amount, 0);
    PERFORM pg_temp.model_add(b, cur, amt, 0);
    PERFORM pg_temp.remember_key(k, r, 'entry', a, cur, b, amt, NULL, e);
END
$$;

CREATE FUNCTION pg_temp.do_convert(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c bigint := pg_temp.pick_customer();
    f text := pg_temp.pick_currency();
    t text := CASE f WHEN 'bonus' THEN 'miles' ELSE 'bonus' END;
    rate numeric := CASE f WHEN 'bonus' THEN (ARRAY[0.01, 0.013, 0.02])[pg_temp.rnd(1, 3)]
                                        ELSE (ARRAY[100, 75, 33.3])[pg_temp.rnd(1, 3)] END;
    shift int := (SELECT y.exponent - x.exponent FROM loyalty.currency x, loyalty.currency y, loyalty.program p
                   WHERE p.code = 'inv' AND x.program_id = p.id AND y.program_id = p.id
                     AND x.code = f AND y.code = t);
    taken bigint;
    total bigint;
    pred jsonb;
    k text;
    r pg_temp.op_log;
    e loyalty.ledger;
    i loyalty.ledger;
    actual jsonb;
BEGIN
    IF random() < 0.3 THEN
        k := 'convert-' || p_step;
    END IF;
    -- every lot not expired, pending and restricted ones too, converts whole
    SELECT COALESCE(sum(remaining), 0), jsonb_object_agg(id, remaining) INTO taken, pred
      FROM loyalty.lot
     WHERE customer_id = c AND currency = f AND remaining > 0 AND (valid_to IS NULL OR valid_to > now());
    total := floor(taken * rate * power(10::numeric, shift));
    IF taken > 0 AND total = 0 THEN
        -- a few points at a small rate would give nothing: see the probe at the end
        rate := 100;
        total := floor(taken * rate * power(10::numeric, shift));
    END IF;
    r := pg_temp.attempt(p_step, 'convert', format('SELECT * FROM loyalty.convert(%s, %L, %L, %s, %L, %L)',
                                                   c, f, t, rate, 'currency change', k),
                         ARRAY[c], CASE WHEN pg_temp.held_live(c, f) > 0 THEN '55000' ELSE '00000' END,
                         '{00000,55000}');
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    e := r.entry;
    IF taken = 0 THEN
        IF e IS NOT NULL THEN
            PERFORM pg_temp.note(r.n, 'result', 'nothing to convert, but ' || to_jsonb(e)::text);
        END IF;
        RETURN;
    END IF;
    i := pg_temp.last_entry(c, t);
    IF NOT COALESCE(e.operation = 'convert' AND e.customer_id = c AND e.currency = f AND e.amount = -taken
                    AND e.held_amount = 0 AND e.peer_currency = t
                    AND (total = 0 OR (i.operation = 'convert' AND i.amount = total AND i.peer_currency = f)), false) THEN
        PERFORM pg_temp.note(r.n, 'result', format('%s / in %s, expected %s -> %s', to_jsonb(e), to_jsonb(i), taken, total));
    END IF;
    SELECT jsonb_object_agg(u.lot_id, u.amount) INTO actual FROM loyalty.lot_usage u
     WHERE u.customer_id = c AND u.currency = f AND u.version = e.version;
    IF actual IS DISTINCT FROM pred THEN
        PERFORM pg_temp.note(r.n, 'allocation', format('predicted %s, took %s', pred, actual));
    END IF;
    PERFORM pg_temp.model_add(c, f, e.amount, 0);
    PERFORM pg_temp.model_add(c, t, total, 0);
    PERFORM pg_temp.remember_key(k, r, 'entry', c, f, NULL, NULL, NULL, e);
END
$$;

-- The same call again with an idempotency key used before: the first entry
-- comes back and nothing is written.
CREATE FUNCTION pg_temp.do_replay(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k my_key;
    r pg_temp.op_log;
BEGIN
    SELECT m.* INTO k FROM my_key m
     WHERE NOT EXISTS (SELECT 1 FROM cust c WHERE c.id IN (m.customer_id, m.peer) AND c.merged_into IS NOT NULL)
     ORDER BY random() LIMIT 1;
    IF k.key IS NULL THEN
        RETURN;
    END IF;
    r := pg_temp.attempt(p_step, 'replay', k.call, ARRAY[k.customer_id, k.peer], '00000', '{00000}', k.ret);
    IF r.state = '00000' AND NOT COALESCE(CASE k.ret WHEN 'value' THEN r.value = k.value
                                                     ELSE to_jsonb(r.entry) = to_jsonb(k.entry) END, false) THEN
        PERFORM pg_temp.note(r.n, 'replay result', format('first %s %s, now %s %s', to_jsonb(k.entry), k.value,
                                                          to_jsonb(r.entry), r.value));
    END IF;
END
$$;

-- A key used before, in a call that differs in what the key recorded: the
-- operation, the customer, the currency, the amount or the hold.
CREATE FUNCTION pg_temp.do_replay_other(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k my_key;
    other bigint;
    other_cur text;
    h my_hold;
    x float8 := random();
    call text;
BEGIN
    SELECT m.* INTO k FROM my_key m
     WHERE NOT EXISTS (SELECT 1 FROM cust c WHERE c.id IN (m.customer_id, m.peer) AND c.merged_into IS NOT NULL)
     ORDER BY random() LIMIT 1;
    IF k.key IS NULL THEN
        RETURN;
    END IF;
    other := pg_temp.pick_customer(k.customer_id);
    other_cur := CASE k.currency WHEN 'bonus' THEN 'miles' ELSE 'bonus' END;
    IF k.kind IN ('capture', 'release') THEN
        h := pg_temp.pick_hold(k.hold_id);
    END IF;
    call := CASE
        -- another recipient
        WHEN x < 0.4 AND k.kind = 'transfer' AND other IS DISTINCT FROM k.peer THEN
            format('SELECT * FROM loyalty.transfer(%s, %s, %L, %s, ''replay'', idempotency_key => %L)', k.customer_id, other,
                   k.currency, k.amount, k.key)
        -- the same hold, captured with another amount (all of it after a part, or less)
        WHEN x < 0.4 AND k.kind = 'capture' THEN
            format('SELECT * FROM loyalty.capture(%s, %L, %L)', k.hold_id,
                   (SELECT CASE WHEN k.amount < m.amount AND random() < 0.5 THEN NULL
                                WHEN COALESCE(k.amount, m.amount) > 1 THEN COALESCE(k.amount, m.amount) - 1
                                ELSE 2 END
                      FROM my_hold m WHERE m.id = k.hold_id), k.key)
        -- the same operation for another customer, or in the other currency
        WHEN x < 0.15 AND k.kind IN ('accrue', 'redeem') THEN
            format('SELECT * FROM loyalty.%s(%s, %L, %s, idempotency_key => %L)', k.kind, other, k.currency, k.amount, k.key)
        WHEN x < 0.3 AND k.kind IN ('accrue', 'redeem') THEN
            format('SELECT * FROM loyalty.%s(%s, %L, %s, idempotency_key => %L)', k.kind, k.customer_id, other_cur, k.amount, k.key)
        -- the same operation with another amount
        WHEN x < 0.7 AND k.kind IN ('accrue', 'redeem') THEN
            format('SELECT * FROM loyalty.%s(%s, %L, %s, idempotency_key => %L)', k.kind, k.customer_id, k.currency, k.amount + 1, k.key)
        WHEN x < 0.7 AND k.kind = 'adjust' THEN
            format('SELECT * FROM loyalty.adjust(%s, %L, %s, %L, idempotency_key => %L)', k.customer_id, k.currency,
                   k.amount + sign(k.amount)::bigint, 'other', k.key)
        WHEN x < 0.7 AND k.kind = 'hold' THEN
            format('SELECT loyalty.hold(%s, %L, %s, idempotency_key => %L)', k.customer_id, k.currency, k.amount + 1, k.key)
        WHEN x < 0.7 AND k.kind = 'transfer' THEN
            format('SELECT * FROM loyalty.transfer(%s, %s, %L, %s, ''replay'', idempotency_key => %L)', k.customer_id, k.peer,
                   k.currency, k.amount + 1, k.key)
        -- another hold
        WHEN x < 0.7 AND k.kind IN ('capture', 'release') AND h.id IS NOT NULL THEN
            format('SELECT * FROM loyalty.%s(%s, idempotency_key => %L)', k.kind, h.id, k.key)
        -- the other direction
        WHEN x < 0.7 AND k.kind = 'convert' THEN
            format('SELECT * FROM loyalty.convert(%s, %L, %L, 1, ''replay'', idempotency_key => %L)', k.customer_id, other_cur,
                   k.currency, k.key)
        -- another operation
        WHEN k.kind = 'accrue' THEN
            format('SELECT * FROM loyalty.redeem(%s, %L, %s, idempotency_key => %L)', k.customer_id, k.currency, k.amount, k.key)
        WHEN k.kind = 'capture' THEN
            format('SELECT * FROM loyalty.release(%s, idempotency_key => %L)', k.hold_id, k.key)
        WHEN k.kind = 'release' THEN
            format('SELECT * FROM loyalty.capture(%s, idempotency_key => %L)', k.hold_id, k.key)
        ELSE
            format('SELECT * FROM loyalty.accrue(%s, %L, %s, idempotency_key => %L)', k.customer_id, k.currency,
                   COALESCE(abs(k.amount), 1), k.key)
    END;
    PERFORM pg_temp.attempt(p_step, 'replay_other', call, ARRAY[k.customer_id, k.peer, other, h.customer_id],
                            '23L01', '{23L01}', CASE WHEN call LIKE 'SELECT loyalty.hold(%' THEN 'value' ELSE 'entry' END);
END
$$;

-- A call with an expected_version that is not the wallet's.
CREATE FUNCTION pg_temp.do_stale(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c bigint := pg_temp.pick_customer();
    cur text := pg_temp.pick_currency();
    v bigint;
    ev bigint;
    x float8 := random();
BEGIN
    v := COALESCE((SELECT version FROM loyalty.wallet WHERE customer_id = c AND currency = cur), 0);
    ev := CASE WHEN v > 0 AND random() < 0.5 THEN v - 1 ELSE v + pg_temp.rnd(1, 3) END;
    PERFORM pg_temp.attempt(p_step, 'stale_version', CASE
        WHEN x < 0.4 THEN format('SELECT * FROM loyalty.redeem(%s, %L, 1, expected_version => %s)', c, cur, ev)
        WHEN x < 0.7 THEN format('SELECT loyalty.hold(%s, %L, 1, expected_version => %s)', c, cur, ev)
        ELSE format('SELECT * FROM loyalty.adjust(%s, %L, %s, %L, expected_version => %s)', c, cur,
                    CASE WHEN random() < 0.5 THEN 5 ELSE -1 END, 'stale', ev) END,
        ARRAY[c], '40001', '{40001}', CASE WHEN x >= 0.4 AND x < 0.7 THEN 'value' ELSE 'entry' END);
END
$$;

-- Any call on a customer merged away is refused.
CREATE FUNCTION pg_temp.do_merged(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m bigint := (SELECT id FROM cust WHERE merged_into IS NOT NULL ORDER BY random() LIMIT 1);
    a bigint := pg_temp.pick_customer();
    cur text := pg_temp.pick_currency();
    h bigint;
    x float8 := random();
BEGIN
    IF m IS NULL THEN
        RETURN;
    END IF;
    h := (SELECT id FROM my_hold WHERE customer_id = m ORDER BY random() LIMIT 1);
    PERFORM pg_temp.attempt(p_step, 'merged_customer', CASE
        WHEN x < 0.25 THEN format('SELECT * FROM loyalty.accrue(%s, %L, 10)', m, cur)
        WHEN x < 0.4 THEN format('SELECT * FROM loyalty.redeem(%s, %L, 1)', m, cur)
        WHEN x < 0.55 THEN format('SELECT * FROM loyalty.transfer(%s, %s, %L, 1, ''gift'')', a, m, cur)
        WHEN x < 0.7 THEN format('SELECT * FROM loyalty.transfer(%s, %s, %L, 1, ''gift'')', m, a, cur)
        WHEN x < 0.85 AND h IS NOT NULL THEN format('SELECT * FROM loyalty.capture(%s)', h)
        ELSE format('SELECT count(*) FROM loyalty.balance(%s)', m) END,
        ARRAY[m, a], '22023', '{22023}',
        CASE WHEN x >= 0.85 OR (x >= 0.7 AND h IS NULL) THEN 'value' ELSE 'entry' END);
END
$$;

CREATE FUNCTION pg_temp.do_sweep(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    batch int := (ARRAY[1, 3, 50, 10000])[pg_temp.rnd(1, 4)];
    holds boolean := random() < 0.5;
    r pg_temp.op_log;
BEGIN
    r := pg_temp.attempt(p_step, CASE WHEN holds THEN 'release_expired_holds' ELSE 'expire_due' END,
                         format('SELECT loyalty.%s(%s)', CASE WHEN holds THEN 'release_expired_holds' ELSE 'expire_due' END, batch),
                         NULL, '00000', '{00000}', 'value');
    IF r.state = '00000' AND r.value < batch AND (
           (holds AND EXISTS (SELECT 1 FROM loyalty.hold WHERE status = 'active' AND expires_at <= now()))
           OR (NOT holds AND EXISTS (SELECT 1 FROM loyalty.lot WHERE remaining > 0 AND valid_to <= now()))) THEN
        PERFORM pg_temp.note(r.n, 'sweep', format('recorded %s of at most %s, and left some due', r.value, batch));
    END IF;
END
$$;

-- Merge one customer into another.  Mostly the source's live holds are
-- released first; a source with a live hold cannot be merged (55000), and is
-- merged once they are released.
CREATE FUNCTION pg_temp.do_merge(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s bigint := pg_temp.pick_customer();
    t bigint := pg_temp.pick_customer(s);
    hid bigint;
    moved jsonb;
    cur text;
    pts bigint;
    r pg_temp.op_log;
    e loyalty.ledger;
BEGIN
    IF random() < 0.7 THEN
        FOR hid IN SELECT id FROM my_hold WHERE customer_id = s AND status = 'active' AND expires_at > now() ORDER BY id LOOP
            PERFORM pg_temp.do_release(p_step, hid);
        END LOOP;
    END IF;
    SELECT jsonb_object_agg(x.currency, x.points) INTO moved
      FROM (SELECT currency, sum(remaining) AS points FROM loyalty.lot
             WHERE customer_id = s AND remaining > 0 AND (valid_to IS NULL OR valid_to > now())
             GROUP BY currency) x;
    FOR attempt IN 1..2 LOOP
        r := pg_temp.attempt(p_step, 'merge', format('SELECT loyalty.merge_customers(%L, %s, %s, %L)', 'inv', s, t,
                                                     'duplicate account'),
                             ARRAY[s, t],
                             CASE WHEN pg_temp.held_live(s, 'bonus') + pg_temp.held_live(s, 'miles') > 0
                                  THEN '55000' ELSE '00000' END,
                             '{00000,55000}', 'value');
        EXIT WHEN r.state <> '55000';
        -- refused for the holds: release them, and merge again
        FOR hid IN SELECT id FROM my_hold WHERE customer_id = s AND status = 'active' AND expires_at > now() ORDER BY id LOOP
            PERFORM pg_temp.do_release(p_step, hid);
        END LOOP;
    END LOOP;
    IF r.state <> '00000' THEN
        RETURN;
    END IF;
    IF r.value IS DISTINCT FROM t THEN
        PERFORM pg_temp.note(r.n, 'result', format('merge returned %s, not %s', r.value, t));
    END IF;
    FOR cur, pts IN SELECT key, value::bigint FROM jsonb_each_text(COALESCE(moved, '{}')) LOOP
        e := pg_temp.last_entry(s, cur);
        IF NOT COALESCE(e.operation = 'transfer_out' AND e.amount = -pts AND e.peer_customer_id = t, false) THEN
            PERFORM pg_temp.note(r.n, 'result', format('merge moved %s %s: %s', pts, cur, to_jsonb(e)));
        END IF;
        PERFORM pg_temp.model_add(s, cur, -pts, 0);
        PERFORM pg_temp.model_add(t, cur, pts, 0);
    END LOOP;
    UPDATE cust SET merged_into = t WHERE id = s OR merged_into = s;
END
$$;

-- Time passes: every window moves back by d.  The ledger's own consistency
-- is checked first, at this instant.
CREATE FUNCTION pg_temp.do_shift(p_step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d interval := make_interval(days => pg_temp.rnd(0, 15)::int, hours => pg_temp.rnd(1, 23)::int);
BEGIN
    INSERT INTO problem
    SELECT NULL, 'mid-run wallet', format('step %s: wallet %s/%s balance %s held %s, lots %s, holds %s', p_step,
                                          w.customer_id, w.currency, w.balance, w.held, l.s, h.s)
      FROM loyalty.wallet w
      LEFT JOIN (SELECT customer_id, currency, sum(remaining) AS s FROM loyalty.lot GROUP BY 1, 2) l
             USING (customer_id, currency)
      LEFT JOIN (SELECT customer_id, currency, sum(amount) AS s FROM loyalty.hold WHERE status = 'active'
                  GROUP BY 1, 2) h USING (customer_id, currency)
     WHERE w.balance <> COALESCE(l.s, 0) OR w.held <> COALESCE(h.s, 0);
    INSERT INTO problem
    SELECT NULL, 'next_expiry', format('step %s: wallet %s/%s next_expiry %s, a lot with points expires %s', p_step,
                                       w.customer_id, w.currency, w.next_expiry, l.first)
      FROM loyalty.wallet w
      JOIN (SELECT customer_id, currency, min(valid_to) AS first FROM loyalty.lot WHERE remaining > 0
             GROUP BY 1, 2) l USING (customer_id, currency)
     WHERE l.first < w.next_expiry OR (w.next_expiry IS NULL AND l.first IS NOT NULL);
    UPDATE loyalty.lot SET valid_from = valid_from - d, valid_to = valid_to - d;
    UPDATE loyalty.hold SET expires_at = expires_at - d;
    UPDATE loyalty.wallet SET next_expiry = next_expiry - d;
    UPDATE my_hold SET expires_at = expires_at - d;
    INSERT INTO shift VALUES (p_step, d);
END
$$;

CREATE FUNCTION pg_temp.run(p_steps int, p_shifts int, p_merges int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    shift_every int := p_steps / (p_shifts + 1);
    merge_at int[] := ARRAY(SELECT p_steps * i / (p_merges + 1) + 17 FROM generate_series(1, p_merges) i);
    x float8;
BEGIN
    FOR step IN 1..p_steps LOOP
        IF step % shift_every = 0 THEN
            PERFORM pg_temp.do_shift(step);
        END IF;
        IF step = ANY (merge_at) THEN
            PERFORM pg_temp.do_merge(step);
        END IF;
        x := random();
        IF step <= 150 OR x < 0.22 THEN
            PERFORM pg_temp.do_accrue(step);
        ELSIF x < 0.40 THEN
            PERFORM pg_temp.do_redeem(step);
        ELSIF x < 0.48 THEN
            PERFORM pg_temp.do_hold(step);
        ELSIF x < 0.55 THEN
            PERFORM pg_temp.do_capture(step);
        ELSIF x < 0.59 THEN
            PERFORM pg_temp.do_release(step);
        ELSIF x < 0.65 THEN
            PERFORM pg_temp.do_adjust(step);
        ELSIF x < 0.73 THEN
            PERFORM pg_temp.do_transfer(step);
        ELSIF x < 0.75 THEN
            PERFORM pg_temp.do_convert(step);
        ELSIF x < 0.83 THEN
            PERFORM pg_temp.do_replay(step);
        ELSIF x < 0.88 THEN
            PERFORM pg_temp.do_replay_other(step);
        ELSIF x < 0.92 THEN
            PERFORM pg_temp.do_stale(step);
        ELSIF x < 0.94 THEN
            PERFORM pg_temp.do_merged(step);
        ELSE
            PERFORM pg_temp.do_sweep(step);
        END IF;
    END LOOP;
END
$$;

DO $$ BEGIN PERFORM pg_temp.run(4000, 10, 4); END $$;

-- A few live holds on wallets without restricted points, for the readers'
-- checks below; then record everything due, as a scheduler would.
DO $$
DECLARE
    b record;
BEGIN
    FOR b IN SELECT customer_id, currency FROM loyalty.balances
              WHERE program = 'inv' AND restricted = 0 AND available >= 2
              ORDER BY random() LIMIT 3 LOOP
        PERFORM pg_temp.do_hold(4001, b.customer_id, b.currency, 1, '1 day');
    END LOOP;
    PERFORM pg_temp.attempt(4001, 'expire_due', 'SELECT loyalty.expire_due()', NULL, '00000', '{00000}', 'value');
    PERFORM pg_temp.attempt(4001, 'release_expired_holds', 'SELECT loyalty.release_expired_holds()', NULL,
                            '00000', '{00000}', 'value');
END
$$;

SELECT diag(format('%s calls: %s', (SELECT count(*) FROM op_log),
                   (SELECT string_agg(format('%s %s', state, c), ', ' ORDER BY state)
                      FROM (SELECT state, count(*) c FROM op_log GROUP BY state) s)));

------------------------------------------------------------------------------
-- The calls
------------------------------------------------------------------------------

SELECT is_empty($$
    SELECT n, kind, call, state, message FROM op_log WHERE state <> ALL (allowed) ORDER BY n$$,
    'every call ended normally or with an expected refusal (no XX000, no check violation, no crash)');

SELECT is_empty($$
    SELECT n, kind, call, predicted, state, message FROM op_log WHERE state <> predicted ORDER BY n$$,
    'every call ended as the model predicted (refused with P0L01 exactly when too few points were available)');

SELECT is_empty($$
    SELECT n, kind, call, state, before, after FROM op_log WHERE state <> '00000' AND before <> after ORDER BY n$$,
    'a refused call wrote nothing: the ledger and lot_usage row counts, the wallets, the newest lot and hold are unchanged');

SELECT is_empty($$
    SELECT n, kind, call, before, after FROM op_log WHERE kind = 'replay' AND before <> after ORDER BY n$$,
    'a replayed idempotency key wrote nothing: the ledger and lot_usage row counts and the wallets are unchanged');

SELECT is_empty($$SELECT n, what, detail FROM problem WHERE what IN ('replay result') ORDER BY n$$,
                'a replayed idempotency key returned the entry (or hold) of its first call');

SELECT is_empty($$SELECT n, what, detail FROM problem WHERE what IN ('result', 'returned entry') ORDER BY n$$,
                'every successful call returned the entry it was asked for, as written in the ledger');

SELECT is_empty($$SELECT n, what, detail FROM problem WHERE what = 'spent lot' ORDER BY n$$,
                'every spend took only lots of its wallet valid at the time, restricted ones only where applicable');

SELECT is_empty($$SELECT n, what, detail FROM problem WHERE what = 'allocation' ORDER BY n$$,
                'every spend took its lots in redemption order (applicable restricted, soonest expiry, priority, oldest)');

SELECT is_empty($$SELECT n, what, detail FROM problem WHERE what = 'sweep' ORDER BY n$$,
                'a sweep that recorded less than its batch left nothing due');

SELECT is_empty($$SELECT n, what, detail FROM problem WHERE what = 'mid-run wallet'$$,
                'at every move of the clock, each wallet''s balance and held matched its lots and active holds');

SELECT is_empty($$
    SELECT o.kind, x.state FROM (VALUES ('accrue'), ('redeem'), ('hold'), ('capture'), ('release'), ('adjust'),
                                        ('transfer'), ('convert'), ('replay'), ('merge')) o (kind),
                                (VALUES ('00000')) x (state)
     WHERE NOT EXISTS (SELECT 1 FROM op_log l WHERE l.kind = o.kind AND l.state = x.state)
    UNION ALL
    SELECT k, s FROM (VALUES ('redeem', 'P0L01'), ('hold', 'P0L01'), ('transfer', 'P0L01'),
                             ('capture', 'P0L02'), ('release', 'P0L02'), ('capture', 'P0L03'), ('release', 'P0L03'),
                             ('replay_other', '23L01'), ('stale_version', '40001'),
                             ('merged_customer', '22023')) v (k, s)
     WHERE NOT EXISTS (SELECT 1 FROM op_log l WHERE l.kind = v.k AND l.state = v.s)$$,
    'the run reached every operation''s success and the refusals P0L01, P0L02, P0L03, 23L01, 40001, 22023');

------------------------------------------------------------------------------
-- The ledger
------------------------------------------------------------------------------

SELECT is_empty($$
    SELECT w.customer_id, w.currency, w.version, l.n, l.lo, l.hi
      FROM loyalty.wallet w
      LEFT JOIN (SELECT customer_id, currency, count(*) AS n, min(version) AS lo, max(version) AS hi
                   FROM loyalty.ledger GROUP BY 1, 2) l USING (customer_id, currency)
     WHERE COALESCE(l.n, 0) <> w.version OR COALESCE(l.hi, 0) <> w.version OR l.lo <> 1
    UNION ALL
    SELECT l.customer_id, l.currency, NULL, NULL, NULL, l.version FROM loyalty.ledger l
     WHERE NOT EXISTS (SELECT 1 FROM loyalty.wallet w WHERE w.customer_id = l.customer_id AND w.currency = l.currency)$$,
    'every wallet''s ledger versions run 1, 2, ... without gaps up to wallet.version');

SELECT is_empty($$
    SELECT customer_id, currency, version, operation, amount, balance_after, prev
      FROM (SELECT *, lag(balance_after, 1, 0::bigint) OVER w AS prev FROM loyalty.ledger
            WINDOW w AS (PARTITION BY customer_id, currency ORDER BY version)) x
     WHERE balance_after <> prev + amount OR balance_after < 0$$,
    'balance_after of each entry = balance_after of the one before (0 at first) + amount, and is never negative');

SELECT is_empty($$
    SELECT customer_id, currency, version, operation, held_amount, held_after, prev
      FROM (SELECT *, lag(held_after, 1, 0::bigint) OVER w AS prev FROM loyalty.ledger
            WINDOW w AS (PARTITION BY customer_id, currency ORDER BY version)) x
     WHERE held_after <> prev + held_amount OR held_after < 0$$,
    'held_after of each entry = held_after of the one before (0 at first) + held_amount, and is never negative');

SELECT is_empty($$
    SELECT w.customer_id, w.currency, w.version, w.balance, w.held, l.balance_after, l.held_after
      FROM loyalty.wallet w
      LEFT JOIN loyalty.ledger l ON l.customer_id = w.customer_id AND l.currency = w.currency AND l.version = w.version
     WHERE (w.version = 0 AND (w.balance, w.held) <> (0, 0))
        OR (w.version > 0 AND (l.version IS NULL OR (w.balance, w.held) <> (l.balance_after, l.held_after)))$$,
    'every wallet row holds the balance and held of its last entry');

SELECT is_empty($$
    SELECT operation, amount, held_amount, count(*) FROM loyalty.ledger
     WHERE NOT CASE operation
           WHEN 'accrue' THEN amount > 0 AND held_amount = 0 AND lot_id IS NOT NULL
           WHEN 'redeem' THEN amount < 0 AND held_amount = 0
           WHEN 'hold' THEN amount = 0 AND held_amount > 0 AND hold_id IS NOT NULL
           WHEN 'capture' THEN amount < 0 AND held_amount < 0 AND hold_id IS NOT NULL
           WHEN 'release' THEN amount = 0 AND held_amount < 0 AND hold_id IS NOT NULL
           WHEN 'expire' THEN amount < 0 AND held_amount = 0 AND lot_id IS NOT NULL
           WHEN 'adjust' THEN amount <> 0 AND held_amount = 0 AND (amount < 0) = (lot_id IS NULL)
           WHEN 'transfer_out' THEN amount < 0 AND held_amount = 0 AND peer_customer_id IS NOT NULL
           WHEN 'transfer_in' THEN amount > 0 AND held_amount = 0 AND peer_customer_id IS NOT NULL
           WHEN 'convert' THEN amount <> 0 AND held_amount = 0 AND peer_currency IS NOT NULL
           ELSE false END
     GROUP BY 1, 2, 3$$,
    'every entry''s amounts have the signs of its operation');

SELECT is_empty($$
    SELECT program_id, idempotency_key, count(*) FROM loyalty.ledger
     WHERE idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1$$,
    'idempotency keys are unique per programme');

SELECT is_empty($$
    SELECT k.key, k.kind, l.customer_id, l.currency, l.version, l.operation FROM my_key k
      LEFT JOIN loyalty.ledger l ON l.idempotency_key = k.key
     WHERE to_jsonb(l) IS DISTINCT FROM to_jsonb(k.entry)$$,
    'each key of a successful call is recorded once, on the entry that call returned');

SELECT is_empty($$
    SELECT a.customer_id, a.peer_customer_id, a.currency, a.n, a.s, b.n, b.s
      FROM (SELECT customer_id, peer_customer_id, currency, count(*) n, sum(amount) s FROM loyalty.ledger
             WHERE operation = 'transfer_out' GROUP BY 1, 2, 3) a
      FULL JOIN (SELECT peer_customer_id AS customer_id, customer_id AS peer_customer_id, currency, count(*) n,
                        -sum(amount) s FROM loyalty.ledger
                  WHERE operation = 'transfer_in' GROUP BY 1, 2, 3) b USING (customer_id, peer_customer_id, currency)
     WHERE a.n IS DISTINCT FROM b.n OR a.s IS DISTINCT FROM b.s$$,
    'transfers balance: between each pair of customers, transfer_out and transfer_in entries agree in number and points');

------------------------------------------------------------------------------
-- Lots
------------------------------------------------------------------------------

SELECT is_empty($$
    SELECT w.customer_id, w.currency, w.balance, l.s
      FROM loyalty.wallet w
      FULL JOIN (SELECT customer_id, currency, sum(remaining) AS s FROM loyalty.lot GROUP BY 1, 2) l
             USING (customer_id, currency)
     WHERE COALESCE(w.balance, -1) <> COALESCE(l.s, 0)$$,
    'each wallet''s stored balance is the sum of the remainders of its lots');

SELECT is_empty($$
    SELECT l.id, l.amount, l.remaining, u.s
      FROM loyalty.lot l
      LEFT JOIN (SELECT lot_id, sum(amount) AS s FROM loyalty.lot_usage GROUP BY 1) u ON u.lot_id = l.id
     WHERE l.amount - l.remaining <> COALESCE(u.s, 0) OR l.remaining < 0 OR l.remaining > l.amount$$,
    'every lot: amount - remaining = the sum of its lot_usage rows');

SELECT is_empty($$
    SELECT l.customer_id, l.currency, l.version, l.operation, l.amount, u.s, u.n
      FROM loyalty.ledger l
      LEFT JOIN (SELECT customer_id, currency, version, sum(amount) AS s, count(*) AS n FROM loyalty.lot_usage
                  GROUP BY 1, 2, 3) u USING (customer_id, currency, version)
     WHERE (l.amount < 0 AND COALESCE(u.s, 0) <> -l.amount)
        OR (l.amount >= 0 AND u.n IS NOT NULL)$$,
    'every spending entry (redeem, capture, negative adjust, transfer_out, convert out, expire) has lot_usage rows adding up to -amount, and no other entry has any');

SELECT is_empty($$
    SELECT u.*, t.customer_id, t.currency, e.version
      FROM loyalty.lot_usage u
      LEFT JOIN loyalty.lot t ON t.id = u.lot_id
      LEFT JOIN loyalty.ledger e
             ON e.customer_id = u.customer_id AND e.currency = u.currency AND e.version = u.version
     WHERE u.amount <= 0 OR t.customer_id IS DISTINCT FROM u.customer_id
        OR t.currency IS DISTINCT FROM u.currency OR e.version IS NULL$$,
    'every lot_usage row takes a positive amount from a lot of its own wallet for an entry in the ledger');

SELECT is_empty($$
    SELECT l.customer_id, l.currency, l.version, l.operation, l.amount, c.s
      FROM loyalty.ledger l
      LEFT JOIN (SELECT customer_id, currency, created_version AS version, sum(amount) AS s
                   FROM loyalty.lot GROUP BY 1, 2, 3) c USING (customer_id, currency, version)
     WHERE (l.amount > 0 AND COALESCE(c.s, 0) <> l.amount)
        OR (l.amount <= 0 AND c.s IS NOT NULL)
        OR (l.operation IN ('accrue', 'adjust') AND l.amount > 0
            AND NOT EXISTS (SELECT 1 FROM loyalty.lot t WHERE t.id = l.lot_id AND t.customer_id = l.customer_id
                               AND t.currency = l.currency AND t.created_version = l.version AND t.amount = l.amount))$$,
    'every crediting entry (accrue, positive adjust, transfer_in, convert in) created lots holding exactly its amount');

SELECT is_empty($$
    SELECT l.id, l.kind, s.id, s.kind, l.valid_from, s.valid_from, l.valid_to, s.valid_to
      FROM loyalty.lot l JOIN loyalty.lot s ON s.id = l.source_lot_id
     WHERE (l.valid_from, l.priority) IS DISTINCT FROM (s.valid_from, s.priority)
        OR l.valid_to IS DISTINCT FROM s.valid_to OR l.restriction IS DISTINCT FROM s.restriction
        OR l.kind <> CASE WHEN l.currency = s.currency THEN s.kind ELSE 'converted' END$$,
    'points moved by a transfer, conversion or merge keep their lot''s window, priority and restriction');

------------------------------------------------------------------------------
-- Holds
------------------------------------------------------------------------------

SELECT is_empty($$
    SELECT w.customer_id, w.currency, w.held, h.s
      FROM loyalty.wallet w
      LEFT JOIN (SELECT customer_id, currency, sum(amount) AS s FROM loyalty.hold WHERE status = 'active'
                  GROUP BY 1, 2) h USING (customer_id, currency)
     WHERE w.held <> COALESCE(h.s, 0)$$,
    'each wallet''s held is the sum of its active holds');

SELECT is_empty($$
    SELECT hold_id, count(*) FROM loyalty.ledger WHERE operation IN ('capture', 'release')
     GROUP BY hold_id HAVING count(*) > 1$$,
    'no hold was resolved twice: at most one capture or release entry per hold');

SELECT is_empty($$
    SELECT h.id, h.status, h.amount, h.captured, h.created_version, h.resolved_version,
           p.version, p.held_amount, r.operation, r.version, r.amount, r.held_amount
      FROM loyalty.hold h
      LEFT JOIN loyalty.ledger p ON p.hold_id = h.id AND p.operation = 'hold'
      LEFT JOIN loyalty.ledger r ON r.hold_id = h.id AND r.operation IN ('capture', 'release')
     WHERE NOT COALESCE(p.customer_id = h.customer_id AND p.currency = h.currency AND p.version = h.created_version
                        AND p.held_amount = h.amount AND p.amount = 0, false)
        OR NOT COALESCE(CASE h.status
               WHEN 'active' THEN r.version IS NULL
               WHEN 'captured' THEN r.operation = 'capture' AND r.amount = -h.captured AND h.captured <= h.amount
               ELSE r.operation = 'release' AND r.amount = 0 END
               AND (h.status = 'active' OR (r.customer_id = h.customer_id AND r.currency = h.currency
                                             AND r.version = h.resolved_version AND r.held_amount = -h.amount)), false)$$,
    'every hold has its hold entry, and a capture or release entry exactly when it is resolved');

SELECT is_empty($$
    SELECT m.id, m.status, m.expires_at, h.status, h.expires_at
      FROM my_hold m JOIN loyalty.hold h USING (id)
     WHERE m.expires_at <> h.expires_at
        OR NOT CASE m.status WHEN 'active' THEN h.status = 'active' OR (h.status = 'expired' AND h.expires_at <= now())
                             ELSE h.status = m.status END
    UNION ALL
    SELECT h.id, NULL, NULL, h.status, h.expires_at FROM loyalty.hold h
     WHERE NOT EXISTS (SELECT 1 FROM my_hold m WHERE m.id = h.id)$$,
    'hold statuses agree with the model: captured and released as called, expired only past the deadline');

------------------------------------------------------------------------------
-- The model
------------------------------------------------------------------------------

SELECT results_eq($$
    SELECT m.customer_id, m.currency, m.balance + COALESCE(x.s, 0)
      FROM model m
      LEFT JOIN (SELECT customer_id, currency, sum(amount)::bigint AS s FROM loyalty.ledger
                  WHERE operation = 'expire' GROUP BY 1, 2) x USING (customer_id, currency)
     ORDER BY 1, 2$$,
    $$SELECT m.customer_id, m.currency, COALESCE(w.balance, 0) FROM model m
        LEFT JOIN loyalty.wallet w USING (customer_id, currency) ORDER BY 1, 2$$,
    'every wallet''s balance is what the returned entries (and the expiries recorded) add up to');

SELECT results_eq($$
    SELECT m.customer_id, m.currency, m.held + COALESCE(x.s, 0)
      FROM model m
      LEFT JOIN (SELECT l.customer_id, l.currency, sum(l.held_amount)::bigint AS s
                   FROM loyalty.ledger l JOIN loyalty.hold h ON h.id = l.hold_id
                  WHERE l.operation = 'release' AND h.status = 'expired' GROUP BY 1, 2) x USING (customer_id, currency)
     ORDER BY 1, 2$$,
    $$SELECT m.customer_id, m.currency, COALESCE(w.held, 0) FROM model m
        LEFT JOIN loyalty.wallet w USING (customer_id, currency) ORDER BY 1, 2$$,
    'every wallet''s held is what the returned entries (and the expired holds released) add up to');

SELECT results_eq($$
    SELECT m.customer_id, m.currency,
           (SELECT COALESCE(sum(h.amount), 0)::bigint FROM my_hold h
             WHERE h.customer_id = m.customer_id AND h.currency = m.currency
               AND h.status = 'active' AND h.expires_at > now())
      FROM model m ORDER BY 1, 2$$,
    $$SELECT m.customer_id, m.currency, COALESCE(w.held, 0) FROM model m
        LEFT JOIN loyalty.wallet w USING (customer_id, currency) ORDER BY 1, 2$$,
    'after release_expired_holds, every wallet''s held is the sum of the model''s live holds');

------------------------------------------------------------------------------
-- Expiry, and what the readers show
------------------------------------------------------------------------------

SELECT is_empty($$
    SELECT id, customer_id, currency, remaining, valid_to FROM loyalty.lot WHERE remaining > 0 AND valid_to <= now()$$,
    'after a final expire_due, no lot past its valid_to has points left');

SELECT is_empty($$
    SELECT e.customer_id, e.currency, e.version, e.amount, l.id, l.valid_to, l.remaining
      FROM loyalty.ledger e LEFT JOIN loyalty.lot l ON l.id = e.lot_id
     WHERE e.operation = 'expire'
       AND NOT COALESCE(l.valid_to <= now() AND l.remaining = 0 AND l.customer_id = e.customer_id
                        AND l.currency = e.currency, false)$$,
    'every expire entry is for a lot of its wallet that was past its valid_to, and took all of it');

SELECT is_empty($$
    SELECT what, detail FROM problem WHERE what = 'next_expiry'
    UNION ALL
    SELECT 'at the end', format('wallet %s/%s next_expiry %s, lot %s expires %s', w.customer_id, w.currency,
                                w.next_expiry, l.id, l.valid_to)
      FROM loyalty.wallet w
      JOIN loyalty.lot l ON l.customer_id = w.customer_id AND l.currency = w.currency
     WHERE l.remaining > 0 AND l.valid_to IS NOT NULL AND (w.next_expiry IS NULL OR l.valid_to < w.next_expiry)$$,
    'wallet.next_expiry is never later than the valid_to of a lot with points left (at every move of the clock and at the end)');

SELECT is_empty($$
    SELECT w.customer_id, w.currency, w.restricted, r.points, w.pending_until, r.last_start
      FROM loyalty.wallet w
      LEFT JOIN LATERAL (
          SELECT COALESCE(sum(l.remaining) FILTER (WHERE l.restriction IS NOT NULL), 0) AS points,
                 max(l.valid_from) FILTER (WHERE l.valid_from > now()) AS last_start
            FROM loyalty.lot l
           WHERE l.customer_id = w.customer_id AND l.currency = w.currency AND l.remaining > 0) r ON true
     WHERE w.restricted <> r.points
        OR (r.last_start IS NOT NULL AND (w.pending_until IS NULL OR w.pending_until < r.last_start))$$,
    'wallet.restricted is the points of its restricted lots, and pending_until is never earlier than a pending lot''s valid_from');

SELECT is_empty($$
    SELECT id, customer_id, currency, amount, expires_at FROM loyalty.hold WHERE status = 'active' AND expires_at <= now()$$,
    'after a final release_expired_holds, no active hold is past its deadline');

SELECT is_empty($$
    SELECT * FROM loyalty.balances
     WHERE balance < 0 OR held < 0 OR available < 0 OR pending < 0 OR restricted < 0 OR restricted > balance
        OR expiring_30d > balance$$,
    'loyalty.balances: effective balance, held, available, pending and restricted are never negative');

SELECT is_empty($$
    SELECT b.customer_id, b.currency, b.balance, b.pending, b.held, b.stored_balance, w.held, w.version, b.version
      FROM loyalty.balances b JOIN loyalty.wallet w USING (customer_id, currency)
     WHERE b.balance + b.pending <> b.stored_balance OR b.held <> w.held OR b.version <> w.version$$,
    'with everything due recorded, the effective balance plus pending points is the stored balance, and held is the wallet''s');

-- The views recomputed from the lots and holds.
SELECT set_eq($$
    SELECT customer_id, currency, balance, held, available, pending, restricted, expiring_30d,
           next_expiry_at, next_expiry_amount, stored_balance, version
      FROM loyalty.balances$$,
    $$SELECT w.customer_id, w.currency, l.effective, h.held, GREATEST(l.effective - h.held, 0) AS available,
             l.pending, l.restricted, l.expiring, n.at, COALESCE(n.amount, 0) AS amount, w.balance, w.version
        FROM loyalty.wallet w
        CROSS JOIN LATERAL (
            SELECT COALESCE(sum(remaining) FILTER (WHERE counts), 0)::bigint AS effective,
                   COALESCE(sum(remaining) FILTER (WHERE valid_from > now()), 0)::bigint AS pending,
                   COALESCE(sum(remaining) FILTER (WHERE counts AND restriction IS NOT NULL), 0)::bigint AS restricted,
                   COALESCE(sum(remaining) FILTER (WHERE counts AND valid_to <= now() + interval '30 days'), 0)::bigint AS expiring
              FROM (SELECT remaining, valid_from, valid_to, restriction,
                           valid_from <= now() AND (valid_to IS NULL OR valid_to > now()) AS counts
                      FROM loyalty.lot WHERE customer_id = w.customer_id AND currency = w.currency AND remaining > 0) t) l
        CROSS JOIN LATERAL (
            SELECT COALESCE(sum(amount), 0)::bigint AS held FROM loyalty.hold
             WHERE customer_id = w.customer_id AND currency = w.currency AND status = 'active' AND expires_at > now()) h
        LEFT JOIN LATERAL (
            SELECT valid_to AS at, sum(remaining)::bigint AS amount FROM loyalty.lot
             WHERE customer_id = w.customer_id AND currency = w.currency AND remaining > 0
               AND valid_from <= now() AND valid_to > now()
             GROUP BY valid_to ORDER BY valid_to LIMIT 1) n ON true
       WHERE w.merged_into IS NULL$$,
    'loyalty.balances agrees with a recomputation from the lots and holds');

SELECT set_eq($$SELECT program, currency, wallets, points, pending, held, expiring_30d, money FROM loyalty.liability$$,
    $$SELECT 'inv' AS program, b.currency, count(*) FILTER (WHERE b.balance > 0) AS wallets,
             sum(b.balance)::bigint AS points, sum(b.pending)::bigint AS pending, sum(b.held)::bigint AS held,
             sum(b.expiring_30d)::bigint AS expiring_30d,
             round(sum(b.balance) * c.money_per_unit / power(10::numeric, c.exponent), 2) AS money
        FROM loyalty.balances b JOIN loyalty.currency c ON c.code = b.currency
       WHERE b.program = 'inv' AND c.program_id = (SELECT id FROM loyalty.program WHERE code = 'inv')
       GROUP BY b.currency, c.money_per_unit, c.exponent$$,
    'loyalty.liability sums the balances of the programme per currency');

SELECT set_eq($$
    SELECT c.id, r.currency, r.balance, r.held, r.available, r.pending, r.restricted,
           r.next_expiry_at, r.next_expiry_amount, r.version
      FROM cust c, loyalty.balance(c.id) r WHERE c.merged_into IS NULL$$,
    $$SELECT c.id, k.code, COALESCE(b.balance, 0) AS balance, COALESCE(b.held, 0) AS held,
             COALESCE(b.available, 0) AS available, COALESCE(b.pending, 0) AS pending,
             COALESCE(b.restricted, 0) AS restricted, b.next_expiry_at,
             COALESCE(b.next_expiry_amount, 0) AS next_expiry_amount, COALESCE(b.version, 0) AS version
        FROM cust c CROSS JOIN (VALUES ('bonus'), ('miles')) k (code)
        LEFT JOIN loyalty.balances b ON b.customer_id = c.id AND b.currency = k.code
       WHERE c.merged_into IS NULL$$,
    'loyalty.balance() reports, for every customer and currency, what loyalty.balances shows');

SELECT is_empty($$
    SELECT c.id, r.* FROM cust c, loyalty.balance(c.id) r
     WHERE c.merged_into IS NULL AND r.restricted = 0 AND r.balance >= r.held
       AND r.available <> r.balance - r.held$$,
    'where no lot is restricted, available = balance - held');

SELECT ok((SELECT count(*) > 0 FROM cust c, loyalty.balance(c.id) r
            WHERE c.merged_into IS NULL AND r.restricted = 0 AND r.held > 0 AND r.balance > r.held),
          'and some wallet with a live hold shows it (the check above is not vacuous)');

------------------------------------------------------------------------------
-- Merges
------------------------------------------------------------------------------

SELECT is_empty($$
    SELECT w.customer_id, w.currency, w.balance, w.held, w.merged_into, c.merged_into, k.status, k.merged_into
      FROM loyalty.wallet w JOIN cust c ON c.id = w.customer_id JOIN loyalty.customer k ON k.id = w.customer_id
     WHERE (c.merged_into IS NOT NULL
            AND NOT COALESCE(w.balance = 0 AND w.held = 0 AND w.merged_into IS NOT NULL
                             AND k.status = 'merged' AND k.merged_into = c.merged_into, false))
        OR (c.merged_into IS NULL AND (w.merged_into IS NOT NULL OR k.status <> 'active'))$$,
    'merged customers'' wallets are empty with merged_into set; nobody else''s wallet is marked merged');

SELECT ok((SELECT count(*) FROM cust WHERE merged_into IS NOT NULL) >= 2,
          'the run merged some customers');

------------------------------------------------------------------------------
-- Spelled out, whatever the seed: a key replayed for another recipient or
-- another capture amount (which the random run tries too, among other
-- changes), and a conversion too small to give anything.
------------------------------------------------------------------------------

CREATE TEMP TABLE probe AS
SELECT loyalty.enroll('inv', email => 'probe' || n || '@example.com') AS id, n FROM generate_series(1, 3) n;
SELECT id AS p1 FROM probe WHERE n = 1 \gset
SELECT id AS p2 FROM probe WHERE n = 2 \gset
SELECT id AS p3 FROM probe WHERE n = 3 \gset
SELECT lives_ok(format($$SELECT loyalty.accrue(%s, 'bonus', 1000)$$, :p1)
                || format($$; SELECT loyalty.transfer(%s, %s, 'bonus', 100, 'gift', idempotency_key => 'probe-t')$$, :p1, :p2),
                'a transfer with a key');
SELECT throws_ok(format($$SELECT loyalty.transfer(%s, %s, 'bonus', 100, 'gift', idempotency_key => 'probe-t')$$, :p1, :p3),
                 '23L01', NULL,
                 'the key of a transfer to one customer, replayed for a transfer to another, is refused (23L01)');
SELECT lives_ok(format($$SELECT loyalty.capture(loyalty.hold(%s, 'bonus', 50), 20, idempotency_key => 'probe-c')$$, :p1),
                'a partial capture with a key');
SELECT throws_ok(format($$SELECT loyalty.capture(h.id, 30, idempotency_key => 'probe-c')
                            FROM loyalty.hold h WHERE h.customer_id = %s$$, :p1),
                 '23L01', NULL,
                 'the key of a capture of 20, replayed to capture 30 of the same hold, is refused (23L01)');

-- docs/points.md, loyalty.convert: a conversion whose result rounds down to
-- 0 is refused with 22023 and writes nothing (the points are not destroyed).
SELECT loyalty.accrue(:p3, 'miles', 2) IS NOT NULL AS accrued \gset
SELECT count(*) AS entries_before FROM loyalty.ledger \gset
SELECT throws_ok(format($$SELECT loyalty.convert(%s, 'miles', 'bonus', 33.3, 'swap')$$, :p3),
                 '22023', NULL,
                 'converting 0.02 miles at 33.3 bonus a mile (0.666 bonus) is refused (22023)');
SELECT results_eq(format($$SELECT (SELECT count(*) FROM loyalty.ledger) - %s,
                                  (SELECT balance FROM loyalty.wallet WHERE customer_id = %s AND currency = 'miles') >= 2$$,
                         :entries_before, :p3),
                  $$VALUES (0::bigint, true)$$,
                  'and writes nothing: the miles stay in their wallet');

SELECT * FROM finish();
ROLLBACK;
