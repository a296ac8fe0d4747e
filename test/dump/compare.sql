-- test/dump/compare.sql — what a dump must carry over, printed in a stable
-- order: run on the dumped and on the restored database, the two outputs
-- must be equal.
\pset footer off
\pset pager off
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\echo == extension
SELECT extname, extversion FROM pg_extension WHERE extname = 'loyalty';
\echo == programmes, currencies, tiers
SELECT * FROM loyalty.program ORDER BY id;
SELECT * FROM loyalty.currency ORDER BY program_id, code;
SELECT * FROM loyalty.tier ORDER BY program_id, rank;
\echo == customers, identifiers, their log
SELECT * FROM loyalty.customer ORDER BY id;
SELECT * FROM loyalty.identifier ORDER BY customer_id, kind, value;
SELECT * FROM loyalty.customer_log ORDER BY id;
SELECT * FROM loyalty.tier_change ORDER BY id;
\echo == wallets, ledger, lots, holds, balances
SELECT * FROM loyalty.wallet ORDER BY customer_id, currency;
SELECT * FROM loyalty.ledger ORDER BY customer_id, currency, version;
SELECT * FROM loyalty.lot ORDER BY id;
SELECT * FROM loyalty.hold ORDER BY id;
SELECT w.customer_id, b.* FROM loyalty.wallet w JOIN loyalty.customer c ON c.id = w.customer_id AND c.merged_into IS NULL,
       LATERAL loyalty.balance(w.customer_id) b ORDER BY 1, 2;
\echo == catalogue: products, promotions, coupons, offers, counters, segments
SELECT * FROM loyalty.product ORDER BY program_id, sku;
SELECT id, program_id, code, name, status, active, audience, tiers, segments, line_condition::text,
       receipt_condition::text, benefit, stacking_group, priority, exclusive,
       limit_per_customer, limit_period, limit_total, budget
  FROM loyalty.promotion ORDER BY id;
SELECT * FROM loyalty.coupon ORDER BY id;
SELECT * FROM loyalty.personal_offer ORDER BY customer_id, promotion_id;
SELECT * FROM loyalty.counter ORDER BY promotion_id, customer_id, period_start;
SELECT * FROM loyalty.segment ORDER BY program_id, code;
SELECT * FROM loyalty.segment_member ORDER BY program_id, segment, customer_id;
\echo == receipts, lines, refunds, the queue, events
SELECT * FROM loyalty.receipt_key ORDER BY program_id, receipt_id;
SELECT tableoid::regclass AS partition, * FROM loyalty.receipt ORDER BY program_id, receipt_id;
SELECT * FROM loyalty.receipt_line ORDER BY program_id, receipt_id, line;
SELECT * FROM loyalty.receipt_refund ORDER BY program_id, receipt_id, refund_id;
SELECT * FROM loyalty.accrual_queue ORDER BY id;
SELECT * FROM loyalty.event ORDER BY id;
\echo == sequences continue where they were
-- (but the catalogue's generation, which is not saved: a restore bumps it
-- anew, see docs/tables.md)
SELECT sequencename, last_value FROM pg_sequences
 WHERE schemaname = 'loyalty' AND sequencename <> 'catalog_generation_seq' ORDER BY 1;
\echo == partitions
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'loyalty.receipt'::regclass ORDER BY 1;
\echo == bindings of roles to programmes, row-level security
SELECT role::text, program_id, granted_by FROM loyalty.program_access ORDER BY 1, 2;
SELECT c.relname, c.relrowsecurity, p.polname, pg_get_expr(p.polqual, p.polrelid) AS policy
  FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY 1, 3;
\echo == indexes (each partition's own, none twice)
SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'loyalty' ORDER BY 1, 2;
