/* The interface between the HTTP layer (http.c, routes.c) and the REST handlers (api_*.c).
 *
 * A handler receives an api_req whose body is already size-checked and, for JSON routes, parsed
 * into r->json (an object), and whose caller is already authenticated and authorised for the
 * route's minimum role. It must set exactly one response with api_reply*, api_error* or
 * api_store_error. Handlers never touch SQL: they call store_* only. The response is freed by the
 * HTTP layer. */
#ifndef AEGIS_API_H
#define AEGIS_API_H

#include "auth.h"
#include "config.h"
#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct signer;
struct metrics;
struct devauth;
struct devauth_identity;
struct ratelimit;
struct ingest;

/* Long-lived daemon state shared by all requests (read-only after start, or internally
 * synchronised). */
struct app {
    const struct config *cfg;
    store *st;
    struct signer *sg;
    struct metrics *metrics;
    struct devauth *devauth;
    /* attestation challenges and attempts per client address (NULL: no limit) */
    struct ratelimit *challenge_rl;
    /* telemetry uploads per device (NULL: no limit) */
    struct ratelimit *telemetry_rl;
    /* the telemetry writer (ingest.h); NULL: uploads answer 503 */
    struct ingest *ingest;
};

#define API_MAX_PARAMS 2
#define API_PARAM_MAX 128

/* The reader of a streaming reply (api_reply_stream): writes up to max bytes of the body at offset
 * pos into buf and returns their number (> 0), API_STREAM_END after the last byte, or
 * API_STREAM_ERROR to cut the connection (the client sees a truncated body). Called from the
 * connection's thread, one call at a time. */
typedef ssize_t (*api_stream_read)(void *ctx, uint64_t pos, char *buf, size_t max);
#define API_STREAM_END ((ssize_t)-1)
#define API_STREAM_ERROR ((ssize_t)-2)

typedef struct api_req {
    struct app *app;
    const char *method;
    const char *path;  /* without the query string */
    const char *route; /* the matched route pattern, e.g. "/v1/products/{id}" */
    char params[API_MAX_PARAMS][API_PARAM_MAX + 1]; /* the {x} segments of the path, in order */
    const char *body;
    size_t body_len;
    json_t *json; /* parsed body for JSON routes, else NULL (borrowed) */

    /* The authenticated caller (token routes). */
    int64_t tenant_id;
    int64_t token_id;
    enum role role;
    char actor[40]; /* "token:<id>", for store_actor */

    /* The authenticated device (AUTH_DEVICE routes), else NULL. tenant_id is set to its tenant. */
    const struct devauth_identity *device;

    void *conn;    /* the libmicrohttpd connection, for api_query */
    char peer[46]; /* the client's IP address (text), "" when unknown */

    /* Response, owned by the request. */
    int status;
    json_t *resp;
    char *resp_text;
    size_t resp_len;
    const char *resp_ctype;
    const char *err_code; /* the "error" of an error reply, for the request log */
    int retry_after;      /* > 0: sent as a Retry-After header (seconds), e.g. with a 429 */
    /* a streaming reply (api_reply_stream), owned by the request until the response takes it */
    api_stream_read stream_read;
    void (*stream_free)(void *ctx);
    void *stream_ctx;
} api_req;

typedef void (*api_handler)(api_req *r);

/* Query-string argument, or NULL. Borrowed from the connection. */
const char *api_query(api_req *r, const char *key);
/* Integer query argument in [min, max]: 1 and *out when present, 0 when absent, -1 when malformed
 * (a 400 reply is then set). */
int api_query_i64(api_req *r, const char *key, int64_t min, int64_t max, int64_t *out);
/* Parses ?limit= (1..1000, default 100) and ?cursor= (<= 128 bytes). -1 with a 400 reply set when
 * bad. */
int api_page(api_req *r, struct store_page *pg);

/* Deferred replies, for work finished by another thread (e.g. the ingest writer's group commit):
 * the handler calls api_defer and returns without replying; the connection is suspended (its thread
 * serves others) until api_deferred_reply completes it, from any thread, exactly once. A request is
 * deferred at most once. The daemon's drain on SIGTERM waits for deferred requests too. */
typedef struct api_deferred api_deferred;
api_deferred *api_defer(api_req *r);
/* Completes a deferred request: status, body (stolen, may be NULL), and Retry-After seconds when >
 * 0. */
void api_deferred_reply(api_deferred *d, int status, json_t *body, int retry_after);

/* Replies with body (stolen; NULL for an empty body, e.g. 204). */
void api_reply(api_req *r, int status, json_t *body);
/* Replies {"items": items, "next_cursor": next or null} (items stolen). */
void api_reply_page(api_req *r, json_t *items, const char *next_cursor);
/* Replies with a body of unknown length made as the client reads it (chunked transfer): read (see
 * api_stream_read) pulls the body piece by piece, so a large export never sits in memory. ctx is
 * stolen: free_ctx (may be NULL) is called once, when the response is done or dropped. Must be the
 * handler's last reply call. Implemented in http.c. */
void api_reply_stream(api_req *r, int status, const char *ctype, api_stream_read read,
                      void (*free_ctx)(void *ctx), void *ctx);
/* Replies with a raw body (text is malloc'd, stolen). */
void api_reply_text(api_req *r, int status, const char *ctype, char *text, size_t len);
/* Replies {"error": code, "message": ...}. */
void api_error(api_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* As api_error, with the fields of extra (stolen, may be NULL) added to the error object. */
void api_error_with(api_req *r, int status, const char *code, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Maps a STORE_* code to a reply: NOTFOUND 404 not_found "<what> not found", CONFLICT 409 conflict,
 * INVALID 400 bad_request, ERR 500 internal. */
void api_store_error(api_req *r, int rc, const char *what);
/* Checks r->json has only the allowed keys (NULL-terminated); else replies 400 validation_failed,
 * -1. */
int api_body_keys(api_req *r, const char *const *allowed);
/* Replies 400 validation_failed with msg. */
void api_invalid(api_req *r, const char *msg);
/* The store_actor of the caller. */
struct store_actor api_actor(const api_req *r);

/* --- handlers (api_tenant.c, api_products.c, api_devices.c) --- */
void api_tenant_get(api_req *r);
void api_tokens_create(api_req *r);
void api_tokens_list(api_req *r);
void api_tokens_revoke(api_req *r);
void api_audit_list(api_req *r);

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

void api_devices_import(api_req *r);
void api_devices_list(api_req *r);
void api_devices_get(api_req *r);
void api_devices_claim(api_req *r);
void api_devices_update(api_req *r);
void api_devices_block(api_req *r);
void api_devices_unblock(api_req *r);

/* --- attestation: manufacturer endpoints (api_attest.c) --- */
void api_refvals_list(api_req *r);
void api_refvals_create(api_req *r);
void api_refvals_delete(api_req *r);
void api_minimums_list(api_req *r);
void api_minimums_set(api_req *r);
void api_minimums_delete(api_req *r);
void api_device_attestations(api_req *r);
void api_attestations_list(api_req *r);

/* --- attestation: device endpoints without a client certificate (dev_attest.c) --- */
void dev_attest_challenge(api_req *r);
void dev_attest(api_req *r);

/* --- failure reporting (docs/telemetry.md): the device upload (dev_telemetry.c, mutual TLS) and
 * the manufacturer's views (api_failures.c) --- */
void dev_telemetry(api_req *r);
void api_failure_buckets(api_req *r);
void api_failure_bucket_get(api_req *r);
void api_device_reports(api_req *r);
void api_crash_rates(api_req *r);
void api_failures_export(api_req *r);
void api_failure_flags(api_req *r);

#endif
