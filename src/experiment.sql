-- src/experiment.sql — experiments (A/B tests of reward strategies):
-- variants of promotions and challenges, customers assigned by a hash
-- (src/experiment.c), and the report of each variant against the control.
-- docs/experiments.md is the contract.

CREATE TABLE @extschema@.experiment (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id  bigint NOT NULL REFERENCES @extschema@.program (id),
    code        text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[[:alnum:]_.-]{1,64}$'),
    name        text,
    salt        text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (program_id, code),
    UNIQUE (program_id, id),
    CONSTRAINT experiment_window_check CHECK (ends_at IS NULL OR ends_at OPERATOR(pg_catalog.>) starts_at)
);
COMMENT ON TABLE @extschema@.experiment IS 'an A/B test: the programme''s customers split into variants by a hash of their id, each variant with its own promotions and challenges';
COMMENT ON COLUMN @extschema@.experiment.id IS 'the experiment id';
COMMENT ON COLUMN @extschema@.experiment.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.experiment.code IS 'unique in the programme: named by the answer and the report';
COMMENT ON COLUMN @extschema@.experiment.name IS 'a description';
COMMENT ON COLUMN @extschema@.experiment.salt IS 'mixed into the hash of the assignment; NULL: the code';
COMMENT ON COLUMN @extschema@.experiment.starts_at IS 'from when it applies to receipts (their "at")';
COMMENT ON COLUMN @extschema@.experiment.ends_at IS 'until when (exclusive); NULL: no end';
COMMENT ON COLUMN @extschema@.experiment.active IS 'false: it applies to no receipt';
COMMENT ON COLUMN @extschema@.experiment.created_at IS 'when it was made';
ALTER TABLE @extschema@.experiment ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.experiment USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.experiment_variant (
    program_id    bigint NOT NULL,
    experiment_id bigint NOT NULL,
    code          text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[[:alnum:]_.-]{1,64}$'),
    weight        integer NOT NULL DEFAULT 1,
    control       boolean NOT NULL DEFAULT false,
    promotions    text[],
    challenges    text[],
    PRIMARY KEY (experiment_id, code),
    FOREIGN KEY (program_id, experiment_id) REFERENCES @extschema@.experiment (program_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX experiment_variant_control_idx ON @extschema@.experiment_variant (experiment_id) WHERE control;
COMMENT ON TABLE @extschema@.experiment_variant IS 'a variant of an experiment: its share of the customers and the promotions and challenges only its customers get';
COMMENT ON COLUMN @extschema@.experiment_variant.program_id IS 'the programme (the experiment''s)';
COMMENT ON COLUMN @extschema@.experiment_variant.experiment_id IS 'the experiment';
COMMENT ON COLUMN @extschema@.experiment_variant.code IS 'unique in the experiment; variants are assigned in the byte order of their codes';
COMMENT ON COLUMN @extschema@.experiment_variant.weight IS 'its share: weight / the sum of the experiment''s weights (1 to 1 000 000)';
COMMENT ON COLUMN @extschema@.experiment_variant.control IS 'the variant the report compares the others with (at most one)';
COMMENT ON COLUMN @extschema@.experiment_variant.promotions IS 'codes of the promotions only its customers get while the experiment applies; NULL: none';
COMMENT ON COLUMN @extschema@.experiment_variant.challenges IS 'codes of the challenges only its customers take part in while the experiment applies; NULL: none';
ALTER TABLE @extschema@.experiment_variant ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.experiment_variant USING (@extschema@.program_open(program_id));

CREATE FUNCTION @extschema@.experiment_variant_check()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
BEGIN
    IF NEW.weight OPERATOR(pg_catalog.<) 1 OR NEW.weight OPERATOR(pg_catalog.>) 1000000 THEN
        RAISE EXCEPTION 'variant "%": weight must be from 1 to 1000000, not %', NEW.code, NEW.weight
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT'
       AND (SELECT pg_catalog.count(*) FROM @extschema@.experiment_variant v
             WHERE v.experiment_id OPERATOR(pg_catalog.=) NEW.experiment_id) OPERATOR(pg_catalog.>=) 64 THEN
        RAISE EXCEPTION 'variant "%": an experiment has at most 64 variants', NEW.code
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.control AND EXISTS (SELECT FROM @extschema@.experiment_variant v
                                WHERE v.experiment_id OPERATOR(pg_catalog.=) NEW.experiment_id AND v.control
                                  AND v.code OPERATOR(pg_catalog.<>) NEW.code) THEN
        RAISE EXCEPTION 'variant "%": the experiment has a control already', NEW.code
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT pg_catalog.min(x) INTO missing FROM pg_catalog.unnest(NEW.promotions) x
     WHERE NOT EXISTS (SELECT FROM @extschema@.promotion p
                        WHERE p.program_id OPERATOR(pg_catalog.=) NEW.program_id
                          AND p.code OPERATOR(pg_catalog.=) x);
    IF missing IS NOT NULL OR EXISTS (SELECT FROM pg_catalog.unnest(NEW.promotions) x WHERE x IS NULL) THEN
        RAISE EXCEPTION 'variant "%": promotion "%" does not exist in the programme', NEW.code, missing
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT pg_catalog.min(x) INTO missing FROM pg_catalog.unnest(NEW.challenges) x
     WHERE NOT EXISTS (SELECT FROM @extschema@.challenge c
                        WHERE c.program_id OPERATOR(pg_catalog.=) NEW.program_id
                          AND c.code OPERATOR(pg_catalog.=) x);
    IF missing IS NOT NULL OR EXISTS (SELECT FROM pg_catalog.unnest(NEW.challenges) x WHERE x IS NULL) THEN
        RAISE EXCEPTION 'variant "%": challenge "%" does not exist in the programme', NEW.code, missing
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER experiment_variant_check
    BEFORE INSERT OR UPDATE ON @extschema@.experiment_variant
    FOR EACH ROW EXECUTE FUNCTION @extschema@.experiment_variant_check();
CREATE TRIGGER experiment_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.experiment
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();
CREATE TRIGGER experiment_variant_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.experiment_variant
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();

-- The variant of a customer in an experiment, as the C code assigns it
-- (docs/experiments.md, "Assignment"), for the report.
CREATE FUNCTION @extschema@.experiment_bucket(salt text, customer_id bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ('x' OPERATOR(pg_catalog.||) pg_catalog.substr(pg_catalog.md5(salt OPERATOR(pg_catalog.||) ':'
             OPERATOR(pg_catalog.||) customer_id::text), 1, 8))::bit(32)::bigint $$;

-- The 97.5 % quantile of Student's t with df degrees of freedom (the
-- Cornish-Fisher expansion of docs/experiments.md).
CREATE FUNCTION @extschema@.t_quantile_975(df double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
SELECT k.z OPERATOR(pg_catalog.+) (k.g1 OPERATOR(pg_catalog./) df)
           OPERATOR(pg_catalog.+) (k.g2 OPERATOR(pg_catalog./) (df ^ 2))
           OPERATOR(pg_catalog.+) (k.g3 OPERATOR(pg_catalog./) (df ^ 3))
           OPERATOR(pg_catalog.+) (k.g4 OPERATOR(pg_catalog./) (df ^ 4))
  FROM (SELECT z,
               (z ^ 3 OPERATOR(pg_catalog.+) z) OPERATOR(pg_catalog./) 4 AS g1,
               (5 * z ^ 5 OPERATOR(pg_catalog.+) 16 * z ^ 3 OPERATOR(pg_catalog.+) 3 * z) OPERATOR(pg_catalog./) 96 AS g2,
               (3 * z ^ 7 OPERATOR(pg_catalog.+) 19 * z ^ 5 OPERATOR(pg_catalog.+) 17 * z ^ 3
                OPERATOR(pg_catalog.-) 15 * z) OPERATOR(pg_catalog./) 384 AS g3,
               (79 * z ^ 9 OPERATOR(pg_catalog.+) 776 * z ^ 7 OPERATOR(pg_catalog.+) 1482 * z ^ 5
                OPERATOR(pg_catalog.-) 1920 * z ^ 3 OPERATOR(pg_catalog.-) 945 * z) OPERATOR(pg_catalog./) 92160 AS g4
          FROM (SELECT 1.959963984540054::double precision AS z) c) k
$$;

CREATE FUNCTION @extschema@.experiment_report(program text, experiment text, period tstzrange)
RETURNS TABLE (variant text, control boolean, measure text, customers bigint, mean numeric,
               stddev numeric, diff numeric, ci_low numeric, ci_high numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    e @extschema@.experiment;
    exponent integer;
    default_currency text;
BEGIN
    IF experiment_report.program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF experiment_report.experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF experiment_report.period IS NULL THEN
        RAISE EXCEPTION 'period must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.lower_inf(experiment_report.period) OR pg_catalog.upper_inf(experiment_report.period) THEN
        RAISE EXCEPTION 'period must have both bounds, not %', experiment_report.period
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    pid := @extschema@.program_id(experiment_report.program);
    SELECT * INTO e FROM @extschema@.experiment x
     WHERE x.program_id OPERATOR(pg_catalog.=) pid AND x.code OPERATOR(pg_catalog.=) experiment_report.experiment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist in programme "%"', experiment_report.experiment,
              experiment_report.program
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT g.money_exponent, g.default_currency INTO exponent, default_currency
      FROM @extschema@.program g WHERE g.id OPERATOR(pg_catalog.=) pid;
    RETURN QUERY
    WITH v AS (
        SELECT w.code, w.control,
               pg_catalog.sum(w.weight) OVER (ORDER BY w.code COLLATE "C") AS upto,
               pg_catalog.sum(w.weight) OVER () AS total
          FROM @extschema@.experiment_variant w
         WHERE w.experiment_id OPERATOR(pg_catalog.=) e.id),
    r AS (
        SELECT t.customer_id,
               pg_catalog.count(*)::numeric AS receipts,
               pg_catalog.sum(t.amount OPERATOR(pg_catalog.-) t.discount)::numeric AS spend,
               pg_catalog.sum(t.discount)::numeric AS discount,
               pg_catalog.sum(COALESCE((t.points_earned OPERATOR(pg_catalog.->>) default_currency)::bigint, 0))::numeric AS earned,
               pg_catalog.sum(COALESCE((t.points_spent OPERATOR(pg_catalog.->>) default_currency)::bigint, 0))::numeric AS spent
          FROM @extschema@.receipt t
         WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.customer_id IS NOT NULL
           AND t.status OPERATOR(pg_catalog.<>) 'cancelled'
           AND t.at OPERATOR(pg_catalog.<@) experiment_report.period
         GROUP BY t.customer_id),
    c AS (
        SELECT u.id,
               (SELECT v.code FROM v
                 WHERE @extschema@.experiment_bucket(COALESCE(e.salt, e.code), u.id) OPERATOR(pg_catalog.%) v.total
                       OPERATOR(pg_catalog.<) v.upto
                 ORDER BY v.upto LIMIT 1) AS variant
          FROM @extschema@.customer u
         WHERE u.program_id OPERATOR(pg_catalog.=) pid AND u.status OPERATOR(pg_catalog.<>) 'merged'
           AND (u.created_at OPERATOR(pg_catalog.<) pg_catalog.upper(experiment_report.period)
                OR u.id OPERATOR(pg_catalog.=) ANY (SELECT r.customer_id FROM r))),
    m AS (
        SELECT c.variant, k.measure,
               CASE k.measure WHEN 'receipts' THEN COALESCE(r.receipts, 0)
                              WHEN 'spend' THEN COALESCE(r.spend, 0) OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, exponent)
                              WHEN 'discount' THEN COALESCE(r.discount, 0) OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, exponent)
                              WHEN 'points_earned' THEN COALESCE(r.earned, 0)
                              ELSE COALESCE(r.spent, 0) END AS x
          FROM c LEFT JOIN r ON r.customer_id OPERATOR(pg_catalog.=) c.id
         CROSS JOIN (VALUES (1, 'receipts'), (2, 'spend'), (3, 'discount'), (4, 'points_earned'), (5, 'points_spent')) k (n, measure)),
    s AS (
        SELECT v.code AS variant, v.control, k.measure, k.n,
               pg_catalog.count(m.x) AS n_cust, pg_catalog.avg(m.x) AS mean, pg_catalog.var_samp(m.x) AS var
          FROM v CROSS JOIN (VALUES (1, 'receipts'), (2, 'spend'), (3, 'discount'), (4, 'points_earned'), (5, 'points_spent')) k (n, measure)
          LEFT JOIN m ON m.variant OPERATOR(pg_catalog.=) v.code AND m.measure OPERATOR(pg_catalog.=) k.measure
         GROUP BY v.code, v.control, k.measure, k.n),
    w AS (
        SELECT s.*, b.mean AS c_mean,
               CASE WHEN s.n_cust OPERATOR(pg_catalog.>) 1 AND b.n_cust OPERATOR(pg_catalog.>) 1 AND NOT s.control
                    THEN (s.var OPERATOR(pg_catalog./) s.n_cust) END AS a2,
               CASE WHEN s.n_cust OPERATOR(pg_catalog.>) 1 AND b.n_cust OPERATOR(pg_catalog.>) 1 AND NOT s.control
                    THEN (b.var OPERATOR(pg_catalog./) b.n_cust) END AS b2,
               s.n_cust OPERATOR(pg_catalog.-) 1 AS a_df, b.n_cust OPERATOR(pg_catalog.-) 1 AS b_df
          FROM s LEFT JOIN s b ON b.control AND b.measure OPERATOR(pg_catalog.=) s.measure),
    h AS (
        SELECT w.*,
               CASE WHEN (w.a2 OPERATOR(pg_catalog.+) w.b2) OPERATOR(pg_catalog.>) 0
                    THEN @extschema@.t_quantile_975((((w.a2 OPERATOR(pg_catalog.+) w.b2) ^ 2)
                                                     OPERATOR(pg_catalog./) (((w.a2 ^ 2) OPERATOR(pg_catalog./) w.a_df)
                                                                             OPERATOR(pg_catalog.+) ((w.b2 ^ 2) OPERATOR(pg_catalog./) w.b_df)))::double precision)::numeric
                         OPERATOR(pg_catalog.*) pg_catalog.sqrt(w.a2 OPERATOR(pg_catalog.+) w.b2) END AS half
          FROM w)
    SELECT h.variant, h.control, h.measure, h.n_cust,
           pg_catalog.round(h.mean, 6), pg_catalog.round(pg_catalog.sqrt(h.var), 6),
           CASE WHEN NOT h.control AND h.c_mean IS NOT NULL THEN pg_catalog.round(h.mean OPERATOR(pg_catalog.-) h.c_mean, 6) END,
           pg_catalog.round((h.mean OPERATOR(pg_catalog.-) h.c_mean) OPERATOR(pg_catalog.-) h.half, 6),
           pg_catalog.round((h.mean OPERATOR(pg_catalog.-) h.c_mean) OPERATOR(pg_catalog.+) h.half, 6)
      FROM h
     ORDER BY h.variant COLLATE "C", h.n;
END
$$;
COMMENT ON FUNCTION @extschema@.experiment_report(text, text, tstzrange) IS
'each variant of an experiment against its control over a period: customers, the mean and standard deviation per customer of receipts, spend, discount, points earned and spent, the difference from the control with its 95 % Welch interval';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.experiment', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.experiment', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.experiment_variant', '');

REVOKE ALL ON FUNCTION
    @extschema@.experiment_report(text, text, tstzrange)
FROM PUBLIC;
