-- The outbox of events: balance_changed for every ledger entry,
-- receipt_committed, receipt_cancelled and refund from the receipt tables,
-- nothing for a replay or a failed operation; take_events hands them over
-- in id order, per programme or all, and a rollback gives them back;
-- notice_expiring writes one points_expiring event per wallet for lots
-- entering the programme's notice window, each lot once; purge_events drops
-- events past the programme's retention; every bad input with its SQLSTATE
-- and nothing written or taken.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('shop', 'Shop', 'bonus', 1000);                       -- 10% back, notices 14 days ahead
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay,
                             expiry_notice, event_retention)
VALUES ('late', 'Late', 'coins', 1000, '1 day', NULL, NULL);  -- no notices, events kept until taken
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (2, 'coins', 'Coins', 1);
COMMIT;
INSERT INTO loyalty.product (program_id, sku, name, category) VALUES
    (1, 'SKI', 'Skis', 'ski/alpine'), (1, 'JKT', 'Jacket', 'textile/jackets'),
    (2, 'SKI', 'Skis', 'ski/alpine');
SELECT loyalty.enroll('shop', card => '10000001') AS anna \gset
SELECT loyalty.enroll('late', card => '10000002') AS boris \gset

-- The events, without the times and ids that change from run to run
CREATE FUNCTION pg_temp.events() RETURNS TABLE (program_id bigint, type text, customer_id bigint, payload jsonb)
LANGUAGE sql AS $$
    SELECT program_id, type, customer_id,
           payload - '{at,committed_at,cancelled_at,release_at}'::text[]
      FROM loyalty.event ORDER BY id
$$;
CREATE FUNCTION pg_temp.buy(program text, id text, card text, lines jsonb, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT loyalty.commit(jsonb_build_object('program', program, 'receipt_id', id,
                                             'customer', jsonb_build_object('card', card),
                                             'lines', lines) || extra)
$$;

-- 1. Every ledger entry writes balance_changed with the wallet's version and
-- what it holds after the entry; a hold changes held, not the balance.
SELECT (loyalty.accrue(:anna, 'bonus', 300, valid_to => now() + interval '10 days')).version;
SELECT (loyalty.accrue(:anna, 'bonus', 1000)).version;
SELECT loyalty.hold(:anna, 'bonus', 100, interval '1 hour') AS hold;
SELECT * FROM pg_temp.events();

-- 2. A commit spending points: balance_changed for the redemption and the
-- accrual, then receipt_committed with the totals.
SELECT pg_temp.buy('shop', 'R1', '10000001', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 2000},
                                              {"line": 2, "sku": "JKT", "qty": 2, "price": 500}]',
                   '{"points": 500, "store": "S1"}') -> 'totals' AS totals;
SELECT * FROM pg_temp.events() OFFSET 3;
-- its replay writes nothing, so it emits nothing
SELECT pg_temp.buy('shop', 'R1', '10000001', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 2000},
                                              {"line": 2, "sku": "JKT", "qty": 2, "price": 500}]',
                   '{"points": 500, "store": "S1"}') #> '{commit,replayed}' AS replayed;
SELECT count(*) AS events FROM loyalty.event;

-- 3. A refund of the skis: the points that paid them back to their lots and
-- their earned share taken back (two balance_changed), then the refund.
SELECT loyalty.refund('shop', 'R1', '[{"line": 1}]', 'F1') ->> 'status' AS status;
SELECT * FROM pg_temp.events() OFFSET 6;
SELECT loyalty.refund('shop', 'R1', '[{"line": 1}]', 'F1') ->> 'replayed' AS replayed;
SELECT count(*) AS events FROM loyalty.event;

-- 4. A cancel of a receipt whose accrual is queued: no ledger entry for the
-- dequeued accrual, so only receipt_cancelled; an anonymous receipt has no
-- customer.
SELECT pg_temp.buy('late', 'L1', '10000002', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 1000}]')
       #>> '{commit,accrual}' AS accrual;
SELECT loyalty.cancel('late', 'L1', 'mistake') ->> 'status' AS status;
SELECT loyalty.commit('{"program": "late", "receipt_id": "L2",
                        "lines": [{"line": 1, "sku": "SKI", "qty": 1, "price": 1000}]}') #>> '{commit,accrual}' AS accrual;
SELECT * FROM pg_temp.events() OFFSET 9;

-- 5. A failed operation leaves no event: spending more than the wallet has,
-- a commit with a bad document, a cancel of an unknown receipt.
SELECT count(*) AS before FROM loyalty.event \gset
SELECT state, message FROM pg_temp.err($$SELECT loyalty.redeem(1, 'bonus', 1000000)$$);
SELECT state FROM pg_temp.err($$SELECT loyalty.commit('{"program": "shop", "receipt_id": "R9", "lines": "x"}')$$);
SELECT state FROM pg_temp.err($$SELECT loyalty.cancel('shop', 'NOPE')$$);
SELECT count(*) - :before AS written FROM loyalty.event;

-- 6. take_events: the oldest first, in id order, deleted as they are taken;
-- a rollback gives them back; per programme, only that programme's.
SELECT count(*) AS waiting FROM loyalty.event;
BEGIN;
SELECT type, customer_id FROM loyalty.take_events(2);
ROLLBACK;
SELECT array_agg(type ORDER BY id) AS taken FROM loyalty.take_events(2);
SELECT count(*) AS waiting FROM loyalty.event;
SELECT array_agg(DISTINCT program_id) AS programs, count(*) AS taken FROM loyalty.take_events(100, 'late');
SELECT array_agg(DISTINCT program_id) AS programs FROM loyalty.event;
SELECT count(*) AS taken FROM loyalty.take_events(100000);
SELECT count(*) AS taken, count(*) FILTER (WHERE id IS NULL) AS nulls FROM loyalty.take_events();

-- 7. take_events' bad input: SQLSTATE 22023 or 42704, nothing taken.
SELECT (loyalty.accrue(:anna, 'bonus', 1)).version;
SELECT * FROM pg_temp.err($$SELECT * FROM loyalty.take_events(0)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM loyalty.take_events(NULL)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM loyalty.take_events(100001)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM loyalty.take_events(10, 'nope')$$);
SELECT count(*) AS waiting FROM loyalty.event;
SELECT count(*) FROM loyalty.take_events();

-- 8. notice_expiring: anna's lot of 300 (200 left: R1's jacket line, not
-- returned, kept its share of the points) expires in 10 days, inside the shop's
-- 14 days: one event for the wallet, naming the lot; the lot that never
-- expires is not named.  A second run finds nothing new.
SELECT loyalty.notice_expiring() AS lots;
SELECT type, customer_id, payload->'currency' AS currency, payload->'points' AS points,
       jsonb_array_length(payload->'lots') AS lots,
       (payload->>'expires_at')::timestamptz > now() + interval '9 days' AS in_ten_days
  FROM loyalty.event;
SELECT loyalty.notice_expiring() AS lots;
SELECT count(*) AS events FROM loyalty.take_events();
-- Two lots entering the window together give one event with both; a lot
-- expiring in 20 days waits; boris's programme sends no notices.
SELECT (loyalty.accrue(:anna, 'bonus', 40, valid_to => now() + interval '3 days')).version;
SELECT (loyalty.accrue(:anna, 'bonus', 60, valid_to => now() + interval '5 days')).version;
SELECT (loyalty.accrue(:anna, 'bonus', 70, valid_to => now() + interval '20 days')).version;
SELECT (loyalty.accrue(:boris, 'coins', 80, valid_to => now() + interval '2 days')).version;
SELECT count(*) FROM loyalty.take_events();
SELECT job, backlog FROM loyalty.job_health WHERE job = 'loyalty.notice_expiring';
SELECT loyalty.notice_expiring() AS lots;
SELECT customer_id, payload->'points' AS points,
       (SELECT array_agg((l->>'points')::int ORDER BY l->>'valid_to') FROM jsonb_array_elements(payload->'lots') l) AS lots
  FROM loyalty.take_events();
-- Ten days later the lot of 70 is in the window; a lot of 90 that expired
-- before any run is marked without an event (its expire entry reports it).
SELECT (loyalty.accrue(:anna, 'bonus', 90, valid_to => now() + interval '1 day')).version;
SELECT pg_temp.travel(interval '10 days');
SELECT count(*) FROM loyalty.take_events();
SELECT loyalty.notice_expiring() AS lots;
SELECT customer_id, payload->'points' AS points FROM loyalty.take_events();
SELECT count(*) AS unnoticed FROM loyalty.lot
 WHERE live AND valid_to IS NOT NULL AND expiry_noticed_at IS NULL AND program_id = 1;
-- batch_limit bounds the lots marked in one call
SELECT (loyalty.accrue(:anna, 'bonus', 1, valid_to => now() + interval '1 day')).version
  FROM generate_series(1, 3);
SELECT count(*) FROM loyalty.take_events();
SELECT loyalty.notice_expiring(batch_limit => 2) AS lots;
SELECT loyalty.notice_expiring(batch_limit => 2) AS lots;
SELECT count(*) AS events FROM loyalty.take_events();
-- bad input: 22023, nothing marked
SELECT * FROM pg_temp.err($$SELECT loyalty.notice_expiring(0)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.notice_expiring(10, interval '0')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.notice_expiring(NULL)$$);

-- 9. purge_events: events older than the programme's retention go, the
-- others stay; a programme without retention keeps them until taken.
SELECT (loyalty.accrue(:anna, 'bonus', 5)).version;
SELECT (loyalty.accrue(:boris, 'coins', 5)).version;
UPDATE loyalty.event SET created_at = created_at - interval '31 days';
SELECT (loyalty.accrue(:anna, 'bonus', 6)).version;
SELECT job, backlog FROM loyalty.job_health WHERE job = 'loyalty.purge_events';
SELECT loyalty.purge_events() AS purged;
SELECT program_id, payload->'amount' AS amount FROM loyalty.event ORDER BY id;
SELECT loyalty.purge_events() AS purged;
SELECT * FROM pg_temp.err($$SELECT loyalty.purge_events(0)$$);

-- 10. The programme's settings refuse a non-positive interval: 23514.
SELECT state, message FROM pg_temp.err($$UPDATE loyalty.program SET expiry_notice = '0' WHERE code = 'shop'$$);
SELECT state, message FROM pg_temp.err($$UPDATE loyalty.program SET event_retention = '-1 day' WHERE code = 'shop'$$);
-- An unknown event type cannot be written: 23514.
SELECT state FROM pg_temp.err($$INSERT INTO loyalty.event (program_id, type, payload) VALUES (1, 'x', '{}')$$);

-- The notifying trigger refuses to run as anything but an AFTER INSERT row
-- trigger: 39P01, and the misplaced trigger goes with the rollback.
SELECT state, message FROM pg_temp.err($$DO $x$ BEGIN
    CREATE TRIGGER wrong BEFORE INSERT ON loyalty.event FOR EACH ROW EXECUTE FUNCTION loyalty.event_notify();
    INSERT INTO loyalty.event (program_id, type, payload) VALUES (1, 'refund', '{}');
END $x$ $$);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'loyalty.event'::regclass AND NOT tgisinternal;

DROP EXTENSION loyalty CASCADE;
