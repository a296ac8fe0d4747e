-- src/campaigns.sql — challenges (time-limited goals over receipts whose
-- progress moves at commit, src/campaigns.c), their steps, the customers'
-- progress and the achievements they unlock.  docs/campaigns.md is the
-- contract.

CREATE TABLE @extschema@.achievement (
    program_id  bigint NOT NULL REFERENCES @extschema@.program (id),
    code        text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[[:alnum:]_.-]{1,64}$'),
    name        text,
    levels      integer NOT NULL DEFAULT 1 CHECK (levels OPERATOR(pg_catalog.>=) 1 AND levels OPERATOR(pg_catalog.<=) 100),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (program_id, code)
);
COMMENT ON TABLE @extschema@.achievement IS 'a badge of the programme, with levels: challenges unlock it at a level';
COMMENT ON COLUMN @extschema@.achievement.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.achievement.code IS 'unique in the programme';
COMMENT ON COLUMN @extschema@.achievement.name IS 'what the customer sees';
COMMENT ON COLUMN @extschema@.achievement.levels IS 'its highest level (1 to 100)';
COMMENT ON COLUMN @extschema@.achievement.created_at IS 'when it was made';
ALTER TABLE @extschema@.achievement ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.achievement USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.challenge (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id         bigint NOT NULL REFERENCES @extschema@.program (id),
    code               text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[[:alnum:]_.-]{1,64}$'),
    name               text,
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz,
    duration           interval CHECK (duration OPERATOR(pg_catalog.>) '0'::interval),
    enrolment          text NOT NULL DEFAULT 'automatic'
                       CHECK (enrolment OPERATOR(pg_catalog.=) ANY ('{automatic,opt_in}'::text[])),
    audience           text NOT NULL DEFAULT 'all'
                       CHECK (audience OPERATOR(pg_catalog.=) ANY ('{all,tiers,segments}'::text[])),
    tiers              text[],
    segments           text[],
    goal               text NOT NULL
                       CHECK (goal OPERATOR(pg_catalog.=) ANY ('{receipts,spend,quantity,distinct,streak,steps}'::text[])),
    condition          @extschema@.condition,
    distinct_of        text,
    streak_unit        text CHECK (streak_unit OPERATOR(pg_catalog.=) ANY ('{day,week}'::text[])),
    target             numeric NOT NULL CHECK (target OPERATOR(pg_catalog.>) 0),
    reward_currency    text,
    reward_points      bigint CHECK (reward_points OPERATOR(pg_catalog.>) 0),
    reward_valid_for   interval CHECK (reward_valid_for OPERATOR(pg_catalog.>) '0'::interval),
    reward_kind        text NOT NULL DEFAULT 'challenge',
    reward_restriction @extschema@.condition,
    reward_promotion   text,
    reward_achievement text,
    reward_level       integer NOT NULL DEFAULT 1 CHECK (reward_level OPERATOR(pg_catalog.>=) 1),
    keep_reward        boolean NOT NULL DEFAULT false,
    active             boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (program_id, code),
    UNIQUE (program_id, id),
    FOREIGN KEY (program_id, reward_achievement) REFERENCES @extschema@.achievement (program_id, code),
    CONSTRAINT challenge_window_check CHECK (ends_at IS NULL OR ends_at OPERATOR(pg_catalog.>) starts_at),
    CONSTRAINT challenge_tiers_check CHECK ((audience OPERATOR(pg_catalog.=) 'tiers') OPERATOR(pg_catalog.=) (tiers IS NOT NULL)),
    CONSTRAINT challenge_segments_check CHECK ((audience OPERATOR(pg_catalog.=) 'segments') OPERATOR(pg_catalog.=) (segments IS NOT NULL)),
    CONSTRAINT challenge_distinct_check CHECK ((goal OPERATOR(pg_catalog.=) 'distinct') OPERATOR(pg_catalog.=) (distinct_of IS NOT NULL)),
    CONSTRAINT challenge_streak_check CHECK ((goal OPERATOR(pg_catalog.=) 'streak') OPERATOR(pg_catalog.=) (streak_unit IS NOT NULL)),
    CONSTRAINT challenge_steps_check CHECK (goal OPERATOR(pg_catalog.<>) 'steps' OR condition IS NULL),
    CONSTRAINT challenge_reward_check CHECK (reward_points IS NOT NULL OR reward_promotion IS NOT NULL OR reward_achievement IS NOT NULL),
    CONSTRAINT challenge_reward_lot_check CHECK (reward_points IS NOT NULL OR (reward_valid_for IS NULL AND reward_restriction IS NULL))
);
COMMENT ON TABLE @extschema@.challenge IS 'a time-limited goal over a customer''s receipts, moved by commit, taken back by cancel and refund; its completion gives a reward once';
COMMENT ON COLUMN @extschema@.challenge.id IS 'the challenge id';
COMMENT ON COLUMN @extschema@.challenge.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.challenge.code IS 'unique in the programme: named by events and the customer''s reads';
COMMENT ON COLUMN @extschema@.challenge.name IS 'what the customer sees';
COMMENT ON COLUMN @extschema@.challenge.starts_at IS 'from when customers enrol and receipts count';
COMMENT ON COLUMN @extschema@.challenge.ends_at IS 'until when (exclusive) customers enrol, and, without duration, receipts count; NULL: open-ended';
COMMENT ON COLUMN @extschema@.challenge.duration IS 'NULL: one window for all, [starts_at, ends_at); else each customer''s window is [enrolled_at, enrolled_at + duration), added in UTC (a day is 24 hours)';
COMMENT ON COLUMN @extschema@.challenge.enrolment IS 'automatic (the first receipt that counts enrols the customer) or opt_in (loyalty.enrol_challenge first)';
COMMENT ON COLUMN @extschema@.challenge.audience IS 'who may enrol: all, tiers or segments (as of the enrolment)';
COMMENT ON COLUMN @extschema@.challenge.tiers IS 'the tiers addressed (audience tiers)';
COMMENT ON COLUMN @extschema@.challenge.segments IS 'the segments addressed (audience segments)';
COMMENT ON COLUMN @extschema@.challenge.goal IS 'receipts, spend, quantity, distinct, streak or steps (docs/campaigns.md says how each counts)';
COMMENT ON COLUMN @extschema@.challenge.condition IS 'the lines that count (a line condition); NULL: every line; none for steps (each step has its own)';
COMMENT ON COLUMN @extschema@.challenge.distinct_of IS 'goal distinct: the attribute whose distinct values count, in the condition language (category, brand, receipt.store)';
COMMENT ON COLUMN @extschema@.challenge.streak_unit IS 'goal streak: day or week (ISO weeks, Monday first) of the receipt''s own date';
COMMENT ON COLUMN @extschema@.challenge.target IS 'what completes it: receipts, distinct values, periods or steps (a whole number); money in the programme''s currency (spend); units (quantity, up to 3 decimals)';
COMMENT ON COLUMN @extschema@.challenge.reward_currency IS 'the currency of reward_points (the programme''s default when NULL)';
COMMENT ON COLUMN @extschema@.challenge.reward_points IS 'a lot of this many points (minor units) on completion; NULL: none';
COMMENT ON COLUMN @extschema@.challenge.reward_valid_for IS 'how long the reward lot is valid from completion, added in UTC; NULL: no end';
COMMENT ON COLUMN @extschema@.challenge.reward_kind IS 'the kind of the reward lot';
COMMENT ON COLUMN @extschema@.challenge.reward_restriction IS 'the lines the reward lot may pay for; NULL: any';
COMMENT ON COLUMN @extschema@.challenge.reward_promotion IS 'the code of a promotion: a personal coupon for it on completion; NULL: none';
COMMENT ON COLUMN @extschema@.challenge.reward_achievement IS 'an achievement unlocked on completion at reward_level; NULL: none';
COMMENT ON COLUMN @extschema@.challenge.reward_level IS 'the level of reward_achievement it unlocks';
COMMENT ON COLUMN @extschema@.challenge.keep_reward IS 'false: a return that takes progress back below the target takes the reward back; true: the reward stays';
COMMENT ON COLUMN @extschema@.challenge.active IS 'false: no progress, no enrolment (progress made stays)';
COMMENT ON COLUMN @extschema@.challenge.created_at IS 'when it was made';
COMMENT ON COLUMN @extschema@.challenge.updated_at IS 'set by the trigger challenge_check on every UPDATE';
ALTER TABLE @extschema@.challenge ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.challenge USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.challenge_step (
    program_id   bigint NOT NULL,
    challenge_id bigint NOT NULL,
    step         integer NOT NULL CHECK (step OPERATOR(pg_catalog.>=) 1 AND step OPERATOR(pg_catalog.<=) 100),
    name         text,
    condition    @extschema@.condition NOT NULL,
    PRIMARY KEY (challenge_id, step),
    FOREIGN KEY (program_id, challenge_id) REFERENCES @extschema@.challenge (program_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE @extschema@.challenge_step IS 'a step of a quest (goal steps): done by a receipt with a line it matches, in order';
COMMENT ON COLUMN @extschema@.challenge_step.program_id IS 'the programme (the challenge''s)';
COMMENT ON COLUMN @extschema@.challenge_step.challenge_id IS 'the challenge';
COMMENT ON COLUMN @extschema@.challenge_step.step IS 'its number, from 1: steps are done in this order';
COMMENT ON COLUMN @extschema@.challenge_step.name IS 'what the customer sees';
COMMENT ON COLUMN @extschema@.challenge_step.condition IS 'the lines that do the step';
ALTER TABLE @extschema@.challenge_step ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.challenge_step USING (@extschema@.program_open(program_id));

CREATE FUNCTION @extschema@.challenge_check()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    exponent integer;
BEGIN
    IF NEW.goal OPERATOR(pg_catalog.=) ANY ('{receipts,distinct,streak,steps}'::text[])
       AND NEW.target OPERATOR(pg_catalog.<>) pg_catalog.trunc(NEW.target) THEN
        RAISE EXCEPTION 'challenge "%": target of goal % must be a whole number, not %', NEW.code, NEW.goal, NEW.target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.goal OPERATOR(pg_catalog.=) 'spend' THEN
        SELECT g.money_exponent INTO exponent FROM @extschema@.program g WHERE g.id OPERATOR(pg_catalog.=) NEW.program_id;
        IF pg_catalog.scale(NEW.target) OPERATOR(pg_catalog.>) exponent
           AND NEW.target OPERATOR(pg_catalog.<>) pg_catalog.round(NEW.target, exponent) THEN
            RAISE EXCEPTION 'challenge "%": target of goal spend has more than % decimals: %', NEW.code, exponent, NEW.target
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The target is money in the programme''s currency, as receipts give prices.';
        END IF;
    END IF;
    IF NEW.goal OPERATOR(pg_catalog.=) 'quantity'
       AND NEW.target OPERATOR(pg_catalog.<>) pg_catalog.round(NEW.target, 3) THEN
        RAISE EXCEPTION 'challenge "%": target of goal quantity has more than 3 decimals: %', NEW.code, NEW.target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.target OPERATOR(pg_catalog.>) 1000000000000 THEN
        RAISE EXCEPTION 'challenge "%": target % is too large', NEW.code, NEW.target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.distinct_of IS NOT NULL
       AND NEW.distinct_of OPERATOR(pg_catalog.!~) '^((receipt|customer)\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'challenge "%": distinct_of must name an attribute (category, brand, receipt.store), not "%"',
              NEW.code, NEW.distinct_of
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.reward_points IS NOT NULL THEN
        IF NEW.reward_currency IS NULL THEN
            SELECT g.default_currency INTO NEW.reward_currency FROM @extschema@.program g
             WHERE g.id OPERATOR(pg_catalog.=) NEW.program_id;
        ELSIF NOT EXISTS (SELECT FROM @extschema@.currency c
                           WHERE c.program_id OPERATOR(pg_catalog.=) NEW.program_id
                             AND c.code OPERATOR(pg_catalog.=) NEW.reward_currency) THEN
            RAISE EXCEPTION 'challenge "%": reward_currency "%" does not exist in the programme', NEW.code, NEW.reward_currency
                USING ERRCODE = 'undefined_object';
        END IF;
    ELSIF NEW.reward_currency IS NOT NULL THEN
        RAISE EXCEPTION 'challenge "%": reward_currency is the currency of reward_points, which is NULL', NEW.code
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.reward_promotion IS NOT NULL
       AND NOT EXISTS (SELECT FROM @extschema@.promotion p
                        WHERE p.program_id OPERATOR(pg_catalog.=) NEW.program_id
                          AND p.code OPERATOR(pg_catalog.=) NEW.reward_promotion) THEN
        RAISE EXCEPTION 'challenge "%": reward_promotion "%" does not exist in the programme', NEW.code, NEW.reward_promotion
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NEW.reward_achievement IS NOT NULL
       AND NEW.reward_level OPERATOR(pg_catalog.>) (SELECT a.levels FROM @extschema@.achievement a
                                                     WHERE a.program_id OPERATOR(pg_catalog.=) NEW.program_id
                                                       AND a.code OPERATOR(pg_catalog.=) NEW.reward_achievement) THEN
        RAISE EXCEPTION 'challenge "%": reward_level % is above the levels of achievement "%"',
              NEW.code, NEW.reward_level, NEW.reward_achievement
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- the progress made is of its goal, condition and attribute
        IF NEW.program_id OPERATOR(pg_catalog.<>) OLD.program_id OR NEW.goal OPERATOR(pg_catalog.<>) OLD.goal
           OR NEW.condition::text IS DISTINCT FROM OLD.condition::text
           OR NEW.distinct_of IS DISTINCT FROM OLD.distinct_of
           OR NEW.streak_unit IS DISTINCT FROM OLD.streak_unit THEN
            RAISE EXCEPTION 'challenge "%": its programme, goal, condition, distinct_of and streak_unit cannot change', OLD.code
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Make a new challenge, and set active = false on this one.';
        END IF;
        NEW.updated_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER challenge_check
    BEFORE INSERT OR UPDATE ON @extschema@.challenge
    FOR EACH ROW EXECUTE FUNCTION @extschema@.challenge_check();
CREATE TRIGGER challenge_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.challenge
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();
CREATE TRIGGER challenge_step_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.challenge_step
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();

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

CREATE TABLE @extschema@.customer_achievement (
    program_id   bigint NOT NULL,
    customer_id  bigint NOT NULL,
    achievement  text NOT NULL,
    challenge_id bigint NOT NULL REFERENCES @extschema@.challenge (id),
    level        integer NOT NULL CHECK (level OPERATOR(pg_catalog.>=) 1),
    unlocked_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    receipt_id   text,
    PRIMARY KEY (customer_id, achievement, challenge_id),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id),
    FOREIGN KEY (program_id, achievement) REFERENCES @extschema@.achievement (program_id, code)
);
COMMENT ON TABLE @extschema@.customer_achievement IS 'an achievement a customer holds by a completed challenge: the customer''s level is the highest of their rows';
COMMENT ON COLUMN @extschema@.customer_achievement.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.customer_achievement.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.customer_achievement.achievement IS 'the achievement''s code';
COMMENT ON COLUMN @extschema@.customer_achievement.challenge_id IS 'the challenge whose completion unlocked it';
COMMENT ON COLUMN @extschema@.customer_achievement.level IS 'the level it unlocked';
COMMENT ON COLUMN @extschema@.customer_achievement.unlocked_at IS 'when';
COMMENT ON COLUMN @extschema@.customer_achievement.receipt_id IS 'the receipt that completed the challenge';
ALTER TABLE @extschema@.customer_achievement ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.customer_achievement USING (@extschema@.program_open(program_id));

-- A challenge of the programme by its code, for the functions below.
CREATE FUNCTION @extschema@.challenge_by_code(pid bigint, code text)
RETURNS @extschema@.challenge
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c @extschema@.challenge;
BEGIN
    SELECT * INTO c FROM @extschema@.challenge x
     WHERE x.program_id OPERATOR(pg_catalog.=) pid AND x.code OPERATOR(pg_catalog.=) challenge_by_code.code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'challenge "%" does not exist in programme "%"', challenge_by_code.code,
              (SELECT p.code FROM @extschema@.program p WHERE p.id OPERATOR(pg_catalog.=) pid)
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN c;
END
$$;

-- The customer a customer-facing function names: its arguments checked, the
-- programme reached by the role, the customer one of the programme's.
CREATE FUNCTION @extschema@.challenge_customer(program text, customer_id bigint)
RETURNS @extschema@.customer
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    u @extschema@.customer;
BEGIN
    IF challenge_customer.program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF challenge_customer.customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pid := @extschema@.program_id(challenge_customer.program);
    SELECT * INTO u FROM @extschema@.customer c
     WHERE c.id OPERATOR(pg_catalog.=) challenge_customer.customer_id AND c.program_id OPERATOR(pg_catalog.=) pid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist in programme "%"', challenge_customer.customer_id,
              challenge_customer.program
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN u;
END
$$;

-- A challenge's progress in the unit the admin wrote its target in.
CREATE FUNCTION @extschema@.challenge_units(c @extschema@.challenge, amount bigint)
RETURNS numeric
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE c.goal
         WHEN 'spend' THEN (SELECT pg_catalog.round(amount::numeric OPERATOR(pg_catalog./)
                                                    pg_catalog.power(10::numeric, g.money_exponent), g.money_exponent)
                              FROM @extschema@.program g WHERE g.id OPERATOR(pg_catalog.=) c.program_id)
         WHEN 'quantity' THEN pg_catalog.round(amount::numeric OPERATOR(pg_catalog./) 1000, 3)
         ELSE amount::numeric END
$$;

CREATE FUNCTION @extschema@.enrol_challenge(program text, customer_id bigint, challenge text,
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

CREATE FUNCTION @extschema@.customer_challenges(program text, customer_id bigint, at timestamptz DEFAULT NULL)
RETURNS TABLE (challenge text, name text, goal text, state text, enrolled_at timestamptz,
               window_end timestamptz, progress numeric, target numeric, remaining numeric,
               reward_points bigint, reward_currency text, reward_achievement text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    t timestamptz := COALESCE(customer_challenges.at, pg_catalog.now());
BEGIN
    pid := (@extschema@.challenge_customer(customer_challenges.program, customer_challenges.customer_id)).program_id;
    RETURN QUERY
    SELECT c.code, c.name, c.goal,
           CASE WHEN p.state OPERATOR(pg_catalog.=) 'completed' THEN 'completed'
                WHEN p.challenge_id IS NOT NULL AND (p.window_end IS NULL OR t OPERATOR(pg_catalog.<) p.window_end)
                     THEN 'active'
                WHEN p.challenge_id IS NOT NULL THEN 'expired'
                ELSE 'available' END,
           p.enrolled_at, p.window_end,
           @extschema@.challenge_units(c, COALESCE(p.progress, 0)),
           CASE WHEN c.goal OPERATOR(pg_catalog.=) 'steps'
                THEN (SELECT pg_catalog.count(*)::numeric FROM @extschema@.challenge_step s
                       WHERE s.challenge_id OPERATOR(pg_catalog.=) c.id)
                ELSE c.target END,
           GREATEST(c.target OPERATOR(pg_catalog.-) @extschema@.challenge_units(c, COALESCE(p.progress, 0)), 0),
           c.reward_points, c.reward_currency, c.reward_achievement
      FROM @extschema@.challenge c
      JOIN @extschema@.customer u ON u.id OPERATOR(pg_catalog.=) customer_challenges.customer_id
      LEFT JOIN @extschema@.challenge_progress p
        ON p.challenge_id OPERATOR(pg_catalog.=) c.id AND p.customer_id OPERATOR(pg_catalog.=) customer_challenges.customer_id
     WHERE c.program_id OPERATOR(pg_catalog.=) pid
       AND (p.challenge_id IS NOT NULL
            OR (c.active AND t OPERATOR(pg_catalog.>=) c.starts_at
                AND (c.ends_at IS NULL OR t OPERATOR(pg_catalog.<) c.ends_at)
                AND (c.audience OPERATOR(pg_catalog.=) 'all'
                     OR (c.audience OPERATOR(pg_catalog.=) 'tiers' AND u.tier OPERATOR(pg_catalog.=) ANY (c.tiers))
                     OR (c.audience OPERATOR(pg_catalog.=) 'segments'
                         AND EXISTS (SELECT FROM @extschema@.segment_member m
                                      WHERE m.customer_id OPERATOR(pg_catalog.=) u.id
                                        AND m.segment OPERATOR(pg_catalog.=) ANY (c.segments))))))
     ORDER BY c.code;
END
$$;
COMMENT ON FUNCTION @extschema@.customer_challenges(text, bigint, timestamptz) IS
'a customer''s challenges at an instant (NULL: now): those enrolled in (active, completed, expired) and those open to enrol in (available), with progress, target and what is left in the target''s unit';

CREATE FUNCTION @extschema@.customer_achievements(program text, customer_id bigint)
RETURNS TABLE (achievement text, name text, level integer, levels integer, unlocked_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    pid := (@extschema@.challenge_customer(customer_achievements.program, customer_achievements.customer_id)).program_id;
    RETURN QUERY
    SELECT a.code, a.name, pg_catalog.max(x.level), a.levels, pg_catalog.max(x.unlocked_at)
      FROM @extschema@.customer_achievement x
      JOIN @extschema@.achievement a ON a.program_id OPERATOR(pg_catalog.=) x.program_id
                                    AND a.code OPERATOR(pg_catalog.=) x.achievement
     WHERE x.customer_id OPERATOR(pg_catalog.=) customer_achievements.customer_id
       AND x.program_id OPERATOR(pg_catalog.=) pid
     GROUP BY a.code, a.name, a.levels
     ORDER BY a.code;
END
$$;
COMMENT ON FUNCTION @extschema@.customer_achievements(text, bigint) IS
'a customer''s achievements: the highest level each of their completed challenges unlocked, and when the last was';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.achievement', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.challenge', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.challenge', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.challenge_step', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.challenge_state', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.challenge_receipt', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customer_achievement', '');

REVOKE ALL ON FUNCTION
    @extschema@.challenge_customer(text, bigint),
    @extschema@.challenge_by_code(bigint, text),
    @extschema@.challenge_units(@extschema@.challenge, bigint),
    @extschema@.enrol_challenge(text, bigint, text, timestamptz),
    @extschema@.customer_challenges(text, bigint, timestamptz),
    @extschema@.customer_achievements(text, bigint)
FROM PUBLIC;
