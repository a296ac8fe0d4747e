-- Randomised invariants of commit, cancel and refund.  Some 300 receipts
-- of 20 customers (points spent or not, a coupon now and then, 3 for 2 on
-- the cheaper lines), a third of them cancelled, some returned line by line
-- in parts and 60 returned in full a line at a time, in two
-- programmes: one that credits at once and one that queues its accruals.  Afterwards the receipts, lines, ledger, lots and
-- wallets must agree: every receipt written once, lines adding up to their
-- receipt, each wallet's versions contiguous with the balance chain intact,
-- every cancelled receipt netting to nothing, every committed one's entries
-- matching what it says it spent and earned, replays writing nothing, and
-- the queue releasing each accrual once.  The seed is printed;
-- LOYALTY_TEST_SEED repeats a run.
BEGIN;
SET LOCAL jit = off;
SELECT plan(21);

\ir seed.psql

INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('now', 'At once', 'bonus', 500);
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay)
VALUES ('later', 'Queued', 'bonus', 300, '1 hour');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code IN ('now', 'later');
SET CONSTRAINTS ALL IMMEDIATE;
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit)
SELECT id, 'TEN', 'Ten percent', 'active', 'price >= 1000', '{"kind": "percent_off", "percent": 10}'
  FROM loyalty.program WHERE code IN ('now', 'later');
INSERT INTO loyalty.promotion (program_id, code, name, status, audience, benefit)
SELECT id, 'CPN', 'Coupon 100 off', 'active', 'coupon', '{"kind": "receipt_off", "amount": 100, "threshold": 500}'
  FROM loyalty.program WHERE code = 'now';
-- 3 for 2 on the cheaper lines, counted per customer: returns break it
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit,
                               limit_per_customer, limit_period)
SELECT id, 'N3', 'Three for two', 'active', 'price < 1000', '{"kind": "n_for_m", "buy": 3, "pay": 2}', 1000, 'month'
  FROM loyalty.program WHERE code = 'now';
INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind, use_limit)
SELECT p.id, 'MULTI', m.id, 'multi_use', 40 FROM loyalty.program p JOIN loyalty.promotion m ON m.program_id = p.id
 WHERE p.code = 'now' AND m.code = 'CPN';

CREATE TEMP TABLE cust (id bigint, program text);
INSERT INTO cust
SELECT loyalty.enroll(p, card => (10000000 + n)::text), p
  FROM generate_series(1, 10) n, unnest(ARRAY['now', 'later']) p;
SELECT count(*) FROM (SELECT loyalty.accrue(id, 'bonus', (random() * 3000)::bigint + 1) FROM cust) a;

CREATE TEMP TABLE run (n int, program text, receipt_id text, doc jsonb, state text, cancelled boolean DEFAULT false,
                       status text DEFAULT 'committed', refunds int DEFAULT 0, answer jsonb);
DO $$
DECLARE
    c record;
    l record;
    res jsonb;
    doc jsonb;
    lines jsonb;
    st text;
    answer jsonb;
BEGIN
    FOR i IN 1 .. 300 LOOP
        SELECT * INTO c FROM cust ORDER BY random() LIMIT 1;
        SELECT jsonb_agg(jsonb_build_object('line', k, 'qty', 1 + (random() * 2)::int,
                                            'price', 50 + (random() * 3000)::int))
          INTO lines FROM generate_series(1, 1 + (random() * 3)::int) k;
        doc := jsonb_build_object('program', c.program, 'receipt_id', c.program || '-' || i,
                                  'customer', jsonb_build_object('id', c.id), 'lines', lines);
        IF random() < 0.6 THEN
            doc := doc || '{"points": "max"}';
        END IF;
        IF c.program = 'now' AND random() < 0.3 THEN
            doc := doc || '{"coupons": ["MULTI"]}';
        END IF;
        BEGIN
            answer := loyalty.commit(doc, loyalty.calculate(doc));
            st := '00000';
        EXCEPTION WHEN OTHERS THEN
            st := SQLSTATE;
            answer := NULL;
        END;
        INSERT INTO run (n, program, receipt_id, doc, state, answer)
        VALUES (i, c.program, c.program || '-' || i, doc, st, answer);
        -- now and then return part of a line of an earlier receipt
        IF random() < 0.3 THEN
            SELECT r.program, r.receipt_id, t.line, t.qty - t.refunded_qty AS left_qty INTO l
              FROM run r JOIN loyalty.receipt_line t USING (receipt_id)
             WHERE r.state = '00000' AND NOT r.cancelled AND t.refunded_qty < t.qty
             ORDER BY random() LIMIT 1;
            IF FOUND THEN
                res := loyalty.refund(l.program, l.receipt_id,
                                      jsonb_build_array(jsonb_build_object('line', l.line,
                                          'qty', 1 + floor(random() * l.left_qty))),
                                      'F' || i);
                UPDATE run SET status = res ->> 'status', refunds = refunds + 1 WHERE receipt_id = l.receipt_id;
            END IF;
        END IF;
        -- now and then cancel an earlier receipt
        IF random() < 0.35 THEN
            SELECT * INTO c FROM run WHERE state = '00000' AND NOT cancelled AND refunds = 0 ORDER BY random() LIMIT 1;
            IF FOUND THEN
                BEGIN
                    PERFORM loyalty.cancel(c.program, c.receipt_id);
                    UPDATE run SET cancelled = true WHERE receipt_id = c.receipt_id;
                END;
            END IF;
        END IF;
    END LOOP;
END
$$;

-- then some receipts returned in full, a line at a time in random order
DO $$
DECLARE
    r record;
    l record;
    res jsonb;
BEGIN
    FOR r IN SELECT * FROM run WHERE state = '00000' AND NOT cancelled ORDER BY random() LIMIT 60 LOOP
        FOR l IN SELECT t.line FROM loyalty.receipt_line t
                  WHERE t.receipt_id = r.receipt_id AND t.refunded_qty < t.qty ORDER BY random() LOOP
            res := loyalty.refund(r.program, r.receipt_id, jsonb_build_array(jsonb_build_object('line', l.line)),
                                  'ALL-' || l.line);
            UPDATE run SET status = res ->> 'status', refunds = refunds + 1 WHERE receipt_id = r.receipt_id;
        END LOOP;
    END LOOP;
END
$$;

SELECT is((SELECT count(*) FROM run WHERE state NOT IN ('00000')), 0::bigint,
          'every commit of a fresh calculation succeeds');
SELECT set_eq($$SELECT receipt_id, CASE WHEN cancelled THEN 'cancelled' ELSE status END FROM run$$,
              $$SELECT r.receipt_id, r.status FROM loyalty.receipt r JOIN loyalty.receipt_key k USING (program_id, receipt_id, committed_at)$$,
              'every receipt is written once, with its key, in the state the run left it');
SELECT is_empty($$
    SELECT r.receipt_id FROM loyalty.receipt r JOIN loyalty.receipt_line l USING (program_id, receipt_id, committed_at)
     GROUP BY r.receipt_id, r.amount, r.discount, r.points_money, r.to_pay
    HAVING sum(l.amount) <> r.amount OR sum(l.discount) <> r.discount
        OR sum(l.points_money) <> r.points_money OR sum(l.to_pay) <> r.to_pay$$,
    'the lines of each receipt add up to its totals');
SELECT is_empty($$
    SELECT customer_id, currency FROM loyalty.ledger GROUP BY customer_id, currency
    HAVING min(version) <> 1 OR max(version) <> count(*)$$,
    'every wallet''s versions are contiguous from 1');
SELECT is_empty($$
    SELECT e.customer_id, e.version FROM loyalty.ledger e
      LEFT JOIN loyalty.ledger p ON p.customer_id = e.customer_id AND p.currency = e.currency
                                AND p.version = e.version - 1
     WHERE e.balance_after <> COALESCE(p.balance_after, 0) + e.amount$$,
    'the balance chain holds: each entry''s balance is the previous one plus its amount');
SELECT is_empty($$
    SELECT w.customer_id FROM loyalty.wallet w
      LEFT JOIN LATERAL (SELECT sum(remaining) AS s FROM loyalty.lot l
                          WHERE l.customer_id = w.customer_id AND l.currency = w.currency AND l.live) l ON true
      LEFT JOIN LATERAL (SELECT balance_after FROM loyalty.ledger e
                          WHERE e.customer_id = w.customer_id AND e.currency = w.currency
                          ORDER BY version DESC LIMIT 1) e ON true
     WHERE w.balance <> COALESCE(l.s, 0) OR w.balance <> COALESCE(e.balance_after, 0) OR w.balance < 0$$,
    'each wallet''s balance is its last entry''s and the sum of its live lots, never negative');
SELECT is_empty($$
    SELECT e.receipt_id FROM loyalty.ledger e JOIN run ON run.receipt_id = e.receipt_id
      JOIN loyalty.receipt r ON r.receipt_id = e.receipt_id
     WHERE run.cancelled GROUP BY e.receipt_id, r.cancel_result
    HAVING sum(e.amount) <> COALESCE((r.cancel_result #>> '{debt,bonus}')::bigint, 0)$$,
    'every cancelled receipt nets to nothing in the ledger but what it left owing');
SELECT is_empty($$
    SELECT r.receipt_id FROM loyalty.receipt r
     WHERE r.status = 'refunded'
       AND (SELECT sum(f.money + f.money_withheld) FROM loyalty.receipt_refund f
             WHERE f.receipt_id = r.receipt_id) <> r.to_pay
        OR r.status = 'refunded'
       AND COALESCE((SELECT sum((f.points_returned ->> 'bonus')::bigint) FROM loyalty.receipt_refund f
                      WHERE f.receipt_id = r.receipt_id), 0) <> COALESCE((r.points_spent ->> 'bonus')::bigint, 0)
        OR r.status = 'refunded'
       AND COALESCE((SELECT sum((f.points_taken ->> 'bonus')::bigint) FROM loyalty.receipt_refund f
                      WHERE f.receipt_id = r.receipt_id), 0) <> COALESCE((r.points_earned ->> 'bonus')::bigint, 0)
        OR r.status = 'refunded' AND r.program_id = (SELECT id FROM loyalty.program WHERE code = 'now')
       AND COALESCE((SELECT sum(e.amount) FROM loyalty.ledger e WHERE e.receipt_id = r.receipt_id
                       AND e.operation <> 'debt'), 0)
           - COALESCE((SELECT sum((f.debt ->> 'bonus')::bigint) FROM loyalty.receipt_refund f
                        WHERE f.receipt_id = r.receipt_id), 0) <> 0$$,
    'a receipt returned in full gave back its money, its points and what it earned, in parts that add up');
SELECT is_empty($$
    SELECT r.receipt_id FROM loyalty.receipt r
     WHERE r.status = 'committed'
       AND (COALESCE((SELECT -sum(amount) FROM loyalty.ledger e
                       WHERE e.receipt_id = r.receipt_id AND e.operation = 'redeem'), 0)
              <> COALESCE((r.points_spent ->> 'bonus')::bigint, 0)
            OR (r.program_id = (SELECT id FROM loyalty.program WHERE code = 'now')
                AND COALESCE((SELECT sum(amount) FROM loyalty.ledger e
                               WHERE e.receipt_id = r.receipt_id AND e.operation = 'accrue'), 0)
                    <> COALESCE((r.points_earned ->> 'bonus')::bigint, 0)))$$,
    'each committed receipt''s entries spend and earn what the receipt says');
SELECT is((SELECT uses FROM loyalty.coupon WHERE code = 'MULTI'),
          (SELECT count(*)::int FROM loyalty.receipt WHERE status <> 'cancelled' AND coupons = '{MULTI}'),
          'the coupon counts the uses of the receipts that are not cancelled');

-- what returns broke: kept back, given back, counted
SELECT diag(format('%s returns kept back a lost discount, %s gave one back, %s gave counter uses back',
                   count(*) FILTER (WHERE discount_withheld > 0), count(*) FILTER (WHERE discount_withheld < 0),
                   count(*) FILTER (WHERE counters_returned <> '[]')))
  FROM loyalty.receipt_refund;
SELECT is_empty($$
    SELECT r.receipt_id FROM loyalty.receipt r
      LEFT JOIN loyalty.receipt_refund f USING (program_id, receipt_id)
     GROUP BY r.receipt_id, r.discount_lost
    HAVING r.discount_lost < 0 OR r.discount_lost <> COALESCE(sum(f.discount_withheld), 0)
        OR min(f.money) < 0$$,
    'no return gives back less than nothing, and what returns kept back for lost discounts adds up to the receipt''s loss');
SELECT is_empty($$
    SELECT receipt_id FROM loyalty.receipt WHERE status = 'refunded' AND discount_lost <> 0$$,
    'a receipt returned in full has given back every discount it kept back');
SELECT is((SELECT COALESCE(sum(t.uses), 0)::bigint FROM loyalty.counter t
             JOIN loyalty.promotion m ON m.id = t.promotion_id WHERE m.code = 'N3'),
          (SELECT count(*) FROM loyalty.receipt r, jsonb_array_elements(r.counters) c
            WHERE r.status <> 'cancelled' AND NOT c ? 'returned'
              AND (c ->> 'promotion_id')::bigint = (SELECT id FROM loyalty.promotion WHERE code = 'N3')),
          'the counter of a promotion counts the receipts that used it and still hold it');

-- replays write nothing
SELECT count(*) AS entries FROM loyalty.ledger \gset
SELECT is((SELECT count(*) FROM run, LATERAL loyalty.commit(run.doc) r
            WHERE (r #>> '{commit,replayed}')::boolean
              AND r #>> '{commit,status}' = CASE WHEN run.cancelled THEN 'cancelled' ELSE run.status END),
          (SELECT count(*) FROM run), 'every receipt replays, with its state');
SELECT is((SELECT count(*) FROM loyalty.ledger), :entries::bigint, 'and the replays wrote nothing');
SELECT is_empty($$SELECT run.receipt_id FROM run, LATERAL loyalty.commit(run.doc) r
                   WHERE (r #- '{commit,replayed}' #- '{commit,status}')::text
                         IS DISTINCT FROM (run.answer #- '{commit,replayed}' #- '{commit,status}')::text$$,
                'every replay answers what the commit did, to the character (its lines rendered back from the row)');

-- the queue: what is due is released once, and is what the receipts earned
UPDATE loyalty.accrual_queue SET release_at = release_at - interval '1 hour';
SELECT loyalty.release_accruals() AS released \gset
SELECT is(loyalty.release_accruals(), 0::bigint, 'a second release finds nothing');
SELECT is_empty($$
    SELECT r.receipt_id FROM loyalty.receipt r
     WHERE r.status = 'committed' AND r.program_id = (SELECT id FROM loyalty.program WHERE code = 'later')
       AND COALESCE((SELECT sum(amount) FROM loyalty.ledger e
                      WHERE e.receipt_id = r.receipt_id AND e.operation = 'accrue'), 0)
           <> COALESCE((r.points_earned ->> 'bonus')::bigint, 0)$$,
    'the queued receipts were credited exactly what they earned, once');

-- the outbox: one balance_changed per ledger entry, one receipt_committed
-- per receipt, one receipt_cancelled per cancelled receipt
SELECT bag_eq(
    $$SELECT customer_id, currency, version FROM loyalty.ledger$$,
    $$SELECT customer_id, payload ->> 'currency', (payload ->> 'version')::bigint
        FROM loyalty.event WHERE type = 'balance_changed'$$,
    'every ledger entry has its balance_changed event, and no other');
SELECT bag_eq(
    $$SELECT program_id, receipt_id FROM loyalty.receipt$$,
    $$SELECT program_id, payload ->> 'receipt_id' FROM loyalty.event WHERE type = 'receipt_committed'$$,
    'every receipt has one receipt_committed event');
SELECT bag_eq(
    $$SELECT program_id, receipt_id FROM loyalty.receipt WHERE status = 'cancelled'$$,
    $$SELECT program_id, payload ->> 'receipt_id' FROM loyalty.event WHERE type = 'receipt_cancelled'$$,
    'every cancelled receipt has one receipt_cancelled event');

SELECT * FROM finish();
ROLLBACK;
