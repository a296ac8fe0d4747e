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

-- partitions are the receipt's only; refund writes what a line returned into
-- the receipt's array
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
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rid text := receipt_id;
    fid text := refund_id;
    g @extschema@.program;
    k @extschema@.receipt_key;
    r @extschema@.receipt;
    old @extschema@.receipt_refund;
    l @extschema@.receipt_line;
    req jsonb := '[]';
    item jsonb;
    n integer := 0;
    line_no integer;
    back numeric;
    prev numeric;
    upto numeric;
    x record;
    e @extschema@.ledger;
    entries jsonb := '[]';
    line_money bigint;
    money bigint := 0;
    withheld bigint := 0;
    ret_cur text[] := '{}';
    ret_lot bigint[] := '{}';
    ret_amt bigint[] := '{}';
    tb_cur text[] := '{}';
    tb_amt bigint[] := '{}';
    returned jsonb := '{}';
    taken jsonb := '{}';
    owed jsonb := '{}';
    per_line jsonb := '[]';
    line_ret jsonb;
    line_tb jsonb;
    want bigint;
    cut bigint;
    short bigint;
    lot bigint;
    kept jsonb;
    now_answer jsonb;
    kept_discount bigint := 0;
    lost bigint := 0;
    lost_delta bigint := 0;
    counters_back jsonb := '[]';
    counters_after jsonb;
    result jsonb;
BEGIN
    IF program IS NULL OR rid IS NULL OR lines IS NULL OR fid IS NULL THEN
        RAISE EXCEPTION 'program, receipt_id, lines and refund_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF fid OPERATOR(pg_catalog.=) '' OR pg_catalog.length(fid) OPERATOR(pg_catalog.>) 128 THEN
        RAISE EXCEPTION 'refund_id must be 1 to 128 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The refund id makes a refund safe to repeat: send the same id again when the outcome is unknown.';
    END IF;
    SELECT * INTO g FROM @extschema@.program p WHERE p.id OPERATOR(pg_catalog.=) @extschema@.program_id(program);
    IF pg_catalog.jsonb_typeof(lines) IS DISTINCT FROM 'array' OR pg_catalog.jsonb_array_length(lines) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array of {"line": n, "qty": q}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO k FROM @extschema@.receipt_key t
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was not committed', rid, program
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO STRICT r FROM @extschema@.receipt t
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;

    -- the same refund again: its first result
    SELECT * INTO old FROM @extschema@.receipt_refund f
     WHERE f.program_id OPERATOR(pg_catalog.=) g.id AND f.receipt_id OPERATOR(pg_catalog.=) rid
       AND f.refund_id OPERATOR(pg_catalog.=) fid;
    IF FOUND THEN
        IF old.request OPERATOR(pg_catalog.<>) lines THEN
            RAISE EXCEPTION 'refund "%" of receipt "%" was made with other lines', fid, rid
                USING ERRCODE = '23L02',
                      DETAIL = pg_catalog.format('It returned %s.', old.lines),
                      HINT = 'Give a new return a new refund_id.';
        END IF;
        RETURN old.result OPERATOR(pg_catalog.||) '{"replayed": true}';
    END IF;
    IF r.status OPERATOR(pg_catalog.=) 'cancelled' THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was cancelled: nothing is left to refund', rid, program
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    -- the lines asked for, checked one by one
    FOR item IN SELECT v FROM pg_catalog.jsonb_array_elements(lines) v LOOP
        IF pg_catalog.jsonb_typeof(item) IS DISTINCT FROM 'object'
           OR pg_catalog.jsonb_typeof(item OPERATOR(pg_catalog.->) 'line') IS DISTINCT FROM 'number'
           OR (item OPERATOR(pg_catalog.->>) 'line')::numeric OPERATOR(pg_catalog.<>) pg_catalog.trunc((item OPERATOR(pg_catalog.->>) 'line')::numeric)
           OR pg_catalog.abs((item OPERATOR(pg_catalog.->>) 'line')::numeric) OPERATOR(pg_catalog.>) 2147483647 THEN
            RAISE EXCEPTION 'lines[%] must be an object with a whole number "line"', n
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        line_no := (item OPERATOR(pg_catalog.->>) 'line')::integer;
        IF item OPERATOR(pg_catalog.?) 'qty' AND pg_catalog.jsonb_typeof(item OPERATOR(pg_catalog.->) 'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'lines[%].qty must be a number', n USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT * INTO l FROM @extschema@.receipt_line t
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at AND t.line OPERATOR(pg_catalog.=) line_no;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'receipt "%" has no line %', rid, line_no USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF req OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('line', line_no)) THEN
            RAISE EXCEPTION 'line % is named twice', line_no USING ERRCODE = 'invalid_parameter_value';
        END IF;
        back := COALESCE((item OPERATOR(pg_catalog.->>) 'qty')::numeric, l.qty OPERATOR(pg_catalog.-) l.refunded_qty);
        IF back OPERATOR(pg_catalog.<=) 0 AND item OPERATOR(pg_catalog.?) 'qty' THEN
            RAISE EXCEPTION 'lines[%].qty must be greater than 0', n USING ERRCODE = 'numeric_value_out_of_range';
        END IF;
        IF l.refunded_qty OPERATOR(pg_catalog.>=) l.qty THEN
            RAISE EXCEPTION 'line % of receipt "%" was returned already', line_no, rid
                USING ERRCODE = '23L03', HINT = 'A line is returned at most once in all.';
        END IF;
        IF back OPERATOR(pg_catalog.>) (l.qty OPERATOR(pg_catalog.-) l.refunded_qty) THEN
            RAISE EXCEPTION 'line % of receipt "%" has % left to return, not %', line_no, rid,
                  l.qty OPERATOR(pg_catalog.-) l.refunded_qty, back
                USING ERRCODE = '23L03',
                      DETAIL = pg_catalog.format('%s of %s were returned already.', l.refunded_qty, l.qty);
        END IF;
        req := req OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('line', line_no, 'qty', back));
        n := n OPERATOR(pg_catalog.+) 1;
    END LOOP;

    -- each line's share, cumulative over its returns
    FOR item IN SELECT v FROM pg_catalog.jsonb_array_elements(req) v LOOP
        SELECT * INTO l FROM @extschema@.receipt_line t
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
           AND t.line OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'line')::integer;
        prev := l.refunded_qty;
        upto := prev OPERATOR(pg_catalog.+) (item OPERATOR(pg_catalog.->>) 'qty')::numeric;
        line_money := @extschema@.share(l.to_pay, prev, upto, l.qty);
        money := money OPERATOR(pg_catalog.+) line_money;
        line_ret := '{}';
        line_tb := '{}';
        FOR x IN SELECT pp OPERATOR(pg_catalog.->>) 'currency' AS currency, (pp OPERATOR(pg_catalog.->>) 'lot')::bigint AS lot,
                        @extschema@.share(@extschema@.minor_units((pp OPERATOR(pg_catalog.->>) 'points')::numeric, c.exponent),
                                          prev, upto, l.qty) AS amount
                   FROM pg_catalog.jsonb_array_elements(l.points_paid) pp
                   JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) g.id
                                              AND c.code OPERATOR(pg_catalog.=) (pp OPERATOR(pg_catalog.->>) 'currency')
        LOOP
            CONTINUE WHEN x.amount OPERATOR(pg_catalog.<=) 0;
            ret_cur := ret_cur OPERATOR(pg_catalog.||) x.currency;
            ret_lot := ret_lot OPERATOR(pg_catalog.||) x.lot;
            ret_amt := ret_amt OPERATOR(pg_catalog.||) x.amount;
            line_ret := line_ret OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((line_ret OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) x.amount);
        END LOOP;
        FOR x IN SELECT pe OPERATOR(pg_catalog.->>) 'currency' AS currency,
                        @extschema@.share(@extschema@.minor_units((pe OPERATOR(pg_catalog.->>) 'points')::numeric, c.exponent),
                                          prev, upto, l.qty) AS amount
                   FROM pg_catalog.jsonb_array_elements(l.points_earned) pe
                   JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) g.id
                                              AND c.code OPERATOR(pg_catalog.=) (pe OPERATOR(pg_catalog.->>) 'currency')
        LOOP
            CONTINUE WHEN x.amount OPERATOR(pg_catalog.<=) 0 OR r.customer_id IS NULL;
            tb_cur := tb_cur OPERATOR(pg_catalog.||) x.currency;
            tb_amt := tb_amt OPERATOR(pg_catalog.||) x.amount;
            line_tb := line_tb OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((line_tb OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) x.amount);
        END LOOP;
        UPDATE @extschema@.receipt t
           SET line_refunded_qty[pg_catalog.array_position(t.line_no, l.line)] = upto
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
        per_line := per_line OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'line', l.line, 'qty', item OPERATOR(pg_catalog.->) 'qty',
            'money', @extschema@.major_units(line_money, g.money_exponent),
            'points_returned', line_ret, 'points_taken', line_tb));
    END LOOP;

    -- Points earned and still queued come off the queue first (before the
    -- wallet locks: a release never waits for a wallet), regular accruals
    -- before bonus lots.
    FOR x IN SELECT u.c AS currency, pg_catalog.sum(u.a)::bigint AS amount
               FROM ROWS FROM (pg_catalog.unnest(tb_cur), pg_catalog.unnest(tb_amt)) u (c, a) GROUP BY u.c ORDER BY u.c
    LOOP
        want := x.amount;
        taken := taken OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, x.amount);
        FOR item IN SELECT pg_catalog.jsonb_build_object('id', q.id, 'amount', q.amount)
                      FROM @extschema@.accrual_queue q
                     WHERE q.program_id OPERATOR(pg_catalog.=) g.id AND q.receipt_id OPERATOR(pg_catalog.=) rid
                       AND q.currency OPERATOR(pg_catalog.=) x.currency
                     ORDER BY q.kind OPERATOR(pg_catalog.<>) 'regular', q.id
                       FOR UPDATE
        LOOP
            EXIT WHEN want OPERATOR(pg_catalog.<=) 0;
            cut := LEAST(want, (item OPERATOR(pg_catalog.->>) 'amount')::bigint);
            IF cut OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'amount')::bigint THEN
                DELETE FROM @extschema@.accrual_queue q WHERE q.id OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'id')::bigint;
            ELSE
                UPDATE @extschema@.accrual_queue q SET amount = q.amount OPERATOR(pg_catalog.-) cut
                 WHERE q.id OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'id')::bigint;
            END IF;
            want := want OPERATOR(pg_catalog.-) cut;
        END LOOP;
        tb_cur := tb_cur OPERATOR(pg_catalog.||) ('-' OPERATOR(pg_catalog.||) x.currency);
        tb_amt := tb_amt OPERATOR(pg_catalog.||) want;
    END LOOP;

    IF r.customer_id IS NOT NULL THEN
        PERFORM 1 FROM @extschema@.wallet w
          WHERE w.customer_id OPERATOR(pg_catalog.=) r.customer_id
          ORDER BY w.currency COLLATE pg_catalog."C" FOR NO KEY UPDATE;
    END IF;

    -- Points that paid the lines go back to their lots
    FOR x IN SELECT s.c AS currency, pg_catalog.array_agg(s.l ORDER BY s.l) AS lots,
                    pg_catalog.array_agg(s.a ORDER BY s.l) AS amounts, pg_catalog.sum(s.a)::bigint AS total
               FROM (SELECT u.c, u.l, pg_catalog.sum(u.a)::bigint AS a
                       FROM ROWS FROM (pg_catalog.unnest(ret_cur), pg_catalog.unnest(ret_lot), pg_catalog.unnest(ret_amt)) u (c, l, a) GROUP BY u.c, u.l) s
              GROUP BY s.c ORDER BY s.c
    LOOP
        e := @extschema@.return_lots(r.customer_id, x.currency, x.lots, x.amounts, rid, NULL);
        returned := returned OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, x.total);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
    END LOOP;

    -- Points earned and released are taken back from the wallet (the
    -- accrual's lot first); what was spent since is owed or kept in money
    FOR x IN SELECT pg_catalog.substr(u.c, 2) AS currency, u.a AS amount
               FROM ROWS FROM (pg_catalog.unnest(tb_cur), pg_catalog.unnest(tb_amt)) u (c, a)
              WHERE pg_catalog.left(u.c, 1) OPERATOR(pg_catalog.=) '-' AND u.a OPERATOR(pg_catalog.>) 0
              ORDER BY 1
    LOOP
        SELECT e2.lot_id INTO lot
          FROM pg_catalog.jsonb_array_elements(r.accruals) a
          JOIN @extschema@.ledger e2 ON e2.program_id OPERATOR(pg_catalog.=) g.id
                                    AND e2.idempotency_key OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'key')
         WHERE a OPERATOR(pg_catalog.->>) 'currency' OPERATOR(pg_catalog.=) x.currency
         ORDER BY a OPERATOR(pg_catalog.->>) 'kind' OPERATOR(pg_catalog.<>) 'regular', e2.version
         LIMIT 1;
        e := @extschema@.take_back(r.customer_id, x.currency, COALESCE(lot, 0), x.amount, rid, NULL,
                                   CASE g.refund_shortfall WHEN 'debt' THEN 'debt' ELSE 'forgive' END);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
        short := x.amount OPERATOR(pg_catalog.+) e.amount;
        IF short OPERATOR(pg_catalog.>) 0 AND g.refund_shortfall OPERATOR(pg_catalog.=) 'debt' THEN
            owed := owed OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, short);
        ELSIF short OPERATOR(pg_catalog.>) 0 THEN
            withheld := withheld OPERATOR(pg_catalog.+) @extschema@.points_money(g.id, x.currency, short);
        END IF;
    END LOOP;
    withheld := LEAST(withheld, money);

    -- What the return breaks: the lines kept, recomputed with the receipt's
    -- own promotions as committed, may earn less discount than they got
    -- ("3 for 2" with one of the three returned).  The loss so far is kept
    -- back from the money (as far as this return gives any); a later return
    -- that ends it gives it back.  Promotions that no longer hold give their
    -- counter uses back.
    IF r.document IS NOT NULL THEN
        -- a line without a number is numbered by its place, as calculate does
        SELECT pg_catalog.jsonb_agg(d OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                   'line', t.line, 'qty', t.qty OPERATOR(pg_catalog.-) t.refunded_qty) ORDER BY t.line),
               pg_catalog.sum(t.discount OPERATOR(pg_catalog.-)
                              @extschema@.share(t.discount, 0, t.refunded_qty, t.qty))::bigint
          INTO kept, kept_discount
          FROM pg_catalog.jsonb_array_elements(r.document OPERATOR(pg_catalog.->) 'lines') WITH ORDINALITY AS dl (d, o)
          JOIN @extschema@.receipt_line t
            ON t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
           AND t.line OPERATOR(pg_catalog.=) COALESCE((d OPERATOR(pg_catalog.->>) 'line')::integer, dl.o::integer)
         WHERE t.refunded_qty OPERATOR(pg_catalog.<) t.qty;
        IF kept IS NOT NULL THEN
            now_answer := @extschema@.recompute(
                ((r.document OPERATOR(pg_catalog.-) '{points,coupons}'::text[])
                 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                     'lines', kept,
                     'at', COALESCE(r.document OPERATOR(pg_catalog.->) 'at',
                                    pg_catalog.to_jsonb(pg_catalog.to_char(pg_catalog.timezone('UTC', r.at),
                                                                           'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))))),
                @extschema@.applied_promotion_ids(g.id, r.answer));
            lost := GREATEST(kept_discount OPERATOR(pg_catalog.-) @extschema@.minor_units(
                        (now_answer OPERATOR(pg_catalog.#>>) '{totals,discount}')::numeric, g.money_exponent), 0);
        END IF;
        lost_delta := lost OPERATOR(pg_catalog.-) r.discount_lost;
        IF lost_delta OPERATOR(pg_catalog.>) 0 THEN
            lost_delta := LEAST(lost_delta, money OPERATOR(pg_catalog.-) withheld);
        END IF;
        -- the counter uses of promotions the lines kept no longer get
        SELECT COALESCE(pg_catalog.jsonb_agg(c ORDER BY o), '[]') INTO counters_back
          FROM pg_catalog.jsonb_array_elements(r.counters) WITH ORDINALITY AS rc (c, o)
         WHERE (c OPERATOR(pg_catalog.->) 'returned') IS NULL
           AND (c OPERATOR(pg_catalog.->>) 'promotion_id')::bigint OPERATOR(pg_catalog.<>) ALL
               (@extschema@.applied_promotion_ids(g.id, now_answer));
        PERFORM @extschema@.return_counter_uses(counters_back);
        -- the receipt's counters, those given back marked with this refund
        SELECT COALESCE(pg_catalog.jsonb_agg(CASE WHEN counters_back OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(c)
                                                  THEN c OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('returned', fid)
                                                  ELSE c END ORDER BY o), '[]')
          INTO counters_after
          FROM pg_catalog.jsonb_array_elements(r.counters) WITH ORDINALITY AS rc (c, o);
    END IF;

    result := pg_catalog.jsonb_build_object(
        'program', program, 'receipt_id', rid, 'refund_id', fid, 'replayed', false,
        'status', CASE WHEN EXISTS (SELECT 1 FROM @extschema@.receipt_line t
                                     WHERE t.program_id OPERATOR(pg_catalog.=) g.id
                                       AND t.receipt_id OPERATOR(pg_catalog.=) rid
                                       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
                                       AND t.refunded_qty OPERATOR(pg_catalog.<) t.qty)
                       THEN 'partly_refunded' ELSE 'refunded' END,
        'customer_id', r.customer_id, 'lines', per_line,
        'money', @extschema@.major_units(money OPERATOR(pg_catalog.-) withheld OPERATOR(pg_catalog.-) lost_delta,
                                         g.money_exponent),
        'money_withheld', @extschema@.major_units(withheld, g.money_exponent),
        'discount_withheld', @extschema@.major_units(lost_delta, g.money_exponent),
        'counters_returned', counters_back,
        'points_returned', returned, 'points_taken', taken, 'debt', owed, 'ledger', entries);
    INSERT INTO @extschema@.receipt_refund (program_id, receipt_id, refund_id, request, lines, money,
                                            money_withheld, points_returned, points_taken, debt,
                                            result, actor, reason, discount_withheld, counters_returned)
    VALUES (g.id, rid, fid, lines, req, money OPERATOR(pg_catalog.-) withheld OPERATOR(pg_catalog.-) lost_delta,
            withheld, returned, taken, owed, result, @extschema@.actor(), reason, lost_delta, counters_back);
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (g.id, 'refund', r.customer_id, result OPERATOR(pg_catalog.-) '{ledger,replayed}'::text[]);
    UPDATE @extschema@.receipt t
       SET status = result OPERATOR(pg_catalog.->>) 'status',
           discount_lost = t.discount_lost OPERATOR(pg_catalog.+) lost_delta,
           counters = COALESCE(counters_after, t.counters)
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    RETURN result;
END
$$;
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
