-- Aegis schema, version 4: fewer index writes per stored report (bench/ingest).
-- A bucket keeps the ids of its 10 newest reports in samples, instead of an index over every crash
-- report by bucket: the bucket detail reads its samples by primary key. samples is the ids, newest
-- first, each as 19 decimal digits (zero-padded) with no separator, so that the writer adds a
-- group's ids with one concatenation and truncation. Ids of reports deleted by retention are
-- skipped when read. Retention deletes the oldest reports in id order (ids grow with
-- received_at), so the index by age goes too.
ALTER TABLE failure_buckets ADD COLUMN samples TEXT NOT NULL DEFAULT '' CHECK (length(samples) % 19 = 0);
UPDATE failure_buckets SET samples = coalesce((
    SELECT group_concat(printf('%019d', id), '') FROM (
        SELECT id FROM telemetry_reports WHERE bucket_id = failure_buckets.id ORDER BY id DESC LIMIT 10)), '');
DROP INDEX telemetry_reports_by_bucket;
DROP INDEX telemetry_reports_by_age;
