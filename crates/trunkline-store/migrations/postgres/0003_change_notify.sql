-- Every committed change to an entity the nodes act on is announced on the channel
-- `trunkline_changes`, so each node's engine and registrar hear of writes made through any
-- node (and by the CLI) at once. NOTIFY is transactional: a rolled-back write announces
-- nothing. The payload names the writer's node (`trunkline.node_id`, set on each of its
-- connections), so a node skips what it announced to itself already.
CREATE FUNCTION trunkline_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
    -- node|table|operation|tenant|id (none of them holds a `|`).
    PERFORM pg_notify('trunkline_changes', concat_ws('|',
        coalesce(current_setting('trunkline.node_id', true), ''),
        TG_TABLE_NAME, TG_OP, changed.tenant_id, changed.id));
    RETURN NULL;
END;
$$;

CREATE TRIGGER registrations_notify AFTER INSERT OR UPDATE OR DELETE ON registrations
    FOR EACH ROW EXECUTE FUNCTION trunkline_notify_change();
CREATE TRIGGER trunks_notify AFTER INSERT OR UPDATE OR DELETE ON trunks
    FOR EACH ROW EXECUTE FUNCTION trunkline_notify_change();
CREATE TRIGGER phone_numbers_notify AFTER INSERT OR UPDATE OR DELETE ON phone_numbers
    FOR EACH ROW EXECUTE FUNCTION trunkline_notify_change();
CREATE TRIGGER inbound_credentials_notify AFTER INSERT OR UPDATE OR DELETE ON inbound_credentials
    FOR EACH ROW EXECUTE FUNCTION trunkline_notify_change();
