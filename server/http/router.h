/* router: what a route is (method, path pattern, auth kind, minimum role, body kind, body limit,
 * handler) and how a request finds its route. The table itself is the daemon's (server/routes.c);
 * the HTTP layer gets it from http_start, so it never includes a handler. */
#ifndef AEGIS_ROUTER_H
#define AEGIS_ROUTER_H

#include "api.h"
#include "proto_event.h"
#include "proto_telemetry.h"

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
    BODY_STREAM,        /* any bytes, handed to the handler's sink as they arrive (api.h) */
};

enum body_limit {
    LIMIT_DEFAULT,   /* config max_body_bytes */
    LIMIT_IMPORT,    /* config import_max_bytes */
    LIMIT_EVIDENCE,  /* ROUTER_EVIDENCE_MAX_BYTES: device attestation bodies (docs/protocol.md 3) */
    LIMIT_TELEMETRY, /* ROUTER_TELEMETRY_MAX_BYTES: telemetry uploads (docs/telemetry.md 1) */
    LIMIT_IMAGE,     /* config image_max_bytes: update images */
    LIMIT_STATUS,    /* ROUTER_STATUS_MAX_BYTES: update status reports (docs/update.md 6) */
};

#define ROUTER_EVIDENCE_MAX_BYTES PROTO_EVIDENCE_BODY_MAX
#define ROUTER_TELEMETRY_MAX_BYTES PROTO_TEL_BODY_MAX
/* A status report's fields fit in well under 1 KiB; a device that loops pays for little parsing. */
#define ROUTER_STATUS_MAX_BYTES 4096

struct route {
    const char *method;
    const char *pattern; /* literal segments and "{name}" segments */
    enum auth_kind auth;
    enum role min_role;
    enum body_kind body;
    enum body_limit limit;
    api_handler handler;
};

/* Finds the route of table[0..n) for method and path, filling params with the {x} segments (decoded
 * as-is, each at most API_PARAM_MAX bytes). Returns the route index, ROUTER_NOT_FOUND, or
 * ROUTER_BAD_METHOD with the allowed methods ("GET, POST") in allow. */
#define ROUTER_NOT_FOUND (-1)
#define ROUTER_BAD_METHOD (-2)
int router_match(const struct route *table, size_t n, const char *method, const char *path,
                 char params[][API_PARAM_MAX + 1], char *allow, size_t allowlen);

/* A request's id, answered in X-Request-Id and written as req= on each log line of the request:
 * the client's own X-Request-Id (incoming, may be NULL) when it is 1..ROUTER_REQID_MAX bytes of
 * [A-Za-z0-9._:-] (so a proxy's or a client's id ties their logs to ours, and nothing else can
 * reach a log line or a header), else 16 random hex digits. */
#define ROUTER_REQID_MAX 64
void router_request_id(const char *incoming, char out[ROUTER_REQID_MAX + 1]);

#endif
