
-- src/recompute.sql — what a return breaks.  A receipt keeps the document
-- it was committed with; a refund recomputes the lines kept with only the
-- promotions the receipt had (loyalty.recompute, as committed: their day,
-- place, audience, limits and coupons held then), and keeps back from the
-- money the discount the kept lines no longer earn ("3 for 2" with one of
-- the three returned), or gives it back when a later return ends the loss.
-- The counters of promotions that no longer hold are given back.

-- The ids of the promotions an answer of calculate applied
CREATE FUNCTION @extschema@.applied_promotion_ids(pid bigint, answer jsonb)
RETURNS bigint[]
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(pg_catalog.array_agg(m.id ORDER BY m.id), '{}')
      FROM pg_catalog.jsonb_array_elements(answer OPERATOR(pg_catalog.#>) '{promotions,applied}') a
      JOIN @extschema@.promotion m ON m.program_id OPERATOR(pg_catalog.=) pid
                                  AND m.code OPERATOR(pg_catalog.=) (a OPERATOR(pg_catalog.->>) 'code')
$$;
COMMENT ON FUNCTION @extschema@.applied_promotion_ids(bigint, jsonb) IS
'the ids of the promotions in promotions.applied of an answer of calculate (empty if none; internal: refund)';
REVOKE ALL ON FUNCTION @extschema@.applied_promotion_ids(bigint, jsonb) FROM PUBLIC;

CREATE FUNCTION @extschema@.recompute(receipt jsonb, promotions bigint[])
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_recompute'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.recompute(jsonb, bigint[]) IS
'calculate a receipt over only these promotions, whatever their status, as committed: their day, place, audience, limits and coupons are not asked again (internal: refund)';
REVOKE ALL ON FUNCTION @extschema@.recompute(jsonb, bigint[]) FROM PUBLIC;

-- A use given back to each counter a receipt counted in (cancel, and refund
-- for promotions that no longer hold), but not to those a refund gave back
-- already (marked "returned")
CREATE FUNCTION @extschema@.return_counter_uses(counters jsonb)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    UPDATE @extschema@.counter t
       SET uses = t.uses OPERATOR(pg_catalog.-) 1,
           money = GREATEST(t.money OPERATOR(pg_catalog.-) (c OPERATOR(pg_catalog.->>) 'money')::bigint, 0),
           updated_at = pg_catalog.now()
      FROM pg_catalog.jsonb_array_elements(counters) c
     WHERE t.promotion_id OPERATOR(pg_catalog.=) (c OPERATOR(pg_catalog.->>) 'promotion_id')::bigint
       AND t.customer_id OPERATOR(pg_catalog.=) (c OPERATOR(pg_catalog.->>) 'customer_id')::bigint
       AND t.period_start OPERATOR(pg_catalog.=) (c OPERATOR(pg_catalog.->>) 'period_start')::date
       AND t.uses OPERATOR(pg_catalog.>) 0
       AND (c OPERATOR(pg_catalog.->) 'returned') IS NULL
$$;
COMMENT ON FUNCTION @extschema@.return_counter_uses(jsonb) IS
'give back one use (and its money) to each counter of a receipt''s counters list not marked returned (internal: cancel, refund)';
REVOKE ALL ON FUNCTION @extschema@.return_counter_uses(jsonb) FROM PUBLIC;
