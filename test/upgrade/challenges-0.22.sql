-- test/upgrade/challenges-0.22.sql — after test/upgrade/challenges-0.21.sql
-- and the update: the state each goal keeps, computed from 0.21's items;
-- the receipts' rows, one entry per challenge; then a return and a late
-- receipt move them as if they had always been 0.22's.  Prints t per check.
\set ON_ERROR_STOP 1
SELECT id AS cid FROM loyalty.customer WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'quest') \gset
CREATE TEMP VIEW st AS
SELECT c.code, p.progress, p.state, p.keys, p.key_counts, p.periods, p.period_counts, p.last_receipt
  FROM loyalty.challenge_progress p JOIN loyalty.challenge c ON c.id = p.challenge_id WHERE p.customer_id = :cid;
SELECT keys = '{ski/boots,ski/skis}' AND key_counts = '{2,1}' AS d FROM st WHERE code = 'D';
SELECT periods = ARRAY[date '2026-03-10' - date '2000-01-01', date '2026-03-11' - date '2000-01-01',
                       date '2026-03-13' - date '2000-01-01'] AND period_counts = '{1,1,1}' AS k FROM st WHERE code = 'K';
SELECT last_receipt = 'V3' AS p FROM st WHERE code = 'P';
SELECT total = '{1,1,1,40000}' AND value = total AND encode(lines, 'hex') = '01030103' AND encode(alive, 'hex') = '03'
       AND key = '{ski/boots,1}' AND key_of = '{1,3}' AND key_line = '{1,1}' AS v1
  FROM loyalty.challenge_receipt WHERE receipt_id = 'V1';
-- V3 returned: boots once less, the 13th gone, 200.00 less, the quest counted again (boots of V1, skis of V2)
SELECT loyalty.refund('quest', 'V3', '[{"line": 1, "qty": 2}]', 'V3-R') IS NOT NULL AS refunded;
SELECT string_agg(code || ':' || progress || ':' || array_to_string(key_counts, ','), ' ' ORDER BY code)
       = 'D:2:1,1 K:2: P:2: S:90000:' AS returned FROM st;
-- a receipt of the 12th arriving late: each goal completed
SELECT loyalty.commit('{"program": "quest", "receipt_id": "V4", "customer": {"card": "30000001"}, "at": "2026-03-12T12:00:00+00:00",
                        "lines": [{"line": 1, "sku": "SERVICE", "qty": 1, "price": 50}]}') IS NOT NULL AS v4;
SELECT string_agg(code || ':' || progress || ':' || state, ' ' ORDER BY code)
       = 'D:3:completed K:3:completed P:3:completed S:95000:active' AS late FROM st;
