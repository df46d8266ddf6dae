/* Unit tests of server/sdnotify.h against a real AF_UNIX datagram socket, as systemd listens: a
 * path and an abstract name, the watchdog's environment, and the failures a daemon must survive
 * (no listener, a malformed $NOTIFY_SOCKET, a message too long). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sdnotify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct listener {
    int fd;
    char path[108]; /* the socket file, "" for an abstract name */
    char env[108];  /* what $NOTIFY_SOCKET says */
};

/* Binds a datagram socket at a fresh path (abstract: "@name") and points $NOTIFY_SOCKET at it. */
static void
listen_at(struct listener *l, int abstract)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    socklen_t len;
    memset(l, 0, sizeof(*l));
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    if (abstract) {
        snprintf(l->env, sizeof(l->env), "@aegis-sdnotify-test-%d", (int)getpid());
        memcpy(a.sun_path + 1, l->env + 1, strlen(l->env) - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->env));
    } else {
        char dir[] = "/tmp/aegis-sdnotify-XXXXXX";
        assert_non_null(mkdtemp(dir));
        snprintf(l->path, sizeof(l->path), "%s/notify", dir);
        snprintf(l->env, sizeof(l->env), "%s", l->path);
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", l->path);
        len = sizeof(a);
    }
    assert_int_equal(bind(l->fd, (struct sockaddr *)&a, len), 0);
    setenv("NOTIFY_SOCKET", l->env, 1);
}

static void
listener_close(struct listener *l)
{
    close(l->fd);
    if (l->path[0] != '\0') {
        unlink(l->path);
        *strrchr(l->path, '/') = '\0';
        rmdir(l->path);
    }
    unsetenv("NOTIFY_SOCKET");
}

/* The next datagram, whole (MSG_TRUNC: its real length), NUL-terminated; fails the test when none
 * is waiting. */
static void
receive(const struct listener *l, char *buf, size_t size)
{
    ssize_t n = recv(l->fd, buf, size - 1, MSG_DONTWAIT | MSG_TRUNC);
    assert_true(n >= 0);
    assert_true((size_t)n < size);
    buf[n] = '\0';
}

/* The next datagram is exactly want. */
static void
expect(const struct listener *l, const char *want)
{
    char buf[8192];
    receive(l, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void
assert_nothing_waiting(const struct listener *l)
{
    char c;
    assert_int_equal(recv(l->fd, &c, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
}

static void
test_path_socket(void **state)
{
    (void)state;
    struct listener l;
    struct sdnotify n;
    listen_at(&l, 0);
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    assert_int_equal(n.watchdog_usec, 0);
    assert_int_equal(sdnotify_send(&n, "READY=1\nSTATUS=serving"), 0);
    expect(&l, "READY=1\nSTATUS=serving");
    /* each call is one datagram, in order */
    assert_int_equal(sdnotify_sendf(&n, "STOPPING=1\nSTATUS=draining %d requests", 3), 0);
    assert_int_equal(sdnotify_send(&n, "WATCHDOG=1"), 0);
    expect(&l, "STOPPING=1\nSTATUS=draining 3 requests");
    expect(&l, "WATCHDOG=1");
    assert_nothing_waiting(&l);
    listener_close(&l);
}

static void
test_abstract_socket(void **state)
{
    (void)state;
    struct listener l;
    struct sdnotify n;
    listen_at(&l, 1);
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    assert_int_equal(sdnotify_send(&n, "READY=1"), 0);
    expect(&l, "READY=1");
    listener_close(&l);
}

/* RELOADING=1 carries CLOCK_MONOTONIC in microseconds, taken while sending. */
static void
test_reloading(void **state)
{
    (void)state;
    struct listener l;
    struct sdnotify n;
    struct timespec t0, t1;
    char buf[256];
    unsigned long long usec = 0;
    int consumed = 0;
    listen_at(&l, 0);
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(sdnotify_reloading(&n, "reloading: log file"), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    receive(&l, buf, sizeof(buf));
    assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu\n%n", &usec, &consumed), 1);
    assert_string_equal(buf + consumed, "STATUS=reloading: log file");
    assert_true(usec >=
                (unsigned long long)t0.tv_sec * 1000000ull + (unsigned long long)t0.tv_nsec / 1000);
    assert_true(usec <=
                (unsigned long long)t1.tv_sec * 1000000ull + (unsigned long long)t1.tv_nsec / 1000);
    listener_close(&l);
}

/* WATCHDOG_USEC counts for this process only, and only as a plain number. */
static void
test_watchdog_env(void **state)
{
    (void)state;
    struct listener l;
    struct sdnotify n;
    char pid[32];
    listen_at(&l, 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    unsetenv("WATCHDOG_PID");
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    assert_int_equal(n.watchdog_usec, 30000000);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    assert_int_equal(n.watchdog_usec, 30000000);
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1); /* meant for another process */
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    assert_int_equal(n.watchdog_usec, 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "30s", 1);
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    assert_int_equal(n.watchdog_usec, 0);
    unsetenv("WATCHDOG_USEC");
    listener_close(&l);
}

/* No $NOTIFY_SOCKET (not under systemd): every send succeeds doing nothing. */
static void
test_unset(void **state)
{
    (void)state;
    struct sdnotify n;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    assert_int_equal(n.addrlen, 0);
    assert_int_equal(sdnotify_send(&n, "READY=1"), 0);
    assert_int_equal(sdnotify_reloading(&n, "x"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    assert_int_equal(n.addrlen, 0);
    unsetenv("NOTIFY_SOCKET");
}

static void
test_malformed(void **state)
{
    (void)state;
    struct sdnotify n;
    char err[200], longpath[200];
    const char *bad[] = {"relative/path", "@", "vsock:2:1234"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("NOTIFY_SOCKET", bad[i], 1);
        err[0] = '\0';
        assert_int_equal(sdnotify_init(&n, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "NOTIFY_SOCKET"));
        assert_int_equal(n.addrlen, 0); /* disabled: sends are no-ops */
        assert_int_equal(sdnotify_send(&n, "READY=1"), 0);
    }
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    assert_int_equal(sdnotify_init(&n, err, sizeof(err)), -1);
    unsetenv("NOTIFY_SOCKET");
}

/* Nobody listening, or a message beyond the printf buffer: an error code, never a crash or a
 * blocked daemon. */
static void
test_failures(void **state)
{
    (void)state;
    struct listener l;
    struct sdnotify n;
    char big[5000];
    listen_at(&l, 0);
    assert_int_equal(sdnotify_init(&n, NULL, 0), 0);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(sdnotify_sendf(&n, "STATUS=%s", big), -EMSGSIZE);
    assert_nothing_waiting(&l);
    listener_close(&l); /* the socket file is gone */
    int rc = sdnotify_send(&n, "READY=1");
    assert_true(rc == -ENOENT || rc == -ECONNREFUSED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_socket), cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_reloading),   cmocka_unit_test(test_watchdog_env),
        cmocka_unit_test(test_unset),       cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
