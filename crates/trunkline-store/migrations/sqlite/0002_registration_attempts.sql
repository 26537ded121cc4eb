-- The last REGISTER transactions of each outbound registration (written by the SIP engine,
-- pruned to the newest 20 per registration). Never holds an Authorization value.
CREATE TABLE registration_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    registration_id  TEXT NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants (account_id),
    at               INTEGER NOT NULL,
    transport        TEXT NOT NULL,
    remote           TEXT,
    request_line     TEXT NOT NULL,
    code             INTEGER,
    phrase           TEXT,
    duration_us      INTEGER NOT NULL
);
CREATE INDEX registration_attempts_recent ON registration_attempts (registration_id, at, id);
