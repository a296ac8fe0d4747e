-- loyalty.condition limits: nesting at and past 64 levels, input at and past
-- 64 KB, very long in-lists and and-chains (no recursion over their length).
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

-- 64 nested parentheses are fine, 65 are not (54000, with the position)
SELECT length(c::text), c::text = 'a = 1' AS flattened
  FROM (SELECT (repeat('(', 64) || 'a = 1' || repeat(')', 64))::loyalty.condition AS c) t;
SELECT * FROM pg_temp.err($$SELECT (repeat('(', 65) || 'a = 1' || repeat(')', 65))::loyalty.condition$$);
-- each "not" is a level too
SELECT (repeat('not ', 64) || 'a = 1')::loyalty.condition AS even_nots;
SELECT * FROM pg_temp.err($$SELECT (repeat('not ', 65) || 'a = 1')::loyalty.condition$$);
-- alternating and/or at 64 levels: canonical, a fixed point, and it evaluates
WITH RECURSIVE nest(i, t) AS (
    SELECT 1, 'a = 1'
    UNION ALL
    SELECT i + 1, format('(b%s = %s %s %s)', i, i, CASE WHEN i % 2 = 0 THEN 'and' ELSE 'or' END, t)
      FROM nest WHERE i < 64
)
SELECT length(t) AS text_length,
       t::loyalty.condition::text::loyalty.condition OPERATOR(loyalty.=) t::loyalty.condition AS fixed_point,
       loyalty.matches(t::loyalty.condition, '{"a": 1}') AS a_only,
       loyalty.matches(t::loyalty.condition, '{"b63": 63}') AS outermost_or
  FROM nest WHERE i = 64;
-- deep nesting fails cleanly however deep it goes
SELECT * FROM pg_temp.err($$SELECT (repeat('(', 100000) || 'a = 1')::loyalty.condition$$);

-- 64 KB of text is the limit, for the input and for its canonical form,
-- which spaces what the input need not
SELECT length(('a in (' || string_agg(i::text, ',') || ')')::loyalty.condition::text) > 55000 AS near_limit
  FROM generate_series(1, 10000) i;
SELECT * FROM pg_temp.err($$SELECT ('a in (' || string_agg(i::text, ',') || ')')::loyalty.condition
                              FROM generate_series(1, 12000) i$$);
SELECT * FROM pg_temp.err($$SELECT ('a = ''' || repeat('x', 65536) || '''')::loyalty.condition$$);

-- a long in-list: sorted, deduplicated, searched
SELECT array_length(regexp_split_to_array(c::text, ','), 1) AS items,
       loyalty.matches(c, '{"sku": "SKU-02777"}') AS found,
       loyalty.matches(c, '{"sku": "SKU-03001"}') AS not_found,
       c::text::loyalty.condition OPERATOR(loyalty.=) c AS fixed_point
  FROM (SELECT ('sku in (' || string_agg(format('''SKU-%s''', lpad((i % 3000)::text, 5, '0')), ', ') || ')')::loyalty.condition AS c
          FROM generate_series(1, 4000) i) t;

-- a long and-chain and or-chain (3,000 operands each) parse without recursion
SELECT loyalty.matches(('a' || string_agg(format(' = 1 and b%s is null and a', i), '') || ' = 1')::loyalty.condition,
                       '{"a": 1}') AS long_and
  FROM generate_series(1, 1500) i;
SELECT loyalty.matches(string_agg(format('b%s = %s', i, i), ' or ')::loyalty.condition, '{"b2999": 2999}') AS long_or
  FROM generate_series(1, 3000) i;
SELECT array_length(loyalty.condition_attributes(string_agg(format('b%s = %s', i, i), ' or ')::loyalty.condition), 1) AS attributes
  FROM generate_series(1, 3000) i;

DROP EXTENSION loyalty;
