DROP INDEX catalog.photos_event_updated;
ALTER TABLE catalog.photos DROP COLUMN updated_at;
