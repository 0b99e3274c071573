-- When a photo's status last changed: WatchEvent and the REST event stream
-- send each photo's outcome once, in this order (issue 12, item 5).
ALTER TABLE catalog.photos ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX photos_event_updated ON catalog.photos (event_id, updated_at, id);
