-- The roles: what each may call and read is exactly what it was given, and
-- it gets 42501 for everything else it tries (every function, table and view
-- of the extension it was not granted, every write to the history).  The
-- history (ledger, returns, the log of manual changes, tier changes) is
-- append-only even for a superuser.
BEGIN;

\ir tenants.psql
SELECT count(*) AS logged FROM loyalty.customer_log \gset

-- What the extension owns, and what each role does not have: every
-- SECURITY DEFINER function, called with NULL arguments (the privilege is
-- checked before any argument; each a subquery, so that the planner does not
-- fold a strict function away), and every relation, read and written.
CREATE TEMP TABLE role_kind (who text, role text);
INSERT INTO role_kind VALUES
    ('t_till_north', 'loyalty_cashier'), ('t_admin_north', 'loyalty_admin'),
    ('t_analyst_north', 'loyalty_analyst'), ('t_nobody', NULL);
CREATE TEMP TABLE definer AS
SELECT p.oid::regprocedure AS fn,
       format('SELECT %s(%s)', p.oid::regproc::text,
              (SELECT string_agg('(SELECT NULL::' || format_type(t, NULL) || ')', ', ' ORDER BY n)
                 FROM unnest(p.proargtypes) WITH ORDINALITY a (t, n))) AS call
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty'
 WHERE p.prosecdef AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype;
CREATE TEMP TABLE relation AS
SELECT c.oid::regclass AS rel, c.relkind
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty'
 WHERE c.relkind IN ('r', 'p', 'v');
CREATE TEMP TABLE history (rel regclass);
INSERT INTO history VALUES ('loyalty.ledger'), ('loyalty.lot'), ('loyalty.wallet'), ('loyalty.hold'),
    ('loyalty.receipt'), ('loyalty.receipt_refund'), ('loyalty.receipt_key'),
    ('loyalty.customer_log'), ('loyalty.tier_change'), ('loyalty.accrual_queue'), ('loyalty.counter'),
    ('loyalty.customer'), ('loyalty.identifier'), ('loyalty.event'), ('loyalty.program_access');

SELECT count(*) FILTER (WHERE NOT has_function_privilege(k.who, f.fn, 'EXECUTE')) AS fn_denied
  FROM role_kind k, definer f \gset
SELECT count(*) FILTER (WHERE NOT has_table_privilege(k.who, r.rel, 'SELECT')) AS rel_denied
  FROM role_kind k, relation r \gset
SELECT plan(:fn_denied + :rel_denied + 5 + 4 * 4 * 15 + 12 + 28);

-- 1. The grants are exactly these.
SELECT set_eq(
    $$SELECT k.role, f.fn::text FROM role_kind k, definer f
       WHERE k.role IS NOT NULL AND has_function_privilege(k.role, f.fn, 'EXECUTE')$$,
    $$VALUES ('loyalty_cashier', 'loyalty.calculate(jsonb)'),
             ('loyalty_cashier', 'loyalty.commit(jsonb,jsonb)'),
             ('loyalty_cashier', 'loyalty.cancel(text,text,text)'),
             ('loyalty_cashier', 'loyalty.refund(text,text,jsonb,text,text)'),
             ('loyalty_cashier', 'loyalty.identify(text,text,text)'),
             ('loyalty_cashier', 'loyalty.balance(bigint,text)'),
             ('loyalty_cashier', 'loyalty_calculate(jsonb)'),
             ('loyalty_cashier', 'loyalty_identify(text,text,text)'),
             ('loyalty_cashier', 'loyalty_balance(bigint,text)'),
             ('loyalty_admin', 'loyalty.identify(text,text,text)'),
             ('loyalty_admin', 'loyalty.balance(bigint,text)'),
             ('loyalty_admin', 'loyalty.enroll(text,text,text,text,date,text,jsonb,text)'),
             ('loyalty_admin', 'loyalty.add_identifier(text,bigint,text,text,text)'),
             ('loyalty_admin', 'loyalty.replace_card(text,text,text,text)'),
             ('loyalty_admin', 'loyalty.set_identifier_status(text,text,text,text,text)'),
             ('loyalty_admin', 'loyalty.merge_customers(text,bigint,bigint,text)'),
             ('loyalty_admin', 'loyalty.update_customer(text,bigint,text,text,date,text,jsonb,text[])'),
             ('loyalty_admin', 'loyalty.accrue(bigint,text,bigint,timestamp with time zone,timestamp with time zone,text,integer,text,text,text,text)'),
             ('loyalty_admin', 'loyalty.redeem(bigint,text,bigint,text[],text,bigint,text,text)'),
             ('loyalty_admin', 'loyalty.hold(bigint,text,bigint,interval,text[],text,bigint,text)'),
             ('loyalty_admin', 'loyalty.capture(bigint,bigint,text)'),
             ('loyalty_admin', 'loyalty.release(bigint,text)'),
             ('loyalty_admin', 'loyalty.adjust(bigint,text,bigint,text,text,timestamp with time zone,bigint,text)'),
             ('loyalty_admin', 'loyalty.transfer(bigint,bigint,text,bigint,text,text)'),
             ('loyalty_admin', 'loyalty.convert(bigint,text,text,numeric,text,text)'),
             ('loyalty_admin', 'loyalty.release_accruals(interval)'),
             ('loyalty_admin', 'loyalty.expire_due(integer,interval)'),
             ('loyalty_admin', 'loyalty.release_expired_holds(integer,interval)'),
             ('loyalty_admin', 'loyalty.notice_expiring(integer,interval)'),
             ('loyalty_admin', 'loyalty.purge_events(integer)'),
             ('loyalty_admin', 'loyalty.settle_referrals(integer,interval)'),
             ('loyalty_admin', 'loyalty.refresh_segments(interval,boolean)'),
             ('loyalty_admin', 'loyalty.review_tiers(integer,interval)'),
             ('loyalty_admin', 'loyalty.create_partitions(integer)'),
             ('loyalty_admin', 'loyalty.take_events(integer,text)'),
             ('loyalty_admin', 'loyalty.grant_program(text,regrole)'),
             ('loyalty_admin', 'loyalty.revoke_program(text,regrole)'),
             ('loyalty_admin', 'loyalty.job_health_rows()'),
             ('loyalty_admin', 'loyalty.normalize_benefit(jsonb,bigint)'),
             ('loyalty_admin', 'loyalty.expiring_day(bigint,date)'),
             ('loyalty_admin', 'loyalty.promotion_day(bigint,date)'),
             ('loyalty_admin', 'loyalty.tier_day(bigint,date)'),
             ('loyalty_admin', 'loyalty.store_day(bigint,date)'),
             ('loyalty_admin', 'loyalty.release_hold(bigint,text)'),
             ('loyalty_admin', 'loyalty.confirm_fraud(bigint,text,boolean)'),
             ('loyalty_admin', 'loyalty.set_customer_status(text,bigint,text,text)'),
             ('loyalty_admin', 'loyalty.enrol_challenge(text,bigint,text,timestamp with time zone)'),
             ('loyalty_admin', 'loyalty.customer_challenges(text,bigint,timestamp with time zone)'),
             ('loyalty_admin', 'loyalty.customer_achievements(text,bigint)'),
             ('loyalty_admin', 'loyalty.referral_code(text,bigint)'),
             ('loyalty_cashier', 'loyalty.enrol_challenge(text,bigint,text,timestamp with time zone)'),
             ('loyalty_cashier', 'loyalty.customer_challenges(text,bigint,timestamp with time zone)'),
             ('loyalty_cashier', 'loyalty.customer_achievements(text,bigint)'),
             ('loyalty_cashier', 'loyalty.referral_code(text,bigint)'),
             ('loyalty_analyst', 'loyalty.job_health_rows()'),
             ('loyalty_analyst', 'loyalty.expiring_day(bigint,date)'),
             ('loyalty_analyst', 'loyalty.promotion_day(bigint,date)'),
             ('loyalty_analyst', 'loyalty.tier_day(bigint,date)'),
             ('loyalty_analyst', 'loyalty.store_day(bigint,date)'),
             ('loyalty_analyst', 'loyalty.experiment_report(text,text,tstzrange)'),
             ('loyalty_admin', 'loyalty.experiment_report(text,text,tstzrange)'),
             -- every role
             ('loyalty_cashier', 'loyalty.catalog_generation()'),
             ('loyalty_admin', 'loyalty.catalog_generation()'),
             ('loyalty_analyst', 'loyalty.catalog_generation()')$$,
    'the SECURITY DEFINER functions each role may call');
SELECT set_eq(
    $$SELECT k.role, r.rel::text FROM role_kind k, relation r
       WHERE k.role IN ('loyalty_cashier', 'loyalty_analyst') AND has_table_privilege(k.role, r.rel, 'SELECT')$$,
    $$VALUES ('loyalty_analyst', 'loyalty.balances'), ('loyalty_analyst', 'loyalty.ledger_entries'),
             ('loyalty_analyst', 'loyalty.liability'), ('loyalty_analyst', 'loyalty.lot_usage'),
             ('loyalty_analyst', 'loyalty.job_health'), ('loyalty_analyst', 'loyalty.lots'),
             ('loyalty_analyst', 'loyalty.expiring_points'), ('loyalty_analyst', 'loyalty.promotion_performance'),
             ('loyalty_analyst', 'loyalty.coupon_usage'), ('loyalty_analyst', 'loyalty.tier_distribution'),
             ('loyalty_analyst', 'loyalty.tier_movements'), ('loyalty_analyst', 'loyalty.customer_360'),
             ('loyalty_analyst', 'loyalty.store_days'), ('loyalty_analyst', 'loyalty.fraud_cases_daily')$$,
    'the cashier reads no table or view, the analyst the views only');
SELECT set_eq(
    $$SELECT r.rel::text FROM relation r
       WHERE has_table_privilege('loyalty_admin', r.rel, 'INSERT, UPDATE, DELETE')$$,
    $$VALUES ('loyalty.program'), ('loyalty.currency'), ('loyalty.product'), ('loyalty.promotion'),
             ('loyalty.coupon'), ('loyalty.personal_offer'), ('loyalty.segment'),
             ('loyalty.segment_member'), ('loyalty.tier'), ('loyalty.fraud_rule'),
             ('loyalty.achievement'), ('loyalty.challenge'), ('loyalty.challenge_step'),
             ('loyalty.experiment'), ('loyalty.experiment_variant'), ('loyalty.referral_scheme')$$,
    'the admin writes the configuration tables only');
SELECT is_empty(
    $$SELECT k.role, r.rel FROM role_kind k, relation r
       WHERE k.role IS NOT NULL AND has_table_privilege(k.role, r.rel, 'TRUNCATE, REFERENCES, TRIGGER')$$,
    'no role may truncate, reference or put triggers on the tables');
SELECT ok(NOT has_table_privilege('loyalty_admin', 'loyalty.program', 'DELETE'),
          'the admin may not delete a programme (and with it its customers)');

-- 2. Each role tries every SECURITY DEFINER function it was not granted.
SELECT pg_temp.denied(k.who, f.call, f.fn::text)
  FROM role_kind k, definer f
 WHERE NOT has_function_privilege(k.who, f.fn, 'EXECUTE')
 ORDER BY k.who, f.fn::text;

-- 3. ... and reads every table and view it was not granted.
SELECT pg_temp.denied(k.who, format('SELECT count(*) FROM %s', r.rel), 'read ' || r.rel)
  FROM role_kind k, relation r
 WHERE NOT has_table_privilege(k.who, r.rel, 'SELECT')
 ORDER BY k.who, r.rel::text;

-- 4. Nobody but the functions writes the history: each role tries to
-- insert into, update and delete from each table of it.
SELECT pg_temp.denied(k.who, format('UPDATE %s SET %I = %I RETURNING 1', h.rel, a.attname, a.attname),
                      'update ' || h.rel)
  FROM (VALUES ('t_admin_north'), ('t_admin_all'), ('t_till_north'), ('t_analyst_north')) k (who), history h,
       LATERAL (SELECT attname FROM pg_attribute
                 WHERE attrelid = h.rel AND attnum > 0 AND attidentity = '' AND attgenerated = ''
                 ORDER BY attnum LIMIT 1) a
 ORDER BY k.who, h.rel::text;
SELECT pg_temp.denied(k.who, format('DELETE FROM %s RETURNING 1', h.rel), 'delete from ' || h.rel)
  FROM (VALUES ('t_admin_north'), ('t_admin_all'), ('t_till_north'), ('t_analyst_north')) k (who), history h
 ORDER BY k.who, h.rel::text;
SELECT pg_temp.denied(k.who, format('INSERT INTO %s DEFAULT VALUES RETURNING 1', h.rel), 'insert into ' || h.rel)
  FROM (VALUES ('t_admin_north'), ('t_admin_all'), ('t_till_north'), ('t_analyst_north')) k (who), history h
 ORDER BY k.who, h.rel::text;
SELECT pg_temp.denied(k.who, format('TRUNCATE %s', h.rel), 'truncate ' || h.rel)
  FROM (VALUES ('t_admin_north'), ('t_admin_all'), ('t_till_north'), ('t_analyst_north')) k (who), history h
 ORDER BY k.who, h.rel::text;

-- ... and not even a superuser rewrites the ledger, the returns, the log of
-- manual changes or the tier changes.
SELECT throws_ok('UPDATE loyalty.ledger SET reason = ''edited''', '42501', NULL,
                 'a superuser may not update the ledger');
SELECT throws_ok('DELETE FROM loyalty.ledger', '42501', NULL, 'a superuser may not delete from the ledger');
SELECT throws_ok('TRUNCATE loyalty.ledger CASCADE', '42501', NULL, 'a superuser may not truncate the ledger');
SELECT throws_ok('UPDATE loyalty.receipt_refund SET reason = ''edited''', '42501', NULL,
                 'a superuser may not update a return');
SELECT throws_ok('DELETE FROM loyalty.receipt_refund', '42501', NULL, 'a superuser may not delete a return');
SELECT throws_ok('UPDATE loyalty.customer_log SET reason = ''edited''', '42501', NULL,
                 'a superuser may not update the log of manual changes');
SELECT throws_ok('DELETE FROM loyalty.customer_log', '42501', NULL,
                 'a superuser may not delete from the log of manual changes');
SELECT throws_ok('UPDATE loyalty.tier_change SET reason = ''edited''', '42501', NULL,
                 'a superuser may not update a tier change');
SELECT throws_ok('DELETE FROM loyalty.tier_change', '42501', NULL, 'a superuser may not delete a tier change');
SELECT is((SELECT count(*) FROM loyalty.ledger WHERE reason = 'edited'), 0::bigint, 'nothing was rewritten');
SELECT is((SELECT count(*) FROM loyalty.customer_log), :logged::bigint, 'the log of manual changes is whole');
SELECT is((SELECT count(*) FROM loyalty.receipt_refund), 2::bigint, 'the returns are whole');

-- 5. What each role may do, it can.
SELECT pg_temp.allowed('t_till_north', $$SELECT loyalty.calculate('{"program": "north", "lines": [{"sku": "SKU1", "qty": 1, "price": 100}]}')$$,
                       'calculate');
SELECT pg_temp.allowed('t_till_north', format($$SELECT loyalty.commit(d, loyalty.calculate(d)) FROM (SELECT '{"program": "north", "receipt_id": "N-2", "customer": {"id": %s}, "lines": [{"sku": "SKU1", "qty": 1, "price": 100}]}'::jsonb d) x$$, :n1),
                       'commit');
SELECT pg_temp.allowed('t_till_north', $$SELECT loyalty.refund('north', 'NORTH-1', '[{"line": 1, "qty": 1}]', 'R-2')$$, 'refund');
SELECT pg_temp.allowed('t_till_north', $$SELECT loyalty.cancel('north', 'N-2')$$, 'cancel');
SELECT pg_temp.allowed('t_till_north', $$SELECT loyalty.identify('north', '11110001')$$, 'identify');
SELECT pg_temp.allowed('t_till_north', format('SELECT loyalty.balance(%s)', :n1), 'balance');
SELECT pg_temp.allowed('t_till_north', format('SELECT loyalty_balance(%s)', :n1), 'loyalty_balance');
SELECT pg_temp.allowed('t_admin_north', format($$SELECT loyalty.adjust(%s, 'pts', 5, 'goodwill')$$, :n1), 'adjust');
SELECT pg_temp.allowed('t_admin_north', $$SELECT loyalty.enroll('north', card => '11110003')$$, 'enroll');
SELECT pg_temp.allowed('t_admin_north',
    format($$SELECT loyalty.update_customer('north', %s, 'chargebacks', status => 'fraud_hold')$$, :n2),
    'update_customer');
SELECT is((SELECT actor || ': ' || reason || ' ' || (detail #>> '{status,to}') FROM loyalty.customer_log
            WHERE action = 'update' AND customer_id = :n2),
          't_admin_north: chargebacks fraud_hold', 'a change of a customer records the role that made it and why');
SELECT pg_temp.allowed('t_admin_north',
    format($$INSERT INTO loyalty.promotion (program_id, code, name, benefit) VALUES (%s, 'NEW', 'New', '{"kind": "percent_off", "percent": 5}') RETURNING id$$, :north),
    'create a promotion');
SELECT pg_temp.allowed('t_admin_north', $$UPDATE loyalty.coupon SET use_limit = 10 WHERE code = 'C-north' RETURNING id$$,
                       'change a coupon');
SELECT pg_temp.allowed('t_admin_north',
    $$INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind, issue_reason)
      SELECT program_id, 'SORRY-17', id, 'single_use', 'complaint 17' FROM loyalty.promotion
       WHERE code = 'CPN' AND program_id = (SELECT id FROM loyalty.program WHERE code = 'north') RETURNING id$$,
    'issue a coupon, saying why');
SELECT is((SELECT issued_by || ': ' || issue_reason FROM loyalty.coupon WHERE code = 'SORRY-17'),
          't_admin_north: complaint 17', 'a coupon records who issued it and why');
SELECT pg_temp.allowed('t_admin_all', $$SELECT loyalty.expire_due()$$, 'run a job (bound to every programme)');
SELECT pg_temp.allowed('t_analyst_north', 'SELECT count(*) FROM loyalty.balances', 'read balances');
SELECT pg_temp.allowed('t_analyst_north', 'SELECT count(*) FROM loyalty.ledger_entries', 'read ledger_entries');
SELECT pg_temp.allowed('t_analyst_north', 'SELECT count(*) FROM loyalty.liability', 'read liability');
SELECT pg_temp.allowed('t_analyst_north', 'SELECT count(*) FROM loyalty.lot_usage', 'read lot_usage');
SELECT pg_temp.allowed('t_analyst_north', 'SELECT count(*) FROM loyalty.job_health', 'read job_health');
SELECT is((SELECT actor FROM loyalty.ledger WHERE operation = 'adjust' AND customer_id = :n1),
          't_admin_north', 'an adjustment records the role that made it');
-- catalog_generation() is granted to every role, though none reads its table
SELECT pg_temp.allowed('t_till_north', 'SELECT loyalty.catalog_generation()', 'catalog_generation');
SELECT pg_temp.allowed('t_admin_north', 'SELECT loyalty.catalog_generation()', 'catalog_generation');
SELECT pg_temp.allowed('t_analyst_north', 'SELECT loyalty.catalog_generation()', 'catalog_generation');
SELECT is(pg_temp.as_role('t_till_north', 'SELECT loyalty.catalog_generation()'),
          (SELECT generation::text FROM loyalty.catalog_generation),
          'catalog_generation() returns the generation to a till');
SELECT pg_temp.denied('t_admin_north', $$SELECT loyalty.expire_due()$$, 'run a job (bound to one programme)');
SELECT pg_temp.denied('t_till_none', $$SELECT loyalty.identify('north', '11110001')$$, 'identify, bound to no programme');

SELECT * FROM finish();
ROLLBACK;
