-- Studios, keys and share links (issue 12, item 6).
--
-- A disabled studio's keys and share links stop working; nothing is deleted.
ALTER TABLE catalog.studios ADD COLUMN disabled_at timestamptz;

-- Keys: still only a SHA-256 of each; `prefix` (the first 11 characters,
-- `fp_` and 8 hex digits) identifies a key in lists without revealing it.
-- Keys made before this migration have no prefix (''). `scopes` limit what
-- a key may do; `last_used_at` is refreshed at most once a minute.
-- `revoked_at` in the future is a rotated key's grace period.
ALTER TABLE catalog.api_keys
    ADD COLUMN prefix        text NOT NULL DEFAULT '',
    ADD COLUMN scopes        text[] NOT NULL DEFAULT ARRAY['read', 'upload', 'search', 'admin'],
    ADD COLUMN last_used_at  timestamptz;
CREATE INDEX api_keys_studio ON catalog.api_keys (studio_id, created_at);

-- Share links: an expiry and an off switch; rotating replaces share_token.
ALTER TABLE catalog.events
    ADD COLUMN share_expires_at   timestamptz,
    ADD COLUMN share_disabled_at  timestamptz;
