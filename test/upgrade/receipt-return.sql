-- test/upgrade/receipt-return.sql — the receipts of receipt-commit.sql,
-- committed before the last update: U1 returned line by line and U2
-- cancelled by the current version; each step prints one row of checks
-- that test/upgrade/run.sh expects to be all true.
\set ON_ERROR_STOP 1
-- line 1 back: the points it was paid with return, the points it earned go
SELECT r ->> 'status' = 'partly_refunded' AS partly,
       (r -> 'points_returned' ->> 'bonus')::numeric = (SELECT sum((p ->> 'points')::numeric)
                                                           FROM loyalty.receipt_line l,
                                                                jsonb_array_elements(l.points_paid) p
                                                          WHERE l.receipt_id = 'U1' AND l.line = 1) AS paid_back,
       (r -> 'points_taken' ->> 'bonus')::numeric > 0 AS earned_taken
  FROM loyalty.refund('till', 'U1', '[{"line": 1}]', 'U1-R1') r;
-- then line 2: the wallet holds what it held before the receipt
SELECT loyalty.refund('till', 'U1', '[{"line": 2}]', 'U1-R2') ->> 'status' = 'refunded' AS refunded;
-- U2 cancelled: its points go back to their lots, what it earned is taken back
SELECT r ->> 'status' = 'cancelled' AS cancelled,
       jsonb_array_length(r -> 'ledger') = 2 AS two_entries
  FROM loyalty.cancel('till', 'U2', 'upgrade test') r;
SELECT status = 'cancelled' AND cancel_reason = 'upgrade test' AS stored FROM loyalty.receipt WHERE receipt_id = 'U2';
SELECT w.balance = 400 AS balance_restored,
       w.balance = (SELECT sum(l.amount) FROM loyalty.ledger l WHERE l.customer_id = w.customer_id) AS ledger_sums
  FROM loyalty.wallet w JOIN loyalty.customer c ON c.id = w.customer_id
  JOIN loyalty.program p ON p.id = c.program_id WHERE p.code = 'till';
