-- Referrals (docs/campaigns.md, "Referrals"): the scheme's checks, a
-- customer's code, a code given at enrolment (unknown, inactive, the new
-- customer's own: refused with nothing written), and settle_referrals:
-- nothing before a receipt, nothing within the return window, a returned
-- first receipt not counting, the next one qualifying, a partial refund
-- still qualifying, both rewarded once (a second run gives nothing),
-- refused for a blocked customer, waiting on fraud_hold, expired after
-- offer_days; the events, the job and the grants.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('shop', 'Shop', 'bonus', 0);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('other', 'Other', 'stars', 0);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (2, 'stars', 'Stars', 1);
COMMIT;
\set line '[{"line": 1, "sku": "X", "qty": 2, "price": 100}]'
CREATE FUNCTION pg_temp.rc(id text, card text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('program', 'shop', 'receipt_id', id, 'customer', jsonb_build_object('card', card),
                              'lines', '[{"line": 1, "sku": "X", "qty": 2, "price": 100}]'::jsonb)
$$;
CREATE FUNCTION pg_temp.referrals() RETURNS TABLE (referee bigint, referrer bigint, state text, receipt text,
                                                   reason text, lots boolean)
LANGUAGE sql AS $$
    SELECT referee_id, referrer_id, state, receipt_id, reason,
           referrer_lot_id IS NOT NULL OR referee_lot_id IS NOT NULL
      FROM loyalty.referral ORDER BY referee_id
$$;
-- an error, with a generated code in its message shown as <code>
CREATE FUNCTION pg_temp.errc(query text) RETURNS TABLE (state text, message text)
LANGUAGE sql AS $$
    SELECT e.state, regexp_replace(e.message, '"[A-HJ-NP-Z2-9]{8}"', '"<code>"') FROM pg_temp.err(query) e
$$;
CREATE FUNCTION pg_temp.balances() RETURNS TABLE (customer bigint, balance bigint)
LANGUAGE sql AS $$ SELECT customer_id, balance FROM loyalty.wallet ORDER BY 1 $$;

-- 1. Without a scheme there are no codes; a scheme's bad values are refused.
SELECT loyalty.enroll('shop', card => '10000001', phone => '+79160000001', email => 'anna@example.com') AS anna \gset
SELECT * FROM pg_temp.err($$SELECT loyalty.referral_code('shop', 1)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('shop', card => '10000099', referral_code => 'ABCDEFGH')$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.referral_scheme (program_id, currency, referrer_points, referee_points) VALUES (1, 'stars', 1, 1)$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.referral_scheme (program_id, currency, referrer_points, referee_points) VALUES (1, 'bonus', 0, 0)$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.referral_scheme (program_id, currency, referrer_points, referee_points) VALUES (1, 'bonus', -1, 5)$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.referral_scheme (program_id, currency, referrer_points, referee_points, return_days) VALUES (1, 'bonus', 1, 1, 366)$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.referral_scheme (program_id, currency, referrer_points, referee_points, offer_days) VALUES (1, 'bonus', 1, 1, 0)$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.referral_scheme (program_id, currency, referrer_points, referee_points, valid_for) VALUES (1, 'bonus', 1, 1, '-1 day')$$);
SELECT count(*) AS schemes FROM loyalty.referral_scheme;
INSERT INTO loyalty.referral_scheme (program_id, currency, referrer_points, referee_points, valid_for, return_days)
VALUES (1, 'bonus', 500, 300, '90 days', 14);

-- 2. A customer's code: created once, the same afterwards; bad calls.
SELECT loyalty.referral_code('shop', :anna) AS code \gset
SELECT :'code' ~ '^[A-HJ-NP-Z2-9]{8}$' AS well_formed, loyalty.referral_code('shop', :anna) = :'code' AS same;
SELECT * FROM pg_temp.err($$SELECT loyalty.referral_code(NULL, 1)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.referral_code('shop', NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.referral_code('shop', 999)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.referral_code('nope', 1)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.referral_code('other', 1)$$);
SELECT count(*) AS codes FROM loyalty.referral_code;

-- 3. Codes at enrolment: written as typed (case, spaces, dashes); the bad ones refused, nothing written.
SELECT loyalty.enroll('shop', card => '10000002', referral_code => lower(substr(:'code', 1, 4)) || '-' || substr(:'code', 5)) AS boris \gset
SELECT count(*) AS customers FROM loyalty.customer \gset
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('shop', card => '10000003', referral_code => 'NOPE2345')$$);
SELECT * FROM pg_temp.errc(format($$SELECT loyalty.enroll('shop', card => '10000001', referral_code => %L)$$, :'code'));
SELECT * FROM pg_temp.errc(format($$SELECT loyalty.enroll('shop', card => '10000003', phone => '+7 916 000-00-01', referral_code => %L)$$, :'code'));
SELECT * FROM pg_temp.errc(format($$SELECT loyalty.enroll('shop', card => '10000003', email => 'Anna@Example.com', referral_code => %L)$$, :'code'));
SELECT * FROM pg_temp.errc(format($$SELECT loyalty.enroll('other', card => '10000003', referral_code => %L)$$, :'code'));
SELECT count(*) = :customers AS nothing_written FROM loyalty.customer;
SELECT * FROM pg_temp.referrals();
SELECT action, detail FROM loyalty.customer_log WHERE customer_id = :boris;

-- 4. Settlement: nothing before a receipt; nothing within the return window.
SELECT loyalty.settle_referrals() AS settled;
SELECT pg_temp.rc('B1', '10000002') AS doc \gset
SELECT loyalty.commit(:'doc') -> 'commit' ->> 'status' AS status;
SELECT loyalty.settle_referrals() AS settled;
SELECT * FROM pg_temp.referrals();
-- the first receipt cancelled: it no longer qualifies, whatever the window
UPDATE loyalty.referral_scheme SET return_days = 0;
SELECT loyalty.cancel('shop', 'B1', 'returned') ->> 'status' AS status;
SELECT loyalty.settle_referrals() AS settled;
SELECT * FROM pg_temp.referrals();
-- the next receipt, refunded in part, qualifies: both rewarded, once
SELECT pg_temp.rc('B2', '10000002') AS doc \gset
SELECT loyalty.commit(:'doc') -> 'commit' ->> 'status' AS status;
SELECT loyalty.refund('shop', 'B2', '[{"line": 1, "qty": 1}]', 'B2-R') ->> 'status' AS status;
SELECT loyalty.settle_referrals() AS settled;
SELECT * FROM pg_temp.referrals();
SELECT * FROM pg_temp.balances();
SELECT customer_id, kind, amount, valid_to - valid_from AS valid_for FROM loyalty.lot ORDER BY id;
SELECT type, customer_id, payload - 'lot_id' AS payload FROM loyalty.event WHERE type = 'referral_rewarded' ORDER BY id;
SELECT loyalty.settle_referrals() AS settled;
SELECT * FROM pg_temp.balances();
-- a return after the reward leaves it
SELECT loyalty.refund('shop', 'B2', '[{"line": 1, "qty": 1}]', 'B2-R2') ->> 'status' AS status;
SELECT * FROM pg_temp.balances();

-- 5. Refused: a blocked referrer; waiting: a new customer on fraud_hold; expired.
SELECT loyalty.referral_code('shop', :boris) AS code_b \gset
SELECT loyalty.enroll('shop', card => '10000004', referral_code => :'code_b') AS vera \gset
SELECT loyalty.enroll('shop', card => '10000005', referral_code => :'code') AS gleb \gset
SELECT loyalty.enroll('shop', card => '10000006', referral_code => :'code') AS dina \gset
SELECT pg_temp.rc('V1', '10000004') AS doc \gset
SELECT loyalty.commit(:'doc') -> 'commit' ->> 'status' AS status;
SELECT pg_temp.rc('G1', '10000005') AS doc \gset
SELECT loyalty.commit(:'doc') -> 'commit' ->> 'status' AS status;
SELECT loyalty.set_customer_status('shop', :boris, 'blocked', 'card fraud') IS NOT NULL AS blocked;
SELECT loyalty.set_customer_status('shop', :gleb, 'fraud_hold', 'under review') IS NOT NULL AS held;
UPDATE loyalty.referral SET expires_at = now() - interval '1 second' WHERE referee_id = :dina;
SELECT * FROM pg_temp.errc(format($$SELECT loyalty.enroll('shop', card => '10000007', referral_code => %L)$$, :'code_b'));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.referral_code('shop', %s)$$, :boris));
SELECT loyalty.settle_referrals() AS settled;
SELECT * FROM pg_temp.referrals();
SELECT loyalty.set_customer_status('shop', :gleb, 'active', 'cleared') IS NOT NULL AS released;
SELECT loyalty.settle_referrals() AS settled;
SELECT referee, state FROM pg_temp.referrals() WHERE referee = :gleb;
-- a receipt of the new customer committed after expires_at never qualifies
SELECT pg_temp.rc('D1', '10000006') AS doc \gset
SELECT loyalty.commit(:'doc') -> 'commit' ->> 'status' AS status;
SELECT referee, state FROM pg_temp.referrals() WHERE referee = :dina;

-- 6. An inactive scheme: codes refused at enrolment, nothing settled.
SELECT loyalty.enroll('shop', card => '10000008', referral_code => :'code') AS eva \gset
UPDATE loyalty.referral_scheme SET active = false;
SELECT * FROM pg_temp.errc(format($$SELECT loyalty.enroll('shop', card => '10000009', referral_code => %L)$$, :'code'));
SELECT pg_temp.rc('E1', '10000008') AS doc \gset
SELECT loyalty.commit(:'doc') -> 'commit' ->> 'status' AS status;
SELECT loyalty.settle_referrals() AS settled;
UPDATE loyalty.referral_scheme SET active = true;
SELECT loyalty.settle_referrals() AS settled;
SELECT referee, state FROM pg_temp.referrals() WHERE referee = :eva;

-- 7. Bad job arguments; the job; grants.
SELECT * FROM pg_temp.err($$SELECT loyalty.settle_referrals(0)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.settle_referrals(10, '0 seconds')$$);
SELECT job, schedule, command FROM loyalty.jobs() WHERE job = 'loyalty.settle_referrals';
SELECT has_function_privilege('loyalty_cashier', 'loyalty.referral_code(text, bigint)', 'EXECUTE') AS cashier_code,
       has_function_privilege('loyalty_cashier', 'loyalty.settle_referrals(integer, interval)', 'EXECUTE') AS cashier_settle,
       has_function_privilege('loyalty_admin', 'loyalty.settle_referrals(integer, interval)', 'EXECUTE') AS admin_settle,
       has_table_privilege('loyalty_admin', 'loyalty.referral_scheme', 'UPDATE') AS admin_scheme,
       has_table_privilege('loyalty_admin', 'loyalty.referral', 'UPDATE') AS admin_referral,
       has_function_privilege('public', 'loyalty.referral_referrer(bigint, text, text, text, text, text)', 'EXECUTE') AS public_referrer;

DROP EXTENSION loyalty CASCADE;
