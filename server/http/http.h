/* http: the HTTPS front of aegisd on libmicrohttpd (GnuTLS): a thread pool sized to the cores
 * (poll, or epoll), TLS 1.2+, per-route body limits, connection limits and timeouts, token
 * authentication, one log line and one metrics sample per request. Requests are dispatched through
 * a route table the caller owns (the daemon's is server/routes.c). */
#ifndef AEGIS_HTTP_H
#define AEGIS_HTTP_H

#include "api.h"
#include "router.h"

#include <stddef.h>
#include <stdint.h>

typedef struct http_server http_server;

/* libmicrohttpd accepts this many connections beyond max_connections, so that http_conns_add can
 * refuse at once rather than leave clients in the listen backlog; the open-files limit must cover
 * them (main.c). */
#define HTTP_ACCEPT_SLACK 64

/* A listening TCP socket on host:port (port 0 picks a free one). *bound_port gets the port.
 * Returns the fd, or -1 with a message in err. */
int http_listen(const char *host, int port, int *bound_port, char *err, size_t errlen);

/* Starts serving routes[0..n) (borrowed: must outlive the server) on listen_fd (ownership passes to
 * the server) with the TLS certificate chain in chain_pem (leaf first; parsed, not kept) and the
 * TLS key's signatures from the signer app->sg (http_tlskey.h): the server never holds the TLS
 * private key. Every TLS session asks the client for a certificate,
 * optionally and with an empty list of CA names (each tenant has its own device root, see
 * docs/protocol.md §4): device routes then require one (devauth.h), the others ignore it.
 * Returns NULL on error (message in err). Free with http_stop. */
http_server *http_start(const struct app *app, const struct route *routes, size_t nroutes,
                        int listen_fd, const char *chain_pem, char *err, size_t errlen);
/* The operations listener's server (docs/metrics.md): routes as http_start's, plain HTTP on
 * listen_fd (ownership passes), one thread, at most HTTP_PLAIN_CONNECTIONS connections, no TLS and
 * so no device authentication (a route table of AUTH_NONE routes is what it is for); its requests
 * are logged but not in the request metrics. Returns NULL on error (message in err). Free with
 * http_stop. */
#define HTTP_PLAIN_CONNECTIONS 32
http_server *http_start_plain(const struct app *app, const struct route *routes, size_t nroutes,
                              int listen_fd, char *err, size_t errlen);
/* A new certificate chain for new handshakes (SIGHUP), its leaf checked against the signer's TLS
 * key as http_start's: handshakes in progress finish with the chain they began with. Call from one
 * thread. Returns 0, or -1 (message in err) with the old chain still serving. */
int http_reload_tls(http_server *h, const char *chain_pem, char *err, size_t errlen);
/* The serving leaf certificate's notAfter (unix s), 0 without TLS. */
int64_t http_tls_not_after(const http_server *h);
/* The serving leaf certificate's serial in lowercase hex ("" without TLS). */
void http_tls_serial(const http_server *h, char buf[41]);
/* Stops accepting connections; requests in progress go on. */
void http_quiesce(http_server *h);
/* Requests in progress (accepted, response not yet fully sent). */
int http_active(http_server *h);
/* Closes every connection and frees the server. Accepts NULL. */
void http_stop(http_server *h);

#endif
