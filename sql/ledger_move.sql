-- adjust, transfer, convert: manual corrections with a reason, moves between
-- customers and currencies that keep each lot's window; bad input.
CREATE EXTENSION loyalty;

\i test/regress/helpers.psql
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
    SELECT format('entries %s, lots %s, usages %s, balances %s',
                  (SELECT count(*) FROM loyalty.ledger), (SELECT count(*) FROM loyalty.lot),
                  (SELECT count(*) FROM loyalty.lot_usage),
                  (SELECT string_agg(format('%s/%s=%s', customer_id, currency, balance), ' '
                                     ORDER BY customer_id, currency) FROM loyalty.wallet))
$$;

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country) VALUES ('shop', 'Shop', 'bonus', 'RU');
-- a legacy currency with whole points, a new one with cents
INSERT INTO loyalty.currency (program_id, code, name, exponent, money_per_unit)
VALUES (1, 'bonus', 'Bonus', 0, 1), (1, 'miles', 'Miles', 2, 0.5);
INSERT INTO loyalty.program (code, name, default_currency, phone_country) VALUES ('cafe', 'Cafe', 'bonus', 'RU');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (2, 'bonus', 'Bonus', 1);
COMMIT;
SELECT loyalty.enroll('shop', phone => '+79160000001') AS anna \gset
SELECT loyalty.enroll('shop', phone => '+79160000002') AS boris \gset
SELECT loyalty.enroll('cafe', phone => '+79160000003') AS cafe \gset

-- adjust: a positive correction is a lot of its own, with the actor and the reason.
SELECT version, operation, amount, balance_after, actor, reason
  FROM loyalty.adjust(:anna, 'bonus', 500, 'compensation for ticket 42', actor => 'support:olga');
SELECT kind, amount, valid_to IS NULL AS never_expires FROM loyalty.lot WHERE id = 1;
SELECT lot_id FROM loyalty.adjust(:anna, 'bonus', 100, 'welcome gift', valid_to => now() + interval '7 days');
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 50, restriction => 'ski');
-- a negative one takes points like a redemption, restricted lots included
SELECT version, operation, amount, balance_after, actor = session_user AS by_session_user
  FROM loyalty.adjust(:anna, 'bonus', -620, 'double accrual on receipt R-9');
SELECT lot_id, amount FROM loyalty.lot_usage ORDER BY lot_id;
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.adjust(1, 'bonus', -31, 'too much')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.adjust(1, 'bonus', 10, NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.adjust(1, 'bonus', 10, '')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.adjust(1, 'bonus', 0, 'nothing')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.adjust(1, 'bonus', -9223372036854775808, 'everything')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.adjust(1, 'bonus', -5, 'x', valid_to => now() + interval '1 day')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.adjust(1, 'bonus', 5, 'x', valid_to => now() - interval '1 day')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.adjust(1, 'bonus', 5, 'x', expected_version => 1)$$);
SELECT pg_temp.counts() AS after;

-- transfer: the points keep their windows; both wallets get an entry naming the other.
SELECT lot_id FROM loyalty.accrue(:anna, 'bonus', 300, valid_to => now() + interval '90 days', kind => 'promo');
SELECT version, operation, amount, balance_after, peer_customer_id, reason
  FROM loyalty.transfer(:anna, :boris, 'bonus', 200, reason => 'gift to a friend', idempotency_key => 't-1');
SELECT customer_id, version, operation, amount, balance_after, peer_customer_id, reason
  FROM loyalty.ledger WHERE operation LIKE 'transfer%' ORDER BY customer_id;
SELECT b.kind, b.amount, b.valid_to = a.valid_to AS same_window, b.source_lot_id = a.id AS from_source
  FROM loyalty.lot b JOIN loyalty.lot a ON a.id = b.source_lot_id WHERE b.customer_id = :boris ORDER BY b.id;
SELECT version, amount FROM loyalty.transfer(:anna, :boris, 'bonus', 200, reason => 'gift to a friend', idempotency_key => 't-1');
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.transfer(1, 1, 'bonus', 5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.transfer(1, 3, 'bonus', 5, 'gift')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.transfer(1, 2, 'bonus', 1000, 'gift')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.transfer(1, 99, 'bonus', 5, 'gift')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.transfer(1, 2, 'bonus', 0)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.transfer(NULL, 2, 'bonus', 5)$$);
-- a transfer says why
SELECT * FROM pg_temp.err($$SELECT loyalty.transfer(1, 2, 'bonus', 5)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.transfer(1, 2, 'bonus', 5, '')$$);
SELECT pg_temp.counts() AS after;

-- convert: every point of a currency, pending ones too, at a rate per whole
-- point (here 1 bonus = 1.333 miles = 133.3 minor units), spread over the lots
-- by largest remainder so that nothing is lost to rounding.
SELECT lot_id FROM loyalty.accrue(:boris, 'bonus', 1, valid_from => now() + interval '1 day');
SELECT lot_id FROM loyalty.accrue(:boris, 'bonus', 1);
SELECT customer_id, currency, version, operation, amount, balance_after, peer_currency
  FROM loyalty.convert(:boris, 'bonus', 'miles', 1.333, reason => 'miles launch');
SELECT customer_id, currency, version, operation, amount, balance_after, peer_currency
  FROM loyalty.ledger WHERE operation = 'convert' ORDER BY currency;
SELECT id, kind, amount, restriction, source_lot_id, valid_from > now() AS pending
  FROM loyalty.lot WHERE currency = 'miles' ORDER BY id;
SELECT currency, balance, pending FROM loyalty.balance(:boris);
-- nothing left to convert: no entry
SELECT loyalty.convert(:boris, 'bonus', 'miles', 2, 'miles launch') IS NULL AS nothing_converted;
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'bonus', 2)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'miles', 0)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'miles', -1)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'miles', 'NaN')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'miles', NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'stars', 2, 'swap')$$);
-- a conversion says why
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'miles', 2)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'miles', 1e30, 'swap')$$);
-- a wallet with a live hold is not converted
SELECT loyalty.hold(:anna, 'bonus', 10) AS h \gset
SELECT * FROM pg_temp.err($$SELECT loyalty.convert(1, 'bonus', 'miles', 2, 'swap')$$);
SELECT pg_temp.counts() AS after;

-- Merging customers moves every wallet and lot, with entries on both sides.
SELECT (loyalty.release(:h)).operation;
SELECT loyalty.merge_customers('shop', :anna, :boris, 'same person, two phones');
SELECT customer_id, currency, operation, amount, balance_after, peer_customer_id, reason
  FROM loyalty.ledger WHERE reason = 'same person, two phones' ORDER BY customer_id, currency;
SELECT customer_id, currency, balance, merged_into FROM loyalty.wallet ORDER BY customer_id, currency;
SELECT * FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 1)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM loyalty.balance(1)$$);

DROP EXTENSION loyalty;
