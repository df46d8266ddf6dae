#include "cmd_attest.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_refimport.h"
#include "ctl_res.h"
#include "ctl_store.h"
#include "proto_fields.h"

#include <stdio.h>
#include <string.h>

/* Columns of reference value tables (the local and the API listing). */
static const struct ctl_col refval_cols[] = {{"ID", "id", 0, 0},
                                             {"SCOPE", "scope", 0, 0},
                                             {"STAGE", "stage", 0, 0},
                                             {"COMPONENT", "component", 0, CTL_COL_CUT},
                                             {"VERSION", "version", 0, CTL_COL_CUT},
                                             {"SVN", "svn", 0, 0},
                                             {"DIGEST", "digest", 0, CTL_COL_HASH},
                                             {NULL, NULL, 0, 0}};

/* --- platform reference values, on the data directory --- */

static int
refvals_add_local(struct ctl *c, const struct store_measurement *m)
{
    const struct store_actor actor = {0, "aegisctl"};
    store *st = NULL;
    json_t *o = NULL;
    int rc = ctl_store_open(c, 0, &st, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = CTL_EXIT_LOCAL;
    int r = store_refval_add(st, 0, m, &actor, &o);
    if (r == STORE_CONFLICT) {
        ctl_err("a platform reference value for %s %s %s exists already", m->stage, m->component,
                m->version);
        goto out;
    }
    if (r != STORE_OK) {
        ctl_err("cannot add the reference value (%s)",
                r == STORE_INVALID ? "invalid value" : "database error");
        goto out;
    }
    rc = ctl_print_result(c, o, refval_cols);
out:
    json_decref(o);
    store_close(st);
    return rc;
}

static int
refvals_list_local(struct ctl *c)
{
    char cursor[129] = "", next[129];
    store *st = NULL;
    json_t *all = json_array(), *items = NULL;
    int rc = all != NULL ? ctl_store_open(c, 0, &st, NULL) : CTL_EXIT_LOCAL;
    if (rc != CTL_EXIT_OK)
        goto out;
    for (;;) {
        struct store_page pg = {cursor[0] != '\0' ? cursor : NULL, 1000};
        if (store_refval_list(st, 0, &pg, &items, next) != STORE_OK ||
            json_array_extend(all, items) != 0) {
            ctl_err("cannot list the reference values (database error)");
            rc = CTL_EXIT_LOCAL;
            goto out;
        }
        json_decref(items);
        items = NULL;
        if (next[0] == '\0')
            break;
        memcpy(cursor, next, sizeof(cursor));
    }
    int printed = ctl_print_data(c, all, refval_cols);
    if (printed == 0)
        ctl_print_table(c, all, refval_cols);
    rc = ctl_print_exit(printed);
out:
    json_decref(items);
    json_decref(all);
    store_close(st);
    return rc;
}

static int
refvals_remove_local(struct ctl *c, int64_t id)
{
    const struct store_actor actor = {0, "aegisctl"};
    store *st = NULL;
    int rc = ctl_store_open(c, 0, &st, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    int r = store_refval_delete(st, 0, id, &actor);
    if (r == STORE_NOTFOUND)
        ctl_err("no platform reference value %lld", (long long)id);
    else if (r != STORE_OK)
        ctl_err("cannot remove the reference value (database error)");
    else if (!c->json)
        printf("platform reference value %lld removed\n", (long long)id);
    store_close(st);
    return r == STORE_OK ? CTL_EXIT_OK : CTL_EXIT_LOCAL;
}

/* --- over the API --- */

static const struct ctl_resource refvals_res = {"/v1/reference-values", refval_cols, NULL,
                                                CTL_ID_INT, refvals_list_local};

static const struct ctl_col minimum_cols[] = {{"COMPONENT", "component", 0, CTL_COL_CUT},
                                              {"MIN_SVN", "min_svn", 0, 0},
                                              {"UPDATED_AT", "updated_at", 0, 0},
                                              {NULL, NULL, 0, 0}};
static const struct ctl_resource minimums_res = {"/v1/security-minimums", minimum_cols, NULL,
                                                 CTL_ID_NONE, NULL};

static const struct ctl_col attestation_cols[] = {{"ID", "id", 0, 0},
                                                  {"CREATED_AT", "created_at", 0, 0},
                                                  {"DEVICE_ID", "device_id", 0, CTL_COL_HASH},
                                                  {"RESULT", "result", 0, 0},
                                                  {"REASON", "reason", 0, CTL_COL_CUT},
                                                  {"PEER", "peer", 0, CTL_COL_CUT},
                                                  {NULL, NULL, 0, 0}};
static const struct ctl_filter attestation_filters[] = {
    {"--limit", CTL_F_LIMIT, NULL, NULL, NULL, NULL},
    {"--cursor", CTL_F_CURSOR, NULL, NULL, NULL, NULL},
    {"--result", CTL_F_ENUM, "result", "pass|fail", "--result: expected pass or fail", NULL},
    {"--device", CTL_F_DEVICE, NULL, "/v1/devices/%s/attestations", NULL, "--result"},
    {"--all", CTL_F_ALL, NULL, NULL, NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL}};
static const struct ctl_resource attestations_res = {"/v1/attestations", attestation_cols,
                                                     attestation_filters, CTL_ID_NONE, NULL};

static int
ctl_refvals_add(struct ctl *c, int argc, char **argv)
{
    const char *stage = NULL, *component = NULL, *version = NULL, *svn_s = NULL, *digest_s = NULL;
    const struct ctl_opt opts[] = {
        {"--stage", CTL_OPT_STR, &stage, NULL},     {"--component", CTL_OPT_STR, &component, NULL},
        {"--version", CTL_OPT_STR, &version, NULL}, {"--svn", CTL_OPT_STR, &svn_s, NULL},
        {"--digest", CTL_OPT_STR, &digest_s, NULL}, {NULL, 0, NULL, NULL}};
    char digest[65];
    int64_t svn;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (stage == NULL || component == NULL || version == NULL || svn_s == NULL || digest_s == NULL)
        return ctl_usage_error(c, "--stage, --component, --version, --svn and --digest are "
                                  "required");
    if (proto_stage_parse(stage, strlen(stage)) < 0)
        return ctl_usage_error(c, "--stage: expected bootloader, os or app");
    if (!ctl_component_ok(component))
        return ctl_usage_error(c, "--component: 1-64 characters of [a-z0-9._-]");
    if (!ctl_version_ok(version))
        return ctl_usage_error(c, "--version: 1-32 printable ASCII characters, no spaces");
    if (ctl_int(c, "--svn", svn_s, 0, PROTO_SVN_MAX, &svn) != 0 ||
        ctl_parse_digest(c, digest_s, digest) != 0)
        return CTL_EXIT_USAGE;
    if (strcmp(stage, "app") != 0) {
        struct store_measurement m = {stage, component, version, svn, digest};
        return refvals_add_local(c, &m);
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:I, s:s}", "stage", stage, "component", component,
                             "version", version, "svn", (json_int_t)svn, "digest", digest);
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    int rc = ctl_show(c, "POST", "/v1/reference-values", body);
    json_decref(body);
    return rc;
}

static int
ctl_refvals_remove(struct ctl *c, int argc, char **argv)
{
    int64_t id;
    int ec;
    char path[64], done[80];
    if (ctl_args_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    if (ctl_local_mode(c))
        return refvals_remove_local(c, id);
    snprintf(path, sizeof(path), "/v1/reference-values/%lld", (long long)id);
    snprintf(done, sizeof(done), "reference value %lld removed", (long long)id);
    return ctl_delete_and_say(c, path, done);
}

static int
ctl_minimums_set(struct ctl *c, int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    char path[128];
    int64_t min;
    int pr = ctl_parse(c, argc, argv, NULL, pos, 2, 2, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (!ctl_component_ok(pos[0]))
        return ctl_usage_error(c, "COMPONENT: 1-64 characters of [a-z0-9._-]");
    if (ctl_int(c, "N", pos[1], 0, PROTO_SVN_MAX, &min) != 0)
        return CTL_EXIT_USAGE;
    json_t *body = json_pack("{s:I}", "min_svn", (json_int_t)min);
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    snprintf(path, sizeof(path), "/v1/security-minimums/%s", pos[0]);
    int rc = ctl_show(c, "PUT", path, body);
    json_decref(body);
    return rc;
}

static int
ctl_minimums_remove(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    char path[128], done[128];
    int pr = ctl_parse(c, argc, argv, NULL, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (!ctl_component_ok(pos[0]))
        return ctl_usage_error(c, "COMPONENT: 1-64 characters of [a-z0-9._-]");
    snprintf(path, sizeof(path), "/v1/security-minimums/%s", pos[0]);
    snprintf(done, sizeof(done), "minimum of %s removed", pos[0]);
    return ctl_delete_and_say(c, path, done);
}

const struct ctl_cmd cmd_attest_cmds[] = {
    {"refvals", "list", ctl_res_list, CTL_BOTH, "",
     "list reference values (platform: local; platform + tenant: API)",
     "Lists known-good measurements. With --data-dir or --config (and no --server, --token,\n"
     "--token-file) it reads the platform's values (bootloader, os) from the database; otherwise "
     "it\n"
     "calls the API, which lists the platform's values and the tenant's (app).\n",
     &refvals_res},
    {"refvals", "add", ctl_refvals_add, CTL_BOTH,
     "--stage bootloader|os|app --component C --version V --svn N --digest HEX",
     "add a reference value (bootloader, os: local; app: API)",
     "Adds a known-good measurement. Platform values (--stage bootloader or os) are the service\n"
     "operator's and are added on the data directory, like `tenant create`; app values (--stage\n"
     "app) are the tenant's and are added through the API (operator role).\n"
     "\n"
     "Options:\n"
     "  --stage S       bootloader, os or app (required)\n"
     "  --component C   1-64 characters of [a-z0-9._-] (required)\n"
     "  --version V     1-32 printable ASCII characters, no spaces (required)\n"
     "  --svn N         security version, 0-4294967295 (required)\n"
     "  --digest HEX    SHA-256 of the image, 64 hex characters (required)\n",
     NULL},
    {"refvals", "import", ctl_refvals_import, CTL_BOTH, "FILE",
     "add a fleet's reference values from a file (platform: local; app: API)",
     "Adds every reference value of FILE, a JSON array of {\"stage\", \"component\", \"version\",\n"
     "\"svn\", \"digest\"} (the refvals.json that `aegis-sim provision` writes; 1-1000 entries).\n"
     "Platform values (bootloader, os) are the service operator's: with --data-dir or --config "
     "they\n"
     "are added on the data directory, otherwise they must be on the service already (checked\n"
     "through the API). App values are the tenant's and are added through the API (operator\n"
     "role). A value the service holds with the same svn and digest counts as present, so the\n"
     "import can be repeated; another svn or digest for the same stage, component and version is\n"
     "an error (remove the old value first). Prints one line per value and the counts.\n",
     NULL},
    {"refvals", "remove", ctl_refvals_remove, CTL_BOTH, "ID",
     "remove a reference value (platform: local; app: API)",
     "Removes the reference value ID: a platform value with --data-dir or --config (and no\n"
     "--server, --token, --token-file), else one of the tenant's values through the API.\n"
     "Devices measuring it fail attestation (unknown_measurement) from their next attempt on.\n",
     NULL},
    {"minimums", "list", ctl_res_list, 1, "", "list security minimums",
     "Lists the tenant's minimum security versions per component.\n", &minimums_res},
    {"minimums", "set", ctl_minimums_set, 1, "COMPONENT N",
     "set the minimum security version of a component",
     "Sets the minimum svn of COMPONENT to N (0-4294967295). Devices measuring a lower svn fail\n"
     "attestation (rollback) from their next attempt on.\n",
     NULL},
    {"minimums", "remove", ctl_minimums_remove, 1, "COMPONENT",
     "remove the minimum security version of a component",
     "Removes the minimum svn of COMPONENT.\n", NULL},
    {"attestations", "list", ctl_res_list, 1,
     "[--device ID] [--result pass|fail] [--limit N] [--cursor C] [--all]",
     "list attestation attempts, newest first",
     "Lists attestation attempts of the tenant's devices, newest first, one page (default 100)\n"
     "unless --all.\n"
     "\n"
     "Options:\n"
     "  --device ID     only this device's attempts\n"
     "  --result R      pass or fail\n"
     "  --limit N       page size, 1-1000\n"
     "  --cursor C      start at this cursor\n"
     "  --all           follow next_cursor to the last page\n",
     &attestations_res},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
