-- How many rows each tenant has of each listed entity, so that a list's `total` is one lookup
-- instead of a count over the tenant's whole index. Kept by triggers, in the transaction of
-- every insert and delete, whoever writes (any node, the CLI, a cascade), so it is exact in
-- every snapshot that sees the rows it counts. `entity` is the table's name.
--
-- Concurrent writers of one tenant's rows of one entity queue on its counter row until the
-- first commits: the price of an exact total without a count per read.
CREATE TABLE tenant_counts (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    entity     TEXT COLLATE "C" NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, entity)
);

CREATE FUNCTION trunkline_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tenant_counts (tenant_id, entity, n) VALUES (NEW.tenant_id, TG_TABLE_NAME, 1)
            ON CONFLICT (tenant_id, entity) DO UPDATE SET n = tenant_counts.n + 1;
    ELSE
        UPDATE tenant_counts SET n = n - 1
            WHERE tenant_id = OLD.tenant_id AND entity = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END;
$$;

-- Creating a trigger locks its table against writes until this migration commits, so the
-- backfill below counts rows no other node can change meanwhile.
CREATE TRIGGER registrations_count AFTER INSERT OR DELETE ON registrations
    FOR EACH ROW EXECUTE FUNCTION trunkline_count_rows();
CREATE TRIGGER trunks_count AFTER INSERT OR DELETE ON trunks
    FOR EACH ROW EXECUTE FUNCTION trunkline_count_rows();
CREATE TRIGGER phone_numbers_count AFTER INSERT OR DELETE ON phone_numbers
    FOR EACH ROW EXECUTE FUNCTION trunkline_count_rows();
CREATE TRIGGER inbound_credentials_count AFTER INSERT OR DELETE ON inbound_credentials
    FOR EACH ROW EXECUTE FUNCTION trunkline_count_rows();

INSERT INTO tenant_counts (tenant_id, entity, n)
    SELECT tenant_id, 'registrations', COUNT(*) FROM registrations GROUP BY tenant_id;
INSERT INTO tenant_counts (tenant_id, entity, n)
    SELECT tenant_id, 'trunks', COUNT(*) FROM trunks GROUP BY tenant_id;
INSERT INTO tenant_counts (tenant_id, entity, n)
    SELECT tenant_id, 'phone_numbers', COUNT(*) FROM phone_numbers GROUP BY tenant_id;
INSERT INTO tenant_counts (tenant_id, entity, n)
    SELECT tenant_id, 'inbound_credentials', COUNT(*) FROM inbound_credentials GROUP BY tenant_id;
