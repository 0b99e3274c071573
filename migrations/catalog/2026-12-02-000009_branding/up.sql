-- What a studio shows its guests (its name, an accent colour, a logo, its
-- privacy text), and an event's date.
ALTER TABLE catalog.studios
    ADD COLUMN accent_color text CHECK (accent_color ~ '^#[0-9a-f]{6}$'),
    ADD COLUMN privacy_url  text,
    ADD COLUMN logo_key     text;
ALTER TABLE catalog.events ADD COLUMN event_date date;
