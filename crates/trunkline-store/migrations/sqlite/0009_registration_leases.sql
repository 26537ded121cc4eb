-- Which node registers each outbound registration (an Ultravox registration id or a phone
-- number's id) until when. A node claims rows without a lease or with an expired one, renews
-- its own well before they expire, and releases them (expiry 0) when it stops. `token` grows
-- each time the lease changes hands (a fencing token). Rows of registrations that are gone
-- are deleted by the next claim.
CREATE TABLE registration_leases (
    registration_id  TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    node_id          TEXT NOT NULL,
    expires_at       INTEGER NOT NULL,
    token            INTEGER NOT NULL
);
CREATE INDEX registration_leases_node ON registration_leases (node_id);
CREATE INDEX registration_leases_expiry ON registration_leases (expires_at);
