-- The clear tokens cannot be brought back from their hashes: links of events
-- sealed since this migration stop working after it is reverted (rotate them).
ALTER TABLE catalog.events DROP COLUMN share_token_sealed;
