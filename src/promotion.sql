-- src/promotion.sql — the promotion catalogue (promotions, coupons, personal
-- offers, usage counters, segments), the programme's caps, the catalogue
-- generation, and loyalty.calculate (src/calculate.c).

CREATE TABLE @extschema@.promotion (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id         bigint NOT NULL REFERENCES @extschema@.program (id),
    code               text NOT NULL
                       CHECK (code OPERATOR(pg_catalog.~) '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name               text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    status             text NOT NULL DEFAULT 'draft'
                       CHECK (status OPERATOR(pg_catalog.=) ANY ('{draft,active,paused,ended}'::text[])),
    active             tstzrange NOT NULL DEFAULT '(,)'
                       CHECK (NOT pg_catalog.isempty(active)),
    weekdays           smallint[]
                       CHECK (weekdays OPERATOR(pg_catalog.<@) '{1,2,3,4,5,6,7}'::smallint[]
                              AND pg_catalog.cardinality(weekdays) OPERATOR(pg_catalog.>) 0),
    hours              int4range
                       CHECK (hours OPERATOR(pg_catalog.<@) '[0,24)'::int4range
                              AND NOT pg_catalog.isempty(hours)),
    countries          text[] CHECK (pg_catalog.cardinality(countries) OPERATOR(pg_catalog.>) 0),
    cities             text[] CHECK (pg_catalog.cardinality(cities) OPERATOR(pg_catalog.>) 0),
    stores             text[] CHECK (pg_catalog.cardinality(stores) OPERATOR(pg_catalog.>) 0),
    channels           text[] CHECK (pg_catalog.cardinality(channels) OPERATOR(pg_catalog.>) 0),
    audience           text NOT NULL DEFAULT 'all'
                       CHECK (audience OPERATOR(pg_catalog.=) ANY
                              ('{all,tiers,segments,personal,birthday,coupon}'::text[])),
    tiers              text[],
    segments           text[],
    birthday_days      smallint CHECK (birthday_days BETWEEN 0 AND 366),
    line_condition     @extschema@.condition,
    receipt_condition  @extschema@.condition,
    benefit            jsonb NOT NULL,
    stacking_group     text CHECK (stacking_group OPERATOR(pg_catalog.<>) ''),
    priority           integer NOT NULL DEFAULT 0,
    exclusive          boolean NOT NULL DEFAULT false,
    limit_per_customer integer CHECK (limit_per_customer OPERATOR(pg_catalog.>) 0),
    limit_period       text CHECK (limit_period OPERATOR(pg_catalog.=) ANY ('{day,week,month,year,ever}'::text[])),
    limit_total        bigint CHECK (limit_total OPERATOR(pg_catalog.>) 0),
    budget             numeric CHECK (budget OPERATOR(pg_catalog.>) 0),
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (program_id, code),
    UNIQUE (program_id, id),
    CHECK ((audience OPERATOR(pg_catalog.=) 'tiers') OPERATOR(pg_catalog.=) (tiers IS NOT NULL)),
    CHECK ((audience OPERATOR(pg_catalog.=) 'segments') OPERATOR(pg_catalog.=) (segments IS NOT NULL)),
    CHECK ((audience OPERATOR(pg_catalog.=) 'birthday') OPERATOR(pg_catalog.=) (birthday_days IS NOT NULL)),
    CHECK ((limit_per_customer IS NULL) OPERATOR(pg_catalog.=) (limit_period IS NULL))
);
COMMENT ON TABLE @extschema@.promotion IS 'a benefit with the lines, receipts, customers, times and places it applies to';
COMMENT ON COLUMN @extschema@.promotion.id IS 'the promotion id';
COMMENT ON COLUMN @extschema@.promotion.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.promotion.code IS 'short name, unique in the programme, shown to tills and reports';
COMMENT ON COLUMN @extschema@.promotion.name IS 'display name';
COMMENT ON COLUMN @extschema@.promotion.status IS 'draft, active, paused or ended: calculate uses active promotions only';
COMMENT ON COLUMN @extschema@.promotion.active IS 'the instants the promotion runs (default: always)';
COMMENT ON COLUMN @extschema@.promotion.weekdays IS 'ISO weekdays (1 Monday .. 7 Sunday) of the receipt''s local date; NULL: every day';
COMMENT ON COLUMN @extschema@.promotion.hours IS 'local hours of the receipt, e.g. [10,14) for 10:00 to 13:59; NULL: all day';
COMMENT ON COLUMN @extschema@.promotion.countries IS 'countries of the receipt''s store; NULL: anywhere';
COMMENT ON COLUMN @extschema@.promotion.cities IS 'cities of the receipt''s store; NULL: anywhere';
COMMENT ON COLUMN @extschema@.promotion.stores IS 'stores; NULL: every store';
COMMENT ON COLUMN @extschema@.promotion.channels IS 'sales channels (pos, web, app...); NULL: every channel';
COMMENT ON COLUMN @extschema@.promotion.audience IS 'all; tiers; segments; personal (customers with a personal offer); birthday (within birthday_days of the birthday); coupon (holders of one of its coupons)';
COMMENT ON COLUMN @extschema@.promotion.tiers IS 'the tiers addressed (audience tiers), compared with customer.tier';
COMMENT ON COLUMN @extschema@.promotion.segments IS 'codes of the segments addressed (audience segments); not a foreign key';
COMMENT ON COLUMN @extschema@.promotion.birthday_days IS 'the promotion applies within this many days of the customer''s birthday (audience birthday)';
COMMENT ON COLUMN @extschema@.promotion.line_condition IS 'a condition: the lines the benefit applies to; NULL: every line';
COMMENT ON COLUMN @extschema@.promotion.receipt_condition IS 'a condition over receipt.* and customer.* that must hold; NULL: always';
COMMENT ON COLUMN @extschema@.promotion.benefit IS 'what the customer gets, {"kind": "percent_off", "percent": 10}, stored in its normal form (see docs/promotions.md)';
COMMENT ON COLUMN @extschema@.promotion.stacking_group IS 'promotions of one group never combine on a line (line benefits) or a receipt (receipt benefits); NULL: combines with all';
COMMENT ON COLUMN @extschema@.promotion.priority IS 'breaks ties between combinations of equal benefit: higher first';
COMMENT ON COLUMN @extschema@.promotion.exclusive IS 'applies alone or not at all';
COMMENT ON COLUMN @extschema@.promotion.limit_per_customer IS 'uses per customer in each limit_period; NULL: no limit';
COMMENT ON COLUMN @extschema@.promotion.limit_period IS 'the period of limit_per_customer: day, week, month, year or ever';
COMMENT ON COLUMN @extschema@.promotion.limit_total IS 'uses over all customers; NULL: no limit';
COMMENT ON COLUMN @extschema@.promotion.budget IS 'money the promotion may give away over all customers, in major units; NULL: no limit';
COMMENT ON COLUMN @extschema@.promotion.created_at IS 'when the promotion was created';
COMMENT ON COLUMN @extschema@.promotion.updated_at IS 'set by the trigger promotion_check on every UPDATE';
ALTER TABLE @extschema@.promotion ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.promotion USING (@extschema@.program_open(program_id));

CREATE INDEX promotion_active_idx ON @extschema@.promotion (program_id)
    WHERE status OPERATOR(pg_catalog.=) 'active';

CREATE TABLE @extschema@.coupon (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id   bigint NOT NULL,
    code         text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[[:alnum:]_-]{1,64}$'),
    promotion_id bigint NOT NULL,
    kind         text NOT NULL
                 CHECK (kind OPERATOR(pg_catalog.=) ANY ('{single_use,multi_use,personal}'::text[])),
    customer_id  bigint,
    uses         integer NOT NULL DEFAULT 0 CHECK (uses OPERATOR(pg_catalog.>=) 0),
    use_limit    integer CHECK (use_limit OPERATOR(pg_catalog.>) 0),
    valid        tstzrange NOT NULL DEFAULT '(,)',
    state        text NOT NULL DEFAULT 'issued'
                 CHECK (state OPERATOR(pg_catalog.=) ANY ('{issued,redeemed,cancelled}'::text[])),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    issued_by    text DEFAULT @extschema@.actor(),
    issue_reason text,
    FOREIGN KEY (program_id, promotion_id) REFERENCES @extschema@.promotion (program_id, id),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id),
    CHECK ((kind OPERATOR(pg_catalog.=) 'personal') OPERATOR(pg_catalog.=) (customer_id IS NOT NULL)),
    CHECK (kind OPERATOR(pg_catalog.<>) 'single_use' OR use_limit IS NULL OR use_limit OPERATOR(pg_catalog.=) 1)
);
CREATE UNIQUE INDEX coupon_code_idx ON @extschema@.coupon (program_id, pg_catalog.lower(code));
CREATE INDEX coupon_promotion_idx ON @extschema@.coupon (promotion_id);
COMMENT ON TABLE @extschema@.coupon IS 'a code that unlocks a promotion: single use, multi use, or personal to one customer';
COMMENT ON COLUMN @extschema@.coupon.id IS 'the coupon id';
COMMENT ON COLUMN @extschema@.coupon.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.coupon.code IS 'the code as printed: letters, digits, _ and -, 1 to 64 characters; unique in the programme regardless of case';
COMMENT ON COLUMN @extschema@.coupon.promotion_id IS 'the promotion it unlocks, always of the same programme';
COMMENT ON COLUMN @extschema@.coupon.kind IS 'single_use (once), multi_use (use_limit times, or without limit), personal (only customer_id, use_limit times, once by default)';
COMMENT ON COLUMN @extschema@.coupon.customer_id IS 'the customer of a personal coupon';
COMMENT ON COLUMN @extschema@.coupon.uses IS 'how many committed receipts used the coupon';
COMMENT ON COLUMN @extschema@.coupon.use_limit IS 'most uses; NULL: once for single_use and personal, without limit for multi_use';
COMMENT ON COLUMN @extschema@.coupon.valid IS 'when the coupon may be used; the default: always';
COMMENT ON COLUMN @extschema@.coupon.state IS 'issued; redeemed (used up); cancelled';
COMMENT ON COLUMN @extschema@.coupon.created_at IS 'when the coupon was issued';
COMMENT ON COLUMN @extschema@.coupon.issued_by IS 'the role that issued it (loyalty.actor()); NULL for coupons issued before 0.10';
COMMENT ON COLUMN @extschema@.coupon.issue_reason IS 'why it was issued (a campaign, a complaint), as the issuer wrote it';
ALTER TABLE @extschema@.coupon ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.coupon USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.personal_offer (
    customer_id  bigint NOT NULL,
    promotion_id bigint NOT NULL,
    program_id   bigint NOT NULL,
    uses_left    integer CHECK (uses_left OPERATOR(pg_catalog.>=) 0),
    valid        tstzrange NOT NULL DEFAULT '(,)',
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (customer_id, promotion_id),
    FOREIGN KEY (program_id, promotion_id) REFERENCES @extschema@.promotion (program_id, id),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id)
);
COMMENT ON TABLE @extschema@.personal_offer IS 'a promotion offered to one customer: what a personal-audience promotion requires; read by customer only';
COMMENT ON COLUMN @extschema@.personal_offer.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.personal_offer.promotion_id IS 'the promotion offered';
COMMENT ON COLUMN @extschema@.personal_offer.program_id IS 'the programme of both';
COMMENT ON COLUMN @extschema@.personal_offer.uses_left IS 'uses the customer has left; NULL: without limit';
COMMENT ON COLUMN @extschema@.personal_offer.valid IS 'when the offer may be used; the default: always';
COMMENT ON COLUMN @extschema@.personal_offer.created_at IS 'when the offer was made';
ALTER TABLE @extschema@.personal_offer ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.personal_offer USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.counter (
    promotion_id bigint NOT NULL REFERENCES @extschema@.promotion (id),
    customer_id  bigint NOT NULL,
    period_start date NOT NULL,
    uses         bigint NOT NULL DEFAULT 0 CHECK (uses OPERATOR(pg_catalog.>=) 0),
    money        bigint NOT NULL DEFAULT 0 CHECK (money OPERATOR(pg_catalog.>=) 0),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (promotion_id, customer_id, period_start)
);
COMMENT ON TABLE @extschema@.counter IS 'uses of a promotion per customer and period, and over all customers (customer_id 0)';
COMMENT ON COLUMN @extschema@.counter.promotion_id IS 'the promotion';
COMMENT ON COLUMN @extschema@.counter.customer_id IS 'the customer; 0 for the promotion''s global count and budget; not a foreign key';
COMMENT ON COLUMN @extschema@.counter.period_start IS 'first day of the period (day, ISO week, month, year); -infinity for ever';
COMMENT ON COLUMN @extschema@.counter.uses IS 'receipts that used the promotion in the period';
COMMENT ON COLUMN @extschema@.counter.money IS 'discount given in the period, in minor units of money';
COMMENT ON COLUMN @extschema@.counter.updated_at IS 'when the counter last moved';
ALTER TABLE @extschema@.counter ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.counter USING (
    EXISTS (SELECT 1 FROM @extschema@.promotion p
             WHERE p.id OPERATOR(pg_catalog.=) promotion_id
               AND @extschema@.program_open(p.program_id)));

CREATE TABLE @extschema@.segment (
    program_id bigint NOT NULL REFERENCES @extschema@.program (id),
    code       text NOT NULL CHECK (code OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name       text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    -- rule segments (src/tiers.sql)
    kind          text NOT NULL DEFAULT 'static'
                  CHECK (kind OPERATOR(pg_catalog.=) ANY ('{static,rule}'::text[])),
    rule          @extschema@.condition,
    stats_window  interval NOT NULL DEFAULT '365 days'
                  CHECK (stats_window OPERATOR(pg_catalog.>) '0'::interval),
    refresh_every interval NOT NULL DEFAULT '1 day'
                  CHECK (refresh_every OPERATOR(pg_catalog.>) '0'::interval),
    refreshed_at  timestamptz,
    members       bigint,
    PRIMARY KEY (program_id, code),
    CONSTRAINT segment_rule_check CHECK ((kind OPERATOR(pg_catalog.=) 'rule') OPERATOR(pg_catalog.=) (rule IS NOT NULL))
);
COMMENT ON TABLE @extschema@.segment IS 'a named set of customers that promotions can address';
COMMENT ON COLUMN @extschema@.segment.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.segment.code IS 'the name promotion.segments lists: lower-case letters, digits, _ and -, 1 to 63 characters';
COMMENT ON COLUMN @extschema@.segment.name IS 'display name';
COMMENT ON COLUMN @extschema@.segment.kind IS 'static: members are added and removed by hand; rule: refresh_segments keeps the customers the rule holds for';
COMMENT ON COLUMN @extschema@.segment.rule IS 'a condition over customer.* (the document calculate reads, with recency_days, frequency and monetary over stats_window)';
COMMENT ON COLUMN @extschema@.segment.stats_window IS 'the window of the purchase statistics the rule reads';
COMMENT ON COLUMN @extschema@.segment.refresh_every IS 'how often refresh_segments rebuilds a rule segment';
COMMENT ON COLUMN @extschema@.segment.refreshed_at IS 'when the rule segment was last rebuilt; NULL: never';
COMMENT ON COLUMN @extschema@.segment.members IS 'members after the last rebuild';
ALTER TABLE @extschema@.segment ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.segment USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.segment_member (
    customer_id bigint NOT NULL,
    program_id  bigint NOT NULL,
    segment     text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (customer_id, segment),
    FOREIGN KEY (program_id, segment) REFERENCES @extschema@.segment (program_id, code) ON DELETE CASCADE,
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id)
);
CREATE INDEX segment_member_segment_idx ON @extschema@.segment_member (program_id, segment);
COMMENT ON TABLE @extschema@.segment_member IS 'the customers of a segment';
COMMENT ON COLUMN @extschema@.segment_member.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.segment_member.program_id IS 'the programme of both';
COMMENT ON COLUMN @extschema@.segment_member.segment IS 'the segment''s code';
COMMENT ON COLUMN @extschema@.segment_member.added_at IS 'when the customer was added';
ALTER TABLE @extschema@.segment_member ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.segment_member USING (@extschema@.program_open(program_id));

-- The catalogue generation: bumped by every statement that changes what the
-- backends compile (promotions, programmes, currencies); a backend compares
-- it with the generation it compiled and recompiles only when it moved.
-- The numbers come from a sequence, which a rollback does not give back: a
-- generation is never reused, so a catalogue compiled from changes that
-- were rolled back never passes for a committed one.
CREATE SEQUENCE @extschema@.catalog_generation_seq;
CREATE TABLE @extschema@.catalog_generation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL,
    changed_at timestamptz NOT NULL
);
INSERT INTO @extschema@.catalog_generation
VALUES (true, pg_catalog.nextval('@extschema@.catalog_generation_seq'), pg_catalog.now());
COMMENT ON TABLE @extschema@.catalog_generation IS 'one row: the generation of the compiled promotion catalogue';
COMMENT ON COLUMN @extschema@.catalog_generation.singleton IS 'always true: the table holds one row';
COMMENT ON COLUMN @extschema@.catalog_generation.generation IS '1 when the extension is created; then the next value of the sequence loyalty.catalog_generation_seq for every statement that changed promotion, program, currency or tier';
COMMENT ON COLUMN @extschema@.catalog_generation.changed_at IS 'now() of the last bump, or of the creation of the extension';

CREATE FUNCTION @extschema@.catalog_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'loyalty_catalog_changed'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.catalog_changed() IS
'statement trigger: bump the catalogue generation so that every backend recompiles';

CREATE TRIGGER promotion_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.promotion
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();
CREATE TRIGGER program_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.program
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();
CREATE TRIGGER currency_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.currency
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.catalog_changed();

-- Runs as the owner: the roles it is granted to (src/roles.sql: all three)
-- read no table.
CREATE FUNCTION @extschema@.catalog_generation()
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT generation FROM @extschema@.catalog_generation $$;
COMMENT ON FUNCTION @extschema@.catalog_generation() IS
'the current generation of the promotion catalogue (calculate reports the one it used)';
REVOKE ALL ON FUNCTION @extschema@.catalog_generation() FROM PUBLIC;

-- A benefit is checked and written in its normal form when it is saved:
-- src/benefit.c reads the same form when the catalogue is compiled.
CREATE FUNCTION @extschema@.normalize_benefit(benefit jsonb, program_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_normalize_benefit'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.normalize_benefit(jsonb, bigint) IS
'check a promotion''s benefit against its programme and return it in normal form; errors name the field';

CREATE FUNCTION @extschema@.promotion_check()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A restore (pg_dump scripts turn check_function_bodies off) writes
    -- benefits that were checked when first saved, possibly before the
    -- currencies they name: they are kept as they are.
    IF pg_catalog.current_setting('check_function_bodies') OPERATOR(pg_catalog.<>) 'off' THEN
        NEW.benefit := @extschema@.normalize_benefit(NEW.benefit, NEW.program_id);
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        NEW.updated_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER promotion_check
    BEFORE INSERT OR UPDATE ON @extschema@.promotion
    FOR EACH ROW EXECUTE FUNCTION @extschema@.promotion_check();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.promotion', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.promotion', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.coupon', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.personal_offer', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.counter', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.segment', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.segment_member', '');

-- The receipt calculation (src/calculate.c): read-only, stateless.
CREATE FUNCTION @extschema@.calculate(receipt jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_calculate_compact'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.calculate(jsonb) IS
'the best discounts, points to spend and points earned for a receipt, spread over its lines; writes nothing';

CREATE FUNCTION public.loyalty_calculate(receipt jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_calculate_compact'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION public.loyalty_calculate(jsonb) IS 'loyalty.calculate under its checkout name';

REVOKE ALL ON FUNCTION
    @extschema@.catalog_changed(),
    @extschema@.normalize_benefit(jsonb, bigint),
    @extschema@.calculate(jsonb),
    public.loyalty_calculate(jsonb)
FROM PUBLIC;
