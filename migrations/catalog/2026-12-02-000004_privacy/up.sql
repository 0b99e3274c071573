-- Privacy controls (issue 12, item 7).

-- Consent: one row per guest search, proof that the guest agreed to the
-- policy version shown. Nothing biometric and nothing identifying: when,
-- which event, which policy, through which channel. Kept with the studio
-- (not the event): it shows the processing was lawful after the photos
-- are gone.
CREATE TABLE catalog.consents (
    id              bigserial PRIMARY KEY,
    studio_id       uuid NOT NULL REFERENCES catalog.studios (id) ON DELETE CASCADE,
    event_id        uuid NOT NULL,
    policy_version  text NOT NULL,
    -- 'guest_link' (the guest page / REST guest API) or 'api' (a studio's key)
    channel         text NOT NULL,
    given_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_event ON catalog.consents (event_id, given_at);

-- What was deleted, by whom, how much: deletions, "forget me", purges.
CREATE TABLE catalog.audit_log (
    id         bigserial PRIMARY KEY,
    studio_id  uuid NOT NULL REFERENCES catalog.studios (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    -- 'key:<prefix or id>', 'guest' (share link) or 'retention'
    actor      text NOT NULL,
    action     text NOT NULL,
    event_id   uuid,
    photo_id   uuid,
    -- counts of what went: photos, faces, objects
    counts     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_studio ON catalog.audit_log (studio_id, id DESC);

-- Retention: after this the event is purged (photos, faces, objects).
ALTER TABLE catalog.events ADD COLUMN retain_until timestamptz;
CREATE INDEX events_retention ON catalog.events (retain_until) WHERE retain_until IS NOT NULL;
