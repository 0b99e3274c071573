-- The gateway's catalog: studios, their API keys, events, photos and the
-- transactional outbox that feeds RabbitMQ. Only the gateway touches it.
CREATE SCHEMA IF NOT EXISTS catalog;

CREATE TABLE catalog.studios (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only a SHA-256 of each key is kept; the key itself is shown once.
CREATE TABLE catalog.api_keys (
    id          uuid PRIMARY KEY,
    studio_id   uuid NOT NULL REFERENCES catalog.studios (id) ON DELETE CASCADE,
    key_hash    text NOT NULL UNIQUE,
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE catalog.events (
    id           uuid PRIMARY KEY,
    studio_id    uuid NOT NULL REFERENCES catalog.studios (id) ON DELETE CASCADE,
    name         text NOT NULL,
    external_id  text,
    share_token  text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (studio_id, external_id)
);
CREATE INDEX events_studio_created ON catalog.events (studio_id, created_at DESC, id);

CREATE TABLE catalog.photos (
    id              uuid PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES catalog.events (id) ON DELETE CASCADE,
    studio_id       uuid NOT NULL,
    external_id     text,
    object_key      text NOT NULL,
    -- true when FacePass stored the bytes (upload) and so deletes them too
    owned_object    boolean NOT NULL,
    size_bytes      bigint NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'indexed', 'failed')),
    face_count      integer NOT NULL DEFAULT 0,
    failure_code    text,
    failure_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    indexed_at      timestamptz,
    UNIQUE (event_id, external_id)
);
CREATE INDEX photos_event_status ON catalog.photos (event_id, status);
CREATE INDEX photos_event_created ON catalog.photos (event_id, created_at, id);

CREATE TABLE catalog.outbox (
    id            bigserial PRIMARY KEY,
    routing_key   text NOT NULL,
    message_type  text NOT NULL,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz
);
CREATE INDEX outbox_unsent ON catalog.outbox (id) WHERE sent_at IS NULL;
