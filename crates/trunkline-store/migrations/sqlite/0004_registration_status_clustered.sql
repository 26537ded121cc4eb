-- The status table clustered on its key (WITHOUT ROWID): rows sit in registration-id order, so
-- the engine's sweep, which saves a contiguous range of ids at a time, rewrites a few dozen
-- pages rather than one page per row scattered by insertion order. Same columns and values:
-- written by the SIP engine, one row per outbound registration (an Ultravox registration id or
-- a phone number's id), deleted with the registration it describes.
CREATE TABLE registration_status_clustered (
    registration_id       TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (account_id),
    state                 TEXT NOT NULL,
    last_code             INTEGER,
    last_phrase           TEXT,
    failed_by             TEXT,
    last_attempt_at       INTEGER,
    expires_at            INTEGER,
    next_attempt_at       INTEGER,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    transport             TEXT,
    remote                TEXT,
    updated_at            INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO registration_status_clustered
SELECT registration_id, tenant_id, state, last_code, last_phrase, failed_by, last_attempt_at,
       expires_at, next_attempt_at, consecutive_failures, transport, remote, updated_at
FROM registration_status;

DROP TABLE registration_status;
ALTER TABLE registration_status_clustered RENAME TO registration_status;
