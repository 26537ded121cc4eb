-- Status events (the outbox) and the webhooks that receive them.

-- One row per event, written in the transaction of the change it announces. `seq` counts per
-- tenant from 1 (`event_counters`); `data` is the event's JSON `data` member as it was at that
-- moment. Rows older than `events.retention_secs` are pruned by `at`.
CREATE TABLE events (
    tenant_id  TEXT NOT NULL REFERENCES tenants (account_id),
    seq        INTEGER NOT NULL,
    id         TEXT NOT NULL,
    type       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) WITHOUT ROWID;
CREATE INDEX events_at ON events (at);

-- The last `seq` given per tenant; the row is the queue point that orders one tenant's event
-- writers, so `seq` order is commit order.
CREATE TABLE event_counters (
    tenant_id  TEXT PRIMARY KEY,
    last_seq   INTEGER NOT NULL
) WITHOUT ROWID;

-- The last outcome announced for a registration (`registered`, `failed`, `removed`; NULL before
-- the first), so an event is written only when the outcome changes.
ALTER TABLE registration_status ADD COLUMN announced TEXT;

-- A tenant's webhook endpoints. `secret_sealed` is the signing secret (`whsec_…`), sealed as
-- passwords are, with the id of the key that sealed it (`secret_key_id`). The delivery columns: every event up to `delivered_seq` is done; `attempt`
-- failures of the next one so far, since `failing_since`, tried again at `next_attempt_at`;
-- `holder` is the node delivering for it until `held_until` (several nodes).
CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (account_id),
    url              TEXT NOT NULL,
    types            TEXT NOT NULL,
    description      TEXT,
    enabled          BOOLEAN NOT NULL,
    disabled_reason  TEXT,
    secret_sealed    BLOB NOT NULL,
    secret_key_id    TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    delivered_seq    INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    failing_since    INTEGER,
    next_attempt_at  INTEGER,
    holder           TEXT NOT NULL DEFAULT '',
    held_until       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_order ON webhooks (tenant_id, created_at, id);

-- Delivery attempts, newest kept per webhook (the deliverer trims them).
CREATE TABLE webhook_deliveries (
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    n                INTEGER NOT NULL,
    tenant_id        TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_seq        INTEGER NOT NULL,
    type             TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    status_code      INTEGER,
    duration_ms      INTEGER NOT NULL,
    error            TEXT,
    at               INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    PRIMARY KEY (webhook_id, n)
) WITHOUT ROWID;
