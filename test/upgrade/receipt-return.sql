-- test/upgrade/receipt-return.sql — the receipt of receipt-commit.sql,
-- committed before the last update, returned line by line by the current
-- version: each step prints one row of checks that test/upgrade/run.sh
-- expects to be all true.
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
SELECT w.balance = 400 AS balance_restored,
       w.balance = (SELECT sum(l.amount) FROM loyalty.ledger l WHERE l.customer_id = w.customer_id) AS ledger_sums
  FROM loyalty.wallet w JOIN loyalty.customer c ON c.id = w.customer_id
  JOIN loyalty.program p ON p.id = c.program_id WHERE p.code = 'till';
