/* http_auth: who a request comes from: the bearer token or the session cookie of an API route
 * (http_auth.h), the certificate of a device route (declared in http_int.h). */
#include "http_int.h"

#include "http_auth.h"

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

/* Checks a token's text (see http_auth.h). Compares even when the id is unknown, so timing tells
 * nothing about which ids exist. */
int
http_token_check(api_req *r, const char *t, struct store_token *tok)
{
    unsigned char hash[32];
    int64_t id;
    memset(tok, 0, sizeof(*tok));
    if (strlen(t) > AUTH_TOKEN_MAX || auth_token_parse(t, &id, hash) != 0) {
        api_error(r, 401, "unauthorized", "malformed token");
        return -1;
    }
    int rc = store_token_get_auth(r->app->st, id, tok);
    if (rc == STORE_ERR) {
        api_error(r, 503, "unavailable", "database is not reachable");
        return -1;
    }
    int match = auth_hash_equal(hash, tok->hash) && rc == STORE_OK;
    sodium_memzero(hash, sizeof(hash));
    if (!match || tok->revoked) {
        api_error(r, 401, "unauthorized", "unknown or revoked token");
        return -1;
    }
    if (tok->expires_at > 0 && util_now() >= tok->expires_at) {
        api_error(r, 401, "token_expired", "the token expired; create a new one");
        return -1;
    }
    return 0;
}

/* Makes tok the request's caller (its tenant, its role now) and notes its use. */
static void
caller_set(api_req *r, const struct store_token *tok)
{
    int64_t now = util_now();
    /* At most one write a minute per token (store_token_touch); a failed write costs nothing. */
    if (now - tok->last_used_at >= STORE_TOKEN_TOUCH_S)
        (void)store_token_touch(r->app->st, tok->id, now);
    r->tenant_id = tok->tenant_id;
    r->token_id = tok->id;
    r->role = auth_role_parse(tok->role);
    snprintf(r->actor, sizeof(r->actor), "token:%lld", (long long)tok->id);
}

void
http_session_derive(const unsigned char sid[32], struct http_session_keys *k)
{
    static const char csrf_ctx[] = "aegis-csrf-v1";
    unsigned char csrf[32];
    const int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    sodium_bin2base64(k->cookie, sizeof(k->cookie), sid, 32, v);
    crypto_hash_sha256(k->id_hash, sid, 32);
    /* Keyed by the session's secret: the CSRF token says nothing about the cookie, and only the
     * cookie's holder can compute it again. */
    crypto_generichash(csrf, sizeof(csrf), (const unsigned char *)csrf_ctx, sizeof(csrf_ctx) - 1,
                       sid, 32);
    sodium_bin2base64(k->csrf, sizeof(k->csrf), csrf, sizeof(csrf), v);
    crypto_hash_sha256(k->csrf_hash, (const unsigned char *)k->csrf, strlen(k->csrf));
    sodium_memzero(csrf, sizeof(csrf));
}

/* Decodes the session cookie into its 32 bytes: 0, or -1 when absent or malformed. */
static int
session_cookie(api_req *r, unsigned char sid[32])
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE);
    size_t n = 0;
    if (v == NULL || strlen(v) != HTTP_SESSION_TEXT - 1)
        return -1;
    if (sodium_base642bin(sid, 32, v, HTTP_SESSION_TEXT - 1, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != 32)
        return -1;
    return 0;
}

/* 1 when the request's X-CSRF-Token hashes to the session's CSRF hash (constant time), else 0. */
static int
csrf_ok(api_req *r, const unsigned char want[32])
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, HTTP_CSRF_HEADER);
    unsigned char got[32];
    if (h == NULL || strlen(h) > 256)
        return 0;
    crypto_hash_sha256(got, (const unsigned char *)h, strlen(h));
    return sodium_memcmp(got, want, 32) == 0;
}

int
http_session_auth(api_req *r, int need_csrf, struct http_session *out)
{
    unsigned char sid[32];
    int rc = -1;
    memset(out, 0, sizeof(*out));
    if (session_cookie(r, sid) != 0) {
        api_error(r, 401, "unauthorized", "a bearer token or a session is required");
        goto out;
    }
    http_session_derive(sid, &out->keys);
    int src = store_session_get_auth(r->app->st, out->keys.id_hash, &out->row, &out->tok);
    if (src == STORE_NOTFOUND) {
        api_error(r, 401, "unauthorized", "unknown session");
        goto out;
    }
    if (src != STORE_OK) {
        api_error(r, 503, "unavailable", "database is not reachable");
        goto out;
    }
    int64_t now = util_now();
    if (now >= out->row.expires_at) {
        api_error(r, 401, "session_expired", "the session expired; sign in again");
        goto out;
    }
    if (out->tok.revoked) {
        api_error(r, 401, "unauthorized", "the session's token was revoked");
        goto out;
    }
    if (out->tok.expires_at > 0 && now >= out->tok.expires_at) {
        api_error(r, 401, "token_expired", "the session's token expired; sign in again");
        goto out;
    }
    if (need_csrf && !csrf_ok(r, out->row.csrf_hash)) {
        api_error(r, 403, "csrf", "a session's request needs its X-CSRF-Token header");
        goto out;
    }
    caller_set(r, &out->tok);
    rc = 0;
out:
    sodium_memzero(sid, sizeof(sid));
    return rc;
}

/* Authenticates a bearer token, or else the session cookie with its CSRF header, and checks the
 * route's minimum role. Sets a 401/403 reply on failure. */
int
http_authenticate_token(struct request *q, const struct route *rt)
{
    api_req *r = &q->r;
    const char *hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (hdr == NULL &&
        MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE) != NULL) {
        struct http_session s;
        int rc = http_session_auth(r, 1, &s);
        sodium_memzero(&s, sizeof(s));
        if (rc != 0)
            return -1;
    } else {
        struct store_token tok;
        if (hdr == NULL || strncasecmp(hdr, "Bearer ", 7) != 0) {
            api_error(r, 401, "unauthorized", "a bearer token is required");
            return -1;
        }
        const char *t = hdr + 7;
        while (*t == ' ')
            t++;
        int rc = http_token_check(r, t, &tok);
        if (rc == 0)
            caller_set(r, &tok);
        sodium_memzero(&tok, sizeof(tok));
        if (rc != 0)
            return -1;
    }
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
