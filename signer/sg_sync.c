#include "sg_sync.h"

#include "errbuf.h"
#include "log.h"
#include "sg_seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* The child: flushes log_fd once per byte read from sock, until the worker closes it. */
static void
syncer_loop(int sock, int log_fd)
{
    for (;;) {
        unsigned char b;
        ssize_t r = recv(sock, &b, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            _exit(r == 0 ? 0 : 1);
        b = fdatasync(log_fd) == 0 ? 0 : 1;
        if (send(sock, &b, 1, MSG_NOSIGNAL) != 1)
            _exit(1);
    }
}

static void
syncer_main(sg_serve *sv, int sock, int other_end, const int *close_fds, size_t n, pid_t worker)
{
    char err[256];
    /* Dies with the worker; the keys it inherited are freed, the log's descriptor kept. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != worker)
        _exit(1);
    prctl(PR_SET_NAME, "aegis-sigsync");
    int log_fd = fcntl(sg_serve_log_fd(sv), F_DUPFD_CLOEXEC, 0); /* dup(2) is not allowed */
    close(other_end);
    for (size_t i = 0; i < n; i++)
        close(close_fds[i]);
    sg_serve_free(sv);
    if (log_fd < 0 || sg_seccomp_worker(err, sizeof(err)) != 0) {
        log_error("msg=\"signer: the issuance log's syncer cannot start\" reason=\"%s\"",
                  log_fd < 0 ? "dup" : err);
        _exit(1);
    }
    syncer_loop(sock, log_fd);
}

int
sg_sync_spawn(sg_serve *sv, const int *close_fds, size_t n, sg_sync *out, char *err, size_t errlen)
{
    int sp[2];
    out->fd = -1;
    out->pid = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        errbuf_set(err, errlen, "issuance log syncer: socketpair: %s", strerror(errno));
        return -1;
    }
    pid_t worker = getpid(), pid = fork();
    if (pid == 0)
        syncer_main(sv, sp[1], sp[0], close_fds, n, worker);
    close(sp[1]);
    if (pid < 0) {
        errbuf_set(err, errlen, "issuance log syncer: fork: %s", strerror(errno));
        close(sp[0]);
        return -1;
    }
    out->fd = sp[0];
    out->pid = pid;
    return 0;
}

int
sg_sync_request(const sg_sync *s)
{
    unsigned char b = 1;
    ssize_t w;
    do
        w = send(s->fd, &b, 1, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w == 1 ? 0 : -1;
}

int
sg_sync_answer(const sg_sync *s)
{
    unsigned char b;
    ssize_t r;
    do
        r = recv(s->fd, &b, 1, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r != 1)
        return -1;
    return b == 0 ? 1 : 0;
}
