-- loyalty 0.21 -> 0.22: a challenge's progress moves by the receipt alone.
-- A customer's enrolments become one row of challenge_state (arrays in
-- parallel, with the state each goal needs: distinct values and streak
-- periods with their counts, a quest's latest receipt), read a row per
-- enrolment through the view challenge_progress; challenge_receipt keeps
-- one entry per challenge a receipt counted for (what it gave, what it
-- gives now, which lines gave it) instead of one item per challenge and
-- line.  Both are built here from what 0.21 kept.  And referrals
-- (src/referral.sql): a customer's code given at enrolment (enroll takes
-- referral_code), both rewarded by the job settle_referrals, and the event
-- referral_rewarded.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.22'" to load this file. \quit

-- Events' payloads (a receipt's challenge_progress lists every challenge it
-- moved): lz4, as the receipts' answers, compresses them in a fraction of
-- pglz's time; rows written before keep pglz.
ALTER TABLE @extschema@.event ALTER COLUMN payload SET COMPRESSION lz4;

-- 0.21's items (value > 0: not returned), with their challenges' goals
CREATE TEMPORARY TABLE loyalty_items_0_21 AS
SELECT r.program_id, r.receipt_id, r.customer_id, r.at, r.day, u.challenge_id, u.line_no,
       u.total, u.value, u.key, c.goal, c.streak_unit
  FROM @extschema@.challenge_receipt r
 CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(r.challenge_id), pg_catalog.unnest(r.line_no),
                               pg_catalog.unnest(r.total), pg_catalog.unnest(r.value), pg_catalog.unnest(r.key))
       AS u (challenge_id, line_no, total, value, key)
  LEFT JOIN @extschema@.challenge c ON c.id OPERATOR(pg_catalog.=) u.challenge_id;

-- The enrolments: 0.21's table out of the way, the row per customer in its place
ALTER TABLE @extschema@.challenge_progress RENAME TO challenge_progress_0_21;
ALTER TABLE @extschema@.challenge_progress_0_21 RENAME CONSTRAINT challenge_progress_pkey TO challenge_progress_0_21_pkey;
ALTER INDEX @extschema@.challenge_progress_customer_idx RENAME TO challenge_progress_0_21_customer_idx;

-- A customer's enrolments, one row per customer: element i of each
-- per-challenge array is their enrolment in challenge_id[i]; the values a
-- distinct goal counted and the periods of a streak are lists of their
-- own, each element naming its challenge (key_challenge, period_challenge).
-- Commit reads and writes the one row (src/campaigns.c); the view
-- challenge_progress shows a row per enrolment.
CREATE TABLE @extschema@.challenge_state (
    customer_id       bigint PRIMARY KEY,
    program_id        bigint NOT NULL,
    challenge_id      bigint[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    enrolled_at       timestamptz[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    window_end        timestamptz[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    progress          bigint[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    completions       integer[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    completed_at      timestamptz[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    completed_receipt text[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    reward_lot_id     bigint[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    reward_coupon     text[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    last_at           timestamptz[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    last_receipt      text[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    key_challenge     bigint[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    keys              text[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    key_counts        integer[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    period_challenge  bigint[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    periods           integer[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    period_counts     integer[] COMPRESSION lz4 NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id),
    CONSTRAINT challenge_state_lengths_check CHECK (
        pg_catalog.cardinality(enrolled_at) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(window_end) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(progress) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(completions) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(completed_at) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(completed_receipt) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(reward_lot_id) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(reward_coupon) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(last_at) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(last_receipt) OPERATOR(pg_catalog.=) pg_catalog.cardinality(challenge_id)
        AND pg_catalog.cardinality(keys) OPERATOR(pg_catalog.=) pg_catalog.cardinality(key_challenge)
        AND pg_catalog.cardinality(key_counts) OPERATOR(pg_catalog.=) pg_catalog.cardinality(key_challenge)
        AND pg_catalog.cardinality(periods) OPERATOR(pg_catalog.=) pg_catalog.cardinality(period_challenge)
        AND pg_catalog.cardinality(period_counts) OPERATOR(pg_catalog.=) pg_catalog.cardinality(period_challenge))
);
COMMENT ON TABLE @extschema@.challenge_state IS 'a customer''s enrolments in challenges, one row per customer (the arrays in parallel; read them as loyalty.challenge_progress)';
COMMENT ON COLUMN @extschema@.challenge_state.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.challenge_state.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.challenge_state.challenge_id IS 'per enrolment: the challenge (ascending, as commit writes them)';
COMMENT ON COLUMN @extschema@.challenge_state.enrolled_at IS 'per enrolment: opt-in, when enrol_challenge enrolled them; automatic, the "at" of the first receipt that counted';
COMMENT ON COLUMN @extschema@.challenge_state.window_end IS 'per enrolment: until when (exclusive) receipts count: enrolled_at + duration, or the challenge''s ends_at; NULL: open-ended';
COMMENT ON COLUMN @extschema@.challenge_state.progress IS 'per enrolment: in the goal''s unit: receipts, minor units of money (spend), thousandths of a unit (quantity), distinct values, periods in a row, steps';
COMMENT ON COLUMN @extschema@.challenge_state.completions IS 'per enrolment: how many times it was completed (a reward taken back by a return makes it active again)';
COMMENT ON COLUMN @extschema@.challenge_state.completed_at IS 'per enrolment: when it was completed (the transaction''s time); NULL while active';
COMMENT ON COLUMN @extschema@.challenge_state.completed_receipt IS 'per enrolment: the receipt that completed it';
COMMENT ON COLUMN @extschema@.challenge_state.reward_lot_id IS 'per enrolment: the reward lot of the last completion';
COMMENT ON COLUMN @extschema@.challenge_state.reward_coupon IS 'per enrolment: the code of the reward coupon of the last completion';
COMMENT ON COLUMN @extschema@.challenge_state.last_at IS 'per enrolment, steps: the "at" of the latest receipt counted (receipts are counted in the order of at, then receipt_id)';
COMMENT ON COLUMN @extschema@.challenge_state.last_receipt IS 'per enrolment, steps: that receipt''s id';
COMMENT ON COLUMN @extschema@.challenge_state.key_challenge IS 'per value counted by a distinct goal: its challenge';
COMMENT ON COLUMN @extschema@.challenge_state.keys IS 'per value: the value (in bytewise order within its challenge)';
COMMENT ON COLUMN @extschema@.challenge_state.key_counts IS 'per value: the lines of receipts not returned that give it';
COMMENT ON COLUMN @extschema@.challenge_state.period_challenge IS 'per period of a streak with a receipt: its challenge';
COMMENT ON COLUMN @extschema@.challenge_state.periods IS 'per period: days since 2000-01-01, or weeks since Monday 2000-01-03 (ascending within its challenge)';
COMMENT ON COLUMN @extschema@.challenge_state.period_counts IS 'per period: the receipts not returned in it';
COMMENT ON COLUMN @extschema@.challenge_state.updated_at IS 'its last change';
ALTER TABLE @extschema@.challenge_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.challenge_state USING (@extschema@.program_open(program_id));

CREATE TEMPORARY TABLE loyalty_keys_0_21 AS
SELECT i.customer_id, i.challenge_id, i.key, pg_catalog.count(*)::integer AS n
  FROM pg_temp.loyalty_items_0_21 i
 WHERE i.goal OPERATOR(pg_catalog.=) 'distinct' AND i.value OPERATOR(pg_catalog.>) 0
 GROUP BY 1, 2, 3;
CREATE TEMPORARY TABLE loyalty_periods_0_21 AS
SELECT i.customer_id, i.challenge_id,
       CASE WHEN i.streak_unit OPERATOR(pg_catalog.=) 'week'
            THEN pg_catalog.floor(((i.day OPERATOR(pg_catalog.-) DATE '2000-01-01') OPERATOR(pg_catalog.-) 2)::numeric
                                  OPERATOR(pg_catalog./) 7)::integer
            ELSE i.day OPERATOR(pg_catalog.-) DATE '2000-01-01' END AS period,
       pg_catalog.count(DISTINCT i.receipt_id)::integer AS n
  FROM pg_temp.loyalty_items_0_21 i
 WHERE i.goal OPERATOR(pg_catalog.=) 'streak' AND i.value OPERATOR(pg_catalog.>) 0
 GROUP BY 1, 2, 3;

INSERT INTO @extschema@.challenge_state (customer_id, program_id, challenge_id, enrolled_at, window_end,
                                         progress, completions, completed_at, completed_receipt,
                                         reward_lot_id, reward_coupon, last_at, last_receipt,
                                         key_challenge, keys, key_counts, period_challenge, periods, period_counts)
SELECT p.customer_id, pg_catalog.min(p.program_id),
       pg_catalog.array_agg(p.challenge_id ORDER BY p.challenge_id),
       pg_catalog.array_agg(p.enrolled_at ORDER BY p.challenge_id),
       pg_catalog.array_agg(p.window_end ORDER BY p.challenge_id),
       pg_catalog.array_agg(p.progress ORDER BY p.challenge_id),
       pg_catalog.array_agg(p.completions ORDER BY p.challenge_id),
       pg_catalog.array_agg(p.completed_at ORDER BY p.challenge_id),
       pg_catalog.array_agg(p.completed_receipt ORDER BY p.challenge_id),
       pg_catalog.array_agg(p.reward_lot_id ORDER BY p.challenge_id),
       pg_catalog.array_agg(p.reward_coupon ORDER BY p.challenge_id),
       pg_catalog.array_agg(l.at ORDER BY p.challenge_id),
       pg_catalog.array_agg(l.receipt_id ORDER BY p.challenge_id),
       COALESCE((SELECT pg_catalog.array_agg(k.challenge_id ORDER BY k.challenge_id, k.key COLLATE "C")
                   FROM pg_temp.loyalty_keys_0_21 k WHERE k.customer_id OPERATOR(pg_catalog.=) p.customer_id), '{}'),
       COALESCE((SELECT pg_catalog.array_agg(k.key ORDER BY k.challenge_id, k.key COLLATE "C")
                   FROM pg_temp.loyalty_keys_0_21 k WHERE k.customer_id OPERATOR(pg_catalog.=) p.customer_id), '{}'),
       COALESCE((SELECT pg_catalog.array_agg(k.n ORDER BY k.challenge_id, k.key COLLATE "C")
                   FROM pg_temp.loyalty_keys_0_21 k WHERE k.customer_id OPERATOR(pg_catalog.=) p.customer_id), '{}'),
       COALESCE((SELECT pg_catalog.array_agg(k.challenge_id ORDER BY k.challenge_id, k.period)
                   FROM pg_temp.loyalty_periods_0_21 k WHERE k.customer_id OPERATOR(pg_catalog.=) p.customer_id), '{}'),
       COALESCE((SELECT pg_catalog.array_agg(k.period ORDER BY k.challenge_id, k.period)
                   FROM pg_temp.loyalty_periods_0_21 k WHERE k.customer_id OPERATOR(pg_catalog.=) p.customer_id), '{}'),
       COALESCE((SELECT pg_catalog.array_agg(k.n ORDER BY k.challenge_id, k.period)
                   FROM pg_temp.loyalty_periods_0_21 k WHERE k.customer_id OPERATOR(pg_catalog.=) p.customer_id), '{}')
  FROM @extschema@.challenge_progress_0_21 p
  LEFT JOIN (SELECT DISTINCT ON (i.customer_id, i.challenge_id) i.customer_id, i.challenge_id, i.at, i.receipt_id
               FROM pg_temp.loyalty_items_0_21 i
              WHERE i.goal OPERATOR(pg_catalog.=) 'steps'
              ORDER BY i.customer_id, i.challenge_id, i.at DESC, i.receipt_id COLLATE "C" DESC) l
    ON l.customer_id OPERATOR(pg_catalog.=) p.customer_id AND l.challenge_id OPERATOR(pg_catalog.=) p.challenge_id
 GROUP BY p.customer_id;
ALTER EXTENSION loyalty DROP TABLE @extschema@.challenge_progress_0_21;
DROP TABLE @extschema@.challenge_progress_0_21;

-- A row per enrolment (the view of challenge_state its readers use).
CREATE VIEW @extschema@.challenge_progress WITH (security_invoker = true) AS
SELECT u.challenge_id, s.customer_id, s.program_id, u.enrolled_at, u.window_end, u.progress,
       CASE WHEN u.completed_at IS NULL THEN 'active' ELSE 'completed' END AS state,
       u.completions, u.completed_at, u.completed_receipt, u.reward_lot_id, u.reward_coupon, s.updated_at,
       ARRAY(SELECT k.key FROM ROWS FROM (pg_catalog.unnest(s.key_challenge), pg_catalog.unnest(s.keys))
                          WITH ORDINALITY k (c, key, n)
              WHERE k.c OPERATOR(pg_catalog.=) u.challenge_id ORDER BY k.n) AS keys,
       ARRAY(SELECT k.count FROM ROWS FROM (pg_catalog.unnest(s.key_challenge), pg_catalog.unnest(s.key_counts))
                            WITH ORDINALITY k (c, count, n)
              WHERE k.c OPERATOR(pg_catalog.=) u.challenge_id ORDER BY k.n) AS key_counts,
       ARRAY(SELECT k.period FROM ROWS FROM (pg_catalog.unnest(s.period_challenge), pg_catalog.unnest(s.periods))
                             WITH ORDINALITY k (c, period, n)
              WHERE k.c OPERATOR(pg_catalog.=) u.challenge_id ORDER BY k.n) AS periods,
       ARRAY(SELECT k.count FROM ROWS FROM (pg_catalog.unnest(s.period_challenge), pg_catalog.unnest(s.period_counts))
                            WITH ORDINALITY k (c, count, n)
              WHERE k.c OPERATOR(pg_catalog.=) u.challenge_id ORDER BY k.n) AS period_counts,
       u.last_at, u.last_receipt
  FROM @extschema@.challenge_state s
 CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(s.challenge_id), pg_catalog.unnest(s.enrolled_at),
                               pg_catalog.unnest(s.window_end), pg_catalog.unnest(s.progress),
                               pg_catalog.unnest(s.completions), pg_catalog.unnest(s.completed_at),
                               pg_catalog.unnest(s.completed_receipt), pg_catalog.unnest(s.reward_lot_id),
                               pg_catalog.unnest(s.reward_coupon), pg_catalog.unnest(s.last_at),
                               pg_catalog.unnest(s.last_receipt))
       u (challenge_id, enrolled_at, window_end, progress, completions, completed_at, completed_receipt,
          reward_lot_id, reward_coupon, last_at, last_receipt);
COMMENT ON VIEW @extschema@.challenge_progress IS 'a customer enrolled in a challenge: the window, the progress, and the reward given (a row per enrolment of loyalty.challenge_state)';
COMMENT ON COLUMN @extschema@.challenge_progress.challenge_id IS 'the challenge';
COMMENT ON COLUMN @extschema@.challenge_progress.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.challenge_progress.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.challenge_progress.enrolled_at IS 'opt-in: when enrol_challenge enrolled them; automatic: the "at" of the first receipt that counted';
COMMENT ON COLUMN @extschema@.challenge_progress.window_end IS 'until when (exclusive) receipts count: enrolled_at + duration, or the challenge''s ends_at; NULL: open-ended';
COMMENT ON COLUMN @extschema@.challenge_progress.progress IS 'in the goal''s unit: receipts, minor units of money (spend), thousandths of a unit (quantity), distinct values, periods in a row, steps';
COMMENT ON COLUMN @extschema@.challenge_progress.state IS 'active or completed (completed_at set)';
COMMENT ON COLUMN @extschema@.challenge_progress.completions IS 'how many times it was completed (a reward taken back by a return makes it active again)';
COMMENT ON COLUMN @extschema@.challenge_progress.completed_at IS 'when it was completed (the transaction''s time); NULL while active';
COMMENT ON COLUMN @extschema@.challenge_progress.completed_receipt IS 'the receipt that completed it';
COMMENT ON COLUMN @extschema@.challenge_progress.reward_lot_id IS 'the reward lot of the last completion';
COMMENT ON COLUMN @extschema@.challenge_progress.reward_coupon IS 'the code of the reward coupon of the last completion';
COMMENT ON COLUMN @extschema@.challenge_progress.updated_at IS 'the last change of the customer''s row';
COMMENT ON COLUMN @extschema@.challenge_progress.keys IS 'distinct: the values counted, in bytewise order';
COMMENT ON COLUMN @extschema@.challenge_progress.key_counts IS 'distinct: per value, the lines of receipts not returned that give it';
COMMENT ON COLUMN @extschema@.challenge_progress.periods IS 'streak: the periods with a receipt, ascending (days since 2000-01-01, or weeks since Monday 2000-01-03)';
COMMENT ON COLUMN @extschema@.challenge_progress.period_counts IS 'streak: per period, the receipts not returned in it';
COMMENT ON COLUMN @extschema@.challenge_progress.last_at IS 'steps: the "at" of the latest receipt counted (receipts are counted in the order of at, then receipt_id)';
COMMENT ON COLUMN @extschema@.challenge_progress.last_receipt IS 'steps: that receipt''s id';

-- A challenge with enrolments is not deleted (their rows would name nothing).
CREATE FUNCTION @extschema@.challenge_delete_check()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM @extschema@.challenge_state s
                WHERE s.program_id OPERATOR(pg_catalog.=) OLD.program_id
                  AND s.challenge_id OPERATOR(pg_catalog.@>) ARRAY[OLD.id]) THEN
        RAISE EXCEPTION 'challenge "%" has enrolments: end it (active false) instead of deleting it', OLD.code
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.challenge_delete_check() FROM PUBLIC;
CREATE TRIGGER challenge_delete_check BEFORE DELETE ON @extschema@.challenge
    FOR EACH ROW EXECUTE FUNCTION @extschema@.challenge_delete_check();

-- The receipts' rows: one entry per challenge (a new table, 0.21's dropped)
ALTER TABLE @extschema@.challenge_receipt RENAME TO challenge_receipt_0_21;
ALTER TABLE @extschema@.challenge_receipt_0_21 RENAME CONSTRAINT challenge_receipt_pkey TO challenge_receipt_0_21_pkey;
ALTER INDEX @extschema@.challenge_receipt_customer_idx RENAME TO challenge_receipt_0_21_customer_idx;

CREATE TABLE @extschema@.challenge_receipt (
    program_id   bigint NOT NULL,
    receipt_id   text NOT NULL,
    customer_id  bigint NOT NULL,
    at           timestamptz NOT NULL,
    day          date NOT NULL,
    challenge_id bigint[] NOT NULL,
    total        bigint[] NOT NULL,
    value        bigint[] NOT NULL,
    key          text[] NOT NULL,
    lines        bytea NOT NULL,
    alive        bytea NOT NULL,
    key_of       integer[] NOT NULL,
    key_line     integer[] NOT NULL,
    PRIMARY KEY (program_id, receipt_id)
);
CREATE INDEX challenge_receipt_customer_idx ON @extschema@.challenge_receipt (customer_id);
COMMENT ON TABLE @extschema@.challenge_receipt IS 'what a committed receipt gave the challenges its customer was enrolled in: one entry per challenge (challenge_id, total, value and a bitmap in lines, in parallel), and the keys of its distinct and steps entries (key, key_of, key_line, in parallel)';
COMMENT ON COLUMN @extschema@.challenge_receipt.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.challenge_receipt.receipt_id IS 'the receipt';
COMMENT ON COLUMN @extschema@.challenge_receipt.customer_id IS 'its customer';
COMMENT ON COLUMN @extschema@.challenge_receipt.at IS 'the receipt''s "at"';
COMMENT ON COLUMN @extschema@.challenge_receipt.day IS 'the receipt''s own date (its "at" at its own offset): what streaks count';
COMMENT ON COLUMN @extschema@.challenge_receipt.challenge_id IS 'per entry: the challenge (ascending)';
COMMENT ON COLUMN @extschema@.challenge_receipt.total IS 'per entry: what the receipt gave at commit: 1 (receipts, streak), its matching lines'' money after discounts (spend) or quantity in thousandths (quantity), its keys (distinct, steps)';
COMMENT ON COLUMN @extschema@.challenge_receipt.value IS 'per entry: what it gives now, after returns, in the unit of total (0 once nothing is left)';
COMMENT ON COLUMN @extschema@.challenge_receipt.key IS 'per key: the value of distinct_of (distinct) or the step number (steps) a line gave';
COMMENT ON COLUMN @extschema@.challenge_receipt.lines IS 'per entry, ceil(n / 8) bytes for the receipt''s n lines: bit p % 8 of byte p / 8 is set when the line at 0-based place p counted';
COMMENT ON COLUMN @extschema@.challenge_receipt.alive IS 'ceil(n / 8) bytes: the lines not returned whole (bit p as in lines)';
COMMENT ON COLUMN @extschema@.challenge_receipt.key_of IS 'per key: its entry (1-based place in challenge_id)';
COMMENT ON COLUMN @extschema@.challenge_receipt.key_line IS 'per key: its line (1-based place in the receipt''s lines)';
ALTER TABLE @extschema@.challenge_receipt ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.challenge_receipt USING (@extschema@.program_open(program_id));

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

INSERT INTO @extschema@.challenge_receipt (program_id, receipt_id, customer_id, at, day, challenge_id,
                                           total, value, key, lines, alive, key_of, key_line)
SELECT r.program_id, r.receipt_id, r.customer_id, r.at, r.day, e.ids, e.totals, e.vals,
       COALESCE(k.keys, '{}'), e.lines, a.alive, COALESCE(k.key_of, '{}'), COALESCE(k.key_line, '{}')
  FROM @extschema@.challenge_receipt_0_21 r
  JOIN (SELECT x.program_id, x.receipt_id,
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
    ON e.program_id OPERATOR(pg_catalog.=) r.program_id AND e.receipt_id OPERATOR(pg_catalog.=) r.receipt_id
  JOIN (SELECT p.program_id, p.receipt_id,
               pg_temp.loyalty_bits(pg_catalog.max(p.nlines),
                                    pg_catalog.array_agg(p.pos) FILTER (WHERE p.value OPERATOR(pg_catalog.>) 0)) AS alive
          FROM pg_temp.loyalty_places_0_21 p
         GROUP BY p.program_id, p.receipt_id) a
    ON a.program_id OPERATOR(pg_catalog.=) r.program_id AND a.receipt_id OPERATOR(pg_catalog.=) r.receipt_id
  LEFT JOIN (SELECT p.program_id, p.receipt_id,
                    pg_catalog.array_agg(p.key ORDER BY p.entry, p.pos, p.key) AS keys,
                    pg_catalog.array_agg(p.entry::integer ORDER BY p.entry, p.pos, p.key) AS key_of,
                    pg_catalog.array_agg(p.pos OPERATOR(pg_catalog.+) 1 ORDER BY p.entry, p.pos, p.key) AS key_line
               FROM pg_temp.loyalty_places_0_21 p
              WHERE p.goal OPERATOR(pg_catalog.=) ANY ('{distinct,steps}'::text[])
              GROUP BY p.program_id, p.receipt_id) k
    ON k.program_id OPERATOR(pg_catalog.=) r.program_id AND k.receipt_id OPERATOR(pg_catalog.=) r.receipt_id;
ALTER EXTENSION loyalty DROP TABLE @extschema@.challenge_receipt_0_21;
DROP TABLE @extschema@.challenge_receipt_0_21;
DROP FUNCTION pg_temp.loyalty_bits(integer, integer[]);
DROP TABLE pg_temp.loyalty_places_0_21, pg_temp.loyalty_periods_0_21, pg_temp.loyalty_keys_0_21,
           pg_temp.loyalty_items_0_21;

CREATE OR REPLACE FUNCTION @extschema@.enrol_challenge(program text, customer_id bigint, challenge text,
                                            at timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    c @extschema@.challenge;
    cust @extschema@.customer;
    t timestamptz := COALESCE(enrol_challenge.at, pg_catalog.now());
    p @extschema@.challenge_progress;
    fresh boolean := false;
BEGIN
    IF enrol_challenge.challenge IS NULL THEN
        RAISE EXCEPTION 'challenge must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    cust := @extschema@.challenge_customer(enrol_challenge.program, enrol_challenge.customer_id);
    pid := cust.program_id;
    c := @extschema@.challenge_by_code(pid, enrol_challenge.challenge);
    IF cust.status OPERATOR(pg_catalog.<>) 'active' THEN
        RAISE EXCEPTION 'customer % is %: only an active customer enrols in a challenge', cust.id, cust.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT c.active THEN
        RAISE EXCEPTION 'challenge "%" is not active', c.code
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF t OPERATOR(pg_catalog.<) c.starts_at OR t OPERATOR(pg_catalog.>=) c.ends_at THEN
        RAISE EXCEPTION 'challenge "%" takes enrolments from % to %, not at %', c.code, c.starts_at,
              COALESCE(c.ends_at::text, 'no end'), t
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'at is the instant of the enrolment; NULL: now.';
    END IF;
    IF (c.audience OPERATOR(pg_catalog.=) 'tiers' AND (cust.tier IS NULL OR cust.tier OPERATOR(pg_catalog.<>) ALL (c.tiers)))
       OR (c.audience OPERATOR(pg_catalog.=) 'segments'
           AND NOT EXISTS (SELECT FROM @extschema@.segment_member m
                            WHERE m.customer_id OPERATOR(pg_catalog.=) cust.id
                              AND m.segment OPERATOR(pg_catalog.=) ANY (c.segments))) THEN
        RAISE EXCEPTION 'customer % is not in the audience of challenge "%"', cust.id, c.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('It is for customers of %s %s.', c.audience,
                                             pg_catalog.array_to_string(COALESCE(c.tiers, c.segments), ', '));
    END IF;
    -- the customer's row, locked (created if they have none): the enrolment
    -- is appended unless there is one (commit writes the arrays back sorted)
    INSERT INTO @extschema@.challenge_state AS x (customer_id, program_id)
    VALUES (cust.id, pid) ON CONFLICT ON CONSTRAINT challenge_state_pkey DO NOTHING;
    PERFORM FROM @extschema@.challenge_state x WHERE x.customer_id OPERATOR(pg_catalog.=) cust.id FOR UPDATE;
    fresh := NOT EXISTS (SELECT FROM @extschema@.challenge_state x
                          WHERE x.customer_id OPERATOR(pg_catalog.=) cust.id
                            AND x.challenge_id OPERATOR(pg_catalog.@>) ARRAY[c.id]);
    IF fresh THEN
        UPDATE @extschema@.challenge_state x
           SET challenge_id = x.challenge_id OPERATOR(pg_catalog.||) c.id,
               enrolled_at = x.enrolled_at OPERATOR(pg_catalog.||) t,
               window_end = x.window_end OPERATOR(pg_catalog.||)
                            CASE WHEN c.duration IS NOT NULL
                                 THEN ((t AT TIME ZONE 'UTC') OPERATOR(pg_catalog.+) c.duration) AT TIME ZONE 'UTC'
                                 ELSE c.ends_at END,
               progress = x.progress OPERATOR(pg_catalog.||) 0::bigint,
               completions = x.completions OPERATOR(pg_catalog.||) 0,
               completed_at = x.completed_at OPERATOR(pg_catalog.||) NULL::timestamptz,
               completed_receipt = x.completed_receipt OPERATOR(pg_catalog.||) NULL::text,
               reward_lot_id = x.reward_lot_id OPERATOR(pg_catalog.||) NULL::bigint,
               reward_coupon = x.reward_coupon OPERATOR(pg_catalog.||) NULL::text,
               last_at = x.last_at OPERATOR(pg_catalog.||) NULL::timestamptz,
               last_receipt = x.last_receipt OPERATOR(pg_catalog.||) NULL::text,
               updated_at = pg_catalog.now()
         WHERE x.customer_id OPERATOR(pg_catalog.=) cust.id;
    END IF;
    SELECT * INTO p FROM @extschema@.challenge_progress x
     WHERE x.challenge_id OPERATOR(pg_catalog.=) c.id AND x.customer_id OPERATOR(pg_catalog.=) cust.id;
    RETURN pg_catalog.jsonb_build_object(
        'challenge', c.code, 'customer_id', cust.id, 'enrolled', fresh,
        'enrolled_at', p.enrolled_at, 'window_end', p.window_end,
        'progress', @extschema@.challenge_units(c, p.progress), 'target', c.target, 'state', p.state);
END
$$;
COMMENT ON FUNCTION @extschema@.enrol_challenge(text, bigint, text, timestamptz) IS
'enrol a customer in a challenge (opt-in, or an automatic one ahead of its first receipt) at an instant (NULL: now); enrolled false if they were already';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.challenge_state', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.challenge_receipt', '');
GRANT SELECT ON @extschema@.challenge_state, @extschema@.challenge_progress, @extschema@.challenge_receipt
TO loyalty_admin;

-- Referrals (src/referral.sql, verbatim), the event they write, the
-- enrolment that takes a code, and the job that settles them.
ALTER TABLE @extschema@.event DROP CONSTRAINT event_type_check;
ALTER TABLE @extschema@.event ADD CONSTRAINT event_type_check
    CHECK (type OPERATOR(pg_catalog.=) ANY
           ('{balance_changed,receipt_committed,receipt_cancelled,refund,points_expiring,tier_changed,fraud_flagged,fraud_hold,fraud_released,fraud_confirmed,challenge_progress,challenge_completed,achievement_unlocked,referral_rewarded}'::text[]));
COMMENT ON COLUMN @extschema@.event.type IS 'balance_changed, receipt_committed, receipt_cancelled, refund, points_expiring, tier_changed, fraud_flagged, fraud_hold, fraud_released, fraud_confirmed, challenge_progress, challenge_completed, achievement_unlocked or referral_rewarded';

-- src/referral.sql — referrals: a customer's code, given by a new customer
-- at enrolment; both are rewarded once the new customer's first receipt
-- has been kept for the programme's return window (the job
-- settle_referrals).  docs/campaigns.md ("Referrals") is the contract.

CREATE TABLE @extschema@.referral_scheme (
    program_id      bigint PRIMARY KEY REFERENCES @extschema@.program (id),
    currency        text NOT NULL,
    referrer_points bigint NOT NULL CHECK (referrer_points OPERATOR(pg_catalog.>=) 0),
    referee_points  bigint NOT NULL CHECK (referee_points OPERATOR(pg_catalog.>=) 0),
    valid_for       interval CHECK (valid_for OPERATOR(pg_catalog.>) '0'::interval),
    return_days     integer NOT NULL DEFAULT 14
                    CHECK (return_days OPERATOR(pg_catalog.>=) 0 AND return_days OPERATOR(pg_catalog.<=) 365),
    offer_days      integer NOT NULL DEFAULT 90
                    CHECK (offer_days OPERATOR(pg_catalog.>=) 1 AND offer_days OPERATOR(pg_catalog.<=) 3660),
    active          boolean NOT NULL DEFAULT true,
    FOREIGN KEY (program_id, currency) REFERENCES @extschema@.currency (program_id, code),
    CONSTRAINT referral_scheme_reward_check
        CHECK (referrer_points OPERATOR(pg_catalog.+) referee_points OPERATOR(pg_catalog.>) 0)
);
COMMENT ON TABLE @extschema@.referral_scheme IS 'a programme''s referrals: what the referrer and the new customer earn, and when';
COMMENT ON COLUMN @extschema@.referral_scheme.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.referral_scheme.currency IS 'the currency of both rewards';
COMMENT ON COLUMN @extschema@.referral_scheme.referrer_points IS 'what the customer whose code was given earns (0: nothing)';
COMMENT ON COLUMN @extschema@.referral_scheme.referee_points IS 'what the new customer earns (0: nothing)';
COMMENT ON COLUMN @extschema@.referral_scheme.valid_for IS 'how long the reward lots count from when they are given; NULL: until spent';
COMMENT ON COLUMN @extschema@.referral_scheme.return_days IS 'N: a receipt qualifies once committed N days ago and not returned';
COMMENT ON COLUMN @extschema@.referral_scheme.offer_days IS 'a receipt committed within this many days of the enrolment may qualify; after them an unqualified referral expires';
COMMENT ON COLUMN @extschema@.referral_scheme.active IS 'false: codes are refused at enrolment and nothing is settled';
ALTER TABLE @extschema@.referral_scheme ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.referral_scheme USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.referral_code (
    program_id  bigint NOT NULL,
    code        text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[A-Z0-9]{4,16}$'),
    customer_id bigint NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (program_id, code),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id)
);
COMMENT ON TABLE @extschema@.referral_code IS 'a customer''s referral code (referral_code() gives it, creating it the first time)';
COMMENT ON COLUMN @extschema@.referral_code.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.referral_code.code IS 'eight characters of A-Z and 2-9 without I, O, 0 and 1; matched without regard to case, spaces or dashes';
COMMENT ON COLUMN @extschema@.referral_code.customer_id IS 'the customer it refers to';
COMMENT ON COLUMN @extschema@.referral_code.created_at IS 'when it was created';
ALTER TABLE @extschema@.referral_code ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.referral_code USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.referral (
    program_id      bigint NOT NULL,
    referee_id      bigint NOT NULL,
    referrer_id     bigint NOT NULL,
    code            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at      timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state OPERATOR(pg_catalog.=) ANY ('{pending,rewarded,expired,refused}'::text[])),
    checked_at      timestamptz,
    receipt_id      text,
    settled_at      timestamptz,
    reason          text,
    referrer_lot_id bigint,
    referee_lot_id  bigint,
    PRIMARY KEY (program_id, referee_id),
    FOREIGN KEY (program_id, referee_id) REFERENCES @extschema@.customer (program_id, id),
    FOREIGN KEY (program_id, referrer_id) REFERENCES @extschema@.customer (program_id, id),
    CONSTRAINT referral_self_check CHECK (referee_id OPERATOR(pg_catalog.<>) referrer_id),
    CONSTRAINT referral_settled_check
        CHECK ((state OPERATOR(pg_catalog.=) 'pending') OPERATOR(pg_catalog.=) (settled_at IS NULL))
);
CREATE INDEX referral_pending_idx ON @extschema@.referral (checked_at NULLS FIRST)
    WHERE state OPERATOR(pg_catalog.=) 'pending';
CREATE INDEX referral_referrer_idx ON @extschema@.referral (referrer_id);
COMMENT ON TABLE @extschema@.referral IS 'a new customer who gave a referral code at enrolment, and what became of it';
COMMENT ON COLUMN @extschema@.referral.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.referral.referee_id IS 'the new customer';
COMMENT ON COLUMN @extschema@.referral.referrer_id IS 'the customer whose code was given';
COMMENT ON COLUMN @extschema@.referral.code IS 'the code as stored';
COMMENT ON COLUMN @extschema@.referral.created_at IS 'the enrolment';
COMMENT ON COLUMN @extschema@.referral.expires_at IS 'created_at + the scheme''s offer_days: a receipt committed before it may qualify';
COMMENT ON COLUMN @extschema@.referral.state IS 'pending; rewarded; expired (no receipt qualified in time); refused (a customer blocked or merged)';
COMMENT ON COLUMN @extschema@.referral.checked_at IS 'when settle_referrals last looked at it (it takes the least recently checked first)';
COMMENT ON COLUMN @extschema@.referral.receipt_id IS 'the receipt that qualified it';
COMMENT ON COLUMN @extschema@.referral.settled_at IS 'when it left pending';
COMMENT ON COLUMN @extschema@.referral.reason IS 'why it was refused';
COMMENT ON COLUMN @extschema@.referral.referrer_lot_id IS 'the referrer''s reward lot';
COMMENT ON COLUMN @extschema@.referral.referee_lot_id IS 'the new customer''s reward lot';
ALTER TABLE @extschema@.referral ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.referral USING (@extschema@.program_open(program_id));

-- A code as typed, in its stored form: upper case, no spaces or dashes.
CREATE FUNCTION @extschema@.referral_code_normal(code text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.upper(pg_catalog.regexp_replace(code, '[\s-]', '', 'g'))
$$;
COMMENT ON FUNCTION @extschema@.referral_code_normal(text) IS
'a referral code as typed, in its stored form (upper case, without spaces or dashes)';

-- The programme's active scheme, or 55000.
CREATE FUNCTION @extschema@.referral_scheme_of(pid bigint, program text)
RETURNS @extschema@.referral_scheme
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s @extschema@.referral_scheme;
BEGIN
    SELECT * INTO s FROM @extschema@.referral_scheme x WHERE x.program_id OPERATOR(pg_catalog.=) pid;
    IF NOT FOUND OR NOT s.active THEN
        RAISE EXCEPTION 'programme "%" has no active referral scheme', program
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN s;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.referral_scheme_of(bigint, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.referral_code(program text, customer_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    c @extschema@.customer;
    found_code text;
    candidate text;
    alphabet constant text := 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
    bytes bytea;
BEGIN
    IF program IS NULL OR customer_id IS NULL THEN
        RAISE EXCEPTION 'referral_code: % is null', CASE WHEN program IS NULL THEN 'program' ELSE 'customer_id' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pid := @extschema@.program_id(program);
    PERFORM @extschema@.referral_scheme_of(pid, program);
    SELECT * INTO c FROM @extschema@.customer x
     WHERE x.id OPERATOR(pg_catalog.=) referral_code.customer_id AND x.program_id OPERATOR(pg_catalog.=) pid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist in programme "%"', customer_id, program
            USING ERRCODE = 'no_data_found';
    END IF;
    IF c.status OPERATOR(pg_catalog.<>) 'active' THEN
        RAISE EXCEPTION 'customer % is %: no referral code', customer_id, c.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- the customer's code; else eight characters drawn from a random UUID's
    -- bytes: a clash with another code draws again, and a concurrent call
    -- that gave this customer a code first has it read back
    LOOP
        SELECT r.code INTO found_code FROM @extschema@.referral_code r
         WHERE r.customer_id OPERATOR(pg_catalog.=) referral_code.customer_id;
        IF FOUND THEN
            RETURN found_code;
        END IF;
        bytes := pg_catalog.uuid_send(pg_catalog.gen_random_uuid());
        candidate := '';
        FOR i IN 0 .. 7 LOOP
            candidate := candidate OPERATOR(pg_catalog.||)
                pg_catalog.substr(alphabet, 1 OPERATOR(pg_catalog.+) (pg_catalog.get_byte(bytes, i) OPERATOR(pg_catalog.%) 32), 1);
        END LOOP;
        INSERT INTO @extschema@.referral_code (program_id, code, customer_id)
        VALUES (pid, candidate, referral_code.customer_id)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            RETURN candidate;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.referral_code(text, bigint) IS
'the customer''s referral code, created the first time it is asked for';

-- The referrer of a code given at enrolment, checked before the new
-- customer's identifiers are bound: the code must be the programme's and
-- its referrer active, and no identifier given may be one the referrer
-- holds or held (P0L05).
CREATE FUNCTION @extschema@.referral_referrer(pid bigint, program text, code text,
                                              card text, phone text, email text)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    referrer bigint;
    status text;
    shared record;
BEGIN
    PERFORM @extschema@.referral_scheme_of(pid, program);
    SELECT r.customer_id, c.status INTO referrer, status
      FROM @extschema@.referral_code r JOIN @extschema@.customer c ON c.id OPERATOR(pg_catalog.=) r.customer_id
     WHERE r.program_id OPERATOR(pg_catalog.=) pid
       AND r.code OPERATOR(pg_catalog.=) @extschema@.referral_code_normal(referral_referrer.code);
    IF referrer IS NULL THEN
        RAISE EXCEPTION 'referral_code "%" is not a code of programme "%"', code, program
            USING ERRCODE = 'undefined_object';
    END IF;
    IF status OPERATOR(pg_catalog.<>) 'active' THEN
        RAISE EXCEPTION 'referral_code "%": its customer is %', code, status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT t.kind, t.value INTO shared
      FROM (VALUES ('card', card), ('phone', phone), ('email', email)) AS t(kind, value)
      JOIN @extschema@.identifier i
        ON i.program_id OPERATOR(pg_catalog.=) pid AND i.kind OPERATOR(pg_catalog.=) t.kind
       AND i.value OPERATOR(pg_catalog.=) @extschema@.normalize_identifier(program, t.kind, t.value)
     WHERE t.value IS NOT NULL AND i.customer_id OPERATOR(pg_catalog.=) referrer
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'referral_code "%" is the new customer''s own: the % % is the referrer''s', code, shared.kind, shared.value
            USING ERRCODE = 'P0L05',
                  HINT = 'A customer cannot refer themselves; enrol without the code.';
    END IF;
    RETURN referrer;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.referral_referrer(bigint, text, text, text, text, text) FROM PUBLIC;

-- The referral of a new customer, after the enrolment bound its identifiers.
CREATE FUNCTION @extschema@.referral_insert(pid bigint, referee bigint, referrer bigint, code text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.referral (program_id, referee_id, referrer_id, code, expires_at)
    SELECT pid, referee, referrer, @extschema@.referral_code_normal(code),
           pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(days => s.offer_days)
      FROM @extschema@.referral_scheme s WHERE s.program_id OPERATOR(pg_catalog.=) pid;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.referral_insert(bigint, bigint, bigint, text) FROM PUBLIC;

-- The job: the pending referrals, least recently checked first.  A
-- referral whose referee has a receipt committed before expires_at, at
-- least return_days ago, and neither cancelled nor refunded whole (the
-- earliest such receipt) is rewarded: both customers' lots, idempotent by
-- their keys; one of a blocked or merged customer is refused; one without
-- such a receipt past expires_at (and none committed before it that may
-- still qualify) expires.  A customer on fraud_hold waits.
CREATE FUNCTION @extschema@.settle_referrals(batch_limit integer DEFAULT 1000,
                                             time_budget interval DEFAULT '50 seconds')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer := @extschema@.job_limit(batch_limit);
    deadline timestamptz := @extschema@.job_deadline(time_budget);
    f record;
    ee @extschema@.customer;
    er @extschema@.customer;
    q record;
    waiting boolean;
    lot_er bigint;
    lot_ee bigint;
    valid_to timestamptz;
    settled integer := 0;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.settle_referrals');
    FOR f IN
        SELECT r.program_id, r.referee_id, r.referrer_id, r.expires_at,
               s.currency, s.referrer_points, s.referee_points, s.valid_for, s.return_days
          FROM @extschema@.referral r
          JOIN @extschema@.referral_scheme s ON s.program_id OPERATOR(pg_catalog.=) r.program_id
         WHERE r.state OPERATOR(pg_catalog.=) 'pending' AND s.active
         ORDER BY r.checked_at NULLS FIRST, r.referee_id
         LIMIT lim
           FOR UPDATE OF r SKIP LOCKED
    LOOP
        EXIT WHEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>) deadline;
        SELECT * INTO ee FROM @extschema@.customer WHERE id OPERATOR(pg_catalog.=) f.referee_id;
        SELECT * INTO er FROM @extschema@.customer WHERE id OPERATOR(pg_catalog.=) f.referrer_id;
        IF ee.status OPERATOR(pg_catalog.=) ANY ('{blocked,merged}'::text[])
           OR er.status OPERATOR(pg_catalog.=) ANY ('{blocked,merged}'::text[]) THEN
            UPDATE @extschema@.referral SET state = 'refused', settled_at = pg_catalog.now(), checked_at = pg_catalog.now(),
                   reason = CASE WHEN ee.status OPERATOR(pg_catalog.=) ANY ('{blocked,merged}'::text[])
                                 THEN 'the new customer is ' OPERATOR(pg_catalog.||) ee.status
                                 ELSE 'the referrer is ' OPERATOR(pg_catalog.||) er.status END
             WHERE program_id OPERATOR(pg_catalog.=) f.program_id AND referee_id OPERATOR(pg_catalog.=) f.referee_id;
            settled := settled OPERATOR(pg_catalog.+) 1;
            CONTINUE;
        END IF;
        SELECT t.receipt_id, t.committed_at INTO q
          FROM @extschema@.receipt t
         WHERE t.customer_id OPERATOR(pg_catalog.=) f.referee_id
           AND t.program_id OPERATOR(pg_catalog.=) f.program_id
           AND t.committed_at OPERATOR(pg_catalog.<) f.expires_at
           AND t.committed_at OPERATOR(pg_catalog.<=)
               (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => f.return_days))
           AND t.status OPERATOR(pg_catalog.=) ANY ('{committed,partly_refunded}'::text[])
         ORDER BY t.committed_at, t.receipt_id
         LIMIT 1;
        IF FOUND AND ee.status OPERATOR(pg_catalog.=) 'active' AND er.status OPERATOR(pg_catalog.=) 'active' THEN
            valid_to := pg_catalog.now() OPERATOR(pg_catalog.+) f.valid_for;
            lot_er := NULL;
            lot_ee := NULL;
            IF f.referrer_points OPERATOR(pg_catalog.>) 0 THEN
                lot_er := (@extschema@.accrue(f.referrer_id, f.currency, f.referrer_points,
                               valid_to => valid_to, kind => 'referral', receipt => q.receipt_id,
                               idempotency_key => pg_catalog.format('loyalty:referral:%s:%s:referrer', f.program_id, f.referee_id),
                               reason => pg_catalog.format('referral of customer %s', f.referee_id))).lot_id;
            END IF;
            IF f.referee_points OPERATOR(pg_catalog.>) 0 THEN
                lot_ee := (@extschema@.accrue(f.referee_id, f.currency, f.referee_points,
                               valid_to => valid_to, kind => 'referral', receipt => q.receipt_id,
                               idempotency_key => pg_catalog.format('loyalty:referral:%s:%s:referee', f.program_id, f.referee_id),
                               reason => pg_catalog.format('referred by customer %s', f.referrer_id))).lot_id;
            END IF;
            UPDATE @extschema@.referral
               SET state = 'rewarded', settled_at = pg_catalog.now(), checked_at = pg_catalog.now(),
                   receipt_id = q.receipt_id, referrer_lot_id = lot_er, referee_lot_id = lot_ee
             WHERE program_id OPERATOR(pg_catalog.=) f.program_id AND referee_id OPERATOR(pg_catalog.=) f.referee_id;
            INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
            SELECT f.program_id, 'referral_rewarded', v.customer, pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'role', v.role, 'referrer_id', f.referrer_id, 'referee_id', f.referee_id,
                       'receipt_id', q.receipt_id, 'currency', f.currency, 'points', v.points, 'lot_id', v.lot))
              FROM (VALUES ('referrer', f.referrer_id, f.referrer_points, lot_er),
                           ('referee', f.referee_id, f.referee_points, lot_ee)) v (role, customer, points, lot)
             WHERE v.points OPERATOR(pg_catalog.>) 0;
            settled := settled OPERATOR(pg_catalog.+) 1;
            CONTINUE;
        END IF;
        -- none qualifies yet: one committed in time may still, unless returned
        waiting := EXISTS (SELECT 1 FROM @extschema@.receipt t
                            WHERE t.customer_id OPERATOR(pg_catalog.=) f.referee_id
                              AND t.program_id OPERATOR(pg_catalog.=) f.program_id
                              AND t.committed_at OPERATOR(pg_catalog.<) f.expires_at
                              AND t.status OPERATOR(pg_catalog.=) ANY ('{committed,partly_refunded}'::text[]));
        IF f.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() AND NOT waiting THEN
            UPDATE @extschema@.referral SET state = 'expired', settled_at = pg_catalog.now(), checked_at = pg_catalog.now()
             WHERE program_id OPERATOR(pg_catalog.=) f.program_id AND referee_id OPERATOR(pg_catalog.=) f.referee_id;
            settled := settled OPERATOR(pg_catalog.+) 1;
        ELSE
            UPDATE @extschema@.referral SET checked_at = pg_catalog.now()
             WHERE program_id OPERATOR(pg_catalog.=) f.program_id AND referee_id OPERATOR(pg_catalog.=) f.referee_id;
        END IF;
    END LOOP;
    RETURN settled;
END
$$;
COMMENT ON FUNCTION @extschema@.settle_referrals(integer, interval) IS
'reward the pending referrals whose new customer''s first receipt was kept for the return window, refuse those of blocked or merged customers, expire those past offer_days; returns how many were settled';

REVOKE ALL ON FUNCTION @extschema@.referral_code(text, bigint),
    @extschema@.settle_referrals(integer, interval) FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_scheme', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_code', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral', '');

DROP FUNCTION @extschema@.enroll(text, text, text, text, date, text, jsonb);
CREATE FUNCTION @extschema@.enroll(
    program text,
    card text DEFAULT NULL,
    phone text DEFAULT NULL,
    email text DEFAULT NULL,
    birth_date date DEFAULT NULL,
    home_city text DEFAULT NULL,
    attributes jsonb DEFAULT '{}',
    referral_code text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint := @extschema@.program_id(enroll.program);
    cid bigint;
    bound jsonb := '{}';
    ident record;
    referrer bigint;
BEGIN
    IF enroll.card IS NULL AND enroll.phone IS NULL AND enroll.email IS NULL THEN
        RAISE EXCEPTION 'a customer needs at least one identifier'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'card, phone and email are all null.';
    END IF;
    IF enroll.attributes IS NULL
       OR pg_catalog.jsonb_typeof(enroll.attributes) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'customer attributes must be a JSON object, not %',
              COALESCE(pg_catalog.jsonb_typeof(enroll.attributes), 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a referral code: checked before anything is written (src/referral.sql)
    IF enroll.referral_code IS NOT NULL THEN
        referrer := @extschema@.referral_referrer(pid, enroll.program, enroll.referral_code,
                                                  enroll.card, enroll.phone, enroll.email);
    END IF;

    INSERT INTO @extschema@.customer (program_id, birth_date, home_city, attributes)
    VALUES (pid, enroll.birth_date, enroll.home_city, enroll.attributes)
    RETURNING id INTO cid;

    FOR ident IN
        SELECT t.kind, t.value
          FROM (VALUES (1, 'card', enroll.card), (2, 'phone', enroll.phone),
                       (3, 'email', enroll.email)) AS t(ord, kind, value)
         WHERE t.value IS NOT NULL
         ORDER BY t.ord
    LOOP
        bound := bound OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(ident.kind,
                 @extschema@.identifier_insert(enroll.program, pid, cid, ident.kind, ident.value));
    END LOOP;

    IF referrer IS NOT NULL THEN
        PERFORM @extschema@.referral_insert(pid, cid, referrer, enroll.referral_code);
        bound := bound OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('referrer_id', referrer);
    END IF;

    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail)
    VALUES (pid, cid, 'enroll', bound);
    RETURN cid;
END
$$;
COMMENT ON FUNCTION @extschema@.enroll(text, text, text, text, date, text, jsonb, text) IS
'create a customer with its identifiers in one call, referred by the customer of referral_code if given; returns the customer id';
REVOKE ALL ON FUNCTION @extschema@.enroll(text, text, text, text, date, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.enroll(text, text, text, text, date, text, jsonb, text) TO loyalty_admin;

CREATE OR REPLACE FUNCTION @extschema@.jobs()
RETURNS TABLE (job text, schedule text, command text, description text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('loyalty.release_accruals', '* * * * *',
            'CALL loyalty.run_job(''release_accruals'', ''50 seconds'')',
            'releases the accruals of the queue that are due as lots'),
           ('loyalty.expire_due', '* * * * *',
            'CALL loyalty.run_job(''expire_due'', ''50 seconds'')',
            'records expired lots as expire entries in the ledger'),
           ('loyalty.release_expired_holds', '* * * * *',
            'CALL loyalty.run_job(''release_expired_holds'', ''50 seconds'')',
            'marks holds past their deadline expired, with release entries'),
           ('loyalty.notice_expiring', '*/10 * * * *',
            'CALL loyalty.run_job(''notice_expiring'', ''50 seconds'')',
            'emits a points_expiring event per wallet for lots entering their programme''s expiry_notice window'),
           ('loyalty.purge_events', '41 * * * *',
            'SELECT loyalty.purge_events(100000)',
            'deletes events that no consumer took within their programme''s event_retention'),
           ('loyalty.review_tiers', '29 * * * *',
            'CALL loyalty.run_job(''review_tiers'', ''50 seconds'')',
            'from the start of each review period, moves every customer to the tier the window qualifies them for, up or down'),
           ('loyalty.refresh_segments', '53 * * * *',
            'SELECT loyalty.refresh_segments(''50 seconds'')',
            'rebuilds the rule segments whose refresh_every has passed'),
           ('loyalty.settle_referrals', '*/15 * * * *',
            'SELECT loyalty.settle_referrals(1000, ''50 seconds'')',
            'rewards the referrals whose new customer kept a first receipt for the return window, expires the others'),
           ('loyalty.create_partitions', '17 * * * *',
            'SELECT loyalty.create_partitions(3)',
            'keeps monthly partitions of receipts and receipt lines three months ahead')
$$;

CREATE OR REPLACE FUNCTION @extschema@.job_health_rows()
RETURNS TABLE (job text, schedule text, scheduled boolean, active boolean,
               last_start timestamptz, last_duration interval, last_status text,
               last_message text, runs_failed_last_day bigint,
               backlog bigint, oldest_due_age interval)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    due record;
BEGIN
    FOR job, schedule IN SELECT d.job, d.schedule FROM @extschema@.jobs() d ORDER BY d.job LOOP
        scheduled := NULL;
        active := NULL;
        last_start := NULL;
        last_duration := NULL;
        last_status := NULL;
        last_message := NULL;
        runs_failed_last_day := NULL;
        IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
            EXECUTE $q$
                SELECT j.jobid IS NOT NULL, j.active, r.start_time,
                       r.end_time OPERATOR(pg_catalog.-) r.start_time, r.status, r.return_message,
                       (SELECT pg_catalog.count(*) FROM cron.job_run_details f
                         WHERE f.jobid OPERATOR(pg_catalog.=) j.jobid
                           AND f.status OPERATOR(pg_catalog.=) 'failed'
                           AND f.start_time OPERATOR(pg_catalog.>)
                               (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day'))
                  FROM (SELECT 1) one
                  LEFT JOIN cron.job j ON j.jobname OPERATOR(pg_catalog.=) $1
                       AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
                  LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details d
                                      WHERE d.jobid OPERATOR(pg_catalog.=) j.jobid
                                      ORDER BY d.runid DESC LIMIT 1) r ON true
                 ORDER BY j.jobid DESC NULLS LAST LIMIT 1 $q$
              INTO scheduled, active, last_start, last_duration, last_status, last_message,
                   runs_failed_last_day
             USING job;
        END IF;
        -- each job's own backlog; a job without one shows NULL
        IF job OPERATOR(pg_catalog.=) 'loyalty.expire_due' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(l.valid_to) INTO due
              FROM @extschema@.lot l
             WHERE l.live AND l.valid_to IS NOT NULL AND l.valid_to OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_accruals' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(q.release_at) INTO due
              FROM @extschema@.accrual_queue q
             WHERE q.release_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.release_expired_holds' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(h.expires_at) INTO due
              FROM @extschema@.hold h
             WHERE h.status OPERATOR(pg_catalog.=) 'active'
               AND h.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now();
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.notice_expiring' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(l.valid_to OPERATOR(pg_catalog.-) g.expiry_notice) INTO due
              FROM @extschema@.lot l
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) l.program_id
             WHERE l.live AND l.valid_to IS NOT NULL AND l.expiry_noticed_at IS NULL
               AND l.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()
               AND l.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) g.expiry_notice);
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.purge_events' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(e.created_at OPERATOR(pg_catalog.+) g.event_retention) INTO due
              FROM @extschema@.event e
              JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) e.program_id
             WHERE e.created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) g.event_retention);
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.review_tiers' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(pg_catalog.date_trunc(g.tier_review, pg_catalog.now())) INTO due
              FROM @extschema@.program g
              JOIN @extschema@.customer u ON u.program_id OPERATOR(pg_catalog.=) g.id
             WHERE EXISTS (SELECT 1 FROM @extschema@.tier t WHERE t.program_id OPERATOR(pg_catalog.=) g.id)
               AND u.tier_reviewed_at OPERATOR(pg_catalog.<) pg_catalog.date_trunc(g.tier_review, pg_catalog.now())
               AND u.status OPERATOR(pg_catalog.<>) 'merged';
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.refresh_segments' THEN
            SELECT pg_catalog.count(*), pg_catalog.min(COALESCE(s.refreshed_at OPERATOR(pg_catalog.+) s.refresh_every, pg_catalog.now())) INTO due
              FROM @extschema@.segment s
             WHERE s.kind OPERATOR(pg_catalog.=) 'rule'
               AND (s.refreshed_at IS NULL
                    OR s.refreshed_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.-) s.refresh_every));
        ELSIF job OPERATOR(pg_catalog.=) 'loyalty.settle_referrals' THEN
            SELECT pg_catalog.count(*),
                   pg_catalog.min(COALESCE(r.checked_at, r.created_at) OPERATOR(pg_catalog.+) '1 hour'::interval) INTO due
              FROM @extschema@.referral r
              JOIN @extschema@.referral_scheme s ON s.program_id OPERATOR(pg_catalog.=) r.program_id
             WHERE r.state OPERATOR(pg_catalog.=) 'pending' AND s.active
               AND COALESCE(r.checked_at, r.created_at) OPERATOR(pg_catalog.<=)
                   (pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::interval);
        ELSE
            SELECT NULL::bigint AS count, NULL::timestamptz AS min INTO due;
        END IF;
        backlog := due.count;
        oldest_due_age := pg_catalog.now() OPERATOR(pg_catalog.-) due.min;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON COLUMN @extschema@.job_health.backlog IS 'rows due now that the job has not done: accruals past release_at, lots past valid_to, holds past expires_at, lots in their notice window (not yet expired) without a notice, events past their retention, customers not yet reviewed this review period, rule segments due for a rebuild, pending referrals not looked at for an hour';

GRANT EXECUTE ON FUNCTION @extschema@.referral_code(text, bigint) TO loyalty_cashier, loyalty_admin;
GRANT EXECUTE ON FUNCTION @extschema@.settle_referrals(integer, interval) TO loyalty_admin;
GRANT SELECT ON @extschema@.referral_scheme, @extschema@.referral_code, @extschema@.referral TO loyalty_admin;
GRANT INSERT, UPDATE, DELETE ON @extschema@.referral_scheme TO loyalty_admin;
