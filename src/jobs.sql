
-- src/jobs.sql — the background jobs: plain functions, each safe to run
-- concurrently and after a failover (each works from what is due now),
-- scheduled with pg_cron by loyalty.schedule_jobs() under stable names, and
-- watched through the view loyalty.job_health.

-- The jobs: name (the pg_cron job name), schedule (cron syntax), the
-- command, and what it does.  Each command does what is due now within a
-- time budget under the minute, so runs do not pile up; the ones that lock
-- wallets run in transactions of at most 0.2 s (loyalty.run_job), so that a till
-- never waits long for a wallet a job holds.
CREATE FUNCTION @extschema@.jobs()
RETURNS TABLE (job text, schedule text, command text, description text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('loyalty.release_accruals', '* * * * *',
            'CALL loyalty.run_job(''release_accruals'', ''50 seconds'')',
            'releases the accruals of the queue that are due as lots'),
           ('loyalty.expire_due', '* * * * *',
            'CALL loyalty.run_job(''expire_due'', ''50 seconds'')',
            'records expired lots as expire entries in the ledger'),
           ('loyalty.release_expired_holds', '* * * * *',
            'CALL loyalty.run_job(''release_expired_holds'', ''50 seconds'')',
            'marks holds past their deadline expired, with release entries'),
           ('loyalty.notice_expiring', '*/10 * * * *',
            'CALL loyalty.run_job(''notice_expiring'', ''50 seconds'')',
            'emits a points_expiring event per wallet for lots entering their programme''s expiry_notice window'),
           ('loyalty.purge_events', '41 * * * *',
            'SELECT loyalty.purge_events(100000)',
            'deletes events that no consumer took within their programme''s event_retention'),
           ('loyalty.review_tiers', '29 * * * *',
            'CALL loyalty.run_job(''review_tiers'', ''50 seconds'')',
            'from the start of each review period, moves every customer to the tier the window qualifies them for, up or down'),
           ('loyalty.refresh_segments', '53 * * * *',
            'SELECT loyalty.refresh_segments(''50 seconds'')',
            'rebuilds the rule segments whose refresh_every has passed'),
           ('loyalty.settle_referrals', '*/15 * * * *',
            'SELECT loyalty.settle_referrals(1000, ''50 seconds'')',
            'rewards the referrals whose new customer kept a first receipt for the return window, expires the others'),
           ('loyalty.create_partitions', '17 * * * *',
            'SELECT loyalty.create_partitions(3)',
            'keeps monthly partitions of receipts and receipt lines three months ahead')
$$;
COMMENT ON FUNCTION @extschema@.jobs() IS
'the background jobs: pg_cron name, schedule, command and what each does';

-- The arguments every job function takes, checked in one place: a time
-- budget becomes the deadline, a batch limit must be positive.
CREATE FUNCTION @extschema@.job_deadline(time_budget interval)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF time_budget IS NULL OR time_budget OPERATOR(pg_catalog.<=) '0'::interval THEN
        RAISE EXCEPTION 'time_budget must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) time_budget;
END
$$;
COMMENT ON FUNCTION @extschema@.job_deadline(interval) IS
'the deadline of a job given its time_budget (22023 unless positive)';

CREATE FUNCTION @extschema@.job_limit(batch_limit integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF batch_limit IS NULL OR batch_limit OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_limit must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN batch_limit;
END
$$;
COMMENT ON FUNCTION @extschema@.job_limit(integer) IS
'a job''s batch_limit, checked (22023 unless positive)';
REVOKE ALL ON FUNCTION @extschema@.job_deadline(interval), @extschema@.job_limit(integer) FROM PUBLIC;

-- A job run in slices, each its own transaction, so that wallets locked by
-- a slice are free again within a fifth of a second.  No SET clause and no SECURITY
-- DEFINER (a procedure with either cannot commit): every name is qualified.
CREATE PROCEDURE @extschema@.run_job(job text, time_budget interval DEFAULT '50 seconds')
LANGUAGE plpgsql
AS $$
DECLARE
    deadline timestamptz := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) time_budget;
    slice interval;
    n bigint;
    idle integer := 0;
BEGIN
    IF job IS NULL OR job OPERATOR(pg_catalog.<>) ALL ('{release_accruals,expire_due,release_expired_holds,notice_expiring,review_tiers}'::text[]) THEN
        RAISE EXCEPTION 'job "%" cannot run in slices', job
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The jobs that run in slices are release_accruals, expire_due, release_expired_holds, notice_expiring and review_tiers.';
    END IF;
    IF time_budget IS NULL OR time_budget OPERATOR(pg_catalog.<=) '0'::interval THEN
        RAISE EXCEPTION 'time_budget must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP
        slice := LEAST('200 milliseconds'::interval, deadline OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp());
        EXIT WHEN slice OPERATOR(pg_catalog.<=) '0'::interval;
        IF job OPERATOR(pg_catalog.=) 'release_accruals' THEN
            n := @extschema@.release_accruals(slice);
        ELSIF job OPERATOR(pg_catalog.=) 'expire_due' THEN
            n := @extschema@.expire_due(100000, slice);
        ELSIF job OPERATOR(pg_catalog.=) 'notice_expiring' THEN
            n := @extschema@.notice_expiring(100000, slice);
        ELSIF job OPERATOR(pg_catalog.=) 'review_tiers' THEN
            n := @extschema@.review_tiers(100000, slice);
        ELSE
            n := @extschema@.release_expired_holds(100000, slice);
        END IF;
        COMMIT;
        -- a slice that did nothing met only rows other workers or tills
        -- hold, or nothing due: after three in a row, stop
        IF n OPERATOR(pg_catalog.>) 0 THEN
            idle := 0;
        ELSE
            idle := idle OPERATOR(pg_catalog.+) 1;
            EXIT WHEN idle OPERATOR(pg_catalog.>=) 3;
            PERFORM pg_catalog.pg_sleep(0.05);
        END IF;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE @extschema@.run_job(text, interval) IS
'run release_accruals, expire_due, release_expired_holds, notice_expiring or review_tiers in transactions of at most 0.2 s until three in a row find nothing to do or time_budget is spent (CALL it outside a transaction block)';
REVOKE ALL ON PROCEDURE @extschema@.run_job(text, interval) FROM PUBLIC;

-- pg_cron keeps its jobs in one database (cron.database_name); the jobs are
-- scheduled there, to run in it.
CREATE FUNCTION @extschema@.require_pg_cron()
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regproc('cron.schedule_in_database') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', pg_catalog.current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set shared_preload_libraries = ''pg_cron'' and cron.database_name = '''
                         || pg_catalog.current_database()
                         || ''', restart, run CREATE EXTENSION pg_cron in this database, then call this again.'
                         || ' Without pg_cron, run the functions of loyalty.jobs() from any scheduler.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.require_pg_cron() IS
'fail with SQLSTATE 55000 and a hint unless pg_cron is installed in this database';

CREATE FUNCTION @extschema@.schedule_jobs()
RETURNS TABLE (job text, schedule text, jobid bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.require_pg_cron();
    -- schedule_in_database replaces a job of the same name and user: an upsert
    RETURN QUERY
    SELECT j.job, j.schedule,
           cron.schedule_in_database(j.job, j.schedule, j.command, pg_catalog.current_database())
      FROM @extschema@.jobs() j;
END
$$;
COMMENT ON FUNCTION @extschema@.schedule_jobs() IS
'schedule every job of loyalty.jobs() with pg_cron under its stable name (again: replaces them); needs pg_cron in this database';

CREATE FUNCTION @extschema@.unschedule_jobs()
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := 0;
    j record;
BEGIN
    PERFORM @extschema@.require_pg_cron();
    FOR j IN SELECT c.jobid FROM cron.job c JOIN @extschema@.jobs() d ON d.job OPERATOR(pg_catalog.=) c.jobname
              WHERE c.username OPERATOR(pg_catalog.=) CURRENT_USER
    LOOP
        PERFORM cron.unschedule(j.jobid);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.unschedule_jobs() IS
'remove the jobs of loyalty.jobs() from pg_cron; returns how many were scheduled';

-- Each job with its last run (from pg_cron, when it is here) and its backlog
-- (from the extension's tables): what is due now and how long it has waited.
CREATE FUNCTION @extschema@.job_health_rows()
RETURNS TABLE (job text, schedule text, scheduled boolean, active boolean,
               last_start timestamptz, last_duration interval, last_status text,
               last_message text, runs_failed_last_day bigint,
               backlog bigint, oldest_due_age interval)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    due record;
BEGIN
    FOR job, schedule IN SELECT d.job, d.schedule FROM @extschema@.jobs() d ORDER BY d.job LOOP
        scheduled := NULL;
        active := NULL;
        last_start := NULL;
        last_duration := NULL;
        last_status := NULL;
        last_message := NULL;
        runs_failed_last_day := NULL;
        IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
            EXECUTE $q$
                SELECT j.jobid IS NOT NULL, j.active, r.start_time,
                       r.end_time OPERATOR(pg_catalog.-) r.start_time, r.status, r.return_message,
                       (SELECT pg_catalog.count(*) FROM cron.job_run_details f
                         WHERE f.jobid OPERATOR(pg_catalog.=) j.jobid
                           AND f.status OPERATOR(pg_catalog.=) 'failed'
                           AND f.start_time OPERATOR(pg_catalog.>)
                               (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day'))
                  FROM (SELECT 1) one
                  LEFT JOIN cron.job j ON j.jobname OPERATOR(pg_catalog.=) $1
                       AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
                  LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details d
                                      WHERE d.jobid OPERATOR(pg_catalog.=) j.jobid
                                      ORDER BY d.runid DESC LIMIT 1) r ON true
                 ORDER BY j.jobid DESC NULLS LAST LIMIT 1 $q$
              INTO scheduled, active, last_start, last_duration, last_status, last_message,
                   runs_failed_last_day
             USING job;
        END IF;
        -- each job's own backlog; a job without one shows NULL
        IF job OPERATOR(pg_catalog.=) 'loyalty.expire_due' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(l.valid_to) INTO due
              FROM @extschema@.lot l
             WHERE l.live AND l.valid_to IS NOT NULL AND l.valid_to OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_accruals' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(q.release_at) INTO due
              FROM @extschema@.accrual_queue q
             WHERE q.release_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_expired_holds' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(h.expires_at) INTO due
              FROM @extschema@.hold h
             WHERE h.status OPERATOR(pg_catalog.=) 'active'
               AND h.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.notice_expiring' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(l.valid_to OPERATOR(pg_catalog.-) g.expiry_notice) INTO due
              FROM @extschema@.lot l
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) l.program_id
             WHERE l.live AND l.valid_to IS NOT NULL AND l.expiry_noticed_at IS NULL
               AND l.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()
               AND l.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) g.expiry_notice);
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.purge_events' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(e.created_at OPERATOR(pg_catalog.+) g.event_retention) INTO due
              FROM @extschema@.event e
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) e.program_id
             WHERE e.created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) g.event_retention);
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.review_tiers' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(pg_catalog.date_trunc(g.tier_review, pg_catalog.now())) INTO due
              FROM @extschema@.program g
              JOIN @extschema@.customer u ON u.program_id OPERATOR(pg_catalog.=) g.id
             WHERE EXISTS (SELECT 1 FROM @extschema@.tier t WHERE t.program_id OPERATOR(pg_catalog.=) g.id)
               AND u.tier_reviewed_at OPERATOR(pg_catalog.<) pg_catalog.date_trunc(g.tier_review, pg_catalog.now())
               AND u.status OPERATOR(pg_catalog.<>) 'merged';
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.refresh_segments' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(COALESCE(s.refreshed_at OPERATOR(pg_catalog.+) s.refresh_every, pg_catalog.now())) INTO due
              FROM @extschema@.segment s
             WHERE s.kind OPERATOR(pg_catalog.=) 'rule'
               AND (s.refreshed_at IS NULL
                    OR s.refreshed_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.-) s.refresh_every));
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.settle_referrals' THEN
            SELECT pg_catalog.count(*),
                   pg_catalog.min(COALESCE(r.checked_at, r.created_at) OPERATOR(pg_catalog.+) '1 hour'::interval) INTO due
              FROM @extschema@.referral r
              JOIN @extschema@.referral_scheme s ON s.program_id OPERATOR(pg_catalog.=) r.program_id
             WHERE r.state OPERATOR(pg_catalog.=) 'pending' AND s.active
               AND COALESCE(r.checked_at, r.created_at) OPERATOR(pg_catalog.<=)
                   (pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::interval);
        ELSE
            SELECT NULL::bigint AS count, NULL::timestamptz AS min INTO due;
        END IF;
        backlog := due.count;
        oldest_due_age := pg_catalog.now() OPERATOR(pg_catalog.-) due.min;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.job_health_rows() IS 'the rows of the view loyalty.job_health';
REVOKE ALL ON FUNCTION @extschema@.job_health_rows() FROM PUBLIC;

CREATE VIEW @extschema@.job_health AS
SELECT * FROM @extschema@.job_health_rows();
COMMENT ON VIEW @extschema@.job_health IS
'each job: whether pg_cron has it, its last run (start, duration, status, message), failed runs in the last day, and its backlog (rows due now, age of the oldest)';
COMMENT ON COLUMN @extschema@.job_health.job IS 'the pg_cron job name';
COMMENT ON COLUMN @extschema@.job_health.schedule IS 'the schedule schedule_jobs() gives it (cron syntax)';
COMMENT ON COLUMN @extschema@.job_health.scheduled IS 'pg_cron has the job for this database; NULL without pg_cron';
COMMENT ON COLUMN @extschema@.job_health.active IS 'pg_cron''s active flag of the job';
COMMENT ON COLUMN @extschema@.job_health.last_start IS 'start of the last run';
COMMENT ON COLUMN @extschema@.job_health.last_duration IS 'how long the last run took; NULL while it runs';
COMMENT ON COLUMN @extschema@.job_health.last_status IS 'pg_cron''s status of the last run: succeeded, failed, running...';
COMMENT ON COLUMN @extschema@.job_health.last_message IS 'what the last run returned, or its error';
COMMENT ON COLUMN @extschema@.job_health.runs_failed_last_day IS 'failed runs in the last 24 hours';
COMMENT ON COLUMN @extschema@.job_health.backlog IS 'rows due now that the job has not done: accruals past release_at, lots past valid_to, holds past expires_at, lots in their notice window (not yet expired) without a notice, events past their retention, customers not yet reviewed this review period, rule segments due for a rebuild, pending referrals not looked at for an hour';
COMMENT ON COLUMN @extschema@.job_health.oldest_due_age IS 'how long the oldest of them has been due; NULL when none';
