-- loyalty.condition text: every operator, precedence, canonical output and
-- round trips; every syntax error (22P02) and bad value (22023) with its message.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql
-- The canonical text of a condition, checked to be a fixed point: it reads
-- back to the same text and to the same stored bytes.
CREATE FUNCTION pg_temp.canon(src text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    c loyalty.condition := src::loyalty.condition;
    out text := c::text;
BEGIN
    IF out::loyalty.condition::text IS DISTINCT FROM out
       OR NOT (out::loyalty.condition OPERATOR(loyalty.=) c) THEN
        RETURN 'NOT A FIXED POINT: ' || out;
    END IF;
    RETURN out;
END
$$;

-- every operator
SELECT src, pg_temp.canon(src) AS canonical FROM (VALUES
    ('price = 1000'), ('price <> 5'), ('price != 5'), ('price < 5'), ('price <= 5'),
    ('price > 5'), ('price >= 5'), ('price between 10 and 20'), ('size between ''L'' and ''S'''),
    ('size in (''S'', ''M'')'), ('size not in (''S'')'), ('category <@ ''ski/alpine'''),
    ('tags ? ''clearance'''), ('name like ''Nike%'''), ('name not like ''Nike Air'''),
    ('name like ''50\%\_off\\%'''), ('name like ''%'''), ('colour is null'), ('colour IS NOT NULL'),
    ('true'), ('customer.birthday_within(7)'), ('customer.birthday_within( 0 )')
) AS t(src);

-- keywords in any case; spacing normalised; parentheses only where needed
SELECT src, pg_temp.canon(src) AS canonical FROM (VALUES
    ('PRICE >= 5 AND Brand IN (''a'') Or NOT x = 1'),
    (E'\n price\t>=\n1000 '),
    ('a = 1 or b = 2 and c = 3'),
    ('(a = 1 or b = 2) and c = 3'),
    ('not a = 1 and b = 2'),
    ('not (a = 1 and b = 2)'),
    ('not (a = 1) or not (b = 2 or c = 3)'),
    ('((((a = 1))))'),
    ('not not a = 1'),
    ('not not not a = 1'),
    ('a = 1 and (b = 2 and (c = 3 and d = 4))'),
    ('(a = 1 or b = 2) or (c = 3 or (d = 4))'),
    ('((a = 1 and (b = 2 and c = 3)) or (d = 4 or e = 5)) and not not f = 1'),
    ('true and (true or a = 1)')
) AS t(src);

-- numbers are exact decimals, printed without redundant zeros
SELECT src, pg_temp.canon(src) AS canonical FROM (VALUES
    ('price = 0010.500'), ('price > -0.0'), ('price < -12.340'), ('price = 0.000001'),
    ('price = 100000000000000000000'),
    ('price = 123456789012345678901234567890.123456789012345678901234567890')
) AS t(src);

-- strings, names, scopes; in-lists sorted (numbers first), duplicates dropped
SELECT src, pg_temp.canon(src) AS canonical FROM (VALUES
    ('brand = ''O''''Neill'''), ('"цвет" = ''красный'''), ('цвет = ''синий'''),
    ('"my attr" = 1'), ('"in" = 1'), ('"2x" = 1'), ('"say ""hi""" = 1'), ('receipt."store" = ''S1'''),
    ('receipt = 1'), ('receipt.channel = ''app'''), ('Customer.tier in (''gold'', ''silver'')'),
    ('customer."not" is null'),
    ('a in (3, ''b'', 1, ''a'', 2.0, 2, ''b'', 1.00)'),
    ('receipt.weekday in (''sun'', ''sat'') and receipt.hour between 10 and 14 and receipt.date >= ''2026-01-01'''),
    ('category <@ ''спорт/лыжи'' and brand like ''Ат%''')
) AS t(src);

-- the examples of the documentation
SELECT pg_temp.canon(src) AS canonical FROM (VALUES
    ('category <@ ''ski/alpine'' and brand in (''Atomic'', ''Columbia'') and price >= 1000'),
    ('sport = ''running'' and not (tags ? ''clearance'')'),
    ('size in (''S'', ''M'') or colour = ''red'''),
    ('customer.tier in (''silver'', ''gold'') and receipt.channel = ''app'' and receipt.city = ''Moscow'''),
    ('customer.birthday_within(7) and receipt.weekday in (''sat'', ''sun'') and receipt.hour between 10 and 14')
) AS t(src);

-- syntax errors: 22P02, with the position and what was expected
SELECT src, e.state, e.message
  FROM (VALUES
    (''), ('   '), ('price'), ('price ='), ('brand in ('), ('brand in ()'), ('brand in (1'),
    ('brand in (1 2)'), ('brand not in 1'), ('a = 1 and'), ('a = 1 or or b = 2'), ('(a = 1'),
    ('a = 1)'), ('a = ''unterminated'), ('"unterminated = 1'), ('"" = 1'), ('a = 1.'),
    ('a = 1.5.5'), ('a = 12abc'), ('a = 1e5'), ('a = .5'), ('a # 1'), ('a ! 1'), ('foo.bar = 1'),
    ('receipt. = 1'), ('receipt.and = 1'), ('a between 1'), ('a between 1 or 2'),
    ('a not between 1 and 2'), ('a is 1'), ('a is not 5'), ('a like 5'), ('a <@ 5'), ('a ? 1'),
    ('customer.unknown(1)'), ('f(1)'), ('customer.birthday_within()'),
    ('customer.birthday_within(''7'')'), ('customer.birthday_within(7'), ('and = 1'), ('not'),
    ('a = 1 b = 2'), ('= 1'), ('true = 1'), ('a = b'), ('a = 1 and ()'), ('a in (1,)'),
    ('цвет = ''синий'' and размер'), ('a = 1é')
  ) AS t(src),
  LATERAL pg_temp.err(format('SELECT %L::loyalty.condition', src)) AS e;

-- values that cannot be right: 22023
SELECT src, e.state, e.message, e.detail
  FROM (VALUES
    ('a between 5 and 1'), ('a between ''z'' and ''a'''), ('a between 1 and ''x'''),
    ('category <@ '''''), ('category <@ ''ski/'''), ('category <@ ''/ski'''),
    ('category <@ ''ski//alpine'''), ('name like ''%abc'''), ('name like ''a_c'''),
    ('name like ''abc\'''), ('receipt.weekday = ''saturday'''), ('receipt.weekday < ''mon'''),
    ('receipt.weekday in (''mon'', 1)'), ('receipt.hour = 24'), ('receipt.hour between 10 and 25'),
    ('receipt.hour = 1.5'), ('receipt.hour = -1'), ('receipt.hour = ''10'''),
    ('receipt.date = ''2026-02-30'''), ('receipt.date = ''2025-02-29'''), ('receipt.date = ''yesterday'''),
    ('customer.birthday_within(367)'), ('customer.birthday_within(1.5)'),
    ('customer.birthday_within(-1)')
  ) AS t(src),
  LATERAL pg_temp.err(format('SELECT %L::loyalty.condition', src)) AS e;

-- the text of the function the type is read by, in one statement
SELECT loyalty.condition_in('a = 1') OPERATOR(loyalty.=) 'a = 1'::loyalty.condition AS same;
SELECT 'a = 1'::loyalty.condition OPERATOR(loyalty.<>) 'a = 2'::loyalty.condition AS differ;

DROP EXTENSION loyalty;
