-- A canonical description of what the extension installed in this database:
-- every object, with its definition, owner-independent and in a fixed order.
-- The upgrade layer of make test compares it between an upgraded and a
-- fresh install.
\pset tuples_only on
\pset format unaligned
WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
     WHERE e.extname = 'loyalty' AND d.deptype = 'e'
)
SELECT line FROM (
    -- functions: their whole definition, their ACL and comment
    SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
           || E'\nacl ' || coalesce(p.proacl::text, 'default')
           || E'\ncomment ' || coalesce(obj_description(p.oid, 'pg_proc'), '') AS line
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    -- relations: kind, options, columns, constraints, indexes, triggers, comments
    SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text
           || ' options ' || coalesce(c.reloptions::text, '{}')
           || ' acl ' || coalesce(c.relacl::text, 'default')
           || E'\ncomment ' || coalesce(obj_description(c.oid, 'pg_class'), '')
           || coalesce(E'\nview ' || pg_get_viewdef(c.oid), '')
           || coalesce((SELECT string_agg(format(E'\ncolumn %s %s%s%s%s -- %s', a.attname,
                                                format_type(a.atttypid, a.atttypmod),
                                                CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                                                coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), ''),
                                                CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
                                                || CASE WHEN a.attcompression <> '' THEN ' compression ' || a.attcompression::text ELSE '' END
                                                || CASE WHEN a.attstorage <> t.typstorage THEN ' storage ' || a.attstorage::text ELSE '' END,
                                                coalesce(col_description(c.oid, a.attnum), '')), '' ORDER BY a.attnum)
                          FROM pg_attribute a
                          JOIN pg_type t ON t.oid = a.atttypid
                          LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
           || coalesce((SELECT string_agg(E'\nconstraint ' || conname || ' ' || pg_get_constraintdef(oid), '' ORDER BY conname)
                          FROM pg_constraint WHERE conrelid = c.oid), '')
           || coalesce((SELECT string_agg(E'\nindex ' || pg_get_indexdef(indexrelid), '' ORDER BY indexrelid::regclass::text)
                          FROM pg_index WHERE indrelid = c.oid), '')
           || coalesce((SELECT string_agg(E'\ntrigger ' || pg_get_triggerdef(t.oid), '' ORDER BY t.tgname)
                          FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal), '')
           || CASE WHEN c.relrowsecurity THEN E'\nrow level security' ELSE '' END
           || coalesce((SELECT string_agg(format(E'\npolicy %s %s %s using %s check %s', y.polname, y.polcmd,
                                                y.polroles::regrole[]::text, pg_get_expr(y.polqual, y.polrelid),
                                                pg_get_expr(y.polwithcheck, y.polrelid)), '' ORDER BY y.polname)
                          FROM pg_policy y WHERE y.polrelid = c.oid), '')
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION ALL
    -- operators: what they call and how the planner may use them
    SELECT 'operator ' || o.oid::regoperator || ' function ' || o.oprcode::text
           || ' commutator ' || o.oprcom::regoperator::text || ' negator ' || o.oprnegate::regoperator::text
           || ' restrict ' || o.oprrest::text || ' join ' || o.oprjoin::text
           || ' hashes ' || o.oprcanhash::text || ' merges ' || o.oprcanmerge::text
           || E'\ncomment ' || coalesce(obj_description(o.oid, 'pg_operator'), '')
      FROM members m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
    UNION ALL
    -- anything else the extension owns (types, schemas...), by name
    SELECT 'object ' || pg_describe_object(m.classid, m.objid, 0)
      FROM members m WHERE m.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass)
    UNION ALL
    -- who may use the schema
    SELECT 'schema ' || n.nspname || ' acl ' || coalesce(n.nspacl::text, 'default')
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'loyalty'    UNION ALL
    -- what pg_dump saves
    SELECT 'dumped ' || x::regclass || ' where ' || coalesce(w, '')
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u (x, w)
     WHERE e.extname = 'loyalty'
) d ORDER BY line;
