#include "sg_proc.h"

#include "errbuf.h"
#include "log.h"
#include "sg_seccomp.h"
#include "sg_serve.h"
#include "sg_sync.h"
#include "sg_wire.h"
#include "util.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int
sg_proc_send(int fd, const unsigned char *frame, size_t len)
{
    ssize_t w;
    do
        w = send(fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)len ? 0 : -1;
}

/* Whether fd is lib/log.c's file: a regular file open write-only with O_APPEND (log.h hands out
 * no descriptor, and at fork time nothing else of aegisd's is open that way). */
static int
is_log_file(int fd)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_ACCMODE) == O_WRONLY && (fl & O_APPEND) && fstat(fd, &st) == 0 &&
           S_ISREG(st.st_mode);
}

static int
kept(int fd, const int *fds, size_t n, int lifeline)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] == fd)
            return 1;
    return fd == lifeline || fd <= STDERR_FILENO || is_log_file(fd);
}

/* Closes every descriptor but the sockets, the lifeline and those of kept(): what aegisd had open
 * (none of which the signer needs) must not live on in it. Returns 0 / -1. */
static int
close_others(const int *fds, size_t n, int lifeline)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int self = dirfd(d), *close_fds = NULL;
    size_t nc = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd == self || kept((int)fd, fds, n, lifeline))
            continue;
        if (nc == cap) {
            cap = cap ? cap * 2 : 64;
            int *p = realloc(close_fds, cap * sizeof(*p));
            if (p == NULL)
                break;
            close_fds = p;
        }
        close_fds[nc++] = (int)fd;
    }
    closedir(d);
    for (size_t i = 0; i < nc; i++)
        close(close_fds[i]);
    free(close_fds);
    return 0;
}

/* Dies with its parent (and at once if it is already gone), named name. */
static void
bind_to_parent(pid_t parent, const char *name)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(0);
    prctl(PR_SET_NAME, name);
}

/* Signals as a daemon's child wants them: a terminal's ^C or a SIGHUP for aegisd is not the
 * signer's business (it exits when aegisd does), SIGTERM ends it. */
static void
child_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
}

/* --- the worker --- */

struct wchan {
    int fd; /* -1 once aegisd closed it */
    unsigned char *rx, *tx;
    size_t txlen;
    uint64_t waits; /* 0, or the flush (generation) its reply waits for */
};

/* The issuance log's flushes: lines appended now are covered by flush `next`; `flying` is the one
 * the syncer is doing (0: none). */
struct wflush {
    sg_sync sy;
    uint64_t next, flying;
};

/* Reads one frame from a ready socket and answers it (or leaves the reply waiting for flush
 * `gen`). Returns 0, or -1 when the socket is closed. */
static int
serve_chan(sg_serve *sv, struct wchan *c, uint64_t gen)
{
    ssize_t n;
    do
        n = recv(c->fd, c->rx, SG_WIRE_MAX, MSG_DONTWAIT | MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN))
        return -1;
    if (n < 0)
        return 0;
    int needs_sync = 0;
    c->txlen = sg_serve_one(sv, c->rx, (size_t)n, c->tx, &needs_sync);
    if (needs_sync)
        c->waits = gen;
    else
        sg_proc_send(c->fd, c->tx, c->txlen);
    return 0;
}

/* Sends the replies that waited for flushes up to gen: as they are when ok, else as errors. */
static void
release(struct wchan *ch, size_t n, uint64_t gen, int ok)
{
    for (size_t i = 0; i < n; i++) {
        if (ch[i].waits == 0 || ch[i].waits > gen)
            continue;
        if (!ok)
            ch[i].txlen = sg_serve_fail(ch[i].tx, "the issuance log cannot be written");
        if (ch[i].fd >= 0)
            sg_proc_send(ch[i].fd, ch[i].tx, ch[i].txlen);
        ch[i].waits = 0;
    }
}

static void
log_sync_failure(const char *err)
{
    char q[LOG_QUOTE_BUF];
    log_error("msg=\"signer: issuance log sync failed\" reason=%s", log_quote(q, sizeof(q), err));
}

/* Starts the next flush when none is running and replies wait for it. Returns 0, or -1 when the
 * syncer is gone. */
static int
flush_start(sg_serve *sv, struct wflush *f, struct wchan *ch, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++)
        any |= ch[i].waits == f->next;
    if (f->flying != 0 || !any)
        return 0;
    int r = sg_serve_sync_begin(sv);
    if (r <= 0) {
        /* nothing appended (cannot be: a waiting reply appended a line) or the log has failed */
        char err[256] = "";
        int ok = r == 0 || sg_serve_sync_end(sv, 1, err, sizeof(err)) == 0;
        if (!ok)
            log_sync_failure(err);
        release(ch, n, f->next++, ok);
        return 0;
    }
    if (sg_sync_request(&f->sy) != 0)
        return -1;
    f->flying = f->next++;
    return 0;
}

/* The syncer's answer: the replies that waited for its flush go out. Returns 0, or -1 when the
 * syncer is gone. */
static int
flush_done(sg_serve *sv, struct wflush *f, struct wchan *ch, size_t n)
{
    char err[256];
    int synced = sg_sync_answer(&f->sy);
    if (synced < 0 || f->flying == 0)
        return -1;
    int ok = sg_serve_sync_end(sv, synced, err, sizeof(err)) == 0;
    if (!ok)
        log_sync_failure(err);
    release(ch, n, f->flying, ok);
    f->flying = 0;
    return flush_start(sv, f, ch, n);
}

/* Polls every socket (but those whose reply waits for a flush: aegisd sends nothing more there
 * before it has the reply) and the syncer's, serves one request per ready socket, until all are
 * closed. Returns 0, or -1 when the syncer is gone (the worker then exits and is restarted). */
static int
worker_loop(sg_serve *sv, struct wflush *f, struct wchan *ch, struct pollfd *pf, size_t n)
{
    for (;;) {
        size_t open = 0;
        for (size_t i = 0; i < n; i++) {
            pf[i].fd = ch[i].waits != 0 ? -1 : ch[i].fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
            open += ch[i].fd >= 0;
        }
        pf[n] = (struct pollfd){f->sy.fd, POLLIN, 0};
        if (open == 0)
            return 0;
        if (poll(pf, (nfds_t)n + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("msg=\"signer: poll failed\" errno=%d", errno);
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (ch[i].fd < 0 || pf[i].revents == 0)
                continue;
            if (serve_chan(sv, &ch[i], f->next) != 0) {
                close(ch[i].fd);
                ch[i].fd = -1;
            }
        }
        if ((pf[n].revents != 0 && flush_done(sv, f, ch, n) != 0) ||
            flush_start(sv, f, ch, n) != 0) {
            log_error("msg=\"signer: the issuance log's syncer is gone\"");
            return -1;
        }
    }
}

/* The worker's life: its keys, then requests until aegisd closes every socket. Never returns. */
static void
worker_main(const struct signer_opts *o, const int *fds, size_t n)
{
    char err[512];
    int rc = 1;
    sg_serve *sv = NULL;
    struct wflush f = {{-1, -1}, 1, 0};
    struct wchan *ch = calloc(n, sizeof(*ch));
    struct pollfd *pf = calloc(n + 1, sizeof(*pf));
    for (size_t i = 0; ch != NULL && i < n; i++) {
        ch[i].fd = fds[i];
        ch[i].rx = malloc(SG_WIRE_MAX);
        ch[i].tx = malloc(SG_WIRE_MAX);
        if (ch[i].rx == NULL || ch[i].tx == NULL)
            goto out;
    }
    if (ch == NULL || pf == NULL)
        goto out;
    /* The keys and the log are open, and the syncer forked, before the filter, which allows no
     * more than using them. */
    if ((sv = sg_serve_new(o, err, sizeof(err))) == NULL ||
        sg_sync_spawn(sv, fds, n, &f.sy, err, sizeof(err)) != 0 ||
        sg_seccomp_worker(err, sizeof(err)) != 0) {
        char q[LOG_QUOTE_BUF];
        log_error("msg=\"signer worker cannot start\" reason=%s", log_quote(q, sizeof(q), err));
        size_t len = sg_serve_start_failure(ch[0].tx, err);
        sg_proc_send(fds[0], ch[0].tx, len);
        goto out;
    }
    log_info("msg=\"signer worker ready\" pid=%ld", (long)getpid());
    rc = worker_loop(sv, &f, ch, pf, n) == 0 ? 0 : 1;
out:
    /* _exit: the atexit handlers are aegisd's, not this process's. */
    _exit(rc);
}

/* --- the supervisor --- */

struct sup {
    const struct signer_opts *o;
    const int *fds;
    size_t n;
    int lifeline, sigfd;
    uint64_t restarts;
};

static pid_t
fork_worker(struct sup *s)
{
    pid_t sup = getpid(), w = fork();
    if (w != 0)
        return w;
    bind_to_parent(sup, "aegis-signer");
    close(s->lifeline);
    close(s->sigfd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    worker_main(s->o, s->fds, s->n);
    return 0; /* not reached */
}

/* Waits up to ms (-1: until the worker dies) while watching the lifeline. Returns 1 when aegisd is
 * gone, 0 otherwise (a SIGCHLD or the time is up). */
static int
sup_wait(struct sup *s, int ms)
{
    struct pollfd pf[2] = {{s->lifeline, POLLIN, 0}, {s->sigfd, POLLIN, 0}};
    int r = poll(pf, 2, ms);
    if (r < 0)
        return 0;
    if (pf[0].revents != 0)
        return 1; /* aegisd never writes to it: any event is its end closing */
    if (pf[1].revents & POLLIN) {
        struct signalfd_siginfo si;
        if (read(s->sigfd, &si, sizeof(si)) < 0)
            return 0;
    }
    return 0;
}

static void
log_exit(pid_t w, int st, uint64_t restarts)
{
    if (WIFSIGNALED(st))
        log_error("msg=\"signer worker died\" pid=%ld signal=%d restarts=%llu", (long)w,
                  WTERMSIG(st), (unsigned long long)restarts);
    else
        log_error("msg=\"signer worker exited\" pid=%ld status=%d restarts=%llu", (long)w,
                  WEXITSTATUS(st), (unsigned long long)restarts);
}

/* Tells every socket that the worker was restarted: a request in flight there is lost. */
static void
notify_restart(struct sup *s, const char *why)
{
    unsigned char frame[256];
    struct sg_writer w;
    sg_wire_begin(&w, frame, sizeof(frame), SG_ST_RESTARTED, 0);
    sg_wire_put_int(&w, (int64_t)s->restarts);
    sg_wire_put_str(&w, why);
    long len = sg_wire_end(&w);
    assert(len > 0);
    for (size_t i = 0; i < s->n; i++)
        sg_proc_send(s->fds[i], frame, (size_t)len);
}

/* Runs workers one after another until aegisd goes. Never returns. */
static void
sup_loop(struct sup *s)
{
    int backoff = SG_PROC_BACKOFF_MIN_MS;
    for (;;) {
        uint64_t t0 = util_mono_ns();
        pid_t w = fork_worker(s);
        int st = 0;
        if (w < 0)
            log_error("msg=\"signer: cannot fork the worker\" errno=%d", errno);
        while (w > 0) {
            if (sup_wait(s, -1)) {
                kill(w, SIGKILL);
                waitpid(w, NULL, 0);
                _exit(0);
            }
            pid_t r = waitpid(w, &st, WNOHANG);
            if (r == w || (r < 0 && errno == ECHILD))
                break;
        }
        s->restarts++;
        if (w > 0)
            log_exit(w, st, s->restarts);
        notify_restart(s, w > 0 && WIFSIGNALED(st) ? "the signer's worker was killed"
                                                   : "the signer's worker exited");
        if ((util_mono_ns() - t0) / 1000000 >= SG_PROC_STABLE_MS)
            backoff = SG_PROC_BACKOFF_MIN_MS;
        uint64_t until = util_mono_ns() + (uint64_t)backoff * 1000000;
        for (uint64_t now; (now = util_mono_ns()) < until;)
            if (sup_wait(s, (int)((until - now) / 1000000) + 1))
                _exit(0);
        backoff = backoff * 2 > SG_PROC_BACKOFF_MAX_MS ? SG_PROC_BACKOFF_MAX_MS : backoff * 2;
    }
}

static void
sup_main(const struct signer_opts *o, const int *fds, size_t n, int lifeline, pid_t aegisd)
{
    struct sup s = {o, fds, n, lifeline, -1, 0};
    bind_to_parent(aegisd, "aegis-sigsup");
    /* No core file of the keys, and no /proc/<pid>/mem for a process of the same user without
     * CAP_SYS_PTRACE; both are inherited by every worker forked from here. */
    struct rlimit no_core = {0, 0};
    if (prctl(PR_SET_DUMPABLE, 0) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0)
        _exit(1);
    child_signals();
    if (close_others(fds, n, lifeline) != 0)
        log_warn("msg=\"signer: cannot list inherited descriptors\"");
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    if ((s.sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        log_error("msg=\"signer: signalfd failed\" errno=%d", errno);
        _exit(1);
    }
    char err[256];
    if (sg_seccomp_supervisor(err, sizeof(err)) != 0) {
        char q[LOG_QUOTE_BUF];
        log_error("msg=\"signer: no seccomp filter\" reason=%s", log_quote(q, sizeof(q), err));
        _exit(1);
    }
    sup_loop(&s);
}

pid_t
sg_proc_spawn(const struct signer_opts *o, const int *fds, size_t n, int lifeline, char *err,
              size_t errlen)
{
    assert(n > 0);
    pid_t aegisd = getpid(), pid = fork();
    if (pid < 0) {
        errbuf_set(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        sup_main(o, fds, n, lifeline, aegisd);
    return pid;
}
