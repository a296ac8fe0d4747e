-- src/roles.sql — the roles and what each may do.  Last of the install
-- script: it grants on the objects of every other part.  (Each table's
-- row-level security is declared with the table; the checks it calls are in
-- src/access.sql.)

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
-- and the customer's challenges, for the apps that show them
GRANT EXECUTE ON FUNCTION
    @extschema@.enrol_challenge(text, bigint, text, timestamptz),
    @extschema@.customer_challenges(text, bigint, timestamptz),
    @extschema@.customer_achievements(text, bigint),
    @extschema@.referral_code(text, bigint)
TO loyalty_cashier, loyalty_admin;

-- loyalty_admin: programmes, promotions, coupons, tiers, segments, customers,
-- corrections and the jobs; reads every table of the programmes it reaches.
GRANT EXECUTE ON FUNCTION
    @extschema@.identify(text, text, text),
    @extschema@.balance(bigint, text),
    @extschema@.enroll(text, text, text, text, date, text, jsonb, text),
    @extschema@.add_identifier(text, bigint, text, text, text),
    @extschema@.replace_card(text, text, text, text),
    @extschema@.set_identifier_status(text, text, text, text, text),
    @extschema@.merge_customers(text, bigint, bigint, text),
    @extschema@.update_customer(text, bigint, text, text, date, text, jsonb, text[]),
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
    @extschema@.settle_referrals(integer, interval),
    @extschema@.refresh_segments(interval, boolean),
    @extschema@.review_tiers(integer, interval),
    @extschema@.create_partitions(integer),
    @extschema@.take_events(integer, text),
    @extschema@.grant_program(text, pg_catalog.regrole),
    @extschema@.revoke_program(text, pg_catalog.regrole),
    @extschema@.normalize_benefit(jsonb, bigint),
    @extschema@.release_hold(bigint, text),
    @extschema@.confirm_fraud(bigint, text, boolean),
    @extschema@.set_customer_status(text, bigint, text, text)
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
    @extschema@.tier_movements, @extschema@.customer_360, @extschema@.store_days,
    @extschema@.fraud_rule, @extschema@.fraud_tally, @extschema@.fraud_case,
    @extschema@.fraud_case_operation, @extschema@.fraud_cases_daily,
    @extschema@.achievement, @extschema@.challenge, @extschema@.challenge_step,
    @extschema@.challenge_state, @extschema@.challenge_progress, @extschema@.challenge_receipt,
    @extschema@.customer_achievement,
    @extschema@.experiment, @extschema@.experiment_variant,
    @extschema@.referral_scheme, @extschema@.referral_code, @extschema@.referral
TO loyalty_admin;
GRANT INSERT, UPDATE ON @extschema@.program TO loyalty_admin;
GRANT INSERT, UPDATE, DELETE ON
    @extschema@.currency, @extschema@.product, @extschema@.promotion, @extschema@.coupon,
    @extschema@.personal_offer, @extschema@.segment, @extschema@.segment_member, @extschema@.tier,
    @extschema@.fraud_rule, @extschema@.achievement, @extschema@.challenge, @extschema@.challenge_step,
    @extschema@.experiment, @extschema@.experiment_variant, @extschema@.referral_scheme
TO loyalty_admin;

-- loyalty_analyst: the views, nothing else.
GRANT SELECT ON
    @extschema@.balances, @extschema@.ledger_entries, @extschema@.liability,
    @extschema@.lot_usage, @extschema@.job_health, @extschema@.lots, @extschema@.expiring_points,
    @extschema@.promotion_performance, @extschema@.coupon_usage, @extschema@.tier_distribution,
    @extschema@.tier_movements, @extschema@.customer_360, @extschema@.store_days,
    @extschema@.fraud_cases_daily
TO loyalty_analyst;
GRANT EXECUTE ON FUNCTION
    @extschema@.job_health_rows(),
    @extschema@.expiring_day(bigint, date),
    @extschema@.promotion_day(bigint, date),
    @extschema@.tier_day(bigint, date),
    @extschema@.store_day(bigint, date),
    @extschema@.experiment_report(text, text, tstzrange)
TO loyalty_analyst, loyalty_admin;

-- Every role: the generation of the promotion catalogue.
GRANT EXECUTE ON FUNCTION @extschema@.catalog_generation()
TO loyalty_cashier, loyalty_admin, loyalty_analyst;
