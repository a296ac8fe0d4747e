-- loyalty 0.17 -> 0.18: the ledger entries commit writes carry no
-- idempotency key (the receipt id makes commit idempotent); the receipt
-- names them by their key in the ledger (entry_currency, entry_version),
-- for cancel and refund.  Receipts committed before keep their keyed
-- entries and empty arrays: cancel and refund find those by key.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.18'" to load this file. \quit

ALTER TABLE @extschema@.receipt
    ADD COLUMN entry_currency text[] NOT NULL DEFAULT '{}',
    ADD COLUMN entry_version bigint[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN @extschema@.receipt.entry_currency IS 'for each ledger entry commit wrote (redemptions, accruals released at once): its wallet''s currency (empty before 0.18: those entries carry keys)';
COMMENT ON COLUMN @extschema@.receipt.entry_version IS 'for each ledger entry commit wrote: its version in the customer''s wallet of that currency';
COMMENT ON COLUMN @extschema@.receipt.accruals IS 'the accruals: [{key, currency, amount, kind, valid_for, restriction}], released at once (key null since 0.18) or queued (key of the release''s ledger entry)';
