
-- src/partitions.sql — the indexes of the receipt tables belong to each
-- partition, not to the partitioned tables.  pg_dump cannot restore a
-- partition of an extension's partitioned table whose index is a partition
-- of the parent's index: it attaches the partition (which builds the index
-- from the parent's) and later adds the partition's own primary key again,
-- and the restore fails.  So every partition (the default ones here, the
-- monthly ones in create_partitions) gets its own primary key and index,
-- and the parents have none; a query by key still reaches one partition's
-- index (the key holds committed_at, the partition key).

CREATE FUNCTION @extschema@.partition_indexes(parent text, part text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF parent OPERATOR(pg_catalog.=) 'receipt' THEN
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ADD CONSTRAINT %I PRIMARY KEY (program_id, receipt_id, committed_at)',
                                  part, part OPERATOR(pg_catalog.||) '_pkey');
        EXECUTE pg_catalog.format('CREATE INDEX %I ON @extschema@.%I (customer_id, committed_at)',
                                  part OPERATOR(pg_catalog.||) '_customer_idx', part);
    ELSIF parent OPERATOR(pg_catalog.=) 'receipt_line' THEN
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ADD CONSTRAINT %I PRIMARY KEY (program_id, receipt_id, committed_at, line)',
                                  part, part OPERATOR(pg_catalog.||) '_pkey');
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
'give a partition of loyalty.receipt (primary key, customer index) or loyalty.receipt_line (primary key) its own indexes, and both a BRIN index on committed_at (internal: create_partitions)';
REVOKE ALL ON FUNCTION @extschema@.partition_indexes(text, text) FROM PUBLIC;

ALTER TABLE @extschema@.receipt DROP CONSTRAINT receipt_pkey;
DROP INDEX @extschema@.receipt_customer_idx;
ALTER TABLE @extschema@.receipt_line DROP CONSTRAINT receipt_line_pkey;
DO $$
DECLARE
    x record;
BEGIN
    FOR x IN SELECT p.relname AS parent, c.relname AS part
               FROM pg_catalog.pg_inherits i
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
               JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) i.inhparent
              WHERE i.inhparent OPERATOR(pg_catalog.=) ANY (ARRAY['@extschema@.receipt'::regclass,
                                                                 '@extschema@.receipt_line'::regclass])
              ORDER BY 1, 2
    LOOP
        PERFORM @extschema@.partition_indexes(x.parent, x.part);
    END LOOP;
END
$$;
