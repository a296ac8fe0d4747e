-- loyalty install script, assembled by the Makefile from src/*.sql.
\echo Use "CREATE EXTENSION loyalty" to load this file. \quit

COMMENT ON SCHEMA @extschema@ IS 'loyalty: retail loyalty programme (customers, identifiers, points, promotions, receipts)';
