-- loyalty 0.10 -> 0.11: defects of the money path found by trying it as a
-- user would (see src/updates/README.md).
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.11'" to load this file. \quit

-- commit compares a promotion's budget in minor units, as calculate does,
-- names the promotion or coupon by its code when it refuses, and says
-- "meanwhile" only when a fresh calculation shows that something moved
-- (refuse_moved); otherwise it is an internal error, never a 40001 that
-- sends the till round calculating again.  commit, cancel and refund lock a
-- customer's wallets in the bytewise order of their currency codes, as
-- transfer and convert do, whatever the database's collation.
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
REVOKE ALL ON FUNCTION @extschema@.refuse_moved(jsonb, text, text, text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.commit(receipt jsonb, expected jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pcode text;
    p @extschema@.program;
    rid text;
    digest bytea;
    ident jsonb;
    kind text;
    val text;
    cid bigint;
    answer jsonb;
    changed text[];
    local_day date;
    spent jsonb := '{}';
    earned jsonb := '{}';
    accruals jsonb := '[]';
    counters jsonb := '[]';
    offers bigint[] := '{}';
    coupons text[] := '{}';
    entries jsonb := '[]';
    e @extschema@.ledger;
    x record;
    n integer := 0;
    release_at timestamptz;
    at_ts timestamptz;
    result jsonb;
BEGIN
    IF receipt IS NULL THEN
        RAISE EXCEPTION 'receipt must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.jsonb_typeof(receipt) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'receipt must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF expected IS NOT NULL AND pg_catalog.jsonb_typeof(expected) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'expected must be the JSON object calculate returned'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(receipt OPERATOR(pg_catalog.->) 'program') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'receipt field "program" is missing or not a string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    pcode := receipt OPERATOR(pg_catalog.->>) 'program';
    SELECT * INTO p FROM @extschema@.program g WHERE g.code OPERATOR(pg_catalog.=) pcode;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'programme "%" does not exist', pcode
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT code FROM loyalty.program lists the programmes.';
    END IF;
    PERFORM @extschema@.require_program(p.id, pg_catalog.format('programme "%s"', pcode));
    rid := receipt OPERATOR(pg_catalog.->>) 'receipt_id';
    IF pg_catalog.jsonb_typeof(receipt OPERATOR(pg_catalog.->) 'receipt_id') IS DISTINCT FROM 'string'
       OR rid OPERATOR(pg_catalog.=) '' OR pg_catalog.length(rid) OPERATOR(pg_catalog.>) 128 THEN
        RAISE EXCEPTION 'receipt field "receipt_id" must be a string of 1 to 128 characters to commit'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The receipt id makes a commit safe to repeat: send the same id again when the outcome is unknown.';
    END IF;

    -- Claim the id.  A transaction committing the same id is waited for;
    -- if it committed, this is a replay.
    digest := pg_catalog.sha256(pg_catalog.convert_to(receipt::text, 'UTF8'));
    INSERT INTO @extschema@.receipt_key (program_id, receipt_id, committed_at, digest)
    VALUES (p.id, rid, pg_catalog.now(), digest)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN @extschema@.receipt_replay(p.id, rid, digest);
    END IF;

    -- Lock the customer's wallets, then calculate with what they hold now
    IF pg_catalog.jsonb_typeof(receipt OPERATOR(pg_catalog.->) 'customer') OPERATOR(pg_catalog.=) 'object' THEN
        SELECT c.key, c.value INTO kind, val
          FROM pg_catalog.jsonb_each_text(receipt OPERATOR(pg_catalog.->) 'customer') c
         WHERE c.key OPERATOR(pg_catalog.=) ANY ('{card,phone,email,id}'::text[]) LIMIT 1;
        IF kind IS NOT NULL AND val IS NOT NULL THEN
            ident := @extschema@.identify(pcode, val, kind);
            IF (ident OPERATOR(pg_catalog.->>) 'found')::boolean THEN
                cid := (ident OPERATOR(pg_catalog.->>) 'customer_id')::bigint;
                PERFORM 1 FROM @extschema@.wallet w
                  WHERE w.customer_id OPERATOR(pg_catalog.=) cid
                  ORDER BY w.currency COLLATE pg_catalog."C" FOR NO KEY UPDATE;
            END IF;
        END IF;
    END IF;
    answer := @extschema@.calculate(receipt);
    IF (answer OPERATOR(pg_catalog.#>>) '{customer,id}')::bigint IS DISTINCT FROM cid THEN
        RAISE EXCEPTION 'receipt "%": the customer''s identifier moved while committing', rid
            USING ERRCODE = 'serialization_failure', HINT = 'Calculate the receipt again.';
    END IF;
    IF expected IS NOT NULL THEN
        changed := @extschema@.answer_changes(expected, answer);
        IF pg_catalog.cardinality(changed) OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION 'receipt "%" calculates differently now: % changed', rid,
                  pg_catalog.array_to_string(changed, ', ')
                USING ERRCODE = 'serialization_failure',
                      DETAIL = pg_catalog.format('Totals seen: %s; now: %s.',
                                                 expected OPERATOR(pg_catalog.->) 'totals',
                                                 answer OPERATOR(pg_catalog.->) 'totals'),
                      HINT = 'A wallet, coupon or limit moved since the calculation: calculate again, show it, and commit that.';
        END IF;
    END IF;
    local_day := COALESCE(pg_catalog.left(receipt OPERATOR(pg_catalog.->>) 'at', 10)::date,
                          pg_catalog.now()::date);

    -- Coupons: one use each, if still there to use
    FOR x IN SELECT c OPERATOR(pg_catalog.->>) 'code' AS code
               FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.->) 'coupons') c
              WHERE c OPERATOR(pg_catalog.->>) 'status' OPERATOR(pg_catalog.=) 'accepted'
    LOOP
        UPDATE @extschema@.coupon o
           SET uses = o.uses OPERATOR(pg_catalog.+) 1,
               state = CASE WHEN o.uses OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=)
                                 COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END)
                            THEN 'redeemed' ELSE o.state END
         WHERE o.program_id OPERATOR(pg_catalog.=) p.id
           AND pg_catalog.lower(o.code) OPERATOR(pg_catalog.=) pg_catalog.lower(x.code)
           AND o.state OPERATOR(pg_catalog.=) 'issued'
           AND (o.uses OPERATOR(pg_catalog.<)
                COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END)
                OR COALESCE(o.use_limit, CASE WHEN o.kind OPERATOR(pg_catalog.=) 'multi_use' THEN NULL ELSE 1 END) IS NULL);
        IF NOT FOUND THEN
            PERFORM @extschema@.refuse_moved(receipt, rid, x.code, NULL,
                                             pg_catalog.format('coupon "%s" was used up', x.code));
        END IF;
        coupons := coupons OPERATOR(pg_catalog.||) x.code;
    END LOOP;

    -- Personal offers and usage counters of the promotions applied.  Money
    -- is compared in minor units on both sides, as calculate compares it:
    -- the budget (major units) is rounded up to the programme's decimals.
    FOR x IN SELECT m.id, m.code, m.audience, m.limit_per_customer, m.limit_period, m.limit_total,
                    pg_catalog.ceil(m.budget OPERATOR(pg_catalog.*)
                                    pg_catalog.power(10::numeric, p.money_exponent))::bigint AS budget,
                    @extschema@.minor_units((a OPERATOR(pg_catalog.->>) 'discount')::numeric, p.money_exponent) AS money
               FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.#>) '{promotions,applied}') a
               JOIN @extschema@.promotion m ON m.program_id OPERATOR(pg_catalog.=) p.id
                                           AND m.code OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'code')
              ORDER BY m.id
    LOOP
        IF x.audience OPERATOR(pg_catalog.=) 'personal' THEN
            UPDATE @extschema@.personal_offer o SET uses_left = o.uses_left OPERATOR(pg_catalog.-) 1
             WHERE o.customer_id OPERATOR(pg_catalog.=) cid AND o.promotion_id OPERATOR(pg_catalog.=) x.id
               AND o.uses_left OPERATOR(pg_catalog.>) 0;
            IF FOUND THEN
                offers := offers OPERATOR(pg_catalog.||) x.id;
            ELSIF EXISTS (SELECT 1 FROM @extschema@.personal_offer o
                           WHERE o.customer_id OPERATOR(pg_catalog.=) cid
                             AND o.promotion_id OPERATOR(pg_catalog.=) x.id AND o.uses_left IS NOT NULL) THEN
                PERFORM @extschema@.refuse_moved(receipt, rid, NULL, x.code,
                                                 pg_catalog.format('the personal offer of promotion "%s" was used up', x.code));
            END IF;
        END IF;
        IF x.limit_per_customer IS NOT NULL THEN
            INSERT INTO @extschema@.counter AS t (promotion_id, customer_id, period_start, uses, money)
            VALUES (x.id, cid, @extschema@.period_start(x.limit_period, local_day), 1, x.money)
            ON CONFLICT (promotion_id, customer_id, period_start) DO UPDATE
               SET uses = t.uses OPERATOR(pg_catalog.+) 1, money = t.money OPERATOR(pg_catalog.+) x.money,
                   updated_at = pg_catalog.now()
             WHERE t.uses OPERATOR(pg_catalog.<) x.limit_per_customer;
            IF NOT FOUND THEN
                PERFORM @extschema@.refuse_moved(receipt, rid, NULL, x.code,
                                                 pg_catalog.format('customer %s reached the limit of promotion "%s"', cid, x.code));
            END IF;
            counters := counters OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                'promotion_id', x.id, 'customer_id', cid,
                'period_start', @extschema@.period_start(x.limit_period, local_day), 'money', x.money);
        END IF;
        IF x.limit_total IS NOT NULL OR x.budget IS NOT NULL THEN
            INSERT INTO @extschema@.counter AS t (promotion_id, customer_id, period_start, uses, money)
            VALUES (x.id, 0, '-infinity', 1, x.money)
            ON CONFLICT (promotion_id, customer_id, period_start) DO UPDATE
               SET uses = t.uses OPERATOR(pg_catalog.+) 1, money = t.money OPERATOR(pg_catalog.+) x.money,
                   updated_at = pg_catalog.now()
             WHERE (x.limit_total IS NULL OR t.uses OPERATOR(pg_catalog.<) x.limit_total)
               AND (x.budget IS NULL OR t.money OPERATOR(pg_catalog.<) x.budget);
            IF NOT FOUND THEN
                PERFORM @extschema@.refuse_moved(receipt, rid, NULL, x.code,
                    pg_catalog.format('promotion "%s" %s', x.code,
                        CASE WHEN x.limit_total IS NOT NULL AND EXISTS (
                                 SELECT 1 FROM @extschema@.counter t
                                  WHERE t.promotion_id OPERATOR(pg_catalog.=) x.id
                                    AND t.customer_id OPERATOR(pg_catalog.=) 0
                                    AND t.period_start OPERATOR(pg_catalog.=) '-infinity'
                                    AND t.uses OPERATOR(pg_catalog.>=) x.limit_total)
                             THEN 'reached its limit of uses' ELSE 'spent its budget' END));
            END IF;
            counters := counters OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                'promotion_id', x.id, 'customer_id', 0, 'period_start', '-infinity', 'money', x.money);
        END IF;
    END LOOP;

    -- Points spent: exactly the lots calculate chose, per currency
    FOR x IN SELECT s.currency,
                    pg_catalog.array_agg(s.lot ORDER BY s.lot) AS lots,
                    pg_catalog.array_agg(s.points ORDER BY s.lot) AS points,
                    pg_catalog.sum(s.points)::bigint AS total
               FROM (SELECT pp OPERATOR(pg_catalog.->>) 'currency', (pp OPERATOR(pg_catalog.->>) 'lot')::bigint,
                            pg_catalog.sum(@extschema@.minor_units((pp OPERATOR(pg_catalog.->>) 'points')::numeric, k.exponent))::bigint AS points
                       FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.->) 'lines') l,
                            pg_catalog.jsonb_array_elements(l OPERATOR(pg_catalog.->) 'points_paid') pp
                       JOIN @extschema@.currency k ON k.program_id OPERATOR(pg_catalog.=) p.id
                                                  AND k.code OPERATOR(pg_catalog.=) (pp OPERATOR(pg_catalog.->>) 'currency')
                      GROUP BY 1, 2) s (currency, lot, points)
              GROUP BY 1 ORDER BY 1
    LOOP
        e := @extschema@.spend_lots(cid, x.currency, x.lots, x.points, rid,
                                    'loyalty:redeem:' OPERATOR(pg_catalog.||) rid
                                    OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) x.currency);
        spent := spent OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, x.total);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
    END LOOP;

    -- Points earned: the regular accrual per currency, then each bonus lot
    IF cid IS NOT NULL THEN
        FOR x IN
            WITH bonus AS (
                SELECT b OPERATOR(pg_catalog.->>) 'currency' AS currency,
                       @extschema@.minor_units((b OPERATOR(pg_catalog.->>) 'points')::numeric, k.exponent) AS amount,
                       CASE WHEN b OPERATOR(pg_catalog.->>) 'valid_days' IS NULL THEN NULL
                            ELSE pg_catalog.make_interval(days => (b OPERATOR(pg_catalog.->>) 'valid_days')::integer) END AS valid_for,
                       b OPERATOR(pg_catalog.->>) 'restriction' AS restriction, o AS ord
                  FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.->) 'bonus_lots') WITH ORDINALITY AS t (b, o)
                  JOIN @extschema@.currency k ON k.program_id OPERATOR(pg_catalog.=) p.id
                                             AND k.code OPERATOR(pg_catalog.=) (b OPERATOR(pg_catalog.->>) 'currency')),
            -- bonus lots alike (currency, validity, restriction) make one lot
            lots AS (
                SELECT b.currency, pg_catalog.sum(b.amount)::bigint AS amount, b.valid_for, b.restriction,
                       pg_catalog.min(b.ord) AS ord
                  FROM bonus b GROUP BY b.currency, b.valid_for, b.restriction)
            SELECT t.currency, t.amount, t.kind, t.valid_for, t.restriction
              FROM (SELECT e2.key AS currency,
                           @extschema@.minor_units(e2.value::numeric, k.exponent)
                             OPERATOR(pg_catalog.-) COALESCE((SELECT pg_catalog.sum(b.amount) FROM bonus b
                                                              WHERE b.currency OPERATOR(pg_catalog.=) e2.key), 0)::bigint AS amount,
                           'regular'::text AS kind, NULL::interval AS valid_for, NULL::text AS restriction,
                           0 AS grp, 0::bigint AS ord
                      FROM pg_catalog.jsonb_each_text(answer OPERATOR(pg_catalog.#>) '{totals,points_earned}') e2
                      JOIN @extschema@.currency k ON k.program_id OPERATOR(pg_catalog.=) p.id
                                                 AND k.code OPERATOR(pg_catalog.=) e2.key
                    UNION ALL
                    SELECT b.currency, b.amount, 'promo', b.valid_for, b.restriction, 1, b.ord FROM lots b) t
             WHERE t.amount OPERATOR(pg_catalog.>) 0
             ORDER BY t.grp, t.currency, t.ord
        LOOP
            n := n OPERATOR(pg_catalog.+) 1;
            accruals := accruals OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                'key', 'loyalty:accrual:' OPERATOR(pg_catalog.||) rid OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) n,
                'currency', x.currency, 'amount', x.amount, 'kind', x.kind,
                'valid_for', x.valid_for, 'restriction', x.restriction);
            earned := earned OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((earned OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) x.amount);
        END LOOP;
    END IF;
    IF pg_catalog.jsonb_array_length(accruals) OPERATOR(pg_catalog.>) 0 THEN
        IF p.accrual_delay OPERATOR(pg_catalog.>) '0'::interval THEN
            release_at := pg_catalog.now() OPERATOR(pg_catalog.+) p.accrual_delay;
            -- the wallets exist before the queue names them
            INSERT INTO @extschema@.wallet (customer_id, currency, program_id)
            SELECT DISTINCT cid, a OPERATOR(pg_catalog.->>) 'currency', p.id
              FROM pg_catalog.jsonb_array_elements(accruals) a
            ON CONFLICT DO NOTHING;
            INSERT INTO @extschema@.accrual_queue (program_id, receipt_id, customer_id, currency, amount,
                                                   kind, valid_for, restriction, idempotency_key, release_at)
            SELECT p.id, rid, cid, a OPERATOR(pg_catalog.->>) 'currency', (a OPERATOR(pg_catalog.->>) 'amount')::bigint,
                   a OPERATOR(pg_catalog.->>) 'kind', (a OPERATOR(pg_catalog.->>) 'valid_for')::interval,
                   a OPERATOR(pg_catalog.->>) 'restriction', a OPERATOR(pg_catalog.->>) 'key', release_at
              FROM pg_catalog.jsonb_array_elements(accruals) a;
        ELSE
            FOR x IN SELECT a OPERATOR(pg_catalog.->>) 'currency' AS currency,
                            (a OPERATOR(pg_catalog.->>) 'amount')::bigint AS amount,
                            a OPERATOR(pg_catalog.->>) 'kind' AS kind,
                            (a OPERATOR(pg_catalog.->>) 'valid_for')::interval AS valid_for,
                            a OPERATOR(pg_catalog.->>) 'restriction' AS restriction,
                            a OPERATOR(pg_catalog.->>) 'key' AS key
                       FROM pg_catalog.jsonb_array_elements(accruals) a
            LOOP
                e := @extschema@.accrue(cid, x.currency, x.amount, NULL,
                                        pg_catalog.now() OPERATOR(pg_catalog.+) x.valid_for,
                                        x.kind, 0, x.restriction, rid, x.key);
                entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                    'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
            END LOOP;
        END IF;
    END IF;

    at_ts := (answer OPERATOR(pg_catalog.->>) 'at')::timestamptz;
    result := answer OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('commit', pg_catalog.jsonb_build_object(
        'status', 'committed', 'replayed', false, 'committed_at', pg_catalog.now(),
        'accrual', CASE WHEN pg_catalog.jsonb_array_length(accruals) OPERATOR(pg_catalog.=) 0 THEN 'none'
                        WHEN release_at IS NOT NULL THEN 'queued' ELSE 'released' END,
        'release_at', release_at, 'points_spent', spent, 'points_earned', earned, 'ledger', entries));

    INSERT INTO @extschema@.receipt (program_id, receipt_id, committed_at, customer_id, at, store,
                                     amount, discount, points_money, to_pay, points_spent, points_earned,
                                     accruals, coupons, counters, offers, answer, actor, document)
    VALUES (p.id, rid, pg_catalog.now(), cid, at_ts,
            receipt OPERATOR(pg_catalog.->>) 'store',
            @extschema@.minor_units((answer OPERATOR(pg_catalog.#>>) '{totals,amount}')::numeric, p.money_exponent),
            @extschema@.minor_units((answer OPERATOR(pg_catalog.#>>) '{totals,discount}')::numeric, p.money_exponent),
            @extschema@.minor_units((answer OPERATOR(pg_catalog.#>>) '{totals,points_paid}')::numeric, p.money_exponent),
            @extschema@.minor_units((answer OPERATOR(pg_catalog.#>>) '{totals,to_pay}')::numeric, p.money_exponent),
            spent, earned, accruals, coupons, counters, offers, result, @extschema@.actor(), receipt);
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (p.id, 'receipt_committed', cid, pg_catalog.jsonb_build_object(
                'receipt_id', rid, 'store', receipt OPERATOR(pg_catalog.->>) 'store',
                'at', at_ts, 'committed_at', pg_catalog.now(),
                'totals', result OPERATOR(pg_catalog.->) 'totals',
                'accrual', result OPERATOR(pg_catalog.#>) '{commit,accrual}',
                'release_at', result OPERATOR(pg_catalog.#>) '{commit,release_at}',
                'coupons', pg_catalog.to_jsonb(coupons)));
    IF cid IS NOT NULL THEN
        PERFORM @extschema@.lift_tier(p.id, cid, rid);
    END IF;
    INSERT INTO @extschema@.receipt_line (program_id, receipt_id, committed_at, line, sku, qty, price,
                                          amount, discount, points_money, to_pay, discounts,
                                          points_paid, points_earned)
    SELECT p.id, rid, pg_catalog.now(), (l OPERATOR(pg_catalog.->>) 'line')::integer, l OPERATOR(pg_catalog.->>) 'sku',
           (l OPERATOR(pg_catalog.->>) 'qty')::numeric,
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'price')::numeric, p.money_exponent),
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'amount')::numeric, p.money_exponent),
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'discount')::numeric, p.money_exponent),
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'points_amount')::numeric, p.money_exponent),
           @extschema@.minor_units((l OPERATOR(pg_catalog.->>) 'to_pay')::numeric, p.money_exponent),
           l OPERATOR(pg_catalog.->) 'discounts', l OPERATOR(pg_catalog.->) 'points_paid',
           l OPERATOR(pg_catalog.->) 'points_earned'
      FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.->) 'lines') l;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.commit(jsonb, jsonb) IS
'write a receipt as calculate shows it: lines, redemption of the lots chosen, coupon and counter uses, the accrual (at once or queued); idempotent by receipt_id';

CREATE OR REPLACE FUNCTION @extschema@.cancel(program text, receipt_id text, reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    rid text := receipt_id;
    k @extschema@.receipt_key;
    r @extschema@.receipt;
    queued text[];
    x record;
    e @extschema@.ledger;
    entries jsonb := '[]';
    policy text;
    short bigint;
    withheld bigint := 0;
    owed jsonb := '{}';
    result jsonb;
BEGIN
    IF program IS NULL OR rid IS NULL THEN
        RAISE EXCEPTION 'program and receipt_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pid := @extschema@.program_id(program);
    SELECT g.refund_shortfall INTO policy FROM @extschema@.program g WHERE g.id OPERATOR(pg_catalog.=) pid;
    SELECT * INTO k FROM @extschema@.receipt_key t
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.receipt_id OPERATOR(pg_catalog.=) rid
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was not committed', rid, program
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO STRICT r FROM @extschema@.receipt t
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    IF r.status OPERATOR(pg_catalog.=) 'cancelled' THEN
        RETURN pg_catalog.jsonb_set(r.cancel_result, '{replayed}', 'true');
    END IF;
    IF r.status OPERATOR(pg_catalog.<>) 'committed' THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was %: it cannot be cancelled', rid, program,
              CASE r.status WHEN 'refunded' THEN 'refunded' ELSE 'refunded in part' END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Return the other lines with loyalty.refund.';
    END IF;

    -- Accruals still queued go; a release in progress is waited for.  This
    -- comes before the wallet locks: a release never waits for a wallet.
    WITH gone AS (
        DELETE FROM @extschema@.accrual_queue q
         WHERE q.program_id OPERATOR(pg_catalog.=) pid AND q.receipt_id OPERATOR(pg_catalog.=) rid
        RETURNING q.idempotency_key)
    SELECT COALESCE(pg_catalog.array_agg(g.idempotency_key), '{}') INTO queued FROM gone g;
    IF r.customer_id IS NOT NULL THEN
        PERFORM 1 FROM @extschema@.wallet w
          WHERE w.customer_id OPERATOR(pg_catalog.=) r.customer_id
          ORDER BY w.currency COLLATE pg_catalog."C" FOR NO KEY UPDATE;
    END IF;

    -- Points spent go back to the lots that paid
    FOR x IN SELECT l.currency, l.lot_ids, l.lot_amounts
               FROM pg_catalog.jsonb_object_keys(r.points_spent) c (currency)
               JOIN @extschema@.ledger l
                 ON l.program_id OPERATOR(pg_catalog.=) pid
                AND l.idempotency_key OPERATOR(pg_catalog.=) ('loyalty:redeem:' OPERATOR(pg_catalog.||) rid
                                                            OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) c.currency)
              ORDER BY l.currency
    LOOP
        e := @extschema@.return_lots(r.customer_id, x.currency, x.lot_ids, x.lot_amounts, rid, NULL);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
    END LOOP;

    -- Accruals already released are taken back
    FOR x IN SELECT l.currency, l.lot_id, l.amount
               FROM pg_catalog.jsonb_array_elements(r.accruals) a
               JOIN @extschema@.ledger l
                 ON l.program_id OPERATOR(pg_catalog.=) pid
                AND l.idempotency_key OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'key')
              WHERE (a OPERATOR(pg_catalog.->>) 'key') OPERATOR(pg_catalog.<>) ALL (queued)
              ORDER BY l.currency, l.lot_id
    LOOP
        e := @extschema@.take_back(r.customer_id, x.currency, x.lot_id, x.amount, rid, NULL,
                                   CASE policy WHEN 'debt' THEN 'debt' ELSE 'forgive' END);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
        short := x.amount OPERATOR(pg_catalog.+) e.amount;
        IF short OPERATOR(pg_catalog.>) 0 AND policy OPERATOR(pg_catalog.=) 'debt' THEN
            owed := owed OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((owed OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) short);
        ELSIF short OPERATOR(pg_catalog.>) 0 THEN
            withheld := withheld OPERATOR(pg_catalog.+) @extschema@.points_money(pid, x.currency, short);
        END IF;
    END LOOP;

    -- Coupon, offer and counter uses are given back
    UPDATE @extschema@.coupon o
       SET uses = o.uses OPERATOR(pg_catalog.-) 1,
           state = CASE WHEN o.state OPERATOR(pg_catalog.=) 'redeemed' THEN 'issued' ELSE o.state END
     WHERE o.program_id OPERATOR(pg_catalog.=) pid
       AND pg_catalog.lower(o.code) OPERATOR(pg_catalog.=) ANY
           (SELECT pg_catalog.lower(c) FROM pg_catalog.unnest(r.coupons) c)
       AND o.uses OPERATOR(pg_catalog.>) 0;
    UPDATE @extschema@.personal_offer o SET uses_left = o.uses_left OPERATOR(pg_catalog.+) 1
     WHERE o.customer_id OPERATOR(pg_catalog.=) r.customer_id
       AND o.promotion_id OPERATOR(pg_catalog.=) ANY (r.offers)
       AND o.uses_left IS NOT NULL;
    PERFORM @extschema@.return_counter_uses(r.counters);

    result := pg_catalog.jsonb_build_object(
        'program', program, 'receipt_id', rid, 'status', 'cancelled', 'replayed', false,
        'cancelled_at', pg_catalog.now(), 'customer_id', r.customer_id,
        'accruals_dequeued', pg_catalog.cardinality(queued), 'ledger', entries,
        'debt', owed, 'money_withheld',
        @extschema@.major_units(withheld, (SELECT g.money_exponent FROM @extschema@.program g
                                            WHERE g.id OPERATOR(pg_catalog.=) pid)));
    UPDATE @extschema@.receipt t
       SET status = 'cancelled', cancelled_at = pg_catalog.now(), cancel_reason = reason,
           cancel_result = result
     WHERE t.program_id OPERATOR(pg_catalog.=) pid AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (pid, 'receipt_cancelled', r.customer_id, result OPERATOR(pg_catalog.-) '{ledger,replayed}'::text[]);
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.cancel(text, text, text) IS
'cancel a committed receipt: queued accruals removed, released ones taken back (what was spent since owed or kept in money, per refund_shortfall), spent points returned to their lots, coupon, offer and counter uses given back; a second cancel returns the first result';

CREATE OR REPLACE FUNCTION @extschema@.refund(program text, receipt_id text, lines jsonb, refund_id text,
                                   reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rid text := receipt_id;
    fid text := refund_id;
    g @extschema@.program;
    k @extschema@.receipt_key;
    r @extschema@.receipt;
    old @extschema@.receipt_refund;
    l @extschema@.receipt_line;
    req jsonb := '[]';
    item jsonb;
    n integer := 0;
    line_no integer;
    back numeric;
    prev numeric;
    upto numeric;
    x record;
    e @extschema@.ledger;
    entries jsonb := '[]';
    line_money bigint;
    money bigint := 0;
    withheld bigint := 0;
    ret_cur text[] := '{}';
    ret_lot bigint[] := '{}';
    ret_amt bigint[] := '{}';
    tb_cur text[] := '{}';
    tb_amt bigint[] := '{}';
    returned jsonb := '{}';
    taken jsonb := '{}';
    owed jsonb := '{}';
    per_line jsonb := '[]';
    line_ret jsonb;
    line_tb jsonb;
    want bigint;
    cut bigint;
    short bigint;
    lot bigint;
    kept jsonb;
    now_answer jsonb;
    kept_discount bigint := 0;
    lost bigint := 0;
    lost_delta bigint := 0;
    counters_back jsonb := '[]';
    counters_after jsonb;
    result jsonb;
BEGIN
    IF program IS NULL OR rid IS NULL OR lines IS NULL OR fid IS NULL THEN
        RAISE EXCEPTION 'program, receipt_id, lines and refund_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF fid OPERATOR(pg_catalog.=) '' OR pg_catalog.length(fid) OPERATOR(pg_catalog.>) 128 THEN
        RAISE EXCEPTION 'refund_id must be 1 to 128 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The refund id makes a refund safe to repeat: send the same id again when the outcome is unknown.';
    END IF;
    SELECT * INTO g FROM @extschema@.program p WHERE p.id OPERATOR(pg_catalog.=) @extschema@.program_id(program);
    IF pg_catalog.jsonb_typeof(lines) IS DISTINCT FROM 'array' OR pg_catalog.jsonb_array_length(lines) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array of {"line": n, "qty": q}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO k FROM @extschema@.receipt_key t
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was not committed', rid, program
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO STRICT r FROM @extschema@.receipt t
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;

    -- the same refund again: its first result
    SELECT * INTO old FROM @extschema@.receipt_refund f
     WHERE f.program_id OPERATOR(pg_catalog.=) g.id AND f.receipt_id OPERATOR(pg_catalog.=) rid
       AND f.refund_id OPERATOR(pg_catalog.=) fid;
    IF FOUND THEN
        IF old.request OPERATOR(pg_catalog.<>) lines THEN
            RAISE EXCEPTION 'refund "%" of receipt "%" was made with other lines', fid, rid
                USING ERRCODE = '23L02',
                      DETAIL = pg_catalog.format('It returned %s.', old.lines),
                      HINT = 'Give a new return a new refund_id.';
        END IF;
        RETURN old.result OPERATOR(pg_catalog.||) '{"replayed": true}';
    END IF;
    IF r.status OPERATOR(pg_catalog.=) 'cancelled' THEN
        RAISE EXCEPTION 'receipt "%" of programme "%" was cancelled: nothing is left to refund', rid, program
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    -- the lines asked for, checked one by one
    FOR item IN SELECT v FROM pg_catalog.jsonb_array_elements(lines) v LOOP
        IF pg_catalog.jsonb_typeof(item) IS DISTINCT FROM 'object'
           OR pg_catalog.jsonb_typeof(item OPERATOR(pg_catalog.->) 'line') IS DISTINCT FROM 'number'
           OR (item OPERATOR(pg_catalog.->>) 'line')::numeric OPERATOR(pg_catalog.<>) pg_catalog.trunc((item OPERATOR(pg_catalog.->>) 'line')::numeric)
           OR pg_catalog.abs((item OPERATOR(pg_catalog.->>) 'line')::numeric) OPERATOR(pg_catalog.>) 2147483647 THEN
            RAISE EXCEPTION 'lines[%] must be an object with a whole number "line"', n
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        line_no := (item OPERATOR(pg_catalog.->>) 'line')::integer;
        IF item OPERATOR(pg_catalog.?) 'qty' AND pg_catalog.jsonb_typeof(item OPERATOR(pg_catalog.->) 'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'lines[%].qty must be a number', n USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT * INTO l FROM @extschema@.receipt_line t
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at AND t.line OPERATOR(pg_catalog.=) line_no;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'receipt "%" has no line %', rid, line_no USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF req OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('line', line_no)) THEN
            RAISE EXCEPTION 'line % is named twice', line_no USING ERRCODE = 'invalid_parameter_value';
        END IF;
        back := COALESCE((item OPERATOR(pg_catalog.->>) 'qty')::numeric, l.qty OPERATOR(pg_catalog.-) l.refunded_qty);
        IF back OPERATOR(pg_catalog.<=) 0 AND item OPERATOR(pg_catalog.?) 'qty' THEN
            RAISE EXCEPTION 'lines[%].qty must be greater than 0', n USING ERRCODE = 'numeric_value_out_of_range';
        END IF;
        IF l.refunded_qty OPERATOR(pg_catalog.>=) l.qty THEN
            RAISE EXCEPTION 'line % of receipt "%" was returned already', line_no, rid
                USING ERRCODE = '23L03', HINT = 'A line is returned at most once in all.';
        END IF;
        IF back OPERATOR(pg_catalog.>) (l.qty OPERATOR(pg_catalog.-) l.refunded_qty) THEN
            RAISE EXCEPTION 'line % of receipt "%" has % left to return, not %', line_no, rid,
                  l.qty OPERATOR(pg_catalog.-) l.refunded_qty, back
                USING ERRCODE = '23L03',
                      DETAIL = pg_catalog.format('%s of %s were returned already.', l.refunded_qty, l.qty);
        END IF;
        req := req OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('line', line_no, 'qty', back));
        n := n OPERATOR(pg_catalog.+) 1;
    END LOOP;

    -- each line's share, cumulative over its returns
    FOR item IN SELECT v FROM pg_catalog.jsonb_array_elements(req) v LOOP
        SELECT * INTO l FROM @extschema@.receipt_line t
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
           AND t.line OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'line')::integer;
        prev := l.refunded_qty;
        upto := prev OPERATOR(pg_catalog.+) (item OPERATOR(pg_catalog.->>) 'qty')::numeric;
        line_money := @extschema@.share(l.to_pay, prev, upto, l.qty);
        money := money OPERATOR(pg_catalog.+) line_money;
        line_ret := '{}';
        line_tb := '{}';
        FOR x IN SELECT pp OPERATOR(pg_catalog.->>) 'currency' AS currency, (pp OPERATOR(pg_catalog.->>) 'lot')::bigint AS lot,
                        @extschema@.share(@extschema@.minor_units((pp OPERATOR(pg_catalog.->>) 'points')::numeric, c.exponent),
                                          prev, upto, l.qty) AS amount
                   FROM pg_catalog.jsonb_array_elements(l.points_paid) pp
                   JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) g.id
                                              AND c.code OPERATOR(pg_catalog.=) (pp OPERATOR(pg_catalog.->>) 'currency')
        LOOP
            CONTINUE WHEN x.amount OPERATOR(pg_catalog.<=) 0;
            ret_cur := ret_cur OPERATOR(pg_catalog.||) x.currency;
            ret_lot := ret_lot OPERATOR(pg_catalog.||) x.lot;
            ret_amt := ret_amt OPERATOR(pg_catalog.||) x.amount;
            line_ret := line_ret OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((line_ret OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) x.amount);
        END LOOP;
        FOR x IN SELECT pe OPERATOR(pg_catalog.->>) 'currency' AS currency,
                        @extschema@.share(@extschema@.minor_units((pe OPERATOR(pg_catalog.->>) 'points')::numeric, c.exponent),
                                          prev, upto, l.qty) AS amount
                   FROM pg_catalog.jsonb_array_elements(l.points_earned) pe
                   JOIN @extschema@.currency c ON c.program_id OPERATOR(pg_catalog.=) g.id
                                              AND c.code OPERATOR(pg_catalog.=) (pe OPERATOR(pg_catalog.->>) 'currency')
        LOOP
            CONTINUE WHEN x.amount OPERATOR(pg_catalog.<=) 0 OR r.customer_id IS NULL;
            tb_cur := tb_cur OPERATOR(pg_catalog.||) x.currency;
            tb_amt := tb_amt OPERATOR(pg_catalog.||) x.amount;
            line_tb := line_tb OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency,
                COALESCE((line_tb OPERATOR(pg_catalog.->>) x.currency)::bigint, 0) OPERATOR(pg_catalog.+) x.amount);
        END LOOP;
        UPDATE @extschema@.receipt_line t SET refunded_qty = upto
         WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at AND t.line OPERATOR(pg_catalog.=) l.line;
        per_line := per_line OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'line', l.line, 'qty', item OPERATOR(pg_catalog.->) 'qty',
            'money', @extschema@.major_units(line_money, g.money_exponent),
            'points_returned', line_ret, 'points_taken', line_tb));
    END LOOP;

    -- Points earned and still queued come off the queue first (before the
    -- wallet locks: a release never waits for a wallet), regular accruals
    -- before bonus lots.
    FOR x IN SELECT u.c AS currency, pg_catalog.sum(u.a)::bigint AS amount
               FROM ROWS FROM (pg_catalog.unnest(tb_cur), pg_catalog.unnest(tb_amt)) u (c, a) GROUP BY u.c ORDER BY u.c
    LOOP
        want := x.amount;
        taken := taken OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, x.amount);
        FOR item IN SELECT pg_catalog.jsonb_build_object('id', q.id, 'amount', q.amount)
                      FROM @extschema@.accrual_queue q
                     WHERE q.program_id OPERATOR(pg_catalog.=) g.id AND q.receipt_id OPERATOR(pg_catalog.=) rid
                       AND q.currency OPERATOR(pg_catalog.=) x.currency
                     ORDER BY q.kind OPERATOR(pg_catalog.<>) 'regular', q.id
                       FOR UPDATE
        LOOP
            EXIT WHEN want OPERATOR(pg_catalog.<=) 0;
            cut := LEAST(want, (item OPERATOR(pg_catalog.->>) 'amount')::bigint);
            IF cut OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'amount')::bigint THEN
                DELETE FROM @extschema@.accrual_queue q WHERE q.id OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'id')::bigint;
            ELSE
                UPDATE @extschema@.accrual_queue q SET amount = q.amount OPERATOR(pg_catalog.-) cut
                 WHERE q.id OPERATOR(pg_catalog.=) (item OPERATOR(pg_catalog.->>) 'id')::bigint;
            END IF;
            want := want OPERATOR(pg_catalog.-) cut;
        END LOOP;
        tb_cur := tb_cur OPERATOR(pg_catalog.||) ('-' OPERATOR(pg_catalog.||) x.currency);
        tb_amt := tb_amt OPERATOR(pg_catalog.||) want;
    END LOOP;

    IF r.customer_id IS NOT NULL THEN
        PERFORM 1 FROM @extschema@.wallet w
          WHERE w.customer_id OPERATOR(pg_catalog.=) r.customer_id
          ORDER BY w.currency COLLATE pg_catalog."C" FOR NO KEY UPDATE;
    END IF;

    -- Points that paid the lines go back to their lots
    FOR x IN SELECT s.c AS currency, pg_catalog.array_agg(s.l ORDER BY s.l) AS lots,
                    pg_catalog.array_agg(s.a ORDER BY s.l) AS amounts, pg_catalog.sum(s.a)::bigint AS total
               FROM (SELECT u.c, u.l, pg_catalog.sum(u.a)::bigint AS a
                       FROM ROWS FROM (pg_catalog.unnest(ret_cur), pg_catalog.unnest(ret_lot), pg_catalog.unnest(ret_amt)) u (c, l, a) GROUP BY u.c, u.l) s
              GROUP BY s.c ORDER BY s.c
    LOOP
        e := @extschema@.return_lots(r.customer_id, x.currency, x.lots, x.amounts, rid, NULL);
        returned := returned OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, x.total);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
    END LOOP;

    -- Points earned and released are taken back from the wallet (the
    -- accrual's lot first); what was spent since is owed or kept in money
    FOR x IN SELECT pg_catalog.substr(u.c, 2) AS currency, u.a AS amount
               FROM ROWS FROM (pg_catalog.unnest(tb_cur), pg_catalog.unnest(tb_amt)) u (c, a)
              WHERE pg_catalog.left(u.c, 1) OPERATOR(pg_catalog.=) '-' AND u.a OPERATOR(pg_catalog.>) 0
              ORDER BY 1
    LOOP
        SELECT e2.lot_id INTO lot
          FROM pg_catalog.jsonb_array_elements(r.accruals) a
          JOIN @extschema@.ledger e2 ON e2.program_id OPERATOR(pg_catalog.=) g.id
                                    AND e2.idempotency_key OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'key')
         WHERE a OPERATOR(pg_catalog.->>) 'currency' OPERATOR(pg_catalog.=) x.currency
         ORDER BY a OPERATOR(pg_catalog.->>) 'kind' OPERATOR(pg_catalog.<>) 'regular', e2.version
         LIMIT 1;
        e := @extschema@.take_back(r.customer_id, x.currency, COALESCE(lot, 0), x.amount, rid, NULL,
                                   CASE g.refund_shortfall WHEN 'debt' THEN 'debt' ELSE 'forgive' END);
        entries := entries OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'currency', e.currency, 'operation', e.operation, 'amount', e.amount, 'version', e.version);
        short := x.amount OPERATOR(pg_catalog.+) e.amount;
        IF short OPERATOR(pg_catalog.>) 0 AND g.refund_shortfall OPERATOR(pg_catalog.=) 'debt' THEN
            owed := owed OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(x.currency, short);
        ELSIF short OPERATOR(pg_catalog.>) 0 THEN
            withheld := withheld OPERATOR(pg_catalog.+) @extschema@.points_money(g.id, x.currency, short);
        END IF;
    END LOOP;
    withheld := LEAST(withheld, money);

    -- What the return breaks: the lines kept, recomputed with the receipt's
    -- own promotions as committed, may earn less discount than they got
    -- ("3 for 2" with one of the three returned).  The loss so far is kept
    -- back from the money (as far as this return gives any); a later return
    -- that ends it gives it back.  Promotions that no longer hold give their
    -- counter uses back.
    IF r.document IS NOT NULL THEN
        -- a line without a number is numbered by its place, as calculate does
        SELECT pg_catalog.jsonb_agg(d OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                   'line', t.line, 'qty', t.qty OPERATOR(pg_catalog.-) t.refunded_qty) ORDER BY t.line),
               pg_catalog.sum(t.discount OPERATOR(pg_catalog.-)
                              @extschema@.share(t.discount, 0, t.refunded_qty, t.qty))::bigint
          INTO kept, kept_discount
          FROM pg_catalog.jsonb_array_elements(r.document OPERATOR(pg_catalog.->) 'lines') WITH ORDINALITY AS dl (d, o)
          JOIN @extschema@.receipt_line t
            ON t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
           AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
           AND t.line OPERATOR(pg_catalog.=) COALESCE((d OPERATOR(pg_catalog.->>) 'line')::integer, dl.o::integer)
         WHERE t.refunded_qty OPERATOR(pg_catalog.<) t.qty;
        IF kept IS NOT NULL THEN
            now_answer := @extschema@.recompute(
                ((r.document OPERATOR(pg_catalog.-) '{points,coupons}'::text[])
                 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                     'lines', kept,
                     'at', COALESCE(r.document OPERATOR(pg_catalog.->) 'at',
                                    pg_catalog.to_jsonb(pg_catalog.to_char(pg_catalog.timezone('UTC', r.at),
                                                                           'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))))),
                @extschema@.applied_promotion_ids(g.id, r.answer));
            lost := GREATEST(kept_discount OPERATOR(pg_catalog.-) @extschema@.minor_units(
                        (now_answer OPERATOR(pg_catalog.#>>) '{totals,discount}')::numeric, g.money_exponent), 0);
        END IF;
        lost_delta := lost OPERATOR(pg_catalog.-) r.discount_lost;
        IF lost_delta OPERATOR(pg_catalog.>) 0 THEN
            lost_delta := LEAST(lost_delta, money OPERATOR(pg_catalog.-) withheld);
        END IF;
        -- the counter uses of promotions the lines kept no longer get
        SELECT COALESCE(pg_catalog.jsonb_agg(c ORDER BY o), '[]') INTO counters_back
          FROM pg_catalog.jsonb_array_elements(r.counters) WITH ORDINALITY AS rc (c, o)
         WHERE (c OPERATOR(pg_catalog.->) 'returned') IS NULL
           AND (c OPERATOR(pg_catalog.->>) 'promotion_id')::bigint OPERATOR(pg_catalog.<>) ALL
               (@extschema@.applied_promotion_ids(g.id, now_answer));
        PERFORM @extschema@.return_counter_uses(counters_back);
        -- the receipt's counters, those given back marked with this refund
        SELECT COALESCE(pg_catalog.jsonb_agg(CASE WHEN counters_back OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(c)
                                                  THEN c OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('returned', fid)
                                                  ELSE c END ORDER BY o), '[]')
          INTO counters_after
          FROM pg_catalog.jsonb_array_elements(r.counters) WITH ORDINALITY AS rc (c, o);
    END IF;

    result := pg_catalog.jsonb_build_object(
        'program', program, 'receipt_id', rid, 'refund_id', fid, 'replayed', false,
        'status', CASE WHEN EXISTS (SELECT 1 FROM @extschema@.receipt_line t
                                     WHERE t.program_id OPERATOR(pg_catalog.=) g.id
                                       AND t.receipt_id OPERATOR(pg_catalog.=) rid
                                       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at
                                       AND t.refunded_qty OPERATOR(pg_catalog.<) t.qty)
                       THEN 'partly_refunded' ELSE 'refunded' END,
        'customer_id', r.customer_id, 'lines', per_line,
        'money', @extschema@.major_units(money OPERATOR(pg_catalog.-) withheld OPERATOR(pg_catalog.-) lost_delta,
                                         g.money_exponent),
        'money_withheld', @extschema@.major_units(withheld, g.money_exponent),
        'discount_withheld', @extschema@.major_units(lost_delta, g.money_exponent),
        'counters_returned', counters_back,
        'points_returned', returned, 'points_taken', taken, 'debt', owed, 'ledger', entries);
    INSERT INTO @extschema@.receipt_refund (program_id, receipt_id, refund_id, request, lines, money,
                                            money_withheld, points_returned, points_taken, debt,
                                            result, actor, reason, discount_withheld, counters_returned)
    VALUES (g.id, rid, fid, lines, req, money OPERATOR(pg_catalog.-) withheld OPERATOR(pg_catalog.-) lost_delta,
            withheld, returned, taken, owed, result, @extschema@.actor(), reason, lost_delta, counters_back);
    INSERT INTO @extschema@.event (program_id, type, customer_id, payload)
    VALUES (g.id, 'refund', r.customer_id, result OPERATOR(pg_catalog.-) '{ledger,replayed}'::text[]);
    UPDATE @extschema@.receipt t
       SET status = result OPERATOR(pg_catalog.->>) 'status',
           discount_lost = t.discount_lost OPERATOR(pg_catalog.+) lost_delta,
           counters = COALESCE(counters_after, t.counters)
     WHERE t.program_id OPERATOR(pg_catalog.=) g.id AND t.receipt_id OPERATOR(pg_catalog.=) rid
       AND t.committed_at OPERATOR(pg_catalog.=) k.committed_at;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.refund(text, text, jsonb, text, text) IS
'return some lines of a committed receipt (some quantity): their share of the money, of the points that paid them (to the same lots) and of the points they earned; the lines kept are recomputed with the receipt''s promotions and the discount they lose is kept back from the money; idempotent by refund_id';

-- a wallet's pending_until is the latest valid_from of its lots (src/lot.c)
COMMENT ON COLUMN @extschema@.wallet.pending_until IS 'the latest valid_from of the wallet''s lots: a transaction whose now() is earlier reads the lots one by one (NULL: no lot yet)';

-- An administrator changes a customer's status, birth date, home city and
-- attributes through loyalty.update_customer, logged in customer_log as the
-- action "update".
ALTER TABLE @extschema@.customer_log DROP CONSTRAINT customer_log_action_check;
ALTER TABLE @extschema@.customer_log ADD CONSTRAINT customer_log_action_check
    CHECK (action OPERATOR(pg_catalog.=) ANY
           ('{enroll,add_identifier,replace_card,identifier_status,merge,update}'::text[]));

-- Change what an administrator may change of an account: its status,
-- birth date, home city and attributes.  Only what is given changes.
CREATE FUNCTION @extschema@.update_customer(
    program text,
    customer_id bigint,
    reason text,
    status text DEFAULT NULL,
    birth_date date DEFAULT NULL,
    home_city text DEFAULT NULL,
    attributes jsonb DEFAULT NULL,
    clear text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    c @extschema@.customer;
    field text;
    removed text[];
    new_attributes jsonb;
    changes jsonb := '{}';
BEGIN
    IF update_customer.program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pid := @extschema@.program_id(update_customer.program);
    IF update_customer.customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF update_customer.reason IS NULL THEN
        RAISE EXCEPTION 'reason must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Say why, in a few words: it is kept in loyalty.customer_log.';
    END IF;
    IF pg_catalog.btrim(update_customer.reason) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'reason must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Say why, in a few words: it is kept in loyalty.customer_log.';
    END IF;

    -- every argument is checked before anything is read or locked
    IF update_customer.status IS NULL AND update_customer.birth_date IS NULL
       AND update_customer.home_city IS NULL AND update_customer.attributes IS NULL
       AND COALESCE(pg_catalog.cardinality(update_customer.clear), 0) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'nothing to change'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'status, birth_date, home_city, attributes and clear are all null.';
    END IF;
    IF update_customer.status OPERATOR(pg_catalog.=) 'merged' THEN
        RAISE EXCEPTION 'status must be active, blocked or fraud_hold, not "merged"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Accounts are merged with loyalty.merge_customers.';
    END IF;
    IF update_customer.status OPERATOR(pg_catalog.<>) ALL ('{active,blocked,fraud_hold}'::text[]) THEN
        RAISE EXCEPTION 'status must be active, blocked or fraud_hold, not "%"', update_customer.status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF update_customer.birth_date OPERATOR(pg_catalog.<) '1900-01-01'::date
       OR update_customer.birth_date OPERATOR(pg_catalog.>) CURRENT_DATE THEN
        RAISE EXCEPTION 'birth_date must be from 1900-01-01 to today, not %',
              CASE WHEN pg_catalog.isfinite(update_customer.birth_date)
                   THEN pg_catalog.to_char(update_customer.birth_date, 'YYYY-MM-DD')
                   ELSE update_customer.birth_date::text END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.btrim(update_customer.home_city) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'home_city must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'To remove the home city, pass clear => ''{home_city}''.';
    END IF;
    IF pg_catalog.jsonb_typeof(update_customer.attributes) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'customer attributes must be a JSON object, not %',
              pg_catalog.jsonb_typeof(update_customer.attributes)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The object''s keys are merged into the attributes; a key set to null is removed.';
    END IF;
    FOREACH field IN ARRAY COALESCE(update_customer.clear, '{}') LOOP
        IF field IS NULL OR field OPERATOR(pg_catalog.<>) ALL ('{birth_date,home_city}'::text[]) THEN
            RAISE EXCEPTION 'clear may name birth_date and home_city, not %',
                  CASE WHEN field IS NULL THEN 'null' ELSE pg_catalog.format('"%s"', field) END
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A status is always set; attributes are removed key by key, with a null value.';
        END IF;
        IF (field OPERATOR(pg_catalog.=) 'birth_date' AND update_customer.birth_date IS NOT NULL)
           OR (field OPERATOR(pg_catalog.=) 'home_city' AND update_customer.home_city IS NOT NULL) THEN
            RAISE EXCEPTION '% is both given and cleared', field
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;

    c := @extschema@.customer_for_update(pid, update_customer.customer_id);

    IF update_customer.status IS NOT NULL THEN
        changes := changes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('status',
                   pg_catalog.jsonb_build_object('from', c.status, 'to', update_customer.status));
    END IF;
    IF update_customer.birth_date IS NOT NULL OR 'birth_date' OPERATOR(pg_catalog.=) ANY (update_customer.clear) THEN
        changes := changes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('birth_date',
                   pg_catalog.jsonb_build_object('from', c.birth_date, 'to', update_customer.birth_date));
    END IF;
    IF update_customer.home_city IS NOT NULL OR 'home_city' OPERATOR(pg_catalog.=) ANY (update_customer.clear) THEN
        changes := changes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('home_city',
                   pg_catalog.jsonb_build_object('from', c.home_city, 'to', update_customer.home_city));
    END IF;
    new_attributes := c.attributes;
    IF update_customer.attributes IS NOT NULL THEN
        -- merged: the keys given replace or add, a key given as null is removed
        SELECT COALESCE(pg_catalog.array_agg(e.key), '{}') INTO removed
          FROM pg_catalog.jsonb_each(update_customer.attributes) e
         WHERE pg_catalog.jsonb_typeof(e.value) OPERATOR(pg_catalog.=) 'null';
        new_attributes := (c.attributes OPERATOR(pg_catalog.||) update_customer.attributes)
                          OPERATOR(pg_catalog.-) removed;
        changes := changes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('attributes',
                   pg_catalog.jsonb_build_object('from', c.attributes, 'to', new_attributes));
    END IF;

    UPDATE @extschema@.customer u
       SET status = COALESCE(update_customer.status, c.status),
           birth_date = CASE WHEN 'birth_date' OPERATOR(pg_catalog.=) ANY (update_customer.clear) THEN NULL
                             ELSE COALESCE(update_customer.birth_date, c.birth_date) END,
           home_city = CASE WHEN 'home_city' OPERATOR(pg_catalog.=) ANY (update_customer.clear) THEN NULL
                            ELSE COALESCE(update_customer.home_city, c.home_city) END,
           attributes = new_attributes,
           updated_at = pg_catalog.now()
     WHERE u.id OPERATOR(pg_catalog.=) c.id;
    INSERT INTO @extschema@.customer_log (program_id, customer_id, action, detail, reason)
    VALUES (pid, c.id, 'update', changes, update_customer.reason);
    RETURN changes;
END
$$;
COMMENT ON FUNCTION @extschema@.update_customer(text, bigint, text, text, date, text, jsonb, text[]) IS
'change the status, birth date, home city or attributes of a customer (only what is given; attributes merged, a null key removed; clear sets birth_date or home_city to NULL), logged with its reason; returns what changed, from and to';
REVOKE ALL ON FUNCTION @extschema@.update_customer(text, bigint, text, text, date, text, jsonb, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.update_customer(text, bigint, text, text, date, text, jsonb, text[]) TO loyalty_admin;

-- catalog_generation() runs as the owner: the three roles, which read no
-- table, call it (it failed for them with 42501 on the table).
CREATE OR REPLACE FUNCTION @extschema@.catalog_generation()
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT generation FROM @extschema@.catalog_generation $$;
REVOKE ALL ON FUNCTION @extschema@.catalog_generation() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.catalog_generation()
TO loyalty_cashier, loyalty_admin, loyalty_analyst;

-- Every column of the tables says what it holds (COMMENT): docs/tables.md is
-- generated from these comments (make docs), and the docs layer of make test
-- fails when it differs from them.
COMMENT ON COLUMN @extschema@.program.id IS 'the programme id, which the other tables hold as program_id';
COMMENT ON COLUMN @extschema@.program.code IS 'the name tills and backends use: lower-case letters, digits, _ and -, 1 to 63 characters';
COMMENT ON COLUMN @extschema@.program.name IS 'display name';
COMMENT ON COLUMN @extschema@.program.phone_country IS 'ISO 3166-1 alpha-2 country (upper case, one of loyalty.phone_countries()) in which phone numbers without + are read; NULL: only international numbers';
COMMENT ON COLUMN @extschema@.program.created_at IS 'when the programme was created';
COMMENT ON COLUMN @extschema@.program.min_line_price IS 'no line is discounted or paid with points below this amount of money, in major units (1.00)';
COMMENT ON COLUMN @extschema@.program.discount_step IS 'percent discounts of a line are rounded down to a multiple of this amount of money, in major units (1 for whole roubles); 0: the minor unit';
COMMENT ON COLUMN @extschema@.program.points_excluded IS 'a condition: the lines that points may not pay for (category <@ ''tobacco''); NULL: none';
COMMENT ON COLUMN @extschema@.currency.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.currency.name IS 'display name';
COMMENT ON COLUMN @extschema@.customer.id IS 'the customer id, unique in the database';
COMMENT ON COLUMN @extschema@.customer.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.customer.birth_date IS 'date of birth: customer.birthday in conditions, and the birthday audience of promotions';
COMMENT ON COLUMN @extschema@.customer.home_city IS 'the city the customer lives in: customer.home_city in conditions';
COMMENT ON COLUMN @extschema@.customer.tier IS 'current tier code (a tier of the programme, not enforced); NULL until the first receipt or review';
COMMENT ON COLUMN @extschema@.customer.created_at IS 'when the customer was enrolled';
COMMENT ON COLUMN @extschema@.customer.updated_at IS 'set by the functions when they change the row';
COMMENT ON COLUMN @extschema@.identifier.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.identifier.kind IS 'card, phone or email';
COMMENT ON COLUMN @extschema@.identifier.customer_id IS 'the customer, always of the same programme';
COMMENT ON COLUMN @extschema@.identifier.replaced_by IS 'the card number that replaced this card';
COMMENT ON COLUMN @extschema@.identifier.created_at IS 'when the identifier was bound';
COMMENT ON COLUMN @extschema@.identifier.updated_at IS 'set by the functions when they change the row';
COMMENT ON COLUMN @extschema@.customer_log.id IS 'the order of the entries';
COMMENT ON COLUMN @extschema@.customer_log.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.customer_log.customer_id IS 'the account changed';
COMMENT ON COLUMN @extschema@.customer_log.action IS 'what was done; the keys of detail depend on it';
COMMENT ON COLUMN @extschema@.customer_log.detail IS 'what changed, by action';
COMMENT ON COLUMN @extschema@.customer_log.actor IS 'the role in effect: the login role, or the one set by SET ROLE (a SECURITY DEFINER function does not change it)';
COMMENT ON COLUMN @extschema@.customer_log.reason IS 'why, as given by the caller';
COMMENT ON COLUMN @extschema@.customer_log.created_at IS 'when';
COMMENT ON COLUMN @extschema@.wallet.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.wallet.currency IS 'points currency code';
COMMENT ON COLUMN @extschema@.wallet.program_id IS 'the customer''s programme';
COMMENT ON COLUMN @extschema@.wallet.updated_at IS 'time of the last ledger entry (or of the merge)';
COMMENT ON COLUMN @extschema@.ledger.program_id IS 'the wallet''s programme; the scope of idempotency_key';
COMMENT ON COLUMN @extschema@.ledger.customer_id IS 'the wallet''s customer';
COMMENT ON COLUMN @extschema@.ledger.currency IS 'the wallet''s currency';
COMMENT ON COLUMN @extschema@.ledger.operation IS 'accrue, redeem, hold, capture, release, expire, adjust, refund (receipt returns and cancels), convert, transfer_in, transfer_out, or debt (an accrual paying what a refund left owing)';
COMMENT ON COLUMN @extschema@.ledger.lot_id IS 'the lot created (accrue, positive adjust) or expired (expire) by this entry; NULL for entries that create several lots (transfer_in, the target side of convert), whose lots have created_version = the entry''s version';
COMMENT ON COLUMN @extschema@.ledger.peer_customer_id IS 'the other customer of a transfer or merge';
COMMENT ON COLUMN @extschema@.ledger.reason IS 'why: required for adjust, transfer and convert; lot expired and hold expired for the entries of the touch; the merge''s reason for its transfers';
COMMENT ON COLUMN @extschema@.ledger.created_at IS 'the start of the writing transaction: shared by its entries, not an order (use version)';
COMMENT ON COLUMN @extschema@.lot.id IS 'the lot; lower ids are older and spent first among equals';
COMMENT ON COLUMN @extschema@.lot.program_id IS 'the wallet''s programme';
COMMENT ON COLUMN @extschema@.lot.customer_id IS 'the wallet''s customer';
COMMENT ON COLUMN @extschema@.lot.currency IS 'the wallet''s currency';
COMMENT ON COLUMN @extschema@.lot.amount IS 'points credited, in minor units';
COMMENT ON COLUMN @extschema@.lot.kind IS 'what the points are for: the kind given to accrue (regular by default, birthday, product, promo, service...), adjustment for adjust, converted for convert; transfers and merges keep the kind of the source lot';
COMMENT ON COLUMN @extschema@.lot.created_at IS 'when the lot was written';
COMMENT ON COLUMN @extschema@.hold.id IS 'the hold id that hold returns';
COMMENT ON COLUMN @extschema@.hold.program_id IS 'the wallet''s programme';
COMMENT ON COLUMN @extschema@.hold.customer_id IS 'the wallet''s customer';
COMMENT ON COLUMN @extschema@.hold.currency IS 'the wallet''s currency';
COMMENT ON COLUMN @extschema@.hold.amount IS 'points reserved';
COMMENT ON COLUMN @extschema@.hold.status IS 'active; captured, released or expired (resolved exactly once). A hold past expires_at stays active until the touch or release_expired_holds marks it expired';
COMMENT ON COLUMN @extschema@.hold.receipt_id IS 'the receipt, carried to the capture or release entry';
COMMENT ON COLUMN @extschema@.hold.created_version IS 'version of the hold entry';
COMMENT ON COLUMN @extschema@.hold.resolved_version IS 'version of the entry that captured, released or expired it';
COMMENT ON COLUMN @extschema@.hold.created_at IS 'when the hold was placed';
COMMENT ON COLUMN @extschema@.hold.resolved_at IS 'when it was captured, released or expired';
COMMENT ON COLUMN @extschema@.promotion.id IS 'the promotion id';
COMMENT ON COLUMN @extschema@.promotion.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.promotion.name IS 'display name';
COMMENT ON COLUMN @extschema@.promotion.tiers IS 'the tiers addressed (audience tiers), compared with customer.tier';
COMMENT ON COLUMN @extschema@.promotion.segments IS 'codes of the segments addressed (audience segments); not a foreign key';
COMMENT ON COLUMN @extschema@.promotion.birthday_days IS 'the promotion applies within this many days of the customer''s birthday (audience birthday)';
COMMENT ON COLUMN @extschema@.promotion.line_condition IS 'a condition: the lines the benefit applies to; NULL: every line';
COMMENT ON COLUMN @extschema@.promotion.benefit IS 'what the customer gets, {"kind": "percent_off", "percent": 10}, stored in its normal form (see docs/promotions.md)';
COMMENT ON COLUMN @extschema@.promotion.limit_per_customer IS 'uses per customer in each limit_period; NULL: no limit';
COMMENT ON COLUMN @extschema@.promotion.limit_period IS 'the period of limit_per_customer: day, week, month, year or ever';
COMMENT ON COLUMN @extschema@.promotion.limit_total IS 'uses over all customers; NULL: no limit';
COMMENT ON COLUMN @extschema@.promotion.budget IS 'money the promotion may give away over all customers, in major units; NULL: no limit';
COMMENT ON COLUMN @extschema@.promotion.created_at IS 'when the promotion was created';
COMMENT ON COLUMN @extschema@.promotion.updated_at IS 'set by the trigger promotion_check on every UPDATE';
COMMENT ON COLUMN @extschema@.coupon.id IS 'the coupon id';
COMMENT ON COLUMN @extschema@.coupon.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.coupon.code IS 'the code as printed: letters, digits, _ and -, 1 to 64 characters; unique in the programme regardless of case';
COMMENT ON COLUMN @extschema@.coupon.promotion_id IS 'the promotion it unlocks, always of the same programme';
COMMENT ON COLUMN @extschema@.coupon.customer_id IS 'the customer of a personal coupon';
COMMENT ON COLUMN @extschema@.coupon.valid IS 'when the coupon may be used; the default: always';
COMMENT ON COLUMN @extschema@.coupon.created_at IS 'when the coupon was issued';
COMMENT ON COLUMN @extschema@.personal_offer.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.personal_offer.promotion_id IS 'the promotion offered';
COMMENT ON COLUMN @extschema@.personal_offer.program_id IS 'the programme of both';
COMMENT ON COLUMN @extschema@.personal_offer.valid IS 'when the offer may be used; the default: always';
COMMENT ON COLUMN @extschema@.personal_offer.created_at IS 'when the offer was made';
COMMENT ON COLUMN @extschema@.counter.promotion_id IS 'the promotion';
COMMENT ON COLUMN @extschema@.counter.customer_id IS 'the customer; 0 for the promotion''s global count and budget; not a foreign key';
COMMENT ON COLUMN @extschema@.counter.updated_at IS 'when the counter last moved';
COMMENT ON COLUMN @extschema@.segment.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.segment.code IS 'the name promotion.segments lists: lower-case letters, digits, _ and -, 1 to 63 characters';
COMMENT ON COLUMN @extschema@.segment.name IS 'display name';
COMMENT ON COLUMN @extschema@.segment_member.customer_id IS 'the customer';
COMMENT ON COLUMN @extschema@.segment_member.program_id IS 'the programme of both';
COMMENT ON COLUMN @extschema@.segment_member.segment IS 'the segment''s code';
COMMENT ON COLUMN @extschema@.segment_member.added_at IS 'when the customer was added';
COMMENT ON COLUMN @extschema@.catalog_generation.singleton IS 'always true: the table holds one row';
COMMENT ON COLUMN @extschema@.catalog_generation.generation IS '1 when the extension is created; then the next value of the sequence loyalty.catalog_generation_seq for every statement that changed promotion, program or currency';
COMMENT ON COLUMN @extschema@.catalog_generation.changed_at IS 'now() of the last bump, or of the creation of the extension';
COMMENT ON COLUMN @extschema@.tier.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.tier.name IS 'display name';
COMMENT ON COLUMN @extschema@.tier.rank IS 'higher is better; a tier without conditions (rank 0 by convention) is the base every customer qualifies for';
COMMENT ON COLUMN @extschema@.tier.created_at IS 'when the tier was created';
COMMENT ON COLUMN @extschema@.tier_change.id IS 'the order of the changes';
COMMENT ON COLUMN @extschema@.tier_change.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.tier_change.customer_id IS 'the customer whose tier changed';
COMMENT ON COLUMN @extschema@.tier_change.from_tier IS 'the tier code before; NULL: none';
COMMENT ON COLUMN @extschema@.tier_change.to_tier IS 'the tier code after; NULL: none';
COMMENT ON COLUMN @extschema@.tier_change.receipts IS 'receipts over the window when the change was decided';
COMMENT ON COLUMN @extschema@.tier_change.changed_at IS 'when';
COMMENT ON COLUMN @extschema@.tier_change.actor IS 'the role in effect (loyalty.actor())';

-- the columns of the receipt tables and the queue say what they hold
COMMENT ON COLUMN @extschema@.receipt_key.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt_key.receipt_id IS 'the receipt id the till sent, unique in the programme';
COMMENT ON COLUMN @extschema@.receipt.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt.store IS 'the store the receipt named, as sent (NULL if none)';
COMMENT ON COLUMN @extschema@.receipt.cancelled_at IS 'when loyalty.cancel undid it; NULL while it stands';
COMMENT ON COLUMN @extschema@.receipt.cancel_reason IS 'the reason given to loyalty.cancel';
COMMENT ON COLUMN @extschema@.receipt.cancel_result IS 'the answer loyalty.cancel returned, which a repeated cancel returns again';
COMMENT ON COLUMN @extschema@.receipt_line.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt_line.receipt_id IS 'the receipt of the line';
COMMENT ON COLUMN @extschema@.receipt_line.committed_at IS 'the receipt''s committed_at (the partition key)';
COMMENT ON COLUMN @extschema@.receipt_line.sku IS 'the line''s sku as sent (NULL if none)';
COMMENT ON COLUMN @extschema@.receipt_line.qty IS 'the quantity sold, up to 3 decimals';
COMMENT ON COLUMN @extschema@.receipt_refund.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.receipt_refund.receipt_id IS 'the receipt returned from';
COMMENT ON COLUMN @extschema@.receipt_refund.created_at IS 'when the return was made';
COMMENT ON COLUMN @extschema@.receipt_refund.result IS 'the answer loyalty.refund returned, which a repeated refund returns again';
COMMENT ON COLUMN @extschema@.receipt_refund.actor IS 'the role that made the return (login role, or the one set by SET ROLE)';
COMMENT ON COLUMN @extschema@.receipt_refund.reason IS 'the reason given to loyalty.refund, if any';
COMMENT ON COLUMN @extschema@.accrual_queue.id IS 'the order of the queue';
COMMENT ON COLUMN @extschema@.accrual_queue.program_id IS 'the programme';
COMMENT ON COLUMN @extschema@.accrual_queue.receipt_id IS 'the receipt that earned the points';
COMMENT ON COLUMN @extschema@.accrual_queue.customer_id IS 'the customer the points go to';
COMMENT ON COLUMN @extschema@.accrual_queue.currency IS 'the points currency';
COMMENT ON COLUMN @extschema@.accrual_queue.priority IS 'priority of the lot to create (higher is spent first among lots that expire together)';
COMMENT ON COLUMN @extschema@.accrual_queue.created_at IS 'when the receipt queued it';
