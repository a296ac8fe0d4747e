-- test/upgrade/tiers.sql — the tier lift of a commit across the last
-- update (test/upgrade/run.sh runs the part before \if :updated on the
-- version before the current one, the rest after the update): the library
-- keeps a programme's tiers in its catalogue only once a change of them
-- bumps the catalogue generation (0.17), so that a tier changed under an
-- older schema is seen by the next commit all the same.  Prints rows of
-- checks that run.sh expects to be all true.
\set ON_ERROR_STOP 1
\if :updated
INSERT INTO loyalty.tier (program_id, code, name, rank, min_receipts)
SELECT id, 'platinum', 'Platinum', 2, 3 FROM loyalty.program WHERE code = 'tiered';
SELECT public.tiered_buy('T3') = 'platinum' AS lifted_after_update;
\else
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('tiered', 'Tiered', 'bonus', 0);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'bonus', 'Bonus', 1 FROM loyalty.program WHERE code = 'tiered';
COMMIT;
INSERT INTO loyalty.tier (program_id, code, name, rank, min_receipts)
SELECT p.id, t.code, t.name, t.rank, t.min_receipts
  FROM loyalty.program p, (VALUES ('base', 'Base', 0, NULL), ('gold', 'Gold', 1, 3)) t (code, name, rank, min_receipts)
 WHERE p.code = 'tiered';
SELECT loyalty.enroll('tiered', card => '20000001') IS NOT NULL AS enrolled \gset
-- a receipt of the customer, committed; then their tier (a statement of its
-- own, which sees what the commit did).  Kept for the part after the update.
CREATE FUNCTION public.tiered_buy(rid text) RETURNS text
LANGUAGE sql AS $$
    SELECT loyalty.commit(jsonb_build_object('program', 'tiered', 'receipt_id', rid,
                                             'customer', jsonb_build_object('card', '20000001'),
                                             'lines', jsonb_build_array(jsonb_build_object(
                                                 'line', 1, 'sku', 'A', 'qty', 1, 'price', 10))));
    SELECT c.tier FROM loyalty.customer c JOIN loyalty.identifier i ON i.customer_id = c.id
     WHERE i.value = '20000001';
$$;
SELECT public.tiered_buy('T1') AS tier \gset
-- gold at 2 receipts now: the second receipt lifts, in this same session
UPDATE loyalty.tier SET min_receipts = 2 WHERE code = 'gold';
SELECT public.tiered_buy('T2') = 'gold' AS lifted_before_update;
\endif
