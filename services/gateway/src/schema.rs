//! Diesel definitions of the catalog tables (migrations/catalog).

diesel::table! {
    catalog.studios (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        disabled_at -> Nullable<Timestamptz>,
        accent_color -> Nullable<Text>,
        privacy_url -> Nullable<Text>,
        logo_key -> Nullable<Text>,
    }
}

diesel::table! {
    catalog.api_keys (id) {
        id -> Uuid,
        studio_id -> Uuid,
        key_hash -> Text,
        label -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        prefix -> Text,
        scopes -> Array<Text>,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    catalog.events (id) {
        id -> Uuid,
        studio_id -> Uuid,
        name -> Text,
        external_id -> Nullable<Text>,
        share_token -> Text,
        created_at -> Timestamptz,
        share_expires_at -> Nullable<Timestamptz>,
        share_disabled_at -> Nullable<Timestamptz>,
        retain_until -> Nullable<Timestamptz>,
        event_date -> Nullable<Date>,
        deleting_at -> Nullable<Timestamptz>,
        deleting_by -> Nullable<Text>,
        share_token_sealed -> Text,
    }
}

diesel::table! {
    catalog.photos (id) {
        id -> Uuid,
        event_id -> Uuid,
        studio_id -> Uuid,
        external_id -> Nullable<Text>,
        object_key -> Text,
        owned_object -> Bool,
        size_bytes -> Int8,
        status -> Text,
        face_count -> Int4,
        failure_code -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        indexed_at -> Nullable<Timestamptz>,
        file_name -> Nullable<Text>,
        content_type -> Nullable<Text>,
        content_sha256 -> Nullable<Text>,
        width -> Nullable<Int4>,
        height -> Nullable<Int4>,
        captured_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        last_error_code -> Nullable<Text>,
        last_error_reason -> Nullable<Text>,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        retry_until -> Nullable<Timestamptz>,
        redrives -> Int4,
    }
}

diesel::table! {
    catalog.outbox (id) {
        id -> Int8,
        routing_key -> Text,
        message_type -> Text,
        payload -> Bytea,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        trace_context -> Nullable<Text>,
        priority -> Int2,
    }
}

diesel::table! {
    catalog.consents (id) {
        id -> Int8,
        studio_id -> Uuid,
        event_id -> Uuid,
        policy_version -> Text,
        channel -> Text,
        given_at -> Timestamptz,
    }
}

diesel::table! {
    catalog.audit_log (id) {
        id -> Int8,
        studio_id -> Uuid,
        at -> Timestamptz,
        actor -> Text,
        action -> Text,
        event_id -> Nullable<Uuid>,
        photo_id -> Nullable<Uuid>,
        counts -> Jsonb,
    }
}

diesel::table! {
    catalog.webhooks (id) {
        id -> Uuid,
        studio_id -> Uuid,
        url -> Text,
        secret -> Text,
        events -> Array<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    catalog.webhook_deliveries (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        studio_id -> Uuid,
        event_type -> Text,
        body -> Text,
        dedupe_key -> Text,
        state -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    catalog.sessions (token_hash) {
        token_hash -> Text,
        key_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    catalog.pending_objects (key) {
        key -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> studios (studio_id));
diesel::joinable!(sessions -> api_keys (key_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(events -> studios (studio_id));
diesel::joinable!(photos -> events (event_id));
diesel::allow_tables_to_appear_in_same_query!(
    studios,
    api_keys,
    events,
    photos,
    outbox,
    consents,
    audit_log,
    webhooks,
    webhook_deliveries,
    sessions
);
