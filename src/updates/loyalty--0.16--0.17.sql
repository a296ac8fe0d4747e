-- loyalty 0.16 -> 0.17: the compiled catalogue keeps the programme's tiers
-- and accrual delay, so that a commit decides its tier lift without reading
-- the tiers again; a change of the tiers bumps the catalogue generation.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.17'" to load this file. \quit

CREATE TRIGGER tier_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.tier
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();

COMMENT ON COLUMN @extschema@.catalog_generation.generation IS '1 when the extension is created; then the next value of the sequence loyalty.catalog_generation_seq for every statement that changed promotion, program, currency or tier';
