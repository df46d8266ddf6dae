/* api_handlers: the manufacturer REST handlers (server/api/), one line each in the route table
 * (server/routes.c). Each takes an authenticated, size-checked request (api.h) and sets one
 * reply. */
#ifndef AEGIS_API_HANDLERS_H
#define AEGIS_API_HANDLERS_H

#include "api.h"

/* operational (api_ops.c) */
void api_healthz(api_req *r);
void api_readyz(api_req *r);
void api_metrics(api_req *r);

/* tenant, tokens, audit (api_tenant.c) */
void api_tenant_get(api_req *r);
void api_tokens_create(api_req *r);
void api_tokens_list(api_req *r);
void api_tokens_revoke(api_req *r);
void api_audit_list(api_req *r);

/* products and device groups (api_products.c) */
void api_products_create(api_req *r);
void api_products_list(api_req *r);
void api_products_get(api_req *r);
void api_products_update(api_req *r);
void api_products_delete(api_req *r);

void api_groups_create(api_req *r);
void api_groups_list(api_req *r);
void api_groups_get(api_req *r);
void api_groups_update(api_req *r);
void api_groups_delete(api_req *r);

/* devices (api_devices.c) */
void api_devices_import(api_req *r);
void api_devices_list(api_req *r);
void api_devices_get(api_req *r);
void api_devices_claim(api_req *r);
void api_devices_transfer(api_req *r);
void api_devices_update(api_req *r);
void api_devices_block(api_req *r);
void api_devices_unclaim(api_req *r);
void api_devices_delete(api_req *r);
void api_devices_unblock(api_req *r);

/* attestation policy and history (api_attest.c) */
void api_refvals_list(api_req *r);
void api_refvals_create(api_req *r);
void api_refvals_delete(api_req *r);
void api_minimums_list(api_req *r);
void api_minimums_set(api_req *r);
void api_minimums_delete(api_req *r);
void api_device_attestations(api_req *r);
void api_device_certificate(api_req *r);
void api_attestations_list(api_req *r);

/* failure reporting views (api_failures.c, docs/telemetry.md) */
void api_failure_buckets(api_req *r);
void api_failure_bucket_get(api_req *r);
void api_device_reports(api_req *r);
void api_crash_rates(api_req *r);
void api_failures_export(api_req *r);
void api_failure_flags(api_req *r);

/* update images (api_images.c) */
void api_images_upload(api_req *r);
void api_images_list(api_req *r);
void api_images_get(api_req *r);
void api_images_delete(api_req *r);

/* TUF repositories (api_ota.c, docs/api.md "Update repositories") */
void api_ota_keys(api_req *r);
void api_ota_root_put(api_req *r);
void api_ota_proposal(api_req *r);
void api_ota_targets_put(api_req *r);
void api_ota_status(api_req *r);

#endif
