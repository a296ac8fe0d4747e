-- test/bench/reports_data.sql — a year of history for the reports
-- benchmark, added to the calculate data set (test/bench/calculate_data.sql:
-- programme "shop", its customers, promotions and coupons).  Set-based and
-- deterministic, written directly in the state commit, cancel and refund
-- would leave, in the order of time (so that the BRIN indexes on committed_at
-- stay tight):
--
--   :history receipts over the last 365 days (committed_at ascending), 1 to 4
--   lines each (2.5 on average), 200 stores, 80% of an identified customer;
--   a line in three carries a 10% discount of one of the active promotions,
--   a receipt in five paid a tenth with points, a receipt in seven earned
--   points of a promotion; a receipt in 20 cancelled, one in 33 returned a
--   unit of its first line;
--   tiers base, silver and gold, and a tier change for one customer in 30;
--   coupon uses counted.
--
-- psql variable: history (default 100000).
\set ON_ERROR_STOP on
\if :{?history}
\else
\set history 100000
\endif
SET client_min_messages = warning;
SET synchronous_commit = off;

SELECT max(id) AS customers, now() AS anchor FROM loyalty.customer \gset
SELECT array_agg(code ORDER BY id)::text AS codes, count(*) AS npromos
  FROM loyalty.promotion WHERE program_id = 1 AND status = 'active' AND audience = 'all' \gset
SELECT array_agg(code ORDER BY id)::text AS coupons, count(*) AS ncoupons FROM loyalty.coupon WHERE program_id = 1 \gset

-- the history starts with the programme
UPDATE loyalty.program SET created_at = now() - interval '366 days' WHERE id = 1;

INSERT INTO loyalty.receipt (program_id, receipt_id, committed_at, customer_id, status, at, store,
                             amount, discount, points_money, to_pay, points_spent, points_earned,
                             accruals, coupons, counters, offers, answer, actor, cancelled_at)
SELECT 1, 'H' || i, t.at, CASE WHEN i % 5 <> 4 THEN 1 + (i::bigint * 7907) % :customers END,
       CASE WHEN i % 20 = 0 THEN 'cancelled' WHEN i % 33 = 0 THEN 'partly_refunded' ELSE 'committed' END,
       t.at, 'S' || lpad((i % 200)::text, 3, '0'),
       s.amount, s.discount, s.points_money, s.amount - s.discount - s.points_money,
       CASE WHEN s.points_money > 0 THEN jsonb_build_object('bonus', s.points_money / 100) ELSE '{}' END,
       jsonb_build_object('bonus', (s.amount - s.discount) / 3000),
       '[]', CASE WHEN i % 10 = 0 THEN ARRAY[(:'coupons'::text[])[1 + (i / 10) % :ncoupons]] ELSE '{}' END, '[]', '{}', '{}', 'bench',
       CASE WHEN i % 20 = 0 THEN t.at + interval '10 minutes' END
  FROM generate_series(1, :history) i,
       LATERAL (SELECT :'anchor'::timestamptz - interval '365 days' * (1 - i::float8 / :history) AS at) t,
       LATERAL (SELECT sum(p.price * p.qty)::bigint AS amount,
                       sum(CASE WHEN (i + k) % 3 = 0 THEN p.price * p.qty / 10 ELSE 0 END)::bigint AS discount,
                       sum(CASE WHEN i % 5 = 0 THEN p.price * p.qty / 10 ELSE 0 END)::bigint AS points_money
                  FROM generate_series(1, 1 + i % 4) k,
                       LATERAL (SELECT 10000 + (i::bigint * 7919 + k * 104729) % 500000 AS price,
                                       1 + k % 2 AS qty) p) s;

INSERT INTO loyalty.receipt_line (program_id, receipt_id, committed_at, line, sku, qty, price, amount,
                                  discount, points_money, to_pay, discounts, points_paid, points_earned,
                                  refunded_qty)
SELECT 1, 'H' || i, t.at, k, 'sku' || ((i * 31 + k) % 20000), p.qty, p.price, p.price * p.qty,
       p.discount, p.points_money, p.price * p.qty - p.discount - p.points_money,
       CASE WHEN p.discount > 0
            THEN jsonb_build_array(jsonb_build_object('amount', p.discount / 100.0,
                                                      'promotion', (:'codes'::text[])[1 + (i * k) % :npromos]))
            ELSE '[]' END,
       CASE WHEN p.points_money > 0
            THEN jsonb_build_array(jsonb_build_object('lot', 1, 'amount', p.points_money / 100.0,
                                                      'points', p.points_money / 100, 'currency', 'bonus'))
            ELSE '[]' END,
       jsonb_build_array(jsonb_build_object(
           'currency', 'bonus', 'base', (p.price * p.qty - p.discount) / 3000,
           'points', (p.price * p.qty - p.discount) / 3000 + CASE WHEN i % 7 = 0 THEN 5 ELSE 0 END,
           'by_promotion', CASE WHEN i % 7 = 0
                                THEN jsonb_build_object((:'codes'::text[])[1 + (i * 3) % :npromos], 5)
                                ELSE '{}' END)),
       CASE WHEN i % 33 = 0 AND i % 20 <> 0 AND k = 1 THEN 1 ELSE 0 END
  FROM generate_series(1, :history) i,
       LATERAL (SELECT :'anchor'::timestamptz - interval '365 days' * (1 - i::float8 / :history) AS at) t,
       generate_series(1, 1 + i % 4) k,
       LATERAL (SELECT 10000 + (i::bigint * 7919 + k * 104729) % 500000 AS price, 1 + k % 2 AS qty) q,
       LATERAL (SELECT q.price, q.qty,
                       CASE WHEN (i + k) % 3 = 0 THEN q.price * q.qty / 10 ELSE 0 END AS discount,
                       CASE WHEN i % 5 = 0 THEN q.price * q.qty / 10 ELSE 0 END AS points_money) p;

-- tiers, and a change for one customer in 30 (moved up, a few moved down)
INSERT INTO loyalty.tier (program_id, code, name, rank, min_receipts, qualify)
VALUES (1, 'base', 'Base', 0, NULL, 'all'), (1, 'silver', 'Silver', 1, 5, 'any'), (1, 'gold', 'Gold', 2, 20, 'any')
ON CONFLICT DO NOTHING;
INSERT INTO loyalty.tier_change (program_id, customer_id, from_tier, to_tier, reason, spend, receipts, changed_at, actor)
SELECT 1, c, CASE WHEN c % 3 = 0 THEN 'silver' END, CASE WHEN c % 3 = 0 THEN 'gold' ELSE 'silver' END,
       'qualified', 100000, 5, :'anchor'::timestamptz - interval '365 days' * (1 - c::float8 / :customers), 'bench'
  FROM generate_series(30, :customers, 30) c;

-- coupon uses
UPDATE loyalty.coupon SET uses = u.n
  FROM (SELECT code, count(*) AS n FROM loyalty.receipt, unnest(coupons) code
         WHERE status <> 'cancelled' GROUP BY code) u
 WHERE loyalty.coupon.code = u.code;

SELECT count(*) AS history_receipts FROM loyalty.receipt WHERE receipt_id LIKE 'H%';
