-- Aegis schema, version 15: dashboard sign-in sessions (docs/api.md "Sessions", issue 17).
--  * A session is an API token exchanged for a cookie. Only hashes are kept: id_hash is the SHA-256 of
--    the cookie's 32 random bytes, csrf_hash the SHA-256 of the CSRF token's text, so a copy of the
--    database signs nobody in.
--  * A session is bound to its token: revoking or expiring the token ends it (checked on every
--    request); deleting the token (tenant deletion) deletes its sessions.
CREATE TABLE sessions (
    id_hash    BLOB    PRIMARY KEY CHECK (length(id_hash) = 32),
    token_id   INTEGER NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    csrf_hash  BLOB    NOT NULL CHECK (length(csrf_hash) = 32),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL CHECK (expires_at > created_at)
) WITHOUT ROWID;
-- Expired sessions are deleted in expiry order; a token's sessions are found for its cascade.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_token ON sessions (token_id);
