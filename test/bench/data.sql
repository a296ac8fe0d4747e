-- test/bench/data.sql — the benchmark data set, for test/bench/run.sh.
--
-- psql variables (all optional):
--   customers  how many customers, each with one wallet (default 10000)
--   program    programme code (default bench)
--   currency   points currency code (default bonus)
--
-- Expects a fresh database with the extension: customers get the ids
-- 1..customers, which the pgbench scripts draw uniformly.  Every wallet gets
-- three lots through loyalty.accrue, so the wallets, lots and ledger agree:
--   a regular lot that never expires, with plenty of points (1 000 000);
--   a promo lot of 5 000 that expires in 30 to 300 days (spent first);
--   a lot of 2 000 restricted to 'fuel' (spent only when the caller says so).
-- Also bench_counter, the baseline table: one row per customer.
\set ON_ERROR_STOP on
\if :{?customers}
\else
\set customers 10000
\endif
\if :{?program}
\else
\set program bench
\endif
\if :{?currency}
\else
\set currency bonus
\endif
SET client_min_messages = warning;

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency)
VALUES (:'program', 'Benchmark programme', :'currency');
INSERT INTO loyalty.currency (program_id, code, name, exponent, money_per_unit)
SELECT id, :'currency', 'Benchmark points', 0, 1 FROM loyalty.program WHERE code = :'program';
INSERT INTO loyalty.customer (program_id)
SELECT p.id FROM loyalty.program p, generate_series(1, :customers) WHERE p.code = :'program';
COMMIT;

SELECT count(*) AS regular_lots
  FROM loyalty.customer c, loyalty.program p,
       LATERAL loyalty.accrue(c.id, :'currency', 1000000, reason => 'benchmark seed') a
 WHERE p.code = :'program' AND c.program_id = p.id;
SELECT count(*) AS expiring_lots
  FROM loyalty.customer c, loyalty.program p,
       LATERAL loyalty.accrue(c.id, :'currency', 5000, kind => 'promo',
                              valid_to => now() + make_interval(days => 30 + floor(random() * 271)::int),
                              reason => 'benchmark seed') a
 WHERE p.code = :'program' AND c.program_id = p.id;
SELECT count(*) AS restricted_lots
  FROM loyalty.customer c, loyalty.program p,
       LATERAL loyalty.accrue(c.id, :'currency', 2000, kind => 'product', restriction => 'fuel',
                              reason => 'benchmark seed') a
 WHERE p.code = :'program' AND c.program_id = p.id;

CREATE TABLE bench_counter (id int PRIMARY KEY, x bigint NOT NULL DEFAULT 0);
INSERT INTO bench_counter (id) SELECT generate_series(1, :customers);

-- The scripts draw customers 1..customers: check that they are these wallets.
SELECT set_config('bench.customers', :'customers', false);
DO $$
DECLARE
    n bigint := current_setting('bench.customers')::bigint;
    w record;
BEGIN
    SELECT count(*) AS wallets, min(customer_id) AS lo, max(customer_id) AS hi,
           sum(balance) AS balance, max(version) AS version
      INTO w FROM loyalty.wallet;
    IF w.wallets <> n OR w.lo <> 1 OR w.hi <> n OR w.version <> 3
       OR w.balance <> n * 1007000 THEN
        RAISE EXCEPTION 'benchmark data: expected wallets 1..% with 3 lots each, found %', n, w;
    END IF;
END
$$;
