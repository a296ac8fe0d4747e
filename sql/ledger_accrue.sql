-- accrue: a lot and a ledger entry; windows, kinds, restrictions, keys; bad input.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql
-- What is written, to show that a refused call wrote nothing.
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
    SELECT format('wallets %s, entries %s, lots %s, usages %s, holds %s, balance %s',
                  (SELECT count(*) FROM loyalty.wallet), (SELECT count(*) FROM loyalty.ledger),
                  (SELECT count(*) FROM loyalty.lot), (SELECT count(*) FROM loyalty.lot_usage),
                  (SELECT count(*) FROM loyalty.hold),
                  (SELECT coalesce(sum(balance), 0) FROM loyalty.wallet))
$$;

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country) VALUES ('shop', 'Shop', 'bonus', 'RU');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
SELECT loyalty.enroll('shop', phone => '+79160000001') AS anna \gset
SELECT loyalty.enroll('shop', phone => '+79160000002') AS boris \gset

-- The first accrual creates the wallet; each entry is the wallet's next version.
SELECT version, operation, amount, balance_after, held_after, lot_id, receipt_id, reason
  FROM loyalty.accrue(:anna, 'bonus', 1000, receipt => 'R-1', reason => 'purchase');
SELECT version, operation, amount, balance_after, lot_id
  FROM loyalty.accrue(:anna, 'bonus', 250, valid_to => now() + interval '30 days',
                      kind => 'birthday', priority => 5);
SELECT version, operation, amount, balance_after, lot_id
  FROM loyalty.accrue(:anna, 'bonus', 300, restriction => 'ski', kind => 'product');
-- a future-dated lot is pending: in the stored balance, not in the effective one
SELECT version, operation, amount, balance_after, lot_id
  FROM loyalty.accrue(:anna, 'bonus', 40, valid_from => now() + interval '1 day');
SELECT id, amount, remaining, kind, priority, restriction, created_version,
       valid_from = created_at AS from_creation, valid_to - created_at AS lasts
  FROM loyalty.lot ORDER BY id;
SELECT balance, held, version,
       next_expiry = (SELECT valid_to FROM loyalty.lot WHERE kind = 'birthday') AS next_expiry_is_birthday
  FROM loyalty.wallet WHERE customer_id = :anna;
SELECT currency, balance, held, available, pending, restricted, next_expiry_amount, version
  FROM loyalty.balance(:anna);

-- An idempotency key: the repeat returns the first entry and writes nothing.
SELECT version, amount, balance_after, idempotency_key FROM loyalty.accrue(:boris, 'bonus', 70, idempotency_key => 'k-1');
SELECT pg_temp.counts() AS before_replay;
SELECT version, amount, balance_after, idempotency_key FROM loyalty.accrue(:boris, 'bonus', 70, idempotency_key => 'k-1');
SELECT pg_temp.counts() AS after_replay;
-- the same key for something else is refused
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(2, 'bonus', 71, idempotency_key => 'k-1')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 70, idempotency_key => 'k-1')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(2, 'bonus', 70, idempotency_key => 'k-1')$$);

-- Bad input: a specific SQLSTATE, a clear message, and nothing written.
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 0)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', -5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(NULL, 'bonus', 5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, NULL, 5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(999, 'bonus', 5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'gold', 5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, valid_from => now() + interval '2 days', valid_to => now() + interval '1 day')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, valid_to => now())$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, valid_to => now() - interval '1 day')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, valid_from => now() - interval '2 days', valid_to => now() - interval '1 day')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, valid_to => 'infinity')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, valid_from => '-infinity')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, kind => 'Birthday!')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, kind => NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, restriction => '')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(1, 'bonus', 5, idempotency_key => '')$$);
-- the largest balance is the largest bigint; one point more is refused
SELECT balance_after FROM loyalty.accrue(:boris, 'bonus', 9223372036854775807 - 70);
SELECT pg_temp.counts() AS at_the_top;
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(2, 'bonus', 1)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.accrue(2, 'bonus', 9223372036854775807)$$);
SELECT pg_temp.counts() AS after_errors;

-- A merged customer takes no more points; the hint names the account to use.
SELECT loyalty.enroll('shop', phone => '+79160000003') AS carol \gset
SELECT loyalty.merge_customers('shop', :carol, :anna, 'same person');
SELECT * FROM pg_temp.err(format('SELECT loyalty.accrue(%s, %L, 5)', :carol, 'bonus'));

-- The ledger is append-only.
SELECT * FROM pg_temp.err($$UPDATE loyalty.ledger SET amount = 1000000$$);
SELECT * FROM pg_temp.err($$DELETE FROM loyalty.ledger$$);
SELECT * FROM pg_temp.err($$TRUNCATE loyalty.ledger$$);
-- lot usage is kept in the entries; its view cannot be written
SELECT * FROM pg_temp.err($$DELETE FROM loyalty.lot_usage$$);

DROP EXTENSION loyalty;
