#include "cmd_tenant.h"

#include "auth.h"
#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_res.h"
#include "ctl_store.h"
#include "util.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TOKEN_TTL_MAX_S (10 * 366 * 24 * 3600LL) /* as the API's (docs/api.md "Tokens") */

static const struct ctl_resource tenant_res = {"/v1/tenant", NULL, NULL, CTL_ID_NONE, NULL};

static const struct ctl_col token_cols[] = {{"ID", "id", 0, 0},
                                            {"NAME", "name", 40, CTL_COL_CUT},
                                            {"ROLE", "role", 0, 0},
                                            {"CREATED_AT", "created_at", 0, 0},
                                            {"CREATED_BY", "created_by", 0, 0},
                                            {"REVOKED_AT", "revoked_at", 0, 0},
                                            {"EXPIRES_AT", "expires_at", 0, 0},
                                            {"LAST_USED_AT", "last_used_at", 0, 0},
                                            {NULL, NULL, 0, 0}};
static const struct ctl_resource tokens_res = {"/v1/tokens", token_cols, NULL, CTL_ID_NONE, NULL};

/* A duration: seconds, or a number with the unit s, m, h or d ("90d"). Returns 0, or -1 with a
 * usage error printed. */
static int
parse_duration(struct ctl *c, const char *opt, const char *s, int64_t *out)
{
    static const struct {
        char unit;
        int64_t seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    char num[24];
    size_t n = strlen(s);
    int64_t mult = 1, v;

    for (size_t i = 0; n > 1 && i < sizeof(units) / sizeof(units[0]); i++)
        if (s[n - 1] == units[i].unit) {
            mult = units[i].seconds;
            n--;
        }
    if (n == 0 || n >= sizeof(num))
        goto bad;
    memcpy(num, s, n);
    num[n] = '\0';
    if (util_parse_i64(num, 1, TOKEN_TTL_MAX_S / mult, &v) != 0)
        goto bad;
    *out = v * mult;
    return 0;
bad:
    ctl_usage_error(c, "%s: expected a duration such as 3600, 90m, 12h or 30d (at most 10 years)",
                    opt);
    return -1;
}

static int
ctl_tokens_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *role = NULL, *expires_in = NULL;
    const struct ctl_opt opts[] = {{"--role", CTL_OPT_STR, &role, NULL},
                                   {"--expires-in", CTL_OPT_STR, &expires_in, NULL},
                                   {NULL, 0, NULL, NULL}};
    json_t *body = NULL, *o = NULL;
    int64_t ttl = 0;
    int rc = CTL_EXIT_LOCAL;

    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (role == NULL)
        return ctl_usage_error(c, "--role is required");
    if (auth_role_parse(role) == ROLE_NONE)
        return ctl_usage_error(c, "--role: expected admin, operator or reader");
    if (pos[0][0] == '\0' || strlen(pos[0]) > 128)
        return ctl_usage_error(c, "NAME: 1-128 bytes");
    if (expires_in != NULL && parse_duration(c, "--expires-in", expires_in, &ttl) != 0)
        return CTL_EXIT_USAGE;
    body = json_object();
    if (body == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    if (ctl_set_str(c, body, "NAME", "name", pos[0]) != 0 ||
        ctl_set_str(c, body, "--role", "role", role) != 0) {
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    if (ttl > 0 && ctl_set_int(body, "expires_in", ttl) != 0) {
        ctl_err("out of memory");
        goto out;
    }
    rc = ctl_request_object(c, "POST", "/v1/tokens", body, &o);
    if (rc != CTL_EXIT_OK)
        goto out;
    json_t *tok = json_object_get(o, "token");
    int printed = ctl_print_data(c, o, token_cols);
    if (printed < 0)
        rc = ctl_print_exit(printed);
    if (printed == 0) {
        json_t *copy = json_copy(o);
        if (copy == NULL) {
            ctl_err("out of memory");
            rc = CTL_EXIT_LOCAL;
            goto out;
        }
        json_object_del(copy, "token");
        ctl_print_object(copy);
        json_decref(copy);
        if (json_is_string(tok))
            printf("token (shown once): %s\n", json_string_value(tok));
    }
    if (!json_is_string(tok)) {
        ctl_err("bad_response: no token in the reply");
        rc = CTL_EXIT_API;
    }
out:
    ctl_json_forget(o, "token");
    json_decref(o);
    json_decref(body);
    return rc;
}

static int
ctl_tokens_revoke(struct ctl *c, int argc, char **argv)
{
    int64_t id;
    int ec;
    char path[64], done[64];
    if (ctl_args_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    snprintf(path, sizeof(path), "/v1/tokens/%lld", (long long)id);
    snprintf(done, sizeof(done), "token %lld revoked", (long long)id);
    return ctl_delete_and_say(c, path, done);
}

/* --- tenant delete (local: tenants are made on the data directory, `aegisctl tenant create`) ---
 */

static int
remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int r = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (r != 0 && errno != ENOENT)
        ctl_err("cannot remove %s: %s", path, strerror(errno));
    return 0; /* go on: remove what can be removed */
}

/* Removes dir/<tenant id> and what it holds (no symlink is followed). */
static void
remove_tenant_dir(const char *dir, const char *sub, int64_t tid)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s/%lld", dir, sub, (long long)tid) >= (int)sizeof(path))
        return;
    if (access(path, F_OK) == 0)
        nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
ctl_tenant_delete(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int yes = 0;
    const struct ctl_opt opts[] = {{"--yes", CTL_OPT_FLAG, NULL, &yes}, {NULL, 0, NULL, NULL}};
    store *st = NULL;
    int64_t tid = 0, devices = 0;

    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (!yes)
        return ctl_usage_error(c,
                               "this deletes tenant '%.128s' and everything it holds, for good: "
                               "add --yes",
                               pos[0]);
    if (ctl_config(c) != 0)
        return CTL_EXIT_LOCAL;
    int rc = ctl_store_open(c, 0, &st, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = CTL_EXIT_LOCAL;
    int r = store_tenant_find(st, pos[0], &tid);
    if (r == STORE_OK)
        r = store_tenant_delete(st, tid, &devices);
    if (r == STORE_NOTFOUND) {
        ctl_err("no tenant named '%.128s'", pos[0]);
        rc = CTL_EXIT_NOT_FOUND;
        goto out;
    }
    if (r != STORE_OK) {
        ctl_err("cannot delete tenant '%.128s' (database error): nothing was deleted", pos[0]);
        goto out;
    }
    /* After the commit: files of a tenant that no longer exists are never read again. */
    remove_tenant_dir(c->cfg.data_dir, "images", tid);
    remove_tenant_dir(c->cfg.pki_dir, "tenants", tid);
    if (c->json) {
        json_t *o = json_pack("{s:s, s:I, s:I}", "deleted", pos[0], "id", (json_int_t)tid,
                              "devices", (json_int_t)devices);
        if (o != NULL)
            ctl_print_json(o);
        json_decref(o);
    } else {
        printf("tenant %s (id %lld) deleted with its %lld devices\n", pos[0], (long long)tid,
               (long long)devices);
    }
    rc = CTL_EXIT_OK;
out:
    store_close(st);
    return rc;
}

const struct ctl_cmd cmd_tenant_cmds[] = {
    {"tenant", "show", ctl_res_show, 1, "", "show the caller's tenant (GET /v1/tenant)",
     "Shows the tenant the token belongs to.\n", &tenant_res},
    {"tenant", "delete", ctl_tenant_delete, 0, "NAME --yes",
     "delete a tenant and everything it holds",
     "Deletes the tenant NAME from the database in one transaction: its tokens (401 from then "
     "on),\n"
     "devices (their certificates stop working at once; a key another tenant also imported "
     "becomes\n"
     "that tenant's), products, groups, images, update repositories, deployments, attestation "
     "and\n"
     "telemetry data, CAs and audit log; then its image files and its CA keys and device root "
     "under\n"
     "the PKI directory. Cannot be undone: --yes is required. Exit 6 when there is no such "
     "tenant.\n",
     NULL},
    {"tokens", "create", ctl_tokens_create, 1, "NAME --role admin|operator|reader [--expires-in D]",
     "create an API token (admin)",
     "Creates an API token and prints it once. Keep it: only its hash is stored.\n"
     "\n"
     "Options:\n"
     "  --role ROLE        admin, operator or reader (required)\n"
     "  --expires-in D     the token stops working after D: seconds, or 90m, 12h, 30d (at\n"
     "                     least 60 s, at most 10 years); default: never\n",
     NULL},
    {"tokens", "list", ctl_res_list, 1, "", "list API tokens (admin)",
     "Lists the tenant's tokens (never their secrets).\n", &tokens_res},
    {"tokens", "revoke", ctl_tokens_revoke, 1, "ID", "revoke an API token (admin)",
     "Revokes the token ID; it answers 401 from its next request on. Idempotent.\n", NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
