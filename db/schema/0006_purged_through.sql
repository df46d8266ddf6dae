-- Aegis schema, version 6: a report is stored once, also after retention deleted it. Retention
-- records per device the highest report_id it deleted (purged_through); a report at it or up to
-- 2^20 below it is answered "duplicate" instead of being stored, and counted in the kept
-- aggregates, a second time (a device that comes back after months with a batch whose answer it
-- never got). Further below is a device that started its IDs again lower down (docs/telemetry.md).
-- Devices whose reports were deleted before this version start at 0.
ALTER TABLE telemetry_devices ADD COLUMN purged_through INTEGER NOT NULL DEFAULT 0
    CHECK (purged_through >= 0);
