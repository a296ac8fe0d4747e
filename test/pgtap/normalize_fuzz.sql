-- Property tests of the identifier normalisers over random input: every input
-- gives either a well-formed result or an input error (22023, 22P02) — never
-- an internal error or a crash — and normalising a result again changes
-- nothing.  The seed is printed; LOYALTY_TEST_SEED repeats a run.
BEGIN;
SELECT plan(8);

\ir seed.psql

-- Random strings over an alphabet that reaches every branch of the parsers:
-- digits, separators, "+", "@", dots, letters, hyphens, multibyte letters.
CREATE TEMP TABLE fuzz AS
SELECT n, string_agg(substr(alphabet, 1 + (random() * (length(alphabet) - 1))::int, 1), '') AS input
  FROM (SELECT n, (random() * random() * 80)::int AS len,
               '0123456789012345678901234567890123456789 +-()./@@..abcXYZ_é日' AS alphabet
          FROM generate_series(1, 4000) n) s,
       LATERAL generate_series(0, len) i
 GROUP BY n;
-- and mutations of valid identifiers, which go deeper than random text
INSERT INTO fuzz
SELECT 10000 + n,
       overlay(v placing substr('0123456789 +-()@.x', 1 + (random() * 17)::int, (random() * 2)::int)
               from 1 + (random() * length(v))::int for (random() * 2)::int)
  FROM (SELECT n, (ARRAY['+7 916 123-45-67', '8 (916) 123 45 67', '+44 (0)20 7946 0958',
                        '4111 1111 1111 1111', 'anna.petrova@example.com', '011 44 20 7946 0958',
                        '810 7 916 1234567', 'a@b.co'])[1 + (n % 8)] AS v
          FROM generate_series(1, 4000) n) m;

-- Apply a normaliser to every input, keeping the result or the SQLSTATE.
CREATE FUNCTION pg_temp.apply(fn text, arg2 text)
RETURNS TABLE (input text, result text, state text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT f.input FROM fuzz f ORDER BY f.n LOOP
        input := r.input;
        BEGIN
            EXECUTE format('SELECT %s($1%s)', fn, arg2) INTO result USING r.input;
            state := '00000';
        EXCEPTION WHEN OTHERS THEN
            result := NULL;
            state := SQLSTATE;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE TEMP TABLE phone AS SELECT * FROM pg_temp.apply('loyalty.normalize_phone', ', ''RU''');
CREATE TEMP TABLE card AS SELECT * FROM pg_temp.apply('loyalty.normalize_card', ', 8, 19, true');
CREATE TEMP TABLE email AS SELECT * FROM pg_temp.apply('loyalty.normalize_email', '');

SELECT is_empty($$
    SELECT 'phone', input, state FROM phone WHERE state NOT IN ('00000', '22023', '22P02')
    UNION ALL SELECT 'card', input, state FROM card WHERE state NOT IN ('00000', '22023', '22P02')
    UNION ALL SELECT 'email', input, state FROM email WHERE state NOT IN ('00000', '22023', '22P02')$$,
    'every input gives a result or an input error');
SELECT is_empty($$SELECT input, result FROM phone WHERE state = '00000' AND result !~ '^\+[1-9][0-9]{7,14}$'$$,
                'every phone result is E.164');
SELECT is_empty($$SELECT input, result FROM card WHERE state = '00000' AND result !~ '^[0-9]{8,19}$'$$,
                'every card result is 8 to 19 digits');
SELECT is_empty($$SELECT input, result FROM email
                   WHERE state = '00000' AND (result !~ '^[^@\s]+@[a-z0-9-]+(\.[a-z0-9-]+)+$' OR result <> lower(result))$$,
                'every e-mail result is one lower-case address');
SELECT is_empty($$SELECT input, result FROM phone WHERE state = '00000'
                   AND loyalty.normalize_phone(result, 'RU') IS DISTINCT FROM result$$,
                'a normalised phone normalises to itself');
SELECT is_empty($$SELECT input, result FROM card WHERE state = '00000'
                   AND loyalty.normalize_card(result, 8, 19, true) IS DISTINCT FROM result$$,
                'a normalised card normalises to itself');
SELECT is_empty($$SELECT input, result FROM email WHERE state = '00000'
                   AND loyalty.normalize_email(result) IS DISTINCT FROM result$$,
                'a normalised e-mail normalises to itself');
-- The fuzz must reach both outcomes, or it tests nothing.
SELECT ok((SELECT count(*) FILTER (WHERE state = '00000') > 100 AND count(*) FILTER (WHERE state <> '00000') > 100
             FROM (SELECT state FROM phone UNION ALL SELECT state FROM card UNION ALL SELECT state FROM email) a),
          'the random inputs include many accepted and many refused identifiers');

SELECT * FROM finish();
ROLLBACK;
