-- The stored answer of a random receipt (calculate_data.sql keeps one per
-- receipt, uncompressed): what reading, printing and sending an answer of
-- that size costs without calculating it, the ceiling of calculate.sql.
\set r random(1, :receipts)
SELECT r FROM bench_answer WHERE id = :r;
