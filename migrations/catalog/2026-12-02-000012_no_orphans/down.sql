DROP TABLE catalog.pending_objects;
DROP INDEX catalog.events_deleting;
ALTER TABLE catalog.events DROP COLUMN deleting_at, DROP COLUMN deleting_by;
