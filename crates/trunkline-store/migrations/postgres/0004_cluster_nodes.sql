-- The nodes serving this database, one row each, kept by the node's heartbeat (every
-- `cluster.renew_secs`) and removed when it stops cleanly. `owned`: registrations its engine
-- holds.
CREATE TABLE cluster_nodes (
    node_id         TEXT COLLATE "C" PRIMARY KEY,
    started_at      BIGINT NOT NULL,
    last_heartbeat  BIGINT NOT NULL,
    owned           BIGINT NOT NULL DEFAULT 0
);
