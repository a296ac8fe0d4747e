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
SELECT array_agg(id ORDER BY id)::text AS promo_ids, count(*) AS npromos
  FROM loyalty.promotion WHERE program_id = 1 AND status = 'active' AND audience = 'all' \gset
SELECT array_agg(code ORDER BY id)::text AS coupons, count(*) AS ncoupons FROM loyalty.coupon WHERE program_id = 1 \gset

-- the history starts with the programme
UPDATE loyalty.program SET created_at = now() - interval '366 days' WHERE id = 1;

INSERT INTO loyalty.receipt (program_id, receipt_id, committed_at, customer_id, status, at, store,
                             amount, discount, points_money, to_pay, points_spent, points_earned,
                             accruals, coupons, counters, offers, answer, actor, cancelled_at,
                             line_no, line_sku, line_qty, line_price, line_amount, line_discount,
                             line_points_money, line_to_pay, line_refunded_qty,
                             discount_line, discount_promotion, discount_amount,
                             paid_line, paid_lot, paid_currency, paid_points, paid_money,
                             earned_line, earned_currency, earned_base, earned_points,
                             earned_by_entry, earned_by_promotion, earned_by_points)
SELECT 1, 'H' || i, t.at, CASE WHEN i % 5 <> 4 THEN 1 + (i::bigint * 7907) % :customers END,
       CASE WHEN i % 20 = 0 THEN 'cancelled' WHEN i % 33 = 0 THEN 'partly_refunded' ELSE 'committed' END,
       t.at, 'S' || lpad((i % 200)::text, 3, '0'),
       l.amount, l.discount, l.points_money, l.amount - l.discount - l.points_money,
       CASE WHEN l.points_money > 0 THEN jsonb_build_object('bonus', l.points_money / 100) ELSE '{}' END,
       jsonb_build_object('bonus', (l.amount - l.discount) / 3000),
       '[]', CASE WHEN i % 10 = 0 THEN ARRAY[(:'coupons'::text[])[1 + (i / 10) % :ncoupons]] ELSE '{}' END, '[]', '{}', '{}', 'bench',
       CASE WHEN i % 20 = 0 THEN t.at + interval '10 minutes' END,
       l.line_no, l.line_sku, l.line_qty, l.line_price, l.line_amount, l.line_discount,
       l.line_points_money, l.line_to_pay, l.line_refunded_qty,
       l.discount_line, l.discount_promotion, l.discount_amount,
       l.paid_line, l.paid_lot, l.paid_currency, l.paid_points, l.paid_money,
       l.earned_line, l.earned_currency, l.earned_base, l.earned_points,
       l.earned_by_entry, l.earned_by_promotion, l.earned_by_points
  FROM generate_series(1, :history) i,
       LATERAL (SELECT :'anchor'::timestamptz - interval '365 days' * (1 - i::float8 / :history) AS at) t,
       -- the lines (one accrual each, so that the k-th is the k-th line's)
       LATERAL (SELECT sum(p.price * p.qty)::bigint AS amount, sum(p.discount)::bigint AS discount,
                       sum(p.points_money)::bigint AS points_money,
                       array_agg(k ORDER BY k) AS line_no,
                       array_agg('sku' || ((i * 31 + k) % 20000) ORDER BY k) AS line_sku,
                       array_agg(p.qty::numeric ORDER BY k) AS line_qty,
                       array_agg(p.price ORDER BY k) AS line_price,
                       array_agg(p.price * p.qty ORDER BY k) AS line_amount,
                       array_agg(p.discount ORDER BY k) AS line_discount,
                       array_agg(p.points_money ORDER BY k) AS line_points_money,
                       array_agg(p.price * p.qty - p.discount - p.points_money ORDER BY k) AS line_to_pay,
                       array_agg(CASE WHEN i % 33 = 0 AND i % 20 <> 0 AND k = 1 THEN 1 ELSE 0 END::numeric
                                 ORDER BY k) AS line_refunded_qty,
                       coalesce(array_agg(k ORDER BY k) FILTER (WHERE p.discount > 0), '{}') AS discount_line,
                       coalesce(array_agg((:'promo_ids'::bigint[])[1 + (i * k) % :npromos] ORDER BY k)
                                FILTER (WHERE p.discount > 0), '{}') AS discount_promotion,
                       coalesce(array_agg(p.discount ORDER BY k) FILTER (WHERE p.discount > 0), '{}') AS discount_amount,
                       coalesce(array_agg(k ORDER BY k) FILTER (WHERE p.points_money > 0), '{}') AS paid_line,
                       coalesce(array_agg(1::bigint ORDER BY k) FILTER (WHERE p.points_money > 0), '{}') AS paid_lot,
                       coalesce(array_agg('bonus'::text ORDER BY k) FILTER (WHERE p.points_money > 0), '{}') AS paid_currency,
                       coalesce(array_agg(p.points_money / 100 ORDER BY k) FILTER (WHERE p.points_money > 0), '{}') AS paid_points,
                       coalesce(array_agg(p.points_money ORDER BY k) FILTER (WHERE p.points_money > 0), '{}') AS paid_money,
                       array_agg(k ORDER BY k) AS earned_line,
                       array_agg('bonus'::text ORDER BY k) AS earned_currency,
                       array_agg((p.price * p.qty - p.discount) / 3000 ORDER BY k) AS earned_base,
                       array_agg((p.price * p.qty - p.discount) / 3000 + CASE WHEN i % 7 = 0 THEN 5 ELSE 0 END
                                 ORDER BY k) AS earned_points,
                       coalesce(array_agg(k ORDER BY k) FILTER (WHERE i % 7 = 0), '{}') AS earned_by_entry,
                       coalesce(array_agg((:'promo_ids'::bigint[])[1 + (i * 3) % :npromos] ORDER BY k)
                                FILTER (WHERE i % 7 = 0), '{}') AS earned_by_promotion,
                       coalesce(array_agg(5::bigint ORDER BY k) FILTER (WHERE i % 7 = 0), '{}') AS earned_by_points
                  FROM generate_series(1, 1 + i % 4) k,
                       LATERAL (SELECT 10000 + (i::bigint * 7919 + k * 104729) % 500000 AS price, 1 + k % 2 AS qty) q,
                       LATERAL (SELECT q.price, q.qty,
                                       CASE WHEN (i + k) % 3 = 0 THEN q.price * q.qty / 10 ELSE 0 END AS discount,
                                       CASE WHEN i % 5 = 0 THEN q.price * q.qty / 10 ELSE 0 END AS points_money) p) l;

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
