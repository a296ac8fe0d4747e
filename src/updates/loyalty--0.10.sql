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
-- src/access.sql — tenants: which programmes a role reaches (src/access.c).
-- The roles, their grants and the row-level security that use it are in
-- src/roles.sql, at the end of the install script.

-- Who makes a change: the role in effect (the login role, or the one chosen
-- by SET ROLE), also inside the functions that run as their owner.
CREATE FUNCTION @extschema@.actor()
RETURNS text
AS 'MODULE_PATHNAME', 'loyalty_actor'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.actor() IS
'the role in effect (login role or SET ROLE), recorded as the actor of changes';

-- Bindings of roles to programmes.
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
SELECT pg_catalog.pg_extension_config_dump('@extschema@.program_access', '');

CREATE FUNCTION @extschema@.access_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'loyalty_access_changed'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.access_changed() IS
'trigger: the bindings changed; every session reads them again at its next check';
CREATE TRIGGER program_access_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.program_access
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.access_changed();

CREATE FUNCTION @extschema@.program_open(program_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'loyalty_program_open'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.program_open(bigint) IS
'whether the current role reaches the programme (NULL: every programme); row-level security and the views use it';

CREATE FUNCTION @extschema@.require_program(program_id bigint, object text)
RETURNS void
AS 'MODULE_PATHNAME', 'loyalty_require_program'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.require_program(bigint, text) IS
'raise 42501 (permission denied for object) unless the current role reaches the programme';

CREATE FUNCTION @extschema@.require_every_program(what text)
RETURNS void
AS 'MODULE_PATHNAME', 'loyalty_require_every_program'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.require_every_program(text) IS
'raise 42501 (permission denied for what) unless the current role reaches every programme';

-- The programme a binding names, as an id (NULL: every programme), once the
-- caller is shown to reach it: a role binds others only to what it reaches.
CREATE FUNCTION @extschema@.binding_program(program text, role pg_catalog.regrole)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF program IS NULL THEN
        PERFORM @extschema@.require_every_program('binding or unbinding a role for every programme');
        RETURN NULL;
    END IF;
    RETURN @extschema@.program_id(program);
END
$$;
COMMENT ON FUNCTION @extschema@.binding_program(text, pg_catalog.regrole) IS
'the id of the programme a binding names (NULL: every programme), if the caller reaches it (internal: grant_program, revoke_program)';

-- Bind a role to a programme.  Returns false if the binding was there.
CREATE FUNCTION @extschema@.grant_program(program text, role pg_catalog.regrole)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.program_access (role, program_id)
    VALUES (role, @extschema@.binding_program(program, role))
        ON CONFLICT ON CONSTRAINT program_access_key DO NOTHING;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.grant_program(text, pg_catalog.regrole) IS
'bind a role to a programme (NULL: every programme); its members reach it too; false if already bound';

-- Undo a binding.  Returns false if there was none.
CREATE FUNCTION @extschema@.revoke_program(program text, role pg_catalog.regrole)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint := @extschema@.binding_program(program, role);
BEGIN
    DELETE FROM @extschema@.program_access a
     WHERE a.role OPERATOR(pg_catalog.=) revoke_program.role
       AND a.program_id IS NOT DISTINCT FROM pid;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_program(text, pg_catalog.regrole) IS
'remove the binding of a role to a programme (NULL: the binding to every programme); false if there was none';

REVOKE ALL ON FUNCTION
    @extschema@.access_changed(),
    @extschema@.binding_program(text, pg_catalog.regrole),
    @extschema@.grant_program(text, pg_catalog.regrole),
    @extschema@.revoke_program(text, pg_catalog.regrole)
FROM PUBLIC;
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
    actor       text NOT NULL DEFAULT @extschema@.actor(),
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX customer_log_customer_idx ON @extschema@.customer_log (customer_id, created_at);
COMMENT ON TABLE @extschema@.customer_log IS 'who changed a customer''s account or identifiers, when and why';
COMMENT ON COLUMN @extschema@.customer_log.actor IS 'the role that made the change (login role, or the one set by SET ROLE)';

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
    PERFORM @extschema@.require_program(pid, pg_catalog.format('programme "%s"', program));
    RETURN pid;
END
$$;
COMMENT ON FUNCTION @extschema@.program_id(text) IS 'id of the programme with this code; an error if there is none or the role does not reach it';

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
COMMENT ON COLUMN @extschema@.ledger.actor IS 'who made the change: the role in effect (login role, or the one set by SET ROLE), or the actor named by an adjustment';

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
 WHERE e.lot_ids IS NOT NULL
   AND @extschema@.program_open(e.program_id);
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

-- The ledger is history: nobody rewrites it.  The trigger's argument, if
-- any, is the hint (what to do instead).
CREATE FUNCTION @extschema@.forbid_history_change()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% of loyalty.% is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = COALESCE(TG_ARGV[0], 'Correct a balance with loyalty.adjust, which appends an entry.');
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
 WHERE w.merged_into IS NULL
   AND @extschema@.program_open(w.program_id);
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
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) e.program_id
 WHERE @extschema@.program_open(e.program_id);
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
    issued_by    text DEFAULT @extschema@.actor(),
    issue_reason text,
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
COMMENT ON COLUMN @extschema@.coupon.issued_by IS 'the role that issued it (loyalty.actor()); NULL for coupons issued before 0.10';
COMMENT ON COLUMN @extschema@.coupon.issue_reason IS 'why it was issued (a campaign, a complaint), as the issuer wrote it';

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

-- src/receipt.sql — committed receipts and their lines (partitioned by the
-- month of the commit), the register of receipt ids that makes commit
-- idempotent, the accrual queue, and commit, cancel and release_accruals.
--
-- commit writes what calculate shows: it locks the customer's wallets,
-- calculates again, compares with what the till saw, and then writes the
-- receipt, the redemption of exactly the lots calculate chose
-- (loyalty.spend_lots), the coupon, offer and counter uses, and the accrual,
-- at once or queued for the programme's accrual_delay.  Ledger entries of a
-- receipt carry idempotency keys derived from its id
-- ('loyalty:redeem:<receipt>:<currency>', 'loyalty:accrual:<receipt>:<n>'),
-- so that cancel finds them and a second release of an accrual is a replay.

-- One row per committed receipt id: the idempotency register.  A
-- partitioned table cannot hold a unique key without its partition key, so
-- the id is unique here, and the receipt is found by (id, committed_at).
CREATE TABLE @extschema@.receipt_key (
    program_id   bigint NOT NULL,
    receipt_id   text NOT NULL,
    committed_at timestamptz NOT NULL,
    digest       bytea NOT NULL,
    PRIMARY KEY (program_id, receipt_id)
);
COMMENT ON TABLE @extschema@.receipt_key IS 'every committed receipt id of a programme, once: what makes commit idempotent';
COMMENT ON COLUMN @extschema@.receipt_key.committed_at IS 'when the receipt was committed: its partition in loyalty.receipt';
COMMENT ON COLUMN @extschema@.receipt_key.digest IS 'SHA-256 of the receipt document as committed: a replay must send the same document';

CREATE TABLE @extschema@.receipt (
    program_id     bigint NOT NULL,
    receipt_id     text NOT NULL,
    committed_at   timestamptz NOT NULL,
    customer_id    bigint,
    status         text NOT NULL DEFAULT 'committed'
                   CHECK (status OPERATOR(pg_catalog.=) ANY ('{committed,partly_refunded,refunded,cancelled}'::text[])),
    at             timestamptz NOT NULL,
    store          text,
    amount         bigint NOT NULL,
    discount       bigint NOT NULL,
    points_money   bigint NOT NULL,
    to_pay         bigint NOT NULL,
    points_spent   jsonb NOT NULL,
    points_earned  jsonb NOT NULL,
    accruals       jsonb NOT NULL,
    coupons        text[] NOT NULL,
    counters       jsonb NOT NULL,
    offers         bigint[] NOT NULL,
    answer         jsonb NOT NULL,
    actor          text NOT NULL,
    cancelled_at   timestamptz,
    cancel_reason  text,
    cancel_result  jsonb,
    PRIMARY KEY (program_id, receipt_id, committed_at)
) PARTITION BY RANGE (committed_at);
-- The answer is some kilobytes of JSON: lz4 compresses it in a fraction of
-- pglz's time.
ALTER TABLE @extschema@.receipt ALTER COLUMN answer SET COMPRESSION lz4;
CREATE INDEX receipt_customer_idx ON @extschema@.receipt (customer_id, committed_at);
COMMENT ON TABLE @extschema@.receipt IS 'a committed receipt: its totals, what it spent, earned and used, and the answer commit gave; partitioned by the month of committed_at';
COMMENT ON COLUMN @extschema@.receipt.receipt_id IS 'the receipt id the till sent, unique in the programme';
COMMENT ON COLUMN @extschema@.receipt.committed_at IS 'the commit''s transaction time (the partition key)';
COMMENT ON COLUMN @extschema@.receipt.customer_id IS 'the customer; NULL for an anonymous receipt or an identifier that found nobody';
COMMENT ON COLUMN @extschema@.receipt.status IS 'committed, partly_refunded, refunded (every line returned) or cancelled';
COMMENT ON COLUMN @extschema@.receipt.at IS 'the receipt''s time as calculated';
COMMENT ON COLUMN @extschema@.receipt.amount IS 'what the lines come to before discounts, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt.discount IS 'discounts, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt.points_money IS 'money paid with points, in minor units';
COMMENT ON COLUMN @extschema@.receipt.to_pay IS 'what the customer paid in money, in minor units';
COMMENT ON COLUMN @extschema@.receipt.points_spent IS 'points spent per currency, in minor units of the currency: {"bonus": 500}';
COMMENT ON COLUMN @extschema@.receipt.points_earned IS 'points earned per currency, in minor units, bonus lots included';
COMMENT ON COLUMN @extschema@.receipt.accruals IS 'the accruals: [{key, currency, amount, kind, valid_for, restriction}], released at once or queued';
COMMENT ON COLUMN @extschema@.receipt.coupons IS 'the coupons the receipt used (as sent)';
COMMENT ON COLUMN @extschema@.receipt.counters IS 'the usage counters it counted in: [{promotion_id, customer_id, period_start, money}]';
COMMENT ON COLUMN @extschema@.receipt.offers IS 'promotions whose personal offer it used';
COMMENT ON COLUMN @extschema@.receipt.answer IS 'the answer commit returned, which a replay returns again';
COMMENT ON COLUMN @extschema@.receipt.actor IS 'the role that committed it (login role, or the one set by SET ROLE)';

CREATE TABLE @extschema@.receipt_line (
    program_id     bigint NOT NULL,
    receipt_id     text NOT NULL,
    committed_at   timestamptz NOT NULL,
    line           integer NOT NULL,
    sku            text,
    qty            numeric NOT NULL,
    price          bigint NOT NULL,
    amount         bigint NOT NULL,
    discount       bigint NOT NULL,
    points_money   bigint NOT NULL,
    to_pay         bigint NOT NULL,
    discounts      jsonb NOT NULL,
    points_paid    jsonb NOT NULL,
    points_earned  jsonb NOT NULL,
    refunded_qty   numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (program_id, receipt_id, committed_at, line)
) PARTITION BY RANGE (committed_at);
COMMENT ON TABLE @extschema@.receipt_line IS 'a line of a committed receipt with its discounts, points paid and points earned; partitioned like loyalty.receipt';
COMMENT ON COLUMN @extschema@.receipt_line.line IS 'the line number of the receipt';
COMMENT ON COLUMN @extschema@.receipt_line.price IS 'price per unit, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt_line.amount IS 'price times quantity, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.discount IS 'discounts on the line, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.points_money IS 'money of the line paid with points, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.to_pay IS 'what the line cost in money, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.discounts IS 'discounts by promotion, as calculate gave them';
COMMENT ON COLUMN @extschema@.receipt_line.points_paid IS 'the lots that paid the line, as calculate gave them';
COMMENT ON COLUMN @extschema@.receipt_line.points_earned IS 'points the line earned per currency, as calculate gave them';
COMMENT ON COLUMN @extschema@.receipt_line.refunded_qty IS 'quantity of the line returned by refunds so far';

CREATE TABLE @extschema@.receipt_refund (
    program_id       bigint NOT NULL,
    receipt_id       text NOT NULL,
    refund_id        text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    request          jsonb NOT NULL,
    lines            jsonb NOT NULL,
    money            bigint NOT NULL,
    money_withheld   bigint NOT NULL,
    points_returned  jsonb NOT NULL,
    points_taken     jsonb NOT NULL,
    debt             jsonb NOT NULL,
    result           jsonb NOT NULL,
    actor            text NOT NULL,
    reason           text,
    PRIMARY KEY (program_id, receipt_id, refund_id)
);
COMMENT ON TABLE @extschema@.receipt_refund IS 'a return of some lines of a committed receipt: what went back in money and points';
COMMENT ON COLUMN @extschema@.receipt_refund.refund_id IS 'the return''s own id, unique per receipt: a repeated refund with it is a replay';
COMMENT ON COLUMN @extschema@.receipt_refund.request IS 'the lines argument as sent: a replay must send the same';
COMMENT ON COLUMN @extschema@.receipt_refund.lines IS 'the lines returned: [{line, qty}] as requested, qty filled in';
COMMENT ON COLUMN @extschema@.receipt_refund.money IS 'money to give back, in minor units, after money_withheld';
COMMENT ON COLUMN @extschema@.receipt_refund.money_withheld IS 'money kept for earned points already spent (programme refund_shortfall = money), in minor units';
COMMENT ON COLUMN @extschema@.receipt_refund.points_returned IS 'points paid by the lines given back to their lots, per currency';
COMMENT ON COLUMN @extschema@.receipt_refund.points_taken IS 'points the lines earned taken back (from the queue or the wallet), per currency';
COMMENT ON COLUMN @extschema@.receipt_refund.debt IS 'points the wallet could not give back, owed per currency (programme refund_shortfall = debt)';

-- What a refund or cancel does when the points a receipt earned were spent:
-- record a debt that the next accruals pay first, or keep their value from
-- the money given back.
ALTER TABLE @extschema@.program
    ADD COLUMN refund_shortfall text NOT NULL DEFAULT 'debt'
    CHECK (refund_shortfall OPERATOR(pg_catalog.=) ANY ('{debt,money}'::text[]));
COMMENT ON COLUMN @extschema@.program.refund_shortfall IS 'when returned goods earned points the customer already spent: debt (owed, paid by the next accruals) or money (their value kept from the refund)';
ALTER TABLE @extschema@.wallet
    ADD COLUMN debt bigint NOT NULL DEFAULT 0 CHECK (debt OPERATOR(pg_catalog.>=) 0);
COMMENT ON COLUMN @extschema@.wallet.debt IS 'points owed by refunds of receipts whose earned points were spent: the next accruals pay it first';

-- Rows of months that have no partition yet land in the default partitions;
-- loyalty.create_partitions() (a daily job) keeps months ahead and moves
-- such rows into their month.
CREATE TABLE @extschema@.receipt_default PARTITION OF @extschema@.receipt DEFAULT;
CREATE TABLE @extschema@.receipt_line_default PARTITION OF @extschema@.receipt_line DEFAULT;

CREATE TABLE @extschema@.accrual_queue (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id      bigint NOT NULL,
    receipt_id      text NOT NULL,
    customer_id     bigint NOT NULL,
    currency        text NOT NULL,
    amount          bigint NOT NULL CHECK (amount OPERATOR(pg_catalog.>) 0),
    kind            text NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    valid_for       interval CHECK (valid_for OPERATOR(pg_catalog.>) '0'::interval),
    restriction     text,
    idempotency_key text NOT NULL,
    release_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000,
        autovacuum_vacuum_cost_delay = 0);
-- The claim reads this index from its start: rows released are deleted, and
-- the index entries they leave are marked dead by the scans that pass them
-- and removed by the table's eager autovacuum.
CREATE INDEX accrual_queue_due_idx ON @extschema@.accrual_queue (release_at, id);
CREATE INDEX accrual_queue_receipt_idx ON @extschema@.accrual_queue (program_id, receipt_id);
COMMENT ON TABLE @extschema@.accrual_queue IS 'accruals waiting for release_at: released as lots by loyalty.release_accruals, removed by cancel';
COMMENT ON COLUMN @extschema@.accrual_queue.amount IS 'points in minor units of the currency';
COMMENT ON COLUMN @extschema@.accrual_queue.kind IS 'kind of the lot to create: regular, or promo for a bonus lot';
COMMENT ON COLUMN @extschema@.accrual_queue.valid_for IS 'the lot expires this long after its release (NULL: never)';
COMMENT ON COLUMN @extschema@.accrual_queue.restriction IS 'the lot''s restriction (a condition), or NULL';
COMMENT ON COLUMN @extschema@.accrual_queue.idempotency_key IS 'key of the accrue entry the release writes';
COMMENT ON COLUMN @extschema@.accrual_queue.release_at IS 'when the points are released';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.receipt_key', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.receipt_default', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.receipt_line_default', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.accrual_queue', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.receipt_refund', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.accrual_queue', 'id'), '');

-- The sweeps read what is due in (deadline, id) order, a chunk at a time:
-- with the deadline alone in the index, lots that expire at the same
-- instant (the end of a month, a campaign's last day) were sorted anew for
-- every chunk.
DROP INDEX @extschema@.lot_due_idx;
CREATE INDEX lot_due_idx ON @extschema@.lot (valid_to, id)
    WHERE live AND valid_to IS NOT NULL;
DROP INDEX @extschema@.hold_due_idx;
CREATE INDEX hold_due_idx ON @extschema@.hold (expires_at, id)
    WHERE status OPERATOR(pg_catalog.=) 'active';

-- The ledger operations of receipts (src/receipt.c)

CREATE FUNCTION @extschema@.spend_lots(customer bigint, currency text, lot_ids bigint[],
                                       amounts bigint[], receipt text DEFAULT NULL,
                                       idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_spend_lots'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.spend_lots(bigint, text, bigint[], bigint[], text, text) IS
'spend exactly amounts[i] from lot lot_ids[i] (what calculate chose); 40001 if the lots no longer hold them';

CREATE FUNCTION @extschema@.return_lots(customer bigint, currency text, lot_ids bigint[],
                                        amounts bigint[], receipt text DEFAULT NULL,
                                        idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_return_lots'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.return_lots(bigint, text, bigint[], bigint[], text, text) IS
'give amounts[i] back to lot lot_ids[i] with a refund entry, keeping the lot''s window';

CREATE FUNCTION @extschema@.take_back(customer bigint, currency text, lot bigint, amount bigint,
                                      receipt text DEFAULT NULL, idempotency_key text DEFAULT NULL,
                                      shortfall text DEFAULT 'error')
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_take_back'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.take_back(bigint, text, bigint, bigint, text, text, text) IS
'take back an accrual with a refund entry: from its lot as far as it holds, the rest from the wallet''s other points; what is missing fails (error), is owed (debt) or is left to the caller (forgive)';

CREATE FUNCTION @extschema@.release_accruals(time_budget interval DEFAULT '50 seconds')
RETURNS bigint
AS 'MODULE_PATHNAME', 'loyalty_release_accruals'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.release_accruals(interval) IS
'release the due accruals of the queue as lots, in chunks claimed with SKIP LOCKED, until none is due or time_budget is spent; returns how many';

-- Money and points in the answer are numbers in major units; stored, they
-- are integers of minor units.  The small helpers below name everything
-- with its schema and set no search_path, so that the planner inlines them.
CREATE FUNCTION @extschema@.minor_units(value numeric, exponent integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT (value OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric, exponent))::bigint $$;
COMMENT ON FUNCTION @extschema@.minor_units(numeric, integer) IS
'a number of major units as an integer of minor units (12.34 with exponent 2 is 1234)';

-- Minor units as a number of major units with the currency's decimals
CREATE FUNCTION @extschema@.major_units(value bigint, exponent integer)
RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT pg_catalog.round(value::numeric OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, exponent), exponent) $$;
COMMENT ON FUNCTION @extschema@.major_units(bigint, integer) IS
'an integer of minor units as a number of major units (1234 with exponent 2 is 12.34)';

-- A part's share of total when a quantity goes from prev to upto of qty:
-- cumulative, so that the parts of one total add up to it exactly.
CREATE FUNCTION @extschema@.share(total bigint, prev numeric, upto numeric, qty numeric)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT (pg_catalog.floor(total::numeric OPERATOR(pg_catalog.*) upto OPERATOR(pg_catalog./) qty)
            OPERATOR(pg_catalog.-) pg_catalog.floor(total::numeric OPERATOR(pg_catalog.*) prev OPERATOR(pg_catalog./) qty))::bigint
$$;
COMMENT ON FUNCTION @extschema@.share(bigint, numeric, numeric, numeric) IS
'the share of total that quantity upto of qty carries beyond quantity prev (floors of cumulative shares: the parts add up)';

-- The money, in minor units, that points of a currency are worth (rounded up)
CREATE FUNCTION @extschema@.points_money(pid bigint, currency text, points bigint)
RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.ceil(points::numeric OPERATOR(pg_catalog.*) k.money_per_unit
                           OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric, p.money_exponent)
                           OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, k.exponent))::bigint
      FROM @extschema@.currency k JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) k.program_id
     WHERE k.program_id OPERATOR(pg_catalog.=) pid AND k.code OPERATOR(pg_catalog.=) currency
$$;
COMMENT ON FUNCTION @extschema@.points_money(bigint, text, bigint) IS
'what points (minor units of a currency) are worth in minor units of the programme''s money, rounded up';

-- First day of a promotion's limit period that holds a date (as calculate counts)
CREATE FUNCTION @extschema@.period_start(period text, day date)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE period
           WHEN 'day' THEN day
           WHEN 'week' THEN day OPERATOR(pg_catalog.-) (pg_catalog.date_part('isodow', day)::integer OPERATOR(pg_catalog.-) 1)
           WHEN 'month' THEN pg_catalog.date_trunc('month', day::timestamp)::date
           WHEN 'year' THEN pg_catalog.date_trunc('year', day::timestamp)::date
           ELSE '-infinity'::date END
$$;
COMMENT ON FUNCTION @extschema@.period_start(text, date) IS
'first day of the limit period (day, week, month, year; else -infinity) that holds day';

-- What changed between the calculation the till saw and the one commit made:
-- the parts of the answer that decide money and points.
CREATE FUNCTION @extschema@.answer_changes(seen jsonb, now_answer jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
    SELECT COALESCE(pg_catalog.array_agg(v.part ORDER BY v.ord), '{}')
      FROM (VALUES (1, 'totals', seen OPERATOR(pg_catalog.->) 'totals', now_answer OPERATOR(pg_catalog.->) 'totals'),
                   (2, 'lines', seen OPERATOR(pg_catalog.->) 'lines', now_answer OPERATOR(pg_catalog.->) 'lines'),
                   (3, 'promotions.applied', seen OPERATOR(pg_catalog.#>) '{promotions,applied}',
                       now_answer OPERATOR(pg_catalog.#>) '{promotions,applied}'),
                   (4, 'coupons', seen OPERATOR(pg_catalog.->) 'coupons', now_answer OPERATOR(pg_catalog.->) 'coupons'),
                   (5, 'gifts', seen OPERATOR(pg_catalog.->) 'gifts', now_answer OPERATOR(pg_catalog.->) 'gifts'),
                   (6, 'bonus_lots', seen OPERATOR(pg_catalog.->) 'bonus_lots', now_answer OPERATOR(pg_catalog.->) 'bonus_lots'))
           AS v (ord, part, a, b)
     WHERE v.a IS DISTINCT FROM v.b
$$;
COMMENT ON FUNCTION @extschema@.answer_changes(jsonb, jsonb) IS
'the parts of two answers of calculate that differ: totals, lines, promotions.applied, coupons, gifts, bonus_lots';

-- Replaying a committed receipt id: the same document gets the stored answer
CREATE FUNCTION @extschema@.receipt_replay(pid bigint, rid text, digest bytea)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k @extschema@.receipt_key;
    r record;
BEGIN
    SELECT * INTO STRICT k FROM @extschema@.receipt_key
     WHERE program_id OPERATOR(pg_catalog.=) pid AND receipt_id OPERATOR(pg_catalog.=) rid;
    IF k.digest OPERATOR(pg_catalog.<>) digest THEN
        RAISE EXCEPTION 'receipt "%" was committed with other content', rid
            USING ERRCODE = '23L02',
                  DETAIL = pg_catalog.format('It was committed at %s; a replay must send the same document.', k.committed_at),
                  HINT = 'Give a new receipt a new receipt_id; cancel or refund a committed one.';
    END IF;
    SELECT t.answer, t.status INTO r FROM @extschema@.receipt t
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    RETURN pg_catalog.jsonb_set(pg_catalog.jsonb_set(r.answer, '{commit,replayed}', 'true'),
                                '{commit,status}', pg_catalog.to_jsonb(r.status));
END
$$;
COMMENT ON FUNCTION @extschema@.receipt_replay(bigint, text, bytea) IS
'the stored answer of a committed receipt id, if the document is the same; 23L02 if not';

CREATE FUNCTION @extschema@.commit(receipt jsonb, expected jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pcode text;
    p @extschema@.program;
    rid text;
    digest bytea;
    ident jsonb;
    kind text;
    val text;
    cid bigint;
    answer jsonb;
    changed text[];
    local_day date;
    spent jsonb := '{}';
    earned jsonb := '{}';
    accruals jsonb := '[]';
    counters jsonb := '[]';
    offers bigint[] := '{}';
    coupons text[] := '{}';
    entries jsonb := '[]';
    e @extschema@.ledger;
    x record;
    n integer := 0;
    release_at timestamptz;
    at_ts timestamptz;
    result jsonb;
BEGIN
    IF receipt IS NULL THEN
        RAISE EXCEPTION 'receipt must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.jsonb_typeof(receipt) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'receipt must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF expected IS NOT NULL AND pg_catalog.jsonb_typeof(expected) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'expected must be the JSON object calculate returned'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(receipt OPERATOR(pg_catalog.->) 'program') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'receipt field "program" is missing or not a string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    pcode := receipt OPERATOR(pg_catalog.->>) 'program';
    SELECT * INTO p FROM @extschema@.program g WHERE g.code OPERATOR(pg_catalog.=) pcode;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'programme "%" does not exist', pcode
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT code FROM loyalty.program lists the programmes.';
    END IF;
    PERFORM @extschema@.require_program(p.id, pg_catalog.format('programme "%s"', pcode));
    rid := receipt OPERATOR(pg_catalog.->>) 'receipt_id';
    IF pg_catalog.jsonb_typeof(receipt OPERATOR(pg_catalog.->) 'receipt_id') IS DISTINCT FROM 'string'
       OR rid OPERATOR(pg_catalog.=) '' OR pg_catalog.length(rid) OPERATOR(pg_catalog.>) 128 THEN
        RAISE EXCEPTION 'receipt field "receipt_id" must be a string of 1 to 128 characters to commit'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The receipt id makes a commit safe to repeat: send the same id again when the outcome is unknown.';
    END IF;

    -- Claim the id.  A transaction committing the same id is waited for;
    -- if it committed, this is a replay.
    digest := pg_catalog.sha256(pg_catalog.convert_to(receipt::text, 'UTF8'));
    INSERT INTO @extschema@.receipt_key (program_id, receipt_id, committed_at, digest)
    VALUES (p.id, rid, pg_catalog.now(), digest)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN @extschema@.receipt_replay(p.id, rid, digest);
    END IF;

    -- Lock the customer's wallets, then calculate with what they hold now
    IF pg_catalog.jsonb_typeof(receipt OPERATOR(pg_catalog.->) 'customer') OPERATOR(pg_catalog.=) 'object' THEN
        SELECT c.key, c.value INTO kind, val
          FROM pg_catalog.jsonb_each_text(receipt OPERATOR(pg_catalog.->) 'customer') c
         WHERE c.key OPERATOR(pg_catalog.=) ANY ('{card,phone,email,id}'::text[]) LIMIT 1;
        IF kind IS NOT NULL AND val IS NOT NULL THEN
            ident := @extschema@.identify(pcode, val, kind);
            IF (ident OPERATOR(pg_catalog.->>) 'found')::boolean THEN
                cid := (ident OPERATOR(pg_catalog.->>) 'customer_id')::bigint;
                PERFORM 1 FROM @extschema@.wallet w
                  WHERE w.customer_id OPERATOR(pg_catalog.=) cid
                  ORDER BY w.currency FOR NO KEY UPDATE;
            END IF;
        END IF;
    END IF;
    answer := @extschema@.calculate(receipt);
    IF (answer OPERATOR(pg_catalog.#>>) '{customer,id}')::bigint IS DISTINCT FROM cid THEN
        RAISE EXCEPTION 'receipt "%": the customer''s identifier moved while committing', rid
            USING ERRCODE = 'serialization_failure', HINT = 'Calculate the receipt again.';
    END IF;
    IF expected IS NOT NULL THEN
        changed := @extschema@.answer_changes(expected, answer);
        IF pg_catalog.cardinality(changed) OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION 'receipt "%" calculates differently now: % changed', rid,
                  pg_catalog.array_to_string(changed, ', ')
                USING ERRCODE = 'serialization_failure',
                      DETAIL = pg_catalog.format('Totals seen: %s; now: %s.',
                                                 expected OPERATOR(pg_catalog.->) 'totals',
                                                 answer OPERATOR(pg_catalog.->) 'totals'),
                      HINT = 'A wallet, coupon or limit moved since the calculation: calculate again, show it, and commit that.';
        END IF;
    END IF;
    local_day := COALESCE(pg_catalog.left(receipt OPERATOR(pg_catalog.->>) 'at', 10)::date,
                          pg_catalog.now()::date);

    -- Coupons: one use each, if still there to use
    FOR x IN SELECT c OPERATOR(pg_catalog.->>) 'code' AS code
               FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.->) 'coupons') c
              WHERE c OPERATOR(pg_catalog.->>) 'status' OPERATOR(pg_catalog.=) 'accepted'
    LOOP
        UPDATE @extschema@.coupon o
           SET uses = o.uses OPERATOR(pg_catalog.+) 1,
               state = CASE WHEN o.uses OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=)
                                 COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END)
                            THEN 'redeemed' ELSE o.state END
         WHERE o.program_id OPERATOR(pg_catalog.=) p.id
           AND pg_catalog.lower(o.code) OPERATOR(pg_catalog.=) pg_catalog.lower(x.code)
           AND o.state OPERATOR(pg_catalog.=) 'issued'
           AND (o.uses OPERATOR(pg_catalog.<)
                COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END)
                OR COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END) IS NULL);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'receipt "%": coupon "%" was used up meanwhile', rid, x.code
                USING ERRCODE = 'serialization_failure', HINT = 'Calculate the receipt again.';
        END IF;
        coupons := coupons OPERATOR(pg_catalog.||) x.code;
    END LOOP;

    -- Personal offers and usage counters of the promotions applied
    FOR x IN SELECT m.id, m.audience, m.limit_per_customer, m.limit_period, m.limit_total, m.budget,
                    @extschema@.minor_units((a OPERATOR(pg_catalog.->>) 'discount')::numeric, p.money_exponent) AS money
               FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.#>) '{promotions,applied}') a
               JOIN @extschema@.promotion m ON m.program_id OPERATOR(pg_catalog.=) p.id
                                           AND m.code OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'code')
              ORDER BY m.id
    LOOP
        IF x.audience OPERATOR(pg_catalog.=) 'personal' THEN
            UPDATE @extschema@.personal_offer o SET uses_left = o.uses_left OPERATOR(pg_catalog.-) 1
             WHERE o.customer_id OPERATOR(pg_catalog.=) cid AND o.promotion_id OPERATOR(pg_catalog.=) x.id
               AND o.uses_left OPERATOR(pg_catalog.>) 0;
            IF FOUND THEN
                offers := offers OPERATOR(pg_catalog.||) x.id;
            ELSIF EXISTS (SELECT 1 FROM @extschema@.personal_offer o
                           WHERE o.customer_id OPERATOR(pg_catalog.=) cid
                             AND o.promotion_id OPERATOR(pg_catalog.=) x.id AND o.uses_left IS NOT NULL) THEN
                RAISE EXCEPTION 'receipt "%": the personal offer of promotion % was used up meanwhile', rid, x.id
                    USING ERRCODE = 'serialization_failure', HINT = 'Calculate the receipt again.';
            END IF;
        END IF;
        IF x.limit_per_customer IS NOT NULL THEN
            INSERT INTO @extschema@.counter AS t (promotion_id, customer_id, period_start, uses, money)
            VALUES (x.id, cid, @extschema@.period_start(x.limit_period, local_day), 1, x.money)
            ON CONFLICT (promotion_id, customer_id, period_start) DO UPDATE
               SET uses = t.uses OPERATOR(pg_catalog.+) 1, money = t.money OPERATOR(pg_catalog.+) x.money,
                   updated_at = pg_catalog.now()
             WHERE t.uses OPERATOR(pg_catalog.<) x.limit_per_customer;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'receipt "%": customer % reached the limit of promotion % meanwhile', rid, cid, x.id
                    USING ERRCODE = 'serialization_failure', HINT = 'Calculate the receipt again.';
            END IF;
            counters := counters OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                'promotion_id', x.id, 'customer_id', cid,
                'period_start', @extschema@.period_start(x.limit_period, local_day), 'money', x.money);
        END IF;
        IF x.limit_total IS NOT NULL OR x.budget IS NOT NULL THEN
            INSERT INTO @extschema@.counter AS t (promotion_id, customer_id, period_start, uses, money)
            VALUES (x.id, 0, '-infinity', 1, x.money)
            ON CONFLICT (promotion_id, customer_id, period_start) DO UPDATE
               SET uses = t.uses OPERATOR(pg_catalog.+) 1, money = t.money OPERATOR(pg_catalog.+) x.money,
                   updated_at = pg_catalog.now()
             WHERE (x.limit_total IS NULL OR t.uses OPERATOR(pg_catalog.<) x.limit_total)
               AND (x.budget IS NULL OR t.money OPERATOR(pg_catalog.<) x.budget);
            IF NOT FOUND THEN
                RAISE EXCEPTION 'receipt "%": promotion % reached its limit or budget meanwhile', rid, x.id
                    USING ERRCODE = 'serialization_failure', HINT = 'Calculate the receipt again.';
            END IF;
            counters := counters OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                'promotion_id', x.id, 'customer_id', 0, 'period_start', '-infinity', 'money', x.money);
        END IF;
    END LOOP;

    -- Points spent: exactly the lots calculate chose, per currency
    FOR x IN SELECT s.currency,
                    pg_catalog.array_agg(s.lot ORDER BY s.lot) AS lots,
                    pg_catalog.array_agg(s.points ORDER BY s.lot) AS points,
                    pg_catalog.sum(s.points)::bigint AS total
               FROM (SELECT pp OPERATOR(pg_catalog.->>) 'currency', (pp OPERATOR(pg_catalog.->>) 'lot')::bigint,
                            pg_catalog.sum(@extschema@.minor_units((pp OPERATOR(pg_catalog.->>) 'points')::numeric, k.exponent))::bigint AS points
                       FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.->) 'lines') l,
                            pg_catalog.jsonb_array_elements(l OPERATOR(pg_catalog.->) 'points_paid') pp
                       JOIN @extschema@.currency k ON k.program_id OPERATOR(pg_catalog.=) p.id
                                                  AND k.code OPERATOR(pg_catalog.=) (pp OPERATOR(pg_catalog.->>) 'currency')
                      GROUP BY 1, 2) s (currency, lot, points)
              GROUP BY 1 ORDER BY 1
    LOOP
        e := @extschema@.spend_lots(cid, x.currency, x.lots, x.points, rid,
                                    'loyalty:redeem:' OPERATOR(pg_catalog.||) rid
                                    OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) x.currency);
        spent := spent OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, x.total);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
    END LOOP;

    -- Points earned: the regular accrual per currency, then each bonus lot
    IF cid IS NOT NULL THEN
        FOR x IN
            WITH bonus AS (
                SELECT b OPERATOR(pg_catalog.->>) 'currency' AS currency,
                       @extschema@.minor_units((b OPERATOR(pg_catalog.->>) 'points')::numeric, k.exponent) AS amount,
                       CASE WHEN b OPERATOR(pg_catalog.->>) 'valid_days' IS NULL THEN NULL
                            ELSE pg_catalog.make_interval(days => (b OPERATOR(pg_catalog.->>) 'valid_days')::integer) END AS valid_for,
                       b OPERATOR(pg_catalog.->>) 'restriction' AS restriction, o AS ord
                  FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.->) 'bonus_lots') WITH ORDINALITY AS t (b, o)
                  JOIN @extschema@.currency k ON k.program_id OPERATOR(pg_catalog.=) p.id
                                             AND k.code OPERATOR(pg_catalog.=) (b OPERATOR(pg_catalog.->>) 'currency')),
            -- bonus lots alike (currency, validity, restriction) make one lot
            lots AS (
                SELECT b.currency, pg_catalog.sum(b.amount)::bigint AS amount, b.valid_for, b.restriction,
                       pg_catalog.min(b.ord) AS ord
                  FROM bonus b GROUP BY b.currency, b.valid_for, b.restriction)
            SELECT t.currency, t.amount, t.kind, t.valid_for, t.restriction
              FROM (SELECT e2.key AS currency,
                           @extschema@.minor_units(e2.value::numeric, k.exponent)
                             OPERATOR(pg_catalog.-) COALESCE((SELECT pg_catalog.sum(b.amount) FROM bonus b
                                                              WHERE b.currency OPERATOR(pg_catalog.=) e2.key), 0)::bigint AS amount,
                           'regular'::text AS kind, NULL::interval AS valid_for, NULL::text AS restriction,
                           0 AS grp, 0::bigint AS ord
                      FROM pg_catalog.jsonb_each_text(answer OPERATOR(pg_catalog.#>) '{totals,points_earned}') e2
                      JOIN @extschema@.currency k ON k.program_id OPERATOR(pg_catalog.=) p.id
                                                 AND k.code OPERATOR(pg_catalog.=) e2.key
                    UNION ALL
                    SELECT b.currency, b.amount, 'promo', b.valid_for, b.restriction, 1, b.ord FROM lots b) t
             WHERE t.amount OPERATOR(pg_catalog.>) 0
             ORDER BY t.grp, t.currency, t.ord
        LOOP
            n := n OPERATOR(pg_catalog.+) 1;
            accruals := accruals OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                'key', 'loyalty:accrual:' OPERATOR(pg_catalog.||) rid OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) n,
                'currency', x.currency, 'amount', x.amount, 'kind', x.kind,
                'valid_for', x.valid_for, 'restriction', x.restriction);
            earned := earned OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((earned OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) x.amount);
        END LOOP;
    END IF;
    IF pg_catalog.jsonb_array_length(accruals) OPERATOR(pg_catalog.>) 0 THEN
        IF p.accrual_delay OPERATOR(pg_catalog.>) '0'::interval THEN
            release_at := pg_catalog.now() OPERATOR(pg_catalog.+) p.accrual_delay;
            -- the wallets exist before the queue names them
            INSERT INTO @extschema@.wallet (customer_id, currency, program_id)
            SELECT DISTINCT cid, a OPERATOR(pg_catalog.->>) 'currency', p.id
              FROM pg_catalog.jsonb_array_elements(accruals) a
            ON CONFLICT DO NOTHING;
            INSERT INTO @extschema@.accrual_queue (program_id, receipt_id, customer_id, currency, amount,
                                                   kind, valid_for, restriction, idempotency_key, release_at)
            SELECT p.id, rid, cid, a OPERATOR(pg_catalog.->>) 'currency', (a OPERATOR(pg_catalog.->>) 'amount')::bigint,
                   a OPERATOR(pg_catalog.->>) 'kind', (a OPERATOR(pg_catalog.->>) 'valid_for')::interval,
                   a OPERATOR(pg_catalog.->>) 'restriction', a OPERATOR(pg_catalog.->>) 'key', release_at
              FROM pg_catalog.jsonb_array_elements(accruals) a;
        ELSE
            FOR x IN SELECT a OPERATOR(pg_catalog.->>) 'currency' AS currency,
                            (a OPERATOR(pg_catalog.->>) 'amount')::bigint AS amount,
                            a OPERATOR(pg_catalog.->>) 'kind' AS kind,
                            (a OPERATOR(pg_catalog.->>) 'valid_for')::interval AS valid_for,
                            a OPERATOR(pg_catalog.->>) 'restriction' AS restriction,
                            a OPERATOR(pg_catalog.->>) 'key' AS key
                       FROM pg_catalog.jsonb_array_elements(accruals) a
            LOOP
                e := @extschema@.accrue(cid, x.currency, x.amount, NULL,
                                        pg_catalog.now() OPERATOR(pg_catalog.+) x.valid_for,
                                        x.kind, 0, x.restriction, rid, x.key);
                entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                    'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
            END LOOP;
        END IF;
    END IF;

    at_ts := (answer OPERATOR(pg_catalog.->>) 'at')::timestamptz;
    result := answer OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('commit', pg_catalog.jsonb_build_object(
        'status', 'committed', 'replayed', false, 'committed_at', pg_catalog.now(),
        'accrual', CASE WHEN pg_catalog.jsonb_array_length(accruals) OPERATOR(pg_catalog.=) 0 THEN 'none'
                        WHEN release_at IS NOT NULL THEN 'queued' ELSE 'released' END,
        'release_at', release_at, 'points_spent', spent, 'points_earned', earned, 'ledger', entries));

    INSERT INTO @extschema@.receipt (program_id, receipt_id, committed_at, customer_id, at, store,
                                     amount, discount, points_money, to_pay, points_spent, points_earned,
                                     accruals, coupons, counters, offers, answer, actor, document)
    VALUES (p.id, rid, pg_catalog.now(), cid, at_ts,
            receipt OPERATOR(pg_catalog.->>) 'store',
            @extschema@.minor_units((answer OPERATOR(pg_catalog.#>>) '{totals,amount}')::numeric, p.money_exponent),
            @extschema@.minor_units((answer OPERATOR(pg_catalog.#>>) '{totals,discount}')::numeric, p.money_exponent),
            @extschema@.minor_units((answer OPERATOR(pg_catalog.#>>) '{totals,points_paid}')::numeric, p.money_exponent),
            @extschema@.minor_units((answer OPERATOR(pg_catalog.#>>) '{totals,to_pay}')::numeric, p.money_exponent),
            spent, earned, accruals, coupons, counters, offers, result, @extschema@.actor(), receipt);
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (p.id, 'receipt_committed', cid, pg_catalog.jsonb_build_object(
                'receipt_id', rid, 'store', receipt OPERATOR(pg_catalog.->>) 'store',
                'at', at_ts, 'committed_at', pg_catalog.now(),
                'totals', result OPERATOR(pg_catalog.->) 'totals',
                'accrual', result OPERATOR(pg_catalog.#>) '{commit,accrual}',
                'release_at', result OPERATOR(pg_catalog.#>) '{commit,release_at}',
                'coupons', pg_catalog.to_jsonb(coupons)));
    IF cid IS NOT NULL THEN
        PERFORM @extschema@.lift_tier(p.id, cid, rid);
    END IF;
    INSERT INTO @extschema@.receipt_line (program_id, receipt_id, committed_at, line, sku, qty, price,
                                          amount, discount, points_money, to_pay, discounts,
                                          points_paid, points_earned)
    SELECT p.id, rid, pg_catalog.now(), (l OPERATOR(pg_catalog.->>) 'line')::integer, l OPERATOR(pg_catalog.->>) 'sku',
           (l OPERATOR(pg_catalog.->>) 'qty')::numeric,
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'price')::numeric, p.money_exponent),
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'amount')::numeric, p.money_exponent),
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'discount')::numeric, p.money_exponent),
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'points_amount')::numeric, p.money_exponent),
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'to_pay')::numeric, p.money_exponent),
           l OPERATOR(pg_catalog.->) 'discounts', l OPERATOR(pg_catalog.->) 'points_paid',
           l OPERATOR(pg_catalog.->) 'points_earned'
      FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.->) 'lines') l;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.commit(jsonb, jsonb) IS
'write a receipt as calculate shows it: lines, redemption of the lots chosen, coupon and counter uses, the accrual (at once or queued); idempotent by receipt_id';

CREATE FUNCTION public.loyalty_commit(receipt jsonb, expected jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.commit(receipt, expected) $$;
COMMENT ON FUNCTION public.loyalty_commit(jsonb, jsonb) IS 'loyalty.commit under its checkout name';

CREATE FUNCTION @extschema@.cancel(program text, receipt_id text, reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    rid text := receipt_id;
    k @extschema@.receipt_key;
    r @extschema@.receipt;
    queued text[];
    x record;
    e @extschema@.ledger;
    entries jsonb := '[]';
    policy text;
    short bigint;
    withheld bigint := 0;
    owed jsonb := '{}';
    result jsonb;
BEGIN
    IF program IS NULL OR rid IS NULL THEN
        RAISE EXCEPTION 'program and receipt_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pid := @extschema@.program_id(program);
    SELECT g.refund_shortfall INTO policy FROM @extschema@.program g WHERE g.id OPERATOR(pg_catalog.=) pid;
    SELECT * INTO k FROM @extschema@.receipt_key t
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.receipt_id OPERATOR(pg_catalog.=) rid
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was not committed', rid, program
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO STRICT r FROM @extschema@.receipt t
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    IF r.status OPERATOR(pg_catalog.=) 'cancelled' THEN
        RETURN pg_catalog.jsonb_set(r.cancel_result, '{replayed}', 'true');
    END IF;
    IF r.status OPERATOR(pg_catalog.<>) 'committed' THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was %: it cannot be cancelled', rid, program,
              CASE r.status WHEN 'refunded' THEN 'refunded' ELSE 'refunded in part' END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Return the other lines with loyalty.refund.';
    END IF;

    -- Accruals still queued go; a release in progress is waited for.  This
    -- comes before the wallet locks: a release never waits for a wallet.
    WITH gone AS (
        DELETE FROM @extschema@.accrual_queue q
         WHERE q.program_id OPERATOR(pg_catalog.=) pid AND q.receipt_id OPERATOR(pg_catalog.=) rid
        RETURNING q.idempotency_key)
    SELECT COALESCE(pg_catalog.array_agg(g.idempotency_key), '{}') INTO queued FROM gone g;
    IF r.customer_id IS NOT NULL THEN
        PERFORM 1 FROM @extschema@.wallet w
          WHERE w.customer_id OPERATOR(pg_catalog.=) r.customer_id
          ORDER BY w.currency FOR NO KEY UPDATE;
    END IF;

    -- Points spent go back to the lots that paid
    FOR x IN SELECT l.currency, l.lot_ids, l.lot_amounts
               FROM pg_catalog.jsonb_object_keys(r.points_spent) c (currency)
               JOIN @extschema@.ledger l
                 ON l.program_id OPERATOR(pg_catalog.=) pid
                AND l.idempotency_key OPERATOR(pg_catalog.=) ('loyalty:redeem:' OPERATOR(pg_catalog.||) rid
                                                            OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) c.currency)
              ORDER BY l.currency
    LOOP
        e := @extschema@.return_lots(r.customer_id, x.currency, x.lot_ids, x.lot_amounts, rid, NULL);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
    END LOOP;

    -- Accruals already released are taken back
    FOR x IN SELECT l.currency, l.lot_id, l.amount
               FROM pg_catalog.jsonb_array_elements(r.accruals) a
               JOIN @extschema@.ledger l
                 ON l.program_id OPERATOR(pg_catalog.=) pid
                AND l.idempotency_key OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'key')
              WHERE (a OPERATOR(pg_catalog.->>) 'key') OPERATOR(pg_catalog.<>) ALL (queued)
              ORDER BY l.currency, l.lot_id
    LOOP
        e := @extschema@.take_back(r.customer_id, x.currency, x.lot_id, x.amount, rid, NULL,
                                   CASE policy WHEN 'debt' THEN 'debt' ELSE 'forgive' END);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
        short := x.amount OPERATOR(pg_catalog.+) e.amount;
        IF short OPERATOR(pg_catalog.>) 0 AND policy OPERATOR(pg_catalog.=) 'debt' THEN
            owed := owed OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((owed OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) short);
        ELSIF short OPERATOR(pg_catalog.>) 0 THEN
            withheld := withheld OPERATOR(pg_catalog.+) @extschema@.points_money(pid, x.currency, short);
        END IF;
    END LOOP;

    -- Coupon, offer and counter uses are given back
    UPDATE @extschema@.coupon o
       SET uses = o.uses OPERATOR(pg_catalog.-) 1,
           state = CASE WHEN o.state OPERATOR(pg_catalog.=) 'redeemed' THEN 'issued' ELSE o.state END
     WHERE o.program_id OPERATOR(pg_catalog.=) pid
       AND pg_catalog.lower(o.code) OPERATOR(pg_catalog.=) ANY
           (SELECT pg_catalog.lower(c) FROM pg_catalog.unnest(r.coupons) c)
       AND o.uses OPERATOR(pg_catalog.>) 0;
    UPDATE @extschema@.personal_offer o SET uses_left = o.uses_left OPERATOR(pg_catalog.+) 1
     WHERE o.customer_id OPERATOR(pg_catalog.=) r.customer_id
       AND o.promotion_id OPERATOR(pg_catalog.=) ANY (r.offers)
       AND o.uses_left IS NOT NULL;
    PERFORM @extschema@.return_counter_uses(r.counters);

    result := pg_catalog.jsonb_build_object(
        'program', program, 'receipt_id', rid, 'status', 'cancelled', 'replayed', false,
        'cancelled_at', pg_catalog.now(), 'customer_id', r.customer_id,
        'accruals_dequeued', pg_catalog.cardinality(queued), 'ledger', entries,
        'debt', owed, 'money_withheld',
        @extschema@.major_units(withheld, (SELECT g.money_exponent FROM @extschema@.program g
                                            WHERE g.id OPERATOR(pg_catalog.=) pid)));
    UPDATE @extschema@.receipt t
       SET status = 'cancelled', cancelled_at = pg_catalog.now(), cancel_reason = reason,
           cancel_result = result
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (pid, 'receipt_cancelled', r.customer_id, result OPERATOR(pg_catalog.-) '{ledger,replayed}'::text[]);
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.cancel(text, text, text) IS
'cancel a committed receipt: queued accruals removed, released ones taken back (what was spent since owed or kept in money, per refund_shortfall), spent points returned to their lots, coupon, offer and counter uses given back; a second cancel returns the first result';

CREATE FUNCTION public.loyalty_cancel(program text, receipt_id text, reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.cancel(program, receipt_id, reason) $$;
COMMENT ON FUNCTION public.loyalty_cancel(text, text, text) IS 'loyalty.cancel under its checkout name';

-- A partial return: some lines, some quantity.  Each line gives back its
-- share of what it cost, of the points that paid it (to the same lots) and
-- of the points it earned (from the queue, or taken back from the wallet),
-- in proportion to the quantity returned; shares are cumulative, so that
-- returning a line in parts gives back exactly what returning it at once
-- would.
CREATE FUNCTION @extschema@.refund(program text, receipt_id text, lines jsonb, refund_id text,
                                   reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rid text := receipt_id;
    fid text := refund_id;
    g @extschema@.program;
    k @extschema@.receipt_key;
    r @extschema@.receipt;
    old @extschema@.receipt_refund;
    l @extschema@.receipt_line;
    req jsonb := '[]';
    item jsonb;
    n integer := 0;
    line_no integer;
    back numeric;
    prev numeric;
    upto numeric;
    x record;
    e @extschema@.ledger;
    entries jsonb := '[]';
    line_money bigint;
    money bigint := 0;
    withheld bigint := 0;
    ret_cur text[] := '{}';
    ret_lot bigint[] := '{}';
    ret_amt bigint[] := '{}';
    tb_cur text[] := '{}';
    tb_amt bigint[] := '{}';
    returned jsonb := '{}';
    taken jsonb := '{}';
    owed jsonb := '{}';
    per_line jsonb := '[]';
    line_ret jsonb;
    line_tb jsonb;
    want bigint;
    cut bigint;
    short bigint;
    lot bigint;
    kept jsonb;
    now_answer jsonb;
    kept_discount bigint := 0;
    lost bigint := 0;
    lost_delta bigint := 0;
    counters_back jsonb := '[]';
    counters_after jsonb;
    result jsonb;
BEGIN
    IF program IS NULL OR rid IS NULL OR lines IS NULL OR fid IS NULL THEN
        RAISE EXCEPTION 'program, receipt_id, lines and refund_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF fid OPERATOR(pg_catalog.=) '' OR pg_catalog.length(fid) OPERATOR(pg_catalog.>) 128 THEN
        RAISE EXCEPTION 'refund_id must be 1 to 128 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The refund id makes a refund safe to repeat: send the same id again when the outcome is unknown.';
    END IF;
    SELECT * INTO g FROM @extschema@.program p WHERE p.id OPERATOR(pg_catalog.=) @extschema@.program_id(program);
    IF pg_catalog.jsonb_typeof(lines) IS DISTINCT FROM 'array' OR pg_catalog.jsonb_array_length(lines) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array of {"line": n, "qty": q}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO k FROM @extschema@.receipt_key t
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was not committed', rid, program
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO STRICT r FROM @extschema@.receipt t
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;

    -- the same refund again: its first result
    SELECT * INTO old FROM @extschema@.receipt_refund f
     WHERE f.program_id OPERATOR(pg_catalog.=) g.id AND f.receipt_id OPERATOR(pg_catalog.=) rid
       AND f.refund_id OPERATOR(pg_catalog.=) fid;
    IF FOUND THEN
        IF old.request OPERATOR(pg_catalog.<>) lines THEN
            RAISE EXCEPTION 'refund "%" of receipt "%" was made with other lines', fid, rid
                USING ERRCODE = '23L02',
                      DETAIL = pg_catalog.format('It returned %s.', old.lines),
                      HINT = 'Give a new return a new refund_id.';
        END IF;
        RETURN old.result OPERATOR(pg_catalog.||) '{"replayed": true}';
    END IF;
    IF r.status OPERATOR(pg_catalog.=) 'cancelled' THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was cancelled: nothing is left to refund', rid, program
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    -- the lines asked for, checked one by one
    FOR item IN SELECT v FROM pg_catalog.jsonb_array_elements(lines) v LOOP
        IF pg_catalog.jsonb_typeof(item) IS DISTINCT FROM 'object'
           OR pg_catalog.jsonb_typeof(item OPERATOR(pg_catalog.->) 'line') IS DISTINCT FROM 'number'
           OR (item OPERATOR(pg_catalog.->>) 'line')::numeric OPERATOR(pg_catalog.<>) pg_catalog.trunc((item OPERATOR(pg_catalog.->>) 'line')::numeric)
           OR pg_catalog.abs((item OPERATOR(pg_catalog.->>) 'line')::numeric) OPERATOR(pg_catalog.>) 2147483647 THEN
            RAISE EXCEPTION 'lines[%] must be an object with a whole number "line"', n
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        line_no := (item OPERATOR(pg_catalog.->>) 'line')::integer;
        IF item OPERATOR(pg_catalog.?) 'qty' AND pg_catalog.jsonb_typeof(item OPERATOR(pg_catalog.->) 'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'lines[%].qty must be a number', n USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT * INTO l FROM @extschema@.receipt_line t
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at AND t.line OPERATOR(pg_catalog.=) line_no;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'receipt "%" has no line %', rid, line_no USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF req OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('line', line_no)) THEN
            RAISE EXCEPTION 'line % is named twice', line_no USING ERRCODE = 'invalid_parameter_value';
        END IF;
        back := COALESCE((item OPERATOR(pg_catalog.->>) 'qty')::numeric, l.qty OPERATOR(pg_catalog.-) l.refunded_qty);
        IF back OPERATOR(pg_catalog.<=) 0 AND item OPERATOR(pg_catalog.?) 'qty' THEN
            RAISE EXCEPTION 'lines[%].qty must be greater than 0', n USING ERRCODE = 'numeric_value_out_of_range';
        END IF;
        IF l.refunded_qty OPERATOR(pg_catalog.>=) l.qty THEN
            RAISE EXCEPTION 'line % of receipt "%" was returned already', line_no, rid
                USING ERRCODE = '23L03', HINT = 'A line is returned at most once in all.';
        END IF;
        IF back OPERATOR(pg_catalog.>) (l.qty OPERATOR(pg_catalog.-) l.refunded_qty) THEN
            RAISE EXCEPTION 'line % of receipt "%" has % left to return, not %', line_no, rid,
                  l.qty OPERATOR(pg_catalog.-) l.refunded_qty, back
                USING ERRCODE = '23L03',
                      DETAIL = pg_catalog.format('%s of %s were returned already.', l.refunded_qty, l.qty);
        END IF;
        req := req OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('line', line_no, 'qty', back));
        n := n OPERATOR(pg_catalog.+) 1;
    END LOOP;

    -- each line's share, cumulative over its returns
    FOR item IN SELECT v FROM pg_catalog.jsonb_array_elements(req) v LOOP
        SELECT * INTO l FROM @extschema@.receipt_line t
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
           AND t.line OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'line')::integer;
        prev := l.refunded_qty;
        upto := prev OPERATOR(pg_catalog.+) (item OPERATOR(pg_catalog.->>) 'qty')::numeric;
        line_money := @extschema@.share(l.to_pay, prev, upto, l.qty);
        money := money OPERATOR(pg_catalog.+) line_money;
        line_ret := '{}';
        line_tb := '{}';
        FOR x IN SELECT pp OPERATOR(pg_catalog.->>) 'currency' AS currency, (pp OPERATOR(pg_catalog.->>) 'lot')::bigint AS lot,
                        @extschema@.share(@extschema@.minor_units((pp OPERATOR(pg_catalog.->>) 'points')::numeric, c.exponent),
                                          prev, upto, l.qty) AS amount
                   FROM pg_catalog.jsonb_array_elements(l.points_paid) pp
                   JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) g.id
                                              AND c.code OPERATOR(pg_catalog.=) (pp OPERATOR(pg_catalog.->>) 'currency')
        LOOP
            CONTINUE WHEN x.amount OPERATOR(pg_catalog.<=) 0;
            ret_cur := ret_cur OPERATOR(pg_catalog.||) x.currency;
            ret_lot := ret_lot OPERATOR(pg_catalog.||) x.lot;
            ret_amt := ret_amt OPERATOR(pg_catalog.||) x.amount;
            line_ret := line_ret OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((line_ret OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) x.amount);
        END LOOP;
        FOR x IN SELECT pe OPERATOR(pg_catalog.->>) 'currency' AS currency,
                        @extschema@.share(@extschema@.minor_units((pe OPERATOR(pg_catalog.->>) 'points')::numeric, c.exponent),
                                          prev, upto, l.qty) AS amount
                   FROM pg_catalog.jsonb_array_elements(l.points_earned) pe
                   JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) g.id
                                              AND c.code OPERATOR(pg_catalog.=) (pe OPERATOR(pg_catalog.->>) 'currency')
        LOOP
            CONTINUE WHEN x.amount OPERATOR(pg_catalog.<=) 0 OR r.customer_id IS NULL;
            tb_cur := tb_cur OPERATOR(pg_catalog.||) x.currency;
            tb_amt := tb_amt OPERATOR(pg_catalog.||) x.amount;
            line_tb := line_tb OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((line_tb OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) x.amount);
        END LOOP;
        UPDATE @extschema@.receipt_line t SET refunded_qty = upto
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at AND t.line OPERATOR(pg_catalog.=) l.line;
        per_line := per_line OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'line', l.line, 'qty', item OPERATOR(pg_catalog.->) 'qty',
            'money', @extschema@.major_units(line_money, g.money_exponent),
            'points_returned', line_ret, 'points_taken', line_tb));
    END LOOP;

    -- Points earned and still queued come off the queue first (before the
    -- wallet locks: a release never waits for a wallet), regular accruals
    -- before bonus lots.
    FOR x IN SELECT u.c AS currency, pg_catalog.sum(u.a)::bigint AS amount
               FROM ROWS FROM (pg_catalog.unnest(tb_cur), pg_catalog.unnest(tb_amt)) u (c, a) GROUP BY u.c ORDER BY u.c
    LOOP
        want := x.amount;
        taken := taken OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, x.amount);
        FOR item IN SELECT pg_catalog.jsonb_build_object('id', q.id, 'amount', q.amount)
                      FROM @extschema@.accrual_queue q
                     WHERE q.program_id OPERATOR(pg_catalog.=) g.id AND q.receipt_id OPERATOR(pg_catalog.=) rid
                       AND q.currency OPERATOR(pg_catalog.=) x.currency
                     ORDER BY q.kind OPERATOR(pg_catalog.<>) 'regular', q.id
                       FOR UPDATE
        LOOP
            EXIT WHEN want OPERATOR(pg_catalog.<=) 0;
            cut := LEAST(want, (item OPERATOR(pg_catalog.->>) 'amount')::bigint);
            IF cut OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'amount')::bigint THEN
                DELETE FROM @extschema@.accrual_queue q WHERE q.id OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'id')::bigint;
            ELSE
                UPDATE @extschema@.accrual_queue q SET amount = q.amount OPERATOR(pg_catalog.-) cut
                 WHERE q.id OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'id')::bigint;
            END IF;
            want := want OPERATOR(pg_catalog.-) cut;
        END LOOP;
        tb_cur := tb_cur OPERATOR(pg_catalog.||) ('-' OPERATOR(pg_catalog.||) x.currency);
        tb_amt := tb_amt OPERATOR(pg_catalog.||) want;
    END LOOP;

    IF r.customer_id IS NOT NULL THEN
        PERFORM 1 FROM @extschema@.wallet w
          WHERE w.customer_id OPERATOR(pg_catalog.=) r.customer_id
          ORDER BY w.currency FOR NO KEY UPDATE;
    END IF;

    -- Points that paid the lines go back to their lots
    FOR x IN SELECT s.c AS currency, pg_catalog.array_agg(s.l ORDER BY s.l) AS lots,
                    pg_catalog.array_agg(s.a ORDER BY s.l) AS amounts, pg_catalog.sum(s.a)::bigint AS total
               FROM (SELECT u.c, u.l, pg_catalog.sum(u.a)::bigint AS a
                       FROM ROWS FROM (pg_catalog.unnest(ret_cur), pg_catalog.unnest(ret_lot), pg_catalog.unnest(ret_amt)) u (c, l, a) GROUP BY u.c, u.l) s
              GROUP BY s.c ORDER BY s.c
    LOOP
        e := @extschema@.return_lots(r.customer_id, x.currency, x.lots, x.amounts, rid, NULL);
        returned := returned OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, x.total);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
    END LOOP;

    -- Points earned and released are taken back from the wallet (the
    -- accrual's lot first); what was spent since is owed or kept in money
    FOR x IN SELECT pg_catalog.substr(u.c, 2) AS currency, u.a AS amount
               FROM ROWS FROM (pg_catalog.unnest(tb_cur), pg_catalog.unnest(tb_amt)) u (c, a)
              WHERE pg_catalog.left(u.c, 1) OPERATOR(pg_catalog.=) '-' AND u.a OPERATOR(pg_catalog.>) 0
              ORDER BY 1
    LOOP
        SELECT e2.lot_id INTO lot
          FROM pg_catalog.jsonb_array_elements(r.accruals) a
          JOIN @extschema@.ledger e2 ON e2.program_id OPERATOR(pg_catalog.=) g.id
                                    AND e2.idempotency_key OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'key')
         WHERE a OPERATOR(pg_catalog.->>) 'currency' OPERATOR(pg_catalog.=) x.currency
         ORDER BY a OPERATOR(pg_catalog.->>) 'kind' OPERATOR(pg_catalog.<>) 'regular', e2.version
         LIMIT 1;
        e := @extschema@.take_back(r.customer_id, x.currency, COALESCE(lot, 0), x.amount, rid, NULL,
                                   CASE g.refund_shortfall WHEN 'debt' THEN 'debt' ELSE 'forgive' END);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
        short := x.amount OPERATOR(pg_catalog.+) e.amount;
        IF short OPERATOR(pg_catalog.>) 0 AND g.refund_shortfall OPERATOR(pg_catalog.=) 'debt' THEN
            owed := owed OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, short);
        ELSIF short OPERATOR(pg_catalog.>) 0 THEN
            withheld := withheld OPERATOR(pg_catalog.+) @extschema@.points_money(g.id, x.currency, short);
        END IF;
    END LOOP;
    withheld := LEAST(withheld, money);

    -- What the return breaks: the lines kept, recomputed with the receipt's
    -- own promotions as committed, may earn less discount than they got
    -- ("3 for 2" with one of the three returned).  The loss so far is kept
    -- back from the money (as far as this return gives any); a later return
    -- that ends it gives it back.  Promotions that no longer hold give their
    -- counter uses back.
    IF r.document IS NOT NULL THEN
        -- a line without a number is numbered by its place, as calculate does
        SELECT pg_catalog.jsonb_agg(d OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                   'line', t.line, 'qty', t.qty OPERATOR(pg_catalog.-) t.refunded_qty) ORDER BY t.line),
               pg_catalog.sum(t.discount OPERATOR(pg_catalog.-)
                              @extschema@.share(t.discount, 0, t.refunded_qty, t.qty))::bigint
          INTO kept, kept_discount
          FROM pg_catalog.jsonb_array_elements(r.document OPERATOR(pg_catalog.->) 'lines') WITH ORDINALITY AS dl (d, o)
          JOIN @extschema@.receipt_line t
            ON t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
           AND t.line OPERATOR(pg_catalog.=) COALESCE((d OPERATOR(pg_catalog.->>) 'line')::integer, dl.o::integer)
         WHERE t.refunded_qty OPERATOR(pg_catalog.<) t.qty;
        IF kept IS NOT NULL THEN
            now_answer := @extschema@.recompute(
                ((r.document OPERATOR(pg_catalog.-) '{points,coupons}'::text[])
                 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                     'lines', kept,
                     'at', COALESCE(r.document OPERATOR(pg_catalog.->) 'at',
                                    pg_catalog.to_jsonb(pg_catalog.to_char(pg_catalog.timezone('UTC', r.at),
                                                                           'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))))),
                @extschema@.applied_promotion_ids(g.id, r.answer));
            lost := GREATEST(kept_discount OPERATOR(pg_catalog.-) @extschema@.minor_units(
                        (now_answer OPERATOR(pg_catalog.#>>) '{totals,discount}')::numeric, g.money_exponent), 0);
        END IF;
        lost_delta := lost OPERATOR(pg_catalog.-) r.discount_lost;
        IF lost_delta OPERATOR(pg_catalog.>) 0 THEN
            lost_delta := LEAST(lost_delta, money OPERATOR(pg_catalog.-) withheld);
        END IF;
        -- the counter uses of promotions the lines kept no longer get
        SELECT COALESCE(pg_catalog.jsonb_agg(c ORDER BY o), '[]') INTO counters_back
          FROM pg_catalog.jsonb_array_elements(r.counters) WITH ORDINALITY AS rc (c, o)
         WHERE (c OPERATOR(pg_catalog.->) 'returned') IS NULL
           AND (c OPERATOR(pg_catalog.->>) 'promotion_id')::bigint OPERATOR(pg_catalog.<>) ALL
               (@extschema@.applied_promotion_ids(g.id, now_answer));
        PERFORM @extschema@.return_counter_uses(counters_back);
        -- the receipt's counters, those given back marked with this refund
        SELECT COALESCE(pg_catalog.jsonb_agg(CASE WHEN counters_back OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(c)
                                                  THEN c OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('returned', fid)
                                                  ELSE c END ORDER BY o), '[]')
          INTO counters_after
          FROM pg_catalog.jsonb_array_elements(r.counters) WITH ORDINALITY AS rc (c, o);
    END IF;

    result := pg_catalog.jsonb_build_object(
        'program', program, 'receipt_id', rid, 'refund_id', fid, 'replayed', false,
        'status', CASE WHEN EXISTS (SELECT 1 FROM @extschema@.receipt_line t
                                     WHERE t.program_id OPERATOR(pg_catalog.=) g.id
                                       AND t.receipt_id OPERATOR(pg_catalog.=) rid
                                       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
                                       AND t.refunded_qty OPERATOR(pg_catalog.<) t.qty)
                       THEN 'partly_refunded' ELSE 'refunded' END,
        'customer_id', r.customer_id, 'lines', per_line,
        'money', @extschema@.major_units(money OPERATOR(pg_catalog.-) withheld OPERATOR(pg_catalog.-) lost_delta,
                                         g.money_exponent),
        'money_withheld', @extschema@.major_units(withheld, g.money_exponent),
        'discount_withheld', @extschema@.major_units(lost_delta, g.money_exponent),
        'counters_returned', counters_back,
        'points_returned', returned, 'points_taken', taken, 'debt', owed, 'ledger', entries);
    INSERT INTO @extschema@.receipt_refund (program_id, receipt_id, refund_id, request, lines, money,
                                            money_withheld, points_returned, points_taken, debt,
                                            result, actor, reason, discount_withheld, counters_returned)
    VALUES (g.id, rid, fid, lines, req, money OPERATOR(pg_catalog.-) withheld OPERATOR(pg_catalog.-) lost_delta,
            withheld, returned, taken, owed, result, @extschema@.actor(), reason, lost_delta, counters_back);
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (g.id, 'refund', r.customer_id, result OPERATOR(pg_catalog.-) '{ledger,replayed}'::text[]);
    UPDATE @extschema@.receipt t
       SET status = result OPERATOR(pg_catalog.->>) 'status',
           discount_lost = t.discount_lost OPERATOR(pg_catalog.+) lost_delta,
           counters = COALESCE(counters_after, t.counters)
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.refund(text, text, jsonb, text, text) IS
'return some lines of a committed receipt (some quantity): their share of the money, of the points that paid them (to the same lots) and of the points they earned; the lines kept are recomputed with the receipt''s promotions and the discount they lose is kept back from the money; idempotent by refund_id';

CREATE FUNCTION public.loyalty_refund(program text, receipt_id text, lines jsonb, refund_id text,
                                      reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.refund(program, receipt_id, lines, refund_id, reason) $$;
COMMENT ON FUNCTION public.loyalty_refund(text, text, jsonb, text, text) IS 'loyalty.refund under its checkout name';

-- Monthly partitions of receipt and receipt_line, from the current month to
-- months_ahead months later.  Rows of such a month that sit in the default
-- partition (no job ran before the month began) move into it.
CREATE FUNCTION @extschema@.create_partitions(months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m integer;
    first date;
    next date;
    parent text;
    name text;
    made integer := 0;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.create_partitions');
    IF months_ahead IS NULL OR months_ahead OPERATOR(pg_catalog.<) 0 OR months_ahead OPERATOR(pg_catalog.>) 120 THEN
        RAISE EXCEPTION 'months_ahead must be from 0 to 120, not %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR m IN 0 .. months_ahead LOOP
        first := (pg_catalog.date_trunc('month', pg_catalog.now()) OPERATOR(pg_catalog.+)
                  pg_catalog.make_interval(months => m))::date;
        next := (first OPERATOR(pg_catalog.+) '1 month'::interval)::date;
        FOREACH parent IN ARRAY '{receipt,receipt_line}'::text[] LOOP
            name := pg_catalog.format('%s_%s', parent, pg_catalog.to_char(first, 'YYYY_MM'));
            CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('@extschema@.%I', name)) IS NOT NULL;
            EXECUTE pg_catalog.format('CREATE TABLE @extschema@.%I (LIKE @extschema@.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                                      name, parent);
            EXECUTE pg_catalog.format(
                'WITH moved AS (DELETE FROM @extschema@.%I WHERE committed_at >= %L AND committed_at < %L RETURNING *)'
                ' INSERT INTO @extschema@.%I SELECT * FROM moved',
                parent OPERATOR(pg_catalog.||) '_default', first, next, name);
            PERFORM @extschema@.partition_indexes(parent, name);
            PERFORM @extschema@.partition_security(name);
            EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ATTACH PARTITION @extschema@.%I FOR VALUES FROM (%L) TO (%L)',
                                      parent, name, first::timestamptz, next::timestamptz);
            made := made OPERATOR(pg_catalog.+) 1;
        END LOOP;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION @extschema@.create_partitions(integer) IS
'create the monthly partitions of receipt and receipt_line from this month to months_ahead later; returns how many were created';

-- A job run in slices, each its own transaction, so that wallets locked by
-- a slice are free again within a fifth of a second.  No SET clause and no SECURITY
-- DEFINER (a procedure with either cannot commit): every name is qualified.
CREATE PROCEDURE @extschema@.run_job(job text, time_budget interval DEFAULT '50 seconds')
LANGUAGE plpgsql
AS $$
DECLARE
    deadline timestamptz := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) time_budget;
    slice interval;
    n bigint;
    idle integer := 0;
BEGIN
    IF job IS NULL OR job OPERATOR(pg_catalog.<>) ALL ('{release_accruals,expire_due,release_expired_holds,notice_expiring,review_tiers}'::text[]) THEN
        RAISE EXCEPTION 'job "%" cannot run in slices', job
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The jobs that run in slices are release_accruals, expire_due, release_expired_holds, notice_expiring and review_tiers.';
    END IF;
    IF time_budget IS NULL OR time_budget OPERATOR(pg_catalog.<=) '0'::interval THEN
        RAISE EXCEPTION 'time_budget must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP
        slice := LEAST('200 milliseconds'::interval, deadline OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp());
        EXIT WHEN slice OPERATOR(pg_catalog.<=) '0'::interval;
        IF job OPERATOR(pg_catalog.=) 'release_accruals' THEN
            n := @extschema@.release_accruals(slice);
        ELSIF job OPERATOR(pg_catalog.=) 'expire_due' THEN
            n := @extschema@.expire_due(100000, slice);
        ELSIF job OPERATOR(pg_catalog.=) 'notice_expiring' THEN
            n := @extschema@.notice_expiring(100000, slice);
        ELSIF job OPERATOR(pg_catalog.=) 'review_tiers' THEN
            n := @extschema@.review_tiers(100000, slice);
        ELSE
            n := @extschema@.release_expired_holds(100000, slice);
        END IF;
        COMMIT;
        -- a slice that did nothing met only rows other workers or tills
        -- hold, or nothing due: after three in a row, stop
        IF n OPERATOR(pg_catalog.>) 0 THEN
            idle := 0;
        ELSE
            idle := idle OPERATOR(pg_catalog.+) 1;
            EXIT WHEN idle OPERATOR(pg_catalog.>=) 3;
            PERFORM pg_catalog.pg_sleep(0.05);
        END IF;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE @extschema@.run_job(text, interval) IS
'run release_accruals, expire_due, release_expired_holds, notice_expiring or review_tiers in transactions of at most 0.2 s until three in a row find nothing to do or time_budget is spent (CALL it outside a transaction block)';

REVOKE ALL ON FUNCTION
    @extschema@.spend_lots(bigint, text, bigint[], bigint[], text, text),
    @extschema@.return_lots(bigint, text, bigint[], bigint[], text, text),
    @extschema@.take_back(bigint, text, bigint, bigint, text, text, text),
    @extschema@.release_accruals(interval),
    @extschema@.receipt_replay(bigint, text, bytea),
    @extschema@.commit(jsonb, jsonb),
    public.loyalty_commit(jsonb, jsonb),
    @extschema@.cancel(text, text, text),
    public.loyalty_cancel(text, text, text),
    @extschema@.create_partitions(integer),
    @extschema@.refund(text, text, jsonb, text, text),
    public.loyalty_refund(text, text, jsonb, text, text)
FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@.run_job(text, interval) FROM PUBLIC;

-- src/events.sql — the outbox of events.  Each change writes its events in
-- its own transaction, so an event exists exactly when its change was
-- committed: balance_changed (every ledger entry, written by the ledger's C
-- code), receipt_committed, receipt_cancelled and refund (triggers on the
-- receipt tables), points_expiring (the job notice_expiring), tier_changed
-- (src/tiers.sql).  A transaction that writes events sends NOTIFY
-- loyalty_events once, with the id of its first event, at commit (setting
-- loyalty.notify_events); loyalty.take_events hands them over.

-- How long before a lot expires its customer hears of it, and how long an
-- event nobody took is kept.
ALTER TABLE @extschema@.program
    ADD COLUMN expiry_notice interval DEFAULT '14 days'
    CHECK (expiry_notice OPERATOR(pg_catalog.>) '0'::interval),
    ADD COLUMN event_retention interval DEFAULT '30 days'
    CHECK (event_retention OPERATOR(pg_catalog.>) '0'::interval);
COMMENT ON COLUMN @extschema@.program.expiry_notice IS 'how long before points expire the job notice_expiring emits a points_expiring event; NULL: never';
COMMENT ON COLUMN @extschema@.program.event_retention IS 'events older than this that no consumer took are deleted by the job purge_events; NULL: kept until taken';

-- A lot's notice is sent once; the partial index holds the lots that still
-- need one, so the job reads only new lots.  Spending part of a lot
-- changes none of its columns: still a HOT update.
ALTER TABLE @extschema@.lot ADD COLUMN expiry_noticed_at timestamptz;
COMMENT ON COLUMN @extschema@.lot.expiry_noticed_at IS 'when the points_expiring event that names the lot was written (or the lot was passed over as already expired); NULL: not yet';
CREATE INDEX lot_notice_idx ON @extschema@.lot (valid_to, id)
    WHERE live AND valid_to IS NOT NULL AND expiry_noticed_at IS NULL;

CREATE TABLE @extschema@.event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL,
    type        text NOT NULL
                CHECK (type OPERATOR(pg_catalog.=) ANY
                       ('{balance_changed,receipt_committed,receipt_cancelled,refund,points_expiring,tier_changed}'::text[])),
    customer_id bigint,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000);
CREATE INDEX event_program_idx ON @extschema@.event (program_id, id);
COMMENT ON TABLE @extschema@.event IS 'the outbox: events written with the change they report, until loyalty.take_events hands them over (or purge_events drops them after the programme''s event_retention)';
COMMENT ON COLUMN @extschema@.event.id IS 'increasing in the order events were written; a consumer deduplicates by it';
COMMENT ON COLUMN @extschema@.event.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.event.type IS 'balance_changed, receipt_committed, receipt_cancelled, refund, points_expiring or tier_changed';
COMMENT ON COLUMN @extschema@.event.customer_id IS 'the customer; NULL for a receipt without one';
COMMENT ON COLUMN @extschema@.event.payload IS 'what happened, by type (docs/events.md)';
COMMENT ON COLUMN @extschema@.event.created_at IS 'the time of the transaction that wrote it';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.event', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.event', 'id'), '');

CREATE FUNCTION @extschema@.event_notify()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'loyalty_event_notify';
COMMENT ON FUNCTION @extschema@.event_notify() IS
'trigger: NOTIFY loyalty_events with the id of the transaction''s first event, once per transaction, unless loyalty.notify_events is off';
CREATE TRIGGER event_notify AFTER INSERT ON @extschema@.event
    FOR EACH ROW EXECUTE FUNCTION @extschema@.event_notify();

-- The events of receipts (receipt_committed, receipt_cancelled, refund)
-- are written by commit, cancel and refund themselves, beside the rows they
-- write: not by triggers, so that a restore (which inserts the rows again)
-- writes no event twice.  Replays write nothing, so they emit nothing.

-- Hand events over: delete up to batch of the oldest (of one programme, or
-- of all) and return them in id order.  The caller's transaction owns them:
-- if it rolls back they are there again; two consumers never get the same
-- event (SKIP LOCKED), so a consumer that commits after its sink has them
-- hands each event over exactly once, and one that may fail between the
-- sink and its commit resends them with the same ids.
CREATE FUNCTION @extschema@.take_events(batch integer DEFAULT 100, program text DEFAULT NULL)
RETURNS SETOF @extschema@.event
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    IF batch IS NULL OR batch OPERATOR(pg_catalog.<) 1 OR batch OPERATOR(pg_catalog.>) 100000 THEN
        RAISE EXCEPTION 'batch must be between 1 and 100000, not %', COALESCE(batch::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF program IS NOT NULL THEN
        pid := @extschema@.program_id(program);
        -- two statements rather than "pid IS NULL OR ...", so that each
        -- reads its own index in order: (program_id, id) here, the key below
        RETURN QUERY
        WITH taken AS (
            DELETE FROM @extschema@.event e
             WHERE e.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT f.id FROM @extschema@.event f
                    WHERE f.program_id OPERATOR(pg_catalog.=) pid
                    ORDER BY f.program_id, f.id LIMIT batch
                      FOR UPDATE SKIP LOCKED))
            RETURNING e.*)
        SELECT * FROM taken ORDER BY taken.id;
    ELSE
        PERFORM @extschema@.require_every_program('loyalty.take_events of every programme');
        RETURN QUERY
        WITH taken AS (
            DELETE FROM @extschema@.event e
             WHERE e.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT f.id FROM @extschema@.event f ORDER BY f.id LIMIT batch
                      FOR UPDATE SKIP LOCKED))
            RETURNING e.*)
        SELECT * FROM taken ORDER BY taken.id;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.take_events(integer, text) IS
'hand over up to batch of the oldest events (of one programme, or all), deleting them in the caller''s transaction: a rollback gives them back';

-- The arguments every job function takes, checked in one place: a time
-- budget becomes the deadline, a batch limit must be positive.
CREATE FUNCTION @extschema@.job_deadline(time_budget interval)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF time_budget IS NULL OR time_budget OPERATOR(pg_catalog.<=) '0'::interval THEN
        RAISE EXCEPTION 'time_budget must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) time_budget;
END
$$;
COMMENT ON FUNCTION @extschema@.job_deadline(interval) IS
'the deadline of a job given its time_budget (22023 unless positive)';

CREATE FUNCTION @extschema@.job_limit(batch_limit integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF batch_limit IS NULL OR batch_limit OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_limit must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN batch_limit;
END
$$;
COMMENT ON FUNCTION @extschema@.job_limit(integer) IS
'a job''s batch_limit, checked (22023 unless positive)';

-- The job notice_expiring: for lots entering their programme's
-- expiry_notice window, one points_expiring event per wallet with the lots
-- and points that expire.  It locks the wallets (skipping those in use), as
-- every writer of lots does, and marks the lots; lots already past their
-- end are marked without an event (their expire entry reports them).
CREATE FUNCTION @extschema@.notice_expiring(batch_limit integer DEFAULT 10000,
                                            time_budget interval DEFAULT '50 seconds')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer := @extschema@.job_limit(batch_limit);
    deadline timestamptz := @extschema@.job_deadline(time_budget);
    horizon interval;
    done integer := 0;
    lots integer;
    events integer;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.notice_expiring');
    SELECT pg_catalog.max(g.expiry_notice) INTO horizon FROM @extschema@.program g;
    IF horizon IS NULL THEN
        RETURN 0;
    END IF;
    LOOP
        WITH candidate AS (
            SELECT l.id, l.customer_id, l.currency
              FROM @extschema@.lot l
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) l.program_id
             WHERE l.live AND l.valid_to IS NOT NULL AND l.expiry_noticed_at IS NULL
               AND l.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) horizon)
               AND l.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) g.expiry_notice)
             ORDER BY l.valid_to, l.id
             LIMIT LEAST(500, lim OPERATOR(pg_catalog.-) done)),
        locked AS (
            SELECT w.customer_id, w.currency
              FROM @extschema@.wallet w
             WHERE (w.customer_id, w.currency) IN (SELECT c.customer_id, c.currency FROM candidate c)
               FOR NO KEY UPDATE SKIP LOCKED),
        marked AS (
            UPDATE @extschema@.lot l SET expiry_noticed_at = pg_catalog.now()
              FROM candidate c, locked k
             WHERE l.id OPERATOR(pg_catalog.=) c.id
               AND k.customer_id OPERATOR(pg_catalog.=) c.customer_id
               AND k.currency OPERATOR(pg_catalog.=) c.currency
               AND l.live AND l.expiry_noticed_at IS NULL
            RETURNING l.id, l.program_id, l.customer_id, l.currency, l.remaining, l.valid_to),
        written AS (
            INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
            SELECT m.program_id, 'points_expiring', m.customer_id, pg_catalog.jsonb_build_object(
                       'currency', m.currency, 'points', pg_catalog.sum(m.remaining),
                       'expires_at', pg_catalog.min(m.valid_to),
                       'lots', pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                   'lot_id', m.id, 'points', m.remaining, 'valid_to', m.valid_to)
                               ORDER BY m.valid_to, m.id))
              FROM marked m
             WHERE m.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()
             GROUP BY m.program_id, m.customer_id, m.currency
            RETURNING 1)
        SELECT (SELECT pg_catalog.count(*) FROM marked), (SELECT pg_catalog.count(*) FROM written)
          INTO lots, events;
        done := done OPERATOR(pg_catalog.+) lots;
        EXIT WHEN lots OPERATOR(pg_catalog.=) 0 OR done OPERATOR(pg_catalog.>=) lim
               OR pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) deadline;
    END LOOP;
    RETURN done;
END
$$;
COMMENT ON FUNCTION @extschema@.notice_expiring(integer, interval) IS
'emit points_expiring events for lots entering their programme''s expiry_notice window, one per wallet, each lot once; returns the lots marked';

-- The job purge_events: events nobody took within the programme's
-- event_retention are deleted, oldest first.
CREATE FUNCTION @extschema@.purge_events(batch_limit integer DEFAULT 100000)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer := @extschema@.job_limit(batch_limit);
    gone integer;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.purge_events');
    WITH old AS (
        SELECT e.id FROM @extschema@.event e
          JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) e.program_id
         WHERE g.event_retention IS NOT NULL
           AND e.created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) g.event_retention)
         ORDER BY e.id LIMIT lim
           FOR UPDATE OF e SKIP LOCKED),
    gone_rows AS (
        DELETE FROM @extschema@.event e USING old WHERE e.id OPERATOR(pg_catalog.=) old.id RETURNING 1)
    SELECT pg_catalog.count(*) INTO gone FROM gone_rows;
    IF gone OPERATOR(pg_catalog.>) 0 THEN
        RAISE LOG 'loyalty.purge_events: % events older than their programme''s event_retention were deleted untaken', gone;
    END IF;
    RETURN gone;
END
$$;
COMMENT ON FUNCTION @extschema@.purge_events(integer) IS
'delete up to batch_limit events that no consumer took within their programme''s event_retention; returns how many';

REVOKE ALL ON FUNCTION
    @extschema@.job_deadline(interval),
    @extschema@.job_limit(integer),
    @extschema@.event_notify(),
    @extschema@.take_events(integer, text),
    @extschema@.notice_expiring(integer, interval),
    @extschema@.purge_events(integer)
FROM PUBLIC;

-- src/tiers.sql — tiers and rule-based segments: the audiences promotions
-- address by who the customer is.  A tier is qualified for by money spent
-- or receipts made over the programme's rolling window: a customer moves up
-- as soon as a receipt qualifies them (a trigger on the receipt), and down
-- only at the programme's review date (the job review_tiers); every change
-- is recorded in tier_change and emits tier_changed.  A rule segment is
-- rebuilt by the job refresh_segments from a condition over the customer's
-- document and purchase statistics (recency, frequency, monetary).  Their
-- benefits are promotions whose audience is the tier or the segment.

ALTER TABLE @extschema@.program
    ADD COLUMN tier_window interval NOT NULL DEFAULT '365 days'
    CHECK (tier_window OPERATOR(pg_catalog.>) '0'::interval),
    ADD COLUMN tier_review text NOT NULL DEFAULT 'quarter'
    CHECK (tier_review OPERATOR(pg_catalog.=) ANY ('{month,quarter,year}'::text[]));
COMMENT ON COLUMN @extschema@.program.tier_window IS 'the rolling window over which spend and receipts qualify for a tier';
COMMENT ON COLUMN @extschema@.program.tier_review IS 'month, quarter or year: customers move down a tier only at the start of one, when review_tiers reviews them';

CREATE TABLE @extschema@.tier (
    program_id   bigint NOT NULL REFERENCES @extschema@.program (id),
    code         text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name         text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    rank         integer NOT NULL CHECK (rank OPERATOR(pg_catalog.>=) 0),
    min_spend    numeric CHECK (min_spend OPERATOR(pg_catalog.>=) 0),
    min_receipts integer CHECK (min_receipts OPERATOR(pg_catalog.>=) 0),
    qualify      text NOT NULL DEFAULT 'all'
                 CHECK (qualify OPERATOR(pg_catalog.=) ANY ('{all,any}'::text[])),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (program_id, code),
    UNIQUE (program_id, rank)
);
COMMENT ON TABLE @extschema@.tier IS 'a level of a programme that customers qualify for by spend or receipts over the programme''s tier_window';
COMMENT ON COLUMN @extschema@.tier.code IS 'the code customer.tier holds and promotions'' tiers name';
COMMENT ON COLUMN @extschema@.tier.rank IS 'higher is better; the tier of rank 0, if any, is the base every customer qualifies for';
COMMENT ON COLUMN @extschema@.tier.min_spend IS 'money paid over the window (after refunds), in major units; NULL: no such condition';
COMMENT ON COLUMN @extschema@.tier.min_receipts IS 'receipts over the window (not cancelled or wholly refunded); NULL: no such condition';
COMMENT ON COLUMN @extschema@.tier.qualify IS 'all: every condition given must hold; any: one of them is enough';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier', '');

ALTER TABLE @extschema@.customer
    ADD COLUMN tier_since timestamptz,
    ADD COLUMN tier_reviewed_at timestamptz NOT NULL DEFAULT '-infinity';
COMMENT ON COLUMN @extschema@.customer.tier_since IS 'when the customer got the current tier';
COMMENT ON COLUMN @extschema@.customer.tier_reviewed_at IS 'when review_tiers last reviewed the customer; -infinity: never';
CREATE INDEX customer_tier_review_idx ON @extschema@.customer (program_id, tier_reviewed_at);

CREATE TABLE @extschema@.tier_change (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL,
    customer_id bigint NOT NULL,
    from_tier   text,
    to_tier     text,
    reason      text NOT NULL CHECK (reason OPERATOR(pg_catalog.=) ANY ('{qualified,review}'::text[])),
    spend       bigint NOT NULL,
    receipts    integer NOT NULL,
    receipt_id  text,
    changed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    actor       text NOT NULL DEFAULT @extschema@.actor()
);
CREATE INDEX tier_change_customer_idx ON @extschema@.tier_change (customer_id, changed_at);
COMMENT ON TABLE @extschema@.tier_change IS 'every change of a customer''s tier: from, to, why, and the spend and receipts that decided it';
COMMENT ON COLUMN @extschema@.tier_change.reason IS 'qualified: a receipt lifted the customer; review: the periodic review moved them (up or down)';
COMMENT ON COLUMN @extschema@.tier_change.spend IS 'money paid over the window, in minor units, when the change was decided';
COMMENT ON COLUMN @extschema@.tier_change.receipt_id IS 'the receipt that qualified the customer (reason qualified)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier_change', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.tier_change', 'id'), '');

-- What the customers of a programme bought since a time, per customer:
-- money paid after refunds (minor units), receipts that still stand, and
-- the last one's time.  Plain SQL without a SET clause, so that the
-- planner inlines it and pushes a filter on customer_id down to the index
-- (customer_stats) or aggregates the whole window in one pass
-- (refresh_segments); every name is qualified.
CREATE FUNCTION @extschema@.purchases(pid bigint, since timestamptz)
RETURNS TABLE (customer_id bigint, spend bigint, receipts integer, last_at timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT r.customer_id,
           COALESCE(pg_catalog.sum(r.to_pay OPERATOR(pg_catalog.-) COALESCE(f.money, 0)), 0)::bigint,
           (pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'refunded'))::integer,
           pg_catalog.max(r.committed_at) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'refunded')
      FROM @extschema@.receipt r
      LEFT JOIN LATERAL (SELECT pg_catalog.sum(x.money) AS money FROM @extschema@.receipt_refund x
                          WHERE x.program_id OPERATOR(pg_catalog.=) r.program_id
                            AND x.receipt_id OPERATOR(pg_catalog.=) r.receipt_id) f
             ON r.status OPERATOR(pg_catalog.<>) 'committed'
     WHERE r.program_id OPERATOR(pg_catalog.=) pid AND r.customer_id IS NOT NULL
       AND r.committed_at OPERATOR(pg_catalog.>=) since
       AND r.status OPERATOR(pg_catalog.<>) 'cancelled'
     GROUP BY r.customer_id
$$;
COMMENT ON FUNCTION @extschema@.purchases(bigint, timestamptz) IS
'per customer of a programme since a time: money paid after refunds (minor units), receipts not cancelled or wholly refunded, the last one''s time';

-- One customer's purchases (zeros without any).
CREATE FUNCTION @extschema@.customer_stats(pid bigint, cid bigint, since timestamptz,
                                           OUT spend bigint, OUT receipts integer, OUT last_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(p.spend, 0), COALESCE(p.receipts, 0), p.last_at
      FROM (SELECT 1) one
      LEFT JOIN @extschema@.purchases(pid, since) p ON p.customer_id OPERATOR(pg_catalog.=) cid
$$;
COMMENT ON FUNCTION @extschema@.customer_stats(bigint, bigint, timestamptz) IS
'a customer''s purchases since a time: money paid after refunds (minor units), receipts not cancelled or wholly refunded, the last one''s time';

-- The best tier the figures qualify for (NULL if the programme has none
-- they reach).
CREATE FUNCTION @extschema@.qualified_tier(pid bigint, spend bigint, receipts integer)
RETURNS @extschema@.tier
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.* FROM @extschema@.tier t, @extschema@.program g
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND g.id OPERATOR(pg_catalog.=) pid
       AND CASE WHEN t.min_spend IS NULL AND t.min_receipts IS NULL THEN true
                WHEN t.qualify OPERATOR(pg_catalog.=) 'any' THEN
                     spend OPERATOR(pg_catalog.>=) @extschema@.minor_units(t.min_spend, g.money_exponent)
                     OR receipts OPERATOR(pg_catalog.>=) t.min_receipts
                ELSE COALESCE(spend OPERATOR(pg_catalog.>=) @extschema@.minor_units(t.min_spend, g.money_exponent), true)
                     AND COALESCE(receipts OPERATOR(pg_catalog.>=) t.min_receipts, true) END
     ORDER BY t.rank DESC LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.qualified_tier(bigint, bigint, integer) IS
'the highest tier of the programme that this spend (minor units) and receipt count qualify for';

-- Move a customer from one tier to another, if the customer still has the
-- first (a commit and the review may decide at once): the change, its
-- record and its event.  Returns whether it moved.
CREATE FUNCTION @extschema@.change_tier(pid bigint, cid bigint, from_tier text, to_tier text,
                                        reason text, spend bigint, receipts integer, receipt_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE @extschema@.customer c
       SET tier = to_tier, tier_since = pg_catalog.now(), updated_at = pg_catalog.now()
     WHERE c.id OPERATOR(pg_catalog.=) cid AND c.tier IS NOT DISTINCT FROM from_tier;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO @extschema@.tier_change (program_id, customer_id, from_tier, to_tier, reason, spend,
                                         receipts, receipt_id)
    VALUES (pid, cid, from_tier, to_tier, reason, spend, receipts, receipt_id);
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (pid, 'tier_changed', cid, pg_catalog.jsonb_build_object(
                'from', from_tier, 'to', to_tier, 'reason', reason, 'receipts', receipts,
                'spend', @extschema@.major_units(spend, (SELECT g.money_exponent FROM @extschema@.program g
                                                          WHERE g.id OPERATOR(pg_catalog.=) pid)),
                'receipt_id', receipt_id));
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.change_tier(bigint, bigint, text, text, text, bigint, integer, text) IS
'move a customer from from_tier to to_tier if they still have from_tier, with a tier_change row and a tier_changed event';

-- A committed receipt lifts its customer at once to the best tier the
-- window now qualifies them for; it never lowers one.  Called by commit
-- (not a trigger: a restore inserts receipts again and must lift nobody).
CREATE FUNCTION @extschema@.lift_tier(pid bigint, cid bigint, rid text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st record;
    best @extschema@.tier;
    cur text;
    cur_rank integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @extschema@.tier t WHERE t.program_id OPERATOR(pg_catalog.=) pid) THEN
        RETURN;
    END IF;
    SELECT * INTO st FROM @extschema@.customer_stats(pid, cid,
        pg_catalog.now() OPERATOR(pg_catalog.-) (SELECT g.tier_window FROM @extschema@.program g
                                                  WHERE g.id OPERATOR(pg_catalog.=) pid));
    best := @extschema@.qualified_tier(pid, st.spend, st.receipts);
    IF best.code IS NULL THEN
        RETURN;
    END IF;
    -- the customer's tier as it is once a review of them has finished
    SELECT c.tier, t.rank INTO cur, cur_rank
      FROM @extschema@.customer c
      LEFT JOIN @extschema@.tier t ON t.program_id OPERATOR(pg_catalog.=) c.program_id
                                  AND t.code OPERATOR(pg_catalog.=) c.tier
     WHERE c.id OPERATOR(pg_catalog.=) cid
       FOR NO KEY UPDATE OF c;
    IF cur_rank IS NULL OR best.rank OPERATOR(pg_catalog.>) cur_rank THEN
        PERFORM @extschema@.change_tier(pid, cid, cur, best.code, 'qualified',
                                        st.spend, st.receipts, rid);
    END IF;
    RETURN;
END
$$;
COMMENT ON FUNCTION @extschema@.lift_tier(bigint, bigint, text) IS
'move a customer up to the best tier they now qualify for (called by commit for its receipt)';

-- The job review_tiers: from the start of each review period (month,
-- quarter or year), every customer of a programme with tiers is reviewed
-- once: moved to the tier the window qualifies them for, up or down.
-- Customers are claimed with SKIP LOCKED, a chunk at a time.
CREATE FUNCTION @extschema@.review_tiers(batch_limit integer DEFAULT 10000,
                                         time_budget interval DEFAULT '50 seconds')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer := @extschema@.job_limit(batch_limit);
    deadline timestamptz := @extschema@.job_deadline(time_budget);
    g record;
    c record;
    st record;
    best @extschema@.tier;
    done integer := 0;
    chunk integer;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.review_tiers');
    FOR g IN SELECT p.id, p.tier_window, pg_catalog.date_trunc(p.tier_review, pg_catalog.now()) AS review_from
               FROM @extschema@.program p
              WHERE EXISTS (SELECT 1 FROM @extschema@.tier t WHERE t.program_id OPERATOR(pg_catalog.=) p.id)
              ORDER BY p.id
    LOOP
        LOOP
            chunk := 0;
            FOR c IN SELECT u.id, u.tier FROM @extschema@.customer u
                      WHERE u.program_id OPERATOR(pg_catalog.=) g.id
                        AND u.tier_reviewed_at OPERATOR(pg_catalog.<) g.review_from
                        AND u.status OPERATOR(pg_catalog.<>) 'merged'
                      ORDER BY u.tier_reviewed_at, u.id
                      LIMIT LEAST(500, lim OPERATOR(pg_catalog.-) done)
                        FOR NO KEY UPDATE SKIP LOCKED
            LOOP
                SELECT * INTO st FROM @extschema@.customer_stats(g.id, c.id,
                    pg_catalog.now() OPERATOR(pg_catalog.-) g.tier_window);
                best := @extschema@.qualified_tier(g.id, st.spend, st.receipts);
                IF best.code IS DISTINCT FROM c.tier THEN
                    PERFORM @extschema@.change_tier(g.id, c.id, c.tier, best.code, 'review',
                                                    st.spend, st.receipts, NULL);
                END IF;
                UPDATE @extschema@.customer u SET tier_reviewed_at = pg_catalog.now()
                 WHERE u.id OPERATOR(pg_catalog.=) c.id;
                chunk := chunk OPERATOR(pg_catalog.+) 1;
            END LOOP;
            done := done OPERATOR(pg_catalog.+) chunk;
            IF done OPERATOR(pg_catalog.>=) lim OR pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) deadline THEN
                RETURN done;
            END IF;
            EXIT WHEN chunk OPERATOR(pg_catalog.=) 0;
        END LOOP;
    END LOOP;
    RETURN done;
END
$$;
COMMENT ON FUNCTION @extschema@.review_tiers(integer, interval) IS
'review the customers not yet reviewed in the current review period of their programme: each moves to the tier the window qualifies them for, up or down; returns how many were reviewed';

-- Rule-based segments
ALTER TABLE @extschema@.segment
    ADD COLUMN kind text NOT NULL DEFAULT 'static'
    CHECK (kind OPERATOR(pg_catalog.=) ANY ('{static,rule}'::text[])),
    ADD COLUMN rule @extschema@.condition,
    ADD COLUMN stats_window interval NOT NULL DEFAULT '365 days'
    CHECK (stats_window OPERATOR(pg_catalog.>) '0'::interval),
    ADD COLUMN refresh_every interval NOT NULL DEFAULT '1 day'
    CHECK (refresh_every OPERATOR(pg_catalog.>) '0'::interval),
    ADD COLUMN refreshed_at timestamptz,
    ADD COLUMN members bigint,
    ADD CONSTRAINT segment_rule_check CHECK ((kind OPERATOR(pg_catalog.=) 'rule') OPERATOR(pg_catalog.=) (rule IS NOT NULL));
COMMENT ON COLUMN @extschema@.segment.kind IS 'static: members are added and removed by hand; rule: refresh_segments keeps the customers the rule holds for';
COMMENT ON COLUMN @extschema@.segment.rule IS 'a condition over customer.* (the document calculate reads, with recency_days, frequency and monetary over stats_window)';
COMMENT ON COLUMN @extschema@.segment.stats_window IS 'the window of the purchase statistics the rule reads';
COMMENT ON COLUMN @extschema@.segment.refresh_every IS 'how often refresh_segments rebuilds a rule segment';
COMMENT ON COLUMN @extschema@.segment.refreshed_at IS 'when the rule segment was last rebuilt; NULL: never';
COMMENT ON COLUMN @extschema@.segment.members IS 'members after the last rebuild';
CREATE INDEX segment_member_segment_idx ON @extschema@.segment_member (program_id, segment);

-- The customer as a segment rule reads it: what calculate reads as
-- customer.* (id, status, tier, birthday, home_city, segments, attributes)
-- and the purchase statistics: recency_days (days since the last receipt;
-- absent without one), frequency (receipts), monetary (money paid, in
-- major units).
CREATE FUNCTION @extschema@.customer_document(c @extschema@.customer, spend bigint, receipts integer,
                                              last_at timestamptz, money_exponent integer)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'id', c.id, 'status', c.status, 'tier', c.tier,
               'birthday', pg_catalog.to_char(c.birth_date, 'YYYY-MM-DD'), 'home_city', c.home_city,
               'segments', COALESCE((SELECT pg_catalog.jsonb_agg(m.segment ORDER BY m.segment)
                                       FROM @extschema@.segment_member m
                                      WHERE m.customer_id OPERATOR(pg_catalog.=) c.id), '[]'),
               'attributes', c.attributes,
               'recency_days', pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) last_at)
                                                OPERATOR(pg_catalog./) 86400)::integer,
               'frequency', COALESCE(receipts, 0),
               'monetary', @extschema@.major_units(COALESCE(spend, 0), money_exponent)))
$$;
COMMENT ON FUNCTION @extschema@.customer_document(@extschema@.customer, bigint, integer, timestamptz, integer) IS
'the customer document segment rules read: calculate''s customer.* with recency_days, frequency and monetary';

-- The job refresh_segments: rebuild the rule segments that are due, each
-- in one statement (the members the rule holds for are added, the others
-- removed), claimed with SKIP LOCKED so that two workers share them.
CREATE FUNCTION @extschema@.refresh_segments(time_budget interval DEFAULT '50 seconds',
                                             force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline timestamptz := @extschema@.job_deadline(time_budget);
    s record;
    n bigint;
    gained bigint;
    lost bigint;
    refreshed integer := 0;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.refresh_segments');
    IF force IS NULL THEN
        RAISE EXCEPTION 'force must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    LOOP
        SELECT g.program_id, g.code, g.rule, g.stats_window, p.money_exponent INTO s
          FROM @extschema@.segment g JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) g.program_id
         WHERE g.kind OPERATOR(pg_catalog.=) 'rule'
           AND (force OR g.refreshed_at IS NULL
                OR g.refreshed_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.-) g.refresh_every))
           AND (g.refreshed_at IS NULL OR g.refreshed_at OPERATOR(pg_catalog.<) pg_catalog.now())
         ORDER BY g.refreshed_at NULLS FIRST, g.program_id, g.code
         LIMIT 1
           FOR NO KEY UPDATE OF g SKIP LOCKED;
        EXIT WHEN NOT FOUND;
        WITH stats AS (
            SELECT * FROM @extschema@.purchases(s.program_id,
                                                pg_catalog.now() OPERATOR(pg_catalog.-) s.stats_window)),
        wanted AS (
            SELECT c.id
              FROM @extschema@.customer c
              LEFT JOIN stats t ON t.customer_id OPERATOR(pg_catalog.=) c.id
             WHERE c.program_id OPERATOR(pg_catalog.=) s.program_id
               AND c.status OPERATOR(pg_catalog.<>) 'merged'
               AND @extschema@.matches(s.rule, '{}'::jsonb,
                                       pg_catalog.jsonb_build_object('at', pg_catalog.now()),
                                       @extschema@.customer_document(c, t.spend, t.receipts, t.last_at,
                                                                     s.money_exponent))),
        added AS (
            INSERT INTO @extschema@.segment_member (customer_id, program_id, segment)
            SELECT w.id, s.program_id, s.code FROM wanted w
            ON CONFLICT DO NOTHING
            RETURNING 1),
        removed AS (
            DELETE FROM @extschema@.segment_member m
             WHERE m.program_id OPERATOR(pg_catalog.=) s.program_id
               AND m.segment OPERATOR(pg_catalog.=) s.code
               AND m.customer_id OPERATOR(pg_catalog.<>) ALL (ARRAY(SELECT w.id FROM wanted w))
            RETURNING 1)
        SELECT (SELECT pg_catalog.count(*) FROM wanted), (SELECT pg_catalog.count(*) FROM added),
               (SELECT pg_catalog.count(*) FROM removed)
          INTO n, gained, lost;
        RAISE DEBUG 'loyalty.refresh_segments: segment % of programme %: % members, % added, % removed',
            s.code, s.program_id, n, gained, lost;
        UPDATE @extschema@.segment g SET refreshed_at = pg_catalog.now(), members = n
         WHERE g.program_id OPERATOR(pg_catalog.=) s.program_id AND g.code OPERATOR(pg_catalog.=) s.code;
        refreshed := refreshed OPERATOR(pg_catalog.+) 1;
        EXIT WHEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) deadline;
    END LOOP;
    RETURN refreshed;
END
$$;
COMMENT ON FUNCTION @extschema@.refresh_segments(interval, boolean) IS
'rebuild the rule segments due (refresh_every since the last rebuild; all with force): add the customers the rule holds for, remove the others; returns how many segments were rebuilt';

REVOKE ALL ON FUNCTION
    @extschema@.purchases(bigint, timestamptz),
    @extschema@.customer_stats(bigint, bigint, timestamptz),
    @extschema@.qualified_tier(bigint, bigint, integer),
    @extschema@.change_tier(bigint, bigint, text, text, text, bigint, integer, text),
    @extschema@.lift_tier(bigint, bigint, text),
    @extschema@.review_tiers(integer, interval),
    @extschema@.customer_document(@extschema@.customer, bigint, integer, timestamptz, integer),
    @extschema@.refresh_segments(interval, boolean)
FROM PUBLIC;

-- src/jobs.sql — the background jobs: plain functions, each safe to run
-- concurrently and after a failover (each works from what is due now),
-- scheduled with pg_cron by loyalty.schedule_jobs() under stable names, and
-- watched through the view loyalty.job_health.

-- The jobs: name (the pg_cron job name), schedule (cron syntax), the
-- command, and what it does.  Each command does what is due now within a
-- time budget under the minute, so runs do not pile up; the ones that lock
-- wallets run in transactions of at most 0.2 s (loyalty.run_job), so that a till
-- never waits long for a wallet a job holds.
CREATE FUNCTION @extschema@.jobs()
RETURNS TABLE (job text, schedule text, command text, description text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('loyalty.release_accruals', '* * * * *',
            'CALL loyalty.run_job(''release_accruals'', ''50 seconds'')',
            'releases the accruals of the queue that are due as lots'),
           ('loyalty.expire_due', '* * * * *',
            'CALL loyalty.run_job(''expire_due'', ''50 seconds'')',
            'records expired lots as expire entries in the ledger'),
           ('loyalty.release_expired_holds', '* * * * *',
            'CALL loyalty.run_job(''release_expired_holds'', ''50 seconds'')',
            'marks holds past their deadline expired, with release entries'),
           ('loyalty.notice_expiring', '*/10 * * * *',
            'CALL loyalty.run_job(''notice_expiring'', ''50 seconds'')',
            'emits a points_expiring event per wallet for lots entering their programme''s expiry_notice window'),
           ('loyalty.purge_events', '41 * * * *',
            'SELECT loyalty.purge_events(100000)',
            'deletes events that no consumer took within their programme''s event_retention'),
           ('loyalty.review_tiers', '29 * * * *',
            'CALL loyalty.run_job(''review_tiers'', ''50 seconds'')',
            'from the start of each review period, moves every customer to the tier the window qualifies them for, up or down'),
           ('loyalty.refresh_segments', '53 * * * *',
            'SELECT loyalty.refresh_segments(''50 seconds'')',
            'rebuilds the rule segments whose refresh_every has passed'),
           ('loyalty.create_partitions', '17 * * * *',
            'SELECT loyalty.create_partitions(3)',
            'keeps monthly partitions of receipts and receipt lines three months ahead')
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
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_accruals' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(q.release_at) INTO due
              FROM @extschema@.accrual_queue q
             WHERE q.release_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_expired_holds' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(h.expires_at) INTO due
              FROM @extschema@.hold h
             WHERE h.status OPERATOR(pg_catalog.=) 'active'
               AND h.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.notice_expiring' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(l.valid_to OPERATOR(pg_catalog.-) g.expiry_notice) INTO due
              FROM @extschema@.lot l
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) l.program_id
             WHERE l.live AND l.valid_to IS NOT NULL AND l.expiry_noticed_at IS NULL
               AND l.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()
               AND l.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) g.expiry_notice);
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.purge_events' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(e.created_at OPERATOR(pg_catalog.+) g.event_retention) INTO due
              FROM @extschema@.event e
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) e.program_id
             WHERE e.created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) g.event_retention);
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.review_tiers' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(pg_catalog.date_trunc(g.tier_review, pg_catalog.now())) INTO due
              FROM @extschema@.program g
              JOIN @extschema@.customer u ON u.program_id OPERATOR(pg_catalog.=) g.id
             WHERE EXISTS (SELECT 1 FROM @extschema@.tier t WHERE t.program_id OPERATOR(pg_catalog.=) g.id)
               AND u.tier_reviewed_at OPERATOR(pg_catalog.<) pg_catalog.date_trunc(g.tier_review, pg_catalog.now())
               AND u.status OPERATOR(pg_catalog.<>) 'merged';
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.refresh_segments' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(COALESCE(s.refreshed_at OPERATOR(pg_catalog.+) s.refresh_every, pg_catalog.now())) INTO due
              FROM @extschema@.segment s
             WHERE s.kind OPERATOR(pg_catalog.=) 'rule'
               AND (s.refreshed_at IS NULL
                    OR s.refreshed_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.-) s.refresh_every));
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
REVOKE ALL ON FUNCTION @extschema@.job_health_rows() FROM PUBLIC;

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
COMMENT ON COLUMN @extschema@.job_health.backlog IS 'rows due now that the job has not done: accruals past release_at, lots past valid_to, holds past expires_at, lots in their notice window (not yet expired) without a notice, events past their retention, customers not yet reviewed this review period, rule segments due for a rebuild';
COMMENT ON COLUMN @extschema@.job_health.oldest_due_age IS 'how long the oldest of them has been due; NULL when none';

-- src/recompute.sql — what a return breaks.  A receipt keeps the document
-- it was committed with; a refund recomputes the lines kept with only the
-- promotions the receipt had (loyalty.recompute, as committed: their day,
-- place, audience, limits and coupons held then), and keeps back from the
-- money the discount the kept lines no longer earn ("3 for 2" with one of
-- the three returned), or gives it back when a later return ends the loss.
-- The counters of promotions that no longer hold are given back.

ALTER TABLE @extschema@.receipt
    ADD COLUMN document jsonb,
    ADD COLUMN discount_lost bigint NOT NULL DEFAULT 0
        CHECK (discount_lost OPERATOR(pg_catalog.>=) 0);
ALTER TABLE @extschema@.receipt ALTER COLUMN document SET COMPRESSION lz4;
COMMENT ON COLUMN @extschema@.receipt.document IS
'the receipt as sent to commit, for recomputing the lines kept after a return (NULL for receipts committed before version 0.9)';
COMMENT ON COLUMN @extschema@.receipt.discount_lost IS
'minor units of discount the lines kept no longer earn after the returns so far, kept back from the money refunded';

ALTER TABLE @extschema@.receipt_refund
    ADD COLUMN discount_withheld bigint NOT NULL DEFAULT 0,
    ADD COLUMN counters_returned jsonb NOT NULL DEFAULT '[]';
COMMENT ON COLUMN @extschema@.receipt_refund.discount_withheld IS
'minor units kept back from the money because the lines kept lose a discount (negative: given back, a loss ended)';
COMMENT ON COLUMN @extschema@.receipt_refund.counters_returned IS
'the counter uses given back: promotions of the receipt that no longer hold for the lines kept';

-- The ids of the promotions an answer of calculate applied
CREATE FUNCTION @extschema@.applied_promotion_ids(pid bigint, answer jsonb)
RETURNS bigint[]
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(pg_catalog.array_agg(m.id ORDER BY m.id), '{}')
      FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.#>) '{promotions,applied}') a
      JOIN @extschema@.promotion m ON m.program_id OPERATOR(pg_catalog.=) pid
                                  AND m.code OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'code')
$$;
COMMENT ON FUNCTION @extschema@.applied_promotion_ids(bigint, jsonb) IS
'the ids of the promotions in promotions.applied of an answer of calculate (empty if none; internal: refund)';
REVOKE ALL ON FUNCTION @extschema@.applied_promotion_ids(bigint, jsonb) FROM PUBLIC;

CREATE FUNCTION @extschema@.recompute(receipt jsonb, promotions bigint[])
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_recompute'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.recompute(jsonb, bigint[]) IS
'calculate a receipt over only these promotions, whatever their status, as committed: their day, place, audience, limits and coupons are not asked again (internal: refund)';
REVOKE ALL ON FUNCTION @extschema@.recompute(jsonb, bigint[]) FROM PUBLIC;

-- A use given back to each counter a receipt counted in (cancel, and refund
-- for promotions that no longer hold), but not to those a refund gave back
-- already (marked "returned")
CREATE FUNCTION @extschema@.return_counter_uses(counters jsonb)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    UPDATE @extschema@.counter t
       SET uses = t.uses OPERATOR(pg_catalog.-) 1,
           money = GREATEST(t.money OPERATOR(pg_catalog.-) (c OPERATOR(pg_catalog.->>) 'money')::bigint, 0),
           updated_at = pg_catalog.now()
      FROM pg_catalog.jsonb_array_elements(counters) c
     WHERE t.promotion_id OPERATOR(pg_catalog.=) (c OPERATOR(pg_catalog.->>) 'promotion_id')::bigint
       AND t.customer_id OPERATOR(pg_catalog.=) (c OPERATOR(pg_catalog.->>) 'customer_id')::bigint
       AND t.period_start OPERATOR(pg_catalog.=) (c OPERATOR(pg_catalog.->>) 'period_start')::date
       AND t.uses OPERATOR(pg_catalog.>) 0
       AND (c OPERATOR(pg_catalog.->) 'returned') IS NULL
$$;
COMMENT ON FUNCTION @extschema@.return_counter_uses(jsonb) IS
'give back one use (and its money) to each counter of a receipt''s counters list not marked returned (internal: cancel, refund)';
REVOKE ALL ON FUNCTION @extschema@.return_counter_uses(jsonb) FROM PUBLIC;

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
-- src/reports.sql — the views BI tools read: lots and expiring points,
-- promotion performance, coupon usage, tiers, the customer at a glance,
-- receipts per store and day.  (Balances, the ledger, liability and
-- lot_usage are with the points in src/ledger.sql, job health with the jobs
-- in src/jobs.sql.)
--
-- Each view shows the rows of the programmes the reading role reaches
-- (program_open).  Those that report per day walk the days of a series and
-- call a function per day (expiring_day, tier_day, store_day in PL/pgSQL,
-- so that their plans are kept for the session; promotion_day in C, which
-- reads the jsonb of each line tens of times faster, src/reports.c) that
-- reads that day's rows by a range of their timestamp
-- (through the BRIN indexes on committed_at and changed_at): a condition on
-- "day" filters the series before any row is read.  The functions run as
-- the owner (the analyst reads no table), check the programme, and plan
-- without JIT: a report reads a few days, and compiling it would cost more
-- than running it.  Days are dates in the session's time zone.

-- Live lots (points not yet spent or expired), one row each.
CREATE VIEW @extschema@.lots AS
SELECT p.code AS program,
       l.customer_id,
       l.currency,
       l.id AS lot_id,
       l.kind,
       l.amount,
       l.remaining,
       l.valid_from,
       l.valid_to,
       CASE WHEN l.valid_from OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'pending'
            WHEN l.valid_to OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 'expired'
            ELSE 'valid' END AS state,
       l.restriction,
       l.priority,
       l.created_at
  FROM @extschema@.lot l
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) l.program_id
 WHERE l.live
   AND @extschema@.program_open(l.program_id);
COMMENT ON VIEW @extschema@.lots IS 'every lot with points left: what each customer has, in which currency, valid from when to when';
COMMENT ON COLUMN @extschema@.lots.program IS 'programme code';
COMMENT ON COLUMN @extschema@.lots.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.lots.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.lots.lot_id IS 'the lot';
COMMENT ON COLUMN @extschema@.lots.kind IS 'regular, promo, refund, adjustment, transfer, conversion: how the points came';
COMMENT ON COLUMN @extschema@.lots.amount IS 'points the lot was created with, in minor units';
COMMENT ON COLUMN @extschema@.lots.remaining IS 'points left, in minor units';
COMMENT ON COLUMN @extschema@.lots.valid_from IS 'when the points start to count';
COMMENT ON COLUMN @extschema@.lots.valid_to IS 'when they expire (NULL: never)';
COMMENT ON COLUMN @extschema@.lots.state IS 'pending (not yet valid), valid, or expired (past valid_to, the expiry not yet recorded by the job expire_due)';
COMMENT ON COLUMN @extschema@.lots.restriction IS 'the products the points may pay for (a condition or a label); NULL: any';
COMMENT ON COLUMN @extschema@.lots.priority IS 'spent before lots of lower priority expiring at the same time';
COMMENT ON COLUMN @extschema@.lots.created_at IS 'when the lot was created';

-- Points that expire, per programme, currency and day, for the next 180 days.
CREATE FUNCTION @extschema@.expiring_day(program_id bigint, day date)
RETURNS TABLE (currency text, lots bigint, customers bigint, points bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
ROWS 3
AS $$
#variable_conflict use_column
BEGIN
    PERFORM @extschema@.require_program(expiring_day.program_id, pg_catalog.format('programme %s', expiring_day.program_id));
    RETURN QUERY
        SELECT l.currency, pg_catalog.count(*), pg_catalog.count(DISTINCT l.customer_id), pg_catalog.sum(l.remaining)::bigint
          FROM @extschema@.lot l
         WHERE l.live AND l.valid_to IS NOT NULL
           AND l.valid_to OPERATOR(pg_catalog.>=) GREATEST(expiring_day.day::timestamptz, pg_catalog.now())
           AND l.valid_to OPERATOR(pg_catalog.<) (expiring_day.day OPERATOR(pg_catalog.+) 1)::timestamptz
           AND l.program_id OPERATOR(pg_catalog.=) expiring_day.program_id
           AND l.valid_from OPERATOR(pg_catalog.<=) l.valid_to
         GROUP BY l.currency;
END
$$;
COMMENT ON FUNCTION @extschema@.expiring_day(bigint, date) IS
'the rows of the view expiring_points for one programme and day (42501 if the role does not reach the programme)';

CREATE VIEW @extschema@.expiring_points AS
SELECT p.code AS program,
       x.currency,
       d.day::date AS day,
       x.lots,
       x.customers,
       x.points,
       pg_catalog.round(x.points::numeric OPERATOR(pg_catalog.*) c.money_per_unit
                        OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, c.exponent), p.money_exponent) AS money,
       p.money_currency
  FROM @extschema@.program p
 CROSS JOIN LATERAL pg_catalog.generate_series(CURRENT_DATE::timestamp,
                                               (CURRENT_DATE OPERATOR(pg_catalog.+) 179)::timestamp, '1 day') AS d (day)
 CROSS JOIN LATERAL @extschema@.expiring_day(p.id, d.day::date) x
  JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) p.id AND c.code OPERATOR(pg_catalog.=) x.currency
 WHERE @extschema@.program_open(p.id);
COMMENT ON VIEW @extschema@.expiring_points IS 'points that will expire, per programme, currency and day, today and the next 179 days (not yet expired, still counting)';
COMMENT ON COLUMN @extschema@.expiring_points.program IS 'programme code';
COMMENT ON COLUMN @extschema@.expiring_points.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.expiring_points.day IS 'the day they expire (session time zone); today counts from now';
COMMENT ON COLUMN @extschema@.expiring_points.lots IS 'lots that expire that day';
COMMENT ON COLUMN @extschema@.expiring_points.customers IS 'customers whose points expire that day';
COMMENT ON COLUMN @extschema@.expiring_points.points IS 'points that expire, in minor units';
COMMENT ON COLUMN @extschema@.expiring_points.money IS 'their value in the programme''s money (major units)';
COMMENT ON COLUMN @extschema@.expiring_points.money_currency IS 'ISO 4217 code of money';

-- What each promotion gave, per day.
CREATE FUNCTION @extschema@.promotion_day(program_id bigint, day date)
RETURNS TABLE (promotion text, receipts bigint, lines bigint, discount numeric, points_issued numeric,
               points_money numeric)
AS 'MODULE_PATHNAME', 'loyalty_promotion_day'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
ROWS 50;
COMMENT ON FUNCTION @extschema@.promotion_day(bigint, date) IS
'the rows of the view promotion_performance for one programme and day (42501 if the role does not reach the programme)';

CREATE VIEW @extschema@.promotion_performance AS
SELECT p.code AS program,
       d.day::date AS day,
       m.code AS promotion,
       m.name,
       x.receipts,
       x.lines,
       pg_catalog.round(x.discount, p.money_exponent) AS discount,
       pg_catalog.round(x.points_issued, k.exponent) AS points_issued,
       k.code AS points_currency,
       pg_catalog.round(x.points_money, p.money_exponent) AS points_money,
       p.money_currency
  FROM @extschema@.program p
 CROSS JOIN LATERAL pg_catalog.generate_series(p.created_at::date::timestamp,
                                               CURRENT_DATE::timestamp, '1 day') AS d (day)
 CROSS JOIN LATERAL @extschema@.promotion_day(p.id, d.day::date) x
  JOIN @extschema@.promotion m ON m.program_id OPERATOR(pg_catalog.=) p.id AND m.code OPERATOR(pg_catalog.=) x.promotion
  JOIN @extschema@.currency k ON k.program_id OPERATOR(pg_catalog.=) p.id
                            AND k.code OPERATOR(pg_catalog.=) COALESCE(m.benefit OPERATOR(pg_catalog.->>) 'currency', p.default_currency)
 WHERE @extschema@.program_open(p.id);
COMMENT ON VIEW @extschema@.promotion_performance IS 'what each promotion gave per day: receipts and lines it applied to, the discount, the points it issued, the money paid with points on its lines; cancelled receipts left out, returned quantities taken off';
COMMENT ON COLUMN @extschema@.promotion_performance.program IS 'programme code';
COMMENT ON COLUMN @extschema@.promotion_performance.day IS 'the day the receipts were committed (session time zone)';
COMMENT ON COLUMN @extschema@.promotion_performance.promotion IS 'promotion code';
COMMENT ON COLUMN @extschema@.promotion_performance.name IS 'promotion name';
COMMENT ON COLUMN @extschema@.promotion_performance.receipts IS 'receipts it gave a discount or points on';
COMMENT ON COLUMN @extschema@.promotion_performance.lines IS 'receipt lines it gave a discount or points on';
COMMENT ON COLUMN @extschema@.promotion_performance.discount IS 'discount it gave, in the programme''s money (major units), less the returned share of each line';
COMMENT ON COLUMN @extschema@.promotion_performance.points_issued IS 'points it added to the accrual (multipliers, points per amount), in points_currency (major units), less the returned share';
COMMENT ON COLUMN @extschema@.promotion_performance.points_currency IS 'the currency of points_issued: the benefit''s, or the programme''s default';
COMMENT ON COLUMN @extschema@.promotion_performance.points_money IS 'money paid with points on the lines it applied to (major units), less the returned share';
COMMENT ON COLUMN @extschema@.promotion_performance.money_currency IS 'ISO 4217 code of money';

-- Coupons and how far they are used.
CREATE VIEW @extschema@.coupon_usage AS
SELECT p.code AS program,
       c.code AS coupon,
       m.code AS promotion,
       c.kind,
       c.customer_id,
       c.state,
       c.uses,
       COALESCE(c.use_limit, CASE WHEN c.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END) AS use_limit,
       c.valid,
       c.created_at,
       c.issued_by,
       c.issue_reason
  FROM @extschema@.coupon c
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) c.program_id
  JOIN @extschema@.promotion m ON m.id OPERATOR(pg_catalog.=) c.promotion_id
 WHERE @extschema@.program_open(c.program_id);
COMMENT ON VIEW @extschema@.coupon_usage IS 'every coupon: its promotion, holder, state and how many committed receipts used it';
COMMENT ON COLUMN @extschema@.coupon_usage.program IS 'programme code';
COMMENT ON COLUMN @extschema@.coupon_usage.coupon IS 'the code as printed';
COMMENT ON COLUMN @extschema@.coupon_usage.promotion IS 'the promotion it unlocks';
COMMENT ON COLUMN @extschema@.coupon_usage.kind IS 'single_use, multi_use or personal';
COMMENT ON COLUMN @extschema@.coupon_usage.customer_id IS 'the holder of a personal coupon';
COMMENT ON COLUMN @extschema@.coupon_usage.state IS 'issued, redeemed (used up) or cancelled';
COMMENT ON COLUMN @extschema@.coupon_usage.uses IS 'committed receipts that used it (a cancel gives a use back)';
COMMENT ON COLUMN @extschema@.coupon_usage.use_limit IS 'most uses (NULL: without limit)';
COMMENT ON COLUMN @extschema@.coupon_usage.valid IS 'when it may be used';
COMMENT ON COLUMN @extschema@.coupon_usage.created_at IS 'when it was issued';
COMMENT ON COLUMN @extschema@.coupon_usage.issued_by IS 'the role that issued it';
COMMENT ON COLUMN @extschema@.coupon_usage.issue_reason IS 'why, as the issuer wrote it';

-- Customers per tier.
CREATE VIEW @extschema@.tier_distribution AS
SELECT p.code AS program,
       n.tier,
       t.name,
       t.rank,
       n.customers,
       pg_catalog.round(n.customers::numeric OPERATOR(pg_catalog./)
                        pg_catalog.sum(n.customers) OVER (PARTITION BY p.id) OPERATOR(pg_catalog.*) 100, 2) AS percent
  FROM (SELECT k.program_id, k.tier, pg_catalog.count(*) AS customers
          FROM @extschema@.customer k
         WHERE k.status OPERATOR(pg_catalog.<>) 'merged'
           AND @extschema@.program_open(k.program_id)
         GROUP BY k.program_id, k.tier) n
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) n.program_id
  LEFT JOIN @extschema@.tier t ON t.program_id OPERATOR(pg_catalog.=) n.program_id
                              AND t.code OPERATOR(pg_catalog.=) n.tier;
COMMENT ON VIEW @extschema@.tier_distribution IS 'customers (not merged away) per programme and tier';
COMMENT ON COLUMN @extschema@.tier_distribution.program IS 'programme code';
COMMENT ON COLUMN @extschema@.tier_distribution.tier IS 'tier code; NULL: customers without a tier';
COMMENT ON COLUMN @extschema@.tier_distribution.name IS 'tier name';
COMMENT ON COLUMN @extschema@.tier_distribution.rank IS 'tier rank (higher is better)';
COMMENT ON COLUMN @extschema@.tier_distribution.customers IS 'customers in the tier';
COMMENT ON COLUMN @extschema@.tier_distribution.percent IS 'their share of the programme''s customers, in percent';

-- Tier changes per day.
CREATE FUNCTION @extschema@.tier_day(program_id bigint, day date)
RETURNS TABLE (from_tier text, to_tier text, reason text, customers bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
ROWS 10
AS $$
#variable_conflict use_column
BEGIN
    PERFORM @extschema@.require_program(tier_day.program_id, pg_catalog.format('programme %s', tier_day.program_id));
    RETURN QUERY
        SELECT c.from_tier, c.to_tier, c.reason, pg_catalog.count(*)
          FROM @extschema@.tier_change c
         WHERE c.program_id OPERATOR(pg_catalog.=) tier_day.program_id
           AND c.changed_at OPERATOR(pg_catalog.>=) tier_day.day::timestamptz
           AND c.changed_at OPERATOR(pg_catalog.<) (tier_day.day OPERATOR(pg_catalog.+) 1)::timestamptz
         GROUP BY c.from_tier, c.to_tier, c.reason;
END
$$;
COMMENT ON FUNCTION @extschema@.tier_day(bigint, date) IS
'the rows of the view tier_movements for one programme and day (42501 if the role does not reach the programme)';

CREATE VIEW @extschema@.tier_movements AS
SELECT p.code AS program,
       d.day::date AS day,
       x.from_tier,
       x.to_tier,
       x.reason,
       x.customers
  FROM @extschema@.program p
 CROSS JOIN LATERAL pg_catalog.generate_series(p.created_at::date::timestamp,
                                               CURRENT_DATE::timestamp, '1 day') AS d (day)
 CROSS JOIN LATERAL @extschema@.tier_day(p.id, d.day::date) x
 WHERE @extschema@.program_open(p.id);
COMMENT ON VIEW @extschema@.tier_movements IS 'tier changes per programme and day: from which tier to which, why, how many customers';
COMMENT ON COLUMN @extschema@.tier_movements.program IS 'programme code';
COMMENT ON COLUMN @extschema@.tier_movements.day IS 'the day of the change (session time zone)';
COMMENT ON COLUMN @extschema@.tier_movements.from_tier IS 'tier before (NULL: none)';
COMMENT ON COLUMN @extschema@.tier_movements.to_tier IS 'tier after';
COMMENT ON COLUMN @extschema@.tier_movements.reason IS 'qualified (moved up at a receipt or review), review (moved down at the review), manual';
COMMENT ON COLUMN @extschema@.tier_movements.customers IS 'changes (customers) that day';

-- One customer at a glance.
CREATE VIEW @extschema@.customer_360 AS
SELECT p.code AS program,
       k.id AS customer_id,
       k.status,
       k.tier,
       k.tier_since,
       k.birth_date,
       k.home_city,
       k.created_at,
       (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('kind', i.kind, 'value', i.value)
                                    ORDER BY i.kind, i.created_at)
          FROM @extschema@.identifier i
         WHERE i.customer_id OPERATOR(pg_catalog.=) k.id
           AND i.status OPERATOR(pg_catalog.=) 'active') AS identifiers,
       (SELECT pg_catalog.array_agg(s.segment ORDER BY s.segment)
          FROM @extschema@.segment_member s
         WHERE s.customer_id OPERATOR(pg_catalog.=) k.id) AS segments,
       (SELECT pg_catalog.jsonb_object_agg(b.currency, b.balance)
          FROM @extschema@.balances b
         WHERE b.customer_id OPERATOR(pg_catalog.=) k.id) AS balances,
       (SELECT pg_catalog.count(*) FROM @extschema@.receipt r
         WHERE r.customer_id OPERATOR(pg_catalog.=) k.id
           AND r.status OPERATOR(pg_catalog.<>) 'cancelled') AS receipts,
       (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'receipt_id', q.receipt_id, 'committed_at', q.committed_at, 'store', q.store,
                   'status', q.status,
                   'amount', pg_catalog.round(q.amount::numeric OPERATOR(pg_catalog./)
                                              pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent),
                   'to_pay', pg_catalog.round(q.to_pay::numeric OPERATOR(pg_catalog./)
                                              pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent))
                   ORDER BY q.committed_at DESC, q.receipt_id DESC)
          FROM (SELECT r.receipt_id, r.committed_at, r.store, r.status, r.amount, r.to_pay
                  FROM @extschema@.receipt r
                 WHERE r.customer_id OPERATOR(pg_catalog.=) k.id
                 ORDER BY r.committed_at DESC, r.receipt_id DESC LIMIT 5) q) AS last_receipts
  FROM @extschema@.customer k
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) k.program_id
 WHERE @extschema@.program_open(k.program_id);
COMMENT ON VIEW @extschema@.customer_360 IS 'one customer at a glance: status, tier, identifiers, segments, balances, receipts and the last five';
COMMENT ON COLUMN @extschema@.customer_360.program IS 'programme code';
COMMENT ON COLUMN @extschema@.customer_360.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.customer_360.status IS 'active, blocked, fraud_hold or merged';
COMMENT ON COLUMN @extschema@.customer_360.tier IS 'current tier code';
COMMENT ON COLUMN @extschema@.customer_360.tier_since IS 'since when';
COMMENT ON COLUMN @extschema@.customer_360.birth_date IS 'birth date';
COMMENT ON COLUMN @extschema@.customer_360.home_city IS 'home city';
COMMENT ON COLUMN @extschema@.customer_360.created_at IS 'when the customer enrolled';
COMMENT ON COLUMN @extschema@.customer_360.identifiers IS 'active identifiers: [{"kind": "card", "value": ...}, ...]';
COMMENT ON COLUMN @extschema@.customer_360.segments IS 'segments the customer is in';
COMMENT ON COLUMN @extschema@.customer_360.balances IS 'effective balance per currency, in minor units: {"bonus": 1200}';
COMMENT ON COLUMN @extschema@.customer_360.receipts IS 'receipts committed and not cancelled';
COMMENT ON COLUMN @extschema@.customer_360.last_receipts IS 'the last five receipts: receipt_id, committed_at, store, status, amount, to_pay (money in major units)';

-- Receipts per store and day.
CREATE FUNCTION @extschema@.store_day(program_id bigint, day date)
RETURNS TABLE (store text, receipts bigint, identified bigint, customers bigint, cancelled bigint,
               returned bigint, amount numeric, discount numeric, points_money numeric, to_pay numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
ROWS 200
AS $$
#variable_conflict use_column
BEGIN
    PERFORM @extschema@.require_program(store_day.program_id, pg_catalog.format('programme %s', store_day.program_id));
    RETURN QUERY
        SELECT r.store,
               pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled') AS receipts,
               pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'
                                           AND r.customer_id IS NOT NULL) AS identified,
               pg_catalog.count(DISTINCT r.customer_id) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled') AS customers,
               pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.=) 'cancelled') AS cancelled,
               pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.=) ANY ('{partly_refunded,refunded}'::text[])) AS returned,
               COALESCE(pg_catalog.sum(r.amount) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'), 0) AS amount,
               COALESCE(pg_catalog.sum(r.discount) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'), 0) AS discount,
               COALESCE(pg_catalog.sum(r.points_money) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'), 0) AS points_money,
               COALESCE(pg_catalog.sum(r.to_pay) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'cancelled'), 0) AS to_pay
          FROM @extschema@.receipt r
         WHERE r.program_id OPERATOR(pg_catalog.=) store_day.program_id
           AND r.committed_at OPERATOR(pg_catalog.>=) store_day.day::timestamptz
           AND r.committed_at OPERATOR(pg_catalog.<) (store_day.day OPERATOR(pg_catalog.+) 1)::timestamptz
         GROUP BY r.store;
END
$$;
COMMENT ON FUNCTION @extschema@.store_day(bigint, date) IS
'the rows of the view store_days for one programme and day, money in minor units (42501 if the role does not reach the programme)';

CREATE VIEW @extschema@.store_days AS
SELECT p.code AS program,
       d.day::date AS day,
       x.store,
       x.receipts,
       x.identified,
       x.customers,
       x.cancelled,
       x.returned,
       pg_catalog.round(x.amount OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent) AS amount,
       pg_catalog.round(x.discount OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent) AS discount,
       pg_catalog.round(x.points_money OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent) AS points_money,
       pg_catalog.round(x.to_pay OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, p.money_exponent), p.money_exponent) AS to_pay,
       p.money_currency
  FROM @extschema@.program p
 CROSS JOIN LATERAL pg_catalog.generate_series(p.created_at::date::timestamp,
                                               CURRENT_DATE::timestamp, '1 day') AS d (day)
 CROSS JOIN LATERAL @extschema@.store_day(p.id, d.day::date) x
 WHERE @extschema@.program_open(p.id);
COMMENT ON VIEW @extschema@.store_days IS 'receipts per programme, store and day: how many, identified or not, cancelled, returned, and their money as committed';
COMMENT ON COLUMN @extschema@.store_days.program IS 'programme code';
COMMENT ON COLUMN @extschema@.store_days.day IS 'the day the receipts were committed (session time zone)';
COMMENT ON COLUMN @extschema@.store_days.store IS 'the store the receipt named (NULL: none)';
COMMENT ON COLUMN @extschema@.store_days.receipts IS 'receipts not cancelled';
COMMENT ON COLUMN @extschema@.store_days.identified IS 'of them, receipts of an identified customer';
COMMENT ON COLUMN @extschema@.store_days.customers IS 'distinct customers of them';
COMMENT ON COLUMN @extschema@.store_days.cancelled IS 'receipts cancelled';
COMMENT ON COLUMN @extschema@.store_days.returned IS 'receipts returned in part or in full (since)';
COMMENT ON COLUMN @extschema@.store_days.amount IS 'sum of the receipts before discounts (major units), as committed';
COMMENT ON COLUMN @extschema@.store_days.discount IS 'sum of discounts, as committed';
COMMENT ON COLUMN @extschema@.store_days.points_money IS 'money paid with points, as committed';
COMMENT ON COLUMN @extschema@.store_days.to_pay IS 'money paid, as committed';
COMMENT ON COLUMN @extschema@.store_days.money_currency IS 'ISO 4217 code of money';

-- The day series above read receipts and tier changes by time: BRIN indexes
-- on their time (the receipt partitions get theirs in partition_indexes).
CREATE INDEX tier_change_changed_at_brin ON @extschema@.tier_change USING brin (changed_at);

REVOKE ALL ON FUNCTION
    @extschema@.expiring_day(bigint, date),
    @extschema@.promotion_day(bigint, date),
    @extschema@.tier_day(bigint, date),
    @extschema@.store_day(bigint, date)
FROM PUBLIC;
-- src/roles.sql — the roles and what each may do, the row-level security of
-- the tables, and the triggers that keep history append-only.  Last of the
-- install script: it grants on and protects the objects of every other part.

-- History the functions only append to.
CREATE TRIGGER receipt_refund_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.receipt_refund
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.forbid_history_change(
        'A return is recorded by loyalty.refund; it is not changed afterwards.');
CREATE TRIGGER customer_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.customer_log
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.forbid_history_change(
        'The log of manual changes is history: it is not changed afterwards.');
CREATE TRIGGER tier_change_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.tier_change
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.forbid_history_change(
        'A tier change is history: a new change is recorded instead.');

-- Row-level security: a role other than the owner sees and writes only rows
-- of the programmes it reaches, whatever it was granted on the tables.  (The
-- functions run as the owner, which row-level security does not restrict;
-- they check the programmes themselves.)
ALTER TABLE @extschema@.program ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.program USING (@extschema@.program_open(id));
ALTER TABLE @extschema@.currency ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.currency USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.customer USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.identifier ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.identifier USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.customer_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.customer_log USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.wallet ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.wallet USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.ledger ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.ledger USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.lot ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.lot USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.hold ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.hold USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.product ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.product USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.promotion ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.promotion USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.coupon ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.coupon USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.personal_offer ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.personal_offer USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.counter ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.counter USING (
    EXISTS (SELECT 1 FROM @extschema@.promotion p
             WHERE p.id OPERATOR(pg_catalog.=) promotion_id
               AND @extschema@.program_open(p.program_id)));
ALTER TABLE @extschema@.segment ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.segment USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.segment_member ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.segment_member USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.receipt_key ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.receipt_key USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.receipt ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.receipt USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.receipt_line ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.receipt_line USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.receipt_refund ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.receipt_refund USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.accrual_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.accrual_queue USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.event ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.event USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.tier ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.tier USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.tier_change ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.tier_change USING (@extschema@.program_open(program_id));
ALTER TABLE @extschema@.program_access ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.program_access USING (@extschema@.program_open(program_id));

-- A partition read on its own (not through its parent) has the policy too.
CREATE FUNCTION @extschema@.partition_security(part text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ENABLE ROW LEVEL SECURITY', part);
    EXECUTE pg_catalog.format('CREATE POLICY tenant ON @extschema@.%I USING (@extschema@.program_open(program_id))', part);
END
$$;
COMMENT ON FUNCTION @extschema@.partition_security(text) IS
'give a partition of the receipt tables the row-level security of its parent (internal: create_partitions)';
REVOKE ALL ON FUNCTION @extschema@.partition_security(text) FROM PUBLIC;
DO $$
DECLARE
    x record;
BEGIN
    FOR x IN SELECT c.relname AS part
               FROM pg_catalog.pg_inherits i
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
              WHERE i.inhparent OPERATOR(pg_catalog.=) ANY (ARRAY['@extschema@.receipt'::regclass,
                                                                 '@extschema@.receipt_line'::regclass])
              ORDER BY 1
    LOOP
        PERFORM @extschema@.partition_security(x.part);
    END LOOP;
END
$$;

-- The roles.  They belong to the cluster, not to the database: created
-- here when missing (NOLOGIN), used as they are when another database of the
-- cluster (or the DBA) made them; DROP EXTENSION leaves them.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['loyalty_cashier', 'loyalty_admin', 'loyalty_analyst'] LOOP
        IF (SELECT pg_catalog.count(*) FROM pg_catalog.pg_roles o
             WHERE o.rolname OPERATOR(pg_catalog.=) r) OPERATOR(pg_catalog.=) 0 THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        ELSE
            RAISE NOTICE 'role % exists: loyalty grants to it as it is', r;
        END IF;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA @extschema@ TO loyalty_cashier, loyalty_admin, loyalty_analyst;

-- loyalty_cashier: the checkout, nothing else.
GRANT EXECUTE ON FUNCTION
    @extschema@.calculate(jsonb),
    @extschema@.commit(jsonb, jsonb),
    @extschema@.cancel(text, text, text),
    @extschema@.refund(text, text, jsonb, text, text),
    @extschema@.identify(text, text, text),
    @extschema@.balance(bigint, text),
    public.loyalty_calculate(jsonb),
    public.loyalty_commit(jsonb, jsonb),
    public.loyalty_cancel(text, text, text),
    public.loyalty_refund(text, text, jsonb, text, text),
    public.loyalty_identify(text, text, text),
    public.loyalty_balance(bigint, text)
TO loyalty_cashier;

-- loyalty_admin: programmes, promotions, coupons, tiers, segments, customers,
-- corrections and the jobs; reads every table of the programmes it reaches.
GRANT EXECUTE ON FUNCTION
    @extschema@.identify(text, text, text),
    @extschema@.balance(bigint, text),
    @extschema@.enroll(text, text, text, text, date, text, jsonb),
    @extschema@.add_identifier(text, bigint, text, text, text),
    @extschema@.replace_card(text, text, text, text),
    @extschema@.set_identifier_status(text, text, text, text, text),
    @extschema@.merge_customers(text, bigint, bigint, text),
    @extschema@.accrue(bigint, text, bigint, timestamptz, timestamptz, text, integer, text, text, text, text),
    @extschema@.redeem(bigint, text, bigint, text[], text, bigint, text, text),
    @extschema@.hold(bigint, text, bigint, interval, text[], text, bigint, text),
    @extschema@.capture(bigint, bigint, text),
    @extschema@.release(bigint, text),
    @extschema@.adjust(bigint, text, bigint, text, text, timestamptz, bigint, text),
    @extschema@.transfer(bigint, bigint, text, bigint, text, text),
    @extschema@.convert(bigint, text, text, numeric, text, text),
    @extschema@.release_accruals(interval),
    @extschema@.expire_due(integer, interval),
    @extschema@.release_expired_holds(integer, interval),
    @extschema@.notice_expiring(integer, interval),
    @extschema@.purge_events(integer),
    @extschema@.refresh_segments(interval, boolean),
    @extschema@.review_tiers(integer, interval),
    @extschema@.create_partitions(integer),
    @extschema@.take_events(integer, text),
    @extschema@.grant_program(text, pg_catalog.regrole),
    @extschema@.revoke_program(text, pg_catalog.regrole),
    @extschema@.normalize_benefit(jsonb, bigint)
TO loyalty_admin;
GRANT EXECUTE ON PROCEDURE @extschema@.run_job(text, interval) TO loyalty_admin;
GRANT SELECT ON
    @extschema@.program, @extschema@.currency, @extschema@.customer, @extschema@.identifier,
    @extschema@.customer_log, @extschema@.wallet, @extschema@.ledger, @extschema@.lot,
    @extschema@.hold, @extschema@.product, @extschema@.promotion, @extschema@.coupon,
    @extschema@.personal_offer, @extschema@.counter, @extschema@.segment,
    @extschema@.segment_member, @extschema@.receipt_key, @extschema@.receipt,
    @extschema@.receipt_line, @extschema@.receipt_refund, @extschema@.accrual_queue,
    @extschema@.event, @extschema@.tier, @extschema@.tier_change, @extschema@.program_access,
    @extschema@.balances, @extschema@.ledger_entries, @extschema@.liability,
    @extschema@.lot_usage, @extschema@.job_health, @extschema@.lots, @extschema@.expiring_points,
    @extschema@.promotion_performance, @extschema@.coupon_usage, @extschema@.tier_distribution,
    @extschema@.tier_movements, @extschema@.customer_360, @extschema@.store_days
TO loyalty_admin;
GRANT INSERT, UPDATE ON @extschema@.program TO loyalty_admin;
GRANT INSERT, UPDATE, DELETE ON
    @extschema@.currency, @extschema@.product, @extschema@.promotion, @extschema@.coupon,
    @extschema@.personal_offer, @extschema@.segment, @extschema@.segment_member, @extschema@.tier
TO loyalty_admin;

-- loyalty_analyst: the views, nothing else.
GRANT SELECT ON
    @extschema@.balances, @extschema@.ledger_entries, @extschema@.liability,
    @extschema@.lot_usage, @extschema@.job_health, @extschema@.lots, @extschema@.expiring_points,
    @extschema@.promotion_performance, @extschema@.coupon_usage, @extschema@.tier_distribution,
    @extschema@.tier_movements, @extschema@.customer_360, @extschema@.store_days
TO loyalty_analyst;
GRANT EXECUTE ON FUNCTION
    @extschema@.job_health_rows(),
    @extschema@.expiring_day(bigint, date),
    @extschema@.promotion_day(bigint, date),
    @extschema@.tier_day(bigint, date),
    @extschema@.store_day(bigint, date)
TO loyalty_analyst, loyalty_admin;
