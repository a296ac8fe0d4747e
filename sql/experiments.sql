-- Experiments (docs/experiments.md): bad variants refused with their
-- SQLSTATE and nothing written; the assignment against the documented
-- formula in SQL; a promotion and a challenge of a variant applied to its
-- customers only, while the experiment applies; the answer's
-- "experiments"; the report and its bad input.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('shop', 'Shop', 'bonus', 1000);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit) VALUES
    (1, 'TREAT10', 'Ten percent for the treatment', 'active', '{"kind": "percent_off", "percent": 10}'),
    (1, 'ALL1', 'One off for all', 'active', '{"kind": "receipt_off", "amount": 1, "threshold": 1}');
INSERT INTO loyalty.challenge (program_id, code, goal, target, starts_at, reward_points)
VALUES (1, 'TWO', 'receipts', 2, '2026-03-01T00:00:00+00:00', 50);
SELECT count(*) AS enrolled FROM (SELECT loyalty.enroll('shop', card => (40000000 + g)::text) FROM generate_series(1, 40) g) x;
INSERT INTO loyalty.experiment (program_id, code, name, starts_at, ends_at)
VALUES (1, 'SPRING', 'Ten percent against nothing', '2026-03-01T00:00:00+00:00', '2026-04-01T00:00:00+00:00');

-- A receipt of programme shop of customer n (NULL: anonymous) on a day of
-- March 2026 (0: 28 February), and what the till sees of it.
CREATE FUNCTION pg_temp.rc(id text, n int, day int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('program', 'shop', 'receipt_id', id,
                              'customer', CASE WHEN n IS NULL THEN NULL ELSE jsonb_build_object('card', (40000000 + n)::text) END,
                              'lines', '[{"line": 1, "sku": "X", "qty": 1, "price": 100}]'::jsonb,
                              'at', CASE WHEN day = 0 THEN '2026-02-28T12:00:00+00:00'
                                         ELSE format('2026-03-%s', lpad(day::text, 2, '0')) || 'T12:00:00+00:00' END)
$$;
CREATE FUNCTION pg_temp.seen(doc jsonb) RETURNS TABLE (discount text, promotions text, experiments text)
LANGUAGE sql AS $$
    SELECT r -> 'totals' ->> 'discount',
           (SELECT string_agg(a ->> 'code', ',' ORDER BY a ->> 'code') FROM jsonb_array_elements(r -> 'promotions' -> 'applied') a),
           (r -> 'experiments')::text
      FROM loyalty.calculate(doc) r
$$;

-- 1. Bad variants: each refused with its SQLSTATE, nothing written.
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, weight) VALUES (1, 1, 'a', 0)$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, weight) VALUES (1, 1, 'a', 1000001)$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, promotions) VALUES (1, 1, 'a', '{NOPE}')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, promotions) VALUES (1, 1, 'a', '{NULL}')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, challenges) VALUES (1, 1, 'a', '{NOPE}')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code) VALUES (1, 1, 'a b')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code) VALUES (1, 99, 'a')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, control) VALUES (1, 1, 'a', true), (1, 1, 'b', true)$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code)
                                        SELECT 1, 1, 'v' || g FROM generate_series(1, 65) g$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.experiment (program_id, code, starts_at, ends_at) VALUES (1, 'X', '2026-03-02', '2026-03-01')$$);
SELECT count(*) AS variants FROM loyalty.experiment_variant;

-- 2. Two variants, 1 : 3; the treatment has the promotion and the challenge.
INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, weight, control, promotions, challenges) VALUES
    (1, 1, 'control', 1, true, NULL, NULL),
    (1, 1, 'treatment', 3, false, '{TREAT10}', '{TWO}');
-- the till's answer names the variant, which is the documented formula's
CREATE TEMP TABLE assigned AS
SELECT g AS n, c.id AS customer,
       (SELECT e ->> 'variant' FROM loyalty.calculate(pg_temp.rc(NULL, g, 10)) r, jsonb_array_elements(r -> 'experiments') e) AS answer,
       (SELECT v.code
          FROM (SELECT w.code, sum(w.weight) OVER (ORDER BY w.code COLLATE "C") AS upto,
                       sum(w.weight) OVER () AS total
                  FROM loyalty.experiment_variant w WHERE w.experiment_id = 1) v
         WHERE ('x' || substr(md5(coalesce(NULL, 'SPRING') || ':' || c.id), 1, 8))::bit(32)::bigint
               % v.total < v.upto
         ORDER BY v.upto LIMIT 1) AS formula
  FROM generate_series(1, 40) g JOIN loyalty.identifier i ON i.value = (40000000 + g)::text
  JOIN loyalty.customer c ON c.id = i.customer_id;
SELECT count(*) FILTER (WHERE answer = formula) AS same, count(*) FILTER (WHERE answer IS DISTINCT FROM formula) AS different,
       count(*) FILTER (WHERE answer = 'control') AS control, count(*) FILTER (WHERE answer = 'treatment') AS treatment
  FROM assigned;
SELECT min(n) AS c1 FROM assigned WHERE answer = 'control' \gset
SELECT min(n) AS t1 FROM assigned WHERE answer = 'treatment' \gset

-- 3. The promotion: the treatment gets it, the control and an anonymous
-- receipt do not (explain says why); outside the window, or with the
-- experiment inactive, everyone does.
SELECT * FROM pg_temp.seen(pg_temp.rc(NULL, :t1, 10));
SELECT * FROM pg_temp.seen(pg_temp.rc(NULL, :c1, 10));
SELECT * FROM pg_temp.seen(pg_temp.rc(NULL, NULL, 10));
SELECT n ->> 'code' AS promotion, n ->> 'reason' AS reason
  FROM loyalty.calculate(pg_temp.rc(NULL, :c1, 10) || '{"explain": true}') r,
       jsonb_array_elements(r -> 'promotions' -> 'not_applied') n;
SELECT * FROM pg_temp.seen(pg_temp.rc(NULL, :c1, 0));
UPDATE loyalty.experiment SET active = false WHERE code = 'SPRING';
SELECT * FROM pg_temp.seen(pg_temp.rc(NULL, :c1, 10));
UPDATE loyalty.experiment SET active = true WHERE code = 'SPRING';
-- commit stores what the till saw, experiments included
SELECT r -> 'experiments' AS experiments, r -> 'totals' ->> 'discount' AS discount
  FROM loyalty.commit(pg_temp.rc('T-1', :t1, 10)) r;
SELECT answer -> 'experiments' AS stored FROM loyalty.receipt WHERE receipt_id = 'T-1';

-- 4. The challenge: the treatment's customers take part, the control's do not.
SELECT loyalty.commit(pg_temp.rc('T-2', :t1, 11)) -> 'commit' ->> 'status' AS status;
SELECT loyalty.commit(pg_temp.rc('C-1', :c1, 10)) -> 'commit' ->> 'status' AS status;
SELECT loyalty.commit(pg_temp.rc('C-2', :c1, 11)) -> 'commit' ->> 'status' AS status;
SELECT c.card, p.progress, p.state
  FROM loyalty.challenge_progress p
  JOIN (SELECT customer_id, value AS card FROM loyalty.identifier) c ON c.customer_id = p.customer_id
 ORDER BY 1;

-- 5. The report: each variant against the control over March.
SELECT variant, control, measure, customers, mean, diff, ci_low IS NOT NULL AS has_ci
  FROM loyalty.experiment_report('shop', 'SPRING', '[2026-03-01, 2026-04-01)')
 WHERE measure IN ('receipts', 'spend', 'discount');
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.experiment_report('shop', 'SPRING', '[2026-03-01,)')$$);
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.experiment_report('shop', 'NOPE', '[2026-03-01, 2026-04-01)')$$);
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.experiment_report('nope', 'SPRING', '[2026-03-01, 2026-04-01)')$$);
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.experiment_report('shop', NULL, '[2026-03-01, 2026-04-01)')$$);
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.experiment_report('shop', 'SPRING', NULL)$$);
-- the 97.5 % quantile of t: exact at 10 degrees of freedom is 2.228, at 100 1.984
SELECT round(loyalty.t_quantile_975(10)::numeric, 3) AS t10, round(loyalty.t_quantile_975(100)::numeric, 3) AS t100,
       round(loyalty.t_quantile_975(1e9)::numeric, 3) AS t_inf;

DROP EXTENSION loyalty CASCADE;
