-- src/program.sql — programmes, their points currencies, and the roles bound
-- to them.

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
    CHECK (card_min_length BETWEEN 1 AND 32 AND card_max_length BETWEEN card_min_length AND 32),
    -- caps and rounding, read by calculate
    min_line_price   numeric NOT NULL DEFAULT 0
                     CHECK (min_line_price OPERATOR(pg_catalog.>=) 0
                            AND pg_catalog.scale(min_line_price) OPERATOR(pg_catalog.<=) money_exponent),
    discount_step    numeric NOT NULL DEFAULT 0
                     CHECK (discount_step OPERATOR(pg_catalog.>=) 0
                            AND pg_catalog.scale(discount_step) OPERATOR(pg_catalog.<=) money_exponent),
    points_excluded  @extschema@.condition,
    earn_weight      numeric NOT NULL DEFAULT 1
                     CHECK (earn_weight OPERATOR(pg_catalog.>=) 0 AND earn_weight OPERATOR(pg_catalog.<=) 1
                            AND pg_catalog.scale(earn_weight) OPERATOR(pg_catalog.<=) 4),
    -- what a refund or cancel does when the points a receipt earned were
    -- spent: record a debt that the next accruals pay first, or keep their
    -- value from the money given back
    refund_shortfall text NOT NULL DEFAULT 'debt'
                     CHECK (refund_shortfall OPERATOR(pg_catalog.=) ANY ('{debt,money}'::text[])),
    -- how long before a lot expires its customer hears of it, and how long
    -- an event nobody took is kept (src/events.sql)
    expiry_notice    interval DEFAULT '14 days'
                     CHECK (expiry_notice OPERATOR(pg_catalog.>) '0'::interval),
    event_retention  interval DEFAULT '30 days'
                     CHECK (event_retention OPERATOR(pg_catalog.>) '0'::interval),
    -- tiers (src/tiers.sql)
    tier_window      interval NOT NULL DEFAULT '365 days'
                     CHECK (tier_window OPERATOR(pg_catalog.>) '0'::interval),
    tier_review      text NOT NULL DEFAULT 'quarter'
                     CHECK (tier_review OPERATOR(pg_catalog.=) ANY ('{month,quarter,year}'::text[]))
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
COMMENT ON COLUMN @extschema@.program.min_line_price IS 'no line is discounted or paid with points below this amount of money, in major units (1.00)';
COMMENT ON COLUMN @extschema@.program.discount_step IS 'percent discounts of a line are rounded down to a multiple of this amount of money, in major units (1 for whole roubles); 0: the minor unit';
COMMENT ON COLUMN @extschema@.program.points_excluded IS 'a condition: the lines that points may not pay for (category <@ ''tobacco''); NULL: none';
COMMENT ON COLUMN @extschema@.program.earn_weight IS 'weight of earned points, at their money value, against money off when calculate compares combinations (0 to 1)';
COMMENT ON COLUMN @extschema@.program.refund_shortfall IS 'when returned goods earned points the customer already spent: debt (owed, paid by the next accruals) or money (their value kept from the refund)';
COMMENT ON COLUMN @extschema@.program.expiry_notice IS 'how long before points expire the job notice_expiring emits a points_expiring event; NULL: never';
COMMENT ON COLUMN @extschema@.program.event_retention IS 'events older than this that no consumer took are deleted by the job purge_events; NULL: kept until taken';
COMMENT ON COLUMN @extschema@.program.tier_window IS 'the rolling window over which spend and receipts qualify for a tier';
COMMENT ON COLUMN @extschema@.program.tier_review IS 'month, quarter or year: customers move down a tier only at the start of one, when review_tiers reviews them';
-- Row-level security: a role other than the owner sees and writes only the
-- rows of the programmes it reaches, whatever it was granted on the table
-- (the functions run as the owner and check the programmes themselves).
ALTER TABLE @extschema@.program ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.program USING (@extschema@.program_open(id));

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
ALTER TABLE @extschema@.currency ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.currency USING (@extschema@.program_open(program_id));

-- The default currency must be one of the programme's own; deferred so that a
-- programme and its first currency are created in one transaction.  The one
-- ALTER of a table this script created: the two tables reference each other,
-- so the key of the first can only follow the second.
ALTER TABLE @extschema@.program
    ADD CONSTRAINT program_default_currency_fkey
    FOREIGN KEY (id, default_currency) REFERENCES @extschema@.currency (program_id, code)
    DEFERRABLE INITIALLY DEFERRED;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.program', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.program', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.currency', '');

-- The programme a caller names by its code, once the role is shown to reach
-- it: what every function of a programme starts with.
CREATE FUNCTION @extschema@.program_id(program text)
RETURNS bigint
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    SELECT p.id INTO pid FROM @extschema@.program p WHERE p.code OPERATOR(pg_catalog.=) program;
    IF pid IS NULL THEN
        RAISE EXCEPTION 'programme "%" does not exist', program
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT code FROM loyalty.program lists the programmes.';
    END IF;
    PERFORM @extschema@.require_program(pid, pg_catalog.format('programme "%s"', program));
    RETURN pid;
END
$$;
COMMENT ON FUNCTION @extschema@.program_id(text) IS 'id of the programme with this code; an error if there is none or the role does not reach it';
REVOKE ALL ON FUNCTION @extschema@.program_id(text) FROM PUBLIC;

-- Bindings of roles to programmes: which programmes a role reaches.  The
-- functions that read them (program_open, require_program) and change them
-- (grant_program, revoke_program) are in src/access.sql.
CREATE TABLE @extschema@.program_access (
    role        pg_catalog.regrole NOT NULL,
    program_id  bigint REFERENCES @extschema@.program (id) ON DELETE CASCADE,
    granted_by  text NOT NULL DEFAULT @extschema@.actor(),
    granted_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT program_access_key UNIQUE NULLS NOT DISTINCT (role, program_id)
);
COMMENT ON TABLE @extschema@.program_access IS
'which programmes a role reaches: its own bindings and those of the roles whose privileges it has; superusers reach every programme';
COMMENT ON COLUMN @extschema@.program_access.role IS 'the role bound (a group role of tills, a back office, an analyst)';
COMMENT ON COLUMN @extschema@.program_access.program_id IS 'the programme; NULL: every programme, present and future';
COMMENT ON COLUMN @extschema@.program_access.granted_by IS 'the role that made the binding';
COMMENT ON COLUMN @extschema@.program_access.granted_at IS 'when';
ALTER TABLE @extschema@.program_access ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.program_access USING (@extschema@.program_open(program_id));
CREATE TRIGGER program_access_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.program_access
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.access_changed();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.program_access', '');
