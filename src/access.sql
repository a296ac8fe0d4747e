-- src/access.sql — tenants: which programmes a role reaches (src/access.c).
-- Early in the install script, since every table's row-level security and
-- every function's check call these.  The bindings themselves are the table
-- program_access (src/program.sql: a binding names a programme); the roles
-- and their grants are in src/roles.sql, at the end of the install script.

-- Who makes a change: the role in effect (the login role, or the one chosen
-- by SET ROLE), also inside the functions that run as their owner.
CREATE FUNCTION @extschema@.actor()
RETURNS text
AS 'MODULE_PATHNAME', 'loyalty_actor'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.actor() IS
'the role in effect (login role or SET ROLE), recorded as the actor of changes';

CREATE FUNCTION @extschema@.access_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'loyalty_access_changed'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.access_changed() IS
'trigger: the bindings changed; every session reads them again at its next check';
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

-- History nobody rewrites (the ledger, customer_log, receipt_refund,
-- tier_change): a statement trigger refuses UPDATE, DELETE and TRUNCATE.
-- The trigger's argument, if any, is the hint (what to do instead).
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
