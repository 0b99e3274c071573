-- Indexing outlasts outages (issue 15): a photo whose attempt failed for a
-- reason that may pass is `retrying`, with the last error and when the next
-- attempt starts; a failed photo can be queued again (`redrives` counts how
-- often, so that its webhooks are sent again).
ALTER TABLE catalog.photos DROP CONSTRAINT photos_status_check;
ALTER TABLE catalog.photos ADD CONSTRAINT photos_status_check
    CHECK (status IN ('pending', 'retrying', 'indexed', 'failed'));
ALTER TABLE catalog.photos
    ADD COLUMN last_error_code text,
    ADD COLUMN last_error_reason text,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN retry_until timestamptz,
    ADD COLUMN redrives integer NOT NULL DEFAULT 0;
