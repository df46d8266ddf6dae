/* routes: the whole HTTP surface of aegisd in one table (method, path pattern, auth kind, minimum
 * role, body kind, body limit, handler), so every route gets the same authentication and limits by
 * construction. */
#ifndef AEGIS_ROUTES_H
#define AEGIS_ROUTES_H

#include "api.h"

#include <stddef.h>

enum auth_kind {
    AUTH_NONE,   /* operational endpoints */
    AUTH_TOKEN,  /* manufacturer API: bearer token with at least min_role */
    AUTH_DEVICE, /* device API: mTLS client certificate of a device */
};

enum body_kind {
    BODY_NONE,          /* a body is refused (413 if non-empty) */
    BODY_JSON,          /* a JSON object is required */
    BODY_JSON_OPTIONAL, /* a JSON object, or no body at all */
};

enum body_limit {
    LIMIT_DEFAULT,   /* config max_body_bytes */
    LIMIT_IMPORT,    /* config import_max_bytes */
    LIMIT_EVIDENCE,  /* ROUTES_EVIDENCE_MAX_BYTES: device attestation bodies (docs/protocol.md 3) */
    LIMIT_TELEMETRY, /* ROUTES_TELEMETRY_MAX_BYTES: telemetry uploads (docs/telemetry.md 1) */
};

#define ROUTES_EVIDENCE_MAX_BYTES (64 * 1024)
#define ROUTES_TELEMETRY_MAX_BYTES (256 * 1024)

struct route {
    const char *method;
    const char *pattern; /* literal segments and "{name}" segments */
    enum auth_kind auth;
    enum role min_role;
    enum body_kind body;
    enum body_limit limit;
    api_handler handler;
};

/* The table and its length. */
const struct route *routes_table(size_t *n);

/* Finds the route for method and path, filling params with the {x} segments (decoded as-is, each at
 * most API_PARAM_MAX bytes). Returns the route index, ROUTES_NOT_FOUND, or ROUTES_BAD_METHOD with
 * the allowed methods ("GET, POST") in allow. */
#define ROUTES_NOT_FOUND (-1)
#define ROUTES_BAD_METHOD (-2)
int routes_match(const char *method, const char *path, char params[][API_PARAM_MAX + 1],
                 char *allow, size_t allowlen);

/* Device identity handlers (dev_identity.c), mTLS. */
void dev_whoami(api_req *r);
void dev_trust_bundle(api_req *r);

/* Operational handlers (api_ops.c). */
void api_healthz(api_req *r);
void api_readyz(api_req *r);
void api_metrics(api_req *r);

#endif
