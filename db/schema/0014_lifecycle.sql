-- Aegis schema, version 14: lifecycle operations (docs/api.md "Devices" and "Tokens", issue 14).
--  * API tokens may expire (expires_at, NULL: never) and record when they were last used
--    (last_used_at, NULL: never; written at most once a minute per token, so authentication stays a
--    read).
--  * Device tags: key/value pairs of a tenant's registration of a device (its devices row or its
--    shadow: the same (tenant, device) either way), at most 16 per registration. Keys are 1..64
--    bytes of [A-Za-z0-9._/-], values 0..128 bytes of text without control characters.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;

CREATE TABLE device_tags (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    device_id TEXT    NOT NULL REFERENCES devices (id),
    key       TEXT    NOT NULL
                      CHECK (length(key) BETWEEN 1 AND 64 AND key NOT GLOB '*[^A-Za-z0-9._/-]*'),
    value     TEXT    NOT NULL CHECK (length(CAST(value AS BLOB)) <= 128),
    PRIMARY KEY (tenant_id, device_id, key)
) WITHOUT ROWID;
-- Finds the devices of a tag (a filter) without reading every registration's tags.
CREATE INDEX device_tags_by_value ON device_tags (tenant_id, key, value, device_id);
