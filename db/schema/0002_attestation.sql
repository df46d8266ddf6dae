-- Aegis schema, version 2: device attestation (docs/protocol.md).
-- Hex strings are lower-case; svn values are 0 .. 4294967295; components are 1..64 bytes of [a-z0-9._-].

-- Challenge nonces: 32 random bytes, single use, bound to one device. The implicit rowid orders the nonces of a
-- device by issue, so that a fifth outstanding nonce replaces the oldest.
CREATE TABLE nonces (
    nonce      BLOB    NOT NULL PRIMARY KEY CHECK (typeof(nonce) = 'blob' AND length(nonce) = 32),
    device_id  TEXT    NOT NULL REFERENCES devices (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX nonces_by_device ON nonces (device_id);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

-- Known-good measurements. scope 0 holds the platform's values (bootloader, os), added by the service operator;
-- scope n > 0 holds tenant n's values (app).
CREATE TABLE reference_values (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    scope      INTEGER NOT NULL CHECK (scope >= 0),
    stage      TEXT    NOT NULL CHECK (stage IN ('bootloader', 'os', 'app')),
    component  TEXT    NOT NULL
                       CHECK (length(component) BETWEEN 1 AND 64 AND component NOT GLOB '*[^a-z0-9._-]*'),
    version    TEXT    NOT NULL CHECK (length(CAST(version AS BLOB)) BETWEEN 1 AND 32),
    svn        INTEGER NOT NULL CHECK (svn BETWEEN 0 AND 4294967295),
    digest     TEXT    NOT NULL CHECK (length(digest) = 64 AND digest NOT GLOB '*[^0-9a-f]*'),
    created_at INTEGER NOT NULL,
    CHECK ((scope = 0) = (stage IN ('bootloader', 'os'))),
    UNIQUE (scope, stage, component, version)
);

-- Anti-rollback floors of a tenant, per component.
CREATE TABLE security_minimums (
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    component  TEXT    NOT NULL
                       CHECK (length(component) BETWEEN 1 AND 64 AND component NOT GLOB '*[^a-z0-9._-]*'),
    min_svn    INTEGER NOT NULL CHECK (min_svn BETWEEN 0 AND 4294967295),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, component)
) WITHOUT ROWID;

-- Every attestation attempt of a registered device, kept by the tenant that sees the device (its owner, or while
-- unclaimed the tenant that imported it). measurements is the event log as presented (a JSON array).
CREATE TABLE attestations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id),
    device_id      TEXT    NOT NULL REFERENCES devices (id),
    created_at     INTEGER NOT NULL,
    result         TEXT    NOT NULL CHECK (result IN ('pass', 'fail')),
    reason         TEXT    CHECK (reason IS NULL OR length(reason) BETWEEN 1 AND 64),
    measurements   TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(measurements)),
    cert_serial    TEXT,
    cert_not_after INTEGER,
    peer           TEXT,
    CHECK ((result = 'pass') = (reason IS NULL)),
    CHECK ((result = 'pass') = (cert_serial IS NOT NULL AND cert_not_after IS NOT NULL))
);
CREATE INDEX attestations_by_device ON attestations (tenant_id, device_id, id);
CREATE INDEX attestations_by_tenant ON attestations (tenant_id, id);
CREATE INDEX attestations_by_result ON attestations (tenant_id, result, id);

-- The last attestation of a device (NULL until its first).
ALTER TABLE devices ADD COLUMN attest_at INTEGER;
ALTER TABLE devices ADD COLUMN attest_result TEXT CHECK (attest_result IN ('pass', 'fail'));
ALTER TABLE devices ADD COLUMN attest_reason TEXT;
