-- Schema objects, their owners and their grants.
BEGIN;
SELECT plan(36);

SELECT has_extension('loyalty');
SELECT has_schema('loyalty');
SELECT tables_are('loyalty', ARRAY['program', 'currency', 'customer', 'identifier', 'customer_log', 'product',
                                   'wallet', 'ledger', 'lot', 'hold', 'promotion', 'coupon',
                                   'personal_offer', 'counter', 'segment', 'segment_member',
                                   'catalog_generation', 'receipt_key', 'receipt',
                                   'receipt_default', 'accrual_queue',
                                   'receipt_refund', 'event', 'tier', 'tier_change', 'program_access',
                                   'fraud_rule', 'fraud_tally', 'fraud_case', 'fraud_case_operation',
                                   'achievement', 'challenge', 'challenge_step', 'challenge_state',
                                   'challenge_receipt', 'customer_achievement', 'experiment', 'experiment_variant',
                                   'referral_scheme', 'referral_code', 'referral']);
SELECT views_are('loyalty', ARRAY['lot_usage', 'balances', 'ledger_entries', 'liability', 'job_health', 'lots',
                                  'expiring_points', 'promotion_performance', 'coupon_usage', 'tier_distribution',
                                  'tier_movements', 'customer_360', 'store_days', 'receipt_line', 'fraud_cases_daily',
                                  'challenge_progress']);
SELECT functions_are('loyalty', ARRAY[
    'normalize_phone', 'normalize_card', 'normalize_email', 'phone_country_valid',
    'phone_countries', 'normalize_identifier', 'identify', 'identifier_normalize_trigger',
    'program_id', 'customer_for_update', 'identifier_insert', 'require_reason', 'enroll',
    'add_identifier', 'replace_card', 'set_identifier_status', 'merge_customers', 'update_customer',
    'forbid_history_change', 'accrue', 'redeem', 'hold', 'capture', 'release', 'adjust',
    'transfer', 'convert', 'merge_wallets', 'expire_due', 'release_expired_holds', 'balance',
    'condition_in', 'condition_out', 'condition_recv', 'condition_send', 'condition_cmp',
    'condition_eq', 'condition_ne', 'condition_lt', 'condition_le', 'condition_gt', 'condition_ge',
    'condition_hash', 'condition_hash_extended', 'matches', 'condition_attributes',
    'condition_explain', 'match_all', 'catalog_changed', 'catalog_generation', 'product_changed',
    'jobs', 'require_pg_cron', 'schedule_jobs', 'unschedule_jobs', 'job_health_rows',
    'normalize_benefit', 'promotion_check', 'calculate', 'spend_lots', 'return_lots', 'take_back',
    'release_accruals', 'minor_units', 'period_start', 'answer_changes', 'receipt_replay', 'refuse_moved', 'commit',
    'cancel', 'create_partitions', 'partition_indexes', 'run_job', 'share', 'points_money', 'refund', 'recompute', 'applied_promotion_ids', 'return_counter_uses', 'major_units',
    'event_notify', 'take_events', 'notice_expiring', 'purge_events',
    'customer_stats', 'qualified_tier', 'change_tier', 'lift_tier', 'review_tiers',
    'customer_document', 'refresh_segments', 'job_deadline', 'job_limit', 'purchases',
    'actor', 'access_changed', 'program_open', 'require_program',
    'require_every_program', 'grant_program', 'revoke_program', 'partition_security',
    'binding_program', 'expiring_day', 'promotion_day', 'tier_day', 'store_day',
    'fraud_seconds', 'fraud_rule_check', 'fraud_trip', 'fraud_forget', 'fraud_case_for_update',
    'fraud_decide', 'release_hold', 'confirm_fraud', 'set_customer_status', 'fraud_unhold',
    'challenge_check', 'challenge_delete_check', 'challenge_customer', 'challenge_by_code', 'challenge_units', 'enrol_challenge', 'customer_challenges',
    'customer_achievements', 'experiment_variant_check', 'experiment_bucket', 't_quantile_975',
    'experiment_report', 'referral_code', 'referral_code_normal', 'referral_insert', 'referral_referrer',
    'referral_scheme_of', 'settle_referrals']);
SELECT has_type('loyalty', 'condition', 'the type loyalty.condition exists');
SELECT has_opclass('loyalty', 'condition_ops', 'conditions sort with a btree opclass');
SELECT has_opclass('loyalty', 'condition_hash_ops', 'conditions hash with a hash opclass');
SELECT has_operator('loyalty.condition', 'loyalty', '@@', 'jsonb', 'boolean',
                    'condition @@ line is the matching operator');
SELECT has_function('public', 'loyalty_identify', ARRAY['text', 'text', 'text'],
                    'the checkout name public.loyalty_identify exists');
SELECT is((SELECT prosrc FROM pg_proc WHERE oid = 'public.loyalty_calculate(jsonb)'::regprocedure),
          (SELECT prosrc FROM pg_proc WHERE oid = 'loyalty.calculate(jsonb)'::regprocedure),
          'public.loyalty_calculate is the same C symbol as loyalty.calculate');
SELECT is((SELECT prosrc FROM pg_proc WHERE oid = 'public.loyalty_identify(text,text,text)'::regprocedure),
          (SELECT prosrc FROM pg_proc WHERE oid = 'loyalty.identify(text,text,text)'::regprocedure),
          'public.loyalty_identify is the same C symbol as loyalty.identify');

-- Owned by the role that created the extension.
SELECT is_empty($$
    SELECT c.relname FROM pg_class c JOIN pg_extension e ON e.extname = 'loyalty'
     WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relowner <> e.extowner$$,
    'every relation in schema loyalty is owned by the extension owner');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_extension e ON e.extname = 'loyalty'
     WHERE p.pronamespace = 'loyalty'::regnamespace AND p.proowner <> e.extowner$$,
    'every function in schema loyalty is owned by the extension owner');

-- Keys, indexes and the normalising trigger.
SELECT col_is_pk('loyalty'::name, 'identifier'::name, ARRAY['program_id', 'kind', 'value']::name[], 'identifier key is (program_id, kind, value)');
SELECT col_is_pk('loyalty'::name, 'customer'::name, 'id'::name, 'customer key is id');
SELECT fk_ok('loyalty'::name, 'identifier'::name, ARRAY['program_id', 'customer_id']::name[],
             'loyalty'::name, 'customer'::name, ARRAY['program_id', 'id']::name[]);
SELECT has_index('loyalty'::name, 'identifier'::name, 'identifier_customer_idx'::name, ARRAY['customer_id']::name[], 'identifiers are found by customer');
SELECT is((SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = 'loyalty.customer_fraud_hold_idx'::regclass),
          'CREATE INDEX customer_fraud_hold_idx ON loyalty.customer USING btree (id) WHERE (status = ''fraud_hold''::text)',
          'the customers on fraud_hold are found by a partial index (release_accruals reads them once a slice)');
SELECT has_trigger('loyalty'::name, 'identifier'::name, 'identifier_normalize'::name, 'identifiers are normalised by a trigger');
SELECT col_is_unique('loyalty'::name, 'program'::name, ARRAY['code']::name[], 'programme codes are unique');

-- pg_dump keeps the data of every table and the position of every sequence.
SELECT set_eq(
    $$SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'loyalty'$$,
    ARRAY['loyalty.program', 'loyalty.program_id_seq', 'loyalty.currency', 'loyalty.customer',
          'loyalty.customer_id_seq', 'loyalty.identifier', 'loyalty.customer_log',
          'loyalty.customer_log_id_seq', 'loyalty.wallet', 'loyalty.ledger', 'loyalty.lot',
          'loyalty.lot_id_seq', 'loyalty.hold', 'loyalty.hold_id_seq', 'loyalty.product',
          'loyalty.promotion', 'loyalty.promotion_id_seq', 'loyalty.coupon', 'loyalty.coupon_id_seq',
          'loyalty.personal_offer', 'loyalty.counter', 'loyalty.segment', 'loyalty.segment_member',
          'loyalty.receipt_key', 'loyalty.receipt_default',
          'loyalty.accrual_queue', 'loyalty.accrual_queue_id_seq', 'loyalty.receipt_refund',
          'loyalty.event', 'loyalty.event_id_seq', 'loyalty.tier', 'loyalty.tier_change',
          'loyalty.tier_change_id_seq', 'loyalty.program_access', 'loyalty.fraud_rule',
          'loyalty.fraud_rule_id_seq', 'loyalty.fraud_tally', 'loyalty.fraud_case',
          'loyalty.fraud_case_id_seq', 'loyalty.fraud_case_operation', 'loyalty.achievement',
          'loyalty.challenge', 'loyalty.challenge_id_seq', 'loyalty.challenge_step',
          'loyalty.challenge_state', 'loyalty.challenge_receipt', 'loyalty.customer_achievement',
          'loyalty.experiment', 'loyalty.experiment_id_seq', 'loyalty.experiment_variant',
          'loyalty.referral_scheme', 'loyalty.referral_code', 'loyalty.referral'],
    'every table and sequence is marked for pg_dump');

-- Functions with the owner's rights pin search_path and are not public.
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
      JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty'
     WHERE p.prosecdef AND NOT coalesce(p.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false)$$,
    'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
      JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty'
     WHERE p.prosecdef AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'no SECURITY DEFINER function is executable by PUBLIC');
SELECT is_definer('loyalty', 'identify', ARRAY['text', 'text', 'text']);
SELECT is_empty($$
    SELECT c.relname FROM pg_class c
     WHERE c.relnamespace = 'loyalty'::regnamespace
       AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT')
            OR has_table_privilege('public', c.oid, 'UPDATE') OR has_table_privilege('public', c.oid, 'DELETE'))$$,
    'PUBLIC has no privilege on any table');

-- A role without grants: pure functions yes, tables and accounts no.
CREATE ROLE loyalty_tap_nobody;
CREATE ROLE loyalty_tap_till;
GRANT USAGE ON SCHEMA loyalty TO loyalty_tap_nobody, loyalty_tap_till;
GRANT EXECUTE ON FUNCTION loyalty.identify(text, text, text) TO loyalty_tap_till;
INSERT INTO loyalty.program (code, name, default_currency, phone_country) VALUES ('tap', 'TAP', 'bonus', 'RU');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'tap';
SET CONSTRAINTS ALL IMMEDIATE;
SELECT ok(loyalty.enroll('tap', phone => '+79161234567') > 0, 'the owner enrolls a customer');
SELECT loyalty.grant_program('tap', 'loyalty_tap_till');

SET ROLE loyalty_tap_nobody;
SELECT is(loyalty.normalize_phone('8 916 123 45 67', 'RU'), '+79161234567',
          'anyone may normalise a phone number');
SELECT throws_ok($$SELECT count(*) FROM loyalty.customer$$, '42501', NULL,
                 'a role without grants cannot read customers');
SELECT throws_ok($$SELECT count(*) FROM loyalty.identifier$$, '42501', NULL,
                 'a role without grants cannot read identifiers');
SELECT throws_ok($$SELECT loyalty.identify('tap', '+79161234567')$$, '42501', NULL,
                 'a role without grants cannot identify');
SELECT throws_ok($$SELECT loyalty.enroll('tap', phone => '+79160000000')$$, '42501', NULL,
                 'a role without grants cannot enroll');
RESET ROLE;

SET ROLE loyalty_tap_till;
SELECT is(loyalty.identify('tap', '8 916 123 45 67') ->> 'found', 'true',
          'a role granted identify finds the customer without table privileges');
SELECT throws_ok($$SELECT count(*) FROM loyalty.customer$$, '42501', NULL,
                 'and still cannot read the table');
RESET ROLE;

-- A table of the extension that was renamed or dropped by hand is named in
-- the error (42P01), by the tenant checks in C as by the SQL that reads it.
ALTER TABLE loyalty.program_access RENAME TO program_access_gone;
SELECT throws_ok($$SELECT loyalty.program_open(1)$$, '42P01', 'table loyalty.program_access is missing',
                 'the tenant check names a missing program_access');
ALTER TABLE loyalty.program_access_gone RENAME TO program_access;
ALTER TABLE loyalty.catalog_generation RENAME TO catalog_generation_gone;
SELECT throws_ok($$UPDATE loyalty.promotion SET name = name WHERE false$$, '42P01', NULL,
                 'a change of promotions without loyalty.catalog_generation fails');
ALTER TABLE loyalty.catalog_generation_gone RENAME TO catalog_generation;

SELECT * FROM finish();
ROLLBACK;
