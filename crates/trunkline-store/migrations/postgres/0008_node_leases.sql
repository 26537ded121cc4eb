-- Leases are held per node, not per row: a node's `cluster_nodes.lease_until` covers every
-- registration lease row naming it, so a renewal writes one row however many it holds. A lease
-- row names its holder, or '' once released; its holder's lease lapsing makes it claimable.
ALTER TABLE cluster_nodes ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
DROP INDEX registration_leases_expiry;
ALTER TABLE registration_leases DROP COLUMN expires_at;

-- How many outbound registrations there are (Ultravox registrations and phone numbers with
-- `registration`), kept by triggers so that sharing them among nodes reads 16 rows, not every
-- registration. Each connection adds to its own slot (by backend process id), so concurrent
-- writers rarely wait for one another's row.
CREATE TABLE outbound_counts (
    slot  SMALLINT PRIMARY KEY,
    n     BIGINT NOT NULL
);
INSERT INTO outbound_counts (slot, n) SELECT s, 0 FROM generate_series(0, 15) AS s;
UPDATE outbound_counts SET n = (SELECT COUNT(*) FROM registrations)
    + (SELECT COUNT(*) FROM phone_numbers WHERE registration) WHERE slot = 0;

CREATE FUNCTION trunkline_count_outbound() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := 0;
BEGIN
    IF TG_TABLE_NAME = 'registrations' THEN
        delta := CASE TG_OP WHEN 'INSERT' THEN 1 WHEN 'DELETE' THEN -1 ELSE 0 END;
    ELSIF TG_OP = 'INSERT' THEN
        delta := CASE WHEN NEW.registration THEN 1 ELSE 0 END;
    ELSIF TG_OP = 'DELETE' THEN
        delta := CASE WHEN OLD.registration THEN -1 ELSE 0 END;
    ELSE
        delta := (CASE WHEN NEW.registration THEN 1 ELSE 0 END)
            - (CASE WHEN OLD.registration THEN 1 ELSE 0 END);
    END IF;
    IF delta <> 0 THEN
        UPDATE outbound_counts SET n = n + delta WHERE slot = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER registrations_count_outbound AFTER INSERT OR DELETE ON registrations
    FOR EACH ROW EXECUTE FUNCTION trunkline_count_outbound();
CREATE TRIGGER phone_numbers_count_outbound AFTER INSERT OR DELETE OR UPDATE OF registration
    ON phone_numbers FOR EACH ROW EXECUTE FUNCTION trunkline_count_outbound();
