-- The kinds of benefit, each one file of src/kinds/ with its table of
-- operations: every kind read from a loosely written document into its
-- normal form (every field explicit, numbers at the scale of their money or
-- currency), the normal form read again unchanged, the list of kinds the
-- error names, and what a kind's table refuses.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, phone_country)
VALUES ('shop', 'Shop', 'bonus', 500, 'RU');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit, exponent) VALUES
    (1, 'bonus', 'Bonus', 1, 0),
    (1, 'miles', 'Miles', 0.5, 2);
COMMIT;

CREATE TEMP TABLE doc (kind text, doc jsonb);
INSERT INTO doc VALUES
    ('percent_off', '{"kind": "percent_off", "percent": 12.5}'),
    ('amount_off', '{"kind": "amount_off", "amount": 100}'),
    ('fixed_price', '{"kind": "fixed_price", "price": 499.9}'),
    ('fixed_price', '{"kind": "fixed_price", "points": 1.5, "currency": "miles"}'),
    ('n_for_m', '{"kind": "n_for_m", "buy": 3, "pay": 2}'),
    ('bundle', '{"kind": "bundle", "price": 999, "components": [{"condition": "category <@ ''ski''"}, {"condition": "brand = ''X''", "qty": 2}]}'),
    ('receipt_off', '{"kind": "receipt_off", "threshold": 3000, "amount": 300}'),
    ('receipt_off', '{"kind": "receipt_off", "threshold": 0, "percent": 5}'),
    ('points_per', '{"kind": "points_per", "per": 20, "points": 1}'),
    ('multiplier', '{"kind": "multiplier", "factor": 1.5}'),
    ('bonus_lot', '{"kind": "bonus_lot", "points": 500, "currency": "miles", "valid_days": 30, "restriction": "category <@ ''ski''"}'),
    ('bonus_lot', '{"kind": "bonus_lot", "points": 50, "valid_days": null}'),
    ('gift', '{"kind": "gift", "sku": "MUG-1", "value": 3, "name": "a mug"}'),
    ('gift', '{"kind": "gift", "sku": "MUG-1", "value": 0}');

-- the normal form of each
SELECT kind, loyalty.normalize_benefit(doc, 1) AS normal FROM doc ORDER BY kind, doc::text;

-- read again, the normal form is unchanged (render and parse agree)
SELECT kind, loyalty.normalize_benefit(loyalty.normalize_benefit(doc, 1), 1)
             = loyalty.normalize_benefit(doc, 1) AS stable
  FROM doc ORDER BY kind, doc::text;

-- every kind has a document above, and the error's list names them all
SELECT count(DISTINCT kind) AS kinds FROM doc;
SELECT (pg_temp.err($q$SELECT loyalty.normalize_benefit('{"kind": "quarter_off"}', 1)$q$)).*;
DO $$
DECLARE
    hint text;
BEGIN
    PERFORM loyalty.normalize_benefit('{"kind": "quarter_off"}', 1);
EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RAISE NOTICE '%', hint;
    RAISE NOTICE 'every kind above is listed: %',
        NOT EXISTS (SELECT 1 FROM doc d WHERE strpos(hint, ' ' || d.kind) = 0);
END
$$;

-- Bad documents: each kind reads only its own fields, and a wrong value
-- names its field, with the SQLSTATE of docs/errors.md; nothing is stored
SELECT b, (pg_temp.err(format('SELECT loyalty.normalize_benefit(%L, %s)', b, p))).*
  FROM (VALUES
    ('{"kind": "multiplier", "factor": 2, "currency": "miles"}', 1),
    ('{"kind": "gift", "sku": "MUG-1", "value": 3, "points": 1}', 1),
    ('{"kind": "bundle", "price": 1, "components": [{"condition": "true", "qty": 1, "price": 1}, {"condition": "true"}]}', 1),
    ('{"kind": "bundle", "price": 1, "components": [{"condition": "true", "qty": 101}, {"condition": "true"}]}', 1),
    ('{"kind": "fixed_price", "points": 0.001, "currency": "miles"}', 1),
    ('{"kind": "fixed_price", "price": 1, "currency": "miles"}', 1),
    ('{"kind": "fixed_price"}', 1),
    ('{"kind": "receipt_off", "threshold": -1, "amount": 1}', 1),
    ('{"kind": "points_per", "per": 20}', 1),
    ('{"kind": "bonus_lot", "points": 1, "restriction": "category <@"}', 1),
    ('{"kind": "bonus_lot", "points": 1, "valid_days": 3661}', 1),
    ('{"kind": "n_for_m", "buy": 1, "pay": 1}', 1),
    ('{"kind": 5}', 1),
    ('"percent_off"', 1),
    ('{"kind": "percent_off", "percent": 10}', 99)) t(b, p);

DROP EXTENSION loyalty CASCADE;
