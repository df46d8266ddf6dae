#include "http_conns.h"

#include "log.h"
#include "util.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define NS_PER_S 1000000000ull
/* How often deadlines are checked: a missed deadline costs at most this much extra. */
#define SWEEP_NS (100 * 1000000ull)
/* Under pressure, a connection without a request head gives way only once it is this old, so a
 * new client's own handshake is not cut short by the next one. */
#define PRESSURE_GRACE_NS (500 * 1000000ull)
/* At max_connections, how many of the oldest connections are looked at for one to give way. */
#define MAKE_ROOM_SCAN 256

struct http_conns {
    struct http_conns_limits lim;
    pthread_mutex_t lock; /* the list, its count and every entry's shut flag */
    pthread_cond_t wake;  /* signalled by http_conns_stop */
    struct http_conn *head, *tail;
    size_t count, shut; /* tracked connections, and how many of them are already shut down */
    int refused, evicted_at_accept; /* since the last sweep, which logs and clears them */
    http_addrs *addrs;              /* open (not shut) connections per client address */
    int stopping;
    pthread_t sweeper;
};

/* Why a sweep closed connections, for one log line per sweep. */
struct sweep_counts {
    int head, body, idle, evicted;
};

void
http_conn_set(struct http_conn *c, enum http_conn_state st)
{
    atomic_store_explicit(&c->body, 0, memory_order_relaxed);
    atomic_store_explicit(&c->since, util_mono_ns(), memory_order_relaxed);
    atomic_store_explicit(&c->state, (int)st, memory_order_relaxed);
}

void
http_conn_body(struct http_conn *c, size_t n)
{
    atomic_fetch_add_explicit(&c->body, n, memory_order_relaxed);
}

/* Counts c for its address and puts it last on the address's list. */
static void
count(http_conns *s, struct http_conn *c)
{
    /* Out of memory, an address goes uncounted: the limit errs on the side of serving. */
    if (http_addrs_add(s->addrs, c->addr) != 0)
        return;
    struct http_addr_list *l = http_addrs_list(s->addrs, c->addr);
    assert(l != NULL);
    c->aprev = l->newest;
    c->anext = NULL;
    if (c->aprev != NULL)
        c->aprev->anext = c;
    else
        l->oldest = c;
    l->newest = c;
    c->counted = 1;
}

/* A shut connection no longer counts for its address: the one that takes its place may come. */
static void
uncount(http_conns *s, struct http_conn *c)
{
    if (!c->counted)
        return;
    struct http_addr_list *l = http_addrs_list(s->addrs, c->addr);
    assert(l != NULL);
    if (c->aprev != NULL)
        c->aprev->anext = c->anext;
    else
        l->oldest = c->anext;
    if (c->anext != NULL)
        c->anext->aprev = c->aprev;
    else
        l->newest = c->aprev;
    c->aprev = c->anext = NULL;
    http_addrs_remove(s->addrs, c->addr);
    c->counted = 0;
}

static void
shut(http_conns *s, struct http_conn *c, int *counter)
{
    shutdown(c->fd, SHUT_RDWR);
    c->shut = 1;
    s->shut++;
    uncount(s, c);
    (*counter)++;
}

void
http_conns_remove(http_conns *s, struct http_conn *c)
{
    /* libmicrohttpd closes the socket only after this returns, so the sweeper, which shuts
     * sockets down under the same lock, can never hit a reused descriptor. */
    pthread_mutex_lock(&s->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    assert(s->count > 0);
    s->count--;
    if (c->shut)
        s->shut--;
    uncount(s, c);
    pthread_mutex_unlock(&s->lock);
}

/* The deadline rules (http_conns.h), for one connection at time now. */
static int
overdue(const struct http_conns_limits *lim, struct http_conn *c, uint64_t now,
        struct sweep_counts *n, int **counter)
{
    uint64_t since = atomic_load_explicit(&c->since, memory_order_relaxed);
    uint64_t age = now > since ? now - since : 0;
    uint64_t head_ns = (uint64_t)lim->header_timeout_s * NS_PER_S;
    switch (atomic_load_explicit(&c->state, memory_order_relaxed)) {
    case HTTP_CONN_HEAD:
        *counter = &n->head;
        return age > head_ns;
    case HTTP_CONN_BODY: {
        uint64_t got = atomic_load_explicit(&c->body, memory_order_relaxed);
        *counter = &n->body;
        return lim->min_body_rate > 0 && age > head_ns &&
               (double)got < (double)lim->min_body_rate * ((double)age / NS_PER_S);
    }
    case HTTP_CONN_IDLE:
        *counter = &n->idle;
        return age > head_ns + (uint64_t)lim->idle_timeout_s * NS_PER_S;
    default:
        return 0;
    }
}

/* Whether c may give way to new connections: idle keep-alive, or no request head after a grace. */
static int
evictable(struct http_conn *c, uint64_t now)
{
    int st = atomic_load_explicit(&c->state, memory_order_relaxed);
    uint64_t since = atomic_load_explicit(&c->since, memory_order_relaxed);
    return st == HTTP_CONN_IDLE || (st == HTTP_CONN_HEAD && now > since + PRESSURE_GRACE_NS);
}

/* Lets the oldest connection that may give way do so: of the address addr (its own list, at most
 * per_address long), or of all when addr is NULL, among the MAKE_ROOM_SCAN oldest (so that a flood
 * of connects cannot make each one walk every connection under the lock; idle keep-alive
 * connections are the old ones). Returns 1 when one did, 0 when none may. */
static int
make_room(http_conns *s, const unsigned char *addr, uint64_t now)
{
    struct http_conn *c = NULL;
    if (addr != NULL) {
        struct http_addr_list *l = http_addrs_list(s->addrs, addr);
        for (c = l != NULL ? l->oldest : NULL; c != NULL && !evictable(c, now); c = c->anext)
            ;
    } else {
        int scanned = 0;
        for (c = s->head; c != NULL && scanned < MAKE_ROOM_SCAN; c = c->next, scanned++)
            if (!c->shut && evictable(c, now))
                break;
        if (scanned == MAKE_ROOM_SCAN)
            c = NULL;
    }
    if (c == NULL)
        return 0;
    shut(s, c, &s->evicted_at_accept);
    return 1;
}

int
http_conns_add(http_conns *s, struct http_conn *c, int fd, const struct sockaddr *sa)
{
    int admitted = 1;
    uint64_t now = util_mono_ns();
    c->fd = fd;
    c->shut = 0;
    c->next = NULL;
    int has_addr = http_addrs_key(sa, c->addr) == 0;
    c->counted = 0;
    c->aprev = c->anext = NULL;
    http_conn_set(c, HTTP_CONN_HEAD);
    pthread_mutex_lock(&s->lock);
    /* At a limit the oldest connection that may give way does; when none may, the new one is
     * refused at once rather than left to wait out its timeout. */
    if (has_addr && s->lim.per_address > 0 &&
        http_addrs_count(s->addrs, c->addr) >= (uint64_t)s->lim.per_address)
        admitted = make_room(s, c->addr, now);
    if (admitted && s->count - s->shut >= (size_t)s->lim.max_connections)
        admitted = make_room(s, NULL, now);
    c->prev = s->tail;
    if (s->tail != NULL)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->count++;
    if (has_addr)
        count(s, c);
    if (!admitted)
        shut(s, c, &s->refused);
    pthread_mutex_unlock(&s->lock);
    return admitted;
}

static void
sweep(http_conns *s)
{
    struct sweep_counts n = {0, 0, 0, 0};
    uint64_t now = util_mono_ns();
    pthread_mutex_lock(&s->lock);
    for (struct http_conn *c = s->head; c != NULL; c = c->next) {
        int *counter = NULL;
        if (!c->shut && overdue(&s->lim, c, now, &n, &counter))
            shut(s, c, counter);
    }
    size_t open = s->count - s->shut;
    int refused = s->refused;
    n.evicted += s->evicted_at_accept;
    s->refused = s->evicted_at_accept = 0;
    pthread_mutex_unlock(&s->lock);
    if (n.head + n.body + n.idle + n.evicted > 0)
        log_info("msg=\"slow connections closed\" head_timeout=%d slow_body=%d idle=%d "
                 "evicted=%d open=%zu",
                 n.head, n.body, n.idle, n.evicted, open);
    if (refused > 0)
        log_warn("msg=\"connections refused at a connection limit\" refused=%d open=%zu", refused,
                 open);
}

static void *
sweeper_main(void *arg)
{
    http_conns *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)SWEEP_NS;
        if (ts.tv_nsec >= (long)NS_PER_S) {
            ts.tv_sec++;
            ts.tv_nsec -= (long)NS_PER_S;
        }
        pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->lock);
        sweep(s);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

http_conns *
http_conns_start(const struct http_conns_limits *lim, char *err, size_t errlen)
{
    assert(lim->max_connections > 0 && lim->header_timeout_s > 0);
    http_conns *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    int rc;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->lim = *lim;
    s->addrs = http_addrs_new();
    if (s->addrs == NULL) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&s->sweeper, NULL, sweeper_main, s);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the connection sweeper: %s", strerror(rc));
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        http_addrs_free(s->addrs);
        free(s);
        return NULL;
    }
    return s;
}

void
http_conns_stop(http_conns *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->sweeper, NULL);
    assert(s->count == 0); /* libmicrohttpd has closed every connection */
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    http_addrs_free(s->addrs);
    free(s);
}
