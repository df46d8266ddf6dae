/* Small helpers shared by the REST handlers (api_tenant.c, api_products.c, api_devices.c).
 * Header-only: every function is static inline and sets a reply only where its comment says so. */
#ifndef AEGIS_API_UTIL_H
#define AEGIS_API_UTIL_H

#include "api.h"
#include "app.h"
#include "proto_fields.h"
#include "util.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

/* Size of next_cursor buffers given to store_*_list: cursors are at most 128 bytes
 * (docs/api.md). */
#define API_CURSOR_BUF 129
/* Size of the reason buffers given to jsonx_* helpers. */
#define API_ERR_LEN 192

/* Parses path parameter idx as an object id in 1..INT64_MAX. Returns 0, or -1 with 400 bad_request
 * set. */
static inline int
api_param_id(api_req *r, int idx, const char *what, int64_t *out)
{
    if (util_parse_i64(r->params[idx], 1, INT64_MAX, out) == 0)
        return 0;
    api_error(r, 400, "bad_request", "%s id must be an integer from 1 to %lld", what,
              (long long)INT64_MAX);
    return -1;
}

/* Path parameter 0 as a device id (64 lower-case hex characters). Returns 0, or -1 with 400
 * bad_request set. */
static inline int
api_param_device(api_req *r, const char **id)
{
    *id = r->params[0];
    if (proto_digest_hex_ok(*id, strlen(*id)))
        return 0;
    api_error(r, 400, "bad_request", "device id must be 64 lower-case hex characters");
    return -1;
}

/* ?key= as an RFC 3339 UTC time: 1 and *out when present, 0 when absent, -1 with a 400 reply. */
static inline int
api_query_time(api_req *r, const char *key, int64_t *out)
{
    const char *v = api_query(r, key);
    if (v == NULL)
        return 0;
    if (util_parse_rfc3339(v, out) != 0 || *out < 0) {
        api_error(r, 400, "bad_request",
                  "query argument '%s' must be an RFC 3339 UTC time such as "
                  "2026-11-22T10:00:00Z",
                  key);
        return -1;
    }
    return 1;
}

/* Requires a JSON object body with no keys outside allowed (NULL-terminated). Returns 0, or -1 with
 * 400 invalid_json (no body) or validation_failed (unknown key) set. */
static inline int
api_body_object(api_req *r, const char *const *allowed)
{
    if (r->json == NULL || !json_is_object(r->json)) {
        api_error(r, 400, "invalid_json", "the request body must be a JSON object");
        return -1;
    }
    return api_body_keys(r, allowed);
}

/* Replies body (stolen) with status, or 500 internal when building body failed (NULL). Not for
 * 204. */
static inline void
api_reply_built(api_req *r, int status, json_t *body)
{
    if (body == NULL)
        api_error(r, 500, "internal", "out of memory");
    else
        api_reply(r, status, body);
}

/* Finishes a store call that returns one object: on STORE_OK replies status with obj (stolen; NULL
 * for an empty body, e.g. 204), else drops obj and replies api_store_error(r, rc, what). */
static inline void
api_reply_store(api_req *r, int rc, int status, json_t *obj, const char *what)
{
    if (rc == STORE_OK) {
        api_reply(r, status, obj);
        return;
    }
    json_decref(obj);
    api_store_error(r, rc, what);
}

/* Finishes a store_*_list call: on STORE_OK replies the page (items stolen; next "" = last page),
 * else drops items and replies api_store_error(r, rc, what). */
static inline void
api_reply_list(api_req *r, int rc, json_t *items, const char *next, const char *what)
{
    if (rc == STORE_OK) {
        api_reply_page(r, items, next[0] != '\0' ? next : NULL);
        return;
    }
    json_decref(items);
    api_store_error(r, rc, what);
}

/* The store's page of one device's records (store_attestation_list_device,
 * store_device_update_attempts). */
typedef int (*api_device_page_fn)(store *s, int64_t tenant_id, const char *device_id,
                                  const struct store_page *pg, json_t **items, char *next_cursor);

/* GET /v1/devices/{id}/...: the device's page from fn, as a list reply (404 for a device the
 * tenant cannot see). */
static inline void
api_device_page(api_req *r, api_device_page_fn fn)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    const char *id;
    if (api_param_device(r, &id) != 0 || api_page(r, &pg) != 0)
        return;
    int rc = fn(r->app->st, r->tenant_id, id, &pg, &items, next);
    api_reply_list(r, rc, items, next, "device");
}

#endif
