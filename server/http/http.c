#include "http.h"
#include "http_int.h"

#include "app.h"
#include "http_conns.h"
#include "http_guard.h"
#include "http_hs.h"
#include "http_tlskey.h"
#include "http_unescape.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "util.h"

#include <arpa/inet.h>
#include <assert.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* TLS 1.2 and 1.3 only, server's cipher preference; in TLS 1.2 only ECDHE key exchange (forward
 * secrecy) with AEAD ciphers (no CBC, no SHA-1 MAC). TLS 1.3's suites are all of that kind. X25519
 * first among the groups: with %SERVER_PRECEDENCE GnuTLS 3.7 otherwise prefers P-256, and a client
 * that sent only an X25519 key share (OpenSSL's and libcurl's default) is sent a HelloRetryRequest:
 * one more round trip and a second key exchange for every new connection. */
#define TLS_PRIORITIES                                                                             \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"            \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-ALL:+GROUP-X25519:"  \
    "+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:%SERVER_PRECEDENCE"
/* Bounds request heads (libmicrohttpd's per-connection pool), which 0.9.75 zeroes whole after each
 * request, so an idle connection keeps all of it resident: 64 KiB cost 76 KiB per idle connection,
 * 10 KiB costs 20 (bench/conns). Device request heads are under 1 KiB. */
#define HEADER_POOL_BYTES (10 * 1024)
/* How far past the route's limit a body is read (and dropped) to answer 413 after it, before the
 * connection is cut instead. */
#define DISCARD_MAX (4 * 1024 * 1024)

static size_t
route_limit(const struct http_server *h, int route)
{
    const struct route *t = h->routes;
    if (route < 0)
        return (size_t)h->app->cfg->max_body_bytes;
    if (t[route].body == BODY_NONE)
        return 0;
    if (t[route].limit == LIMIT_IMPORT)
        return (size_t)h->app->cfg->import_max_bytes;
    if (t[route].limit == LIMIT_EVIDENCE)
        return ROUTER_EVIDENCE_MAX_BYTES;
    if (t[route].limit == LIMIT_TELEMETRY)
        return ROUTER_TELEMETRY_MAX_BYTES;
    if (t[route].limit == LIMIT_IMAGE)
        return (size_t)h->app->cfg->image_max_bytes;
    if (t[route].limit == LIMIT_STATUS)
        return ROUTER_STATUS_MAX_BYTES;
    return (size_t)h->app->cfg->max_body_bytes;
}

static void
peer_name(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)len);
}

static int
content_type_is_json(struct MHD_Connection *c)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (ct == NULL)
        return 0;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';');
}

/* Parses the body for JSON routes into r->json. Sets a 4xx reply on failure. */
static int
parse_body(struct request *q, const struct route *rt)
{
    api_req *r = &q->r;
    if (rt->body == BODY_NONE || rt->body == BODY_STREAM ||
        (rt->body == BODY_JSON_OPTIONAL && q->len == 0))
        return 0;
    if (q->len == 0) {
        api_error(r, 400, "invalid_json", "a JSON object body is required");
        return -1;
    }
    if (!content_type_is_json(r->conn)) {
        api_error(r, 415, "unsupported_media_type", "Content-Type must be application/json");
        return -1;
    }
    json_error_t jerr;
    r->json = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &jerr);
    if (r->json == NULL) {
        api_error(r, 400, "invalid_json", "invalid JSON at line %d column %d: %.80s", jerr.line,
                  jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(r->json)) {
        api_error(r, 400, "invalid_json", "the body must be a JSON object");
        return -1;
    }
    return 0;
}

static void
dispatch(struct http_server *h, struct request *q)
{
    const struct route *t = h->routes;
    api_req *r = &q->r;
    if (q->route == ROUTER_NOT_FOUND) {
        api_error(r, 404, "not_found", "no such endpoint");
        return;
    }
    if (q->route == ROUTER_BAD_METHOD) {
        api_error(r, 405, "method_not_allowed", "allowed: %s", q->allow);
        return;
    }
    assert(q->route >= 0 && (size_t)q->route < h->nroutes);
    const struct route *rt = &t[q->route];
    r->route = rt->pattern;
    if (rt->auth == AUTH_TOKEN && http_authenticate_token(q, rt) != 0)
        return;
    if (rt->auth == AUTH_DEVICE && http_authenticate_device(q) != 0)
        return;
    if (parse_body(q, rt) != 0)
        return;
    (void)h;
    rt->handler(r);
    /* A deferred request's reply belongs to the thread that completes it, maybe already; a
     * streaming body's to the sink's done. */
    if (r->status == 0 && !q->deferred && !r->sinking)
        api_error(r, 500, "internal", "the handler produced no response");
}

static struct request *
request_new(struct http_server *h, struct MHD_Connection *c, const char *url, const char *method)
{
    struct request *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->start_ns = util_mono_ns();
    q->server = h;
    q->r.app = h->app;
    q->r.conn = c;
    q->r.method = method;
    q->r.path = url;
    q->r.route = "unmatched";
    q->route =
        router_match(h->routes, h->nroutes, method, url, q->r.params, q->allow, sizeof(q->allow));
    if (q->route >= 0)
        q->r.route = h->routes[q->route].pattern;
    q->limit = route_limit(h, q->route);
    peer_name(c, q->peer, sizeof(q->peer));
    memcpy(q->r.peer, q->peer, sizeof(q->r.peer));
    router_request_id(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id"), q->req_id);
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_ctx *ctx = sc != NULL ? sc->socket_context : NULL;
    q->track = ctx != NULL ? &ctx->track : NULL;
    return q;
}

/* The declared Content-Length, or -1 when absent. */
static long long
declared_length(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    int64_t v;
    if (cl == NULL || util_parse_i64(cl, 0, INT64_MAX, &v) != 0)
        return -1;
    return (long long)v;
}

static void
reply_too_large(struct request *q)
{
    if (q->limit == 0)
        api_error(&q->r, 413, "payload_too_large", "this endpoint takes no request body");
    else
        api_error(&q->r, 413, "payload_too_large", "request body exceeds %zu bytes", q->limit);
}

/* Ends a streaming body that will not be completed (api.h api_body_sink). */
static void
stream_abort(struct request *q)
{
    if (!q->r.sinking)
        return;
    q->r.sinking = 0;
    q->r.sink.abort(q->r.sink.ctx);
}

/* A piece of a BODY_STREAM route's body: to the handler's sink while it takes it, else dropped
 * (the handler refused it, or it grew past the limit: 413). -1 when the connection must be cut. */
static int
stream_piece(struct request *q, const char *data, size_t n)
{
    if (q->r.sinking) {
        if (q->len + n > q->limit) {
            stream_abort(q);
            q->too_large = 1;
        } else if (q->r.sink.data(q->r.sink.ctx, &q->r, data, n) != 0) {
            stream_abort(q); /* it answered r */
        }
    }
    if (q->r.sinking)
        q->len += n;
    else
        q->discarded += n;
    return q->discarded > DISCARD_MAX ? -1 : 0;
}

static int
append_body(struct request *q, const char *data, size_t n)
{
    if (q->len + n > q->limit)
        return -1;
    if (q->len + n > q->cap) {
        size_t ncap = q->cap ? q->cap : 4096;
        while (ncap < q->len + n)
            ncap *= 2;
        if (ncap > q->limit)
            ncap = q->limit;
        char *nb = realloc(q->body, ncap);
        if (nb == NULL)
            return -1;
        q->body = nb;
        q->cap = ncap;
    }
    memcpy(q->body + q->len, data, n);
    q->len += n;
    return 0;
}

/* After a handler deferred its reply: suspend the connection, unless the reply already came. */
static enum MHD_Result
suspend_deferred(struct http_server *h, struct request *q, struct MHD_Connection *c)
{
    pthread_mutex_lock(&h->defer_lock);
    int done = q->defer_state == DEFER_DONE;
    if (!done) {
        q->defer_state = DEFER_SUSPENDED;
        MHD_suspend_connection(c);
    }
    pthread_mutex_unlock(&h->defer_lock);
    return done ? http_queue_reply(q, c) : MHD_YES;
}

/* libmicrohttpd calls the access handler again once a suspended connection is resumed. */
static enum MHD_Result
resume_deferred(struct http_server *h, struct request *q, struct MHD_Connection *c)
{
    pthread_mutex_lock(&h->defer_lock);
    int done = q->defer_state == DEFER_DONE;
    pthread_mutex_unlock(&h->defer_lock);
    return done ? http_queue_reply(q, c) : MHD_YES;
}

api_deferred *
api_defer(api_req *r)
{
    struct request *q = (struct request *)(void *)r; /* r is the first member */
    assert(!q->deferred); /* a request is deferred at most once (api.h) */
    q->deferred = 1;
    return (api_deferred *)q;
}

void
api_deferred_reply(api_deferred *d, int status, json_t *body, int retry_after)
{
    struct request *q = (struct request *)(void *)d;
    struct http_server *h = q->server;
    /* The handler's thread reads the reply only after it sees DEFER_DONE under the lock. */
    api_reply(&q->r, status, body);
    q->r.retry_after = retry_after;
    pthread_mutex_lock(&h->defer_lock);
    assert(q->deferred && q->defer_state != DEFER_DONE); /* completed exactly once */
    int suspended = q->defer_state == DEFER_SUSPENDED;
    q->defer_state = DEFER_DONE;
    if (suspended)
        MHD_resume_connection(q->r.conn);
    pthread_mutex_unlock(&h->defer_lock);
}

/* Whether a body over the limit is answered before it is read. Otherwise it is read and dropped
 * first: a client that writes its whole body before it reads the answer (Python's http.client,
 * many device stacks) sees a reset instead of the 413 when the connection closes on unread data.
 * Answered at once: a client waiting for "100 Continue", which sends no body until told, and a
 * body too large to be worth reading. */
static int
refuse_before_body(struct MHD_Connection *c, const struct request *q, long long cl)
{
    const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0)
        return 1;
    return (unsigned long long)cl > (unsigned long long)q->limit + DISCARD_MAX;
}

/* GET /readyz, which a drain answers as the operations listener does (error "draining"). */
static int
is_ready_probe(const struct http_server *h, const struct request *q)
{
    return q->route >= 0 && strcmp(h->routes[q->route].pattern, "/readyz") == 0;
}

/* The access handler's first call for a request: its headers are in, its body not yet. Returns
 * MHD_YES to go on reading, or the result of queueing an early answer. */
static enum MHD_Result
on_headers(struct http_server *h, struct request *q, struct MHD_Connection *c, const char *method,
           const char *version)
{
    char why[96];
    atomic_fetch_add(&h->active, 1);
    if (atomic_load(&h->quiescing)) {
        /* A keep-alive client's new request during the drain: everything behind the handlers
         * (e.g. the ingest writer) may already be gone. */
        q->close_after = 1;
        api_error(&q->r, 503, is_ready_probe(h, q) ? "draining" : "unavailable",
                  "the service is shutting down");
        return http_queue_reply(q, c);
    }
    if (http_guard_check(c, method, version, why, sizeof(why)) != 0) {
        q->close_after = 1;
        api_error(&q->r, 400, "bad_request", "%s", why);
        return http_queue_reply(q, c);
    }
    long long cl = declared_length(c);
    if (cl > (long long)q->limit) {
        if (refuse_before_body(c, q, cl)) {
            /* The unread body must not be taken for the next request. */
            q->close_after = 1;
            reply_too_large(q);
            return http_queue_reply(q, c);
        }
        q->too_large = 1;
    }
    if (!q->too_large && q->route >= 0 && h->routes[q->route].body == BODY_STREAM) {
        /* The handler takes the body as it arrives, or has answered (then it is dropped). */
        q->streaming = 1;
        dispatch(h, q);
        assert(!q->deferred);
    }
    return MHD_YES;
}

/* A thread serves many connections' requests in turn, so each call on a request's behalf sets the
 * log context (log.h) for its span only. */
static void
log_ctx_enter(const struct request *q)
{
    log_ctx_set(q->req_id, q->r.device != NULL ? q->device.device_id : NULL);
}

/* The access handler's work (on_access). The response is queued only once the whole body has
 * arrived (never on the first call), so libmicrohttpd keeps the connection alive; the exceptions
 * are requests refused from their headers (on_headers), whose connection is closed. */
static enum MHD_Result
access_step(struct http_server *h, struct request *q, struct MHD_Connection *c, const char *upload,
            size_t *upload_size)
{
    if (q->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->deferred)
        return resume_deferred(h, q, c);
    if (*upload_size > 0) {
        if (q->track != NULL)
            http_conn_body(q->track, *upload_size);
        if (q->streaming) {
            int cut = stream_piece(q, upload, *upload_size);
            *upload_size = 0;
            return cut ? MHD_NO : MHD_YES;
        }
        /* libmicrohttpd cannot queue a reply in the middle of a body, so the rest of an oversized
         * body is read and dropped, up to a bound past which the connection is cut. */
        if (q->too_large || append_body(q, upload, *upload_size) != 0) {
            q->too_large = 1;
            q->discarded += *upload_size;
            if (q->len + q->discarded > q->limit + DISCARD_MAX)
                return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    http_track_state(q, HTTP_CONN_BUSY);
    if (q->too_large) {
        reply_too_large(q);
    } else if (q->r.sinking) {
        q->r.sinking = 0;
        q->r.sink.done(q->r.sink.ctx, &q->r);
        if (q->r.status == 0)
            api_error(&q->r, 500, "internal", "the handler produced no response");
    } else if (!q->streaming) {
        dispatch(h, q);
    }
    if (q->deferred)
        return suspend_deferred(h, q, c);
    return http_queue_reply(q, c);
}

/* libmicrohttpd's access handler: a new request's headers, then its body and end (access_step). */
static enum MHD_Result
on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
          const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct http_server *h = cls;
    struct request *q = *con_cls;
    enum MHD_Result ret;
    if (q == NULL) {
        q = request_new(h, c, url, method);
        if (q == NULL)
            return MHD_NO;
        *con_cls = q;
        http_track_state(q, HTTP_CONN_BODY);
        log_ctx_enter(q);
        ret = on_headers(h, q, c, method, version);
    } else {
        log_ctx_enter(q);
        ret = access_step(h, q, c, upload, upload_size);
    }
    log_ctx_clear();
    return ret;
}

static void
request_free(struct request *q)
{
    stream_abort(q); /* a body the client never finished */
    if (q->r.stream_ctx != NULL && q->r.stream_free != NULL)
        q->r.stream_free(q->r.stream_ctx); /* a stream reply that was never sent */
    http_file_drop(&q->r);                 /* a file reply that was never sent */
    json_decref(q->r.json);
    json_decref(q->r.resp);
    free(q->r.resp_text);
    free(q->body);
    free(q);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *h = cls;
    struct request *q = *con_cls;
    (void)c;
    if (q == NULL)
        return;
    uint64_t dur = util_mono_ns() - q->start_ns;
    http_track_state(q, HTTP_CONN_IDLE);
    int status = q->r.status;
    if (!h->plain) /* its route indexes are not the metrics' */
        metrics_observe(h->app->metrics, q->route >= 0 ? (size_t)q->route : h->nroutes, status,
                        dur);
    char method[LOG_QUOTE_BUF], peer[LOG_QUOTE_BUF];
    log_ctx_enter(q);
    log_info("msg=request method=%s route=%s status=%d dur_ms=%.2f tenant=%lld token=%lld "
             "bytes_in=%zu peer=%s%s%s%s",
             log_quote(method, sizeof(method), q->r.method), q->r.route, status, (double)dur / 1e6,
             (long long)q->r.tenant_id, (long long)q->r.token_id, q->len,
             log_quote(peer, sizeof(peer), q->peer), q->r.err_code ? " error=" : "",
             q->r.err_code ? q->r.err_code : "",
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    request_free(q);
    log_ctx_clear();
    *con_cls = NULL;
    atomic_fetch_sub(&h->active, 1);
}

static const struct sockaddr *
peer_address(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ai != NULL ? ai->client_addr : NULL;
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_ctx *ctx = calloc(1, sizeof(*ctx));
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        assert(fi != NULL);
        *socket_context = ctx;
        if (ctx == NULL) {
            /* An untracked connection would escape every deadline: refuse it. */
            shutdown(fi->connect_fd, SHUT_RDWR);
        } else if (!http_conns_add(h->conns, &ctx->track, fi->connect_fd, peer_address(c))) {
            metrics_connection_refused(h->app->metrics);
        }
        /* libmicrohttpd has made the TLS session but not yet run its handshake. Without tickets
         * a reconnecting device pays a full handshake each time. */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci != NULL && ci->tls_session != NULL) {
            gnutls_session_t s = (gnutls_session_t)ci->tls_session;
            /* No trust list is loaded, so the request names no CA: a client picks its device
             * certificate itself (each tenant has its own device root); devauth.c verifies it. */
            gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
            if (h->ticket_key.data != NULL)
                gnutls_session_ticket_enable_server(s, &h->ticket_key);
            if (h->hs != NULL && ctx != NULL)
                http_hs_attach(h->hs, &ctx->hs, c, fi->connect_fd, s);
        }
    } else if (*socket_context != NULL) {
        struct conn_ctx *ctx = *socket_context;
        http_conns_remove(h->conns, &ctx->track);
        http_hs_detach(&ctx->hs);
        free(ctx);
        *socket_context = NULL;
    }
    if (!h->plain)
        metrics_connection(h->app->metrics, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512], quoted[LOG_QUOTE_BUF];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* libmicrohttpd's messages can quote what a client sent. */
    log_debug("msg=libmicrohttpd detail=%s", log_quote(quoted, sizeof(quoted), msg));
}

static void
ticket_key_free(struct http_server *h)
{
    if (h->ticket_key.data == NULL)
        return;
    gnutls_memset(h->ticket_key.data, 0, h->ticket_key.size);
    gnutls_free(h->ticket_key.data);
    h->ticket_key.data = NULL;
}

/* Frees what server_new and http_start made (after libmicrohttpd stopped, or never started). */
static void
server_free(struct http_server *h)
{
    http_hs_stop(h->hs);
    http_conns_stop(h->conns); /* after libmicrohttpd: it removed every connection */
    http_tlskey_free(h->tls);  /* after libmicrohttpd: it joined every thread that handshakes */
    ticket_key_free(h);
    pthread_mutex_destroy(&h->defer_lock);
    free(h);
}

/* The server's state before libmicrohttpd starts, with its connection limits; NULL on error
 * (message in err; listen_fd closed). */
static struct http_server *
server_new(const struct app *app, const struct route *routes, size_t nroutes, int listen_fd,
           int64_t max_connections, char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    struct http_conns_limits lim = {max_connections, cfg->header_timeout_s,
                                    cfg->connection_timeout_s, cfg->min_body_rate,
                                    cfg->per_ip_connections};
    struct http_server *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        close(listen_fd);
        return NULL;
    }
    h->app = app;
    h->quiesced_fd = MHD_INVALID_SOCKET;
    pthread_mutex_init(&h->defer_lock, NULL);
    h->routes = routes;
    h->nroutes = nroutes;
    h->conns = http_conns_start(&lim, err, errlen);
    if (h->conns == NULL) {
        close(listen_fd);
        server_free(h);
        return NULL;
    }
    return h;
}

http_server *
http_start(const struct app *app, const struct route *routes, size_t nroutes, int listen_fd,
           const char *chain_pem, char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    struct http_server *h =
        server_new(app, routes, nroutes, listen_fd, cfg->max_connections, err, errlen);
    if (h == NULL)
        return NULL;
    if (gnutls_session_ticket_key_generate(&h->ticket_key) != GNUTLS_E_SUCCESS)
        h->ticket_key.data = NULL; /* no resumption, full handshakes only */
    h->tls = http_tlskey_new(app->sg, chain_pem, err, errlen);
    if (h->tls == NULL || http_tlskey_serve(h->tls, err, errlen) != 0)
        goto fail;
    if (cfg->event_loop_epoll && (h->hs = http_hs_start(err, errlen)) == NULL)
        goto fail;
    unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : (unsigned)util_ncpu();
    /* epoll by default: poll rescans every connection on each wake-up (the cost of a request
     * grows with idle keep-alive connections, bench/conns). epoll's handshake spin in
     * libmicrohttpd 0.9.75 is avoided by http_hs. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (cfg->event_loop_epoll ? MHD_USE_EPOLL : MHD_USE_POLL);
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_HTTPS_CERT_CALLBACK, http_tlskey_retrieve, MHD_OPTION_HTTPS_PRIORITIES,
        TLS_PRIORITIES, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(cfg->max_connections + HTTP_ACCEPT_SLACK),
        /* no MHD_OPTION_PER_IP_CONNECTION_LIMIT: http_conns keeps per_ip_connections, letting
         * idle connections of the address give way first */
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_UNESCAPE_CALLBACK, http_unescape_cb, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HEADER_POOL_BYTES, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (h->mhd == NULL) {
        snprintf(err, errlen, "cannot start the HTTPS server");
        goto fail;
    }
    return h;
fail:
    close(listen_fd);
    server_free(h);
    return NULL;
}

http_server *
http_start_plain(const struct app *app, const struct route *routes, size_t nroutes, int listen_fd,
                 char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    struct http_server *h =
        server_new(app, routes, nroutes, listen_fd, HTTP_PLAIN_CONNECTIONS, err, errlen);
    if (h == NULL)
        return NULL;
    h->plain = 1;
    h->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
        listen_fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(HTTP_PLAIN_CONNECTIONS + HTTP_ACCEPT_SLACK), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->connection_timeout_s, MHD_OPTION_UNESCAPE_CALLBACK, http_unescape_cb, NULL,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_POOL_BYTES, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (h->mhd == NULL) {
        snprintf(err, errlen, "cannot start the operations listener");
        close(listen_fd);
        server_free(h);
        return NULL;
    }
    return h;
}

void
http_quiesce(http_server *h)
{
    /* The socket is closed only after MHD_stop_daemon: in epoll mode the worker threads take it out
     * of their epoll sets lazily, and libmicrohttpd aborts if it was closed under them. */
    if (h->quiesced_fd != MHD_INVALID_SOCKET)
        return;
    atomic_store(&h->quiescing, 1);
    h->quiesced_fd = MHD_quiesce_daemon(h->mhd);
    /* Stop listening now (new connections are refused) while the descriptor stays valid. */
    if (h->quiesced_fd != MHD_INVALID_SOCKET)
        shutdown(h->quiesced_fd, SHUT_RDWR);
}

int
http_active(http_server *h)
{
    return atomic_load(&h->active);
}

void
http_stop(http_server *h)
{
    if (h == NULL)
        return;
    http_hs_release(h->hs); /* libmicrohttpd aborts on suspended connections at stop */
    MHD_stop_daemon(h->mhd);
    if (h->quiesced_fd != MHD_INVALID_SOCKET)
        close(h->quiesced_fd);
    server_free(h);
}
