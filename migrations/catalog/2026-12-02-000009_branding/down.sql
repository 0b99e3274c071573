ALTER TABLE catalog.events DROP COLUMN event_date;
ALTER TABLE catalog.studios DROP COLUMN logo_key, DROP COLUMN privacy_url, DROP COLUMN accent_color;
