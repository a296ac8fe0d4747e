-- A checkout: a random stored receipt of 20 lines as a new receipt of now
-- (the stored "at" left out) that spends as many points as it may,
-- calculated and committed (with the calculation the till saw) in one
-- transaction.
\set r random(1, :receipts)
\set k random(1, 1000000000000000)
BEGIN;
SELECT (doc - 'at') || jsonb_build_object('receipt_id', 'C' || :client_id || '-' || :k, 'points', 'max') AS doc
  FROM bench_receipt WHERE id = :r \gset
SELECT loyalty.calculate(CAST(:doc AS jsonb)) AS seen \gset
SELECT loyalty.commit(CAST(:doc AS jsonb), CAST(:seen AS jsonb)) IS NOT NULL AS committed;
END;
