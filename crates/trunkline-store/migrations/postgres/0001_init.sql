-- trunkline schema for PostgreSQL: the schema the SQLite migrations 0001-0006 end with, in one
-- step. Times are microseconds since the Unix epoch (UTC); ids are UUID text.
-- Every row carries its tenant; every list index starts with tenant_id, then (created_at, id).
-- Every integer is BIGINT (SQLite's INTEGER is 64-bit, and the store reads them all as i64).
-- Ids and keys are COLLATE "C": ORDER BY and keyset comparisons are bytewise, as in SQLite,
-- whatever the database's default collation.

CREATE TABLE tenants (
    account_id  TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    prefix      TEXT COLLATE "C" PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    sha256      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE registrations (
    id               TEXT COLLATE "C" PRIMARY KEY,
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    username         TEXT COLLATE "C" NOT NULL,
    proxy            TEXT NOT NULL,
    outbound_proxy   TEXT,
    auth_user        TEXT,
    password_sealed  BYTEA NOT NULL,
    password_key_id  TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX registrations_order ON registrations (tenant_id, created_at, id);

CREATE TABLE trunks (
    id               TEXT COLLATE "C" PRIMARY KEY,
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    server           TEXT NOT NULL,
    transport        TEXT NOT NULL,
    domain           TEXT,
    auth_user        TEXT,
    password_sealed  BYTEA,
    password_key_id  TEXT,
    description      TEXT,
    cps_limit        BIGINT,
    cps_key          TEXT COLLATE "C",
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX trunks_order ON trunks (tenant_id, created_at, id);
-- Call pacing reads, at each admission, the smallest cps_limit among a tenant's trunks that
-- share a cps_key: this index makes that a range scan over the key's trunks only.
CREATE INDEX trunks_cps_key ON trunks (tenant_id, cps_key) WHERE cps_key IS NOT NULL;

CREATE TABLE phone_numbers (
    id                       TEXT COLLATE "C" PRIMARY KEY,
    tenant_id                TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    phone_number             TEXT COLLATE "C" NOT NULL,
    trunk_id                 TEXT COLLATE "C" NOT NULL REFERENCES trunks (id),
    registration             BOOLEAN NOT NULL,
    display_name             TEXT,
    description              TEXT,
    incoming_calls_agent_id  TEXT,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    UNIQUE (tenant_id, phone_number)
);
CREATE UNIQUE INDEX phone_numbers_order ON phone_numbers (tenant_id, created_at, id);
CREATE INDEX phone_numbers_trunk ON phone_numbers (trunk_id);

CREATE TABLE inbound_credentials (
    id           TEXT COLLATE "C" PRIMARY KEY,
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    username     TEXT COLLATE "C" NOT NULL,
    realm        TEXT NOT NULL,
    ha1_md5      TEXT NOT NULL,
    ha1_sha256   TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (tenant_id, username)
);
CREATE UNIQUE INDEX inbound_credentials_order ON inbound_credentials (tenant_id, created_at, id);

-- Written by the SIP engine; one row per outbound registration (an Ultravox registration id or
-- a phone number's id). Deleted with the registration it describes.
CREATE TABLE registration_status (
    registration_id       TEXT COLLATE "C" PRIMARY KEY,
    tenant_id             TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    state                 TEXT NOT NULL,
    last_code             BIGINT,
    last_phrase           TEXT,
    failed_by             TEXT,
    last_attempt_at       BIGINT,
    expires_at            BIGINT,
    next_attempt_at       BIGINT,
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    transport             TEXT,
    remote                TEXT,
    updated_at            BIGINT NOT NULL
);

-- The registration history as a ring: each registration owns at most `HISTORY_LENGTH` (20) rows,
-- one per slot (`seq % 20`), and a new attempt overwrites its slot in place (an upsert on the
-- primary key). Written by the SIP engine. Never holds an Authorization value.
CREATE TABLE registration_history (
    registration_id  TEXT COLLATE "C" NOT NULL,
    slot             BIGINT NOT NULL,
    seq              BIGINT NOT NULL,
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    at               BIGINT NOT NULL,
    transport        TEXT NOT NULL,
    remote           TEXT,
    request_line     TEXT NOT NULL,
    code             BIGINT,
    phrase           TEXT,
    duration_us      BIGINT NOT NULL,
    PRIMARY KEY (registration_id, slot)
);

-- The contacts devices registered for inbound credentials (written by the SIP registrar in
-- groups, one row per (credential, contact)). A binding ends with its credential: deleting the
-- credential cascades here, disabling it deletes its rows in the same transaction, and rows for
-- a credential that is gone or disabled are never written. Expired rows are swept by expiry.
CREATE TABLE inbound_bindings (
    tenant_id      TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    credential_id  TEXT COLLATE "C" NOT NULL REFERENCES inbound_credentials (id) ON DELETE CASCADE,
    contact        TEXT COLLATE "C" NOT NULL,
    source         TEXT NOT NULL,
    transport      TEXT NOT NULL,
    user_agent     TEXT,
    call_id        TEXT NOT NULL,
    cseq           BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    registered_at  BIGINT NOT NULL,
    PRIMARY KEY (credential_id, contact)
);
CREATE INDEX inbound_bindings_expiry ON inbound_bindings (expires_at);
