-- src/program.sql — programmes and their points currencies.

CREATE TABLE @extschema@.program (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code             text NOT NULL UNIQUE
                     CHECK (code OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name             text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    money_currency   text NOT NULL DEFAULT 'RUB'
                     CHECK (money_currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$'),
    money_exponent   smallint NOT NULL DEFAULT 2 CHECK (money_exponent BETWEEN 0 AND 4),
    default_currency text NOT NULL,
    phone_country    text CHECK (@extschema@.phone_country_valid(phone_country)
                                 AND phone_country OPERATOR(pg_catalog.~) '^[A-Z]{2}$'),
    card_min_length  smallint NOT NULL DEFAULT 8,
    card_max_length  smallint NOT NULL DEFAULT 19,
    card_luhn        boolean NOT NULL DEFAULT false,
    accrual_rate_bp  integer NOT NULL DEFAULT 0 CHECK (accrual_rate_bp BETWEEN 0 AND 100000),
    accrual_delay    interval NOT NULL DEFAULT '0'
                     CHECK (accrual_delay OPERATOR(pg_catalog.>=) '0'::interval),
    max_discount_bp  integer NOT NULL DEFAULT 10000 CHECK (max_discount_bp BETWEEN 0 AND 10000),
    max_points_bp    integer NOT NULL DEFAULT 10000 CHECK (max_points_bp BETWEEN 0 AND 10000),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK (card_min_length BETWEEN 1 AND 32 AND card_max_length BETWEEN card_min_length AND 32)
);
COMMENT ON TABLE @extschema@.program IS 'a loyalty programme of one brand, country or tenant';
COMMENT ON COLUMN @extschema@.program.id IS 'the programme id, which the other tables hold as program_id';
COMMENT ON COLUMN @extschema@.program.code IS 'the name tills and backends use: lower-case letters, digits, _ and -, 1 to 63 characters';
COMMENT ON COLUMN @extschema@.program.name IS 'display name';
COMMENT ON COLUMN @extschema@.program.money_currency IS 'ISO 4217 code of the money receipts are paid in';
COMMENT ON COLUMN @extschema@.program.money_exponent IS 'digits of minor units of the money (2: kopecks, cents)';
COMMENT ON COLUMN @extschema@.program.default_currency IS 'code of the points currency accrued by default';
COMMENT ON COLUMN @extschema@.program.phone_country IS 'ISO 3166-1 alpha-2 country (upper case, one of loyalty.phone_countries()) in which phone numbers without + are read; NULL: only international numbers';
COMMENT ON COLUMN @extschema@.program.card_min_length IS 'fewest digits of a card number';
COMMENT ON COLUMN @extschema@.program.card_max_length IS 'most digits of a card number';
COMMENT ON COLUMN @extschema@.program.card_luhn IS 'card numbers carry a Luhn check digit';
COMMENT ON COLUMN @extschema@.program.accrual_rate_bp IS 'base accrual: share of the paid amount credited as points, in basis points (500 = 5%)';
COMMENT ON COLUMN @extschema@.program.accrual_delay IS 'time between a receipt and the release of its accrued points';
COMMENT ON COLUMN @extschema@.program.max_discount_bp IS 'cap on discounts plus points paid, as a share of the receipt in basis points';
COMMENT ON COLUMN @extschema@.program.max_points_bp IS 'cap on the share of a receipt payable with points, in basis points';
COMMENT ON COLUMN @extschema@.program.created_at IS 'when the programme was created';

CREATE TABLE @extschema@.currency (
    program_id     bigint NOT NULL REFERENCES @extschema@.program (id) ON DELETE CASCADE,
    code           text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,31}$'),
    name           text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    exponent       smallint NOT NULL DEFAULT 0 CHECK (exponent BETWEEN 0 AND 6),
    money_per_unit numeric(20,8) NOT NULL CHECK (money_per_unit OPERATOR(pg_catalog.>) 0),
    PRIMARY KEY (program_id, code)
);
COMMENT ON TABLE @extschema@.currency IS 'a points currency of a programme';
COMMENT ON COLUMN @extschema@.currency.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.currency.code IS 'short name, unique in the programme (bonus, coins, service)';
COMMENT ON COLUMN @extschema@.currency.name IS 'display name';
COMMENT ON COLUMN @extschema@.currency.exponent IS 'digits of minor units: amounts are stored as integers of 10^-exponent points';
COMMENT ON COLUMN @extschema@.currency.money_per_unit IS 'value of one whole point in the programme''s money (major units)';

-- The default currency must be one of the programme's own; deferred so that a
-- programme and its first currency are created in one transaction.
ALTER TABLE @extschema@.program
    ADD CONSTRAINT program_default_currency_fkey
    FOREIGN KEY (id, default_currency) REFERENCES @extschema@.currency (program_id, code)
    DEFERRABLE INITIALLY DEFERRED;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.program', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.program', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.currency', '');
