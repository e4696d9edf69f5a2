-- Mailbox ownership (host/ownership): one row per connector; the gateway
-- named owner may run it until expires (the database's clock). epoch grows
-- by one at every change of holder: the fencing token of its writes.
CREATE TABLE IF NOT EXISTS mediagw_leases (
    connector text PRIMARY KEY,
    owner     text NOT NULL,
    epoch     bigint NOT NULL,
    acquired  timestamptz NOT NULL,
    expires   timestamptz NOT NULL
);
