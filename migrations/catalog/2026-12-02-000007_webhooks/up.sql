-- Webhooks (issue 12, item 5): a studio's HTTPS endpoints and every
-- delivery to them, with its attempts, for the delivery log and replays.
CREATE TABLE catalog.webhooks (
    id           uuid PRIMARY KEY,
    studio_id    uuid NOT NULL REFERENCES catalog.studios (id) ON DELETE CASCADE,
    url          text NOT NULL,
    -- The HMAC-SHA256 key the deliveries are signed with; shown to the
    -- studio once, kept to sign (it is not a password: it cannot be hashed).
    secret       text NOT NULL,
    -- Event types delivered: photo.indexed, photo.failed, event.indexing_completed.
    events       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_studio ON catalog.webhooks (studio_id);

CREATE TABLE catalog.webhook_deliveries (
    id               uuid PRIMARY KEY,
    webhook_id       uuid NOT NULL REFERENCES catalog.webhooks (id) ON DELETE CASCADE,
    studio_id        uuid NOT NULL,
    event_type       text NOT NULL,
    -- The JSON body sent, exactly.
    body             text NOT NULL,
    -- One delivery per fact (a redelivered outcome message adds nothing).
    dedupe_key       text NOT NULL,
    state            text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (webhook_id, dedupe_key)
);
CREATE INDEX webhook_deliveries_due ON catalog.webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON catalog.webhook_deliveries (webhook_id, created_at DESC);
