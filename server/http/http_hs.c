#include "http_hs.h"

#include "log.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* How often the waiter looks at its stop flag. */
#define WAIT_MS 100

struct http_hs {
    int ep;               /* sockets of suspended handshakes, EPOLLONESHOT */
    pthread_mutex_t lock; /* the suspended list, every entry's suspended flag, releasing */
    struct http_hs_conn *head;
    int releasing; /* http_hs_release was called: suspend no more */
    atomic_int stop;
    atomic_int said_epoll_error;
    pthread_t waiter;
};

static void
list_remove(http_hs *hs, struct http_hs_conn *hc)
{
    if (hc->prev != NULL)
        hc->prev->next = hc->next;
    else
        hs->head = hc->next;
    if (hc->next != NULL)
        hc->next->prev = hc->prev;
    hc->prev = hc->next = NULL;
}

/* Resumes hc if this module suspended it. Caller holds hs->lock. */
static void
resume_locked(http_hs *hs, struct http_hs_conn *hc)
{
    if (!hc->suspended)
        return;
    hc->suspended = 0;
    list_remove(hs, hc);
    MHD_resume_connection(hc->conn);
}

static void *
waiter_main(void *arg)
{
    http_hs *hs = arg;
    struct epoll_event ev[64];
    while (!atomic_load(&hs->stop)) {
        int n = epoll_wait(hs->ep, ev, 64, WAIT_MS);
        pthread_mutex_lock(&hs->lock);
        for (int i = 0; i < n; i++)
            resume_locked(hs, ev[i].data.ptr);
        pthread_mutex_unlock(&hs->lock);
    }
    return NULL;
}

/* The handshake of hc would block: park the connection until its socket is readable. */
static void
park(struct http_hs_conn *hc)
{
    http_hs *hs = hc->hs;
    pthread_mutex_lock(&hs->lock);
    if (hs->releasing) {
        pthread_mutex_unlock(&hs->lock);
        return;
    }
    assert(!hc->suspended); /* only the connection's own thread parks it, while it runs */
    MHD_suspend_connection(hc->conn);
    hc->suspended = 1;
    hc->prev = NULL;
    hc->next = hs->head;
    if (hs->head != NULL)
        hs->head->prev = hc;
    hs->head = hc;
    /* Armed under the lock: the waiter cannot resume hc before it is on the list. */
    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = hc};
    if (epoll_ctl(hs->ep, hc->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, hc->fd, &e) == 0) {
        hc->armed = 1;
    } else {
        /* Cannot wait for it: libmicrohttpd retries at once, which spins as without this module
         * until the client answers, and the head deadline bounds it. Said once. */
        if (!atomic_exchange(&hs->said_epoll_error, 1))
            log_warn("msg=\"cannot park a TLS handshake; it is retried at once\" error=\"%s\"",
                     strerror(errno));
        resume_locked(hs, hc);
    }
    pthread_mutex_unlock(&hs->lock);
}

/* The client's Finished is the last handshake message a server reads (TLS 1.2 and 1.3, full or
 * resumed): from then on libmicrohttpd's own read path (which does not spin) takes over. */
static int
hs_hook(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
        const gnutls_datum_t *msg)
{
    struct http_hs_conn *hc = gnutls_session_get_ptr(s);
    (void)when;
    (void)msg;
    if (hc != NULL && incoming && htype == GNUTLS_HANDSHAKE_FINISHED)
        hc->done = 1;
    return 0;
}

static ssize_t
hs_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    struct http_hs_conn *hc = ptr;
    ssize_t n = recv(hc->fd, buf, len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !hc->done) {
        int saved = errno;
        park(hc);
        errno = saved;
    }
    return n;
}

/* GnuTLS asks this only in a blocking handshake with a timeout, which libmicrohttpd's non-blocking
 * sessions never run; set so that the reads of our pull function never lack it. */
static int
hs_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
    struct http_hs_conn *hc = ptr;
    struct pollfd p = {hc->fd, POLLIN, 0};
    return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

http_hs *
http_hs_start(char *err, size_t errlen)
{
    http_hs *hs = calloc(1, sizeof(*hs));
    int rc;
    if (hs == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    hs->ep = epoll_create1(EPOLL_CLOEXEC);
    if (hs->ep < 0) {
        snprintf(err, errlen, "cannot create the handshake waiter's epoll set: %s",
                 strerror(errno));
        free(hs);
        return NULL;
    }
    pthread_mutex_init(&hs->lock, NULL);
    rc = pthread_create(&hs->waiter, NULL, waiter_main, hs);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the handshake waiter: %s", strerror(rc));
        pthread_mutex_destroy(&hs->lock);
        close(hs->ep);
        free(hs);
        return NULL;
    }
    return hs;
}

void
http_hs_release(http_hs *hs)
{
    if (hs == NULL)
        return;
    pthread_mutex_lock(&hs->lock);
    int first = !hs->releasing;
    hs->releasing = 1;
    pthread_mutex_unlock(&hs->lock);
    if (!first)
        return;
    /* The waiter goes first: after this no event can name a connection libmicrohttpd frees. */
    atomic_store(&hs->stop, 1);
    pthread_join(hs->waiter, NULL);
    pthread_mutex_lock(&hs->lock);
    while (hs->head != NULL)
        resume_locked(hs, hs->head);
    pthread_mutex_unlock(&hs->lock);
}

void
http_hs_stop(http_hs *hs)
{
    if (hs == NULL)
        return;
    http_hs_release(hs);
    assert(hs->head == NULL);
    pthread_mutex_destroy(&hs->lock);
    close(hs->ep);
    free(hs);
}

void
http_hs_attach(http_hs *hs, struct http_hs_conn *hc, struct MHD_Connection *c, int fd,
               gnutls_session_t s)
{
    memset(hc, 0, sizeof(*hc));
    hc->hs = hs;
    hc->conn = c;
    hc->fd = fd;
    hc->session = s;
    /* Writes keep GnuTLS's own push on the socket; only reads come through hs_pull. GnuTLS takes a
     * socket as a pointer-sized integer (its GNUTLS_INT_TO_POINTER). */
    gnutls_transport_set_ptr2(
        s, hc,
        (gnutls_transport_ptr_t)(intptr_t)fd); // NOLINT(performance-no-int-to-ptr)
    gnutls_transport_set_pull_function(s, hs_pull);
    gnutls_transport_set_pull_timeout_function(s, hs_pull_timeout);
    /* libmicrohttpd reads the session pointer only in its PSK callback, which aegisd does not use.
     */
    gnutls_session_set_ptr(s, hc);
    gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_POST, hs_hook);
}

void
http_hs_detach(struct http_hs_conn *hc)
{
    http_hs *hs = hc->hs;
    if (hs == NULL)
        return;
    pthread_mutex_lock(&hs->lock);
    /* libmicrohttpd closes only connections it runs, never one suspended here (until release). */
    assert(!hc->suspended);
    if (hc->armed)
        epoll_ctl(hs->ep, EPOLL_CTL_DEL, hc->fd, NULL);
    hc->armed = 0;
    pthread_mutex_unlock(&hs->lock);
}
