/* race_delay.so: fault injection for the integration tests, loaded into aegisd with LD_PRELOAD
 * (ShutdownRaceTest in tests/integration/test_telemetry.py). The daemon's code is not changed.
 *
 * A shutdown race of the kind "a handler has read a pointer to a queue, then the teardown frees the
 * queue before the handler locks it" has a window a few instructions wide, so a test hits it about
 * never. This library widens that window: an HTTP worker thread (one libmicrohttpd started) that is
 * about to lock a hand-off queue's mutex sleeps first, RACE_DELAY_MS (default 20) and, once the
 * HTTP layer was quiesced (MHD_quiesce_daemon: shutdown began), until RACE_DELAY_STOP_MS (default
 * 1000) after that. A hand-off queue's mutex is one that a thread of the daemon's own (not an HTTP
 * worker) waits on with a condition variable: the telemetry writer's queue, the store's pool. Every
 * other lock, and every lock of every other thread, runs at full speed, so a teardown that frees
 * the queue while a handler holds a stale pointer to it does so inside the window, and
 * AddressSanitizer reports the handler's use of the freed memory. The library says on stderr when
 * it first delays a lock ("race_delay: delaying ...") and when a delayed thread goes on to lock a
 * mutex that was destroyed meanwhile ("race_delay: ... destroyed").
 *
 * Under AddressSanitizer the library must come before libasan, so the daemon needs
 * ASAN_OPTIONS=verify_asan_link_order=0. Built without sanitizers (Makefile, PRELOAD_LIBS). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 16           /* queue mutexes and destroyed mutexes remembered */
#define DELAY_MAX_MS 10000 /* bound of either setting */

typedef int (*lock_fn)(pthread_mutex_t *);
typedef int (*destroy_fn)(pthread_mutex_t *);
typedef int (*cond_wait_fn)(pthread_cond_t *, pthread_mutex_t *);
typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef int (*quiesce_fn)(void *);

static _Atomic(void *) queue_mutex[SLOTS];
static _Atomic(void *) destroyed_mutex[SLOTS];
static atomic_uint destroyed_next;
static atomic_ullong quiesced_ns; /* 0 until MHD_quiesce_daemon */
static atomic_int delayed_once;
static unsigned delay_ms = 20, stop_ms = 1000;
static __thread int http_thread __attribute__((tls_model("initial-exec")));

struct start {
    void *(*fn)(void *);
    void *arg;
    int http;
};

/* The next definition of name (libasan's interceptor or libc's), looked up once into *slot. */
static void *
next_fn(_Atomic(void *) *slot, const char *name)
{
    void *f = atomic_load(slot);
    if (f == NULL) {
        f = dlsym(RTLD_NEXT, name);
        if (f == NULL) {
            fprintf(stderr, "race_delay: no next %s\n", name);
            abort();
        }
        atomic_store(slot, f);
    }
    return f;
}

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned
env_ms(const char *name, unsigned def)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return def;
    unsigned long v = strtoul(s, NULL, 10);
    return v > DELAY_MAX_MS ? DELAY_MAX_MS : (unsigned)v;
}

__attribute__((constructor)) static void
race_delay_init(void)
{
    delay_ms = env_ms("RACE_DELAY_MS", delay_ms);
    stop_ms = env_ms("RACE_DELAY_STOP_MS", stop_ms);
    fprintf(
        stderr,
        "race_delay: loaded, HTTP threads wait %u ms before a queue lock, %u ms after quiesce\n",
        delay_ms, stop_ms);
}

static int
in_set(_Atomic(void *) *set, const void *p)
{
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load(&set[i]) == p)
            return 1;
    return 0;
}

/* Remembers a mutex some non-HTTP thread waits on (first free slot; a full table keeps the first).
 */
static void
remember_queue(pthread_mutex_t *m)
{
    if (http_thread || in_set(queue_mutex, m))
        return;
    for (int i = 0; i < SLOTS; i++) {
        void *expected = NULL;
        if (atomic_compare_exchange_strong(&queue_mutex[i], &expected, m) || expected == m)
            return;
    }
}

/* The HTTP thread's sleep before a queue lock: delay_ms, or until stop_ms after the quiesce. */
static void
delay(void)
{
    uint64_t until = mono_ns() + (uint64_t)delay_ms * 1000000ull;
    for (;;) {
        uint64_t now = mono_ns(), q = atomic_load(&quiesced_ns);
        uint64_t end = q != 0 && q + (uint64_t)stop_ms * 1000000ull > until
                           ? q + (uint64_t)stop_ms * 1000000ull
                           : until;
        if (now >= end)
            return;
        struct timespec ts = {0, 1000000}; /* 1 ms steps, so a quiesce extends a sleep under way */
        nanosleep(&ts, NULL);
    }
}

int
pthread_mutex_lock(pthread_mutex_t *m)
{
    static _Atomic(void *) real;
    lock_fn f = (lock_fn)next_fn(&real, "pthread_mutex_lock");
    if (http_thread && in_set(queue_mutex, m)) {
        if (!atomic_exchange(&delayed_once, 1)) /* so a test can tell the shim is in effect */
            fprintf(stderr, "race_delay: delaying HTTP threads' locks of queue mutex %p\n",
                    (void *)m);
        delay();
        if (in_set(destroyed_mutex, m))
            fprintf(stderr,
                    "race_delay: an HTTP thread locks mutex %p, destroyed while it waited\n",
                    (void *)m);
    }
    return f(m);
}

int
pthread_mutex_destroy(pthread_mutex_t *m)
{
    static _Atomic(void *) real;
    destroy_fn f = (destroy_fn)next_fn(&real, "pthread_mutex_destroy");
    if (in_set(queue_mutex, m))
        atomic_store(&destroyed_mutex[atomic_fetch_add(&destroyed_next, 1) % SLOTS], m);
    return f(m);
}

int
pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    static _Atomic(void *) real;
    cond_wait_fn f = (cond_wait_fn)next_fn(&real, "pthread_cond_wait");
    remember_queue(m);
    return f(c, m);
}

int
pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t)
{
    static _Atomic(void *) real;
    cond_timedwait_fn f = (cond_timedwait_fn)next_fn(&real, "pthread_cond_timedwait");
    remember_queue(m);
    return f(c, m, t);
}

static void *
trampoline(void *arg)
{
    struct start s = *(struct start *)arg;
    free(arg);
    http_thread = s.http;
    return s.fn(s.arg);
}

/* Threads whose start routine lies in libmicrohttpd are the HTTP workers. */
int
pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    static _Atomic(void *) real;
    create_fn f = (create_fn)next_fn(&real, "pthread_create");
    Dl_info info;
    struct start *s = malloc(sizeof(*s));
    if (s == NULL)
        return f(t, attr, fn, arg);
    s->fn = fn;
    s->arg = arg;
    s->http = dladdr((void *)fn, &info) != 0 && info.dli_fname != NULL &&
              strstr(info.dli_fname, "libmicrohttpd") != NULL;
    int rc = f(t, attr, trampoline, s);
    if (rc != 0)
        free(s);
    return rc;
}

/* Shutdown began: sleeps under way or to come last until stop_ms from now. The daemon's type is
 * opaque here, and a socket is an int on this platform. */
int MHD_quiesce_daemon(void *daemon);

int
MHD_quiesce_daemon(void *daemon)
{
    uint64_t now = mono_ns();
    unsigned long long expected = 0;
    atomic_compare_exchange_strong(&quiesced_ns, &expected, now);
    static _Atomic(void *) real;
    return ((quiesce_fn)next_fn(&real, "MHD_quiesce_daemon"))(daemon);
}
