/* Unit tests for server/http/http_conns.c: the head deadline is not reset by trickled bytes, busy
 * connections have no deadline, a stalled body is cut, and near the limit the oldest connections
 * without a request give way. Connections are socketpairs: a shut-down end reads as EOF on the
 * other. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_conns.h"
#include "util.h"

#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

struct pair {
    struct http_conn c;
    int fd[2]; /* fd[0] tracked, fd[1] the client's end */
};

static http_conns *
start(int64_t max, int64_t head_s, int64_t rate)
{
    struct http_conns_limits lim = {max, head_s, 1, rate, 0};
    char err[128];
    http_conns *s = http_conns_start(&lim, err, sizeof(err));
    assert_non_null(s);
    return s;
}

static void
pair_open(http_conns *s, struct pair *p)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
    http_conns_add(s, &p->c, p->fd[0], NULL);
}

static void
pair_close(http_conns *s, struct pair *p)
{
    http_conns_remove(s, &p->c);
    close(p->fd[0]);
    close(p->fd[1]);
}

/* Whether the client's end sees the server's end shut down within ms. */
static int
closed_within(struct pair *p, int ms)
{
    struct pollfd pfd = {p->fd[1], POLLIN, 0};
    char b;
    return poll(&pfd, 1, ms) == 1 && read(p->fd[1], &b, 1) == 0;
}

static void
test_head_deadline_ignores_trickle(void **state)
{
    (void)state;
    http_conns *s = start(100, 1, 0);
    struct pair p;
    pair_open(s, &p);
    uint64_t t0 = util_mono_ns();
    int closed = 0;
    for (int i = 0; i < 25 && !closed; i++) {
        assert_int_equal(write(p.fd[1], "x", 1), 1); /* the client's trickle */
        closed = closed_within(&p, 100);
    }
    double took = (double)(util_mono_ns() - t0) / 1e9;
    assert_true(closed);
    assert_true(took > 0.9 && took < 2.0);
    pair_close(s, &p);
    http_conns_stop(s);
}

static void
test_busy_has_no_deadline_and_slow_body_is_cut(void **state)
{
    (void)state;
    http_conns *s = start(100, 1, 1000);
    struct pair busy, body;
    pair_open(s, &busy);
    pair_open(s, &body);
    http_conn_set(&busy.c, HTTP_CONN_BUSY);
    http_conn_set(&body.c, HTTP_CONN_BODY);
    http_conn_body(&body.c, 10); /* far below 1000 B/s */
    assert_true(closed_within(&body, 2000));
    assert_false(closed_within(&busy, 300));
    pair_close(s, &busy);
    pair_close(s, &body);
    http_conns_stop(s);
}

static void
test_oldest_give_way_near_the_limit(void **state)
{
    (void)state;
    /* Limit 8: eviction starts at 7 open and frees down to 6. */
    http_conns *s = start(8, 100, 0);
    struct pair p[8];
    for (int i = 0; i < 8; i++)
        pair_open(s, &p[i]);
    http_conn_set(&p[0].c, HTTP_CONN_BUSY); /* a request being handled never gives way */
    assert_true(closed_within(&p[1], 2000));
    assert_true(closed_within(&p[2], 2000));
    for (int i = 3; i < 8; i++)
        assert_false(closed_within(&p[i], i == 3 ? 300 : 0));
    assert_false(closed_within(&p[0], 0));
    for (int i = 0; i < 8; i++)
        pair_close(s, &p[i]);
    http_conns_stop(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_deadline_ignores_trickle),
        cmocka_unit_test(test_busy_has_no_deadline_and_slow_body_is_cut),
        cmocka_unit_test(test_oldest_give_way_near_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
