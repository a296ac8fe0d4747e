-- match_all: many conditions against the lines of a receipt, through the
-- index of their equality, prefix and tag tests; it must give exactly what
-- evaluating each condition on each line gives.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

CREATE TEMP TABLE rules (n serial, c loyalty.condition);
INSERT INTO rules (c) VALUES
    ('category <@ ''ski'''),                                  -- 1 prefix
    ('category <@ ''ski/alpine'' and price >= 1000'),         -- 2 prefix and a range
    ('brand in (''Atomic'', ''Head'')'),                      -- 3 in-list
    ('sku = ''A-1'' or sku = ''B-2'''),                       -- 4 or of equalities
    ('tags ? ''sale'''),                                      -- 5 tag
    ('price > 5000'),                                         -- 6 nothing to index
    ('receipt.channel = ''app'''),                            -- 7 receipt only
    ('receipt.channel = ''app'' and brand = ''Nike'''),       -- 8 filed under the line's brand
    ('customer.tier = ''gold'' and price > 100'),             -- 9 filed under the customer
    ('not brand = ''Atomic'''),                               -- 10 a negation: never indexed
    (NULL),                                                   -- 11 no condition
    ('size = 42'),                                            -- 12 a number equality
    ('true'),                                                 -- 13 every line
    ('brand = ''Atomic'' or price < 10'),                     -- 14 or with an unindexable side
    ('customer.tier = ''blue''');                             -- 15 receipt only, false

CREATE TEMP TABLE receipt AS SELECT '[
    {"sku": "A-1", "category": "ski/alpine/men", "brand": "Atomic", "price": 1200, "size": 42},
    {"sku": "B-2", "category": "ski", "brand": "Nike", "price": 50, "tags": ["sale", "new"]},
    {"sku": "C-3", "category": "run/shoes", "brand": "Head", "price": 9000, "size": "42.0"},
    {"sku": "D-4", "category": "skiing", "price": 5}
]'::jsonb AS lines, '{"channel": "app"}'::jsonb AS head, '{"tier": "gold"}'::jsonb AS customer;

-- the matches, per line
SELECT m.line, array_agg(m.condition ORDER BY m.condition) AS conditions
  FROM receipt, (SELECT array_agg(c ORDER BY n) AS a FROM rules) r,
       loyalty.match_all(r.a, receipt.lines, receipt.head, receipt.customer) m
 GROUP BY m.line ORDER BY m.line;
-- the same, one condition on one line at a time
SELECT l.ord AS line, array_agg(r.n ORDER BY r.n) AS conditions
  FROM receipt, jsonb_array_elements(receipt.lines) WITH ORDINALITY l(doc, ord), rules r
 WHERE loyalty.matches(r.c, l.doc, receipt.head, receipt.customer)
 GROUP BY l.ord ORDER BY l.ord;
-- without a receipt or a customer, their attributes read as missing
SELECT m.line, array_agg(m.condition ORDER BY m.condition) AS conditions
  FROM receipt, (SELECT array_agg(c ORDER BY n) AS a FROM rules) r, loyalty.match_all(r.a, receipt.lines) m
 GROUP BY m.line ORDER BY m.line;

-- 2,000 generated conditions on 50 lines: the index finds exactly what
-- evaluating every condition on every line finds
CREATE TEMP TABLE many AS
SELECT n, (CASE n % 6
    WHEN 0 THEN format('category <@ ''c%s/d%s''', n % 7, n % 5)
    WHEN 1 THEN format('brand in (''b%s'', ''b%s'') and price >= %s', n % 11, n % 13, n % 900)
    WHEN 2 THEN format('sku = ''s%s'' or tags ? ''t%s''', n % 97, n % 9)
    WHEN 3 THEN format('price between %s and %s', n % 500, n % 500 + 200)
    WHEN 4 THEN format('receipt.channel = ''ch%s'' and category <@ ''c%s''', n % 3, n % 7)
    ELSE format('customer.tier = ''t%s'' or not brand = ''b%s''', n % 4, n % 11) END)::loyalty.condition AS c
  FROM generate_series(1, 2000) n;
CREATE TEMP TABLE many_lines AS
SELECT jsonb_agg(jsonb_build_object('sku', 's' || (i * 7) % 97, 'brand', 'b' || i % 11,
                                    'category', format('c%s/d%s/e%s', i % 7, i % 5, i % 3),
                                    'price', (i * 37) % 1000, 'tags', jsonb_build_array('t' || i % 9))) AS lines
  FROM generate_series(1, 50) i;
WITH fast AS (
    SELECT m.line, m.condition
      FROM many_lines, (SELECT array_agg(c ORDER BY n) AS a FROM many) r,
           loyalty.match_all(r.a, many_lines.lines, '{"channel": "ch1"}', '{"tier": "t2"}') m
), slow AS (
    SELECT l.ord::int AS line, r.n AS condition
      FROM many_lines, jsonb_array_elements(many_lines.lines) WITH ORDINALITY l(doc, ord), many r
     WHERE loyalty.matches(r.c, l.doc, '{"channel": "ch1"}', '{"tier": "t2"}')
)
SELECT (SELECT count(*) FROM fast) AS pairs,
       (SELECT count(*) FROM (SELECT * FROM fast EXCEPT SELECT * FROM slow) x) AS only_fast,
       (SELECT count(*) FROM (SELECT * FROM slow EXCEPT SELECT * FROM fast) x) AS only_slow;

-- edges and bad input
SELECT count(*) AS no_conditions FROM loyalty.match_all('{}', '[{"a": 1}]');
SELECT count(*) AS no_lines FROM loyalty.match_all(ARRAY['true'::loyalty.condition], '[]');
SELECT count(*) AS null_lines FROM loyalty.match_all(ARRAY['true'::loyalty.condition], NULL);
SELECT * FROM pg_temp.err($$SELECT loyalty.match_all(ARRAY['true'::loyalty.condition], '{"a": 1}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.match_all(ARRAY['true'::loyalty.condition], '[{"a": 1}, 5]')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.match_all(ARRAY[['true'::loyalty.condition]], '[{}]')$$);

DROP TABLE rules, receipt, many, many_lines;
DROP EXTENSION loyalty;
