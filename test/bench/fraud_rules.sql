-- test/bench/fraud_rules.sql — the fraud rules of the checkout.fraud.c16
-- figure (test/bench/run.sh): 20 velocity rules of the programme "shop" of
-- test/bench/calculate_data.sql, the set a chain runs, loaded inactive (the
-- benchmark switches them on for its rounds with rules and off after each).
--
-- 15 of them count what a checkout's commit adds, all by customer or by
-- identifier (the receipts name their customer by card): receipts, points
-- earned and spent, distinct cards and stores, two of them on the lines of
-- a category only.  So a commit folds two rows of loyalty.fraud_tally, its
-- customer's and its card's.  The other 5 are of refunds, adjustments and
-- ledger holds, by store, customer and actor: a commit adds to none of
-- them, as in production.  None is of receipts or points by store or by
-- actor: the benchmark's clients share one role and 50 stores, so such a
-- rule would make a few rows that every checkout locks (docs/fraud.md), which
-- is not what the figure measures.  The receipts carry no "device": no rule
-- by device.
--
-- The shapes are production's; the thresholds of receipts and points are
-- not: the benchmark replays 5 000 stored receipts (each with one card and
-- one store) as fast as it can, so that in a full run every card commits
-- some 20 receipts of some 100 000.00 and 15 000 points each within minutes.
-- They are set some tenfold above what a full run reaches, so that no rule
-- trips (run.sh checks that no case was opened and prints how full the
-- fullest window got); a trip would change what is measured (a refuse
-- fails the checkout, a hold queues the customer's accruals).  The distinct
-- measures keep production's thresholds: a card is seen in one store per
-- receipt, a customer has one card.
--
--   psql -f test/bench/fraud_rules.sql   (in the calculate data set)
\set ON_ERROR_STOP on
SET client_min_messages = warning;

INSERT INTO loyalty.fraud_rule (program_id, code, name, measure, subject, "window", threshold,
                                action, condition, message, active)
SELECT p.id, r.code, r.name, r.measure, r.subject, r."window"::interval, r.threshold,
       r.action, r.condition::loyalty.condition, r.message, false
  FROM loyalty.program p,
       (VALUES
        -- commit: by customer
        ('cust.receipts.1h', 'receipts of a customer in an hour', 'receipts', 'customer', '1 hour', 300, 'flag', NULL, NULL),
        ('cust.receipts.1d', 'receipts of a customer in a day', 'receipts', 'customer', '1 day', 1000, 'hold', NULL, NULL),
        ('cust.earned.1d', 'points a customer earned in a day', 'points_earned', 'customer', '1 day', 5000000, 'flag', NULL, NULL),
        ('cust.earned.7d', 'points a customer earned in a week', 'points_earned', 'customer', '7 days', 20000000, 'hold', NULL, NULL),
        ('cust.spent.1h', 'points a customer spent in an hour', 'points_spent', 'customer', '1 hour', 3000000, 'hold', NULL, NULL),
        ('cust.spent.1d', 'points a customer spent in a day', 'points_spent', 'customer', '1 day', 5000000, 'flag', NULL, NULL),
        ('cust.cards.1d', 'cards a customer was identified by in a day', 'distinct_cards', 'customer', '1 day', 3, 'flag', NULL, NULL),
        ('cust.stores.1h', 'stores a customer bought in within an hour', 'distinct_stores', 'customer', '1 hour', 8, 'flag', NULL, NULL),
        ('cust.tobacco.1d', 'receipts with tobacco of a customer in a day (resale)', 'receipts', 'customer', '1 day', 1000, 'flag',
         'category <@ ''c39''', NULL),
        ('cust.c00.spent.1d', 'points a customer spent on category c00 in a day (resale of electronics)', 'points_spent', 'customer', '1 day', 2000000, 'flag',
         'category <@ ''c00''', NULL),
        -- commit: by card
        ('card.receipts.1h', 'receipts of a card in an hour', 'receipts', 'identifier', '1 hour', 300, 'flag', NULL, NULL),
        ('card.receipts.1d', 'receipts of a card in a day', 'receipts', 'identifier', '1 day', 1500, 'refuse', NULL,
         'This card has made too many purchases today; please call the hotline.'),
        ('card.earned.1d', 'points earned with a card in a day', 'points_earned', 'identifier', '1 day', 5000000, 'flag', NULL, NULL),
        ('card.spent.1d', 'points spent with a card in a day', 'points_spent', 'identifier', '1 day', 8000000, 'refuse', NULL,
         'Points cannot be spent with this card today; please call the hotline.'),
        ('card.stores.1h', 'stores a card was used in within an hour (a cloned card)', 'distinct_stores', 'identifier', '1 hour', 8, 'hold', NULL, NULL),
        -- not on commit: refunds by store and customer, the staff's adjustments and holds
        ('store.refunds.1h', 'refunds of a store in an hour', 'refunds', 'store', '1 hour', 40, 'flag', NULL, NULL),
        ('store.refunded.1d', 'money a store refunded in a day (minor units)', 'money_refunded', 'store', '1 day', 50000000, 'flag', NULL, NULL),
        ('cust.refunds.7d', 'refunds of a customer in a week', 'refunds', 'customer', '7 days', 10, 'flag', NULL, NULL),
        ('actor.adjust.1h', 'manual adjustments by one role in an hour', 'adjustments', 'actor', '1 hour', 50, 'flag', NULL, NULL),
        ('actor.holds.1d', 'ledger holds by one role in a day', 'holds', 'actor', '1 day', 5000, 'flag', NULL, NULL)
       ) r (code, name, measure, subject, "window", threshold, action, condition, message)
 WHERE p.code = 'shop';

DO $$
BEGIN
    IF (SELECT count(*) FROM loyalty.fraud_rule r JOIN loyalty.program p ON p.id = r.program_id
         WHERE p.code = 'shop' AND r.measure IN ('receipts', 'points_earned', 'points_spent',
                                                 'distinct_cards', 'distinct_stores')) <> 15
       OR (SELECT count(*) FROM loyalty.fraud_rule r JOIN loyalty.program p ON p.id = r.program_id
            WHERE p.code = 'shop') <> 20 THEN
        RAISE EXCEPTION 'fraud_rules.sql: the programme "shop" must have 20 rules, 15 of them on commit';
    END IF;
END
$$;
