/* api_session: POST/GET/DELETE /v1/session (api_session.h). The cookie and the CSRF token are
 * secrets: they go only into the reply, never into a log line or the database (hashes there). */
#include "api_session.h"

#include "app.h"
#include "http_auth.h"
#include "ratelimit.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* The cookie's attributes: the browser sends it only over TLS, only to this origin's pages, never
 * to script. */
#define COOKIE_ATTRS "; Path=/; HttpOnly; Secure; SameSite=Strict"

/* {"tenant_id", "tenant_name", "role", "expires_at", "csrf_token"}: the reply of each route that
 * shows a session. NULL (with a reply set) when the tenant cannot be read. */
static json_t *
session_json(api_req *r, int64_t tenant_id, const char *role, int64_t expires_at, const char *csrf)
{
    json_t *tenant = NULL;
    char at[32];
    int rc = store_tenant_get(r->app->st, tenant_id, &tenant);
    if (rc != STORE_OK) {
        api_store_error(r, rc, "tenant");
        return NULL;
    }
    json_t *o =
        json_pack("{s:I, s:O, s:s, s:s, s:s}", "tenant_id", (json_int_t)tenant_id, "tenant_name",
                  json_object_get(tenant, "name"), "role", role, "expires_at",
                  util_rfc3339(expires_at, at, sizeof(at)), "csrf_token", csrf);
    json_decref(tenant);
    if (o == NULL)
        api_error(r, 500, "internal", "out of memory");
    return o;
}

/* Takes a token from the caller's address: sign-in attempts share the limiter (and the rate) of
 * the other unauthenticated routes, in a bucket of their own. -1 with 429 set when over. */
static int
rate_allowed(api_req *r)
{
    char key[64];
    int retry = 0;
    snprintf(key, sizeof(key), "s:%s", r->peer);
    if (r->peer[0] == '\0' || ratelimit_take(r->app->challenge_rl, key, util_mono_ns(), &retry))
        return 0;
    r->retry_after = retry;
    api_error(r, 429, "rate_limited", "too many sign-in attempts from this address; retry in %d s",
              retry);
    return -1;
}

void
api_session_create(api_req *r)
{
    static const char *const keys[] = {"token", NULL};
    struct store_token tok;
    struct store_session row;
    struct http_session_keys k;
    unsigned char sid[32];
    char cookie[HTTP_SESSION_TEXT + 96];
    memset(&k, 0, sizeof(k));
    if (rate_allowed(r) != 0 || api_body_keys(r, keys) != 0)
        goto out;
    const char *text = json_string_value(json_object_get(r->json, "token"));
    if (text == NULL) {
        api_invalid(r, "token must be a string (an API token)");
        goto out;
    }
    if (http_token_check(r, text, &tok) != 0)
        goto out;
    /* A sign-in is a use of the token (its last_used_at), at most one write a minute. */
    if (util_now() - tok.last_used_at >= STORE_TOKEN_TOUCH_S)
        (void)store_token_touch(r->app->st, tok.id, util_now());
    randombytes_buf(sid, sizeof(sid));
    http_session_derive(sid, &k);
    sodium_memzero(sid, sizeof(sid));
    memset(&row, 0, sizeof(row));
    memcpy(row.id_hash, k.id_hash, 32);
    memcpy(row.csrf_hash, k.csrf_hash, 32);
    row.token_id = tok.id;
    row.created_at = util_now();
    row.expires_at = row.created_at + r->app->cfg->session_ttl_s;
    int rc = store_session_create(r->app->st, &row);
    if (rc == STORE_NOTFOUND) {
        api_error(r, 401, "unauthorized", "unknown or revoked token");
        goto out;
    }
    if (rc != STORE_OK) {
        api_store_error(r, rc, "session");
        goto out;
    }
    json_t *o = session_json(r, tok.tenant_id, tok.role, row.expires_at, k.csrf);
    if (o == NULL)
        goto out;
    snprintf(cookie, sizeof(cookie), HTTP_SESSION_COOKIE "=%s" COOKIE_ATTRS "; Max-Age=%lld",
             k.cookie, (long long)r->app->cfg->session_ttl_s);
    if (api_reply_header(r, "Set-Cookie", cookie) != 0) {
        json_decref(o);
        api_error(r, 500, "internal", "the cookie does not fit a header");
        goto out;
    }
    api_reply(r, 201, o);
out:
    sodium_memzero(cookie, sizeof(cookie));
    sodium_memzero(&k, sizeof(k));
}

void
api_session_get(api_req *r)
{
    struct http_session s;
    /* No CSRF header here: this is how a reloaded page learns its CSRF token again, and it changes
     * nothing (SameSite=Strict keeps other sites' requests from carrying the cookie). */
    if (http_session_auth(r, 0, &s) == 0) {
        json_t *o = session_json(r, s.row.tenant_id, s.tok.role, s.row.expires_at, s.keys.csrf);
        if (o != NULL)
            api_reply(r, 200, o);
    }
    sodium_memzero(&s, sizeof(s));
}

void
api_session_delete(api_req *r)
{
    struct http_session s;
    if (http_session_auth(r, 1, &s) == 0) {
        int rc = store_session_delete(r->app->st, s.row.id_hash);
        /* NOTFOUND: a sign-out racing another one; the session is gone either way. */
        if (rc != STORE_OK && rc != STORE_NOTFOUND) {
            api_store_error(r, rc, "session");
        } else {
            (void)api_reply_header(r, "Set-Cookie",
                                   HTTP_SESSION_COOKIE "=" COOKIE_ATTRS "; Max-Age=0");
            api_reply(r, 204, NULL);
        }
    }
    sodium_memzero(&s, sizeof(s));
}
