-- test/upgrade/challenges-0.21.sql — challenges as 0.21 kept them
-- (test/upgrade/run.sh runs it on a 0.21 schema, updates to the current
-- version and runs test/upgrade/challenges-0.22.sql): the receipts are
-- committed by the current library, which moves no challenge on a schema
-- older than 0.22, and their progress and items are written here as 0.21
-- wrote them (one item per challenge and matching line).
\set ON_ERROR_STOP 1
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('quest', 'Quest', 'bonus', 0);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'quest';
INSERT INTO loyalty.product (program_id, sku, name, category)
SELECT p.id, v.sku, v.sku, v.category FROM loyalty.program p,
       (VALUES ('BOOTS', 'ski/boots'), ('SKIS', 'ski/skis'), ('SERVICE', 'ski/service'), ('TV', 'tv')) v (sku, category)
 WHERE p.code = 'quest';
INSERT INTO loyalty.challenge (program_id, code, name, goal, condition, target, distinct_of, streak_unit,
                               starts_at, ends_at, reward_points)
SELECT p.id, v.code, v.code, v.goal, v.cond::loyalty.condition, v.target, v.distinct_of, v.unit,
       '2026-03-01T00:00:00+00:00', '2026-04-01T00:00:00+00:00', 10
  FROM loyalty.program p,
       (VALUES ('D', 'distinct', 'category <@ ''ski''', 3, 'category', NULL),
               ('K', 'streak', NULL, 3, NULL, 'day'),
               ('P', 'steps', NULL, 3, NULL, NULL),
               ('S', 'spend', NULL, 2000, NULL, NULL)) v (code, goal, cond, target, distinct_of, unit)
 WHERE p.code = 'quest' ORDER BY v.code;
INSERT INTO loyalty.challenge_step (program_id, challenge_id, step, condition)
SELECT c.program_id, c.id, v.step, v.cond::loyalty.condition
  FROM loyalty.challenge c,
       (VALUES (1, 'category <@ ''ski/boots'''), (2, 'category <@ ''ski/skis'''), (3, 'category <@ ''ski/service''')) v (step, cond)
 WHERE c.code = 'P';
COMMIT;
SELECT loyalty.enroll('quest', card => '30000001') AS cid \gset
SELECT loyalty.commit('{"program": "quest", "receipt_id": "V1", "customer": {"card": "30000001"}, "at": "2026-03-10T12:00:00+00:00",
                        "lines": [{"line": 1, "sku": "BOOTS", "qty": 1, "price": 100},
                                  {"line": 2, "sku": "TV", "qty": 1, "price": 300}]}') IS NOT NULL AS v1;
SELECT loyalty.commit('{"program": "quest", "receipt_id": "V2", "customer": {"card": "30000001"}, "at": "2026-03-11T12:00:00+00:00",
                        "lines": [{"line": 1, "sku": "SKIS", "qty": 1, "price": 500}]}') IS NOT NULL AS v2;
SELECT loyalty.commit('{"program": "quest", "receipt_id": "V3", "customer": {"card": "30000001"}, "at": "2026-03-13T12:00:00+00:00",
                        "lines": [{"line": 1, "sku": "BOOTS", "qty": 2, "price": 100}]}') IS NOT NULL AS v3;
-- what 0.21 wrote for them
INSERT INTO loyalty.challenge_progress (challenge_id, customer_id, program_id, enrolled_at, window_end, progress)
SELECT c.id, :cid, c.program_id, '2026-03-10T12:00:00+00:00', '2026-04-01T00:00:00+00:00', v.progress
  FROM loyalty.challenge c JOIN (VALUES ('D', 2), ('K', 2), ('P', 2), ('S', 110000)) v (code, progress) ON v.code = c.code;
INSERT INTO loyalty.challenge_receipt (program_id, receipt_id, customer_id, at, day, challenge_id, line_no, total, value, key)
SELECT c.program_id, v.rid, :cid, v.at::timestamptz, (v.at::timestamptz AT TIME ZONE 'UTC')::date,
       array_agg(c.id ORDER BY c.id, i.line), array_agg(i.line ORDER BY c.id, i.line),
       array_agg(i.total ORDER BY c.id, i.line), array_agg(i.total ORDER BY c.id, i.line),
       array_agg(i.key ORDER BY c.id, i.line)
  FROM (VALUES ('V1', '2026-03-10T12:00:00+00:00'), ('V2', '2026-03-11T12:00:00+00:00'),
               ('V3', '2026-03-13T12:00:00+00:00')) v (rid, at)
  JOIN (VALUES ('V1', 'D', 1, 1, 'ski/boots'), ('V1', 'K', 1, 1, ''), ('V1', 'K', 2, 1, ''), ('V1', 'P', 1, 1, '1'),
               ('V1', 'S', 1, 10000, ''), ('V1', 'S', 2, 30000, ''),
               ('V2', 'D', 1, 1, 'ski/skis'), ('V2', 'K', 1, 1, ''), ('V2', 'P', 1, 1, '2'), ('V2', 'S', 1, 50000, ''),
               ('V3', 'D', 1, 1, 'ski/boots'), ('V3', 'K', 1, 1, ''), ('V3', 'P', 1, 1, '1'), ('V3', 'S', 1, 20000, ''))
       i (rid, code, line, total, key) ON i.rid = v.rid
  JOIN loyalty.challenge c ON c.code = i.code
 GROUP BY c.program_id, v.rid, v.at;
