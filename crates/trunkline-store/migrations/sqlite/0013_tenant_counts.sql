-- How many rows each tenant has of each listed entity, so that a list's `total` is one lookup
-- instead of a count over the tenant's whole index. Kept by triggers, in the transaction of
-- every insert and delete, whoever writes (the service, the CLI, a cascade), so it is exact
-- whenever a reader sees the rows it counts. `entity` is the table's name.
CREATE TABLE tenant_counts (
    tenant_id  TEXT NOT NULL,
    entity     TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, entity)
) WITHOUT ROWID;

CREATE TRIGGER registrations_count_insert AFTER INSERT ON registrations BEGIN
    INSERT INTO tenant_counts (tenant_id, entity, n) VALUES (NEW.tenant_id, 'registrations', 1)
        ON CONFLICT (tenant_id, entity) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER registrations_count_delete AFTER DELETE ON registrations BEGIN
    UPDATE tenant_counts SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND entity = 'registrations';
END;

CREATE TRIGGER trunks_count_insert AFTER INSERT ON trunks BEGIN
    INSERT INTO tenant_counts (tenant_id, entity, n) VALUES (NEW.tenant_id, 'trunks', 1)
        ON CONFLICT (tenant_id, entity) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER trunks_count_delete AFTER DELETE ON trunks BEGIN
    UPDATE tenant_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND entity = 'trunks';
END;

CREATE TRIGGER phone_numbers_count_insert AFTER INSERT ON phone_numbers BEGIN
    INSERT INTO tenant_counts (tenant_id, entity, n) VALUES (NEW.tenant_id, 'phone_numbers', 1)
        ON CONFLICT (tenant_id, entity) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER phone_numbers_count_delete AFTER DELETE ON phone_numbers BEGIN
    UPDATE tenant_counts SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND entity = 'phone_numbers';
END;

CREATE TRIGGER inbound_credentials_count_insert AFTER INSERT ON inbound_credentials BEGIN
    INSERT INTO tenant_counts (tenant_id, entity, n)
        VALUES (NEW.tenant_id, 'inbound_credentials', 1)
        ON CONFLICT (tenant_id, entity) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER inbound_credentials_count_delete AFTER DELETE ON inbound_credentials BEGIN
    UPDATE tenant_counts SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND entity = 'inbound_credentials';
END;

-- The rows that exist already (the migration runs in one transaction).
INSERT INTO tenant_counts (tenant_id, entity, n)
    SELECT tenant_id, 'registrations', COUNT(*) FROM registrations GROUP BY tenant_id;
INSERT INTO tenant_counts (tenant_id, entity, n)
    SELECT tenant_id, 'trunks', COUNT(*) FROM trunks GROUP BY tenant_id;
INSERT INTO tenant_counts (tenant_id, entity, n)
    SELECT tenant_id, 'phone_numbers', COUNT(*) FROM phone_numbers GROUP BY tenant_id;
INSERT INTO tenant_counts (tenant_id, entity, n)
    SELECT tenant_id, 'inbound_credentials', COUNT(*) FROM inbound_credentials GROUP BY tenant_id;
