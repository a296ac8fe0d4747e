-- loyalty 0.18 -> 0.19: commit stores the default answer without its
-- lines (the receipt's line_ and earned_ arrays hold them), and a replay
-- renders them back from there; an answer with "explain" is stored whole,
-- and receipts committed before keep their whole answer.  No table
-- changes: only what the column and the replay function say of it.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.19'" to load this file. \quit

COMMENT ON COLUMN @extschema@.receipt.answer IS 'the answer commit returned, which a replay returns again; since 0.19 the default answer without its lines, which a replay renders back from the line_ and earned_ arrays (an answer with "explain" keeps them)';
COMMENT ON FUNCTION @extschema@.receipt_replay(bigint, text, bytea) IS
'the stored answer of a committed receipt id, if the document is the same (commit renders back the lines of one stored without them); 23L02 if not';
