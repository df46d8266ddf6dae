#include "cmd_tenant.h"

#include "auth.h"
#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_res.h"

#include <stdio.h>
#include <string.h>

static const struct ctl_resource tenant_res = {"/v1/tenant", NULL, NULL, CTL_ID_NONE, NULL};

static const struct ctl_col token_cols[] = {{"ID", "id", 0, 0},
                                            {"NAME", "name", 40, CTL_COL_CUT},
                                            {"ROLE", "role", 0, 0},
                                            {"CREATED_AT", "created_at", 0, 0},
                                            {"CREATED_BY", "created_by", 0, 0},
                                            {"REVOKED_AT", "revoked_at", 0, 0},
                                            {NULL, NULL, 0, 0}};
static const struct ctl_resource tokens_res = {"/v1/tokens", token_cols, NULL, CTL_ID_NONE, NULL};

static int
ctl_tokens_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *role = NULL;
    const struct ctl_opt opts[] = {{"--role", CTL_OPT_STR, &role, NULL}, {NULL, 0, NULL, NULL}};
    json_t *body = NULL, *o = NULL;
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
    rc = ctl_request_object(c, "POST", "/v1/tokens", body, &o);
    if (rc != CTL_EXIT_OK)
        goto out;
    json_t *tok = json_object_get(o, "token");
    if (!ctl_print_data(c, o, token_cols)) {
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

const struct ctl_cmd cmd_tenant_cmds[] = {
    {"tenant", "show", ctl_res_show, 1, "", "show the caller's tenant (GET /v1/tenant)",
     "Shows the tenant the token belongs to.\n", &tenant_res},
    {"tokens", "create", ctl_tokens_create, 1, "NAME --role admin|operator|reader",
     "create an API token (admin)",
     "Creates an API token and prints it once. Keep it: only its hash is stored.\n"
     "\n"
     "Options:\n"
     "  --role ROLE   admin, operator or reader (required)\n",
     NULL},
    {"tokens", "list", ctl_res_list, 1, "", "list API tokens (admin)",
     "Lists the tenant's tokens (never their secrets).\n", &tokens_res},
    {"tokens", "revoke", ctl_tokens_revoke, 1, "ID", "revoke an API token (admin)",
     "Revokes the token ID; it answers 401 from its next request on. Idempotent.\n", NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
