-- One-time facts about the database, one row each. `first_tenant`: the default tenant was
-- created (or tenants existed) at the first start; the row's key orders concurrent first
-- starts of several nodes, so only one of them creates it.
CREATE TABLE store_markers (
    name  TEXT COLLATE "C" PRIMARY KEY,
    at    BIGINT NOT NULL
);
