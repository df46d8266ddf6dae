/* attload: the load generator of the attestation benchmark (bench/attest/run.py): P worker
 * processes, each with C connections on one epoll loop, every one a NEW TLS 1.3 connection (no
 * session cache, no tickets, no resumption).
 *
 *   attload attest --port P --fleet DIR [--devices K] [--procs P] [--conns C] [--count N]
 *                  [--seconds S] [--cacert F] [--groups G]
 *   attload get    --port P [--path /x] [--procs P] [--conns C] [--count N] [--seconds S]
 *                  [--cacert F] [--groups G]
 *
 * attest: per attestation a new connection, POST /v1/device/attest/challenge, then POST
 * /v1/device/attest with evidence over the fresh nonce on the same connection (docs/protocol.md
 * section 3); a success is 200 with a certificate. Devices dev-00000 .. dev-(K-1) of the fleet
 * (aegis-sim provision, imported into the service) are used round-robin. Everything that does not
 * depend on the nonce (identity key, event log and composite by a measured boot of the device's
 * storage, a fresh operational key and its CSR, and the evidence JSON around the nonce and the
 * signature) is made before the timed phase, so the timed client work per attestation is the TLS
 * handshake, the two requests, one ECDSA signature over the fresh nonce (with the device's key,
 * through firmware-ref's keystore) and putting the nonce and the signature into the evidence.
 * get: per request a new connection and one GET of --path (default /), 200 expected.
 *
 * Both stop after N successes and failures in all (--count) or when S seconds have passed
 * (--seconds; connections in flight are finished). The server certificate is verified only with
 * --cacert (without it the client does not pay for a chain check). --groups is the key exchange
 * offered (default P-256, so neither server answers with a HelloRetryRequest).
 * Output: one JSON object: count, ok, errors by kind, elapsed_s, rate (ok/s), p50_ms, p99_ms
 * (of the whole attestation or request, connect to last byte), client_cpu_s (user + system of the
 * workers) and client_cpu_share (of all cores over elapsed_s). Exit 0 when it ran, 1 when a worker
 * failed to run (its share is missing from the figures), 2 on a usage or setup error. */
#include "boot.h"
#include "evidence.h"
#include "hal_host.h"
#include "proto_fields.h"
#include "util.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROCS_MAX 256
#define CONNS_MAX 4096
#define DEVICES_MAX 100000
#define LAT_PER_PROC (1u << 20)
#define BUF_MAX 32768
/* An attestation or request not done by then counts as a timeout. */
#define OP_TIMEOUT_S 30.0

enum err_kind {
    E_CONNECT,
    E_HANDSHAKE,
    E_RESUMED,
    E_IO,
    E_CLOSED,
    E_TIMEOUT,
    E_STATUS,
    E_BODY,
    E_N
};
static const char *const err_names[E_N] = {"connect", "handshake", "resumed", "io",
                                           "closed",  "timeout",   "status",  "body"};

enum state { ST_IDLE, ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ };

struct opts {
    int attest; /* mode: 1 attest, 0 get */
    int port;
    const char *fleet;
    const char *path;
    const char *cacert;
    const char *groups;
    int devices;
    int procs;
    int conns;
    long count;
    double seconds;
};

/* What a device sends, made before the timed phase. */
struct device {
    adev_keystore *ks;
    uint8_t id[PROTO_HASH_LEN];
    uint8_t composite[PROTO_HASH_LEN];
    uint8_t csr_hash[PROTO_HASH_LEN];
    struct proto_event ev[PROTO_EVENTS_MAX];
    size_t n_ev;
    char *challenge; /* the whole challenge request */
    size_t challenge_len;
    /* The evidence body made once with a placeholder nonce and signature, cut around them: per
     * attestation only the nonce's hex and the signature's base64 are put in (ev_head nonce
     * ev_mid signature ev_tail), the rest (version, device id, composite, event log, CSR) being
     * the same every time. */
    char *ev_head, *ev_mid;
    size_t ev_head_len, ev_mid_len;
};

/* One worker's results, in memory shared with the parent. */
struct result {
    long ok;
    long errors[E_N];
    long n_lat;
    float lat_ms[LAT_PER_PROC];
};

struct conn {
    int fd;
    SSL *ssl;
    enum state st;
    int phase; /* attest: 0 challenge, 1 evidence */
    uint32_t events;
    size_t dev;
    double t0;
    char *out; /* request being written (owned when out_owned) */
    size_t out_len, out_off;
    int out_owned;
    char in[BUF_MAX + 1]; /* + its NUL */
    size_t in_len;
};

struct worker {
    const struct opts *o;
    struct device *devs;
    SSL_CTX *ctx;
    int ep;
    struct sockaddr_in addr;
    long budget; /* attestations or requests still to start */
    double deadline;
    size_t next_dev;
    char *get_req;
    size_t get_len;
    struct result *res;
    int active;
};

static double
now_s(void)
{
    return (double)util_mono_ns() / 1e9;
}

/* --- devices --------------------------------------------------------------------------------- */

static char *
http_request(const char *method, const char *path, const char *body, const char *conn_hdr,
             size_t *len)
{
    size_t blen = body != NULL ? strlen(body) : 0;
    size_t cap = blen + strlen(path) + 256;
    char *r = malloc(cap);
    if (r == NULL)
        return NULL;
    int n = snprintf(r, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, path, conn_hdr);
    if (body != NULL)
        n += snprintf(r + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(r + n, cap - (size_t)n, "\r\n%s", body != NULL ? body : "");
    if (n < 0 || (size_t)n >= cap) {
        free(r);
        return NULL;
    }
    *len = (size_t)n;
    return r;
}

/* d's evidence body cut around its nonce and signature (struct device): made by firmware-ref's
 * adev_evidence_json with a zero nonce and a placeholder signature. 0 or -1. */
static int
evidence_template(struct device *d, const char *csr_pem)
{
    static const char nonce_key[] = "\"nonce\":\"", sig_key[] = "\"signature\":\"";
    uint8_t sig[ADEV_SIG_MAX] = {0};
    struct adev_evidence e;
    int rc = -1;

    memset(&e, 0, sizeof(e));
    memcpy(e.device_id, d->id, sizeof(e.device_id));
    memcpy(e.composite, d->composite, sizeof(e.composite));
    e.events = d->ev;
    e.n_events = d->n_ev;
    e.csr_pem = csr_pem;
    e.signature = sig;
    e.sig_len = 72;
    char *body = adev_evidence_json(&e);
    char *n = body != NULL ? strstr(body, nonce_key) : NULL;
    char *g = body != NULL ? strstr(body, sig_key) : NULL;
    /* the signature is the last member (adev_evidence_json keeps the order), the nonce before it */
    if (n == NULL || g == NULL || g < n || strcmp(g + strlen(g) - 2, "\"}") != 0)
        goto out;
    n += strlen(nonce_key);
    g += strlen(sig_key);
    d->ev_head_len = (size_t)(n - body);
    d->ev_mid_len = (size_t)(g - (n + PROTO_HASH_HEX));
    if ((d->ev_head = strndup(body, d->ev_head_len)) == NULL ||
        (d->ev_mid = strndup(n + PROTO_HASH_HEX, d->ev_mid_len)) == NULL)
        goto out;
    rc = 0;
out:
    free(body);
    return rc;
}

/* Loads device DIR: its identity key, a measured boot of its storage, a new operational key and
 * CSR, and its challenge request. 0 or -1. */
static int
device_load(const char *dir, struct device *d)
{
    int rc = -1;
    adev_storage *st = NULL;
    adev_opkey *op = NULL;
    struct adev_boot_log *log = calloc(1, sizeof(*log));
    uint8_t spki[ADEV_SPKI_LEN], *der = NULL;
    size_t der_len = 0;
    char hex[PROTO_HASH_HEX + 1], body[128], *csr_pem = NULL;

    if (log == NULL || (d->ks = adev_host_keystore_open(dir)) == NULL ||
        (st = adev_host_storage_open_flags(dir, ADEV_HOST_STORAGE_NOSYNC)) == NULL ||
        adev_boot_run(st, NULL, log) != 0 || adev_keystore_public_der(d->ks, spki) != 0 ||
        adev_device_id(spki, d->id) != 0)
        goto out;
    memcpy(d->ev, log->events, log->n * sizeof(log->events[0]));
    d->n_ev = log->n;
    memcpy(d->composite, log->composite, sizeof(d->composite));
    proto_hex(d->id, PROTO_HASH_LEN, hex);
    if ((op = adev_opkey_generate()) == NULL ||
        adev_opkey_csr(op, hex, &csr_pem, &der, &der_len) != 0 ||
        proto_sha256(der, der_len, d->csr_hash) != 0)
        goto out;
    snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", hex);
    d->challenge = http_request("POST", "/v1/device/attest/challenge", body, "", &d->challenge_len);
    if (d->challenge == NULL || evidence_template(d, csr_pem) != 0)
        goto out;
    rc = 0;
out:
    free(csr_pem);
    adev_opkey_free(op);
    adev_storage_free(st);
    free(der);
    free(log);
    return rc;
}

static struct device *
devices_load(const char *fleet, int n)
{
    struct device *devs = calloc((size_t)n, sizeof(*devs));
    char dir[4096];

    for (int i = 0; devs != NULL && i < n; i++) {
        snprintf(dir, sizeof(dir), "%s/dev-%05d", fleet, i);
        if (device_load(dir, &devs[i]) != 0) {
            fprintf(stderr, "attload: cannot load device %s\n", dir);
            exit(2);
        }
    }
    return devs;
}

static void
devices_free(struct device *devs, int n)
{
    for (int i = 0; devs != NULL && i < n; i++) {
        adev_keystore_free(devs[i].ks);
        free(devs[i].challenge);
        free(devs[i].ev_head);
        free(devs[i].ev_mid);
    }
    free(devs);
}

/* The evidence request of device d over nonce (malloc'd; NULL on failure): a fresh signature over
 * (nonce, device id, composite, CSR hash) put into the device's evidence template. */
static char *
evidence_request(const struct device *d, const uint8_t nonce[PROTO_HASH_LEN], size_t *len)
{
    static const char tail[] = "\"}";
    uint8_t msg[PROTO_MSG_LEN], sig[ADEV_SIG_MAX];
    size_t sig_len = 0;
    char b64[4 * ((ADEV_SIG_MAX + 2) / 3) + 1], hdr[256];

    proto_attest_message(nonce, d->id, d->composite, d->csr_hash, msg);
    if (adev_keystore_sign(d->ks, msg, sizeof(msg), sig, sizeof(sig), &sig_len) != 0)
        return NULL;
    size_t b64_len = (size_t)EVP_EncodeBlock((unsigned char *)b64, sig, (int)sig_len);
    size_t blen = d->ev_head_len + PROTO_HASH_HEX + d->ev_mid_len + b64_len + sizeof(tail) - 1;
    int h = snprintf(hdr, sizeof(hdr),
                     "POST /v1/device/attest HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     blen);
    char *req = malloc((size_t)h + blen + 1), *p = req;
    if (req == NULL)
        return NULL;
    memcpy(p, hdr, (size_t)h);
    p += h;
    memcpy(p, d->ev_head, d->ev_head_len);
    p += d->ev_head_len;
    proto_hex(nonce, PROTO_HASH_LEN, p); /* writes a NUL after the hex, overwritten next */
    p += PROTO_HASH_HEX;
    memcpy(p, d->ev_mid, d->ev_mid_len);
    p += d->ev_mid_len;
    memcpy(p, b64, b64_len);
    p += b64_len;
    memcpy(p, tail, sizeof(tail));
    *len = (size_t)h + blen;
    return req;
}

/* --- connections ----------------------------------------------------------------------------- */

static void
conn_watch(struct worker *w, struct conn *c, uint32_t ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(w->ep, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->events = ev;
}

/* Ends c's attestation or request: err is an enum err_kind, or -1 for a success. */
static void
conn_done(struct worker *w, struct conn *c, int err)
{
    if (err < 0) {
        w->res->ok++;
        if (w->res->n_lat < (long)LAT_PER_PROC)
            w->res->lat_ms[w->res->n_lat++] = (float)((now_s() - c->t0) * 1000.0);
    } else {
        w->res->errors[err]++;
    }
    /* The SSL object is kept for the next connection (SSL_new costs more than the handshake's
     * client side in OpenSSL 3.0); conn_step drops its session so nothing is resumed. */
    if (c->ssl != NULL && err < 0)
        SSL_shutdown(c->ssl); /* close_notify, not waiting for the peer's */
    if (c->ssl != NULL && SSL_clear(c->ssl) != 1) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    ERR_clear_error();
    close(c->fd); /* also leaves the epoll set */
    if (c->out_owned)
        free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->out_owned = 0;
    c->events = 0;
    c->st = ST_IDLE;
    w->active--;
}

/* Starts the next attestation or request on the idle c. */
static void
conn_start(struct worker *w, struct conn *c)
{
    assert(c->st == ST_IDLE);
    w->budget--;
    w->active++;
    c->t0 = now_s();
    c->phase = 0;
    c->in_len = 0;
    c->out_off = 0;
    if (w->o->attest) {
        c->dev = w->next_dev;
        w->next_dev = (w->next_dev + (size_t)w->o->procs) % (size_t)w->o->devices;
        c->out = w->devs[c->dev].challenge;
        c->out_len = w->devs[c->dev].challenge_len;
    } else {
        c->out = w->get_req;
        c->out_len = w->get_len;
    }
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->st = ST_CONNECT;
    if (c->fd < 0 || setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        (connect(c->fd, (struct sockaddr *)&w->addr, sizeof(w->addr)) != 0 &&
         errno != EINPROGRESS)) {
        conn_done(w, c, E_CONNECT);
        return;
    }
    conn_watch(w, c, EPOLLOUT);
}

/* 1 when OpenSSL waits for the socket (and c now watches for it), 0 on an error. */
static int
conn_wait(struct worker *w, struct conn *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        conn_watch(w, c, EPOLLIN);
        return 1;
    case SSL_ERROR_WANT_WRITE:
        conn_watch(w, c, EPOLLOUT);
        return 1;
    default:
        ERR_clear_error();
        return 0;
    }
}

/* The response in c->in: 1 when whole (*status, *body, *blen set), 0 when more is needed, -1
 * when malformed. eof: the peer has closed, which ends a response without Content-Length. */
static int
response_parse(struct conn *c, int eof, int *status, const char **body, size_t *blen)
{
    c->in[c->in_len] = '\0';
    const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL)
        return eof ? -1 : 0;
    if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1)
        return -1;
    size_t head = (size_t)(end + 4 - c->in);
    long clen = -1;
    for (const char *p = c->in; p < end;) {
        const char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (strncasecmp(p, "content-length:", 15) == 0)
            clen = strtol(p + 15, NULL, 10);
        p = eol + 2;
    }
    if (clen < 0 && !eof)
        return 0;
    if (clen >= 0 && c->in_len < head + (size_t)clen)
        return eof ? -1 : 0;
    *body = c->in + head;
    *blen = clen >= 0 ? (size_t)clen : c->in_len - head;
    return 1;
}

/* Acts on a whole response: -1 when the attestation or request is done, an enum err_kind when it
 * failed, -2 when it goes on (after a challenge: the evidence request is queued on c). */
static int
conn_response(struct worker *w, struct conn *c, int status, const char *body, size_t blen)
{
    if (status != 200)
        return E_STATUS;
    if (!w->o->attest)
        return -1;
    if (c->phase == 1)
        return memmem(body, blen, "\"certificate\"", 13) != NULL ? -1 : E_BODY;
    /* {"nonce":"<64 hex>",...}: the service's own reply, so a look for the member is enough */
    uint8_t nonce[PROTO_HASH_LEN];
    const char *hex = memmem(body, blen, "\"nonce\":\"", 9);
    int bad = hex == NULL || (size_t)(body + blen - (hex += 9)) < PROTO_HASH_HEX + 1 ||
              hex[PROTO_HASH_HEX] != '"' ||
              proto_unhex(hex, PROTO_HASH_HEX, nonce, sizeof(nonce), 1) != 0;
    if (bad || (c->out = evidence_request(&w->devs[c->dev], nonce, &c->out_len)) == NULL)
        return E_BODY;
    c->out_owned = 1;
    c->out_off = 0;
    c->in_len = 0;
    c->phase = 1;
    c->st = ST_WRITE;
    return -2;
}

/* Reads on c; 1 to go on, 0 when c has ended or waits. */
static int
conn_read(struct worker *w, struct conn *c)
{
    int status = 0, eof = 0, r;
    const char *body = NULL;
    size_t blen = 0;

    if (c->in_len >= BUF_MAX) {
        conn_done(w, c, E_BODY);
        return 0;
    }
    r = SSL_read(c->ssl, c->in + c->in_len, (int)(BUF_MAX - c->in_len));
    if (r > 0) {
        c->in_len += (size_t)r;
    } else {
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL && conn_wait(w, c, r))
            return 0;
        ERR_clear_error();
        eof = 1;
    }
    int whole = response_parse(c, eof, &status, &body, &blen);
    if (whole == 0)
        return 1;
    int res =
        whole < 0 ? (c->in_len == 0 ? E_CLOSED : E_BODY) : conn_response(w, c, status, body, blen);
    if (res == -2)
        return 1;
    conn_done(w, c, res);
    return 0;
}

/* Drives c as far as the socket allows. */
static void
conn_step(struct worker *w, struct conn *c)
{
    int r, err = 0;
    socklen_t l = sizeof(err);

    for (;;) {
        switch (c->st) {
        case ST_IDLE:
            return;
        case ST_CONNECT:
            if (c->ssl == NULL)
                c->ssl = SSL_new(w->ctx);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err != 0 ||
                c->ssl == NULL || SSL_set_session(c->ssl, NULL) != 1 ||
                SSL_set_fd(c->ssl, c->fd) != 1) {
                conn_done(w, c, E_CONNECT);
                return;
            }
            SSL_set_connect_state(c->ssl);
            c->st = ST_HANDSHAKE;
            break;
        case ST_HANDSHAKE:
            r = SSL_do_handshake(c->ssl);
            if (r == 1 && SSL_session_reused(c->ssl)) {
                conn_done(w, c, E_RESUMED); /* never: the benchmark is of full handshakes */
                return;
            }
            if (r == 1) {
                c->st = ST_WRITE;
                break;
            }
            if (!conn_wait(w, c, r))
                conn_done(w, c, E_HANDSHAKE);
            return;
        case ST_WRITE:
            r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
            if (r > 0) {
                c->out_off += (size_t)r;
                if (c->out_off == c->out_len)
                    c->st = ST_READ;
                break;
            }
            if (!conn_wait(w, c, r))
                conn_done(w, c, E_IO);
            return;
        case ST_READ:
            if (!conn_read(w, c))
                return;
            break;
        }
    }
}

/* --- workers --------------------------------------------------------------------------------- */

static void
worker_run(struct worker *w, struct conn *conns, int n)
{
    struct epoll_event evs[256];
    double last_scan = now_s();

    for (;;) {
        double t = now_s();
        for (int i = 0; i < n && w->budget > 0 && t < w->deadline; i++) {
            if (conns[i].st == ST_IDLE)
                conn_start(w, &conns[i]);
        }
        if (w->active == 0 && (w->budget <= 0 || t >= w->deadline))
            break;
        int k = epoll_wait(w->ep, evs, 256, 100);
        for (int j = 0; j < k; j++)
            conn_step(w, evs[j].data.ptr);
        if ((t = now_s()) - last_scan < 1.0)
            continue;
        last_scan = t;
        for (int i = 0; i < n; i++) {
            if (conns[i].st != ST_IDLE && t - conns[i].t0 > OP_TIMEOUT_S)
                conn_done(w, &conns[i], E_TIMEOUT);
        }
    }
}

/* Worker index wi of the run: waits for the start signal on start_fd, then runs. */
static void
worker_main(struct worker *w, int wi, int start_fd)
{
    char b;
    struct conn *conns = calloc((size_t)w->o->conns, sizeof(*conns));

    if (conns == NULL || (w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        _exit(3);
    for (int i = 0; i < w->o->conns; i++)
        conns[i].fd = -1;
    w->budget = w->o->count / w->o->procs + (wi < w->o->count % w->o->procs ? 1 : 0);
    w->next_dev = w->o->attest ? (size_t)wi % (size_t)w->o->devices : 0;
    if (read(start_fd, &b, 1) < 0)
        _exit(3);
    w->deadline = now_s() + w->o->seconds;
    worker_run(w, conns, w->o->conns);
    _exit(0);
}

/* --- main ------------------------------------------------------------------------------------ */

static void
usage(void)
{
    fprintf(stderr, "usage: attload attest --port P --fleet DIR [--devices K] [options]\n"
                    "       attload get --port P [--path /x] [options]\n"
                    "options: --procs P --conns C --count N --seconds S --cacert F --groups G\n");
    exit(2);
}

static void
parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"port", 1, NULL, 'p'},    {"fleet", 1, NULL, 'f'},  {"devices", 1, NULL, 'd'},
        {"procs", 1, NULL, 'P'},   {"conns", 1, NULL, 'c'},  {"count", 1, NULL, 'n'},
        {"seconds", 1, NULL, 's'}, {"cacert", 1, NULL, 'a'}, {"groups", 1, NULL, 'g'},
        {"path", 1, NULL, 'u'},    {NULL, 0, NULL, 0}};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (struct opts){.path = "/",
                       .groups = "P-256",
                       .devices = 1000,
                       .conns = 32,
                       .procs = cores > 0 ? (int)cores : 1,
                       .count = 100000,
                       .seconds = 10};
    if (argc < 2 || (strcmp(argv[1], "attest") != 0 && strcmp(argv[1], "get") != 0))
        usage();
    o->attest = strcmp(argv[1], "attest") == 0;
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'p':
            o->port = atoi(optarg);
            break;
        case 'f':
            o->fleet = optarg;
            break;
        case 'd':
            o->devices = atoi(optarg);
            break;
        case 'P':
            o->procs = atoi(optarg);
            break;
        case 'c':
            o->conns = atoi(optarg);
            break;
        case 'n':
            o->count = atol(optarg);
            break;
        case 's':
            o->seconds = atof(optarg);
            break;
        case 'a':
            o->cacert = optarg;
            break;
        case 'g':
            o->groups = optarg;
            break;
        case 'u':
            o->path = optarg;
            break;
        default:
            usage();
        }
    }
    if (o->port <= 0 || o->port > 65535 || o->procs < 1 || o->procs > PROCS_MAX || o->conns < 1 ||
        o->conns > CONNS_MAX || o->count < 1 || o->seconds <= 0 ||
        (o->attest && (o->fleet == NULL || o->devices < 1 || o->devices > DEVICES_MAX)))
        usage();
}

/* New TLS 1.3 connections only: no session cache, no tickets, so every handshake is a full one. */
static SSL_CTX *
client_ctx(const struct opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set1_groups_list(ctx, o->groups) != 1 ||
        (o->cacert != NULL && SSL_CTX_load_verify_locations(ctx, o->cacert, NULL) != 1)) {
        fprintf(stderr, "attload: TLS setup failed\n");
        exit(2);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx, o->cacert != NULL ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return ctx;
}

static int
cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Merges the workers' results and prints them as one JSON object. */
static void
report(struct result *res, int procs, double elapsed)
{
    long ok = 0, errs[E_N] = {0}, n = 0, total;
    struct rusage ru;
    float *lat = malloc(sizeof(float) * LAT_PER_PROC * (size_t)procs);

    for (int i = 0; i < procs; i++) {
        ok += res[i].ok;
        for (int e = 0; e < E_N; e++)
            errs[e] += res[i].errors[e];
        if (lat != NULL)
            memcpy(lat + n, res[i].lat_ms, sizeof(float) * (size_t)res[i].n_lat);
        n += res[i].n_lat;
    }
    total = ok;
    if (lat != NULL && n > 0)
        qsort(lat, (size_t)n, sizeof(float), cmp_float);
    getrusage(RUSAGE_CHILDREN, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("{\"errors\": {");
    for (int e = 0; e < E_N; e++) {
        total += errs[e];
        printf("%s\"%s\": %ld", e ? ", " : "", err_names[e], errs[e]);
    }
    printf("}, \"count\": %ld, \"ok\": %ld, \"elapsed_s\": %.3f, \"rate\": %.1f, \"p50_ms\": %.2f, "
           "\"p99_ms\": %.2f, \"client_cpu_s\": %.3f, \"client_cpu_share\": %.3f}\n",
           total, ok, elapsed, ok / elapsed, lat && n ? lat[n / 2] : 0.0,
           lat && n ? lat[(n * 99) / 100] : 0.0, cpu,
           cpu / (elapsed * (double)sysconf(_SC_NPROCESSORS_ONLN)));
    free(lat);
}

int
main(int argc, char **argv)
{
    struct opts o;
    struct worker w;
    int start[2];

    parse_opts(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    memset(&w, 0, sizeof(w));
    w.o = &o;
    w.ctx = client_ctx(&o);
    w.addr.sin_family = AF_INET;
    w.addr.sin_port = htons((uint16_t)o.port);
    w.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (o.attest)
        w.devs = devices_load(o.fleet, o.devices);
    else
        w.get_req = http_request("GET", o.path, NULL, "Connection: close\r\n", &w.get_len);
    struct result *res = mmap(NULL, sizeof(*res) * (size_t)o.procs, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if ((o.attest && w.devs == NULL) || (!o.attest && w.get_req == NULL) || res == MAP_FAILED ||
        pipe(start) != 0) {
        fprintf(stderr, "attload: setup failed\n");
        return 2;
    }
    for (int i = 0; i < o.procs; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(start[1]);
            w.res = &res[i];
            worker_main(&w, i, start[0]);
        }
        if (pid < 0) {
            fprintf(stderr, "attload: fork: %s\n", strerror(errno));
            return 2;
        }
    }
    close(start[0]);
    double t0 = now_s();
    close(start[1]); /* every worker's read returns: go */
    int st, failed = 0;
    pid_t pid;
    while ((pid = wait(&st)) > 0 || errno == EINTR) {
        if (pid > 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
            failed++;
    }
    report(res, o.procs, now_s() - t0);
    devices_free(w.devs, o.devices);
    free(w.get_req);
    SSL_CTX_free(w.ctx);
    munmap(res, sizeof(*res) * (size_t)o.procs);
    if (failed > 0)
        fprintf(stderr, "attload: %d worker(s) failed\n", failed);
    return failed > 0 ? 1 : 0;
}
