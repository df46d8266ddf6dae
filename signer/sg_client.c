/* sg_client: aegisd's client of the signer process, the implementation of signer.h (a file of its
 * own, not signer.c, so that the module signer is the header every signer module may include and
 * the client may reach the worker's code without an include cycle). A pool of SOCK_SEQPACKET
 * sockets, one request in flight on each (sg_wire.h); a caller takes a free one, drops what a
 * timed-out call or a restart left in it, sends, and waits for the reply with its request id. */
#include "signer.h"

#include "errbuf.h"
#include "sg_proc.h"
#include "sg_wire.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The longest message of an error reply that is kept. */
#define MSG_MAX 1024
/* How long signer_free lets the supervisor go by itself, then after SIGTERM (ms). */
#define FREE_GRACE_MS 500
#define FREE_TERM_MS 2000

struct chan {
    int fd;
    unsigned char *buf; /* SG_WIRE_MAX: the request, then the reply */
};

struct signer {
    pid_t pid;
    int lifeline; /* the write end: the supervisor sees EOF when it closes */
    size_t n;
    struct chan *ch;
    size_t *free_idx, nfree; /* a stack of free channels */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t timeout_ms;
    _Atomic uint64_t restarts;
    _Atomic uint32_t next_id;
};

/* One call: its channel, the request being written, then the reply being read. */
struct call {
    signer *s;
    struct chan *c;
    size_t idx;
    uint32_t id;
    struct sg_writer w;
    struct sg_reader r;
};

static int64_t
mono_ms(void)
{
    return (int64_t)(util_mono_ns() / 1000000);
}

static int
take_chan(signer *s, size_t *idx, char *err, size_t errlen)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += s->timeout_ms / 1000;
    until.tv_nsec += (s->timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int rc = 0, took = 0;
    pthread_mutex_lock(&s->mu);
    while (s->nfree == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
    if (s->nfree > 0) {
        *idx = s->free_idx[--s->nfree];
        took = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (!took) {
        errbuf_set(err, errlen, "every socket to the signer stayed busy");
        return SIGNER_UNAVAILABLE;
    }
    return 0;
}

static void
put_chan(signer *s, size_t idx)
{
    pthread_mutex_lock(&s->mu);
    s->free_idx[s->nfree++] = idx;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void
note_restart(signer *s, struct sg_reader *r)
{
    int64_t count = 0;
    if (sg_wire_get_int(r, &count) != 0 || count <= 0)
        return;
    uint64_t seen = atomic_load(&s->restarts);
    while (seen < (uint64_t)count &&
           !atomic_compare_exchange_weak(&s->restarts, &seen, (uint64_t)count))
        ;
}

enum frame_kind { FR_SKIP, FR_REPLY, FR_RESTARTED, FR_START_FAILED };

/* What a received frame of n bytes is to a call waiting for id (0: none). Counts restarts; a
 * start failure's message goes into err. */
static enum frame_kind
classify(signer *s, struct call *k, ssize_t n, uint32_t id, struct sg_hdr *h, char *err,
         size_t errlen)
{
    const char *msg;
    char why[128];
    if (sg_wire_parse(k->c->buf, (size_t)n, h, &k->r, why, sizeof(why)) != 0 ||
        h->version != SG_WIRE_VERSION || sg_wire_is_op(h->code))
        return FR_SKIP; /* a malformed reply is no reply */
    if (h->id == 0 && h->code == SG_ST_RESTARTED) {
        note_restart(s, &k->r);
        return FR_RESTARTED;
    }
    if (h->id == 0 && h->code == SG_ST_ERR) {
        if (sg_wire_get_str(&k->r, &msg, MSG_MAX) == 0)
            errbuf_set(err, errlen, "the signer cannot start: %s", msg);
        return FR_START_FAILED;
    }
    return id != 0 && h->id == id ? FR_REPLY : FR_SKIP;
}

static ssize_t
recv_frame(struct chan *c, int flags)
{
    ssize_t n;
    do
        n = recv(c->fd, c->buf, SG_WIRE_MAX, flags | MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    return n > SG_WIRE_MAX ? SG_WIRE_MAX + 1 : n; /* cut: sg_wire_parse refuses it */
}

/* Drops what earlier calls left on the socket (late replies, restart notices). */
static int
drain(struct call *k, char *err, size_t errlen)
{
    struct sg_hdr h;
    for (;;) {
        ssize_t n = recv_frame(k->c, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            errbuf_set(err, errlen, "the signer is gone");
            return SIGNER_UNAVAILABLE;
        }
        if (classify(k->s, k, n, 0, &h, err, errlen) == FR_START_FAILED)
            return SIGNER_UNAVAILABLE;
    }
}

/* The SIGNER_* code and message of an error reply. */
static int
error_of(struct call *k, const struct sg_hdr *h, char *err, size_t errlen)
{
    const char *msg = "";
    int64_t retry = 0;
    if (h->code == SG_ST_BUSY)
        sg_wire_get_int(&k->r, &retry);
    sg_wire_get_str(&k->r, &msg, MSG_MAX);
    if (sg_wire_done(&k->r, NULL, 0) != 0)
        msg = "(a malformed error reply)";
    switch (h->code) {
    case SG_ST_REFUSED:
        errbuf_set(err, errlen, "the signer refused: %s", msg);
        return SIGNER_REFUSED;
    case SG_ST_BUSY:
        errbuf_set(err, errlen, "%s (retry after %lld s)", msg, (long long)retry);
        return SIGNER_BUSY;
    default:
        errbuf_set(err, errlen, "signer: %s", msg);
        return SIGNER_ERR;
    }
}

/* Waits until the deadline for the reply to k->id. Returns 0 (k->r on its body) or a code. */
static int
await_reply(struct call *k, int64_t deadline, char *err, size_t errlen)
{
    struct sg_hdr h;
    for (;;) {
        int64_t left = deadline - mono_ms();
        struct pollfd pf = {k->c->fd, POLLIN, 0};
        if (left <= 0) {
            errbuf_set(err, errlen, "the signer did not answer within %lld ms",
                       (long long)k->s->timeout_ms);
            return SIGNER_UNAVAILABLE;
        }
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        ssize_t n = recv_frame(k->c, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0) {
            errbuf_set(err, errlen, "the signer is gone");
            return SIGNER_UNAVAILABLE;
        }
        switch (classify(k->s, k, n, k->id, &h, err, errlen)) {
        case FR_SKIP:
            continue;
        case FR_RESTARTED:
            errbuf_set(err, errlen, "the signer restarted");
            return SIGNER_UNAVAILABLE;
        case FR_START_FAILED:
            return SIGNER_UNAVAILABLE;
        case FR_REPLY:
            return h.code == SG_ST_OK ? 0 : error_of(k, &h, err, errlen);
        }
    }
}

static int
call_begin(signer *s, struct call *k, uint16_t op, char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    k->s = s;
    int rc = take_chan(s, &k->idx, err, errlen);
    if (rc != 0)
        return rc;
    k->c = &s->ch[k->idx];
    /* Before the request is written: stale frames are read into the same buffer. */
    if ((rc = drain(k, err, errlen)) != 0)
        return rc;
    do
        k->id = atomic_fetch_add(&s->next_id, 1) + 1;
    while (k->id == 0);
    sg_wire_begin(&k->w, k->c->buf, SG_WIRE_MAX, op, k->id);
    return 0;
}

/* Sends the request written into k->w and waits for its reply. Returns 0 (k->r on the reply's
 * body) or a SIGNER_* code. */
static int
call_run(struct call *k, char *err, size_t errlen)
{
    int64_t deadline = mono_ms() + k->s->timeout_ms;
    long len = sg_wire_end(&k->w);
    if (len < 0) {
        errbuf_set(err, errlen, "the request is larger than %d bytes", SG_WIRE_MAX);
        return SIGNER_ERR;
    }
    if (sg_proc_send(k->c->fd, k->c->buf, (size_t)len) != 0) {
        errbuf_set(err, errlen, "cannot write to the signer: %s", strerror(errno));
        return SIGNER_UNAVAILABLE;
    }
    return await_reply(k, deadline, err, errlen);
}

/* The end of a reply's body; its malformation is the call's failure. */
static int
call_done(struct call *k, char *err, size_t errlen)
{
    return sg_wire_done(&k->r, err, errlen) == 0 ? 0 : SIGNER_ERR;
}

static void
call_end(struct call *k)
{
    if (k->c != NULL)
        put_chan(k->s, k->idx);
}

static int
ping(signer *s, char *err, size_t errlen)
{
    struct call k;
    int64_t pid = 0;
    int rc = call_begin(s, &k, SG_OP_PING, err, errlen);
    if (rc == 0 && (rc = call_run(&k, err, errlen)) == 0) {
        sg_wire_get_int(&k.r, &pid);
        rc = call_done(&k, err, errlen);
    }
    call_end(&k);
    return rc;
}

/* The sockets and the lifeline; fds gets the signer's ends. Returns 0 / -1. */
static int
make_sockets(signer *s, int *fds, int *lifeline_r, char *err, size_t errlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        goto fail;
    s->lifeline = p[1];
    *lifeline_r = p[0];
    for (size_t i = 0; i < s->n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            goto fail;
        s->ch[i].fd = sv[0];
        fds[i] = sv[1];
        if (sg_wire_bufsize(sv[0]) != 0 || sg_wire_bufsize(sv[1]) != 0 ||
            (s->ch[i].buf = malloc(SG_WIRE_MAX)) == NULL)
            goto fail;
        s->free_idx[s->nfree++] = s->n - 1 - i; /* channel 0 first: the start failure is there */
    }
    return 0;
fail:
    errbuf_set(err, errlen, "cannot make the signer's sockets: %s", strerror(errno));
    return -1;
}

static void
close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

signer *
signer_start(const struct signer_opts *o, char *err, size_t errlen)
{
    signer *s = calloc(1, sizeof(*s));
    int *theirs = NULL, lifeline_r = -1;
    size_t n = o->channels > 0 ? o->channels : 1;
    pthread_condattr_t ca;
    if (s == NULL)
        goto oom;
    s->pid = -1;
    s->lifeline = -1;
    s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->ch = calloc(n, sizeof(*s->ch));
    s->free_idx = calloc(n, sizeof(*s->free_idx));
    theirs = malloc(n * sizeof(*theirs));
    for (size_t i = 0; theirs != NULL && i < n; i++)
        theirs[i] = -1;
    if (s->ch == NULL || s->free_idx == NULL || theirs == NULL)
        goto oom;
    s->n = n;
    for (size_t i = 0; i < n; i++)
        s->ch[i].fd = -1;
    if (make_sockets(s, theirs, &lifeline_r, err, errlen) != 0 ||
        (s->pid = sg_proc_spawn(o, theirs, n, lifeline_r, err, errlen)) < 0 ||
        ping(s, err, errlen) != 0)
        goto fail;
    close_fds(theirs, n);
    close(lifeline_r);
    free(theirs);
    return s;
oom:
    errbuf_set(err, errlen, "out of memory");
fail:
    if (theirs != NULL)
        close_fds(theirs, n);
    if (lifeline_r >= 0)
        close(lifeline_r);
    free(theirs);
    signer_free(s);
    return NULL;
}

/* Waits up to ms for pid to end. Returns 1 when it was reaped. */
static int
reap(pid_t pid, int64_t ms)
{
    int64_t until = mono_ms() + ms;
    do {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 1;
        usleep(5000);
    } while (mono_ms() < until);
    return 0;
}

void
signer_free(signer *s)
{
    if (s == NULL)
        return;
    /* The lifeline first: the supervisor exits on its EOF (killing its worker), where closing the
     * sockets first would end the worker and have it restarted in between. Then SIGTERM, SIGKILL.
     */
    if (s->lifeline >= 0)
        close(s->lifeline);
    for (size_t i = 0; s->ch != NULL && i < s->n; i++) {
        if (s->ch[i].fd >= 0)
            close(s->ch[i].fd);
        free(s->ch[i].buf);
    }
    if (s->pid > 0 && !reap(s->pid, FREE_GRACE_MS)) {
        kill(s->pid, SIGTERM);
        if (!reap(s->pid, FREE_TERM_MS)) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->ch);
    free(s->free_idx);
    free(s);
}

int
signer_alive(signer *s)
{
    int status = 0;
    if (s->pid <= 0)
        return 0;
    if (waitpid(s->pid, &status, WNOHANG) != s->pid)
        return 1;
    s->pid = -1;
    return 0;
}

pid_t
signer_pid(const signer *s)
{
    return s->pid;
}

uint64_t
signer_restarts(const signer *s)
{
    return atomic_load(&((signer *)s)->restarts);
}

int
signer_issue_device_cert(signer *s, const struct signer_leaf_req *req, char **cert_pem, char *err,
                         size_t errlen)
{
    struct call k;
    const char *pem;
    *cert_pem = NULL;
    int rc = call_begin(s, &k, SG_OP_ISSUE_DEVICE_CERT, err, errlen);
    if (rc != 0)
        return rc;
    sg_wire_put_int(&k.w, req->tenant_id);
    sg_wire_put_str(&k.w, req->tenant_name);
    sg_wire_put_str(&k.w, req->device_id);
    sg_wire_put_str(&k.w, req->ca_key_name);
    sg_wire_put(&k.w, req->csr_pem, req->csr_len);
    sg_wire_put_int(&k.w, req->lifetime_s);
    if ((rc = call_run(&k, err, errlen)) == 0) {
        sg_wire_get_str(&k.r, &pem, SG_WIRE_MAX);
        if ((rc = call_done(&k, err, errlen)) == 0 && (*cert_pem = strdup(pem)) == NULL) {
            errbuf_set(err, errlen, "out of memory");
            rc = SIGNER_ERR;
        }
    }
    call_end(&k);
    return rc;
}

int
signer_ed25519_public(signer *s, const char *key_name, int create, ota_key *pub, char *err,
                      size_t errlen)
{
    struct call k;
    const unsigned char *pk;
    const char *keyid;
    size_t pklen;
    memset(pub, 0, sizeof(*pub));
    int rc = call_begin(s, &k, SG_OP_ED25519_PUBLIC, err, errlen);
    if (rc != 0)
        return rc;
    sg_wire_put_str(&k.w, key_name);
    sg_wire_put_flag(&k.w, create);
    if ((rc = call_run(&k, err, errlen)) == 0) {
        sg_wire_get(&k.r, &pk, &pklen);
        sg_wire_get_str(&k.r, &keyid, OTA_KEYID_HEX_LEN - 1);
        if ((rc = call_done(&k, err, errlen)) == 0 && pklen != sizeof(pub->pk)) {
            errbuf_set(err, errlen, "signer: a public key of %zu bytes", pklen);
            rc = SIGNER_ERR;
        } else if (rc == 0) {
            memcpy(pub->pk, pk, pklen);
            snprintf(pub->keyid, sizeof(pub->keyid), "%s", keyid);
        }
    }
    call_end(&k);
    return rc;
}

int
signer_ed25519_sign(signer *s, const char *key_name, const unsigned char *msg, size_t len,
                    char sig_hex[OTA_SIG_HEX_LEN], char keyid[OTA_KEYID_HEX_LEN], char *err,
                    size_t errlen)
{
    struct call k;
    const char *sig, *id;
    int rc = call_begin(s, &k, SG_OP_ED25519_SIGN, err, errlen);
    if (rc != 0)
        return rc;
    sg_wire_put_str(&k.w, key_name);
    sg_wire_put(&k.w, msg, len);
    if ((rc = call_run(&k, err, errlen)) == 0) {
        sg_wire_get_str(&k.r, &sig, OTA_SIG_HEX_LEN - 1);
        sg_wire_get_str(&k.r, &id, OTA_KEYID_HEX_LEN - 1);
        if ((rc = call_done(&k, err, errlen)) == 0) {
            snprintf(sig_hex, OTA_SIG_HEX_LEN, "%s", sig);
            snprintf(keyid, OTA_KEYID_HEX_LEN, "%s", id);
        }
    }
    call_end(&k);
    return rc;
}

/* The DER signature of a reply into sig. Returns 0 or a SIGNER_* code. */
static int
sig_of(struct call *k, unsigned char sig[SIGNER_SIG_MAX], size_t *siglen, char *err, size_t errlen)
{
    const unsigned char *p;
    size_t n = 0;
    sg_wire_get(&k->r, &p, &n);
    int rc = call_done(k, err, errlen);
    if (rc == 0 && (n == 0 || n > SIGNER_SIG_MAX)) {
        errbuf_set(err, errlen, "signer: a signature of %zu bytes", n);
        rc = SIGNER_ERR;
    } else if (rc == 0) {
        memcpy(sig, p, n);
        *siglen = n;
    }
    return rc;
}

/* TLS_SIGN and TLS_SIGN_DIGEST: one bytes field in, a signature out. */
static int
tls_call(signer *s, uint16_t op, const unsigned char *data, size_t len,
         unsigned char sig[SIGNER_SIG_MAX], size_t *siglen, char *err, size_t errlen)
{
    struct call k;
    *siglen = 0;
    int rc = call_begin(s, &k, op, err, errlen);
    if (rc != 0)
        return rc;
    sg_wire_put(&k.w, data, len);
    if ((rc = call_run(&k, err, errlen)) == 0)
        rc = sig_of(&k, sig, siglen, err, errlen);
    call_end(&k);
    return rc;
}

int
signer_tls_sign(signer *s, const unsigned char *data, size_t len, unsigned char sig[SIGNER_SIG_MAX],
                size_t *siglen, char *err, size_t errlen)
{
    return tls_call(s, SG_OP_TLS_SIGN, data, len, sig, siglen, err, errlen);
}

int
signer_tls_sign_digest(signer *s, const unsigned char digest[SIGNER_TLS_DIGEST_LEN],
                       unsigned char sig[SIGNER_SIG_MAX], size_t *siglen, char *err, size_t errlen)
{
    return tls_call(s, SG_OP_TLS_SIGN_DIGEST, digest, SIGNER_TLS_DIGEST_LEN, sig, siglen, err,
                    errlen);
}

int
signer_ca_rollover(signer *s, int64_t tenant_id, const char *tenant_name, char **key_name,
                   char **cert_pem, char *err, size_t errlen)
{
    struct call k;
    const char *name, *pem;
    *key_name = *cert_pem = NULL;
    int rc = call_begin(s, &k, SG_OP_CA_ROLLOVER, err, errlen);
    if (rc != 0)
        return rc;
    sg_wire_put_int(&k.w, tenant_id);
    sg_wire_put_str(&k.w, tenant_name);
    if ((rc = call_run(&k, err, errlen)) == 0) {
        sg_wire_get_str(&k.r, &name, 80);
        sg_wire_get_str(&k.r, &pem, SG_WIRE_MAX);
        if ((rc = call_done(&k, err, errlen)) == 0 &&
            ((*key_name = strdup(name)) == NULL || (*cert_pem = strdup(pem)) == NULL)) {
            free(*key_name);
            *key_name = NULL;
            errbuf_set(err, errlen, "out of memory");
            rc = SIGNER_ERR;
        }
    }
    call_end(&k);
    return rc;
}

int
signer_tls_reload(signer *s, int commit, char **chain_pem, char *err, size_t errlen)
{
    struct call k;
    const char *pem;
    *chain_pem = NULL;
    int rc = call_begin(s, &k, SG_OP_TLS_RELOAD, err, errlen);
    if (rc != 0)
        return rc;
    sg_wire_put_flag(&k.w, commit);
    if ((rc = call_run(&k, err, errlen)) == 0) {
        sg_wire_get_str(&k.r, &pem, SG_WIRE_MAX);
        if ((rc = call_done(&k, err, errlen)) == 0 && (*chain_pem = strdup(pem)) == NULL) {
            errbuf_set(err, errlen, "out of memory");
            rc = SIGNER_ERR;
        }
    }
    call_end(&k);
    return rc;
}
