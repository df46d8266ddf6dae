-- Aegis schema, version 5: a device's "dropped" count is added once per upload, also for an upload
-- none of whose reports could be stored (all rejected), which the "all duplicates" rule of version 3
-- could not tell from its retry. The count of an upload is added only when the upload's highest
-- report_id is above dropped_through, the highest report_id of the last upload whose count was
-- added; a retry (the same reports) is never above it.
ALTER TABLE telemetry_devices ADD COLUMN dropped_through INTEGER NOT NULL DEFAULT 0
    CHECK (dropped_through >= 0);
