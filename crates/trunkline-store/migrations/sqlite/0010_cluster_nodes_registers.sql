-- Whether the node's engine runs (`outbound.enabled`): registrations are shared among those
-- nodes only.
ALTER TABLE cluster_nodes ADD COLUMN registers BOOLEAN NOT NULL DEFAULT false;
