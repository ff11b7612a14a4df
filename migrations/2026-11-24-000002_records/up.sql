-- Patients (private to their creator and admins), the shared directory of
-- doctors, assignments of doctors to patients, and the append-only audit trail.

-- Case-insensitive substring search (ILIKE '%...%') on names through
-- trigram indexes. pg_trgm is a trusted extension: the database owner may
-- create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE patients (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    date_of_birth   date,
    gender          text        NOT NULL DEFAULT 'UNKNOWN'
                                CHECK (gender IN ('FEMALE', 'MALE', 'OTHER', 'UNKNOWN')),
    email           text        CHECK (char_length(email) <= 254),
    phone           text        CHECK (char_length(phone) <= 32),
    address         text        CHECK (char_length(address) <= 1000),
    medical_history text        CHECK (char_length(medical_history) <= 20000),
    created_by      uuid        NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Keyset pages of one owner's patients in each order, and of everyone's (admins).
CREATE INDEX patients_owner_created_idx ON patients (created_by, created_at, id);
CREATE INDEX patients_owner_name_idx ON patients (created_by, name, id);
CREATE INDEX patients_created_idx ON patients (created_at, id);
CREATE INDEX patients_name_idx ON patients (name, id);
CREATE INDEX patients_name_trgm_idx ON patients USING gin (name gin_trgm_ops);

CREATE TABLE doctors (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    specialization  text        NOT NULL CHECK (char_length(specialization) BETWEEN 1 AND 200),
    email           text        CHECK (char_length(email) <= 254),
    phone           text        CHECK (char_length(phone) <= 32),
    license_number  text        CONSTRAINT doctors_license_number_key UNIQUE
                                CHECK (char_length(license_number) BETWEEN 1 AND 64),
    created_by      uuid        NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX doctors_created_idx ON doctors (created_at, id);
CREATE INDEX doctors_name_idx ON doctors (name, id);
CREATE INDEX doctors_specialization_idx ON doctors (lower(specialization));
CREATE INDEX doctors_name_trgm_idx ON doctors USING gin (name gin_trgm_ops);
CREATE INDEX doctors_specialization_trgm_idx ON doctors USING gin (specialization gin_trgm_ops);

CREATE TABLE mappings (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id  uuid        NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    doctor_id   uuid        NOT NULL REFERENCES doctors (id) ON DELETE CASCADE,
    assigned_by uuid        NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mappings_patient_id_doctor_id_key UNIQUE (patient_id, doctor_id)
);
CREATE INDEX mappings_doctor_idx ON mappings (doctor_id);
CREATE INDEX mappings_created_idx ON mappings (created_at, id);

-- The audit trail: rows are only ever inserted.
CREATE TABLE audit_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- No foreign key: the trail outlives what it describes.
    actor_id    uuid,
    action      text        NOT NULL CHECK (action IN (
                    'REGISTER', 'LOGIN_SUCCEEDED', 'LOGIN_FAILED',
                    'PATIENT_CREATED', 'PATIENT_READ', 'PATIENT_UPDATED', 'PATIENT_DELETED',
                    'DOCTOR_CREATED', 'DOCTOR_UPDATED', 'DOCTOR_DELETED',
                    'MAPPING_CREATED', 'MAPPING_DELETED')),
    entity_type text        NOT NULL CHECK (entity_type IN ('USER', 'PATIENT', 'DOCTOR', 'MAPPING')),
    entity_id   uuid,
    request_id  text        CHECK (char_length(request_id) <= 128)
);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_id, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
