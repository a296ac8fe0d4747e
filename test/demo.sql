-- A sample programme and what loyalty does with it so far: customers,
-- identifiers, the points core (lots, ledger, holds, expiry), the rules of
-- promotions (loyalty.condition), the receipt calculation at the till, and
-- the checkout written, replayed and cancelled.
\pset footer off
\set QUIET on
\set SHOW_CONTEXT never
SET client_min_messages = warning;

\echo
\echo '== A programme: a sports chain in Russia, cards with a Luhn digit, 5% back in bonus points'
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country,
                             card_min_length, card_max_length, card_luhn,
                             accrual_rate_bp, accrual_delay, max_points_bp)
VALUES ('sport', 'Sport club', 'bonus', 'RU', 16, 16, true, 500, '2 hours', 3000);
INSERT INTO loyalty.currency (program_id, code, name, exponent, money_per_unit)
SELECT id, 'bonus', 'Bonus points', 0, 1 FROM loyalty.program WHERE code = 'sport';
COMMIT;
SELECT p.code, p.name, p.phone_country AS phones_in, p.card_min_length AS card_digits,
       p.card_luhn AS luhn, p.accrual_rate_bp / 100.0 AS "accrual %",
       p.accrual_delay, p.max_points_bp / 100.0 AS "max paid with points %",
       c.code AS currency, c.money_per_unit AS "roubles per point"
  FROM loyalty.program p JOIN loyalty.currency c ON c.program_id = p.id;

\echo
\echo '== Phone numbers: every way a cashier types one gives the same E.164 number'
SELECT written AS "typed at the till", loyalty.normalize_phone(written, 'RU') AS stored
  FROM unnest(ARRAY['8 (916) 123-45-67', '+7 916 123 45 67', '79161234567',
                    '916 123-45-67', '+44 (0)20 7946 0958']) AS written;

\echo
\echo '== Enrolling customers'
SELECT loyalty.enroll('sport', card => '4111 1111 1111 1111', phone => '8 916 123-45-67',
                      email => 'Anna.Petrova@Example.com', birth_date => '1990-05-01',
                      home_city => 'Moscow', attributes => '{"sport": "ski"}') AS anna \gset
SELECT loyalty.enroll('sport', phone => '+7 903 765-43-21', home_city => 'Kazan') AS boris \gset
SELECT c.id AS customer, c.home_city, i.kind, i.value, i.status
  FROM loyalty.customer c JOIN loyalty.identifier i ON i.customer_id = c.id
 ORDER BY c.id, i.kind;

\echo
\echo '== At the till: identify by card, phone or e-mail'
SELECT written AS "presented", r ->> 'found' AS found, r ->> 'customer_id' AS customer,
       r -> 'identifier' ->> 'kind' AS "read as", r ->> 'reason' AS reason
  FROM unnest(ARRAY['4111-1111-1111-1111', '89161234567', 'ANNA.PETROVA@example.com',
                    '4111 1111 1111 1112', '+7 999 000 00 00']) AS written,
       LATERAL loyalty_identify('sport', written) AS r;
\echo 'The whole answer for a phone:'
SELECT jsonb_pretty(loyalty_identify('sport', '+7 916 123 45 67')) AS "loyalty_identify('sport', '+7 916 123 45 67')";

\echo
\echo '== A duplicate is refused with a clear error, and nothing is written'
\set ON_ERROR_STOP off
SELECT loyalty.enroll('sport', phone => '+7 (916) 123-45-67');
\set ON_ERROR_STOP on

\echo
\echo '== A lost card is replaced: the old one identifies nobody, the new one finds Anna'
SELECT loyalty.replace_card('sport', '4111 1111 1111 1111', '5555 5555 5555 4444', 'card lost') AS customer;
SELECT written AS "presented", r ->> 'found' AS found, r ->> 'customer_id' AS customer, r ->> 'reason' AS reason
  FROM unnest(ARRAY['4111111111111111', '5555555555554444']) AS written,
       LATERAL loyalty_identify('sport', written) AS r;

\echo
\echo '== Points: lots with validity windows in one versioned wallet'
SELECT version, operation, amount, balance_after, lot_id, reason
  FROM loyalty.accrue(:anna, 'bonus', 1200, receipt => 'R-1001', reason => '5% of a 24 000 ski jacket');
SELECT version, operation, amount, balance_after, lot_id, reason
  FROM loyalty.accrue(:anna, 'bonus', 700, valid_to => now() + interval '14 days',
                      kind => 'birthday', reason => 'birthday gift, two weeks');
SELECT version, operation, amount, balance_after, lot_id, reason
  FROM loyalty.accrue(:anna, 'bonus', 300, restriction => 'ski', kind => 'product',
                      reason => 'for skis only');
SELECT version, operation, amount, balance_after, lot_id, reason
  FROM loyalty.accrue(:anna, 'bonus', 200, valid_from => now() + interval '2 hours',
                      reason => 'released two hours after the order');
SELECT currency, balance, held, available, pending, restricted,
       next_expiry_amount AS "expiring next" FROM loyalty_balance(:anna);

\echo
\echo '== Paying 800 points for skis: the ski lot first, then the soonest to expire'
SELECT version, operation, amount, balance_after, receipt_id
  FROM loyalty.redeem(:anna, 'bonus', 800, applicable => '{ski}', receipt => 'R-1002',
                      idempotency_key => 'till-3/R-1002');
SELECT l.id AS lot, l.kind, l.restriction, u.amount AS "paid", l.remaining AS "left"
  FROM loyalty.lot_usage u JOIN loyalty.lot l ON l.id = u.lot_id
 WHERE u.customer_id = :anna AND u.version = 5 ORDER BY l.id;
\echo 'The till retries after a timeout with the same key: the same answer, nothing written twice'
SELECT version, operation, amount, balance_after
  FROM loyalty.redeem(:anna, 'bonus', 800, applicable => '{ski}', receipt => 'R-1002',
                      idempotency_key => 'till-3/R-1002');

\echo
\echo '== Online order: points are held, then captured in part; the rest goes back'
SELECT loyalty.hold(:anna, 'bonus', 300, ttl => interval '15 minutes', receipt => 'WEB-77') AS hold \gset
SELECT balance, held, available FROM loyalty_balance(:anna);
SELECT version, operation, amount, held_amount, balance_after, held_after
  FROM loyalty.capture(:hold, 100);

\echo
\echo '== Not enough points: a specific SQLSTATE and nothing written'
\set ON_ERROR_STOP off
\set VERBOSITY verbose
SELECT loyalty.redeem(:anna, 'bonus', 100000);
\set VERBOSITY default
\set ON_ERROR_STOP on

\echo
\echo '== Boris turns out to be Anna''s second account: merge them'
SELECT version, amount, balance_after FROM loyalty.accrue(:boris, 'bonus', 150, reason => 'his own purchase');
SELECT loyalty.merge_customers('sport', :boris, :anna, 'same person, confirmed by phone call') AS merged_into;
SELECT loyalty_identify('sport', '+7 903 765-43-21') ->> 'customer_id' AS "Boris's phone now finds";
SELECT customer_id AS customer, version, operation, amount, balance_after, peer_customer_id AS peer
  FROM loyalty.ledger WHERE operation LIKE 'transfer%' ORDER BY customer_id;

\echo
\echo '== Three weeks later (simulated): the birthday lot stopped counting with nothing written;'
\echo '   the expiry job records it in the ledger'
UPDATE loyalty.lot SET valid_from = valid_from - interval '21 days', valid_to = valid_to - interval '21 days';
UPDATE loyalty.wallet SET next_expiry = next_expiry - interval '21 days';
SELECT balance, pending, stored_balance FROM loyalty.balances WHERE customer_id = :anna;
SELECT loyalty.expire_due() AS "lots recorded as expired";
SELECT version, operation, amount, balance_after, lot_id, reason
  FROM loyalty.ledger WHERE customer_id = :anna AND operation = 'expire';

\echo
\echo '== The ledger, readable, and what the programme owes'
SELECT version, operation, amount, held_amount AS held, balance_after, receipt_id, reason
  FROM loyalty.ledger_entries WHERE customer_id = :anna ORDER BY version;
SELECT program, currency, wallets, points, pending, money, money_currency FROM loyalty.liability;

\echo
\echo '== Who changed what, and why'
SELECT customer_id AS customer, action, detail, actor, reason
  FROM loyalty.customer_log ORDER BY id;

\echo
\echo '== Promotion rules: conditions over the lines of Anna''s receipt, compiled once, matched in C'
CREATE TEMP TABLE demo_rules (promotion text, rule loyalty.condition);
INSERT INTO demo_rules VALUES
    ('Alpine week',    'category <@ ''ski/alpine'' and price >= 20000'),
    ('Atomic & Head',  'brand in (''Head'', ''Atomic'')'),
    ('Weekend in app', 'receipt.channel = ''app'' and receipt.weekday in (''sat'', ''sun'')'),
    ('Gold birthday',  'customer.tier = ''gold'' and customer.birthday_within(7)'),
    ('No clearance',   'category <@ ''ski'' and not tags ? ''clearance''');
\echo 'The rules as stored (canonical form):'
SELECT promotion, rule FROM demo_rules;
SELECT '[{"sku": "SKI-1", "category": "ski/alpine/men", "brand": "Atomic", "price": 32000},
          {"sku": "POLE-2", "category": "ski/poles", "brand": "Leki", "price": 4500, "tags": ["clearance"]},
          {"sku": "SOCK-3", "category": "textile/socks", "brand": "Head", "price": 900}]' AS lines,
       '{"at": "2026-11-28T12:30:00+03:00", "channel": "app", "city": "Moscow"}' AS receipt,
       '{"tier": "gold", "birthday": "1990-12-01"}' AS customer \gset
\echo 'Which rule holds on which line (match_all: one index over every rule):'
SELECT l.doc ->> 'sku' AS line, string_agg(r.promotion, ', ' ORDER BY m.condition) AS promotions
  FROM loyalty.match_all((SELECT array_agg(rule ORDER BY promotion) FROM demo_rules), :'lines', :'receipt', :'customer') m
  JOIN (SELECT row_number() OVER (ORDER BY promotion) AS n, promotion FROM demo_rules) r ON r.n = m.condition
  JOIN jsonb_array_elements(:'lines') WITH ORDINALITY l(doc, ord) ON l.ord = m.line
 GROUP BY m.line, l.doc ORDER BY m.line;
\echo 'Why "No clearance" does not apply to the poles:'
SELECT depth, clause, value, result
  FROM loyalty.condition_explain((SELECT rule FROM demo_rules WHERE promotion = 'No clearance'),
                                 (:'lines')::jsonb -> 1, :'receipt', :'customer');

\echo
\echo '== The checkout: loyalty_calculate chooses the best promotions, spends points, previews the accrual'
INSERT INTO loyalty.product (program_id, sku, name, category, brand, attributes)
SELECT p.id, v.sku, v.name, v.category, v.brand, v.attributes::jsonb FROM loyalty.program p,
       (VALUES ('SKI-1', 'Redster G9', 'ski/alpine/men', 'Atomic', '{}'),
               ('POLE-2', 'Carbon poles', 'ski/poles', 'Leki', '{"tags": ["clearance"]}'),
               ('SOCK-3', 'Ski socks', 'textile/socks', 'Head', '{}')) v (sku, name, category, brand, attributes)
 WHERE p.code = 'sport';
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, stacking_group)
SELECT p.id, v.code, v.name, 'active', v.cond::loyalty.condition, v.benefit::jsonb, v.grp
  FROM loyalty.program p,
       (VALUES ('ALPINE10', 'Alpine week: 10% off skis from 20 000', 'category <@ ''ski/alpine'' and price >= 20000',
                '{"kind": "percent_off", "percent": 10}', 'skis'),
               ('ATOMIC3000', 'Atomic: 3 000 off', 'brand = ''Atomic''',
                '{"kind": "amount_off", "amount": 3000}', 'skis'),
               ('SOCKS3FOR2', 'Socks: 3 for 2', 'category <@ ''textile/socks''',
                '{"kind": "n_for_m", "buy": 3, "pay": 2}', NULL),
               ('BIG500', '500 off a receipt from 30 000', NULL,
                '{"kind": "receipt_off", "threshold": 30000, "amount": 500}', NULL),
               ('SKILOT', '500 bonus points for skis, valid 30 days', 'category <@ ''ski/alpine''',
                '{"kind": "bonus_lot", "points": 500, "valid_days": 30, "restriction": "category <@ ''ski''"}', NULL))
       v (code, name, cond, benefit, grp)
 WHERE p.code = 'sport';
SELECT jsonb_build_object(
           'program', 'sport', 'receipt_id', 'R-2001', 'customer', jsonb_build_object('id', :anna),
           'city', 'Moscow', 'channel', 'pos', 'points', 'max', 'explain', true,
           'at', to_char(now() AT TIME ZONE 'Europe/Moscow', 'YYYY-MM-DD"T"HH24:MI:SS') || '+03:00',
           'lines', '[{"line": 1, "sku": "SKI-1", "qty": 1, "price": 32000},
                      {"line": 2, "sku": "POLE-2", "qty": 1, "price": 4500},
                      {"line": 3, "sku": "SOCK-3", "qty": 3, "price": 900}]'::jsonb) AS receipt \gset
SELECT loyalty_calculate(:'receipt') AS calc \gset
\echo 'Each line: its discounts, the points that pay it, what it earns, what is left to pay:'
SELECT l ->> 'line' AS line, l ->> 'sku' AS sku, l ->> 'amount' AS amount,
       (SELECT string_agg((d ->> 'promotion') || ' -' || (d ->> 'amount'), ', ')
          FROM jsonb_array_elements(l -> 'discounts') d) AS discounts,
       l ->> 'points_amount' AS "paid with points",
       (SELECT sum((e ->> 'points')::numeric) FROM jsonb_array_elements(l -> 'points_earned') e) AS "points earned",
       l ->> 'to_pay' AS "to pay"
  FROM jsonb_array_elements((:'calc')::jsonb -> 'lines') l;
\echo 'The receipt:'
SELECT t ->> 'amount' AS amount, t ->> 'discount' AS discount, t ->> 'points_paid' AS "paid with points",
       t ->> 'to_pay' AS "to pay", t -> 'points_earned' AS "points earned",
       (:'calc')::jsonb -> 'bonus_lots' -> 0 ->> 'points' AS "bonus lot for skis",
       (:'calc')::jsonb ->> 'optimal' AS optimal
  FROM (SELECT (:'calc')::jsonb -> 'totals' AS t) s;
\echo 'Promotions applied, and those left out with the reason:'
SELECT a ->> 'code' AS promotion, 'applied' AS outcome, a ->> 'discount' AS discount
  FROM jsonb_array_elements((:'calc')::jsonb -> 'promotions' -> 'applied') a
UNION ALL
SELECT a ->> 'code', a ->> 'reason', NULL
  FROM jsonb_array_elements((:'calc')::jsonb -> 'promotions' -> 'not_applied') a;

\echo
\echo '== The customer pays: loyalty_commit writes what the till showed, in one transaction'
\echo '   (the lots the calculation chose pay; the accrual and the bonus lot wait for the programme delay)'
SELECT loyalty_commit(:'receipt', :'calc') -> 'commit' AS committed \gset
SELECT e ->> 'operation' AS operation, e ->> 'currency' AS currency, e ->> 'amount' AS amount,
       e ->> 'version' AS "wallet version"
  FROM jsonb_array_elements((:'committed')::jsonb -> 'ledger') e;
SELECT (:'committed')::jsonb ->> 'accrual' AS accrual, (:'committed')::jsonb -> 'points_earned' AS earned,
       to_char(((:'committed')::jsonb ->> 'release_at')::timestamptz - now(), 'HH24:MI') AS "released in";
SELECT currency, balance, available, pending, version FROM loyalty_balance(:anna);
\echo 'The till timed out and sends the same receipt again: the stored answer, nothing written twice'
SELECT loyalty_commit(:'receipt', :'calc') #>> '{commit,replayed}' AS replayed,
       (SELECT count(*) FROM loyalty.receipt WHERE receipt_id = 'R-2001') AS "receipts R-2001",
       (SELECT count(*) FROM loyalty.ledger WHERE idempotency_key LIKE 'loyalty:%:R-2001:%') AS "its ledger entries";
\echo 'Another till shows the same points to a second receipt and commits after the first: refused, 40001'
\set ON_ERROR_STOP off
\set VERBOSITY verbose
SELECT loyalty_commit(jsonb_set(:'receipt', '{receipt_id}', '"R-2002"'), :'calc');
\set VERBOSITY default
\set ON_ERROR_STOP on
SELECT receipt_id, status, (amount / 100.0)::numeric(14, 2) AS amount, (to_pay / 100.0)::numeric(14, 2) AS "to pay",
       points_spent, points_earned
  FROM loyalty.receipt WHERE receipt_id = 'R-2001';

\echo
\echo '== Two hours later (simulated): the release job credits the queued accrual and the bonus lot'
UPDATE loyalty.accrual_queue SET release_at = now() - interval '1 second' WHERE receipt_id = 'R-2001';
SELECT loyalty.release_accruals() AS "accruals released";
SELECT kind, amount, remaining, restriction, valid_to IS NOT NULL AS expires FROM loyalty.lot
 WHERE customer_id = :anna AND id IN (SELECT lot_id FROM loyalty.ledger WHERE idempotency_key LIKE 'loyalty:accrual:R-2001:%');
SELECT currency, balance, available, version FROM loyalty_balance(:anna);

\echo
\echo '== Anna brings the poles back: loyalty_refund gives back the line''s share of the money,'
\echo '   of the points that paid it (to the same lots) and takes back what it earned'
SELECT loyalty_refund('sport', 'R-2001', '[{"line": 2}]', 'RET-2001-1', 'wrong length') AS refund \gset
SELECT (:'refund')::jsonb ->> 'status' AS status, (:'refund')::jsonb ->> 'money' AS "money back",
       (:'refund')::jsonb -> 'points_returned' AS "points back to their lots",
       (:'refund')::jsonb -> 'points_taken' AS "points taken back";
SELECT currency, balance, available, version FROM loyalty_balance(:anna);
\echo 'The poles again: refused, a line is returned once'
\set ON_ERROR_STOP off
SELECT loyalty_refund('sport', 'R-2001', '[{"line": 2}]', 'RET-2001-2');
\set ON_ERROR_STOP on

\echo
\echo '== A receipt cancelled before its accrual is released: the queued points simply go'
SELECT loyalty_commit(jsonb_build_object('program', 'sport', 'receipt_id', 'R-2003',
                                         'customer', jsonb_build_object('id', :anna),
                                         'lines', '[{"line": 1, "sku": "SOCK-3", "qty": 2, "price": 900}]'::jsonb))
       #>> '{commit,accrual}' AS accrual;
SELECT (loyalty_cancel('sport', 'R-2003', 'till error')) -> 'accruals_dequeued' AS "accruals removed from the queue";
SELECT receipt_id, status FROM loyalty.receipt ORDER BY receipt_id;

\echo
\echo '== The events of all this, written with each change: what a message broker would be handed'
SELECT type, count(*) AS events FROM loyalty.event GROUP BY type ORDER BY type;
SELECT id, type, payload ->> 'receipt_id' AS receipt, payload ->> 'operation' AS operation,
       payload -> 'amount' AS amount, payload -> 'balance' AS balance
  FROM loyalty.event WHERE customer_id = :anna ORDER BY id DESC LIMIT 6;
\echo 'A consumer takes them in its transaction: a rollback would give them back'
SELECT count(*) AS "events taken" FROM loyalty.take_events(100000);
