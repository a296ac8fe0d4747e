-- What a return breaks: the lines kept are recomputed with the receipt's own
-- promotions (loyalty.recompute, as committed), the discount they no longer
-- earn is kept back from the money (and given back when a later return ends
-- the loss), and the counters of promotions that no longer hold are given
-- back.  Returned in parts, a receipt gives back exactly what was paid.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('shop', 'Shop', 'bonus', 0);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
INSERT INTO loyalty.product (program_id, sku, name, category, brand) VALUES
    (1, 'SOCK', 'Socks', 'textile/socks', 'Wool'),
    (1, 'CAP', 'Cap', 'textile/caps', 'Wool'),
    (1, 'TENT', 'Tent', 'camping/tents', 'Alp'),
    (1, 'MUG', 'Mug', 'camping/mugs', 'Alp');
SELECT loyalty.enroll('shop', card => '10000001') AS anna \gset
-- socks: 3 for 2, ten times a month per customer; camping: 100 off from 1000
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, audience,
                               limit_per_customer, limit_period)
VALUES (1, 'SOCKS3', 'Socks: 3 for 2', 'active', 'category <@ ''textile/socks''',
        '{"kind": "n_for_m", "buy": 3, "pay": 2}', 'all', 10, 'month'),
       (1, 'CAMP100', 'Camping: 100 off from 1000', 'active', 'category <@ ''camping''',
        '{"kind": "receipt_off", "threshold": 1000, "amount": 100}', 'all', NULL, NULL);

CREATE FUNCTION pg_temp.buy(id text, lines jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT loyalty.commit(jsonb_build_object('program', 'shop', 'receipt_id', id,
                                             'customer', '{"card": "10000001"}'::jsonb, 'lines', lines))
$$;
CREATE FUNCTION pg_temp.back(id text, lines jsonb, refund_id text) RETURNS TABLE (
    status text, money numeric, discount_withheld numeric, counters_returned jsonb, line_money jsonb)
LANGUAGE sql AS $$
    SELECT r ->> 'status', (r ->> 'money')::numeric, (r ->> 'discount_withheld')::numeric,
           (SELECT COALESCE(jsonb_agg(c -> 'promotion_id'), '[]') FROM jsonb_array_elements(r -> 'counters_returned') c),
           (SELECT jsonb_agg(l -> 'money') FROM jsonb_array_elements(r -> 'lines') l)
      FROM loyalty.refund('shop', id, lines, refund_id) r
$$;

-- 1. Three pairs of socks at 100, 3 for 2: one unit is free, all three at
-- one price, so its 100.00 is shared by the lines (33.34, 33.33 and
-- 33.33 off); 200.00 paid.  The socks' counter counts one use.
SELECT pg_temp.buy('S1', '[{"line": 1, "sku": "SOCK", "qty": 1, "price": 100},
                           {"line": 2, "sku": "SOCK", "qty": 1, "price": 100},
                           {"line": 3, "sku": "SOCK", "qty": 1, "price": 100}]') -> 'totals' AS totals;
SELECT line, discount, to_pay FROM loyalty.receipt_line WHERE receipt_id = 'S1' ORDER BY line;
SELECT uses, money FROM loyalty.counter WHERE customer_id = :anna;

-- 2. The first pair back: its share is 66.66, but the two kept no longer
-- make 3 for 2 and lose the 66.66 of discount they had: 0.00 back, 66.66
-- kept back.  The
-- promotion no longer holds, so its use goes back to the counter.
SELECT * FROM pg_temp.back('S1', '[{"line": 1}]', 'RET-1');
SELECT uses, money FROM loyalty.counter WHERE customer_id = :anna;
SELECT discount_lost, counters -> 0 ->> 'returned' AS counter_returned_by FROM loyalty.receipt WHERE receipt_id = 'S1';

-- 3. The second pair back: its share 66.67; the pair kept still lacks its
-- 33.33 of discount, of the 66.66 kept back: 33.33 of it comes back with
-- the share, 100.00.  The
-- counter is not given back twice.
SELECT * FROM pg_temp.back('S1', '[{"line": 2}]', 'RET-2');
SELECT uses, money FROM loyalty.counter WHERE customer_id = :anna;

-- 4. The last pair: its share is 66.67, and with nothing kept nothing is
-- lost any more: the 33.33 still kept back comes back, 100.00.  Everything
-- returned, everything paid came back: 0 + 100 + 100 = 200.
SELECT * FROM pg_temp.back('S1', '[{"line": 3}]', 'RET-3');
SELECT sum(money) AS refunded, (SELECT to_pay FROM loyalty.receipt WHERE receipt_id = 'S1') AS paid,
       sum(discount_withheld) AS withheld_in_all
  FROM loyalty.receipt_refund WHERE receipt_id = 'S1';
SELECT discount_lost FROM loyalty.receipt WHERE receipt_id = 'S1';

-- 5. A threshold: a tent (950) and a mug (150) come to 1100, 100 off
-- spread (86.36 and 13.64).  The mug back: its share is 136.36, and the tent
-- alone (950) is under 1000, so it loses its 86.36: 50.00 back.
SELECT pg_temp.buy('C1', '[{"line": 1, "sku": "TENT", "qty": 1, "price": 950},
                           {"line": 2, "sku": "MUG", "qty": 1, "price": 150}]') -> 'totals' AS totals;
SELECT line, discount, to_pay FROM loyalty.receipt_line WHERE receipt_id = 'C1' ORDER BY line;
SELECT * FROM pg_temp.back('C1', '[{"line": 2}]', 'RET-1');
-- the same return again is a replay: the same money, nothing kept back twice
SELECT (loyalty.refund('shop', 'C1', '[{"line": 2}]', 'RET-1') ->> 'money')::numeric AS replayed_money;
SELECT discount_lost FROM loyalty.receipt WHERE receipt_id = 'C1';
-- the tent too: 863.64 + 86.36 kept back before = 950.00; in all 1000.00 = paid
SELECT * FROM pg_temp.back('C1', '[{"line": 1}]', 'RET-2');
SELECT sum(money) AS refunded FROM loyalty.receipt_refund WHERE receipt_id = 'C1';

-- 6. A return that breaks nothing: two mugs (2 x 300) and a tent (900) come
-- to 1500, 100 off; one mug back leaves 1200, still over 1000: its own
-- share only, nothing kept back.
SELECT pg_temp.buy('C2', '[{"line": 1, "sku": "TENT", "qty": 1, "price": 900},
                           {"line": 2, "sku": "MUG", "qty": 2, "price": 300}]') -> 'totals' AS totals;
SELECT * FROM pg_temp.back('C2', '[{"line": 2, "qty": 1}]', 'RET-1');

-- 7. More lost than this return gives: six pairs on one line (two
-- 3-for-2s, 200 off, 66.67 a pair), one back leaves five (one 3-for-2):
-- the five lose 100 - 33.33 = 66.66 of the discount they had, all of the
-- pair's share, so 0.00 back.
SELECT pg_temp.buy('S2', '[{"line": 1, "sku": "SOCK", "qty": 6, "price": 100}]') -> 'totals' AS totals;
SELECT * FROM pg_temp.back('S2', '[{"line": 1, "qty": 1}]', 'RET-1');
SELECT discount_lost FROM loyalty.receipt WHERE receipt_id = 'S2';
-- two more back leave three (still one 3-for-2, 100 off, as they had):
-- nothing lost any more, their share 133.34 and the 66.66 kept: 200.00;
-- the last three give back 200.00 and the promotion's counter use
SELECT * FROM pg_temp.back('S2', '[{"line": 1, "qty": 2}]', 'RET-2');
SELECT * FROM pg_temp.back('S2', '[{"line": 1}]', 'RET-3');
SELECT sum(money) AS refunded, (SELECT to_pay FROM loyalty.receipt WHERE receipt_id = 'S2') AS paid
  FROM loyalty.receipt_refund WHERE receipt_id = 'S2';

-- 8. The promotion ended since: the receipt is recomputed with it as it
-- was committed (its window and status are not asked again).  Four pairs,
-- one free; one back leaves three, still 3 for 2: nothing kept back, the
-- pair's share (75.00) only.
SELECT pg_temp.buy('S3', '[{"line": 1, "sku": "SOCK", "qty": 4, "price": 100}]') -> 'totals' AS totals;
UPDATE loyalty.promotion SET status = 'ended', active = tstzrange(now() - interval '1 day', now())
 WHERE code = 'SOCKS3';
SELECT * FROM pg_temp.back('S3', '[{"line": 1, "qty": 1}]', 'RET-1');
UPDATE loyalty.promotion SET status = 'active', active = tstzrange(now() - interval '1 day', NULL)
 WHERE code = 'SOCKS3';

-- 9. A receipt committed before the document was kept (version 0.8) is
-- not recomputed: each line gives back its own share (a third of 200.00).
SELECT pg_temp.buy('S4', '[{"line": 1, "sku": "SOCK", "qty": 3, "price": 100}]') -> 'totals' AS totals;
UPDATE loyalty.receipt SET document = NULL WHERE receipt_id = 'S4';
SELECT * FROM pg_temp.back('S4', '[{"line": 1, "qty": 1}]', 'RET-1');

-- 10. Lines sent without numbers are numbered by their place: the first
-- pair back from three leaves two that lose their discount.
SELECT loyalty.commit(jsonb_build_object('program', 'shop', 'receipt_id', 'S5', 'customer', '{"card": "10000001"}'::jsonb,
                                         'lines', '[{"sku": "SOCK", "qty": 1, "price": 100}, {"sku": "SOCK", "qty": 1, "price": 100},
                                                    {"sku": "SOCK", "qty": 1, "price": 100}]'::jsonb)) -> 'totals' AS totals;
SELECT * FROM pg_temp.back('S5', '[{"line": 1}]', 'RET-1');

-- 11. loyalty.recompute itself: only the promotions named, as committed.
SELECT loyalty.recompute('{"program": "shop", "lines": [{"line": 1, "sku": "SOCK", "qty": 3, "price": 100}]}',
                         ARRAY[(SELECT id FROM loyalty.promotion WHERE code = 'SOCKS3')]) -> 'totals' AS with_socks3;
SELECT loyalty.recompute('{"program": "shop", "lines": [{"line": 1, "sku": "SOCK", "qty": 3, "price": 100}]}',
                         '{}') -> 'totals' AS with_none;
-- a receipt committed before 0.11 may hold an "at" without its offset (then
-- read in the session's time zone): its return still recomputes, though
-- calculate now refuses such an "at"
SELECT loyalty.recompute('{"program": "shop", "at": "2026-03-07 12:30:00", "lines": [{"line": 1, "sku": "SOCK", "qty": 3, "price": 100}]}',
                         '{}') -> 'totals' -> 'amount' AS old_at_recomputed;
SELECT state FROM pg_temp.err($$SELECT loyalty.calculate('{"program": "shop", "at": "2026-03-07 12:30:00", "lines": [{"line": 1, "qty": 1, "price": 1}]}')$$);
SELECT loyalty.recompute(NULL, '{}') IS NULL AS strict;
SELECT * FROM pg_temp.err($$SELECT loyalty.recompute('{"program": "shop", "lines": []}', '{{1}}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.recompute('{"program": "shop", "lines": []}', '{1,NULL}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.recompute('{"program": "nope", "lines": []}', '{1}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.recompute('[]', '{1}')$$);
SELECT has_function_privilege('public', 'loyalty.recompute(jsonb, bigint[])', 'execute') AS public_may_call;

DROP EXTENSION loyalty CASCADE;
