-- src/identifier.sql — normalisation of identifiers (C, src/identifier.c).
-- Pure functions: executable by everyone.

CREATE FUNCTION @extschema@.normalize_phone(phone text, country text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'loyalty_normalize_phone'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.normalize_phone(text, text) IS
'phone number in E.164 (+ and digits); numbers without + are read in the given country (ISO 3166-1 alpha-2)';

CREATE FUNCTION @extschema@.normalize_card(card text, min_length integer DEFAULT 8,
                                           max_length integer DEFAULT 19, luhn boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'loyalty_normalize_card'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.normalize_card(text, integer, integer, boolean) IS
'card number as its digits, checked for length and optionally the Luhn digit';

CREATE FUNCTION @extschema@.normalize_email(email text)
RETURNS text
AS 'MODULE_PATHNAME', 'loyalty_normalize_email'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.normalize_email(text) IS
'e-mail address trimmed and lower-cased, checked for a valid ASCII shape';

CREATE FUNCTION @extschema@.phone_country_valid(country text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_phone_country_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.phone_country_valid(text) IS
'true if normalize_phone knows the numbering plan of this ISO 3166-1 alpha-2 country';

CREATE FUNCTION @extschema@.phone_countries(
    OUT country text, OUT calling_code text, OUT trunk_prefix text,
    OUT international_prefixes text, OUT min_digits integer, OUT max_digits integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'loyalty_phone_countries'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 30;
COMMENT ON FUNCTION @extschema@.phone_countries() IS
'numbering plans known to normalize_phone: calling code, trunk prefix, international prefixes, digits of the national number';
