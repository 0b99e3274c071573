CREATE INDEX photos_event_status ON catalog.photos (event_id, status);
DROP INDEX catalog.photos_event_status_created;
ALTER TABLE catalog.photos
    DROP COLUMN file_name,
    DROP COLUMN content_type,
    DROP COLUMN content_sha256,
    DROP COLUMN width,
    DROP COLUMN height,
    DROP COLUMN captured_at;
