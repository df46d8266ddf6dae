/* http_reply: a request's answer as libmicrohttpd's response (http_int.h), and streaming replies
 * (api.h). */
#include "http_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNAVAILABLE_RETRY_S 5 /* Retry-After of a 503 that has no figure of its own */
/* Most bytes a streaming reply's reader is asked for at once. */
#define STREAM_BLOCK (64 * 1024)

/* The response of a streaming reply (api_reply_stream): the reader runs in this connection's thread
 * as the client takes the body (chunked), and the response owns the reader's context from here
 * on. */
static struct MHD_Response *
stream_response(api_req *r, const char **ctype)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_BLOCK, r->stream_read, r->stream_ctx, r->stream_free);
    if (resp != NULL) {
        r->stream_read = NULL;
        r->stream_ctx = NULL;
        *ctype = r->resp_ctype;
    }
    return resp;
}

void
api_reply_stream(api_req *r, int status, const char *ctype, api_stream_read read,
                 void (*free_ctx)(void *ctx), void *ctx)
{
    json_decref(r->resp);
    r->resp = NULL;
    free(r->resp_text);
    r->resp_text = NULL;
    if (r->stream_free != NULL && r->stream_ctx != NULL)
        r->stream_free(r->stream_ctx);
    r->stream_read = read;
    r->stream_free = free_ctx;
    r->stream_ctx = ctx;
    r->resp_ctype = ctype;
    r->status = status;
}

void
http_track_state(struct request *q, enum http_conn_state st)
{
    if (q->track != NULL)
        http_conn_set(q->track, st);
}

enum MHD_Result
http_queue_reply(struct request *q, struct MHD_Connection *c)
{
    api_req *r = &q->r;
    http_track_state(q, HTTP_CONN_BUSY); /* a slow reader is bounded by connection_timeout */
    char *buf = NULL;
    size_t len = 0;
    const char *ctype = "application/json";
    if (r->resp != NULL) {
        buf = json_dumps(r->resp, JSON_COMPACT);
        len = buf ? strlen(buf) : 0;
        if (buf == NULL)
            r->status = 500;
    } else if (r->resp_text != NULL) {
        buf = r->resp_text;
        len = r->resp_len;
        r->resp_text = NULL;
        ctype = r->resp_ctype;
    }
    struct MHD_Response *resp;
    if (buf == NULL && r->has_file) {
        resp = http_file_response(r);
        ctype = r->resp_ctype;
    } else if (buf == NULL && r->stream_read != NULL) {
        resp = stream_response(r, &ctype);
    } else {
        resp = MHD_create_response_from_buffer(len, buf != NULL ? buf : (void *)"",
                                               buf != NULL ? MHD_RESPMEM_MUST_FREE
                                                           : MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL) {
        free(buf);
        return MHD_NO;
    }
    if (len > 0 || r->status != 204)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    /* no-store unless the handler says otherwise (the dashboard's files: no-cache) */
    int own_cache = 0;
    for (int i = 0; i < r->n_resp_headers; i++)
        own_cache |= strcasecmp(r->resp_headers[i].name, MHD_HTTP_HEADER_CACHE_CONTROL) == 0;
    if (!own_cache)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Request-Id", q->req_id);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, q->allow);
    if (q->close_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    /* Every 503 says when to come back (telemetry.md §2), also those without a figure of their own
     * (a drain, a database that is not reachable). */
    if (r->status == 503 && r->retry_after <= 0)
        r->retry_after = UNAVAILABLE_RETRY_S;
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    for (int i = 0; i < r->n_resp_headers; i++)
        MHD_add_response_header(resp, r->resp_headers[i].name, r->resp_headers[i].value);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    q->answered = 1;
    return ret;
}
