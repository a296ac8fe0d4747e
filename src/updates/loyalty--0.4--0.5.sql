-- loyalty 0.4 -> 0.5: the per-backend cache of products that calculate
-- reads, and the statement trigger that empties it (src/product.sql).
-- Frozen once released: a later change of these parts ships in a script of
-- its own, and make test checks that an upgraded schema equals a fresh one.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.5'" to load this file. \quit

-- Each backend keeps the products it read for calculate (src/product.c): a
-- statement that changes them empties every backend's cache once it commits.
CREATE FUNCTION @extschema@.product_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'loyalty_product_changed'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.product_changed() IS
'statement trigger: every backend''s cache of products is emptied once the change commits';
CREATE TRIGGER product_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.product
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.product_changed();
