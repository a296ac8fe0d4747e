-- hold, capture, release: reservation, partial capture, one resolution per
-- hold, deadlines that stop counting on every read, the tidying job; bad input.
CREATE EXTENSION loyalty;

\i test/regress/helpers.psql
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
    SELECT format('entries %s, holds %s, balance %s, held %s',
                  (SELECT count(*) FROM loyalty.ledger), (SELECT count(*) FROM loyalty.hold),
                  (SELECT sum(balance) FROM loyalty.wallet), (SELECT sum(held) FROM loyalty.wallet))
$$;

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country) VALUES ('shop', 'Shop', 'bonus', 'RU');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
SELECT loyalty.enroll('shop', phone => '+79160000001') AS anna \gset
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 1000);
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 200, restriction => 'ski');

-- A hold counts against what may be spent at once.
SELECT loyalty.hold(:anna, 'bonus', 300, receipt => 'R-1') AS h1 \gset
SELECT version, operation, amount, held_amount, balance_after, held_after, hold_id, receipt_id
  FROM loyalty.ledger WHERE version = 3;
SELECT balance, held, available FROM loyalty.balance(:anna);
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 701)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.hold(1, 'bonus', 701)$$);

-- Capturing less than the hold releases the rest; the receipt carries over.
SELECT version, operation, amount, held_amount, balance_after, held_after, hold_id, receipt_id
  FROM loyalty.capture(:h1, 120);
SELECT status, amount, captured, resolved_version FROM loyalty.hold WHERE id = :h1;
SELECT balance, held, available FROM loyalty.balance(:anna);
-- a hold resolves once
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err(format('SELECT loyalty.capture(%s)', :h1));
SELECT * FROM pg_temp.err(format('SELECT loyalty.release(%s)', :h1));
SELECT pg_temp.counts() AS after;

-- Capture of everything by default; release gives everything back.
SELECT loyalty.hold(:anna, 'bonus', 50) AS h2 \gset
SELECT version, operation, amount, held_amount, balance_after, held_after FROM loyalty.capture(:h2);
SELECT loyalty.hold(:anna, 'bonus', 60) AS h3 \gset
SELECT version, operation, amount, held_amount, balance_after, held_after FROM loyalty.release(:h3);
SELECT id, status, amount, captured FROM loyalty.hold ORDER BY id;

-- A hold for skis: the capture spends the ski lot first.
SELECT loyalty.hold(:anna, 'bonus', 250, applicable => '{ski}') AS h4 \gset
SELECT amount, held_amount FROM loyalty.capture(:h4);
SELECT l.id, l.restriction, u.amount FROM loyalty.lot_usage u JOIN loyalty.lot l ON l.id = u.lot_id
 WHERE u.version = (SELECT max(version) FROM loyalty.ledger) ORDER BY l.id;

-- Keys: a repeated hold returns the same hold; a repeated capture the same entry.
SELECT loyalty.hold(:anna, 'bonus', 10, idempotency_key => 'h-5') AS h5 \gset
SELECT loyalty.hold(:anna, 'bonus', 10, idempotency_key => 'h-5') = :h5 AS same_hold;
SELECT * FROM pg_temp.err($$SELECT loyalty.hold(1, 'bonus', 11, idempotency_key => 'h-5')$$);
SELECT version, amount FROM loyalty.capture(:h5, idempotency_key => 'c-5');
SELECT version, amount FROM loyalty.capture(:h5, idempotency_key => 'c-5');
SELECT * FROM pg_temp.err(format('SELECT loyalty.release(%s, idempotency_key => %L)', :h5, 'c-5'));

-- A hold past its deadline stops counting on every read, before anyone tidies it.
SELECT loyalty.hold(:anna, 'bonus', 100, ttl => interval '10 minutes') AS h6 \gset
SELECT loyalty.hold(:anna, 'bonus', 30, ttl => interval '2 hours') AS h7 \gset
SELECT balance, held, available FROM loyalty.balance(:anna);
SELECT pg_temp.travel(interval '11 minutes');
SELECT balance, held, available FROM loyalty.balance(:anna);
SELECT held FROM loyalty.wallet WHERE customer_id = :anna;
-- capturing or releasing it fails clearly, and writes nothing
SELECT pg_temp.counts() AS before;
SELECT state, regexp_replace(message, 'expired at .*', 'expired at <time>') AS message
  FROM pg_temp.err(format('SELECT loyalty.capture(%s)', :h6));
SELECT state, regexp_replace(message, 'expired at .*', 'expired at <time>') AS message
  FROM pg_temp.err(format('SELECT loyalty.release(%s)', :h6));
SELECT pg_temp.counts() AS after;
-- the job records the release; the live hold is left alone
SELECT loyalty.release_expired_holds();
SELECT operation, held_amount, held_after, hold_id = :h6 AS is_h6, reason
  FROM loyalty.ledger WHERE version = (SELECT max(version) FROM loyalty.ledger);
SELECT id = :h6 AS is_h6, status, resolved_version IS NOT NULL AS resolved FROM loyalty.hold WHERE status IN ('active', 'expired') ORDER BY id;
SELECT loyalty.release_expired_holds();
-- the next operation on the wallet tidies expired holds first
SELECT pg_temp.travel(interval '3 hours');
SELECT version, operation FROM loyalty.accrue(:anna, 'bonus', 1);
SELECT version, operation, held_amount, reason FROM loyalty.ledger
 WHERE version >= (SELECT max(version) - 1 FROM loyalty.ledger) ORDER BY version;
SELECT state, regexp_replace(message, 'expired at .*', 'expired at <time>') AS message
  FROM pg_temp.err(format('SELECT loyalty.capture(%s)', :h7));

-- Bad input.
SELECT loyalty.hold(:anna, 'bonus', 40) AS h8 \gset
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.hold(1, 'bonus', 0)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.hold(1, 'bonus', 5, ttl => interval '0')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.hold(1, 'bonus', 5, ttl => interval '-1 minute')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.hold(1, 'bonus', 5, ttl => interval '32 days')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.hold(1, 'bonus', 5, ttl => NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.capture(NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.capture(999)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.release(999)$$);
SELECT * FROM pg_temp.err(format('SELECT loyalty.capture(%s, 41)', :h8));
SELECT * FROM pg_temp.err(format('SELECT loyalty.capture(%s, 0)', :h8));
SELECT * FROM pg_temp.err(format('SELECT loyalty.capture(%s, -1)', :h8));
UPDATE loyalty.customer SET status = 'fraud_hold' WHERE id = :anna;
SELECT * FROM pg_temp.err(format('SELECT loyalty.capture(%s)', :h8));
SELECT * FROM pg_temp.err($$SELECT loyalty.hold(1, 'bonus', 5)$$);
SELECT pg_temp.counts() AS after;
-- a hold of an account under review can still be released
SELECT operation, held_amount FROM loyalty.release(:h8);
UPDATE loyalty.customer SET status = 'active' WHERE id = :anna;

DROP EXTENSION loyalty;
