-- loyalty 0.2 -> 0.3: the loyalty.condition type (src/condition.sql) and the
-- product catalogue (src/product.sql).
-- Frozen once released: a later change of these parts ships in a script of
-- its own, and make test checks that an upgraded schema equals a fresh one.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.3'" to load this file. \quit

-- src/condition.sql — the loyalty.condition type: a boolean rule over line,
-- receipt and customer attributes, compiled to bytecode and matched in C.

CREATE TYPE @extschema@.condition;

CREATE FUNCTION @extschema@.condition_in(cstring)
RETURNS @extschema@.condition
AS 'MODULE_PATHNAME', 'loyalty_condition_in'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.condition_out(@extschema@.condition)
RETURNS cstring
AS 'MODULE_PATHNAME', 'loyalty_condition_out'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.condition_recv(internal)
RETURNS @extschema@.condition
AS 'MODULE_PATHNAME', 'loyalty_condition_recv'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.condition_send(@extschema@.condition)
RETURNS bytea
AS 'MODULE_PATHNAME', 'loyalty_condition_send'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.condition (
    INPUT = @extschema@.condition_in,
    OUTPUT = @extschema@.condition_out,
    RECEIVE = @extschema@.condition_recv,
    SEND = @extschema@.condition_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = extended
);
COMMENT ON TYPE @extschema@.condition IS
'a boolean rule over line, receipt and customer attributes, such as category <@ ''ski'' and price >= 1000; stored compiled, printed in canonical form';

-- Equality is equality of the canonical forms (compiled to the same bytes);
-- the order is that of the bytes, arbitrary but total, so that conditions can
-- be grouped, sorted, deduplicated and joined.
CREATE FUNCTION @extschema@.condition_cmp(@extschema@.condition, @extschema@.condition)
RETURNS integer
AS 'MODULE_PATHNAME', 'loyalty_condition_cmp'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION @extschema@.condition_cmp(@extschema@.condition, @extschema@.condition) IS
'-1, 0 or 1: 0 when the canonical forms are equal; otherwise an arbitrary but stable order';

CREATE FUNCTION @extschema@.condition_eq(@extschema@.condition, @extschema@.condition)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_condition_eq'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION @extschema@.condition_ne(@extschema@.condition, @extschema@.condition)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_condition_ne'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION @extschema@.condition_lt(@extschema@.condition, @extschema@.condition)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_condition_lt'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION @extschema@.condition_le(@extschema@.condition, @extschema@.condition)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_condition_le'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION @extschema@.condition_gt(@extschema@.condition, @extschema@.condition)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_condition_gt'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION @extschema@.condition_ge(@extschema@.condition, @extschema@.condition)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_condition_ge'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION @extschema@.condition_hash(@extschema@.condition)
RETURNS integer
AS 'MODULE_PATHNAME', 'loyalty_condition_hash'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.condition_hash_extended(@extschema@.condition, bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'loyalty_condition_hash_extended'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.= (
    LEFTARG = @extschema@.condition, RIGHTARG = @extschema@.condition,
    FUNCTION = @extschema@.condition_eq,
    COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR @extschema@.<> (
    LEFTARG = @extschema@.condition, RIGHTARG = @extschema@.condition,
    FUNCTION = @extschema@.condition_ne,
    COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
    RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR @extschema@.< (
    LEFTARG = @extschema@.condition, RIGHTARG = @extschema@.condition,
    FUNCTION = @extschema@.condition_lt,
    COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR @extschema@.<= (
    LEFTARG = @extschema@.condition, RIGHTARG = @extschema@.condition,
    FUNCTION = @extschema@.condition_le,
    COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR @extschema@.> (
    LEFTARG = @extschema@.condition, RIGHTARG = @extschema@.condition,
    FUNCTION = @extschema@.condition_gt,
    COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR @extschema@.>= (
    LEFTARG = @extschema@.condition, RIGHTARG = @extschema@.condition,
    FUNCTION = @extschema@.condition_ge,
    COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel
);

CREATE OPERATOR CLASS @extschema@.condition_ops
DEFAULT FOR TYPE @extschema@.condition USING btree AS
    OPERATOR 1 @extschema@.< ,
    OPERATOR 2 @extschema@.<= ,
    OPERATOR 3 @extschema@.= ,
    OPERATOR 4 @extschema@.>= ,
    OPERATOR 5 @extschema@.> ,
    FUNCTION 1 @extschema@.condition_cmp(@extschema@.condition, @extschema@.condition);

CREATE OPERATOR CLASS @extschema@.condition_hash_ops
DEFAULT FOR TYPE @extschema@.condition USING hash AS
    OPERATOR 1 @extschema@.= ,
    FUNCTION 1 @extschema@.condition_hash(@extschema@.condition),
    FUNCTION 2 @extschema@.condition_hash_extended(@extschema@.condition, bigint);

CREATE FUNCTION @extschema@.matches(condition @extschema@.condition, line jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_matches'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.matches(@extschema@.condition, jsonb) IS
'does the condition hold for this line (receipt.* and customer.* read as missing)?';

CREATE FUNCTION @extschema@.matches(condition @extschema@.condition, line jsonb,
                                    receipt jsonb, customer jsonb DEFAULT '{}')
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_matches'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.matches(@extschema@.condition, jsonb, jsonb, jsonb) IS
'does the condition hold for this line of this receipt of this customer?';

CREATE OPERATOR @extschema@.@@ (
    LEFTARG = @extschema@.condition,
    RIGHTARG = jsonb,
    FUNCTION = @extschema@.matches
);
COMMENT ON OPERATOR @extschema@.@@ (@extschema@.condition, jsonb) IS
'condition @@ line: does the condition hold for the line?';

CREATE FUNCTION @extschema@.condition_attributes(condition @extschema@.condition)
RETURNS text[]
AS 'MODULE_PATHNAME', 'loyalty_condition_attributes'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.condition_attributes(@extschema@.condition) IS
'the attribute names the condition reads, sorted: to find typos';

CREATE FUNCTION @extschema@.condition_explain(condition @extschema@.condition, line jsonb,
                                              receipt jsonb DEFAULT '{}', customer jsonb DEFAULT '{}')
RETURNS TABLE (depth integer, clause text, value jsonb, result boolean)
AS 'MODULE_PATHNAME', 'loyalty_condition_explain'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 8;
COMMENT ON FUNCTION @extschema@.condition_explain(@extschema@.condition, jsonb, jsonb, jsonb) IS
'every clause of the condition with the value it read and its result, outermost first: why a rule did or did not apply';

CREATE FUNCTION @extschema@.match_all(conditions @extschema@.condition[], lines jsonb,
                                      receipt jsonb DEFAULT '{}', customer jsonb DEFAULT '{}')
RETURNS TABLE (line integer, condition integer)
AS 'MODULE_PATHNAME', 'loyalty_match_all'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 100;
COMMENT ON FUNCTION @extschema@.match_all(@extschema@.condition[], jsonb, jsonb, jsonb) IS
'every (line, condition) pair that matches, both numbered from 1, found through an index of the conditions'' equality, prefix and tag tests';

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
SELECT pg_catalog.pg_extension_config_dump('@extschema@.product', '');
