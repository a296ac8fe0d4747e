-- test/bench/campaigns.sql — the challenges and the experiment of the
-- checkout.campaigns.c16 figure (test/bench/run.sh): 50 challenges of the
-- programme "shop" of test/bench/calculate_data.sql and one experiment of
-- two variants, loaded inactive (the benchmark switches them on for its
-- rounds with campaigns and off after each).
--
-- The challenges are of every goal, most of them on the lines of one
-- category (so a receipt of 20 lines counts for some of them, not all):
-- receipts, spend and quantity with targets a full run reaches for some
-- cards (the completing commit writes the reward: a lot, an achievement
-- level), distinct categories, a daily streak, and quests of three steps.
-- The experiment splits the customers 1 : 1; its treatment gets 10 of the
-- promotions and 5 of the challenges, as an A/B test of a reward strategy
-- would.  The windows run from a day before the load to 60 days after it.
--
--   psql -f test/bench/campaigns.sql   (in the calculate data set)
\set ON_ERROR_STOP on
SET client_min_messages = warning;

INSERT INTO loyalty.achievement (program_id, code, name, levels)
SELECT id, 'regular', 'Regular', 5 FROM loyalty.program WHERE code = 'shop';
INSERT INTO loyalty.challenge (program_id, code, name, goal, condition, target, distinct_of, streak_unit,
                               starts_at, ends_at, reward_points, reward_achievement, reward_level, active)
SELECT p.id, 'CH' || i, 'challenge ' || i, g.goal,
       CASE WHEN g.goal = 'steps' OR i % 5 = 0 THEN NULL
            ELSE format('category <@ %L', 'c' || lpad((i % 39)::text, 2, '0')) END::loyalty.condition,
       CASE g.goal WHEN 'receipts' THEN 15 WHEN 'spend' THEN 50000 WHEN 'quantity' THEN 40
                   WHEN 'distinct' THEN 30 WHEN 'streak' THEN 5 ELSE 3 END,
       CASE WHEN g.goal = 'distinct' THEN 'category' END,
       CASE WHEN g.goal = 'streak' THEN 'day' END,
       now() - interval '1 day', now() + interval '60 days', 100 + i,
       CASE WHEN i % 10 = 0 THEN 'regular' END, 1 + i % 5, false
  FROM loyalty.program p, generate_series(1, 50) i,
       LATERAL (SELECT (ARRAY['receipts', 'spend', 'quantity', 'distinct', 'streak', 'steps'])[1 + i % 6] AS goal) g
 WHERE p.code = 'shop';
INSERT INTO loyalty.challenge_step (program_id, challenge_id, step, condition)
SELECT c.program_id, c.id, s, format('category <@ %L', 'c' || lpad(((c.id + s * 7) % 39)::text, 2, '0'))::loyalty.condition
  FROM loyalty.challenge c, generate_series(1, 3) s
 WHERE c.goal = 'steps';
INSERT INTO loyalty.experiment (program_id, code, name, starts_at, active)
SELECT id, 'BENCH-AB', 'the treatment''s promotions and challenges', now() - interval '1 day', false
  FROM loyalty.program WHERE code = 'shop';
INSERT INTO loyalty.experiment_variant (program_id, experiment_id, code, control, promotions, challenges)
SELECT e.program_id, e.id, v.code, v.control, v.promotions, v.challenges
  FROM loyalty.experiment e,
       (VALUES ('a', true, NULL, NULL),
               ('b', false, (SELECT array_agg('PR' || i) FROM generate_series(1, 100, 10) i),
                            (SELECT array_agg('CH' || i) FROM generate_series(1, 5) i))) v (code, control, promotions, challenges)
 WHERE e.code = 'BENCH-AB';
