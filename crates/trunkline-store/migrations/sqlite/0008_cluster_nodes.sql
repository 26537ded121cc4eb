-- The nodes serving this database, one row each, kept by the node's heartbeat (every
-- `cluster.renew_secs`) and removed when it stops cleanly. `owned`: registrations its engine
-- holds.
CREATE TABLE cluster_nodes (
    node_id         TEXT PRIMARY KEY,
    started_at      INTEGER NOT NULL,
    last_heartbeat  INTEGER NOT NULL,
    owned           INTEGER NOT NULL DEFAULT 0
);
