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
    tier_since  timestamptz,
    tier_reviewed_at timestamptz NOT NULL DEFAULT '-infinity',
    UNIQUE (program_id, id),
    CHECK ((status OPERATOR(pg_catalog.=) 'merged') OPERATOR(pg_catalog.=) (merged_into IS NOT NULL))
);
CREATE INDEX customer_merged_into_idx ON @extschema@.customer (merged_into)
    WHERE merged_into IS NOT NULL;
CREATE INDEX customer_tier_review_idx ON @extschema@.customer (program_id, tier_reviewed_at);
-- The customers on fraud_hold, usually few: release_accruals reads them
-- once per slice of the queue (a hashed set) instead of each row's customer.
CREATE INDEX customer_fraud_hold_idx ON @extschema@.customer (id)
    WHERE status OPERATOR(pg_catalog.=) 'fraud_hold';
COMMENT ON TABLE @extschema@.customer IS 'a person''s account in a programme';
COMMENT ON COLUMN @extschema@.customer.id IS 'the customer id, unique in the database';
COMMENT ON COLUMN @extschema@.customer.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.customer.status IS 'active, blocked, fraud_hold, or merged (into merged_into)';
COMMENT ON COLUMN @extschema@.customer.birth_date IS 'date of birth: customer.birthday in conditions, and the birthday audience of promotions';
COMMENT ON COLUMN @extschema@.customer.home_city IS 'the city the customer lives in: customer.home_city in conditions';
COMMENT ON COLUMN @extschema@.customer.tier IS 'current tier code (a tier of the programme, not enforced); NULL until the first receipt or review';
COMMENT ON COLUMN @extschema@.customer.attributes IS 'free attributes (a JSON object) that conditions can read as customer.NAME';
COMMENT ON COLUMN @extschema@.customer.merged_into IS 'the account this one was merged into; always the final one';
COMMENT ON COLUMN @extschema@.customer.created_at IS 'when the customer was enrolled';
COMMENT ON COLUMN @extschema@.customer.updated_at IS 'set by the functions when they change the row';
COMMENT ON COLUMN @extschema@.customer.tier_since IS 'when the customer got the current tier';
COMMENT ON COLUMN @extschema@.customer.tier_reviewed_at IS 'when review_tiers last reviewed the customer; -infinity: never';
ALTER TABLE @extschema@.customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.customer USING (@extschema@.program_open(program_id));

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
COMMENT ON COLUMN @extschema@.identifier.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.identifier.kind IS 'card, phone or email';
COMMENT ON COLUMN @extschema@.identifier.value IS 'normalised: card digits, E.164 phone, lower-case e-mail';
COMMENT ON COLUMN @extschema@.identifier.customer_id IS 'the customer, always of the same programme';
COMMENT ON COLUMN @extschema@.identifier.status IS 'active; blocked (lost or stolen, identifies nobody); replaced (by the card replaced_by)';
COMMENT ON COLUMN @extschema@.identifier.replaced_by IS 'the card number that replaced this card';
COMMENT ON COLUMN @extschema@.identifier.created_at IS 'when the identifier was bound';
COMMENT ON COLUMN @extschema@.identifier.updated_at IS 'set by the functions when they change the row';
ALTER TABLE @extschema@.identifier ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.identifier USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.customer_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL REFERENCES @extschema@.program (id),
    customer_id bigint NOT NULL REFERENCES @extschema@.customer (id),
    action      text NOT NULL
                CHECK (action OPERATOR(pg_catalog.=) ANY
                       ('{enroll,add_identifier,replace_card,identifier_status,merge,update,fraud_hold,fraud_release,fraud_confirm}'::text[])),
    detail      jsonb NOT NULL DEFAULT '{}',
    actor       text NOT NULL DEFAULT @extschema@.actor(),
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX customer_log_customer_idx ON @extschema@.customer_log (customer_id, created_at);
COMMENT ON TABLE @extschema@.customer_log IS 'who changed a customer''s account or identifiers, when and why';
COMMENT ON COLUMN @extschema@.customer_log.id IS 'the order of the entries';
COMMENT ON COLUMN @extschema@.customer_log.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.customer_log.customer_id IS 'the account changed';
COMMENT ON COLUMN @extschema@.customer_log.action IS 'what was done; the keys of detail depend on it';
COMMENT ON COLUMN @extschema@.customer_log.detail IS 'what changed, by action';
COMMENT ON COLUMN @extschema@.customer_log.actor IS 'the role in effect: the login role, or the one set by SET ROLE (a SECURITY DEFINER function does not change it)';
COMMENT ON COLUMN @extschema@.customer_log.reason IS 'why, as given by the caller';
COMMENT ON COLUMN @extschema@.customer_log.created_at IS 'when';
ALTER TABLE @extschema@.customer_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.customer_log USING (@extschema@.program_open(program_id));
CREATE TRIGGER customer_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.customer_log
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.forbid_history_change(
        'The log of manual changes is history: it is not changed afterwards.');

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
    attributes jsonb DEFAULT '{}',
    referral_code text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint := @extschema@.program_id(enroll.program);
    cid bigint;
    bound jsonb := '{}';
    ident record;
    referrer bigint;
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
    -- a referral code: checked before anything is written (src/referral.sql)
    IF enroll.referral_code IS NOT NULL THEN
        referrer := @extschema@.referral_referrer(pid, enroll.program, enroll.referral_code,
                                                  enroll.card, enroll.phone, enroll.email);
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

    IF referrer IS NOT NULL THEN
        PERFORM @extschema@.referral_insert(pid, cid, referrer, enroll.referral_code);
        bound := bound OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('referrer_id', referrer);
    END IF;

    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail)
    VALUES (pid, cid, 'enroll', bound);
    RETURN cid;
END
$$;
COMMENT ON FUNCTION @extschema@.enroll(text, text, text, text, date, text, jsonb, text) IS
'create a customer with its identifiers in one call, referred by the customer of referral_code if given; returns the customer id';

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

-- Change what an administrator may change of an account: its status,
-- birth date, home city and attributes.  Only what is given changes.
CREATE FUNCTION @extschema@.update_customer(
    program text,
    customer_id bigint,
    reason text,
    status text DEFAULT NULL,
    birth_date date DEFAULT NULL,
    home_city text DEFAULT NULL,
    attributes jsonb DEFAULT NULL,
    clear text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    c @extschema@.customer;
    field text;
    removed text[];
    new_attributes jsonb;
    changes jsonb := '{}';
BEGIN
    IF update_customer.program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pid := @extschema@.program_id(update_customer.program);
    IF update_customer.customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF update_customer.reason IS NULL THEN
        RAISE EXCEPTION 'reason must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Say why, in a few words: it is kept in loyalty.customer_log.';
    END IF;
    IF pg_catalog.btrim(update_customer.reason) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'reason must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Say why, in a few words: it is kept in loyalty.customer_log.';
    END IF;

    -- every argument is checked before anything is read or locked
    IF update_customer.status IS NULL AND update_customer.birth_date IS NULL
       AND update_customer.home_city IS NULL AND update_customer.attributes IS NULL
       AND COALESCE(pg_catalog.cardinality(update_customer.clear), 0) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'nothing to change'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'status, birth_date, home_city, attributes and clear are all null.';
    END IF;
    IF update_customer.status OPERATOR(pg_catalog.=) 'merged' THEN
        RAISE EXCEPTION 'status must be active, blocked or fraud_hold, not "merged"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Accounts are merged with loyalty.merge_customers.';
    END IF;
    IF update_customer.status OPERATOR(pg_catalog.<>) ALL ('{active,blocked,fraud_hold}'::text[]) THEN
        RAISE EXCEPTION 'status must be active, blocked or fraud_hold, not "%"', update_customer.status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF update_customer.birth_date OPERATOR(pg_catalog.<) '1900-01-01'::date
       OR update_customer.birth_date OPERATOR(pg_catalog.>) CURRENT_DATE THEN
        RAISE EXCEPTION 'birth_date must be from 1900-01-01 to today, not %',
              CASE WHEN pg_catalog.isfinite(update_customer.birth_date)
                   THEN pg_catalog.to_char(update_customer.birth_date, 'YYYY-MM-DD')
                   ELSE update_customer.birth_date::text END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.btrim(update_customer.home_city) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'home_city must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'To remove the home city, pass clear => ''{home_city}''.';
    END IF;
    IF pg_catalog.jsonb_typeof(update_customer.attributes) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'customer attributes must be a JSON object, not %',
              pg_catalog.jsonb_typeof(update_customer.attributes)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The object''s keys are merged into the attributes; a key set to null is removed.';
    END IF;
    FOREACH field IN ARRAY COALESCE(update_customer.clear, '{}') LOOP
        IF field IS NULL OR field OPERATOR(pg_catalog.<>) ALL ('{birth_date,home_city}'::text[]) THEN
            RAISE EXCEPTION 'clear may name birth_date and home_city, not %',
                  CASE WHEN field IS NULL THEN 'null' ELSE pg_catalog.format('"%s"', field) END
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A status is always set; attributes are removed key by key, with a null value.';
        END IF;
        IF (field OPERATOR(pg_catalog.=) 'birth_date' AND update_customer.birth_date IS NOT NULL)
           OR (field OPERATOR(pg_catalog.=) 'home_city' AND update_customer.home_city IS NOT NULL) THEN
            RAISE EXCEPTION '% is both given and cleared', field
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;

    c := @extschema@.customer_for_update(pid, update_customer.customer_id);

    IF update_customer.status IS NOT NULL THEN
        changes := changes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('status',
                   pg_catalog.jsonb_build_object('from', c.status, 'to', update_customer.status));
    END IF;
    IF update_customer.birth_date IS NOT NULL OR 'birth_date' OPERATOR(pg_catalog.=) ANY (update_customer.clear) THEN
        changes := changes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('birth_date',
                   pg_catalog.jsonb_build_object('from', c.birth_date, 'to', update_customer.birth_date));
    END IF;
    IF update_customer.home_city IS NOT NULL OR 'home_city' OPERATOR(pg_catalog.=) ANY (update_customer.clear) THEN
        changes := changes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('home_city',
                   pg_catalog.jsonb_build_object('from', c.home_city, 'to', update_customer.home_city));
    END IF;
    new_attributes := c.attributes;
    IF update_customer.attributes IS NOT NULL THEN
        -- merged: the keys given replace or add, a key given as null is removed
        SELECT COALESCE(pg_catalog.array_agg(e.key), '{}') INTO removed
          FROM pg_catalog.jsonb_each(update_customer.attributes) e
         WHERE pg_catalog.jsonb_typeof(e.value) OPERATOR(pg_catalog.=) 'null';
        new_attributes := (c.attributes OPERATOR(pg_catalog.||) update_customer.attributes)
                          OPERATOR(pg_catalog.-) removed;
        changes := changes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('attributes',
                   pg_catalog.jsonb_build_object('from', c.attributes, 'to', new_attributes));
    END IF;

    UPDATE @extschema@.customer u
       SET status = COALESCE(update_customer.status, c.status),
           birth_date = CASE WHEN 'birth_date' OPERATOR(pg_catalog.=) ANY (update_customer.clear) THEN NULL
                             ELSE COALESCE(update_customer.birth_date, c.birth_date) END,
           home_city = CASE WHEN 'home_city' OPERATOR(pg_catalog.=) ANY (update_customer.clear) THEN NULL
                            ELSE COALESCE(update_customer.home_city, c.home_city) END,
           attributes = new_attributes,
           updated_at = pg_catalog.now()
     WHERE u.id OPERATOR(pg_catalog.=) c.id;
    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail, reason)
    VALUES (pid, c.id, 'update', changes, update_customer.reason);
    RETURN changes;
END
$$;
COMMENT ON FUNCTION @extschema@.update_customer(text, bigint, text, text, date, text, jsonb, text[]) IS
'change the status, birth date, home city or attributes of a customer (only what is given; attributes merged, a null key removed; clear sets birth_date or home_city to NULL), logged with its reason; returns what changed, from and to';

-- Functions that read or change accounts run with the owner's rights and are
-- granted explicitly; nobody may call them by default.
REVOKE ALL ON FUNCTION
    @extschema@.normalize_identifier(text, text, text),
    @extschema@.identify(text, text, text),
    public.loyalty_identify(text, text, text),
    @extschema@.customer_for_update(bigint, bigint),
    @extschema@.identifier_insert(text, bigint, bigint, text, text),
    @extschema@.enroll(text, text, text, text, date, text, jsonb, text),
    @extschema@.add_identifier(text, bigint, text, text, text),
    @extschema@.replace_card(text, text, text, text),
    @extschema@.set_identifier_status(text, text, text, text, text),
    @extschema@.merge_customers(text, bigint, bigint, text),
    @extschema@.update_customer(text, bigint, text, text, date, text, jsonb, text[])
FROM PUBLIC;
