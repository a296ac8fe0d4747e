-- Tiers and rule segments: a receipt lifts its customer at once to the best
-- tier the window qualifies them for (by spend, by receipts, all or any);
-- refunds and cancels never lower a tier until the programme's review,
-- where review_tiers moves customers down (or up) once per period; every
-- change is recorded with its reason and emits tier_changed; promotions
-- for a tier apply once the customer has it.  refresh_segments rebuilds
-- rule segments from conditions over the customer's document and purchase
-- statistics, leaves static ones alone, and respects refresh_every.  Every
-- bad input with its SQLSTATE and nothing written.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('shop', 'Shop', 'bonus', 0);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
INSERT INTO loyalty.tier (program_id, code, name, rank, min_spend, min_receipts, qualify) VALUES
    (1, 'base', 'Base', 0, NULL, NULL, 'all'),
    (1, 'silver', 'Silver', 1, 1000, NULL, 'all'),
    (1, 'gold', 'Gold', 2, 5000, 5, 'any');          -- 5000 spent or 5 receipts
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit, audience, tiers)
VALUES (1, 'GOLD10', 'Gold 10% off', 'active', '{"kind": "percent_off", "percent": 10}', 'tiers', '{gold}');
SELECT loyalty.enroll('shop', card => '10000001') AS anna \gset
SELECT loyalty.enroll('shop', card => '10000002') AS boris \gset

CREATE FUNCTION pg_temp.buy(id text, card text, price numeric) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT loyalty.commit(jsonb_build_object('program', 'shop', 'receipt_id', id,
                                             'customer', jsonb_build_object('card', card),
                                             'lines', jsonb_build_array(jsonb_build_object(
                                                 'line', 1, 'sku', 'X', 'qty', 1, 'price', price))))
$$;
CREATE FUNCTION pg_temp.tiers() RETURNS TABLE (customer bigint, tier text, from_tier text, to_tier text,
                                               reason text, spend bigint, receipts integer, receipt_id text)
LANGUAGE sql AS $$
    SELECT c.id, c.tier, t.from_tier, t.to_tier, t.reason, t.spend, t.receipts, t.receipt_id
      FROM loyalty.customer c LEFT JOIN loyalty.tier_change t ON t.customer_id = c.id
     ORDER BY c.id, t.id
$$;

-- 1. A new customer has no tier; the first receipt gives the base tier.
SELECT id, tier, tier_since IS NULL AS no_since FROM loyalty.customer ORDER BY id;
SELECT pg_temp.buy('A1', '10000001', 400) -> 'totals' -> 'to_pay' AS paid;
SELECT * FROM pg_temp.tiers();

-- 2. Spend over 1000 in the window: silver at once, with its event.
SELECT pg_temp.buy('A2', '10000001', 700) -> 'totals' -> 'to_pay' AS paid;
SELECT * FROM pg_temp.tiers() WHERE customer = :anna;
SELECT type, customer_id, payload FROM loyalty.event WHERE type = 'tier_changed' ORDER BY id;
SELECT spend, receipts, last_at IS NOT NULL AS has_last
  FROM loyalty.customer_stats(1, :anna, now() - interval '1 year');

-- 3. Gold by receipts (any): five receipts, however small; the fifth lifts
-- boris past silver to gold, and the gold promotion applies to his next
-- calculation.
SELECT pg_temp.buy('B' || i, '10000002', 10) -> 'totals' -> 'to_pay' AS paid FROM generate_series(1, 4) i;
SELECT tier FROM loyalty.customer WHERE id = :boris;
SELECT loyalty.calculate('{"program": "shop", "customer": {"card": "10000002"},
                           "lines": [{"line": 1, "sku": "X", "qty": 1, "price": 100}]}') -> 'totals' -> 'discount' AS discount;
SELECT pg_temp.buy('B5', '10000002', 10) -> 'totals' -> 'to_pay' AS paid;
SELECT tier, tier_since IS NOT NULL AS since FROM loyalty.customer WHERE id = :boris;
SELECT loyalty.calculate('{"program": "shop", "customer": {"card": "10000002"},
                           "lines": [{"line": 1, "sku": "X", "qty": 1, "price": 100}]}') -> 'totals' -> 'discount' AS discount;
-- a replay lifts nothing again
SELECT pg_temp.buy('B5', '10000002', 10) #> '{commit,replayed}' AS replayed;
SELECT count(*) AS changes FROM loyalty.tier_change WHERE customer_id = :boris;

-- 4. A refund and a cancel lower the figures but not the tier: anna keeps
-- silver although she now has 400 of spend and one receipt.
SELECT loyalty.refund('shop', 'A2', '[{"line": 1}]', 'F1') ->> 'status' AS status;
SELECT loyalty.cancel('shop', 'B5') ->> 'status' AS status;
SELECT spend, receipts FROM loyalty.customer_stats(1, :anna, now() - interval '1 year');
SELECT spend, receipts FROM loyalty.customer_stats(1, :boris, now() - interval '1 year');
SELECT id, tier FROM loyalty.customer ORDER BY id;

-- 5. The review: customers not reviewed in this period are moved to what the
-- window qualifies them for: anna down to base, and boris too (40 of spend
-- and 4 receipts reach neither silver's 1000 nor gold's 5000 or 5).
SELECT job, backlog FROM loyalty.job_health WHERE job = 'loyalty.review_tiers';
SELECT loyalty.review_tiers() AS reviewed;
SELECT * FROM pg_temp.tiers();
SELECT job, backlog FROM loyalty.job_health WHERE job = 'loyalty.review_tiers';
-- reviewed in this period: a second run reviews nobody, even when the
-- customer no longer qualifies
UPDATE loyalty.tier SET min_spend = NULL, min_receipts = NULL WHERE code = 'silver';
UPDATE loyalty.tier SET min_spend = NULL, min_receipts = NULL WHERE code = 'gold';
SELECT loyalty.review_tiers() AS reviewed;
-- a receipt, though, lifts at once: gold now needs nothing
SELECT pg_temp.buy('A3', '10000001', 1) -> 'totals' -> 'to_pay' AS paid;
SELECT tier FROM loyalty.customer WHERE id = :anna;
UPDATE loyalty.tier SET min_spend = 1000 WHERE code = 'silver';
UPDATE loyalty.tier SET min_spend = 5000, min_receipts = 5 WHERE code = 'gold';
-- the next period (the last review moved back before its start): down again
UPDATE loyalty.customer SET tier_reviewed_at = date_trunc('quarter', now()) - interval '1 day';
SELECT loyalty.review_tiers(batch_limit => 1) AS reviewed;
SELECT loyalty.review_tiers() AS reviewed;
SELECT * FROM pg_temp.tiers() WHERE reason = 'review';
SELECT count(*) AS tier_events FROM loyalty.event WHERE type = 'tier_changed';

-- 6. Bad input: 23514 / 23505 / 22023, nothing written.
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.tier (program_id, code, name, rank) VALUES (1, 'neg', 'Neg', -1)$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.tier (program_id, code, name, rank) VALUES (1, 'twin', 'Twin', 1)$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.tier (program_id, code, name, rank) VALUES (1, 'Bad Code', 'Bad', 7)$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.tier (program_id, code, name, rank, min_spend) VALUES (1, 'x', 'X', 8, -1)$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.tier (program_id, code, name, rank, qualify) VALUES (1, 'y', 'Y', 9, 'most')$$);
SELECT state, message FROM pg_temp.err($$UPDATE loyalty.program SET tier_review = 'week'$$);
SELECT state, message FROM pg_temp.err($$UPDATE loyalty.program SET tier_window = '0'$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.review_tiers(0)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.review_tiers(10, interval '-1 second')$$);
SELECT count(*) AS tiers FROM loyalty.tier;

-- 7. Rule segments: frequent (two receipts or more in 30 days), big
-- (more than 300 paid and a receipt in the last 30 days), adults (age over
-- 18 read from the birthday); a static segment stays as it is.
UPDATE loyalty.customer SET birth_date = '1990-05-01' WHERE id = :anna;
INSERT INTO loyalty.segment (program_id, code, name, kind, rule, stats_window) VALUES
    (1, 'frequent', 'Frequent', 'rule', 'customer.frequency >= 2', '30 days'),
    (1, 'big', 'Big spenders', 'rule', 'customer.monetary > 300 and customer.recency_days <= 30', '30 days'),
    (1, 'adults', 'Adults', 'rule', 'customer.age >= 18', '30 days'),
    (1, 'staff', 'Staff', 'static', NULL, '365 days');
INSERT INTO loyalty.segment_member (customer_id, program_id, segment) VALUES (:boris, 1, 'staff');
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit, audience, segments)
VALUES (1, 'FREQ5', 'Frequent 5% off', 'active', '{"kind": "percent_off", "percent": 5}', 'segments', '{frequent}');
SELECT job, backlog FROM loyalty.job_health WHERE job = 'loyalty.refresh_segments';
SELECT loyalty.refresh_segments() AS refreshed;
SELECT segment, array_agg(customer_id ORDER BY customer_id) AS members
  FROM loyalty.segment_member GROUP BY segment ORDER BY segment;
SELECT code, members, refreshed_at IS NOT NULL AS refreshed FROM loyalty.segment ORDER BY code;
SELECT loyalty.calculate('{"program": "shop", "customer": {"card": "10000002"},
                           "lines": [{"line": 1, "sku": "X", "qty": 1, "price": 100}]}') -> 'totals' -> 'discount' AS discount;
-- not due again for a day; with force, rebuilt: boris's receipts cancelled
-- take him out of frequent
SELECT loyalty.refresh_segments() AS refreshed;
SELECT loyalty.cancel('shop', 'B' || i) ->> 'status' AS status FROM generate_series(1, 4) i;
SELECT loyalty.refresh_segments(force => true) AS refreshed;
SELECT segment, array_agg(customer_id ORDER BY customer_id) AS members
  FROM loyalty.segment_member GROUP BY segment ORDER BY segment;
SELECT loyalty.customer_document(c, 400, 2, now() - interval '3 days', 2) AS document
  FROM loyalty.customer c WHERE id = :anna;

-- 8. Segments' bad input: 23514, 22P02 (a rule that does not parse), 22023, 22004.
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.segment (program_id, code, name, kind) VALUES (1, 'norule', 'No rule', 'rule')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.segment (program_id, code, name, kind) VALUES (1, 'odd', 'Odd', 'dynamic')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.segment (program_id, code, name, kind, rule) VALUES (1, 'bad', 'Bad', 'rule', 'frequency >>> 2')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refresh_segments(interval '0')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.refresh_segments(force => NULL)$$);

-- 9. The tiers live in the programme's compiled catalogue, which commit
-- reads: a change of them bumps the catalogue generation, and the next
-- commit in this backend decides with the tiers as they are now.  A
-- customer in the highest tier stays there; a tier added above them lifts
-- them at the receipt that reaches it, not before.
SELECT loyalty.catalog_generation() AS g0 \gset
UPDATE loyalty.tier SET min_spend = NULL, min_receipts = NULL WHERE code = 'gold';
SELECT loyalty.catalog_generation() > :g0 AS bumped;
SELECT pg_temp.buy('A4', '10000001', 1) -> 'totals' -> 'to_pay' AS paid;
SELECT tier FROM loyalty.customer WHERE id = :anna;
SELECT count(*) AS changes FROM loyalty.tier_change WHERE customer_id = :anna \gset
SELECT pg_temp.buy('A5', '10000001', 1) -> 'totals' -> 'to_pay' AS paid;
SELECT count(*) - :changes AS new_changes FROM loyalty.tier_change WHERE customer_id = :anna;
SELECT receipts FROM loyalty.customer_stats(1, :anna, now() - interval '1 year');
-- platinum at 7 receipts: the fifth leaves anna in gold; at 6, the sixth
-- lifts her (it would not have under 7)
INSERT INTO loyalty.tier (program_id, code, name, rank, min_receipts) VALUES (1, 'platinum', 'Platinum', 3, 7);
SELECT pg_temp.buy('A6', '10000001', 1) -> 'totals' -> 'to_pay' AS paid;
SELECT tier FROM loyalty.customer WHERE id = :anna;
UPDATE loyalty.tier SET min_receipts = 6 WHERE code = 'platinum';
SELECT pg_temp.buy('A7', '10000001', 1) -> 'totals' -> 'to_pay' AS paid;
SELECT tier FROM loyalty.customer WHERE id = :anna;
SELECT * FROM pg_temp.tiers() WHERE customer = :anna AND reason = 'qualified' AND to_tier IN ('gold', 'platinum');

DROP EXTENSION loyalty CASCADE;
