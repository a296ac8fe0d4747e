-- loyalty 0.12 -> 0.13: commit is written in C (src/commit.c) and writes
-- the calculation's typed plan; the tier lift of a commit and the tier
-- qualification are in C (src/tiers.c); the customer index of the receipt
-- partitions covers what the tier window's purchases read; calculate's
-- default answer is compact ("explain": true for the whole one).
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.13'" to load this file. \quit

-- calculate answers in the compact form unless the receipt asks "explain":
-- a new entry point (the old one, which answers in the whole form, stays in
-- the library for a schema not yet updated)
CREATE OR REPLACE FUNCTION @extschema@.calculate(receipt jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_calculate_compact'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION public.loyalty_calculate(receipt jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_calculate_compact'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION @extschema@.commit(receipt jsonb, expected jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_commit'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- the parts of two answers that differ, as commit compares them (one definition)
CREATE OR REPLACE FUNCTION @extschema@.answer_changes(seen jsonb, now_answer jsonb)
RETURNS text[]
AS 'MODULE_PATHNAME', 'loyalty_answer_changes'
LANGUAGE C IMMUTABLE;

CREATE OR REPLACE FUNCTION @extschema@.qualified_tier(pid bigint, spend bigint, receipts integer)
RETURNS @extschema@.tier
AS 'MODULE_PATHNAME', 'loyalty_qualified_tier'
LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.qualified_tier(bigint, bigint, integer) IS
'the highest tier of the programme that this spend (minor units) and receipt count qualify for';

CREATE OR REPLACE FUNCTION @extschema@.lift_tier(pid bigint, cid bigint, rid text)
RETURNS void
AS 'MODULE_PATHNAME', 'loyalty_lift_tier'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.lift_tier(bigint, bigint, text) IS
'move a customer up to the best tier they now qualify for (called by commit for its receipt)';

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

-- The partitions made before get the covering index (rebuilt: the upgrade
-- takes a lock on each partition while it builds).
DO $$
DECLARE
    part text;
BEGIN
    FOR part IN SELECT c.relname FROM pg_catalog.pg_inherits i
                  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                 WHERE i.inhparent OPERATOR(pg_catalog.=) '@extschema@.receipt'::pg_catalog.regclass
                 ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format('DROP INDEX @extschema@.%I', part OPERATOR(pg_catalog.||) '_customer_idx');
        EXECUTE pg_catalog.format('CREATE INDEX %I ON @extschema@.%I (customer_id, committed_at) INCLUDE (program_id, status, to_pay, receipt_id)',
                                  part OPERATOR(pg_catalog.||) '_customer_idx', part);
    END LOOP;
END
$$;
