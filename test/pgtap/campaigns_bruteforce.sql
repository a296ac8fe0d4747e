-- Challenges against a brute force written from docs/campaigns.md alone:
-- a month of random receipts of 40 customers (committed in the order of
-- their time, then returns, then receipts of offline tills arriving late,
-- in any order), some refunded in part and some cancelled, moves eight
-- challenges of every goal; the progress and enrolments the engine keeps
-- must be what the documented rules compute from the receipts as they
-- stand (their lines, the quantities returned, cancels), and every
-- challenge at or above its target must have been completed once with its
-- reward, every one below it (and not keep_reward) have its reward back.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(6);

INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('bf', 'Brute force', 'bonus', 0);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'bf';
SELECT id AS pid FROM loyalty.program WHERE code = 'bf' \gset
INSERT INTO loyalty.product (program_id, sku, name, category)
SELECT :pid, s, s, c FROM (VALUES ('AX', 'a/x'), ('AY', 'a/y'), ('BX', 'b/x'), ('BZ', 'b/z'),
                                 ('CX', 'c/x'), ('CY', 'c')) v (s, c);
-- goal, condition, target, extra
CREATE TEMP TABLE spec (code text, goal text, cond text, target numeric, extra jsonb);
INSERT INTO spec VALUES
    ('R',  'receipts', 'category <@ ''a''', 5,    '{}'),
    ('R5', 'receipts', NULL,               3,    '{"duration": "5 days"}'),
    ('S',  'spend',    NULL,               900,  '{}'),
    ('Q',  'quantity', 'category <@ ''b''', 7.5, '{}'),
    ('D',  'distinct', NULL,               4,    '{"distinct_of": "category"}'),
    ('K',  'streak',   NULL,               3,    '{"streak_unit": "day"}'),
    ('W',  'streak',   'category <@ ''c''', 3,   '{"streak_unit": "week"}'),
    ('P',  'steps',    NULL,               3,    '{}');
INSERT INTO loyalty.challenge (program_id, code, goal, condition, target, reward_points, starts_at, ends_at,
                               duration, distinct_of, streak_unit)
SELECT :pid, s.code, s.goal, s.cond::loyalty.condition, s.target, 10,
       '2026-03-01T00:00:00+00:00', '2026-04-01T00:00:00+00:00',
       (s.extra ->> 'duration')::interval, s.extra ->> 'distinct_of', s.extra ->> 'streak_unit'
  FROM spec s;
INSERT INTO loyalty.challenge_step (program_id, challenge_id, step, condition)
SELECT c.program_id, c.id, v.step, v.cond::loyalty.condition
  FROM loyalty.challenge c,
       (VALUES (1, 'category = ''a/x'''), (2, 'category <@ ''b'''), (3, 'category = ''a/y''')) v (step, cond)
 WHERE c.code = 'P';

-- The receipts: 40 customers, up to 14 receipts each in March 2026 (and a
-- few in late February, before the challenges), 1 to 4 lines; committed in
-- the order of their "at", but for about one in seven ("late"), committed
-- after the returns in a random order.
SELECT setseed(0.4242);
CREATE TEMP TABLE cust AS
SELECT g AS n, (loyalty.enroll('bf', card => (50000000 + g)::text)) AS id FROM generate_series(1, 40) g;
CREATE TEMP TABLE doc AS
SELECT format('R%s-%s', c.n, k) AS rid, c.n,
       timestamptz '2026-02-26T00:00:00+00:00' + (random() * 36 * 24 * 3600) * interval '1 second' AS at,
       (SELECT jsonb_agg(jsonb_build_object('line', l, 'sku', (ARRAY['AX','AY','BX','BZ','CX','CY'])[1 + floor(random() * 6)::int],
                                            'qty', round((0.5 + random() * 2.5)::numeric, 1),
                                            'price', round((5 + random() * 195)::numeric, 2)))
          FROM generate_series(1, 1 + floor(random() * 4)::int + (k * 0)) l) AS lines
  FROM cust c, generate_series(1, 14) k
 WHERE random() < 0.8;
ALTER TABLE doc ADD COLUMN late boolean, ADD COLUMN seq bigint;
UPDATE doc SET late = random() < 0.15;
UPDATE doc d SET seq = o.seq
  FROM (SELECT rid, CASE WHEN late THEN 100000 + row_number() OVER (PARTITION BY late ORDER BY random())
                         ELSE row_number() OVER (PARTITION BY late ORDER BY at, rid) END AS seq FROM doc) o
 WHERE o.rid = d.rid;
CREATE FUNCTION pg_temp.commit_doc(d doc) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM loyalty.commit(jsonb_build_object('program', 'bf', 'receipt_id', d.rid,
                                              'customer', jsonb_build_object('card', (50000000 + d.n)::text),
                                              'at', to_char(d.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                                              'lines', d.lines));
END
$$;
DO $$
DECLARE
    d doc;
BEGIN
    FOR d IN SELECT * FROM doc WHERE NOT late ORDER BY seq LOOP
        PERFORM pg_temp.commit_doc(d);
    END LOOP;
END $$;
-- returns: a tenth cancelled, a fifth with one line returned in part or whole
DO $$
DECLARE
    d record;
BEGIN
    FOR d IN SELECT rid, lines FROM doc WHERE NOT late ORDER BY rid LOOP
        IF random() < 0.1 THEN
            PERFORM loyalty.cancel('bf', d.rid);
        ELSIF random() < 0.22 THEN
            PERFORM loyalty.refund('bf', d.rid,
                jsonb_build_array(jsonb_build_object('line', 1,
                    'qty', CASE WHEN random() < 0.5 THEN (d.lines -> 0 ->> 'qty')::numeric
                                ELSE round((d.lines -> 0 ->> 'qty')::numeric / 2, 1) END)),
                d.rid || '-R');
        END IF;
    END LOOP;
END $$;
-- the late receipts
DO $$
DECLARE
    d doc;
BEGIN
    FOR d IN SELECT * FROM doc WHERE late ORDER BY seq LOOP
        PERFORM pg_temp.commit_doc(d);
    END LOOP;
END $$;

-- The brute force: every committed line with what is left of it.
CREATE TEMP TABLE line AS
SELECT r.receipt_id AS rid, r.customer_id AS cid, r.at, (r.at AT TIME ZONE 'UTC')::date AS day,
       u.no, p.category, u.qty,
       CASE WHEN r.status = 'cancelled' THEN 0 ELSE u.qty - u.refunded END AS left_qty,
       u.amount - u.discount AS spend
  FROM loyalty.receipt r,
       unnest(r.line_no, r.line_sku, r.line_qty, r.line_refunded_qty, r.line_amount, r.line_discount)
           u (no, sku, qty, refunded, amount, discount),
       loyalty.product p
 WHERE r.program_id = :pid AND p.program_id = :pid AND p.sku = u.sku;
-- whether a line matches a challenge (the conditions of spec, in SQL)
CREATE FUNCTION pg_temp.hit(code text, category text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE code WHEN 'R' THEN category LIKE 'a/%' OR category = 'a'
                     WHEN 'Q' THEN category LIKE 'b/%' OR category = 'b'
                     WHEN 'W' THEN category LIKE 'c/%' OR category = 'c'
                     WHEN 'P' THEN category IN ('a/x', 'b/x', 'b/z', 'a/y')
                     ELSE true END
$$;
-- the steps a line does (P)
CREATE FUNCTION pg_temp.steps(category text) RETURNS int[] LANGUAGE sql IMMUTABLE AS $$
    SELECT array_remove(ARRAY[CASE WHEN category = 'a/x' THEN 1 END,
                              CASE WHEN category LIKE 'b/%' THEN 2 END,
                              CASE WHEN category = 'a/y' THEN 3 END], NULL)
$$;
-- enrolment: the first receipt committed (doc.seq) with a line the
-- challenge counts, at or after starts_at and before ends_at
CREATE TEMP TABLE enrol AS
SELECT DISTINCT ON (s.code, l.cid) s.code, l.cid, l.at AS enrolled_at
  FROM spec s JOIN line l ON pg_temp.hit(s.code, l.category) JOIN doc d ON d.rid = l.rid
 WHERE l.at >= '2026-03-01T00:00:00+00:00' AND l.at < '2026-04-01T00:00:00+00:00'
   AND (s.goal <> 'spend' OR l.spend > 0)
 ORDER BY s.code, l.cid, d.seq;
ALTER TABLE enrol ADD COLUMN window_end timestamptz;
UPDATE enrol e SET window_end = CASE WHEN e.code = 'R5' THEN e.enrolled_at + interval '5 days'
                                     ELSE '2026-04-01T00:00:00+00:00' END;
-- the items still giving something, of the receipts in the windows
CREATE TEMP TABLE item AS
SELECT e.code, s.goal, l.*
  FROM enrol e JOIN spec s USING (code)
  JOIN line l ON l.cid = e.cid AND l.at >= e.enrolled_at AND l.at < e.window_end
 WHERE pg_temp.hit(e.code, l.category) AND l.left_qty > 0 AND (s.goal <> 'spend' OR l.spend > 0);

CREATE FUNCTION pg_temp.expected(c text, customer bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    g text := (SELECT goal FROM spec WHERE code = c);
    result bigint := 0;
    run int := 0;
    prev bigint;
    p bigint;
    r record;
BEGIN
    IF g = 'receipts' THEN
        SELECT count(DISTINCT rid) INTO result FROM item WHERE code = c AND cid = customer;
    ELSIF g = 'spend' THEN
        SELECT COALESCE(sum(spend - floor(spend * (qty - left_qty) / qty)), 0) INTO result
          FROM item WHERE code = c AND cid = customer;
    ELSIF g = 'quantity' THEN
        SELECT COALESCE(sum(left_qty * 1000), 0) INTO result FROM item WHERE code = c AND cid = customer;
    ELSIF g = 'distinct' THEN
        SELECT count(DISTINCT category) INTO result FROM item WHERE code = c AND cid = customer;
    ELSIF g = 'streak' THEN
        FOR p IN SELECT DISTINCT CASE WHEN c = 'W' THEN (day - date '2000-01-03') / 7 ELSE day - date '2000-01-01' END
                   FROM item WHERE code = c AND cid = customer ORDER BY 1 LOOP
            run := CASE WHEN prev IS NOT NULL AND p = prev + 1 THEN run + 1 ELSE 1 END;
            result := greatest(result, run);
            prev := p;
        END LOOP;
    ELSE
        FOR r IN SELECT rid, array_agg(DISTINCT st) AS done
                   FROM item, unnest(pg_temp.steps(category)) st
                  WHERE code = c AND cid = customer GROUP BY rid, at ORDER BY at, rid LOOP
            WHILE result < 3 AND (result + 1) = ANY (r.done) LOOP
                result := result + 1;
            END LOOP;
        END LOOP;
    END IF;
    RETURN result;
END
$$;

SELECT cmp_ok((SELECT count(*) FROM enrol), '>', 150::bigint, 'the month enrolled customers in challenges of every goal');
SELECT set_eq(
    $$SELECT c.code, p.customer_id, p.enrolled_at, p.window_end FROM loyalty.challenge_progress p
        JOIN loyalty.challenge c ON c.id = p.challenge_id$$,
    $$SELECT code, cid, enrolled_at, window_end FROM enrol$$,
    'enrolments: the first receipt with a line each challenge counts, and the window from it');
SELECT is_empty(
    $$SELECT c.code, p.customer_id, p.progress, pg_temp.expected(c.code, p.customer_id)
        FROM loyalty.challenge_progress p JOIN loyalty.challenge c ON c.id = p.challenge_id
       WHERE p.progress <> pg_temp.expected(c.code, p.customer_id)$$,
    'progress is what the documented rules compute from the receipts as they stand');
SELECT is_empty(
    $$SELECT c.code, p.customer_id, p.progress, p.state FROM loyalty.challenge_progress p
        JOIN loyalty.challenge c ON c.id = p.challenge_id
        JOIN spec s ON s.code = c.code
       WHERE (p.state = 'completed') <> (p.progress >= c.target * CASE s.goal WHEN 'spend' THEN 100
                                                                              WHEN 'quantity' THEN 1000 ELSE 1 END)$$,
    'completed exactly where the progress is at or above the target');
SELECT is_empty(
    $$SELECT p.customer_id, c.code, p.state, p.completions,
             (SELECT coalesce(sum(l.amount), 0) FROM loyalty.ledger l
               WHERE l.customer_id = p.customer_id AND l.idempotency_key LIKE format('loyalty:challenge:%s:%s:%%', c.id, p.customer_id)) AS net
        FROM loyalty.challenge_progress p JOIN loyalty.challenge c ON c.id = p.challenge_id
       WHERE (SELECT coalesce(sum(l.amount), 0) FROM loyalty.ledger l
               WHERE l.customer_id = p.customer_id
                 AND l.idempotency_key LIKE format('loyalty:challenge:%s:%s:%%', c.id, p.customer_id))
             <> CASE WHEN p.state = 'completed' THEN 10 ELSE 0 END$$,
    'the reward is held once by each completed challenge and by no other');
SELECT cmp_ok((SELECT count(*) FROM loyalty.ledger WHERE idempotency_key LIKE 'loyalty:challenge:%:back'), '>', 0::bigint,
              'some rewards were taken back by returns');

SELECT * FROM finish();
ROLLBACK;
