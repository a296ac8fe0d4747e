-- redeem: which lots pay, lot usage, exact balance, restrictions, pending
-- points, holds, expected_version, account status, keys; bad input.
CREATE EXTENSION loyalty;

\i test/regress/helpers.psql
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
    SELECT format('entries %s, usages %s, lots left %s, balance %s',
                  (SELECT count(*) FROM loyalty.ledger), (SELECT count(*) FROM loyalty.lot_usage),
                  (SELECT sum(remaining) FROM loyalty.lot),
                  (SELECT coalesce(sum(balance), 0) FROM loyalty.wallet))
$$;

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country) VALUES ('shop', 'Shop', 'bonus', 'RU');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
SELECT loyalty.enroll('shop', phone => '+79160000001') AS anna \gset

-- Lots: 1 regular (never expires), 2 expires at midnight in 21 days, 3 in 10
-- days, 4 at the same instant as 2 with a higher priority, 5 is for skis only,
-- 6 is pending.
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 100);
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 100, valid_to => date_trunc('day', now()) + interval '21 days');
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 100, valid_to => now() + interval '10 days', kind => 'birthday');
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 100, valid_to => date_trunc('day', now()) + interval '21 days', priority => 9);
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 100, restriction => 'ski', kind => 'product');
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 100, valid_from => now() + interval '1 day');
SELECT balance, held, available, pending, restricted, version FROM loyalty.balance(:anna);

-- Soonest to expire first (3), then higher priority among equal expiry (4 before 2).
SELECT version, operation, amount, balance_after, receipt_id
  FROM loyalty.redeem(:anna, 'bonus', 150, receipt => 'R-1');
SELECT lot_id, amount FROM loyalty.lot_usage WHERE version = 7 ORDER BY lot_id;
SELECT version, amount, balance_after FROM loyalty.redeem(:anna, 'bonus', 100);
SELECT lot_id, amount FROM loyalty.lot_usage WHERE version = 8 ORDER BY lot_id;
SELECT id, remaining FROM loyalty.lot ORDER BY id;

-- The ski lot is spent only where the caller says it applies, and then first.
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 151)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 151, applicable => '{snowboard}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 251, applicable => '{ski}')$$);
SELECT version, amount, balance_after FROM loyalty.redeem(:anna, 'bonus', 120, applicable => '{snowboard,ski}');
SELECT lot_id, amount FROM loyalty.lot_usage WHERE version = 9 ORDER BY lot_id;

-- Exactly the balance: the effective balance reaches zero; pending points stay.
SELECT balance, available, pending FROM loyalty.balance(:anna);
SELECT version, amount, balance_after FROM loyalty.redeem(:anna, 'bonus', 130);
SELECT balance, available, pending FROM loyalty.balance(:anna);
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 1)$$);
SELECT pg_temp.counts() AS after;

-- expected_version: the version the till read; another one is a retryable conflict.
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 500);
SELECT version AS seen FROM loyalty.balance(:anna) \gset
SELECT :seen AS seen;
SELECT * FROM pg_temp.err(format('SELECT loyalty.redeem(1, %L, 10, expected_version => %s)', 'bonus', :seen - 1));
SELECT version, amount, balance_after FROM loyalty.redeem(:anna, 'bonus', 10, expected_version => :seen);

-- Idempotency: the repeat returns the first entry and writes nothing.
SELECT version, amount, balance_after FROM loyalty.redeem(:anna, 'bonus', 20, idempotency_key => 'till-7/123');
SELECT pg_temp.counts() AS before_replay;
SELECT version, amount, balance_after FROM loyalty.redeem(:anna, 'bonus', 20, idempotency_key => 'till-7/123');
-- even when the points are gone meanwhile or expected_version is stale
SELECT version, amount, balance_after FROM loyalty.redeem(:anna, 'bonus', 20, expected_version => 1, idempotency_key => 'till-7/123');
SELECT pg_temp.counts() AS after_replay;
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 21, idempotency_key => 'till-7/123')$$);

-- Accounts that may not spend: blocked, on fraud hold.
UPDATE loyalty.customer SET status = 'fraud_hold' WHERE id = :anna;
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 5)$$);
UPDATE loyalty.customer SET status = 'blocked' WHERE id = :anna;
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 5)$$);
-- they still earn
SELECT version, amount FROM loyalty.accrue(:anna, 'bonus', 5);
UPDATE loyalty.customer SET status = 'active' WHERE id = :anna;

-- Bad input.
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 0)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', -100)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', -9223372036854775808)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 9223372036854775807)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'nope', 5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(42, 'bonus', 5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 5, applicable => '{{a},{b}}')$$);
SELECT pg_temp.counts() AS after;

-- A customer with no wallet yet has nothing to spend.
SELECT loyalty.enroll('shop', phone => '+79160000002') AS boris \gset
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(2, 'bonus', 1)$$);
SELECT currency, balance, version FROM loyalty.balance(:boris);

DROP EXTENSION loyalty;
