-- The binding each outbound registration has at its registrar, kept where nodes share the
-- database: the node whose engine made it, its Contact, Call-ID and CSeq, and when it expires.
-- A node that takes a registration over from one that died removes that Contact in its first
-- REGISTER (`expires=0`), so the registrar holds one contact per account again.
CREATE TABLE registration_bindings (
    registration_id  TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    node_id          TEXT NOT NULL,
    contact          TEXT NOT NULL,
    call_id          TEXT NOT NULL,
    cseq             INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
