-- loyalty 0.20 -> 0.21: release_accruals reads the customers on fraud_hold
-- once per slice of the queue from a partial index, instead of looking up
-- each due row's customer.  Building the index reads the customer table
-- once and blocks writes to it meanwhile (see docs/operations.md).
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.21'" to load this file. \quit

-- The customers on fraud_hold, usually few: release_accruals reads them
-- once per slice of the queue (a hashed set) instead of each row's customer.
-- IF NOT EXISTS: a DBA may have built it CONCURRENTLY before the update.
CREATE INDEX IF NOT EXISTS customer_fraud_hold_idx ON @extschema@.customer (id)
    WHERE status OPERATOR(pg_catalog.=) 'fraud_hold';
