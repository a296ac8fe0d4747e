-- matches(), its operator, condition_attributes and condition_explain: each
-- operator on present, missing, null and mistyped values; numbers compared
-- exactly; Unicode; receipt and customer attributes, given and derived.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

-- each operator against one line
SELECT c, loyalty.matches(c::loyalty.condition,
    '{"sku": "A-1", "category": "ski/alpine/men", "brand": "Atomic", "price": 1200.50,
      "qty": 2, "size": "42", "sale": true, "tags": ["new", "winter", 7],
      "name": "Redster 50% off", "colour": null,
      "attributes": {"sport": "ski", "brand": "hidden"}}') AS matches
  FROM (VALUES
    ('brand = ''Atomic'''), ('brand = ''atomic'''), ('brand <> ''Head'''), ('brand < ''B'''),
    ('brand >= ''Atomic'''), ('price = 1200.5'), ('price = 1200.50000'), ('price > 1200.49'),
    ('price <= 1200.5'), ('price < 1200.5'), ('price between 1000 and 1200.5'),
    ('price between 1200.51 and 2000'), ('qty in (1, 2, 3)'), ('qty not in (1, 3)'),
    ('sku in (''A-1'', ''B-2'')'), ('category <@ ''ski'''), ('category <@ ''ski/alpine'''),
    ('category <@ ''ski/alpine/men'''), ('category <@ ''sk'''), ('category <@ ''ski/alp'''),
    ('tags ? ''new'''), ('tags ? ''old'''), ('tags ? ''7'''), ('name like ''Redster%'''),
    ('name like ''Redster 50\% off'''), ('name like ''Redster'''), ('name not like ''Head%'''),
    ('colour is null'), ('colour is not null'), ('nothing is null'), ('sku is not null'),
    ('sport = ''ski'''), ('brand <> ''hidden'''), ('sale = ''true'''), ('size = 42'),
    ('size > 9'), ('size > ''9'''), ('true'), ('not true')
  ) AS t(c);

-- a comparison with a missing value, a null or a value of the wrong kind is false;
-- so are <>, not in and not like; "is null" is what finds them
SELECT c, loyalty.matches(c::loyalty.condition, '{"colour": null, "tags": {"a": 1}, "nested": [["x"], {"x": 1}], "word": "abc"}') AS matches
  FROM (VALUES
    ('colour = ''red'''), ('colour <> ''red'''), ('colour not in (''red'')'),
    ('colour not like ''r%'''), ('not colour = ''red'''), ('missing < 5'), ('missing is null'),
    ('tags = ''a'''), ('tags ? ''a'''), ('tags is null'), ('nested ? ''x'''), ('word > 5'), ('word <> 5'),
    ('word = ''abc'' and missing = 1'), ('word = ''abc'' or missing = 1'),
    ('word not in (1, 2)'), ('word not in (1, ''x'')'), ('nested not in (''x'')')
  ) AS t(c);

-- numbers are exact: no floating point anywhere
SELECT c, loyalty.matches(c::loyalty.condition, line::jsonb) AS matches
  FROM (VALUES
    ('v = 0.3', '{"v": 0.30000000000000004}'),
    ('v > 0.3', '{"v": 0.30000000000000004}'),
    ('v > 12345678901234567890', '{"v": 12345678901234567890.000000000000000001}'),
    ('v = 12345678901234567890', '{"v": 12345678901234567890.000000000000000000}'),
    ('v < -0.0001', '{"v": -0.001}'),
    ('v = 0', '{"v": -0.0}'),
    ('v = 100', '{"v": "100.00"}'),
    ('v = 100', '{"v": "1e2"}'),
    ('v = ''100''', '{"v": 100.0}'),
    ('v = ''100.0''', '{"v": 100.0}'),
    ('v in (1, 2.5, 1000000)', '{"v": 2.50}')
  ) AS t(c, line);

-- Unicode values and names
SELECT c, loyalty.matches(c::loyalty.condition,
    '{"бренд": "Пума", "category": "спорт/лыжи/горные", "name": "Ёлка 🎄"}') AS matches
  FROM (VALUES
    ('бренд = ''Пума'''), ('"бренд" in (''Адидас'', ''Пума'')'), ('category <@ ''спорт/лыжи'''),
    ('name like ''Ёлка%'''), ('name = ''Ёлка 🎄'''), ('name like ''Ел%''')
  ) AS t(c);

-- receipt and customer attributes: given in the documents, or derived from
-- the receipt's "at" (its local time as written) and the customer's birthday
SELECT c, loyalty.matches(c::loyalty.condition, '{}',
    '{"at": "2026-11-28T12:30:00+03:00", "channel": "app", "city": "Moscow",
      "lines": [{}, {}, {}], "total": 5000}',
    '{"tier": "gold", "segments": ["vip", "ski"], "birthday": "1990-11-30",
      "attributes": {"city": "Kazan"}}') AS matches
  FROM (VALUES
    ('receipt.channel = ''app'''), ('receipt.city = ''Moscow'''), ('receipt.total >= 5000'),
    ('receipt.line_count = 3'), ('receipt.date = ''2026-11-28'''), ('receipt.weekday = ''sat'''),
    ('receipt.weekday in (''sat'', ''sun'')'), ('receipt.hour = 12'),
    ('receipt.hour between 10 and 14'), ('receipt.store is null'), ('customer.tier = ''gold'''),
    ('customer.segments ? ''vip'''), ('customer.city = ''Kazan'''), ('customer.age = 35'),
    ('customer.birthday_within(2)'), ('customer.birthday_within(1)'), ('city is null')
  ) AS t(c);

-- a given date is what weekday and age read; a date that is not a day is no date
SELECT loyalty.matches('receipt.weekday = ''sat'' and customer.age = 36', '{}',
                       '{"date": "2026-11-28", "at": "2026-11-27T10:00"}', '{"birthday": "1990-11-28"}') AS given_date,
       loyalty.matches('receipt.date is null and receipt.weekday is null', '{}', '{"at": "2026-02-31T10:00"}') AS no_such_day,
       loyalty.matches('receipt.weekday is null and customer.age is null', '{}',
                       '{"date": "2026-11-28T10:00"}', '{"birthday": "1990-11-28"}') AS date_with_time;

-- given values win over derived ones
SELECT loyalty.matches('receipt.weekday = ''mon'' and receipt.hour = 9 and receipt.line_count = 7',
                       '{}', '{"at": "2026-11-28T12:30:00", "weekday": "mon", "hour": 9, "line_count": 7}');

-- only what reads from "at" is derived: a bad hour leaves the date and weekday
SELECT loyalty.matches('receipt.hour is null and receipt.weekday = ''sat''', '{}', '{"at": "2026-11-28T29:00"}') AS bad_hour,
       loyalty.matches('receipt.date is null and receipt.hour is null', '{}', '{"at": "28.11.2026 10:00"}') AS bad_date,
       loyalty.matches('receipt.hour = 0 and receipt.weekday = ''mon''', '{}', '{"at": "2026-11-30 00:59"}') AS midnight;

-- birthday windows across the new year and for 29 February
SELECT birthday, at, loyalty.matches('customer.birthday_within(3)', '{}',
                                     jsonb_build_object('at', at), jsonb_build_object('birthday', birthday))
  FROM (VALUES ('1990-12-30', '2027-01-02'), ('1990-12-30', '2027-01-03'), ('1992-02-29', '2027-03-02'),
               ('1992-02-29', '2027-03-04'), ('1992-02-29', '2028-02-29'), ('03-01', '2026-02-27'),
               ('1990-11-30', 'bad'), ('not a date', '2026-11-28'), ('1990-02-30', '2026-02-28'))
       AS t(birthday, at);

-- the operator, and NULL in, NULL out (strict)
SELECT 'price > 10'::loyalty.condition OPERATOR(loyalty.@@) '{"price": 11}'::jsonb AS op;
SELECT loyalty.matches(NULL, '{}') IS NULL AS null_condition,
       loyalty.matches('true', NULL) IS NULL AS null_line,
       loyalty.matches('true', '{}', NULL) IS NULL AS null_receipt;
-- a line that is not an object has no attributes
SELECT loyalty.matches('a is null', '[1, 2]') AS array_line, loyalty.matches('a is null', '5') AS scalar_line;

-- what a condition reads, sorted, as written
SELECT loyalty.condition_attributes(
    'customer.birthday_within(7) and "in" = 1 and receipt.city = ''x'' and customer.tier = ''g'' and brand = ''b'' and brand <> ''c''');
SELECT loyalty.condition_attributes('true');

-- why a rule did or did not apply: every clause, the value it read, its result
SELECT * FROM loyalty.condition_explain(
    'category <@ ''ski'' and (price >= 1000 or brand = ''X'') and not tags ? ''sale''',
    '{"category": "ski/alpine", "price": 900, "attributes": {"brand": "X", "tags": ["new"]}}');
SELECT * FROM loyalty.condition_explain(
    'customer.tier in (''gold'', ''silver'') and receipt.weekday = ''sun'' and customer.birthday_within(7)',
    '{}', '{"at": "2026-11-28 10:00"}', '{"tier": "blue", "birthday": "1990-12-01"}');
SELECT * FROM loyalty.condition_explain('colour is null or missing = 1', '{"colour": null}');

DROP EXTENSION loyalty;
