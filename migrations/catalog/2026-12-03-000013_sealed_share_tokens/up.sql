-- Share tokens at rest (docs/security.md §4): `share_token` becomes the token's
-- hex SHA-256, which guests' links are looked up by, and `share_token_sealed` a
-- copy sealed with the gateway's share_link_key, so the studio can be shown its
-- link again. The gateway seals the existing tokens at start-up (it holds the
-- key; SQL does not); until then a row has '' here and its token in the clear.
ALTER TABLE catalog.events ADD COLUMN share_token_sealed text NOT NULL DEFAULT '';
