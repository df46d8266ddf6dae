/* sg_seccomp: the filters of sg_seccomp.h. The supervisor forks the worker after installing its own
 * filter, and filters stack (the kernel applies every one), so the supervisor's allow-list is the
 * worker's plus what forking and reaping need; the worker then adds its own, narrower one (which
 * the supervisor's allows it to install: seccomp(2), PR_SET_NO_NEW_PRIVS). Anything not listed
 * kills the whole process. The lists were taken from what the worker does under strace (keys read
 * with OpenSSL, ed25519 keys made with sodium, the issuance log appended and synced) and from
 * glibc's habits (access(2), mremap for realloc, TCGETS from isatty in stdio). */
#include "sg_seccomp.h"

#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Calls the worker makes with any arguments: files under its PKI directory and its log, memory,
 * time, signals, and traffic on the sockets it inherited (it can make no new one: socket(),
 * socketpair(), connect(), bind(), accept() and listen() are absent). */
static const int worker_calls[] = {
    SCMP_SYS(read),         SCMP_SYS(readv),           SCMP_SYS(write),
    SCMP_SYS(writev),       SCMP_SYS(pread64),         SCMP_SYS(pwrite64),
    SCMP_SYS(lseek),        SCMP_SYS(openat),          SCMP_SYS(close),
    SCMP_SYS(fstat),        SCMP_SYS(newfstatat),      SCMP_SYS(statx),
    SCMP_SYS(access),       SCMP_SYS(faccessat),       SCMP_SYS(faccessat2),
    SCMP_SYS(getdents64),   SCMP_SYS(fcntl),           SCMP_SYS(flock),
    SCMP_SYS(munmap),       SCMP_SYS(mremap),          SCMP_SYS(brk),
    SCMP_SYS(madvise),      SCMP_SYS(futex),           SCMP_SYS(sched_yield),
    SCMP_SYS(poll),         SCMP_SYS(ppoll),           SCMP_SYS(recvmsg),
    SCMP_SYS(sendmsg),      SCMP_SYS(recvfrom),        SCMP_SYS(sendto),
    SCMP_SYS(shutdown),     SCMP_SYS(fdatasync),       SCMP_SYS(fsync),
    SCMP_SYS(link),         SCMP_SYS(linkat),          SCMP_SYS(unlink),
    SCMP_SYS(unlinkat),     SCMP_SYS(rename),          SCMP_SYS(renameat),
    SCMP_SYS(renameat2),    SCMP_SYS(mkdir),           SCMP_SYS(mkdirat),
    SCMP_SYS(fchmod),       SCMP_SYS(umask),           SCMP_SYS(getpid),
    SCMP_SYS(getppid),      SCMP_SYS(gettid),          SCMP_SYS(getuid),
    SCMP_SYS(geteuid),      SCMP_SYS(getgid),          SCMP_SYS(getegid),
    SCMP_SYS(getrandom),    SCMP_SYS(clock_gettime),   SCMP_SYS(gettimeofday),
    SCMP_SYS(time),         SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),  SCMP_SYS(rt_sigaction),
    SCMP_SYS(sigaltstack),  SCMP_SYS(restart_syscall), SCMP_SYS(exit),
    SCMP_SYS(exit_group),   SCMP_SYS(sysinfo),         SCMP_SYS(prlimit64),
};

/* What the supervisor adds: reap, signal and time its worker, and install the worker's filter. */
static const int supervisor_calls[] = {
    SCMP_SYS(wait4),           SCMP_SYS(waitid),  SCMP_SYS(kill),
    SCMP_SYS(setitimer),       SCMP_SYS(alarm),   SCMP_SYS(getitimer),
    SCMP_SYS(set_robust_list), SCMP_SYS(seccomp), SCMP_SYS(pause),
};

/* prctl options either process uses: its name, the parent-death signal, no_new_privs. */
static const int prctl_ops[] = {PR_SET_NAME,      PR_GET_NAME,         PR_SET_PDEATHSIG,
                                PR_GET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS};

/* clone(2) flags that would make anything but a plain child process: new namespaces, a thread, a
 * shared address space. */
#define CLONE_REFUSED                                                                              \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
     CLONE_NEWCGROUP | CLONE_THREAD | CLONE_VM | CLONE_PARENT)

static int
allow_list(scmp_filter_ctx ctx, const int *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* a call this architecture lacks (a negative pseudo number) has nothing to allow */
        if (calls[i] >= 0 && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0) != 0)
            return -1;
    }
    return 0;
}

/* The worker's rules: worker_calls, memory that never becomes executable, ioctl only for isatty,
 * prctl_ops, and signals to itself only (abort()). */
static int
worker_rules(scmp_filter_ctx ctx)
{
    const scmp_datum_t self = (scmp_datum_t)getpid();
    if (allow_list(ctx, worker_calls, sizeof(worker_calls) / sizeof(worker_calls[0])) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                         SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS)) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, self)) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(prctl_ops) / sizeof(prctl_ops[0]); i++) {
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                             SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctl_ops[i])) != 0)
            return -1;
    }
    return 0;
}

/* The supervisor's additions: fork (clone without CLONE_REFUSED; clone3, whose flags a filter
 * cannot read, fails with ENOSYS so glibc falls back to clone) and supervisor_calls. Its kill(2)
 * is not limited to itself: it stops its worker. socketpair(2) of AF_UNIX only: the worker, whose
 * calls before its own filter are the supervisor's, makes one for its issuance log's syncer
 * (sg_sync.h) and forks it; a socketpair reaches no other process. */
static int
supervisor_rules(scmp_filter_ctx ctx)
{
    if (allow_list(ctx, supervisor_calls, sizeof(supervisor_calls) / sizeof(supervisor_calls[0])) !=
            0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_REFUSED, 0)) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                         SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_UNIX)) != 0)
        return -1;
    return 0;
}

/* Builds and loads a filter: the worker's rules, plus the supervisor's when supervisor is set. */
static int
load(int supervisor, char *err, size_t errlen)
{
    /* KILL_PROCESS needs API level 3 (Linux 4.14); before that KILL ends the calling thread,
     * which in the single-threaded signer is the process. */
    uint32_t kill = seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL;
    int rc = -1, e = 0;
    scmp_filter_ctx ctx = seccomp_init(kill);
    if (ctx == NULL) {
        errbuf_set(err, errlen, "seccomp: cannot create a filter");
        return -1;
    }
    if (worker_rules(ctx) != 0 || (supervisor && supervisor_rules(ctx) != 0)) {
        errbuf_set(err, errlen, "seccomp: cannot add a rule");
        goto out;
    }
    if ((e = seccomp_load(ctx)) != 0) {
        errbuf_set(err, errlen, "seccomp: cannot load the filter: %s", strerror(-e));
        goto out;
    }
    rc = 0;
out:
    seccomp_release(ctx);
    return rc;
}

int
sg_seccomp_worker(char *err, size_t errlen)
{
    return load(0, err, errlen);
}

int
sg_seccomp_supervisor(char *err, size_t errlen)
{
    return load(1, err, errlen);
}
