-- Randomised tests of loyalty.condition: random conditions and random lines,
-- checked against a plain SQL re-implementation of the same expression over
-- the jsonb, against match_all, against the canonical form and against
-- condition_explain.  The seed is printed; LOYALTY_TEST_SEED repeats a run.
BEGIN;
SELECT plan(6);

\ir seed.psql

-- The reference semantics, in SQL.  An attribute is the document's key, else
-- its "attributes" object's key; JSON null reads as missing.
CREATE FUNCTION pg_temp.v(doc jsonb, k text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(x) = 'null' THEN NULL ELSE x END
      FROM (SELECT CASE WHEN jsonb_typeof(doc) <> 'object' THEN NULL
                        WHEN doc ? k THEN doc -> k
                        WHEN jsonb_typeof(doc -> 'attributes') = 'object' THEN doc -> 'attributes' -> k
                   END AS x) s
$$;
-- its text, as ->> gives it, for scalars only
CREATE FUNCTION pg_temp.t(x jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(x) IN ('string', 'number', 'boolean') THEN x #>> '{}' END
$$;
-- its number: a JSON number, or a string written as a plain decimal
CREATE FUNCTION pg_temp.n(x jsonb) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(x) = 'number' THEN x::numeric
                WHEN jsonb_typeof(x) = 'string' AND x #>> '{}' ~ '^-?[0-9]+(\.[0-9]+)?$'
                THEN (x #>> '{}')::numeric END
$$;

-- A random literal of the domains the lines use
CREATE FUNCTION pg_temp.lit(numeric_lit boolean) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN numeric_lit
                THEN (ARRAY['-1', '0', '0.5', '1', '2', '10', '10.0', '100'])[1 + floor(random() * 8)::int]
                ELSE quote_literal((ARRAY['x', 'y', 'Ё', 'x/y', 'x/y/z', '10', '2', 'true', 'x y'])[1 + floor(random() * 9)::int])
           END
$$;

-- A random predicate as (condition text, SQL over the line l and the receipt rc)
CREATE FUNCTION pg_temp.leaf(OUT c text, OUT s text) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    scoped boolean := random() < 0.15;
    name text := CASE WHEN scoped THEN 'r' ELSE (ARRAY['a', 'b', 'cat', 'tags', 'm'])[1 + floor(random() * 5)::int] END;
    attr text := CASE WHEN scoped THEN 'receipt.r' ELSE name END;
    val text := format('pg_temp.v(%s, %L)', CASE WHEN scoped THEN 'rc' ELSE 'l.doc' END, name);
    num boolean := random() < 0.5;
    kind int := floor(random() * 9)::int;
    op text := (ARRAY['=', '<>', '<', '<=', '>', '>='])[1 + floor(random() * 6)::int];
    x text := pg_temp.lit(num);
    y text := pg_temp.lit(num);
    items text[];
    nums text[];
    strs text[];
    p text := (ARRAY['x', 'x/y', 'Ё', '1'])[1 + floor(random() * 4)::int];
    lhs text := CASE WHEN num THEN format('pg_temp.n(%s)', val) ELSE format('pg_temp.t(%s) COLLATE "C"', val) END;
BEGIN
    IF kind = 0 THEN
        c := format('%s %s %s', attr, op, x);
        s := format('coalesce(%s %s %s, false)', lhs, op, x);
    ELSIF kind = 1 THEN
        IF (SELECT CASE WHEN num THEN x::numeric > y::numeric ELSE btrim(x, '''') COLLATE "C" > btrim(y, '''') COLLATE "C" END) THEN
            SELECT y, x INTO x, y;
        END IF;
        c := format('%s between %s and %s', attr, x, y);
        s := format('coalesce(%s >= %s and %s <= %s, false)', lhs, x, lhs, y);
    ELSIF kind = 2 THEN
        items := ARRAY(SELECT pg_temp.lit(random() < 0.5) FROM generate_series(0, floor(random() * 4)::int));
        nums := ARRAY(SELECT i FROM unnest(items) i WHERE i NOT LIKE '''%');
        strs := ARRAY(SELECT i FROM unnest(items) i WHERE i LIKE '''%');
        c := format('%s %sin (%s)', attr, CASE WHEN random() < 0.3 THEN 'not ' ELSE '' END, array_to_string(items, ', '));
        s := format('(coalesce(pg_temp.n(%s) = any(ARRAY[%s]::numeric[]), false) or coalesce(pg_temp.t(%s) = any(ARRAY[%s]::text[]), false))',
                    val, coalesce(array_to_string(nums, ','), ''), val, coalesce(array_to_string(strs, ','), ''));
        IF c LIKE '% not in (%' THEN
            -- not in: false unless the value compares with a literal of the list
            s := format('((%s or %s) and not %s)',
                        CASE WHEN cardinality(strs) > 0 THEN format('pg_temp.t(%s) is not null', val) ELSE 'false' END,
                        CASE WHEN cardinality(nums) > 0 THEN format('pg_temp.n(%s) is not null', val) ELSE 'false' END,
                        s);
        END IF;
    ELSIF kind = 3 THEN
        c := format('%s <@ %L', attr, p);
        s := format('coalesce(pg_temp.t(%s) = %L or starts_with(pg_temp.t(%s), %L), false)', val, p, val, p || '/');
    ELSIF kind = 4 THEN
        c := format('%s ? %L', attr, p);
        s := format('coalesce(case jsonb_typeof(%s) when ''array'' then %s ? %L when ''string'' then %s #>> ''{}'' = %L else false end, false)',
                    val, val, p, val, p);
    ELSIF kind = 5 THEN
        IF random() < 0.5 THEN
            c := format('%s %slike %L', attr, CASE WHEN random() < 0.3 THEN 'not ' ELSE '' END, p || '%');
            s := format('coalesce(starts_with(pg_temp.t(%s), %L), false)', val, p);
        ELSE
            c := format('%s %slike %L', attr, CASE WHEN random() < 0.3 THEN 'not ' ELSE '' END, p);
            s := format('coalesce(pg_temp.t(%s) = %L, false)', val, p);
        END IF;
        IF c LIKE '% not like %' THEN
            s := format('(pg_temp.t(%s) is not null and not %s)', val, s);
        END IF;
    ELSIF kind = 6 THEN
        IF random() < 0.5 THEN
            c := format('%s is null', attr);
            s := format('(%s is null)', val);
        ELSE
            c := format('%s is not null', attr);
            s := format('(%s is not null)', val);
        END IF;
    ELSIF kind = 7 THEN
        c := 'true';
        s := 'true';
    ELSE
        c := format('%s = %s', attr, x);
        s := format('coalesce(%s = %s, false)', lhs, x);
    END IF;
END
$$;

-- A random condition of and/or/not over predicates, with its SQL twin
CREATE FUNCTION pg_temp.gen(depth int, OUT c text, OUT s text) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k int;
    parts_c text[] := '{}';
    parts_s text[] := '{}';
    sub record;
    op text;
BEGIN
    IF depth >= 4 OR random() < 0.35 THEN
        SELECT * INTO c, s FROM pg_temp.leaf();
        RETURN;
    END IF;
    IF random() < 0.2 THEN
        SELECT * INTO sub FROM pg_temp.gen(depth + 1);
        c := format('not (%s)', sub.c);
        s := format('(not %s)', sub.s);
        RETURN;
    END IF;
    op := CASE WHEN random() < 0.5 THEN 'and' ELSE 'or' END;
    FOR k IN 1 .. 2 + floor(random() * 2)::int LOOP
        SELECT * INTO sub FROM pg_temp.gen(depth + 1);
        parts_c := parts_c || format('(%s)', sub.c);
        parts_s := parts_s || sub.s;
    END LOOP;
    c := array_to_string(parts_c, ' ' || op || ' ');
    s := '(' || array_to_string(parts_s, ' ' || op || ' ') || ')';
END
$$;

-- (0 * n: a lateral call that names n runs once per row, not once)
CREATE TEMP TABLE conds AS SELECT n, g.c, g.s FROM generate_series(1, 400) n, LATERAL pg_temp.gen(0 * n) g;

-- Random lines: each attribute missing, null, a number, a string, an array or
-- an object, at the top or under "attributes"
CREATE FUNCTION pg_temp.value() RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    SELECT (ARRAY['null', '-1', '0', '0.50', '1', '2.0', '10', '100', '"x"', '"y"', '"Ё"', '"x/y"', '"x/y/z"',
                  '"x/yz"', '"10"', '"2"', '"10.0"', '"1e1"', 'true', '["x", "y"]', '["x/y", 1]', '[]',
                  '{"x": 1}', '"x y"', '"1"', '[["x"], "y"]'])[1 + floor(random() * 26)::int]::jsonb
$$;
CREATE TEMP TABLE lines AS
SELECT n, jsonb_object_agg(CASE WHEN nested THEN '_' ELSE k END, pg_temp.value())
          || jsonb_build_object('attributes', jsonb_object_agg(k, pg_temp.value()) FILTER (WHERE nested)) AS doc
  FROM generate_series(1, 120) n, unnest(ARRAY['a', 'b', 'cat', 'tags', 'm']) k,
       LATERAL (SELECT random() < 0.25 AS nested, random() < 0.8 AS present WHERE n > 0 AND k <> '') r
 WHERE present
 GROUP BY n;
INSERT INTO lines SELECT 1000, '{}';
SELECT jsonb_build_object('r', pg_temp.value()) AS receipt \gset

-- 1. every random condition reads, and its canonical text is a fixed point
SELECT is_empty($$
    SELECT c FROM conds
     WHERE c::loyalty.condition::text::loyalty.condition::text <> c::loyalty.condition::text
        OR NOT (c::loyalty.condition::text::loyalty.condition OPERATOR(loyalty.=) c::loyalty.condition)$$,
    'the canonical form of 400 random conditions reads back to itself');

-- 2. matches() equals the SQL re-implementation on every (condition, line)
CREATE FUNCTION pg_temp.disagreements(receipt jsonb) RETURNS TABLE (n int, c text, line int, doc jsonb, by_c boolean)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM conds ORDER BY conds.n LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %s, %L, l.n, l.doc, loyalty.matches(%L::loyalty.condition, l.doc, $1, ''{}'')
               FROM lines l, (SELECT $1 AS rc) x
              WHERE loyalty.matches(%L::loyalty.condition, l.doc, $1, ''{}'') IS DISTINCT FROM (%s)',
            r.n, r.c, r.c, r.c, r.s) USING receipt;
    END LOOP;
END
$$;
SELECT is_empty(format('SELECT * FROM pg_temp.disagreements(%L) LIMIT 5', :'receipt'),
                'matches() agrees with a plain SQL evaluation of 400 random conditions on 121 random lines');
SELECT ok(matched BETWEEN 0.05 * total AND 0.95 * total AND distinct_conditions > 300,
          format('the 400 conditions (%s distinct) hold on %s of %s pairs: enough of both to mean something',
                 distinct_conditions, matched, total))
  FROM (SELECT count(*) FILTER (WHERE loyalty.matches(c.c::loyalty.condition, l.doc, :'receipt', '{}')) AS matched,
               count(*) AS total, (SELECT count(DISTINCT c) FROM conds) AS distinct_conditions
          FROM conds c, lines l) x;

-- 3. match_all equals evaluating each condition on each line
SELECT is_empty(format($$
    (SELECT m.line, m.condition
       FROM loyalty.match_all((SELECT array_agg(c::loyalty.condition ORDER BY n) FROM conds),
                              (SELECT jsonb_agg(doc ORDER BY n) FROM lines), %1$L) m
     EXCEPT
     SELECT l.ord::int, c.n FROM conds c,
            (SELECT doc, row_number() OVER (ORDER BY n) AS ord FROM lines) l
      WHERE loyalty.matches(c.c::loyalty.condition, l.doc, %1$L, '{}'))
    UNION ALL
    (SELECT l.ord::int, c.n FROM conds c,
            (SELECT doc, row_number() OVER (ORDER BY n) AS ord FROM lines) l
      WHERE loyalty.matches(c.c::loyalty.condition, l.doc, %1$L, '{}')
     EXCEPT
     SELECT m.line, m.condition
       FROM loyalty.match_all((SELECT array_agg(c::loyalty.condition ORDER BY n) FROM conds),
                              (SELECT jsonb_agg(doc ORDER BY n) FROM lines), %1$L) m)$$, :'receipt'),
    'match_all gives exactly the pairs that matches() gives, one by one');

-- 4. explain's outermost result is the condition's result, for a sample
SELECT is_empty(format($$
    SELECT c.n, l.n FROM conds c, lines l
     WHERE c.n %% 10 = 0
       AND (SELECT e.result FROM loyalty.condition_explain(c.c::loyalty.condition, l.doc, %1$L) e LIMIT 1)
           IS DISTINCT FROM loyalty.matches(c.c::loyalty.condition, l.doc, %1$L, '{}')$$, :'receipt'),
    'condition_explain agrees with matches() on its outermost clause');

-- 5. attributes: every name a random condition reads is listed
SELECT is_empty($$
    SELECT n FROM conds
     WHERE NOT (loyalty.condition_attributes(c::loyalty.condition) <@ ARRAY['a', 'b', 'cat', 'tags', 'm', 'receipt.r'])$$,
    'condition_attributes lists only names the conditions use');

SELECT * FROM finish();
ROLLBACK;
