-- loyalty 0.11 -> 0.12: the install script is organised by object (each
-- table declared once, whole, in the part of its concept); the schema it
-- makes is 0.11's but for what follows.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.12'" to load this file. \quit

-- The monthly partitions of the receipt tables keep the parent's lz4
-- compression of the answer and the document: create_partitions copied the
-- columns without it, so every receipt's answer and document were written
-- with pglz.
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
        FOREACH parent IN ARRAY '{receipt,receipt_line}'::text[] LOOP
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


-- The partitions made so far (the default ones, whose document missed it,
-- and the monthly ones): compression applies to what is written from now on;
-- rows already written keep theirs until they are next written.
DO $$
DECLARE
    x record;
BEGIN
    FOR x IN SELECT c.oid::regclass AS part, a.attname AS col
               FROM pg_catalog.pg_inherits i
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
              WHERE i.inhparent OPERATOR(pg_catalog.=) '@extschema@.receipt'::regclass
                AND a.attname OPERATOR(pg_catalog.=) ANY ('{answer,document}'::name[])
                AND a.attcompression OPERATOR(pg_catalog.<>) 'l'
              ORDER BY 1, 2
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET COMPRESSION lz4', x.part, x.col);
    END LOOP;
END
$$;
