/* REST handlers for the caller's tenant, its API tokens and its audit log (docs/api.md). */
#include "api_handlers.h"
#include "app.h"
#include "api.h"
#include "api_util.h"
#include "auth.h"
#include "jsonx.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define TOKEN_NAME_MAX 128
#define TOKEN_TTL_MIN_S 60                       /* shorter would expire before it is used */
#define TOKEN_TTL_MAX_S (10 * 366 * 24 * 3600LL) /* 10 years */

void
api_tenant_get(api_req *r)
{
    json_t *obj = NULL;
    int rc = store_tenant_get(r->app->st, r->tenant_id, &obj);
    api_reply_store(r, rc, 200, obj, "tenant");
}

/* What POST /v1/tokens asks for. */
struct token_req {
    const char *name;
    const char *role;   /* canonical */
    int64_t expires_at; /* 0: never */
};

/* The optional expiry: "expires_in" (seconds) or "expires_at" (RFC 3339), not both; the result lies
 * TOKEN_TTL_MIN_S..TOKEN_TTL_MAX_S ahead. Returns 0, or -1 with the reason in err. */
static int
parse_token_expiry(const json_t *body, int64_t now, int64_t *expires_at, char *err, size_t errlen)
{
    const char *at = NULL;
    int64_t in = 0;
    int has_in = 0;

    *expires_at = 0;
    if (jsonx_int(body, "expires_in", 0, 0, TOKEN_TTL_MIN_S, TOKEN_TTL_MAX_S, &in, &has_in, err,
                  errlen) != 0 ||
        jsonx_str(body, "expires_at", 0, 1, 64, &at, err, errlen) != 0)
        return -1;
    if (has_in && at != NULL) {
        snprintf(err, errlen, "give 'expires_in' or 'expires_at', not both");
        return -1;
    }
    if (has_in) {
        *expires_at = now + in;
        return 0;
    }
    if (at == NULL)
        return 0;
    if (util_parse_rfc3339(at, expires_at) != 0 || *expires_at - now < TOKEN_TTL_MIN_S ||
        *expires_at - now > TOKEN_TTL_MAX_S) {
        snprintf(err, errlen,
                 "field 'expires_at' must be an RFC 3339 UTC time %d seconds to 10 years ahead",
                 TOKEN_TTL_MIN_S);
        return -1;
    }
    return 0;
}

/* Validates {"name", "role", "expires_in"?, "expires_at"?}. Returns 0, or -1 with a 400 reply
 * set. */
static int
parse_token_body(api_req *r, struct token_req *t)
{
    static const char *const keys[] = {"name", "role", "expires_in", "expires_at", NULL};
    char err[API_ERR_LEN];
    const char *role_in = NULL;

    if (api_body_object(r, keys) != 0)
        return -1;
    if (jsonx_str(r->json, "name", 1, 1, TOKEN_NAME_MAX, &t->name, err, sizeof(err)) != 0 ||
        jsonx_str(r->json, "role", 1, 1, 16, &role_in, err, sizeof(err)) != 0 ||
        parse_token_expiry(r->json, util_now(), &t->expires_at, err, sizeof(err)) != 0) {
        api_invalid(r, err);
        return -1;
    }
    enum role ro = auth_role_parse(role_in);
    if (ro == ROLE_NONE) {
        api_invalid(r, "field 'role' must be \"admin\", \"operator\" or \"reader\"");
        return -1;
    }
    t->role = auth_role_name(ro);
    return 0;
}

/* The stored object of token id, as GET /v1/tokens shows it (new reference), or NULL. */
static json_t *
load_token(api_req *r, int64_t id)
{
    json_t *obj = NULL;
    if (store_token_get(r->app->st, r->tenant_id, id, &obj) != STORE_OK)
        return NULL;
    return obj;
}

/* The token object of a token just created: the stored row, or (should it not be readable) the same
 * shape built from what the handler knows, so that the one-time secret still reaches the caller. */
static json_t *
token_object(api_req *r, int64_t id, const struct token_req *t)
{
    json_t *obj = load_token(r, id);
    if (obj != NULL)
        return obj;
    log_warn("msg=\"token created but not readable back; answering from the request\" token=%lld",
             (long long)id);
    char now[32], exp[32];
    struct store_actor a = api_actor(r);
    return json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:n, s:s?, s:n}", "id", (json_int_t)id, "name", t->name, "role",
        t->role, "created_at", util_rfc3339(util_now(), now, sizeof(now)), "created_by",
        a.who != NULL ? a.who : "", "revoked_at", "expires_at",
        t->expires_at > 0 ? util_rfc3339(t->expires_at, exp, sizeof(exp)) : NULL, "last_used_at");
}

void
api_tokens_create(api_req *r)
{
    struct token_req t = {NULL, NULL, 0};
    char secret[AUTH_SECRET_LEN + 1];
    char token[AUTH_TOKEN_MAX];
    unsigned char hash[32];
    json_t *obj = NULL;
    int64_t id = 0;
    struct store_actor a = api_actor(r);
    int rc;

    if (parse_token_body(r, &t) != 0)
        return;
    if (auth_secret_new(secret, hash) != 0) {
        log_error("msg=\"cannot make a token secret\" call=auth_secret_new");
        api_error(r, 500, "internal", "internal error");
        goto out;
    }
    rc = store_token_create_expiring(r->app->st, r->tenant_id, t.name, t.role, hash, t.expires_at,
                                     &a, &id);
    if (rc != STORE_OK) {
        api_store_error(r, rc, "token");
        goto out;
    }
    if (auth_token_format(id, secret, token, sizeof(token)) != 0) {
        log_error("msg=\"cannot format a token\" call=auth_token_format token=%lld", (long long)id);
        api_error(r, 500, "internal", "internal error");
        goto out;
    }
    obj = token_object(r, id, &t);
    if (obj == NULL || json_object_set_new(obj, "token", json_string(token)) != 0) {
        api_error(r, 500, "internal", "out of memory");
        goto out;
    }
    api_reply(r, 201, obj);
    obj = NULL;
out:
    json_decref(obj);
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(token, sizeof(token));
    sodium_memzero(hash, sizeof(hash));
}

void
api_tokens_list(api_req *r)
{
    json_t *items = NULL;
    int rc = store_token_list(r->app->st, r->tenant_id, &items);
    api_reply_list(r, rc, items, "", "token");
}

void
api_tokens_revoke(api_req *r)
{
    int64_t id;
    if (api_param_id(r, 0, "token", &id) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_token_revoke(r->app->st, r->tenant_id, id, &a);
    api_reply_store(r, rc, 204, NULL, "token");
}

void
api_audit_list(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;

    if (api_page(r, &pg) != 0)
        return;
    int rc = store_audit_list(r->app->st, r->tenant_id, &pg, &items, next);
    api_reply_list(r, rc, items, next, "audit entry");
}
