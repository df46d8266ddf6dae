/* sdnotify: the service manager's readiness protocol (sd_notify(3)), written out by hand: one
 * datagram of "KEY=value" lines to the AF_UNIX socket $NOTIFY_SOCKET names (a path, or "@name" in
 * the abstract namespace). systemd's Type=notify waits for READY=1; STATUS= is what `systemctl
 * status` shows; STOPPING=1, RELOADING=1 (+ MONOTONIC_USEC) and WATCHDOG=1 report the drain, a
 * SIGHUP and that the loop still turns. Outside systemd ($NOTIFY_SOCKET unset) every send is a
 * no-op, so the daemon calls these unconditionally. Nothing here allocates; a socket is opened and
 * closed per message (a few per minute at most), so no descriptor is inherited by the signer. */
#ifndef AEGIS_SDNOTIFY_H
#define AEGIS_SDNOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct sdnotify {
    struct sockaddr_un addr;
    socklen_t addrlen;      /* 0: no service manager listens, sends do nothing */
    uint64_t watchdog_usec; /* WATCHDOG_USEC for this process, 0: no watchdog asked for */
};

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC / $WATCHDOG_PID (a watchdog meant for another process is
 * ignored). Returns 0 (also when they are unset), or -1 with a message in err when $NOTIFY_SOCKET
 * is not a usable address (then n is disabled). */
int sdnotify_init(struct sdnotify *n, char *err, size_t errlen);

/* Sends state ("READY=1\nSTATUS=serving", at most 4 KiB) as one datagram. Returns 0 (also when
 * disabled), or -errno. */
int sdnotify_send(const struct sdnotify *n, const char *state);

/* printf-like sdnotify_send. */
int sdnotify_sendf(const struct sdnotify *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "RELOADING=1" with MONOTONIC_USEC (CLOCK_MONOTONIC now, as systemd wants it) and status. */
int sdnotify_reloading(const struct sdnotify *n, const char *status);

#endif
