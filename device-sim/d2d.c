/* d2d: two devices authenticate each other with nothing but their issued certificates and their
 * tenant's trust bundle, as the reference device does it (firmware-ref/device_peer.h): mutual TLS
 * over loopback (device A listens, device B connects), each side verifying the peer's chain
 * against its own trust bundle and checking that the peer's SAN URI names a device of its own
 * tenant; then one message each way. One thread, non-blocking sockets. */
#include "sim.h"

#include "device.h"
#include "device_peer.h"
#include "hal_host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG_MAX 256

enum phase { P_HANDSHAKE, P_SEND, P_RECV, P_DONE };

struct party {
    const char *name; /* "A" or "B" */
    size_t index;
    struct adev_peer_self self; /* tenant and device id of its certificate */
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
    int server;
    enum phase phase;
    char out[MSG_MAX];
    size_t out_len, sent;
    char in[MSG_MAX];
    size_t got;
    char peer_uri[ADEV_PEER_URI_MAX];
    char error[SIM_PATH_MAX + 512];
};

static void
ssl_error(struct party *p, const char *what)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    long vr = p->ssl != NULL ? SSL_get_verify_result(p->ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(p->error, sizeof(p->error), "%s: peer certificate rejected: %s", what,
                 X509_verify_cert_error_string(vr));
    else
        snprintf(p->error, sizeof(p->error), "%s: %s", what, buf[0] ? buf : "connection failed");
    ERR_clear_error();
}

/* Loads one device's credential into a peer TLS context (device_peer.h). */
static int
party_load(struct party *p, const char *fleet)
{
    int rc = -1;
    char dir[SIM_PATH_MAX], err[256];
    adev_storage *st = NULL;
    struct adev_credential cred;

    memset(&cred, 0, sizeof(cred));
    if (sim_device_dir(fleet, p->index, dir) != 0 || (st = adev_host_storage_open(dir)) == NULL ||
        adev_credential_load(st, &cred) != 0) {
        snprintf(p->error, sizeof(p->error), "%s has no certificate (attest it first)", dir);
        goto out;
    }
    p->ctx = adev_peer_ctx_new(&cred, &p->self, err, sizeof(err));
    if (p->ctx == NULL) {
        snprintf(p->error, sizeof(p->error), "%s: %s", dir, err);
        goto out;
    }
    rc = 0;
out:
    adev_credential_clear(&cred);
    adev_storage_free(st);
    return rc;
}

/* After the handshake: the peer must be a device of our tenant. */
static int
check_peer(struct party *p)
{
    char err[256];
    if (adev_peer_check(p->ssl, &p->self, p->peer_uri, sizeof(p->peer_uri), err, sizeof(err)) !=
        0) {
        snprintf(p->error, sizeof(p->error), "handshake: %s", err);
        return -1;
    }
    return 0;
}

/* One non-blocking step. Returns 1 when the party is done, 0 to be called again, -1 on failure. */
static int
step(struct party *p)
{
    for (;;) {
        int r = 0;
        switch (p->phase) {
        case P_HANDSHAKE:
            r = SSL_do_handshake(p->ssl);
            if (r == 1) {
                if (check_peer(p) != 0)
                    return -1;
                p->phase = p->server ? P_RECV : P_SEND;
                continue;
            }
            break;
        case P_SEND:
            r = SSL_write(p->ssl, p->out + p->sent, (int)(p->out_len - p->sent));
            if (r > 0) {
                p->sent += (size_t)r;
                if (p->sent == p->out_len)
                    p->phase = p->server ? P_DONE : P_RECV;
                continue;
            }
            break;
        case P_RECV:
            r = SSL_read(p->ssl, p->in + p->got, (int)(sizeof(p->in) - 1 - p->got));
            if (r > 0) {
                p->got += (size_t)r;
                p->in[p->got] = '\0';
                if (memchr(p->in, '\n', p->got) != NULL)
                    p->phase = p->server ? P_SEND : P_DONE;
                else if (p->got == sizeof(p->in) - 1)
                    return -1;
                continue;
            }
            break;
        case P_DONE:
            return 1;
        }
        int e = SSL_get_error(p->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        ssl_error(p, p->phase == P_HANDSHAKE ? "handshake" : "exchange");
        return -1;
    }
}

static int
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 ? 0 : -1;
}

/* Connects B to A over loopback and runs both sides to the end. */
static int
converse(struct party *a, struct party *b, int timeout_ms)
{
    int rc = -1, lfd = -1;
    struct sockaddr_in sa;
    socklen_t slen = sizeof(sa);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &slen) != 0)
        goto out;
    b->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (b->fd < 0 || connect(b->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out; /* loopback connect completes against the listen backlog */
    a->fd = accept(lfd, NULL, NULL);
    if (a->fd < 0 || set_nonblock(a->fd) != 0 || set_nonblock(b->fd) != 0)
        goto out;
    printf("d2d: A listening on 127.0.0.1:%u, B connected\n", (unsigned)ntohs(sa.sin_port));
    a->ssl = SSL_new(a->ctx);
    b->ssl = SSL_new(b->ctx);
    if (a->ssl == NULL || b->ssl == NULL || SSL_set_fd(a->ssl, a->fd) != 1 ||
        SSL_set_fd(b->ssl, b->fd) != 1)
        goto out;
    SSL_set_accept_state(a->ssl);
    SSL_set_connect_state(b->ssl);
    double deadline = sim_now_ms() + timeout_ms;
    int da = 0, db = 0;
    while (!(da && db)) {
        if (!da && (da = step(a)) < 0)
            goto out;
        if (!db && (db = step(b)) < 0)
            goto out;
        if (sim_now_ms() > deadline) {
            snprintf(a->error, sizeof(a->error), "timed out");
            goto out;
        }
        struct pollfd pfd[2] = {{a->fd, POLLIN, 0}, {b->fd, POLLIN, 0}};
        if (!(da && db))
            poll(pfd, 2, 20);
    }
    rc = 0;
out:
    if (lfd >= 0)
        close(lfd);
    return rc;
}

static void
party_free(struct party *p)
{
    SSL_free(p->ssl);
    SSL_CTX_free(p->ctx);
    if (p->fd >= 0)
        close(p->fd);
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: aegis-sim d2d --dir D --a I --b J [--timeout-ms MS]\n"
               "  Devices I and J (attested before) authenticate each other by mutual TLS over\n"
               "  loopback with their issued certificates and trust bundles, check that the peer\n"
               "  is a device of the same tenant, and exchange one message. Exit 0 on success,\n"
               "  1 when the handshake or the check fails.\n");
}

static void
strip_newline(char *s)
{
    s[strcspn(s, "\r\n")] = '\0';
}

int
sim_d2d(int argc, char **argv)
{
    int rc = SIM_EXIT_ERROR;
    const char *fleet = NULL;
    int64_t ia = -1, ib = -1, timeout = 10000;
    struct party a, b;
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'}, {"a", required_argument, NULL, 'a'},
        {"b", required_argument, NULL, 'b'},   {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    int c, bad = 0;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.fd = b.fd = -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            fleet = optarg;
            break;
        case 'a':
            bad |= sim_parse_i64(optarg, 0, SIM_DEVICES_MAX - 1, &ia) != 0;
            break;
        case 'b':
            bad |= sim_parse_i64(optarg, 0, SIM_DEVICES_MAX - 1, &ib) != 0;
            break;
        case 't':
            bad |= sim_parse_i64(optarg, 100, 600000, &timeout) != 0;
            break;
        case 'h':
            usage(stdout);
            return SIM_EXIT_OK;
        default:
            bad = 1;
        }
    }
    if (bad || optind != argc || fleet == NULL || ia < 0 || ib < 0 || ia == ib) {
        usage(stderr);
        return SIM_EXIT_USAGE;
    }
    a.name = "A";
    a.index = (size_t)ia;
    a.server = 1;
    b.name = "B";
    b.index = (size_t)ib;
    if (party_load(&a, fleet) != 0 || party_load(&b, fleet) != 0) {
        fprintf(stderr, "d2d: %s\n", a.error[0] ? a.error : b.error);
        goto out;
    }
    printf("d2d: A = device %zu %s (tenant %lld)\n", a.index, a.self.device_id,
           (long long)a.self.tenant_id);
    printf("d2d: B = device %zu %s (tenant %lld)\n", b.index, b.self.device_id,
           (long long)b.self.tenant_id);
    a.out_len = (size_t)snprintf(a.out, sizeof(a.out), "hello from %s\n", a.self.device_id);
    b.out_len = (size_t)snprintf(b.out, sizeof(b.out), "hello from %s\n", b.self.device_id);
    if (converse(&a, &b, (int)timeout) != 0) {
        if (a.error[0] != '\0')
            fprintf(stderr, "d2d: FAILED: A (device %zu): %s\n", a.index, a.error);
        if (b.error[0] != '\0')
            fprintf(stderr, "d2d: FAILED: B (device %zu): %s\n", b.index, b.error);
        if (a.error[0] == '\0' && b.error[0] == '\0')
            fprintf(stderr, "d2d: FAILED: cannot connect over loopback\n");
        goto out;
    }
    strip_newline(a.in);
    strip_newline(b.in);
    printf("d2d: A verified peer %s\n", a.peer_uri);
    printf("d2d: B verified peer %s\n", b.peer_uri);
    printf("d2d: A received \"%s\"\n", a.in);
    printf("d2d: B received \"%s\"\n", b.in);
    printf("d2d: ok\n");
    rc = SIM_EXIT_OK;
out:
    party_free(&a);
    party_free(&b);
    return rc;
}
