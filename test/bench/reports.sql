-- test/bench/reports.sql — the typical query of each view (docs/views.md),
-- timed as an analyst bound to the programme would run it, in the database
-- of test/bench/reports_data.sql.  Each query runs :repeat times (after one
-- run that warms the cache), each per-customer query for another customer;
-- prints the median time of each as "bench report.NAME MS ms".
\set ON_ERROR_STOP on
\if :{?repeat}
\else
\set repeat 5
\endif
SET client_min_messages = warning;
SELECT max(id) AS customers FROM loyalty.customer \gset

-- The median wall time in milliseconds of running query as role who
-- (with $1 a customer id) repeat times.
CREATE FUNCTION pg_temp.median_ms(who text, query text, repeat int, customers bigint) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    times numeric[] := '{}';
    c bigint;
    n bigint;
BEGIN
    PERFORM set_config('role', who, true);
    EXECUTE 'SELECT count(*) FROM (' || query || ') q' INTO n USING 1::bigint;
    FOR k IN 1 .. repeat LOOP
        c := 1 + (k::bigint * 104729) % customers;
        t0 := clock_timestamp();
        EXECUTE 'SELECT count(*) FROM (' || query || ') q' INTO n USING c;
        times := times || (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric;
    END LOOP;
    PERFORM set_config('role', 'none', true);
    RETURN (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x);
END
$$;

CREATE TEMP TABLE report_query (name text, query text);
INSERT INTO report_query VALUES
    ('balances', 'SELECT * FROM loyalty.balances WHERE customer_id = $1'),
    ('ledger_entries', 'SELECT * FROM loyalty.ledger_entries WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 50'),
    ('lots', 'SELECT * FROM loyalty.lots WHERE customer_id = $1'),
    ('customer_360', 'SELECT * FROM loyalty.customer_360 WHERE customer_id = $1'),
    ('expiring_points', 'SELECT * FROM loyalty.expiring_points WHERE program = ''shop'' AND day < current_date + 90'),
    ('liability', 'SELECT * FROM loyalty.liability WHERE program = ''shop'''),
    ('promotion_performance', 'SELECT * FROM loyalty.promotion_performance WHERE program = ''shop'' AND day >= current_date - 7'),
    ('coupon_usage', 'SELECT * FROM loyalty.coupon_usage WHERE program = ''shop'' ORDER BY uses DESC LIMIT 20'),
    ('tier_distribution', 'SELECT * FROM loyalty.tier_distribution WHERE program = ''shop'''),
    ('tier_movements', 'SELECT * FROM loyalty.tier_movements WHERE program = ''shop'' AND day >= current_date - 30'),
    ('store_days', 'SELECT * FROM loyalty.store_days WHERE program = ''shop'' AND day >= current_date - 7'),
    ('job_health', 'SELECT * FROM loyalty.job_health');

-- as an analyst of the programme
DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname = 'bench_analyst') = 0 THEN
        CREATE ROLE bench_analyst IN ROLE loyalty_analyst;
    END IF;
END
$$;
SELECT loyalty.grant_program('shop', 'bench_analyst') IS NOT NULL AS bound;
\pset tuples_only on
\pset format unaligned
SELECT format('bench report.%s %s ms', name,
              to_char(pg_temp.median_ms('bench_analyst', query, :repeat, :customers), 'FM999990.00'))
  FROM report_query ORDER BY name;
