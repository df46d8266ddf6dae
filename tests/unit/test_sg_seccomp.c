/* Unit tests of signer/sg_seccomp.c, in forked children (a filter cannot be removed): under the
 * worker's filter the worker's real work runs (a leaf issued from keys loaded after the filter,
 * an online TUF key made and used, the TLS key's signature, the issuance log appended and synced)
 * while socket(), execve(), executable memory and signals to others kill it with SIGSYS; under the
 * supervisor's filter it forks a worker that installs its own filter, and cannot make a namespace.
 * Children report by exit status only (no cmocka assertions across fork). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_pki_fx.h"

#include "sg_ilog.h"
#include "sg_policy.h"
#include "sg_seccomp.h"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* What a child did, as the status waitpid reports. */
static int
in_child(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg)); /* _exit: no atexit handlers (LeakSanitizer's would ptrace) */
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void
assert_exit0(int st)
{
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void
assert_sigsys(int st)
{
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
}

/* A child under a filter doing what. */
struct filtered {
    int (*filter)(char *err, size_t errlen);
    void (*what)(void);
};

static int
filtered_then(void *arg)
{
    const struct filtered *f = arg;
    char err[256];
    if (f->filter(err, sizeof(err)) != 0)
        return 10;
    f->what();
    return 0;
}

static int
under(int (*filter)(char *, size_t), void (*what)(void))
{
    struct filtered f = {filter, what};
    return in_child(filtered_then, &f);
}

static void
do_nothing(void)
{
    if (getpid() <= 0)
        _exit(11);
}

static void
do_socket(void)
{
    (void)socket(AF_INET, SOCK_STREAM, 0);
    _exit(12);
}

static void
do_socketpair(void)
{
    int sv[2];
    (void)socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    _exit(12);
}

static void
do_exec(void)
{
    char *argv[] = {"/bin/true", NULL};
    execv("/bin/true", argv);
    _exit(12);
}

static void
do_exec_memory(void)
{
    (void)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    _exit(12);
}

static void
do_mprotect_exec(void)
{
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        _exit(13);
    (void)mprotect(m, 4096, PROT_READ | PROT_EXEC);
    _exit(12);
}

/* A signal to itself (abort(), raise()) is allowed. */
static void
do_raise(void)
{
    raise(SIGTERM);
    _exit(12);
}

static void
do_kill_parent(void)
{
    (void)kill(getppid(), 0);
    _exit(12);
}

static void
do_fork(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    _exit(12);
}

static void
test_worker_refuses(void **state)
{
    (void)state;
    assert_exit0(under(sg_seccomp_worker, do_nothing));
    assert_sigsys(under(sg_seccomp_worker, do_socket));
    assert_sigsys(under(sg_seccomp_worker, do_socketpair));
    assert_sigsys(under(sg_seccomp_worker, do_exec));
    assert_sigsys(under(sg_seccomp_worker, do_exec_memory));
    assert_sigsys(under(sg_seccomp_worker, do_mprotect_exec));
    assert_sigsys(under(sg_seccomp_worker, do_kill_parent));
    int st = under(sg_seccomp_worker, do_raise);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_sigsys(under(sg_seccomp_worker, do_fork));
}

/* The worker's work, prepared as the signer does (keyring, policy, log opened; no key loaded). */
struct work {
    char dir[PATH_MAX];
    char key_name[80];
    char log[PATH_MAX + 16];
    char tls[PATH_MAX + 16];
    char *csr;
    int sock; /* a socket inherited from the parent */
};

static int
do_work(const struct work *w)
{
    char err[512], sig_hex[OTA_SIG_HEX_LEN], keyid[OTA_KEYID_HEX_LEN], uri[160], ts[32];
    char *pem = NULL;
    unsigned char sig[72], tls13[130];
    size_t siglen;
    struct keyring_issued out;
    struct pki_leaf_profile p;
    ota_key pub;
    const struct sg_policy_opts o = {86400, 10, 10};
    int rc = 1;
    keyring *kr = keyring_new(w->dir, err, sizeof(err));
    sg_ilog *l = sg_ilog_open(w->log, err, sizeof(err));
    sg_policy *pol = sg_policy_new(&o);
    if (kr == NULL || l == NULL || pol == NULL || sg_seccomp_worker(err, sizeof(err)) != 0)
        goto out;
    struct signer_leaf_req r = {1,
                                "Tenant One",
                                "0123456789abcdef0123456789abcdef"
                                "0123456789abcdef0123456789abcdef",
                                w->key_name,
                                w->csr,
                                strlen(w->csr),
                                3600};
    int64_t retry;
    rc = 2;
    if (sg_policy_leaf(pol, &r, util_now(), &p, uri, err, sizeof(err)) != 0 ||
        sg_policy_take(pol, 1, (double)util_mono_ns() / 1e9, &retry) != 0 ||
        keyring_issue(kr, w->key_name, w->csr, strlen(w->csr), &p, &pem, &out, err, sizeof(err)))
        goto out;
    rc = 3;
    struct sg_ilog_rec rec = {util_now(),  "device_cert", 1, r.device_id, out.serial_hex,
                              w->key_name, out.not_after};
    if (sg_ilog_append(l, &rec, err, sizeof(err)) != 0 || sg_ilog_sync(l, err, sizeof(err)) != 0)
        goto out;
    rc = 4;
    char snap[256];
    snprintf(snap, sizeof(snap), "{\"_type\":\"snapshot\",\"version\":1,\"expires\":\"%s\"}",
             util_rfc3339(util_now() + 3600, ts, sizeof(ts)));
    if (keyring_ed25519_public(kr, "tenants/1/tuf-snapshot", 1, &pub, err, sizeof(err)) != 0 ||
        sg_policy_tuf("tenants/1/tuf-snapshot", (const unsigned char *)snap, strlen(snap),
                      util_now(), err, sizeof(err)) != 0 ||
        keyring_ed25519_sign(kr, "tenants/1/tuf-snapshot", (const unsigned char *)snap,
                             strlen(snap), sig_hex, keyid, err, sizeof(err)) != 0)
        goto out;
    rc = 5;
    memset(tls13, 0x20, 64);
    memcpy(tls13 + 64, "TLS 1.3, server CertificateVerify", 34);
    memset(tls13 + 98, 7, 32);
    if (keyring_tls_load(kr, w->tls, err, sizeof(err)) != 0 ||
        sg_policy_tls(tls13, 130, err, sizeof(err)) != 0 ||
        keyring_tls_sign(kr, tls13, 130, sig, &siglen, err, sizeof(err)) != 0)
        goto out;
    rc = 6;
    if (send(w->sock, pem, strlen(pem), 0) != (ssize_t)strlen(pem))
        goto out;
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "worker step %d: %s\n", rc, err);
    free(pem);
    sg_policy_free(pol);
    sg_ilog_close(l);
    keyring_free(kr);
    return rc;
}

static int
worker_work(void *arg)
{
    return do_work(arg);
}

static void
work_make(struct work *w, int sock)
{
    char err[512];
    int created;
    char *ca = NULL;
    memset(w, 0, sizeof(*w));
    tmp_path(w->dir, sizeof(w->dir), "seccomp-pki");
    if (access(w->dir, F_OK) != 0) {
        assert_int_equal(pki_init_dir(w->dir, "localhost", &created, err, sizeof(err)), 0);
        assert_int_equal(pki_tenant_ca_create(w->dir, 1, "Tenant One", 86400 * 30, w->key_name,
                                              sizeof(w->key_name), &ca, NULL, NULL, err,
                                              sizeof(err)),
                         0);
        free(ca);
    }
    snprintf(w->key_name, sizeof(w->key_name), "tenants/1/ca-1");
    snprintf(w->log, sizeof(w->log), "%s/issuance.log", w->dir);
    snprintf(w->tls, sizeof(w->tls), "%s/server.key", w->dir);
    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    w->csr = make_csr(dev, dev, 0);
    EVP_PKEY_free(dev);
    w->sock = sock;
}

static void
check_delivered(int sock, const char *log, size_t want_lines)
{
    char buf[4096], err[256];
    size_t lines = 0;
    ssize_t n = recv(sock, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "BEGIN CERTIFICATE"));
    assert_int_equal(sg_ilog_verify(log, &lines, err, sizeof(err)), 0);
    assert_int_equal(lines, want_lines);
}

static void
test_worker_works(void **state)
{
    (void)state;
    int sv[2];
    struct work w;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    work_make(&w, sv[1]);
    assert_exit0(in_child(worker_work, &w));
    check_delivered(sv[0], w.log, 1);
    free(w.csr);
    close(sv[0]);
    close(sv[1]);
}

/* Supervisor: filter, then fork a worker that filters itself and works; then a namespace. */
static int
supervisor_then_worker(void *arg)
{
    char err[256];
    int st = 0;
    if (sg_seccomp_supervisor(err, sizeof(err)) != 0)
        return 20;
    if (prctl(PR_SET_NAME, "aegis-sigsup") != 0)
        return 21;
    pid_t pid = fork();
    if (pid < 0)
        return 22;
    if (pid == 0)
        _exit(do_work(arg));
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 23;
    /* a worker killed by its filter is seen as such */
    pid = fork();
    if (pid == 0) {
        char e[256];
        if (sg_seccomp_worker(e, sizeof(e)) == 0)
            (void)socket(AF_UNIX, SOCK_DGRAM, 0);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
        return 24;
    return 0;
}

static void
do_new_namespace(void)
{
    (void)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0UL);
    _exit(12);
}

static void
do_thread_clone(void)
{
    (void)syscall(SYS_clone, (unsigned long)(CLONE_VM | CLONE_THREAD | CLONE_SIGHAND), NULL, NULL,
                  NULL, 0UL);
    _exit(12);
}

static void
do_unshare(void)
{
    (void)unshare(CLONE_NEWNET);
    _exit(12);
}

static void
test_supervisor(void **state)
{
    (void)state;
    int sv[2];
    struct work w;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    work_make(&w, sv[1]);
    size_t before = 0;
    char err[256];
    if (access(w.log, F_OK) == 0)
        assert_int_equal(sg_ilog_verify(w.log, &before, err, sizeof(err)), 0);
    assert_exit0(in_child(supervisor_then_worker, &w));
    check_delivered(sv[0], w.log, before + 1);
    free(w.csr);
    close(sv[0]);
    close(sv[1]);
    assert_sigsys(under(sg_seccomp_supervisor, do_new_namespace));
    assert_sigsys(under(sg_seccomp_supervisor, do_thread_clone));
    assert_sigsys(under(sg_seccomp_supervisor, do_unshare));
    assert_sigsys(under(sg_seccomp_supervisor, do_socket));
    assert_sigsys(under(sg_seccomp_supervisor, do_exec));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_refuses),
        cmocka_unit_test(test_worker_works),
        cmocka_unit_test(test_supervisor),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
