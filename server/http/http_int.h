/* http_int: what http.c and http_reply.c share: the server, a connection's context and a request
 * in flight. Private to server/http/. */
#ifndef AEGIS_HTTP_INT_H
#define AEGIS_HTTP_INT_H

#include "api.h"
#include "devauth.h"
#include "http.h"
#include "http_conns.h"
#include "http_hs.h"
#include "http_tlskey.h"
#include "router.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct http_server {
    const struct app *app;
    struct MHD_Daemon *mhd;
    atomic_int active;
    const struct route *routes; /* the daemon's route table (routes.c) */
    size_t nroutes;
    MHD_socket quiesced_fd; /* the listen socket after http_quiesce, closed by http_stop */
    atomic_int quiescing;   /* set by http_quiesce: new requests get 503 and a closed connection */
    pthread_mutex_t defer_lock; /* orders a deferred request's suspension and its completion */
    /* The session ticket master key: made at start, in memory only, wiped at stop. GnuTLS derives
     * the keys that encrypt tickets from it and rotates them on its own (time-based). */
    gnutls_datum_t ticket_key;
    http_conns *conns; /* deadlines and eviction (http_conns.h) */
    http_hs *hs;       /* handshakes wait outside libmicrohttpd (http_hs.h); NULL with poll */
    http_tlskey *tls;  /* the certificate chain and the signer-backed key (http_tlskey.h) */
    int plain;         /* the operations listener: no TLS, not in the request metrics */
};

/* libmicrohttpd's socket context: what lives as long as one connection. */
struct conn_ctx {
    struct devauth_conn auth; /* devauth's per-connection cache */
    struct http_conn track;   /* in server->conns */
    struct http_hs_conn hs;   /* the TLS handshake's reads (http_hs.h) */
};

enum defer_state { DEFER_PENDING, DEFER_SUSPENDED, DEFER_DONE };

/* One request in flight: the handler's view (r) plus what the HTTP layer needs around it. */
struct request {
    api_req r;
    int route; /* index, ROUTER_NOT_FOUND or ROUTER_BAD_METHOD */
    char allow[64];
    uint64_t start_ns;
    char *body;
    size_t len, cap, limit;
    int too_large;
    int streaming;    /* a BODY_STREAM route: dispatched with the headers (api_stream_body) */
    size_t discarded; /* bytes of an oversized body read and dropped */
    int answered;
    int close_after; /* answer with Connection: close */
    char peer[INET6_ADDRSTRLEN];
    char req_id[ROUTER_REQID_MAX + 1]; /* X-Request-Id and the log lines' req= (router.h) */
    struct devauth_identity device;    /* the authenticated device on AUTH_DEVICE routes */
    struct http_server *server;
    struct http_conn *track;      /* the connection's deadlines; NULL if it has no context */
    int deferred;                 /* api_defer was called: the reply comes from another thread */
    enum defer_state defer_state; /* under server->defer_lock */
};

/* Builds the response of q (JSON, text or streaming; the headers every answer carries, a
 * Retry-After on every 503) and queues it on c. */
enum MHD_Result http_queue_reply(struct request *q, struct MHD_Connection *c);
/* The response of a file reply (api_file.c), which takes over r's file; NULL when out of memory
 * (r keeps the file). */
struct MHD_Response *http_file_response(api_req *r);
/* Closes a file reply that was never sent (no-op without one). */
void http_file_drop(api_req *r);
/* Moves the request's connection to state st (http_conns.h). */
void http_track_state(struct request *q, enum http_conn_state st);

/* http_auth.c. A bearer token, and the route's minimum role: 0, or -1 with a 401/403/503 reply
 * set. */
int http_authenticate_token(struct request *q, const struct route *rt);
/* The device behind the TLS client certificate (devauth.h): 0 (r->device set, device= in the
 * log context), or -1 with a 401/403/503 reply set. */
int http_authenticate_device(struct request *q);

#endif
