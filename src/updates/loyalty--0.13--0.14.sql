-- loyalty 0.13 -> 0.14: period_start is calculate's own definition in C
-- (one definition of a limit period); cancel is written in C.  The module of 0.14 also spreads the
-- points a receipt spends over its lines (docs/promotions.md, Points) and
-- sends NOTIFY loyalty_events only where loyalty.notify_events is turned
-- on (off by default; docs/events.md): neither changes the schema.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.14'" to load this file. \quit

CREATE OR REPLACE FUNCTION @extschema@.period_start(period text, day date)
RETURNS date
AS 'MODULE_PATHNAME', 'loyalty_period_start'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION @extschema@.cancel(program text, receipt_id text, reason text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'loyalty_cancel'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
