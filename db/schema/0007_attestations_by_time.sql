-- Aegis schema, version 7: attestation-record retention finds old records through an index by
-- time. It looked at the 1,000 oldest records by id, so records stamped in the future (a clock that
-- jumped forward and back) at the low ids could hold up the deletion of every other old record until
-- they aged out. An attestation is made once per device boot, so the index costs little.
CREATE INDEX attestations_by_time ON attestations (created_at);
