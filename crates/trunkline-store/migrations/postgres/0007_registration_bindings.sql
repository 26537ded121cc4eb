-- The binding each outbound registration has at its registrar, kept where nodes share the
-- database: the node whose engine made it, its Contact, Call-ID and CSeq, and when it expires.
-- A node that takes a registration over from one that died removes that Contact in its first
-- REGISTER (`expires=0`), so the registrar holds one contact per account again.
CREATE TABLE registration_bindings (
    registration_id  TEXT COLLATE "C" PRIMARY KEY,
    tenant_id        TEXT COLLATE "C" NOT NULL,
    node_id          TEXT COLLATE "C" NOT NULL,
    contact          TEXT NOT NULL,
    call_id          TEXT NOT NULL,
    cseq             BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
