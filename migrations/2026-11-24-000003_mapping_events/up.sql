-- Every assignment made or removed announces itself on the channel
-- `mapping_events`, in the transaction that makes the change: PostgreSQL
-- delivers a NOTIFY only on commit, so a rolled-back change is never
-- announced, and every server replica that LISTENs hears it. The payload
-- holds ids only; `owner` (the patient's creator) lets a server decide who
-- may receive it without a query, and is never sent to clients.
CREATE FUNCTION mappings_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row mappings;
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        row := NEW;
        kind := 'ASSIGNED';
    ELSE
        row := OLD;
        kind := 'REMOVED';
    END IF;
    PERFORM pg_notify('mapping_events', json_build_object(
        'kind', kind,
        'mappingId', row.id,
        'patientId', row.patient_id,
        'doctorId', row.doctor_id,
        'owner', (SELECT created_by FROM patients WHERE id = row.patient_id),
        'atMicros', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
    )::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER mappings_notify
    AFTER INSERT OR DELETE ON mappings
    FOR EACH ROW EXECUTE FUNCTION mappings_notify();
