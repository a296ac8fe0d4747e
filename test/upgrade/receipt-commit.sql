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
-- U3 committed, replayed and cancelled before the update by this module
-- on the previous schema: the row keeps the answer without its lines, the
-- replay renders them back to the character, and cancel finds the entries
CREATE TEMP TABLE u3 (doc jsonb, first jsonb);
INSERT INTO u3 (doc) VALUES ('{"program": "till", "receipt_id": "U3", "customer": {"card": "10000001"},
                              "points": 20, "lines": [{"line": 1, "sku": "D", "qty": 1, "price": 200}]}');
UPDATE u3 SET first = loyalty.commit(doc);
SELECT first -> 'totals' AS totals FROM u3;
DO $$
DECLARE
    doc jsonb := (SELECT u3.doc FROM u3);
    first jsonb := (SELECT u3.first FROM u3);
    replay jsonb := loyalty.commit(doc);
    stored_lines boolean := (SELECT answer ? 'lines' FROM loyalty.receipt WHERE receipt_id = 'U3');
    r jsonb := loyalty.cancel('till', 'U3', 'before the update');
BEGIN
    IF stored_lines OR jsonb_set(replay, '{commit,replayed}', 'false')::text <> first::text
       OR r ->> 'status' <> 'cancelled' OR jsonb_array_length(r -> 'ledger') <> 2 THEN
        RAISE EXCEPTION 'U3: lines stored %, replayed %, first %, cancel gave %', stored_lines, replay, first, r;
    END IF;
END
$$;
