/* The reply and argument helpers of api.h, shared by every handler. */
#include "api.h"
#include "jsonx.h"
#include "util.h"

#include <assert.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
api_query(api_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_all {
    const char *key;
    const char **vals;
    size_t max, n;
};

static enum MHD_Result
query_all_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct query_all *q = cls;
    (void)kind;
    if (strcmp(key, q->key) != 0)
        return MHD_YES;
    if (q->n == q->max) {
        q->n++; /* one too many: stop */
        return MHD_NO;
    }
    q->vals[q->n++] = value != NULL ? value : "";
    return MHD_YES;
}

size_t
api_query_all(api_req *r, const char *key, const char **vals, size_t max)
{
    struct query_all q = {key, vals, max, 0};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_all_one, &q);
    return q.n;
}

const char *
api_header(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int
api_reply_header(api_req *r, const char *name, const char *value)
{
    size_t n = strnlen(value, API_RESP_HEADER_MAX);
    if (r->n_resp_headers >= API_MAX_RESP_HEADERS || n >= API_RESP_HEADER_MAX ||
        strpbrk(value, "\r\n") != NULL)
        return -1;
    r->resp_headers[r->n_resp_headers].name = name;
    memcpy(r->resp_headers[r->n_resp_headers].value, value, n + 1);
    r->n_resp_headers++;
    return 0;
}

/* The opaque part of an entity tag: without a "W/" prefix. */
static const char *
etag_opaque(const char *t, size_t *len)
{
    if (*len >= 2 && t[0] == 'W' && t[1] == '/') {
        *len -= 2;
        return t + 2;
    }
    return t;
}

int
api_if_none_match(api_req *r, const char *etag)
{
    const char *h = api_header(r, "If-None-Match");
    if (h == NULL || etag == NULL)
        return 0;
    size_t want_len = strlen(etag);
    const char *want = etag_opaque(etag, &want_len);
    /* A comma-separated list of entity tags; commas cannot occur inside a quoted tag. */
    while (*h != '\0') {
        while (*h == ' ' || *h == '\t' || *h == ',')
            h++;
        size_t n = strcspn(h, ",");
        size_t end = n;
        while (end > 0 && (h[end - 1] == ' ' || h[end - 1] == '\t'))
            end--;
        if (end == 1 && h[0] == '*')
            return 1;
        const char *tag = etag_opaque(h, &end);
        if (end > 0 && end == want_len && memcmp(tag, want, end) == 0)
            return 1;
        h += n;
    }
    return 0;
}

int
api_query_i64(api_req *r, const char *key, int64_t min, int64_t max, int64_t *out)
{
    const char *v = api_query(r, key);
    if (v == NULL)
        return 0;
    if (util_parse_i64(v, min, max, out) != 0) {
        api_error(r, 400, "bad_request", "query argument '%s' must be an integer from %lld to %lld",
                  key, (long long)min, (long long)max);
        return -1;
    }
    return 1;
}

int
api_page(api_req *r, struct store_page *pg)
{
    int64_t limit = 100;
    if (api_query_i64(r, "limit", 1, 1000, &limit) < 0)
        return -1;
    const char *cursor = api_query(r, "cursor");
    if (cursor != NULL && (strlen(cursor) == 0 || strlen(cursor) > 128)) {
        api_error(r, 400, "bad_request", "malformed cursor");
        return -1;
    }
    pg->limit = (int)limit;
    pg->cursor = cursor;
    return 0;
}

void
api_reply(api_req *r, int status, json_t *body)
{
    json_decref(r->resp);
    r->resp = body;
    r->status = status;
}

void
api_reply_page(api_req *r, json_t *items, const char *next_cursor)
{
    json_t *page = json_object();
    json_object_set_new(page, "items", items);
    json_object_set_new(page, "next_cursor",
                        next_cursor != NULL && next_cursor[0] != '\0' ? json_string(next_cursor)
                                                                      : json_null());
    api_reply(r, 200, page);
}

void
api_stream_body(api_req *r, const struct api_body_sink *sink)
{
    assert(sink != NULL && sink->data != NULL && sink->done != NULL && sink->abort != NULL);
    r->sink = *sink;
    r->sinking = 1;
}

void
api_reply_text(api_req *r, int status, const char *ctype, char *text, size_t len)
{
    free(r->resp_text);
    r->resp_text = text;
    r->resp_len = len;
    r->resp_ctype = ctype;
    r->status = status;
}

static void
verror(api_req *r, int status, const char *code, json_t *extra, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    util_utf8_repair(msg); /* a quoted client string may have been cut inside a character */
    json_t *e = extra != NULL ? extra : json_object();
    json_object_set_new(e, "error", json_string(code));
    json_object_set_new(e, "message", json_string(msg));
    r->err_code = code;
    api_reply(r, status, e);
}

void
api_error(api_req *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(r, status, code, NULL, fmt, ap);
    va_end(ap);
}

void
api_error_with(api_req *r, int status, const char *code, json_t *extra, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(r, status, code, extra, fmt, ap);
    va_end(ap);
}

void
api_store_error(api_req *r, int rc, const char *what)
{
    switch (rc) {
    case STORE_NOTFOUND:
        api_error(r, 404, "not_found", "%s not found", what);
        break;
    case STORE_CONFLICT:
        api_error(r, 409, "conflict", "%s conflicts with an existing one or is in use", what);
        break;
    case STORE_INVALID:
        api_error(r, 400, "bad_request", "invalid argument for %s", what);
        break;
    default:
        api_error(r, 500, "internal", "internal error");
        break;
    }
}

int
api_body_keys(api_req *r, const char *const *allowed)
{
    char err[128];
    if (jsonx_only_keys(r->json, allowed, err, sizeof(err)) != 0) {
        api_invalid(r, err);
        return -1;
    }
    return 0;
}

void
api_invalid(api_req *r, const char *msg)
{
    api_error(r, 400, "validation_failed", "%s", msg);
}

struct store_actor
api_actor(const api_req *r)
{
    struct store_actor a = {r->tenant_id, r->actor};
    return a;
}
