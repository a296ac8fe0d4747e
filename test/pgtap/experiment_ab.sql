-- An A/B test of two reward strategies over 20 000 simulated customers
-- (docs/experiments.md): the customers are split 1 : 1 by the documented
-- hash (computed here from the formula, not by the extension); a month of
-- receipts is simulated with an uplift built in for the treatment (each of
-- its receipts 10.00 more on average, 2 receipts a customer on average: an
-- uplift of 20.00 in spend per customer, none in receipts); the report must
-- find the split, and the built-in uplift within its 95 % interval (and
-- none where none was built in).  Ids and the random seed are fixed, so the
-- run is the same every time.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(9);

INSERT INTO loyalty.program (code, name, default_currency) VALUES ('ab', 'AB', 'bonus');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'ab';
SELECT id AS pid FROM loyalty.program WHERE code = 'ab' \gset
INSERT INTO loyalty.experiment (program_id, code, salt, starts_at)
VALUES (:pid, 'CASHBACK', 'cashback-2026', '2026-03-01T00:00:00+00:00');
SELECT id AS eid FROM loyalty.experiment WHERE program_id = :pid \gset
INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, weight, control) VALUES
    (:pid, :eid, 'a-control', 1, true),
    (:pid, :eid, 'b-cashback', 1, false);

-- 20 000 customers, enrolled before the month, with fixed ids
INSERT INTO loyalty.customer (id, program_id, created_at)
OVERRIDING SYSTEM VALUE
SELECT 900000000 + g, :pid, '2026-01-01T00:00:00+00:00' FROM generate_series(1, 20000) g;
-- their variants by the documented formula
CREATE TEMP TABLE sim AS
SELECT c.id,
       (SELECT v.code
          FROM (SELECT w.code, sum(w.weight) OVER (ORDER BY w.code COLLATE "C") AS upto,
                       sum(w.weight) OVER () AS total
                  FROM loyalty.experiment_variant w WHERE w.experiment_id = :eid) v
         WHERE ('x' || substr(md5('cashback-2026' || ':' || c.id), 1, 8))::bit(32)::bigint % v.total < v.upto
         ORDER BY v.upto LIMIT 1) AS variant
  FROM loyalty.customer c WHERE c.program_id = :pid;
-- a month of receipts: 0 to 4 a customer; 50.00 to 150.00 each, 10.00 more
-- in the treatment
SELECT setseed(0.2026);
CREATE TEMP TABLE sim_receipt AS
SELECT s.id AS customer_id, k,
       round((5000 + random() * 10000 + CASE WHEN s.variant = 'b-cashback' THEN 1000 ELSE 0 END))::bigint AS amount,
       timestamptz '2026-03-01T00:00:00+00:00' + random() * interval '30 days' AS at
  FROM (SELECT id, variant, floor(random() * 5)::int AS n FROM sim ORDER BY id) s,
       generate_series(1, 4) k
 WHERE k <= s.n;
INSERT INTO loyalty.receipt (program_id, receipt_id, committed_at, customer_id, at, amount, discount,
                             points_money, to_pay, points_spent, points_earned, accruals, coupons, counters,
                             offers, answer, actor, line_no, line_sku, line_qty, line_price, line_amount,
                             line_discount, line_points_money, line_to_pay, line_refunded_qty, discount_line,
                             discount_promotion, discount_amount, paid_line, paid_lot, paid_currency,
                             paid_points, paid_money, earned_line, earned_currency, earned_base, earned_points,
                             earned_by_entry, earned_by_promotion, earned_by_points)
SELECT :pid, 'SIM-' || customer_id || '-' || k, at, customer_id, at, amount, 0, 0, amount, '{}', '{}', '[]', '{}',
       '[]', '{}', '{}', 'simulation', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
       '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'
  FROM sim_receipt;

CREATE TEMP TABLE rep AS
SELECT * FROM loyalty.experiment_report('ab', 'CASHBACK', '[2026-03-01, 2026-04-01)');

SELECT is((SELECT sum(customers) FROM rep WHERE measure = 'receipts'), 20000::numeric,
          'every customer is in one variant');
SELECT results_eq($$SELECT variant, customers FROM rep WHERE measure = 'receipts' ORDER BY 1$$,
                  $$SELECT variant, count(*) FROM sim GROUP BY 1 ORDER BY 1$$,
                  'the variants hold the customers the documented formula assigns');
SELECT ok((SELECT bool_and(customers BETWEEN 9700 AND 10300) FROM rep WHERE measure = 'receipts'),
          'a 1 : 1 split, within 3 %');
SELECT is((SELECT round(mean, 2) FROM rep WHERE variant = 'a-control' AND measure = 'spend'),
          (SELECT round(sum(amount) / 100.0 / count(DISTINCT s.id), 2) FROM sim s LEFT JOIN sim_receipt r ON r.customer_id = s.id
            WHERE s.variant = 'a-control'),
          'the control''s spend per customer is what its receipts add up to');
SELECT ok((SELECT ci_low <= 20 AND 20 <= ci_high FROM rep WHERE variant = 'b-cashback' AND measure = 'spend'),
          'the uplift built in (20.00 of spend a customer) is within the 95 % interval of the measured one: '
          || (SELECT diff || ' [' || ci_low || ', ' || ci_high || ']' FROM rep WHERE variant = 'b-cashback' AND measure = 'spend'));
SELECT ok((SELECT ci_low > 0 FROM rep WHERE variant = 'b-cashback' AND measure = 'spend'),
          'and it is significant: the interval excludes 0');
SELECT ok((SELECT ci_low <= 0 AND 0 <= ci_high FROM rep WHERE variant = 'b-cashback' AND measure = 'receipts'),
          'no uplift was built into the number of receipts, and none is found: '
          || (SELECT diff || ' [' || ci_low || ', ' || ci_high || ']' FROM rep WHERE variant = 'b-cashback' AND measure = 'receipts'));
SELECT ok((SELECT ci_high - ci_low BETWEEN 6 AND 10 FROM rep WHERE variant = 'b-cashback' AND measure = 'spend'),
          'the interval''s width is what Welch''s test gives 10 000 customers a side (about 2 x 1.96 x 2.1)');

-- Welch's interval of docs/experiments.md, computed here from the
-- simulated receipts
WITH x AS (
    SELECT s.variant, coalesce(sum(r.amount), 0) / 100.0 AS spend
      FROM sim s LEFT JOIN sim_receipt r ON r.customer_id = s.id GROUP BY s.id, s.variant),
st AS (
    SELECT variant, count(*)::float8 AS n, avg(spend)::float8 AS m, var_samp(spend)::float8 AS v FROM x GROUP BY variant),
w AS (
    SELECT b.m - a.m AS diff, a.v / a.n + b.v / b.n AS se2,
           (a.v / a.n + b.v / b.n) ^ 2 / ((a.v / a.n) ^ 2 / (a.n - 1) + (b.v / b.n) ^ 2 / (b.n - 1)) AS df
      FROM st a, st b WHERE a.variant = 'a-control' AND b.variant = 'b-cashback'),
t AS (
    SELECT diff, se2, z + (z ^ 3 + z) / 4 / df + (5 * z ^ 5 + 16 * z ^ 3 + 3 * z) / 96 / df ^ 2
               + (3 * z ^ 7 + 19 * z ^ 5 + 17 * z ^ 3 - 15 * z) / 384 / df ^ 3
               + (79 * z ^ 9 + 776 * z ^ 7 + 1482 * z ^ 5 - 1920 * z ^ 3 - 945 * z) / 92160 / df ^ 4 AS q
      FROM w, (SELECT 1.959963984540054::float8 AS z) k)
SELECT ok(abs(r.ci_low - (t.diff - t.q * sqrt(t.se2))::numeric) < 0.001
          AND abs(r.ci_high - (t.diff + t.q * sqrt(t.se2))::numeric) < 0.001,
          'the interval is Welch''s, with the documented quantile of t: '
          || round((t.diff - t.q * sqrt(t.se2))::numeric, 3) || ' to ' || round((t.diff + t.q * sqrt(t.se2))::numeric, 3))
  FROM rep r, t WHERE r.variant = 'b-cashback' AND r.measure = 'spend';

SELECT * FROM finish();
ROLLBACK;
