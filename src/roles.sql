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

-- Every role: the generation of the promotion catalogue.
GRANT EXECUTE ON FUNCTION @extschema@.catalog_generation()
TO loyalty_cashier, loyalty_admin, loyalty_analyst;
