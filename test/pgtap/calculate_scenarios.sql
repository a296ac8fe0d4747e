-- Scenarios of loyalty.calculate taken from the field reports: a sports
-- retailer's club (a bonus on skis only, the birthday bonus spent first, a
-- brand promotion in a date window, a city-only discount, the best
-- combination), a pizza chain's coins (1 coin per 20 roubles, "any small
-- pizza for 300 coins", a cap on the discount share) and a points platform
-- (gold x2, weekend x3, an offer for one segment).  The numbers are worked
-- out in the comments.
BEGIN;
SELECT plan(40);

-- The receipts fall next week, in the future the lots are valid in:
-- Tuesday, the Tuesday after, and Saturday.
SELECT to_char(d + 1, 'YYYY-MM-DD') || 'T12:00:00+03:00' AS tue,
       to_char(d + 8, 'YYYY-MM-DD') || 'T12:00:00+03:00' AS next_tue,
       to_char(d + 5, 'YYYY-MM-DD') || 'T12:00:00+03:00' AS sat,
       format('[%s,%s)', d, d + 4) AS columbia_week,
       d + 11 AS birthday_ends, d + 300 AS ski_points_end
  FROM (SELECT date_trunc('week', now() + interval '7 days')::date AS d) s \gset

-- Helpers: a line of a calculation, its promotion codes, a reason.
CREATE FUNCTION pg_temp.line(r jsonb, n int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT l FROM jsonb_array_elements(r -> 'lines') l WHERE (l ->> 'line')::int = n
$$;
CREATE FUNCTION pg_temp.applied(r jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(a ->> 'code', ',' ORDER BY a ->> 'code'), '')
      FROM jsonb_array_elements(r -> 'promotions' -> 'applied') a
$$;
CREATE FUNCTION pg_temp.reason(r jsonb, code text) RETURNS text LANGUAGE sql AS $$
    SELECT a ->> 'reason' FROM jsonb_array_elements(r -> 'promotions' -> 'not_applied') a
     WHERE a ->> 'code' = code
$$;

------------------------------------------------------------------------
-- The sports retailer: bonus points worth 1.00, base accrual 5%.
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('sport', 'Sport club', 'bonus', 500);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'sport';
SET CONSTRAINTS ALL IMMEDIATE;
INSERT INTO loyalty.product (program_id, sku, name, category, brand)
SELECT p.id, v.sku, v.name, v.category, v.brand FROM loyalty.program p,
       (VALUES ('SKI-1', 'Redster G9', 'ski/alpine', 'Atomic'),
               ('JKT-7', 'Whirlibird', 'textile/jackets', 'Columbia'),
               ('SOCK-3', 'Ski socks', 'textile/socks', 'Head')) v (sku, name, category, brand)
 WHERE p.code = 'sport';
SELECT loyalty.enroll('sport', card => '20000001', birth_date => '1990-03-10') AS maxim \gset
-- Maxim's points: 300 of a birthday gift expiring first, 1 000 regular, and
-- 400 that pay for skis only.
SELECT count(*) FROM (
    SELECT loyalty.accrue(:maxim, 'bonus', 300, valid_to => :'birthday_ends', kind => 'birthday')
    UNION ALL SELECT loyalty.accrue(:maxim, 'bonus', 1000)
    UNION ALL SELECT loyalty.accrue(:maxim, 'bonus', 400, valid_to => :'ski_points_end',
                                    kind => 'product', restriction => 'category <@ ''ski''')) s \gset

INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, active, cities, stacking_group)
SELECT p.id, v.code, v.name, 'active', v.cond::loyalty.condition, v.benefit::jsonb, v.active::tstzrange,
       v.cities::text[], v.grp
  FROM loyalty.program p,
       (VALUES ('SKIBONUS', '500 bonus on skis', 'category <@ ''ski''',
                '{"kind": "bonus_lot", "points": 500, "valid_days": 30, "restriction": "category <@ ''ski''"}',
                '(,)', NULL, NULL),
               ('COLUMBIA15', 'Columbia week', 'brand = ''Columbia''',
                '{"kind": "percent_off", "percent": 15}', :'columbia_week', NULL, 'brand'),
               ('COLUMBIA500', 'Columbia 500 off', 'brand = ''Columbia''',
                '{"kind": "amount_off", "amount": 500}', '(,)', NULL, 'brand'),
               ('MSK10', 'Moscow 10%', NULL, '{"kind": "percent_off", "percent": 10}', '(,)', '{Moscow}', 'city'))
       v (code, name, cond, benefit, active, cities, grp)
 WHERE p.code = 'sport';

CREATE FUNCTION pg_temp.sport(at text, city text, lines jsonb, points jsonb DEFAULT 'null') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT loyalty.calculate(jsonb_build_object('program', 'sport', 'customer', '{"card": "20000001"}'::jsonb,
                                                'at', at, 'city', city, 'lines', lines, 'points', points,
                                                'explain', true))
$$;

-- Skis earn the ski-only bonus lot of 500; socks alone do not.
SELECT is((SELECT b -> 'restriction' FROM jsonb_array_elements(
              pg_temp.sport(:'tue', 'Kazan', '[{"line": 1, "sku": "SKI-1", "qty": 1, "price": 30000}]')
              -> 'bonus_lots') b),
          '"category <@ ''ski''"'::jsonb, 'buying skis earns 500 points that pay for skis only');
SELECT is(pg_temp.sport(:'tue', 'Kazan', '[{"line": 1, "sku": "SOCK-3", "qty": 1, "price": 900}]')
          -> 'bonus_lots', '[]'::jsonb, 'socks alone earn no ski bonus');

-- The birthday points go first: a jacket of 9 990.00 in Kazan in the
-- Columbia week, COLUMBIA15 (1 498.50) beating COLUMBIA500 in the group
-- "brand"; paying "max": the 300 birthday points (expiring soonest), then
-- 1 000 regular; the 400 for skis stay.
SELECT pg_temp.sport(:'tue', 'Kazan',
                     '[{"line": 1, "sku": "JKT-7", "qty": 1, "price": 9990}]', '"max"') AS r \gset
SELECT is(pg_temp.line(:'r', 1) -> 'points_paid' -> 0 -> 'points', '300'::jsonb,
          'the birthday lot, expiring first, pays first');
SELECT is(:'r'::jsonb -> 'totals' -> 'points_spent' -> 'bonus', '1300'::jsonb,
          'then the regular lot; the ski-only lot does not pay for a jacket');
SELECT is(pg_temp.applied(:'r'), 'COLUMBIA15', 'the best of the brand group: 15% (1 498.50) over 500.00');
SELECT is(pg_temp.reason(:'r', 'COLUMBIA500'), 'excluded_by_better', 'and the other is said to be outdone');
SELECT is(pg_temp.line(:'r', 1) -> 'to_pay', '7191.50'::jsonb, '9 990.00 - 1 498.50 - 1 300.00 = 7 191.50');

-- Outside the Columbia week the 500.00 off applies instead.
SELECT pg_temp.sport(:'next_tue', 'Kazan',
                     '[{"line": 1, "sku": "JKT-7", "qty": 1, "price": 9990}]') AS r \gset
SELECT is(pg_temp.applied(:'r'), 'COLUMBIA500', 'after the window, the amount off');
SELECT is(:'r'::jsonb -> 'totals' -> 'discount', '500.00'::jsonb, 'of 500.00');

-- In Moscow MSK10 joins (group "city"): 10% of the skis and of the jacket.
SELECT pg_temp.sport(:'tue', 'Moscow',
                     '[{"line": 1, "sku": "SKI-1", "qty": 1, "price": 30000}, {"line": 2, "sku": "JKT-7", "qty": 1, "price": 9990}]') AS r \gset
SELECT is(pg_temp.applied(:'r'), 'COLUMBIA15,MSK10,SKIBONUS', 'in Moscow the city discount joins the others');
SELECT is(:'r'::jsonb -> 'totals' -> 'discount', '5497.50'::jsonb,
          '3 000.00 + 999.00 (city) + 1 498.50 (Columbia) = 5 497.50');
SELECT is(pg_temp.reason(pg_temp.sport(:'tue', 'Kazan',
                                       '[{"line": 1, "sku": "SKI-1", "qty": 1, "price": 30000}]'), 'MSK10'),
          'wrong_place', 'in Kazan it does not apply, and says why');

-- Paying for skis, the ski-only points go first (restricted lots first).
SELECT is(pg_temp.line(pg_temp.sport(:'tue', 'Kazan',
                                     '[{"line": 1, "sku": "SKI-1", "qty": 1, "price": 30000}]', '{"bonus": 400}'), 1)
          -> 'points_paid' -> 0 -> 'lot',
          (SELECT to_jsonb(id) FROM loyalty.lot WHERE customer_id = :maxim AND restriction IS NOT NULL),
          'the lot restricted to skis pays the skis first');

------------------------------------------------------------------------
-- The pizza chain: coins worth 1.00, no base accrual; at most 30% of an
-- order in discounts and coins.
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO loyalty.program (code, name, default_currency, max_discount_bp, phone_country)
VALUES ('pizza', 'Pizza coins', 'coins', 3000, 'RU');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'coins', 'Coins', 1 FROM loyalty.program WHERE code = 'pizza';
SET CONSTRAINTS ALL IMMEDIATE;
SELECT loyalty.enroll('pizza', phone => '+79161234567') AS olga \gset
SELECT count(*) FROM (SELECT loyalty.accrue(:olga, 'coins', 500)) s \gset
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, stacking_group)
SELECT p.id, v.code, v.name, 'active', v.cond::loyalty.condition, v.benefit::jsonb, v.grp
  FROM loyalty.program p,
       (VALUES ('COIN20', '1 coin per 20 roubles', NULL, '{"kind": "points_per", "per": 20, "points": 1}', NULL),
               ('SMALL300', 'Any small pizza for 300 coins', 'category = ''pizza/small''',
                '{"kind": "fixed_price", "points": 300, "currency": "coins"}', 'menu'))
       v (code, name, cond, benefit, grp)
 WHERE p.code = 'pizza';
CREATE FUNCTION pg_temp.pizza(lines jsonb, points jsonb DEFAULT 'null') RETURNS jsonb LANGUAGE sql AS $$
    SELECT loyalty.calculate(jsonb_build_object('program', 'pizza', 'customer', '{"phone": "8 916 123-45-67"}'::jsonb,
                                                'lines', lines, 'points', points, 'explain', true))
$$;

-- 1 coin per 20 roubles, rounded down per receipt: 1 019.00 earns 50.
SELECT is(pg_temp.pizza('[{"line": 1, "qty": 1, "price": 619, "category": "pizza/large"},
                          {"line": 2, "qty": 2, "price": 200, "category": "drinks"}]')
          -> 'totals' -> 'points_earned' -> 'coins', '50'::jsonb, '1 019.00 earns 50 coins, not 50.95');

-- The small pizza (449.00) for 300 coins, when the order spends coins.  A
-- price in points is points paid: its coins (300.00) and its money off the
-- pizza (449.00 - 300.00 = 149.00) count against the cap of 30%, whole or
-- not at all.  An order of 1 599.00 has a cap of 479.70: the reward's
-- 449.00 fit, and the pizza costs no money.
SELECT pg_temp.pizza('[{"line": 1, "qty": 1, "price": 449, "category": "pizza/small"},
                       {"line": 2, "qty": 1, "price": 1000, "category": "pizza/large"},
                       {"line": 3, "qty": 1, "price": 150, "category": "drinks"}]', '{"coins": 300}') AS r \gset
SELECT is(pg_temp.applied(:'r'), 'COIN20,SMALL300', 'the small pizza is taken for coins');
SELECT is(pg_temp.line(:'r', 1) -> 'to_pay', '0.00'::jsonb, 'and costs no money');
SELECT is((pg_temp.line(:'r', 1) -> 'points_paid' -> 0 ->> 'points')::int, 300, 'but 300 coins');
SELECT is(ARRAY[:'r'::jsonb #>> '{totals,discount}', :'r'::jsonb #>> '{totals,points_paid}'], ARRAY['149.00', '300.00'],
          'its money off and its coins, 449.00 in all, are within the cap of 479.70');
-- An order of 599.00 has a cap of 179.70: the reward does not fit, so it
-- does not apply (reason cap), and the coins asked for pay what the cap
-- leaves: 179 coins.
SELECT pg_temp.pizza('[{"line": 1, "qty": 1, "price": 449, "category": "pizza/small"},
                       {"line": 2, "qty": 1, "price": 150, "category": "drinks"}]', '{"coins": 300}') AS r \gset
SELECT is(pg_temp.reason(:'r', 'SMALL300'), 'cap', 'a reward the cap cannot take whole does not apply');
SELECT is(:'r'::jsonb -> 'totals' -> 'points_spent' -> 'coins', '179'::jsonb,
          'and the coins pay what the cap of 30% leaves, 179.70 rounded down to whole coins');
-- The cap on points: at most 20% of what the order comes to after
-- discounts.  On 1 599.00 the reward's 149.00 off leaves 1 450.00, whose 20%
-- is 290.00: the reward's 300 coins do not fit.
UPDATE loyalty.program SET max_discount_bp = 10000, max_points_bp = 2000 WHERE code = 'pizza';
SELECT pg_temp.pizza('[{"line": 1, "qty": 1, "price": 449, "category": "pizza/small"},
                       {"line": 2, "qty": 1, "price": 1000, "category": "pizza/large"},
                       {"line": 3, "qty": 1, "price": 150, "category": "drinks"}]', '{"coins": 300}') AS r \gset
SELECT is(pg_temp.reason(:'r', 'SMALL300'), 'cap', 'nor does one whose coins pass the cap on points');
-- A receipt discount of 500.00 and the reward on an order of 1 000.00 under
-- a cap of 50%: whatever applies, discounts and coins together stay within
-- 500.00, and a pizza taken for coins is never paid in part with money.
UPDATE loyalty.program SET max_discount_bp = 5000, max_points_bp = 10000 WHERE code = 'pizza';
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit)
SELECT id, 'R500', '500.00 off', 'active', '{"kind": "receipt_off", "threshold": 0, "amount": 500}'
  FROM loyalty.program WHERE code = 'pizza';
SELECT pg_temp.pizza('[{"line": 1, "qty": 1, "price": 449, "category": "pizza/small"},
                       {"line": 2, "qty": 1, "price": 551, "category": "pizza/large"}]', '{"coins": 300}') AS r \gset
SELECT cmp_ok((:'r'::jsonb #>> '{totals,discount}')::numeric + (:'r'::jsonb #>> '{totals,points_paid}')::numeric,
              '<=', 500.00, 'discounts and coins together within the cap of 50%');
SELECT ok(NOT (pg_temp.applied(:'r') LIKE '%SMALL300%') OR (pg_temp.line(:'r', 1) ->> 'to_pay')::numeric = 0,
          'and the pizza, if taken for coins, costs no money');
DELETE FROM loyalty.promotion WHERE code = 'R500';
UPDATE loyalty.program SET max_discount_bp = 3000 WHERE code = 'pizza';
-- Without asking to spend coins, the reward does not apply.
SELECT is(pg_temp.reason(pg_temp.pizza('[{"line": 1, "qty": 1, "price": 449, "category": "pizza/small"}]'), 'SMALL300'),
          'points_not_requested', 'a price in coins needs the order to spend coins');

-- A 50% promotion is cut to the 30% cap: 300.00 of 1 000.00.
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit)
SELECT id, 'HALF', 'Half price', 'active', '{"kind": "percent_off", "percent": 50}' FROM loyalty.program WHERE code = 'pizza';
SELECT pg_temp.pizza('[{"line": 1, "qty": 1, "price": 1000, "category": "pizza/large"}]') AS r \gset
SELECT is(:'r'::jsonb -> 'totals' -> 'discount', '300.00'::jsonb, 'the discount is cut to 30% of the order');
SELECT is((SELECT a -> 'capped' FROM jsonb_array_elements(:'r'::jsonb -> 'promotions' -> 'applied') a
            WHERE a ->> 'code' = 'HALF'), 'true'::jsonb, 'and the promotion says it was capped');

------------------------------------------------------------------------
-- The points platform: points worth 0.10; the base accrual is 1% of the
-- money paid: 1% of 1 000.00 is 10.00, that is 100 points.
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('plat', 'Points platform', 'pts', 100);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'pts', 'Points', 0.10 FROM loyalty.program WHERE code = 'plat';
SET CONSTRAINTS ALL IMMEDIATE;
INSERT INTO loyalty.segment (program_id, code, name)
SELECT id, 'students', 'Students' FROM loyalty.program WHERE code = 'plat';
SELECT loyalty.enroll('plat', email => 'gold@example.com') AS gold,
       loyalty.enroll('plat', email => 'student@example.com') AS student \gset
UPDATE loyalty.customer SET tier = 'gold' WHERE id = :gold;
INSERT INTO loyalty.segment_member (customer_id, program_id, segment)
SELECT :student, id, 'students' FROM loyalty.program WHERE code = 'plat';
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit, audience, tiers, segments, weekdays)
SELECT p.id, v.code, v.name, 'active', v.benefit::jsonb, v.audience, v.tiers::text[], v.segments::text[],
       v.weekdays::smallint[]
  FROM loyalty.program p,
       (VALUES ('GOLD2', 'Gold x2', '{"kind": "multiplier", "factor": 2}', 'tiers', '{gold}', NULL, NULL),
               ('WEEKEND3', 'Weekend x3', '{"kind": "multiplier", "factor": 3}', 'all', NULL, NULL, '{6,7}'),
               ('STUDENT15', 'Students 15%', '{"kind": "percent_off", "percent": 15}', 'segments', NULL, '{students}', NULL))
       v (code, name, benefit, audience, tiers, segments, weekdays)
 WHERE p.code = 'plat';
CREATE FUNCTION pg_temp.plat(email text, at text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT loyalty.calculate(jsonb_build_object('program', 'plat', 'customer', jsonb_build_object('email', email),
                                                'at', at, 'lines', '[{"line": 1, "qty": 1, "price": 1000}]'::jsonb,
                                                'explain', true))
$$;

-- Gold on a Tuesday: the base 100 points, and x2 adds 100 more.
SELECT is(pg_temp.plat('gold@example.com', :'tue') -> 'totals' -> 'points_earned' -> 'pts',
          '200'::jsonb, 'gold earns double on a weekday: 100 + 100');
-- Gold on a Saturday: x2 and x3 (no stacking group) add 100 + 200.
SELECT is(pg_temp.plat('gold@example.com', :'sat') -> 'totals' -> 'points_earned' -> 'pts',
          '400'::jsonb, 'and on a weekend x3 adds on top: 100 + 100 + 200');
-- A student on a Tuesday: 15% off (150.00) and the base on 850.00: 85 points.
SELECT pg_temp.plat('student@example.com', :'tue') AS r \gset
SELECT is(pg_temp.applied(:'r'), 'STUDENT15', 'the segment offer applies to its segment');
SELECT is(:'r'::jsonb -> 'totals' -> 'points_earned' -> 'pts', '85'::jsonb, 'and points are earned on what is paid');
SELECT is(pg_temp.reason(pg_temp.plat('gold@example.com', :'tue'), 'STUDENT15'),
          'audience', 'not to others');
SELECT is(pg_temp.reason(pg_temp.plat('student@example.com', :'tue'), 'GOLD2'),
          'audience', 'and gold x2 is for gold customers only');

-- A personal offer: the promotion applies to the customer who has one,
-- while it has uses left and within its validity; to nobody else.
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit, audience)
SELECT id, 'MINE10', 'Yours: 10% off', 'active', '{"kind": "percent_off", "percent": 10}', 'personal'
  FROM loyalty.program WHERE code = 'plat';
INSERT INTO loyalty.personal_offer (customer_id, promotion_id, program_id, uses_left)
SELECT :gold, m.id, m.program_id, 1 FROM loyalty.promotion m WHERE m.code = 'MINE10';
SELECT is(pg_temp.applied(pg_temp.plat('gold@example.com', :'tue')), 'GOLD2,MINE10',
          'a personal offer applies to the customer who has it');
SELECT is(pg_temp.reason(pg_temp.plat('student@example.com', :'tue'), 'MINE10'), 'audience',
          'and not to one who has none');
UPDATE loyalty.personal_offer SET uses_left = 0;
SELECT is(pg_temp.reason(pg_temp.plat('gold@example.com', :'tue'), 'MINE10'), 'audience',
          'nor once its uses are used up');
UPDATE loyalty.personal_offer SET uses_left = NULL, valid = tstzrange(NULL, now() - interval '1 day');
SELECT is(pg_temp.reason(pg_temp.plat('gold@example.com', :'tue'), 'MINE10'), 'audience',
          'nor outside its validity');

-- Points and holds: "max" spends what the wallet holds less what active
-- holds take; a customer without points spends none.
SELECT (loyalty.accrue(:gold, 'pts', 500)).balance_after;
SELECT loyalty.hold(:gold, 'pts', 200) AS hold_id \gset
CREATE FUNCTION pg_temp.spends(email text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT loyalty.calculate(jsonb_build_object('program', 'plat', 'customer', jsonb_build_object('email', email),
                                                'points', 'max', 'lines', '[{"line": 1, "qty": 1, "price": 1000}]'::jsonb))
           -> 'totals' -> 'points_spent'
$$;
SELECT is(pg_temp.spends('gold@example.com'), '{"pts": 300}'::jsonb, 'a hold counts against what calculate spends');
SELECT is((SELECT held FROM loyalty.wallet WHERE customer_id = :gold), 200::bigint, 'while the wallet holds it');
SELECT (loyalty.release(:hold_id)).operation;
SELECT is(pg_temp.spends('gold@example.com'), '{"pts": 500}'::jsonb, 'and once released it is spent again');
SELECT is(pg_temp.spends('student@example.com'), '{}'::jsonb, 'a customer without points spends none');

SELECT * FROM finish();
ROLLBACK;
