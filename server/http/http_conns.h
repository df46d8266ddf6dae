/* http_conns: the connection deadlines libmicrohttpd 0.9.75 does not have. Its own timeout
 * (connection_timeout) is an inactivity timer that every byte resets, so a client that sends one
 * byte a second holds a connection for ever. This module tracks every connection and, from one
 * sweeper thread, closes those that miss a deadline:
 *   - the TLS handshake plus the first request head must be complete header_timeout after accept;
 *   - a request body must come at min_body_rate on average once header_timeout has passed;
 *   - a keep-alive connection must have a complete next head within connection_timeout plus
 *     header_timeout of its last reply;
 * and, at max_connections or an address's per_address limit, lets an idle keep-alive connection or
 * an old one still without a request head give way (oldest first) to a new client, or refuses the
 * new one at once (http_conns_add). It keeps the per-address limit itself: libmicrohttpd's own
 * refuses without letting anything give way.
 * A connection is closed with shutdown(2) on its socket: libmicrohttpd sees the end of the stream
 * and cleans the connection up in its own thread. */
#ifndef AEGIS_HTTP_CONNS_H
#define AEGIS_HTTP_CONNS_H

#include "http_addrs.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum http_conn_state {
    HTTP_CONN_HEAD, /* TLS handshake or request head in progress */
    HTTP_CONN_BODY, /* head complete, body being read */
    HTTP_CONN_BUSY, /* being handled or answered: no deadline here */
    HTTP_CONN_IDLE  /* keep-alive, between requests */
};

/* One tracked connection. The caller owns the memory (libmicrohttpd's socket context) and keeps it
 * valid from http_conns_add until http_conns_remove. */
struct http_conn {
    struct http_conn *prev, *next; /* in accept order, under the set's lock */
    int fd;
    int shut;    /* shutdown already called, under the set's lock */
    int counted; /* addr is counted for the per-address limit and c on its list, under the lock */
    struct http_conn *aprev, *anext; /* the address's connections in accept order, under the lock */
    unsigned char addr[HTTP_ADDR_LEN]; /* the client's address (http_addrs_key) */
    atomic_int state;                  /* enum http_conn_state */
    atomic_uint_fast64_t since;        /* monotonic ns when the state began */
    atomic_uint_fast64_t body;         /* bytes of the current request body */
};

struct http_conns_limits {
    int64_t max_connections;
    int64_t header_timeout_s;
    int64_t idle_timeout_s; /* connection_timeout */
    int64_t min_body_rate;  /* bytes per s; 0 = no minimum */
    int64_t per_address;    /* connections from one client address; 0 = no limit */
};

typedef struct http_conns http_conns;

/* Starts the sweeper thread. Returns the set (free with http_conns_stop) or NULL with a message in
 * err. */
http_conns *http_conns_start(const struct http_conns_limits *lim, char *err, size_t errlen);

/* Stops the sweeper and frees the set; every connection must have been removed (call after
 * MHD_stop_daemon). NULL is a no-op. */
void http_conns_stop(http_conns *s);

/* Tracks c (socket fd, client address sa, may be NULL) from now on, in state HTTP_CONN_HEAD, and
 * returns 1. At a limit (max_connections, or per_address connections from sa's address) the
 * oldest connection within that limit that may give way (idle keep-alive, or no request head after
 * a grace) is shut down first; when none may, c itself is shut down at once (tracked all the same,
 * so that http_conns_remove stays the one way out) and 0 is returned: a client the daemon will not
 * serve learns it immediately. */
int http_conns_add(http_conns *s, struct http_conn *c, int fd, const struct sockaddr *sa);

/* Stops tracking c; after this the sweeper no longer touches its socket. */
void http_conns_remove(http_conns *s, struct http_conn *c);

/* Moves c to state st from now on (a new body starts at 0 bytes). */
void http_conn_set(struct http_conn *c, enum http_conn_state st);

/* Counts n more body bytes on c. */
void http_conn_body(struct http_conn *c, size_t n);

#endif
