-- The extension installed and used while a hostile schema sits first on the
-- search_path, before pg_catalog, with look-alikes of the functions and
-- operators the install script and the functions use: each records its
-- call.  None of them may be called: every name the extension uses is
-- qualified (or its function sets search_path).  This test's own queries
-- name pg_catalog's operators explicitly, so that they call nothing either.
CREATE SCHEMA hostile;
CREATE TABLE hostile.calls (what text);
CREATE FUNCTION hostile.note(what text) RETURNS void LANGUAGE sql
AS $$ INSERT INTO hostile.calls VALUES (what) $$;
CREATE FUNCTION hostile.now() RETURNS timestamptz LANGUAGE sql
AS $$ SELECT hostile.note('now()'); SELECT pg_catalog.now() $$;
CREATE FUNCTION hostile.lower(text) RETURNS text LANGUAGE sql
AS $$ SELECT hostile.note('lower(text)'); SELECT pg_catalog.lower($1) $$;
CREATE FUNCTION hostile.length(text) RETURNS integer LANGUAGE sql
AS $$ SELECT hostile.note('length(text)'); SELECT pg_catalog.length($1) $$;
CREATE FUNCTION hostile.abs(bigint) RETURNS bigint LANGUAGE sql
AS $$ SELECT hostile.note('abs(bigint)'); SELECT pg_catalog.abs($1) $$;
CREATE FUNCTION hostile.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql
AS $$ SELECT hostile.note('jsonb_typeof(jsonb)'); SELECT pg_catalog.jsonb_typeof($1) $$;
CREATE FUNCTION hostile.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE sql
AS $$ SELECT hostile.note('jsonb_build_object(text, text)'); SELECT pg_catalog.jsonb_build_object($1, $2) $$;
CREATE FUNCTION hostile.format(text, text) RETURNS text LANGUAGE sql
AS $$ SELECT hostile.note('format(text, text)'); SELECT pg_catalog.format($1, $2) $$;
CREATE FUNCTION hostile.int8eq(bigint, bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT hostile.note('= (bigint, bigint)'); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR hostile.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hostile.int8eq);
CREATE FUNCTION hostile.texteq(text, text) RETURNS boolean LANGUAGE sql
AS $$ SELECT hostile.note('= (text, text)'); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.texteq);
CREATE FUNCTION hostile.textne(text, text) RETURNS boolean LANGUAGE sql
AS $$ SELECT hostile.note('<> (text, text)'); SELECT $1 OPERATOR(pg_catalog.<>) $2 $$;
CREATE OPERATOR hostile.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.textne);
CREATE FUNCTION hostile.int8pl(bigint, bigint) RETURNS bigint LANGUAGE sql
AS $$ SELECT hostile.note('+ (bigint, bigint)'); SELECT $1 OPERATOR(pg_catalog.+) $2 $$;
CREATE OPERATOR hostile.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hostile.int8pl);
CREATE FUNCTION hostile.int8mi(bigint, bigint) RETURNS bigint LANGUAGE sql
AS $$ SELECT hostile.note('- (bigint, bigint)'); SELECT $1 OPERATOR(pg_catalog.-) $2 $$;
CREATE OPERATOR hostile.- (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hostile.int8mi);
CREATE FUNCTION hostile.field(jsonb, text) RETURNS text LANGUAGE sql
AS $$ SELECT hostile.note('->> (jsonb, text)'); SELECT $1 OPERATOR(pg_catalog.->>) $2 $$;
CREATE OPERATOR hostile.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = hostile.field);
CREATE FUNCTION hostile.member(jsonb, text) RETURNS jsonb LANGUAGE sql
AS $$ SELECT hostile.note('-> (jsonb, text)'); SELECT $1 OPERATOR(pg_catalog.->) $2 $$;
CREATE OPERATOR hostile.-> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = hostile.member);
CREATE FUNCTION hostile.textcat(text, text) RETURNS text LANGUAGE sql
AS $$ SELECT hostile.note('|| (text, text)'); SELECT $1 OPERATOR(pg_catalog.||) $2 $$;
CREATE OPERATOR hostile.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.textcat);

SET search_path = hostile, pg_catalog, public;

-- installing calls none of them
CREATE EXTENSION loyalty;
SELECT what, count(*) FROM hostile.calls GROUP BY what ORDER BY what;

-- nor does using it: a programme, a customer, points, a receipt calculated,
-- committed, returned in part (recomputed), another committed and
-- cancelled, a hold, the jobs, the events and the views
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp) VALUES ('shop', 'Shop', 'bonus', 500);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
INSERT INTO loyalty.tier (program_id, code, name, rank, min_spend) VALUES (1, 'gold', 'Gold', 1, 10);
INSERT INTO loyalty.segment (program_id, code, name, kind, rule)
VALUES (1, 'buyers', 'Buyers', 'rule', 'frequency >= 1');
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, limit_per_customer, limit_period)
VALUES (1, 'N3', 'Three for two', 'active', 'price < 1000', '{"kind": "n_for_m", "buy": 3, "pay": 2}', 5, 'month');
SELECT loyalty.enroll('shop', card => '10000001', phone => '+79160000001') AS anna \gset
SELECT (loyalty.accrue(:anna, 'bonus', 100)).version;
SELECT loyalty.identify('shop', '+7 916 000 00 01') OPERATOR(pg_catalog.#>>) '{found}' AS found;
SELECT loyalty.calculate('{"program": "shop", "customer": {"card": "10000001"}, "lines": [{"line": 1, "qty": 3, "price": 100}]}')
       OPERATOR(pg_catalog.#>) '{totals,discount}' AS discount;
SELECT loyalty.commit('{"program": "shop", "receipt_id": "H1", "customer": {"card": "10000001"}, "points": "max",
                        "lines": [{"line": 1, "qty": 3, "price": 100}, {"line": 2, "qty": 1, "price": 50}]}')
       OPERATOR(pg_catalog.#>) '{totals,to_pay}' AS to_pay;
SELECT loyalty.refund('shop', 'H1', '[{"line": 1, "qty": 1}]', 'F1') OPERATOR(pg_catalog.#>) '{money}' AS money;
SELECT loyalty.commit('{"program": "shop", "receipt_id": "H2", "customer": {"card": "10000001"},
                        "lines": [{"line": 1, "qty": 1, "price": 100}]}') OPERATOR(pg_catalog.#>) '{totals,to_pay}' AS to_pay;
SELECT loyalty.cancel('shop', 'H2') OPERATOR(pg_catalog.#>>) '{status}' AS status;
SELECT loyalty.hold(:anna, 'bonus', 10) IS NOT NULL AS held;
SELECT currency, balance, held, available FROM loyalty.balance(:anna);
SELECT loyalty.create_partitions(1) AS partitions;
SELECT loyalty.release_accruals('1 second') AS released;
SELECT loyalty.expire_due() AS expired;
SELECT loyalty.notice_expiring() AS noticed;
SELECT loyalty.review_tiers() AS reviewed;
SELECT loyalty.refresh_segments(force => true) AS segments;
SELECT tier FROM loyalty.customer WHERE id OPERATOR(pg_catalog.=) :anna;
SELECT count(*) AS events FROM loyalty.take_events(100);
SELECT count(*) AS balances FROM loyalty.balances;
SELECT count(*) AS entries FROM loyalty.ledger_entries;
SELECT count(*) AS liability FROM loyalty.liability;
SELECT count(*) AS jobs FROM loyalty.job_health;
SELECT what, count(*) FROM hostile.calls GROUP BY what ORDER BY what;

-- and the look-alikes do catch an unqualified name
SELECT lower('ABC') AS lowered, 2::bigint = 2::bigint AS equal;
SELECT what, count(*) FROM hostile.calls GROUP BY what ORDER BY what;

RESET search_path;
SET client_min_messages = warning;
DROP EXTENSION loyalty CASCADE;
DROP SCHEMA hostile CASCADE;
