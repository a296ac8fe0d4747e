-- Validity windows: a lot stops counting at valid_to with nothing written;
-- pending lots; the touch and expire_due record expiry; the views.
CREATE EXTENSION loyalty;

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country, money_currency)
VALUES ('shop', 'Shop', 'bonus', 'RU', 'RUB');
INSERT INTO loyalty.currency (program_id, code, name, exponent, money_per_unit)
VALUES (1, 'bonus', 'Bonus', 0, 0.5);
COMMIT;
SELECT loyalty.enroll('shop', card => '4000 0012 3456', phone => '+79160000001') AS anna \gset
SELECT loyalty.enroll('shop', phone => '+79160000002') AS boris \gset
SELECT loyalty.enroll('shop', phone => '+79160000003') AS carol \gset
SELECT loyalty.enroll('shop', phone => '+79160000004') AS dave \gset

-- Lots of anna: 100 expiring in 10 days, 200 in 40 days, 300 never, 400 from
-- 20 days on.
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 100, valid_to => now() + interval '10 days');
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 200, valid_to => now() + interval '40 days');
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 300);
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 400, valid_from => now() + interval '20 days',
                                  valid_to => now() + interval '100 days');
SELECT balance, pending, next_expiry_amount, version FROM loyalty.balance(:anna);
SELECT program, balance, pending, expiring_30d, next_expiry_amount, stored_balance, version
  FROM loyalty.balances;

-- At exactly valid_to the lot no longer counts; a microsecond before, it does.
BEGIN;
UPDATE loyalty.lot SET valid_from = now() - interval '10 days', valid_to = now() WHERE id = 1;
SELECT balance, next_expiry_amount FROM loyalty.balance(:anna);
UPDATE loyalty.lot SET valid_to = now() + interval '1 microsecond' WHERE id = 1;
SELECT balance, next_expiry_amount FROM loyalty.balance(:anna);
ROLLBACK;

-- Ten days later: nothing was written at the expiry, but it no longer counts.
SELECT pg_temp.travel(interval '10 days 1 second');
SELECT count(*) AS entries FROM loyalty.ledger;
SELECT balance, pending, version FROM loyalty.balance(:anna);
SELECT balance, stored_balance FROM loyalty.balances WHERE customer_id = :anna;
-- expired points cannot be spent
SELECT state, message FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 501)$$);
-- any operation records the wallet's expired lots first, then itself
SELECT version, operation, amount FROM loyalty.redeem(:anna, 'bonus', 50);
SELECT version, operation, amount, balance_after, lot_id, reason FROM loyalty.ledger
 WHERE customer_id = :anna AND version > 4 ORDER BY version;
SELECT id, remaining FROM loyalty.lot WHERE id = 1;
SELECT lot_id, amount FROM loyalty.lot_usage WHERE version = 5;
SELECT next_expiry = (SELECT valid_to FROM loyalty.lot WHERE id = 2) AS next_expiry_is_lot_2
  FROM loyalty.wallet WHERE customer_id = :anna;

-- Ten days later the pending lot counts.
SELECT pg_temp.travel(interval '10 days');
SELECT balance, pending FROM loyalty.balance(:anna);

-- expire_due records what nobody touched: in batches, each lot once.
-- (a call does whole wallets: it may pass batch_limit by the last wallet's lots)
SELECT lot_id FROM loyalty.accrue(:boris, 'bonus', 10, valid_to => now() + interval '1 day');
SELECT lot_id FROM loyalty.accrue(:boris, 'bonus', 15, valid_to => now() + interval '4 days');
SELECT lot_id FROM loyalty.accrue(:carol, 'bonus', 20, valid_to => now() + interval '2 days');
SELECT lot_id FROM loyalty.accrue(:dave, 'bonus', 30, valid_to => now() + interval '3 days');
SELECT lot_id FROM loyalty.accrue(:dave, 'bonus', 35);
SELECT pg_temp.travel(interval '40 days');
SELECT customer_id, count(*) AS due FROM loyalty.lot
 WHERE remaining > 0 AND valid_to <= now() GROUP BY customer_id ORDER BY customer_id;
SELECT loyalty.expire_due(batch_limit => 1) AS first_batch;
SELECT loyalty.expire_due(batch_limit => 10, time_budget => interval '5 seconds') AS second_batch;
SELECT loyalty.expire_due() AS nothing_left;
SELECT customer_id, version, operation, amount, balance_after, lot_id FROM loyalty.ledger
 WHERE operation = 'expire' ORDER BY customer_id, version;
SELECT customer_id, balance, next_expiry IS NULL AS nothing_expires FROM loyalty.wallet ORDER BY customer_id;
SELECT customer_id, balance, stored_balance FROM loyalty.balances ORDER BY customer_id;
SELECT state, message FROM pg_temp.err($$SELECT loyalty.expire_due(0)$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.expire_due(-1)$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.expire_due(10, interval '0')$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.release_expired_holds(10, interval '-1 second')$$);

-- The readable ledger and the programme's liability in money.
SELECT program, customer_id, card, phone, version, operation, amount, balance_after
  FROM loyalty.ledger_entries WHERE customer_id = :anna ORDER BY version;
SELECT * FROM loyalty.liability;

-- Every view and every column carries a comment.
SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind = 'v' AND a.attnum > 0
   AND col_description(c.oid, a.attnum) IS NULL;
SELECT relname FROM pg_class WHERE relnamespace = 'loyalty'::regnamespace AND relkind = 'v'
   AND obj_description(oid, 'pg_class') IS NULL;

DROP EXTENSION loyalty;
