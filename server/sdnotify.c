/* sdnotify: see sdnotify.h. The protocol is small enough that libsystemd (and its dependency on the
 * whole of systemd's shared library) would buy nothing: an address from the environment, one
 * sendto() per state change. */
#include "sdnotify.h"

#include "errbuf.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATE_MAX 4096

/* A decimal number that fits in uint64_t, nothing else. Returns 0 / -1. */
static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static void
read_watchdog(struct sdnotify *n)
{
    uint64_t usec = 0, pid = 0;
    const char *p = getenv("WATCHDOG_PID");
    /* set for the main process only: a forked child must not ping for it */
    if (p != NULL && (parse_u64(p, &pid) != 0 || pid != (uint64_t)getpid()))
        return;
    if (parse_u64(getenv("WATCHDOG_USEC"), &usec) == 0)
        n->watchdog_usec = usec;
}

int
sdnotify_init(struct sdnotify *n, char *err, size_t errlen)
{
    assert(n != NULL);
    memset(n, 0, sizeof(*n));
    const char *s = getenv("NOTIFY_SOCKET");
    if (s == NULL || *s == '\0')
        return 0;
    size_t len = strlen(s);
    if ((s[0] != '/' && s[0] != '@') || len < 2 || len >= sizeof(n->addr.sun_path)) {
        errbuf_set(err, errlen, "NOTIFY_SOCKET is not an AF_UNIX socket path or @name: %.100s", s);
        return -1;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, s, len);
    if (s[0] == '@') /* the abstract namespace: a leading NUL, the length counts, no NUL after */
        n->addr.sun_path[0] = '\0';
    n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (s[0] == '/'));
    read_watchdog(n);
    return 0;
}

int
sdnotify_send(const struct sdnotify *n, const char *state)
{
    int rc = 0;
    assert(n != NULL && state != NULL);
    if (n->addrlen == 0)
        return 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t len = (ssize_t)strlen(state);
    /* one datagram: the receiver takes a message whole or not at all */
    ssize_t sent =
        sendto(fd, state, (size_t)len, MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addrlen);
    if (sent < 0)
        rc = -errno;
    else if (sent != len)
        rc = -EMSGSIZE;
    close(fd);
    return rc;
}

int
sdnotify_sendf(const struct sdnotify *n, const char *fmt, ...)
{
    char buf[STATE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(buf))
        return -EMSGSIZE;
    return sdnotify_send(n, buf);
}

int
sdnotify_reloading(const struct sdnotify *n, const char *status)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec =
        (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
    return sdnotify_sendf(n, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s", usec, status);
}
