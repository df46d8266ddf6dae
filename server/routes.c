#include "routes.h"

#include "api_deploy.h"
#include "api_handlers.h"
#include "api_openapi.h"
#include "api_session.h"
#include "api_stats.h"
#include "api_ui.h"
#include "dev_handlers.h"
#include "dev_update.h"

#define R(m, p, a, role, b, l, h)                                                                  \
    {                                                                                              \
        m, p, a, role, b, l, h                                                                     \
    }

static const struct route table[] = {
    /* operational */
    R("GET", "/healthz", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_healthz),
    R("GET", "/readyz", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_readyz),
    R("GET", "/metrics", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_metrics),
    R("GET", "/openapi.yaml", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_openapi),
    /* the dashboard (docs/api.md "Dashboard" and "Sessions"); the session routes authenticate
     * themselves */
    R("GET", "/ui/", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_ui_index),
    R("GET", "/ui/{file}", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_ui_file),
    R("GET", "/ui/{dir}/{file}", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_ui_file),
    R("POST", "/v1/session", AUTH_NONE, ROLE_NONE, BODY_JSON, LIMIT_DEFAULT, api_session_create),
    R("GET", "/v1/session", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_session_get),
    R("DELETE", "/v1/session", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_session_delete),
    /* tenant, tokens, audit */
    R("GET", "/v1/tenant", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT, api_tenant_get),
    R("POST", "/v1/tokens", AUTH_TOKEN, ROLE_ADMIN, BODY_JSON, LIMIT_DEFAULT, api_tokens_create),
    R("GET", "/v1/tokens", AUTH_TOKEN, ROLE_ADMIN, BODY_NONE, LIMIT_DEFAULT, api_tokens_list),
    R("DELETE", "/v1/tokens/{id}", AUTH_TOKEN, ROLE_ADMIN, BODY_NONE, LIMIT_DEFAULT,
      api_tokens_revoke),
    R("GET", "/v1/audit", AUTH_TOKEN, ROLE_ADMIN, BODY_NONE, LIMIT_DEFAULT, api_audit_list),
    /* update images (docs/api.md "Images") */
    R("POST", "/v1/images", AUTH_TOKEN, ROLE_OPERATOR, BODY_STREAM, LIMIT_IMAGE, api_images_upload),
    R("GET", "/v1/images", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT, api_images_list),
    R("GET", "/v1/images/{sha256}", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_images_get),
    R("DELETE", "/v1/images/{sha256}", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_images_delete),
    /* TUF repositories (docs/api.md "Update repositories"); the files as devices see them */
    R("GET", "/v1/ota/keys", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT, api_ota_keys),
    R("PUT", "/v1/ota/root", AUTH_TOKEN, ROLE_ADMIN, BODY_JSON, LIMIT_DEFAULT, api_ota_root_put),
    R("GET", "/v1/ota/targets/proposal", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_ota_proposal),
    R("PUT", "/v1/ota/targets", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_IMPORT,
      api_ota_targets_put),
    R("GET", "/v1/ota/status", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT, api_ota_status),
    R("GET", "/v1/ota/repo/{file}", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      dev_tuf_file),
    R("GET", "/v1/ota/director/{file}", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      dev_tuf_director_file),
    /* deployments and staged rollouts (docs/api.md "Deployments") */
    R("POST", "/v1/deployments", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_DEFAULT,
      api_deployments_create),
    R("GET", "/v1/deployments", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_deployments_list),
    R("GET", "/v1/deployments/{id}", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_deployments_get),
    R("POST", "/v1/deployments/{id}/pause", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON_OPTIONAL,
      LIMIT_DEFAULT, api_deployments_pause),
    R("POST", "/v1/deployments/{id}/resume", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON_OPTIONAL,
      LIMIT_DEFAULT, api_deployments_resume),
    R("POST", "/v1/deployments/{id}/abort", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON_OPTIONAL,
      LIMIT_DEFAULT, api_deployments_abort),
    R("POST", "/v1/deployments/{id}/advance", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON_OPTIONAL,
      LIMIT_DEFAULT, api_deployments_advance),
    /* products */
    R("POST", "/v1/products", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_DEFAULT,
      api_products_create),
    R("GET", "/v1/products", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT, api_products_list),
    R("GET", "/v1/products/{id}", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_products_get),
    R("PATCH", "/v1/products/{id}", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_DEFAULT,
      api_products_update),
    R("DELETE", "/v1/products/{id}", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_products_delete),
    /* device groups */
    R("POST", "/v1/device-groups", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_DEFAULT,
      api_groups_create),
    R("GET", "/v1/device-groups", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_groups_list),
    R("GET", "/v1/device-groups/{id}", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_groups_get),
    R("PATCH", "/v1/device-groups/{id}", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_DEFAULT,
      api_groups_update),
    R("DELETE", "/v1/device-groups/{id}", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_groups_delete),
    /* devices */
    R("POST", "/v1/devices/import", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_IMPORT,
      api_devices_import),
    R("GET", "/v1/devices", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT, api_devices_list),
    /* before /v1/devices/{id}, which would take "stats" for an id */
    R("GET", "/v1/devices/stats", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_device_stats),
    R("GET", "/v1/devices/{id}", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_devices_get),
    R("PATCH", "/v1/devices/{id}", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_DEFAULT,
      api_devices_update),
    R("POST", "/v1/devices/{id}/claim", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON_OPTIONAL,
      LIMIT_DEFAULT, api_devices_claim),
    R("POST", "/v1/devices/{id}/transfer", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_devices_transfer),
    R("POST", "/v1/devices/{id}/unclaim", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_devices_unclaim),
    R("DELETE", "/v1/devices/{id}", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_devices_delete),
    R("POST", "/v1/devices/{id}/block", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_devices_block),
    R("POST", "/v1/devices/{id}/unblock", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_devices_unblock),
    R("GET", "/v1/devices/{id}/attestations", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_device_attestations),
    R("GET", "/v1/devices/{id}/certificate", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_device_certificate),
    R("GET", "/v1/devices/{id}/reports", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_device_reports),
    R("GET", "/v1/devices/{id}/update-attempts", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_device_update_attempts),
    /* attestation policy and records */
    R("GET", "/v1/reference-values", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_refvals_list),
    R("POST", "/v1/reference-values", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON, LIMIT_DEFAULT,
      api_refvals_create),
    R("DELETE", "/v1/reference-values/{id}", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE, LIMIT_DEFAULT,
      api_refvals_delete),
    R("GET", "/v1/security-minimums", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_minimums_list),
    R("PUT", "/v1/security-minimums/{component}", AUTH_TOKEN, ROLE_OPERATOR, BODY_JSON,
      LIMIT_DEFAULT, api_minimums_set),
    R("DELETE", "/v1/security-minimums/{component}", AUTH_TOKEN, ROLE_OPERATOR, BODY_NONE,
      LIMIT_DEFAULT, api_minimums_delete),
    R("GET", "/v1/attestations", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_attestations_list),
    R("GET", "/v1/attestations/stats", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_attest_stats),
    /* failure reporting (docs/telemetry.md) */
    R("GET", "/v1/failures/buckets", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_failure_buckets),
    R("GET", "/v1/failures/buckets/{id}", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_failure_bucket_get),
    R("GET", "/v1/failures/crash-rates", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_crash_rates),
    R("GET", "/v1/failures/export", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_failures_export),
    R("GET", "/v1/failures/flags", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_failure_flags),
    R("GET", "/v1/failures/fleet", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_fleet_series),
    R("GET", "/v1/failures/bucket-series", AUTH_TOKEN, ROLE_READER, BODY_NONE, LIMIT_DEFAULT,
      api_bucket_series),
    /* device attestation: TLS without a client certificate (docs/protocol.md section 3) */
    R("POST", "/v1/device/attest/challenge", AUTH_NONE, ROLE_NONE, BODY_JSON, LIMIT_EVIDENCE,
      dev_attest_challenge),
    R("POST", "/v1/device/attest", AUTH_NONE, ROLE_NONE, BODY_JSON, LIMIT_EVIDENCE, dev_attest),
    /* device endpoints, mutual TLS */
    R("GET", "/v1/device/whoami", AUTH_DEVICE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, dev_whoami),
    R("GET", "/v1/device/trust-bundle", AUTH_DEVICE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_trust_bundle),
    R("POST", "/v1/device/telemetry", AUTH_DEVICE, ROLE_NONE, BODY_JSON, LIMIT_TELEMETRY,
      dev_telemetry),
    R("GET", "/v1/device/tuf/{file}", AUTH_DEVICE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_tuf_file),
    R("GET", "/v1/device/director/{file}", AUTH_DEVICE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_tuf_director_file),
    R("GET", "/v1/device/images/{sha256}", AUTH_DEVICE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_image_get),
    R("HEAD", "/v1/device/images/{sha256}", AUTH_DEVICE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_image_get),
    R("GET", "/v1/device/tuf/targets/{component}/{file}", AUTH_DEVICE, ROLE_NONE, BODY_NONE,
      LIMIT_DEFAULT, dev_tuf_target),
    /* the recovery path: a grant from a refused attestation (docs/update.md 8), no certificate */
    R("GET", "/v1/device/recovery/tuf/{file}", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_recovery_tuf_file),
    R("GET", "/v1/device/recovery/director/{file}", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_recovery_director_file),
    R("GET", "/v1/device/recovery/images/{sha256}", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_recovery_image),
    R("HEAD", "/v1/device/recovery/images/{sha256}", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_recovery_image),
    R("GET", "/v1/device/update", AUTH_DEVICE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT,
      dev_update_check),
    R("POST", "/v1/device/update/status", AUTH_DEVICE, ROLE_NONE, BODY_JSON, LIMIT_STATUS,
      dev_update_status),
};

const struct route *
routes_table(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}
