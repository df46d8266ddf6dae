-- Aegis schema, version 4: fewer index writes per stored report (bench/ingest).
-- A bucket keeps the ids of its 10 newest reports (newest first) in samples, updated once per group
-- commit with its counts, instead of an index over every crash report by bucket: the bucket detail
-- reads its samples by primary key. Ids of reports deleted by retention are skipped when read.
-- Retention deletes the oldest reports in id order (ids grow with received_at), so the index by
-- age goes too.
ALTER TABLE failure_buckets ADD COLUMN samples TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(samples));
UPDATE failure_buckets SET samples = (
    SELECT json_group_array(id) FROM (
        SELECT id FROM telemetry_reports WHERE bucket_id = failure_buckets.id ORDER BY id DESC LIMIT 10));
DROP INDEX telemetry_reports_by_bucket;
DROP INDEX telemetry_reports_by_age;
