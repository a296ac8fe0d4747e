-- Randomised invariants of tiers and rule segments.  Some 200 receipts of
-- 30 customers of random amounts, some cancelled or refunded.  Afterwards:
-- every customer's tier is at least the one their figures qualify for, and
-- never above the best their figures ever reached (receipts only lift);
-- each customer's tier history is a chain (each change starts where the
-- last ended, and ends at the current tier) with one tier_changed event per
-- change; after a review every customer has exactly the tier the window
-- qualifies them for; a rule segment's members are exactly the customers
-- an independent SQL reading of the rule selects.  The seed is printed;
-- LOYALTY_TEST_SEED repeats a run.
BEGIN;
SET LOCAL jit = off;
SELECT plan(9);

\ir seed.psql

INSERT INTO loyalty.program (code, name, default_currency) VALUES ('tiers', 'Tiers', 'bonus');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'tiers';
SET CONSTRAINTS ALL IMMEDIATE;
SELECT id AS pid FROM loyalty.program WHERE code = 'tiers' \gset
INSERT INTO loyalty.tier (program_id, code, name, rank, min_spend, min_receipts, qualify) VALUES
    (:pid, 'base', 'Base', 0, NULL, NULL, 'all'),
    (:pid, 'silver', 'Silver', 1, 3000, 3, 'all'),
    (:pid, 'gold', 'Gold', 2, 9000, 10, 'any');
INSERT INTO loyalty.segment (program_id, code, name, kind, rule) VALUES
    (:pid, 'loyal', 'Loyal', 'rule', 'customer.frequency >= 6 and customer.monetary >= 2000');

CREATE TEMP TABLE cust AS
SELECT loyalty.enroll('tiers', card => (20000000 + n)::text) AS id, (20000000 + n)::text AS card
  FROM generate_series(1, 30) n;
CREATE TEMP TABLE run AS
SELECT n, c.id AS customer, 'T' || n AS receipt_id,
       jsonb_build_object('program', 'tiers', 'receipt_id', 'T' || n,
                          'customer', jsonb_build_object('card', c.card),
                          'lines', jsonb_build_array(jsonb_build_object('line', 1, 'qty', 1,
                                                                        'price', (random() * 900)::int + 50))) AS doc
  FROM generate_series(1, 200) n
  JOIN LATERAL (SELECT id, card FROM cust ORDER BY random() + n * 0 LIMIT 1) c ON true;
-- commit in order; after each, the best tier the figures reached so far
CREATE TEMP TABLE reached (customer bigint PRIMARY KEY, best integer);
DO $$
DECLARE r record; q loyalty.tier; st record;
BEGIN
    FOR r IN SELECT * FROM run ORDER BY n LOOP
        PERFORM loyalty.commit(r.doc);
        SELECT * INTO st FROM loyalty.customer_stats((SELECT id FROM loyalty.program WHERE code = 'tiers'),
                                                     r.customer, now() - interval '365 days');
        q := loyalty.qualified_tier((SELECT id FROM loyalty.program WHERE code = 'tiers'), st.spend, st.receipts);
        INSERT INTO reached VALUES (r.customer, q.rank)
        ON CONFLICT (customer) DO UPDATE SET best = GREATEST(reached.best, EXCLUDED.best);
        IF random() < 0.15 THEN
            PERFORM loyalty.cancel('tiers', r.receipt_id);
        ELSIF random() < 0.15 THEN
            PERFORM loyalty.refund('tiers', r.receipt_id, '[{"line": 1}]', 'F' || r.n);
        END IF;
    END LOOP;
END $$;

-- qualified_tier against the rule as docs/tiers.md states it, over a grid of
-- figures around each threshold (spend in minor units), unknown ones too
SELECT is_empty($$
    WITH grid AS (
        SELECT s, r FROM (VALUES (NULL::bigint), (0), (299999), (300000), (899999), (900000), (5000000)) a (s),
                         (VALUES (NULL::integer), (0), (2), (3), (9), (10), (50)) b (r)),
    expect AS (
        SELECT g.s, g.r,
               (SELECT t.rank FROM loyalty.tier t JOIN loyalty.program p ON p.id = t.program_id
                 WHERE p.code = 'tiers'
                   AND CASE WHEN t.min_spend IS NULL AND t.min_receipts IS NULL THEN true
                            WHEN t.qualify = 'any' THEN COALESCE(g.s >= t.min_spend * 10 ^ p.money_exponent, false)
                                                     OR COALESCE(g.r >= t.min_receipts, false)
                            ELSE COALESCE(g.s >= t.min_spend * 10 ^ p.money_exponent, true)
                                 AND COALESCE(g.r >= t.min_receipts, true) END
                 ORDER BY t.rank DESC LIMIT 1) AS rank
          FROM grid g)
    SELECT e.* FROM expect e
     WHERE e.rank IS DISTINCT FROM (loyalty.qualified_tier((SELECT id FROM loyalty.program WHERE code = 'tiers'),
                                                           e.s, e.r)).rank$$,
    'qualified_tier gives the highest tier whose thresholds the figures meet (all / any), unknown figures included');

-- the tier of rank r as a code
CREATE TEMP VIEW now_tier AS
SELECT c.id, c.tier, t.rank,
       (loyalty.qualified_tier(c.program_id, s.spend, s.receipts)).rank AS qualified
  FROM cust u JOIN loyalty.customer c ON c.id = u.id
  LEFT JOIN loyalty.tier t ON t.program_id = c.program_id AND t.code = c.tier,
       LATERAL loyalty.customer_stats(c.program_id, c.id, now() - interval '365 days') s;

SELECT is_empty($$SELECT id FROM now_tier n JOIN reached r ON r.customer = n.id WHERE n.rank IS DISTINCT FROM r.best$$,
                'each customer has the best tier their figures reached at a receipt: refunds and cancels lowered none');
SELECT is_empty($$SELECT id FROM now_tier WHERE rank < qualified$$,
                'no customer is below the tier they qualify for now');
SELECT is_empty($$
    SELECT t.customer_id FROM loyalty.tier_change t
     WHERE t.from_tier IS DISTINCT FROM (SELECT p.to_tier FROM loyalty.tier_change p
                                          WHERE p.customer_id = t.customer_id AND p.id < t.id
                                          ORDER BY p.id DESC LIMIT 1)
    UNION ALL
    SELECT c.id FROM cust u JOIN loyalty.customer c ON c.id = u.id
     WHERE c.tier IS DISTINCT FROM (SELECT p.to_tier FROM loyalty.tier_change p
                                     WHERE p.customer_id = c.id ORDER BY p.id DESC LIMIT 1)$$,
    'each customer''s tier history is a chain ending at the current tier');
SELECT bag_eq($$SELECT customer_id, to_tier FROM loyalty.tier_change$$,
              $$SELECT customer_id, payload ->> 'to' FROM loyalty.event WHERE type = 'tier_changed'$$,
              'one tier_changed event per change');

-- the review puts everyone where the window says
SELECT ok(loyalty.review_tiers() = 30, 'the review reviews the 30 customers');
SELECT is_empty($$SELECT id FROM now_tier WHERE rank IS DISTINCT FROM qualified$$,
                'after the review every customer has exactly the tier they qualify for');

-- the rule segment, and the same rule read independently
SELECT loyalty.refresh_segments() AS refreshed \gset
SELECT set_eq(
    $$SELECT customer_id FROM loyalty.segment_member WHERE segment = 'loyal'$$,
    $$SELECT c.id FROM cust c, LATERAL loyalty.customer_stats((SELECT id FROM loyalty.program WHERE code = 'tiers'),
                                                               c.id, now() - interval '365 days') s
       WHERE s.receipts >= 6 AND s.spend >= 200000$$,
    'the rule segment holds exactly the customers its rule selects');

SELECT diag(format('%s tier changes, %s customers in the rule segment',
                   (SELECT count(*) FROM loyalty.tier_change),
                   (SELECT count(*) FROM loyalty.segment_member WHERE segment = 'loyal')));
SELECT ok((SELECT count(*) FROM loyalty.segment_member WHERE segment = 'loyal') BETWEEN 1 AND 29
          AND (SELECT count(DISTINCT to_tier) FROM loyalty.tier_change) >= 2,
          'the run is not trivial: the segment splits the customers, and they reach two tiers or more');

SELECT * FROM finish();
ROLLBACK;
