/* http_auth: who a request comes from: the bearer token of an API route, the certificate of a
 * device route (declared in http_int.h). */
#include "http_int.h"

#include "app.h"
#include "devauth.h"
#include "log.h"
#include "util.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Authenticates a bearer token and checks the route's minimum role. Sets a 401/403 reply on
 * failure. */
int
http_authenticate_token(struct request *q, const struct route *rt)
{
    api_req *r = &q->r;
    const char *hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    struct store_token tok;
    unsigned char hash[32];
    int64_t id;
    memset(&tok, 0, sizeof(tok));
    if (hdr == NULL || strncasecmp(hdr, "Bearer ", 7) != 0) {
        api_error(r, 401, "unauthorized", "a bearer token is required");
        return -1;
    }
    const char *t = hdr + 7;
    while (*t == ' ')
        t++;
    if (strlen(t) > AUTH_TOKEN_MAX || auth_token_parse(t, &id, hash) != 0) {
        api_error(r, 401, "unauthorized", "malformed token");
        return -1;
    }
    int rc = store_token_get_auth(r->app->st, id, &tok);
    if (rc == STORE_ERR) {
        api_error(r, 503, "unavailable", "database is not reachable");
        return -1;
    }
    /* Compare even when the id is unknown, so timing tells nothing about which ids exist. */
    int match = auth_hash_equal(hash, tok.hash) && rc == STORE_OK;
    sodium_memzero(hash, sizeof(hash));
    if (!match || tok.revoked) {
        api_error(r, 401, "unauthorized", "unknown or revoked token");
        return -1;
    }
    int64_t now = util_now();
    if (tok.expires_at > 0 && now >= tok.expires_at) {
        api_error(r, 401, "token_expired", "the token expired; create a new one");
        return -1;
    }
    /* At most one write a minute per token (store_token_touch); a failed write costs nothing. */
    if (now - tok.last_used_at >= STORE_TOKEN_TOUCH_S)
        (void)store_token_touch(r->app->st, tok.id, now);
    r->tenant_id = tok.tenant_id;
    r->token_id = tok.id;
    r->role = auth_role_parse(tok.role);
    snprintf(r->actor, sizeof(r->actor), "token:%lld", (long long)tok.id);
    if (r->role < rt->min_role) {
        api_error(r, 403, "forbidden", "this action needs the %s role",
                  auth_role_name(rt->min_role));
        return -1;
    }
    return 0;
}

/* Authenticates the device behind the TLS client certificate (see devauth.h). Sets a 401/403/503
 * reply on failure. */
int
http_authenticate_device(struct request *q)
{
    api_req *r = &q->r;
    struct devauth_cert chain[4];
    unsigned n = 0;
    char err[160];
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const gnutls_datum_t *peers = NULL;
    if (ci != NULL && ci->tls_session != NULL)
        peers = gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n);
    if (peers == NULL)
        n = 0;
    if (n > 4)
        n = 4;
    for (unsigned i = 0; i < n; i++) {
        chain[i].der = peers[i].data;
        chain[i].len = peers[i].size;
    }
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_ctx *ctx = sc != NULL ? sc->socket_context : NULL;
    struct devauth_conn *cache = ctx != NULL ? &ctx->auth : NULL;
    enum devauth_result rc = devauth_verify_cached(r->app->devauth, cache, chain, n, util_now(),
                                                   &q->device, err, sizeof(err));
    if (rc != DEVAUTH_OK && rc != DEVAUTH_NO_CERT)
        /* claimed_: the name in a certificate that did not authenticate (device= is only ever a
         * verified device). */
        log_info("msg=\"device refused\" claimed_device=%s reason=\"%s\"",
                 q->device.device_id[0] != '\0' ? q->device.device_id : "-", err);
    switch (rc) {
    case DEVAUTH_OK:
        r->device = &q->device;
        r->tenant_id = q->device.tenant_id;
        log_ctx_set(q->req_id, q->device.device_id); /* device= from here on */
        return 0;
    case DEVAUTH_BLOCKED:
        api_error(r, 403, "device_blocked", "%s", err);
        return -1;
    case DEVAUTH_ERROR:
        api_error(r, 503, "unavailable", "%s", err);
        return -1;
    default:
        api_error(r, 401, "unauthorized", "%s", err);
        return -1;
    }
}
