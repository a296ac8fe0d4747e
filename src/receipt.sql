
-- src/receipt.sql — committed receipts and their lines (partitioned by the
-- month of the commit), the register of receipt ids that makes commit
-- idempotent, the accrual queue, and commit, cancel and release_accruals.
--
-- commit writes what calculate shows: it locks the customer's wallets,
-- calculates again, compares with what the till saw, and then writes the
-- receipt, the redemption of exactly the lots calculate chose
-- (loyalty.spend_lots), the coupon, offer and counter uses, and the accrual,
-- at once or queued for the programme's accrual_delay.  The entries commit
-- writes carry no idempotency key (the receipt id is its idempotency, and
-- the receipt row names them: entry_currency, entry_version); the release
-- of a queued accrual carries 'loyalty:accrual:<receipt>:<n>', so that
-- cancel and refund find it and a second release of it is a replay.

-- One row per committed receipt id: the idempotency register.  A
-- partitioned table cannot hold a unique key without its partition key, so
-- the id is unique here, and the receipt is found by (id, committed_at).
CREATE TABLE @extschema@.receipt_key (
    program_id   bigint NOT NULL,
    receipt_id   text NOT NULL,
    committed_at timestamptz NOT NULL,
    digest       bytea NOT NULL,
    PRIMARY KEY (program_id, receipt_id)
);
COMMENT ON TABLE @extschema@.receipt_key IS 'every committed receipt id of a programme, once: what makes commit idempotent';
COMMENT ON COLUMN @extschema@.receipt_key.committed_at IS 'when the receipt was committed: its partition in loyalty.receipt';
COMMENT ON COLUMN @extschema@.receipt_key.digest IS 'SHA-256 of the receipt document as committed: a replay must send the same document';
COMMENT ON COLUMN @extschema@.receipt_key.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt_key.receipt_id IS 'the receipt id the till sent, unique in the programme';
ALTER TABLE @extschema@.receipt_key ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.receipt_key USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.receipt (
    program_id     bigint NOT NULL,
    receipt_id     text NOT NULL,
    committed_at   timestamptz NOT NULL,
    customer_id    bigint,
    status         text NOT NULL DEFAULT 'committed'
                   CHECK (status OPERATOR(pg_catalog.=) ANY ('{committed,partly_refunded,refunded,cancelled}'::text[])),
    at             timestamptz NOT NULL,
    store          text,
    amount         bigint NOT NULL,
    discount       bigint NOT NULL,
    points_money   bigint NOT NULL,
    to_pay         bigint NOT NULL,
    points_spent   jsonb NOT NULL,
    points_earned  jsonb NOT NULL,
    accruals       jsonb NOT NULL,
    coupons        text[] NOT NULL,
    counters       jsonb NOT NULL,
    offers         bigint[] NOT NULL,
    -- the answer and the document are some kilobytes of JSON: lz4
    -- compresses them in a fraction of pglz's time
    answer         jsonb COMPRESSION lz4 NOT NULL,
    actor          text NOT NULL,
    cancelled_at   timestamptz,
    cancel_reason  text,
    cancel_result  jsonb,
    document       jsonb COMPRESSION lz4,
    discount_lost  bigint NOT NULL DEFAULT 0 CHECK (discount_lost OPERATOR(pg_catalog.>=) 0),
    -- The lines, as typed arrays in the receipt's own row: element i of
    -- each line_ array is the i-th line as sent.  A line's discounts, the
    -- lots that paid it and what it earned are lists of their own, each
    -- element naming its line by that position (the _line arrays).
    line_no             integer[] NOT NULL,
    line_sku            text[] NOT NULL,
    line_qty            numeric[] NOT NULL,
    line_price          bigint[] NOT NULL,
    line_amount         bigint[] NOT NULL,
    line_discount       bigint[] NOT NULL,
    line_points_money   bigint[] NOT NULL,
    line_to_pay         bigint[] NOT NULL,
    line_refunded_qty   numeric[] NOT NULL,
    discount_line       integer[] NOT NULL,
    discount_promotion  bigint[] NOT NULL,
    discount_amount     bigint[] NOT NULL,
    paid_line           integer[] NOT NULL,
    paid_lot            bigint[] NOT NULL,
    paid_currency       text[] NOT NULL,
    paid_points         bigint[] NOT NULL,
    paid_money          bigint[] NOT NULL,
    earned_line         integer[] NOT NULL,
    earned_currency     text[] NOT NULL,
    earned_base         bigint[] NOT NULL,
    earned_points       bigint[] NOT NULL,
    earned_by_entry     integer[] NOT NULL,
    earned_by_promotion bigint[] NOT NULL,
    earned_by_points    bigint[] NOT NULL,
    -- The ledger entries commit wrote (each redemption, each accrual
    -- released at once), by their key in the ledger: element i of both
    -- arrays is one entry.  They carry no idempotency key of their own:
    -- the receipt id makes commit idempotent, and cancel and refund find
    -- them here.
    entry_currency      text[] NOT NULL DEFAULT '{}',
    entry_version       bigint[] NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (committed_at);
-- No key or index here: each partition has its own (see partition_indexes
-- below).
COMMENT ON TABLE @extschema@.receipt IS 'a committed receipt: its totals, what it spent, earned and used, and the answer commit gave; partitioned by the month of committed_at';
COMMENT ON COLUMN @extschema@.receipt.receipt_id IS 'the receipt id the till sent, unique in the programme';
COMMENT ON COLUMN @extschema@.receipt.committed_at IS 'the commit''s transaction time (the partition key)';
COMMENT ON COLUMN @extschema@.receipt.customer_id IS 'the customer; NULL for an anonymous receipt or an identifier that found nobody';
COMMENT ON COLUMN @extschema@.receipt.status IS 'committed, partly_refunded, refunded (every line returned) or cancelled';
COMMENT ON COLUMN @extschema@.receipt.at IS 'the receipt''s time as calculated';
COMMENT ON COLUMN @extschema@.receipt.amount IS 'what the lines come to before discounts, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt.discount IS 'discounts, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt.points_money IS 'money paid with points, in minor units';
COMMENT ON COLUMN @extschema@.receipt.to_pay IS 'what the customer paid in money, in minor units';
COMMENT ON COLUMN @extschema@.receipt.points_spent IS 'points spent per currency, in minor units of the currency: {"bonus": 500}';
COMMENT ON COLUMN @extschema@.receipt.points_earned IS 'points earned per currency, in minor units, bonus lots included';
COMMENT ON COLUMN @extschema@.receipt.accruals IS 'the accruals: [{key, currency, amount, kind, valid_for, restriction}], released at once (key null since 0.18) or queued (key of the release''s ledger entry)';
COMMENT ON COLUMN @extschema@.receipt.coupons IS 'the coupons the receipt used (as sent)';
COMMENT ON COLUMN @extschema@.receipt.counters IS 'the usage counters it counted in: [{promotion_id, customer_id, period_start, money}]';
COMMENT ON COLUMN @extschema@.receipt.offers IS 'promotions whose personal offer it used';
COMMENT ON COLUMN @extschema@.receipt.answer IS 'the answer commit returned, which a replay returns again; since 0.19 the default answer without its lines, which a replay renders back from the line_ and earned_ arrays (an answer with "explain" keeps them)';
COMMENT ON COLUMN @extschema@.receipt.actor IS 'the role that committed it (login role, or the one set by SET ROLE)';
COMMENT ON COLUMN @extschema@.receipt.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt.store IS 'the store the receipt named, as sent (NULL if none)';
COMMENT ON COLUMN @extschema@.receipt.cancelled_at IS 'when loyalty.cancel undid it; NULL while it stands';
COMMENT ON COLUMN @extschema@.receipt.cancel_reason IS 'the reason given to loyalty.cancel';
COMMENT ON COLUMN @extschema@.receipt.cancel_result IS 'the answer loyalty.cancel returned, which a repeated cancel returns again';
COMMENT ON COLUMN @extschema@.receipt.document IS
'the receipt as sent to commit, for recomputing the lines kept after a return (NULL for receipts committed before version 0.9)';
COMMENT ON COLUMN @extschema@.receipt.discount_lost IS
'minor units of discount the lines kept no longer earn after the returns so far, kept back from the money refunded';
COMMENT ON COLUMN @extschema@.receipt.line_no IS 'the number of each line (as sent, or its place), in the order sent';
COMMENT ON COLUMN @extschema@.receipt.line_sku IS 'each line''s sku as sent (NULL if none)';
COMMENT ON COLUMN @extschema@.receipt.line_qty IS 'each line''s quantity sold, up to 3 decimals';
COMMENT ON COLUMN @extschema@.receipt.line_price IS 'each line''s price per unit, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt.line_amount IS 'each line''s price times quantity, in minor units';
COMMENT ON COLUMN @extschema@.receipt.line_discount IS 'each line''s discounts, in minor units';
COMMENT ON COLUMN @extschema@.receipt.line_points_money IS 'money of each line paid with points, in minor units';
COMMENT ON COLUMN @extschema@.receipt.line_to_pay IS 'what each line cost in money, in minor units';
COMMENT ON COLUMN @extschema@.receipt.line_refunded_qty IS 'quantity of each line returned by refunds so far';
COMMENT ON COLUMN @extschema@.receipt.discount_line IS 'for each discount: its line''s place in the line_ arrays (1-based)';
COMMENT ON COLUMN @extschema@.receipt.discount_promotion IS 'for each discount: the promotion (id) that gave it';
COMMENT ON COLUMN @extschema@.receipt.discount_amount IS 'for each discount: money off the line, in minor units';
COMMENT ON COLUMN @extschema@.receipt.paid_line IS 'for each payment with points: its line''s place in the line_ arrays';
COMMENT ON COLUMN @extschema@.receipt.paid_lot IS 'for each payment with points: the lot (id) it came from';
COMMENT ON COLUMN @extschema@.receipt.paid_currency IS 'for each payment with points: the lot''s currency';
COMMENT ON COLUMN @extschema@.receipt.paid_points IS 'for each payment with points: points, in minor units of the currency';
COMMENT ON COLUMN @extschema@.receipt.paid_money IS 'for each payment with points: the money they paid, in minor units';
COMMENT ON COLUMN @extschema@.receipt.earned_line IS 'for each accrual of a line in one currency: the line''s place in the line_ arrays';
COMMENT ON COLUMN @extschema@.receipt.earned_currency IS 'for each accrual of a line: its currency';
COMMENT ON COLUMN @extschema@.receipt.earned_base IS 'for each accrual of a line: the programme''s base rate''s part, in minor units of the currency';
COMMENT ON COLUMN @extschema@.receipt.earned_points IS 'for each accrual of a line: all it earned (base and promotions), in minor units';
COMMENT ON COLUMN @extschema@.receipt.earned_by_entry IS 'for each promotion''s part of an accrual: the accrual''s place in the earned_ arrays';
COMMENT ON COLUMN @extschema@.receipt.earned_by_promotion IS 'for each promotion''s part of an accrual: the promotion (id)';
COMMENT ON COLUMN @extschema@.receipt.earned_by_points IS 'for each promotion''s part of an accrual: its points, in minor units';
COMMENT ON COLUMN @extschema@.receipt.entry_currency IS 'for each ledger entry commit wrote (redemptions, accruals released at once): its wallet''s currency (empty before 0.18: those entries carry keys)';
COMMENT ON COLUMN @extschema@.receipt.entry_version IS 'for each ledger entry commit wrote: its version in the customer''s wallet of that currency';
ALTER TABLE @extschema@.receipt ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.receipt USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.receipt_refund (
    program_id       bigint NOT NULL,
    receipt_id       text NOT NULL,
    refund_id        text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    request          jsonb NOT NULL,
    lines            jsonb NOT NULL,
    money            bigint NOT NULL,
    money_withheld   bigint NOT NULL,
    points_returned  jsonb NOT NULL,
    points_taken     jsonb NOT NULL,
    debt             jsonb NOT NULL,
    result           jsonb NOT NULL,
    actor            text NOT NULL,
    reason           text,
    discount_withheld bigint NOT NULL DEFAULT 0,
    counters_returned jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (program_id, receipt_id, refund_id)
);
COMMENT ON TABLE @extschema@.receipt_refund IS 'a return of some lines of a committed receipt: what went back in money and points';
COMMENT ON COLUMN @extschema@.receipt_refund.refund_id IS 'the return''s own id, unique per receipt: a repeated refund with it is a replay';
COMMENT ON COLUMN @extschema@.receipt_refund.request IS 'the lines argument as sent: a replay must send the same';
COMMENT ON COLUMN @extschema@.receipt_refund.lines IS 'the lines returned: [{line, qty}] as requested, qty filled in';
COMMENT ON COLUMN @extschema@.receipt_refund.money IS 'money to give back, in minor units, after money_withheld';
COMMENT ON COLUMN @extschema@.receipt_refund.money_withheld IS 'money kept for earned points already spent (programme refund_shortfall = money), in minor units';
COMMENT ON COLUMN @extschema@.receipt_refund.points_returned IS 'points paid by the lines given back to their lots, per currency';
COMMENT ON COLUMN @extschema@.receipt_refund.points_taken IS 'points the lines earned taken back (from the queue or the wallet), per currency';
COMMENT ON COLUMN @extschema@.receipt_refund.debt IS 'points the wallet could not give back, owed per currency (programme refund_shortfall = debt)';
COMMENT ON COLUMN @extschema@.receipt_refund.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt_refund.receipt_id IS 'the receipt returned from';
COMMENT ON COLUMN @extschema@.receipt_refund.created_at IS 'when the return was made';
COMMENT ON COLUMN @extschema@.receipt_refund.result IS 'the answer loyalty.refund returned, which a repeated refund returns again';
COMMENT ON COLUMN @extschema@.receipt_refund.actor IS 'the role that made the return (login role, or the one set by SET ROLE)';
COMMENT ON COLUMN @extschema@.receipt_refund.reason IS 'the reason given to loyalty.refund, if any';
COMMENT ON COLUMN @extschema@.receipt_refund.discount_withheld IS
'minor units kept back from the money because the lines kept lose a discount (negative: given back, a loss ended)';
COMMENT ON COLUMN @extschema@.receipt_refund.counters_returned IS
'the counter uses given back: promotions of the receipt that no longer hold for the lines kept';
ALTER TABLE @extschema@.receipt_refund ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.receipt_refund USING (@extschema@.program_open(program_id));
CREATE TRIGGER receipt_refund_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.receipt_refund
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.forbid_history_change(
        'A return is recorded by loyalty.refund; it is not changed afterwards.');

-- The indexes of the receipt tables belong to each partition, not to the
-- partitioned tables.  pg_dump cannot restore a partition of an extension's partitioned table whose index is a partition
-- of the parent's index: it attaches the partition (which builds the index
-- from the parent's) and later adds the partition's own primary key again,
-- and the restore fails.  So every partition (the default ones here, the
-- monthly ones in create_partitions) gets its own primary key and index,
-- and the parents have none; a query by key still reaches one partition's
-- index (the key holds committed_at, the partition key).

CREATE FUNCTION @extschema@.partition_indexes(parent text, part text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF parent OPERATOR(pg_catalog.=) 'receipt' THEN
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ADD CONSTRAINT %I PRIMARY KEY (program_id, receipt_id, committed_at)',
                                  part, part OPERATOR(pg_catalog.||) '_pkey');
        -- a customer's purchases over the tier window (loyalty.purchases)
        -- come from this index alone
        EXECUTE pg_catalog.format('CREATE INDEX %I ON @extschema@.%I (customer_id, committed_at) INCLUDE (program_id, status, to_pay, receipt_id)',
                                  part OPERATOR(pg_catalog.||) '_customer_idx', part);
    ELSE
        RAISE EXCEPTION 'partition_indexes: "%" is not a partitioned receipt table', parent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the reports read a day's rows by committed_at (src/reports.sql)
    EXECUTE pg_catalog.format('CREATE INDEX %I ON @extschema@.%I USING brin (committed_at)',
                              part OPERATOR(pg_catalog.||) '_committed_at_brin', part);
END
$$;
COMMENT ON FUNCTION @extschema@.partition_indexes(text, text) IS
'give a partition of loyalty.receipt its own indexes: primary key, customer index and a BRIN index on committed_at (internal: create_partitions)';
REVOKE ALL ON FUNCTION @extschema@.partition_indexes(text, text) FROM PUBLIC;

-- A partition read on its own (not through its parent) has the policy too.
CREATE FUNCTION @extschema@.partition_security(part text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ENABLE ROW LEVEL SECURITY', part);
    EXECUTE pg_catalog.format('CREATE POLICY tenant ON @extschema@.%I USING (@extschema@.program_open(program_id))', part);
END
$$;
COMMENT ON FUNCTION @extschema@.partition_security(text) IS
'give a partition of the receipt tables the row-level security of its parent (internal: create_partitions)';
REVOKE ALL ON FUNCTION @extschema@.partition_security(text) FROM PUBLIC;

-- Rows of months that have no partition yet land in the default partitions;
-- loyalty.create_partitions() (a daily job) keeps months ahead and moves
-- such rows into their month.
--
-- Every partition keeps rows of up to 4000 bytes whole (toast_tuple_target;
-- the default is about 2000): a receipt of 20 lines keeps its arrays in its
-- row, compressed, and only the answer goes to the TOAST table.  With the
-- default the toaster moved five or six of the arrays out one by one, each a
-- TOAST row and index entry of its own: 4.6 KB of WAL a checkout in TOAST
-- and 2.0 KB in the row, against 2.3 KB and 3.8 KB now.
CREATE TABLE @extschema@.receipt_default PARTITION OF @extschema@.receipt DEFAULT
    WITH (toast_tuple_target = 4000);
SELECT @extschema@.partition_indexes('receipt', 'receipt_default');
SELECT @extschema@.partition_security('receipt_default');

CREATE TABLE @extschema@.accrual_queue (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id      bigint NOT NULL,
    receipt_id      text NOT NULL,
    customer_id     bigint NOT NULL,
    currency        text NOT NULL,
    amount          bigint NOT NULL CHECK (amount OPERATOR(pg_catalog.>) 0),
    kind            text NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    valid_for       interval CHECK (valid_for OPERATOR(pg_catalog.>) '0'::interval),
    restriction     text,
    idempotency_key text NOT NULL,
    release_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    held_release_at timestamptz,
    forfeited_case  bigint
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000,
        autovacuum_vacuum_cost_delay = 0);
-- The claim reads this index from its start: rows released are deleted, and
-- the index entries they leave are marked dead by the scans that pass them
-- and removed by the table's eager autovacuum.
CREATE INDEX accrual_queue_due_idx ON @extschema@.accrual_queue (release_at, id);
CREATE INDEX accrual_queue_receipt_idx ON @extschema@.accrual_queue (program_id, receipt_id);
CREATE INDEX accrual_queue_held_idx ON @extschema@.accrual_queue (customer_id)
    WHERE held_release_at IS NOT NULL;
COMMENT ON TABLE @extschema@.accrual_queue IS 'accruals waiting for release_at: released as lots by loyalty.release_accruals, removed by cancel';
COMMENT ON COLUMN @extschema@.accrual_queue.amount IS 'points in minor units of the currency';
COMMENT ON COLUMN @extschema@.accrual_queue.kind IS 'kind of the lot to create: regular, or promo for a bonus lot';
COMMENT ON COLUMN @extschema@.accrual_queue.valid_for IS 'the lot expires this long after its release (NULL: never)';
COMMENT ON COLUMN @extschema@.accrual_queue.restriction IS 'the lot''s restriction (a condition), or NULL';
COMMENT ON COLUMN @extschema@.accrual_queue.idempotency_key IS 'key of the accrue entry the release writes';
COMMENT ON COLUMN @extschema@.accrual_queue.release_at IS 'when the points are released';
COMMENT ON COLUMN @extschema@.accrual_queue.id IS 'the order of the queue';
COMMENT ON COLUMN @extschema@.accrual_queue.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.accrual_queue.receipt_id IS 'the receipt that earned the points';
COMMENT ON COLUMN @extschema@.accrual_queue.customer_id IS 'the customer the points go to';
COMMENT ON COLUMN @extschema@.accrual_queue.currency IS 'the points currency';
COMMENT ON COLUMN @extschema@.accrual_queue.priority IS 'priority of the lot to create (higher is spent first among lots that expire together)';
COMMENT ON COLUMN @extschema@.accrual_queue.created_at IS 'when the receipt queued it';
COMMENT ON COLUMN @extschema@.accrual_queue.held_release_at IS 'held while the customer is on fraud_hold (release_at is then infinity): the release time it goes back to when the customer is active again; NULL otherwise';
COMMENT ON COLUMN @extschema@.accrual_queue.forfeited_case IS 'the fraud case whose confirm_fraud forfeited it (release_at infinity: never released; a cancel or refund of its receipt takes it off); NULL otherwise';
ALTER TABLE @extschema@.accrual_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.accrual_queue USING (@extschema@.program_open(program_id));

SELECT pg_catalog.pg_extension_config_dump('@extschema@.receipt_key', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.receipt_default', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.accrual_queue', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.receipt_refund', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.accrual_queue', 'id'), '');

-- The ledger operations of receipts (src/receipt.c)

CREATE FUNCTION @extschema@.spend_lots(customer bigint, currency text, lot_ids bigint[],
                                       amounts bigint[], receipt text DEFAULT NULL,
                                       idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_spend_lots'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.spend_lots(bigint, text, bigint[], bigint[], text, text) IS
'spend exactly amounts[i] from lot lot_ids[i] (what calculate chose); 40001 if the lots no longer hold them';

CREATE FUNCTION @extschema@.return_lots(customer bigint, currency text, lot_ids bigint[],
                                        amounts bigint[], receipt text DEFAULT NULL,
                                        idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_return_lots'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.return_lots(bigint, text, bigint[], bigint[], text, text) IS
'give amounts[i] back to lot lot_ids[i] with a refund entry, keeping the lot''s window';

CREATE FUNCTION @extschema@.take_back(customer bigint, currency text, lot bigint, amount bigint,
                                      receipt text DEFAULT NULL, idempotency_key text DEFAULT NULL,
                                      shortfall text DEFAULT 'error')
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_take_back'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.take_back(bigint, text, bigint, bigint, text, text, text) IS
'take back an accrual with a refund entry: from its lot as far as it holds, the rest from the wallet''s other points; what is missing fails (error), is owed (debt) or is left to the caller (forgive)';

CREATE FUNCTION @extschema@.release_accruals(time_budget interval DEFAULT '50 seconds')
RETURNS bigint
AS 'MODULE_PATHNAME', 'loyalty_release_accruals'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.release_accruals(interval) IS
'release the due accruals of the queue as lots, in chunks claimed with SKIP LOCKED, until none is due or time_budget is spent; returns how many';

-- Money and points in the answer are numbers in major units; stored, they
-- are integers of minor units.  The small helpers below name everything
-- with its schema and set no search_path, so that the planner inlines them.
CREATE FUNCTION @extschema@.minor_units(value numeric, exponent integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT (value OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric, exponent))::bigint $$;
COMMENT ON FUNCTION @extschema@.minor_units(numeric, integer) IS
'a number of major units as an integer of minor units (12.34 with exponent 2 is 1234)';

-- Minor units as a number of major units with the currency's decimals
CREATE FUNCTION @extschema@.major_units(value bigint, exponent integer)
RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT pg_catalog.round(value::numeric OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, exponent), exponent) $$;
COMMENT ON FUNCTION @extschema@.major_units(bigint, integer) IS
'an integer of minor units as a number of major units (1234 with exponent 2 is 12.34)';

-- A part's share of total when a quantity goes from prev to upto of qty:
-- cumulative, so that the parts of one total add up to it exactly.
CREATE FUNCTION @extschema@.share(total bigint, prev numeric, upto numeric, qty numeric)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT (pg_catalog.floor(total::numeric OPERATOR(pg_catalog.*) upto OPERATOR(pg_catalog./) qty)
            OPERATOR(pg_catalog.-) pg_catalog.floor(total::numeric OPERATOR(pg_catalog.*) prev OPERATOR(pg_catalog./) qty))::bigint
$$;
COMMENT ON FUNCTION @extschema@.share(bigint, numeric, numeric, numeric) IS
'the share of total that quantity upto of qty carries beyond quantity prev (floors of cumulative shares: the parts add up)';

-- The lines of the receipts, one row each, as the receipt rows store them:
-- the columns the table receipt_line had before 0.15, its jsonb columns
-- rendered from the typed arrays as calculate renders a line (amounts in
-- major units, promotions by code, or "#" and the id of a promotion deleted
-- since).  It reads with the caller's rights, so
-- the row-level security of the receipts applies.
CREATE VIEW @extschema@.receipt_line WITH (security_invoker = true) AS
SELECT r.program_id, r.receipt_id, r.committed_at, r.line_no[i] AS line, r.line_sku[i] AS sku,
       r.line_qty[i] AS qty, r.line_price[i] AS price, r.line_amount[i] AS amount,
       r.line_discount[i] AS discount, r.line_points_money[i] AS points_money,
       r.line_to_pay[i] AS to_pay,
       (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'amount', @extschema@.major_units(r.discount_amount[d], g.money_exponent::integer),
                    'promotion', COALESCE(p.code, '#' OPERATOR(pg_catalog.||) r.discount_promotion[d])) ORDER BY d), '[]')
          FROM pg_catalog.generate_subscripts(r.discount_line, 1) AS d
          LEFT JOIN @extschema@.promotion p ON p.id OPERATOR(pg_catalog.=) r.discount_promotion[d]
         WHERE r.discount_line[d] OPERATOR(pg_catalog.=) i) AS discounts,
       (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'lot', r.paid_lot[d],
                    'amount', @extschema@.major_units(r.paid_money[d], g.money_exponent::integer),
                    'points', @extschema@.major_units(r.paid_points[d], c.exponent::integer),
                    'currency', r.paid_currency[d]) ORDER BY d), '[]')
          FROM pg_catalog.generate_subscripts(r.paid_line, 1) AS d
          LEFT JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) r.program_id
                                          AND c.code OPERATOR(pg_catalog.=) r.paid_currency[d]
         WHERE r.paid_line[d] OPERATOR(pg_catalog.=) i) AS points_paid,
       (SELECT COALESCE(pg_catalog.jsonb_agg(
                    CASE WHEN r.earned_base[e] OPERATOR(pg_catalog.>) 0
                         THEN pg_catalog.jsonb_build_object('base', @extschema@.major_units(r.earned_base[e], c.exponent::integer))
                         ELSE '{}'::jsonb END
                    OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                    'points', @extschema@.major_units(r.earned_points[e], c.exponent::integer),
                    'currency', r.earned_currency[e],
                    'by_promotion', (SELECT COALESCE(pg_catalog.jsonb_object_agg(
                                                COALESCE(p.code, '#' OPERATOR(pg_catalog.||) r.earned_by_promotion[b]),
                                                @extschema@.major_units(r.earned_by_points[b], c.exponent::integer)), '{}')
                                       FROM pg_catalog.generate_subscripts(r.earned_by_entry, 1) AS b
                                       LEFT JOIN @extschema@.promotion p
                                              ON p.id OPERATOR(pg_catalog.=) r.earned_by_promotion[b]
                                      WHERE r.earned_by_entry[b] OPERATOR(pg_catalog.=) e)) ORDER BY e), '[]')
          FROM pg_catalog.generate_subscripts(r.earned_line, 1) AS e
          LEFT JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) r.program_id
                                          AND c.code OPERATOR(pg_catalog.=) r.earned_currency[e]
         WHERE r.earned_line[e] OPERATOR(pg_catalog.=) i) AS points_earned,
       r.line_refunded_qty[i] AS refunded_qty
  FROM @extschema@.receipt r
  JOIN @extschema@.program g ON g.id OPERATOR(pg_catalog.=) r.program_id
 CROSS JOIN LATERAL pg_catalog.generate_subscripts(r.line_no, 1) AS i;
COMMENT ON VIEW @extschema@.receipt_line IS 'the lines of the committed receipts, one row each, with their discounts, points paid and points earned as calculate gave them (from the receipt rows'' typed arrays)';
COMMENT ON COLUMN @extschema@.receipt_line.line IS 'the line number of the receipt';
COMMENT ON COLUMN @extschema@.receipt_line.price IS 'price per unit, in minor units of money';
COMMENT ON COLUMN @extschema@.receipt_line.amount IS 'price times quantity, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.discount IS 'discounts on the line, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.points_money IS 'money of the line paid with points, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.to_pay IS 'what the line cost in money, in minor units';
COMMENT ON COLUMN @extschema@.receipt_line.discounts IS 'discounts by promotion, as calculate gave them: [{promotion, amount}]';
COMMENT ON COLUMN @extschema@.receipt_line.points_paid IS 'the lots that paid the line, as calculate gave them: [{lot, currency, points, amount}]';
COMMENT ON COLUMN @extschema@.receipt_line.points_earned IS 'points the line earned per currency, as calculate gave them: [{currency, points, base, by_promotion}]';
COMMENT ON COLUMN @extschema@.receipt_line.refunded_qty IS 'quantity of the line returned by refunds so far';
COMMENT ON COLUMN @extschema@.receipt_line.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt_line.receipt_id IS 'the receipt of the line';
COMMENT ON COLUMN @extschema@.receipt_line.committed_at IS 'the receipt''s committed_at';
COMMENT ON COLUMN @extschema@.receipt_line.sku IS 'the line''s sku as sent (NULL if none)';
COMMENT ON COLUMN @extschema@.receipt_line.qty IS 'the quantity sold, up to 3 decimals';

-- The money, in minor units, that points of a currency are worth (rounded up)
CREATE FUNCTION @extschema@.points_money(pid bigint, currency text, points bigint)
RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.ceil(points::numeric OPERATOR(pg_catalog.*) k.money_per_unit
                           OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric, p.money_exponent)
                           OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, k.exponent))::bigint
      FROM @extschema@.currency k JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) k.program_id
     WHERE k.program_id OPERATOR(pg_catalog.=) pid AND k.code OPERATOR(pg_catalog.=) currency
$$;
COMMENT ON FUNCTION @extschema@.points_money(bigint, text, bigint) IS
'what points (minor units of a currency) are worth in minor units of the programme''s money, rounded up';

-- First day of a promotion's limit period that holds a date: calculate's
-- own definition (src/calculate.c)
CREATE FUNCTION @extschema@.period_start(period text, day date)
RETURNS date
AS 'MODULE_PATHNAME', 'loyalty_period_start'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.period_start(text, date) IS
'first day of the limit period (day, week, month, year; else -infinity) that holds day';

-- What changed between the calculation the till saw and the one commit made:
-- the parts of the answer that decide money and points.
CREATE FUNCTION @extschema@.answer_changes(seen jsonb, now_answer jsonb)
RETURNS text[]
AS 'MODULE_PATHNAME', 'loyalty_answer_changes'
LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION @extschema@.answer_changes(jsonb, jsonb) IS
'the parts of two answers of calculate that differ: totals, lines, promotions.applied, coupons, gifts, bonus_lots';

-- Replaying a committed receipt id: the same document gets the stored answer
CREATE FUNCTION @extschema@.receipt_replay(pid bigint, rid text, digest bytea)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k @extschema@.receipt_key;
    r record;
BEGIN
    SELECT * INTO STRICT k FROM @extschema@.receipt_key
     WHERE program_id OPERATOR(pg_catalog.=) pid AND receipt_id OPERATOR(pg_catalog.=) rid;
    IF k.digest OPERATOR(pg_catalog.<>) digest THEN
        RAISE EXCEPTION 'receipt "%" was committed with other content', rid
            USING ERRCODE = '23L02',
                  DETAIL = pg_catalog.format('It was committed at %s; a replay must send the same document.', k.committed_at),
                  HINT = 'Give a new receipt a new receipt_id; cancel or refund a committed one.';
    END IF;
    SELECT t.answer, t.status INTO r FROM @extschema@.receipt t
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    RETURN pg_catalog.jsonb_set(pg_catalog.jsonb_set(r.answer, '{commit,replayed}', 'true'),
                                '{commit,status}', pg_catalog.to_jsonb(r.status));
END
$$;
COMMENT ON FUNCTION @extschema@.receipt_replay(bigint, text, bytea) IS
'the stored answer of a committed receipt id, if the document is the same (commit renders back the lines of one stored without them); 23L02 if not';

-- commit could not take a use that its calculation counted on (a coupon, a
-- personal offer, a limit or a budget).  If a fresh calculation no longer
-- accepts the coupon or applies the promotion, it moved meanwhile: 40001,
-- calculate again.  If it still does, commit and calculate disagree on the
-- rule: that is the extension's fault, and calculating again would give the
-- same answer and loop, so it is refused as an internal error.
CREATE FUNCTION @extschema@.refuse_moved(receipt jsonb, rid text, coupon text, promotion text,
                                         what text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    again jsonb := @extschema@.calculate(receipt);
    offered boolean;
BEGIN
    IF coupon IS NOT NULL THEN
        offered := EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(again OPERATOR(pg_catalog.->) 'coupons') c
                            WHERE c OPERATOR(pg_catalog.->>) 'status' OPERATOR(pg_catalog.=) 'accepted'
                              AND pg_catalog.lower(c OPERATOR(pg_catalog.->>) 'code') OPERATOR(pg_catalog.=) pg_catalog.lower(coupon));
    ELSE
        offered := EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(again OPERATOR(pg_catalog.#>) '{promotions,applied}') a
                            WHERE a OPERATOR(pg_catalog.->>) 'code' OPERATOR(pg_catalog.=) promotion);
    END IF;
    IF offered THEN
        RAISE EXCEPTION 'receipt "%": %, though calculate still offers it', rid, what
            USING ERRCODE = 'internal_error',
                  DETAIL = 'commit and calculate disagree on what is left of it: calculating again would give the same answer.',
                  HINT = 'Report this to the extension''s maintainers; pausing the promotion lets its receipts through.';
    END IF;
    RAISE EXCEPTION 'receipt "%": % meanwhile', rid, what
        USING ERRCODE = 'serialization_failure',
              HINT = 'Calculate the receipt again: it is no longer offered.';
END
$$;
COMMENT ON FUNCTION @extschema@.refuse_moved(jsonb, text, text, text, text) IS
'refuse a commit whose coupon, personal offer, limit or budget moved since its calculation (40001); XX000 if a fresh calculation still offers it, since calculating again would not cure it';

-- commit in C (src/commit.c): the calculation's plan written as it is
CREATE FUNCTION @extschema@.commit(receipt jsonb, expected jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_commit'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.commit(jsonb, jsonb) IS
'write a receipt as calculate shows it: lines, redemption of the lots chosen, coupon and counter uses, the accrual (at once or queued); idempotent by receipt_id';

CREATE FUNCTION public.loyalty_commit(receipt jsonb, expected jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.commit(receipt, expected) $$;
COMMENT ON FUNCTION public.loyalty_commit(jsonb, jsonb) IS 'loyalty.commit under its checkout name';

-- cancel in C (src/cancel.c): the receipt undone as a whole
CREATE FUNCTION @extschema@.cancel(program text, receipt_id text, reason text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_cancel'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.cancel(text, text, text) IS
'cancel a committed receipt: queued accruals removed, released ones taken back (what was spent since owed or kept in money, per refund_shortfall), spent points returned to their lots, coupon, offer and counter uses given back; a second cancel returns the first result';

CREATE FUNCTION public.loyalty_cancel(program text, receipt_id text, reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.cancel(program, receipt_id, reason) $$;
COMMENT ON FUNCTION public.loyalty_cancel(text, text, text) IS 'loyalty.cancel under its checkout name';

-- A partial return: some lines, some quantity.  Each line gives back its
-- share of what it cost, of the points that paid it (to the same lots) and
-- of the points it earned (from the queue, or taken back from the wallet),
-- in proportion to the quantity returned; shares are cumulative, so that
-- returning a line in parts gives back exactly what returning it at once
-- would (src/refund.c).
CREATE FUNCTION @extschema@.refund(program text, receipt_id text, lines jsonb, refund_id text,
                                   reason text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_refund'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.refund(text, text, jsonb, text, text) IS
'return some lines of a committed receipt (some quantity): their share of the money, of the points that paid them (to the same lots) and of the points they earned; the lines kept are recomputed with the receipt''s promotions and the discount they lose is kept back from the money; idempotent by refund_id';

CREATE FUNCTION public.loyalty_refund(program text, receipt_id text, lines jsonb, refund_id text,
                                      reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.refund(program, receipt_id, lines, refund_id, reason) $$;
COMMENT ON FUNCTION public.loyalty_refund(text, text, jsonb, text, text) IS 'loyalty.refund under its checkout name';

-- Monthly partitions of receipt, from the current month to
-- months_ahead months later.  Rows of such a month that sit in the default
-- partition (no job ran before the month began) move into it.
CREATE FUNCTION @extschema@.create_partitions(months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m integer;
    first date;
    next date;
    parent text;
    name text;
    made integer := 0;
BEGIN
    PERFORM @extschema@.require_every_program('loyalty.create_partitions');
    IF months_ahead IS NULL OR months_ahead OPERATOR(pg_catalog.<) 0 OR months_ahead OPERATOR(pg_catalog.>) 120 THEN
        RAISE EXCEPTION 'months_ahead must be from 0 to 120, not %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR m IN 0 .. months_ahead LOOP
        first := (pg_catalog.date_trunc('month', pg_catalog.now()) OPERATOR(pg_catalog.+)
                  pg_catalog.make_interval(months => m))::date;
        next := (first OPERATOR(pg_catalog.+) '1 month'::interval)::date;
        FOREACH parent IN ARRAY '{receipt}'::text[] LOOP
            name := pg_catalog.format('%s_%s', parent, pg_catalog.to_char(first, 'YYYY_MM'));
            CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('@extschema@.%I', name)) IS NOT NULL;
            -- rows whole up to 4000 bytes, as receipt_default
            EXECUTE pg_catalog.format('CREATE TABLE @extschema@.%I (LIKE @extschema@.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION)'
                                      ' WITH (toast_tuple_target = 4000)',
                                      name, parent);
            EXECUTE pg_catalog.format(
                'WITH moved AS (DELETE FROM @extschema@.%I WHERE committed_at >= %L AND committed_at < %L RETURNING *)'
                ' INSERT INTO @extschema@.%I SELECT * FROM moved',
                parent OPERATOR(pg_catalog.||) '_default', first, next, name);
            PERFORM @extschema@.partition_indexes(parent, name);
            PERFORM @extschema@.partition_security(name);
            EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ATTACH PARTITION @extschema@.%I FOR VALUES FROM (%L) TO (%L)',
                                      parent, name, first::timestamptz, next::timestamptz);
            made := made OPERATOR(pg_catalog.+) 1;
        END LOOP;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION @extschema@.create_partitions(integer) IS
'create the monthly partitions of receipt from this month to months_ahead later; returns how many were created';

REVOKE ALL ON FUNCTION
    @extschema@.spend_lots(bigint, text, bigint[], bigint[], text, text),
    @extschema@.return_lots(bigint, text, bigint[], bigint[], text, text),
    @extschema@.take_back(bigint, text, bigint, bigint, text, text, text),
    @extschema@.release_accruals(interval),
    @extschema@.receipt_replay(bigint, text, bytea),
    @extschema@.refuse_moved(jsonb, text, text, text, text),
    @extschema@.commit(jsonb, jsonb),
    public.loyalty_commit(jsonb, jsonb),
    @extschema@.cancel(text, text, text),
    public.loyalty_cancel(text, text, text),
    @extschema@.create_partitions(integer),
    @extschema@.refund(text, text, jsonb, text, text),
    public.loyalty_refund(text, text, jsonb, text, text)
FROM PUBLIC;
