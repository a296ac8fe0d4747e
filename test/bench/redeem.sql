-- loyalty.redeem of 5 points from a random wallet, with a new idempotency key
\set customer random(1, :customers)
\set key random(1, 1000000000000000000)
SELECT version FROM loyalty.redeem(:customer, :currency, 5,
    idempotency_key => 'bench-r-' || :client_id::text || '-' || :key::text);
