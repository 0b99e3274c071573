-- "Forget me" that also covers photos indexed later (issue 12, item 7).
-- When a guest asks to be forgotten, their selfie's embedding is kept here,
-- for that one event only, as a suppression entry: a face indexed later
-- that is at least `min_similarity` similar to it is not stored. The entry
-- is the only trace of the selfie FacePass keeps, because the guest asked
-- for it; it is deleted with the event (docs/ARCHITECTURE.md, "Privacy").
CREATE TABLE faces.suppressions (
    id              bigserial PRIMARY KEY,
    studio_id       uuid NOT NULL,
    event_id        uuid NOT NULL,
    model           text NOT NULL,
    embedding       vector NOT NULL,
    min_similarity  real NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX suppressions_event ON faces.suppressions (event_id);
