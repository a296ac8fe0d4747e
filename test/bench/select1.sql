-- the read-path baseline
SELECT 1;
