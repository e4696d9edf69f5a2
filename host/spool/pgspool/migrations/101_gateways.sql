-- The gateways registry (host/gateways): every gateway on the database, its
-- drivers, the connectors it owns, and its last heartbeat (the database's
-- clock).
CREATE TABLE IF NOT EXISTS mediagw_gateways (
    name       text PRIMARY KEY,
    started    timestamptz NOT NULL,
    heartbeat  timestamptz NOT NULL,
    drivers    text[] NOT NULL DEFAULT '{}',
    connectors text[] NOT NULL DEFAULT '{}',
    version    text NOT NULL DEFAULT ''
);
