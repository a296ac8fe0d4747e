-- loyalty install script, assembled by the Makefile from src/*.sql.
\echo Use "CREATE EXTENSION loyalty" to load this file. \quit

COMMENT ON SCHEMA @extschema@ IS 'loyalty: retail loyalty programme (customers, identifiers, points, promotions, receipts)';
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
COMMENT ON COLUMN @extschema@.program.code IS 'short name used by the tills: lower-case letters, digits, _ and -';
COMMENT ON COLUMN @extschema@.program.money_currency IS 'ISO 4217 code of the money receipts are paid in';
COMMENT ON COLUMN @extschema@.program.money_exponent IS 'digits of minor units of the money (2: kopecks, cents)';
COMMENT ON COLUMN @extschema@.program.default_currency IS 'code of the points currency accrued by default';
COMMENT ON COLUMN @extschema@.program.phone_country IS 'ISO 3166-1 alpha-2 country in which phone numbers without + are read; NULL: only international numbers';
COMMENT ON COLUMN @extschema@.program.card_min_length IS 'fewest digits of a card number';
COMMENT ON COLUMN @extschema@.program.card_max_length IS 'most digits of a card number';
COMMENT ON COLUMN @extschema@.program.card_luhn IS 'card numbers carry a Luhn check digit';
COMMENT ON COLUMN @extschema@.program.accrual_rate_bp IS 'base accrual: share of the paid amount credited as points, in basis points (500 = 5%)';
COMMENT ON COLUMN @extschema@.program.accrual_delay IS 'time between a receipt and the release of its accrued points';
COMMENT ON COLUMN @extschema@.program.max_discount_bp IS 'cap on discounts plus points paid, as a share of the receipt in basis points';
COMMENT ON COLUMN @extschema@.program.max_points_bp IS 'cap on the share of a receipt payable with points, in basis points';

CREATE TABLE @extschema@.currency (
    program_id     bigint NOT NULL REFERENCES @extschema@.program (id) ON DELETE CASCADE,
    code           text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,31}$'),
    name           text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    exponent       smallint NOT NULL DEFAULT 0 CHECK (exponent BETWEEN 0 AND 6),
    money_per_unit numeric(20,8) NOT NULL CHECK (money_per_unit OPERATOR(pg_catalog.>) 0),
    PRIMARY KEY (program_id, code)
);
COMMENT ON TABLE @extschema@.currency IS 'a points currency of a programme';
COMMENT ON COLUMN @extschema@.currency.code IS 'short name, unique in the programme (bonus, coins, service)';
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
-- src/customer.sql — customers, their identifiers, and finding them at the till.

CREATE TABLE @extschema@.customer (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL REFERENCES @extschema@.program (id),
    status      text NOT NULL DEFAULT 'active'
                CHECK (status OPERATOR(pg_catalog.=) ANY ('{active,blocked,fraud_hold,merged}'::text[])),
    birth_date  date CHECK (birth_date OPERATOR(pg_catalog.>=) '1900-01-01'::date),
    home_city   text,
    tier        text,
    attributes  jsonb NOT NULL DEFAULT '{}'
                CHECK (pg_catalog.jsonb_typeof(attributes) OPERATOR(pg_catalog.=) 'object'),
    merged_into bigint REFERENCES @extschema@.customer (id),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (program_id, id),
    CHECK ((status OPERATOR(pg_catalog.=) 'merged') OPERATOR(pg_catalog.=) (merged_into IS NOT NULL))
);
CREATE INDEX customer_merged_into_idx ON @extschema@.customer (merged_into)
    WHERE merged_into IS NOT NULL;
COMMENT ON TABLE @extschema@.customer IS 'a person''s account in a programme';
COMMENT ON COLUMN @extschema@.customer.status IS 'active, blocked, fraud_hold, or merged (into merged_into)';
COMMENT ON COLUMN @extschema@.customer.tier IS 'current tier code; NULL until tiers are configured';
COMMENT ON COLUMN @extschema@.customer.attributes IS 'free attributes (a JSON object) that conditions can read as customer.NAME';
COMMENT ON COLUMN @extschema@.customer.merged_into IS 'the account this one was merged into; always the final one';

CREATE TABLE @extschema@.identifier (
    program_id  bigint NOT NULL,
    kind        text NOT NULL
                CHECK (kind OPERATOR(pg_catalog.=) ANY ('{card,phone,email}'::text[])),
    value       text NOT NULL,
    customer_id bigint NOT NULL,
    status      text NOT NULL DEFAULT 'active'
                CHECK (status OPERATOR(pg_catalog.=) ANY ('{active,blocked,replaced}'::text[])),
    replaced_by text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (program_id, kind, value),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id),
    CHECK ((status OPERATOR(pg_catalog.=) 'replaced') OPERATOR(pg_catalog.=) (replaced_by IS NOT NULL))
);
CREATE INDEX identifier_customer_idx ON @extschema@.identifier (customer_id);
COMMENT ON TABLE @extschema@.identifier IS 'a card number, phone number or e-mail address leading to a customer; unique in its programme';
COMMENT ON COLUMN @extschema@.identifier.value IS 'normalised: card digits, E.164 phone, lower-case e-mail';
COMMENT ON COLUMN @extschema@.identifier.status IS 'active; blocked (lost or stolen, identifies nobody); replaced (by the card replaced_by)';

CREATE TABLE @extschema@.customer_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL REFERENCES @extschema@.program (id),
    customer_id bigint NOT NULL REFERENCES @extschema@.customer (id),
    action      text NOT NULL
                CHECK (action OPERATOR(pg_catalog.=) ANY
                       ('{enroll,add_identifier,replace_card,identifier_status,merge}'::text[])),
    detail      jsonb NOT NULL DEFAULT '{}',
    actor       text NOT NULL DEFAULT pg_catalog."session_user"(),
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX customer_log_customer_idx ON @extschema@.customer_log (customer_id, created_at);
COMMENT ON TABLE @extschema@.customer_log IS 'who changed a customer''s account or identifiers, when and why';
COMMENT ON COLUMN @extschema@.customer_log.actor IS 'the session user that made the change';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.customer', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.customer', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.identifier', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customer_log', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.customer_log', 'id'), '');

-- C functions (src/customer.c)

CREATE FUNCTION @extschema@.normalize_identifier(program text, kind text, value text)
RETURNS text
AS 'MODULE_PATHNAME', 'loyalty_normalize_identifier'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.normalize_identifier(text, text, text) IS
'the stored form of a card, phone or email identifier under the programme''s rules';

CREATE FUNCTION @extschema@.identify(program text, identifier text, kind text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_identify'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.identify(text, text, text) IS
'find the customer of a card, phone, e-mail or customer id; {"found": false, "reason": ...} when there is none';

-- The same C function under the name the tills know.
CREATE FUNCTION public.loyalty_identify(program text, identifier text, kind text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_identify'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION public.loyalty_identify(text, text, text) IS
'loyalty.identify under its checkout name';

-- Identifiers are stored normalised, whoever writes them.
CREATE FUNCTION @extschema@.identifier_normalize_trigger()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.value := @extschema@.normalize_identifier(
        (SELECT p.code FROM @extschema@.program p WHERE p.id OPERATOR(pg_catalog.=) NEW.program_id),
        NEW.kind, NEW.value);
    RETURN NEW;
END
$$;
CREATE TRIGGER identifier_normalize
    BEFORE INSERT OR UPDATE OF program_id, kind, value ON @extschema@.identifier
    FOR EACH ROW EXECUTE FUNCTION @extschema@.identifier_normalize_trigger();

-- Administration (SQL): enroll, bind, replace, block, merge.

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
    RETURN pid;
END
$$;
COMMENT ON FUNCTION @extschema@.program_id(text) IS 'id of the programme with this code, or an error';

-- Lock a customer of the programme that is not merged away; error otherwise.
CREATE FUNCTION @extschema@.customer_for_update(pid bigint, cid bigint)
RETURNS @extschema@.customer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c @extschema@.customer;
BEGIN
    SELECT * INTO c FROM @extschema@.customer
     WHERE id OPERATOR(pg_catalog.=) cid AND program_id OPERATOR(pg_catalog.=) pid
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist in programme "%"', cid,
              (SELECT p.code FROM @extschema@.program p WHERE p.id OPERATOR(pg_catalog.=) pid)
            USING ERRCODE = 'no_data_found';
    END IF;
    IF c.status OPERATOR(pg_catalog.=) 'merged' THEN
        RAISE EXCEPTION 'customer % was merged into customer %', cid, c.merged_into
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = pg_catalog.format('Use customer %s.', c.merged_into);
    END IF;
    RETURN c;
END
$$;

-- Bind one identifier to a customer; a clear unique violation if it is taken.
CREATE FUNCTION @extschema@.identifier_insert(program text, pid bigint, cid bigint,
                                              kind text, value text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    normalized text := @extschema@.normalize_identifier(program, kind, value);
    holder bigint;
BEGIN
    -- ON CONFLICT waits for a concurrent insert of the same identifier to end,
    -- so of two sessions binding it at once exactly one succeeds.
    INSERT INTO @extschema@.identifier (program_id, kind, value, customer_id)
    VALUES (pid, kind, normalized, cid)
    ON CONFLICT ON CONSTRAINT identifier_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT i.customer_id INTO holder FROM @extschema@.identifier i
         WHERE i.program_id OPERATOR(pg_catalog.=) pid
           AND i.kind OPERATOR(pg_catalog.=) identifier_insert.kind
           AND i.value OPERATOR(pg_catalog.=) normalized;
        RAISE EXCEPTION '% "%" is already bound to customer % in programme "%"',
              kind, normalized, holder, program
            USING ERRCODE = 'unique_violation',
                  HINT = 'An identifier belongs to one customer: use loyalty.identify to find that customer, or loyalty.merge_customers to join the two accounts.';
    END IF;
    RETURN normalized;
END
$$;

CREATE FUNCTION @extschema@.require_reason(reason text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF reason IS NULL OR pg_catalog.btrim(reason) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'a reason is required for this change'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Say why, in a few words: it is kept in loyalty.customer_log.';
    END IF;
END
$$;

CREATE FUNCTION @extschema@.enroll(
    program text,
    card text DEFAULT NULL,
    phone text DEFAULT NULL,
    email text DEFAULT NULL,
    birth_date date DEFAULT NULL,
    home_city text DEFAULT NULL,
    attributes jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint := @extschema@.program_id(enroll.program);
    cid bigint;
    bound jsonb := '{}';
    ident record;
BEGIN
    IF enroll.card IS NULL AND enroll.phone IS NULL AND enroll.email IS NULL THEN
        RAISE EXCEPTION 'a customer needs at least one identifier'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'card, phone and email are all null.';
    END IF;
    IF enroll.attributes IS NULL
       OR pg_catalog.jsonb_typeof(enroll.attributes) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'customer attributes must be a JSON object, not %',
              COALESCE(pg_catalog.jsonb_typeof(enroll.attributes), 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO @extschema@.customer (program_id, birth_date, home_city, attributes)
    VALUES (pid, enroll.birth_date, enroll.home_city, enroll.attributes)
    RETURNING id INTO cid;

    FOR ident IN
        SELECT t.kind, t.value
          FROM (VALUES (1, 'card', enroll.card), (2, 'phone', enroll.phone),
                       (3, 'email', enroll.email)) AS t(ord, kind, value)
         WHERE t.value IS NOT NULL
         ORDER BY t.ord
    LOOP
        bound := bound OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(ident.kind,
                 @extschema@.identifier_insert(enroll.program, pid, cid, ident.kind, ident.value));
    END LOOP;

    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail)
    VALUES (pid, cid, 'enroll', bound);
    RETURN cid;
END
$$;
COMMENT ON FUNCTION @extschema@.enroll(text, text, text, text, date, text, jsonb) IS
'create a customer with its identifiers in one call; returns the customer id';

CREATE FUNCTION @extschema@.add_identifier(program text, customer_id bigint, kind text,
                                           value text, reason text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint := @extschema@.program_id(add_identifier.program);
    normalized text;
BEGIN
    PERFORM @extschema@.customer_for_update(pid, add_identifier.customer_id);
    normalized := @extschema@.identifier_insert(add_identifier.program, pid,
                  add_identifier.customer_id, add_identifier.kind, add_identifier.value);
    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail, reason)
    VALUES (pid, add_identifier.customer_id, 'add_identifier',
            pg_catalog.jsonb_build_object('kind', add_identifier.kind, 'value', normalized),
            add_identifier.reason);
    RETURN normalized;
END
$$;
COMMENT ON FUNCTION @extschema@.add_identifier(text, bigint, text, text, text) IS
'bind another card, phone or e-mail to an existing customer; returns its stored form';

CREATE FUNCTION @extschema@.replace_card(program text, old_card text, new_card text, reason text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint := @extschema@.program_id(replace_card.program);
    old_value text := @extschema@.normalize_identifier(replace_card.program, 'card', replace_card.old_card);
    old @extschema@.identifier;
    new_value text;
BEGIN
    PERFORM @extschema@.require_reason(replace_card.reason);
    SELECT * INTO old FROM @extschema@.identifier i
     WHERE i.program_id OPERATOR(pg_catalog.=) pid AND i.kind OPERATOR(pg_catalog.=) 'card'
       AND i.value OPERATOR(pg_catalog.=) old_value
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card "%" is not bound to any customer in programme "%"', old_value, replace_card.program
            USING ERRCODE = 'no_data_found';
    END IF;
    IF old.status OPERATOR(pg_catalog.=) 'replaced' THEN
        RAISE EXCEPTION 'card "%" was already replaced by card "%"', old_value, old.replaced_by
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Replace the newer card instead.';
    END IF;
    PERFORM @extschema@.customer_for_update(pid, old.customer_id);

    new_value := @extschema@.identifier_insert(replace_card.program, pid, old.customer_id,
                                               'card', replace_card.new_card);
    UPDATE @extschema@.identifier i
       SET status = 'replaced', replaced_by = new_value, updated_at = pg_catalog.now()
     WHERE i.program_id OPERATOR(pg_catalog.=) pid AND i.kind OPERATOR(pg_catalog.=) 'card'
       AND i.value OPERATOR(pg_catalog.=) old_value;
    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail, reason)
    VALUES (pid, old.customer_id, 'replace_card',
            pg_catalog.jsonb_build_object('old', old_value, 'new', new_value), replace_card.reason);
    RETURN old.customer_id;
END
$$;
COMMENT ON FUNCTION @extschema@.replace_card(text, text, text, text) IS
'bind a new card to the customer of an active or blocked card, and mark the old one replaced; returns the customer id';

CREATE FUNCTION @extschema@.set_identifier_status(program text, kind text, value text,
                                                  status text, reason text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint := @extschema@.program_id(set_identifier_status.program);
    normalized text := @extschema@.normalize_identifier(set_identifier_status.program,
                       set_identifier_status.kind, set_identifier_status.value);
    ident @extschema@.identifier;
BEGIN
    PERFORM @extschema@.require_reason(set_identifier_status.reason);
    IF set_identifier_status.status IS NULL
       OR set_identifier_status.status OPERATOR(pg_catalog.<>) ALL ('{active,blocked}'::text[]) THEN
        RAISE EXCEPTION 'invalid identifier status "%"', set_identifier_status.status
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An identifier can be set active or blocked; cards are replaced with loyalty.replace_card.';
    END IF;
    SELECT * INTO ident FROM @extschema@.identifier i
     WHERE i.program_id OPERATOR(pg_catalog.=) pid
       AND i.kind OPERATOR(pg_catalog.=) set_identifier_status.kind
       AND i.value OPERATOR(pg_catalog.=) normalized
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% "%" is not bound to any customer in programme "%"',
              set_identifier_status.kind, normalized, set_identifier_status.program
            USING ERRCODE = 'no_data_found';
    END IF;
    IF ident.status OPERATOR(pg_catalog.=) 'replaced' THEN
        RAISE EXCEPTION 'card "%" was replaced by card "%" and cannot be reactivated or blocked',
              normalized, ident.replaced_by
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE @extschema@.identifier i
       SET status = set_identifier_status.status, updated_at = pg_catalog.now()
     WHERE i.program_id OPERATOR(pg_catalog.=) pid
       AND i.kind OPERATOR(pg_catalog.=) set_identifier_status.kind
       AND i.value OPERATOR(pg_catalog.=) normalized;
    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail, reason)
    VALUES (pid, ident.customer_id, 'identifier_status',
            pg_catalog.jsonb_build_object('kind', ident.kind, 'value', normalized,
                                          'from', ident.status, 'to', set_identifier_status.status),
            set_identifier_status.reason);
    RETURN ident.customer_id;
END
$$;
COMMENT ON FUNCTION @extschema@.set_identifier_status(text, text, text, text, text) IS
'block (lost, stolen) or reactivate a card, phone or e-mail; returns the customer id';

CREATE FUNCTION @extschema@.merge_customers(program text, source bigint, target bigint, reason text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint := @extschema@.program_id(merge_customers.program);
    s @extschema@.customer;
    t @extschema@.customer;
    moved jsonb;
BEGIN
    PERFORM @extschema@.require_reason(merge_customers.reason);
    IF merge_customers.source IS NULL OR merge_customers.target IS NULL
       OR merge_customers.source OPERATOR(pg_catalog.=) merge_customers.target THEN
        RAISE EXCEPTION 'cannot merge customer % into customer %', merge_customers.source, merge_customers.target
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Source and target must be two different customers.';
    END IF;
    -- lock both accounts in id order, so that merges never deadlock
    IF merge_customers.source OPERATOR(pg_catalog.<) merge_customers.target THEN
        s := @extschema@.customer_for_update(pid, merge_customers.source);
        t := @extschema@.customer_for_update(pid, merge_customers.target);
    ELSE
        t := @extschema@.customer_for_update(pid, merge_customers.target);
        s := @extschema@.customer_for_update(pid, merge_customers.source);
    END IF;
    IF s.status OPERATOR(pg_catalog.=) 'fraud_hold' OR t.status OPERATOR(pg_catalog.=) 'fraud_hold' THEN
        RAISE EXCEPTION 'cannot merge customer % into customer %: an account is on fraud hold', s.id, t.id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Resolve the fraud hold first.';
    END IF;

    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'kind', i.kind, 'value', i.value) ORDER BY i.kind, i.value), '[]')
      INTO moved
      FROM @extschema@.identifier i WHERE i.customer_id OPERATOR(pg_catalog.=) s.id;
    -- points: every lot moves with its window, with ledger entries on both sides
    PERFORM @extschema@.merge_wallets(s.id, t.id, merge_customers.reason);
    UPDATE @extschema@.identifier i SET customer_id = t.id, updated_at = pg_catalog.now()
     WHERE i.customer_id OPERATOR(pg_catalog.=) s.id;
    UPDATE @extschema@.customer c SET merged_into = t.id, updated_at = pg_catalog.now()
     WHERE c.merged_into OPERATOR(pg_catalog.=) s.id;
    UPDATE @extschema@.customer c
       SET birth_date = COALESCE(t.birth_date, s.birth_date),
           home_city = COALESCE(t.home_city, s.home_city),
           attributes = s.attributes OPERATOR(pg_catalog.||) t.attributes,
           updated_at = pg_catalog.now()
     WHERE c.id OPERATOR(pg_catalog.=) t.id;
    UPDATE @extschema@.customer c
       SET status = 'merged', merged_into = t.id, updated_at = pg_catalog.now()
     WHERE c.id OPERATOR(pg_catalog.=) s.id;

    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail, reason)
    VALUES (pid, s.id, 'merge', pg_catalog.jsonb_build_object('into', t.id, 'identifiers', moved),
            merge_customers.reason),
           (pid, t.id, 'merge', pg_catalog.jsonb_build_object('from', s.id, 'identifiers', moved),
            merge_customers.reason);
    RETURN t.id;
END
$$;
COMMENT ON FUNCTION @extschema@.merge_customers(text, bigint, bigint, text) IS
'move every identifier, wallet and lot of the source customer to the target and mark the source merged; returns the target id';

-- Functions that read or change accounts run with the owner's rights and are
-- granted explicitly; nobody may call them by default.
REVOKE ALL ON FUNCTION
    @extschema@.normalize_identifier(text, text, text),
    @extschema@.identify(text, text, text),
    public.loyalty_identify(text, text, text),
    @extschema@.program_id(text),
    @extschema@.customer_for_update(bigint, bigint),
    @extschema@.identifier_insert(text, bigint, bigint, text, text),
    @extschema@.enroll(text, text, text, text, date, text, jsonb),
    @extschema@.add_identifier(text, bigint, text, text, text),
    @extschema@.replace_card(text, text, text, text),
    @extschema@.set_identifier_status(text, text, text, text, text),
    @extschema@.merge_customers(text, bigint, bigint, text)
FROM PUBLIC;
-- src/ledger.sql — wallets, the versioned ledger, points lots and holds.
--
-- Every change of points goes through the C functions below: they lock the
-- wallet row, record what has expired, check the spendable balance, append
-- one ledger entry per change with the wallet's next version, and move lots.

CREATE TABLE @extschema@.wallet (
    customer_id bigint NOT NULL,
    currency    text NOT NULL,
    program_id  bigint NOT NULL,
    balance     bigint NOT NULL DEFAULT 0 CHECK (balance OPERATOR(pg_catalog.>=) 0),
    held        bigint NOT NULL DEFAULT 0 CHECK (held OPERATOR(pg_catalog.>=) 0),
    version     bigint NOT NULL DEFAULT 0,
    next_expiry timestamptz,
    restricted  bigint NOT NULL DEFAULT 0 CHECK (restricted OPERATOR(pg_catalog.>=) 0),
    pending_until timestamptz,
    merged_into bigint,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (customer_id, currency),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id),
    FOREIGN KEY (program_id, currency) REFERENCES @extschema@.currency (program_id, code)
) WITH (fillfactor = 70);
COMMENT ON TABLE @extschema@.wallet IS 'points of one customer in one currency: the one row every operation locks';
COMMENT ON COLUMN @extschema@.wallet.balance IS 'stored balance in minor units: the sum of the remainders of the wallet''s lots, including pending lots and lots expired but not yet recorded';
COMMENT ON COLUMN @extschema@.wallet.held IS 'points reserved by holds, including holds past their deadline that are not yet tidied';
COMMENT ON COLUMN @extschema@.wallet.version IS 'version of the last ledger entry; 0 before the first';
COMMENT ON COLUMN @extschema@.wallet.next_expiry IS 'no lot of the wallet with points left expires before this instant (NULL: none expires)';
COMMENT ON COLUMN @extschema@.wallet.restricted IS 'points of the wallet''s lots that carry a restriction (part of balance)';
COMMENT ON COLUMN @extschema@.wallet.pending_until IS 'no lot of the wallet starts to count after this instant (NULL: none is pending)';
COMMENT ON COLUMN @extschema@.wallet.merged_into IS 'set when the customer was merged away: the wallet takes no more operations';

CREATE TABLE @extschema@.ledger (
    program_id       bigint NOT NULL,
    customer_id      bigint NOT NULL,
    currency         text NOT NULL,
    version          bigint NOT NULL,
    operation        text NOT NULL,
    amount           bigint NOT NULL,
    held_amount      bigint NOT NULL DEFAULT 0,
    balance_after    bigint NOT NULL,
    held_after       bigint NOT NULL,
    lot_id           bigint,
    hold_id          bigint,
    receipt_id       text,
    peer_customer_id bigint,
    peer_currency    text,
    idempotency_key  text,
    lot_ids          bigint[],
    lot_amounts      bigint[],
    actor            text NOT NULL,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (customer_id, currency, version)
);
-- No CHECK constraints: only the extension's functions write the ledger, and a
-- CHECK is re-read on every statement that inserts.  balance_after and
-- held_after are the wallet row's values, whose own CHECKs hold them >= 0.
CREATE UNIQUE INDEX ledger_idempotency_key_idx ON @extschema@.ledger (program_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
COMMENT ON TABLE @extschema@.ledger IS 'append-only history of every change of a wallet, one entry per version';
COMMENT ON COLUMN @extschema@.ledger.version IS 'the wallet''s version after this entry: contiguous from 1 in each wallet';
COMMENT ON COLUMN @extschema@.ledger.operation IS 'accrue, redeem, hold, capture, release, expire, adjust, refund (receipt returns), convert, transfer_in or transfer_out';
COMMENT ON COLUMN @extschema@.ledger.amount IS 'signed change of the stored balance, in minor units';
COMMENT ON COLUMN @extschema@.ledger.held_amount IS 'signed change of the held points (holds, captures, releases)';
COMMENT ON COLUMN @extschema@.ledger.balance_after IS 'stored balance after this entry';
COMMENT ON COLUMN @extschema@.ledger.held_after IS 'held points after this entry';
COMMENT ON COLUMN @extschema@.ledger.lot_id IS 'the lot created (accrue, positive adjust) or expired (expire) by this entry';
COMMENT ON COLUMN @extschema@.ledger.hold_id IS 'the hold placed, captured or released';
COMMENT ON COLUMN @extschema@.ledger.receipt_id IS 'the receipt the entry belongs to, as the till names it';
COMMENT ON COLUMN @extschema@.ledger.peer_customer_id IS 'the other customer of a transfer';
COMMENT ON COLUMN @extschema@.ledger.peer_currency IS 'the other currency of a conversion';
COMMENT ON COLUMN @extschema@.ledger.idempotency_key IS 'caller''s key, unique in the programme: a call repeated with it returns this entry and writes nothing';
COMMENT ON COLUMN @extschema@.ledger.lot_ids IS 'the lots that paid an entry that takes points (see the view lot_usage)';
COMMENT ON COLUMN @extschema@.ledger.lot_amounts IS 'how much each of lot_ids paid, in the same order';
COMMENT ON COLUMN @extschema@.ledger.actor IS 'who made the change: the session user, or the actor named by an adjustment';

CREATE TABLE @extschema@.lot (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id      bigint NOT NULL,
    customer_id     bigint NOT NULL,
    currency        text NOT NULL,
    amount          bigint NOT NULL,
    remaining       bigint NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    kind            text NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    restriction     text,
    created_version bigint NOT NULL,
    source_lot_id   bigint,
    live            boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- one CHECK, since every write of a lot evaluates them all
    CONSTRAINT lot_amounts_check CHECK (remaining OPERATOR(pg_catalog.>=) 0
                                        AND remaining OPERATOR(pg_catalog.<=) amount
                                        AND live OPERATOR(pg_catalog.=) (remaining OPERATOR(pg_catalog.>) 0)
                                        AND (valid_to IS NULL OR valid_to OPERATOR(pg_catalog.>) valid_from))
) WITH (fillfactor = 80);
-- The partial indexes hold live lots.  They test the flag "live" rather than
-- remaining > 0, so that spending part of a lot changes no indexed column and
-- is a HOT update; only the update that empties a lot touches the indexes.
-- A wallet's live lots in redemption order (soonest expiry, never-expiring
-- last, then higher priority, then oldest): a redemption reads only the
-- lots it spends, and the effective balance reads the range.
CREATE INDEX lot_wallet_live_idx
    ON @extschema@.lot (customer_id, currency, valid_to, priority DESC, id)
    WHERE live;
-- Lots due for recording as expired, for expire_due.
CREATE INDEX lot_due_idx ON @extschema@.lot (valid_to)
    WHERE live AND valid_to IS NOT NULL;
COMMENT ON TABLE @extschema@.lot IS 'points with a validity window: they count while valid_from <= now() < valid_to';
COMMENT ON COLUMN @extschema@.lot.remaining IS 'points of the lot not yet spent, moved or recorded as expired';
COMMENT ON COLUMN @extschema@.lot.valid_from IS 'the lot counts from this instant; before it, its points are pending';
COMMENT ON COLUMN @extschema@.lot.valid_to IS 'the lot stops counting at this instant (NULL: never)';
COMMENT ON COLUMN @extschema@.lot.kind IS 'regular, birthday, product, promo, service, converted, adjustment...; points moved to another wallet keep their kind';
COMMENT ON COLUMN @extschema@.lot.priority IS 'among lots expiring at the same time, higher priority is spent first';
COMMENT ON COLUMN @extschema@.lot.restriction IS 'where the points may be spent; NULL: anywhere. A restricted lot is spent only when the caller says its restriction applies';
COMMENT ON COLUMN @extschema@.lot.created_version IS 'version of the ledger entry that created the lot in its wallet';
COMMENT ON COLUMN @extschema@.lot.source_lot_id IS 'the lot these points came from (transfer, conversion, merge)';
COMMENT ON COLUMN @extschema@.lot.live IS 'remaining > 0: the lot is in the partial indexes of live lots';

-- Which lots paid how much of an entry: kept in the entry itself (lot_ids,
-- lot_amounts), so that spending writes no row more than the entry, and
-- shown one row per lot by this view.
CREATE VIEW @extschema@.lot_usage AS
SELECT e.customer_id, e.currency, e.version, u.lot_id, u.amount
  FROM @extschema@.ledger e,
       ROWS FROM (pg_catalog.unnest(e.lot_ids), pg_catalog.unnest(e.lot_amounts)) AS u (lot_id, amount)
 WHERE e.lot_ids IS NOT NULL;
COMMENT ON VIEW @extschema@.lot_usage IS 'which lots paid how much of a ledger entry: a refund restores exactly these lots';
COMMENT ON COLUMN @extschema@.lot_usage.customer_id IS 'the wallet''s customer';
COMMENT ON COLUMN @extschema@.lot_usage.currency IS 'the wallet''s currency';
COMMENT ON COLUMN @extschema@.lot_usage.version IS 'the ledger entry (customer_id, currency, version) that took the points';
COMMENT ON COLUMN @extschema@.lot_usage.lot_id IS 'a lot that paid';
COMMENT ON COLUMN @extschema@.lot_usage.amount IS 'points taken from that lot';

CREATE TABLE @extschema@.hold (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id       bigint NOT NULL,
    customer_id      bigint NOT NULL,
    currency         text NOT NULL,
    amount           bigint NOT NULL CHECK (amount OPERATOR(pg_catalog.>) 0),
    applicable       text[],
    expires_at       timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'active'
                     CHECK (status OPERATOR(pg_catalog.=) ANY ('{active,captured,released,expired}'::text[])),
    captured         bigint CHECK (captured OPERATOR(pg_catalog.>) 0),
    receipt_id       text,
    created_version  bigint NOT NULL,
    resolved_version bigint,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at      timestamptz,
    CHECK ((status OPERATOR(pg_catalog.=) 'active') OPERATOR(pg_catalog.=) (resolved_version IS NULL)),
    CHECK ((status OPERATOR(pg_catalog.=) 'captured') OPERATOR(pg_catalog.=) (captured IS NOT NULL))
);
CREATE INDEX hold_wallet_active_idx ON @extschema@.hold (customer_id, currency, expires_at)
    WHERE status OPERATOR(pg_catalog.=) 'active';
CREATE INDEX hold_due_idx ON @extschema@.hold (expires_at)
    WHERE status OPERATOR(pg_catalog.=) 'active';
COMMENT ON TABLE @extschema@.hold IS 'points reserved for a payment in progress: captured, released, or expired at expires_at';
COMMENT ON COLUMN @extschema@.hold.applicable IS 'restrictions of lots the capture may spend';
COMMENT ON COLUMN @extschema@.hold.expires_at IS 'the hold stops counting at this instant, whether or not it has been tidied';
COMMENT ON COLUMN @extschema@.hold.status IS 'active; captured, released or expired (resolved exactly once)';
COMMENT ON COLUMN @extschema@.hold.captured IS 'points taken by the capture';

-- The ledger is history: nobody rewrites it.
CREATE FUNCTION @extschema@.forbid_history_change()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% of loyalty.% is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Correct a balance with loyalty.adjust, which appends an entry.';
END
$$;
CREATE TRIGGER ledger_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.forbid_history_change();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.wallet', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.lot', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.lot', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hold', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.hold', 'id'), '');

-- Operations (src/ledger.c, src/hold.c): C functions returning the ledger entry
-- they wrote, or on a replay of their idempotency key the entry first written.

CREATE FUNCTION @extschema@.accrue(
    customer bigint, currency text, amount bigint,
    valid_from timestamptz DEFAULT NULL, valid_to timestamptz DEFAULT NULL,
    kind text DEFAULT 'regular', priority integer DEFAULT 0, restriction text DEFAULT NULL,
    receipt text DEFAULT NULL, idempotency_key text DEFAULT NULL, reason text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_accrue'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.accrue(bigint, text, bigint, timestamptz, timestamptz, text, integer, text, text, text, text) IS
'credit points as a new lot valid from valid_from (default now) to valid_to (default never)';

CREATE FUNCTION @extschema@.redeem(
    customer bigint, currency text, amount bigint,
    applicable text[] DEFAULT NULL, receipt text DEFAULT NULL,
    expected_version bigint DEFAULT NULL, idempotency_key text DEFAULT NULL,
    reason text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_redeem'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.redeem(bigint, text, bigint, text[], text, bigint, text, text) IS
'spend points: applicable restricted lots first, then the soonest to expire, then by priority, then the oldest';

CREATE FUNCTION @extschema@.hold(
    customer bigint, currency text, amount bigint, ttl interval DEFAULT '15 minutes',
    applicable text[] DEFAULT NULL, receipt text DEFAULT NULL,
    expected_version bigint DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'loyalty_hold'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.hold(bigint, text, bigint, interval, text[], text, bigint, text) IS
'reserve points for ttl; returns the hold id for capture or release';

CREATE FUNCTION @extschema@.capture(hold bigint, amount bigint DEFAULT NULL,
                                    idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_capture'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.capture(bigint, bigint, text) IS
'spend the points of a hold (all of them by default; capturing less releases the rest)';

CREATE FUNCTION @extschema@.release(hold bigint, idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_release'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.release(bigint, text) IS
'give the points of a hold back without spending them';

CREATE FUNCTION @extschema@.adjust(
    customer bigint, currency text, delta bigint, reason text,
    actor text DEFAULT NULL, valid_to timestamptz DEFAULT NULL,
    expected_version bigint DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_adjust'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.adjust(bigint, text, bigint, text, text, timestamptz, bigint, text) IS
'manual correction with a required reason: a positive delta adds a lot, a negative one takes points like a redemption';

CREATE FUNCTION @extschema@.transfer(
    from_customer bigint, to_customer bigint, currency text, amount bigint,
    reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_transfer'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.transfer(bigint, bigint, text, bigint, text, text) IS
'move points to another customer of the programme, keeping each lot''s window; returns the transfer_out entry';

CREATE FUNCTION @extschema@.convert(
    customer bigint, from_currency text, to_currency text, rate numeric,
    reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_convert'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.convert(bigint, text, text, numeric, text, text) IS
'convert every point of one currency to another at rate (whole target points per whole source point), keeping lot windows; returns the source entry';

CREATE FUNCTION @extschema@.merge_wallets(source bigint, target bigint, reason text)
RETURNS integer
AS 'MODULE_PATHNAME', 'loyalty_merge_wallets'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.merge_wallets(bigint, bigint, text) IS
'move every wallet and lot of a customer being merged to the target (called by merge_customers); returns the wallets moved';

CREATE FUNCTION @extschema@.expire_due(batch_limit integer DEFAULT 10000,
                                       time_budget interval DEFAULT '10 seconds')
RETURNS integer
AS 'MODULE_PATHNAME', 'loyalty_expire_due'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.expire_due(integer, interval) IS
'record up to batch_limit expired lots as expire entries within time_budget, skipping wallets in use; returns how many';

CREATE FUNCTION @extschema@.release_expired_holds(batch_limit integer DEFAULT 10000,
                                                  time_budget interval DEFAULT '10 seconds')
RETURNS integer
AS 'MODULE_PATHNAME', 'loyalty_release_expired_holds'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.release_expired_holds(integer, interval) IS
'mark up to batch_limit holds past their deadline as expired, with release entries, skipping wallets in use; returns how many';

-- Reading: the effective state of every wallet at now().

CREATE VIEW @extschema@.balances AS
SELECT p.code AS program,
       w.customer_id,
       w.currency,
       COALESCE(l.effective, 0) AS balance,
       COALESCE(h.held, 0) AS held,
       GREATEST(COALESCE(l.effective, 0) OPERATOR(pg_catalog.-) COALESCE(h.held, 0), 0) AS available,
       COALESCE(l.pending, 0) AS pending,
       COALESCE(l.restricted, 0) AS restricted,
       COALESCE(l.expiring_30d, 0) AS expiring_30d,
       l.next_expiry_at,
       COALESCE(l.next_expiry_amount, 0) AS next_expiry_amount,
       w.balance AS stored_balance,
       w.version,
       w.updated_at
  FROM @extschema@.wallet w
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) w.program_id
  LEFT JOIN LATERAL (
      SELECT pg_catalog.sum(t.remaining) FILTER (WHERE t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                                                  AND (t.valid_to IS NULL OR t.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()))::bigint AS effective,
             pg_catalog.sum(t.remaining) FILTER (WHERE t.valid_from OPERATOR(pg_catalog.>) pg_catalog.now())::bigint AS pending,
             pg_catalog.sum(t.remaining) FILTER (WHERE t.restriction IS NOT NULL
                                                  AND t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                                                  AND (t.valid_to IS NULL OR t.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()))::bigint AS restricted,
             pg_catalog.sum(t.remaining) FILTER (WHERE t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                                                  AND t.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()
                                                  AND t.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '30 days'::interval))::bigint AS expiring_30d,
             pg_catalog.min(t.valid_to) FILTER (WHERE t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                                                 AND t.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()) AS next_expiry_at,
             pg_catalog.sum(t.remaining) FILTER (WHERE t.valid_to OPERATOR(pg_catalog.=) n.at
                                                  AND t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now())::bigint AS next_expiry_amount
        FROM @extschema@.lot t
        LEFT JOIN LATERAL (
            SELECT pg_catalog.min(x.valid_to) AS at FROM @extschema@.lot x
             WHERE x.customer_id OPERATOR(pg_catalog.=) w.customer_id
               AND x.currency OPERATOR(pg_catalog.=) w.currency
               AND x.live
               AND x.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
               AND x.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()) n ON true
       WHERE t.customer_id OPERATOR(pg_catalog.=) w.customer_id
         AND t.currency OPERATOR(pg_catalog.=) w.currency
         AND t.live) l ON true
  LEFT JOIN LATERAL (
      SELECT pg_catalog.sum(o.amount)::bigint AS held
        FROM @extschema@.hold o
       WHERE o.customer_id OPERATOR(pg_catalog.=) w.customer_id
         AND o.currency OPERATOR(pg_catalog.=) w.currency
         AND o.status OPERATOR(pg_catalog.=) 'active'
         AND o.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()) h ON true
 WHERE w.merged_into IS NULL;
COMMENT ON VIEW @extschema@.balances IS 'every wallet''s effective state at now(): what counts, what is held, pending and expiring';
COMMENT ON COLUMN @extschema@.balances.program IS 'programme code';
COMMENT ON COLUMN @extschema@.balances.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.balances.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.balances.balance IS 'effective balance: points of lots valid now, in minor units';
COMMENT ON COLUMN @extschema@.balances.held IS 'points reserved by holds whose deadline has not passed';
COMMENT ON COLUMN @extschema@.balances.available IS 'balance minus held: what a redemption may take (restricted lots only where they apply)';
COMMENT ON COLUMN @extschema@.balances.pending IS 'points of lots that start to count later (valid_from in the future)';
COMMENT ON COLUMN @extschema@.balances.restricted IS 'part of the balance in lots restricted to some products';
COMMENT ON COLUMN @extschema@.balances.expiring_30d IS 'part of the balance that expires within 30 days';
COMMENT ON COLUMN @extschema@.balances.next_expiry_at IS 'when the next lot of the balance expires (NULL: none expires)';
COMMENT ON COLUMN @extschema@.balances.next_expiry_amount IS 'points that expire at next_expiry_at';
COMMENT ON COLUMN @extschema@.balances.stored_balance IS 'the wallet row''s balance: includes pending points and expired points not yet recorded';
COMMENT ON COLUMN @extschema@.balances.version IS 'the wallet''s version (pass it as expected_version)';
COMMENT ON COLUMN @extschema@.balances.updated_at IS 'time of the last ledger entry';

CREATE FUNCTION @extschema@.balance(customer bigint, currency text DEFAULT NULL)
RETURNS TABLE (currency text, balance bigint, held bigint, available bigint, pending bigint,
               restricted bigint, next_expiry_at timestamptz, next_expiry_amount bigint,
               version bigint)
AS 'MODULE_PATHNAME', 'loyalty_balance'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.balance(bigint, text) IS
'effective balance, held, available, pending and next expiry of a customer, per currency of the programme';

CREATE FUNCTION public.loyalty_balance(customer bigint, currency text DEFAULT NULL)
RETURNS TABLE (currency text, balance bigint, held bigint, available bigint, pending bigint,
               restricted bigint, next_expiry_at timestamptz, next_expiry_amount bigint,
               version bigint)
AS 'MODULE_PATHNAME', 'loyalty_balance'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION public.loyalty_balance(bigint, text) IS 'loyalty.balance under its checkout name';

CREATE VIEW @extschema@.ledger_entries AS
SELECT p.code AS program,
       e.customer_id,
       (SELECT i.value FROM @extschema@.identifier i
         WHERE i.customer_id OPERATOR(pg_catalog.=) e.customer_id
           AND i.kind OPERATOR(pg_catalog.=) 'card' AND i.status OPERATOR(pg_catalog.=) 'active'
         ORDER BY i.created_at DESC LIMIT 1) AS card,
       (SELECT i.value FROM @extschema@.identifier i
         WHERE i.customer_id OPERATOR(pg_catalog.=) e.customer_id
           AND i.kind OPERATOR(pg_catalog.=) 'phone' AND i.status OPERATOR(pg_catalog.=) 'active'
         ORDER BY i.created_at DESC LIMIT 1) AS phone,
       e.currency, e.version, e.operation, e.amount, e.held_amount,
       e.balance_after, e.held_after, e.lot_id, e.hold_id, e.receipt_id,
       e.peer_customer_id, e.peer_currency, e.idempotency_key, e.actor, e.reason, e.created_at
  FROM @extschema@.ledger e
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) e.program_id;
COMMENT ON VIEW @extschema@.ledger_entries IS 'the ledger with the programme code and the customer''s current card and phone';
COMMENT ON COLUMN @extschema@.ledger_entries.program IS 'programme code';
COMMENT ON COLUMN @extschema@.ledger_entries.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.ledger_entries.card IS 'the customer''s newest active card';
COMMENT ON COLUMN @extschema@.ledger_entries.phone IS 'the customer''s newest active phone number (E.164)';
COMMENT ON COLUMN @extschema@.ledger_entries.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.ledger_entries.version IS 'the wallet''s version after the entry';
COMMENT ON COLUMN @extschema@.ledger_entries.operation IS 'what happened: accrue, redeem, hold, capture, release, expire, adjust, refund, convert, transfer_in, transfer_out';
COMMENT ON COLUMN @extschema@.ledger_entries.amount IS 'signed change of the stored balance';
COMMENT ON COLUMN @extschema@.ledger_entries.held_amount IS 'signed change of the held points';
COMMENT ON COLUMN @extschema@.ledger_entries.balance_after IS 'stored balance after the entry';
COMMENT ON COLUMN @extschema@.ledger_entries.held_after IS 'held points after the entry';
COMMENT ON COLUMN @extschema@.ledger_entries.lot_id IS 'the lot created or expired';
COMMENT ON COLUMN @extschema@.ledger_entries.hold_id IS 'the hold placed, captured or released';
COMMENT ON COLUMN @extschema@.ledger_entries.receipt_id IS 'the receipt, as the till names it';
COMMENT ON COLUMN @extschema@.ledger_entries.peer_customer_id IS 'the other customer of a transfer or merge';
COMMENT ON COLUMN @extschema@.ledger_entries.peer_currency IS 'the other currency of a conversion';
COMMENT ON COLUMN @extschema@.ledger_entries.idempotency_key IS 'the caller''s idempotency key';
COMMENT ON COLUMN @extschema@.ledger_entries.actor IS 'who made the change';
COMMENT ON COLUMN @extschema@.ledger_entries.reason IS 'why (required for adjustments)';
COMMENT ON COLUMN @extschema@.ledger_entries.created_at IS 'when';

CREATE VIEW @extschema@.liability AS
SELECT b.program,
       b.currency,
       pg_catalog.count(*) FILTER (WHERE b.balance OPERATOR(pg_catalog.>) 0) AS wallets,
       COALESCE(pg_catalog.sum(b.balance), 0)::bigint AS points,
       COALESCE(pg_catalog.sum(b.pending), 0)::bigint AS pending,
       COALESCE(pg_catalog.sum(b.held), 0)::bigint AS held,
       COALESCE(pg_catalog.sum(b.expiring_30d), 0)::bigint AS expiring_30d,
       pg_catalog.round(COALESCE(pg_catalog.sum(b.balance), 0)::numeric
                        OPERATOR(pg_catalog.*) c.money_per_unit
                        OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, c.exponent), p.money_exponent) AS money,
       p.money_currency
  FROM @extschema@.balances b
  JOIN @extschema@.program p ON p.code OPERATOR(pg_catalog.=) b.program
  JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) p.id
                             AND c.code OPERATOR(pg_catalog.=) b.currency
 GROUP BY b.program, b.currency, c.money_per_unit, c.exponent, p.money_exponent, p.money_currency;
COMMENT ON VIEW @extschema@.liability IS 'points the programme owes its customers, and their value in money, per programme and currency';
COMMENT ON COLUMN @extschema@.liability.program IS 'programme code';
COMMENT ON COLUMN @extschema@.liability.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.liability.wallets IS 'wallets with a positive effective balance';
COMMENT ON COLUMN @extschema@.liability.points IS 'sum of effective balances, in minor units';
COMMENT ON COLUMN @extschema@.liability.pending IS 'sum of pending points (not yet valid)';
COMMENT ON COLUMN @extschema@.liability.held IS 'sum of points reserved by live holds (part of points)';
COMMENT ON COLUMN @extschema@.liability.expiring_30d IS 'part of points that expires within 30 days';
COMMENT ON COLUMN @extschema@.liability.money IS 'value of points in the programme''s money (major units)';
COMMENT ON COLUMN @extschema@.liability.money_currency IS 'ISO 4217 code of money';

REVOKE ALL ON FUNCTION
    @extschema@.accrue(bigint, text, bigint, timestamptz, timestamptz, text, integer, text, text, text, text),
    @extschema@.redeem(bigint, text, bigint, text[], text, bigint, text, text),
    @extschema@.hold(bigint, text, bigint, interval, text[], text, bigint, text),
    @extschema@.capture(bigint, bigint, text),
    @extschema@.release(bigint, text),
    @extschema@.adjust(bigint, text, bigint, text, text, timestamptz, bigint, text),
    @extschema@.transfer(bigint, bigint, text, bigint, text, text),
    @extschema@.convert(bigint, text, text, numeric, text, text),
    @extschema@.merge_wallets(bigint, bigint, text),
    @extschema@.expire_due(integer, interval),
    @extschema@.release_expired_holds(integer, interval),
    @extschema@.balance(bigint, text),
    public.loyalty_balance(bigint, text)
FROM PUBLIC;

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
-- src/promotion.sql — the promotion catalogue (promotions, coupons, personal
-- offers, usage counters, segments), the programme's caps, the catalogue
-- generation, and loyalty.calculate (src/calculate.c).

-- Caps and rounding of a programme, read by calculate.
ALTER TABLE @extschema@.program
    ADD COLUMN min_line_price numeric NOT NULL DEFAULT 0
        CHECK (min_line_price OPERATOR(pg_catalog.>=) 0
               AND pg_catalog.scale(min_line_price) OPERATOR(pg_catalog.<=) money_exponent),
    ADD COLUMN discount_step numeric NOT NULL DEFAULT 0
        CHECK (discount_step OPERATOR(pg_catalog.>=) 0
               AND pg_catalog.scale(discount_step) OPERATOR(pg_catalog.<=) money_exponent),
    ADD COLUMN points_excluded @extschema@.condition,
    ADD COLUMN earn_weight numeric NOT NULL DEFAULT 1
        CHECK (earn_weight OPERATOR(pg_catalog.>=) 0 AND earn_weight OPERATOR(pg_catalog.<=) 1
               AND pg_catalog.scale(earn_weight) OPERATOR(pg_catalog.<=) 4);
COMMENT ON COLUMN @extschema@.program.min_line_price IS 'no line is discounted or paid with points below this amount of money (e.g. 1.00)';
COMMENT ON COLUMN @extschema@.program.discount_step IS 'percent discounts of a line are rounded down to a multiple of this amount of money (0: the minor unit)';
COMMENT ON COLUMN @extschema@.program.points_excluded IS 'lines that points may not pay for (e.g. category <@ ''tobacco''); NULL: none';
COMMENT ON COLUMN @extschema@.program.earn_weight IS 'weight of earned points, at their money value, against money off when calculate compares combinations (0 to 1)';

CREATE TABLE @extschema@.promotion (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id         bigint NOT NULL REFERENCES @extschema@.program (id),
    code               text NOT NULL
                       CHECK (code OPERATOR(pg_catalog.~) '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name               text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    status             text NOT NULL DEFAULT 'draft'
                       CHECK (status OPERATOR(pg_catalog.=) ANY ('{draft,active,paused,ended}'::text[])),
    active             tstzrange NOT NULL DEFAULT '(,)'
                       CHECK (NOT pg_catalog.isempty(active)),
    weekdays           smallint[]
                       CHECK (weekdays OPERATOR(pg_catalog.<@) '{1,2,3,4,5,6,7}'::smallint[]
                              AND pg_catalog.cardinality(weekdays) OPERATOR(pg_catalog.>) 0),
    hours              int4range
                       CHECK (hours OPERATOR(pg_catalog.<@) '[0,24)'::int4range
                              AND NOT pg_catalog.isempty(hours)),
    countries          text[] CHECK (pg_catalog.cardinality(countries) OPERATOR(pg_catalog.>) 0),
    cities             text[] CHECK (pg_catalog.cardinality(cities) OPERATOR(pg_catalog.>) 0),
    stores             text[] CHECK (pg_catalog.cardinality(stores) OPERATOR(pg_catalog.>) 0),
    channels           text[] CHECK (pg_catalog.cardinality(channels) OPERATOR(pg_catalog.>) 0),
    audience           text NOT NULL DEFAULT 'all'
                       CHECK (audience OPERATOR(pg_catalog.=) ANY
                              ('{all,tiers,segments,personal,birthday,coupon}'::text[])),
    tiers              text[],
    segments           text[],
    birthday_days      smallint CHECK (birthday_days BETWEEN 0 AND 366),
    line_condition     @extschema@.condition,
    receipt_condition  @extschema@.condition,
    benefit            jsonb NOT NULL,
    stacking_group     text CHECK (stacking_group OPERATOR(pg_catalog.<>) ''),
    priority           integer NOT NULL DEFAULT 0,
    exclusive          boolean NOT NULL DEFAULT false,
    limit_per_customer integer CHECK (limit_per_customer OPERATOR(pg_catalog.>) 0),
    limit_period       text CHECK (limit_period OPERATOR(pg_catalog.=) ANY ('{day,week,month,year,ever}'::text[])),
    limit_total        bigint CHECK (limit_total OPERATOR(pg_catalog.>) 0),
    budget             numeric CHECK (budget OPERATOR(pg_catalog.>) 0),
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (program_id, code),
    UNIQUE (program_id, id),
    CHECK ((audience OPERATOR(pg_catalog.=) 'tiers') OPERATOR(pg_catalog.=) (tiers IS NOT NULL)),
    CHECK ((audience OPERATOR(pg_catalog.=) 'segments') OPERATOR(pg_catalog.=) (segments IS NOT NULL)),
    CHECK ((audience OPERATOR(pg_catalog.=) 'birthday') OPERATOR(pg_catalog.=) (birthday_days IS NOT NULL)),
    CHECK ((limit_per_customer IS NULL) OPERATOR(pg_catalog.=) (limit_period IS NULL))
);
COMMENT ON TABLE @extschema@.promotion IS 'a benefit with the lines, receipts, customers, times and places it applies to';
COMMENT ON COLUMN @extschema@.promotion.code IS 'short name, unique in the programme, shown to tills and reports';
COMMENT ON COLUMN @extschema@.promotion.status IS 'draft, active, paused or ended: calculate uses active promotions only';
COMMENT ON COLUMN @extschema@.promotion.active IS 'the instants the promotion runs (default: always)';
COMMENT ON COLUMN @extschema@.promotion.weekdays IS 'ISO weekdays (1 Monday .. 7 Sunday) of the receipt''s local date; NULL: every day';
COMMENT ON COLUMN @extschema@.promotion.hours IS 'local hours of the receipt, e.g. [10,14) for 10:00 to 13:59; NULL: all day';
COMMENT ON COLUMN @extschema@.promotion.countries IS 'countries of the receipt''s store; NULL: anywhere';
COMMENT ON COLUMN @extschema@.promotion.cities IS 'cities of the receipt''s store; NULL: anywhere';
COMMENT ON COLUMN @extschema@.promotion.stores IS 'stores; NULL: every store';
COMMENT ON COLUMN @extschema@.promotion.channels IS 'sales channels (pos, web, app...); NULL: every channel';
COMMENT ON COLUMN @extschema@.promotion.audience IS 'all; tiers; segments; personal (customers with a personal offer); birthday (within birthday_days of the birthday); coupon (holders of one of its coupons)';
COMMENT ON COLUMN @extschema@.promotion.line_condition IS 'the lines the benefit applies to; NULL: every line';
COMMENT ON COLUMN @extschema@.promotion.receipt_condition IS 'a condition over receipt.* and customer.* that must hold; NULL: always';
COMMENT ON COLUMN @extschema@.promotion.benefit IS 'what the customer gets, e.g. {"kind": "percent_off", "percent": 10} (see docs/promotions.md)';
COMMENT ON COLUMN @extschema@.promotion.stacking_group IS 'promotions of one group never combine on a line (line benefits) or a receipt (receipt benefits); NULL: combines with all';
COMMENT ON COLUMN @extschema@.promotion.priority IS 'breaks ties between combinations of equal benefit: higher first';
COMMENT ON COLUMN @extschema@.promotion.exclusive IS 'applies alone or not at all';
COMMENT ON COLUMN @extschema@.promotion.limit_per_customer IS 'uses per customer in each limit_period';
COMMENT ON COLUMN @extschema@.promotion.limit_period IS 'day, week, month, year or ever';
COMMENT ON COLUMN @extschema@.promotion.limit_total IS 'uses over all customers';
COMMENT ON COLUMN @extschema@.promotion.budget IS 'money the promotion may give away over all customers';

CREATE INDEX promotion_active_idx ON @extschema@.promotion (program_id)
    WHERE status OPERATOR(pg_catalog.=) 'active';

CREATE TABLE @extschema@.coupon (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id   bigint NOT NULL,
    code         text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[[:alnum:]_-]{1,64}$'),
    promotion_id bigint NOT NULL,
    kind         text NOT NULL
                 CHECK (kind OPERATOR(pg_catalog.=) ANY ('{single_use,multi_use,personal}'::text[])),
    customer_id  bigint,
    uses         integer NOT NULL DEFAULT 0 CHECK (uses OPERATOR(pg_catalog.>=) 0),
    use_limit    integer CHECK (use_limit OPERATOR(pg_catalog.>) 0),
    valid        tstzrange NOT NULL DEFAULT '(,)',
    state        text NOT NULL DEFAULT 'issued'
                 CHECK (state OPERATOR(pg_catalog.=) ANY ('{issued,redeemed,cancelled}'::text[])),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    FOREIGN KEY (program_id, promotion_id) REFERENCES @extschema@.promotion (program_id, id),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id),
    CHECK ((kind OPERATOR(pg_catalog.=) 'personal') OPERATOR(pg_catalog.=) (customer_id IS NOT NULL)),
    CHECK (kind OPERATOR(pg_catalog.<>) 'single_use' OR use_limit IS NULL OR use_limit OPERATOR(pg_catalog.=) 1)
);
CREATE UNIQUE INDEX coupon_code_idx ON @extschema@.coupon (program_id, pg_catalog.lower(code));
CREATE INDEX coupon_promotion_idx ON @extschema@.coupon (promotion_id);
COMMENT ON TABLE @extschema@.coupon IS 'a code that unlocks a promotion: single use, multi use, or personal to one customer';
COMMENT ON COLUMN @extschema@.coupon.code IS 'the code as printed; unique in the programme regardless of case';
COMMENT ON COLUMN @extschema@.coupon.kind IS 'single_use (once), multi_use (use_limit times, or without limit), personal (only customer_id, use_limit times, once by default)';
COMMENT ON COLUMN @extschema@.coupon.uses IS 'how many committed receipts used the coupon';
COMMENT ON COLUMN @extschema@.coupon.use_limit IS 'most uses; NULL: once for single_use and personal, without limit for multi_use';
COMMENT ON COLUMN @extschema@.coupon.valid IS 'when the coupon may be used';
COMMENT ON COLUMN @extschema@.coupon.state IS 'issued; redeemed (used up); cancelled';

CREATE TABLE @extschema@.personal_offer (
    customer_id  bigint NOT NULL,
    promotion_id bigint NOT NULL,
    program_id   bigint NOT NULL,
    uses_left    integer CHECK (uses_left OPERATOR(pg_catalog.>=) 0),
    valid        tstzrange NOT NULL DEFAULT '(,)',
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (customer_id, promotion_id),
    FOREIGN KEY (program_id, promotion_id) REFERENCES @extschema@.promotion (program_id, id),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id)
);
COMMENT ON TABLE @extschema@.personal_offer IS 'a promotion offered to one customer: what a personal-audience promotion requires; read by customer only';
COMMENT ON COLUMN @extschema@.personal_offer.uses_left IS 'uses the customer has left; NULL: without limit';
COMMENT ON COLUMN @extschema@.personal_offer.valid IS 'when the offer may be used';

CREATE TABLE @extschema@.counter (
    promotion_id bigint NOT NULL REFERENCES @extschema@.promotion (id),
    customer_id  bigint NOT NULL,
    period_start date NOT NULL,
    uses         bigint NOT NULL DEFAULT 0 CHECK (uses OPERATOR(pg_catalog.>=) 0),
    money        bigint NOT NULL DEFAULT 0 CHECK (money OPERATOR(pg_catalog.>=) 0),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (promotion_id, customer_id, period_start)
);
COMMENT ON TABLE @extschema@.counter IS 'uses of a promotion per customer and period, and over all customers (customer_id 0)';
COMMENT ON COLUMN @extschema@.counter.customer_id IS 'the customer; 0 for the promotion''s global count and budget';
COMMENT ON COLUMN @extschema@.counter.period_start IS 'first day of the period (day, ISO week, month, year); -infinity for ever';
COMMENT ON COLUMN @extschema@.counter.uses IS 'receipts that used the promotion in the period';
COMMENT ON COLUMN @extschema@.counter.money IS 'discount given in the period, in minor units of money';

CREATE TABLE @extschema@.segment (
    program_id bigint NOT NULL REFERENCES @extschema@.program (id),
    code       text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name       text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    PRIMARY KEY (program_id, code)
);
COMMENT ON TABLE @extschema@.segment IS 'a named set of customers that promotions can address';

CREATE TABLE @extschema@.segment_member (
    customer_id bigint NOT NULL,
    program_id  bigint NOT NULL,
    segment     text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (customer_id, segment),
    FOREIGN KEY (program_id, segment) REFERENCES @extschema@.segment (program_id, code) ON DELETE CASCADE,
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id)
);
COMMENT ON TABLE @extschema@.segment_member IS 'the customers of a segment';

-- The catalogue generation: bumped by every statement that changes what the
-- backends compile (promotions, programmes, currencies); a backend compares
-- it with the generation it compiled and recompiles only when it moved.
-- The numbers come from a sequence, which a rollback does not give back: a
-- generation is never reused, so a catalogue compiled from changes that
-- were rolled back never passes for a committed one.
CREATE SEQUENCE @extschema@.catalog_generation_seq;
CREATE TABLE @extschema@.catalog_generation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL,
    changed_at timestamptz NOT NULL
);
INSERT INTO @extschema@.catalog_generation
VALUES (true, pg_catalog.nextval('@extschema@.catalog_generation_seq'), pg_catalog.now());
COMMENT ON TABLE @extschema@.catalog_generation IS 'one row: the generation of the compiled promotion catalogue';

CREATE FUNCTION @extschema@.catalog_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'loyalty_catalog_changed'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.catalog_changed() IS
'statement trigger: bump the catalogue generation so that every backend recompiles';

CREATE TRIGGER promotion_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.promotion
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();
CREATE TRIGGER program_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.program
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();
CREATE TRIGGER currency_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.currency
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();

CREATE FUNCTION @extschema@.catalog_generation()
RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT generation FROM @extschema@.catalog_generation $$;
COMMENT ON FUNCTION @extschema@.catalog_generation() IS
'the current generation of the promotion catalogue (calculate reports the one it used)';

-- A benefit is checked and written in its normal form when it is saved:
-- src/benefit.c reads the same form when the catalogue is compiled.
CREATE FUNCTION @extschema@.normalize_benefit(benefit jsonb, program_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_normalize_benefit'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.normalize_benefit(jsonb, bigint) IS
'check a promotion''s benefit against its programme and return it in normal form; errors name the field';

CREATE FUNCTION @extschema@.promotion_check()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A restore (pg_dump scripts turn check_function_bodies off) writes
    -- benefits that were checked when first saved, possibly before the
    -- currencies they name: they are kept as they are.
    IF pg_catalog.current_setting('check_function_bodies') OPERATOR(pg_catalog.<>) 'off' THEN
        NEW.benefit := @extschema@.normalize_benefit(NEW.benefit, NEW.program_id);
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        NEW.updated_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER promotion_check
    BEFORE INSERT OR UPDATE ON @extschema@.promotion
    FOR EACH ROW EXECUTE FUNCTION @extschema@.promotion_check();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.promotion', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.promotion', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.coupon', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.personal_offer', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.counter', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.segment', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.segment_member', '');

-- The receipt calculation (src/calculate.c): read-only, stateless.
CREATE FUNCTION @extschema@.calculate(receipt jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_calculate'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.calculate(jsonb) IS
'the best discounts, points to spend and points earned for a receipt, spread over its lines; writes nothing';

CREATE FUNCTION public.loyalty_calculate(receipt jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_calculate'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION public.loyalty_calculate(jsonb) IS 'loyalty.calculate under its checkout name';

REVOKE ALL ON FUNCTION
    @extschema@.catalog_changed(),
    @extschema@.normalize_benefit(jsonb, bigint),
    @extschema@.calculate(jsonb),
    public.loyalty_calculate(jsonb)
FROM PUBLIC;

-- src/jobs.sql — the background jobs: plain functions, each safe to run
-- concurrently and after a failover (each works from what is due now),
-- scheduled with pg_cron by loyalty.schedule_jobs() under stable names, and
-- watched through the view loyalty.job_health.

-- The jobs: name (the pg_cron job name), schedule (cron syntax), the
-- command, and what it does.  Each command does what is due now within a
-- time budget under the minute, so runs do not pile up.
CREATE FUNCTION @extschema@.jobs()
RETURNS TABLE (job text, schedule text, command text, description text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('loyalty.expire_due', '* * * * *',
            'SELECT loyalty.expire_due(10000, ''50 seconds'')',
            'records expired lots as expire entries in the ledger'),
           ('loyalty.release_expired_holds', '* * * * *',
            'SELECT loyalty.release_expired_holds(10000, ''50 seconds'')',
            'marks holds past their deadline expired, with release entries')
$$;
COMMENT ON FUNCTION @extschema@.jobs() IS
'the background jobs: pg_cron name, schedule, command and what each does';

-- pg_cron keeps its jobs in one database (cron.database_name); the jobs are
-- scheduled there, to run in it.
CREATE FUNCTION @extschema@.require_pg_cron()
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regproc('cron.schedule_in_database') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', pg_catalog.current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set shared_preload_libraries = ''pg_cron'' and cron.database_name = '''
                         || pg_catalog.current_database()
                         || ''', restart, run CREATE EXTENSION pg_cron in this database, then call this again.'
                         || ' Without pg_cron, run the functions of loyalty.jobs() from any scheduler.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.require_pg_cron() IS
'fail with SQLSTATE 55000 and a hint unless pg_cron is installed in this database';

CREATE FUNCTION @extschema@.schedule_jobs()
RETURNS TABLE (job text, schedule text, jobid bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.require_pg_cron();
    -- schedule_in_database replaces a job of the same name and user: an upsert
    RETURN QUERY
    SELECT j.job, j.schedule,
           cron.schedule_in_database(j.job, j.schedule, j.command, pg_catalog.current_database())
      FROM @extschema@.jobs() j;
END
$$;
COMMENT ON FUNCTION @extschema@.schedule_jobs() IS
'schedule every job of loyalty.jobs() with pg_cron under its stable name (again: replaces them); needs pg_cron in this database';

CREATE FUNCTION @extschema@.unschedule_jobs()
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := 0;
    j record;
BEGIN
    PERFORM @extschema@.require_pg_cron();
    FOR j IN SELECT c.jobid FROM cron.job c JOIN @extschema@.jobs() d ON d.job OPERATOR(pg_catalog.=) c.jobname
              WHERE c.username OPERATOR(pg_catalog.=) CURRENT_USER
    LOOP
        PERFORM cron.unschedule(j.jobid);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.unschedule_jobs() IS
'remove the jobs of loyalty.jobs() from pg_cron; returns how many were scheduled';

-- Each job with its last run (from pg_cron, when it is here) and its backlog
-- (from the extension's tables): what is due now and how long it has waited.
CREATE FUNCTION @extschema@.job_health_rows()
RETURNS TABLE (job text, schedule text, scheduled boolean, active boolean,
               last_start timestamptz, last_duration interval, last_status text,
               last_message text, runs_failed_last_day bigint,
               backlog bigint, oldest_due_age interval)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    due record;
BEGIN
    FOR job, schedule IN SELECT d.job, d.schedule FROM @extschema@.jobs() d ORDER BY d.job LOOP
        scheduled := NULL;
        active := NULL;
        last_start := NULL;
        last_duration := NULL;
        last_status := NULL;
        last_message := NULL;
        runs_failed_last_day := NULL;
        IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
            EXECUTE $q$
                SELECT j.jobid IS NOT NULL, j.active, r.start_time,
                       r.end_time OPERATOR(pg_catalog.-) r.start_time, r.status, r.return_message,
                       (SELECT pg_catalog.count(*) FROM cron.job_run_details f
                         WHERE f.jobid OPERATOR(pg_catalog.=) j.jobid
                           AND f.status OPERATOR(pg_catalog.=) 'failed'
                           AND f.start_time OPERATOR(pg_catalog.>)
                               (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day'))
                  FROM (SELECT 1) one
                  LEFT JOIN cron.job j ON j.jobname OPERATOR(pg_catalog.=) $1
                       AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
                  LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details d
                                      WHERE d.jobid OPERATOR(pg_catalog.=) j.jobid
                                      ORDER BY d.runid DESC LIMIT 1) r ON true
                 ORDER BY j.jobid DESC NULLS LAST LIMIT 1 $q$
              INTO scheduled, active, last_start, last_duration, last_status, last_message,
                   runs_failed_last_day
             USING job;
        END IF;
        -- each job's own backlog; a job without one shows NULL
        IF job OPERATOR(pg_catalog.=) 'loyalty.expire_due' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(l.valid_to) INTO due
              FROM @extschema@.lot l
             WHERE l.live AND l.valid_to IS NOT NULL AND l.valid_to OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_expired_holds' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(h.expires_at) INTO due
              FROM @extschema@.hold h
             WHERE h.status OPERATOR(pg_catalog.=) 'active'
               AND h.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSE
            SELECT NULL::bigint AS count, NULL::timestamptz AS min INTO due;
        END IF;
        backlog := due.count;
        oldest_due_age := pg_catalog.now() OPERATOR(pg_catalog.-) due.min;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.job_health_rows() IS 'the rows of the view loyalty.job_health';

CREATE VIEW @extschema@.job_health AS
SELECT * FROM @extschema@.job_health_rows();
COMMENT ON VIEW @extschema@.job_health IS
'each job: whether pg_cron has it, its last run (start, duration, status, message), failed runs in the last day, and its backlog (rows due now, age of the oldest)';
COMMENT ON COLUMN @extschema@.job_health.job IS 'the pg_cron job name';
COMMENT ON COLUMN @extschema@.job_health.schedule IS 'the schedule schedule_jobs() gives it (cron syntax)';
COMMENT ON COLUMN @extschema@.job_health.scheduled IS 'pg_cron has the job for this database; NULL without pg_cron';
COMMENT ON COLUMN @extschema@.job_health.active IS 'pg_cron''s active flag of the job';
COMMENT ON COLUMN @extschema@.job_health.last_start IS 'start of the last run';
COMMENT ON COLUMN @extschema@.job_health.last_duration IS 'how long the last run took; NULL while it runs';
COMMENT ON COLUMN @extschema@.job_health.last_status IS 'pg_cron''s status of the last run: succeeded, failed, running...';
COMMENT ON COLUMN @extschema@.job_health.last_message IS 'what the last run returned, or its error';
COMMENT ON COLUMN @extschema@.job_health.runs_failed_last_day IS 'failed runs in the last 24 hours';
COMMENT ON COLUMN @extschema@.job_health.backlog IS 'rows due now that the job has not done: lots past valid_to, holds past expires_at';
COMMENT ON COLUMN @extschema@.job_health.oldest_due_age IS 'how long the oldest of them has been due; NULL when none';
