-- The contacts devices registered for inbound credentials (written by the SIP registrar in
-- groups, one row per (credential, contact)). A binding ends with its credential: deleting the
-- credential cascades here, disabling it deletes its rows in the same transaction, and rows for
-- a credential that is gone or disabled are never written. Expired rows are swept by expiry.
CREATE TABLE inbound_bindings (
    tenant_id      TEXT NOT NULL REFERENCES tenants (account_id),
    credential_id  TEXT NOT NULL REFERENCES inbound_credentials (id) ON DELETE CASCADE,
    contact        TEXT NOT NULL,
    source         TEXT NOT NULL,
    transport      TEXT NOT NULL,
    user_agent     TEXT,
    call_id        TEXT NOT NULL,
    cseq           INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    registered_at  INTEGER NOT NULL,
    PRIMARY KEY (credential_id, contact)
);
CREATE INDEX inbound_bindings_expiry ON inbound_bindings (expires_at);
