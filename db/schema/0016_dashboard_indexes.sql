-- Aegis schema, version 16: the dashboard's figures read at fleet scale (issue 17; measured on the browser
-- test's seeded fleet of 100,000 devices with a week of daily attestations and 500,000 reports).
--  * Attestation pass rate by period (GET /v1/attestations/stats) read every record of the tenant through
--    attestations_by_tenant and looked each up in the table (~0.8 s for 700,000 records): a covering index by
--    time reads only the window's.
--  * A device's current certificate (the newest passed attestation since its claim: GET /v1/devices/{id}/
--    certificate, and GET /v1/devices/stats for every device) was found through attestations_by_result, i.e.
--    by walking every passed record of the tenant for each device (quadratic in the fleet): a partial index
--    of the passes by device makes it one seek, and covers the certificate's columns.
--  * A bucket's crashes per day (GET /v1/failures/bucket-series, the sparklines) read every report of the
--    tenant in the window (~4 s for 500,000): an index of the crash reports only, by bucket and time (0004
--    dropped the index by bucket and id to save pages per group commit; this one holds crashes only, not the
--    heartbeats that dominate, and a burst of one bucket's crashes lands in one page).
CREATE INDEX attestations_by_period ON attestations (tenant_id, created_at, result, reason);
-- (result is a column too, though the WHERE fixes it: SQLite counts an index as covering only when it holds
-- every column the query names.)
CREATE INDEX attestations_passed ON attestations (tenant_id, device_id, id, created_at, cert_serial, cert_not_after,
                                                  result) WHERE result = 'pass';
CREATE INDEX telemetry_reports_crash_days ON telemetry_reports (bucket_id, received_at, tenant_id)
    WHERE bucket_id IS NOT NULL;
