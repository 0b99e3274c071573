ALTER TABLE catalog.events DROP COLUMN share_expires_at, DROP COLUMN share_disabled_at;
DROP INDEX catalog.api_keys_studio;
ALTER TABLE catalog.api_keys DROP COLUMN prefix, DROP COLUMN scopes, DROP COLUMN last_used_at;
ALTER TABLE catalog.studios DROP COLUMN disabled_at;
