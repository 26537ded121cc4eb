-- Every outbound registration has its lease row from the transaction that creates it (or
-- turns a phone number's registration on), without a holder (''), so that a claim reads its
-- batch from the `node_id` index instead of searching the registrations for ones without a
-- row (a search that went over every leased id again on each claim of a cold start). Rows of
-- numbers whose registration was turned off stay; claims pass over them.
CREATE FUNCTION trunkline_lease_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO registration_leases (registration_id, tenant_id, node_id, token)
        VALUES (NEW.id, NEW.tenant_id, '', 0) ON CONFLICT (registration_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER registrations_lease_row AFTER INSERT ON registrations
    FOR EACH ROW EXECUTE FUNCTION trunkline_lease_row();
CREATE TRIGGER phone_numbers_lease_row AFTER INSERT OR UPDATE OF registration ON phone_numbers
    FOR EACH ROW WHEN (NEW.registration) EXECUTE FUNCTION trunkline_lease_row();

INSERT INTO registration_leases (registration_id, tenant_id, node_id, token)
    SELECT id, tenant_id, '', 0 FROM registrations
    UNION ALL SELECT id, tenant_id, '', 0 FROM phone_numbers WHERE registration
    ON CONFLICT (registration_id) DO NOTHING;
