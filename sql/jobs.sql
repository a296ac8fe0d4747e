-- The background jobs without pg_cron (the regression database has none):
-- loyalty.jobs() lists them, schedule_jobs() and unschedule_jobs() refuse
-- with 55000 and a hint, and job_health shows each job's backlog, which the
-- job functions themselves clear.  test/cron/jobs.sql runs them under pg_cron.
CREATE EXTENSION loyalty;
\set VERBOSITY default

SELECT job, schedule, command FROM loyalty.jobs() ORDER BY job;

-- without pg_cron: a clear error with a hint, and nothing scheduled
SELECT * FROM loyalty.schedule_jobs();
SELECT loyalty.unschedule_jobs();
SELECT job, scheduled, last_status, backlog, oldest_due_age FROM loyalty.job_health;

-- a backlog: a lot and a hold of a second, past their end but not yet
-- recorded
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency) VALUES ('jobs', 'Jobs', 'bonus');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'jobs';
COMMIT;
SELECT loyalty.enroll('jobs', phone => '+79160000001') AS customer \gset
SELECT (loyalty.accrue(:customer, 'bonus', 100, valid_to => now() + interval '1 second')).balance_after;
SELECT (loyalty.accrue(:customer, 'bonus', 40)).balance_after;
SELECT loyalty.hold(:customer, 'bonus', 10, ttl => '1 second') > 0 AS held;
SELECT pg_sleep(1.2);
SELECT job, backlog, oldest_due_age > interval '0' AS waiting FROM loyalty.job_health;

-- what the scheduler would run clears it (a job that takes a wallet tidies
-- both: the expired lot is recorded and the hold released together)
SELECT loyalty.expire_due(10000, '50 seconds') AS wallets_tidied;
SELECT loyalty.release_expired_holds(10000, '50 seconds') AS holds_left;
SELECT job, backlog, oldest_due_age FROM loyalty.job_health;
SELECT balance, held FROM loyalty.wallet WHERE customer_id = :customer;

DROP EXTENSION loyalty CASCADE;
