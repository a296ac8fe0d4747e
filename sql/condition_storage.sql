-- loyalty.condition storage: equality, hashing and grouping; send/recv through
-- binary COPY; the stored bytes are checked (version, reserved bits, bounds)
-- before anything reads them.
CREATE EXTENSION loyalty;
\set VERBOSITY default

\i test/regress/helpers.psql

-- equal when the canonical forms are equal
SELECT 'a=1 AND b in (2,1)'::loyalty.condition OPERATOR(loyalty.=) 'a = 1 and b in (1, 2, 2)' AS same,
       'a = 1 and b = 2'::loyalty.condition OPERATOR(loyalty.=) 'b = 2 and a = 1' AS order_matters,
       'a = 1'::loyalty.condition OPERATOR(loyalty.<>) 'a = 1.0' AS differ;
-- grouping, DISTINCT, hash and merge joins
CREATE TABLE rules (id int, c loyalty.condition);
INSERT INTO rules VALUES (1, 'a = 1'), (2, 'A = 1'), (3, '(a = 1)'), (4, 'a=1.00'), (5, 'b in (2, 1)'),
                         (6, 'b in (1,2)'), (7, NULL);
SELECT c, count(*), min(id) FROM rules GROUP BY c ORDER BY min(id);
SELECT count(DISTINCT c) FROM rules;
SELECT DISTINCT c FROM rules ORDER BY c;
-- the order is that of the stored bytes: arbitrary, but stable and total
SELECT 'a = 1'::loyalty.condition OPERATOR(loyalty.<) 'a = 2' AS lt,
       loyalty.condition_cmp('a = 2', 'a = 1') AS cmp, loyalty.condition_cmp('a=1', 'a = 1') AS same;
SET enable_mergejoin = off;
SET enable_nestloop = off;
SELECT r1.id, r2.id FROM rules r1 JOIN rules r2 ON r1.c OPERATOR(loyalty.=) r2.c AND r1.id < r2.id ORDER BY 1, 2;
RESET enable_mergejoin;
SET enable_hashjoin = off;
SELECT r1.id, r2.id FROM rules r1 JOIN rules r2 ON r1.c OPERATOR(loyalty.=) r2.c AND r1.id < r2.id ORDER BY 1, 2;
RESET enable_hashjoin;
RESET enable_nestloop;
SELECT loyalty.condition_hash('a = 1') = loyalty.condition_hash('a=1.0') AS same_hash,
       loyalty.condition_hash_extended('a = 1', 0) = loyalty.condition_hash_extended('a = 1', 1) AS seeded;

-- send/recv: binary COPY out and back in gives the same conditions
COPY rules TO '/tmp/loyalty_condition_regress.copy' (FORMAT binary);
CREATE TABLE rules_back (LIKE rules);
COPY rules_back FROM '/tmp/loyalty_condition_regress.copy' (FORMAT binary);
SELECT count(*) AS rows, count(*) FILTER (WHERE r.c OPERATOR(loyalty.=) b.c OR (r.c IS NULL AND b.c IS NULL)) AS equal
  FROM rules r JOIN rules_back b USING (id);
-- the binary form is a version byte and the canonical text
SELECT encode(loyalty.condition_send('b in (2,1)'), 'escape') AS sent;
-- recv checks what input checks, and the version byte
CREATE FUNCTION pg_temp.copy_in(payload bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    file bytea := '\x5047434f50590aff0d0a00'::bytea || '\x00000000'::bytea || '\x00000000'::bytea
        || '\x0001'::bytea || int4send(length(payload)) || payload || '\xffff'::bytea;
    lo oid := lo_from_bytea(0, file);
BEGIN
    PERFORM lo_export(lo, '/tmp/loyalty_condition_regress.copy');
    PERFORM lo_unlink(lo);
    DELETE FROM rules_back;
    COPY rules_back (c) FROM '/tmp/loyalty_condition_regress.copy' (FORMAT binary);
    RETURN (SELECT c::text FROM rules_back);
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT pg_temp.copy_in('\x01'::bytea || convert_to('price>5', 'UTF8')) AS good;
SELECT pg_temp.copy_in('\x02'::bytea || convert_to('price>5', 'UTF8')) AS bad_version;
SELECT pg_temp.copy_in('\x01'::bytea || convert_to('price>', 'UTF8')) AS bad_syntax;
SELECT pg_temp.copy_in('\x01'::bytea || convert_to('a between 2 and 1', 'UTF8')) AS bad_value;
SELECT pg_temp.copy_in('\x01'::bytea || '\xff'::bytea) AS bad_encoding;
SELECT pg_temp.copy_in(''::bytea) AS empty;

-- stored bytes that do not read back are refused (XX001) by every reader;
-- a binary-compatible cast stands in for a damaged disk
BEGIN;
CREATE CAST (bytea AS loyalty.condition) WITHOUT FUNCTION;
CREATE CAST (loyalty.condition AS bytea) WITHOUT FUNCTION;
-- a = 1: version 1, flags 0, one attribute, 15 bytes of code, then the table
SELECT 'a = 1'::loyalty.condition::bytea AS good;
-- the code of "a = 1" is CMP(05) EQ(00) attribute 0(0000) number(6e) positive(02)
-- exp 1(01000000) one digit(01000000) '1'(31); the table is line(00) length 1(0100) 'a'(61)
SELECT what, e.state, e.message
  FROM (VALUES
    ('version 2',         '02000100' || '0f000000' || '050000006e02010000000100000031' || '00010061'),
    ('reserved bits',     '01010100' || '0f000000' || '050000006e02010000000100000031' || '00010061'),
    ('code too long',     '01000100' || 'ff000000' || '050000006e02010000000100000031' || '00010061'),
    ('attribute 1 of 1',  '01000100' || '0f000000' || '050001006e02010000000100000031' || '00010061'),
    ('comparison 9',      '01000100' || '0f000000' || '050900006e02010000000100000031' || '00010061'),
    ('unknown node',      '01000100' || '0f000000' || '630000006e02010000000100000031' || '00010061'),
    ('leading zero',      '01000100' || '10000000' || '050000006e0201000000020000003031' || '00010061'),
    ('string too long',   '01000100' || '0f000000' || '0500000073ff000000000100000031' || '00010061'),
    ('code after root',   '01000100' || '10000000' || '050000006e0201000000010000003101' || '00010061'),
    ('in-list unsorted',  '01000100' || '1e000000' || '07000000020000006e02010000000100000032'
                                                   || '6e02010000000100000031' || '00010061'),
    ('and of one',        '01000000' || '06000000' || '020100000001'),
    ('path x//y',         '01000100' || '0c000000' || '08000073040000' || '00782f2f79' || '00010061'),
    ('birthday of a',     '01000100' || '07000000' || '0c070000000000' || '00010061'),
    ('140 levels',        '01000000' || '49030000' || repeat('02020000000302000000', 70) || '01' || repeat('01', 140)),
    ('not not',           '01000000' || '03000000' || '040401'),
    ('and in and',        '01000000' || '0d000000' || '02020000000202000000010101'),
    ('zero byte',         '01000100' || '0a000000' || '05000000730100000000' || '00010061'),
    ('empty name',        '01000100' || '0f000000' || '050000006e02010000000100000031' || '000000'),
    ('unknown scope',     '01000100' || '0f000000' || '050000006e02010000000100000031' || '07010061'),
    ('bytes after table', '01000100' || '0f000000' || '050000006e02010000000100000031' || '0001006162'),
    ('too short',         '0100')
  ) AS t(what, bytes),
  LATERAL pg_temp.err(format('SELECT %L::bytea::loyalty.condition::text', decode(bytes, 'hex'))) AS e;
-- every reader checks: matching, attributes, explain, match_all
SELECT reader, e.state, e.message
  FROM (VALUES
    ('matches',   'SELECT loyalty.matches(%L::bytea::loyalty.condition, ''{}'')'),
    ('attributes', 'SELECT loyalty.condition_attributes(%L::bytea::loyalty.condition)'),
    ('explain',   'SELECT loyalty.condition_explain(%L::bytea::loyalty.condition, ''{}'')'),
    ('match_all', 'SELECT loyalty.match_all(ARRAY[%L::bytea::loyalty.condition], ''[{}]'')'),
    ('send',      'SELECT loyalty.condition_send(%L::bytea::loyalty.condition)')
  ) AS t(reader, query),
  LATERAL pg_temp.err(format(query, decode('01000100' || '0f000000' || '050001006e02010000000100000031'
                                           || '00010061', 'hex'))) AS e;
ROLLBACK;

DROP TABLE rules, rules_back;
DROP EXTENSION loyalty;
