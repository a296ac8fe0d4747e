-- Scenarios of challenges from the field reports (docs/campaigns.md): the
-- pizza chain's "3 pizzas in 14 days" (seeds 004: coins, an accrual queue,
-- a reward the customer sees in the app), and the sports retailer's ski
-- quest of three steps (boots, skis, a service) unlocking an achievement;
-- and a referral: a friend's code at enrolment, both rewarded once the
-- friend's first order has been kept for the return window.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(23);

INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay)
VALUES ('pizza', 'Pizza', 'coins', 500, '2 hours');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'coins', 'Coins', 1 FROM loyalty.program WHERE code = 'pizza';
SELECT id AS pizza FROM loyalty.program WHERE code = 'pizza' \gset
INSERT INTO loyalty.product (program_id, sku, name, category) VALUES
    (:pizza, 'MARGHERITA', 'Margherita', 'pizza'),
    (:pizza, 'PEPPERONI', 'Pepperoni', 'pizza'),
    (:pizza, 'COLA', 'Cola', 'drinks');
INSERT INTO loyalty.challenge (program_id, code, name, goal, condition, target, duration,
                               starts_at, ends_at, reward_points, reward_valid_for, reward_kind)
VALUES (:pizza, 'THREE-PIZZAS', '3 pizzas in 14 days', 'quantity', 'category = ''pizza''', 3, '14 days',
        now() - interval '30 days', now() + interval '30 days', 300, '30 days', 'challenge');
SELECT loyalty.enroll('pizza', phone => '+79161234567') AS masha \gset

CREATE FUNCTION pg_temp.order(id text, ago interval, lines jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT loyalty.commit(jsonb_build_object('program', 'pizza', 'receipt_id', id,
                                             'customer', jsonb_build_object('phone', '+79161234567'),
                                             'at', now() - ago, 'lines', lines))
$$;

SELECT pg_temp.order('P1', '13 days', '[{"line": 1, "sku": "MARGHERITA", "qty": 1, "price": 549}, {"line": 2, "sku": "COLA", "qty": 2, "price": 99}]');
SELECT is((SELECT progress || '/' || target || ' ' || state
             FROM loyalty.customer_challenges('pizza', :masha) WHERE challenge = 'THREE-PIZZAS'),
          '1.000/3 active', 'the first pizza enrols Masha: 1 of 3 (the cola does not count)');
SELECT is((SELECT window_end - enrolled_at FROM loyalty.challenge_progress WHERE customer_id = :masha),
          interval '14 days', 'her 14 days start at the first pizza');
SELECT pg_temp.order('P2', '5 days', '[{"line": 1, "sku": "PEPPERONI", "qty": 1, "price": 649}]');
SELECT is((SELECT remaining FROM loyalty.customer_challenges('pizza', :masha) WHERE challenge = 'THREE-PIZZAS'),
          1.000, 'one pizza left');
SELECT is((SELECT count(*) FROM loyalty.lot WHERE customer_id = :masha AND kind = 'challenge'), 0::bigint,
          'no reward before the target');
SELECT pg_temp.order('P3', '1 day', '[{"line": 1, "sku": "MARGHERITA", "qty": 1, "price": 549}]');
SELECT is((SELECT state FROM loyalty.customer_challenges('pizza', :masha) WHERE challenge = 'THREE-PIZZAS'),
          'completed', 'the third pizza completes it');
SELECT is((SELECT amount || ' ' || (valid_to - valid_from) FROM loyalty.lot WHERE customer_id = :masha AND kind = 'challenge'),
          '300 30 days', 'the reward: 300 coins at once, valid for 30 days, while the receipts'' coins wait in the queue');
SELECT is((SELECT count(*) FROM loyalty.accrual_queue WHERE customer_id = :masha), 3::bigint,
          'the three receipts'' own coins are still queued (2 hours)');
SELECT is((SELECT payload ->> 'points' FROM loyalty.event WHERE type = 'challenge_completed' AND customer_id = :masha),
          '300', 'the app hears of it: challenge_completed with the points');
-- the third pizza is cancelled within the delay: the reward goes back
SELECT loyalty.cancel('pizza', 'P3', 'cold pizza');
SELECT is((SELECT progress || ' ' || state FROM loyalty.customer_challenges('pizza', :masha) WHERE challenge = 'THREE-PIZZAS'),
          '2.000 active', 'cancelling the third pizza takes the progress back to 2');
SELECT is((SELECT remaining FROM loyalty.lot WHERE customer_id = :masha AND kind = 'challenge'), 0::bigint,
          'and the 300 coins back from their lot');
-- a pizza from before her window (an offline till's, sent late) does not count
SELECT pg_temp.order('P4', '14 days', '[{"line": 1, "sku": "PEPPERONI", "qty": 1, "price": 649}]');
SELECT is((SELECT progress FROM loyalty.customer_challenges('pizza', :masha) WHERE challenge = 'THREE-PIZZAS'),
          2.000, 'a pizza before the first one of her window does not count');

-- The ski quest.
INSERT INTO loyalty.program (code, name, default_currency) VALUES ('ski', 'Ski club', 'bonus');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'ski';
SELECT id AS ski FROM loyalty.program WHERE code = 'ski' \gset
INSERT INTO loyalty.product (program_id, sku, name, category, brand) VALUES
    (:ski, 'BOOTS', 'Hawx boots', 'ski/boots', 'Atomic'),
    (:ski, 'SKIS', 'Redster skis', 'ski/skis', 'Atomic'),
    (:ski, 'WAX', 'Ski service', 'service/ski', 'Club');
INSERT INTO loyalty.achievement (program_id, code, name) VALUES (:ski, 'ready-to-ski', 'Ready to ski');
INSERT INTO loyalty.challenge (program_id, code, name, goal, target, starts_at, reward_achievement, reward_points)
VALUES (:ski, 'SKI-QUEST', 'Boots, skis, service', 'steps', 3, now() - interval '60 days', 'ready-to-ski', 1000);
INSERT INTO loyalty.challenge_step (program_id, challenge_id, step, name, condition)
SELECT c.program_id, c.id, v.step, v.name, v.cond::loyalty.condition FROM loyalty.challenge c,
       (VALUES (1, 'Boots', 'category <@ ''ski/boots'''), (2, 'Skis', 'category <@ ''ski/skis'''),
               (3, 'Service', 'category <@ ''service/ski''')) v (step, name, cond)
 WHERE c.code = 'SKI-QUEST';
SELECT loyalty.enroll('ski', card => '7700000001') AS ivan \gset
CREATE FUNCTION pg_temp.buy(id text, ago interval, sku text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT loyalty.commit(jsonb_build_object('program', 'ski', 'receipt_id', id,
                                             'customer', jsonb_build_object('card', '7700000001'),
                                             'at', now() - ago,
                                             'lines', jsonb_build_array(jsonb_build_object('line', 1, 'sku', sku, 'qty', 1, 'price', 100))))
$$;
SELECT pg_temp.buy('S1', '40 days', 'SKIS');
SELECT is((SELECT progress FROM loyalty.customer_challenges('ski', :ivan) WHERE challenge = 'SKI-QUEST'), 0::numeric,
          'skis before boots do not start the quest');
SELECT pg_temp.buy('S2', '30 days', 'BOOTS');
SELECT pg_temp.buy('S3', '20 days', 'WAX');
SELECT is((SELECT progress || '/' || target FROM loyalty.customer_challenges('ski', :ivan) WHERE challenge = 'SKI-QUEST'),
          '1/3', 'boots are step 1; the service before the skis is not step 3');
SELECT pg_temp.buy('S4', '10 days', 'SKIS');
SELECT pg_temp.buy('S5', '5 days', 'WAX');
SELECT is((SELECT state FROM loyalty.customer_challenges('ski', :ivan) WHERE challenge = 'SKI-QUEST'),
          'completed', 'boots, skis, then the service complete the quest');
SELECT is((SELECT achievement || ' ' || level FROM loyalty.customer_achievements('ski', :ivan)),
          'ready-to-ski 1', 'and unlock the achievement');

-- A referral: Olga gives her code to Pavel.
INSERT INTO loyalty.referral_scheme (program_id, currency, referrer_points, referee_points, valid_for, return_days)
VALUES (:pizza, 'coins', 200, 100, '60 days', 7);
SELECT loyalty.enroll('pizza', phone => '+79165550001', email => 'olga@example.com') AS olga \gset
SELECT loyalty.referral_code('pizza', :olga) AS olga_code \gset
SELECT throws_ok(format($$SELECT loyalty.enroll('pizza', phone => '+7 916 555-00-01', referral_code => %L)$$, :'olga_code'),
                 'P0L05', NULL, 'Olga cannot refer a second account of hers under her own phone');
SELECT throws_ok(format($$SELECT loyalty.enroll('pizza', phone => '+79165550003', email => 'OLGA@example.com', referral_code => %L)$$, :'olga_code'),
                 'P0L05', NULL, 'nor under her own e-mail');
SELECT loyalty.enroll('pizza', phone => '+79165550002',
                      referral_code => lower(substr(:'olga_code', 1, 4) || ' ' || substr(:'olga_code', 5))) AS pavel \gset
SELECT is((SELECT referrer_id || ' ' || state FROM loyalty.referral WHERE referee_id = :pavel), :olga || ' pending',
          'Pavel, who typed her code in lower case with a space, is Olga''s referral');
SELECT loyalty.commit(jsonb_build_object('program', 'pizza', 'receipt_id', 'PAVEL-1',
                                         'customer', jsonb_build_object('phone', '+79165550002'),
                                         'lines', '[{"line": 1, "sku": "PEPPERONI", "qty": 1, "price": 649}]'::jsonb));
SELECT is(loyalty.settle_referrals(), 0, 'right after his first order nothing is given: it may still be returned');
-- eight days on (the order's commit moved back, with its key)
UPDATE loyalty.receipt SET committed_at = committed_at - interval '8 days' WHERE receipt_id = 'PAVEL-1';
UPDATE loyalty.receipt_key SET committed_at = committed_at - interval '8 days' WHERE receipt_id = 'PAVEL-1';
SELECT is(loyalty.settle_referrals(), 1, 'eight days on, the order kept: the referral is settled');
SELECT results_eq(format($$SELECT customer_id, amount, valid_to - valid_from FROM loyalty.lot WHERE kind = 'referral' ORDER BY customer_id$$),
                  format($$VALUES (%s::bigint, 200::bigint, interval '60 days'), (%s, 100, interval '60 days')$$, :olga, :pavel),
                  'Olga earns 200 coins and Pavel 100, valid for 60 days');
SELECT is((SELECT string_agg(payload ->> 'role', ',' ORDER BY id) FROM loyalty.event WHERE type = 'referral_rewarded'),
          'referrer,referee', 'each hears of it: referral_rewarded');
SELECT is(loyalty.settle_referrals(), 0, 'and the job never rewards them twice');

SELECT * FROM finish();
ROLLBACK;
