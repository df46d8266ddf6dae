/* Unit tests for server/http/http_conns.c: the head deadline is not reset by trickled bytes, busy
 * connections have no deadline, a stalled body is cut, and at max_connections or an address's limit
 * the oldest connection that may gives way, else the new one is refused at once. Connections are
 * socketpairs: a shut-down end reads as EOF on the other. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_conns.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

struct pair {
    struct http_conn c;
    int fd[2]; /* fd[0] tracked, fd[1] the client's end */
};

static http_conns *
start_per(int64_t max, int64_t head_s, int64_t rate, int64_t per_address)
{
    struct http_conns_limits lim = {max, head_s, 1, rate, per_address};
    char err[128];
    http_conns *s = http_conns_start(&lim, err, sizeof(err));
    assert_non_null(s);
    return s;
}

static http_conns *
start(int64_t max, int64_t head_s, int64_t rate)
{
    return start_per(max, head_s, rate, 0);
}

/* A connection from 127.0.0.<host> (0: no address); returns what http_conns_add did. */
static int
pair_open_from(http_conns *s, struct pair *p, int host)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)host);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
    return http_conns_add(s, &p->c, p->fd[0], host > 0 ? (struct sockaddr *)&sin : NULL);
}

static void
pair_open(http_conns *s, struct pair *p)
{
    assert_int_equal(pair_open_from(s, p, 0), 1);
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
test_oldest_gives_way_at_the_limit(void **state)
{
    (void)state;
    http_conns *s = start(4, 100, 0);
    struct pair p[6];
    for (int i = 0; i < 4; i++)
        pair_open(s, &p[i]);
    http_conn_set(&p[0].c, HTTP_CONN_BUSY); /* a request being handled never gives way */
    http_conn_set(&p[1].c, HTTP_CONN_IDLE);
    http_conn_set(&p[2].c, HTTP_CONN_BODY);
    /* below the limit nothing is closed early */
    for (int i = 0; i < 4; i++)
        assert_false(closed_within(&p[i], i == 0 ? 300 : 0));
    /* the fifth: the idle one gives way */
    assert_int_equal(pair_open_from(s, &p[4], 0), 1);
    assert_true(closed_within(&p[1], 0));
    assert_false(closed_within(&p[3], 0)); /* its head is younger than the grace */
    /* the sixth: nothing may give way, so it is refused at once */
    assert_int_equal(pair_open_from(s, &p[5], 0), 0);
    assert_true(closed_within(&p[5], 0));
    for (int i = 0; i < 6; i++)
        if (i != 1 && i != 5)
            assert_false(closed_within(&p[i], 0));
    for (int i = 0; i < 6; i++)
        pair_close(s, &p[i]);
    http_conns_stop(s);
}

static void
test_per_address_limit(void **state)
{
    (void)state;
    http_conns *s = start_per(100, 100, 0, 2);
    struct pair a[4], b;
    assert_int_equal(pair_open_from(s, &a[0], 1), 1);
    assert_int_equal(pair_open_from(s, &a[1], 1), 1);
    assert_int_equal(pair_open_from(s, &b, 2), 1); /* another address is not limited by .1 */
    http_conn_set(&a[0].c, HTTP_CONN_BODY);
    http_conn_set(&a[1].c, HTTP_CONN_IDLE);
    /* .1 at its limit: its idle connection gives way, then nothing may: refused */
    assert_int_equal(pair_open_from(s, &a[2], 1), 1);
    assert_true(closed_within(&a[1], 0));
    assert_int_equal(pair_open_from(s, &a[3], 1), 0);
    assert_true(closed_within(&a[3], 0));
    assert_false(closed_within(&a[0], 0));
    assert_false(closed_within(&b, 0));
    /* once a connection of .1 is gone, .1 may connect again */
    pair_close(s, &a[0]);
    struct pair again;
    assert_int_equal(pair_open_from(s, &again, 1), 1);
    pair_close(s, &again);
    for (int i = 1; i < 4; i++)
        pair_close(s, &a[i]);
    pair_close(s, &b);
    http_conns_stop(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_deadline_ignores_trickle),
        cmocka_unit_test(test_busy_has_no_deadline_and_slow_body_is_cut),
        cmocka_unit_test(test_oldest_gives_way_at_the_limit),
        cmocka_unit_test(test_per_address_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
