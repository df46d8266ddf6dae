/* rest: a client of the manufacturer REST API (docs/api.md) over libcurl, shared by aegisctl and
 * the device simulator. One keep-alive connection per client; TLS verification always on, https
 * only, no redirects; the bearer token only ever in the Authorization header (wiped when closed);
 * JSON bodies in and out; every response bounded in size and time. Not for the device, which has
 * its own transport behind the HAL. */
#ifndef AEGIS_REST_H
#define AEGIS_REST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct rest rest;

struct rest_opts {
    const char *base;       /* "https://host:port" without a trailing slash (copied) */
    const char *cafile;     /* PEM file of trusted CAs, or NULL for the system's */
    const char *token;      /* the API token (copied into the header, wiped on close) */
    const char *user_agent; /* or NULL for none */
    long timeout_s;         /* connect and whole-request timeout, > 0 */
    size_t max_response;    /* largest response body accepted, > 0 */
};

/* Return codes; the message goes to err. */
enum rest_rc {
    REST_OK = 0,
    REST_LOCAL = -1,   /* out of memory, URL too long, body not encodable, libcurl setup */
    REST_CONN = -2,    /* connection, TLS or transfer failure (err: libcurl's text) */
    REST_TLS = -3,     /* the server's certificate could not be verified, or the CA file not used */
    REST_TOO_BIG = -4, /* the response is larger than max_response */
    REST_BAD_JSON = -5, /* a 2xx response that is not JSON (err: the parser's text) */
    REST_WRITE = -6,    /* rest_stream could not write to its file (errno as left by the write) */
};

/* One response. status is 0 when none came. body is the raw body (NUL-terminated, NULL when empty);
 * json the parsed body: always for a 2xx answer with a body, when it parses for an error (>= 400).
 * Both owned by the reply: rest_reply_free wipes and frees them (a body may hold a new token). */
struct rest_reply {
    long status;
    char *body;
    size_t len;
    json_t *json;
};

/* Makes a client. Returns REST_OK with *out (rest_close it), or REST_LOCAL with err set. */
int rest_open(const struct rest_opts *o, rest **out, char *err, size_t errlen);
void rest_close(rest *r);

/* The base URL given to rest_open. */
const char *rest_base(const rest *r);

/* method path (appended to the base; a query string already percent-encoded) with body (may be
 * NULL) sent as compact JSON. Returns REST_OK whenever an HTTP answer came, whatever its status
 * (see rep->status), else a negative code with err set (rep->status set for REST_BAD_JSON). rep is
 * always initialised: free it with rest_reply_free. */
int rest_request(rest *r, const char *method, const char *path, const json_t *body,
                 struct rest_reply *rep, char *err, size_t errlen);

/* GET path, the body of a 2xx answer written to out as it arrives (no overall timeout or size cap,
 * but a stall of timeout_s is an error); the body of any other answer kept (up to 64 KiB) in rep
 * like rest_request's. *bytes gets the bytes written to out. Returns REST_OK when the transfer
 * completed, REST_WRITE, REST_CONN / REST_TLS (err set), or REST_LOCAL. */
int rest_stream(rest *r, const char *path, FILE *out, struct rest_reply *rep, uint64_t *bytes,
                char *err, size_t errlen);

/* POST path with the size bytes read from in as an application/octet-stream body, streamed (never
 * whole in memory); the answer as rest_request's (no overall timeout, but a stall of timeout_s is
 * an error). */
int rest_upload(rest *r, const char *path, FILE *in, uint64_t size, struct rest_reply *rep,
                char *err, size_t errlen);

void rest_reply_free(struct rest_reply *rep);

/* The "error" and "message" strings of an error reply ({"error": code, "message": text}), or
 * NULL. */
const char *rest_error_code(const struct rest_reply *rep);
const char *rest_error_message(const struct rest_reply *rep);

/* Appends "?key=value" or "&key=value" to q (qlen bytes, holding a NUL-terminated query so far),
 * percent-encoding value (RFC 3986 unreserved characters stay). Returns 0, or -1 when it does not
 * fit (q unchanged). */
int rest_query_add(char *q, size_t qlen, const char *key, const char *value);

#endif
