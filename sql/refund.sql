-- loyalty.refund: returning some lines of a committed receipt, in part or
-- whole: each line's share of the money, of the points that paid it (back
-- to the same lots) and of the points it earned (off the queue, or taken
-- back from the wallet), cumulative so that parts add up; a refund after
-- the earned points were spent (a debt the next accrual pays, or money
-- withheld); replays; and every bad input with its SQLSTATE.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('shop', 'Shop', 'bonus', 1000);                      -- 10% back at once; shortfalls owed
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, refund_shortfall)
VALUES ('cash', 'Cash', 'bonus', 1000, 'money');            -- shortfalls kept from the money
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (2, 'bonus', 'Bonus', 0.5);
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay)
VALUES ('late', 'Late', 'bonus', 1000, '1 day');            -- 10% back a day later
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (3, 'bonus', 'Bonus', 1);
COMMIT;
SELECT loyalty.enroll('shop', card => '10000001') AS anna \gset
SELECT loyalty.enroll('cash', card => '10000002') AS boris \gset
SELECT loyalty.enroll('late', card => '10000003') AS vera \gset
-- anna has two lots of 300 points: one expires in a week, one never
SELECT (loyalty.accrue(:anna, 'bonus', 300, valid_to => now() + interval '7 days')).version;
SELECT (loyalty.accrue(:anna, 'bonus', 300)).version;

CREATE FUNCTION pg_temp.buy(program text, id text, card text, lines jsonb, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT loyalty.commit(jsonb_build_object('program', program, 'receipt_id', id,
                                             'customer', jsonb_build_object('card', card), 'lines', lines) || extra)
$$;
CREATE FUNCTION pg_temp.entries(c bigint, after bigint DEFAULT 0)
RETURNS TABLE (version bigint, operation text, amount bigint, balance_after bigint, lot_ids bigint[],
               lot_amounts bigint[], reason text)
LANGUAGE sql AS $$
    SELECT version, operation, amount, balance_after, lot_ids, lot_amounts, reason
      FROM loyalty.ledger WHERE customer_id = c AND version > after ORDER BY version
$$;
CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS TABLE (status text, money numeric, withheld numeric,
                                                        returned jsonb, taken jsonb, debt jsonb, lines jsonb)
LANGUAGE sql AS $$
    SELECT r ->> 'status', (r ->> 'money')::numeric, (r ->> 'money_withheld')::numeric,
           r -> 'points_returned', r -> 'points_taken', r -> 'debt', r -> 'lines'
$$;

-- 1. Anna buys a jacket (1 x 1000.00) and three pairs of socks (3 x 100.00)
-- with her 600 points, spread over the lines in proportion to what they
-- cost: each lot's 300 pays 231 of the jacket and 69 of the socks.
SELECT pg_temp.buy('shop', 'R1', '10000001',
                   '[{"line": 1, "qty": 1, "price": 1000}, {"line": 2, "qty": 3, "price": 100}]',
                   '{"points": "max"}') #> '{commit,points_spent}' AS spent;
SELECT line, qty, amount, points_money, to_pay, points_paid, points_earned -> 0 -> 'points' AS earned
  FROM loyalty.receipt_line ORDER BY line;
SELECT * FROM pg_temp.entries(:anna);

-- 2. One pair of socks back: a third of the line's money, of the points that
-- paid it (back to their lots, 23 each) and of what it earned.
SELECT * FROM pg_temp.summary(loyalty.refund('shop', 'R1', '[{"line": 2, "qty": 1}]', 'RET-1'));
SELECT * FROM pg_temp.entries(:anna, 4);
-- the two other pairs: the line's shares add up to what it cost and earned
SELECT * FROM pg_temp.summary(loyalty.refund('shop', 'R1', '[{"line": 2}]', 'RET-2'));
SELECT sum(money) AS money_back, sum((points_taken ->> 'bonus')::bigint) AS points_back
  FROM loyalty.receipt_refund WHERE receipt_id = 'R1';
SELECT line, qty, refunded_qty FROM loyalty.receipt_line ORDER BY line;
SELECT status FROM loyalty.receipt WHERE receipt_id = 'R1';
-- the line is returned: once more is refused, and nothing is written
SELECT count(*) AS entries_before FROM loyalty.ledger \gset
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R1', '[{"line": 2, "qty": 1}]', 'RET-3')$$);
-- the same refund again (the till timed out): its first result, nothing written
SELECT loyalty.refund('shop', 'R1', '[{"line": 2}]', 'RET-2') -> 'replayed' AS replayed;
SELECT public.loyalty_refund('shop', 'R1', '[{"line": 2}]', 'RET-2') ->> 'status' AS status;
SELECT count(*) = :entries_before AS nothing_written FROM loyalty.ledger;
-- the same refund id with other lines is refused
SELECT state, message FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R1', '[{"line": 1}]', 'RET-2')$$);
-- a receipt refunded in part cannot be cancelled
SELECT * FROM pg_temp.err($$SELECT loyalty.cancel('shop', 'R1')$$);

-- 3. The jacket back: the 462 points that paid it go back to their lots
-- (231 each: the lot expiring in a week has its 300 back), and the 54 it
-- earned are taken back; the receipt is refunded in full.
SELECT * FROM pg_temp.summary(loyalty.refund('shop', 'R1', '[{"line": 1, "qty": 1}]', 'RET-4', 'damaged'));
SELECT * FROM pg_temp.entries(:anna, 6);
SELECT id, amount, remaining, valid_to IS NOT NULL AS expires, live FROM loyalty.lot
 WHERE customer_id = :anna AND id <= 2 ORDER BY id;
SELECT status FROM loyalty.receipt WHERE receipt_id = 'R1';
SELECT sum(money) AS money_back, sum(money_withheld) AS withheld FROM loyalty.receipt_refund WHERE receipt_id = 'R1';
SELECT sum(amount) AS net_points_of_r1 FROM loyalty.ledger WHERE receipt_id = 'R1';

-- 4. A refund after the earned points were spent.  refund_shortfall =
-- debt: Anna buys skis with money, earns 100, spends everything; the skis
-- come back: the wallet has nothing to give, so she owes 100, and her next
-- accrual pays the debt first.
SELECT pg_temp.buy('shop', 'R2', '10000001', '[{"line": 1, "qty": 1, "price": 1000}]') #> '{commit,points_earned}' AS earned;
SELECT (loyalty.redeem(:anna, 'bonus', 700)).balance_after;
SELECT version AS v FROM loyalty.wallet WHERE customer_id = :anna \gset
SELECT * FROM pg_temp.summary(loyalty.refund('shop', 'R2', '[{"line": 1}]', 'R2-RET'));
SELECT * FROM pg_temp.entries(:anna, :v);
SELECT balance, debt FROM loyalty.wallet WHERE customer_id = :anna;
SELECT (loyalty.accrue(:anna, 'bonus', 150)).version;
SELECT * FROM pg_temp.entries(:anna, :v + 1);
SELECT balance, debt FROM loyalty.wallet WHERE customer_id = :anna;
SELECT lot_id, amount FROM loyalty.lot_usage WHERE customer_id = :anna AND version = :v + 3;
-- refund_shortfall = money: Boris earns 200 points (worth 0.50 each) on two
-- pairs of boots and spends 150; one pair back should take 100 back, the
-- wallet has 50: the other 50 are worth 25.00, kept from the 500.00.
SELECT pg_temp.buy('cash', 'C1', '10000002', '[{"line": 1, "qty": 2, "price": 500}]') #> '{commit,points_earned}' AS earned;
SELECT (loyalty.redeem(:boris, 'bonus', 150)).balance_after;
SELECT * FROM pg_temp.summary(loyalty.refund('cash', 'C1', '[{"line": 1, "qty": 1}]', 'C1-R'));
SELECT balance, debt FROM loyalty.wallet WHERE customer_id = :boris;
SELECT money, money_withheld FROM loyalty.receipt_refund WHERE receipt_id = 'C1';

-- 5. A queued accrual: the return takes the points off the queue.
SELECT pg_temp.buy('late', 'L1', '10000003', '[{"line": 1, "qty": 4, "price": 250}]') #>> '{commit,accrual}' AS accrual;
SELECT * FROM pg_temp.summary(loyalty.refund('late', 'L1', '[{"line": 1, "qty": 1}]', 'L1-R'));
SELECT receipt_id, amount FROM loyalty.accrual_queue;
SELECT * FROM pg_temp.summary(loyalty.refund('late', 'L1', '[{"line": 1, "qty": 3}]', 'L1-R2'));
SELECT count(*) AS queued FROM loyalty.accrual_queue;
SELECT count(*) AS entries FROM loyalty.ledger WHERE customer_id = :vera;

-- 6. Bad input: a specific SQLSTATE each, and nothing written.
SELECT pg_temp.buy('shop', 'R9', '10000001', '[{"line": 1, "qty": 2, "price": 100}]') #>> '{commit,status}' AS status;
SELECT count(*) AS entries_before FROM loyalty.ledger \gset
SELECT * FROM pg_temp.err($$SELECT loyalty.refund(NULL, 'R9', '[{"line": 1}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', NULL, 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1}]', NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1}]', '')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('nope', 'R9', '[{"line": 1}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'never', '[{"line": 1}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '{"line": 1}', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": "one"}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1.5}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 7}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1}, {"line": 1}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1, "qty": 0}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1, "qty": "1"}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1, "qty": 3}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1, "qty": -1}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[1]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1}, {"qty": 1}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 3000000000}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '"line 1"', 'X')$$);
-- refund_id counts characters, not bytes: 129 of them are too many
SELECT * FROM pg_temp.err(format($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1}]', %L)$$, repeat('é', 129)));
SELECT count(*) = :entries_before AS nothing_written FROM loyalty.ledger;
SELECT count(*) AS refunds_of_r9 FROM loyalty.receipt_refund WHERE receipt_id = 'R9';
-- a cancelled receipt has nothing to refund
SELECT loyalty.cancel('shop', 'R9') ->> 'status' AS status;
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'R9', '[{"line": 1}]', 'X')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.take_back(1, 'bonus', 1, 1, NULL, NULL, 'maybe')$$);

-- 7. A line named by a whole number written with decimals is that line; a
-- quantity finer than the sale's is returned in exact cumulative shares:
-- 1.5 of 3 gives back half of what the line cost, the other 1.5 the rest.
SELECT pg_temp.buy('shop', 'R10', '10000002', '[{"line": 1, "qty": 3, "price": 101}]') #>> '{commit,status}' AS status;
SELECT r -> 'lines' AS lines, r -> 'money' AS money, r ->> 'status' AS status
  FROM loyalty.refund('shop', 'R10', '[{"line": 1.0, "qty": 1.5}]', 'R10-A') r;
SELECT r -> 'lines' AS lines, r -> 'money' AS money, r ->> 'status' AS status
  FROM loyalty.refund('shop', 'R10', '[{"line": 1}]', 'R10-B') r;
SELECT line_qty, line_refunded_qty, line_to_pay, status FROM loyalty.receipt WHERE receipt_id = 'R10';
SELECT sum(money) AS money_back FROM loyalty.receipt_refund WHERE receipt_id = 'R10';

DROP EXTENSION loyalty CASCADE;
