-- update_customer: an administrator changes a customer's status, birth date,
-- home city and attributes; only what is given changes, every change is
-- logged with its actor and reason, bad input changes nothing.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql
-- What was written: the customers as they are and the log, to show that a
-- refused call wrote nothing.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(concat_ws(',', id, status, birth_date, home_city, attributes, updated_at), ';' ORDER BY id)
           FROM loyalty.customer),
        (SELECT count(*) FROM loyalty.customer_log)))
$$;

BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, phone_country)
VALUES ('shop', 'Shop', 'bonus', 'RU'), ('pizza', 'Pizza', 'coins', 'KZ');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
VALUES (1, 'bonus', 'Bonus', 1), (2, 'coins', 'Coins', 0.5);
COMMIT;
SELECT loyalty.enroll('shop', phone => '+7 912 555 01 02', birth_date => '1985-11-30', home_city => 'Kazan',
                      attributes => '{"channel": "web", "sport": "ski", "kids": 1}') AS anna \gset
SELECT loyalty.enroll('shop', phone => '+7 903 765 43 21') AS boris \gset
SELECT loyalty.enroll('pizza', phone => '+7 701 234 56 78') AS pizza_customer \gset

-- Only what is given changes; the answer is what changed, from and to.
SELECT loyalty.update_customer('shop', :anna, 'moved to Moscow', home_city => 'Moscow');
SELECT status, birth_date, home_city, attributes FROM loyalty.customer WHERE id = :anna;
-- Attributes are merged: a key given replaces or adds, a key given as null
-- is removed, the others stay.
SELECT loyalty.update_customer('shop', :anna, 'asked at the desk',
                               attributes => '{"kids": 2, "sport": null, "pets": ["dog"]}');
SELECT attributes FROM loyalty.customer WHERE id = :anna;
-- clear sets the birth date or the home city to NULL.
SELECT loyalty.update_customer('shop', :anna, 'the customer asked to forget it', clear => '{birth_date}');
SELECT loyalty.update_customer('shop', :anna, 'typo at enrolment', birth_date => '1985-11-03',
                               clear => '{home_city}');
SELECT status, birth_date, home_city, attributes FROM loyalty.customer WHERE id = :anna;
-- Setting what is already there is not an error, and is logged too.
SELECT loyalty.update_customer('shop', :anna, 'checked', status => 'active');
-- An empty object changes nothing, and is logged.
SELECT loyalty.update_customer('shop', :anna, 'checked the attributes', attributes => '{}');

-- The status stops spending: a blocked account or one on fraud hold earns
-- but cannot spend, until it is active again.
SELECT amount FROM loyalty.accrue(:anna, 'bonus', 500);
SELECT loyalty.update_customer('shop', :anna, 'suspicious returns, case 17', status => 'fraud_hold');
SELECT * FROM pg_temp.err(format($$SELECT loyalty.redeem(%s, 'bonus', 100)$$, :anna));
CREATE FUNCTION pg_temp.points_paid(customer bigint) RETURNS jsonb LANGUAGE sql AS $$
    SELECT loyalty.calculate(jsonb_build_object('program', 'shop', 'customer', jsonb_build_object('id', customer),
                                                'points', 'max',
                                                'lines', '[{"sku": "A", "qty": 1, "price": 1000}]'::jsonb))
           #> '{totals,points_paid}'
$$;
SELECT pg_temp.points_paid(:anna) AS points_paid_on_hold;
SELECT loyalty.identify('shop', '+7 912 555 01 02') ->> 'status' AS identify_says;
SELECT loyalty.update_customer('shop', :anna, 'case 17 closed: returns were genuine', status => 'active');
SELECT pg_temp.points_paid(:anna) AS points_paid_when_active;
SELECT amount FROM loyalty.redeem(:anna, 'bonus', 100);
SELECT loyalty.update_customer('shop', :boris, 'card shared with strangers', status => 'blocked');
SELECT * FROM pg_temp.err(format($$SELECT loyalty.redeem(%s, 'bonus', 1)$$, :boris));

-- The log: every change with its actor, its reason and what changed.
SELECT customer_id = :anna AS anna, action, detail, actor = session_user AS actor_recorded, reason
  FROM loyalty.customer_log WHERE action = 'update' ORDER BY id;

-- Bad input: the error names the field, and nothing is written.
SELECT pg_temp.state() AS before \gset
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, NULL, status => 'blocked')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, '', status => 'blocked')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, '   ', status => 'blocked')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'nothing')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'nothing', clear => '{}')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', status => 'frozen')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', status => 'Blocked')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', status => 'merged')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', birth_date => '1899-12-31')$$, :anna));
SELECT state, message = 'birth_date must be from 1900-01-01 to today, not ' || to_char(current_date + 1, 'YYYY-MM-DD') AS tomorrow_named
  FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', birth_date => current_date + 1)$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', birth_date => 'infinity')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', home_city => ' ')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', attributes => '["vip"]')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', attributes => 'null')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', clear => '{status}')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', clear => '{attributes}')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', clear => '{NULL}')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', home_city => 'Kazan', clear => '{home_city}')$$, :anna));
SELECT * FROM pg_temp.err($$SELECT loyalty.update_customer('shop', 999, 'x', status => 'blocked')$$);
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', status => 'blocked')$$, :pizza_customer));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('nosuch', %s, 'x', status => 'blocked')$$, :anna));
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer(NULL, %s, 'x', status => 'blocked')$$, :anna));
SELECT * FROM pg_temp.err($$SELECT loyalty.update_customer('shop', NULL, 'x', status => 'blocked')$$);
-- a bad argument is refused even when another is right
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', status => 'blocked', home_city => '')$$, :anna));
SELECT pg_temp.state() = :'before' AS nothing_written;

-- A merged account: the target is named.
SELECT loyalty.merge_customers('shop', :boris, :anna, 'same person') = :anna AS merged;
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', status => 'active')$$, :boris));

-- Roles: the admin may call it for the programmes it reaches; the actor is
-- the admin's role; a cashier may not call it.
BEGIN;
CREATE ROLE update_customer_admin IN ROLE loyalty_admin;
CREATE ROLE update_customer_till IN ROLE loyalty_cashier;
SELECT loyalty.grant_program('shop', 'update_customer_admin'), loyalty.grant_program('shop', 'update_customer_till');
SET ROLE update_customer_admin;
SELECT loyalty.update_customer('shop', :anna, 'VIP from today', attributes => '{"vip": true}');
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('pizza', %s, 'x', status => 'blocked')$$, :pizza_customer));
RESET ROLE;
SELECT actor, reason FROM loyalty.customer_log ORDER BY id DESC LIMIT 1;
SET ROLE update_customer_till;
SELECT * FROM pg_temp.err(format($$SELECT loyalty.update_customer('shop', %s, 'x', status => 'blocked')$$, :anna));
RESET ROLE;
ROLLBACK;

DROP EXTENSION loyalty;
