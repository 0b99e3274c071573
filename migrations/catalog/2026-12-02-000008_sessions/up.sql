-- Browser sessions of the studio dashboard: an API key exchanged for an
-- HttpOnly cookie. Only the token's SHA-256 is stored; a session lives as long
-- as its key (revoking or deleting the key ends it) and at most until expires_at.
CREATE TABLE catalog.sessions (
    token_hash  text PRIMARY KEY,
    key_id      uuid NOT NULL REFERENCES catalog.api_keys (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON catalog.sessions (expires_at);
