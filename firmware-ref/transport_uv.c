/* transport_uv: libcurl multi-socket + libuv, the classic pattern (curl's docs/examples/multi-uv.c
 * shape): curl tells us which sockets to watch and when to time out; libuv tells curl when a socket
 * is ready or the timer fired; finished transfers are collected with curl_multi_info_read. */
#include "transport_uv.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_BODY_MAX (1u << 20)
#define EXTRA_HEADERS_MAX 8
#define EXTRA_HEADER_LEN 256

/* A socket curl asked us to watch. */
struct sock {
    uv_poll_t poll; /* poll.data = this */
    curl_socket_t fd;
    struct adev_uvnet *net;
    struct sock *prev, *next; /* net->socks */
};

struct adev_timer {
    uv_timer_t h; /* h.data = this */
    void (*cb)(void *arg);
    void *arg;
    struct adev_uvnet *net;
    struct adev_timer *prev, *next; /* net->timers_live */
};

struct uvtransport {
    adev_transport base; /* first: adev_transport * <-> struct uvtransport * */
    struct adev_uvnet *net;
    CURLSH *share; /* this device's connection cache */
    adev_http_call *calls;
};

struct adev_http_call {
    struct uvtransport *t;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    size_t len, cap, max;
    uint64_t received; /* body bytes accepted: buffered or passed to on_body */
    int too_large;
    int (*on_body)(void *arg, const void *data, size_t len);
    void *on_body_arg;
    int mode; /* with on_body: 0 undecided, 1 streaming (a 2xx), 2 buffering (any other status) */
    char etag[EXTRA_HEADER_LEN], content_range[EXTRA_HEADER_LEN];
    int64_t now;
    adev_http_cb cb;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
    adev_http_call *prev, *next; /* t->calls */
};

struct adev_uvnet {
    adev_timers timers; /* first: adev_timers * <-> struct adev_uvnet * */
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t *curl_timer; /* curl's timeout; freed in its close callback */
    struct sock *socks;
    struct adev_timer *timers_live;
    size_t transports, calls, n_timers;
    uint32_t timeout_ms, connect_timeout_ms;
    size_t body_max;
};

#define LIST_ADD(head, x)                                                                          \
    do {                                                                                           \
        (x)->prev = NULL;                                                                          \
        (x)->next = (head);                                                                        \
        if ((head) != NULL)                                                                        \
            (head)->prev = (x);                                                                    \
        (head) = (x);                                                                              \
    } while (0)

#define LIST_DEL(head, x)                                                                          \
    do {                                                                                           \
        if ((x)->prev != NULL)                                                                     \
            (x)->prev->next = (x)->next;                                                           \
        else                                                                                       \
            (head) = (x)->next;                                                                    \
        if ((x)->next != NULL)                                                                     \
            (x)->next->prev = (x)->prev;                                                           \
        (x)->prev = (x)->next = NULL;                                                              \
    } while (0)

/* --- sockets and curl's timer ---------------------------------------------------------------- */

static void
on_close_free(uv_handle_t *h)
{
    free(h->data);
}

static void check_done(struct adev_uvnet *net);

static void
sock_close(struct adev_uvnet *net, struct sock *s)
{
    LIST_DEL(net->socks, s);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_close_free);
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    struct adev_uvnet *net = s->net;
    int flags = 0, running = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(net->multi, s->fd, flags, &running); /* may close s (deferred) */
    check_done(net);
}

/* CURLMOPT_SOCKETFUNCTION */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct adev_uvnet *net = userp;
    struct sock *s = socketp;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(net->multi, fd, NULL);
            sock_close(net, s);
        }
        return 0;
    }
    if (s == NULL) {
        struct sock *fresh = calloc(1, sizeof(*fresh));
        if (fresh == NULL || uv_poll_init_socket(net->loop, &fresh->poll, fd) != 0) {
            free(fresh); /* not initialised as a handle: plain free */
            return -1;
        }
        s = fresh;
        s->poll.data = s;
        s->fd = fd;
        s->net = net;
        LIST_ADD(net->socks, s);
        curl_multi_assign(net->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    return uv_poll_start(&s->poll, ev, on_poll) == 0 ? 0 : -1;
}

/* CURLOPT_CLOSESOCKETFUNCTION: a socket may be closed without CURL_POLL_REMOVE (connections
 * closed from a connection cache); stop watching it before its number can be reused. */
static int
on_close_socket(void *clientp, curl_socket_t fd)
{
    struct adev_uvnet *net = clientp;
    for (struct sock *s = net->socks; s != NULL; s = s->next) {
        if (s->fd == fd) {
            curl_multi_assign(net->multi, fd, NULL); /* curl must not hand it back to us */
            sock_close(net, s);
            break;
        }
    }
    return close(fd);
}

static void
on_curl_timer(uv_timer_t *h)
{
    struct adev_uvnet *net = h->data;
    int running = 0;
    curl_multi_socket_action(net->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(net);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "as soon as possible" (next iteration). */
static int
on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    struct adev_uvnet *net = userp;
    (void)multi;
    if (timeout_ms < 0)
        return uv_timer_stop(net->curl_timer) == 0 ? 0 : -1;
    return uv_timer_start(net->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

/* --- requests -------------------------------------------------------------------------------- */

/* With on_body, the status decides (once, at the first body bytes; the headers are in by then)
 * whether the body streams out or is buffered as an error answer under the transport's cap. */
static void
choose_mode(adev_http_call *c)
{
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    c->mode = status >= 200 && status < 300 ? 1 : 2;
    if (c->mode == 2)
        c->max = c->t->net->body_max;
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    adev_http_call *c = userp;
    size_t n = size * nmemb;
    if (c->on_body != NULL && c->mode == 0)
        choose_mode(c);
    /* checked on every piece, not only against Content-Length: chunked data has none, and an
     * endless body must stop here at once */
    if (n > c->max - c->received) {
        c->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (c->mode == 1) {
        if (c->on_body(c->on_body_arg, data, n) != 0)
            return 0; /* CURLE_WRITE_ERROR without too_large: ADEV_NET_OTHER */
        c->received += n;
        return n;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *b = realloc(c->body, cap);
        if (b == NULL)
            return 0;
        c->body = b;
        c->cap = cap;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
    c->received += n;
    c->body[c->len] = '\0';
    return n;
}

/* CURLOPT_SSL_CTX_FUNCTION: verify certificate validity at the device's time, not the host's. */
static CURLcode
on_ssl_ctx(CURL *easy, void *ssl_ctx, void *userp)
{
    adev_http_call *c = userp;
    (void)easy;
    X509_VERIFY_PARAM_set_time(SSL_CTX_get0_param(ssl_ctx), (time_t)c->now);
    return CURLE_OK;
}

static void
call_free(adev_http_call *c)
{
    if (c == NULL)
        return;
    if (c->easy != NULL)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    free(c->body);
    free(c);
}

/* Detaches c from its transport and the multi handle (not freed). */
static void
call_detach(adev_http_call *c)
{
    struct uvtransport *t = c->t;
    curl_multi_remove_handle(t->net->multi, c->easy);
    LIST_DEL(t->calls, c);
    t->net->calls--;
}

static int
map_error(adev_http_call *c, CURLcode res)
{
    long vr = 0;
    switch (res) {
    case CURLE_OK:
        return ADEV_NET_OK;
    case CURLE_PEER_FAILED_VERIFICATION:
        curl_easy_getinfo(c->easy, CURLINFO_SSL_VERIFYRESULT, &vr);
        if (vr == X509_V_ERR_CERT_NOT_YET_VALID || vr == X509_V_ERR_CERT_HAS_EXPIRED)
            return ADEV_NET_CLOCK;
        return ADEV_NET_TLS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
        return ADEV_NET_TLS;
    case CURLE_SSL_CERTPROBLEM:
        return ADEV_NET_CLIENT_CERT;
    case CURLE_OPERATION_TIMEDOUT:
        return ADEV_NET_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return ADEV_NET_CONNECT;
    case CURLE_FILESIZE_EXCEEDED:
        return ADEV_NET_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return c->too_large ? ADEV_NET_TOO_LARGE : ADEV_NET_OTHER;
    default:
        return ADEV_NET_OTHER;
    }
}

/* Copies the last value of response header name into buf (cap bytes); "" when absent or longer. */
static void
copy_header(CURL *easy, const char *name, char *buf, size_t cap)
{
    struct curl_header *h = NULL;
    buf[0] = '\0';
    if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h->value != NULL &&
        strlen(h->value) < cap)
        snprintf(buf, cap, "%s", h->value);
}

/* The response of a finished call (pointers into c, valid until c is freed). */
static void
fill_response(adev_http_call *c, CURLcode res, struct adev_http_response *r)
{
    memset(r, 0, sizeof(*r));
    r->err = map_error(c, res);
    r->retry_after_s = -1;
    if (r->err == ADEV_NET_OK) {
        curl_off_t ra = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &r->status);
        if (curl_easy_getinfo(c->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            r->retry_after_s = ra > 86400 ? 86400 : (long)ra;
    }
    copy_header(c->easy, "ETag", c->etag, sizeof(c->etag));
    copy_header(c->easy, "Content-Range", c->content_range, sizeof(c->content_range));
    r->etag = c->etag[0] != '\0' ? c->etag : NULL;
    r->content_range = c->content_range[0] != '\0' ? c->content_range : NULL;
    if (c->errbuf[0] == '\0' && res != CURLE_OK)
        snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_easy_strerror(res));
    int streamed = c->on_body != NULL && r->status >= 200 && r->status < 300;
    if (r->err != ADEV_NET_OK)
        r->body = "";
    else if (!streamed)
        r->body = c->body != NULL ? c->body : "";
    r->body_len = r->err == ADEV_NET_OK && !streamed ? c->len : 0;
    r->received = c->received;
    r->detail = c->errbuf;
}

/* Collects finished transfers and calls their callbacks. A callback may start or cancel requests
 * and free its transport (even this call's): the call is detached, and its easy handle released
 * from the transport's share, before its callback runs. */
static void
check_done(struct adev_uvnet *net)
{
    CURLMsg *msg;
    int left = 0;

    while ((msg = curl_multi_info_read(net->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        adev_http_call *c = NULL;
        CURLcode res = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c == NULL)
            continue;
        struct adev_http_response r;
        fill_response(c, res, &r);
        call_detach(c);
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
        c->cb(&r, c->arg);
        call_free(c);
    }
}

/* The caller's extra headers onto c->headers: at most EXTRA_HEADERS_MAX of "Name: value", each
 * shorter than EXTRA_HEADER_LEN, one line each (no CR/LF: nothing can be smuggled in). */
static int
add_headers(adev_http_call *c, const char *const *headers)
{
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        const char *h = headers[i], *colon = strchr(h, ':');
        if (i >= EXTRA_HEADERS_MAX || strlen(h) >= EXTRA_HEADER_LEN || colon == NULL ||
            colon == h || strpbrk(h, "\r\n") != NULL)
            return -1;
        struct curl_slist *l = curl_slist_append(c->headers, h);
        if (l == NULL)
            return -1;
        c->headers = l;
    }
    return 0;
}

static adev_http_call *
uvt_request(adev_transport *base, const struct adev_http_request *req, adev_http_cb cb, void *arg)
{
    struct uvtransport *t = (struct uvtransport *)base;
    struct adev_uvnet *net = t->net;
    adev_http_call *c = NULL, *res = NULL;
    CURL *e = NULL;
    int ok = 1;

    if (req == NULL || cb == NULL || req->url == NULL || req->method == NULL ||
        req->ca_pem == NULL || (req->client_cert_pem == NULL) != (req->client_key_pem == NULL))
        goto out;
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->easy = curl_easy_init()) == NULL)
        goto out;
    e = c->easy;
    c->t = t;
    c->cb = cb;
    c->arg = arg;
    c->max = req->max_body ? req->max_body : net->body_max;
    c->now = req->now;
    c->on_body = req->on_body;
    c->on_body_arg = req->on_body_arg;
    /* curl refuses a declared length over this before any body byte; on_write cuts the rest.
     * With on_body an error answer is buffered under the transport's cap instead. */
    size_t declared_max = c->max;
    if (c->on_body != NULL && net->body_max > declared_max)
        declared_max = net->body_max;

    struct curl_blob ca = {(void *)req->ca_pem, strlen(req->ca_pem), CURL_BLOB_COPY};
    ok &= curl_easy_setopt(e, CURLOPT_URL, req->url) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, c) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SHARE, t->share) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, c) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, net) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)declared_max) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                           (long)(req->timeout_ms ? req->timeout_ms : net->timeout_ms)) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)net->connect_timeout_ms) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_USERAGENT, "aegis-device/1") == CURLE_OK;
    /* TLS: always verified, only against the given anchors. */
    ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CAPATH, NULL) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L) == CURLE_OK;
    if (req->now != 0) {
        ok &= curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, c) == CURLE_OK;
    }
    if (req->client_cert_pem != NULL) {
        struct curl_blob cert = {(void *)req->client_cert_pem, strlen(req->client_cert_pem),
                                 CURL_BLOB_COPY};
        struct curl_blob key = {(void *)req->client_key_pem, strlen(req->client_key_pem),
                                CURL_BLOB_COPY};
        ok &= curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM") == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM") == CURLE_OK;
    }
    /* Method and body. "Expect:" off: no 100-continue round trip for small bodies. */
    c->headers = curl_slist_append(c->headers, "Expect:");
    c->headers = curl_slist_append(c->headers, "Accept: application/json");
    if (req->content_type != NULL) {
        char ct[128];
        int n = snprintf(ct, sizeof(ct), "Content-Type: %s", req->content_type);
        if (n < 0 || (size_t)n >= sizeof(ct))
            goto out;
        c->headers = curl_slist_append(c->headers, ct);
    }
    if (c->headers == NULL || add_headers(c, req->headers) != 0)
        goto out;
    ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) == CURLE_OK;
    if (strcmp(req->method, "GET") == 0) {
        ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    } else {
        if (strcmp(req->method, "POST") != 0)
            ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OK;
        ok &=
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "") == CURLE_OK;
    }
    if (!ok || curl_multi_add_handle(net->multi, e) != CURLM_OK)
        goto out;
    LIST_ADD(t->calls, c);
    net->calls++;
    res = c;
    c = NULL;
out:
    call_free(c);
    return res;
}

static void
uvt_cancel(adev_transport *base, adev_http_call *c)
{
    (void)base;
    if (c == NULL)
        return;
    call_detach(c);
    call_free(c);
}

static void
uvt_free(adev_transport *base)
{
    struct uvtransport *t = (struct uvtransport *)base;
    if (t == NULL)
        return;
    while (t->calls != NULL)
        uvt_cancel(base, t->calls);
    if (t->share != NULL)
        curl_share_cleanup(t->share); /* closes this device's idle connections */
    t->net->transports--;
    free(t);
}

static const struct adev_transport_ops uvt_ops = {
    .request = uvt_request,
    .cancel = uvt_cancel,
    .free = uvt_free,
};

adev_transport *
adev_uvnet_transport_new(adev_uvnet *net)
{
    struct uvtransport *t = NULL;
    adev_transport *res = NULL;

    if (net == NULL || (t = calloc(1, sizeof(*t))) == NULL)
        goto out;
    t->base.ops = &uvt_ops;
    t->net = net;
    net->transports++;
    t->share = curl_share_init();
    if (t->share == NULL ||
        curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK)
        goto out;
    res = &t->base;
    t = NULL;
out:
    if (t != NULL)
        uvt_free(&t->base);
    return res;
}

/* --- timers ---------------------------------------------------------------------------------- */

static void
on_timer(uv_timer_t *h)
{
    struct adev_timer *tm = h->data;
    struct adev_uvnet *net = tm->net;
    void (*cb)(void *) = tm->cb;
    void *arg = tm->arg;

    LIST_DEL(net->timers_live, tm);
    net->n_timers--;
    uv_close((uv_handle_t *)&tm->h, on_close_free);
    cb(arg);
}

static adev_timer *
timers_start(adev_timers *base, uint64_t ms, void (*cb)(void *arg), void *arg)
{
    struct adev_uvnet *net = (struct adev_uvnet *)base;
    struct adev_timer *tm = NULL, *res = NULL;
    int handle = 0; /* tm->h initialised: freed in its close callback */

    if (cb == NULL || (tm = calloc(1, sizeof(*tm))) == NULL)
        goto out;
    if (uv_timer_init(net->loop, &tm->h) != 0)
        goto out;
    handle = 1;
    tm->h.data = tm;
    tm->cb = cb;
    tm->arg = arg;
    tm->net = net;
    if (uv_timer_start(&tm->h, on_timer, ms, 0) != 0)
        goto out;
    LIST_ADD(net->timers_live, tm);
    net->n_timers++;
    res = tm;
    tm = NULL;
out:
    if (tm != NULL && handle)
        uv_close((uv_handle_t *)&tm->h, on_close_free);
    else
        free(tm);
    return res;
}

static void
timers_cancel(adev_timers *base, adev_timer *tm)
{
    struct adev_uvnet *net = (struct adev_uvnet *)base;
    if (tm == NULL)
        return;
    LIST_DEL(net->timers_live, tm);
    net->n_timers--;
    uv_timer_stop(&tm->h);
    uv_close((uv_handle_t *)&tm->h, on_close_free);
}

static const struct adev_timers_ops timers_ops = {
    .start = timers_start,
    .cancel = timers_cancel,
};

/* --- the engine ------------------------------------------------------------------------------ */

adev_uvnet *
adev_uvnet_new(uv_loop_t *loop, const struct adev_uvnet_opts *opts)
{
    adev_uvnet *net = NULL, *res = NULL;
    int ok = 1;

    if (loop == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    net = calloc(1, sizeof(*net));
    if (net == NULL) {
        curl_global_cleanup();
        goto out;
    }
    net->timers.ops = &timers_ops;
    net->loop = loop;
    net->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    net->connect_timeout_ms =
        opts && opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    net->body_max = opts && opts->body_max ? opts->body_max : DEFAULT_BODY_MAX;
    net->curl_timer = calloc(1, sizeof(*net->curl_timer));
    if (net->curl_timer == NULL || uv_timer_init(loop, net->curl_timer) != 0) {
        free(net->curl_timer); /* not initialised as a handle */
        net->curl_timer = NULL;
        goto out;
    }
    net->curl_timer->data = net;
    net->multi = curl_multi_init();
    if (net->multi == NULL)
        goto out;
    ok &= curl_multi_setopt(net->multi, CURLMOPT_SOCKETFUNCTION, on_socket) == CURLM_OK;
    ok &= curl_multi_setopt(net->multi, CURLMOPT_SOCKETDATA, net) == CURLM_OK;
    ok &= curl_multi_setopt(net->multi, CURLMOPT_TIMERFUNCTION, on_timer_change) == CURLM_OK;
    ok &= curl_multi_setopt(net->multi, CURLMOPT_TIMERDATA, net) == CURLM_OK;
    if (opts != NULL && opts->max_connections > 0)
        ok &= curl_multi_setopt(net->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                                opts->max_connections) == CURLM_OK;
    if (!ok)
        goto out;
    res = net;
    net = NULL;
out:
    adev_uvnet_free(net); /* also balances curl_global_init */
    return res;
}

adev_timers *
adev_uvnet_timers(adev_uvnet *net)
{
    return net != NULL ? &net->timers : NULL;
}

size_t
adev_uvnet_pending(const adev_uvnet *net)
{
    return net != NULL ? net->calls + net->n_timers : 0;
}

void
adev_uvnet_free(adev_uvnet *net)
{
    if (net == NULL)
        return;
    while (net->timers_live != NULL)
        timers_cancel(&net->timers, net->timers_live);
    if (net->multi != NULL)
        curl_multi_cleanup(net->multi);
    while (net->socks != NULL)
        sock_close(net, net->socks);
    if (net->curl_timer != NULL) {
        net->curl_timer->data = net->curl_timer; /* on_close_free frees h->data */
        uv_close((uv_handle_t *)net->curl_timer, on_close_free);
    }
    free(net);
    curl_global_cleanup();
}
