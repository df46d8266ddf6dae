-- Aegis schema, version 10: each tenant's device root (docs/protocol.md section 4). The service root
-- now signs only the service's TLS certificate; a tenant's issuing CAs are signed by a root of that
-- tenant alone, whose certificate heads the tenant's trust bundle. NULL until `aegisctl pki init` (or
-- `pki rotate`) makes it: tenants made before this version keep the service root's issuing CAs
-- until then.
ALTER TABLE tenants ADD COLUMN device_root_pem TEXT
    CHECK (device_root_pem IS NULL OR length(device_root_pem) BETWEEN 1 AND 16384);
