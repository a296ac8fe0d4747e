-- test/dump/after.sql — the database keeps working after a restore: a new
-- checkout (points spent, the 3 for 2, a bonus lot in the other programme),
-- a cancel and the expiry job, with ids that continue where the dump left
-- them.  Run on both databases; the outputs must be equal.
\pset footer off
SET client_min_messages = warning;
SELECT r -> 'totals' AS totals, r #> '{commit,ledger}' AS ledger
  FROM loyalty.commit('{"program": "shop", "receipt_id": "AFTER-1", "customer": {"card": "10000001"}, "points": "max",
                        "lines": [{"line": 1, "sku": "SOCK", "qty": 3, "price": 100}]}') r;
SELECT r -> 'totals' AS totals, r #> '{commit,accrual}' AS accrual
  FROM loyalty.commit('{"program": "late", "receipt_id": "AFTER-2", "customer": {"card": "20000001"},
                        "lines": [{"line": 1, "sku": "COF", "qty": 1, "price": 300}]}') r;
SELECT loyalty.cancel('shop', 'R2') ->> 'status' AS r2;
SELECT max(id) AS last_lot FROM loyalty.lot;
SELECT max(id) AS last_event, count(*) AS events FROM loyalty.event;
SELECT customer_id, currency, version, operation, amount, balance_after
  FROM loyalty.ledger WHERE receipt_id IN ('AFTER-1', 'R2') ORDER BY customer_id, version;
SELECT (loyalty.identify('shop', '10000022') ->> 'customer_id') IS NOT NULL AS replaced_card_found,
       loyalty.identify('shop', '10000002') ->> 'reason' AS old_card;
