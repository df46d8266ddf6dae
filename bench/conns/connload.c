/* connload: the connection tool of the conns benchmark (bench/conns/run.py), on OpenSSL and one
 * epoll loop per process.
 *
 *   connload hold  --port P --cacert F [--certdir D --devices K] [--conns N] [--src A.B.C.D]
 *                  [--path P] [--inflight I] [--max-seconds S]
 *   connload load  --port P --cacert F [--certdir D --devices K] [--conns C] [--seconds S]
 *                  [--path P] [--pid PID[,PID...]] [--header "Name: value"] [--expect STATUS]
 *   connload stall --port P [--conns N] [--src A.B.C.D] [--hello] [--max-seconds S]
 *   connload pass  --port P --cacert F --certdir D --devices K [--inflight I] [--path P]
 *                  [--save-etags] [--send-etags] [--expect STATUS]
 *
 * hold: opens N mutual-TLS keep-alive connections from source address --src (127.0.0.x, so many
 * holders do not share one set of ephemeral ports), at most I handshakes in flight, does one GET
 * each, then keeps them idle. Prints "ready open=N failed=M" once all are done, then answers each
 * line read from stdin with "open=N" (connections the server has not closed) and exits at EOF on
 * stdin or after --max-seconds.
 * load: C connections GETting the path back to back for S seconds (after one warm-up request
 * each); with --pid, also the CPU time (utime + stime from /proc/PID/stat) and RSS of those
 * processes (summed) over the measured window. Last line: key=value figures.
 * stall: N connections that start a TLS handshake and then stall: with --hello the ClientHello is
 * sent and nothing after it, without it nothing at all. Same ready/stdin protocol as hold.
 * pass: one connection per device (K of them, at most I handshakes in flight), one GET each, then
 * closed; prints "pass ok=N failed=M seconds=S" (failed: no connection, or another status than
 * --expect). With --save-etags each answer's ETag value is written to DIR/dev-I.etag.
 * --header adds one request header (e.g. If-None-Match); --expect is the status that counts as a
 * success (default 200; 304 for conditional update checks). --send-etags (any mode) sends device
 * I's requests with "If-None-Match: " and the contents of DIR/dev-I.etag: each device has an ETag
 * of its own, so one fixed header cannot match them all. Device certificates: DIR/dev-I.crt and
 * DIR/dev-I.key for I in 0..K-1, used round-robin. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 40000
#define MAX_DEVICES 16384
#define MAX_LAT (1u << 22)
#define RESP_MAX 16384
/* A connection not through its handshake and first reply by then counts as failed. */
#define OPEN_TIMEOUT_S 30.0

enum state { ST_FREE, ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ, ST_IDLE, ST_STALLED, ST_DEAD };

struct conn {
    int fd;
    enum state st;
    SSL *ssl;
    char *buf; /* response being read; NULL when idle */
    size_t got;
    size_t sent;
    double started;
    int requests;
    int dev; /* the device whose certificate (and request) it uses */
};

struct opts {
    const char *mode, *cacert, *certdir, *path, *src, *header;
    int port, conns, devices, inflight, seconds, max_seconds, hello, expect;
    int save_etags, send_etags;
    const char *pids; /* comma-separated */
};

struct run {
    struct opts o;
    int ep;
    struct conn *c;
    SSL_CTX **ctx;    /* one per device */
    char (*req)[512]; /* the request of each device (one when --send-etags is not given) */
    size_t *req_len;
    int started, done, failed, open;
    /* load mode */
    int warm; /* connections past their warm-up request */
    double win_start, win_end;
    uint64_t ok, errors;
    double *lat;
    size_t nlat;
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
raise_nofile(int need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)need + 64;
    if (rl.rlim_cur >= want)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        rl.rlim_max = want; /* works as root */
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static SSL_CTX *
make_ctx(const struct opts *o, int dev)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char crt[4096], key[4096];
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Every connection is a full handshake, as a device that reconnects without a ticket. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (o->cacert != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->cacert, NULL) != 1)
            goto fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (o->certdir != NULL) {
        snprintf(crt, sizeof(crt), "%s/dev-%d.crt", o->certdir, dev);
        snprintf(key, sizeof(key), "%s/dev-%d.key", o->certdir, dev);
        if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            goto fail;
    }
    return ctx;
fail:
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
}

static void
set_events(struct run *r, struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void
conn_close(struct run *r, struct conn *c, int failed)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    free(c->buf);
    if (c->st == ST_IDLE || c->st == ST_STALLED)
        r->open--;
    if (failed && c->st != ST_IDLE && c->st != ST_STALLED) {
        r->failed++;
        r->done++;
    }
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->st = ST_DEAD;
}

static int
conn_open(struct run *r, struct conn *c, int idx)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->o.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (r->o.src != NULL) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, r->o.src, &src.sin_addr);
        /* The port is chosen at connect(), per destination: more than 28k ports per source. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0)
            return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
        return -1;
    c->st = ST_CONNECT;
    c->started = now_s();
    c->dev = idx % r->o.devices;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &e) != 0)
        return -1;
    if (strcmp(r->o.mode, "stall") != 0 || r->o.hello) {
        c->ssl = SSL_new(r->ctx[c->dev]);
        if (c->ssl == NULL)
            return -1;
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_connect_state(c->ssl);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1");
    }
    r->started++;
    return 0;
}

/* Whether buf holds a whole response; its status in *status. */
static int
response_complete(const char *buf, size_t len, int *status)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    *status = len > 12 ? atoi(buf + 9) : 0;
    size_t head = (size_t)(end - buf) + 4;
    long cl = 0;
    for (const char *p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0) {
            cl = strtol(p + 15, NULL, 10);
            break;
        }
    }
    return len >= head + (size_t)cl;
}

static void
start_request(struct run *r, struct conn *c)
{
    c->st = ST_WRITE;
    c->sent = 0;
    c->got = 0;
    c->started = now_s();
    if (c->buf == NULL)
        c->buf = malloc(RESP_MAX);
    set_events(r, c, EPOLLOUT);
}

/* Writes the ETag value of the response in c->buf (NUL-terminated) to DIR/dev-I.etag. */
static int
save_etag(const struct run *r, const struct conn *c)
{
    char path[4096];
    const char *end = strstr(c->buf, "\r\n\r\n");
    for (const char *p = c->buf; end != NULL && p < end; p++) {
        if (p[0] != '\n' || strncasecmp(p + 1, "ETag:", 5) != 0)
            continue;
        p += 6;
        p += strspn(p, " ");
        int n = (int)strcspn(p, "\r");
        snprintf(path, sizeof(path), "%s/dev-%d.etag", r->o.certdir, c->dev);
        FILE *f = fopen(path, "we");
        if (f == NULL)
            return -1;
        fprintf(f, "%.*s\n", n, p);
        return fclose(f) == 0 ? 0 : -1;
    }
    return -1;
}

static void
request_done(struct run *r, struct conn *c, int status)
{
    double t = now_s();
    c->requests++;
    if (strcmp(r->o.mode, "pass") == 0) {
        c->buf[c->got] = '\0';
        if (status != r->o.expect || (r->o.save_etags && save_etag(r, c) != 0))
            r->failed++;
        conn_close(r, c, 0);
        r->done++;
        return;
    }
    if (strcmp(r->o.mode, "hold") == 0) {
        free(c->buf);
        c->buf = NULL;
        c->st = ST_IDLE;
        r->open++;
        r->done++;
        if (status != r->o.expect)
            r->failed++;
        set_events(r, c, EPOLLIN); /* to see the server close it */
        return;
    }
    if (c->requests == 1) {
        r->warm++;
    } else if (c->started >= r->win_start && r->win_start > 0) {
        if (status == r->o.expect)
            r->ok++;
        else
            r->errors++;
        if (r->nlat < MAX_LAT)
            r->lat[r->nlat++] = (t - c->started) * 1000.0;
    }
    if (r->win_end > 0 && t >= r->win_end) {
        c->st = ST_IDLE;
        r->done++;
        return;
    }
    start_request(r, c);
}

/* One step of c's TLS state machine after an event. */
static void
step(struct run *r, struct conn *c, uint32_t ev)
{
    int n, status = 0;
    if (c->st == ST_CONNECT) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            conn_close(r, c, 1);
            return;
        }
        c->st = ST_HANDSHAKE;
        if (c->ssl == NULL) { /* stall without hello: connected, and nothing more */
            c->st = ST_STALLED;
            r->open++;
            r->done++;
            set_events(r, c, EPOLLIN);
            return;
        }
    }
    if (c->st == ST_HANDSHAKE) {
        n = SSL_do_handshake(c->ssl);
        if (strcmp(r->o.mode, "stall") == 0) { /* the ClientHello is out: stall here */
            c->st = ST_STALLED;
            r->open++;
            r->done++;
            set_events(r, c, EPOLLIN);
            return;
        }
        if (n == 1) {
            start_request(r, c);
            return;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            set_events(r, c, EPOLLIN);
        else if (e == SSL_ERROR_WANT_WRITE)
            set_events(r, c, EPOLLOUT);
        else {
            ERR_print_errors_fp(stderr);
            conn_close(r, c, 1);
        }
        return;
    }
    if (c->st == ST_WRITE) {
        int q = r->o.send_etags ? c->dev : 0;
        n = SSL_write(c->ssl, r->req[q] + c->sent, (int)(r->req_len[q] - c->sent));
        if (n > 0) {
            c->sent += (size_t)n;
            if (c->sent == r->req_len[q]) {
                c->st = ST_READ;
                set_events(r, c, EPOLLIN);
            }
            return;
        }
        if (SSL_get_error(c->ssl, n) != SSL_ERROR_WANT_WRITE)
            conn_close(r, c, 1);
        return;
    }
    if (c->st == ST_READ) {
        for (;;) {
            if (c->got >= RESP_MAX - 1) {
                conn_close(r, c, 1);
                return;
            }
            n = SSL_read(c->ssl, c->buf + c->got, (int)(RESP_MAX - 1 - c->got));
            if (n <= 0)
                break;
            c->got += (size_t)n;
            if (response_complete(c->buf, c->got, &status)) {
                request_done(r, c, status);
                return;
            }
        }
        int e = SSL_get_error(c->ssl, n);
        if (e != SSL_ERROR_WANT_READ)
            conn_close(r, c, 1);
        return;
    }
    if ((c->st == ST_IDLE || c->st == ST_STALLED) && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        char b[256];
        /* The server wrote (a close_notify) or closed: either way this connection is gone. */
        if (recv(c->fd, b, sizeof(b), MSG_DONTWAIT) <= 0 || c->st == ST_IDLE)
            conn_close(r, c, 0);
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* utime + stime of pid in seconds, and its VmRSS in KiB. */
static int
proc_usage1(long pid, double *cpu_s, long *rss_kib)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    *rss_kib = 0;
    while (fgets(buf, sizeof(buf), f) != NULL)
        if (strncmp(buf, "VmRSS:", 6) == 0)
            *rss_kib = strtol(buf + 6, NULL, 10);
    fclose(f);
    return 0;
}

/* The sum of proc_usage1 over a comma-separated list of pids. */
static void
proc_usage(const char *pids, double *cpu_s, long *rss_kib)
{
    *cpu_s = 0;
    *rss_kib = 0;
    for (const char *p = pids; p != NULL && *p != '\0';) {
        char *end;
        double c = 0;
        long k = 0;
        long pid = strtol(p, &end, 10);
        if (end == p || proc_usage1(pid, &c, &k) != 0)
            return;
        *cpu_s += c;
        *rss_kib += k;
        p = *end == ',' ? end + 1 : NULL;
    }
}

static void
loop_once(struct run *r, int timeout_ms)
{
    struct epoll_event ev[256];
    int n = epoll_wait(r->ep, ev, 256, timeout_ms);
    for (int i = 0; i < n; i++)
        step(r, ev[i].data.ptr, ev[i].events);
}

/* Closes the connections still opening after OPEN_TIMEOUT_S (the server never answered). */
static void
expire(struct run *r)
{
    double t = now_s();
    for (int i = 0; i < r->started; i++) {
        struct conn *c = &r->c[i];
        if (c->st >= ST_CONNECT && c->st <= ST_READ && c->requests == 0 &&
            t - c->started > OPEN_TIMEOUT_S)
            conn_close(r, c, 1);
    }
}

/* Opens connections with at most inflight handshakes at a time until all are done. */
static void
open_all(struct run *r, double deadline)
{
    double next_expiry = now_s() + 1;
    while (r->done < r->o.conns && now_s() < deadline) {
        if (now_s() > next_expiry) {
            expire(r);
            next_expiry = now_s() + 1;
        }
        while (r->started < r->o.conns && r->started - r->done < r->o.inflight) {
            struct conn *c = &r->c[r->started];
            if (conn_open(r, c, r->started) != 0) {
                if (c->fd >= 0)
                    close(c->fd);
                c->fd = -1;
                c->st = ST_DEAD;
                r->started++;
                r->failed++;
                r->done++;
            }
        }
        loop_once(r, 100);
    }
}

/* After "ready": serves status lines on stdin until EOF or the deadline. */
static void
hold_idle(struct run *r, double deadline)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    char line[64];
    epoll_ctl(r->ep, EPOLL_CTL_ADD, 0, &e);
    while (now_s() < deadline) {
        struct epoll_event ev[256];
        int n = epoll_wait(r->ep, ev, 256, 1000);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr != NULL) {
                step(r, ev[i].data.ptr, ev[i].events);
                continue;
            }
            ssize_t k = read(0, line, sizeof(line));
            if (k <= 0)
                return;
            printf("open=%d\n", r->open);
            fflush(stdout);
        }
    }
}

static int
run_load(struct run *r)
{
    long rss0 = 0, rss1 = 0;
    double cpu0 = 0, cpu1 = 0;
    r->lat = malloc(MAX_LAT * sizeof(double));
    if (r->lat == NULL)
        return 1;
    double deadline = now_s() + 60;
    for (int i = 0; i < r->o.conns; i++)
        if (conn_open(r, &r->c[i], i) != 0)
            return 1;
    while (r->warm < r->o.conns && now_s() < deadline)
        loop_once(r, 100);
    if (r->warm < r->o.conns) {
        fprintf(stderr, "connload: only %d of %d load connections came up\n", r->warm, r->o.conns);
        return 1;
    }
    if (r->o.pids != NULL)
        proc_usage(r->o.pids, &cpu0, &rss0);
    r->win_start = now_s();
    r->win_end = r->win_start + r->o.seconds;
    r->done = 0;
    while (r->done < r->o.conns && now_s() < r->win_end + 10)
        loop_once(r, 100);
    double elapsed = now_s() - r->win_start;
    if (r->o.pids != NULL)
        proc_usage(r->o.pids, &cpu1, &rss1);
    qsort(r->lat, r->nlat, sizeof(double), cmp_double);
    double p50 = r->nlat ? r->lat[r->nlat / 2] : 0, p99 = r->nlat ? r->lat[r->nlat * 99 / 100] : 0;
    printf("requests_per_s=%.0f p50_ms=%.2f p99_ms=%.2f ok=%llu errors=%llu failed_conns=%d "
           "cpu_us_per_req=%.1f rss_kib=%ld\n",
           (double)r->ok / elapsed, p50, p99, (unsigned long long)r->ok,
           (unsigned long long)r->errors, r->failed,
           r->ok ? (cpu1 - cpu0) * 1e6 / (double)r->ok : 0.0, rss1);
    return 0;
}

static int
parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->conns = 20;
    o->devices = 1;
    o->inflight = 32;
    o->seconds = 10;
    o->max_seconds = 1800;
    o->path = "/v1/device/whoami";
    o->expect = 200;
    if (argc < 2)
        return -1;
    o->mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *flag = strcmp(k, "--hello") == 0        ? &o->hello
                    : strcmp(k, "--save-etags") == 0 ? &o->save_etags
                    : strcmp(k, "--send-etags") == 0 ? &o->send_etags
                                                     : NULL;
        if (flag != NULL) {
            *flag = 1;
            continue;
        }
        if (v == NULL)
            return -1;
        i++;
        if (strcmp(k, "--port") == 0)
            o->port = atoi(v);
        else if (strcmp(k, "--cacert") == 0)
            o->cacert = v;
        else if (strcmp(k, "--certdir") == 0)
            o->certdir = v;
        else if (strcmp(k, "--devices") == 0)
            o->devices = atoi(v);
        else if (strcmp(k, "--conns") == 0)
            o->conns = atoi(v);
        else if (strcmp(k, "--src") == 0)
            o->src = v;
        else if (strcmp(k, "--path") == 0)
            o->path = v;
        else if (strcmp(k, "--inflight") == 0)
            o->inflight = atoi(v);
        else if (strcmp(k, "--seconds") == 0)
            o->seconds = atoi(v);
        else if (strcmp(k, "--max-seconds") == 0)
            o->max_seconds = atoi(v);
        else if (strcmp(k, "--pid") == 0)
            o->pids = v;
        else if (strcmp(k, "--header") == 0)
            o->header = v;
        else if (strcmp(k, "--expect") == 0)
            o->expect = atoi(v);
        else
            return -1;
    }
    int pass = strcmp(o->mode, "pass") == 0;
    int known = strcmp(o->mode, "hold") == 0 || strcmp(o->mode, "load") == 0 ||
                strcmp(o->mode, "stall") == 0 || pass;
    if (pass)
        o->conns = o->devices; /* one connection per device */
    if ((pass || o->save_etags || o->send_etags) && o->certdir == NULL)
        return -1;
    if (!known || o->port <= 0 || o->port > 65535 || o->conns < 1 || o->conns > MAX_CONNS ||
        o->devices < 1 || o->devices > MAX_DEVICES || o->inflight < 1 || o->seconds < 1 ||
        o->max_seconds < 1 || strlen(o->path) > 200 ||
        (o->header != NULL && (strlen(o->header) > 200 || strpbrk(o->header, "\r\n") != NULL)))
        return -1;
    return 0;
}

/* The request of each device (with its If-None-Match under --send-etags), or one for all. */
static int
build_requests(struct run *r)
{
    int n = r->o.send_etags ? r->o.devices : 1;
    char path[4096], etag[256], hdr[300] = "";
    r->req = calloc((size_t)n, sizeof(*r->req));
    r->req_len = calloc((size_t)n, sizeof(*r->req_len));
    if (r->req == NULL || r->req_len == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        if (r->o.send_etags) {
            snprintf(path, sizeof(path), "%s/dev-%d.etag", r->o.certdir, i);
            FILE *f = fopen(path, "re");
            int ok = f != NULL && fgets(etag, sizeof(etag), f) != NULL;
            if (f != NULL)
                fclose(f);
            if (!ok) {
                fprintf(stderr, "connload: cannot read %s\n", path);
                return -1;
            }
            etag[strcspn(etag, "\r\n")] = '\0';
            snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", etag);
        }
        r->req_len[i] = (size_t)snprintf(
            r->req[i], sizeof(r->req[i]),
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: connload\r\n%s%s%s\r\n", r->o.path,
            hdr, r->o.header != NULL ? r->o.header : "", r->o.header != NULL ? "\r\n" : "");
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    if (parse(argc, argv, &r.o) != 0) {
        fprintf(stderr, "usage: connload hold|load|stall|pass --port P [--cacert F] [--certdir D "
                        "--devices K] [--conns N] [--src IP] [--path P] [--inflight I] "
                        "[--seconds S] [--max-seconds S] [--pid PID[,PID...]] [--hello] "
                        "[--header H] [--expect STATUS] [--save-etags] [--send-etags]\n");
        return 2;
    }
    raise_nofile(r.o.conns + 16);
    r.ctx = calloc((size_t)r.o.devices, sizeof(*r.ctx));
    if (r.ctx == NULL)
        return 1;
    for (int i = 0; i < r.o.devices; i++)
        if ((r.ctx[i] = make_ctx(&r.o, i)) == NULL) {
            fprintf(stderr, "connload: cannot load device %d's credential\n", i);
            return 1;
        }
    if (build_requests(&r) != 0)
        return 1;
    r.c = calloc((size_t)r.o.conns, sizeof(*r.c));
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (r.c == NULL || r.ep < 0)
        return 1;
    for (int i = 0; i < r.o.conns; i++)
        r.c[i].fd = -1;
    if (strcmp(r.o.mode, "load") == 0)
        return run_load(&r);
    double t0 = now_s();
    open_all(&r, t0 + r.o.max_seconds);
    if (strcmp(r.o.mode, "pass") == 0) {
        printf("pass ok=%d failed=%d seconds=%.1f\n", r.done - r.failed, r.failed, now_s() - t0);
        return r.done == r.o.conns && r.failed == 0 ? 0 : 1;
    }
    printf("ready open=%d failed=%d seconds=%.1f\n", r.open, r.failed, now_s() - t0);
    fflush(stdout);
    hold_idle(&r, t0 + r.o.max_seconds);
    return 0;
}
