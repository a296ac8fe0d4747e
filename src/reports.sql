-- src/reports.sql — the views BI tools read: lots and expiring points,
-- promotion performance, coupon usage, tiers, the customer at a glance,
-- receipts per store and day.  (Balances, the ledger, liability and
-- lot_usage are with the points in src/ledger.sql, job health with the jobs
-- in src/jobs.sql.)
--
-- Each view shows the rows of the programmes the reading role reaches
-- (program_open).  Those that report per day walk the days of a series and
-- call a function per day (expiring_day, tier_day, store_day in PL/pgSQL,
-- so that their plans are kept for the session; promotion_day in C, which
-- reads the jsonb of each line tens of times faster, src/reports.c) that
-- reads that day's rows by a range of their timestamp
-- (through the BRIN indexes on committed_at and changed_at): a condition on
-- "day" filters the series before any row is read.  The functions run as
-- the owner (the analyst reads no table), check the programme, and plan
-- without JIT: a report reads a few days, and compiling it would cost more
-- than running it.  Days are dates in the session's time zone.

-- Live lots (points not yet spent or expired), one row each.
CREATE VIEW @extschema@.lots AS
SELECT p.code AS program,
       l.customer_id,
       l.currency,
       l.id AS lot_id,
       l.kind,
       l.amount,
       l.remaining,
       l.valid_from,
       l.valid_to,
       CASE WHEN l.valid_from OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'pending'
            WHEN l.valid_to OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 'expired'
            ELSE 'valid' END AS state,
       l.restriction,
       l.priority,
       l.created_at
  FROM @extschema@.lot l
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) l.program_id
 WHERE l.live
   AND @extschema@.program_open(l.program_id);
COMMENT ON VIEW @extschema@.lots IS 'every lot with points left: what each customer has, in which currency, valid from when to when';
COMMENT ON COLUMN @extschema@.lots.program IS 'programme code';
COMMENT ON COLUMN @extschema@.lots.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.lots.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.lots.lot_id IS 'the lot';
COMMENT ON COLUMN @extschema@.lots.kind IS 'regular, promo, refund, adjustment, transfer, conversion: how the points came';
COMMENT ON COLUMN @extschema@.lots.amount IS 'points the lot was created with, in minor units';
COMMENT ON COLUMN @extschema@.lots.remaining IS 'points left, in minor units';
COMMENT ON COLUMN @extschema@.lots.valid_from IS 'when the points start to count';
COMMENT ON COLUMN @extschema@.lots.valid_to IS 'when they expire (NULL: never)';
COMMENT ON COLUMN @extschema@.lots.state IS 'pending (not yet valid), valid, or expired (past valid_to, the expiry not yet recorded by the job expire_due)';
COMMENT ON COLUMN @extschema@.lots.restriction IS 'the products the points may pay for (a condition or a label); NULL: any';
COMMENT ON COLUMN @extschema@.lots.priority IS 'spent before lots of lower priority expiring at the same time';
COMMENT ON COLUMN @extschema@.lots.created_at IS 'when the lot was created';

-- Points that expire, per programme, currency and day, for the next 180 days.
CREATE FUNCTION @extschema@.expiring_day(program_id bigint, day date)
RETURNS TABLE (currency text, lots bigint, customers bigint, points bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
ROWS 3
AS $$
#variable_conflict use_column
BEGIN
    PERFORM @extschema@.require_program(expiring_day.program_id, pg_catalog.format('programme %s', expiring_day.program_id));
    RETURN QUERY
        SELECT l.currency, pg_catalog.count(*), pg_catalog.count(DISTINCT l.customer_id), pg_catalog.sum(l.remaining)::bigint
          FROM @extschema@.lot l
         WHERE l.live AND l.valid_to IS NOT NULL
           AND l.valid_to OPERATOR(pg_catalog.>=) GREATEST(expiring_day.day::timestamptz, pg_catalog.now())
           AND l.valid_to OPERATOR(pg_catalog.<) (expiring_day.day OPERATOR(pg_catalog.+) 1)::timestamptz
           AND l.program_id OPERATOR(pg_catalog.=) expiring_day.program_id
           AND l.valid_from OPERATOR(pg_catalog.<=) l.valid_to
         GROUP BY l.currency;
END
$$;
COMMENT ON FUNCTION @extschema@.expiring_day(bigint, date) IS
'the rows of the view expiring_points for one programme and day (42501 if the role does not reach the programme)';

CREATE VIEW @extschema@.expiring_points AS
SELECT p.code AS program,
       x.currency,
       d.day::date AS day,
       x.lots,
       x.customers,
       x.points,
       pg_catalog.round(x.points::numeric OPERATOR(pg_catalog.*) c.money_per_unit
                        OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, c.exponent), p.money_exponent) AS money,
       p.money_currency
  FROM @extschema@.program p
 CROSS JOIN LATERAL pg_catalog.generate_series(CURRENT_DATE::timestamp,
                                               (CURRENT_DATE OPERATOR(pg_catalog.+) 179)::timestamp, '1 day') AS d (day)
 CROSS JOIN LATERAL @extschema@.expiring_day(p.id, d.day::date) x
  JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) p.id AND c.code OPERATOR(pg_catalog.=) x.currency
 WHERE @extschema@.program_open(p.id);
COMMENT ON VIEW @extschema@.expiring_points IS 'points that will expire, per programme, currency and day, today and the next 179 days (not yet expired, still counting)';
COMMENT ON COLUMN @extschema@.expiring_points.program IS 'programme code';
COMMENT ON COLUMN @extschema@.expiring_points.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.expiring_points.day IS 'the day they expire (session time zone); today counts from now';
COMMENT ON COLUMN @extschema@.expiring_points.lots IS 'lots that expire that day';
COMMENT ON COLUMN @extschema@.expiring_points.customers IS 'customers whose points expire that day';
COMMENT ON COLUMN @extschema@.expiring_points.points IS 'points that expire, in minor units';
COMMENT ON COLUMN @extschema@.expiring_points.money IS 'their value in the programme''s money (major units)';
COMMENT ON COLUMN @extschema@.expiring_points.money_currency IS 'ISO 4217 code of money';

-- What each promotion gave, per day.
CREATE FUNCTION @extschema@.promotion_day(program_id bigint, day date)
RETURNS TABLE (promotion text, receipts bigint, lines bigint, discount numeric, points_issued numeric,
               points_money numeric)
AS 'MODULE_PATHNAME', 'loyalty_promotion_day'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
ROWS 50;
COMMENT ON FUNCTION @extschema@.promotion_day(bigint, date) IS
'the rows of the view promotion_performance for one programme and day (42501 if the role does not reach the programme)';

CREATE VIEW @extschema@.promotion_performance AS
SELECT p.code AS program,
       d.day::date AS day,
       m.code AS promotion,
       m.name,
       x.receipts,
       x.lines,
       pg_catalog.round(x.discount, p.money_exponent) AS discount,
       pg_catalog.round(x.points_issued, k.exponent) AS points_issued,
       k.code AS points_currency,
       pg_catalog.round(x.points_money, p.money_exponent) AS points_money,
       p.money_currency
  FROM @extschema@.program p
 CROSS JOIN LATERAL pg_catalog.generate_series(p.created_at::date::timestamp,
                                               CURRENT_DATE::timestamp, '1 day') AS d (day)
 CROSS JOIN LATERAL @extschema@.promotion_day(p.id, d.day::date) x
  JOIN @extschema@.promotion m ON m.program_id OPERATOR(pg_catalog.=) p.id AND m.code OPERATOR(pg_catalog.=) x.promotion
  JOIN @extschema@.currency k ON k.program_id OPERATOR(pg_catalog.=) p.id
                            AND k.code OPERATOR(pg_catalog.=) COALESCE(m.benefit OPERATOR(pg_catalog.->>) 'currency', p.default_currency)
 WHERE @extschema@.program_open(p.id);
COMMENT ON VIEW @extschema@.promotion_performance IS 'what each promotion gave per day: receipts and lines it applied to, the discount, the points it issued, the money paid with points on its lines; cancelled receipts left out, returned quantities taken off';
COMMENT ON COLUMN @extschema@.promotion_performance.program IS 'programme code';
COMMENT ON COLUMN @extschema@.promotion_performance.day IS 'the day the receipts were committed (session time zone)';
COMMENT ON COLUMN @extschema@.promotion_performance.promotion IS 'promotion code';
COMMENT ON COLUMN @extschema@.promotion_performance.name IS 'promotion name';
COMMENT ON COLUMN @extschema@.promotion_performance.receipts IS 'receipts it gave a discount or points on';
COMMENT ON COLUMN @extschema@.promotion_performance.lines IS 'receipt lines it gave a discount or points on';
COMMENT ON COLUMN @extschema@.promotion_performance.discount IS 'discount it gave, in the programme''s money (major units), less the returned share of each line';
COMMENT ON COLUMN @extschema@.promotion_performance.points_issued IS 'points it added to the accrual (multipliers, points per amount), in points_currency (major units), less the returned share';
COMMENT ON COLUMN @extschema@.promotion_performance.points_currency IS 'the currency of points_issued: the benefit''s, or the programme''s default';
COMMENT ON COLUMN @extschema@.promotion_performance.points_money IS 'money paid with points on the lines it applied to (major units), less the returned share';
COMMENT ON COLUMN @extschema@.promotion_performance.money_currency IS 'ISO 4217 code of money';

-- Coupons and how far they are used.
CREATE VIEW @extschema@.coupon_usage AS
SELECT p.code AS program,
       c.code AS coupon,
       m.code AS promotion,
       c.kind,
       c.customer_id,
       c.state,
       c.uses,
       COALESCE(c.use_limit, CASE WHEN c.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END) AS use_limit,
       c.valid,
       c.created_at,
       c.issued_by,
       c.issue_reason
  FROM @extschema@.coupon c
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) c.program_id
  JOIN @extschema@.promotion m ON m.id OPERATOR(pg_catalog.=) c.promotion_id
 WHERE @extschema@.program_open(c.program_id);
COMMENT ON VIEW @extschema@.coupon_usage IS 'every coupon: its promotion, holder, state and how many committed receipts used it';
COMMENT ON COLUMN @extschema@.coupon_usage.program IS 'programme code';
COMMENT ON COLUMN @extschema@.coupon_usage.coupon IS 'the code as printed';
COMMENT ON COLUMN @extschema@.coupon_usage.promotion IS 'the promotion it unlocks';
COMMENT ON COLUMN @extschema@.coupon_usage.kind IS 'single_use, multi_use or personal';
COMMENT ON COLUMN @extschema@.coupon_usage.customer_id IS 'the holder of a personal coupon';
COMMENT ON COLUMN @extschema@.coupon_usage.state IS 'issued, redeemed (used up) or cancelled';
COMMENT ON COLUMN @extschema@.coupon_usage.uses IS 'committed receipts that used it (a cancel gives a use back)';
COMMENT ON COLUMN @extschema@.coupon_usage.use_limit IS 'most uses (NULL: without limit)';
COMMENT ON COLUMN @extschema@.coupon_usage.valid IS 'when it may be used';
COMMENT ON COLUMN @extschema@.coupon_usage.created_at IS 'when it was issued';
COMMENT ON COLUMN @extschema@.coupon_usage.issued_by IS 'the role that issued it';
COMMENT ON COLUMN @extschema@.coupon_usage.issue_reason IS 'why, as the issuer wrote it';

-- Customers per tier.
CREATE VIEW @extschema@.tier_distribution AS
SELECT p.code AS program,
       n.tier,
       t.name,
       t.rank,
       n.customers,
       pg_catalog.round(n.customers::numeric OPERATOR(pg_catalog./)
                        pg_catalog.sum(n.customers) OVER (PARTITION BY p.id) OPERATOR(pg_catalog.*) 100, 2) AS percent
  FROM (SELECT k.program_id, k.tier, pg_catalog.count(*) AS customers
          FROM @extschema@.customer k
         WHERE k.status OPERATOR(pg_catalog.<>) 'merged'
           AND @extschema@.program_open(k.program_id)
         GROUP BY k.program_id, k.tier) n
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) n.program_id
  LEFT JOIN @extschema@.tier t ON t.program_id OPERATOR(pg_catalog.=) n.program_id
                              AND t.code OPERATOR(pg_catalog.=) n.tier;
COMMENT ON VIEW @extschema@.tier_distribution IS 'customers (not merged away) per programme and tier';
COMMENT ON COLUMN @extschema@.tier_distribution.program IS 'programme code';
COMMENT ON COLUMN @extschema@.tier_distribution.tier IS 'tier code; NULL: customers without a tier';
COMMENT ON COLUMN @extschema@.tier_distribution.name IS 'tier name';
COMMENT ON COLUMN @extschema@.tier_distribution.rank IS 'tier rank (higher is better)';
COMMENT ON COLUMN @extschema@.tier_distribution.customers IS 'customers in the tier';
COMMENT ON COLUMN @extschema@.tier_distribution.percent IS 'their share of the programme''s customers, in percent';

-- Tier changes per day.
CREATE FUNCTION @extschema@.tier_day(program_id bigint, day date)
RETURNS TABLE (from_tier text, to_tier text, reason text, customers bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
ROWS 10
AS $$
#variable_conflict use_column
BEGIN
    PERFORM @extschema@.require_program(tier_day.program_id, pg_catalog.format('programme %s', tier_day.program_id));
    RETURN QUERY
        SELECT c.from_tier, c.to_tier, c.reason, pg_catalog.count(*)
          FROM @extschema@.tier_change c
         WHERE c.program_id OPERATOR(pg_catalog.=) tier_day.program_id
           AND c.changed_at OPERATOR(pg_catalog.>=) tier_day.day::timestamptz
           AND c.changed_at OPERATOR(pg_catalog.<) (tier_day.day OPERATOR(pg_catalog.+) 1)::timestamptz
         GROUP BY c.from_tier, c.to_tier, c.reason;
END
$$;
COMMENT ON FUNCTION @extschema@.tier_day(bigint, date) IS
'the rows of the view tier_movements for one programme and day (42501 if the role does not reach the programme)';

CREATE VIEW @extschema@.tier_movements AS
SELECT p.code AS program,
       d.day::date AS day,
       x.from_tier,
       x.to_tier,
       x.reason,
       x.customers
  FROM @extschema@.program p
 CROSS JOIN LATERAL pg_catalog.generate_series(p.created_at::date::timestamp,
                                               CURRENT_DATE::timestamp, '1 day') AS d (day)
 CROSS JOIN LATERAL @extschema@.tier_day(p.id, d.day::date) x
 WHERE @extschema@.program_open(p.id);
COMMENT ON VIEW @extschema@.tier_movements IS 'tier changes per programme and day: from which tier to which, why, how many customers';
COMMENT ON COLUMN @extschema@.tier_movements.program IS 'programme code';
COMMENT ON COLUMN @extschema@.tier_movements.day IS 'the day of the change (session time zone)';
COMMENT ON COLUMN @extschema@.tier_movements.from_tier IS 'tier before (NULL: none)';
COMMENT ON COLUMN @extschema@.tier_movements.to_tier IS 'tier after';
COMMENT ON COLUMN @extschema@.tier_movements.reason IS 'qualified (moved up at a receipt or review), review (moved down at the review), manual';
COMMENT ON COLUMN @extschema@.tier_movements.customers IS 'changes (customers) that day';

-- One customer at a glance.
CREATE VIEW @extschema@.customer_360 AS
SELECT p.code AS program,
       k.id AS customer_id,
       k.status,
       k.tier,
       k.tier_since,
       k.birth_date,
       k.home_city,
       k.created_at,
       (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('kind', i.kind, 'value', i.value)
                                    ORDER BY i.kind, i.created_at)
          FROM @extschema@.identifier i
         WHERE i.customer_id OPERATOR(pg_catalog.=) k.id
           AND i.status OPERATOR(pg_catalog.=) 'active') AS identifiers,
       (SELECT pg_catalog.array_agg(s.segment ORDER BY s.segment)
          FROM @extschema@.segment_member s
         WHERE s.customer_id OPERATOR(pg_catalog.=) k.id) AS segments,
       (SELECT pg_catalog.jsonb_object_agg(b.currency, b.balance)
          FROM @extschema@.balances b
         WHERE b.customer_id OPERATOR(pg_catalog.=) k.id) AS balances,
       (SELECT pg_catalog.count(*) FROM @extschema@.receipt r
         WHERE r.customer_id OPERATOR(pg_catalog.=) k.id
           AND r.status OPERATOR(pg_catalog.<>) 'cancelled') AS receipts,
       (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'receipt_id', q.receipt_id, 'committed_at', q.committed_at, 'store', q.store,
                   'status', q.status,
                   'amount', pg_catalog.round(q.amount::numeric OPERATOR(pg_catalog./)
                                              pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent),
                   'to_pay', pg_catalog.round(q.to_pay::numeric OPERATOR(pg_catalog./)
                                              pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent))
                   ORDER BY q.committed_at DESC, q.receipt_id DESC)
          FROM (SELECT r.receipt_id, r.committed_at, r.store, r.status, r.amount, r.to_pay
                  FROM @extschema@.receipt r
                 WHERE r.customer_id OPERATOR(pg_catalog.=) k.id
                 ORDER BY r.committed_at DESC, r.receipt_id DESC LIMIT 5) q) AS last_receipts
  FROM @extschema@.customer k
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) k.program_id
 WHERE @extschema@.program_open(k.program_id);
COMMENT ON VIEW @extschema@.customer_360 IS 'one customer at a glance: status, tier, identifiers, segments, balances, receipts and the last five';
COMMENT ON COLUMN @extschema@.customer_360.program IS 'programme code';
COMMENT ON COLUMN @extschema@.customer_360.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.customer_360.status IS 'active, blocked, fraud_hold or merged';
COMMENT ON COLUMN @extschema@.customer_360.tier IS 'current tier code';
COMMENT ON COLUMN @extschema@.customer_360.tier_since IS 'since when';
COMMENT ON COLUMN @extschema@.customer_360.birth_date IS 'birth date';
COMMENT ON COLUMN @extschema@.customer_360.home_city IS 'home city';
COMMENT ON COLUMN @extschema@.customer_360.created_at IS 'when the customer enrolled';
COMMENT ON COLUMN @extschema@.customer_360.identifiers IS 'active identifiers: [{"kind": "card", "value": ...}, ...]';
COMMENT ON COLUMN @extschema@.customer_360.segments IS 'segments the customer is in';
COMMENT ON COLUMN @extschema@.customer_360.balances IS 'effective balance per currency, in minor units: {"bonus": 1200}';
COMMENT ON COLUMN @extschema@.customer_360.receipts IS 'receipts committed and not cancelled';
COMMENT ON COLUMN @extschema@.customer_360.last_receipts IS 'the last five receipts: receipt_id, committed_at, store, status, amount, to_pay (money in major units)';

-- Receipts per store and day.
CREATE FUNCTION @extschema@.store_day(program_id bigint, day date)
RETURNS TABLE (store text, receipts bigint, identified bigint, customers bigint, cancelled bigint,
               returned bigint, amount numeric, discount numeric, points_money numeric, to_pay numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
ROWS 200
AS $$
#variable_conflict use_column
BEGIN
    PERFORM @extschema@.require_program(store_day.program_id, pg_catalog.format('programme %s', store_day.program_id));
    RETURN QUERY
        SELECT r.store,
               pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled') AS receipts,
               pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'
                                           AND r.customer_id IS NOT NULL) AS identified,
               pg_catalog.count(DISTINCT r.customer_id) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled') AS customers,
               pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.=) 'cancelled') AS cancelled,
               pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.=) ANY ('{partly_refunded,refunded}'::text[])) AS returned,
               COALESCE(pg_catalog.sum(r.amount) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'), 0) AS amount,
               COALESCE(pg_catalog.sum(r.discount) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'), 0) AS discount,
               COALESCE(pg_catalog.sum(r.points_money) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'), 0) AS points_money,
               COALESCE(pg_catalog.sum(r.to_pay) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'), 0) AS to_pay
          FROM @extschema@.receipt r
         WHERE r.program_id OPERATOR(pg_catalog.=) store_day.program_id
           AND r.committed_at OPERATOR(pg_catalog.>=) store_day.day::timestamptz
           AND r.committed_at OPERATOR(pg_catalog.<) (store_day.day OPERATOR(pg_catalog.+) 1)::timestamptz
         GROUP BY r.store;
END
$$;
COMMENT ON FUNCTION @extschema@.store_day(bigint, date) IS
'the rows of the view store_days for one programme and day, money in minor units (42501 if the role does not reach the programme)';

CREATE VIEW @extschema@.store_days AS
SELECT p.code AS program,
       d.day::date AS day,
       x.store,
       x.receipts,
       x.identified,
       x.customers,
       x.cancelled,
       x.returned,
       pg_catalog.round(x.amount OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent) AS amount,
       pg_catalog.round(x.discount OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent) AS discount,
       pg_catalog.round(x.points_money OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent) AS points_money,
       pg_catalog.round(x.to_pay OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent) AS to_pay,
       p.money_currency
  FROM @extschema@.program p
 CROSS JOIN LATERAL pg_catalog.generate_series(p.created_at::date::timestamp,
                                               CURRENT_DATE::timestamp, '1 day') AS d (day)
 CROSS JOIN LATERAL @extschema@.store_day(p.id, d.day::date) x
 WHERE @extschema@.program_open(p.id);
COMMENT ON VIEW @extschema@.store_days IS 'receipts per programme, store and day: how many, identified or not, cancelled, returned, and their money as committed';
COMMENT ON COLUMN @extschema@.store_days.program IS 'programme code';
COMMENT ON COLUMN @extschema@.store_days.day IS 'the day the receipts were committed (session time zone)';
COMMENT ON COLUMN @extschema@.store_days.store IS 'the store the receipt named (NULL: none)';
COMMENT ON COLUMN @extschema@.store_days.receipts IS 'receipts not cancelled';
COMMENT ON COLUMN @extschema@.store_days.identified IS 'of them, receipts of an identified customer';
COMMENT ON COLUMN @extschema@.store_days.customers IS 'distinct customers of them';
COMMENT ON COLUMN @extschema@.store_days.cancelled IS 'receipts cancelled';
COMMENT ON COLUMN @extschema@.store_days.returned IS 'receipts returned in part or in full (since)';
COMMENT ON COLUMN @extschema@.store_days.amount IS 'sum of the receipts before discounts (major units), as committed';
COMMENT ON COLUMN @extschema@.store_days.discount IS 'sum of discounts, as committed';
COMMENT ON COLUMN @extschema@.store_days.points_money IS 'money paid with points, as committed';
COMMENT ON COLUMN @extschema@.store_days.to_pay IS 'money paid, as committed';
COMMENT ON COLUMN @extschema@.store_days.money_currency IS 'ISO 4217 code of money';

REVOKE ALL ON FUNCTION
    @extschema@.expiring_day(bigint, date),
    @extschema@.promotion_day(bigint, date),
    @extschema@.tier_day(bigint, date),
    @extschema@.store_day(bigint, date)
FROM PUBLIC;
