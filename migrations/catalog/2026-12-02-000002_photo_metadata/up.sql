-- What a photo carries besides its status (issue 12): the caller's file name,
-- the content type and SHA-256 of the bytes (uploads), and what the detector
-- reads when it indexes the photo (size in pixels, EXIF capture time).
-- content_sha256 makes a repeated upload recognisable: the same external_id
-- with the same bytes is the same photo.
ALTER TABLE catalog.photos
    ADD COLUMN file_name       text,
    ADD COLUMN content_type    text,
    ADD COLUMN content_sha256  text,
    ADD COLUMN width           integer,
    ADD COLUMN height          integer,
    ADD COLUMN captured_at     timestamptz;

-- Keyset pagination of one status (the unfiltered listing uses
-- photos_event_created).
CREATE INDEX photos_event_status_created ON catalog.photos (event_id, status, created_at, id);
DROP INDEX catalog.photos_event_status;
