-- Aegis schema, version 8: a device belongs to the tenant that registered it (issue 10). Another
-- tenant that imports the same public key gets a registration of its own (device_shadows) that
-- looks, to it, exactly like a newly imported device: it can claim, move, block and transfer it, but
-- the device never authenticates to it, since devices.tenant_id is the only tenant a device talks
-- to. A registration changes hands only through a one-time transfer code that its holder created
-- (device_transfers), stored as the SHA-256 of the code.
CREATE TABLE device_shadows (
    device_id  TEXT    NOT NULL REFERENCES devices (id),
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    group_id   INTEGER,
    blocked    INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    created_at INTEGER NOT NULL,
    claimed_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, device_id),
    CHECK (claimed_at IS NOT NULL OR (group_id IS NULL AND blocked = 0)),
    FOREIGN KEY (tenant_id, group_id) REFERENCES device_groups (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX device_shadows_by_group ON device_shadows (group_id, device_id);

CREATE TABLE device_transfers (
    code_hash  TEXT    NOT NULL PRIMARY KEY,
    device_id  TEXT    NOT NULL REFERENCES devices (id),
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (tenant_id, device_id)
);
