-- Tenants: roles bound to the programme north try every function granted to
-- any loyalty role on the programme south (its customers, wallets, holds,
-- receipts, promotions, fraud cases) and get 42501 with nothing of south
-- changed; they read no row of south from any table or view; membership,
-- binding to every programme and unbinding work at once.  The list of functions tried is
-- checked against the grants, so a function granted later without a
-- cross-tenant test fails this suite.
BEGIN;
SELECT plan(112);

\ir tenants.psql

-- what south holds, to show that nothing of it changed
CREATE FUNCTION pg_temp.south_state(south bigint) RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(concat_ws(',', customer_id, currency, version, balance, held), ';' ORDER BY customer_id, currency)
           FROM loyalty.wallet WHERE program_id = south),
        (SELECT count(*) FROM loyalty.ledger WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', id, status, merged_into, birth_date, home_city, attributes), ';' ORDER BY id)
           FROM loyalty.customer WHERE program_id = south),
        (SELECT count(*) FROM loyalty.customer_log WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', kind, value, status), ';' ORDER BY kind, value) FROM loyalty.identifier WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', receipt_id, status), ';' ORDER BY receipt_id) FROM loyalty.receipt WHERE program_id = south),
        (SELECT count(*) FROM loyalty.receipt_refund WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', id, status), ';' ORDER BY id) FROM loyalty.hold WHERE program_id = south),
        (SELECT count(*) FROM loyalty.event WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', code, status, benefit::text), ';' ORDER BY code) FROM loyalty.promotion WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', code, uses, use_limit, state), ';' ORDER BY code) FROM loyalty.coupon WHERE program_id = south),
        (SELECT count(*) FROM loyalty.program_access),
        (SELECT count(*) FROM loyalty.accrual_queue WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', code, active, threshold, action), ';' ORDER BY code) FROM loyalty.fraud_rule WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', subject_kind, subject, rule_id, bucket, amount), ';' ORDER BY subject_kind, subject)
           FROM loyalty.fraud_tally WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', id, state, decided_by, reason, forfeited), ';' ORDER BY id) FROM loyalty.fraud_case WHERE program_id = south),
        (SELECT count(*) FROM loyalty.fraud_case_operation WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', code, target, active), ';' ORDER BY code) FROM loyalty.challenge WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', customer_id, progress, state, completions), ';' ORDER BY customer_id)
           FROM loyalty.challenge_progress WHERE program_id = south),
        (SELECT count(*) FROM loyalty.challenge_receipt WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', customer_id, achievement, level), ';' ORDER BY customer_id)
           FROM loyalty.customer_achievement WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', e.code, v.code, v.weight), ';' ORDER BY e.code, v.code)
           FROM loyalty.experiment e JOIN loyalty.experiment_variant v ON v.experiment_id = e.id WHERE e.program_id = south),
        (SELECT count(*) FROM loyalty.referral_code WHERE program_id = south),
        (SELECT string_agg(concat_ws(',', referee_id, state), ';' ORDER BY referee_id) FROM loyalty.referral WHERE program_id = south)))
$$;
SELECT pg_temp.south_state(:south) AS south_before \gset

-- Each cross-tenant call names the function it tries.
CREATE TEMP TABLE tried (fn regprocedure);
CREATE FUNCTION pg_temp.across(fn text, who text, sql text) RETURNS text LANGUAGE sql AS $$
    INSERT INTO tried VALUES (fn::regprocedure);
    SELECT pg_temp.denied(who, sql, fn || ' on south');
$$;

-- 1. The cashier's functions, by a till of north.
SELECT pg_temp.across('loyalty.calculate(jsonb)', 't_till_north',
    $$SELECT loyalty.calculate('{"program": "south", "lines": [{"sku": "SKU1", "qty": 1, "price": 100}]}')$$);
SELECT pg_temp.across('loyalty_calculate(jsonb)', 't_till_north',
    $$SELECT loyalty_calculate('{"program": "south", "lines": [{"sku": "SKU1", "qty": 1, "price": 100}]}')$$);
SELECT pg_temp.across('loyalty.commit(jsonb,jsonb)', 't_till_north',
    format($$SELECT loyalty.commit('{"program": "south", "receipt_id": "X-1", "customer": {"id": %s}, "lines": [{"sku": "SKU1", "qty": 1, "price": 100}]}')$$, :s1));
SELECT pg_temp.across('loyalty_commit(jsonb,jsonb)', 't_till_north',
    format($$SELECT loyalty_commit('{"program": "south", "receipt_id": "X-1", "customer": {"id": %s}, "lines": [{"sku": "SKU1", "qty": 1, "price": 100}]}')$$, :s1));
-- a customer of south named in north is no one there
SELECT is(pg_temp.as_role('t_till_north',
              format($$SELECT loyalty.calculate('{"program": "north", "customer": {"id": %s}, "lines": [{"sku": "SKU1", "qty": 1, "price": 100}]}') -> 'customer' ->> 'found'$$, :s1)),
          'false', 'a customer of south is not found by a till of north');
SELECT pg_temp.across('loyalty.cancel(text,text,text)', 't_till_north', $$SELECT loyalty.cancel('south', 'SOUTH-1')$$);
SELECT pg_temp.across('loyalty_cancel(text,text,text)', 't_till_north', $$SELECT loyalty_cancel('south', 'SOUTH-1')$$);
SELECT pg_temp.across('loyalty.refund(text,text,jsonb,text,text)', 't_till_north',
    $$SELECT loyalty.refund('south', 'SOUTH-1', '[{"line": 1, "qty": 1}]', 'X-R')$$);
SELECT pg_temp.across('loyalty_refund(text,text,jsonb,text,text)', 't_till_north',
    $$SELECT loyalty_refund('south', 'SOUTH-1', '[{"line": 1, "qty": 1}]', 'X-R')$$);
SELECT pg_temp.across('loyalty.identify(text,text,text)', 't_till_north', $$SELECT loyalty.identify('south', '22220001')$$);
SELECT pg_temp.across('loyalty_identify(text,text,text)', 't_till_north', $$SELECT loyalty_identify('south', '22220001')$$);
SELECT pg_temp.across('loyalty.balance(bigint,text)', 't_till_north', format('SELECT loyalty.balance(%s)', :s1));
SELECT pg_temp.across('loyalty_balance(bigint,text)', 't_till_north', format('SELECT loyalty_balance(%s)', :s1));
SELECT pg_temp.across('loyalty.balance(bigint,text)', 't_till_north', format($$SELECT loyalty.balance(%s, 'pts')$$, :s1));

-- the customer's challenges, for the apps
SELECT pg_temp.across('loyalty.enrol_challenge(text,bigint,text,timestamp with time zone)', 't_till_north',
    format($$SELECT loyalty.enrol_challenge('south', %s, 'FIRST')$$, :s2));
SELECT pg_temp.across('loyalty.customer_challenges(text,bigint,timestamp with time zone)', 't_till_north',
    format($$SELECT count(*) FROM loyalty.customer_challenges('south', %s)$$, :s1));
SELECT pg_temp.across('loyalty.customer_achievements(text,bigint)', 't_till_north',
    format($$SELECT count(*) FROM loyalty.customer_achievements('south', %s)$$, :s1));
SELECT pg_temp.across('loyalty.referral_code(text,bigint)', 't_till_north',
    format($$SELECT loyalty.referral_code('south', %s)$$, :s1));
SELECT throws_ok(format($$SELECT pg_temp.as_role('t_till_north', 'SELECT count(*) FROM loyalty.customer_challenges(''north'', %s)')$$, :s1),
                 'P0002', NULL, 'a customer of south has no challenges in north');

-- 2. The admin's functions, by an admin of north.
SELECT pg_temp.across('loyalty.identify(text,text,text)', 't_admin_north', $$SELECT loyalty.identify('south', '22220001', 'card')$$);
SELECT pg_temp.across('loyalty.balance(bigint,text)', 't_admin_north', format('SELECT loyalty.balance(%s)', :s1));
SELECT pg_temp.across('loyalty.enroll(text,text,text,text,date,text,jsonb,text)', 't_admin_north',
    $$SELECT loyalty.enroll('south', card => '22220009')$$);
SELECT pg_temp.across('loyalty.referral_code(text,bigint)', 't_admin_north',
    format($$SELECT loyalty.referral_code('south', %s)$$, :s1));
SELECT pg_temp.across('loyalty.add_identifier(text,bigint,text,text,text)', 't_admin_north',
    format($$SELECT loyalty.add_identifier('south', %s, 'email', 'x@example.com', 'asked')$$, :s1));
SELECT throws_ok(format($$SELECT pg_temp.as_role('t_admin_north', 'SELECT loyalty.add_identifier(''north'', %s, ''email'', ''x@example.com'', ''asked'')')$$, :s1),
                 'P0002', NULL, 'a customer of south is not found by an admin of north');
SELECT pg_temp.across('loyalty.replace_card(text,text,text,text)', 't_admin_north',
    $$SELECT loyalty.replace_card('south', '22220002', '22229999', 'lost')$$);
SELECT pg_temp.across('loyalty.set_identifier_status(text,text,text,text,text)', 't_admin_north',
    $$SELECT loyalty.set_identifier_status('south', 'card', '22220002', 'blocked', 'fraud')$$);
SELECT pg_temp.across('loyalty.merge_customers(text,bigint,bigint,text)', 't_admin_north',
    format($$SELECT loyalty.merge_customers('south', %s, %s, 'duplicate')$$, :s2, :s1));
SELECT throws_ok(format($$SELECT pg_temp.as_role('t_admin_north', 'SELECT loyalty.merge_customers(''north'', %s, %s, ''duplicate'')')$$, :s2, :n1),
                 'P0002', NULL, 'a customer of south is not merged into one of north');
SELECT pg_temp.across('loyalty.update_customer(text,bigint,text,text,date,text,jsonb,text[])', 't_admin_north',
    format($$SELECT loyalty.update_customer('south', %s, 'fraud', status => 'blocked')$$, :s1));
SELECT throws_ok(format($$SELECT pg_temp.as_role('t_admin_north', 'SELECT loyalty.update_customer(''north'', %s, ''fraud'', status => ''blocked'')')$$, :s1),
                 'P0002', NULL, 'a customer of south is not changed by an admin of north');
SELECT pg_temp.across('loyalty.accrue(bigint,text,bigint,timestamp with time zone,timestamp with time zone,text,integer,text,text,text,text)',
    't_admin_north', format($$SELECT loyalty.accrue(%s, 'pts', 100)$$, :s1));
SELECT pg_temp.across('loyalty.accrue(bigint,text,bigint,timestamp with time zone,timestamp with time zone,text,integer,text,text,text,text)',
    't_admin_north', format($$SELECT loyalty.accrue(%s, 'miles', 100)$$, :s2));
SELECT pg_temp.across('loyalty.redeem(bigint,text,bigint,text[],text,bigint,text,text)', 't_admin_north',
    format($$SELECT loyalty.redeem(%s, 'pts', 10)$$, :s1));
SELECT pg_temp.across('loyalty.hold(bigint,text,bigint,interval,text[],text,bigint,text)', 't_admin_north',
    format($$SELECT loyalty.hold(%s, 'pts', 10, '1 hour')$$, :s1));
SELECT pg_temp.across('loyalty.capture(bigint,bigint,text)', 't_admin_north', format('SELECT loyalty.capture(%s, 5)', :shold));
SELECT pg_temp.across('loyalty.release(bigint,text)', 't_admin_north', format('SELECT loyalty.release(%s)', :shold));
SELECT pg_temp.across('loyalty.adjust(bigint,text,bigint,text,text,timestamp with time zone,bigint,text)', 't_admin_north',
    format($$SELECT loyalty.adjust(%s, 'pts', -10, 'correction')$$, :s1));
SELECT pg_temp.across('loyalty.transfer(bigint,bigint,text,bigint,text,text)', 't_admin_north',
    format($$SELECT loyalty.transfer(%s, %s, 'pts', 10, 'gift')$$, :s1, :n1));
SELECT pg_temp.across('loyalty.transfer(bigint,bigint,text,bigint,text,text)', 't_admin_north',
    format($$SELECT loyalty.transfer(%s, %s, 'pts', 10, 'gift')$$, :n1, :s1));
SELECT pg_temp.across('loyalty.convert(bigint,text,text,numeric,text,text)', 't_admin_north',
    format($$SELECT loyalty.convert(%s, 'pts', 'miles', 1, 'swap')$$, :s1));
SELECT pg_temp.across('loyalty.normalize_benefit(jsonb,bigint)', 't_admin_north',
    format($$SELECT loyalty.normalize_benefit('{"kind": "percent_off", "percent": 5}', %s)$$, :south));
SELECT pg_temp.across('loyalty.take_events(integer,text)', 't_admin_north', $$SELECT count(*) FROM loyalty.take_events(100, 'south')$$);
SELECT pg_temp.across('loyalty.take_events(integer,text)', 't_admin_north', $$SELECT count(*) FROM loyalty.take_events(100)$$);
SELECT pg_temp.across('loyalty.grant_program(text,regrole)', 't_admin_north', $$SELECT loyalty.grant_program('south', 't_admin_north')$$);
SELECT pg_temp.across('loyalty.grant_program(text,regrole)', 't_admin_north', $$SELECT loyalty.grant_program(NULL, 't_admin_north')$$);
SELECT pg_temp.across('loyalty.revoke_program(text,regrole)', 't_admin_north', $$SELECT loyalty.revoke_program('south', 't_south')$$);
SELECT pg_temp.across('loyalty.revoke_program(text,regrole)', 't_admin_north', $$SELECT loyalty.revoke_program(NULL, 't_admin_all')$$);
SELECT pg_temp.across('loyalty.enrol_challenge(text,bigint,text,timestamp with time zone)', 't_admin_north',
    format($$SELECT loyalty.enrol_challenge('south', %s, 'FIRST')$$, :s2));
SELECT pg_temp.across('loyalty.customer_challenges(text,bigint,timestamp with time zone)', 't_admin_north',
    format($$SELECT count(*) FROM loyalty.customer_challenges('south', %s)$$, :s1));
SELECT pg_temp.across('loyalty.customer_achievements(text,bigint)', 't_admin_north',
    format($$SELECT count(*) FROM loyalty.customer_achievements('south', %s)$$, :s1));
-- the review of fraud cases and a customer's status
SELECT pg_temp.across('loyalty.release_hold(bigint,text)', 't_admin_north',
    format($$SELECT loyalty.release_hold(%s, 'a false alarm')$$, :scase));
SELECT pg_temp.across('loyalty.confirm_fraud(bigint,text,boolean)', 't_admin_north',
    format($$SELECT loyalty.confirm_fraud(%s, 'fraud', false)$$, :scase));
SELECT pg_temp.across('loyalty.set_customer_status(text,bigint,text,text)', 't_admin_north',
    format($$SELECT loyalty.set_customer_status('south', %s, 'fraud_hold', 'chargebacks')$$, :s1));
SELECT throws_ok(format($$SELECT pg_temp.as_role('t_admin_north', 'SELECT loyalty.set_customer_status(''north'', %s, ''blocked'', ''fraud'')')$$, :s1),
                 'P0002', NULL, 'a customer of south is not blocked by an admin of north');
SELECT pg_temp.allowed('t_admin_north', format($$SELECT loyalty.release_hold(%s, 'a false alarm')$$, :ncase),
                       'release a fraud case of north');
SELECT is((SELECT state FROM loyalty.fraud_case WHERE id = :ncase), 'released', 'the case of north is released');
-- the jobs work on every programme: a role bound to one may not run them
SELECT pg_temp.across(j.fn, 't_admin_north', j.sql)
  FROM (VALUES ('loyalty.release_accruals(interval)', 'SELECT loyalty.release_accruals()'),
               ('loyalty.expire_due(integer,interval)', 'SELECT loyalty.expire_due()'),
               ('loyalty.release_expired_holds(integer,interval)', 'SELECT loyalty.release_expired_holds()'),
               ('loyalty.notice_expiring(integer,interval)', 'SELECT loyalty.notice_expiring()'),
               ('loyalty.purge_events(integer)', 'SELECT loyalty.purge_events()'),
               ('loyalty.refresh_segments(interval,boolean)', 'SELECT loyalty.refresh_segments()'),
               ('loyalty.review_tiers(integer,interval)', 'SELECT loyalty.review_tiers()'),
               ('loyalty.create_partitions(integer)', 'SELECT loyalty.create_partitions()'),
               ('loyalty.settle_referrals(integer,interval)', 'SELECT loyalty.settle_referrals()')) j (fn, sql);

-- 3. The analyst's functions (the days of the reports), by an analyst of north.
SELECT pg_temp.across('loyalty.experiment_report(text,text,tstzrange)', 't_analyst_north',
    $$SELECT count(*) FROM loyalty.experiment_report('south', 'AB', tstzrange(now() - interval '1 day', now()))$$);
SELECT pg_temp.across('loyalty.experiment_report(text,text,tstzrange)', 't_admin_north',
    $$SELECT count(*) FROM loyalty.experiment_report('south', 'AB', tstzrange(now() - interval '1 day', now()))$$);
SELECT pg_temp.across(f.fn, 't_analyst_north', format('SELECT count(*) FROM %s(%s, current_date)', f.name, :south))
  FROM (VALUES ('loyalty.store_day(bigint,date)', 'loyalty.store_day'),
               ('loyalty.promotion_day(bigint,date)', 'loyalty.promotion_day'),
               ('loyalty.tier_day(bigint,date)', 'loyalty.tier_day'),
               ('loyalty.expiring_day(bigint,date)', 'loyalty.expiring_day')) f (fn, name);

-- ... and writing south's configuration through the tables
SELECT pg_temp.denied('t_admin_north',
    format($$INSERT INTO loyalty.promotion (program_id, code, name, benefit) VALUES (%s, 'X', 'X', '{"kind": "percent_off", "percent": 5}') RETURNING id$$, :south),
    'create a promotion of south');
SELECT pg_temp.denied('t_admin_north',
    format($$INSERT INTO loyalty.tier (program_id, code, name, rank) VALUES (%s, 'x', 'X', 9) RETURNING code$$, :south),
    'create a tier of south');
SELECT pg_temp.denied('t_admin_north',
    format($$INSERT INTO loyalty.fraud_rule (program_id, code, measure, subject, "window", threshold, action) VALUES (%s, 'X', 'receipts', 'customer', '1 day', 1, 'refuse') RETURNING id$$, :south),
    'create a fraud rule of south');
SELECT pg_temp.denied('t_admin_north',
    format($$INSERT INTO loyalty.challenge (program_id, code, goal, target, starts_at, reward_points) VALUES (%s, 'X', 'receipts', 1, now(), 1) RETURNING id$$, :south),
    'create a challenge of south');
SELECT pg_temp.denied('t_admin_north',
    format($$UPDATE loyalty.promotion SET program_id = %s WHERE code = 'TEN' AND program_id = %s RETURNING id$$, :south, :north),
    'move a promotion of north to south');
-- 4. No row of south in any table or view (row-level security, the views' filter).
CREATE TEMP TABLE rls_table AS
SELECT c.oid::regclass AS rel, (SELECT count(*) FROM pg_policy y WHERE y.polrelid = c.oid) AS policies
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty'
 WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND NOT c.relispartition;
SELECT is_empty(
    $$SELECT c.oid::regclass FROM pg_class c
        JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
        JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty'
       WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AND c.oid <> 'loyalty.catalog_generation'::regclass$$,
    'every table of programme data has row-level security');
SELECT is_empty('SELECT rel FROM rls_table WHERE policies <> 1', 'each has its tenant policy');
-- the rows of a view of one programme
CREATE FUNCTION pg_temp.view_rows(view regclass, programme text) RETURNS SETOF integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT 1 FROM %s WHERE program = $1', view) USING programme;
END
$$;
-- each table has rows of both programmes, and the admin of north sees north's only
CREATE FUNCTION pg_temp.programme_rows(rel regclass, programme bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF rel = 'loyalty.counter'::regclass THEN
        SELECT count(*) INTO n FROM loyalty.counter t JOIN loyalty.promotion p ON p.id = t.promotion_id
         WHERE programme IS NULL OR p.program_id = programme;
    ELSIF rel = 'loyalty.program'::regclass THEN
        SELECT count(*) INTO n FROM loyalty.program WHERE programme IS NULL OR id = programme;
    ELSE
        EXECUTE format('SELECT count(*) FROM %s WHERE $1 IS NULL OR program_id IS NOT DISTINCT FROM $1', rel)
            INTO n USING programme;
    END IF;
    RETURN n;
END
$$;
SELECT is_empty(
    format($$SELECT rel FROM rls_table WHERE pg_temp.programme_rows(rel, %s) = 0 OR pg_temp.programme_rows(rel, %s) = 0$$,
           :north, :south),
    'every table has rows of north and of south');
SELECT results_eq(
    $$SELECT rel::text, pg_temp.as_role('t_admin_north', format('SELECT count(*) FROM %s', rel))::bigint
        FROM rls_table ORDER BY 1$$,
    format($$SELECT rel::text, pg_temp.programme_rows(rel, %s) FROM rls_table ORDER BY 1$$, :north),
    'the admin of north reads the rows of north, in every table');
SELECT results_eq(
    $$SELECT rel::text, pg_temp.as_role('t_admin_all', format('SELECT count(*) FROM %s', rel))::bigint
        FROM rls_table ORDER BY 1$$,
    $$SELECT rel::text, pg_temp.programme_rows(rel, NULL) FROM rls_table ORDER BY 1$$,
    'an admin bound to every programme reads every row');
SELECT is(pg_temp.as_role('t_analyst_north', $$SELECT string_agg(DISTINCT program, ',') FROM loyalty.balances$$),
          'north', 'the analyst of north sees the balances of north only');
SELECT is(pg_temp.as_role('t_analyst_north', $$SELECT string_agg(DISTINCT program, ',') FROM loyalty.ledger_entries$$),
          'north', 'the analyst of north sees the ledger of north only');
SELECT is(pg_temp.as_role('t_analyst_north', $$SELECT string_agg(DISTINCT program, ',') FROM loyalty.liability$$),
          'north', 'the analyst of north sees the liability of north only');
SELECT is(pg_temp.as_role('t_analyst_north',
              format($$SELECT count(*) FROM loyalty.lot_usage WHERE customer_id IN (%s, %s)$$, :s1, :s2)),
          '0', 'the analyst of north sees no lot usage of south');
SELECT ok(pg_temp.as_role('t_analyst_north', format($$SELECT count(*) FROM loyalty.lot_usage WHERE customer_id = %s$$, :n1))::int > 0,
          'the analyst of north sees the lot usage of north');
SELECT is((SELECT string_agg(DISTINCT program, ',' ORDER BY program) FROM loyalty.balances), 'north,south',
          'a superuser sees every programme in the views');
CREATE TEMP TABLE program_view AS
SELECT c.oid::regclass AS view FROM pg_class c
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind = 'v'
   AND has_table_privilege('loyalty_analyst', c.oid, 'SELECT')
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'program');
SELECT is_empty($$SELECT view FROM program_view WHERE (SELECT count(*) FROM pg_temp.view_rows(view, 'south')) = 0$$,
                'every view of the analyst with a programme shows rows of south to a superuser');
SELECT is_empty($$SELECT view FROM program_view
                   WHERE pg_temp.as_role('t_analyst_north', format('SELECT count(*) FROM %s WHERE program <> ''north''', view))::int > 0$$,
                'no view of the analyst shows a row of south to an analyst of north');

SELECT is(pg_temp.as_role('t_admin_north',
              $$WITH u AS (UPDATE loyalty.promotion SET status = 'paused' WHERE code = 'TEN' RETURNING program_id) SELECT string_agg(program_id::text, ',') FROM u$$),
          :'north', 'an admin of north changes the promotions of north only');
SELECT is(pg_temp.as_role('t_admin_north',
              $$WITH d AS (DELETE FROM loyalty.coupon RETURNING program_id) SELECT string_agg(program_id::text, ',') FROM d$$),
          :'north', 'an admin of north deletes the coupons of north only');

-- 5. Nothing of south changed; every granted function was tried.
SELECT is(pg_temp.south_state(:south), :'south_before', 'nothing of south changed');
SELECT set_eq(
    'SELECT DISTINCT fn FROM tried',
    $$SELECT DISTINCT p.oid::regprocedure FROM pg_proc p
        JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty',
             unnest(ARRAY['loyalty_cashier', 'loyalty_admin', 'loyalty_analyst']) r
       WHERE p.prokind = 'f' AND has_function_privilege(r, p.oid, 'EXECUTE')
         AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
         -- the rows of the view job_health: the jobs' state, of no programme;
         -- the generation of the promotion catalogue, one number for all
         AND p.oid NOT IN ('loyalty.job_health_rows()'::regprocedure,
                           'loyalty.catalog_generation()'::regprocedure)$$,
    'every function granted to a loyalty role was tried across tenants');

-- 6. Bindings through membership, to every programme, and undone, take effect at once.
SELECT pg_temp.allowed('t_till_south', $$SELECT loyalty.identify('south', '22220001')$$, 'identify in south (member of t_south)');
SELECT pg_temp.denied('t_till_south', $$SELECT loyalty.identify('north', '11110001')$$, 'identify in north');
SELECT pg_temp.allowed('t_admin_all', format('SELECT loyalty.balance(%s)', :s1), 'read a balance of south');
SELECT pg_temp.allowed('t_admin_all', format('SELECT loyalty.balance(%s)', :n1), 'read a balance of north');
SELECT pg_temp.allowed('t_admin_north', $$SELECT loyalty.grant_program('north', 't_till_none')$$,
                       'bind a role to its own programme');
SELECT pg_temp.allowed('t_till_none', $$SELECT loyalty.identify('north', '11110001')$$, 'identify in north, once bound');
SELECT is((SELECT granted_by FROM loyalty.program_access WHERE role = 't_till_none'::regrole), 't_admin_north',
          'a binding records who made it');
SELECT ok(loyalty.revoke_program('north', 't_till_none'), 'the binding is undone');
SELECT pg_temp.denied('t_till_none', $$SELECT loyalty.identify('north', '11110001')$$, 'identify in north, once unbound');
SELECT ok(NOT loyalty.revoke_program('north', 't_till_none'), 'undoing it again finds nothing');
SELECT ok(loyalty.grant_program('north', 't_till_north') = false, 'binding twice is harmless');
SELECT throws_ok($$SELECT loyalty.grant_program('nowhere', 't_till_north')$$, '42704', NULL,
                 'an unknown programme is refused');
SELECT throws_ok($$SELECT loyalty.grant_program('north', NULL)$$, '22004', NULL, 'a NULL role is refused');
SELECT throws_ok($$SELECT loyalty.grant_program('north', 'no_such_role')$$, '42704', NULL, 'an unknown role is refused');
SELECT is(pg_temp.as_role('t_till_north', 'SELECT loyalty.actor()'), 't_till_north',
          'actor() is the role in effect');
SELECT throws_ok('SELECT loyalty.require_program(NULL, ''x'')', '22004', NULL, 'require_program refuses a NULL programme');
SELECT throws_ok('SELECT loyalty.require_every_program(NULL)', '22004', NULL, 'require_every_program refuses NULL');
SELECT is(pg_temp.as_role('t_till_north', format('SELECT loyalty.program_open(%s)::text || loyalty.program_open(%s)::text || coalesce(loyalty.program_open(NULL)::text, ''null'')', :north, :south)),
          'truefalsefalse', 'program_open: north yes, south no, every programme no');

SELECT * FROM finish();
ROLLBACK;
