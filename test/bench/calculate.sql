-- loyalty.calculate of a random stored receipt of 20 lines (calculate_data.sql)
\set r random(1, :receipts)
SELECT loyalty.calculate(doc) FROM bench_receipt WHERE id = :r;
