
-- src/product.sql — the product catalogue: what a receipt line's sku stands
-- for, and so what conditions read of a line (its category, brand and
-- attributes) when the till sends only a sku.

CREATE TABLE @extschema@.product (
    program_id bigint NOT NULL REFERENCES @extschema@.program (id),
    sku        text NOT NULL
               CHECK (sku OPERATOR(pg_catalog.<>) '' AND pg_catalog.length(sku) OPERATOR(pg_catalog.<=) 128),
    name       text NOT NULL DEFAULT '',
    category   text CHECK (category OPERATOR(pg_catalog.~) '^[^/]+(/[^/]+)*$'),
    brand      text CHECK (brand OPERATOR(pg_catalog.<>) ''),
    attributes jsonb NOT NULL DEFAULT '{}'
               CHECK (pg_catalog.jsonb_typeof(attributes) OPERATOR(pg_catalog.=) 'object'),
    PRIMARY KEY (program_id, sku)
);
COMMENT ON TABLE @extschema@.product IS 'the product catalogue of a programme: what conditions read of a receipt line that names a sku';
COMMENT ON COLUMN @extschema@.product.program_id IS 'the programme whose catalogue this is';
COMMENT ON COLUMN @extschema@.product.sku IS 'the article code the tills send, 1 to 128 characters';
COMMENT ON COLUMN @extschema@.product.name IS 'the name shown on receipts and in reports';
COMMENT ON COLUMN @extschema@.product.category IS 'category path, names separated by "/" (ski/alpine/men): what category <@ ''ski'' tests';
COMMENT ON COLUMN @extschema@.product.brand IS 'brand, as conditions compare it (brand = ''Atomic'')';
COMMENT ON COLUMN @extschema@.product.attributes IS 'any other attributes conditions read (size, colour, sport, tags...): a JSON object';
ALTER TABLE @extschema@.product ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.product USING (@extschema@.program_open(program_id));
SELECT pg_catalog.pg_extension_config_dump('@extschema@.product', '');

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
