-- loyalty 0.14 -> 0.15: a receipt's lines as typed arrays in its own row
-- (see src/updates/README.md).  The table receipt_line (a heap row and an
-- index entry per line, with three jsonb columns) becomes a view over them;
-- every stored receipt is converted, so that cancel, refund and the reports
-- read receipts committed before the upgrade as they read new ones.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.15'" to load this file. \quit

-- the arrays, filled from the lines, then required
ALTER TABLE @extschema@.receipt
    ADD COLUMN line_no integer[],
    ADD COLUMN line_sku text[],
    ADD COLUMN line_qty numeric[],
    ADD COLUMN line_price bigint[],
    ADD COLUMN line_amount bigint[],
    ADD COLUMN line_discount bigint[],
    ADD COLUMN line_points_money bigint[],
    ADD COLUMN line_to_pay bigint[],
    ADD COLUMN line_refunded_qty numeric[],
    ADD COLUMN discount_line integer[],
    ADD COLUMN discount_promotion bigint[],
    ADD COLUMN discount_amount bigint[],
    ADD COLUMN paid_line integer[],
    ADD COLUMN paid_lot bigint[],
    ADD COLUMN paid_currency text[],
    ADD COLUMN paid_points bigint[],
    ADD COLUMN paid_money bigint[],
    ADD COLUMN earned_line integer[],
    ADD COLUMN earned_currency text[],
    ADD COLUMN earned_base bigint[],
    ADD COLUMN earned_points bigint[],
    ADD COLUMN earned_by_entry integer[],
    ADD COLUMN earned_by_promotion bigint[],
    ADD COLUMN earned_by_points bigint[];
COMMENT ON COLUMN @extschema@.receipt.line_no IS 'the number of each line (as sent, or its place), in the order sent';
COMMENT ON COLUMN @extschema@.receipt.line_sku IS 'each line''s sku as sent (NULL if none)';
COMMENT ON COLUMN @extschema@.receipt.line_qty IS 'each line''s quantity sold, up to 3 decimals';
COMMENT ON COLUMN @extschema@.receipt.line_price IS 'each line''s price per unit, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt.line_amount IS 'each line''s price times quantity, in minor units';
COMMENT ON COLUMN @extschema@.receipt.line_discount IS 'each line''s discounts, in minor units';
COMMENT ON COLUMN @extschema@.receipt.line_points_money IS 'money of each line paid with points, in minor units';
COMMENT ON COLUMN @extschema@.receipt.line_to_pay IS 'what each line cost in money, in minor units';
COMMENT ON COLUMN @extschema@.receipt.line_refunded_qty IS 'quantity of each line returned by refunds so far';
COMMENT ON COLUMN @extschema@.receipt.discount_line IS 'for each discount: its line''s place in the line_ arrays (1-based)';
COMMENT ON COLUMN @extschema@.receipt.discount_promotion IS 'for each discount: the promotion (id) that gave it';
COMMENT ON COLUMN @extschema@.receipt.discount_amount IS 'for each discount: money off the line, in minor units';
COMMENT ON COLUMN @extschema@.receipt.paid_line IS 'for each payment with points: its line''s place in the line_ arrays';
COMMENT ON COLUMN @extschema@.receipt.paid_lot IS 'for each payment with points: the lot (id) it came from';
COMMENT ON COLUMN @extschema@.receipt.paid_currency IS 'for each payment with points: the lot''s currency';
COMMENT ON COLUMN @extschema@.receipt.paid_points IS 'for each payment with points: points, in minor units of the currency';
COMMENT ON COLUMN @extschema@.receipt.paid_money IS 'for each payment with points: the money they paid, in minor units';
COMMENT ON COLUMN @extschema@.receipt.earned_line IS 'for each accrual of a line in one currency: the line''s place in the line_ arrays';
COMMENT ON COLUMN @extschema@.receipt.earned_currency IS 'for each accrual of a line: its currency';
COMMENT ON COLUMN @extschema@.receipt.earned_base IS 'for each accrual of a line: the programme''s base rate''s part, in minor units of the currency';
COMMENT ON COLUMN @extschema@.receipt.earned_points IS 'for each accrual of a line: all it earned (base and promotions), in minor units';
COMMENT ON COLUMN @extschema@.receipt.earned_by_entry IS 'for each promotion''s part of an accrual: the accrual''s place in the earned_ arrays';
COMMENT ON COLUMN @extschema@.receipt.earned_by_promotion IS 'for each promotion''s part of an accrual: the promotion (id)';
COMMENT ON COLUMN @extschema@.receipt.earned_by_points IS 'for each promotion''s part of an accrual: its points, in minor units';

-- Each receipt's lines in the order of their numbers; each discount, payment
-- with points and accrual in its line's order of the stored jsonb; amounts
-- from major units to minor units; promotions from code to id (NULL for a
-- promotion deleted since, which the view then shows as null).
CREATE TEMP TABLE loyalty_0_15_lines AS
SELECT t.program_id, t.receipt_id, t.committed_at, t.line, t.sku, t.qty, t.price, t.amount, t.discount,
       t.points_money, t.to_pay, t.refunded_qty, t.discounts, t.points_paid, t.points_earned,
       pg_catalog.row_number() OVER (PARTITION BY t.program_id, t.receipt_id, t.committed_at ORDER BY t.line)::integer AS pos
  FROM @extschema@.receipt_line t;
CREATE INDEX ON loyalty_0_15_lines (program_id, receipt_id, committed_at);
CREATE TEMP TABLE loyalty_0_15_earned AS
SELECT l.program_id, l.receipt_id, l.committed_at, l.pos, e.o, e.v,
       pg_catalog.row_number() OVER (PARTITION BY l.program_id, l.receipt_id, l.committed_at ORDER BY l.pos, e.o)::integer AS entry
  FROM loyalty_0_15_lines l, pg_catalog.jsonb_array_elements(l.points_earned) WITH ORDINALITY AS e (v, o);
CREATE INDEX ON loyalty_0_15_earned (program_id, receipt_id, committed_at);

CREATE TEMP TABLE loyalty_0_15_arrays AS
SELECT r.program_id, r.receipt_id, r.committed_at, x.*, d.*, p.*, e.*, b.*
  FROM @extschema@.receipt r
  JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) r.program_id,
       LATERAL (SELECT pg_catalog.array_agg(l.line ORDER BY l.pos) AS line_no,
                       pg_catalog.array_agg(l.sku ORDER BY l.pos) AS line_sku,
                       pg_catalog.array_agg(l.qty ORDER BY l.pos) AS line_qty,
                       pg_catalog.array_agg(l.price ORDER BY l.pos) AS line_price,
                       pg_catalog.array_agg(l.amount ORDER BY l.pos) AS line_amount,
                       pg_catalog.array_agg(l.discount ORDER BY l.pos) AS line_discount,
                       pg_catalog.array_agg(l.points_money ORDER BY l.pos) AS line_points_money,
                       pg_catalog.array_agg(l.to_pay ORDER BY l.pos) AS line_to_pay,
                       pg_catalog.array_agg(l.refunded_qty ORDER BY l.pos) AS line_refunded_qty
                  FROM loyalty_0_15_lines l
                 WHERE l.program_id OPERATOR(pg_catalog.=) r.program_id AND l.receipt_id OPERATOR(pg_catalog.=) r.receipt_id
                   AND l.committed_at OPERATOR(pg_catalog.=) r.committed_at) x,
       LATERAL (SELECT pg_catalog.array_agg(l.pos ORDER BY l.pos, v.o) AS dl,
                       pg_catalog.array_agg(pr.id ORDER BY l.pos, v.o) AS dp,
                       pg_catalog.array_agg(@extschema@.minor_units((v.d OPERATOR(pg_catalog.->>) 'amount')::numeric,
                                                                    g.money_exponent) ORDER BY l.pos, v.o) AS da
                  FROM loyalty_0_15_lines l
                 CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(l.discounts) WITH ORDINALITY AS v (d, o)
                  LEFT JOIN @extschema@.promotion pr ON pr.program_id OPERATOR(pg_catalog.=) r.program_id
                                                    AND pr.code OPERATOR(pg_catalog.=) (v.d OPERATOR(pg_catalog.->>) 'promotion')
                 WHERE l.program_id OPERATOR(pg_catalog.=) r.program_id AND l.receipt_id OPERATOR(pg_catalog.=) r.receipt_id
                   AND l.committed_at OPERATOR(pg_catalog.=) r.committed_at) d,
       LATERAL (SELECT pg_catalog.array_agg(l.pos ORDER BY l.pos, v.o) AS pl,
                       pg_catalog.array_agg((v.d OPERATOR(pg_catalog.->>) 'lot')::bigint ORDER BY l.pos, v.o) AS pt,
                       pg_catalog.array_agg(v.d OPERATOR(pg_catalog.->>) 'currency' ORDER BY l.pos, v.o) AS pc,
                       pg_catalog.array_agg(@extschema@.minor_units((v.d OPERATOR(pg_catalog.->>) 'points')::numeric,
                                                                    c.exponent) ORDER BY l.pos, v.o) AS pp,
                       pg_catalog.array_agg(@extschema@.minor_units((v.d OPERATOR(pg_catalog.->>) 'amount')::numeric,
                                                                    g.money_exponent) ORDER BY l.pos, v.o) AS pm
                  FROM loyalty_0_15_lines l
                 CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(l.points_paid) WITH ORDINALITY AS v (d, o)
                  JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) r.program_id
                                             AND c.code OPERATOR(pg_catalog.=) (v.d OPERATOR(pg_catalog.->>) 'currency')
                 WHERE l.program_id OPERATOR(pg_catalog.=) r.program_id AND l.receipt_id OPERATOR(pg_catalog.=) r.receipt_id
                   AND l.committed_at OPERATOR(pg_catalog.=) r.committed_at) p,
       LATERAL (SELECT pg_catalog.array_agg(e.pos ORDER BY e.entry) AS el,
                       pg_catalog.array_agg(e.v OPERATOR(pg_catalog.->>) 'currency' ORDER BY e.entry) AS ec,
                       pg_catalog.array_agg(COALESCE(@extschema@.minor_units((e.v OPERATOR(pg_catalog.->>) 'base')::numeric,
                                                                             c.exponent), 0) ORDER BY e.entry) AS eb,
                       pg_catalog.array_agg(@extschema@.minor_units((e.v OPERATOR(pg_catalog.->>) 'points')::numeric,
                                                                    c.exponent) ORDER BY e.entry) AS ep
                  FROM loyalty_0_15_earned e
                  JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) r.program_id
                                             AND c.code OPERATOR(pg_catalog.=) (e.v OPERATOR(pg_catalog.->>) 'currency')
                 WHERE e.program_id OPERATOR(pg_catalog.=) r.program_id AND e.receipt_id OPERATOR(pg_catalog.=) r.receipt_id
                   AND e.committed_at OPERATOR(pg_catalog.=) r.committed_at) e,
       LATERAL (SELECT pg_catalog.array_agg(e.entry ORDER BY e.entry, k.o) AS be,
                       pg_catalog.array_agg(pr.id ORDER BY e.entry, k.o) AS bp,
                       pg_catalog.array_agg(@extschema@.minor_units(k.value::text::numeric, c.exponent)
                                            ORDER BY e.entry, k.o) AS bq
                  FROM loyalty_0_15_earned e
                 CROSS JOIN LATERAL pg_catalog.jsonb_each(e.v OPERATOR(pg_catalog.->) 'by_promotion') WITH ORDINALITY AS k (key, value, o)
                  JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) r.program_id
                                             AND c.code OPERATOR(pg_catalog.=) (e.v OPERATOR(pg_catalog.->>) 'currency')
                  LEFT JOIN @extschema@.promotion pr ON pr.program_id OPERATOR(pg_catalog.=) r.program_id
                                                    AND pr.code OPERATOR(pg_catalog.=) k.key
                 WHERE e.program_id OPERATOR(pg_catalog.=) r.program_id AND e.receipt_id OPERATOR(pg_catalog.=) r.receipt_id
                   AND e.committed_at OPERATOR(pg_catalog.=) r.committed_at) b
;
UPDATE @extschema@.receipt r
   SET line_no = COALESCE(a.line_no, '{}'), line_sku = COALESCE(a.line_sku, '{}'),
       line_qty = COALESCE(a.line_qty, '{}'), line_price = COALESCE(a.line_price, '{}'),
       line_amount = COALESCE(a.line_amount, '{}'), line_discount = COALESCE(a.line_discount, '{}'),
       line_points_money = COALESCE(a.line_points_money, '{}'), line_to_pay = COALESCE(a.line_to_pay, '{}'),
       line_refunded_qty = COALESCE(a.line_refunded_qty, '{}'),
       discount_line = COALESCE(a.dl, '{}'), discount_promotion = COALESCE(a.dp, '{}'),
       discount_amount = COALESCE(a.da, '{}'),
       paid_line = COALESCE(a.pl, '{}'), paid_lot = COALESCE(a.pt, '{}'), paid_currency = COALESCE(a.pc, '{}'),
       paid_points = COALESCE(a.pp, '{}'), paid_money = COALESCE(a.pm, '{}'),
       earned_line = COALESCE(a.el, '{}'), earned_currency = COALESCE(a.ec, '{}'),
       earned_base = COALESCE(a.eb, '{}'), earned_points = COALESCE(a.ep, '{}'),
       earned_by_entry = COALESCE(a.be, '{}'), earned_by_promotion = COALESCE(a.bp, '{}'),
       earned_by_points = COALESCE(a.bq, '{}')
  FROM loyalty_0_15_arrays a
 WHERE r.program_id OPERATOR(pg_catalog.=) a.program_id AND r.receipt_id OPERATOR(pg_catalog.=) a.receipt_id
   AND r.committed_at OPERATOR(pg_catalog.=) a.committed_at;
DROP TABLE loyalty_0_15_arrays, loyalty_0_15_earned, loyalty_0_15_lines;
ALTER TABLE @extschema@.receipt
    ALTER COLUMN line_no SET NOT NULL,
    ALTER COLUMN line_sku SET NOT NULL,
    ALTER COLUMN line_qty SET NOT NULL,
    ALTER COLUMN line_price SET NOT NULL,
    ALTER COLUMN line_amount SET NOT NULL,
    ALTER COLUMN line_discount SET NOT NULL,
    ALTER COLUMN line_points_money SET NOT NULL,
    ALTER COLUMN line_to_pay SET NOT NULL,
    ALTER COLUMN line_refunded_qty SET NOT NULL,
    ALTER COLUMN discount_line SET NOT NULL,
    ALTER COLUMN discount_promotion SET NOT NULL,
    ALTER COLUMN discount_amount SET NOT NULL,
    ALTER COLUMN paid_line SET NOT NULL,
    ALTER COLUMN paid_lot SET NOT NULL,
    ALTER COLUMN paid_currency SET NOT NULL,
    ALTER COLUMN paid_points SET NOT NULL,
    ALTER COLUMN paid_money SET NOT NULL,
    ALTER COLUMN earned_line SET NOT NULL,
    ALTER COLUMN earned_currency SET NOT NULL,
    ALTER COLUMN earned_base SET NOT NULL,
    ALTER COLUMN earned_points SET NOT NULL,
    ALTER COLUMN earned_by_entry SET NOT NULL,
    ALTER COLUMN earned_by_promotion SET NOT NULL,
    ALTER COLUMN earned_by_points SET NOT NULL;

-- the table of lines goes, with its partitions; the view takes its name
ALTER EXTENSION loyalty DROP TABLE @extschema@.receipt_line_default;
DROP TABLE @extschema@.receipt_line;

-- The lines of the receipts, one row each, as the receipt rows store them:
-- the columns the table receipt_line had before 0.15, its jsonb columns
-- rendered from the typed arrays as calculate renders a line (amounts in
-- major units, promotions by code, or "#" and the id of a promotion deleted
-- since).  It reads with the caller's rights, so
-- the row-level security of the receipts applies.
CREATE VIEW @extschema@.receipt_line WITH (security_invoker = true) AS
SELECT r.program_id, r.receipt_id, r.committed_at, r.line_no[i] AS line, r.line_sku[i] AS sku,
       r.line_qty[i] AS qty, r.line_price[i] AS price, r.line_amount[i] AS amount,
       r.line_discount[i] AS discount, r.line_points_money[i] AS points_money,
       r.line_to_pay[i] AS to_pay,
       (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'amount', @extschema@.major_units(r.discount_amount[d], g.money_exponent::integer),
                    'promotion', COALESCE(p.code, '#' OPERATOR(pg_catalog.||) r.discount_promotion[d])) ORDER BY d), '[]')
          FROM pg_catalog.generate_subscripts(r.discount_line, 1) AS d
          LEFT JOIN @extschema@.promotion p ON p.id OPERATOR(pg_catalog.=) r.discount_promotion[d]
         WHERE r.discount_line[d] OPERATOR(pg_catalog.=) i) AS discounts,
       (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'lot', r.paid_lot[d],
                    'amount', @extschema@.major_units(r.paid_money[d], g.money_exponent::integer),
                    'points', @extschema@.major_units(r.paid_points[d], c.exponent::integer),
                    'currency', r.paid_currency[d]) ORDER BY d), '[]')
          FROM pg_catalog.generate_subscripts(r.paid_line, 1) AS d
          LEFT JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) r.program_id
                                          AND c.code OPERATOR(pg_catalog.=) r.paid_currency[d]
         WHERE r.paid_line[d] OPERATOR(pg_catalog.=) i) AS points_paid,
       (SELECT COALESCE(pg_catalog.jsonb_agg(
                    CASE WHEN r.earned_base[e] OPERATOR(pg_catalog.>) 0
                         THEN pg_catalog.jsonb_build_object('base', @extschema@.major_units(r.earned_base[e], c.exponent::integer))
                         ELSE '{}'::jsonb END
                    OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                    'points', @extschema@.major_units(r.earned_points[e], c.exponent::integer),
                    'currency', r.earned_currency[e],
                    'by_promotion', (SELECT COALESCE(pg_catalog.jsonb_object_agg(
                                                COALESCE(p.code, '#' OPERATOR(pg_catalog.||) r.earned_by_promotion[b]),
                                                @extschema@.major_units(r.earned_by_points[b], c.exponent::integer)), '{}')
                                       FROM pg_catalog.generate_subscripts(r.earned_by_entry, 1) AS b
                                       LEFT JOIN @extschema@.promotion p
                                              ON p.id OPERATOR(pg_catalog.=) r.earned_by_promotion[b]
                                      WHERE r.earned_by_entry[b] OPERATOR(pg_catalog.=) e)) ORDER BY e), '[]')
          FROM pg_catalog.generate_subscripts(r.earned_line, 1) AS e
          LEFT JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) r.program_id
                                          AND c.code OPERATOR(pg_catalog.=) r.earned_currency[e]
         WHERE r.earned_line[e] OPERATOR(pg_catalog.=) i) AS points_earned,
       r.line_refunded_qty[i] AS refunded_qty
  FROM @extschema@.receipt r
  JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) r.program_id
 CROSS JOIN LATERAL pg_catalog.generate_subscripts(r.line_no, 1) AS i;
COMMENT ON VIEW @extschema@.receipt_line IS 'the lines of the committed receipts, one row each, with their discounts, points paid and points earned as calculate gave them (from the receipt rows'' typed arrays)';
COMMENT ON COLUMN @extschema@.receipt_line.line IS 'the line number of the receipt';
COMMENT ON COLUMN @extschema@.receipt_line.price IS 'price per unit, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt_line.amount IS 'price times quantity, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.discount IS 'discounts on the line, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.points_money IS 'money of the line paid with points, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.to_pay IS 'what the line cost in money, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.discounts IS 'discounts by promotion, as calculate gave them: [{promotion, amount}]';
COMMENT ON COLUMN @extschema@.receipt_line.points_paid IS 'the lots that paid the line, as calculate gave them: [{lot, currency, points, amount}]';
COMMENT ON COLUMN @extschema@.receipt_line.points_earned IS 'points the line earned per currency, as calculate gave them: [{currency, points, base, by_promotion}]';
COMMENT ON COLUMN @extschema@.receipt_line.refunded_qty IS 'quantity of the line returned by refunds so far';
COMMENT ON COLUMN @extschema@.receipt_line.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt_line.receipt_id IS 'the receipt of the line';
COMMENT ON COLUMN @extschema@.receipt_line.committed_at IS 'the receipt''s committed_at';
COMMENT ON COLUMN @extschema@.receipt_line.sku IS 'the line''s sku as sent (NULL if none)';
COMMENT ON COLUMN @extschema@.receipt_line.qty IS 'the quantity sold, up to 3 decimals';
GRANT SELECT ON @extschema@.receipt_line TO loyalty_admin;

-- partitions are the receipt's only; refund is C (src/refund.c), reading
-- the receipt's arrays and writing what a line returned into them
CREATE OR REPLACE FUNCTION @extschema@.partition_indexes(parent text, part text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF parent OPERATOR(pg_catalog.=) 'receipt' THEN
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ADD CONSTRAINT %I PRIMARY KEY (program_id, receipt_id, committed_at)',
                                  part, part OPERATOR(pg_catalog.||) '_pkey');
        -- a customer's purchases over the tier window (loyalty.purchases)
        -- come from this index alone
        EXECUTE pg_catalog.format('CREATE INDEX %I ON @extschema@.%I (customer_id, committed_at) INCLUDE (program_id, status, to_pay, receipt_id)',
                                  part OPERATOR(pg_catalog.||) '_customer_idx', part);
    ELSE
        RAISE EXCEPTION 'partition_indexes: "%" is not a partitioned receipt table', parent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the reports read a day's rows by committed_at (src/reports.sql)
    EXECUTE pg_catalog.format('CREATE INDEX %I ON @extschema@.%I USING brin (committed_at)',
                              part OPERATOR(pg_catalog.||) '_committed_at_brin', part);
END
$$;
COMMENT ON FUNCTION @extschema@.partition_indexes(text, text) IS
'give a partition of loyalty.receipt its own indexes: primary key, customer index and a BRIN index on committed_at (internal: create_partitions)';
CREATE OR REPLACE FUNCTION @extschema@.refund(program text, receipt_id text, lines jsonb, refund_id text,
                                   reason text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_refund'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.refund(text, text, jsonb, text, text) IS
'return some lines of a committed receipt (some quantity): their share of the money, of the points that paid them (to the same lots) and of the points they earned; the lines kept are recomputed with the receipt''s promotions and the discount they lose is kept back from the money; idempotent by refund_id';
CREATE OR REPLACE FUNCTION @extschema@.create_partitions(months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m integer;
    first date;
    next date;
    parent text;
    name text;
    made integer := 0;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.create_partitions');
    IF months_ahead IS NULL OR months_ahead OPERATOR(pg_catalog.<) 0 OR months_ahead OPERATOR(pg_catalog.>) 120 THEN
        RAISE EXCEPTION 'months_ahead must be from 0 to 120, not %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR m IN 0 .. months_ahead LOOP
        first := (pg_catalog.date_trunc('month', pg_catalog.now()) OPERATOR(pg_catalog.+)
                  pg_catalog.make_interval(months => m))::date;
        next := (first OPERATOR(pg_catalog.+) '1 month'::interval)::date;
        FOREACH parent IN ARRAY '{receipt}'::text[] LOOP
            name := pg_catalog.format('%s_%s', parent, pg_catalog.to_char(first, 'YYYY_MM'));
            CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('@extschema@.%I', name)) IS NOT NULL;
            EXECUTE pg_catalog.format('CREATE TABLE @extschema@.%I (LIKE @extschema@.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION)',
                                      name, parent);
            EXECUTE pg_catalog.format(
                'WITH moved AS (DELETE FROM @extschema@.%I WHERE committed_at >= %L AND committed_at < %L RETURNING *)'
                ' INSERT INTO @extschema@.%I SELECT * FROM moved',
                parent OPERATOR(pg_catalog.||) '_default', first, next, name);
            PERFORM @extschema@.partition_indexes(parent, name);
            PERFORM @extschema@.partition_security(name);
            EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ATTACH PARTITION @extschema@.%I FOR VALUES FROM (%L) TO (%L)',
                                      parent, name, first::timestamptz, next::timestamptz);
            made := made OPERATOR(pg_catalog.+) 1;
        END LOOP;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION @extschema@.create_partitions(integer) IS
'create the monthly partitions of receipt from this month to months_ahead later; returns how many were created';
