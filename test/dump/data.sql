-- test/dump/data.sql — a database worth dumping: two programmes, tiers,
-- products, promotions with conditions, a coupon, personal offers, rule
-- and static segments, customers with cards and phones (one merged, one
-- card replaced), lots of every kind, an open hold, receipts committed
-- (points spent, accruals released and queued, a coupon, counters), one
-- cancelled, one returned in part (a 3 for 2 broken), events, tier
-- changes and the monthly partitions.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country, accrual_rate_bp, tier_window)
VALUES ('shop', 'Shop', 'bonus', 'RU', 500, '1 year');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay)
VALUES ('late', 'Late', 'coins', 1000, '1 day');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (2, 'coins', 'Coins', 0.5);
COMMIT;
INSERT INTO loyalty.tier (program_id, code, name, rank, min_spend) VALUES
    (1, 'silver', 'Silver', 1, 1000), (1, 'gold', 'Gold', 2, 5000);
INSERT INTO loyalty.product (program_id, sku, name, category, brand, attributes) VALUES
    (1, 'SOCK', 'Socks', 'textile/socks', 'Wool', '{"size": "M"}'),
    (1, 'SKI', 'Skis', 'ski/alpine', 'Atomic', '{}'),
    (1, 'TENT', 'Tent', 'camping/tents', 'Alp', '{}'),
    (2, 'COF', 'Coffee', 'drinks', 'Bean', '{}');
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, audience,
                               limit_per_customer, limit_period)
VALUES (1, 'SOCKS3', 'Socks 3 for 2', 'active', 'category <@ ''textile/socks''',
        '{"kind": "n_for_m", "buy": 3, "pay": 2}', 'all', 10, 'month'),
       (1, 'SKI10', 'Skis 10% off', 'active', 'category <@ ''ski'' and brand = ''Atomic''',
        '{"kind": "percent_off", "percent": 10}', 'all', NULL, NULL),
       (1, 'TENT500', 'Tent 500 off with a coupon', 'active', 'sku = ''TENT''',
        '{"kind": "amount_off", "amount": 500}', 'coupon', NULL, NULL),
       (1, 'OLD', 'An ended one', 'ended', NULL, '{"kind": "percent_off", "percent": 50}', 'all', NULL, NULL),
       (2, 'COF-B', 'Coffee bonus lot', 'active', 'category = ''drinks''',
        '{"kind": "bonus_lot", "points": 30, "valid_days": 30}', 'all', NULL, NULL);
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit, audience, tiers)
VALUES (1, 'GOLD2', 'Gold: points x2', 'active', '{"kind": "multiplier", "factor": 2}', 'tiers', '{gold}');
INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind)
SELECT 1, 'Tent-Deal', id, 'multi_use' FROM loyalty.promotion WHERE code = 'TENT500';
INSERT INTO loyalty.segment (program_id, code, name) VALUES (1, 'vip', 'VIP');

SELECT loyalty.enroll('shop', card => '10000001', phone => '+79160000001') AS anna \gset
SELECT loyalty.enroll('shop', card => '10000002') AS boris \gset
SELECT loyalty.enroll('shop', card => '10000003') AS vera \gset
SELECT loyalty.enroll('late', card => '20000001') AS gleb \gset
INSERT INTO loyalty.segment_member (customer_id, program_id, segment) VALUES (:anna, 1, 'vip');
SELECT loyalty.replace_card('shop', '10000002', '10000022', 'lost') AS replaced;
SELECT count(*) FROM (
    SELECT loyalty.accrue(:anna, 'bonus', 1000),
           loyalty.accrue(:anna, 'bonus', 300, valid_to => now() + interval '10 days', kind => 'birthday'),
           loyalty.accrue(:anna, 'bonus', 200, restriction => 'ski', kind => 'product'),
           loyalty.accrue(:boris, 'bonus', 500),
           loyalty.accrue(:vera, 'bonus', 50, valid_to => now() + interval '1 hour'),
           loyalty.accrue(:gleb, 'coins', 100)) a;
SELECT loyalty.hold(:boris, 'bonus', 100, '1 day', idempotency_key => 'hold-1') IS NOT NULL AS held;
SELECT (loyalty.adjust(:vera, 'bonus', 25, 'goodwill', actor => 'desk')).version;
SELECT loyalty.merge_customers('shop', :vera, :boris, 'same person') IS NOT NULL AS merged;

CREATE FUNCTION pg_temp.buy(program text, id text, card text, lines jsonb, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT loyalty.commit(jsonb_build_object('program', program, 'receipt_id', id,
                                             'customer', jsonb_build_object('card', card), 'store', 'S1',
                                             'lines', lines) || extra)
$$;
SELECT count(*) FROM (
    SELECT pg_temp.buy('shop', 'R1', '10000001', '[{"line": 1, "sku": "SOCK", "qty": 1, "price": 100},
                                                   {"line": 2, "sku": "SOCK", "qty": 1, "price": 100},
                                                   {"line": 3, "sku": "SOCK", "qty": 1, "price": 100}]'),
           pg_temp.buy('shop', 'R2', '10000001', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 20000}]', '{"points": "max"}'),
           pg_temp.buy('shop', 'R3', '10000022', '[{"line": 1, "sku": "TENT", "qty": 1, "price": 3000}]',
                       '{"coupons": ["TENT-DEAL"]}'),
           pg_temp.buy('shop', 'R4', '10000022', '[{"line": 1, "qty": 2, "price": 150}]'),
           pg_temp.buy('late', 'L1', '20000001', '[{"line": 1, "sku": "COF", "qty": 2, "price": 200}]', '{"points": "max"}')) r;
SELECT loyalty.cancel('shop', 'R4') ->> 'status' AS r4;
SELECT loyalty.refund('shop', 'R1', '[{"line": 1}]', 'RET-1') ->> 'status' AS r1;
SELECT loyalty.create_partitions(2) >= 0 AS partitions;

-- a role of the tills bound to a programme (roles belong to the cluster: the
-- restore finds it)
DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname = 'dump_tills') = 0 THEN
        CREATE ROLE dump_tills IN ROLE loyalty_cashier;
    END IF;
END
$$;
SELECT loyalty.grant_program('shop', 'dump_tills') AS bound;
