-- test/docs/tables.sql — the reference part of docs/tables.md, rendered from
-- the catalogue of a fresh database with the extension (test/docs/tables.sh
-- runs it).  psql variable :file names the document; the script prints the
-- document with every generated block replaced:
--
--   <!-- BEGIN index ... -->            the list of tables: each table's
--   <!-- END index -->                  COMMENT and what pg_dump saves of it
--   <!-- BEGIN loyalty.NAME ... -->     the section of table loyalty.NAME:
--   <!-- END loyalty.NAME -->           its heading, its COMMENT as the first
--                                       paragraph, its columns (type, default,
--                                       constraints, COMMENT) and the
--                                       constraints over several columns
--
-- Everything outside the blocks is kept as written.  A table of the
-- extension (partitions left out: their parent stands for them) without a
-- block gets one at the end of the document; a block of a table that no
-- longer exists is dropped.  Either is reported as a NOTICE.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on
\pset pager off
\set doc `cat :'file'`
SET client_min_messages = notice;

-- A cell of a Markdown table: one line, | escaped.
CREATE FUNCTION pg_temp.cell(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(regexp_replace(btrim(coalesce(t, '')), '\s+', ' ', 'g'), '|', '\|')
$$;

-- Code in a cell: `t`, | escaped; NULL stays NULL.
CREATE FUNCTION pg_temp.code(t text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT '`' || pg_temp.cell(t) || '`'
$$;

-- A COMMENT as a paragraph: capital first letter, a full stop at the end.
CREATE FUNCTION pg_temp.sentence(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN t IS NULL OR btrim(t) = '' THEN NULL
                ELSE upper(left(s, 1)) || substr(s, 2) || CASE WHEN s ~ '[.!?]$' THEN '' ELSE '.' END END
      FROM (SELECT regexp_replace(btrim(t), '\s+', ' ', 'g') AS s) x
$$;

-- The anchor GitHub gives a heading "## loyalty.name".
CREATE FUNCTION pg_temp.anchor(rel regclass) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '#' || regexp_replace(lower(rel::text), '[^a-z0-9_ -]', '', 'g')
$$;

-- Whether t is wrapped whole in one pair of parentheses (quotes skipped).
CREATE FUNCTION pg_temp.wrapped(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    depth int := 0;
    quoted boolean := false;
    c text;
BEGIN
    IF left(t, 1) <> '(' OR right(t, 1) <> ')' THEN
        RETURN false;
    END IF;
    FOR i IN 1 .. length(t) LOOP
        c := substr(t, i, 1);
        IF c = '''' THEN
            quoted := NOT quoted;
        ELSIF NOT quoted AND c = '(' THEN
            depth := depth + 1;
        ELSIF NOT quoted AND c = ')' THEN
            depth := depth - 1;
            IF depth = 0 AND i < length(t) THEN
                RETURN false;   -- "(a) AND (b)"
            END IF;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

-- An expression as pg_get_expr or pg_get_constraintdef gives it, made
-- shorter without changing its meaning: "x = ANY ('{a,b}'::text[])" becomes
-- "x IN ('a', 'b')", the casts of literals go ('RUB'::text, (0)::numeric),
-- and so do parentheses around the whole.
CREATE FUNCTION pg_temp.short(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[];
    cast_re constant text := '::(?:timestamp with time zone|timestamp without time zone|time with time zone'
                             '|character varying|double precision|[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)(?:\[\])?';
BEGIN
    LOOP
        m := regexp_match(t, ' = ANY \(''\{([A-Za-z0-9_]+(?:,[A-Za-z0-9_]+)*)\}''(?:' || cast_re || ')?\)');
        EXIT WHEN m IS NULL;
        t := regexp_replace(t, ' = ANY \(''\{' || m[1] || '\}''(?:' || cast_re || ')?\)',
                            ' IN (''' || replace(m[1], ',', ''', ''') || ''')');
    END LOOP;
    t := regexp_replace(t, '(''(?:[^'']|'''')*'')' || cast_re, '\1', 'g');
    t := regexp_replace(t, '\((-?[0-9]+(?:\.[0-9]+)?)\)' || cast_re, '\1', 'g');
    WHILE pg_temp.wrapped(t) LOOP
        t := substr(t, 2, length(t) - 2);
    END LOOP;
    RETURN t;
END
$$;

-- A type as the docs write it.
CREATE FUNCTION pg_temp.type(typ oid, typmod int) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT replace(format_type(typ, typmod), 'timestamp with time zone', 'timestamptz')
$$;

-- The referential actions and deferral of a foreign key, in words.
CREATE FUNCTION pg_temp.fk_rest(con pg_constraint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE con.confdeltype WHEN 'c' THEN ' on delete cascade' WHEN 'n' THEN ' on delete set null'
                                WHEN 'd' THEN ' on delete set default' WHEN 'r' THEN ' on delete restrict' ELSE '' END
        || CASE con.confupdtype WHEN 'c' THEN ' on update cascade' WHEN 'n' THEN ' on update set null'
                                WHEN 'd' THEN ' on update set default' WHEN 'r' THEN ' on update restrict' ELSE '' END
        || CASE WHEN con.condeferred THEN ', deferrable, initially deferred'
                WHEN con.condeferrable THEN ', deferrable' ELSE '' END
$$;

-- The columns of a constraint's key, "(a, b)".
CREATE FUNCTION pg_temp.cols(rel oid, keys int2[]) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '(' || string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) || ')'
      FROM unnest(keys) WITH ORDINALITY AS k (attnum, n)
      JOIN pg_attribute a ON a.attrelid = rel AND a.attnum = k.attnum
$$;

-- One constraint in words: "primary key", "unique", "references
-- `t (c)` on delete cascade", "check `expr`"; those over several columns
-- name their columns ("primary key `(a, b)`").
CREATE FUNCTION pg_temp.constraint_text(c pg_constraint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE c.contype
                WHEN 'p' THEN 'primary key' || keys
                WHEN 'u' THEN 'unique' || CASE WHEN pg_get_constraintdef(c.oid) LIKE 'UNIQUE NULLS NOT DISTINCT%'
                                              THEN ' nulls not distinct' ELSE '' END || keys
                WHEN 'f' THEN ltrim(keys || ' ') || 'references '
                              || pg_temp.code(c.confrelid::regclass::text || ' ' || pg_temp.cols(c.confrelid, c.confkey))
                              || pg_temp.fk_rest(c)
                WHEN 'c' THEN 'check ' || pg_temp.code(pg_temp.short(regexp_replace(pg_get_constraintdef(c.oid), '^CHECK ', '')))
                ELSE lower(pg_get_constraintdef(c.oid)) END
      FROM (SELECT CASE WHEN cardinality(c.conkey) > 1 THEN ' ' || pg_temp.code(pg_temp.cols(c.conrelid, c.conkey))
                        ELSE '' END AS keys) k
$$;

-- What the constraint cell of one column says: not null (unless it is the
-- primary key), then the constraints on that column alone, then the names
-- of those over several columns that include it (listed under the table).
CREATE FUNCTION pg_temp.column_constraints(rel oid, att pg_attribute) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT string_agg(what, '; ' ORDER BY ord, name)
      FROM (SELECT 0 AS ord, '' AS name, 'not null' AS what
             WHERE att.attnotnull
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                WHERE c.conrelid = rel AND c.contype = 'p' AND c.conkey = ARRAY[att.attnum])
            UNION ALL
            SELECT CASE c.contype WHEN 'p' THEN 1 WHEN 'u' THEN 2 WHEN 'f' THEN 3 ELSE 4 END, c.conname,
                   pg_temp.constraint_text(c)
              FROM pg_constraint c
             WHERE c.conrelid = rel AND c.conkey = ARRAY[att.attnum]
            UNION ALL
            SELECT 5, c.conname, pg_temp.code(c.conname)
              FROM pg_constraint c
             WHERE c.conrelid = rel AND att.attnum = ANY (c.conkey) AND cardinality(c.conkey) > 1) x
$$;

-- The default cell of one column.
CREATE FUNCTION pg_temp.column_default(rel oid, att pg_attribute) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN att.attidentity = 'a' THEN 'generated always as identity'
                WHEN att.attidentity = 'd' THEN 'generated by default as identity'
                WHEN att.attgenerated = 's' THEN 'generated always as ' || pg_temp.code(pg_temp.short(pg_get_expr(d.adbin, d.adrelid))) || ' stored'
                WHEN d.adbin IS NOT NULL THEN pg_temp.code(pg_temp.short(pg_get_expr(d.adbin, d.adrelid)))
                WHEN NOT att.attnotnull THEN 'NULL'
                ELSE '' END
      FROM (SELECT 1) one
      LEFT JOIN pg_attrdef d ON d.adrelid = rel AND d.adnum = att.attnum
$$;

-- The tables of the extension, partitions left out, in the order created.
CREATE FUNCTION pg_temp.tables() RETURNS SETOF regclass LANGUAGE sql STABLE AS $$
    SELECT c.oid::regclass
      FROM pg_extension e
      JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
                      AND d.classid = 'pg_class'::regclass
      JOIN pg_class c ON c.oid = d.objid
     WHERE e.extname = 'loyalty' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
     ORDER BY c.oid
$$;

-- What pg_dump saves of a table: its rows when the extension marked it (or
-- its partitions), with the sequences of its columns that are marked too.
CREATE FUNCTION pg_temp.dumped(rel regclass) RETURNS text LANGUAGE sql STABLE AS $$
    WITH marked AS (
        SELECT x AS oid, nullif(w, '') AS cond
          FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u (x, w)
         WHERE e.extname = 'loyalty'
    ), seqs AS (
        SELECT string_agg(pg_temp.code(s.objid::regclass::text), ', ' ORDER BY s.objid) AS list
          FROM pg_depend s JOIN marked m ON m.oid = s.objid
         WHERE s.classid = 'pg_class'::regclass AND s.refclassid = 'pg_class'::regclass
           AND s.refobjid = rel AND s.deptype IN ('a', 'i')
           AND (SELECT relkind FROM pg_class WHERE oid = s.objid) = 'S'
    ), parts AS (
        SELECT string_agg(pg_temp.code(i.inhrelid::regclass::text), ', ' ORDER BY i.inhrelid) AS list
          FROM pg_inherits i JOIN marked m ON m.oid = i.inhrelid
         WHERE i.inhparent = rel
    )
    SELECT CASE WHEN m.oid IS NOT NULL
                THEN 'yes' || coalesce(', rows where ' || pg_temp.code(m.cond), '')
                     || coalesce(', with ' || seqs.list, '')
                WHEN parts.list IS NOT NULL
                THEN 'the partition' || CASE WHEN parts.list LIKE '%,%' THEN 's ' ELSE ' ' END || parts.list
                ELSE 'no' END
      FROM seqs, parts LEFT JOIN marked m ON m.oid = rel
$$;

-- The block of the list of tables.
CREATE FUNCTION pg_temp.index_block() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '| table | what it holds | saved by `pg_dump` |' || E'\n'
        || '| --- | --- | --- |' || E'\n'
        || string_agg(format('| [%s](%s) | %s | %s |', pg_temp.code(t::text), pg_temp.anchor(t),
                             pg_temp.cell(obj_description(t, 'pg_class')), pg_temp.dumped(t)),
                      E'\n' ORDER BY t::oid)
      FROM pg_temp.tables() t
$$;

-- The block of one table.
CREATE FUNCTION pg_temp.table_block(rel regclass) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '## ' || rel::text || E'\n\n'
        || coalesce(pg_temp.sentence(obj_description(rel, 'pg_class')) || E'\n\n', '')
        || coalesce((SELECT 'Partitioned: ' || pg_temp.code(pg_get_partkeydef(rel)) || E'.\n\n'
                      WHERE (SELECT relkind FROM pg_class WHERE oid = rel) = 'p'), '')
        || '| column | type | default | constraint | meaning |' || E'\n'
        || '| --- | --- | --- | --- | --- |' || E'\n'
        || (SELECT string_agg(replace(replace(format('| %s | %s | %s | %s | %s |', pg_temp.code(a.attname),
                                     pg_temp.code(pg_temp.type(a.atttypid, a.atttypmod)),
                                     pg_temp.column_default(rel, a), coalesce(pg_temp.column_constraints(rel, a), ''),
                                     pg_temp.cell(col_description(rel, a.attnum))), '|  |', '| |'), '|  |', '| |'),
                              E'\n' ORDER BY a.attnum)
              FROM pg_attribute a
             WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped)
        || coalesce((SELECT E'\n\nConstraints over several columns:\n\n'
                            || string_agg(format('- %s: %s', pg_temp.code(c.conname), pg_temp.constraint_text(c)),
                                          E'\n' ORDER BY CASE c.contype WHEN 'p' THEN 1 WHEN 'u' THEN 2 WHEN 'f' THEN 3 ELSE 4 END,
                                                         c.conname)
                       FROM pg_constraint c
                      WHERE c.conrelid = rel AND cardinality(c.conkey) > 1), '')
$$;

CREATE FUNCTION pg_temp.begin_marker(name text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '<!-- BEGIN ' || name || ': generated from the catalogue by make docs (test/docs/tables.sql);'
        || ' change the COMMENTs in src/*.sql, not this block -->'
$$;

CREATE FUNCTION pg_temp.end_marker(name text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '<!-- END ' || name || ' -->'
$$;

-- The document with its blocks rendered again.
CREATE FUNCTION pg_temp.render(doc text) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    lines text[] := string_to_array(doc, E'\n');
    out text[] := '{}';
    done text[] := '{}';
    i int := 1;
    j int;
    name text;
    rel regclass;
BEGIN
    WHILE i <= cardinality(lines) LOOP
        name := (regexp_match(lines[i], '^<!-- BEGIN ([a-z0-9_.]+)[: ]'))[1];
        IF name IS NULL THEN
            out := out || lines[i];
            i := i + 1;
            CONTINUE;
        END IF;
        j := i + 1;
        WHILE j <= cardinality(lines) AND lines[j] <> pg_temp.end_marker(name) LOOP
            j := j + 1;
        END LOOP;
        IF j > cardinality(lines) THEN
            RAISE EXCEPTION 'line %: block % has no end marker "%"', i, name, pg_temp.end_marker(name);
        END IF;
        IF name = ANY (done) THEN
            RAISE EXCEPTION 'line %: a second block %', i, name;
        END IF;
        done := done || name;
        IF name = 'index' THEN
            out := out || pg_temp.begin_marker(name) || pg_temp.index_block() || ''::text || pg_temp.end_marker(name);
        ELSE
            rel := to_regclass(name);
            IF rel IS NULL OR rel NOT IN (SELECT pg_temp.tables()) THEN
                RAISE NOTICE 'block % dropped: % is not a table of the extension', name, name;
            ELSE
                out := out || pg_temp.begin_marker(name) || pg_temp.table_block(rel) || ''::text || pg_temp.end_marker(name);
            END IF;
        END IF;
        i := j + 1;
    END LOOP;
    FOR rel IN SELECT pg_temp.tables() LOOP
        IF NOT rel::text = ANY (done) THEN
            RAISE NOTICE 'block % added at the end: move it where it belongs', rel;
            out := out || ''::text || pg_temp.begin_marker(rel::text) || pg_temp.table_block(rel) || ''::text
                       || pg_temp.end_marker(rel::text);
        END IF;
    END LOOP;
    RETURN array_to_string(out, E'\n');
END
$$;

SELECT pg_temp.render(:'doc');
