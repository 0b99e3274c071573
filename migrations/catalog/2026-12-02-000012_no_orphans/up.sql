-- No orphans (issue 15, point 2).
--
-- An event being deleted is hidden at once (deleting_at) and its deletion is
-- finished by any gateway's sweeper if the one that began it stops halfway;
-- deleting_by is the actor for the audit entry.
ALTER TABLE catalog.events
    ADD COLUMN deleting_at timestamptz,
    ADD COLUMN deleting_by text;
CREATE INDEX events_deleting ON catalog.events (deleting_at) WHERE deleting_at IS NOT NULL;

-- Objects being written for an upload whose photo row is not committed yet:
-- the row is removed in the transaction that commits the photo, so a row
-- older than the grace period names an object nobody will ever refer to.
CREATE TABLE catalog.pending_objects (
    key        text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_objects_created ON catalog.pending_objects (created_at);
