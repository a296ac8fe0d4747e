-- Normalisation of phone numbers, card numbers and e-mail addresses.
CREATE EXTENSION loyalty;

-- Errors are shown as SQLSTATE, message, detail and hint.
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

-- Phones: many ways to write the same Russian number give one E.164 form.
SELECT input, loyalty.normalize_phone(input, 'RU') AS e164
  FROM unnest(ARRAY[
    '8 (916) 123-45-67', '+7 916 123 45 67', '79161234567', '89161234567',
    '9161234567', '+7(916)123-45-67', '8-916-123-45-67', '8 916 123.45.67',
    '007 916 1234567', '810 7 916 123 45 67', '  +79161234567  ', '+7 (916) 123 45 67'
  ]) AS input;

-- Other countries, read at home and from abroad.
SELECT country, input, loyalty.normalize_phone(input, country) AS e164
  FROM (VALUES
    ('KZ', '8 701 234 56 78'), ('KZ', '+7 701 234 5678'),
    ('BY', '8 029 123-45-67'), ('BY', '+375 29 123 45 67'),
    ('UA', '050 123 4567'), ('US', '(212) 555-1234'), ('US', '1-212-555-1234'),
    ('US', '011 44 20 7946 0958'), ('CA', '416 555 0199'),
    ('GB', '020 7946 0958'), ('GB', '07911 123456'), ('GB', '+44 (0)20 7946 0958'),
    ('DE', '030 1234567'), ('DE', '+49 30 1234567'), ('FR', '01 23 45 67 89'),
    ('IT', '06 1234 5678'), ('IT', '+39 06 1234 5678'), ('ES', '912 345 678'),
    ('TR', '0532 123 45 67'), ('IN', '098765 43210'), ('AU', '0412 345 678'),
    ('RU', '+44 20 7946 0958'), ('RU', '+1 212 555 1234'), ('RU', '+358 40 1234567')
  ) AS t(country, input);

-- Without a home country only international numbers are understood.
SELECT loyalty.normalize_phone('+7 916 123-45-67');
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('8 916 123-45-67')$$);

-- Country codes are case-insensitive; unknown ones are refused.
SELECT loyalty.normalize_phone('8 916 123 45 67', 'ru');
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('8 916 123 45 67', 'XX')$$);
SELECT loyalty.phone_country_valid('RU'), loyalty.phone_country_valid('XX');
SELECT country, calling_code, trunk_prefix, international_prefixes, min_digits, max_digits
  FROM loyalty.phone_countries() WHERE country IN ('RU', 'GB', 'US') ORDER BY country;

-- Bad phones.
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('+7 916 123 45', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('8 916 123 45 67 8', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('916-CALL-NOW', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('+7 916 +123', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone(' - ( ) ', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('+0 123 456 789', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('+999 1234', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('+999 1234 5678 9012 3', 'RU')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_phone('телефон 8916', 'RU')$$);
SELECT * FROM pg_temp.err(format('SELECT loyalty.normalize_phone(%L, %L)', repeat('9', 65), 'RU'));
SELECT * FROM pg_temp.err(format('SELECT loyalty.normalize_phone(%L, %L)', repeat('9', 10000), 'RU'));
SELECT loyalty.normalize_phone(NULL, 'RU') IS NULL AS null_phone_gives_null;

-- Cards: digits kept (leading zeros too), spaces and hyphens dropped.
SELECT loyalty.normalize_card('4111 1111 1111 1111', 16, 16, true);
SELECT loyalty.normalize_card('0012-3456', 8, 8, false);
SELECT loyalty.normalize_card('79927398713', 11, 11, true);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('4111 1111 1111 1112', 16, 16, true)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('79927398710', 8, 19, true)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('1234567', 8, 19, false)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('1234 5678 9012', 12, 12, false)$$) AS ok_when_exact;
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('1234 5678 9012', 16, 16, false)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('4111x1111', 8, 19, false)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('', 8, 19, false)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('12345678', 0, 19, false)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('12345678', 9, 8, false)$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_card('12345678', 8, 33, false)$$);
SELECT * FROM pg_temp.err(format('SELECT loyalty.normalize_card(%L)', repeat('1', 100)));
SELECT loyalty.normalize_card(NULL) IS NULL AS null_card_gives_null;

-- E-mail: trimmed and lower-cased.
SELECT loyalty.normalize_email('  Anna.Petrova+shop@Example.COM ');
SELECT loyalty.normalize_email('o''brien@mail.example.co.uk');
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('anna.example.com')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('anna@@example.com')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('anna@localhost')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('.anna@example.com')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('anna@-example.com')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('anna@example..com')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('an na@example.com')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('анна@пример.рф')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('   ')$$);
SELECT * FROM pg_temp.err($$SELECT loyalty.normalize_email('anna@')$$);
SELECT * FROM pg_temp.err(format('SELECT loyalty.normalize_email(%L)', repeat('a', 250) || '@example.com'));

DROP EXTENSION loyalty;
