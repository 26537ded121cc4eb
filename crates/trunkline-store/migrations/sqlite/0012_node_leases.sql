-- Leases are held per node, not per row: a node's `cluster_nodes.lease_until` covers every
-- registration lease row naming it, so a renewal writes one row however many it holds. A lease
-- row names its holder, or '' once released; its holder's lease lapsing makes it claimable.
ALTER TABLE cluster_nodes ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
DROP INDEX registration_leases_expiry;
ALTER TABLE registration_leases DROP COLUMN expires_at;
