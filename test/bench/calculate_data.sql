-- test/bench/calculate_data.sql — the data set of the calculate benchmark,
-- for test/bench/run.sh.  Set-based, so that a million customers load in
-- minutes: the wallets, lots and ledger entries are written directly, in
-- the state three accruals would leave (the check at the end proves it).
--
-- psql variables (all optional):
--   customers   customers, each with a card, a wallet and three lots (default 10000)
--   promotions  active promotions of the realistic mix (default 1000)
--   extra       further promotions of the same mix, paused, that the
--               benchmark switches on for its 10k figure (default 9000)
--   receipts    receipts of 20 lines the pgbench script draws from (default 5000)
--
-- The programme "shop": money RUB, points "bonus" worth 1.00, base accrual
-- 3%, discounts plus points at most 50% of a receipt, points at most 30%,
-- no line below 1.00, no points for tobacco.  20 000 products in 40
-- categories of 5 subcategories (c00/s0 .. c39/s4; c39 is tobacco) and 200
-- brands.  Five segments, each with a tenth of the customers.
--
-- The promotion mix, for every 1 000 (the shares hold for other counts):
--   200 on products: percent off a brand, amount off a subcategory, a fixed
--       price on a few skus, 3 for 2 on a subcategory;
--   100 personal (each customer has offers of two of them);
--    50 for coupon holders (10% of receipts carry a coupon);
--   150 for a tier or a segment, 100 in some cities only, 100 on some
--       weekdays or hours, 100 outside their date window (not running);
--   200 receipt and points promotions: receipt discounts above thresholds,
--       points per money, multipliers, bonus lots, gifts, bundles.
-- Stacking groups: "brand", "category", "receipt", "points", and none.
-- Beyond the first 1 000, the brand, subcategory and receipt-wide kinds are
-- tied to two skus each: a catalogue grows by narrow promotions (a week's
-- flyer, a product's launch), not by more promotions on every receipt.
\set ON_ERROR_STOP on
\if :{?customers}
\else
\set customers 10000
\endif
\if :{?promotions}
\else
\set promotions 1000
\endif
\if :{?extra}
\else
\set extra 9000
\endif
\if :{?receipts}
\else
\set receipts 5000
\endif
SET client_min_messages = warning;
SELECT setseed(0.42);

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, max_discount_bp,
                             max_points_bp, min_line_price, points_excluded)
VALUES ('shop', 'Benchmark shop', 'bonus', 300, 5000, 3000, 1, 'category <@ ''c39''');
INSERT INTO loyalty.currency (program_id, code, name, exponent, money_per_unit)
SELECT id, 'bonus', 'Bonus', 0, 1 FROM loyalty.program WHERE code = 'shop';
COMMIT;

INSERT INTO loyalty.product (program_id, sku, name, category, brand, attributes)
SELECT 1, 'P' || lpad(i::text, 6, '0'), 'product ' || i,
       'c' || lpad((i % 40)::text, 2, '0') || '/s' || (i / 40 % 5),
       'b' || lpad((i % 200)::text, 3, '0'),
       jsonb_build_object('size', (ARRAY['S', 'M', 'L', 'XL'])[1 + i % 4],
                          'colour', (ARRAY['red', 'blue', 'black', 'white', 'green'])[1 + i % 5])
  FROM generate_series(0, 19999) i;

-- Customers with a card, a tier for some, and a birthday.
INSERT INTO loyalty.customer (program_id, tier, birth_date)
SELECT 1, (ARRAY[NULL, NULL, NULL, 'silver', 'gold'])[1 + i % 5],
       date '1960-01-01' + (i::bigint * 7919 % 15000)::int
  FROM generate_series(1, :customers) i;
ALTER TABLE loyalty.identifier DISABLE TRIGGER USER;   -- the values are normal already
INSERT INTO loyalty.identifier (program_id, kind, value, customer_id)
SELECT 1, 'card', (1000000000 + id)::text, id FROM loyalty.customer;
ALTER TABLE loyalty.identifier ENABLE TRIGGER USER;

-- Three lots per customer, as three accruals would leave them: a regular
-- lot of 3 000, a promo lot of 1 000 expiring in 30 to 300 days, and 500
-- restricted to category c00.
INSERT INTO loyalty.lot (program_id, customer_id, currency, amount, remaining, valid_from, valid_to,
                         kind, priority, restriction, created_version)
SELECT 1, c.id, 'bonus', l.amount, l.amount, now() - interval '1 day', l.valid_to, l.kind, 0, l.restriction, l.v
  FROM loyalty.customer c,
       LATERAL (VALUES (3000, NULL::timestamptz, 'regular', NULL::text, 1),
                       (1000, now() + make_interval(days => 30 + (c.id * 7 % 271)::int), 'promo', NULL, 2),
                       (500, NULL, 'product', 'category <@ ''c00''', 3)) l (amount, valid_to, kind, restriction, v);
INSERT INTO loyalty.ledger (program_id, customer_id, currency, version, operation, amount,
                            balance_after, held_after, lot_id, actor, reason)
SELECT 1, customer_id, 'bonus', created_version, 'accrue', amount,
       sum(amount) OVER (PARTITION BY customer_id ORDER BY created_version), 0, id, 'bench', 'benchmark seed'
  FROM loyalty.lot;
INSERT INTO loyalty.wallet (customer_id, currency, program_id, balance, version, next_expiry, restricted)
SELECT customer_id, 'bonus', 1, sum(remaining), 3, min(valid_to), 500
  FROM loyalty.lot GROUP BY customer_id;

INSERT INTO loyalty.segment (program_id, code, name)
SELECT 1, 'seg' || i, 'segment ' || i FROM generate_series(0, 4) i;
INSERT INTO loyalty.segment_member (customer_id, program_id, segment)
SELECT id, 1, 'seg' || (id % 10) FROM loyalty.customer WHERE id % 10 < 5;

-- The promotions: n of the mix, active or paused.
CREATE FUNCTION pg_temp.promotions(first int, n int, status text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO loyalty.promotion (program_id, code, name, status, active, weekdays, hours, cities,
                                   audience, tiers, segments, line_condition, benefit,
                                   stacking_group, priority)
    SELECT 1, 'PR' || i, 'promotion ' || i, status,
           CASE WHEN k BETWEEN 850 AND 949 THEN tstzrange(now() - interval '60 days', now() - interval '30 days')
                ELSE tstzrange(now() - interval '30 days', now() + interval '3650 days') END,
           CASE WHEN k BETWEEN 800 AND 849 THEN '{6,7}'::smallint[] END,
           CASE WHEN k BETWEEN 750 AND 799 THEN int4range(10 + i % 4, 20) END,
           CASE WHEN k BETWEEN 650 AND 749 THEN ARRAY['city' || (i % 10)] END,
           CASE WHEN k BETWEEN 200 AND 299 THEN 'personal'
                WHEN k BETWEEN 300 AND 349 THEN 'coupon'
                WHEN k BETWEEN 350 AND 424 THEN 'tiers'
                WHEN k BETWEEN 425 AND 499 THEN 'segments'
                ELSE 'all' END,
           CASE WHEN k BETWEEN 350 AND 424 THEN ARRAY[(ARRAY['silver', 'gold'])[1 + i % 2]] END,
           CASE WHEN k BETWEEN 425 AND 499 THEN ARRAY['seg' || (i % 5)] END,
           (CASE WHEN i > 1000 AND (k < 120 OR k >= 950)
                 THEN format('sku in (%L, %L)', 'P' || lpad((i * 37 % 20000)::text, 6, '0'),
                             'P' || lpad((i * 53 % 20000)::text, 6, '0'))
                 WHEN k < 60 THEN format('brand = %L', 'b' || lpad((i % 200)::text, 3, '0'))
                 WHEN k < 120 THEN format('category <@ %L', 'c' || lpad((i % 39)::text, 2, '0') || '/s' || (i % 5))
                 WHEN k < 160 THEN format('sku in (%L, %L, %L)', 'P' || lpad((i * 37 % 20000)::text, 6, '0'),
                                          'P' || lpad((i * 53 % 20000)::text, 6, '0'),
                                          'P' || lpad((i * 71 % 20000)::text, 6, '0'))
                 WHEN k < 200 THEN format('category <@ %L', 'c' || lpad((i % 39)::text, 2, '0') || '/s' || (i % 5))
                 WHEN k < 950 THEN format('category <@ %L and brand = %L',
                                          'c' || lpad((i % 39)::text, 2, '0'), 'b' || lpad((i * 3 % 200)::text, 3, '0'))
                 WHEN k < 990 THEN NULL
                 ELSE format('category <@ %L', 'c' || lpad((i % 39)::text, 2, '0')) END)::loyalty.condition,
           CASE WHEN k < 60 THEN jsonb_build_object('kind', 'percent_off', 'percent', 5 + i % 26)
                WHEN k < 120 THEN jsonb_build_object('kind', 'amount_off', 'amount', 50 + i % 10 * 25)
                WHEN k < 160 THEN jsonb_build_object('kind', 'fixed_price', 'price', 99 + i % 5 * 100)
                WHEN k < 200 THEN '{"kind": "n_for_m", "buy": 3, "pay": 2}'::jsonb
                WHEN k < 950 THEN jsonb_build_object('kind', 'percent_off', 'percent', 5 + i % 16)
                WHEN k < 965 THEN jsonb_build_object('kind', 'receipt_off', 'threshold', 3000 + i % 5 * 2000,
                                                     'amount', 200 + i % 4 * 100)
                WHEN k < 975 THEN jsonb_build_object('kind', 'points_per', 'per', 100, 'points', 1 + i % 3)
                WHEN k < 982 THEN jsonb_build_object('kind', 'multiplier', 'factor', 2 + i % 2)
                WHEN k < 988 THEN jsonb_build_object('kind', 'bonus_lot', 'points', 100 + i % 5 * 100, 'valid_days', 30)
                WHEN k < 990 THEN jsonb_build_object('kind', 'gift', 'sku', 'GIFT' || i, 'value', 300)
                ELSE jsonb_build_object('kind', 'bundle', 'price', 1000,
                                        'components', jsonb_build_array(
                                            jsonb_build_object('condition', format('category <@ %L', 'c' || lpad((i % 39)::text, 2, '0'))),
                                            jsonb_build_object('condition', format('brand = %L', 'b' || lpad((i * 7 % 200)::text, 3, '0')))))
           END,
           CASE WHEN k < 60 OR k >= 200 AND k < 950 AND i % 2 = 0 THEN 'brand'
                WHEN k < 200 THEN 'category'
                WHEN k BETWEEN 950 AND 964 THEN 'receipt'
                WHEN k BETWEEN 965 AND 981 THEN 'points' END,
           i % 3
      FROM generate_series(first, first + n - 1) i, LATERAL (SELECT i % 1000 AS k) m
$$;
SELECT pg_temp.promotions(1, :promotions, 'active');
SELECT pg_temp.promotions(:promotions + 1, :extra, 'paused');

-- Personal offers: every customer has two of the personal promotions.
INSERT INTO loyalty.personal_offer (customer_id, promotion_id, program_id, uses_left)
SELECT c.id, p.id, 1, 3
  FROM loyalty.customer c
  JOIN loyalty.promotion p ON p.audience = 'personal' AND p.status = 'active'
   AND (p.id % 100 = c.id % 100 OR p.id % 100 = (c.id * 7 + 3) % 100);
-- Coupons: one multi-use code per coupon promotion.
INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind)
SELECT 1, 'CPN' || id, id, 'multi_use' FROM loyalty.promotion WHERE audience = 'coupon';

-- Receipts of 20 lines: random products, prices 50.00 to 5 000.00, 1 to 3
-- units; 90% with a card; 30% spend points; 10% carry a coupon.
CREATE TABLE bench_receipt (id int PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO bench_receipt
SELECT r, jsonb_build_object(
           'program', 'shop', 'receipt_id', 'R' || r, 'store', 'store' || (r % 50),
           'city', 'city' || (r % 10), 'country', 'RU', 'channel', 'pos',
           'at', to_char(now() - make_interval(hours => r % 72), 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00',
           'lines', (SELECT jsonb_agg(jsonb_build_object(
                         'line', n, 'sku', 'P' || lpad((floor(random() * 20000))::int::text, 6, '0'),
                         'qty', 1 + floor(random() * 3)::int,
                         'price', (5000 + floor(random() * 495000)::int) / 100.0) ORDER BY n)
                       FROM generate_series(1, 20) n WHERE r > 0))
       || CASE WHEN random() < 0.9
               THEN jsonb_build_object('customer', jsonb_build_object('card', (1000000000 + 1 + floor(random() * :customers)::int)::text))
               ELSE '{}' END
       || CASE WHEN random() < 0.3 THEN '{"points": "max"}'::jsonb ELSE '{}' END
       || CASE WHEN random() < 0.1
               THEN jsonb_build_object('coupons', jsonb_build_array(
                        (SELECT 'CPN' || id FROM loyalty.promotion WHERE audience = 'coupon' AND status = 'active'
                          ORDER BY id OFFSET r % 50 LIMIT 1)))
               ELSE '{}' END
  FROM generate_series(1, :receipts) r;

-- Each receipt's answer, stored out of line and uncompressed as calculate
-- returns it: answer.sql reads one, the ceiling of calculate.sql.
CREATE TABLE bench_answer (id int PRIMARY KEY, r jsonb NOT NULL);
ALTER TABLE bench_answer ALTER r SET STORAGE EXTERNAL;
INSERT INTO bench_answer SELECT id, loyalty.calculate(doc) FROM bench_receipt;

-- The wallets agree with their lots and ledgers.
ANALYZE;
DO $$
DECLARE
    bad bigint;
BEGIN
    SELECT count(*) INTO bad FROM loyalty.wallet w
     WHERE w.balance <> (SELECT sum(remaining) FROM loyalty.lot l
                          WHERE l.customer_id = w.customer_id AND l.currency = w.currency AND l.live)
        OR w.balance <> (SELECT balance_after FROM loyalty.ledger e
                          WHERE e.customer_id = w.customer_id AND e.currency = w.currency
                            AND e.version = w.version);
    IF bad > 0 THEN
        RAISE EXCEPTION 'benchmark data: % wallets disagree with their lots or ledger', bad;
    END IF;
END
$$;
