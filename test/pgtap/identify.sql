-- identify() finds a customer by every identifier kind; identifiers are unique
-- per programme in their normalised form.  Randomised parts print their seed.
BEGIN;
SELECT plan(23);

INSERT INTO loyalty.program (code, name, default_currency, phone_country, card_min_length, card_max_length, card_luhn)
VALUES ('club', 'Club', 'bonus', 'RU', 16, 16, true), ('other', 'Other', 'bonus', 'GB', 8, 19, false);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program;
SET CONSTRAINTS ALL IMMEDIATE;

CREATE TEMP TABLE anna AS
SELECT loyalty.enroll('club', card => '4111 1111 1111 1111', phone => '8 916 123-45-67',
                      email => 'Anna@Example.com') AS id;

-- Every kind, written in several ways.
SELECT results_eq(
    $$SELECT (loyalty.identify('club', v) ->> 'customer_id')::bigint
        FROM unnest(ARRAY['4111111111111111', '4111 1111 1111 1111', '4111-1111-1111-1111',
                          '+79161234567', '8 (916) 123-45-67', '79161234567', '9161234567',
                          'anna@example.com', ' ANNA@EXAMPLE.COM ']) AS v$$,
    $$SELECT id FROM anna, generate_series(1, 9)$$,
    'card, phone and e-mail in any spelling find the customer');
SELECT is(loyalty.identify('club', (SELECT id FROM anna)::text, 'id') ->> 'customer_id',
          (SELECT id FROM anna)::text, 'the customer id finds the customer');
SELECT is(loyalty.identify('club', '4111111111111111', 'card') -> 'identifier' ->> 'kind', 'card',
          'an explicit kind is honoured');
SELECT is(loyalty.identify('club', '+79161234567') -> 'identifier' ->> 'kind', 'phone',
          'a number with + is a phone');
SELECT is(loyalty.identify('club', '4111111111111111') -> 'identifier' ->> 'kind', 'card',
          'a valid card number is tried as a card first');
SELECT is(public.loyalty_identify('club', '89161234567') ->> 'customer_id',
          (SELECT id FROM anna)::text, 'public.loyalty_identify answers the same');
SELECT is(loyalty.identify('club', '+79160000000') ->> 'reason', 'not_found',
          'an unknown phone is not found');
SELECT is(loyalty.identify('other', '+79161234567') ->> 'reason', 'not_found',
          'another programme does not see the customer');
SELECT is(loyalty.identify('club', 'garbage') ->> 'reason', 'invalid_identifier',
          'garbage is an invalid identifier, not an error');
SELECT throws_ok($$SELECT loyalty.identify('nope', '1')$$, '42704', 'programme "nope" does not exist',
                 'an unknown programme is an error');

-- Uniqueness holds in the normalised form, whoever writes.
SELECT throws_ok($$SELECT loyalty.enroll('club', phone => '+7 916 123 45 67')$$, '23505',
                 'phone "+79161234567" is already bound to customer ' || (SELECT id FROM anna) || ' in programme "club"',
                 'the same phone in another spelling is refused');
SELECT throws_ok($$SELECT loyalty.enroll('club', email => 'ANNA@example.COM')$$, '23505', NULL,
                 'the same e-mail in another case is refused');
SELECT throws_ok($$SELECT loyalty.enroll('club', card => '4111-1111-1111-1111')$$, '23505', NULL,
                 'the same card is refused');
SELECT throws_ok($$INSERT INTO loyalty.identifier (program_id, kind, value, customer_id)
                   SELECT p.id, 'phone', '8 916 1234567', a.id FROM loyalty.program p, anna a WHERE p.code = 'club'$$,
                 '23505', NULL, 'a direct insert of the same phone violates the key');
SELECT lives_ok($$SELECT loyalty.enroll('other', phone => '+79161234567')$$,
                'the same phone may be bound in another programme');
SELECT is((SELECT count(*) FROM loyalty.identifier WHERE value = '+79161234567'), 2::bigint,
          'one row per programme');

-- Randomised: Russian mobile numbers written in random national and
-- international forms all normalise to +7 and the ten digits.
\ir seed.psql
CREATE TEMP TABLE phones AS
SELECT '9' || lpad((random() * 999999999)::bigint::text, 9, '0') AS nsn,
       (random() * 5)::int AS form
  FROM generate_series(1, 500);
SELECT is_empty($$
    SELECT nsn, form, written, loyalty.normalize_phone(written, 'RU')
      FROM (SELECT nsn, form,
                   CASE form
                     WHEN 0 THEN '8' || nsn
                     WHEN 1 THEN '+7 ' || substr(nsn, 1, 3) || ' ' || substr(nsn, 4, 3) || '-' || substr(nsn, 7, 2) || '-' || substr(nsn, 9)
                     WHEN 2 THEN '7' || nsn
                     WHEN 3 THEN '8 (' || substr(nsn, 1, 3) || ') ' || substr(nsn, 4)
                     WHEN 4 THEN nsn
                     ELSE '00 7 ' || nsn
                   END AS written
              FROM phones) w
     WHERE loyalty.normalize_phone(written, 'RU') IS DISTINCT FROM '+7' || nsn$$,
    '500 random numbers in random spellings normalise to +7 and their ten digits');

-- Randomised: cards built with a check digit from a reference Luhn in SQL are
-- accepted; changing the check digit makes them fail.
CREATE FUNCTION pg_temp.luhn_digit(body text) RETURNS int LANGUAGE sql AS $$
    SELECT (10 - sum(CASE WHEN (length(body) - i) % 2 = 0
                          THEN (d * 2) / 10 + (d * 2) % 10 ELSE d END) % 10) % 10
      FROM (SELECT i, substr(body, i, 1)::int AS d FROM generate_series(1, length(body)) i) x
$$;
CREATE TEMP TABLE cards AS
SELECT body || pg_temp.luhn_digit(body) AS good,
       body || (pg_temp.luhn_digit(body) + 1 + (random() * 8)::int) % 10 AS bad
  FROM (SELECT lpad((random() * 999999999999999)::bigint::text, 15, '0') AS body
          FROM generate_series(1, 500)) b;
SELECT is_empty($$SELECT good FROM cards WHERE loyalty.normalize_card(good, 16, 16, true) <> good$$,
                '500 random cards with a reference check digit pass');
SELECT is((SELECT count(*) FROM cards c
            WHERE loyalty.identify('club', c.bad, 'card') ->> 'reason' = 'invalid_identifier'),
          500::bigint, 'the same cards with a wrong check digit all fail the Luhn check');

-- Identify after changes.
SELECT lives_ok($$SELECT loyalty.replace_card('club', '4111111111111111', '5555 5555 5555 4444', 'lost')$$,
                'a card is replaced');
SELECT is(loyalty.identify('club', '4111111111111111') ->> 'reason', 'identifier_replaced',
          'the replaced card identifies nobody');
SELECT is(loyalty.identify('club', '5555555555554444') ->> 'customer_id', (SELECT id FROM anna)::text,
          'the new card finds the same customer');
SELECT is(loyalty.identify('club', '4111111111111111') -> 'identifier' ->> 'status', 'replaced',
          'and the answer says the card was replaced');

SELECT * FROM finish();
ROLLBACK;
