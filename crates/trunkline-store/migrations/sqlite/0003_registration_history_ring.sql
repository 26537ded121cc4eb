-- The registration history as a ring: each registration owns at most `HISTORY_LENGTH` (20) rows,
-- one per slot (`seq % 20`), and a new attempt overwrites its slot in place. Appending and
-- pruning (an index insert, a row insert and a delete per attempt) cost the engine more than
-- the REGISTER itself; an in-place upsert on the primary key costs about what a status update
-- does. Never holds an Authorization value.
CREATE TABLE registration_history (
    registration_id  TEXT NOT NULL,
    slot             INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants (account_id),
    at               INTEGER NOT NULL,
    transport        TEXT NOT NULL,
    remote           TEXT,
    request_line     TEXT NOT NULL,
    code             INTEGER,
    phrase           TEXT,
    duration_us      INTEGER NOT NULL,
    PRIMARY KEY (registration_id, slot)
) WITHOUT ROWID;

INSERT INTO registration_history (registration_id, slot, seq, tenant_id, at, transport, remote,
                                  request_line, code, phrase, duration_us)
SELECT registration_id, seq % 20, seq, tenant_id, at, transport, remote, request_line, code,
       phrase, duration_us
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY registration_id ORDER BY at, id) AS seq,
             ROW_NUMBER() OVER (PARTITION BY registration_id ORDER BY at DESC, id DESC) AS newer
      FROM registration_attempts)
WHERE newer <= 20;

DROP TABLE registration_attempts;
