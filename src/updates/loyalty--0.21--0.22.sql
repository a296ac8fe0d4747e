-- loyalty 0.21 -> 0.22: a challenge's progress moves by the receipt alone.
-- challenge_receipt keeps one entry per challenge a receipt counted for
-- (what it gave, what it gives now, which lines gave it) instead of one
-- item per challenge and line; challenge_progress keeps the state its goal
-- needs (distinct values and periods with their counts, a quest's latest
-- receipt).  The rows 0.21 wrote are converted, and the state computed
-- from them, by this script.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.22'" to load this file. \quit

ALTER TABLE @extschema@.challenge_progress
    ADD COLUMN keys text[] NOT NULL DEFAULT '{}',
    ADD COLUMN key_counts integer[] NOT NULL DEFAULT '{}',
    ADD COLUMN periods integer[] NOT NULL DEFAULT '{}',
    ADD COLUMN period_counts integer[] NOT NULL DEFAULT '{}',
    ADD COLUMN last_at timestamptz,
    ADD COLUMN last_receipt text;
COMMENT ON COLUMN @extschema@.challenge_progress.keys IS 'distinct: the values counted, in bytewise order';
COMMENT ON COLUMN @extschema@.challenge_progress.key_counts IS 'distinct: per value, the lines of receipts not returned that give it';
COMMENT ON COLUMN @extschema@.challenge_progress.periods IS 'streak: the periods with a receipt, ascending (days since 2000-01-01, or weeks since Monday 2000-01-03)';
COMMENT ON COLUMN @extschema@.challenge_progress.period_counts IS 'streak: per period, the receipts not returned in it';
COMMENT ON COLUMN @extschema@.challenge_progress.last_at IS 'steps: the "at" of the latest receipt counted (receipts are counted in the order of at, then receipt_id)';
COMMENT ON COLUMN @extschema@.challenge_progress.last_receipt IS 'steps: that receipt''s id';

-- The state of each enrolment, from the items of 0.21 (value > 0: not returned)
CREATE TEMPORARY TABLE loyalty_items_0_21 AS
SELECT r.program_id, r.receipt_id, r.customer_id, r.at, r.day, u.challenge_id, u.line_no,
       u.total, u.value, u.key, c.goal, c.streak_unit
  FROM @extschema@.challenge_receipt r
 CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(r.challenge_id), pg_catalog.unnest(r.line_no),
                               pg_catalog.unnest(r.total), pg_catalog.unnest(r.value), pg_catalog.unnest(r.key))
       AS u (challenge_id, line_no, total, value, key)
  LEFT JOIN @extschema@.challenge c ON c.id OPERATOR(pg_catalog.=) u.challenge_id;

UPDATE @extschema@.challenge_progress p
   SET keys = s.keys, key_counts = s.counts
  FROM (SELECT k.customer_id, k.challenge_id,
               pg_catalog.array_agg(k.key ORDER BY k.key COLLATE "C") AS keys,
               pg_catalog.array_agg(k.n ORDER BY k.key COLLATE "C") AS counts
          FROM (SELECT i.customer_id, i.challenge_id, i.key, pg_catalog.count(*)::integer AS n
                  FROM pg_temp.loyalty_items_0_21 i
                 WHERE i.goal OPERATOR(pg_catalog.=) 'distinct' AND i.value OPERATOR(pg_catalog.>) 0
                 GROUP BY 1, 2, 3) k
         GROUP BY 1, 2) s
 WHERE p.customer_id OPERATOR(pg_catalog.=) s.customer_id AND p.challenge_id OPERATOR(pg_catalog.=) s.challenge_id;

UPDATE @extschema@.challenge_progress p
   SET periods = s.periods, period_counts = s.counts
  FROM (SELECT k.customer_id, k.challenge_id,
               pg_catalog.array_agg(k.period ORDER BY k.period) AS periods,
               pg_catalog.array_agg(k.n ORDER BY k.period) AS counts
          FROM (SELECT i.customer_id, i.challenge_id,
                       CASE WHEN i.streak_unit OPERATOR(pg_catalog.=) 'week'
                            THEN pg_catalog.floor(((i.day OPERATOR(pg_catalog.-) DATE '2000-01-01') OPERATOR(pg_catalog.-) 2)::numeric
                                                  OPERATOR(pg_catalog./) 7)::integer
                            ELSE i.day OPERATOR(pg_catalog.-) DATE '2000-01-01' END AS period,
                       pg_catalog.count(DISTINCT i.receipt_id)::integer AS n
                  FROM pg_temp.loyalty_items_0_21 i
                 WHERE i.goal OPERATOR(pg_catalog.=) 'streak' AND i.value OPERATOR(pg_catalog.>) 0
                 GROUP BY 1, 2, 3) k
         GROUP BY 1, 2) s
 WHERE p.customer_id OPERATOR(pg_catalog.=) s.customer_id AND p.challenge_id OPERATOR(pg_catalog.=) s.challenge_id;

UPDATE @extschema@.challenge_progress p
   SET last_at = s.at, last_receipt = s.receipt_id
  FROM (SELECT DISTINCT ON (i.customer_id, i.challenge_id) i.customer_id, i.challenge_id, i.at, i.receipt_id
          FROM pg_temp.loyalty_items_0_21 i
         WHERE i.goal OPERATOR(pg_catalog.=) 'steps'
         ORDER BY i.customer_id, i.challenge_id, i.at DESC, i.receipt_id COLLATE "C" DESC) s
 WHERE p.customer_id OPERATOR(pg_catalog.=) s.customer_id AND p.challenge_id OPERATOR(pg_catalog.=) s.challenge_id;

-- The receipts' rows: one entry per challenge
ALTER TABLE @extschema@.challenge_receipt
    ADD COLUMN lines bytea,
    ADD COLUMN alive bytea,
    ADD COLUMN key_of integer[],
    ADD COLUMN key_line integer[];

CREATE TEMPORARY TABLE loyalty_places_0_21 AS
SELECT i.*, pg_catalog.array_position(t.line_no, i.line_no) OPERATOR(pg_catalog.-) 1 AS pos,
       pg_catalog.cardinality(t.line_no) AS nlines,
       pg_catalog.dense_rank() OVER (PARTITION BY i.program_id, i.receipt_id ORDER BY i.challenge_id) AS entry
  FROM pg_temp.loyalty_items_0_21 i
  JOIN @extschema@.receipt t ON t.program_id OPERATOR(pg_catalog.=) i.program_id
                            AND t.receipt_id OPERATOR(pg_catalog.=) i.receipt_id;

CREATE FUNCTION pg_temp.loyalty_bits(nlines integer, places integer[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    b bytea := pg_catalog.decode(pg_catalog.repeat('00', (nlines OPERATOR(pg_catalog.+) 7) OPERATOR(pg_catalog./) 8), 'hex');
    p integer;
BEGIN
    FOREACH p IN ARRAY places LOOP
        IF p IS NOT NULL AND p OPERATOR(pg_catalog.>=) 0 THEN
            b := pg_catalog.set_bit(b, p, 1);
        END IF;
    END LOOP;
    RETURN b;
END
$$;

UPDATE @extschema@.challenge_receipt r
   SET challenge_id = e.ids, total = e.totals, value = e.vals, lines = e.lines, alive = a.alive,
       key = COALESCE(k.keys, '{}'), key_of = COALESCE(k.key_of, '{}'), key_line = COALESCE(k.key_line, '{}')
  FROM (SELECT x.program_id, x.receipt_id,
               pg_catalog.array_agg(x.challenge_id ORDER BY x.entry) AS ids,
               pg_catalog.array_agg(x.total ORDER BY x.entry) AS totals,
               pg_catalog.array_agg(x.value ORDER BY x.entry) AS vals,
               pg_catalog.string_agg(x.bits, ''::bytea ORDER BY x.entry) AS lines
          FROM (SELECT p.program_id, p.receipt_id, p.entry, p.challenge_id,
                       CASE WHEN p.goal OPERATOR(pg_catalog.=) ANY ('{spend,quantity}'::text[]) THEN pg_catalog.sum(p.total)::bigint
                            WHEN p.goal OPERATOR(pg_catalog.=) ANY ('{distinct,steps}'::text[]) THEN pg_catalog.count(*)
                            ELSE 1 END AS total,
                       CASE WHEN p.goal OPERATOR(pg_catalog.=) ANY ('{spend,quantity}'::text[]) THEN pg_catalog.sum(p.value)::bigint
                            WHEN p.goal OPERATOR(pg_catalog.=) ANY ('{distinct,steps}'::text[])
                            THEN pg_catalog.count(*) FILTER (WHERE p.value OPERATOR(pg_catalog.>) 0)
                            ELSE pg_catalog.max(CASE WHEN p.value OPERATOR(pg_catalog.>) 0 THEN 1 ELSE 0 END) END AS value,
                       pg_temp.loyalty_bits(pg_catalog.max(p.nlines), pg_catalog.array_agg(p.pos)) AS bits
                  FROM pg_temp.loyalty_places_0_21 p
                 GROUP BY p.program_id, p.receipt_id, p.entry, p.challenge_id, p.goal) x
         GROUP BY x.program_id, x.receipt_id) e
  JOIN (SELECT p.program_id, p.receipt_id,
               pg_temp.loyalty_bits(pg_catalog.max(p.nlines),
                                    pg_catalog.array_agg(p.pos) FILTER (WHERE p.value OPERATOR(pg_catalog.>) 0)) AS alive
          FROM pg_temp.loyalty_places_0_21 p
         GROUP BY p.program_id, p.receipt_id) a
    ON a.program_id OPERATOR(pg_catalog.=) e.program_id AND a.receipt_id OPERATOR(pg_catalog.=) e.receipt_id
  LEFT JOIN (SELECT p.program_id, p.receipt_id,
                    pg_catalog.array_agg(p.key ORDER BY p.entry, p.pos, p.key) AS keys,
                    pg_catalog.array_agg(p.entry::integer ORDER BY p.entry, p.pos, p.key) AS key_of,
                    pg_catalog.array_agg(p.pos OPERATOR(pg_catalog.+) 1 ORDER BY p.entry, p.pos, p.key) AS key_line
               FROM pg_temp.loyalty_places_0_21 p
              WHERE p.goal OPERATOR(pg_catalog.=) ANY ('{distinct,steps}'::text[])
              GROUP BY p.program_id, p.receipt_id) k
    ON k.program_id OPERATOR(pg_catalog.=) e.program_id AND k.receipt_id OPERATOR(pg_catalog.=) e.receipt_id
 WHERE r.program_id OPERATOR(pg_catalog.=) e.program_id AND r.receipt_id OPERATOR(pg_catalog.=) e.receipt_id;
-- a row whose receipt is gone, or without items, gives nothing
DELETE FROM @extschema@.challenge_receipt WHERE lines IS NULL;
DROP FUNCTION pg_temp.loyalty_bits(integer, integer[]);
DROP TABLE pg_temp.loyalty_places_0_21, pg_temp.loyalty_items_0_21;

ALTER TABLE @extschema@.challenge_receipt
    DROP COLUMN line_no,
    ALTER COLUMN lines SET NOT NULL,
    ALTER COLUMN alive SET NOT NULL,
    ALTER COLUMN key_of SET NOT NULL,
    ALTER COLUMN key_line SET NOT NULL;
COMMENT ON TABLE @extschema@.challenge_receipt IS 'what a committed receipt gave the challenges its customer was enrolled in: one entry per challenge (challenge_id, total, value and a bitmap in lines, in parallel), and the keys of its distinct and steps entries (key, key_of, key_line, in parallel)';
COMMENT ON COLUMN @extschema@.challenge_receipt.challenge_id IS 'per entry: the challenge (ascending)';
COMMENT ON COLUMN @extschema@.challenge_receipt.total IS 'per entry: what the receipt gave at commit: 1 (receipts, streak), its matching lines'' money after discounts (spend) or quantity in thousandths (quantity), its keys (distinct, steps)';
COMMENT ON COLUMN @extschema@.challenge_receipt.value IS 'per entry: what it gives now, after returns, in the unit of total (0 once nothing is left)';
COMMENT ON COLUMN @extschema@.challenge_receipt.key IS 'per key: the value of distinct_of (distinct) or the step number (steps) a line gave';
COMMENT ON COLUMN @extschema@.challenge_receipt.lines IS 'per entry, ceil(n / 8) bytes for the receipt''s n lines: bit p % 8 of byte p / 8 is set when the line at 0-based place p counted';
COMMENT ON COLUMN @extschema@.challenge_receipt.alive IS 'ceil(n / 8) bytes: the lines not returned whole (bit p as in lines)';
COMMENT ON COLUMN @extschema@.challenge_receipt.key_of IS 'per key: its entry (1-based place in challenge_id)';
COMMENT ON COLUMN @extschema@.challenge_receipt.key_line IS 'per key: its line (1-based place in the receipt''s lines)';
