-- loyalty.commit, loyalty.cancel, the accrual queue and release_accruals:
-- a receipt written as calculate showed it (the lots calculate chose pay,
-- coupons, offers and counters count, the accrual at once or queued), a
-- replay, a replay with other content, a stale calculation (40001), cancel
-- before and after the accrual's release, and every bad input with its
-- SQLSTATE and nothing written.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, phone_country)
VALUES ('shop', 'Shop', 'bonus', 500, 'RU');   -- 5% back, released at once
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay)
VALUES ('late', 'Late', 'coins', 1000, '2 hours');   -- 10% back, two hours later
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (2, 'coins', 'Coins', 1);
COMMIT;
INSERT INTO loyalty.product (program_id, sku, name, category, brand) VALUES
    (1, 'SKI', 'Skis', 'ski/alpine', 'Atomic'),
    (1, 'JKT', 'Jacket', 'textile/jackets', 'Columbia');
SELECT loyalty.enroll('shop', card => '10000001') AS anna \gset
SELECT loyalty.enroll('shop', card => '10000002') AS boris \gset
SELECT loyalty.enroll('late', phone => '+79160000003') AS vera \gset
-- anna has two lots: 300 expiring in ten days, 1000 that never expire
SELECT (loyalty.accrue(:anna, 'bonus', 300, valid_to => now() + interval '10 days')).version;
SELECT (loyalty.accrue(:anna, 'bonus', 1000)).version;
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, audience,
                               limit_per_customer, limit_period, limit_total)
VALUES (1, 'SKI10', 'Skis 10% off', 'active', 'category <@ ''ski''',
        '{"kind": "percent_off", "percent": 10}', 'all', NULL, NULL, NULL),
       (1, 'WELCOME', 'Welcome bonus lot', 'active', NULL,
        '{"kind": "bonus_lot", "points": 50, "valid_days": 30}', 'all', 1, 'ever', NULL),
       (1, 'JKT500', 'Jacket 500 off with a coupon', 'active', 'sku = ''JKT''',
        '{"kind": "amount_off", "amount": 500}', 'coupon', NULL, NULL, 2);
INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind) VALUES (1, 'JK-1', 3, 'single_use');

CREATE FUNCTION pg_temp.receipt(id text, card text, lines jsonb, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('program', 'shop', 'receipt_id', id,
                              'customer', jsonb_build_object('card', card), 'lines', lines) || extra
$$;
CREATE FUNCTION pg_temp.entries(c bigint) RETURNS TABLE (version bigint, operation text, amount bigint,
                                                         balance_after bigint, lot_ids bigint[],
                                                         lot_amounts bigint[], receipt_id text, key text)
LANGUAGE sql AS $$
    SELECT version, operation, amount, balance_after, lot_ids, lot_amounts, receipt_id, idempotency_key
      FROM loyalty.ledger WHERE customer_id = c ORDER BY version
$$;
\set lines '[{"line": 1, "sku": "SKI", "qty": 1, "price": 20000}, {"line": 2, "sku": "JKT", "qty": 1, "price": 5000}]'

-- 1. Commit what calculate showed: 10% off the skis, 500 off the jacket with
-- the coupon, anna's 1300 points (the lot expiring soonest first), spread
-- over the lines in proportion to what they come to (18000.00 and 4500.00:
-- 1040 and 260), 5% of the money paid and the welcome lot of 50 earned at once.
SELECT pg_temp.receipt('R1', '10000001', :'lines', '{"points": "max", "coupons": ["JK-1"]}') AS r1 \gset
SELECT loyalty.calculate(:'r1') AS seen \gset
SELECT loyalty.calculate(:'r1'::jsonb || '{"explain": true}') AS seen_whole \gset
SELECT loyalty.commit(:'r1', :'seen') AS done \gset
SELECT :'done'::jsonb -> 'totals' AS totals;
SELECT jsonb_pretty((:'done'::jsonb -> 'commit') - 'committed_at') AS commit;
SELECT loyalty.answer_changes(:'seen', :'done') AS same_as_seen;
-- Commit's entries carry no idempotency key (the receipt id is what makes
-- commit idempotent): the receipt names them by wallet and version, and
-- its accruals, released at once, name no key.
SELECT * FROM pg_temp.entries(:anna);
SELECT entry_currency, entry_version,
       (SELECT array_agg(a ->> 'key') FROM jsonb_array_elements(accruals) a) AS accrual_keys
  FROM loyalty.receipt WHERE receipt_id = 'R1';
SELECT count(*) AS keyed_entries FROM loyalty.ledger WHERE receipt_id = 'R1' AND idempotency_key IS NOT NULL;
SELECT customer_id, status, amount, discount, points_money, to_pay, points_spent, points_earned,
       coupons, counters, offers, actor = session_user AS by_me
  FROM loyalty.receipt;
SELECT line, sku, qty, price, amount, discount, points_money, to_pay,
       jsonb_array_length(points_paid) AS lots_paid
  FROM loyalty.receipt_line ORDER BY line;
-- the lines as the receipt row stores them, in typed arrays (minor units,
-- promotion and lot ids; each discount, payment and accrual names its
-- line's place), and the view receipt_line rendering each line as
-- calculate's whole answer shows it
SELECT line_no, line_sku, line_qty, line_price, line_to_pay, line_refunded_qty,
       discount_line, discount_promotion, discount_amount
  FROM loyalty.receipt WHERE receipt_id = 'R1';
SELECT paid_line, paid_lot, paid_currency, paid_points, paid_money, earned_line, earned_currency,
       earned_base, earned_points, earned_by_entry, earned_by_promotion, earned_by_points
  FROM loyalty.receipt WHERE receipt_id = 'R1';
SELECT line, discounts, points_paid, points_earned FROM loyalty.receipt_line WHERE receipt_id = 'R1' ORDER BY line;
SELECT l.line, l.discounts = a -> 'discounts' AS discounts, l.points_paid = a -> 'points_paid' AS points_paid,
       l.points_earned = a -> 'points_earned' AS points_earned, l.qty = (a ->> 'qty')::numeric AS qty,
       l.sku = a ->> 'sku' AS sku
  FROM loyalty.receipt_line l
  JOIN jsonb_array_elements(:'seen_whole'::jsonb -> 'lines') a ON (a ->> 'line')::int = l.line
 WHERE l.receipt_id = 'R1' ORDER BY l.line;
SELECT code, uses, state FROM loyalty.coupon;
SELECT promotion_id, customer_id, period_start, uses, money FROM loyalty.counter ORDER BY 1, 2;
SELECT balance, available, version FROM loyalty.balance(:anna);

-- 2. A replay (the till lost the answer) returns the stored answer and
-- writes nothing; the same id with other content is refused.
SELECT count(*) AS entries_before FROM loyalty.ledger \gset
SELECT (loyalty.commit(:'r1') - 'commit') = (:'done'::jsonb - 'commit') AS same_answer,
       loyalty.commit(:'r1') #> '{commit,replayed}' AS replayed;
SELECT count(*) = :entries_before AS nothing_written FROM loyalty.ledger;
SELECT state, message FROM pg_temp.err(format('SELECT loyalty.commit(%L)', jsonb_set(:'r1', '{lines,0,qty}', '2')));
-- under the checkout name too
SELECT public.loyalty_commit(:'r1') #> '{commit,replayed}' AS replayed;

-- 3. A stale calculation: boris's points moved between calculate and
-- commit; commit refuses with 40001, says what changed, and writes nothing.
SELECT (loyalty.accrue(:boris, 'bonus', 400)).version;
SELECT pg_temp.receipt('R2', '10000002', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 1000}]',
                       '{"points": "max"}') AS r2 \gset
SELECT loyalty.calculate(:'r2') AS seen2 \gset
SELECT (loyalty.redeem(:boris, 'bonus', 100)).version;
SELECT * FROM pg_temp.err(format('SELECT loyalty.commit(%L, %L)', :'r2', :'seen2'));
SELECT count(*) AS receipts FROM loyalty.receipt WHERE receipt_id = 'R2';
SELECT count(*) AS keys FROM loyalty.receipt_key WHERE receipt_id = 'R2';
-- calculated again, it commits with the 300 points left
SELECT loyalty.calculate(:'r2') AS seen2 \gset
SELECT loyalty.commit(:'r2', :'seen2') #> '{commit,points_spent}' AS spent;
-- the single-use coupon is gone, so a receipt that saw it accepted is stale
SELECT loyalty.commit(pg_temp.receipt('R3', '10000002', :'lines', '{"coupons": ["JK-1"]}'))
       #> '{coupons,0}' AS coupon_now;

-- 4. Cancel after release: the points spent go back to the lots they came
-- from (the lot expiring in ten days gets its 300 back), the accruals are
-- taken back, the coupon and the counters are given back.
SELECT jsonb_pretty(loyalty.cancel('shop', 'R1', 'customer changed her mind') - 'cancelled_at') AS cancelled;
SELECT * FROM pg_temp.entries(:anna) WHERE version > 4;
SELECT id, amount, remaining, valid_to IS NOT NULL AS expires, live FROM loyalty.lot
 WHERE customer_id = :anna ORDER BY id;
SELECT balance, available FROM loyalty.balance(:anna);
SELECT code, uses, state FROM loyalty.coupon;
SELECT promotion_id, customer_id, uses, money FROM loyalty.counter ORDER BY 1, 2;
SELECT status, cancel_reason FROM loyalty.receipt WHERE receipt_id = 'R1';
-- a second cancel returns the first result and writes nothing
SELECT count(*) AS entries_before FROM loyalty.ledger \gset
SELECT loyalty.cancel('shop', 'R1') -> 'replayed' AS replayed,
       public.loyalty_cancel('shop', 'R1') -> 'status' AS status;
SELECT count(*) = :entries_before AS nothing_written FROM loyalty.ledger;
-- the coupon is usable again
SELECT loyalty.calculate(pg_temp.receipt('R4', '10000002', :'lines', '{"coupons": ["JK-1"]}'))
       #> '{coupons,0,status}' AS coupon;

-- 5. A queued accrual (programme "late": two hours): nothing is credited at
-- commit; release_accruals releases it once due; cancel before release
-- removes it from the queue.
SELECT loyalty.commit('{"program": "late", "receipt_id": "L1", "customer": {"phone": "+79160000003"},
                        "lines": [{"line": 1, "qty": 1, "price": 1000}]}') -> 'commit' AS l1
\gset
SELECT :'l1'::jsonb ->> 'accrual' AS accrual, :'l1'::jsonb -> 'points_earned' AS earned,
       (:'l1'::jsonb ->> 'release_at')::timestamptz - (:'l1'::jsonb ->> 'committed_at')::timestamptz AS delay;
SELECT loyalty.commit('{"program": "late", "receipt_id": "L2", "customer": {"phone": "+79160000003"},
                        "lines": [{"line": 1, "qty": 2, "price": 1000}]}') #>> '{commit,accrual}' AS accrual;
SELECT receipt_id, customer_id, currency, amount, kind, idempotency_key, release_at > now() AS later
  FROM loyalty.accrual_queue ORDER BY id;
SELECT balance, pending FROM loyalty.balance(:vera);
SELECT loyalty.release_accruals() AS released_early;
SELECT job, backlog FROM loyalty.job_health WHERE job = 'loyalty.release_accruals';
-- L2 is cancelled while queued; two hours pass; L1 is released
SELECT loyalty.cancel('late', 'L2') -> 'accruals_dequeued' AS dequeued;
UPDATE loyalty.accrual_queue SET release_at = release_at - interval '2 hours';
SELECT job, backlog FROM loyalty.job_health WHERE job = 'loyalty.release_accruals';
SELECT loyalty.release_accruals() AS released;
SELECT loyalty.release_accruals() AS released_again;
SELECT * FROM pg_temp.entries(:vera);
-- the release's entry carries the accrual's key; the receipt named no entry
SELECT entry_version, accruals -> 0 ->> 'key' AS key FROM loyalty.receipt WHERE receipt_id = 'L1';
SELECT balance FROM loyalty.balance(:vera);
-- cancelling L1 now takes the released accrual back
SELECT loyalty.cancel('late', 'L1') -> 'ledger' AS ledger;
SELECT balance FROM loyalty.balance(:vera);
-- run_job releases in one-second transactions; it commits, so it needs its own
-- transaction and refuses a job it does not know
SELECT * FROM pg_temp.err($$CALL loyalty.run_job('release_accruals', '5 seconds')$$);
CALL loyalty.run_job('release_accruals', '5 seconds');
SELECT * FROM pg_temp.err($$CALL loyalty.run_job('vacuum_everything')$$);
SELECT * FROM pg_temp.err($$CALL loyalty.run_job('expire_due', '-1 second')$$);

-- 6. Anonymous receipts are written with no ledger entries.
SELECT loyalty.commit('{"program": "shop", "receipt_id": "A1", "lines": [{"line": 1, "sku": "SKI", "qty": 1, "price": 100}]}')
       #> '{commit,status}' AS anonymous;
SELECT receipt_id, customer_id, to_pay FROM loyalty.receipt WHERE receipt_id = 'A1';

-- 7. Bad input: each a specific SQLSTATE, and nothing written.
SELECT count(*) AS receipts_before FROM loyalty.receipt \gset
SELECT * FROM pg_temp.err($$SELECT loyalty.commit(NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.commit('[1]')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.commit('{"lines": []}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.commit('{"program": "nope", "receipt_id": "X"}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.commit('{"program": "shop", "lines": [{"qty": 1, "price": 1}]}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.commit('{"program": "shop", "receipt_id": 7, "lines": [{"qty": 1, "price": 1}]}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.commit('{"program": "shop", "receipt_id": "", "lines": [{"qty": 1, "price": 1}]}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.commit('{"program": "shop", "receipt_id": "X", "lines": [{"qty": 0, "price": 1}]}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.commit('{"program": "shop", "receipt_id": "X", "lines": [{"qty": 1, "price": 1}]}', '"seen"')$$);
SELECT count(*) = :receipts_before AS nothing_written FROM loyalty.receipt;
SELECT count(*) AS keys_left FROM loyalty.receipt_key WHERE receipt_id = 'X';
SELECT * FROM pg_temp.err($$SELECT loyalty.cancel('shop', 'never')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.cancel('nope', 'R1')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.cancel(NULL, 'R1')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.release_accruals('0')$$);

-- The internal ledger operations check what they are given.
SELECT * FROM pg_temp.err($$SELECT loyalty.spend_lots(1, 'bonus', '{1,2}', '{1}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.spend_lots(1, 'bonus', '{1}', '{0}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.spend_lots(1, 'bonus', '{1,1}', '{1,1}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.spend_lots(1, 'bonus', '{1}', '{null}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.spend_lots(1, 'bonus', '{9999}', '{1}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.return_lots(1, 'bonus', '{1}', '{1000000}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.return_lots(1, 'bonus', '{9999}', '{1}')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.take_back(2, 'bonus', 1, 100000)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.take_back(2, 'bonus', 1, 0)$$);

-- 8. Partitions: monthly ones are created ahead, and rows of their month
-- move out of the default partition.
SELECT count(*) AS in_default FROM loyalty.receipt_default;
SELECT loyalty.create_partitions(1) AS created;
SELECT loyalty.create_partitions(1) AS created_again;
SELECT count(*) AS in_default FROM loyalty.receipt_default;
SELECT count(*) AS in_month FROM loyalty.receipt
 WHERE tableoid = format('loyalty.receipt_%s', to_char(now(), 'YYYY_MM'))::regclass;
-- the lines moved with their receipts: they are the receipt row's typed
-- arrays, and the view receipt_line shows them one row each
SELECT count(*) AS lines_in_month FROM loyalty.receipt_line
 WHERE committed_at >= date_trunc('month', now());
SELECT sum(cardinality(line_no)) AS lines_in_arrays FROM loyalty.receipt;
-- every partition keeps its parent's lz4 compression of the answer and the
-- document (the receipt's kilobytes of JSON)
SELECT a.attrelid::regclass = 'loyalty.receipt'::regclass AS parent, count(*) AS columns,
       count(*) FILTER (WHERE a.attcompression = 'l') AS lz4
  FROM pg_attribute a
 WHERE a.attname IN ('answer', 'document')
   AND a.attrelid IN (SELECT 'loyalty.receipt'::regclass
                      UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = 'loyalty.receipt'::regclass)
 GROUP BY 1 ORDER BY 1;
-- and keeps rows of up to 4000 bytes whole, so that a receipt's arrays stay
-- in its row (docs/tables.md)
SELECT count(*) AS partitions,
       count(*) FILTER (WHERE reloptions @> '{toast_tuple_target=4000}') AS rows_whole_to_4000
  FROM pg_class WHERE oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'loyalty.receipt'::regclass);
SELECT * FROM pg_temp.err($$SELECT loyalty.create_partitions(-1)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.partition_indexes('ledger', 'ledger_x')$$);
-- a replay still finds the receipt in its partition
SELECT loyalty.commit(:'r1') #>> '{commit,status}' AS status;

-- 9. An offline receipt, sent late: points are spent when it is committed,
-- so a lot valid when the receipt was written but expired since pays nothing.
SELECT loyalty.enroll('shop', card => '10000009') AS gleb \gset
SELECT (loyalty.accrue(:gleb, 'bonus', 500, valid_to => now() + interval '1 hour')).version;
SELECT pg_temp.travel('2 hours');   -- the lot was valid from 2 hours ago to 1 hour ago
SELECT jsonb_build_object('program', 'shop', 'receipt_id', 'OFF-1', 'customer', '{"card": "10000009"}'::jsonb,
                          'at', to_char(now() AT TIME ZONE 'UTC' - interval '90 minutes', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00',
                          'points', 'max', 'lines', '[{"line": 1, "qty": 1, "price": 1000}]'::jsonb) AS off \gset
SELECT loyalty.calculate(:'off') #> '{totals,points_spent}' AS spendable;
SELECT loyalty.commit(:'off') #> '{commit,points_spent}' AS spent;

-- 10. Bonus lots alike (currency, validity, restriction) are written as one
-- lot: the 30-day lots of 20, 30 and WELCOME's 50 make one of 100 (one
-- accrue entry); a 60-day lot of 40 stays a lot of its own.
SELECT loyalty.enroll('shop', card => '10000010') AS dina \gset
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, audience)
VALUES (1, 'JKT20', 'Jacket: 20 points for 30 days', 'active', 'sku = ''JKT''',
        '{"kind": "bonus_lot", "points": 20, "valid_days": 30}', 'all'),
       (1, 'JKT30', 'Jacket: 30 points for 30 days', 'active', 'sku = ''JKT''',
        '{"kind": "bonus_lot", "points": 30, "valid_days": 30}', 'all'),
       (1, 'JKT40', 'Jacket: 40 points for 60 days', 'active', 'sku = ''JKT''',
        '{"kind": "bonus_lot", "points": 40, "valid_days": 60}', 'all');
SELECT pg_temp.receipt('BL-1', '10000010', '[{"line": 1, "sku": "JKT", "qty": 1, "price": 100}]') AS bl \gset
SELECT jsonb_array_length(loyalty.calculate(:'bl') -> 'bonus_lots') AS bonus_lots_shown;
SELECT loyalty.commit(:'bl') #> '{commit,points_earned}' AS earned;
SELECT operation, amount, key FROM pg_temp.entries(:dina);
SELECT l.amount, l.kind, l.valid_to - l.valid_from AS valid_for
  FROM loyalty.lot l WHERE l.customer_id = :dina ORDER BY l.id;
SELECT a ->> 'kind' AS kind, a ->> 'amount' AS amount, a ->> 'valid_for' AS valid_for
  FROM loyalty.receipt r, jsonb_array_elements(r.accruals) a WHERE r.receipt_id = 'BL-1';
UPDATE loyalty.promotion SET status = 'ended' WHERE code IN ('JKT20', 'JKT30', 'JKT40');

-- 11. Coupons are used only when a benefit uses them.  Three coupons of one
-- promotion for coupon holders (it applies once): the one expiring first is
-- used; the others are not_used and stay issued.  A coupon of a promotion
-- that needs none, or of one a better combination leaves out, is not used
-- either.
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, audience, stacking_group)
VALUES (1, 'SKI300', 'Skis 300 off with a coupon', 'active', 'sku = ''SKI''',
        '{"kind": "amount_off", "amount": 300}', 'coupon', 'ski'),
       (1, 'SKI100', 'Skis 100 off with a coupon', 'active', 'sku = ''SKI''',
        '{"kind": "amount_off", "amount": 100}', 'coupon', 'ski');
INSERT INTO loyalty.coupon (program_id, code, promotion_id, kind, valid)
SELECT 1, v.code, m.id, v.kind, tstzrange(now() - interval '1 day', now() + v.days * interval '1 day')
  FROM (VALUES ('S3-A', 'SKI300', 'single_use', 30), ('S3-B', 'SKI300', 'single_use', 7),
               ('S3-C', 'SKI300', 'multi_use', 90), ('S1-A', 'SKI100', 'single_use', 30),
               ('J-0', 'SKI10', 'single_use', 30)) v (code, promo, kind, days)
  JOIN loyalty.promotion m ON m.code = v.promo;
SELECT pg_temp.receipt('CP-1', '10000002', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 1000}]',
                       '{"coupons": ["S3-A", "S3-B", "S3-C", "S1-A", "J-0"]}') AS cp \gset
SELECT c ->> 'code' AS code, c ->> 'status' AS status, c ->> 'reason' AS reason, c ->> 'promotion' AS promotion
  FROM jsonb_array_elements(loyalty.calculate(:'cp') -> 'coupons') c;
SELECT loyalty.commit(:'cp') -> 'totals' -> 'discount' AS discount;
SELECT code, uses, state FROM loyalty.coupon WHERE code IN ('S3-A', 'S3-B', 'S3-C', 'S1-A', 'J-0') ORDER BY code;
SELECT coupons FROM loyalty.receipt WHERE receipt_id = 'CP-1';
UPDATE loyalty.promotion SET status = 'ended' WHERE code IN ('SKI300', 'SKI100');

-- A checkout that spends and earns updates the wallet twice.  The second
-- update leaves the wallet's keys (customer, currency) as they were, so it
-- does not lock the customer and currency rows to check them again: the
-- currency row every checkout of the programme shares stays unlocked.
SELECT loyalty.enroll('shop', card => '10000011') AS ivan \gset
SELECT (loyalty.accrue(:ivan, 'bonus', 100)).version;
BEGIN;
SELECT loyalty.commit(pg_temp.receipt('KEY-1', '10000011', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 1000}]',
                                      '{"points": 10}')) #> '{totals,points_spent}' AS spent;
SELECT version FROM loyalty.wallet WHERE customer_id = :ivan;
SELECT xmax <> pg_current_xact_id()::xid AS currency_unlocked FROM loyalty.currency WHERE program_id = 1 AND code = 'bonus';
ROLLBACK;
-- A trigger of the DBA's on wallet updates still fires for both updates.
CREATE TABLE public.wallet_updates (customer_id bigint, version bigint);
CREATE FUNCTION public.note_wallet_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.wallet_updates VALUES (NEW.customer_id, NEW.version);
    RETURN NULL;
END $$;
CREATE TRIGGER note_update AFTER UPDATE ON loyalty.wallet FOR EACH ROW EXECUTE FUNCTION public.note_wallet_update();
SELECT loyalty.commit(pg_temp.receipt('KEY-2', '10000011', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 1000}]',
                                      '{"points": 10}')) #> '{totals,points_spent}' AS spent;
SELECT customer_id = :ivan AS ivan, version FROM public.wallet_updates ORDER BY version;
DROP TRIGGER note_update ON loyalty.wallet;
DROP TABLE public.wallet_updates;
DROP FUNCTION public.note_wallet_update();

-- 12. The row keeps the default answer without its lines (the receipt's
-- line_ and earned_ arrays hold them); a replay renders them back, to the
-- character, as commit gave them: money in the programme's decimals, points
-- in each currency's (miles have two), a line that earns nothing with {}.
-- An answer with "explain" keeps its lines: they carry more than the arrays.
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('two', 'Two currencies', 'bonus', 500);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit, exponent)
SELECT id, c, initcap(c), 1, e FROM loyalty.program, (VALUES ('bonus', 0), ('miles', 2)) v(c, e)
 WHERE code = 'two';
COMMIT;
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit)
SELECT id, 'MILES', 'Miles on jackets', 'active', 'sku = ''JKT''',
       '{"kind": "points_per", "per": 10, "points": 1.25, "currency": "miles"}'
  FROM loyalty.program WHERE code = 'two';
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit)
SELECT id, 'FREEBAG', 'Bags for free', 'active', 'sku = ''BAG''', '{"kind": "fixed_price", "price": 0}'
  FROM loyalty.program WHERE code = 'two';
SELECT loyalty.enroll('two', card => '10000021') AS tanya \gset
SELECT jsonb_build_object('program', 'two', 'receipt_id', 'TWO-1', 'customer', jsonb_build_object('id', :tanya),
                          'lines', '[{"line": 1, "sku": "SKI", "qty": 1, "price": 999.99},
                                     {"line": 2, "sku": "JKT", "qty": 3, "price": 41.5},
                                     {"line": 7, "sku": "BAG", "qty": 1, "price": 5}]'::jsonb) AS two \gset
SELECT loyalty.commit(:'two', loyalty.calculate(:'two')) AS two_done \gset
SELECT jsonb_pretty(:'two_done'::jsonb -> 'lines') AS lines;
SELECT answer ? 'lines' AS stored_lines, earned_line, earned_currency, earned_points
  FROM loyalty.receipt WHERE receipt_id = 'TWO-1';
SELECT jsonb_set(loyalty.commit(:'two'), '{commit,replayed}', 'false')::text = :'two_done'::jsonb::text AS replay_same_text;
SELECT :'two'::jsonb || '{"receipt_id": "TWO-2", "explain": true}' AS two_x \gset
SELECT loyalty.commit(:'two_x', loyalty.calculate(:'two_x')) AS two_x_done \gset
SELECT answer ? 'lines' AS stored_lines FROM loyalty.receipt WHERE receipt_id = 'TWO-2';
SELECT jsonb_set(loyalty.commit(:'two_x'), '{commit,replayed}', 'false')::text = :'two_x_done'::jsonb::text AS replay_same_text;
-- R1 (section 1), cancelled since: its replay renders the same lines too
SELECT (loyalty.commit(:'r1') -> 'lines')::text = (:'done'::jsonb -> 'lines')::text AS r1_lines_same_text,
       loyalty.commit(:'r1') #>> '{commit,status}' AS status;

-- period_start: the first day of the limit period holding a day, as commit
-- counts a use (2026-03-07 is a Saturday: its ISO week starts on Monday the
-- 2nd); a Monday is its own week's start; for ever is -infinity.
SELECT p, loyalty.period_start(p, '2026-03-07') AS sat, loyalty.period_start(p, '2026-03-02') AS mon,
       loyalty.period_start(p, '2026-01-01') AS new_year
  FROM unnest(ARRAY['day', 'week', 'month', 'year', 'ever', 'fortnight']) p;
-- a day that is not finite is its own start; NULL gives NULL
SELECT loyalty.period_start('month', 'infinity') AS inf, loyalty.period_start('week', '-infinity') AS neg_inf,
       loyalty.period_start(NULL, '2026-03-07') IS NULL AS null_period, loyalty.period_start('day', NULL) IS NULL AS null_day;
-- the first date there is (4714-11-24 BC, Julian day 0) is a Monday: the
-- week of the Wednesday after starts on it
SELECT loyalty.period_start('week', '4714-11-26 BC') AS first_week;

DROP EXTENSION loyalty CASCADE;
