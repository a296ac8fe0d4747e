-- test/upgrade/data.sql — a programme and its customers written with the
-- oldest release (0.1), before the walk through every delta: the upgrade
-- must keep them as they were (test/upgrade/snapshot.sql reads them).
-- Plain INSERTs, as the rows of a database that ran 0.1: the functions of
-- 0.1 are not called, since they run on this build's C library, which
-- expects the current schema (for the identifiers, already normalised, the
-- trigger that would call them is held off by session_replication_role).
\set ON_ERROR_STOP 1
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country, card_luhn)
VALUES ('walk', 'Upgrade walk', 'bonus', 'RU', true);
INSERT INTO loyalty.currency (program_id, code, name, exponent, money_per_unit)
SELECT id, 'bonus', 'Bonus', 2, 0.01 FROM loyalty.program WHERE code = 'walk';
COMMIT;
INSERT INTO loyalty.customer (program_id, birth_date, home_city, attributes)
SELECT id, '1990-05-01', 'Perm', '{"channel": "app"}' FROM loyalty.program WHERE code = 'walk';
INSERT INTO loyalty.customer (program_id)
SELECT id FROM loyalty.program WHERE code = 'walk';
SET session_replication_role = replica;
INSERT INTO loyalty.identifier (program_id, kind, value, customer_id, status, replaced_by)
SELECT p.id, x.kind, x.value, c.id, x.status, x.replaced_by
  FROM loyalty.program p,
       (VALUES (1, 'card', '4000001234567899', 'active', NULL),
               (1, 'phone', '+79123456789', 'active', NULL),
               (1, 'email', 'anna@example.com', 'active', NULL),
               (2, 'card', '4111111111111111', 'replaced', '5500000000000004'),
               (2, 'card', '5500000000000004', 'active', NULL)) AS x (n, kind, value, status, replaced_by),
       LATERAL (SELECT id FROM loyalty.customer ORDER BY id OFFSET x.n - 1 LIMIT 1) c
 WHERE p.code = 'walk';
RESET session_replication_role;
INSERT INTO loyalty.customer_log (program_id, customer_id, action, detail, actor, reason)
SELECT c.program_id, c.id, 'replace_card', '{"old": "4111111111111111", "new": "5500000000000004"}', 'upgrade', 'card lost'
  FROM loyalty.customer c ORDER BY id DESC LIMIT 1;
