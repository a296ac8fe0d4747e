-- test/upgrade/snapshot.sql — what test/upgrade/data.sql wrote, column by
-- column as 0.1 had them, in a fixed order (ids aside from the customers').
\pset tuples_only on
\pset format unaligned
SELECT 'program', code, name, money_currency, money_exponent, default_currency, phone_country,
       card_min_length, card_max_length, card_luhn, accrual_rate_bp, accrual_delay,
       max_discount_bp, max_points_bp
  FROM loyalty.program ORDER BY code;
SELECT 'currency', p.code, c.code, c.name, c.exponent, c.money_per_unit
  FROM loyalty.currency c JOIN loyalty.program p ON p.id = c.program_id ORDER BY 2, 3;
SELECT 'customer', row_number() OVER (ORDER BY id), status, birth_date, home_city, tier, attributes,
       merged_into IS NOT NULL
  FROM loyalty.customer ORDER BY id;
SELECT 'identifier', i.kind, i.value, i.status, i.replaced_by,
       (SELECT count(*) FROM loyalty.customer c WHERE c.id <= i.customer_id)
  FROM loyalty.identifier i ORDER BY 2, 3;
SELECT 'customer_log', row_number() OVER (ORDER BY id), action, reason
  FROM loyalty.customer_log ORDER BY id;
