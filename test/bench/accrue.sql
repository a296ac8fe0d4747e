-- loyalty.accrue of 10 points to a random wallet, with a new idempotency key
\set customer random(1, :customers)
\set key random(1, 1000000000000000000)
SELECT version FROM loyalty.accrue(:customer, :currency, 10,
    idempotency_key => 'bench-a-' || :client_id::text || '-' || :key::text);
