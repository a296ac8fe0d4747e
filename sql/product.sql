-- The product catalogue: a line that names a sku reads the product's
-- category, brand and attributes; what the line carries itself wins.
-- Every constraint refuses bad rows with its SQLSTATE, and nothing is written.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency) VALUES ('sport', 'Sport', 'bonus');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;

INSERT INTO loyalty.product (program_id, sku, name, category, brand, attributes) VALUES
    (1, 'SKI-1', 'Redster G9', 'ski/alpine/men', 'Atomic', '{"size": "175", "tags": ["new"]}'),
    (1, 'POLE-2', 'Carbon poles', 'ski/poles', 'Leki', '{"tags": ["clearance"]}'),
    (1, 'SOCK-3', 'Ski socks', 'textile/socks', 'Head', '{"size": "M"}'),
    (1, 'GIFT', 'Gift card', NULL, NULL, '{}');
SELECT sku, name, category, brand, attributes FROM loyalty.product ORDER BY sku;

-- A line's document: the product's attributes, then the line's own (which win)
CREATE FUNCTION pg_temp.line_doc(program bigint, line jsonb) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT jsonb_strip_nulls(jsonb_build_object('category', p.category, 'brand', p.brand,
                                                                 'attributes', p.attributes))
                       FROM loyalty.product p WHERE p.program_id = program AND p.sku = line ->> 'sku'), '{}')
           || line
$$;
SELECT line ->> 'sku' AS sku, rule,
       loyalty.matches(rule::loyalty.condition, pg_temp.line_doc(1, line)) AS matches
  FROM (VALUES ('{"sku": "SKI-1", "price": 32000}'::jsonb), ('{"sku": "POLE-2", "price": 4500}'),
               ('{"sku": "SOCK-3", "price": 900, "brand": "Falke"}'), ('{"sku": "UNKNOWN", "category": "ski/wax"}'))
       AS l(line),
       (VALUES ('category <@ ''ski'' and not tags ? ''clearance'''), ('brand in (''Atomic'', ''Head'')'),
               ('size = ''M''')) AS r(rule)
 ORDER BY 1, 2;

-- bad rows: the constraint's SQLSTATE, and the catalogue is unchanged
SELECT what, e.state, e.message
  FROM (VALUES
    ('a sku twice',        $$INSERT INTO loyalty.product (program_id, sku) VALUES (1, 'SKI-1')$$),
    ('an empty sku',       $$INSERT INTO loyalty.product (program_id, sku) VALUES (1, '')$$),
    ('a sku of 129',       $$INSERT INTO loyalty.product (program_id, sku) VALUES (1, repeat('x', 129))$$),
    ('no sku',             $$INSERT INTO loyalty.product (program_id, sku) VALUES (1, NULL)$$),
    ('no programme',       $$INSERT INTO loyalty.product (program_id, sku) VALUES (99, 'X')$$),
    ('path ski/',          $$INSERT INTO loyalty.product (program_id, sku, category) VALUES (1, 'X', 'ski/')$$),
    ('path /ski',          $$INSERT INTO loyalty.product (program_id, sku, category) VALUES (1, 'X', '/ski')$$),
    ('path ski//alpine',   $$INSERT INTO loyalty.product (program_id, sku, category) VALUES (1, 'X', 'ski//alpine')$$),
    ('empty path',         $$INSERT INTO loyalty.product (program_id, sku, category) VALUES (1, 'X', '')$$),
    ('empty brand',        $$INSERT INTO loyalty.product (program_id, sku, brand) VALUES (1, 'X', '')$$),
    ('attributes an array', $$INSERT INTO loyalty.product (program_id, sku, attributes) VALUES (1, 'X', '[1]')$$),
    ('attributes null',    $$INSERT INTO loyalty.product (program_id, sku, attributes) VALUES (1, 'X', NULL)$$),
    ('an update to a bad path', $$UPDATE loyalty.product SET category = 'ski//x' WHERE sku = 'SKI-1'$$)
  ) AS t(what, query),
  LATERAL pg_temp.err(query) AS e;
SELECT count(*) AS products, count(*) FILTER (WHERE category = 'ski/alpine/men') AS unchanged FROM loyalty.product;

-- the catalogue is saved by pg_dump
SELECT 'loyalty.product'::regclass = ANY (extconfig) AS dumped FROM pg_extension WHERE extname = 'loyalty';

DROP EXTENSION loyalty;
