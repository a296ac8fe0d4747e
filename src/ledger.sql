-- src/ledger.sql — wallets, the versioned ledger, points lots and holds.
--
-- Every change of points goes through the C functions below: they lock the
-- wallet row, record what has expired, check the spendable balance, append
-- one ledger entry per change with the wallet's next version, and move lots.

CREATE TABLE @extschema@.wallet (
    customer_id bigint NOT NULL,
    currency    text NOT NULL,
    program_id  bigint NOT NULL,
    balance     bigint NOT NULL DEFAULT 0 CHECK (balance OPERATOR(pg_catalog.>=) 0),
    held        bigint NOT NULL DEFAULT 0 CHECK (held OPERATOR(pg_catalog.>=) 0),
    version     bigint NOT NULL DEFAULT 0,
    next_expiry timestamptz,
    restricted  bigint NOT NULL DEFAULT 0 CHECK (restricted OPERATOR(pg_catalog.>=) 0),
    pending_until timestamptz,
    merged_into bigint,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    debt        bigint NOT NULL DEFAULT 0 CHECK (debt OPERATOR(pg_catalog.>=) 0),
    PRIMARY KEY (customer_id, currency),
    FOREIGN KEY (program_id, customer_id) REFERENCES @extschema@.customer (program_id, id),
    FOREIGN KEY (program_id, currency) REFERENCES @extschema@.currency (program_id, code)
) WITH (fillfactor = 70);
COMMENT ON TABLE @extschema@.wallet IS 'points of one customer in one currency: the one row every operation locks';
COMMENT ON COLUMN @extschema@.wallet.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.wallet.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.wallet.program_id IS 'the customer''s programme';
COMMENT ON COLUMN @extschema@.wallet.balance IS 'stored balance in minor units: the sum of the remainders of the wallet''s lots, including pending lots and lots expired but not yet recorded';
COMMENT ON COLUMN @extschema@.wallet.held IS 'points reserved by holds, including holds past their deadline that are not yet tidied';
COMMENT ON COLUMN @extschema@.wallet.version IS 'version of the last ledger entry; 0 before the first';
COMMENT ON COLUMN @extschema@.wallet.next_expiry IS 'no lot of the wallet with points left expires before this instant (NULL: none expires)';
COMMENT ON COLUMN @extschema@.wallet.restricted IS 'points of the wallet''s lots that carry a restriction (part of balance)';
COMMENT ON COLUMN @extschema@.wallet.pending_until IS 'the latest valid_from of the wallet''s lots: a transaction whose now() is earlier reads the lots one by one (NULL: no lot yet)';
COMMENT ON COLUMN @extschema@.wallet.merged_into IS 'set when the customer was merged away: the wallet takes no more operations';
COMMENT ON COLUMN @extschema@.wallet.updated_at IS 'time of the last ledger entry (or of the merge)';
COMMENT ON COLUMN @extschema@.wallet.debt IS 'points owed by refunds of receipts whose earned points were spent: the next accruals pay it first';
ALTER TABLE @extschema@.wallet ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.wallet USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.ledger (
    program_id       bigint NOT NULL,
    customer_id      bigint NOT NULL,
    currency         text NOT NULL,
    version          bigint NOT NULL,
    operation        text NOT NULL,
    amount           bigint NOT NULL,
    held_amount      bigint NOT NULL DEFAULT 0,
    balance_after    bigint NOT NULL,
    held_after       bigint NOT NULL,
    lot_id           bigint,
    hold_id          bigint,
    receipt_id       text,
    peer_customer_id bigint,
    peer_currency    text,
    idempotency_key  text,
    lot_ids          bigint[],
    lot_amounts      bigint[],
    actor            text NOT NULL,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (customer_id, currency, version)
);
-- No CHECK constraints: only the extension's functions write the ledger, and a
-- CHECK is re-read on every statement that inserts.  balance_after and
-- held_after are the wallet row's values, whose own CHECKs hold them >= 0.
CREATE UNIQUE INDEX ledger_idempotency_key_idx ON @extschema@.ledger (program_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
COMMENT ON TABLE @extschema@.ledger IS 'append-only history of every change of a wallet, one entry per version';
COMMENT ON COLUMN @extschema@.ledger.program_id IS 'the wallet''s programme; the scope of idempotency_key';
COMMENT ON COLUMN @extschema@.ledger.customer_id IS 'the wallet''s customer';
COMMENT ON COLUMN @extschema@.ledger.currency IS 'the wallet''s currency';
COMMENT ON COLUMN @extschema@.ledger.version IS 'the wallet''s version after this entry: contiguous from 1 in each wallet';
COMMENT ON COLUMN @extschema@.ledger.operation IS 'accrue, redeem, hold, capture, release, expire, adjust, refund (receipt returns and cancels), convert, transfer_in, transfer_out, or debt (an accrual paying what a refund left owing)';
COMMENT ON COLUMN @extschema@.ledger.amount IS 'signed change of the stored balance, in minor units';
COMMENT ON COLUMN @extschema@.ledger.held_amount IS 'signed change of the held points (holds, captures, releases)';
COMMENT ON COLUMN @extschema@.ledger.balance_after IS 'stored balance after this entry';
COMMENT ON COLUMN @extschema@.ledger.held_after IS 'held points after this entry';
COMMENT ON COLUMN @extschema@.ledger.lot_id IS 'the lot created (accrue, positive adjust) or expired (expire) by this entry; NULL for entries that create several lots (transfer_in, the target side of convert), whose lots have created_version = the entry''s version';
COMMENT ON COLUMN @extschema@.ledger.hold_id IS 'the hold placed, captured or released';
COMMENT ON COLUMN @extschema@.ledger.receipt_id IS 'the receipt the entry belongs to, as the till names it';
COMMENT ON COLUMN @extschema@.ledger.peer_customer_id IS 'the other customer of a transfer or merge';
COMMENT ON COLUMN @extschema@.ledger.peer_currency IS 'the other currency of a conversion';
COMMENT ON COLUMN @extschema@.ledger.idempotency_key IS 'caller''s key, unique in the programme: a call repeated with it returns this entry and writes nothing';
COMMENT ON COLUMN @extschema@.ledger.lot_ids IS 'the lots that paid an entry that takes points (see the view lot_usage)';
COMMENT ON COLUMN @extschema@.ledger.lot_amounts IS 'how much each of lot_ids paid, in the same order';
COMMENT ON COLUMN @extschema@.ledger.actor IS 'who made the change: the role in effect (login role, or the one set by SET ROLE), or the actor named by an adjustment';
COMMENT ON COLUMN @extschema@.ledger.reason IS 'why: required for adjust, transfer and convert; lot expired and hold expired for the entries of the touch; the merge''s reason for its transfers';
COMMENT ON COLUMN @extschema@.ledger.created_at IS 'the start of the writing transaction: shared by its entries, not an order (use version)';
ALTER TABLE @extschema@.ledger ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.ledger USING (@extschema@.program_open(program_id));

CREATE TABLE @extschema@.lot (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id      bigint NOT NULL,
    customer_id     bigint NOT NULL,
    currency        text NOT NULL,
    amount          bigint NOT NULL,
    remaining       bigint NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    kind            text NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    restriction     text,
    created_version bigint NOT NULL,
    source_lot_id   bigint,
    live            boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expiry_noticed_at timestamptz,
    -- one CHECK, since every write of a lot evaluates them all
    CONSTRAINT lot_amounts_check CHECK (remaining OPERATOR(pg_catalog.>=) 0
                                        AND remaining OPERATOR(pg_catalog.<=) amount
                                        AND live OPERATOR(pg_catalog.=) (remaining OPERATOR(pg_catalog.>) 0)
                                        AND (valid_to IS NULL OR valid_to OPERATOR(pg_catalog.>) valid_from))
) WITH (fillfactor = 80);
-- The partial indexes hold live lots.  They test the flag "live" rather than
-- remaining > 0, so that spending part of a lot changes no indexed column and
-- is a HOT update; only the update that empties a lot touches the indexes.
-- A wallet's live lots in redemption order (soonest expiry, never-expiring
-- last, then higher priority, then oldest): a redemption reads only the
-- lots it spends, and the effective balance reads the range.
CREATE INDEX lot_wallet_live_idx
    ON @extschema@.lot (customer_id, currency, valid_to, priority DESC, id)
    WHERE live;
-- Lots due for recording as expired, for expire_due.  The sweeps read what
-- is due in (deadline, id) order, a chunk at a time: with the deadline alone
-- in the index, lots that expire at the same instant (the end of a month, a
-- campaign's last day) were sorted anew for every chunk.
CREATE INDEX lot_due_idx ON @extschema@.lot (valid_to, id)
    WHERE live AND valid_to IS NOT NULL;
-- A lot's expiry notice is sent once (the job notice_expiring,
-- src/events.sql); this index holds the lots that still need one, so the job
-- reads only new lots.  Spending part of a lot changes none of its columns:
-- still a HOT update.
CREATE INDEX lot_notice_idx ON @extschema@.lot (valid_to, id)
    WHERE live AND valid_to IS NOT NULL AND expiry_noticed_at IS NULL;
COMMENT ON TABLE @extschema@.lot IS 'points with a validity window: they count while valid_from <= now() < valid_to';
COMMENT ON COLUMN @extschema@.lot.id IS 'the lot; lower ids are older and spent first among equals';
COMMENT ON COLUMN @extschema@.lot.program_id IS 'the wallet''s programme';
COMMENT ON COLUMN @extschema@.lot.customer_id IS 'the wallet''s customer';
COMMENT ON COLUMN @extschema@.lot.currency IS 'the wallet''s currency';
COMMENT ON COLUMN @extschema@.lot.amount IS 'points credited, in minor units';
COMMENT ON COLUMN @extschema@.lot.remaining IS 'points of the lot not yet spent, moved or recorded as expired';
COMMENT ON COLUMN @extschema@.lot.valid_from IS 'the lot counts from this instant; before it, its points are pending';
COMMENT ON COLUMN @extschema@.lot.valid_to IS 'the lot stops counting at this instant (NULL: never)';
COMMENT ON COLUMN @extschema@.lot.kind IS 'what the points are for: the kind given to accrue (regular by default, birthday, product, promo, service...), adjustment for adjust, converted for convert; transfers and merges keep the kind of the source lot';
COMMENT ON COLUMN @extschema@.lot.priority IS 'among lots expiring at the same time, higher priority is spent first';
COMMENT ON COLUMN @extschema@.lot.restriction IS 'where the points may be spent; NULL: anywhere. A restricted lot is spent only when the caller says its restriction applies';
COMMENT ON COLUMN @extschema@.lot.created_version IS 'version of the ledger entry that created the lot in its wallet';
COMMENT ON COLUMN @extschema@.lot.source_lot_id IS 'the lot these points came from (transfer, conversion, merge)';
COMMENT ON COLUMN @extschema@.lot.live IS 'remaining > 0: the lot is in the partial indexes of live lots';
COMMENT ON COLUMN @extschema@.lot.created_at IS 'when the lot was written';
COMMENT ON COLUMN @extschema@.lot.expiry_noticed_at IS 'when the points_expiring event that names the lot was written (or the lot was passed over as already expired); NULL: not yet';
ALTER TABLE @extschema@.lot ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.lot USING (@extschema@.program_open(program_id));

-- Which lots paid how much of an entry: kept in the entry itself (lot_ids,
-- lot_amounts), so that spending writes no row more than the entry, and
-- shown one row per lot by this view.
CREATE VIEW @extschema@.lot_usage AS
SELECT e.customer_id, e.currency, e.version, u.lot_id, u.amount
  FROM @extschema@.ledger e,
       ROWS FROM (pg_catalog.unnest(e.lot_ids), pg_catalog.unnest(e.lot_amounts)) AS u (lot_id, amount)
 WHERE e.lot_ids IS NOT NULL
   AND @extschema@.program_open(e.program_id);
COMMENT ON VIEW @extschema@.lot_usage IS 'which lots paid how much of a ledger entry: a refund restores exactly these lots';
COMMENT ON COLUMN @extschema@.lot_usage.customer_id IS 'the wallet''s customer';
COMMENT ON COLUMN @extschema@.lot_usage.currency IS 'the wallet''s currency';
COMMENT ON COLUMN @extschema@.lot_usage.version IS 'the ledger entry (customer_id, currency, version) that took the points';
COMMENT ON COLUMN @extschema@.lot_usage.lot_id IS 'a lot that paid';
COMMENT ON COLUMN @extschema@.lot_usage.amount IS 'points taken from that lot';

CREATE TABLE @extschema@.hold (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id       bigint NOT NULL,
    customer_id      bigint NOT NULL,
    currency         text NOT NULL,
    amount           bigint NOT NULL CHECK (amount OPERATOR(pg_catalog.>) 0),
    applicable       text[],
    expires_at       timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'active'
                     CHECK (status OPERATOR(pg_catalog.=) ANY ('{active,captured,released,expired}'::text[])),
    captured         bigint CHECK (captured OPERATOR(pg_catalog.>) 0),
    receipt_id       text,
    created_version  bigint NOT NULL,
    resolved_version bigint,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at      timestamptz,
    CHECK ((status OPERATOR(pg_catalog.=) 'active') OPERATOR(pg_catalog.=) (resolved_version IS NULL)),
    CHECK ((status OPERATOR(pg_catalog.=) 'captured') OPERATOR(pg_catalog.=) (captured IS NOT NULL))
);
CREATE INDEX hold_wallet_active_idx ON @extschema@.hold (customer_id, currency, expires_at)
    WHERE status OPERATOR(pg_catalog.=) 'active';
-- Holds due for expiry, in (deadline, id) order, for release_expired_holds.
CREATE INDEX hold_due_idx ON @extschema@.hold (expires_at, id)
    WHERE status OPERATOR(pg_catalog.=) 'active';
COMMENT ON TABLE @extschema@.hold IS 'points reserved for a payment in progress: captured, released, or expired at expires_at';
COMMENT ON COLUMN @extschema@.hold.id IS 'the hold id that hold returns';
COMMENT ON COLUMN @extschema@.hold.program_id IS 'the wallet''s programme';
COMMENT ON COLUMN @extschema@.hold.customer_id IS 'the wallet''s customer';
COMMENT ON COLUMN @extschema@.hold.currency IS 'the wallet''s currency';
COMMENT ON COLUMN @extschema@.hold.amount IS 'points reserved';
COMMENT ON COLUMN @extschema@.hold.applicable IS 'restrictions of lots the capture may spend';
COMMENT ON COLUMN @extschema@.hold.expires_at IS 'the hold stops counting at this instant, whether or not it has been tidied';
COMMENT ON COLUMN @extschema@.hold.status IS 'active; captured, released or expired (resolved exactly once). A hold past expires_at stays active until the touch or release_expired_holds marks it expired';
COMMENT ON COLUMN @extschema@.hold.captured IS 'points taken by the capture';
COMMENT ON COLUMN @extschema@.hold.receipt_id IS 'the receipt, carried to the capture or release entry';
COMMENT ON COLUMN @extschema@.hold.created_version IS 'version of the hold entry';
COMMENT ON COLUMN @extschema@.hold.resolved_version IS 'version of the entry that captured, released or expired it';
COMMENT ON COLUMN @extschema@.hold.created_at IS 'when the hold was placed';
COMMENT ON COLUMN @extschema@.hold.resolved_at IS 'when it was captured, released or expired';
ALTER TABLE @extschema@.hold ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON @extschema@.hold USING (@extschema@.program_open(program_id));

-- The ledger is history: nobody rewrites it (src/access.sql).
CREATE TRIGGER ledger_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.forbid_history_change();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.wallet', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.lot', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.lot', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hold', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('@extschema@.hold', 'id'), '');

-- Operations (src/ledger.c, src/hold.c): C functions returning the ledger entry
-- they wrote, or on a replay of their idempotency key the entry first written.

CREATE FUNCTION @extschema@.accrue(
    customer bigint, currency text, amount bigint,
    valid_from timestamptz DEFAULT NULL, valid_to timestamptz DEFAULT NULL,
    kind text DEFAULT 'regular', priority integer DEFAULT 0, restriction text DEFAULT NULL,
    receipt text DEFAULT NULL, idempotency_key text DEFAULT NULL, reason text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_accrue'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.accrue(bigint, text, bigint, timestamptz, timestamptz, text, integer, text, text, text, text) IS
'credit points as a new lot valid from valid_from (default now) to valid_to (default never)';

CREATE FUNCTION @extschema@.redeem(
    customer bigint, currency text, amount bigint,
    applicable text[] DEFAULT NULL, receipt text DEFAULT NULL,
    expected_version bigint DEFAULT NULL, idempotency_key text DEFAULT NULL,
    reason text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_redeem'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.redeem(bigint, text, bigint, text[], text, bigint, text, text) IS
'spend points: applicable restricted lots first, then the soonest to expire, then by priority, then the oldest';

CREATE FUNCTION @extschema@.hold(
    customer bigint, currency text, amount bigint, ttl interval DEFAULT '15 minutes',
    applicable text[] DEFAULT NULL, receipt text DEFAULT NULL,
    expected_version bigint DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'loyalty_hold'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.hold(bigint, text, bigint, interval, text[], text, bigint, text) IS
'reserve points for ttl; returns the hold id for capture or release';

CREATE FUNCTION @extschema@.capture(hold bigint, amount bigint DEFAULT NULL,
                                    idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_capture'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.capture(bigint, bigint, text) IS
'spend the points of a hold (all of them by default; capturing less releases the rest)';

CREATE FUNCTION @extschema@.release(hold bigint, idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_release'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.release(bigint, text) IS
'give the points of a hold back without spending them';

CREATE FUNCTION @extschema@.adjust(
    customer bigint, currency text, delta bigint, reason text,
    actor text DEFAULT NULL, valid_to timestamptz DEFAULT NULL,
    expected_version bigint DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_adjust'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.adjust(bigint, text, bigint, text, text, timestamptz, bigint, text) IS
'manual correction with a required reason: a positive delta adds a lot, a negative one takes points like a redemption';

CREATE FUNCTION @extschema@.transfer(
    from_customer bigint, to_customer bigint, currency text, amount bigint,
    reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_transfer'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.transfer(bigint, bigint, text, bigint, text, text) IS
'move points to another customer of the programme, keeping each lot''s window; returns the transfer_out entry';

CREATE FUNCTION @extschema@.convert(
    customer bigint, from_currency text, to_currency text, rate numeric,
    reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS @extschema@.ledger
AS 'MODULE_PATHNAME', 'loyalty_convert'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.convert(bigint, text, text, numeric, text, text) IS
'convert every point of one currency to another at rate (whole target points per whole source point), keeping lot windows; returns the source entry';

CREATE FUNCTION @extschema@.merge_wallets(source bigint, target bigint, reason text)
RETURNS integer
AS 'MODULE_PATHNAME', 'loyalty_merge_wallets'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.merge_wallets(bigint, bigint, text) IS
'move every wallet and lot of a customer being merged to the target (called by merge_customers); returns the wallets moved';

CREATE FUNCTION @extschema@.expire_due(batch_limit integer DEFAULT 10000,
                                       time_budget interval DEFAULT '10 seconds')
RETURNS integer
AS 'MODULE_PATHNAME', 'loyalty_expire_due'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.expire_due(integer, interval) IS
'record up to batch_limit expired lots as expire entries within time_budget, skipping wallets in use; returns how many';

CREATE FUNCTION @extschema@.release_expired_holds(batch_limit integer DEFAULT 10000,
                                                  time_budget interval DEFAULT '10 seconds')
RETURNS integer
AS 'MODULE_PATHNAME', 'loyalty_release_expired_holds'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.release_expired_holds(integer, interval) IS
'mark up to batch_limit holds past their deadline as expired, with release entries, skipping wallets in use; returns how many';

-- Reading: the effective state of every wallet at now().

CREATE VIEW @extschema@.balances AS
SELECT p.code AS program,
       w.customer_id,
       w.currency,
       COALESCE(l.effective, 0) AS balance,
       COALESCE(h.held, 0) AS held,
       GREATEST(COALESCE(l.effective, 0) OPERATOR(pg_catalog.-) COALESCE(h.held, 0), 0) AS available,
       COALESCE(l.pending, 0) AS pending,
       COALESCE(l.restricted, 0) AS restricted,
       COALESCE(l.expiring_30d, 0) AS expiring_30d,
       l.next_expiry_at,
       COALESCE(l.next_expiry_amount, 0) AS next_expiry_amount,
       w.balance AS stored_balance,
       w.version,
       w.updated_at
  FROM @extschema@.wallet w
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) w.program_id
  LEFT JOIN LATERAL (
      SELECT pg_catalog.sum(t.remaining) FILTER (WHERE t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                                                  AND (t.valid_to IS NULL OR t.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()))::bigint AS effective,
             pg_catalog.sum(t.remaining) FILTER (WHERE t.valid_from OPERATOR(pg_catalog.>) pg_catalog.now())::bigint AS pending,
             pg_catalog.sum(t.remaining) FILTER (WHERE t.restriction IS NOT NULL
                                                  AND t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                                                  AND (t.valid_to IS NULL OR t.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()))::bigint AS restricted,
             pg_catalog.sum(t.remaining) FILTER (WHERE t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                                                  AND t.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()
                                                  AND t.valid_to OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '30 days'::interval))::bigint AS expiring_30d,
             pg_catalog.min(t.valid_to) FILTER (WHERE t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                                                 AND t.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()) AS next_expiry_at,
             pg_catalog.sum(t.remaining) FILTER (WHERE t.valid_to OPERATOR(pg_catalog.=) n.at
                                                  AND t.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now())::bigint AS next_expiry_amount
        FROM @extschema@.lot t
        LEFT JOIN LATERAL (
            SELECT pg_catalog.min(x.valid_to) AS at FROM @extschema@.lot x
             WHERE x.customer_id OPERATOR(pg_catalog.=) w.customer_id
               AND x.currency OPERATOR(pg_catalog.=) w.currency
               AND x.live
               AND x.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
               AND x.valid_to OPERATOR(pg_catalog.>) pg_catalog.now()) n ON true
       WHERE t.customer_id OPERATOR(pg_catalog.=) w.customer_id
         AND t.currency OPERATOR(pg_catalog.=) w.currency
         AND t.live) l ON true
  LEFT JOIN LATERAL (
      SELECT pg_catalog.sum(o.amount)::bigint AS held
        FROM @extschema@.hold o
       WHERE o.customer_id OPERATOR(pg_catalog.=) w.customer_id
         AND o.currency OPERATOR(pg_catalog.=) w.currency
         AND o.status OPERATOR(pg_catalog.=) 'active'
         AND o.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()) h ON true
 WHERE w.merged_into IS NULL
   AND @extschema@.program_open(w.program_id);
COMMENT ON VIEW @extschema@.balances IS 'every wallet''s effective state at now(): what counts, what is held, pending and expiring';
COMMENT ON COLUMN @extschema@.balances.program IS 'programme code';
COMMENT ON COLUMN @extschema@.balances.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.balances.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.balances.balance IS 'effective balance: points of lots valid now, in minor units';
COMMENT ON COLUMN @extschema@.balances.held IS 'points reserved by holds whose deadline has not passed';
COMMENT ON COLUMN @extschema@.balances.available IS 'balance minus held: what a redemption may take (restricted lots only where they apply)';
COMMENT ON COLUMN @extschema@.balances.pending IS 'points of lots that start to count later (valid_from in the future)';
COMMENT ON COLUMN @extschema@.balances.restricted IS 'part of the balance in lots restricted to some products';
COMMENT ON COLUMN @extschema@.balances.expiring_30d IS 'part of the balance that expires within 30 days';
COMMENT ON COLUMN @extschema@.balances.next_expiry_at IS 'when the next lot of the balance expires (NULL: none expires)';
COMMENT ON COLUMN @extschema@.balances.next_expiry_amount IS 'points that expire at next_expiry_at';
COMMENT ON COLUMN @extschema@.balances.stored_balance IS 'the wallet row''s balance: includes pending points and expired points not yet recorded';
COMMENT ON COLUMN @extschema@.balances.version IS 'the wallet''s version (pass it as expected_version)';
COMMENT ON COLUMN @extschema@.balances.updated_at IS 'time of the last ledger entry';

CREATE FUNCTION @extschema@.balance(customer bigint, currency text DEFAULT NULL)
RETURNS TABLE (currency text, balance bigint, held bigint, available bigint, pending bigint,
               restricted bigint, next_expiry_at timestamptz, next_expiry_amount bigint,
               version bigint)
AS 'MODULE_PATHNAME', 'loyalty_balance'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.balance(bigint, text) IS
'effective balance, held, available, pending and next expiry of a customer, per currency of the programme';

CREATE FUNCTION public.loyalty_balance(customer bigint, currency text DEFAULT NULL)
RETURNS TABLE (currency text, balance bigint, held bigint, available bigint, pending bigint,
               restricted bigint, next_expiry_at timestamptz, next_expiry_amount bigint,
               version bigint)
AS 'MODULE_PATHNAME', 'loyalty_balance'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION public.loyalty_balance(bigint, text) IS 'loyalty.balance under its checkout name';

CREATE VIEW @extschema@.ledger_entries AS
SELECT p.code AS program,
       e.customer_id,
       (SELECT i.value FROM @extschema@.identifier i
         WHERE i.customer_id OPERATOR(pg_catalog.=) e.customer_id
           AND i.kind OPERATOR(pg_catalog.=) 'card' AND i.status OPERATOR(pg_catalog.=) 'active'
         ORDER BY i.created_at DESC LIMIT 1) AS card,
       (SELECT i.value FROM @extschema@.identifier i
         WHERE i.customer_id OPERATOR(pg_catalog.=) e.customer_id
           AND i.kind OPERATOR(pg_catalog.=) 'phone' AND i.status OPERATOR(pg_catalog.=) 'active'
         ORDER BY i.created_at DESC LIMIT 1) AS phone,
       e.currency, e.version, e.operation, e.amount, e.held_amount,
       e.balance_after, e.held_after, e.lot_id, e.hold_id, e.receipt_id,
       e.peer_customer_id, e.peer_currency, e.idempotency_key, e.actor, e.reason, e.created_at
  FROM @extschema@.ledger e
  JOIN @extschema@.program p ON p.id OPERATOR(pg_catalog.=) e.program_id
 WHERE @extschema@.program_open(e.program_id);
COMMENT ON VIEW @extschema@.ledger_entries IS 'the ledger with the programme code and the customer''s current card and phone';
COMMENT ON COLUMN @extschema@.ledger_entries.program IS 'programme code';
COMMENT ON COLUMN @extschema@.ledger_entries.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.ledger_entries.card IS 'the customer''s newest active card';
COMMENT ON COLUMN @extschema@.ledger_entries.phone IS 'the customer''s newest active phone number (E.164)';
COMMENT ON COLUMN @extschema@.ledger_entries.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.ledger_entries.version IS 'the wallet''s version after the entry';
COMMENT ON COLUMN @extschema@.ledger_entries.operation IS 'what happened: accrue, redeem, hold, capture, release, expire, adjust, refund, convert, transfer_in, transfer_out';
COMMENT ON COLUMN @extschema@.ledger_entries.amount IS 'signed change of the stored balance';
COMMENT ON COLUMN @extschema@.ledger_entries.held_amount IS 'signed change of the held points';
COMMENT ON COLUMN @extschema@.ledger_entries.balance_after IS 'stored balance after the entry';
COMMENT ON COLUMN @extschema@.ledger_entries.held_after IS 'held points after the entry';
COMMENT ON COLUMN @extschema@.ledger_entries.lot_id IS 'the lot created or expired';
COMMENT ON COLUMN @extschema@.ledger_entries.hold_id IS 'the hold placed, captured or released';
COMMENT ON COLUMN @extschema@.ledger_entries.receipt_id IS 'the receipt, as the till names it';
COMMENT ON COLUMN @extschema@.ledger_entries.peer_customer_id IS 'the other customer of a transfer or merge';
COMMENT ON COLUMN @extschema@.ledger_entries.peer_currency IS 'the other currency of a conversion';
COMMENT ON COLUMN @extschema@.ledger_entries.idempotency_key IS 'the caller''s idempotency key';
COMMENT ON COLUMN @extschema@.ledger_entries.actor IS 'who made the change';
COMMENT ON COLUMN @extschema@.ledger_entries.reason IS 'why (required for adjustments)';
COMMENT ON COLUMN @extschema@.ledger_entries.created_at IS 'when';

CREATE VIEW @extschema@.liability AS
SELECT b.program,
       b.currency,
       pg_catalog.count(*) FILTER (WHERE b.balance OPERATOR(pg_catalog.>) 0) AS wallets,
       COALESCE(pg_catalog.sum(b.balance), 0)::bigint AS points,
       COALESCE(pg_catalog.sum(b.pending), 0)::bigint AS pending,
       COALESCE(pg_catalog.sum(b.held), 0)::bigint AS held,
       COALESCE(pg_catalog.sum(b.expiring_30d), 0)::bigint AS expiring_30d,
       pg_catalog.round(COALESCE(pg_catalog.sum(b.balance), 0)::numeric
                        OPERATOR(pg_catalog.*) c.money_per_unit
                        OPERATOR(pg_catalog./) pg_catalog.power(10::numeric, c.exponent), p.money_exponent) AS money,
       p.money_currency
  FROM @extschema@.balances b
  JOIN @extschema@.program p ON p.code OPERATOR(pg_catalog.=) b.program
  JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) p.id
                             AND c.code OPERATOR(pg_catalog.=) b.currency
 GROUP BY b.program, b.currency, c.money_per_unit, c.exponent, p.money_exponent, p.money_currency;
COMMENT ON VIEW @extschema@.liability IS 'points the programme owes its customers, and their value in money, per programme and currency';
COMMENT ON COLUMN @extschema@.liability.program IS 'programme code';
COMMENT ON COLUMN @extschema@.liability.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.liability.wallets IS 'wallets with a positive effective balance';
COMMENT ON COLUMN @extschema@.liability.points IS 'sum of effective balances, in minor units';
COMMENT ON COLUMN @extschema@.liability.pending IS 'sum of pending points (not yet valid)';
COMMENT ON COLUMN @extschema@.liability.held IS 'sum of points reserved by live holds (part of points)';
COMMENT ON COLUMN @extschema@.liability.expiring_30d IS 'part of points that expires within 30 days';
COMMENT ON COLUMN @extschema@.liability.money IS 'value of points in the programme''s money (major units)';
COMMENT ON COLUMN @extschema@.liability.money_currency IS 'ISO 4217 code of money';

REVOKE ALL ON FUNCTION
    @extschema@.accrue(bigint, text, bigint, timestamptz, timestamptz, text, integer, text, text, text, text),
    @extschema@.redeem(bigint, text, bigint, text[], text, bigint, text, text),
    @extschema@.hold(bigint, text, bigint, interval, text[], text, bigint, text),
    @extschema@.capture(bigint, bigint, text),
    @extschema@.release(bigint, text),
    @extschema@.adjust(bigint, text, bigint, text, text, timestamptz, bigint, text),
    @extschema@.transfer(bigint, bigint, text, bigint, text, text),
    @extschema@.convert(bigint, text, text, numeric, text, text),
    @extschema@.merge_wallets(bigint, bigint, text),
    @extschema@.expire_due(integer, interval),
    @extschema@.release_expired_holds(integer, interval),
    @extschema@.balance(bigint, text),
    public.loyalty_balance(bigint, text)
FROM PUBLIC;
