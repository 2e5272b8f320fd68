-- The example's database: abtest, the shop's orders, the experiment and its metric.
-- Run once, as the database owner, on a database of a server with
-- shared_preload_libraries = 'abtest':   psql -d shop -f schema.sql
CREATE EXTENSION abtest;

CREATE TABLE orders (
    id        bigserial PRIMARY KEY,
    visitor   text NOT NULL,
    amount    numeric(12, 2) NOT NULL CHECK (amount > 0),
    placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_visitor_placed_at ON orders (visitor, placed_at);

-- Two branches, the first is the control. Sticky (the default): a visitor keeps the
-- page they first saw while the experiment runs, from every connection.
SELECT ab_create_experiment('checkout_v2', ARRAY['control', 'one_page'],
                            description => 'One-page checkout', owner => 'payments');
SELECT ab_start('checkout_v2');

-- Revenue per visitor from the orders: the admin page's ab_report analyses it per
-- visitor, beside the payment success rate and purchases the application records.
SELECT ab_define_metric('revenue', 'orders', 'visitor', 'placed_at', 'amount',
                        description => 'Order amount per visitor');
SELECT ab_attach_metric('checkout_v2', 'revenue', 'goal');

-- The application's role: routing and recording are executable by every role; it
-- needs its own tables only. The admin page reads the report as an analyst.
-- CREATE ROLE shop_app LOGIN;
-- GRANT SELECT, INSERT ON orders TO shop_app;
-- GRANT USAGE ON SEQUENCE orders_id_seq TO shop_app;
-- ALTER ROLE shop_app SET statement_timeout = '2s';
-- CREATE ROLE shop_analyst LOGIN IN ROLE experiment_analyst;   -- README, "Privileges"
-- GRANT SELECT ON orders TO shop_analyst;                       -- the revenue metric reads it
