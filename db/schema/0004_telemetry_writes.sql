-- Aegis schema, version 4: fewer pages written per group commit of reports (bench/ingest).
-- A group commit of ~150 crash reports wrote ~230 pages: one per bucket for its counters in the
-- wide failure_buckets rows, one per report in the index by bucket, one per (bucket, device). Now:
--  * the counters that change with every report live in bucket_stats, ~30 bytes a row, so a
--    thousand buckets fit in a few pages; failure_buckets keeps what never changes;
--  * a bucket's samples are a chain: each crash report names the previous stored report of its
--    bucket (prev_in_bucket), and bucket_stats.last_report the newest, so the bucket detail walks
--    10 reports back by primary key instead of an index over every report by bucket; reports that
--    retention deleted end the chain (they are the oldest);
--  * bucket_devices is keyed by device first, so a device's crashes in one commit share a page;
--  * retention finds old reports tenant by tenant through the index by (tenant_id, received_at),
--    so the index by age alone goes.

CREATE TABLE bucket_stats (
    bucket_id          INTEGER PRIMARY KEY REFERENCES failure_buckets (id),
    last_seen          INTEGER NOT NULL,
    count              INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    devices            INTEGER NOT NULL DEFAULT 0 CHECK (devices >= 0),
    devices_first_hour INTEGER NOT NULL DEFAULT 0 CHECK (devices_first_hour >= 0),
    last_report        INTEGER NOT NULL DEFAULT 0 -- id of the newest stored report, 0 when none
);
INSERT INTO bucket_stats (bucket_id, last_seen, count, devices, devices_first_hour, last_report)
    SELECT id, last_seen, count, devices, devices_first_hour,
           coalesce((SELECT max(r.id) FROM telemetry_reports r WHERE r.bucket_id = b.id), 0)
    FROM failure_buckets b;
ALTER TABLE failure_buckets DROP COLUMN last_seen;
ALTER TABLE failure_buckets DROP COLUMN count;
ALTER TABLE failure_buckets DROP COLUMN devices;
ALTER TABLE failure_buckets DROP COLUMN devices_first_hour;

ALTER TABLE telemetry_reports ADD COLUMN prev_in_bucket INTEGER;
UPDATE telemetry_reports SET prev_in_bucket = (
        SELECT max(p.id) FROM telemetry_reports p
        WHERE p.bucket_id = telemetry_reports.bucket_id AND p.id < telemetry_reports.id)
    WHERE id IN (SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY bucket_id ORDER BY id DESC) AS n
        FROM telemetry_reports WHERE bucket_id IS NOT NULL) WHERE n <= 10);
DROP INDEX telemetry_reports_by_bucket;
DROP INDEX telemetry_reports_by_age;

CREATE TABLE bucket_devices_v4 (
    device_id  TEXT    NOT NULL,
    bucket_id  INTEGER NOT NULL REFERENCES failure_buckets (id),
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (device_id, bucket_id)
) WITHOUT ROWID;
INSERT INTO bucket_devices_v4 (device_id, bucket_id, first_seen)
    SELECT device_id, bucket_id, first_seen FROM bucket_devices;
DROP TABLE bucket_devices;
ALTER TABLE bucket_devices_v4 RENAME TO bucket_devices;
