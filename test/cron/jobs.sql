-- test/cron/jobs.sql — the jobs really scheduled and run by pg_cron, in the
-- database pg_cron serves (cron.database_name, "loyalty" on the test
-- server).  A lot that expires in a few seconds, a hold of a few seconds and
-- a receipt's accrual queued for a few seconds are recorded and released by
-- the scheduled jobs within two minutes (polled), the jobs
-- report a successful run in loyalty.job_health, and unschedule_jobs()
-- removes them.  Each check prints "ok ..." or raises; run by
-- test/run-tests.sh with ON_ERROR_STOP.  Leaves the programme it creates
-- (the ledger keeps its history).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS loyalty;
ALTER EXTENSION loyalty UPDATE;
CREATE FUNCTION pg_temp.check(ok boolean, what text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'not ok - %', what;
    END IF;
    RETURN 'ok - ' || what;
END
$$;

SELECT 'cron' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS') AS code, clock_timestamp() AS started \gset
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay)
VALUES (:'code', 'pg_cron test', 'bonus', 1000, '5 seconds');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = :'code';
COMMIT;
SELECT loyalty.enroll(:'code', phone => '+79160000000') AS customer \gset
SELECT (loyalty.accrue(:customer, 'bonus', 100, valid_to => now() + interval '3 seconds')).version AS v1 \gset
SELECT (loyalty.accrue(:customer, 'bonus', 50)).version AS v2 \gset
SELECT loyalty.hold(:customer, 'bonus', 30, ttl => '3 seconds') AS hold \gset
-- a receipt whose 10% accrual (100 points) is queued for five seconds
SELECT loyalty.commit(jsonb_build_object('program', :'code', 'receipt_id', :'code' || '-R1',
                                         'customer', jsonb_build_object('id', :customer),
                                         'lines', '[{"line": 1, "qty": 1, "price": 1000}]'::jsonb))
       #>> '{commit,accrual}' AS accrual \gset

\pset tuples_only on
\pset format unaligned
SELECT pg_temp.check(:'accrual' = 'queued', 'the receipt''s accrual is queued');
SELECT pg_temp.check((SELECT count(*) FROM loyalty.schedule_jobs()) = (SELECT count(*) FROM loyalty.jobs()),
                     'schedule_jobs() schedules every job');
SELECT pg_temp.check((SELECT count(*) FROM loyalty.schedule_jobs()) = (SELECT count(*) FROM loyalty.jobs())
                     AND (SELECT count(*) FROM cron.job WHERE jobname IN (SELECT job FROM loyalty.jobs()))
                         = (SELECT count(*) FROM loyalty.jobs()),
                     'scheduling again replaces them: one pg_cron job each');
\echo waiting for pg_cron (at most two minutes)...

-- poll: the lot recorded as expired and the hold released, by the jobs
SET cron_test.customer = :'customer';
SET cron_test.hold = :'hold';
DO $$
DECLARE
    c bigint := current_setting('cron_test.customer')::bigint;
    h bigint := current_setting('cron_test.hold')::bigint;
    deadline timestamptz := clock_timestamp() + interval '150 seconds';
    expired boolean;
    released boolean;
    accrued boolean;
BEGIN
    LOOP
        expired := EXISTS (SELECT 1 FROM loyalty.ledger WHERE customer_id = c AND operation = 'expire');
        released := (SELECT status = 'expired' FROM loyalty.hold WHERE id = h);
        accrued := EXISTS (SELECT 1 FROM loyalty.ledger WHERE customer_id = c AND operation = 'accrue'
                                                         AND idempotency_key LIKE 'loyalty:accrual:%');
        EXIT WHEN expired AND released AND accrued;
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'not ok - after 150 s: lot expired %, hold released %, accrual released %',
                expired, released, accrued;
        END IF;
        PERFORM pg_sleep(2);
    END LOOP;
END
$$;
\echo ok - the scheduled jobs recorded the expired lot, released the hold past its deadline and the queued accrual

-- the runs that did the work may still be finishing (run_job stops after
-- three idle slices): wait until none of the extension's jobs is running
DO $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '60 seconds';
BEGIN
    WHILE EXISTS (SELECT 1 FROM loyalty.job_health WHERE last_status IN ('starting', 'running')) LOOP
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'not ok - a job is still running after 60 s';
        END IF;
        PERFORM pg_sleep(0.5);
    END LOOP;
END
$$;

SELECT pg_temp.check(balance = 150 AND held = 0,
                     'the wallet keeps the 50 points that do not expire and the 100 released, none held')
  FROM loyalty.wallet WHERE customer_id = :customer;
SELECT pg_temp.check(NOT EXISTS (SELECT 1 FROM loyalty.job_health WHERE scheduled IS NOT TRUE),
                     'job_health shows every job scheduled');
SELECT pg_temp.check(NOT EXISTS (SELECT 1 FROM loyalty.job_health
                                  WHERE schedule = '* * * * *'
                                    AND (last_status IS DISTINCT FROM 'succeeded'
                                         OR last_start < :'started' OR last_duration IS NULL)),
                     'job_health shows every job that runs each minute with a last run that succeeded');
SELECT pg_temp.check(loyalty.unschedule_jobs() = (SELECT count(*) FROM loyalty.jobs()),
                     'unschedule_jobs() removes every job');
SELECT pg_temp.check(NOT EXISTS (SELECT 1 FROM cron.job WHERE jobname IN (SELECT job FROM loyalty.jobs())),
                     'and pg_cron has none of them left');
SELECT pg_temp.check(loyalty.unschedule_jobs() = 0, 'unscheduling again removes nothing');
SELECT pg_temp.check(NOT scheduled, 'job_health shows them unscheduled') FROM loyalty.job_health LIMIT 1;
