-- Aegis schema, version 9: stateless challenge nonces (docs/protocol.md section 3.1). A nonce is
-- now its expiry, random bytes and a MAC under the service's nonce key over the device ID and both:
-- a challenge stores nothing, so strangers asking for a device's nonces can no longer evict the
-- device's own. Single use is kept by the set of used nonces, each kept until it expires. Nonces
-- outstanding at the upgrade are refused (the device asks again).
DROP TABLE nonces;

-- Every nonce presented with a valid MAC, until it expires (then the MAC check refuses it anyway).
CREATE TABLE nonces_used (
    nonce      BLOB    NOT NULL PRIMARY KEY CHECK (typeof(nonce) = 'blob' AND length(nonce) = 32),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX nonces_used_by_expiry ON nonces_used (expires_at);

-- The MAC key of nonces: one row, set by the first daemon that starts on the database (from its
-- random source), so every daemon on one database checks every other's nonces.
CREATE TABLE nonce_key (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key        BLOB    NOT NULL CHECK (typeof(key) = 'blob' AND length(key) = 32),
    created_at INTEGER NOT NULL
);
