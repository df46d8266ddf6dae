/* Unit tests of the signer process (signer/sg_proc.c, sg_serve.c, sg_wire.c) through aegisd's
 * client (signer.h), with real forks: a device certificate that chains to its CA, ed25519 and TLS
 * signatures that verify, malformed frames written raw to a signer socket, the worker killed and
 * restarted, and no process left behind by signer_free. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_pki_fx.h"

#include "ota_keys.h"
#include "sg_ilog.h"
#include "sg_proc.h"
#include "sg_wire.h"
#include "signer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define DEVICE_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct env {
    struct tenant_pki t;
    char tls_key[PATH_MAX + 16], ilog[PATH_MAX + 16];
    struct signer_opts o;
};

static void
env_make(struct env *e, const char *name)
{
    tenant_pki_make(&e->t, name);
    snprintf(e->tls_key, sizeof(e->tls_key), "%s/server.key", e->t.dir);
    snprintf(e->ilog, sizeof(e->ilog), "%s/issuance.log", e->t.dir);
    struct signer_opts o = {e->t.dir, e->tls_key, e->ilog, 90 * 86400LL, 100.0,
                            100.0,    5000,       3,       NULL};
    e->o = o;
}

static void
env_free(struct env *e)
{
    tenant_pki_free(&e->t);
}

/* No child of this process is left, zombie or not. */
static void
assert_no_child(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* The first process whose parent is ppid, by /proc (0: none). */
static pid_t
child_of(pid_t ppid)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    pid_t found = 0;
    assert_non_null(d);
    while (found == 0 && (de = readdir(d)) != NULL) {
        char p[300], buf[512];
        long pid = strtol(de->d_name, NULL, 10), pp = 0;
        snprintf(p, sizeof(p), "/proc/%s/stat", de->d_name);
        FILE *f = pid > 0 ? fopen(p, "r") : NULL;
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        if (rp != NULL && sscanf(rp + 1, " %*c %ld", &pp) == 1 && pp == ppid)
            found = (pid_t)pid;
    }
    closedir(d);
    return found;
}

static void
assert_comm(pid_t pid, const char *name)
{
    char p[64], buf[64] = "";
    snprintf(p, sizeof(p), "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    assert_string_equal(buf, name);
}

/* Whether pid is gone (or a zombie nobody reaped yet). */
static int
gone(pid_t pid)
{
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp != NULL && rp[2] == 'Z';
}

/* Canonical-looking snapshot metadata that expires in an hour. */
static void
snapshot_msg(char *buf, size_t len)
{
    char exp[32];
    time_t t = time(NULL) + 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(buf, len,
             "{\"_type\":\"snapshot\",\"expires\":\"%s\",\"meta\":{\"targets.json\":{\"version\":1}"
             "},\"spec_version\":\"1.0.31\",\"version\":1}",
             exp);
}

static void
test_issue(void **state)
{
    (void)state;
    struct env e;
    char err[512], *pem = NULL;
    env_make(&e, "issue");
    signer *s = signer_start(&e.o, err, sizeof(err));
    if (s == NULL)
        print_message("signer_start: %s\n", err);
    assert_non_null(s);
    assert_comm(signer_pid(s), "aegis-sigsup");

    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    char *csr = make_csr(dev, dev, 0);
    struct signer_leaf_req q = {1, "Tenant One", DEVICE_ID, e.t.key_name, csr, strlen(csr), 86400};
    assert_int_equal(signer_issue_device_cert(s, &q, &pem, err, sizeof(err)), 0);
    X509 *leaf = pki_cert_from_pem(pem, strlen(pem));
    assert_non_null(leaf);
    assert_int_equal(verify_chain(e.t.root, e.t.ca, leaf, X509_PURPOSE_SSL_CLIENT), 1);
    assert_cn(leaf, DEVICE_ID);

    /* a lifetime beyond the signer's maximum is refused, whatever aegisd asks */
    char *none = NULL;
    q.lifetime_s = 91 * 86400LL;
    assert_int_equal(signer_issue_device_cert(s, &q, &none, err, sizeof(err)), SIGNER_REFUSED);
    assert_null(none);
    /* a CSR that does not parse is an error, and the signer stays up */
    q.lifetime_s = 86400;
    q.csr_pem = "junk";
    q.csr_len = 4;
    assert_int_not_equal(signer_issue_device_cert(s, &q, &none, err, sizeof(err)), 0);
    assert_null(none);
    assert_int_equal(signer_restarts(s), 0);
    /* the issuance is in the signer's log, durable before the answer */
    size_t lines = 0;
    assert_int_equal(sg_ilog_verify(e.ilog, &lines, err, sizeof(err)), 0);
    assert_int_equal(lines, 1);
    /* a tenant whose newest CA is far from its end gets no new one */
    char *kn = NULL, *ca = NULL;
    assert_int_equal(signer_ca_rollover(s, 1, "Tenant One", &kn, &ca, err, sizeof(err)),
                     SIGNER_REFUSED);
    assert_null(kn);

    X509_free(leaf);
    free(pem);
    free(csr);
    EVP_PKEY_free(dev);
    signer_free(s);
    assert_no_child();
    env_free(&e);
}

/* Past the tenant's burst the signer answers BUSY with the time to wait. */
static void
test_rate(void **state)
{
    (void)state;
    struct env e;
    char err[512], *pem = NULL;
    env_make(&e, "rate");
    e.o.issue_rate = 0.001;
    e.o.issue_burst = 2;
    signer *s = signer_start(&e.o, err, sizeof(err));
    assert_non_null(s);
    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    char *csr = make_csr(dev, dev, 0);
    struct signer_leaf_req q = {1, "Tenant One", DEVICE_ID, e.t.key_name, csr, strlen(csr), 86400};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(signer_issue_device_cert(s, &q, &pem, err, sizeof(err)), 0);
        free(pem);
    }
    assert_int_equal(signer_issue_device_cert(s, &q, &pem, err, sizeof(err)), SIGNER_BUSY);
    assert_null(pem);
    assert_non_null(strstr(err, "retry after"));
    free(csr);
    EVP_PKEY_free(dev);
    signer_free(s);
    assert_no_child();
    env_free(&e);
}

static void
test_ed25519_and_tls(void **state)
{
    (void)state;
    struct env e;
    char err[512], msg[512], sig[OTA_SIG_HEX_LEN], keyid[OTA_KEYID_HEX_LEN];
    ota_key pub;
    env_make(&e, "keys");
    signer *s = signer_start(&e.o, err, sizeof(err));
    assert_non_null(s);

    assert_int_equal(signer_ed25519_public(s, "tenants/1/tuf-snapshot", 0, &pub, err, sizeof(err)),
                     SIGNER_ERR); /* not made yet */
    assert_int_equal(signer_ed25519_public(s, "tenants/1/tuf-snapshot", 1, &pub, err, sizeof(err)),
                     0);
    assert_int_equal(pub.has_secret, 0);
    snapshot_msg(msg, sizeof(msg));
    assert_int_equal(signer_ed25519_sign(s, "tenants/1/tuf-snapshot", (const unsigned char *)msg,
                                         strlen(msg), sig, keyid, err, sizeof(err)),
                     0);
    assert_string_equal(keyid, pub.keyid);
    assert_int_equal(
        ota_key_verify(&pub, (const unsigned char *)msg, strlen(msg), sig, err, sizeof(err)), 0);
    const char *root = "{\"_type\":\"root\"}";
    assert_int_not_equal(signer_ed25519_sign(s, "tenants/1/tuf-snapshot",
                                             (const unsigned char *)root, strlen(root), sig, keyid,
                                             err, sizeof(err)),
                         0);

    /* a TLS 1.3 server CertificateVerify content, verified with the server certificate's key */
    unsigned char tbs[64 + 34 + 32], der[SIGNER_SIG_MAX];
    size_t dlen = 0;
    memset(tbs, ' ', 64);
    memcpy(tbs + 64, "TLS 1.3, server CertificateVerify", 34); /* with its NUL */
    for (int i = 0; i < 32; i++)
        tbs[98 + i] = (unsigned char)i;
    assert_int_equal(signer_tls_sign(s, tbs, sizeof(tbs), der, &dlen, err, sizeof(err)), 0);
    char crt[PATH_MAX + 16];
    X509 *srv = NULL;
    snprintf(crt, sizeof(crt), "%s/server.crt", e.t.dir);
    assert_int_equal(pki_load_cert(crt, &srv, err, sizeof(err)), 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(srv)), 1);
    assert_int_equal(EVP_DigestVerify(md, der, dlen, tbs, sizeof(tbs)), 1);
    EVP_MD_CTX_free(md);
    /* the same over the digest (GnuTLS's external key), which verifies against the data */
    unsigned char digest[SIGNER_TLS_DIGEST_LEN];
    assert_int_equal(EVP_Digest(tbs, sizeof(tbs), digest, NULL, EVP_sha256(), NULL), 1);
    assert_int_equal(signer_tls_sign_digest(s, digest, der, &dlen, err, sizeof(err)), 0);
    md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(srv)), 1);
    assert_int_equal(EVP_DigestVerify(md, der, dlen, tbs, sizeof(tbs)), 1);
    EVP_MD_CTX_free(md);
    /* data no TLS server signs is refused */
    assert_int_equal(signer_tls_sign(s, digest, sizeof(digest), der, &dlen, err, sizeof(err)),
                     SIGNER_REFUSED);
    X509_free(srv);

    signer_free(s);
    assert_no_child();
    env_free(&e);
}

/* One frame on fd and its reply: the reply's header (status, id) and its first str field, if any.
 */
static uint16_t
exchange(int fd, const void *frame, size_t len, uint32_t *id, char *msg, size_t msglen)
{
    static unsigned char buf[SG_WIRE_MAX];
    struct sg_hdr h;
    struct sg_reader r;
    struct pollfd pf = {fd, POLLIN, 0};
    char err[128];
    const char *m = "";
    assert_int_equal(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
    assert_int_equal(poll(&pf, 1, 10000), 1);
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    assert_true(n > 0);
    assert_int_equal(sg_wire_parse(buf, (size_t)n, &h, &r, err, sizeof(err)), 0);
    if (h.code != SG_ST_OK && h.code != SG_ST_BUSY)
        sg_wire_get_str(&r, &m, 1024);
    snprintf(msg, msglen, "%s", m);
    *id = h.id;
    return h.code;
}

/* A request frame with the fields of w already written, then changed by the caller. */
static size_t
frame_of(unsigned char *buf, uint16_t op, uint32_t id, const char *str)
{
    struct sg_writer w;
    sg_wire_begin(&w, buf, 4096, op, id);
    if (str != NULL) {
        sg_wire_put_str(&w, str);
        sg_wire_put_flag(&w, 1);
    }
    long len = sg_wire_end(&w);
    assert_true(len > 0);
    return (size_t)len;
}

static void
test_malformed(void **state)
{
    (void)state;
    struct env e;
    char err[512], msg[1100];
    unsigned char f[4096];
    uint32_t id = 0;
    int sv[2], lp[2];
    env_make(&e, "malformed");
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe2(lp, O_CLOEXEC), 0);
    assert_int_equal(sg_wire_bufsize(sv[0]), 0);
    assert_int_equal(sg_wire_bufsize(sv[1]), 0);
    pid_t sup = sg_proc_spawn(&e.o, &sv[1], 1, lp[0], err, sizeof(err));
    assert_true(sup > 0);
    close(sv[1]);
    close(lp[0]);

    size_t len = frame_of(f, SG_OP_PING, 7, NULL);
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_OK);
    assert_int_equal(id, 7);

    assert_int_equal(exchange(sv[0], "AGS", 3, &id, msg, sizeof(msg)), SG_ST_ERR); /* short */
    assert_int_equal(id, 0);
    len = frame_of(f, SG_OP_PING, 8, NULL);
    f[0] = 'X'; /* magic */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_ERR);
    assert_int_equal(id, 8);
    len = frame_of(f, SG_OP_PING, 9, NULL);
    f[5] = 2; /* version 2 */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_VERSION);
    assert_int_equal(id, 9);
    len = frame_of(f, 99, 10, NULL); /* unknown op */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_ERR);
    len = frame_of(f, SG_ST_OK, 11, NULL); /* a status is not a request */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_ERR);
    len = frame_of(f, SG_OP_ED25519_PUBLIC, 12, "tenants/1/tuf-snapshot");
    f[15] ^= 1; /* body length other than the frame's */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_ERR);
    len = frame_of(f, SG_OP_ED25519_PUBLIC, 13, "tenants/1/tuf-snapshot");
    f[SG_WIRE_HDR + 3] = 200; /* a field running past the body */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_ERR);
    assert_non_null(strstr(msg, "past the frame"));
    len = frame_of(f, SG_OP_ED25519_PUBLIC, 14, "tenants/1/tuf-snapshot");
    f[SG_WIRE_HDR + 4 + 3] = '\0'; /* a NUL in a string */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_ERR);
    assert_non_null(strstr(msg, "NUL"));
    len = frame_of(f, SG_OP_ED25519_PUBLIC, 15, "tenants/1/tuf-snapshot");
    f[len - 1] = 7; /* a flag that is not 0 or 1 */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_ERR);
    len = frame_of(f, SG_OP_ED25519_PUBLIC, 16, "tenants/1/tuf-snapshot");
    memcpy(f + len, "\0\0\0\0", 4); /* bytes after the last field */
    f[15] += 4;
    assert_int_equal(exchange(sv[0], f, len + 4, &id, msg, sizeof(msg)), SG_ST_ERR);
    assert_non_null(strstr(msg, "after the last field"));
    len = frame_of(f, SG_OP_ED25519_PUBLIC, 17, NULL); /* missing fields */
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_ERR);
    assert_non_null(strstr(msg, "missing"));
    /* the largest frame there is, and one byte more */
    static unsigned char big[SG_WIRE_MAX + 1], zeros[SG_WIRE_MAX];
    struct sg_writer w;
    sg_wire_begin(&w, big, SG_WIRE_MAX, SG_OP_TLS_SIGN, 18);
    sg_wire_put(&w, zeros, SG_WIRE_MAX - SG_WIRE_HDR - 4);
    assert_int_equal(sg_wire_end(&w), SG_WIRE_MAX);
    assert_int_not_equal(exchange(sv[0], big, SG_WIRE_MAX, &id, msg, sizeof(msg)), SG_ST_OK);
    assert_int_equal(id, 18);
    assert_int_equal(exchange(sv[0], big, SG_WIRE_MAX + 1, &id, msg, sizeof(msg)), SG_ST_ERR);

    /* still the same worker, still answering */
    len = frame_of(f, SG_OP_PING, 19, NULL);
    assert_int_equal(exchange(sv[0], f, len, &id, msg, sizeof(msg)), SG_ST_OK);
    assert_int_equal(id, 19);

    /* aegisd goes: the supervisor exits by itself */
    close(sv[0]);
    close(lp[1]);
    int st = 0;
    assert_int_equal(waitpid(sup, &st, 0), sup);
    assert_true(WIFEXITED(st));
    assert_no_child();
    env_free(&e);
}

static void
test_restart(void **state)
{
    (void)state;
    struct env e;
    char err[512];
    ota_key pub;
    env_make(&e, "restart");
    signer *s = signer_start(&e.o, err, sizeof(err));
    assert_non_null(s);
    pid_t w = child_of(signer_pid(s));
    assert_true(w > 0);
    assert_comm(w, "aegis-signer");
    assert_int_equal(kill(w, SIGKILL), 0);

    /* every call fails at once or succeeds, and within a bounded time they succeed again */
    uint64_t t0 = util_mono_ns();
    int ok = 0, unavailable = 0;
    while (util_mono_ns() - t0 < 10000000000ull) {
        int rc = signer_ed25519_public(s, "tenants/1/tuf-timestamp", 1, &pub, err, sizeof(err));
        assert_true(rc == 0 || rc == SIGNER_UNAVAILABLE);
        unavailable += rc == SIGNER_UNAVAILABLE;
        if (rc == 0 && signer_restarts(s) >= 1 && ++ok >= 3)
            break;
        usleep(20000);
    }
    print_message("restart: %d unavailable, back after %.0f ms\n", unavailable,
                  (double)(util_mono_ns() - t0) / 1e6);
    assert_int_equal(ok, 3);
    assert_int_equal(signer_restarts(s), 1);
    pid_t w2 = child_of(signer_pid(s));
    assert_true(w2 > 0 && w2 != w);

    signer_free(s);
    assert_no_child();
    /* the worker, which the supervisor no longer waits for, dies with it */
    for (int i = 0; i < 200 && !gone(w2); i++)
        usleep(10000);
    assert_true(gone(w2));
    env_free(&e);
}

static void
test_start_failure(void **state)
{
    (void)state;
    struct env e;
    char err[512] = "";
    env_make(&e, "startfail");
    snprintf(e.tls_key, sizeof(e.tls_key), "%s/no-such.key", e.t.dir);
    signer *s = signer_start(&e.o, err, sizeof(err));
    assert_null(s);
    print_message("start failure: %s\n", err);
    assert_non_null(strstr(err, "cannot start"));
    assert_no_child();
    env_free(&e);
}

/* The server certificate's key verifies a TLS signature the signer makes now. */
static int
tls_key_is_the_certs(signer *s, const char *crt)
{
    unsigned char digest[SIGNER_TLS_DIGEST_LEN], der[SIGNER_SIG_MAX];
    size_t dlen = 0;
    char err[256];
    X509 *srv = NULL;
    memset(digest, 7, sizeof(digest));
    assert_int_equal(signer_tls_sign_digest(s, digest, der, &dlen, err, sizeof(err)), 0);
    assert_int_equal(pki_load_cert(crt, &srv, err, sizeof(err)), 0);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(srv), NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_verify(ctx, der, dlen, digest, sizeof(digest)) == 1;
    EVP_PKEY_CTX_free(ctx);
    X509_free(srv);
    return ok;
}

/* TLS_RELOAD (sg_wire.h op 8): the chain handed back when the key is its leaf's, the key swapped
 * only with commit, and a key that is not the certificate's refused with the old one kept. */
static void
test_tls_reload(void **state)
{
    (void)state;
    struct env e;
    char err[512] = "", crt[PATH_MAX + 16], *chain = NULL;
    EVP_PKEY *other = NULL;
    env_make(&e, "tlsreload");
    snprintf(crt, sizeof(crt), "%s/server.crt", e.t.dir);
    signer *s = signer_start(&e.o, err, sizeof(err));
    assert_non_null(s);
    /* started without the certificate's path: nothing to reload */
    assert_int_equal(signer_tls_reload(s, 1, &chain, err, sizeof(err)), SIGNER_ERR);
    assert_null(chain);
    signer_free(s);

    e.o.tls_cert = crt;
    s = signer_start(&e.o, err, sizeof(err));
    assert_non_null(s);
    for (int commit = 0; commit < 2; commit++) {
        assert_int_equal(signer_tls_reload(s, commit, &chain, err, sizeof(err)), 0);
        assert_non_null(strstr(chain, "-----BEGIN CERTIFICATE-----"));
        free(chain);
        chain = NULL;
    }
    assert_true(tls_key_is_the_certs(s, crt));
    /* another key in the key file: refused, with or without commit, and the old key signs on */
    assert_int_equal(pki_keygen(&other, err, sizeof(err)), 0);
    assert_int_equal(unlink(e.tls_key), 0);
    assert_int_equal(pki_write_key(e.tls_key, other, err, sizeof(err)), 0);
    for (int commit = 0; commit < 2; commit++) {
        assert_int_equal(signer_tls_reload(s, commit, &chain, err, sizeof(err)), SIGNER_ERR);
        assert_null(chain);
        assert_non_null(strstr(err, "not the certificate's"));
    }
    assert_true(tls_key_is_the_certs(s, crt));
    EVP_PKEY_free(other);
    signer_free(s);
    assert_no_child();
    env_free(&e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue),           cmocka_unit_test(test_rate),
        cmocka_unit_test(test_ed25519_and_tls), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_restart),         cmocka_unit_test(test_start_failure),
        cmocka_unit_test(test_tls_reload),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
