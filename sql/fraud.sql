-- Fraud controls (docs/fraud.md): velocity rules checked in the operation's
-- transaction, each measure, subject and action, the window's edges, a rule
-- with a condition, the cases and their review (release_hold,
-- confirm_fraud), held and forfeited accruals, set_customer_status, the
-- events, and every bad input with its SQLSTATE and nothing written.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('shop', 'Shop', 'bonus', 1000);   -- 10% back, released at once
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay)
VALUES ('late', 'Late', 'coins', 1000, '2 hours');   -- 10% back, two hours later
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (2, 'coins', 'Coins', 1);
COMMIT;
INSERT INTO loyalty.product (program_id, sku, name, category) VALUES
    (1, 'TV', 'Television', 'electronics/tv'),
    (1, 'BREAD', 'Bread', 'food/bakery');
SELECT loyalty.enroll('shop', card => '20000001', phone => '+79160000001') AS anna \gset
SELECT loyalty.enroll('shop', card => '20000002') AS boris \gset
SELECT loyalty.enroll('shop', card => '20000003') AS vera \gset
SELECT loyalty.enroll('shop', card => '20000004') AS dima \gset
SELECT loyalty.enroll('late', card => '30000001') AS gleb \gset

-- A receipt of programme shop at a fixed instant of 2026-03-02 (UTC).
CREATE FUNCTION pg_temp.rc(id text, customer jsonb, lines jsonb, at text, extra jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('program', 'shop', 'receipt_id', id, 'customer', customer,
                              'lines', lines, 'at', '2026-03-02T' || at || '+00:00',
                              'store', 'S1') || extra
$$;
-- Commit it: what happened to its accrual, or the error.
CREATE FUNCTION pg_temp.commit(doc jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    r := loyalty.commit(doc);
    RETURN 'committed, accrual ' || (r #>> '{commit,accrual}');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- A rule of programme shop.
CREATE FUNCTION pg_temp.rule(code text, measure text, subject text, win interval, threshold bigint,
                             action text, condition text DEFAULT NULL, message text DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO loyalty.fraud_rule (program_id, code, measure, subject, "window", threshold, action,
                                    condition, message)
    VALUES (1, code, measure, subject, win, threshold, action, condition::loyalty.condition, message)
    RETURNING id
$$;
CREATE FUNCTION pg_temp.cases() RETURNS TABLE (id bigint, rule text, action text, subject_kind text,
                                               subject text, tally bigint, threshold bigint,
                                               state text, operations text)
LANGUAGE sql AS $$
    SELECT c.id, c.rule_code, c.action, c.subject_kind,
           CASE WHEN c.subject_kind = 'actor' THEN '(actor)' ELSE c.subject END,
           c.tally, c.threshold, c.state,
           (SELECT string_agg(o.operation || ' ' || coalesce(o.reference, '-') || ' ' || o.tally, ', ' ORDER BY o.n)
              FROM loyalty.fraud_case_operation o WHERE o.case_id = c.id)
      FROM loyalty.fraud_case c ORDER BY c.id
$$;
\set tv '[{"line": 1, "sku": "TV", "qty": 1, "price": 8000}]'
\set bread '[{"line": 1, "sku": "BREAD", "qty": 1, "price": 100}]'

-- 1. Bad rules: each refused with its SQLSTATE, nothing written.
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.rule('X', 'points', 'customer', '1 hour', 1, 'flag')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'cashier', '1 hour', 1, 'flag')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'customer', '1 hour', 1, 'block')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'customer', '1 month', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'customer', '0', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'customer', '1.5 seconds', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'customer', '367 days', 1, 'flag')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'customer', '1 hour', -1, 'flag')$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.fraud_rule (program_id, code, measure, subject, "window", resolution, threshold, action)
                            VALUES (1, 'X', 'receipts', 'customer', '1 hour', '7 minutes', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.fraud_rule (program_id, code, measure, subject, "window", resolution, threshold, action)
                            VALUES (1, 'X', 'receipts', 'customer', '1 day', '1 second', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.fraud_rule (program_id, code, measure, subject, currency, "window", threshold, action)
                            VALUES (1, 'X', 'receipts', 'customer', 'bonus', '1 hour', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$INSERT INTO loyalty.fraud_rule (program_id, code, measure, subject, currency, "window", threshold, action)
                            VALUES (1, 'X', 'points_earned', 'customer', 'miles', '1 hour', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'store', '1 hour', 1, 'hold')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'refunds', 'identifier', '1 hour', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'holds', 'store', '1 hour', 1, 'flag')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'adjustments', 'customer', '1 hour', 1, 'flag', 'category = ''a''')$$);
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('X', 'receipts', 'customer', '1 hour', 1, 'flag', 'category = ')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.rule('bad code', 'receipts', 'customer', '1 hour', 1, 'flag')$$);
SELECT count(*) AS rules FROM loyalty.fraud_rule;
-- The defaults: a resolution of a sixtieth of the window when that is whole
-- seconds (else 1 second), the programme's default currency for points.
SELECT pg_temp.rule('DEF1', 'points_earned', 'customer', '1 hour', 1, 'flag') IS NOT NULL AS made;
SELECT pg_temp.rule('DEF2', 'receipts', 'customer', '7 seconds', 1, 'flag') IS NOT NULL AS made;
SELECT code, currency, "window", resolution FROM loyalty.fraud_rule ORDER BY id;
SELECT * FROM pg_temp.err($$SELECT pg_temp.rule('DEF1', 'receipts', 'customer', '1 hour', 1, 'flag')$$);
-- A rule keeps its measure, subject and currency (its tallies count them).
SELECT * FROM pg_temp.err($$UPDATE loyalty.fraud_rule SET measure = 'points_spent' WHERE code = 'DEF1'$$);
SELECT * FROM pg_temp.err($$UPDATE loyalty.fraud_rule SET subject = 'actor' WHERE code = 'DEF2'$$);
UPDATE loyalty.fraud_rule SET threshold = 5, "window" = '2 hours', resolution = NULL WHERE code = 'DEF1'
RETURNING code, "window", resolution, threshold;
DELETE FROM loyalty.fraud_rule;

-- 2. The window's edges, with a refusal: at most 2 receipts an hour on
-- boris's card (resolution one minute).  Exactly 2 pass; a third within the
-- hour is refused with P0L04 and its message, and writes nothing; once the
-- first receipt's minute leaves the window (13:00:00, the 60th minute after
-- 12:00), a receipt passes again; one more within the hour is refused.
SELECT pg_temp.rule('CARD2H', 'receipts', 'identifier', '1 hour', 2, 'refuse',
                    message => 'Too many receipts on this card: see the manager.') IS NOT NULL AS made;
SELECT pg_temp.commit(pg_temp.rc('B1', '{"card": "20000002"}', :'bread', '12:00:00'));
SELECT pg_temp.commit(pg_temp.rc('B2', '{"card": "2000 0002"}', :'bread', '12:30:00'));
SELECT * FROM pg_temp.err($$SELECT loyalty.commit(pg_temp.rc('B3', '{"card": "20000002"}', '[{"line": 1, "sku": "BREAD", "qty": 1, "price": 100}]', '12:59:59'))$$);
SELECT count(*) AS b3_written FROM loyalty.receipt_key WHERE receipt_id = 'B3';
SELECT pg_temp.commit(pg_temp.rc('B4', '{"card": "20000002"}', :'bread', '13:00:00'));
SELECT pg_temp.commit(pg_temp.rc('B5', '{"card": "20000002"}', :'bread', '13:00:59'));
-- The same receipt again is a replay: it counts once.
SELECT pg_temp.commit(pg_temp.rc('B4', '{"card": "20000002"}', :'bread', '13:00:00'));
-- boris by id is not his card: the rule does not see it.
SELECT pg_temp.commit(pg_temp.rc('B6', jsonb_build_object('id', :boris), :'bread', '13:01:00'));
-- The tally: the rule's minutes in the window (12:30 and 13:00), one
-- receipt each (B5 was refused, B6 was not on the card).
SELECT subject_kind, subject, (bucket[2] - bucket[1]) / 60000000 AS minutes_apart, amount
  FROM loyalty.fraud_tally WHERE subject_kind = 'identifier';
SELECT count(*) AS cases FROM loyalty.fraud_case;
DELETE FROM loyalty.fraud_tally;
DELETE FROM loyalty.fraud_rule;

-- 3. A flag by customer: more than 2 receipts an hour.  The third opens a
-- case (and its event); the fourth, still over, joins the open case.
SELECT pg_temp.rule('R3H', 'receipts', 'customer', '1 hour', 2, 'flag') IS NOT NULL AS made;
SELECT pg_temp.commit(pg_temp.rc('A1', '{"card": "20000001"}', :'bread', '10:00:00'));
SELECT pg_temp.commit(pg_temp.rc('A2', '{"phone": "+7 916 000-00-01"}', :'bread', '10:20:00'));
SELECT pg_temp.commit(pg_temp.rc('A3', '{"card": "20000001"}', :'bread', '10:40:00'));
SELECT pg_temp.commit(pg_temp.rc('A4', '{"card": "20000001"}', :'bread', '10:50:00'));
SELECT * FROM pg_temp.cases();
SELECT type, customer_id = :anna AS anna, payload - 'case_id' - 'subject' - 'at' AS payload
  FROM loyalty.event WHERE type LIKE 'fraud%' ORDER BY id;
SELECT status FROM loyalty.customer WHERE id = :anna;

-- 4. A rule with a condition: receipts with an electronics line, more than
-- 1 a day.  Bread does not count; the second television does.
SELECT pg_temp.rule('ELEC', 'receipts', 'customer', '1 day', 1, 'flag', 'category <@ ''electronics''') IS NOT NULL AS made;
SELECT pg_temp.commit(pg_temp.rc('A5', '{"card": "20000001"}', :'bread', '11:00:00'));
SELECT pg_temp.commit(pg_temp.rc('A6', '{"card": "20000001"}', :'tv', '11:10:00'));
SELECT pg_temp.commit(pg_temp.rc('A7', '{"card": "20000001"}', '[{"line": 1, "sku": "BREAD", "qty": 1, "price": 100}, {"line": 2, "sku": "TV", "qty": 1, "price": 9000}]', '11:20:00'));
SELECT rule, subject_kind, tally, state, operations FROM pg_temp.cases() WHERE rule = 'ELEC';

-- 5. distinct_cards and distinct_stores: anna's second card makes two cards
-- in a day (over 1); the card 20000001 in a second store in an hour (over
-- 1: the rule counts from when it was made, so the first is S2).
SELECT pg_temp.rule('CARDS', 'distinct_cards', 'customer', '1 day', 1, 'flag') IS NOT NULL AS made;
SELECT pg_temp.rule('STORES', 'distinct_stores', 'identifier', '1 hour', 1, 'flag') IS NOT NULL AS made;
SELECT loyalty.add_identifier('shop', :anna, 'card', '20000011', 'second card');
SELECT pg_temp.commit(pg_temp.rc('A8', '{"card": "20000001"}', :'bread', '12:00:00', '{"store": "S2"}'));
SELECT pg_temp.commit(pg_temp.rc('A9', '{"card": "20000011"}', :'bread', '12:05:00', '{"store": "S2"}'));
SELECT pg_temp.commit(pg_temp.rc('A10', '{"card": "20000001"}', :'bread', '12:10:00', '{"store": "S3"}'));
SELECT rule, subject_kind, subject, tally, operations FROM pg_temp.cases() WHERE rule IN ('CARDS', 'STORES');
-- A rule its cases name cannot be deleted: it is made inactive.
SELECT * FROM pg_temp.err($$DELETE FROM loyalty.fraud_rule WHERE code IN ('CARDS', 'STORES')$$);
UPDATE loyalty.fraud_rule SET active = false WHERE code IN ('R3H', 'CARDS', 'STORES');

-- 6. A hold: more than 1000 points earned a day by a customer.  vera's
-- second receipt takes her to 1300: she goes to fraud_hold, and its points
-- are held in the queue; so are those of her next receipt, on which she may
-- not spend.  The case gets both.
SELECT pg_temp.rule('EARN', 'points_earned', 'customer', '1 day', 1000, 'hold') IS NOT NULL AS made;
SELECT pg_temp.commit(pg_temp.rc('V1', '{"card": "20000003"}', :'tv', '09:00:00'));
SELECT pg_temp.commit(pg_temp.rc('V2', '{"card": "20000003"}', '[{"line": 1, "sku": "TV", "qty": 1, "price": 5000}]', '09:10:00'));
SELECT status FROM loyalty.customer WHERE id = :vera;
SELECT loyalty.calculate(pg_temp.rc('V3', '{"card": "20000003"}', :'bread', '09:20:00', '{"points": "max"}')) #>> '{customer,points_spending}' AS spending;
SELECT pg_temp.commit(pg_temp.rc('V3', '{"card": "20000003"}', :'bread', '09:20:00', '{"points": "max"}'));
SELECT receipt_id, amount, release_at, held_release_at IS NOT NULL AS held FROM loyalty.accrual_queue
 WHERE customer_id = :vera ORDER BY id;
SELECT balance FROM loyalty.balance(:vera, 'bonus');
SELECT rule, subject, tally, state, operations FROM pg_temp.cases() WHERE rule = 'EARN';
SELECT action, detail - 'case_id' AS detail, reason FROM loyalty.customer_log
 WHERE customer_id = :vera AND action LIKE 'fraud%' ORDER BY id;
-- The drain leaves held accruals where they are.
SELECT loyalty.release_accruals() AS released;
SELECT count(*) AS still_held FROM loyalty.accrual_queue WHERE customer_id = :vera;

-- 7. Release: a false alarm.  vera is active again, her held accruals are
-- due at their times (the drain releases them), the window starts afresh
-- (a receipt of 500 points trips nothing), and the event says so.
SELECT id AS earn_case FROM loyalty.fraud_case WHERE rule_code = 'EARN' \gset
SELECT state, reason, decided_by IS NOT NULL AS decided_by, forfeited
  FROM loyalty.release_hold(:earn_case, 'called her: a new flat, two televisions');
SELECT status FROM loyalty.customer WHERE id = :vera;
SELECT count(*) AS held FROM loyalty.accrual_queue WHERE customer_id = :vera AND held_release_at IS NOT NULL;
SELECT loyalty.release_accruals() AS released;
SELECT balance FROM loyalty.balance(:vera, 'bonus');
SELECT pg_temp.commit(pg_temp.rc('V4', '{"card": "20000003"}', '[{"line": 1, "sku": "TV", "qty": 1, "price": 5000}]', '09:30:00'));
SELECT count(*) AS open_cases FROM loyalty.fraud_case WHERE rule_code = 'EARN' AND state = 'open';
SELECT type, payload - 'case_id' AS payload FROM loyalty.event WHERE type = 'fraud_released';
SELECT action, detail - 'case_id' AS detail, reason FROM loyalty.customer_log
 WHERE customer_id = :vera AND action LIKE 'fraud%' ORDER BY id;
-- A case is decided once.
SELECT state, message FROM pg_temp.err(format('SELECT loyalty.release_hold(%s, %L)', :earn_case, 'again'));
SELECT state, message FROM pg_temp.err(format('SELECT loyalty.confirm_fraud(%s, %L)', :earn_case, 'again'));
UPDATE loyalty.fraud_rule SET active = false WHERE code IN ('ELEC', 'EARN');

-- 8. Confirm: fraud.  In programme late (points two hours later) gleb's
-- third receipt of the day trips a hold: its accrual is held at once; the
-- first one's is held by the drain when it falls due; the second one's is
-- still waiting.  confirm_fraud forfeits all three (every accrual not
-- released yet) and blocks gleb.  A refund of a receipt then takes its
-- points off the queue, not from the wallet.
INSERT INTO loyalty.fraud_rule (program_id, code, measure, subject, "window", threshold, action)
VALUES (2, 'LATE2', 'receipts', 'customer', '1 day', 2, 'hold');
SELECT loyalty.commit('{"program": "late", "receipt_id": "G0", "customer": {"card": "30000001"}, "at": "2026-03-02T09:00:00+00:00", "lines": [{"line": 1, "qty": 1, "price": 500}]}') #>> '{commit,accrual}' AS g0;
SELECT loyalty.commit('{"program": "late", "receipt_id": "G1", "customer": {"card": "30000001"}, "at": "2026-03-02T10:00:00+00:00", "lines": [{"line": 1, "qty": 1, "price": 1000}]}') #>> '{commit,accrual}' AS g1;
SELECT loyalty.commit('{"program": "late", "receipt_id": "G2", "customer": {"card": "30000001"}, "at": "2026-03-02T10:05:00+00:00", "lines": [{"line": 1, "qty": 2, "price": 1000}]}') #>> '{commit,accrual}' AS g2;
UPDATE loyalty.accrual_queue SET release_at = now() - interval '1 minute' WHERE receipt_id = 'G0';
SELECT loyalty.release_accruals() AS released;
SELECT receipt_id, amount, release_at = 'infinity' AS never_due, held_release_at IS NOT NULL AS held
  FROM loyalty.accrual_queue WHERE customer_id = :gleb ORDER BY id;
SELECT id AS gleb_case FROM loyalty.fraud_case WHERE rule_code = 'LATE2' \gset
SELECT state, reason, forfeited FROM loyalty.confirm_fraud(:gleb_case, 'two receipts, one stolen card');
SELECT status FROM loyalty.customer WHERE id = :gleb;
SELECT receipt_id, amount, release_at, held_release_at, forfeited_case = :gleb_case AS forfeited
  FROM loyalty.accrual_queue WHERE customer_id = :gleb ORDER BY id;
SELECT type, payload - 'case_id' AS payload FROM loyalty.event WHERE type = 'fraud_confirmed';
SELECT loyalty.refund('late', 'G2', '[{"line": 1, "qty": 2}]', 'G2-R') #> '{points_taken}' AS taken;
SELECT receipt_id FROM loyalty.accrual_queue WHERE customer_id = :gleb ORDER BY id;
SELECT count(*) AS gleb_entries FROM loyalty.ledger WHERE customer_id = :gleb;

-- 9. The ledger: points spent (redeem, transfer) refused over 500 an hour;
-- adjustments flagged over 1 a day; holds refused over 1 an hour.  A
-- refusal writes nothing: the wallet keeps its version.
SELECT (loyalty.accrue(:dima, 'bonus', 5000)).version;
SELECT pg_temp.rule('SPEND', 'points_spent', 'customer', '1 hour', 500, 'refuse') IS NOT NULL AS made;
SELECT pg_temp.rule('ADJ', 'adjustments', 'customer', '1 day', 1, 'flag') IS NOT NULL AS made;
SELECT pg_temp.rule('HOLDS', 'holds', 'customer', '1 hour', 1, 'refuse') IS NOT NULL AS made;
SELECT (loyalty.redeem(:dima, 'bonus', 300)).balance_after;
SELECT * FROM pg_temp.err(format('SELECT loyalty.redeem(%s, %L, 300)', :dima, 'bonus'));
SELECT * FROM pg_temp.err(format('SELECT loyalty.transfer(%s, %s, %L, 300, %L)', :dima, :boris, 'bonus', 'gift'));
SELECT (loyalty.transfer(:dima, :boris, 'bonus', 200, 'gift')).balance_after;
SELECT version, balance FROM loyalty.wallet WHERE customer_id = :dima;
SELECT (loyalty.adjust(:dima, 'bonus', 10, 'goodwill')).balance_after;
SELECT (loyalty.adjust(:dima, 'bonus', -10, 'goodwill undone')).balance_after;
SELECT loyalty.hold(:dima, 'bonus', 100) IS NOT NULL AS held;
SELECT * FROM pg_temp.err(format('SELECT loyalty.hold(%s, %L, 100)', :dima, 'bonus'));
SELECT rule, subject_kind, tally, operations FROM pg_temp.cases() WHERE rule IN ('SPEND', 'ADJ', 'HOLDS');
-- An inactive rule counts nothing.
UPDATE loyalty.fraud_rule SET active = false WHERE code = 'HOLDS';
SELECT loyalty.hold(:dima, 'bonus', 100) IS NOT NULL AS held;
UPDATE loyalty.fraud_rule SET active = false WHERE code IN ('SPEND', 'ADJ');

-- 10. Refunds by the actor (a cashier's role) and money refunded by store:
-- the second refund in an hour by the role is flagged; returns of more than
-- 200.00 a day in store S1 are refused (the television's 8000.00).
CREATE ROLE fraud_cashier;
GRANT loyalty_cashier TO fraud_cashier;
SELECT loyalty.grant_program('shop', 'fraud_cashier');
SELECT pg_temp.rule('REF1', 'refunds', 'actor', '1 hour', 1, 'flag') IS NOT NULL AS made;
SELECT pg_temp.rule('MONEY', 'money_refunded', 'store', '1 day', 20000, 'refuse') IS NOT NULL AS made;
SET ROLE fraud_cashier;
SELECT loyalty.refund('shop', 'A1', '[{"line": 1, "qty": 1}]', 'A1-R') ->> 'money' AS money;
SELECT loyalty.refund('shop', 'A2', '[{"line": 1, "qty": 1}]', 'A2-R') ->> 'money' AS money;
SELECT * FROM pg_temp.err($$SELECT loyalty.refund('shop', 'A6', '[{"line": 1, "qty": 1}]', 'A6-R')$$);
RESET ROLE;
SELECT count(*) AS a6_refunds FROM loyalty.receipt_refund WHERE receipt_id = 'A6';
SELECT rule, subject_kind, subject, tally, operations FROM pg_temp.cases() WHERE rule = 'REF1';
SELECT receipt_id, actor FROM loyalty.receipt_refund WHERE actor = 'fraud_cashier' ORDER BY receipt_id;

-- 11. The admin's functions: bad input with its SQLSTATE, nothing changed.
SELECT * FROM pg_temp.err('SELECT loyalty.release_hold(NULL, ''x'')');
SELECT * FROM pg_temp.err('SELECT loyalty.release_hold(999999, ''x'')');
SELECT id AS ref_case FROM loyalty.fraud_case WHERE rule_code = 'REF1' \gset
SELECT * FROM pg_temp.err(format('SELECT loyalty.release_hold(%s, %L)', :ref_case, ' '));
SELECT * FROM pg_temp.err(format('SELECT loyalty.confirm_fraud(%s, NULL)', :ref_case));
SELECT * FROM pg_temp.err(format('SELECT loyalty.confirm_fraud(%s, %L, NULL)', :ref_case, 'x'));
SELECT state FROM loyalty.fraud_case WHERE id = :ref_case;
SELECT * FROM pg_temp.err(format('SELECT loyalty.set_customer_status(%L, %s, NULL, %L)', 'shop', :anna, 'x'));
SELECT * FROM pg_temp.err(format('SELECT loyalty.set_customer_status(%L, %s, %L, %L)', 'shop', :anna, 'frozen', 'x'));
SELECT * FROM pg_temp.err(format('SELECT loyalty.set_customer_status(%L, %s, %L, %L)', 'shop', :anna, 'merged', 'x'));
SELECT * FROM pg_temp.err(format('SELECT loyalty.set_customer_status(%L, 999999, %L, %L)', 'shop', 'blocked', 'x'));
SELECT * FROM pg_temp.err(format('SELECT loyalty.set_customer_status(%L, %s, %L, %L)', 'shop', :anna, 'blocked', ''));
SELECT status FROM loyalty.customer WHERE id = :anna;
-- set_customer_status: an admin's hold and release, logged; the accrual of
-- a receipt meanwhile is held, and released with the customer.
SELECT loyalty.set_customer_status('shop', :anna, 'fraud_hold', 'bank reported the card');
SELECT loyalty.commit(pg_temp.rc('A11', '{"card": "20000001"}', :'bread', '15:00:00')) #>> '{commit,accrual}' AS accrual;
SELECT loyalty.set_customer_status('shop', :anna, 'active', 'the bank was wrong');
SELECT release_at <= now() AS due, held_release_at FROM loyalty.accrual_queue WHERE receipt_id = 'A11';
SELECT action, detail, reason FROM loyalty.customer_log WHERE customer_id = :anna AND action = 'update' ORDER BY id;
SELECT loyalty.release_accruals() AS released;

-- 12. The analysts' view: cases by rule, store and day.
SELECT rule, action, store, cases, open, confirmed, released, false_positive_rate
  FROM loyalty.fraud_cases_daily ORDER BY rule, store;
-- Who may do what.
SELECT has_function_privilege('loyalty_admin', 'loyalty.release_hold(bigint, text)', 'EXECUTE') AS admin_release,
       has_function_privilege('loyalty_cashier', 'loyalty.release_hold(bigint, text)', 'EXECUTE') AS cashier_release,
       has_table_privilege('loyalty_admin', 'loyalty.fraud_rule', 'INSERT') AS admin_rules,
       has_table_privilege('loyalty_analyst', 'loyalty.fraud_cases_daily', 'SELECT') AS analyst_view,
       has_table_privilege('loyalty_analyst', 'loyalty.fraud_case', 'SELECT') AS analyst_cases;

REVOKE loyalty_cashier FROM fraud_cashier;
SELECT loyalty.revoke_program('shop', 'fraud_cashier');
DROP EXTENSION loyalty CASCADE;
DROP ROLE fraud_cashier;
