/* REST handlers for attestation policy and records (docs/api.md "Attestation"): the tenant's
 * reference values (app stage; the platform's bootloader and os values are listed read-only),
 * security minimums, and the attestation records of its devices. */
#include "api_handlers.h"
#include "app.h"
#include "api.h"
#include "api_util.h"
#include "jsonx.h"
#include "proto_fields.h"
#include "store.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

/* --- reference values --- */

void
api_refvals_list(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    if (api_page(r, &pg) != 0)
        return;
    int rc = store_refval_list(r->app->st, r->tenant_id, &pg, &items, next);
    api_reply_list(r, rc, items, next, "reference value");
}

/* A required string field checked by ok(s, len); else a 400 reply with what it must be. */
static int
field(api_req *r, const char *key, int (*ok)(const char *, size_t), const char *must,
      const char **out)
{
    const json_t *v = json_object_get(r->json, key);
    if (!json_is_string(v) || !ok(json_string_value(v), json_string_length(v))) {
        char err[API_ERR_LEN];
        snprintf(err, sizeof(err), "field '%s' is required and must be %s", key, must);
        api_invalid(r, err);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Body {"stage"?: "app", "component", "version", "svn", "digest"}. Returns 0, or -1 with a 400
 * reply set. */
static int
parse_refval(api_req *r, struct store_measurement *m)
{
    static const char *const keys[] = {"stage", "component", "version", "svn", "digest", NULL};
    char err[API_ERR_LEN];
    const json_t *stage;

    if (api_body_object(r, keys) != 0)
        return -1;
    stage = json_object_get(r->json, "stage");
    if (stage != NULL && !(json_is_string(stage) && strcmp(json_string_value(stage), "app") == 0 &&
                           json_string_length(stage) == 3)) {
        api_invalid(r, "field 'stage' must be \"app\": bootloader and os values are the "
                       "platform's (aegisctl refvals add)");
        return -1;
    }
    m->stage = "app";
    if (field(r, "component", proto_component_ok, "1 to 64 characters of [a-z0-9._-]",
              &m->component) != 0 ||
        field(r, "version", proto_version_ok, "1 to 32 printable ASCII characters", &m->version) !=
            0 ||
        field(r, "digest", proto_digest_hex_ok, "64 lower-case hex characters", &m->digest) != 0)
        return -1;
    if (jsonx_int(r->json, "svn", 1, 0, 0, PROTO_SVN_MAX, &m->svn, NULL, err, sizeof(err)) != 0) {
        api_invalid(r, err);
        return -1;
    }
    return 0;
}

void
api_refvals_create(api_req *r)
{
    struct store_measurement m;
    json_t *obj = NULL;
    if (parse_refval(r, &m) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_refval_add(r->app->st, r->tenant_id, &m, &a, &obj);
    if (rc == STORE_CONFLICT) {
        api_error(r, 409, "conflict", "a reference value for %s %s exists already", m.component,
                  m.version);
        return;
    }
    api_reply_store(r, rc, 201, obj, "tenant");
}

void
api_refvals_delete(api_req *r)
{
    int64_t id;
    if (api_param_id(r, 0, "reference value", &id) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_refval_delete(r->app->st, r->tenant_id, id, &a);
    api_reply_store(r, rc, 204, NULL, "reference value");
}

/* --- security minimums --- */

/* The {component} path parameter. Returns 0, or -1 with 400 bad_request set. */
static int
component_param(api_req *r, const char **component)
{
    const char *s = r->params[0];
    if (!proto_component_ok(s, strlen(s))) {
        api_error(r, 400, "bad_request", "component must be 1 to 64 characters of [a-z0-9._-]");
        return -1;
    }
    *component = s;
    return 0;
}

void
api_minimums_list(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    if (api_page(r, &pg) != 0)
        return;
    int rc = store_minimum_list(r->app->st, r->tenant_id, &pg, &items, next);
    api_reply_list(r, rc, items, next, "security minimum");
}

void
api_minimums_set(api_req *r)
{
    static const char *const keys[] = {"min_svn", NULL};
    const char *component;
    char err[API_ERR_LEN];
    int64_t min_svn = 0;
    json_t *obj = NULL;

    if (component_param(r, &component) != 0 || api_body_object(r, keys) != 0)
        return;
    if (jsonx_int(r->json, "min_svn", 1, 0, 0, PROTO_SVN_MAX, &min_svn, NULL, err, sizeof(err)) !=
        0) {
        api_invalid(r, err);
        return;
    }
    struct store_actor a = api_actor(r);
    int rc = store_minimum_set(r->app->st, r->tenant_id, component, min_svn, &a, &obj);
    api_reply_store(r, rc, 200, obj, "tenant");
}

void
api_minimums_delete(api_req *r)
{
    const char *component;
    if (component_param(r, &component) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_minimum_delete(r->app->st, r->tenant_id, component, &a);
    api_reply_store(r, rc, 204, NULL, "security minimum");
}

/* --- attestation records --- */

void
api_device_attestations(api_req *r)
{
    api_device_page(r, store_attestation_list_device);
}

void
api_device_certificate(api_req *r)
{
    const char *id;
    json_t *cert = NULL, *out = NULL;
    if (api_param_device(r, &id) != 0)
        return;
    int rc = store_device_certificate(r->app->st, r->tenant_id, id, &cert);
    if (rc == STORE_OK &&
        (out = json_pack("{s:s, s:o}", "device_id", id, "certificate", cert)) == NULL)
        rc = STORE_ERR;
    api_reply_store(r, rc, 200, out, "device");
}

void
api_attestations_list(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    const char *result = api_query(r, "result");

    if (result != NULL && strcmp(result, "pass") != 0 && strcmp(result, "fail") != 0) {
        api_error(r, 400, "bad_request", "result must be pass or fail");
        return;
    }
    if (api_page(r, &pg) != 0)
        return;
    int rc = store_attestation_list(r->app->st, r->tenant_id, result, &pg, &items, next);
    api_reply_list(r, rc, items, next, "attestation");
}
