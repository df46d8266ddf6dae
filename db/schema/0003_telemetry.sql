-- Aegis schema, version 3: failure reporting (docs/telemetry.md).
-- Reports are stored once per (device, report_id). Crashes are grouped into buckets per tenant by a signature
-- (hex SHA-256 of "component|reason|pc|ra1|ra2|ra3", addresses normalised); heartbeats add device-seconds per
-- running image version and hour. The aggregates (buckets, usage, versions, fleet hours) outlive the reports,
-- which are deleted after report_retention_days. Hours are unix times of the hour's start; times are those at
-- which the service received a report (devices send no clock).

-- Crash buckets. devices is the number of distinct devices (bucket_devices); devices_first_hour the number of
-- those first seen less than an hour after the bucket itself (emerging-problem detection).
CREATE TABLE failure_buckets (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id          INTEGER NOT NULL REFERENCES tenants (id),
    signature          TEXT    NOT NULL CHECK (length(signature) = 64 AND signature NOT GLOB '*[^0-9a-f]*'),
    component          TEXT    NOT NULL
                               CHECK (length(component) BETWEEN 1 AND 64 AND component NOT GLOB '*[^a-z0-9._-]*'),
    reason             TEXT    NOT NULL CHECK (length(reason) BETWEEN 1 AND 32 AND reason NOT GLOB '*[^a-z0-9_]*'),
    pc                 TEXT    NOT NULL,
    frames             TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(frames)), -- the first 3 return addresses
    first_seen         INTEGER NOT NULL,
    last_seen          INTEGER NOT NULL,
    count              INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    devices            INTEGER NOT NULL DEFAULT 0 CHECK (devices >= 0),
    devices_first_hour INTEGER NOT NULL DEFAULT 0 CHECK (devices_first_hour >= 0),
    UNIQUE (tenant_id, signature)
);
CREATE INDEX failure_buckets_by_tenant ON failure_buckets (tenant_id, id);
CREATE INDEX failure_buckets_by_first_seen ON failure_buckets (first_seen);

CREATE TABLE bucket_devices (
    bucket_id  INTEGER NOT NULL REFERENCES failure_buckets (id),
    device_id  TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (bucket_id, device_id)
) WITHOUT ROWID;

CREATE TABLE bucket_versions (
    bucket_id     INTEGER NOT NULL REFERENCES failure_buckets (id),
    image_version TEXT    NOT NULL,
    count         INTEGER NOT NULL DEFAULT 0,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    PRIMARY KEY (bucket_id, image_version)
) WITHOUT ROWID;

-- Every accepted report. The crash fields are NULL for other types, the heartbeat fields for others. Texts
-- from the device are data: message is kept byte for byte. group_id and product_id are the device's at the
-- time of the report (for filters), 0 when none.
CREATE TABLE telemetry_reports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    device_id        TEXT    NOT NULL REFERENCES devices (id),
    report_id        INTEGER NOT NULL CHECK (report_id BETWEEN 1 AND 9007199254740991),
    type             TEXT    NOT NULL CHECK (type IN ('crash', 'heartbeat', 'reboot')),
    boot_id          TEXT    NOT NULL CHECK (length(boot_id) = 32 AND boot_id NOT GLOB '*[^0-9a-f]*'),
    uptime_s         INTEGER NOT NULL CHECK (uptime_s BETWEEN 0 AND 4294967295),
    group_id         INTEGER NOT NULL DEFAULT 0,
    product_id       INTEGER NOT NULL DEFAULT 0,
    component        TEXT,
    image_version    TEXT,
    reason           TEXT,
    pc               TEXT,
    lr               TEXT,
    return_addresses TEXT    CHECK (return_addresses IS NULL OR json_valid(return_addresses)),
    fault_registers  TEXT    CHECK (fault_registers IS NULL OR json_valid(fault_registers)),
    free_memory      INTEGER CHECK (free_memory IS NULL OR free_memory BETWEEN 0 AND 4294967295),
    message          TEXT    CHECK (message IS NULL OR length(CAST(message AS BLOB)) <= 256),
    period_s         INTEGER CHECK (period_s IS NULL OR period_s BETWEEN 1 AND 86400),
    images           TEXT    CHECK (images IS NULL OR json_valid(images)),
    counters         TEXT    CHECK (counters IS NULL OR json_valid(counters)),
    previous_boot_id TEXT,
    received_at      INTEGER NOT NULL,
    bucket_id        INTEGER REFERENCES failure_buckets (id),
    UNIQUE (device_id, report_id),
    CHECK ((type = 'crash') = (bucket_id IS NOT NULL))
);
CREATE INDEX telemetry_reports_by_tenant ON telemetry_reports (tenant_id, received_at);
CREATE INDEX telemetry_reports_by_bucket ON telemetry_reports (bucket_id, id) WHERE bucket_id IS NOT NULL;
CREATE INDEX telemetry_reports_by_age ON telemetry_reports (received_at);

-- Per device: reports lost on the device (the batches' "dropped"), reports stored, the last upload.
CREATE TABLE telemetry_devices (
    device_id   TEXT    NOT NULL PRIMARY KEY REFERENCES devices (id),
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    dropped     INTEGER NOT NULL DEFAULT 0 CHECK (dropped >= 0),
    reports     INTEGER NOT NULL DEFAULT 0 CHECK (reports >= 0),
    last_upload INTEGER NOT NULL
) WITHOUT ROWID;

-- Device-seconds of running an image version and crashes of it, per hour.
CREATE TABLE telemetry_usage (
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id),
    component      TEXT    NOT NULL,
    image_version  TEXT    NOT NULL,
    hour           INTEGER NOT NULL,
    device_seconds INTEGER NOT NULL DEFAULT 0,
    crashes        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, component, hour, image_version)
) WITHOUT ROWID;

-- The same, all time, per image version; first_seen orders the versions of a component (a version's
-- predecessor is the one first seen before it).
CREATE TABLE telemetry_versions (
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id),
    component      TEXT    NOT NULL,
    image_version  TEXT    NOT NULL,
    first_seen     INTEGER NOT NULL,
    device_seconds INTEGER NOT NULL DEFAULT 0,
    crashes        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, component, image_version)
) WITHOUT ROWID;

-- The fleet per hour: device-seconds (once per heartbeat, whatever the number of images), crashes, and device-
-- hours with at least one crash (crash_hours, counted once per device and hour through telemetry_crash_hours).
CREATE TABLE telemetry_fleet (
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id),
    hour           INTEGER NOT NULL,
    device_seconds INTEGER NOT NULL DEFAULT 0,
    crashes        INTEGER NOT NULL DEFAULT 0,
    crash_hours    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, hour)
) WITHOUT ROWID;

CREATE TABLE telemetry_crash_hours (
    tenant_id INTEGER NOT NULL,
    hour      INTEGER NOT NULL,
    device_id TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, hour, device_id)
) WITHOUT ROWID;
CREATE INDEX telemetry_crash_hours_by_hour ON telemetry_crash_hours (hour);

-- Emerging problems, raised once per condition (tenant, kind, subject): kind new_bucket (subject: the bucket
-- id) or rate_regression (subject: "<component>@<image_version>").
CREATE TABLE failure_flags (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('new_bucket', 'rate_regression')),
    subject          TEXT    NOT NULL,
    bucket_id        INTEGER REFERENCES failure_buckets (id),
    component        TEXT    NOT NULL,
    image_version    TEXT,
    previous_version TEXT,
    detail           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(detail)),
    created_at       INTEGER NOT NULL,
    UNIQUE (tenant_id, kind, subject)
);
CREATE INDEX failure_flags_by_tenant ON failure_flags (tenant_id, id);
