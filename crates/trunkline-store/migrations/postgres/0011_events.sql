-- Status events (the outbox) and the webhooks that receive them. As sqlite/0014_events.sql.

CREATE TABLE events (
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    seq        BIGINT NOT NULL,
    id         TEXT NOT NULL,
    type       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX events_at ON events (at);

CREATE TABLE event_counters (
    tenant_id  TEXT COLLATE "C" PRIMARY KEY,
    last_seq   BIGINT NOT NULL
);

ALTER TABLE registration_status ADD COLUMN announced TEXT;

CREATE TABLE webhooks (
    id               TEXT COLLATE "C" PRIMARY KEY,
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (account_id),
    url              TEXT NOT NULL,
    types            TEXT NOT NULL,
    description      TEXT,
    enabled          BOOLEAN NOT NULL,
    disabled_reason  TEXT,
    secret_sealed    BYTEA NOT NULL,
    secret_key_id    TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    delivered_seq    BIGINT NOT NULL,
    attempt          BIGINT NOT NULL DEFAULT 0,
    failing_since    BIGINT,
    next_attempt_at  BIGINT,
    holder           TEXT NOT NULL DEFAULT '',
    held_until       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_order ON webhooks (tenant_id, created_at, id);

CREATE TABLE webhook_deliveries (
    webhook_id       TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    n                BIGINT NOT NULL,
    tenant_id        TEXT COLLATE "C" NOT NULL,
    event_id         TEXT NOT NULL,
    event_seq        BIGINT NOT NULL,
    type             TEXT NOT NULL,
    attempt          BIGINT NOT NULL,
    status_code      BIGINT,
    duration_ms      BIGINT NOT NULL,
    error            TEXT,
    at               BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    PRIMARY KEY (webhook_id, n)
);

-- Every node's SSE streams and deliverers wake when another node appends events.
CREATE FUNCTION trunkline_events_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('trunkline_changes', concat_ws('|',
        coalesce(current_setting('trunkline.node_id', true), ''), 'events', 'INSERT', '', ''));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION trunkline_events_notify();
