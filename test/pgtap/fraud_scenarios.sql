-- Scenarios of the fraud controls (0.20) taken from the field report of a
-- points platform ("a multi-layered fraud detection system ... real-time
-- alerts and automated hold mechanisms for high-risk transactions"): a
-- stolen card used at three stores within an hour is held after the
-- second; a cashier who refunds twenty receipts in an hour is flagged;
-- points farmed by many small receipts on one card are held, confirmed as
-- fraud and forfeited; and a normal customer's year of shopping trips none
-- of a set of realistic rules.  Each scenario has its own programme, so
-- that its rules see only its operations.  Receipts carry fixed "at"
-- instants of 2025 (a commit is measured at its receipt's "at"); refunds
-- and the ledger's operations are measured at now(), the same instant all
-- through this transaction.
BEGIN;
SELECT plan(85);

-- A receipt of one line of the price, at a fixed instant.
CREATE FUNCTION pg_temp.receipt(program text, id text, customer jsonb, store text, at text,
                                price numeric, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('program', program, 'receipt_id', id, 'customer', customer,
                              'store', store, 'at', at,
                              'lines', jsonb_build_array(jsonb_build_object('line', 1, 'qty', 1, 'price', price)))
           || extra
$$;
-- Commit it: what became of its accrual (released, held, none...), or the
-- SQLSTATE and message of its error.
CREATE FUNCTION pg_temp.accrual(doc jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN loyalty.commit(doc) #>> '{commit,accrual}';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- The rules whose windows had something in them after an operation.
CREATE TEMP TABLE counted (rule_id bigint PRIMARY KEY);
CREATE FUNCTION pg_temp.note_counted() RETURNS void LANGUAGE sql AS $$
    INSERT INTO counted SELECT DISTINCT r FROM loyalty.fraud_tally t, unnest(t.rule_id) r
    ON CONFLICT DO NOTHING
$$;
-- Commit receipts one after the other, in the order given.
CREATE FUNCTION pg_temp.commit_all(docs jsonb[]) RETURNS TABLE (receipt_id text, accrual text)
LANGUAGE plpgsql AS $$
DECLARE
    d jsonb;
BEGIN
    FOREACH d IN ARRAY docs LOOP
        receipt_id := d ->> 'receipt_id';
        accrual := pg_temp.accrual(d);
        PERFORM pg_temp.note_counted();
        RETURN NEXT;
    END LOOP;
END
$$;
-- The operations of a case, in order: "commit A2, commit A3".
CREATE FUNCTION pg_temp.operations(case_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(o.operation || ' ' || o.reference, ', ' ORDER BY o.n)
      FROM loyalty.fraud_case_operation o WHERE o.case_id = operations.case_id
$$;
-- Whether the queue holds the receipt's accrual for a held customer.
CREATE FUNCTION pg_temp.held(program bigint, receipt text) RETURNS boolean LANGUAGE sql AS $$
    SELECT bool_and(q.release_at = 'infinity' AND q.held_release_at IS NOT NULL AND q.forfeited_case IS NULL)
      FROM loyalty.accrual_queue q WHERE q.program_id = program AND q.receipt_id = receipt
$$;

------------------------------------------------------------------------
-- a. A stolen card used at three stores within an hour is held after the
-- second.  Programme "cards": 10% back, at once.  Rule: more than one
-- store an hour on one card (resolution one minute) holds the customer.
-- The thief spends 500 of the victim's points at S1 at 10:00; at S2 at
-- 10:10 the card has been in two stores: the victim's account goes to
-- fraud_hold and the receipt's points are held; at S3 at 10:25 the thief
-- can spend nothing, and that receipt's points are held too.
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('cards', 'Cards', 'bonus', 1000);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'cards';
SET CONSTRAINTS ALL IMMEDIATE;
SELECT id AS cards FROM loyalty.program WHERE code = 'cards' \gset
SELECT loyalty.enroll('cards', card => '40000001') AS victim,
       loyalty.enroll('cards', card => '40000002') AS boris \gset
SELECT loyalty.add_identifier('cards', :victim, 'card', '40000011', 'a second card') AS second_card \gset
SELECT (loyalty.accrue(:victim, 'bonus', 2000, valid_from => '2025-01-01')).balance_after AS victim_points \gset
INSERT INTO loyalty.fraud_rule (program_id, code, name, measure, subject, "window", threshold, action)
VALUES (:cards, 'CARD_STORES', 'one card in two stores within an hour', 'distinct_stores', 'identifier',
        '1 hour', 1, 'hold');

SELECT is(pg_temp.accrual(pg_temp.receipt('cards', 'A1', '{"card": "40000001"}', 'S1',
                                          '2025-03-02T10:00:00+00:00', 1500, '{"points": 500}')),
          'released', 'the first store: the card spends 500 points and earns, nothing is wrong yet');
SELECT ok(NOT EXISTS (SELECT FROM loyalty.fraud_case WHERE program_id = :cards), 'one store is no case');
SELECT balance AS after_s1 FROM loyalty.balance(:victim, 'bonus') \gset
SELECT is(pg_temp.accrual(pg_temp.receipt('cards', 'A2', '{"card": "40000001"}', 'S2',
                                          '2025-03-02T10:10:00+00:00', 1200)),
          'held', 'the second store ten minutes later trips the rule: the receipt''s accrual is held');
SELECT is((SELECT status FROM loyalty.customer WHERE id = :victim), 'fraud_hold', 'and the customer is on fraud_hold');
SELECT ok(pg_temp.held(:cards, 'A2'), 'the accrual waits in the queue, never due, with the time it would have been due');
-- The third store: calculate says the points may not be spent; a commit
-- asking for all of them spends none.
SELECT pg_temp.receipt('cards', 'A3', '{"card": "40000001"}', 'S3', '2025-03-02T10:25:00+00:00', 3000,
                       '{"points": "max"}') AS a3 \gset
SELECT loyalty.calculate(:'a3') AS calc \gset
SELECT is(:'calc'::jsonb #>> '{customer,points_spending}', 'not allowed: the account is fraud_hold',
          'at the third store calculate says spending is not allowed');
SELECT is(:'calc'::jsonb #> '{totals,points_spent}', '{}'::jsonb, 'and spends nothing of the "max" asked for');
SELECT loyalty.commit(:'a3') AS a3_commit \gset
SELECT is(:'a3_commit'::jsonb #> '{commit,points_spent}', '{}'::jsonb, 'the commit asking for "max" spends no points');
SELECT is(:'a3_commit'::jsonb #>> '{commit,accrual}', 'held', 'and its accrual is held too');
SELECT ok(pg_temp.held(:cards, 'A3'), 'in the queue');
SELECT is((SELECT balance FROM loyalty.balance(:victim, 'bonus')), :'after_s1'::bigint,
          'the wallet neither lost nor gained a point after the first store');
-- The case: one, open, by the card, opened by the second store's receipt
-- and joined by the third's.
SELECT id AS a_case FROM loyalty.fraud_case WHERE program_id = :cards \gset
SELECT is((SELECT count(*) FROM loyalty.fraud_case WHERE program_id = :cards), 1::bigint, 'one case');
SELECT is((SELECT ROW(rule_code, action, subject_kind, subject, customer_id, store, tally, threshold, state)::text
             FROM loyalty.fraud_case WHERE id = :a_case),
          ROW('CARD_STORES', 'hold', 'identifier', 'card:40000001', :victim, 'S2', 2, 1, 'open')::text,
          'open, a hold on the card, of the victim, opened at S2 with two stores in the hour');
SELECT is(pg_temp.operations(:a_case), 'commit A2, commit A3', 'with two operations: the second and third stores');
-- At 10:25 the card had been in S1, S2 and S3 within the hour; a distinct
-- measure keeps the most recent threshold + 1 items, enough to decide, so
-- the count recorded is threshold + 1 (docs/fraud.md, "Concurrency and cost").
SELECT is((SELECT tally FROM loyalty.fraud_case_operation WHERE case_id = :a_case AND n = 2), 2::bigint,
          'the third store''s operation records threshold + 1 stores, the most a distinct count keeps');
SELECT is((SELECT count(*) FROM loyalty.event WHERE program_id = :cards AND type = 'fraud_hold'), 1::bigint,
          'the event fraud_hold is written once');
SELECT is((SELECT count(*) FROM loyalty.event WHERE program_id = :cards AND type LIKE 'fraud%'), 1::bigint,
          'and no other fraud event');
SELECT is((SELECT string_agg(action || ' ' || (detail #>> '{status,to}'), ',') FROM loyalty.customer_log
            WHERE customer_id = :victim AND action LIKE 'fraud%'),
          'fraud_hold fraud_hold', 'the customer''s log says the rule put the account on hold');
-- The victim's other card is another subject: in a fourth store within the
-- hour it is its first store, so no second case; its accrual is held all
-- the same, since the customer is on hold.
SELECT is(pg_temp.accrual(pg_temp.receipt('cards', 'A4', '{"card": "40000011"}', 'S4',
                                          '2025-03-02T10:40:00+00:00', 800)),
          'held', 'the customer''s other card: the accrual is held, the customer being on hold');
SELECT is((SELECT count(*) FROM loyalty.fraud_case WHERE program_id = :cards), 1::bigint,
          'but the other card trips nothing: still one case');
SELECT is(pg_temp.operations(:a_case), 'commit A2, commit A3', 'and the case did not get it');
-- Another customer's card in S1, in S2 an hour later (the minute of 10:00
-- has left the window at 11:00) and in S3 the next day: no case, every
-- accrual released.
SELECT is(array_agg(accrual ORDER BY receipt_id), ARRAY['released', 'released', 'released'],
          'another card in S1, S2 an hour later and S3 the next day: all released')
  FROM pg_temp.commit_all(ARRAY[
       pg_temp.receipt('cards', 'B1', '{"card": "40000002"}', 'S1', '2025-03-02T10:00:00+00:00', 1000),
       pg_temp.receipt('cards', 'B2', '{"card": "40000002"}', 'S2', '2025-03-02T11:00:00+00:00', 1000),
       pg_temp.receipt('cards', 'B3', '{"card": "40000002"}', 'S3', '2025-03-03T09:30:00+00:00', 1000)]);
SELECT ok(NOT EXISTS (SELECT FROM loyalty.fraud_case WHERE program_id = :cards AND subject = 'card:40000002'),
          'stores more than the window apart are no case');
SELECT is((SELECT status FROM loyalty.customer WHERE id = :boris), 'active', 'and that customer stays active');
-- A thief who asks for points at every store: the receipt at the second
-- store trips the hold rule while spending points.  A hold opens a case
-- and puts the customer on fraud_hold; it is not a refusal.
SELECT loyalty.enroll('cards', card => '40000003') AS vera \gset
SELECT (loyalty.accrue(:vera, 'bonus', 2000, valid_from => '2025-01-01')).balance_after AS vera_points \gset
SELECT is(pg_temp.accrual(pg_temp.receipt('cards', 'V1', '{"card": "40000003"}', 'S1',
                                          '2025-04-05T10:00:00+00:00', 1500, '{"points": 100}')),
          'released', 'a card spends points at a first store');
SELECT pg_temp.accrual(pg_temp.receipt('cards', 'V2', '{"card": "40000003"}', 'S2',
                                       '2025-04-05T10:10:00+00:00', 1500, '{"points": 100}')) AS v2 \gset
SELECT is(:'v2'::text, 'held', 'the second store''s receipt, spending points, is committed, its accrual held');
SELECT is((SELECT status FROM loyalty.customer WHERE id = :vera), 'fraud_hold', 'and its customer is on fraud_hold');
SELECT is((SELECT count(*) FROM loyalty.fraud_case WHERE program_id = :cards AND subject = 'card:40000003'), 1::bigint,
          'with a case of the card');

------------------------------------------------------------------------
-- b. A cashier who refunds 20 receipts in an hour is flagged.  Programme
-- "till": a rule flags more than 19 refunds an hour by one actor (the role
-- in effect), so the 20th is the first over.  Twenty-one receipts of three
-- shoppers, committed by the superuser in May 2025, are refunded at now()
-- by a till's role made here.
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('till', 'Till', 'bonus', 500);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'till';
SET CONSTRAINTS ALL IMMEDIATE;
SELECT id AS till FROM loyalty.program WHERE code = 'till' \gset
SELECT loyalty.enroll('till', card => '50000001') AS t1, loyalty.enroll('till', card => '50000002') AS t2,
       loyalty.enroll('till', card => '50000003') AS t3 \gset
INSERT INTO loyalty.fraud_rule (program_id, code, name, measure, subject, "window", threshold, action)
VALUES (:till, 'CASHIER_REFUNDS', 'a till refunding more than 19 receipts an hour', 'refunds', 'actor',
        '1 hour', 19, 'flag');
SELECT is(array_agg(DISTINCT accrual), ARRAY['released'], 'twenty-one receipts of three shoppers committed')
  FROM pg_temp.commit_all(ARRAY(
       SELECT pg_temp.receipt('till', 'R' || lpad(i::text, 2, '0'),
                              jsonb_build_object('card', '5000000' || (1 + i % 3)), 'S7',
                              format('2025-05-%sT12:00:00+00:00', lpad(i::text, 2, '0')), 400 + 10 * i)
         FROM generate_series(1, 21) i ORDER BY i));
CREATE ROLE fs_scenario_till;
GRANT loyalty_cashier TO fs_scenario_till;
SELECT loyalty.grant_program('till', 'fs_scenario_till') AS bound \gset
-- Refund one receipt's line: the money refunded, or the error.
CREATE FUNCTION pg_temp.refund(program text, receipt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN loyalty.refund(program, receipt, '[{"line": 1, "qty": 1}]', receipt || '-R') ->> 'money';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SET ROLE fs_scenario_till;
SELECT string_agg(pg_temp.refund('till', 'R' || lpad(i::text, 2, '0')), ',' ORDER BY i) AS refunds_1_19
  FROM generate_series(1, 19) i \gset
RESET ROLE;
SELECT is(:'refunds_1_19'::text, (SELECT string_agg((400 + 10 * i) || '.00', ',' ORDER BY i) FROM generate_series(1, 19) i),
          'the till refunds nineteen receipts');
SELECT is((SELECT count(*) FROM loyalty.receipt_refund WHERE program_id = :till AND actor = 'fs_scenario_till'),
          19::bigint, 'each recorded as the till''s');
SELECT ok(NOT EXISTS (SELECT FROM loyalty.fraud_case WHERE program_id = :till),
          'the 19th refund in the hour is at the threshold, not past it: no case');
SELECT is((SELECT sum(a) FROM loyalty.fraud_tally t, unnest(t.amount) a
            WHERE t.program_id = :till AND t.subject_kind = 'actor' AND t.subject = 'fs_scenario_till'),
          19::numeric, 'the till''s window holds 19 refunds');
SET ROLE fs_scenario_till;
SELECT pg_temp.refund('till', 'R20') AS refund_20 \gset
RESET ROLE;
SELECT is(:'refund_20'::text, '600.00', 'the 20th refund is made: a flag does not stop the till');
SELECT id AS b_case FROM loyalty.fraud_case WHERE program_id = :till \gset
SELECT is((SELECT count(*) FROM loyalty.fraud_case WHERE program_id = :till AND state = 'open'), 1::bigint,
          'the 20th refund opens one case');
SELECT is((SELECT ROW(rule_code, action, subject_kind, subject, store, tally, threshold)::text
             FROM loyalty.fraud_case WHERE id = :b_case),
          ROW('CASHIER_REFUNDS', 'flag', 'actor', 'fs_scenario_till', 'S7', 20, 19)::text,
          'a flag on the actor, the till''s role, with 20 refunds in the hour');
SELECT is(pg_temp.operations(:b_case), 'refund R20/R20-R', 'the case''s operation is the 20th refund');
SELECT is((SELECT payload ->> 'subject' FROM loyalty.event WHERE program_id = :till AND type = 'fraud_flagged'),
          'fs_scenario_till', 'the event fraud_flagged names the till');
SELECT is((SELECT count(*) FROM loyalty.customer WHERE program_id = :till AND status <> 'active'), 0::bigint,
          'a flag holds no shopper');
-- The till may not read the cases about itself.
CREATE FUNCTION pg_temp.as_till(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    PERFORM set_config('role', 'fs_scenario_till', true);
    EXECUTE sql INTO r;
    PERFORM set_config('role', 'none', true);
    RETURN r;
END
$$;
SELECT throws_ok($$SELECT pg_temp.as_till('SELECT count(*) FROM loyalty.fraud_case')$$, '42501', NULL,
                 'the till cannot read the cases about it');
SET ROLE fs_scenario_till;
SELECT pg_temp.refund('till', 'R21') AS refund_21 \gset
RESET ROLE;
SELECT is(:'refund_21'::text, '610.00', 'the 21st refund is made');
SELECT is((SELECT count(*) FROM loyalty.fraud_case WHERE program_id = :till), 1::bigint, 'and opens no second case');
SELECT is(pg_temp.operations(:b_case), 'refund R20/R20-R, refund R21/R21-R', 'it joins the open case');
SELECT is((SELECT tally FROM loyalty.fraud_case_operation WHERE case_id = :b_case AND n = 2), 21::bigint,
          'with 21 refunds in the hour');
SELECT is((SELECT count(*) FROM loyalty.event WHERE program_id = :till AND type LIKE 'fraud%'), 1::bigint,
          'no second event');

------------------------------------------------------------------------
-- c. Points farmed by many small receipts on one card.  Programme "farm":
-- a point per 1.00, at once.  Rule: more than 10 receipts a day on one
-- card holds the customer.  Twelve receipts of 1.00, twenty minutes apart,
-- on 14 June 2025: ten earn, the 11th trips the rule and its point is held,
-- the 12th's too.  confirm_fraud forfeits the held points and blocks the
-- customer; a refund of a forfeited receipt then takes its point off the
-- queue, not from the wallet.
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('farm', 'Farm', 'bonus', 10000);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'farm';
SET CONSTRAINTS ALL IMMEDIATE;
SELECT id AS farm FROM loyalty.program WHERE code = 'farm' \gset
SELECT loyalty.enroll('farm', card => '60000001') AS farmer \gset
INSERT INTO loyalty.fraud_rule (program_id, code, name, measure, subject, "window", threshold, action)
VALUES (:farm, 'SMALL_RECEIPTS', 'more than 10 receipts a day on one card', 'receipts', 'identifier',
        '1 day', 10, 'hold');
CREATE TEMP TABLE farmed AS
SELECT * FROM pg_temp.commit_all(ARRAY(
    SELECT pg_temp.receipt('farm', 'F' || lpad(i::text, 2, '0'), '{"card": "60000001"}', 'S1',
                           to_char(timestamp '2025-06-14 08:00' + i * interval '20 minutes',
                                   'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'), 1.00)
      FROM generate_series(1, 12) i ORDER BY i));
SELECT is((SELECT string_agg(accrual, ',' ORDER BY receipt_id) FROM farmed),
          'released,released,released,released,released,released,released,released,released,released,held,held',
          'ten receipts of 1.00 earn their point; the 11th and 12th are held');
SELECT is((SELECT balance FROM loyalty.balance(:farmer, 'bonus')), 10::bigint, 'the wallet has the ten points');
SELECT id AS c_case FROM loyalty.fraud_case WHERE program_id = :farm \gset
SELECT is((SELECT ROW(rule_code, action, subject_kind, subject, customer_id, tally, threshold, state)::text
             FROM loyalty.fraud_case WHERE program_id = :farm),
          ROW('SMALL_RECEIPTS', 'hold', 'identifier', 'card:60000001', :farmer, 11, 10, 'open')::text,
          'the 11th receipt opened a hold case on the card with 11 receipts in the day');
SELECT is(pg_temp.operations(:c_case), 'commit F11, commit F12', 'and the 12th joined it');
SELECT is((SELECT status FROM loyalty.customer WHERE id = :farmer), 'fraud_hold', 'the farmer is on hold');
SELECT ok(pg_temp.held(:farm, 'F11') AND pg_temp.held(:farm, 'F12'), 'both points wait in the queue');
-- The admin confirms the fraud.
SELECT ROW(state, forfeited, reason)::text AS confirmed
  FROM loyalty.confirm_fraud(:c_case, 'farming: a dozen receipts of 1.00 in four hours') \gset
SELECT is(:'confirmed'::text, ROW('confirmed', 2, 'farming: a dozen receipts of 1.00 in four hours')::text,
          'confirm_fraud: the case is confirmed, two held accruals forfeited');
SELECT is((SELECT status FROM loyalty.customer WHERE id = :farmer), 'blocked', 'the farmer is blocked');
SELECT results_eq(
    format($$SELECT receipt_id, release_at, held_release_at, forfeited_case FROM loyalty.accrual_queue
              WHERE program_id = %s ORDER BY receipt_id$$, :farm),
    format($$VALUES ('F11', 'infinity'::timestamptz, NULL::timestamptz, %1$s::bigint),
                    ('F12', 'infinity', NULL, %1$s)$$, :c_case),
    'the held accruals are forfeited: never due, not held, naming the case');
SELECT is((SELECT payload ->> 'status' FROM loyalty.event WHERE program_id = :farm AND type = 'fraud_confirmed'),
          'blocked', 'the event fraud_confirmed says the customer is blocked');
SELECT is((SELECT array_length(rule_id, 1) FROM loyalty.fraud_tally
            WHERE program_id = :farm AND subject_kind = 'identifier' AND subject = 'card:60000001'),
          NULL::int, 'the rule''s window of the card starts afresh');
SELECT is(loyalty.release_accruals(), 0::bigint, 'the drain releases no forfeited point');
SELECT is((SELECT balance FROM loyalty.balance(:farmer, 'bonus')), 10::bigint, 'the wallet still has ten');
-- A refund of a forfeited receipt: its point comes off the queue; the
-- wallet and the ledger do not move.
SELECT count(*) AS farmer_entries FROM loyalty.ledger WHERE customer_id = :farmer \gset
SELECT loyalty.refund('farm', 'F11', '[{"line": 1, "qty": 1}]', 'F11-R') AS f11_refund \gset
SELECT is(:'f11_refund'::jsonb -> 'points_taken', '{"bonus": 1}'::jsonb, 'the refund of F11 takes its point');
SELECT is(:'f11_refund'::jsonb -> 'ledger', '[]'::jsonb, 'with no ledger operation');
SELECT is((SELECT string_agg(receipt_id, ',') FROM loyalty.accrual_queue WHERE program_id = :farm), 'F12',
          'off the queue: F12''s forfeited point is left');
SELECT ok(NOT EXISTS (SELECT FROM loyalty.ledger WHERE customer_id = :farmer AND receipt_id = 'F11'),
          'the ledger has no take-back entry for F11');
SELECT is((SELECT count(*) FROM loyalty.ledger WHERE customer_id = :farmer), :'farmer_entries'::bigint,
          'nor any new entry');
SELECT is((SELECT balance FROM loyalty.balance(:farmer, 'bonus')), 10::bigint, 'the wallet keeps its ten points');
-- A refund of a receipt whose point was released takes it from the wallet.
SELECT is(loyalty.refund('farm', 'F01', '[{"line": 1, "qty": 1}]', 'F01-R') -> 'points_taken', '{"bonus": 1}'::jsonb,
          'a refund of a receipt released earlier takes its point');
SELECT is((SELECT string_agg(operation || ' ' || amount, ',') FROM loyalty.ledger
            WHERE customer_id = :farmer AND receipt_id = 'F01' AND operation <> 'accrue'),
          'refund -1', 'from the wallet, through the ledger');
SELECT is((SELECT balance FROM loyalty.balance(:farmer, 'bonus')), 9::bigint, 'which has nine');

------------------------------------------------------------------------
-- d. A normal customer's year trips nothing.  Programme "club": 5% back,
-- at once, with fourteen rules of the kind a platform runs (every measure
-- and every subject).  Nina shops on Tuesday evenings at her home store by
-- card, on Saturdays at S1 or S2 alternately, every third Thursday at S3
-- by phone, all through 2025, with a television of 59 990.00 in late
-- November; then, at now(), she returns three purchases, spends points
-- twice, has points held for a web order and released, and gets a
-- goodwill adjustment.  No rule trips, nothing is refused, she stays
-- active; every rule counted her.
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('club', 'Club', 'bonus', 500);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'club';
SET CONSTRAINTS ALL IMMEDIATE;
SELECT id AS club FROM loyalty.program WHERE code = 'club' \gset
SELECT loyalty.enroll('club', card => '70000001', phone => '+79165550102') AS nina \gset
INSERT INTO loyalty.fraud_rule (program_id, code, measure, subject, "window", threshold, action)
SELECT :club, code, measure, subject, w::interval, threshold, action
  FROM (VALUES ('RECEIPTS_DAY',        'receipts',        'customer',   '1 day',    5,        'flag'),
               ('CARD_RECEIPTS_HOUR',  'receipts',        'identifier', '1 hour',   3,        'refuse'),
               ('EARNED_DAY',          'points_earned',   'customer',   '1 day',    5000,     'hold'),
               ('SPENT_DAY',           'points_spent',    'customer',   '1 day',    5000,     'refuse'),
               ('REFUNDS_30D',         'refunds',         'customer',   '30 days',  5,        'flag'),
               ('REFUNDED_30D',        'money_refunded',  'customer',   '30 days',  10000000, 'flag'),
               ('CARDS_DAY',           'distinct_cards',  'customer',   '1 day',    2,        'flag'),
               ('PHONES_DAY',          'distinct_phones', 'customer',   '1 day',    1,        'flag'),
               ('CARD_STORES_HOUR',    'distinct_stores', 'identifier', '1 hour',   1,        'hold'),
               ('STORE_REFUNDED_DAY',  'money_refunded',  'store',      '1 day',    10000000, 'flag'),
               ('CASHIER_REFUNDS',     'refunds',         'actor',      '1 hour',   19,       'flag'),
               ('DEVICE_CARDS_HOUR',   'distinct_cards',  'device',     '1 hour',   5,        'flag'),
               ('ADJUSTMENTS_DAY',     'adjustments',     'customer',   '1 day',    2,        'flag'),
               ('HOLDS_HOUR',          'holds',           'customer',   '1 hour',   3,        'refuse'))
       r (code, measure, subject, w, threshold, action);
SELECT is((SELECT count(*) FROM loyalty.fraud_rule WHERE program_id = :club AND active), 14::bigint,
          'fourteen rules are active');
-- The year: weeks from Monday 6 January 2025 to Monday 22 December.
CREATE TEMP TABLE year AS
SELECT 'N' || to_char(at, 'YYYYMMDD') AS id, at, store, customer, price
  FROM (SELECT d + time '18:30' AS at, 'S1' AS store, '{"card": "70000001"}'::jsonb AS customer,
               300 + (w * 37 % 40) * 50 AS price
          FROM generate_series(0, 50) w, LATERAL (SELECT date '2025-01-06' + 7 * w + 1 AS d) x
        UNION ALL
        SELECT d + time '11:00', CASE WHEN w % 2 = 0 THEN 'S1' ELSE 'S2' END, '{"card": "70000001"}',
               CASE WHEN w = 46 THEN 59990 ELSE 500 + (w * 53 % 30) * 100 END
          FROM generate_series(0, 50) w, LATERAL (SELECT date '2025-01-06' + 7 * w + 5 AS d) x
        UNION ALL
        SELECT d + time '13:15', 'S3', '{"phone": "+7 916 555-01-02"}', 250 + w * 10
          FROM generate_series(0, 50, 3) w, LATERAL (SELECT date '2025-01-06' + 7 * w + 3 AS d) x) s;
SELECT is((SELECT ROW(count(*), min(at)::date, max(at)::date)::text FROM year),
          ROW(119, date '2025-01-07', date '2025-12-27')::text, '119 receipts from 7 January to 27 December 2025');
SELECT is((SELECT price FROM year WHERE id = 'N20251129'), 59990, 'the television on Saturday 29 November');
CREATE TEMP TABLE year_result AS
SELECT * FROM pg_temp.commit_all(ARRAY(
    SELECT pg_temp.receipt('club', id, customer, store,
                           to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'), price,
                           jsonb_build_object('device', 'POS-' || store))
      FROM year ORDER BY at));
SELECT is((SELECT string_agg(DISTINCT accrual, ',') FROM year_result), 'released',
          'every receipt of the year is committed and its points released: no refusal, no hold');
SELECT is((SELECT count(*) FROM year_result), 119::bigint, 'all 119 of them');
-- At now(): three returns (the television among them), two redemptions, a
-- hold released, a goodwill adjustment.
SELECT lives_ok($$SELECT loyalty.refund('club', 'N20251129', '[{"line": 1, "qty": 1}]', 'tv-return')$$,
                'the television is returned');
SELECT lives_ok($$SELECT loyalty.refund('club', 'N20250607', '[{"line": 1, "qty": 1}]', 'r-0607')$$,
                'and a Saturday''s purchase');
SELECT lives_ok($$SELECT loyalty.refund('club', 'N20250828', '[{"line": 1, "qty": 1}]', 'r-0828')$$,
                'and a Thursday''s');
SELECT lives_ok(format($$SELECT loyalty.redeem(%s, 'bonus', 1000)$$, :nina), 'she spends 1 000 points');
SELECT lives_ok(format($$SELECT loyalty.redeem(%s, 'bonus', 1500)$$, :nina), 'and 1 500 more');
SELECT lives_ok(format($$SELECT loyalty.release(loyalty.hold(%s, 'bonus', 300, '1 hour'))$$, :nina),
                'points held for a web order, and released');
SELECT lives_ok(format($$SELECT loyalty.adjust(%s, 'bonus', 200, 'goodwill: a late delivery')$$, :nina),
                'a goodwill adjustment');
SELECT is((SELECT count(*) FROM loyalty.fraud_case WHERE program_id = :club), 0::bigint, 'no case');
SELECT is((SELECT count(*) FROM loyalty.event WHERE program_id = :club AND type LIKE 'fraud%'), 0::bigint,
          'no fraud event');
SELECT is((SELECT status FROM loyalty.customer WHERE id = :nina), 'active', 'Nina is active');
SELECT ok(NOT EXISTS (SELECT FROM loyalty.accrual_queue WHERE program_id = :club),
          'no accrual of hers waits in the queue');
-- (the tallies were looked at after each receipt, and are now: an
-- operation drops from its subject's tally what has left the windows)
SELECT pg_temp.note_counted() \gset
SELECT set_eq(format('SELECT rule_id FROM counted JOIN loyalty.fraud_rule r ON r.id = rule_id WHERE r.program_id = %s', :club),
              format('SELECT id FROM loyalty.fraud_rule WHERE program_id = %s', :club),
              'every rule counted her operations: each had elements in the tallies');
SELECT set_eq(format('SELECT DISTINCT subject_kind FROM loyalty.fraud_tally WHERE program_id = %s', :club),
              ARRAY['customer', 'identifier', 'store', 'actor', 'device'],
              'by every subject');

SELECT * FROM finish();
ROLLBACK;
