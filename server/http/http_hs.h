/* http_hs: waits for TLS handshakes outside libmicrohttpd's event loop.
 *
 * libmicrohttpd 0.9.75 in epoll mode spins while a TLS handshake waits for the client: when
 * gnutls_handshake() returns GNUTLS_E_AGAIN, MHD_run_tls_handshake_ (connection_https.c) does not
 * clear the connection's MHD_EPOLL_STATE_READ_READY flag (only recv_tls_adapter, used after the
 * handshake, does), so MHD_epoll (daemon.c) keeps the connection on its "ready" list and calls
 * epoll_wait with a zero timeout until the client's next flight arrives or the connection closes.
 *
 * This module installs its own GnuTLS pull function on each session. Until the client's Finished
 * message has been read, a read that would block suspends the connection
 * (MHD_suspend_connection takes it off the ready list and out of the epoll set) and hands its
 * socket to one waiter thread; when the socket becomes readable (or is shut down) the waiter
 * resumes it and libmicrohttpd goes on with the handshake. Connections between requests are not
 * touched: libmicrohttpd's own read path handles them without spinning. A handshake that waits to
 * *write* (its flight larger than the socket's send buffer, which the server's few kilobytes never
 * are) would still spin: only reads are parked. */
#ifndef AEGIS_HTTP_HS_H
#define AEGIS_HTTP_HS_H

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <stddef.h>

typedef struct http_hs http_hs;

/* One connection's handshake state. The caller owns the memory (libmicrohttpd's socket context)
 * and keeps it valid until libmicrohttpd reports the connection closed. */
struct http_hs_conn {
    http_hs *hs;
    struct MHD_Connection *conn;
    gnutls_session_t session;
    int fd;
    int done;      /* handshake over: reads go straight to the socket (owner thread only) */
    int armed;     /* the socket is in the waiter's epoll set */
    int suspended; /* suspended by this module and not yet resumed, under hs->lock */
    struct http_hs_conn *prev, *next; /* suspended list, under hs->lock */
};

/* Starts the waiter thread. Returns NULL with a message in err. Free with http_hs_stop. */
http_hs *http_hs_start(char *err, size_t errlen);

/* Resumes every connection this module suspended and suspends no more (before MHD_stop_daemon,
 * which aborts on suspended connections). */
void http_hs_release(http_hs *hs);

/* Stops the waiter and frees the module (after MHD_stop_daemon). NULL is a no-op. */
void http_hs_stop(http_hs *hs);

/* Takes over the reads of session s of connection c (socket fd); call from
 * MHD_CONNECTION_NOTIFY_STARTED, before the handshake. */
void http_hs_attach(http_hs *hs, struct http_hs_conn *hc, struct MHD_Connection *c, int fd,
                    gnutls_session_t s);

/* libmicrohttpd reports hc's connection closed: forget it. */
void http_hs_detach(struct http_hs_conn *hc);

#endif
