// @generated automatically by Diesel CLI.

diesel::table! {
    audit_events (id) {
        id -> Int8,
        at -> Timestamptz,
        actor_id -> Nullable<Uuid>,
        action -> Text,
        entity_type -> Text,
        entity_id -> Nullable<Uuid>,
        request_id -> Nullable<Text>,
        entity_ids -> Array<Uuid>,
        tx -> Int8,
    }
}

diesel::table! {
    audit_blocks (number) {
        number -> Int8,
        sealed_at -> Timestamptz,
        horizon -> Int8,
        newest_tx -> Int8,
        event_ids -> Array<Int8>,
        last_event -> Int8,
        complete -> Bool,
        digests -> Bytea,
        sealed_total -> Int8,
        hash -> Bytea,
    }
}

diesel::table! {
    doctors (id) {
        id -> Uuid,
        name -> Text,
        specialization -> Text,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        license_number -> Nullable<Text>,
        created_by -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Uuid,
        key -> Text,
        operation -> Text,
        fingerprint -> Bytea,
        entity_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Int8,
        email_key -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    mappings (id) {
        id -> Uuid,
        patient_id -> Uuid,
        doctor_id -> Uuid,
        assigned_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    patients (id) {
        id -> Uuid,
        name -> Text,
        date_of_birth -> Nullable<Date>,
        gender -> Text,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        address -> Nullable<Text>,
        medical_history -> Nullable<Text>,
        created_by -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        user_agent -> Nullable<Text>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Uuid,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        family_id -> Uuid,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    totp_secrets (user_id) {
        user_id -> Uuid,
        sealed_secret -> Bytea,
        created_at -> Timestamptz,
        last_used_step -> Nullable<Int8>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        name -> Text,
        email -> Text,
        email_key -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamptz,
        token_version -> Int4,
        tokens_revoked_at -> Nullable<Timestamptz>,
        disabled_at -> Nullable<Timestamptz>,
        mfa_enabled_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(doctors -> users (created_by));
diesel::joinable!(idempotency_keys -> users (user_id));
diesel::joinable!(mappings -> doctors (doctor_id));
diesel::joinable!(mappings -> patients (patient_id));
diesel::joinable!(mappings -> users (assigned_by));
diesel::joinable!(patients -> users (created_by));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (family_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(totp_secrets -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_blocks,
    audit_events,
    doctors,
    idempotency_keys,
    login_failures,
    mappings,
    patients,
    recovery_codes,
    refresh_tokens,
    sessions,
    totp_secrets,
    users,
);
