-- Promotions with limits and budgets over many receipts, each calculated as
-- a till would and committed with the answer it showed.  A budget is money
-- in the programme's major units (100.00), counted in minor units on both
-- sides: the promotion is offered while what it has given is below the
-- budget, so 10.00 off a receipt gives exactly a budget of 100.00 away over
-- ten receipts; then calculate says budget_exhausted and commit, given what
-- calculate showed, never refuses with 40001 (which would send the till
-- round calculating again for ever).  Limits of uses in all and per
-- customer count the same way.
BEGIN;
SELECT plan(19);

SET CONSTRAINTS ALL DEFERRED;
INSERT INTO loyalty.program (code, name, default_currency) VALUES ('lim', 'Limits', 'pts');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'pts', 'Points', 1 FROM loyalty.program WHERE code = 'lim';
SET CONSTRAINTS ALL IMMEDIATE;
SELECT loyalty.enroll('lim', card => '10000001') AS ann, loyalty.enroll('lim', card => '10000002') AS bob \gset

-- One line of 50.00 in a category; the receipt of a customer (or nobody).
CREATE FUNCTION pg_temp.receipt(id text, category text, card text DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('program', 'lim', 'receipt_id', id, 'at', '2026-06-01T12:00:00+03:00', 'explain', true,
                              'lines', jsonb_build_array(jsonb_build_object('line', 1, 'qty', 1, 'price', 50,
                                                                            'category', category)))
           || CASE WHEN card IS NULL THEN '{}'::jsonb
                   ELSE jsonb_build_object('customer', jsonb_build_object('card', card)) END
$$;
-- Calculate as the till does, then commit with that answer; keep both, or
-- the error commit gave.
CREATE TEMP TABLE checkout (n serial, receipt_id text, answer jsonb, committed jsonb, error text);
CREATE FUNCTION pg_temp.checkout(r jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a jsonb := loyalty.calculate(r);
BEGIN
    BEGIN
        INSERT INTO checkout (receipt_id, answer, committed) VALUES (r ->> 'receipt_id', a, loyalty.commit(r, a));
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO checkout (receipt_id, answer, error) VALUES (r ->> 'receipt_id', a, SQLSTATE || ': ' || SQLERRM);
    END;
END
$$;
CREATE FUNCTION pg_temp.applied(a jsonb, code text) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM jsonb_array_elements(a -> 'promotions' -> 'applied') x WHERE x ->> 'code' = code)
$$;
CREATE FUNCTION pg_temp.reason(a jsonb, code text) RETURNS text LANGUAGE sql AS $$
    SELECT x ->> 'reason' FROM jsonb_array_elements(a -> 'promotions' -> 'not_applied') x WHERE x ->> 'code' = code
$$;

INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, budget, limit_total,
                               limit_per_customer, limit_period)
SELECT p.id, v.code, v.code, 'active', v.cond::loyalty.condition, v.benefit::jsonb, v.budget, v.total,
       v.per_customer, v.period
  FROM loyalty.program p,
       (VALUES ('TEN', 'category = ''budget''', '{"kind": "amount_off", "amount": 10}', 100.00, NULL, NULL, NULL),
               ('ODD', 'category = ''odd''', '{"kind": "amount_off", "amount": 10}', 95.00, NULL, NULL, NULL),
               ('THREE', 'category = ''three''', '{"kind": "amount_off", "amount": 5}', NULL, 3, NULL, NULL),
               ('TWICE', 'category = ''twice''', '{"kind": "percent_off", "percent": 10}', NULL, NULL, 2, 'day'))
       v (code, cond, benefit, budget, total, per_customer, period)
 WHERE p.code = 'lim';

-- A budget of 100.00 at 10.00 a receipt: fifteen receipts, anonymous.
SELECT pg_temp.checkout(pg_temp.receipt('B' || i, 'budget')) FROM generate_series(1, 15) i;
SELECT is((SELECT count(*) FROM checkout WHERE error IS NOT NULL AND receipt_id LIKE 'B%'), 0::bigint,
          'fifteen receipts under a budget all commit what calculate showed: no 40001');
SELECT is((SELECT count(*) FROM checkout WHERE receipt_id LIKE 'B%' AND pg_temp.applied(committed, 'TEN')),
          10::bigint, 'the promotion is given on ten receipts');
SELECT is((SELECT sum((x ->> 'discount')::numeric) FROM checkout, jsonb_array_elements(committed -> 'promotions' -> 'applied') x
            WHERE x ->> 'code' = 'TEN'), 100.00, 'which give exactly its budget of 100.00 away');
SELECT is((SELECT money FROM loyalty.counter c JOIN loyalty.promotion m ON m.id = c.promotion_id
            WHERE m.code = 'TEN' AND c.customer_id = 0), 10000::bigint,
          'the counter holds 10 000 minor units, the budget in minor units');
SELECT is((SELECT array_agg(DISTINCT pg_temp.reason(answer, 'TEN')) FROM checkout WHERE receipt_id LIKE 'B%' AND n > 10),
          ARRAY['budget_exhausted'], 'then calculate stops offering it: budget_exhausted');

-- A budget of 95.00 at 10.00 a receipt: the tenth receipt is offered it at
-- 90.00 given, and gets all its 10.00; then it is exhausted.
SELECT pg_temp.checkout(pg_temp.receipt('O' || i, 'odd')) FROM generate_series(1, 12) i;
SELECT is((SELECT count(*) FILTER (WHERE pg_temp.applied(committed, 'ODD'))
                  || '/' || count(*) FILTER (WHERE error IS NOT NULL)
             FROM checkout WHERE receipt_id LIKE 'O%'), '10/0',
          'a budget that is no multiple of the discount: the receipt that reaches it gets its whole discount, no 40001');
SELECT is(pg_temp.reason(loyalty.calculate(pg_temp.receipt('O13', 'odd')), 'ODD'), 'budget_exhausted',
          'and the next is told budget_exhausted');

-- Three uses in all, among customers and anonymous receipts alike.
SELECT pg_temp.checkout(pg_temp.receipt('T' || i, 'three', CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN '10000001' ELSE '10000002' END))
  FROM generate_series(1, 6) i;
SELECT is((SELECT count(*) FILTER (WHERE pg_temp.applied(committed, 'THREE'))
                  || '/' || count(*) FILTER (WHERE error IS NOT NULL)
             FROM checkout WHERE receipt_id LIKE 'T%'), '3/0', 'a limit of three uses in all: three, no 40001');
SELECT is((SELECT array_agg(DISTINCT pg_temp.reason(answer, 'THREE')) FROM checkout
            WHERE receipt_id IN ('T4', 'T5', 'T6')), ARRAY['limit_reached'], 'then limit_reached');

-- Twice a day per customer: Ann three times, then Bob.
SELECT pg_temp.checkout(pg_temp.receipt('W' || i, 'twice', CASE WHEN i <= 3 THEN '10000001' ELSE '10000002' END))
  FROM generate_series(1, 4) i;
SELECT is((SELECT string_agg(receipt_id || ':' || coalesce(pg_temp.reason(answer, 'TWICE'), 'applied'), ' ' ORDER BY n)
             FROM checkout WHERE receipt_id LIKE 'W%'),
          'W1:applied W2:applied W3:limit_reached W4:applied', 'twice a day per customer: Ann twice, then not; Bob still');
SELECT is((SELECT count(*) FROM checkout WHERE receipt_id LIKE 'W%' AND error IS NOT NULL), 0::bigint,
          'and no commit refused');
-- An anonymous receipt cannot use a per-customer limit.
SELECT is(pg_temp.reason(loyalty.calculate(pg_temp.receipt('W9', 'twice')), 'TWICE'), 'customer_required',
          'a per-customer limit needs a customer');

-- Nothing the budget counts is lost when a receipt is cancelled: the use
-- and the money come back, and the promotion is offered again.
SELECT is(loyalty.cancel('lim', 'B1', 'a test of the counter') ->> 'status', 'cancelled', 'the first receipt is cancelled');
SELECT is((SELECT money FROM loyalty.counter c JOIN loyalty.promotion m ON m.id = c.promotion_id
            WHERE m.code = 'TEN' AND c.customer_id = 0), 9000::bigint, 'a cancel gives the money back to the budget');
SELECT ok(pg_temp.applied(loyalty.calculate(pg_temp.receipt('B16', 'budget')), 'TEN'),
          'and the promotion is offered again');

-- When commit cannot take a use that a fresh calculation still offers,
-- commit and calculate disagree: calculating again would give the same
-- answer, so it is an internal error (XX000), never a 40001 that loops.  A
-- trigger that silently drops every change of the counters (and one of the
-- coupons) makes commit meet exactly that, with nothing having moved.
CREATE FUNCTION pg_temp.drop_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER lost_update BEFORE UPDATE ON loyalty.counter FOR EACH ROW EXECUTE FUNCTION pg_temp.drop_change();
SELECT throws_ok($$SELECT loyalty.commit(pg_temp.receipt('B17', 'budget'))$$, 'XX000',
                 'receipt "B17": promotion "TEN" spent its budget, though calculate still offers it',
                 'a budget use commit cannot take while calculate still offers it: XX000, not 40001');
SELECT is((SELECT count(*) FROM loyalty.receipt_key WHERE receipt_id = 'B17'), 0::bigint, 'and nothing is written');
DROP TRIGGER lost_update ON loyalty.counter;
UPDATE loyalty.promotion SET audience = 'coupon' WHERE code = 'THREE';
UPDATE loyalty.promotion SET limit_total = NULL WHERE code = 'THREE';
INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind)
SELECT program_id, 'THREE-1', id, 'multi_use' FROM loyalty.promotion WHERE code = 'THREE';
CREATE TRIGGER lost_update BEFORE UPDATE ON loyalty.coupon FOR EACH ROW EXECUTE FUNCTION pg_temp.drop_change();
SELECT throws_ok($$SELECT loyalty.commit(pg_temp.receipt('C1', 'three') || '{"coupons": ["THREE-1"]}')$$, 'XX000',
                 'receipt "C1": coupon "THREE-1" was used up, though calculate still offers it',
                 'likewise a coupon');
SELECT is((SELECT uses FROM loyalty.coupon WHERE code = 'THREE-1'), 0, 'which keeps its uses');
DROP TRIGGER lost_update ON loyalty.coupon;

SELECT * FROM finish();
ROLLBACK;
