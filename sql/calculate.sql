-- loyalty.calculate: each benefit on a tiny receipt with the numbers worked
-- out, stacking and exclusivity, caps, points paid from lots, rounding that
-- adds up, the anonymous receipt, and every bad input with its SQLSTATE.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, phone_country)
VALUES ('shop', 'Shop', 'bonus', 500, 'RU');   -- base accrual: 5% of the money paid
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
INSERT INTO loyalty.product (program_id, sku, name, category, brand) VALUES
    (1, 'SKI', 'Skis', 'ski/alpine', 'Atomic'),
    (1, 'JKT', 'Jacket', 'textile/jackets', 'Columbia'),
    (1, 'SOCK', 'Socks', 'textile/socks', 'Head'),
    (1, 'CIG', 'Cigarettes', 'tobacco', NULL);
SELECT loyalty.enroll('shop', card => '10000001', birth_date => '1990-03-09') AS anna \gset

-- One line per row: line, discounts by promotion, points paid, to pay.
CREATE FUNCTION pg_temp.show(r jsonb) RETURNS TABLE (line int, amount numeric, discounts text,
                                                     points numeric, to_pay numeric, earned text)
LANGUAGE sql AS $$
    SELECT (l ->> 'line')::int, (l ->> 'amount')::numeric,
           (SELECT string_agg((d ->> 'promotion') || ' ' || (d ->> 'amount'), ', ')
              FROM jsonb_array_elements(l -> 'discounts') d),
           (l ->> 'points_amount')::numeric, (l ->> 'to_pay')::numeric,
           (SELECT string_agg(x, ', ' ORDER BY o, x)
              FROM jsonb_array_elements(l -> 'points_earned') e,
                   LATERAL (SELECT 0 AS o, 'base ' || (e ->> 'base') AS x WHERE e ? 'base'
                            UNION ALL
                            SELECT 1, p.key || ' ' || p.value FROM jsonb_each_text(e -> 'by_promotion') p) s)
      FROM jsonb_array_elements(r -> 'lines') l
$$;
CREATE FUNCTION pg_temp.totals(r jsonb) RETURNS TABLE (totals jsonb, applied text, not_applied text)
LANGUAGE sql AS $$
    SELECT r -> 'totals',
           (SELECT string_agg(a ->> 'code', ', ') FROM jsonb_array_elements(r -> 'promotions' -> 'applied') a),
           (SELECT string_agg((a ->> 'code') || ': ' || (a ->> 'reason'), ', ' ORDER BY a ->> 'code')
              FROM jsonb_array_elements(r -> 'promotions' -> 'not_applied') a)
$$;
-- A receipt of lines (sku, qty, price) for anna, at a Saturday noon in Moscow,
-- asking for the whole answer (the lines' breakdown, the promotions that did
-- not apply); the compact answer is tested at the end
CREATE FUNCTION pg_temp.receipt(lines jsonb, extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('program', 'shop', 'customer', jsonb_build_object('card', '10000001'),
                              'at', '2026-03-07T12:00:00+03:00', 'city', 'Moscow', 'lines', lines,
                              'explain', true) || extra
$$;
CREATE FUNCTION pg_temp.promo(code text, line_condition text, benefit jsonb, extra jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql AS $$
    INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit,
                                   stacking_group, priority, exclusive, cities)
    VALUES (1, code, 'promotion ' || code, 'active', line_condition::loyalty.condition, benefit,
            extra ->> 'group', coalesce((extra ->> 'priority')::int, 0),
            coalesce((extra ->> 'exclusive')::boolean, false),
            CASE WHEN extra ? 'city' THEN ARRAY[extra ->> 'city'] END)
$$;
\set skis '{"line": 1, "sku": "SKI", "qty": 1, "price": 20000}'
\set jacket '{"line": 2, "sku": "JKT", "qty": 1, "price": 5000}'
\set socks '{"line": 3, "sku": "SOCK", "qty": 3, "price": 333.33}'

-- No promotion: only the base accrual, 5% of 25000.00 = 1250 bonus points
-- (one point is worth 1.00), spread over the lines by the money they pay.
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'jacket'::jsonb))));

-- percent_off: 10% of the skis (20000.00) is 2000.00.
SELECT pg_temp.promo('SKI10', 'category <@ ''ski''', '{"kind": "percent_off", "percent": 10}');
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'jacket'::jsonb))));

-- amount_off per unit: 100.00 off each of 3 socks is 300.00 of 999.99.
SELECT pg_temp.promo('SOCK100', 'category <@ ''textile/socks''', '{"kind": "amount_off", "amount": 100}');
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb))));

-- A stacking group keeps the best promotion of the group on each line:
-- JKT15 (15% = 750.00) and JKT500 (500.00) are both in "brand"; 750 wins.
SELECT pg_temp.promo('JKT15', 'brand = ''Columbia''', '{"kind": "percent_off", "percent": 15}', '{"group": "brand"}');
SELECT pg_temp.promo('JKT500', 'brand = ''Columbia''', '{"kind": "amount_off", "amount": 500}', '{"group": "brand"}');
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'jacket'::jsonb))));
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'jacket'::jsonb))));

-- fixed_price: the jacket at 3999.00 is 1001.00 off, beating 15% (750.00).
SELECT pg_temp.promo('JKT3999', 'sku = ''JKT''', '{"kind": "fixed_price", "price": 3999}', '{"group": "brand"}');
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'jacket'::jsonb))));
DELETE FROM loyalty.promotion WHERE code IN ('JKT15', 'JKT500', 'JKT3999', 'SOCK100');

-- n_for_m, 3 for 2: of socks 3 x 333.33 the cheapest one is free, 333.33 off.
SELECT pg_temp.promo('SOCK3FOR2', 'category <@ ''textile/socks''', '{"kind": "n_for_m", "buy": 3, "pay": 2}');
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb))));
-- two socks are not enough
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt('[{"sku": "SOCK", "qty": 2, "price": 333.33}]')));
DELETE FROM loyalty.promotion WHERE code = 'SOCK3FOR2';

-- bundle: skis and a jacket for 22000.00 instead of 25000.00: 3000.00 off,
-- spread 20000:5000 over the lines: 2400.00 and 600.00.  It beats SKI10.
SELECT pg_temp.promo('KIT', NULL, '{"kind": "bundle", "price": 22000, "components": [{"condition": "category <@ ''ski''"}, {"condition": "brand = ''Columbia''"}]}', '{"group": "kit"}');
UPDATE loyalty.promotion SET stacking_group = 'kit' WHERE code = 'SKI10';
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'jacket'::jsonb))));
DELETE FROM loyalty.promotion WHERE code = 'KIT';

-- receipt_off: 500.00 off a receipt of at least 20000.00, spread 18000:5000
-- over what the lines come to after SKI10: 391.30 and 108.70 (largest remainder).
SELECT pg_temp.promo('R500', NULL, '{"kind": "receipt_off", "threshold": 20000, "amount": 500}');
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'jacket'::jsonb))));
-- the jacket alone (5000.00) is below the threshold
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'jacket'::jsonb))));
DELETE FROM loyalty.promotion WHERE code = 'R500';

-- points_per: 1 bonus per 20.00 paid, rounded down per receipt:
-- 999.99 / 20 = 49 points, besides the base 5% (49 points).
SELECT pg_temp.promo('PER20', NULL, '{"kind": "points_per", "per": 20, "points": 1}');
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb))));
-- with earn_weight 0 points count for nothing in the comparison, but are
-- still earned
UPDATE loyalty.program SET earn_weight = 0;
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb))));
UPDATE loyalty.program SET earn_weight = 1;
DELETE FROM loyalty.promotion WHERE code = 'PER20';

-- multiplier x3 on a Saturday: the base 5% of 999.99 is 49 points; x3 adds
-- twice that, 99 points (rounded down separately).
SELECT pg_temp.promo('WEEKEND3', NULL, '{"kind": "multiplier", "factor": 3}');
UPDATE loyalty.promotion SET weekdays = '{6,7}' WHERE code = 'WEEKEND3';
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb))));
-- on a Monday it does not run: wrong_day
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb), '{"at": "2026-03-09T12:00:00+03:00"}')));
DELETE FROM loyalty.promotion WHERE code = 'WEEKEND3';

-- bonus_lot: 500 points on skis only, valid 30 days, in a lot of their own.
SELECT pg_temp.promo('SKILOT', 'category <@ ''ski''', '{"kind": "bonus_lot", "points": 500, "valid_days": 30, "restriction": "category <@ ''ski''"}');
SELECT r -> 'bonus_lots' AS bonus_lots, r -> 'totals' -> 'points_earned' AS earned
  FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb))) r;
DELETE FROM loyalty.promotion WHERE code = 'SKILOT';
-- a lot without restriction or end says so by leaving restriction out and
-- valid_days null
SELECT pg_temp.promo('ANYLOT', 'category <@ ''ski''', '{"kind": "bonus_lot", "points": 50}');
SELECT r -> 'bonus_lots' AS bonus_lots FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb))) r;
DELETE FROM loyalty.promotion WHERE code = 'ANYLOT';

-- gift: a mug worth 300.00 with any jacket
SELECT pg_temp.promo('MUG', 'brand = ''Columbia''', '{"kind": "gift", "sku": "MUG", "value": 300, "name": "Mug"}');
SELECT r -> 'gifts' AS gifts FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'jacket'::jsonb))) r;
DELETE FROM loyalty.promotion WHERE code = 'MUG';
-- a gift without a name has none in the answer
SELECT pg_temp.promo('CUP', 'brand = ''Columbia''', '{"kind": "gift", "sku": "CUP", "value": 100}');
SELECT r -> 'gifts' AS gifts FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'jacket'::jsonb))) r;
DELETE FROM loyalty.promotion WHERE code = 'CUP';

-- exclusive: EXCL (25% off everything, alone) against SKI10 + the base:
-- 25% of 25000.00 is 6250.00, more than 2000.00, so EXCL alone applies.
SELECT pg_temp.promo('EXCL', NULL, '{"kind": "percent_off", "percent": 25}', '{"exclusive": true}');
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'jacket'::jsonb))));
DELETE FROM loyalty.promotion WHERE code = 'EXCL';

-- a city-only promotion: in Moscow yes, in Kazan wrong_place
SELECT pg_temp.promo('MSK5', NULL, '{"kind": "percent_off", "percent": 5}', '{"city": "Moscow", "group": "city"}');
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'jacket'::jsonb))));
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'jacket'::jsonb), '{"city": "Kazan"}')));
DELETE FROM loyalty.promotion WHERE code = 'MSK5';

-- Points: anna has 300 bonus points, 100 of them restricted to skis and
-- expiring first.  Paying "max" for socks takes only the 200 unrestricted.
\o /dev/null
SELECT loyalty.accrue(:anna, 'bonus', 100, valid_from => '2026-01-01', valid_to => now() + interval '10 years',
                      kind => 'product', restriction => 'category <@ ''ski''');
SELECT loyalty.accrue(:anna, 'bonus', 200, valid_from => '2026-01-01');
\o
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb), '{"points": "max"}')));
-- with skis in the receipt the restricted lot pays the skis first; the other
-- lot's 200 are spread over both lines in proportion to what they come to
-- now (17900.00 and 999.99): 189 and 11
SELECT l -> 'line' AS line, l -> 'points_paid' AS points_paid
  FROM jsonb_array_elements(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'socks'::jsonb), '{"points": "max"}')) -> 'lines') l;
-- 50 points asked: 50 taken, the restricted lot first (it may pay the skis)
SELECT r -> 'totals' FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb), '{"points": 50}')) r;

-- Caps: discounts plus points at most 10% of the receipt, points at most 5%.
-- SKI10 gives 2000.00 of 25000.00 (8%); the points may add 500.00 of the
-- 2500.00 cap, but the points cap (5% of 23000.00 = 1150.00) and the balance
-- (300) bind first: 300 points, the restricted 100 on the skis, the other
-- 200 spread over 17900.00 and 5000.00: 156 and 44.
UPDATE loyalty.program SET max_discount_bp = 1000, max_points_bp = 500;
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'jacket'::jsonb), '{"points": "max"}')));
-- a 30% discount is cut to the 10% cap: 2500.00, and the promotion says so
SELECT pg_temp.promo('BIG', 'category <@ ''ski''', '{"kind": "percent_off", "percent": 30}', '{"group": "kit"}');
SELECT r -> 'totals' -> 'discount' AS discount, r -> 'promotions' -> 'applied' -> 0 -> 'capped' AS capped
  FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'jacket'::jsonb))) r;
DELETE FROM loyalty.promotion WHERE code = 'BIG';
-- tobacco may not be paid with points; no line goes below 1.00
UPDATE loyalty.program SET max_discount_bp = 10000, max_points_bp = 10000, min_line_price = 1,
                           points_excluded = 'category <@ ''tobacco''';
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt('[{"line": 1, "sku": "CIG", "qty": 1, "price": 150}, {"line": 2, "sku": "SOCK", "qty": 1, "price": 120}]', '{"points": "max"}')));

-- Rounding: 10% of three lines of 0.05 is 0.005 each, rounded down to 0.00;
-- a receipt discount of 0.10 over three equal lines is 0.04 + 0.03 + 0.03.
UPDATE loyalty.program SET min_line_price = 0, points_excluded = NULL;
SELECT pg_temp.promo('R010', NULL, '{"kind": "receipt_off", "threshold": 0, "amount": 0.10}');
SELECT * FROM pg_temp.show(loyalty.calculate(pg_temp.receipt('[{"line": 1, "qty": 1, "price": 0.05}, {"line": 2, "qty": 1, "price": 0.05}, {"line": 3, "qty": 1, "price": 0.05}]')));
DELETE FROM loyalty.promotion WHERE code = 'R010';

-- receipt.total is what the lines come to before discounts, computed by
-- calculate (a "total" the till sends is not what it counts): a gift above
-- 25 000.00 of the receipt applies to the skis and the jacket, not to the
-- skis alone, though that receipt claims a total of a million.
SELECT pg_temp.promo('BIGGIFT', NULL, '{"kind": "gift", "sku": "MUG", "value": 100}');
UPDATE loyalty.promotion SET receipt_condition = 'receipt.total >= 25000' WHERE code = 'BIGGIFT';
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'jacket'::jsonb))));
SELECT * FROM pg_temp.totals(loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb), '{"total": 1000000}')));
DELETE FROM loyalty.promotion WHERE code = 'BIGGIFT';

-- An anonymous receipt: discounts yes, points neither spent nor earned.
SELECT r -> 'customer' AS customer, r -> 'totals' AS totals
  FROM loyalty.calculate('{"program": "shop", "at": "2026-03-07T12:00:00+03:00", "points": "max", "lines": [{"sku": "SKI", "qty": 1, "price": 20000}]}') r;
-- an unknown card: the till carries on, anonymous, with the reason
SELECT r -> 'customer' AS customer
  FROM loyalty.calculate('{"program": "shop", "customer": {"card": "99999999"}, "lines": [{"qty": 1, "price": 1}]}') r;
-- a blocked customer spends no points and earns none; the answer says why
UPDATE loyalty.customer SET status = 'blocked' WHERE id = :anna;
SELECT r -> 'customer' -> 'points_spending' AS spending, r -> 'totals' AS totals
  FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb), '{"points": "max"}')) r;
UPDATE loyalty.customer SET status = 'active' WHERE id = :anna;

-- Coupons: unknown, and one that unlocks its promotion (codes ignore case).
SELECT pg_temp.promo('CPN', NULL, '{"kind": "amount_off", "amount": 50}');
UPDATE loyalty.promotion SET audience = 'coupon' WHERE code = 'CPN';
INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind)
SELECT 1, 'SAVE50', id, 'single_use' FROM loyalty.promotion WHERE code = 'CPN';
SELECT r -> 'coupons' AS coupons, r -> 'totals' -> 'discount' AS discount
  FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb), '{"coupons": ["save50", "NOPE"]}')) r;
SELECT r -> 'promotions' -> 'not_applied' AS not_applied
  FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'socks'::jsonb))) r;

-- The same receipt at the same instant gives the same answer.
SELECT loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'socks'::jsonb), '{"points": "max"}'))
     = loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb, :'socks'::jsonb), '{"points": "max"}')) AS deterministic;
-- Read-only: the ledger holds only anna's two accruals.
SELECT count(*) AS ledger_entries FROM loyalty.ledger;

-- Bad input: a specific SQLSTATE and a message naming the field.
SELECT q, (pg_temp.err(format('SELECT loyalty.calculate(%L)', q))).* FROM (VALUES
    ('[]'),
    ('{"lines": []}'),
    ('{"program": "nope", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop"}'),
    ('{"program": "shop", "lines": []}'),
    ('{"program": "shop", "lines": [1]}'),
    ('{"program": "shop", "lines": [{"qty": 0, "price": 1}]}'),
    ('{"program": "shop", "lines": [{"qty": -2, "price": 1}]}'),
    ('{"program": "shop", "lines": [{"price": 1}]}'),
    ('{"program": "shop", "lines": [{"qty": "1", "price": 1}]}'),
    ('{"program": "shop", "lines": [{"qty": 1, "price": -1}]}'),
    ('{"program": "shop", "lines": [{"qty": 1, "price": "NaN"}]}'),
    ('{"program": "shop", "lines": [{"qty": 1, "price": 1.001}]}'),
    ('{"program": "shop", "lines": [{"qty": 1.0001, "price": 1}]}'),
    ('{"program": "shop", "lines": [{"qty": 1, "price": 1e20}]}'),
    ('{"program": "shop", "currency": "EUR", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "lines": [{"line": 1, "qty": 1, "price": 1}, {"line": 1, "qty": 1, "price": 2}]}'),
    ('{"program": "shop", "at": "yesterday-ish", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "now", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "2026-03-07T24:00:00+03:00", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "lines": [{"qty": 1, "price": 20000000000}]}'),
    ('{"program": "shop", "points": {"miles": 10}, "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "points": "all", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "customer": {"card": "1", "phone": "2"}, "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "coupons": "SAVE50", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "search": "fast", "lines": [{"qty": 1, "price": 1}]}'),
    -- "at": a timestamp with its UTC offset, from 2000 to 2100
    ('{"program": "shop", "at": "", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": 20260601, "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "2026-06-01T10:00+03:00 BC", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "2026-06-01T10:00:00", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "2026-06-01T10:00:00 Europe/Moscow", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "2026-02-30T10:00:00+03:00", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "1999-12-31T23:59:59Z", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "2100-01-01T03:00:00+03:00", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "at": "9999-12-31T23:59:59+00", "lines": [{"qty": 1, "price": 1}]}'),
    -- a currency of the programme or nothing; no limit of 3 bytes
    ('{"program": "shop", "currency": "RUB ", "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "customer": {"card": 10000001}, "lines": [{"qty": 1, "price": 1}]}'),
    -- points: never negative
    ('{"program": "shop", "points": -5, "lines": [{"qty": 1, "price": 1}]}'),
    ('{"program": "shop", "points": {"bonus": -1}, "lines": [{"qty": 1, "price": 1}]}')) t(q);
-- the edges of "at" that are accepted, and "at" in the answer: ISO 8601
-- with the offset it was written in, whatever the session's DateStyle
SET DateStyle = 'SQL, DMY';
SELECT a, loyalty.calculate(jsonb_build_object('program', 'shop', 'at', a, 'lines', '[{"qty": 1, "price": 1}]'::jsonb)) ->> 'at' AS answer
  FROM (VALUES ('2000-01-01T00:00:00Z'), ('2026-03-07T12:30:00+03:00'), ('2026-03-07 12:30+0300'),
               ('2026-03-07T09:30:00.25z'), ('2026-03-07T09:30-04:30'), ('2100-01-01T02:59:59.999999+03')) v (a);
RESET DateStyle;
-- an identifier that cannot be one is no error: the till carries on anonymous
SELECT r -> 'customer' AS customer
  FROM loyalty.calculate(jsonb_build_object('program', 'shop', 'customer', jsonb_build_object('card', repeat('4', 100000)),
                                            'lines', '[{"qty": 1, "price": 1}]'::jsonb)) r;
SELECT r -> 'customer' AS customer
  FROM loyalty.calculate('{"program": "shop", "customer": {"phone": ""}, "lines": [{"qty": 1, "price": 1}]}') r;
SELECT r -> 'customer' AS customer
  FROM loyalty.calculate('{"program": "shop", "customer": {"email": "not an address"}, "lines": [{"qty": 1, "price": 1}]}') r;
-- more lines than loyalty.max_lines, and a receipt over loyalty.max_receipt_size
SET loyalty.max_lines = 2;
SELECT (pg_temp.err($$SELECT loyalty.calculate('{"program": "shop", "lines": [{"qty": 1, "price": 1}, {"qty": 1, "price": 1}, {"qty": 1, "price": 1}]}')$$)).*;
RESET loyalty.max_lines;
SET loyalty.max_receipt_size = 1024;
SELECT (pg_temp.err(format('SELECT loyalty.calculate(%L)',
        jsonb_build_object('program', 'shop', 'note', repeat('x', 2000), 'lines', '[{"qty": 1, "price": 1}]'::jsonb)))).*;
RESET loyalty.max_receipt_size;
-- the exhaustive search is for superusers, whoever owns the function
DROP ROLE IF EXISTS calc_tester;
CREATE ROLE calc_tester;
GRANT USAGE ON SCHEMA loyalty TO calc_tester;
GRANT EXECUTE ON FUNCTION loyalty.calculate(jsonb) TO calc_tester;
SELECT loyalty.grant_program('shop', 'calc_tester');
SET ROLE calc_tester;
SELECT (pg_temp.err($$SELECT loyalty.calculate('{"program": "shop", "search": "exhaustive", "lines": [{"qty": 1, "price": 1}]}')$$)).*;
SELECT loyalty.calculate('{"program": "shop", "lines": [{"qty": 1, "price": 1}]}') -> 'totals' -> 'amount' AS amount;
RESET ROLE;

-- Bad benefits are refused when saved, naming the field; nothing is written.
SELECT b, (pg_temp.err(format($f$SELECT pg_temp.promo('BAD', NULL, %L)$f$, b))).* FROM (VALUES
    ('{"percent": 10}'),
    ('{"kind": "half_off"}'),
    ('{"kind": "percent_off", "percent": 0}'),
    ('{"kind": "percent_off", "percent": 101}'),
    ('{"kind": "percent_off", "percent": 10, "amount": 1}'),
    ('{"kind": "amount_off", "amount": 0.001}'),
    ('{"kind": "fixed_price", "price": 1, "points": 1}'),
    ('{"kind": "n_for_m", "buy": 3, "pay": 3}'),
    ('{"kind": "bundle", "price": 1, "components": [{"condition": "brand = ''X''"}]}'),
    ('{"kind": "bundle", "price": 1, "components": [{"condition": "brand ="}, {"condition": "true"}]}'),
    ('{"kind": "receipt_off", "threshold": 100}'),
    ('{"kind": "points_per", "per": 0, "points": 1}'),
    ('{"kind": "points_per", "per": 20, "points": 1, "currency": "miles"}'),
    ('{"kind": "multiplier", "factor": 1}'),
    ('{"kind": "bonus_lot", "points": 10, "valid_days": 0}'),
    ('{"kind": "gift", "value": 1}')) t(b);
-- a condition's syntax error names the benefit field it is in
INSERT INTO loyalty.promotion (program_id, code, name, benefit)
VALUES (1, 'BAD', 'bad', '{"kind": "bundle", "price": 1, "components": [{"condition": "true"}, {"condition": "brand ="}]}');
SELECT count(*) AS bad_promotions_written FROM loyalty.promotion WHERE code = 'BAD';
-- the normal form that is stored
SELECT benefit FROM loyalty.promotion WHERE code = 'SKI10';

-- A restore (its script sets check_function_bodies off) keeps benefits as
-- written, possibly before their currencies.  A benefit that does not read
-- when the catalogue is compiled leaves only its promotion out, with a warning.
SET check_function_bodies = off;
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit)
VALUES (1, 'RESTORED', 'restored', 'active', '{"kind": "points_per", "per": 20, "points": 1, "currency": "gone"}');
RESET check_function_bodies;
SELECT r -> 'totals' -> 'discount' AS discount,
       (SELECT string_agg(a ->> 'code', ', ') FROM jsonb_array_elements(r -> 'promotions' -> 'applied') a) AS applied
  FROM loyalty.calculate(pg_temp.receipt(jsonb_build_array(:'skis'::jsonb))) r;
DELETE FROM loyalty.promotion WHERE code = 'RESTORED';

-- Products are kept per backend once read; a change to loyalty.product
-- empties the cache, so the next calculate reads the row as it is now:
-- 10% off alpine skis applies, then not once SKI is filed under touring,
-- again once it is back; a sku removed from the catalogue matches nothing.
SELECT pg_temp.promo('ALPINE', 'category <@ ''ski/alpine''', '{"kind": "percent_off", "percent": 10}');
CREATE FUNCTION pg_temp.alpine() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg((d ->> 'promotion') || ' ' || (d ->> 'amount'), ', '), 'none')
      FROM jsonb_array_elements(loyalty.calculate(pg_temp.receipt(
               '[{"line": 1, "sku": "SKI", "qty": 1, "price": 20000}]')) -> 'lines' -> 0 -> 'discounts') d
$$;
SELECT pg_temp.alpine() AS before_change;
UPDATE loyalty.product SET category = 'ski/touring' WHERE sku = 'SKI';
SELECT pg_temp.alpine() AS filed_under_touring;
BEGIN;
UPDATE loyalty.product SET category = 'ski/alpine' WHERE sku = 'SKI';
SELECT pg_temp.alpine() AS back_in_alpine_uncommitted;
ROLLBACK;
SELECT pg_temp.alpine() AS after_rollback;
UPDATE loyalty.product SET category = 'ski/alpine' WHERE sku = 'SKI';
SELECT pg_temp.alpine() AS back_in_alpine;
-- with the cache off, or of one product (emptied whenever full), the same answers
SET loyalty.product_cache_size = 0;
SELECT pg_temp.alpine() AS without_cache;
CREATE FUNCTION pg_temp.three() RETURNS jsonb LANGUAGE sql AS $$
    SELECT loyalty.calculate(pg_temp.receipt(jsonb_build_array(
               '{"line": 1, "sku": "SKI", "qty": 1, "price": 20000}'::jsonb,
               '{"line": 2, "sku": "JKT", "qty": 1, "price": 5000}'::jsonb,
               '{"line": 3, "sku": "SOCK", "qty": 3, "price": 333.33}'::jsonb)))
$$;
SELECT pg_temp.three() AS three_cached \gset
SET loyalty.product_cache_size = 1;
SELECT pg_temp.alpine() AS cache_of_one, pg_temp.three() = :'three_cached'::jsonb AS three_skus_alike;
RESET loyalty.product_cache_size;
-- the setting is a superuser's
SET ROLE calc_tester;
SET loyalty.product_cache_size = 10;
RESET ROLE;
-- the log of slow calculations: off by default, milliseconds, a superuser's
SHOW loyalty.log_min_duration_calculate;
SET loyalty.log_min_duration_calculate = '250ms';
SHOW loyalty.log_min_duration_calculate;
SET loyalty.log_min_duration_calculate = -2;
RESET loyalty.log_min_duration_calculate;
SET ROLE calc_tester;
SET loyalty.log_min_duration_calculate = 0;
RESET ROLE;
DELETE FROM loyalty.product WHERE sku = 'SKI';
SELECT pg_temp.alpine() AS sku_removed;
DELETE FROM loyalty.promotion WHERE code = 'ALPINE';

-- The compact answer (the default): what a till prints and commits, the
-- same numbers as the whole answer without the lines' breakdown, the
-- promotions that did not apply and the search's figures.
SELECT pg_temp.promo('JKT20', 'sku = ''JKT''', '{"kind": "percent_off", "percent": 20}');
\set two '[{"line": 1, "sku": "SKI", "qty": 1, "price": 20000}, {"line": 2, "sku": "JKT", "qty": 1, "price": 5000}]'
SELECT loyalty.calculate(pg_temp.receipt(:'two', '{"explain": false, "points": 100}')) AS compact \gset
SELECT loyalty.calculate(pg_temp.receipt(:'two', '{"points": 100}')) AS whole \gset
SELECT jsonb_pretty(:'compact'::jsonb - 'customer' - 'catalog_generation') AS compact;
SELECT :'compact'::jsonb = loyalty.calculate(pg_temp.receipt(:'two', '{"points": 100}') - 'explain')
           AS explain_false_is_the_default,
       (:'compact'::jsonb -> 'totals') = (:'whole'::jsonb -> 'totals') AS same_totals,
       (:'compact'::jsonb -> 'customer') = (:'whole'::jsonb -> 'customer') AS same_customer,
       (SELECT bool_and(c -> 'line' = w -> 'line' AND c -> 'to_pay' = w -> 'to_pay'
                        AND c -> 'discount' = w -> 'discount' AND c -> 'points_amount' = w -> 'points_amount'
                        AND c -> 'points_earned' = (SELECT coalesce(jsonb_object_agg(e ->> 'currency', e -> 'points'), '{}')
                                                      FROM jsonb_array_elements(w -> 'points_earned') e))
          FROM jsonb_array_elements(:'compact'::jsonb -> 'lines') WITH ORDINALITY a (c, n)
          JOIN jsonb_array_elements(:'whole'::jsonb -> 'lines') WITH ORDINALITY b (w, m) ON n = m) AS same_lines,
       (SELECT jsonb_agg(a - 'kind') FROM jsonb_array_elements(:'whole'::jsonb #> '{promotions,applied}') a)
           = (:'compact'::jsonb #> '{promotions,applied}') AS same_applied,
       length(:'compact') < length(:'whole') AS smaller;
SELECT (pg_temp.err($$SELECT loyalty.calculate(pg_temp.receipt('[{"qty": 1, "price": 1}]', '{"explain": "yes"}'))$$)).*;
SELECT (pg_temp.err($$SELECT loyalty.calculate(pg_temp.receipt('[{"qty": 1, "price": 1}]', '{"explain": 1}'))$$)).*;
SELECT loyalty.calculate(pg_temp.receipt('[{"qty": 1, "price": 1}]', '{"explain": null}')) ? 'explored' AS null_is_compact;
DELETE FROM loyalty.promotion WHERE code = 'JKT20';

DROP EXTENSION loyalty CASCADE;
DROP OWNED BY calc_tester;
DROP ROLE calc_tester;
