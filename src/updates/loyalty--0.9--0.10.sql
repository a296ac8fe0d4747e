-- loyalty 0.9 -> 0.10: roles and tenants.  Roles loyalty_cashier,
-- loyalty_admin and loyalty_analyst with their grants; the bindings of roles
-- to programmes (program_access, grant_program, revoke_program) checked by
-- every function; row-level security on the tables; the views show the
-- programmes the role reaches; receipt_refund, customer_log and tier_change
-- are append-only; job_health reads as its owner.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.10'" to load this file. \quit

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

-- The resolver of programme codes checks the role's reach.
CREATE OR REPLACE FUNCTION @extschema@.program_id(program text)
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

-- The append-only trigger takes its hint as an argument.
CREATE OR REPLACE FUNCTION @extschema@.forbid_history_change()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% of loyalty.% is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = COALESCE(TG_ARGV[0], 'Correct a balance with loyalty.adjust, which appends an entry.');
END
$$;

-- Who made a change is the role in effect (SET ROLE included).
ALTER TABLE @extschema@.customer_log ALTER COLUMN actor SET DEFAULT @extschema@.actor();
ALTER TABLE @extschema@.tier_change ALTER COLUMN actor SET DEFAULT @extschema@.actor();
COMMENT ON COLUMN @extschema@.customer_log.actor IS 'the role that made the change (login role, or the one set by SET ROLE)';
COMMENT ON COLUMN @extschema@.ledger.actor IS 'who made the change: the role in effect (login role, or the one set by SET ROLE), or the actor named by an adjustment';
COMMENT ON COLUMN @extschema@.receipt.actor IS 'the role that committed it (login role, or the one set by SET ROLE)';

-- A coupon records who issued it and why.
ALTER TABLE @extschema@.coupon ADD COLUMN issued_by text, ADD COLUMN issue_reason text;
ALTER TABLE @extschema@.coupon ALTER COLUMN issued_by SET DEFAULT @extschema@.actor();
COMMENT ON COLUMN @extschema@.coupon.issued_by IS 'the role that issued it (loyalty.actor()); NULL for coupons issued before 0.10';
COMMENT ON COLUMN @extschema@.coupon.issue_reason IS 'why it was issued (a campaign, a complaint), as the issuer wrote it';

-- commit resolves its programme through program_id and records actor().
CREATE OR REPLACE FUNCTION @extschema@.commit(receipt jsonb, expected jsonb DEFAULT NULL)
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

-- refund records actor().
CREATE OR REPLACE FUNCTION @extschema@.refund(program text, receipt_id text, lines jsonb, refund_id text,
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

-- The jobs work on every programme: a role reaching every programme runs them.
CREATE OR REPLACE FUNCTION @extschema@.create_partitions(months_ahead integer DEFAULT 3)
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

CREATE OR REPLACE FUNCTION @extschema@.take_events(batch integer DEFAULT 100, program text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION @extschema@.notice_expiring(batch_limit integer DEFAULT 10000,
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

CREATE OR REPLACE FUNCTION @extschema@.purge_events(batch_limit integer DEFAULT 100000)
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

CREATE OR REPLACE FUNCTION @extschema@.refresh_segments(time_budget interval DEFAULT '50 seconds',
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

CREATE OR REPLACE FUNCTION @extschema@.review_tiers(batch_limit integer DEFAULT 10000,
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

-- job_health reads the tables as its owner, for the roles granted the view.
CREATE OR REPLACE FUNCTION @extschema@.job_health_rows()
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
REVOKE ALL ON FUNCTION @extschema@.job_health_rows() FROM PUBLIC;

-- The views show the programmes the role reaches.
CREATE OR REPLACE VIEW @extschema@.lot_usage AS
SELECT e.customer_id, e.currency, e.version, u.lot_id, u.amount
  FROM @extschema@.ledger e,
       ROWS FROM (pg_catalog.unnest(e.lot_ids), pg_catalog.unnest(e.lot_amounts)) AS u (lot_id, amount)
 WHERE e.lot_ids IS NOT NULL
   AND @extschema@.program_open(e.program_id);

CREATE OR REPLACE VIEW @extschema@.balances AS
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

CREATE OR REPLACE VIEW @extschema@.ledger_entries AS
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

-- The receipt partitions get a BRIN index on committed_at, for the reports.
CREATE OR REPLACE FUNCTION @extschema@.partition_indexes(parent text, part text)
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
        EXECUTE pg_catalog.format('CREATE INDEX %I ON @extschema@.%I USING brin (committed_at)',
                                  x.part OPERATOR(pg_catalog.||) '_committed_at_brin', x.part);
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
