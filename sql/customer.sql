-- Programmes, customers and identifiers: enroll, identify, replace, block, merge.
CREATE EXTENSION loyalty;

CREATE FUNCTION pg_temp.err(query text,
    OUT state text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    state := '00000';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END
$$;

-- What was written: rows per table, to show that a refused call wrote nothing.
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
    SELECT format('customers %s, identifiers %s, log %s',
                  (SELECT count(*) FROM loyalty.customer),
                  (SELECT count(*) FROM loyalty.identifier),
                  (SELECT count(*) FROM loyalty.customer_log))
$$;

-- A programme and its currency are created together (the default currency
-- constraint is deferred to the commit).
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country, card_min_length, card_max_length, card_luhn)
VALUES ('sport', 'Sport club', 'bonus', 'RU', 13, 16, true);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus points', 1 FROM loyalty.program WHERE code = 'sport';
COMMIT;
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country)
VALUES ('pizza', 'Pizza coins', 'coins', 'KZ');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'coins', 'Coins', 0.5 FROM loyalty.program WHERE code = 'pizza';
COMMIT;

-- Programme settings are checked; the default currency when the transaction commits.
INSERT INTO loyalty.program (code, name, default_currency) VALUES ('x', 'X', 'nope');
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.program (code, name, default_currency, phone_country) VALUES ('y', 'Y', 'b', 'XX')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.program (code, name, default_currency) VALUES ('Bad Code', 'Z', 'b')$$);
SELECT state, message FROM pg_temp.err($$INSERT INTO loyalty.program (code, name, default_currency, card_min_length, card_max_length) VALUES ('z', 'Z', 'b', 20, 10)$$);
SELECT code FROM loyalty.program ORDER BY code;

-- Enroll: identifiers are stored normalised.
SELECT loyalty.enroll('sport', card => '4111 1111 1111 1111', phone => '8 (916) 123-45-67',
                      email => ' Anna@Example.COM ', birth_date => '1990-05-01',
                      home_city => 'Moscow', attributes => '{"sport": "ski"}') AS anna;
SELECT loyalty.enroll('sport', phone => '+7 903 765 43 21') AS boris;
SELECT loyalty.enroll('pizza', phone => '8 701 234 56 78') AS pizza_customer;
SELECT i.kind, i.value, i.status, i.customer_id
  FROM loyalty.identifier i JOIN loyalty.program p ON p.id = i.program_id
 WHERE p.code = 'sport' ORDER BY i.customer_id, i.kind;
SELECT customer_id, action, detail, actor = session_user AS actor_recorded
  FROM loyalty.customer_log ORDER BY id;

-- Identify by every kind, written any way.
SELECT loyalty.identify('sport', '+7 916 123 45 67') ->> 'customer_id' AS by_phone,
       loyalty.identify('sport', '79161234567') ->> 'customer_id' AS by_phone_digits,
       loyalty.identify('sport', '4111-1111-1111-1111') ->> 'customer_id' AS by_card,
       loyalty.identify('sport', 'ANNA@example.com') ->> 'customer_id' AS by_email,
       loyalty.identify('sport', '1', 'id') ->> 'customer_id' AS by_id,
       public.loyalty_identify('sport', '89161234567') ->> 'customer_id' AS checkout_name;
SELECT jsonb_pretty(loyalty.identify('sport', '8 916 123 45 67'));

-- Unknown and mistyped identifiers are answers, not errors.
SELECT loyalty.identify('sport', '4111111111111129');
SELECT loyalty.identify('sport', '4111111111111112');
SELECT loyalty.identify('sport', 'not a card');
SELECT loyalty.identify('sport', 'nobody@example.com');
SELECT loyalty.identify('sport', '99', 'id');
SELECT loyalty.identify('sport', 'x1', 'id');
SELECT loyalty.identify('sport', '123', 'phone');
SELECT loyalty.identify('sport', '');
-- A programme sees only its own customers.
SELECT loyalty.identify('pizza', '8 916 123 45 67') ->> 'reason' AS other_programme;
SELECT loyalty.identify('pizza', '1', 'id') ->> 'reason' AS other_programme_id;
SELECT loyalty.identify('sport', NULL) IS NULL AS null_gives_null;

-- Bad calls are errors.
SELECT * FROM pg_temp.err($$SELECT loyalty.identify('nosuch', '79161234567')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.identify('sport', '79161234567', 'passport')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_identifier('sport', 'id', '1')$$);
SELECT loyalty.normalize_identifier('sport', 'phone', '8 916 123 45 67');

-- Duplicates are refused with a clear unique violation, and nothing is written.
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('sport', phone => '79161234567')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('sport', card => '4111111111111111', phone => '+79990000001')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('sport', phone => '+79990000001', email => 'anna@example.com')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('sport')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('sport', phone => '+79990000001', attributes => '[1]')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('sport', phone => '+79990000001', card => '123')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('nosuch', phone => '+79990000001')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.enroll('sport', phone => 'call me')$$);
SELECT state, message FROM pg_temp.err($$SELECT loyalty.enroll('sport', phone => '+79990000001', birth_date => '1800-01-01')$$);
SELECT pg_temp.counts() AS after;
-- The same phone may belong to a customer of another programme.
SELECT loyalty.enroll('pizza', phone => '+7 916 123 45 67') IS NOT NULL AS enrolled_elsewhere;

-- Writing the table directly still stores the normalised form.
INSERT INTO loyalty.identifier (program_id, kind, value, customer_id)
SELECT id, 'email', 'Boris@Example.com ', 2 FROM loyalty.program WHERE code = 'sport';
SELECT value FROM loyalty.identifier WHERE customer_id = 2 AND kind = 'email';

-- Add an identifier to an existing customer.
SELECT loyalty.add_identifier('sport', 2, 'card', '5555 5555 5555 4444', 'card issued at the till');
SELECT * FROM pg_temp.err($$SELECT loyalty.add_identifier('sport', 2, 'card', '4111 1111 1111 1111')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.add_identifier('sport', 999, 'card', '4012 8888 8888 1881')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.add_identifier('sport', 3, 'card', '4012 8888 8888 1881')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.add_identifier('sport', 2, 'fax', '123')$$);

-- Replace a card: the old one stays bound but identifies nobody.
SELECT loyalty.replace_card('sport', '4111 1111 1111 1111', '4012 8888 8888 1881', 'card lost');
SELECT kind, value, status, replaced_by FROM loyalty.identifier
 WHERE customer_id = 1 AND kind = 'card' ORDER BY value;
SELECT loyalty.identify('sport', '4111111111111111');
SELECT loyalty.identify('sport', '4012888888881881') ->> 'customer_id' AS new_card_finds;
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.replace_card('sport', '4111111111111111', '4222222222222', 'again')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.replace_card('sport', '4012888888881881', '5555555555554444', 'taken')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.replace_card('sport', '4012888888881881', '4222222222222', NULL)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.replace_card('sport', '4012888888881881', '4222222222222', '  ')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.replace_card('sport', '4000000000000002', '4222222222222', 'unknown')$$);
SELECT pg_temp.counts() AS after;

-- Block and unblock.
SELECT loyalty.set_identifier_status('sport', 'phone', '+79037654321', 'blocked', 'SIM card stolen');
SELECT loyalty.identify('sport', '+79037654321');
SELECT * FROM pg_temp.err($$SELECT loyalty.set_identifier_status('sport', 'phone', '+79037654321', 'replaced', 'x')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.set_identifier_status('sport', 'card', '4111111111111111', 'active', 'x')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.set_identifier_status('sport', 'phone', '+79990000002', 'active', 'x')$$);
SELECT loyalty.set_identifier_status('sport', 'phone', '8 903 765 43 21', 'active', 'SIM recovered');
SELECT loyalty.identify('sport', '+79037654321') ->> 'found' AS found_again;
-- A blocked card can still be replaced.
SELECT loyalty.set_identifier_status('sport', 'card', '5555555555554444', 'blocked', 'stolen');
SELECT loyalty.replace_card('sport', '5555555555554444', '4222222222222', 'reissued after theft');

-- Merge Boris into Anna: his identifiers now find her.
SELECT loyalty.merge_customers('sport', 2, 1, 'same person, two accounts');
SELECT kind, value, status FROM loyalty.identifier WHERE customer_id = 1 ORDER BY kind, value;
SELECT id, status, merged_into, birth_date, home_city FROM loyalty.customer WHERE id IN (1, 2) ORDER BY id;
SELECT loyalty.identify('sport', '+79037654321') ->> 'customer_id' AS boris_phone_finds;
SELECT loyalty.identify('sport', '2', 'id') - 'attributes' AS merged_id_leads_on;
SELECT customer_id, action, detail, reason FROM loyalty.customer_log
 WHERE action = 'merge' ORDER BY customer_id;
SELECT pg_temp.counts() AS before;
SELECT * FROM pg_temp.err($$SELECT loyalty.merge_customers('sport', 1, 1, 'self')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.merge_customers('sport', 2, 1, 'twice')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.merge_customers('sport', 1, 3, 'other programme')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.merge_customers('sport', 1, 999, 'missing')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.merge_customers('sport', 1, 5, '')$$);
SELECT pg_temp.counts() AS after;
-- Merging into an account that was itself merged later keeps one hop.
SELECT loyalty.enroll('sport', phone => '+79990000003') AS carol \gset
UPDATE loyalty.customer SET status = 'fraud_hold' WHERE id = :carol;
SELECT * FROM pg_temp.err(format('SELECT loyalty.merge_customers(%L, 1, %s, %L)', 'sport', :carol, 'fraud'));
UPDATE loyalty.customer SET status = 'active' WHERE id = :carol;
SELECT loyalty.merge_customers('sport', 1, :carol, 'Anna and Carol are one person') = :carol AS merged;
SELECT id = :carol AS is_carol, status, merged_into = :carol AS into_carol
  FROM loyalty.customer WHERE id IN (1, 2, :carol) ORDER BY id;
SELECT loyalty.identify('sport', '2', 'id') ->> 'customer_id' = :'carol' AS first_account_leads_to_carol;

-- A customer's status is reported; tills decide what a blocked one may do.
UPDATE loyalty.customer SET status = 'blocked' WHERE id = :carol;
SELECT loyalty.identify('sport', '+79990000003') ->> 'status' AS status;

DROP EXTENSION loyalty;
