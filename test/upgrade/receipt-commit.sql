-- test/upgrade/receipt-commit.sql — receipts committed by the version
-- before the current one (test/upgrade/run.sh runs it there, then updates
-- to the current version and runs test/upgrade/receipt-return.sql): U1 is
-- returned line by line, U2 cancelled.
\set ON_ERROR_STOP 1
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('till', 'Till', 'bonus', 1000);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'till';
COMMIT;
SELECT loyalty.enroll('till', card => '10000001') AS cid \gset
SELECT (loyalty.accrue(:cid, 'bonus', 400)).balance_after;
SELECT loyalty.commit('{"program": "till", "receipt_id": "U1", "customer": {"card": "10000001"},
                        "points": 300,
                        "lines": [{"line": 1, "sku": "A", "qty": 1, "price": 1000},
                                  {"line": 2, "sku": "B", "qty": 2, "price": 500}]}') -> 'totals' AS totals;
SELECT loyalty.commit('{"program": "till", "receipt_id": "U2", "customer": {"card": "10000001"},
                        "points": 50, "lines": [{"line": 1, "sku": "C", "qty": 1, "price": 300}]}') -> 'totals' AS totals;
