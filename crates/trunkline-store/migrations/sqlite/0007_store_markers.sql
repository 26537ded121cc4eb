-- One-time facts about the database, one row each. `first_tenant`: the default tenant was
-- created (or tenants existed) at the first start; the row's key orders concurrent first
-- starts, so only one of them creates it.
CREATE TABLE store_markers (
    name  TEXT PRIMARY KEY,
    at    INTEGER NOT NULL
);
INSERT INTO store_markers (name, at)
SELECT 'first_tenant', MIN(created_at) FROM tenants HAVING COUNT(*) > 0;
