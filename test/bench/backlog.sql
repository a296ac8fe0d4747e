-- test/bench/backlog.sql — a backlog for the queue and expiry benchmarks of
-- test/bench/run.sh, in the calculate data set: :n accruals due now in the
-- queue (10 points each, spread over the customers), or :n lots of 10
-- points that expired a minute ago, credited through the ledger as accruals
-- would (contiguous versions, the wallets' balances and next expiry), so
-- that the expiry job has :n lots to record.
--   psql -v kind=queue|expiry -v n=N -f test/bench/backlog.sql
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT count(*) AS customers FROM loyalty.customer \gset
\if :{?kind}
\else
\set kind queue
\endif
SELECT :'kind' = 'queue' AS is_queue \gset
\if :is_queue
INSERT INTO loyalty.accrual_queue (program_id, receipt_id, customer_id, currency, amount, kind,
                                   idempotency_key, release_at)
SELECT 1, 'BQ' || g, 1 + g % :customers, 'bonus', 10, 'regular',
       'loyalty:accrual:BQ' || g || ':1', now() - interval '1 minute'
  FROM generate_series(1, :n) g;
\else
-- per customer k lots, each with the accrue entry that created it
CREATE TEMP TABLE backlog AS
SELECT w.customer_id, w.version + j AS version, w.balance + 10 * j AS balance_after, w.held, j
  FROM loyalty.wallet w,
       generate_series(1, ceil(:n::numeric / :customers)::int) j
 WHERE w.currency = 'bonus' AND (w.customer_id - 1) * ceil(:n::numeric / :customers)::int + j <= :n;
WITH lots AS (
    INSERT INTO loyalty.lot (program_id, customer_id, currency, amount, remaining, valid_from, valid_to,
                             kind, created_version)
    SELECT 1, b.customer_id, 'bonus', 10, 10, now() - interval '40 days', now() - interval '1 minute',
           'regular', b.version
      FROM backlog b
    RETURNING id, customer_id, created_version)
INSERT INTO loyalty.ledger (program_id, customer_id, currency, version, operation, amount,
                            balance_after, held_after, lot_id, actor, created_at)
SELECT 1, l.customer_id, 'bonus', l.created_version, 'accrue', 10, b.balance_after, b.held, l.id,
       'bench', now() - interval '40 days'
  FROM lots l JOIN backlog b ON b.customer_id = l.customer_id AND b.version = l.created_version;
UPDATE loyalty.wallet w
   SET balance = s.balance_after, version = s.version,
       next_expiry = LEAST(w.next_expiry, now() - interval '1 minute')
  FROM (SELECT customer_id, max(version) AS version, max(balance_after) AS balance_after
          FROM backlog GROUP BY customer_id) s
 WHERE w.customer_id = s.customer_id AND w.currency = 'bonus';
\endif
VACUUM ANALYZE loyalty.accrual_queue;
VACUUM ANALYZE loyalty.lot;
