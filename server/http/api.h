/* api: the request/reply interface between the HTTP layer (http.c, api_req.c) and every handler
 * (server/api/, server/device/).
 *
 * A handler receives an api_req whose body is already size-checked and, for JSON routes, parsed
 * into r->json (an object), and whose caller is already authenticated and authorised for the
 * route's minimum role. It must set exactly one response with api_reply*, api_error* or
 * api_store_error. Handlers never touch SQL: they call store_* only. The response is freed by the
 * HTTP layer. */
#ifndef AEGIS_API_H
#define AEGIS_API_H

#include "auth.h"
#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct app;
struct devauth_identity;

#define API_MAX_PARAMS 2
/* The longest path segment a route takes: 129 for a TUF consistent target name, <sha256>.<sha256>.
 */
#define API_PARAM_MAX 136
/* Extra response headers a handler may set (api_reply_header), and the longest value. */
#define API_MAX_RESP_HEADERS 6
#define API_RESP_HEADER_MAX 256
/* Bytes a file reply (api_reply_file) reads from disk at once: the memory each download holds, and
 * what one send hands to TLS (four 16 KiB records). bench/update/download.py measured it. */
#define API_FILE_BLOCK (64 * 1024)

/* The reader of a streaming reply (api_reply_stream): writes up to max bytes of the body at offset
 * pos into buf and returns their number (> 0), API_STREAM_END after the last byte, or
 * API_STREAM_ERROR to cut the connection (the client sees a truncated body). Called from the
 * connection's thread, one call at a time. */
typedef ssize_t (*api_stream_read)(void *ctx, uint64_t pos, char *buf, size_t max);
#define API_STREAM_END ((ssize_t)-1)
#define API_STREAM_ERROR ((ssize_t)-2)

struct api_req;

/* A request body taken as it arrives (routes with BODY_STREAM, api_stream_body). data gets each
 * piece in order and returns 0, or -1 after answering r (the rest of the body is then read and
 * dropped); done answers r once the whole body is in; abort releases ctx when the request ends
 * otherwise (body over the route's limit: 413; client gone). Exactly one of done and abort is
 * called, in the connection's thread. */
struct api_body_sink {
    int (*data)(void *ctx, struct api_req *r, const char *p, size_t n);
    void (*done)(void *ctx, struct api_req *r);
    void (*abort)(void *ctx);
    void *ctx;
};

typedef struct api_req {
    const struct app *app; /* read-only: main.c fills it before http_start */
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
    /* extra headers (api_reply_header): static names, copied values */
    struct {
        const char *name;
        char value[API_RESP_HEADER_MAX];
    } resp_headers[API_MAX_RESP_HEADERS];
    int n_resp_headers;
    /* a streaming reply (api_reply_stream), owned by the request until the response takes it */
    api_stream_read stream_read;
    void (*stream_free)(void *ctx);
    void *stream_ctx;
    /* a file reply (api_reply_file): owned by the request until the response takes it */
    int file_fd; /* valid only when has_file */
    int has_file;
    uint64_t file_offset, file_len;
    /* a streaming body (api_stream_body): set while the sink takes the body */
    struct api_body_sink sink;
    int sinking;
} api_req;

typedef void (*api_handler)(api_req *r);

/* Query-string argument, or NULL. Borrowed from the connection. */
const char *api_query(api_req *r, const char *key);
/* Every value of a repeatable query argument (?tag=a&tag=b), in order, into vals (borrowed from
 * the connection): returns their number, which is max + 1 when there are more than max. */
size_t api_query_all(api_req *r, const char *key, const char **vals, size_t max);
/* Request header (case-insensitive name), or NULL. Borrowed from the connection. */
const char *api_header(api_req *r, const char *name);
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

/* Adds a response header to whatever reply r gets: name must be a static string (e.g. "ETag"),
 * value is copied (at most API_RESP_HEADER_MAX - 1 bytes, no CR or LF). Returns 0, or -1 when the
 * value is refused or API_MAX_RESP_HEADERS are already set (nothing is added). */
int api_reply_header(api_req *r, const char *name, const char *value);
/* 1 when the request's If-None-Match names etag (a quoted entity tag such as "\"v3-9f2c\"", weak
 * "W/" prefixes compared weakly, as RFC 9110 13.1.2 says for If-None-Match) or is "*", else 0. */
int api_if_none_match(api_req *r, const char *etag);

/* Replies with body (stolen; NULL for an empty body, e.g. 204). */
void api_reply(api_req *r, int status, json_t *body);
/* Replies {"items": items, "next_cursor": next or null} (items stolen). */
void api_reply_page(api_req *r, json_t *items, const char *next_cursor);
/* Replies with a body of unknown length made as the client reads it (chunked transfer): read (see
 * api_stream_read) pulls the body piece by piece, so a large export never sits in memory. ctx is
 * stolen: free_ctx (may be NULL) is called once, when the response is done or dropped. Must be the
 * handler's last reply call. Implemented in http.c. */
/* For BODY_STREAM routes: the handler runs as soon as the headers are in (r->body is NULL) and
 * either answers (a refusal: the body is read and dropped) or hands the body to sink (copied). */
void api_stream_body(api_req *r, const struct api_body_sink *sink);
void api_reply_stream(api_req *r, int status, const char *ctype, api_stream_read read,
                      void (*free_ctx)(void *ctx), void *ctx);
/* Replies with len bytes of the regular file fd starting at offset, read from disk as the client
 * takes them (never whole in memory: one block of API_FILE_BLOCK bytes per reply). fd is stolen:
 * closed when the response is done or dropped. A file that turns out shorter than offset + len cuts
 * the connection (the client sees a truncated body). Implemented in api_file.c. */
void api_reply_file(api_req *r, int status, int fd, uint64_t offset, uint64_t len,
                    const char *ctype);

/* What a request's Range header asks of a representation (RFC 9110 14). */
enum api_range_kind {
    API_RANGE_WHOLE = 0,         /* no usable Range: answer the whole representation (200) */
    API_RANGE_PART = 1,          /* one satisfiable range *first..*last (inclusive): 206 */
    API_RANGE_UNSATISFIABLE = 2, /* a range that starts at or past the end: 416 */
};
/* Parses a Range value h (may be NULL) against a representation of size bytes. Only one byte range
 * is honoured ("bytes=a-b", "bytes=a-", "bytes=-n", b clipped to size - 1); several ranges, another
 * unit or a malformed value are API_RANGE_WHOLE (RFC 9110 14.2 lets a server ignore them). */
enum api_range_kind api_range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last);
/* api_range_parse of the request's Range, applied only to a GET and only when an If-Range is absent
 * or names etag (a quoted strong entity tag) exactly; otherwise API_RANGE_WHOLE. */
enum api_range_kind api_range(api_req *r, uint64_t size, const char *etag, uint64_t *first,
                              uint64_t *last);
/* The whole file reply of a representation with a strong entity tag: Accept-Ranges: bytes and ETag
 * on every answer; 304 when If-None-Match names etag; else the Range (api_range) decides between
 * 200 with the whole file, 206 with Content-Range: bytes a-b/size, and 416 (a JSON error) whose
 * Content-Range names only the size (RFC 9110 15.5.17). fd (stolen) is the open file of exactly
 * size bytes. */
void api_reply_file_ranged(api_req *r, int fd, uint64_t size, const char *etag, const char *ctype);
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

#endif
