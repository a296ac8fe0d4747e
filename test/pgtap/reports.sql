-- The reporting views against the tables they summarise: two programmes
-- (test/pgtap/tenants.psql) with more receipts of north, one cancelled and
-- one returned in part, a lot expiring in two days; each view's figures
-- must equal those recomputed here another way, days without receipts
-- must show nothing.
BEGIN;
SELECT plan(22);

\ir tenants.psql

-- double points in north from now on
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit)
VALUES (:north, 'X2', 'Double points', 'active', '{"kind": "multiplier", "factor": 2}');

-- three more receipts of north: one kept, one cancelled, one returned in part
SELECT count(*) FROM (
    SELECT loyalty.commit(d, loyalty.calculate(d))
      FROM (SELECT jsonb_build_object('program', 'north', 'receipt_id', 'N-' || n, 'store', 'S' || (n % 2),
                                      'customer', jsonb_build_object('id', :n2),
                                      'lines', jsonb_build_array(
                                          jsonb_build_object('line', 1, 'sku', 'SKU1', 'qty', n, 'price', 300),
                                          jsonb_build_object('line', 2, 'qty', 1, 'price', 120))) d
              FROM generate_series(2, 4) n) x) y;
SELECT loyalty.cancel('north', 'N-3') ->> 'status' AS cancelled;
SELECT loyalty.refund('north', 'N-4', '[{"line": 1, "qty": 1}]', 'N-4-R') ->> 'status' AS refunded;
SELECT (loyalty.accrue(:n2, 'miles', 250, valid_to => now() + interval '2 days')).version;

-- store_days: the receipts of the day, by store
SELECT results_eq(
    $$SELECT store, receipts, cancelled, returned, amount, discount, to_pay FROM loyalty.store_days
       WHERE program = 'north' AND day = current_date ORDER BY store NULLS FIRST$$,
    $$SELECT store, count(*) FILTER (WHERE status <> 'cancelled'), count(*) FILTER (WHERE status = 'cancelled'),
             count(*) FILTER (WHERE status IN ('partly_refunded', 'refunded')),
             (coalesce(sum(amount) FILTER (WHERE status <> 'cancelled'), 0) / 100.0)::numeric(20,2),
             (coalesce(sum(discount) FILTER (WHERE status <> 'cancelled'), 0) / 100.0)::numeric(20,2),
             (coalesce(sum(to_pay) FILTER (WHERE status <> 'cancelled'), 0) / 100.0)::numeric(20,2)
        FROM loyalty.receipt WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'north')
       GROUP BY store ORDER BY store NULLS FIRST$$,
    'store_days: receipts, cancels, returns and money per store of the day');
SELECT is_empty($$SELECT * FROM loyalty.store_days WHERE day < current_date$$, 'store_days: no receipts on other days');

-- promotion_performance: the discounts of the lines of receipts not cancelled, less the returned share
SELECT results_eq(
    $$SELECT promotion, receipts, lines, discount, points_issued FROM loyalty.promotion_performance
       WHERE program = 'north' AND day = current_date ORDER BY promotion$$,
    $$SELECT u.promotion, count(DISTINCT u.receipt_id), count(DISTINCT (u.receipt_id, u.line)),
             round(sum(u.discount * u.kept), 2), round(sum(u.points * u.kept), 0)
        FROM (SELECT l.receipt_id, l.line, (l.qty - l.refunded_qty) / l.qty AS kept,
                     d ->> 'promotion' AS promotion, (d ->> 'amount')::numeric AS discount, 0 AS points
                FROM loyalty.receipt_line l JOIN loyalty.receipt r USING (program_id, receipt_id, committed_at),
                     jsonb_array_elements(l.discounts) d
               WHERE r.status <> 'cancelled' AND r.program_id = (SELECT id FROM loyalty.program WHERE code = 'north')
              UNION ALL
              SELECT l.receipt_id, l.line, (l.qty - l.refunded_qty) / l.qty, b.key, 0, b.value::numeric
                FROM loyalty.receipt_line l JOIN loyalty.receipt r USING (program_id, receipt_id, committed_at),
                     jsonb_array_elements(l.points_earned) e, jsonb_each(e -> 'by_promotion') b
               WHERE r.status <> 'cancelled' AND r.program_id = (SELECT id FROM loyalty.program WHERE code = 'north')) u
       GROUP BY 1 ORDER BY 1$$,
    'promotion_performance: receipts, lines, discount and points of each promotion');
SELECT ok((SELECT count(*) FROM loyalty.promotion_performance WHERE program = 'north') >= 2
          AND (SELECT points_issued FROM loyalty.promotion_performance WHERE program = 'north' AND promotion = 'X2') > 0,
          'promotion_performance: the promotions of the day are there, the points of X2 too');
SELECT throws_ok($$SELECT * FROM loyalty.promotion_day(NULL, current_date)$$, '22004', NULL,
                 'promotion_day: a NULL programme is refused');
SELECT throws_ok(format('SELECT * FROM loyalty.promotion_day(%s, ''infinity'')', :north), '22023', NULL,
                 'promotion_day: an infinite day is refused');
SELECT throws_ok('SELECT * FROM loyalty.promotion_day(999999, current_date)', '42704', NULL,
                 'promotion_day: a programme that does not exist is refused');
SELECT is_empty($$SELECT * FROM loyalty.promotion_performance WHERE day < current_date$$,
                'promotion_performance: nothing on other days');

-- expiring_points and lots
SELECT results_eq(
    $$SELECT program, currency, day, lots, customers, points FROM loyalty.expiring_points ORDER BY 1, 2, 3$$,
    $$SELECT p.code, l.currency, l.valid_to::date, count(*), count(DISTINCT l.customer_id), sum(l.remaining)::bigint
        FROM loyalty.lot l JOIN loyalty.program p ON p.id = l.program_id
       WHERE l.remaining > 0 AND l.valid_to IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3$$,
    'expiring_points: the lots expiring in two and three days, on their days');
SELECT results_eq(
    $$SELECT lot_id, remaining, state FROM loyalty.lots ORDER BY lot_id$$,
    $$SELECT id, remaining, CASE WHEN valid_from > now() THEN 'pending' ELSE 'valid' END
        FROM loyalty.lot WHERE remaining > 0 ORDER BY id$$,
    'lots: every lot with points left');

-- tiers
SELECT results_eq(
    $$SELECT program, tier, customers FROM loyalty.tier_distribution ORDER BY 1, 2 NULLS FIRST$$,
    $$SELECT p.code, c.tier, count(*) FROM loyalty.customer c JOIN loyalty.program p ON p.id = c.program_id
       WHERE c.status <> 'merged' GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST$$,
    'tier_distribution: customers per tier');
SELECT is((SELECT sum(percent) FROM loyalty.tier_distribution WHERE program = 'north'), 100.00::numeric,
          'tier_distribution: the shares add up to 100');
SELECT results_eq(
    $$SELECT program, from_tier, to_tier, reason, customers FROM loyalty.tier_movements
       WHERE day = current_date ORDER BY 1, 3$$,
    $$SELECT p.code, c.from_tier, c.to_tier, c.reason, count(*) FROM loyalty.tier_change c
        JOIN loyalty.program p ON p.id = c.program_id GROUP BY 1, 2, 3, 4 ORDER BY 1, 3$$,
    'tier_movements: the changes of the day');

-- coupon_usage
SELECT results_eq(
    $$SELECT coupon, promotion, uses FROM loyalty.coupon_usage ORDER BY 1$$,
    $$SELECT c.code, m.code, c.uses FROM loyalty.coupon c JOIN loyalty.promotion m ON m.id = c.promotion_id ORDER BY 1$$,
    'coupon_usage: every coupon with its uses');

-- customer_360
SELECT is((SELECT balances FROM loyalty.customer_360 WHERE customer_id = :n2),
          (SELECT jsonb_object_agg(currency, balance) FROM loyalty.balance(:n2)),
          'customer_360: the balances of balance()');
SELECT is((SELECT receipts FROM loyalty.customer_360 WHERE customer_id = :n2), 2::bigint,
          'customer_360: receipts not cancelled');
SELECT is((SELECT array_agg(r ->> 'receipt_id' ORDER BY ord) FROM loyalty.customer_360,
                  jsonb_array_elements(last_receipts) WITH ORDINALITY AS x (r, ord)
            WHERE customer_id = :n2),
          ARRAY['N-4', 'N-3', 'N-2'], 'customer_360: the last receipts, newest first (then by id), the cancelled one too');
SELECT is((SELECT identifiers FROM loyalty.customer_360 WHERE customer_id = :n1),
          '[{"kind": "card", "value": "11110001"}, {"kind": "phone", "value": "+79160000001"}]'::jsonb,
          'customer_360: the active identifiers');
SELECT is((SELECT segments FROM loyalty.customer_360 WHERE customer_id = :n1), ARRAY['vip'],
          'customer_360: the segments');

-- an analyst of north reads north's day (another programme's: test/pgtap/tenants.sql)
SELECT is(pg_temp.as_role('t_analyst_north', format('SELECT count(*) FROM loyalty.store_day(%s, current_date)', :north)),
          '3', 'store_day: an analyst of north reads north''s day');
SELECT is(pg_temp.as_role('t_analyst_north', $$SELECT string_agg(DISTINCT program, ',') FROM loyalty.store_days$$),
          'north', 'store_days: an analyst of north sees north only');
SELECT is(pg_temp.as_role('t_analyst_north', $$SELECT count(*) FROM loyalty.customer_360 WHERE program <> 'north'$$),
          '0', 'customer_360: an analyst of north sees no customer of south');

SELECT * FROM finish();
ROLLBACK;
