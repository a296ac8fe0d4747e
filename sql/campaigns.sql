-- Challenges and achievements (docs/campaigns.md): each goal (receipts,
-- spend, quantity, distinct, streak, steps), the window's edges (fixed and
-- from enrolment), automatic and opt-in enrolment, the audience, each
-- reward (points, coupon, achievement), completion once (a replay gives
-- nothing more), returns taking progress and the reward back (or keeping
-- it), the customer's reads, the events, and every bad input with its
-- SQLSTATE and nothing written.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('shop', 'Shop', 'bonus', 1000);   -- 10% back, released at once
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
INSERT INTO loyalty.product (program_id, sku, name, category, brand) VALUES
    (1, 'TV', 'Television', 'electronics/tv', 'Sony'),
    (1, 'PHONE', 'Phone', 'electronics/phone', 'Nokia'),
    (1, 'BREAD', 'Bread', 'food/bakery', 'Baker'),
    (1, 'PIZZA', 'Pizza', 'food/pizza', 'Mario'),
    (1, 'BOOTS', 'Ski boots', 'ski/boots', 'Atomic'),
    (1, 'SKIS', 'Skis', 'ski/skis', 'Atomic'),
    (1, 'SERVICE', 'Ski service', 'ski/service', 'Shop');
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit, audience)
VALUES (1, 'FREE-COFFEE', 'A coffee on us', 'active', '{"kind": "amount_off", "amount": 100}', 'coupon');
INSERT INTO loyalty.segment (program_id, code, name) VALUES (1, 'vip', 'VIP');
INSERT INTO loyalty.achievement (program_id, code, name, levels) VALUES
    (1, 'pizza-lover', 'Pizza lover', 3),
    (1, 'skier', 'Skier', 1);
SELECT loyalty.enroll('shop', card => '20000001') AS anna \gset
SELECT loyalty.enroll('shop', card => '20000002') AS boris \gset
SELECT loyalty.enroll('shop', card => '20000003') AS vera \gset
SELECT loyalty.enroll('shop', card => '20000004') AS dima \gset
SELECT loyalty.enroll('shop', card => '20000005') AS egor \gset
INSERT INTO loyalty.segment_member (customer_id, program_id, segment) VALUES (:vera, 1, 'vip');

-- A receipt of programme shop on a day of March 2026 at a time (UTC).
CREATE FUNCTION pg_temp.rc(id text, card text, lines jsonb, day int, at text DEFAULT '12:00:00',
                           extra jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('program', 'shop', 'receipt_id', id, 'customer', jsonb_build_object('card', card),
                              'lines', lines,
                              'at', format('2026-03-%s', lpad(day::text, 2, '0')) || 'T' || at || '+00:00',
                              'store', 'S1') || extra
$$;
CREATE FUNCTION pg_temp.commit(doc jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    r := loyalty.commit(doc);
    RETURN CASE WHEN (r #>> '{commit,replayed}')::boolean THEN 'replayed' ELSE 'committed' END;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- A challenge of programme shop, open for March 2026 unless told.
CREATE FUNCTION pg_temp.challenge(code text, goal text, target numeric, condition text DEFAULT NULL,
                                  reward_points bigint DEFAULT 100, extra jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    j jsonb := jsonb_strip_nulls(jsonb_build_object(
                   'program_id', 1, 'code', code, 'goal', goal, 'target', target,
                   'condition', condition, 'reward_points', reward_points,
                   'starts_at', '2026-03-01T00:00:00+00:00', 'ends_at', '2026-04-01T00:00:00+00:00')) || extra;
    cols text;
    id bigint;
BEGIN
    SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(j) k;
    EXECUTE format('INSERT INTO loyalty.challenge (%s) SELECT %s FROM jsonb_populate_record(NULL::loyalty.challenge, $1) RETURNING id',
                   cols, cols) USING j INTO id;
    RETURN id;
END
$$;
CREATE FUNCTION pg_temp.progress(cust bigint) RETURNS TABLE (challenge text, progress bigint, state text,
                                                           completions int, enrolled_at text, window_end text)
LANGUAGE sql AS $$
    SELECT c.code, p.progress, p.state, p.completions,
           to_char(p.enrolled_at AT TIME ZONE 'UTC', 'MM-DD HH24:MI'),
           to_char(p.window_end AT TIME ZONE 'UTC', 'MM-DD HH24:MI')
      FROM loyalty.challenge_progress p JOIN loyalty.challenge c ON c.id = p.challenge_id
     WHERE p.customer_id = cust ORDER BY c.code
$$;
CREATE FUNCTION pg_temp.lots(cust bigint) RETURNS TABLE (kind text, amount bigint, remaining bigint, valid_for interval)
LANGUAGE sql AS $$
    SELECT l.kind, l.amount, l.remaining, l.valid_to - l.valid_from
      FROM loyalty.lot l WHERE l.customer_id = cust AND l.kind <> 'regular' ORDER BY l.id
$$;
CREATE FUNCTION pg_temp.events(since bigint) RETURNS TABLE (type text, customer bigint, payload jsonb)
LANGUAGE sql AS $$
    SELECT e.type, e.customer_id, e.payload - 'lot_id' FROM loyalty.event e
     WHERE e.id > since AND e.type IN ('challenge_progress', 'challenge_completed', 'achievement_unlocked')
     ORDER BY e.id
$$;
\set tv '[{"line": 1, "sku": "TV", "qty": 1, "price": 3000}]'
\set bread '[{"line": 1, "sku": "BREAD", "qty": 1, "price": 100}]'
\set pizza2 '[{"line": 1, "sku": "PIZZA", "qty": 2, "price": 500}, {"line": 2, "sku": "BREAD", "qty": 1, "price": 100}]'

-- 1. Bad challenges: each refused with its SQLSTATE, nothing written.
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'visits', 3)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 0)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 2.5)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'spend', 10.555)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'quantity', 1.0005)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 1000000000001)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'distinct', 3)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'distinct', 3, extra => '{"distinct_of": "2 brands"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"distinct_of": "brand"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'streak', 3)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'streak', 3, extra => '{"streak_unit": "month"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'steps', 3, 'sku = ''TV''')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, reward_points => NULL)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, reward_points => 0)$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"reward_currency": "coins"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, reward_points => NULL, extra => '{"reward_currency": "bonus", "reward_achievement": "skier"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"reward_promotion": "NOPE"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"reward_achievement": "nope"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"reward_achievement": "skier", "reward_level": 2}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"ends_at": "2026-02-01T00:00:00+00:00"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"audience": "tiers"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"audience": "birthday"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, extra => '{"duration": "-1 day"}')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('X', 'receipts', 3, 'price >>> 3')$$);
SELECT state, message FROM pg_temp.err($$SELECT pg_temp.challenge('bad code!', 'receipts', 3)$$);
SELECT count(*) AS challenges FROM loyalty.challenge;

-- 2. Receipts, automatic, one window for all: the edges of [starts_at, ends_at).
SELECT pg_temp.challenge('THREE-VISITS', 'receipts', 3, extra => '{"starts_at": "2026-03-02T10:00:00+00:00", "ends_at": "2026-03-05T10:00:00+00:00", "reward_valid_for": "30 days"}') AS c_visits \gset
SELECT pg_temp.commit(pg_temp.rc('A0', '20000001', :'bread', 2, '09:59:59'));  -- before: does not count
SELECT * FROM pg_temp.progress(:anna);
SELECT max(id) AS ev FROM loyalty.event \gset
SELECT pg_temp.commit(pg_temp.rc('A1', '20000001', :'bread', 2, '10:00:00'));  -- at starts_at: enrols
SELECT pg_temp.commit(pg_temp.rc('A2', '20000001', :'bread', 3));
SELECT * FROM pg_temp.progress(:anna);
SELECT pg_temp.commit(pg_temp.rc('A3', '20000001', :'bread', 5, '10:00:00'));  -- at ends_at: does not count
SELECT * FROM pg_temp.progress(:anna);
SELECT pg_temp.commit(pg_temp.rc('A4', '20000001', :'bread', 5, '09:59:59'));  -- just before: completes
SELECT * FROM pg_temp.progress(:anna);
SELECT * FROM pg_temp.lots(:anna);
SELECT operation, amount, receipt_id, idempotency_key, reason FROM loyalty.ledger
 WHERE customer_id = :anna AND idempotency_key LIKE 'loyalty:challenge:%';
SELECT * FROM pg_temp.events(:ev);
-- a replay of the completing receipt gives nothing more; a fifth receipt counts on
SELECT pg_temp.commit(pg_temp.rc('A4', '20000001', :'bread', 5, '09:59:59'));
SELECT pg_temp.commit(pg_temp.rc('A5', '20000001', :'bread', 4));
SELECT * FROM pg_temp.progress(:anna);
SELECT count(*) AS reward_entries FROM loyalty.ledger WHERE customer_id = :anna AND idempotency_key LIKE 'loyalty:challenge:%';
-- a receipt of no customer, and a receipt with no line counted, write nothing
SELECT pg_temp.commit(jsonb_build_object('program', 'shop', 'receipt_id', 'N1', 'lines', :'bread'::jsonb,
                                         'at', '2026-03-03T12:00:00+00:00'));
SELECT count(*) AS receipts_counted FROM loyalty.challenge_receipt;

-- 3. Spend on electronics: discounts left out, points spent counted, the target in money.
SELECT pg_temp.challenge('TECH-5000', 'spend', 5000, 'category <@ ''electronics''', 500) AS c_tech \gset
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit, line_condition)
VALUES (1, 'TV10', 'TV 10% off', 'active', '{"kind": "percent_off", "percent": 10}', 'sku = ''TV''');
SELECT pg_temp.commit(pg_temp.rc('B1', '20000002',
    '[{"line": 1, "sku": "TV", "qty": 1, "price": 3000}, {"line": 2, "sku": "BREAD", "qty": 3, "price": 100}]', 10));
SELECT * FROM pg_temp.progress(:boris);   -- 3000 less 10%: 2700.00
SELECT balance FROM loyalty.balance(:boris, 'bonus');
SELECT pg_temp.commit(pg_temp.rc('B2', '20000002',
    '[{"line": 1, "sku": "PHONE", "qty": 2, "price": 1100}]', 11, extra => '{"points": 200}'));
SELECT * FROM pg_temp.progress(:boris);   -- 2700 + 2200 = 4900.00: 100 short
SELECT pg_temp.commit(pg_temp.rc('B3', '20000002', '[{"line": 1, "sku": "PHONE", "qty": 1, "price": 100}]', 12));
SELECT * FROM pg_temp.progress(:boris);
SELECT * FROM pg_temp.lots(:boris);

-- 4. Quantity, a window of 14 days from the first pizza ("3 pizzas in 14 days").
SELECT pg_temp.challenge('PIZZA-3', 'quantity', 3, 'category <@ ''food/pizza''', 300,
                         '{"duration": "14 days", "reward_achievement": "pizza-lover", "ends_at": null}') AS c_pizza \gset
SELECT pg_temp.commit(pg_temp.rc('C1', '20000003', :'pizza2', 1, '18:00:00'));
SELECT * FROM pg_temp.progress(:vera);
SELECT pg_temp.commit(pg_temp.rc('C2', '20000003', '[{"line": 1, "sku": "PIZZA", "qty": 1, "price": 500}]', 15, '18:00:00'));  -- 14 days on: outside
SELECT * FROM pg_temp.progress(:vera);
SELECT pg_temp.commit(pg_temp.rc('C3', '20000003', '[{"line": 1, "sku": "PIZZA", "qty": 1, "price": 500}]', 15, '17:59:59'));  -- just inside
SELECT * FROM pg_temp.progress(:vera);
SELECT achievement, name, level, levels FROM loyalty.customer_achievements('shop', :vera);

-- 5. Distinct values: categories of the ski department, and stores.
SELECT pg_temp.challenge('SKI-3CAT', 'distinct', 3, 'category <@ ''ski''', 50, '{"distinct_of": "category"}') AS c_cat \gset
SELECT pg_temp.challenge('STORES-2', 'distinct', 2, NULL, 50, '{"distinct_of": "receipt.store"}') AS c_store \gset
SELECT pg_temp.commit(pg_temp.rc('D1', '20000004', '[{"line": 1, "sku": "BOOTS", "qty": 1, "price": 100}, {"line": 2, "sku": "BOOTS", "qty": 1, "price": 100}, {"line": 3, "sku": "TV", "qty": 1, "price": 100}]', 10));
SELECT pg_temp.commit(pg_temp.rc('D2', '20000004', '[{"line": 1, "sku": "SKIS", "qty": 1, "price": 100}]', 11));
SELECT * FROM pg_temp.progress(:dima);
SELECT pg_temp.commit(pg_temp.rc('D3', '20000004', '[{"line": 1, "sku": "SERVICE", "qty": 1, "price": 100}]', 12, extra => '{"store": "S2"}'));
SELECT * FROM pg_temp.progress(:dima);
-- the values each counts, with the lines of receipts that give them (BOOTS twice in D1)
SELECT c.code, p.keys, p.key_counts FROM loyalty.challenge_progress p JOIN loyalty.challenge c ON c.id = p.challenge_id
 WHERE p.customer_id = :dima ORDER BY 1;

-- 6. A streak of three days: broken by a missing day, joined by a receipt that arrives late.
SELECT pg_temp.challenge('DAILY-3', 'streak', 3, NULL, 70, '{"streak_unit": "day"}') AS c_streak \gset
SELECT pg_temp.commit(pg_temp.rc('E1', '20000005', :'bread', 20, '23:30:00', '{"at": "2026-03-20T23:30:00+03:00"}'));  -- the 20th, its own date
SELECT pg_temp.commit(pg_temp.rc('E2', '20000005', :'bread', 21, '00:10:00'));
SELECT pg_temp.commit(pg_temp.rc('E3', '20000005', :'bread', 23));
SELECT pg_temp.commit(pg_temp.rc('E4', '20000005', :'bread', 24));
SELECT * FROM pg_temp.progress(:egor);   -- 20-21, 23-24: 2
SELECT pg_temp.commit(pg_temp.rc('E5', '20000005', :'bread', 22, '08:00:00'));   -- an offline till's receipt of the 22nd
SELECT * FROM pg_temp.progress(:egor);
-- the days it counts (days since 2000-01-01: 9575 is 2026-03-20), with their receipts
SELECT p.periods, p.period_counts FROM loyalty.challenge_progress p WHERE p.customer_id = :egor AND p.challenge_id = :c_streak;

-- 7. A quest of three steps, in order.
SELECT pg_temp.challenge('SKI-QUEST', 'steps', 3, NULL, NULL, '{"reward_achievement": "skier", "reward_promotion": "FREE-COFFEE"}') AS c_quest \gset
INSERT INTO loyalty.challenge_step (program_id, challenge_id, step, name, condition) VALUES
    (1, :c_quest, 1, 'Boots', 'category <@ ''ski/boots'''),
    (1, :c_quest, 2, 'Skis', 'category <@ ''ski/skis'''),
    (1, :c_quest, 3, 'Service', 'category <@ ''ski/service''');
SELECT pg_temp.commit(pg_temp.rc('F1', '20000001', '[{"line": 1, "sku": "SKIS", "qty": 1, "price": 900}]', 10));   -- skis first: no step
SELECT pg_temp.commit(pg_temp.rc('F2', '20000001', '[{"line": 1, "sku": "BOOTS", "qty": 1, "price": 500}]', 11));
SELECT * FROM pg_temp.progress(:anna);
SELECT max(id) AS ev FROM loyalty.event \gset
SELECT pg_temp.commit(pg_temp.rc('F3', '20000001', '[{"line": 1, "sku": "SERVICE", "qty": 1, "price": 50}, {"line": 2, "sku": "SKIS", "qty": 1, "price": 900}]', 12));
SELECT * FROM pg_temp.progress(:anna);
SELECT code, kind, customer_id = :anna AS hers, state FROM loyalty.coupon ORDER BY id;
SELECT achievement, name, level, levels FROM loyalty.customer_achievements('shop', :anna);
SELECT * FROM pg_temp.events(:ev);
-- receipts count in the order of their "at": a service on the 18th enrols and does no step,
-- skis on the 20th do none either; boots of the 19th arriving after them do the first, and
-- the skis then the second
SELECT pg_temp.commit(pg_temp.rc('Q0', '20000004', '[{"line": 1, "sku": "SERVICE", "qty": 1, "price": 50}]', 18));
SELECT pg_temp.commit(pg_temp.rc('Q1', '20000004', '[{"line": 1, "sku": "SKIS", "qty": 1, "price": 900}]', 20));
SELECT progress, to_char(last_at AT TIME ZONE 'UTC', 'MM-DD HH24:MI') AS last_at, last_receipt
  FROM loyalty.challenge_progress WHERE customer_id = :dima AND challenge_id = :c_quest;
SELECT pg_temp.commit(pg_temp.rc('Q2', '20000004', '[{"line": 1, "sku": "TV", "qty": 1, "price": 100}, {"line": 2, "sku": "BOOTS", "qty": 1, "price": 500}]', 19));
SELECT progress, to_char(last_at AT TIME ZONE 'UTC', 'MM-DD HH24:MI') AS last_at, last_receipt
  FROM loyalty.challenge_progress WHERE customer_id = :dima AND challenge_id = :c_quest;
-- the boots returned: the skis alone do no step again; the distinct categories keep boots (D1)
SELECT loyalty.refund('shop', 'Q2', '[{"line": 2, "qty": 1}]', 'Q2-R') ->> 'money' AS money;
SELECT c.code, p.progress, p.keys, p.key_counts FROM loyalty.challenge_progress p JOIN loyalty.challenge c ON c.id = p.challenge_id
 WHERE p.customer_id = :dima ORDER BY 1;
SELECT c.code, u.total, u.value, encode(r.lines, 'hex') AS lines, encode(r.alive, 'hex') AS alive
  FROM loyalty.challenge_receipt r, unnest(r.challenge_id, r.total, r.value) u (challenge, total, value)
  JOIN loyalty.challenge c ON c.id = u.challenge
 WHERE r.receipt_id = 'Q2' ORDER BY 1;
SELECT r.key, r.key_of, r.key_line FROM loyalty.challenge_receipt r WHERE r.receipt_id = 'Q2';

-- 8. Returns: a refund below the target takes the reward back; a new receipt completes it again.
SELECT max(id) AS ev FROM loyalty.event \gset
SELECT loyalty.refund('shop', 'B3', '[{"line": 1, "qty": 1}]', 'B3-R') ->> 'money' AS money;
SELECT * FROM pg_temp.progress(:boris);
SELECT * FROM pg_temp.lots(:boris);
SELECT operation, amount, idempotency_key FROM loyalty.ledger
 WHERE customer_id = :boris AND idempotency_key LIKE 'loyalty:challenge:%' ORDER BY version;
SELECT * FROM pg_temp.events(:ev);
SELECT pg_temp.commit(pg_temp.rc('B4', '20000002', '[{"line": 1, "sku": "PHONE", "qty": 1, "price": 150}]', 13));
SELECT * FROM pg_temp.progress(:boris);
SELECT operation, amount, idempotency_key FROM loyalty.ledger
 WHERE customer_id = :boris AND idempotency_key LIKE 'loyalty:challenge:%' ORDER BY version;
-- a part of a line: quantity left, spend less its share
SELECT loyalty.refund('shop', 'B2', '[{"line": 1, "qty": 1}]', 'B2-R') ->> 'money' AS money;
SELECT * FROM pg_temp.progress(:boris);   -- 2700 + 1100 + 150 = 3950.00
SELECT u.challenge = :c_tech AS tech, u.total, u.value, encode(r.lines, 'hex') AS lines, encode(r.alive, 'hex') AS alive
  FROM loyalty.challenge_receipt r, unnest(r.challenge_id, r.total, r.value) u (challenge, total, value)
 WHERE r.receipt_id = 'B2' ORDER BY 1;
-- the reward spent, then taken back: debt (programme shop: refund_shortfall debt)
SELECT pg_temp.commit(pg_temp.rc('B5', '20000002', '[{"line": 1, "sku": "PHONE", "qty": 1, "price": 1050}]', 14));
SELECT * FROM pg_temp.progress(:boris);
SELECT (loyalty.redeem(:boris, 'bonus', (SELECT balance FROM loyalty.balance(:boris, 'bonus')))).balance_after AS spent_all;
SELECT loyalty.cancel('shop', 'B5') ->> 'status' AS status;
SELECT * FROM pg_temp.progress(:boris);
SELECT balance, debt FROM loyalty.wallet WHERE customer_id = :boris;
-- the coupon and the achievement of the quest go back; a used coupon would stay used
SELECT loyalty.cancel('shop', 'F3') ->> 'status' AS status;
SELECT * FROM pg_temp.progress(:anna);
SELECT code, state FROM loyalty.coupon ORDER BY id;
SELECT achievement, name, level, levels FROM loyalty.customer_achievements('shop', :anna);

-- 9. keep_reward: a return leaves the reward and the completed state.
UPDATE loyalty.challenge SET keep_reward = true WHERE id = :c_pizza;
SELECT loyalty.cancel('shop', 'C1') ->> 'status' AS status;
SELECT * FROM pg_temp.progress(:vera);
SELECT achievement, name, level, levels FROM loyalty.customer_achievements('shop', :vera);

-- 10. Opt-in: receipts before the enrolment never count; the audience; bad calls.
SELECT pg_temp.challenge('VIP-2', 'receipts', 2, NULL, 20, '{"enrolment": "opt_in", "audience": "segments", "segments": ["vip"], "duration": "7 days"}') AS c_vip \gset
SELECT pg_temp.commit(pg_temp.rc('G1', '20000003', :'bread', 20));
SELECT * FROM pg_temp.progress(:vera) WHERE challenge = 'VIP-2';
SELECT loyalty.enrol_challenge('shop', :vera, 'VIP-2', '2026-03-20T13:00:00+00:00');
SELECT loyalty.enrol_challenge('shop', :vera, 'VIP-2', '2026-03-21T13:00:00+00:00') ->> 'enrolled' AS again;
SELECT pg_temp.commit(pg_temp.rc('G2', '20000003', :'bread', 21));
SELECT pg_temp.commit(pg_temp.rc('G3', '20000003', :'bread', 27, '13:00:00'));   -- the window is over
SELECT * FROM pg_temp.progress(:vera) WHERE challenge = 'VIP-2';
SELECT state, message, detail FROM pg_temp.err($$SELECT loyalty.enrol_challenge('shop', $$ || :anna || $$, 'VIP-2', '2026-03-20T13:00:00+00:00')$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge('shop', $$ || :anna || $$, 'NOPE')$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge('shop', 999999, 'VIP-2')$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge('nope', 1, 'VIP-2')$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge('shop', $$ || :vera || $$, 'VIP-2', '2026-04-01T00:00:00+00:00')$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge('shop', NULL, 'VIP-2')$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge('shop', $$ || :vera || $$, NULL)$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge(NULL, 1, 'VIP-2')$$);
UPDATE loyalty.challenge SET active = false WHERE id = :c_vip;
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge('shop', $$ || :vera || $$, 'VIP-2', '2026-03-20T13:00:00+00:00')$$);
SELECT count(*) AS enrolments FROM loyalty.challenge_progress WHERE challenge_id = :c_vip;

-- 11. No progress for a customer who is not active; none from an inactive challenge.
SELECT loyalty.set_customer_status('shop', :dima, 'fraud_hold', 'check') ->> 'status' AS status;
SELECT pg_temp.commit(pg_temp.rc('D4', '20000004', '[{"line": 1, "sku": "SKIS", "qty": 1, "price": 100}]', 13, extra => '{"store": "S3"}'));
SELECT * FROM pg_temp.progress(:dima);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enrol_challenge('shop', $$ || :dima || $$, 'THREE-VISITS', '2026-03-03T00:00:00+00:00')$$);

-- 12. What cannot change once written, and what can.
SELECT state, message FROM pg_temp.err($$UPDATE loyalty.challenge SET goal = 'spend' WHERE id = $$ || :c_visits);
SELECT state, message FROM pg_temp.err($$UPDATE loyalty.challenge SET condition = 'sku = ''TV''' WHERE id = $$ || :c_visits);
UPDATE loyalty.challenge SET target = 10, name = 'Ten visits' WHERE id = :c_visits;
SELECT code, target, name FROM loyalty.challenge WHERE id = :c_visits;
-- a challenge with enrolments is not deleted; one without is
SELECT state, message FROM pg_temp.err($$DELETE FROM loyalty.challenge WHERE id = $$ || :c_visits);
SELECT pg_temp.challenge('NOBODY', 'receipts', 1, 'sku = ''NONE''') AS c_nobody \gset
DELETE FROM loyalty.challenge WHERE id = :c_nobody;
SELECT count(*) AS nobody FROM loyalty.challenge WHERE code = 'NOBODY';

-- 13. The customer's reads.
SELECT challenge, goal, state, progress, target, remaining, reward_points
  FROM loyalty.customer_challenges('shop', :anna, '2026-03-20T00:00:00+00:00');
SELECT challenge, state, progress, target, remaining
  FROM loyalty.customer_challenges('shop', :boris, '2026-04-02T00:00:00+00:00');
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.customer_challenges('shop', 999999)$$);
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.customer_challenges('shop', NULL)$$);
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.customer_achievements(NULL, 1)$$);
SELECT state, message FROM pg_temp.err($$SELECT * FROM loyalty.customer_achievements('shop', 999999)$$);

-- 14. Automatic enrolment for an audience: the customer's tier or segments as calculate
-- found them for the receipt; the audience is read at enrolment, not after.
INSERT INTO loyalty.tier (program_id, code, name, rank, min_spend) VALUES
    (1, 'base', 'Base', 0, 0), (1, 'gold', 'Gold', 1, 1000000);
UPDATE loyalty.customer SET tier = 'gold' WHERE id = :egor;
SELECT pg_temp.challenge('GOLD-2', 'receipts', 2, NULL, 20, '{"audience": "tiers", "tiers": ["gold"]}') AS c_gold \gset
SELECT pg_temp.challenge('VIP-AUTO', 'receipts', 2, NULL, 20, '{"audience": "segments", "segments": ["vip", "staff"]}') AS c_vipauto \gset
SELECT pg_temp.commit(pg_temp.rc('H1', '20000005', :'bread', 25));   -- egor, gold
SELECT pg_temp.commit(pg_temp.rc('H2', '20000003', :'bread', 25));   -- vera, vip
SELECT pg_temp.commit(pg_temp.rc('H3', '20000001', :'bread', 25));   -- anna, neither
SELECT c.code, p.customer_id = :egor AS egor, p.customer_id = :vera AS vera, p.progress
  FROM loyalty.challenge_progress p JOIN loyalty.challenge c ON c.id = p.challenge_id
 WHERE p.challenge_id IN (:c_gold, :c_vipauto) ORDER BY 1, 2;
-- vera leaves the segment: she stays enrolled and her receipts count on
DELETE FROM loyalty.segment_member WHERE customer_id = :vera;
SELECT pg_temp.commit(pg_temp.rc('H4', '20000003', :'bread', 26));
SELECT progress, state FROM loyalty.challenge_progress WHERE challenge_id = :c_vipauto AND customer_id = :vera;

DROP EXTENSION loyalty CASCADE;
