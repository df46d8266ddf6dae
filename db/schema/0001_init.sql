-- Aegis schema, version 1.
-- Times are INTEGER unix seconds (UTC). Names are 1..128 bytes, descriptions 0..1024 bytes.
-- Integer ids use AUTOINCREMENT so that an id is never handed out twice (a deleted product's id must not come
-- back naming another product, a revoked token's id must not come back).
-- schema_migrations is created by the store itself before it migrates.

CREATE TABLE tenants (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 128),
    created_at INTEGER NOT NULL
);

-- Issuing CAs of a tenant. At most one is active (the one that signs); the others stay until they expire.
CREATE TABLE tenant_cas (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    cert_pem   TEXT    NOT NULL,
    key_name   TEXT    NOT NULL CHECK (length(key_name) >= 1),
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    created_at INTEGER NOT NULL,
    CHECK (not_after > not_before)
);
CREATE INDEX tenant_cas_by_tenant ON tenant_cas (tenant_id, id);
CREATE UNIQUE INDEX tenant_cas_one_active ON tenant_cas (tenant_id) WHERE active = 1;

-- API tokens: only SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    name       TEXT    NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 128),
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'reader')),
    hash       BLOB    NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32),
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant_id, id);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 128),
    description TEXT    NOT NULL DEFAULT '' CHECK (length(CAST(description AS BLOB)) <= 1024),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id) -- the list index, and the parent key of device_groups (tenant_id, product_id)
);

-- A group belongs to a product of the same tenant (enforced by the composite foreign key).
CREATE TABLE device_groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    product_id  INTEGER NOT NULL,
    name        TEXT    NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 128),
    description TEXT    NOT NULL DEFAULT '' CHECK (length(CAST(description AS BLOB)) <= 1024),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (product_id, name),
    UNIQUE (tenant_id, id), -- the list index, and the parent key of devices (tenant_id, group_id)
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX device_groups_by_product ON device_groups (product_id, id);

-- The device registry. A device enters by import (registered_by) and becomes a tenant's by claim (tenant_id).
-- State: unclaimed = tenant_id IS NULL; active = claimed and not blocked; blocked = claimed and blocked.
-- A device's group is one of its owner's groups (composite foreign key; not checked while group_id is NULL).
CREATE TABLE devices (
    id             TEXT    NOT NULL PRIMARY KEY
                           CHECK (length(id) = 64 AND id NOT GLOB '*[^0-9a-f]*'),
    public_key_pem TEXT    NOT NULL,
    registered_by  INTEGER NOT NULL REFERENCES tenants (id),
    tenant_id      INTEGER REFERENCES tenants (id),
    group_id       INTEGER,
    blocked        INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    created_at     INTEGER NOT NULL,
    claimed_at     INTEGER,
    updated_at     INTEGER NOT NULL,
    CHECK ((tenant_id IS NULL) = (claimed_at IS NULL)),
    CHECK (tenant_id IS NOT NULL OR (group_id IS NULL AND blocked = 0)),
    FOREIGN KEY (tenant_id, group_id) REFERENCES device_groups (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX devices_by_tenant ON devices (tenant_id, id);
CREATE INDEX devices_by_group ON devices (group_id, id);
CREATE INDEX devices_unclaimed ON devices (registered_by, id) WHERE tenant_id IS NULL;

-- Audit log, one row per change, written in the change's transaction. object_id has no type affinity on
-- purpose: it keeps an integer id as an integer and a device id as text (NULL for a batch import).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    object_type TEXT    NOT NULL,
    object_id   BLOB,
    detail      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(detail)),
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
