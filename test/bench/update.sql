-- baseline: the cheapest useful write, one row updated by primary key
\set id random(1, :customers)
UPDATE bench_counter SET x = x + 1 WHERE id = :id;
