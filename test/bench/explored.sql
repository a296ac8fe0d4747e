-- test/bench/explored.sql — how much the best-benefit search does on the
-- benchmark's receipts (calculate_data.sql): each receipt is calculated
-- once, and the combinations the search evaluated to the end ("explored")
-- are summed up as percentiles, with the share of answers proven optimal
-- within loyalty.search_time_budget.  Run by test/bench/run.sh with the
-- 1 000 promotions, then with the 10 000 (psql variable tag: "" or ".10k").
-- Prints "bench calculate.explored{tag}.p50 N combinations" and so on.
\set ON_ERROR_STOP on
\if :{?tag}
\else
\set tag ''
\endif
SET client_min_messages = warning;
CREATE TEMP TABLE explored AS
SELECT (a ->> 'explored')::bigint AS explored, (a ->> 'optimal')::boolean AS optimal
  FROM bench_receipt r, LATERAL (SELECT loyalty.calculate(r.doc || '{"explain": true}') AS a) c;
SELECT format('bench calculate.explored%s.%s %s combinations', :'tag', k, v)
  FROM (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY explored) AS p50,
               percentile_disc(0.9) WITHIN GROUP (ORDER BY explored) AS p90,
               percentile_disc(0.99) WITHIN GROUP (ORDER BY explored) AS p99,
               max(explored) AS mx
          FROM explored) s,
       LATERAL (VALUES (1, 'p50', p50), (2, 'p90', p90), (3, 'p99', p99), (4, 'max', mx)) f (o, k, v)
 ORDER BY o \g (tuples_only format=unaligned)
SELECT format('bench calculate.optimal%s %s percent', :'tag',
              round(100.0 * count(*) FILTER (WHERE optimal) / count(*), 2))
  FROM explored \g (tuples_only format=unaligned)
