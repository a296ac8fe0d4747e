-- The best combination (docs/promotions.md, "The best combination"): every
-- promotion is a choice, points paid count nothing, and ties go by the
-- documented rule over all promotions.  Each case has its numbers worked
-- out; the search's answer must equal the exhaustive enumeration's.
CREATE EXTENSION loyalty;
\set VERBOSITY default

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency) VALUES ('best', 'Best', 'bonus');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;

-- A case: the promotions (code, benefit, line condition, group, priority,
-- exclusive), replaced for each case.
CREATE FUNCTION pg_temp.promos(promos jsonb) RETURNS void LANGUAGE sql AS $$
    DELETE FROM loyalty.promotion;
    INSERT INTO loyalty.promotion (program_id, code, name, status, benefit, line_condition,
                                   stacking_group, priority, exclusive)
    SELECT p.id, x ->> 'code', x ->> 'code', 'active', x -> 'benefit',
           (x ->> 'condition')::loyalty.condition, x ->> 'group',
           coalesce((x ->> 'priority')::int, 0), coalesce((x ->> 'exclusive')::boolean, false)
      FROM loyalty.program p, jsonb_array_elements(promos) x
     WHERE p.code = coalesce(x ->> 'program', 'best')
$$;
-- What calculate answers for the lines: the discount, what applied with its
-- discount, and why the others did not; and whether the exhaustive search
-- gives the same answer.
CREATE FUNCTION pg_temp.best(lines jsonb, extra jsonb DEFAULT '{}')
RETURNS TABLE (discount numeric, points_paid numeric, to_pay numeric, applied text, not_applied text,
               same_as_exhaustive boolean)
LANGUAGE sql AS $$
    SELECT (r #>> '{totals,discount}')::numeric, (r #>> '{totals,points_paid}')::numeric,
           (r #>> '{totals,to_pay}')::numeric,
           (SELECT string_agg((a ->> 'code') || ' ' || (a ->> 'discount'), ', ' ORDER BY a ->> 'code')
              FROM jsonb_array_elements(r #> '{promotions,applied}') a),
           (SELECT string_agg((a ->> 'code') || ': ' || (a ->> 'reason'), ', ' ORDER BY a ->> 'code')
              FROM jsonb_array_elements(r #> '{promotions,not_applied}') a),
           r - 'explored' - 'optimal' = e - 'explored' - 'optimal'
      FROM (SELECT loyalty.calculate(q) AS r, loyalty.calculate(q || '{"search": "exhaustive"}') AS e
              FROM (SELECT jsonb_build_object('program', coalesce(extra ->> 'program', 'best'),
                                              'at', '2026-03-07T12:00:00+03:00', 'lines', lines,
                                              'explain', true)
                           || (extra - 'program') AS q) s) s
$$;

-- 1. A line discount that pushes the receipt under a threshold is left out.
-- One line of 20.00: a fixed price of 9.99 on it (10.01 off), and 50.00 off
-- a receipt of at least 16.98.  Both: the line comes to 9.99, under the
-- threshold: 10.01 off.  The receipt discount alone: 50.00 takes the line
-- to its floor (0.00): 20.00 off.
SELECT pg_temp.promos('[{"code": "FIX999", "benefit": {"kind": "fixed_price", "price": 9.99}, "condition": "category = ''a''"},
                        {"code": "R50", "benefit": {"kind": "receipt_off", "threshold": 16.98, "amount": 50}}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 20, "category": "a"}]');
-- 3 x 100.00: 1.00 off each unit (3.00), and 3.33% off a receipt of at
-- least 300.00 (9.99).  Both: the receipt comes to 297.00, under 300.00:
-- 3.00.  The receipt discount alone: 9.99.
SELECT pg_temp.promos('[{"code": "ONE", "benefit": {"kind": "amount_off", "amount": 1}, "condition": "category = ''a''"},
                        {"code": "R333", "benefit": {"kind": "receipt_off", "threshold": 300, "percent": 3.33}}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 3, "price": 100, "category": "a"}]');
-- But where the line discount is worth more, it stays: 40.00 off each unit
-- (120.00) beats 3.33% of the receipt, which with it comes to 180.00, under
-- its threshold.
SELECT pg_temp.promos('[{"code": "FORTY", "benefit": {"kind": "amount_off", "amount": 40}, "condition": "category = ''a''"},
                        {"code": "R333", "benefit": {"kind": "receipt_off", "threshold": 300, "percent": 3.33}}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 3, "price": 100, "category": "a"}]');

-- 2. Ties go by priority over all promotions.  One line of 20.00: P1 10%
-- off, exclusive, priority 0; P2 10% off, priority 1.  Each gives 2.00
-- (both together are not allowed): P2, first by priority.
SELECT pg_temp.promos('[{"code": "P1", "benefit": {"kind": "percent_off", "percent": 10}, "exclusive": true},
                        {"code": "P2", "benefit": {"kind": "percent_off", "percent": 10}, "priority": 1}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 20}]');
-- With the priorities the other way round, P1.
SELECT pg_temp.promos('[{"code": "P1", "benefit": {"kind": "percent_off", "percent": 10}, "exclusive": true, "priority": 1},
                        {"code": "P2", "benefit": {"kind": "percent_off", "percent": 10}}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 20}]');
-- A gift and a receipt discount of one stacking group, each worth 5.00:
-- the gift has the higher priority, and wins.
SELECT pg_temp.promos('[{"code": "GIFT", "benefit": {"kind": "gift", "sku": "MUG", "value": 5, "name": "Mug"}, "group": "r", "priority": 1},
                        {"code": "R5", "benefit": {"kind": "receipt_off", "threshold": 0, "amount": 5}, "group": "r"}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 100}]');
SELECT r -> 'gifts' FROM loyalty.calculate('{"program": "best", "lines": [{"line": 1, "qty": 1, "price": 100}]}') r;
-- A gift worth more than the receipt discount wins whatever the priorities.
SELECT pg_temp.promos('[{"code": "GIFT", "benefit": {"kind": "gift", "sku": "MUG", "value": 6, "name": "Mug"}, "group": "r"},
                        {"code": "R5", "benefit": {"kind": "receipt_off", "threshold": 0, "amount": 5}, "group": "r", "priority": 1}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 100}]');

-- 3. A promotion that gives nothing is not part of the best.  One line of
-- 1.80: FREE, a fixed price of 0.00 (1.80 off), and R10, 10.00 off the
-- receipt.  Each alone gives 1.80; together R10 gives nothing (the line is
-- at 0.00).  FREE comes first by code: it applies, and R10 is left out
-- (not "below_threshold": nothing of the combination left it under one).
SELECT pg_temp.promos('[{"code": "FREE", "benefit": {"kind": "fixed_price", "price": 0}},
                        {"code": "R10", "benefit": {"kind": "receipt_off", "threshold": 0, "amount": 10}}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 1.80}]');

-- 4. N-for-M shares units of one price.  Lines [1 x 100.00] and [3 x
-- 100.00 brand Z], no floor; 2FOR1 ("2 for 1") and 3FOR1 ("3 for 1", not
-- brand Y) on both.  Each frees 2 of the 4 units, all at 100.00: their
-- 200.00 is spread over the lines by units, 50.00 on the first and 150.00
-- on the second.  Together: 100.00 on the first (its whole amount) and
-- 300.00 on the second: 400.00.  (Freeing the second line's units first,
-- both would take 400.00 off a line of 300.00: 300.00.)
SELECT pg_temp.promos('[{"code": "2FOR1", "benefit": {"kind": "n_for_m", "buy": 2, "pay": 1}},
                        {"code": "3FOR1", "benefit": {"kind": "n_for_m", "buy": 3, "pay": 1}, "condition": "not (brand = ''Y'')"}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 100},
                             {"line": 2, "qty": 3, "price": 100, "brand": "Z"}]');
-- What a line cannot take goes to the others of its price.  "2 for 1" on
-- [1 x 100.00] and [2 x 100.00], no line below 90.00: 1 of 3 units is
-- free; by units its 100.00 would be 33.33 and 66.67, but the first line
-- can lose only 10.00: it takes 10.00, the second 90.00 (of its 110.00).
SELECT pg_temp.promos('[{"code": "2FOR1", "benefit": {"kind": "n_for_m", "buy": 2, "pay": 1}}]');
UPDATE loyalty.program SET min_line_price = 90 WHERE code = 'best';
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 100},
                             {"line": 2, "qty": 2, "price": 100}]');
SELECT l ->> 'line' AS line, l ->> 'discount' AS discount
  FROM loyalty.calculate('{"program": "best", "at": "2026-03-07T12:00:00+03:00",
                           "lines": [{"line": 1, "qty": 1, "price": 100}, {"line": 2, "qty": 2, "price": 100}]}') r,
       jsonb_array_elements(r -> 'lines') l;
-- Spreading compares a line's exact share with what it may take, before
-- rounding (docs/promotions.md, "Spreading").  5.00 off lines of 5.48,
-- 28.50 and 22.72, no line below 5.00: the first may lose 0.48 and its share
-- is 0.4832, so it takes 0.48 and 4.52 is spread over the others, 2.5151
-- and 2.0049: 2.52 and 2.00.  (Rounding all three first, 0.48, 2.51, 2.01.)
SELECT pg_temp.promos('[{"code": "R5", "benefit": {"kind": "receipt_off", "threshold": 0, "amount": 5}}]');
UPDATE loyalty.program SET min_line_price = 5 WHERE code = 'best';
SELECT l ->> 'line' AS line, l ->> 'discount' AS discount
  FROM loyalty.calculate('{"program": "best", "at": "2026-03-07T12:00:00+03:00",
                           "lines": [{"line": 1, "qty": 1, "price": 5.48}, {"line": 2, "qty": 1, "price": 28.50},
                                     {"line": 3, "qty": 1, "price": 22.72}]}') r,
       jsonb_array_elements(r -> 'lines') l;
UPDATE loyalty.program SET min_line_price = 0 WHERE code = 'best';

-- 5. Points paid are the customer's own.  A pizza programme: coins worth
-- 1.00, no line below 1.00, a cap of 30% on discounts and points.
BEGIN;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO loyalty.program (code, name, default_currency, min_line_price, accrual_rate_bp)
VALUES ('pizza', 'Pizza', 'coins', 1, 500);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'coins', 'Coins', 1 FROM loyalty.program WHERE code = 'pizza';
COMMIT;
SELECT loyalty.enroll('pizza', card => '20000001') IS NOT NULL AS enrolled;
-- 2 000 coins, valid from a day before the receipts' "at" and for ever
SELECT count(*) AS accrued
  FROM loyalty.customer c JOIN loyalty.program p ON p.id = c.program_id,
       LATERAL (SELECT loyalty.accrue(c.id, 'coins', 2000, valid_from => '2026-03-06T00:00:00+03:00')) a
 WHERE p.code = 'pizza';
-- A pizza of 1 000.00 and a drink of 100.00, "points": "max", and "any
-- pizza for 300 coins".  Without it, coins pay each line down to its floor:
-- 999 + 99 = 1 098 coins, 2.00 to pay, nothing saved.  With it, the pizza's
-- 300 coins pay 300.00 and it takes 699.00 off (to its floor), the drink
-- takes 99 coins: 399 coins, 2.00 to pay, 699.00 saved.  The reward
-- applies: "max" never costs the customer more than a smaller amount.
SELECT pg_temp.promos('[{"program": "pizza", "code": "PIZZA300", "benefit": {"kind": "fixed_price", "points": 300, "currency": "coins"}, "condition": "category = ''pizza''"}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 1000, "category": "pizza"},
                             {"line": 2, "qty": 1, "price": 100, "category": "drinks"}]',
                           '{"program": "pizza", "customer": {"card": "20000001"}, "points": "max"}');
SELECT r #> '{totals,points_spent}' AS spent
  FROM loyalty.calculate('{"program": "pizza", "customer": {"card": "20000001"}, "points": "max",
                           "at": "2026-03-07T12:00:00+03:00", "lines": [{"line": 1, "qty": 1, "price": 1000, "category": "pizza"},
                                     {"line": 2, "qty": 1, "price": 100, "category": "drinks"}]}') r;
-- Asking for 400 coins gives the same: 300 for the pizza, 99 for the drink.
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 1000, "category": "pizza"},
                             {"line": 2, "qty": 1, "price": 100, "category": "drinks"}]',
                           '{"program": "pizza", "customer": {"card": "20000001"}, "points": 400}');
-- Asking for 299 coins: the pizza's 300 are not there; the coins pay 299.
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 1000, "category": "pizza"},
                             {"line": 2, "qty": 1, "price": 100, "category": "drinks"}]',
                           '{"program": "pizza", "customer": {"card": "20000001"}, "points": 299}');
-- A price in points is a choice on each line.  "Any pizza for 100 coins",
-- 350 coins asked: 3 pizzas of 110.00 (300 coins, 300.00 paid by them,
-- 27.00 off to the floor of 3.00) and one of 1 000.00 (100 coins, 899.00
-- off).  Both lines offered: line 1 reserves its 300 coins first and line
-- 2's 100 are not left: 27.00 off.  Line 2 alone: 899.00 off, the coins
-- left pay line 1 down to its floor: 250 coins.  Asking for 100 coins
-- gives the same 899.00: a larger request never gives less.
SELECT pg_temp.promos('[{"program": "pizza", "code": "PIZZA100", "benefit": {"kind": "fixed_price", "points": 100, "currency": "coins"}, "condition": "category = ''pizza''"}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 3, "price": 110, "category": "pizza"},
                             {"line": 2, "qty": 1, "price": 1000, "category": "pizza"}]',
                           '{"program": "pizza", "customer": {"card": "20000001"}, "points": 350}');
SELECT l ->> 'line' AS line, l ->> 'discount' AS discount, l ->> 'points_amount' AS points_amount
  FROM loyalty.calculate('{"program": "pizza", "customer": {"card": "20000001"}, "points": 350,
                           "at": "2026-03-07T12:00:00+03:00", "lines": [{"line": 1, "qty": 3, "price": 110, "category": "pizza"},
                                     {"line": 2, "qty": 1, "price": 1000, "category": "pizza"}]}') r,
       jsonb_array_elements(r -> 'lines') l;
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 3, "price": 110, "category": "pizza"},
                             {"line": 2, "qty": 1, "price": 1000, "category": "pizza"}]',
                           '{"program": "pizza", "customer": {"card": "20000001"}, "points": 100}');
-- The exhaustive check enumerates at most 20 choices, and each line a price
-- in points may take is one: 21 pizza lines are refused (54000).
SELECT loyalty.calculate(jsonb_build_object('program', 'pizza', 'customer', '{"card": "20000001"}'::jsonb,
                                            'points', 350, 'search', 'exhaustive',
                                            'at', '2026-03-07T12:00:00+03:00',
                                            'lines', (SELECT jsonb_agg(jsonb_build_object('line', i, 'qty', 1, 'price', 100 + i,
                                                                                          'category', 'pizza'))
                                                        FROM generate_series(1, 21) i)));
-- Under a cap of 30%: a pizza of 1 000.00, 20% off it, "points": "max"
-- (2 000 coins).  Without the promotion: coins pay 300.00 (the cap), 700.00
-- to pay.  With it: 200.00 off, coins pay the 100.00 the cap leaves, 700.00
-- to pay: the same money, and 200 coins kept.  Points paid count nothing:
-- the promotion applies.
UPDATE loyalty.program SET max_discount_bp = 3000 WHERE code = 'pizza';
SELECT pg_temp.promos('[{"program": "pizza", "code": "OFF20", "benefit": {"kind": "percent_off", "percent": 20}, "condition": "category = ''pizza''"}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 1000, "category": "pizza"}]',
                           '{"program": "pizza", "customer": {"card": "20000001"}, "points": "max"}');

-- A promotion that gives nothing is not part of the best, even one that
-- could only add: a pizza of 27.20, "6 coins per 99.00" (0 coins here) and
-- an exclusive "any pizza for 19 coins".  The best is empty; the exclusive
-- one, joining it, is refused by the cap (19.00 in coins and 7.20 off pass
-- 30 % of 27.20): its reason is cap, not excluded_by_better.
SELECT pg_temp.promos('[{"program": "pizza", "code": "PIZZA19", "benefit": {"kind": "fixed_price", "points": 19, "currency": "coins"}, "condition": "category = ''pizza''", "exclusive": true, "priority": 1},
                        {"program": "pizza", "code": "EARN6", "benefit": {"kind": "points_per", "per": 99, "points": 6, "currency": "coins"}}]');
SELECT * FROM pg_temp.best('[{"line": 1, "qty": 1, "price": 27.20, "category": "pizza"}]',
                           '{"program": "pizza", "customer": {"card": "20000001"}, "points": "max"}');

DROP EXTENSION loyalty CASCADE;
