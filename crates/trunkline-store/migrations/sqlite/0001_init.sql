-- trunkline schema v1. Times are microseconds since the Unix epoch (UTC); ids are UUID text.
-- Every row carries its tenant; every list index starts with tenant_id, then (created_at, id).

CREATE TABLE tenants (
    account_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    prefix      TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (account_id),
    sha256      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE registrations (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (account_id),
    username         TEXT NOT NULL,
    proxy            TEXT NOT NULL,
    outbound_proxy   TEXT,
    auth_user        TEXT,
    password_sealed  BLOB NOT NULL,
    password_key_id  TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX registrations_order ON registrations (tenant_id, created_at, id);

CREATE TABLE trunks (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (account_id),
    server           TEXT NOT NULL,
    transport        TEXT NOT NULL,
    domain           TEXT,
    auth_user        TEXT,
    password_sealed  BLOB,
    password_key_id  TEXT,
    description      TEXT,
    cps_limit        INTEGER,
    cps_key          TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX trunks_order ON trunks (tenant_id, created_at, id);

CREATE TABLE phone_numbers (
    id                       TEXT PRIMARY KEY,
    tenant_id                TEXT NOT NULL REFERENCES tenants (account_id),
    phone_number             TEXT NOT NULL,
    trunk_id                 TEXT NOT NULL REFERENCES trunks (id),
    registration             BOOLEAN NOT NULL,
    display_name             TEXT,
    description              TEXT,
    incoming_calls_agent_id  TEXT,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    UNIQUE (tenant_id, phone_number)
);
CREATE UNIQUE INDEX phone_numbers_order ON phone_numbers (tenant_id, created_at, id);
CREATE INDEX phone_numbers_trunk ON phone_numbers (trunk_id);

CREATE TABLE inbound_credentials (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (account_id),
    username     TEXT NOT NULL,
    realm        TEXT NOT NULL,
    ha1_md5      TEXT NOT NULL,
    ha1_sha256   TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    description  TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, username)
);
CREATE UNIQUE INDEX inbound_credentials_order ON inbound_credentials (tenant_id, created_at, id);

-- Written by the SIP engine; one row per outbound registration (an Ultravox registration id or
-- a phone number's id). Deleted with the registration it describes.
CREATE TABLE registration_status (
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
);
