/* REST handlers of the tenant's TUF repositories (docs/api.md "Update repositories",
 * docs/update.md 2): the online keys, roots and targets signed offline by the manufacturer and
 * verified here before they are published, the targets proposal, and the status. The files
 * themselves are served by dev_tuf.c. */
#include "api.h"
#include "api_handlers.h"
#include "api_util.h"
#include "app.h"
#include "log.h"
#include "upd_repo.h"
#include "upd_targets.h"
#include "util.h"

#include <string.h>

#define UPD_ERR_LEN 1024

/* The reply of a refused or failed publication. */
static void
upd_error(api_req *r, int rc, const char *err)
{
    int status = 500;
    switch (rc) {
    case UPD_E_BAD_METADATA:
        status = 400;
        break;
    case UPD_E_VERSION:
    case UPD_E_NO_ROOT:
    case UPD_E_CONFLICT:
        status = 409;
        break;
    case UPD_E_SIGNATURES:
    case UPD_E_EXPIRES:
    case UPD_E_KEYS:
    case UPD_E_TARGET:
        status = 422;
        break;
    case UPD_E_NOTFOUND:
        status = 404;
        break;
    case UPD_E_TOO_LARGE:
        status = 413;
        break;
    default:
        log_error("msg=\"update repository failure\" tenant=%lld err=\"%s\"",
                  (long long)r->tenant_id, err);
        api_error(r, 500, "internal", "internal error");
        return;
    }
    api_error(r, status, upd_strerror(rc), "%s", err);
}

void
api_ota_keys(api_req *r)
{
    ota_key keys[UPD_KEY_COUNT];
    char err[UPD_ERR_LEN];
    /* only operators and admins make the keys: a reader's look never changes anything */
    int rc =
        upd_online_keys(r->app->sg, r->tenant_id, r->role >= ROLE_OPERATOR, keys, err, sizeof(err));
    if (rc != UPD_OK)
        upd_error(r, rc, err);
    else
        api_reply_built(r, 200, upd_keys_json(keys));
}

/* A signed metadata body: a JSON object (its members are checked by the verification). */
static int
signed_body(api_req *r)
{
    if (r->json != NULL && json_is_object(r->json))
        return 0;
    api_error(r, 400, "invalid_json", "the request body must be a signed TUF metadata object");
    return -1;
}

void
api_ota_root_put(api_req *r)
{
    const char *repo = api_query(r, "repo");
    struct store_actor a = api_actor(r);
    char err[UPD_ERR_LEN] = "";
    int64_t version = 0;
    if (repo == NULL ||
        (strcmp(repo, STORE_TUF_IMAGE) != 0 && strcmp(repo, STORE_TUF_DIRECTOR) != 0)) {
        api_error(r, 400, "validation_failed", "'repo' must be image or director");
        return;
    }
    if (signed_body(r) != 0)
        return;
    int rc = upd_root_publish(r->app->st, r->app->sg, r->tenant_id, repo, r->json, &a, util_now(),
                              &version, err, sizeof(err));
    if (rc != UPD_OK) {
        upd_error(r, rc, err);
        return;
    }
    api_reply_built(
        r, 201,
        json_pack("{s:s, s:s, s:I}", "repo", repo, "role", "root", "version", (json_int_t)version));
}

void
api_ota_proposal(api_req *r)
{
    int64_t days = UPD_PROPOSAL_DAYS;
    char err[UPD_ERR_LEN] = "";
    json_t *out = NULL;
    if (api_query_i64(r, "expires_days", 1, UPD_MAX_EXPIRES_DAYS, &days) < 0)
        return;
    int rc =
        upd_targets_proposal(r->app->st, r->tenant_id, util_now(), days, &out, err, sizeof(err));
    if (rc != UPD_OK)
        upd_error(r, rc, err);
    else
        api_reply(r, 200, out);
}

void
api_ota_targets_put(api_req *r)
{
    struct store_actor a = api_actor(r);
    char err[UPD_ERR_LEN] = "";
    json_t *out = NULL;
    if (signed_body(r) != 0)
        return;
    int rc = upd_targets_publish(r->app->st, r->app->sg, r->tenant_id, r->json, &a, util_now(),
                                 &out, err, sizeof(err));
    if (rc != UPD_OK)
        upd_error(r, rc, err);
    else
        api_reply(r, 201, out);
}

void
api_ota_status(api_req *r)
{
    json_t *out = NULL;
    int rc = upd_status(r->app->st, r->tenant_id, &out);
    if (rc != UPD_OK)
        upd_error(r, rc, "status unavailable");
    else
        api_reply(r, 200, out);
}
