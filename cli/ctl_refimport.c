#include "ctl_refimport.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_store.h"
#include "proto_fields.h"

#include <stdio.h>
#include <string.h>

#define IMPORT_MAX 1000 /* entries per file: a fleet has a handful, a bound keeps a typo cheap */

/* What the import did, for the summary: {"added": [...], "present": [...]}. */
struct import_result {
    json_t *added;
    json_t *present;
};

static int
is_platform(const char *stage)
{
    return strcmp(stage, "app") != 0;
}

/* Checks entry i of the file into m (strings borrowed from e). Returns 0, or -1 with a usage
 * error printed. */
static int
entry_parse(struct ctl *c, const char *file, size_t i, json_t *e, struct store_measurement *m)
{
    json_int_t svn = -1;
    if (json_unpack(e, "{s:s, s:s, s:s, s:I, s:s}", "stage", &m->stage, "component", &m->component,
                    "version", &m->version, "svn", &svn, "digest", &m->digest) != 0 ||
        json_object_size(e) != 5) {
        ctl_usage_error(c, "%s: entry %zu: expected exactly stage, component, version, svn, digest",
                        file, i);
        return -1;
    }
    m->svn = svn;
    const char *why = NULL;
    if (proto_stage_parse(m->stage, strlen(m->stage)) < 0)
        why = "stage: expected bootloader, os or app";
    else if (!ctl_component_ok(m->component))
        why = "component: 1-64 characters of [a-z0-9._-]";
    else if (!ctl_version_ok(m->version))
        why = "version: 1-32 printable ASCII characters, no spaces";
    else if (svn < 0 || svn > PROTO_SVN_MAX)
        why = "svn: 0-4294967295";
    else if (strlen(m->digest) != 64 || strspn(m->digest, "0123456789abcdef") != 64)
        why = "digest: 64 lower-case hex characters";
    if (why != NULL) {
        ctl_usage_error(c, "%s: entry %zu: %s", file, i, why);
        return -1;
    }
    return 0;
}

/* The value of list with m's stage, component and version, or NULL. */
static const json_t *
find_value(const json_t *list, const struct store_measurement *m)
{
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *st = json_string_value(json_object_get(v, "stage"));
        const char *co = json_string_value(json_object_get(v, "component"));
        const char *ve = json_string_value(json_object_get(v, "version"));
        if (st != NULL && co != NULL && ve != NULL && strcmp(st, m->stage) == 0 &&
            strcmp(co, m->component) == 0 && strcmp(ve, m->version) == 0)
            return v;
    }
    return NULL;
}

static json_t *
describe(const struct store_measurement *m, json_int_t id)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "scope",
                     is_platform(m->stage) ? "platform" : "tenant", "stage", m->stage, "component",
                     m->component, "version", m->version, "svn", (json_int_t)m->svn, "id", id);
}

/* When the service has m already: 1 (recorded as present), or -1 when it holds another svn or
 * digest for it (error printed). 0 when it does not. */
static int
already_there(const json_t *list, const struct store_measurement *m, struct import_result *res)
{
    const json_t *v = find_value(list, m);
    if (v == NULL)
        return 0;
    const char *digest = json_string_value(json_object_get(v, "digest"));
    if (digest == NULL || strcmp(digest, m->digest) != 0 ||
        json_integer_value(json_object_get(v, "svn")) != m->svn) {
        ctl_err("%s %s %s: the service holds another svn or digest (reference value %lld); "
                "remove it first to replace it",
                m->stage, m->component, m->version,
                (long long)json_integer_value(json_object_get(v, "id")));
        return -1;
    }
    json_array_append_new(res->present, describe(m, json_integer_value(json_object_get(v, "id"))));
    return 1;
}

/* Every platform value of the data directory's database, into *out (caller decrefs). */
static int
platform_list(store *st, json_t **out)
{
    char cursor[129] = "", next[129];
    json_t *all = json_array(), *items = NULL;
    for (;;) {
        struct store_page pg = {cursor[0] != '\0' ? cursor : NULL, 1000};
        if (all == NULL || store_refval_list(st, 0, &pg, &items, next) != STORE_OK ||
            json_array_extend(all, items) != 0) {
            json_decref(items);
            json_decref(all);
            return -1;
        }
        json_decref(items);
        if (next[0] == '\0')
            break;
        memcpy(cursor, next, sizeof(cursor));
    }
    *out = all;
    return 0;
}

/* Adds the file's platform values on the data directory. */
static int
import_platform(struct ctl *c, const struct store_measurement *ms, size_t n,
                struct import_result *res)
{
    const struct store_actor actor = {0, "aegisctl"};
    store *st = NULL;
    json_t *have = NULL, *o = NULL;
    int rc = ctl_store_open(c, 0, &st, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = CTL_EXIT_LOCAL;
    if (platform_list(st, &have) != 0) {
        ctl_err("cannot list the platform reference values (database error)");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_platform(ms[i].stage))
            continue;
        int there = already_there(have, &ms[i], res);
        if (there < 0)
            goto out;
        if (there > 0)
            continue;
        if (store_refval_add(st, 0, &ms[i], &actor, &o) != STORE_OK) {
            ctl_err("cannot add %s %s %s (database error)", ms[i].stage, ms[i].component,
                    ms[i].version);
            goto out;
        }
        json_array_append_new(res->added,
                              describe(&ms[i], json_integer_value(json_object_get(o, "id"))));
        json_decref(o);
        o = NULL;
    }
    rc = CTL_EXIT_OK;
out:
    json_decref(have);
    store_close(st);
    return rc;
}

/* Adds the file's app values through the API. Without the data directory, platform values are
 * checked against the API's listing (which shows them): present, or an error naming the one the
 * operator has to add. */
static int
import_api(struct ctl *c, const struct store_measurement *ms, size_t n, int platform_done,
           struct import_result *res)
{
    const struct ctl_query q = {"", 0};
    json_t *page = NULL, *o = NULL;
    int rc = ctl_fetch_list(c, "/v1/reference-values", &q, 0, NULL, 1, &page);
    if (rc != CTL_EXIT_OK)
        return rc;
    const json_t *have = json_object_get(page, "items");
    for (size_t i = 0; i < n && rc == CTL_EXIT_OK; i++) {
        int platform = is_platform(ms[i].stage);
        if (platform && platform_done)
            continue;
        int there = already_there(have, &ms[i], res);
        if (there < 0) {
            rc = CTL_EXIT_API;
        } else if (there == 0 && platform) {
            ctl_err("platform value %s %s %s is not on the service: the service operator adds it "
                    "(aegisctl --data-dir DIR refvals import FILE)",
                    ms[i].stage, ms[i].component, ms[i].version);
            rc = CTL_EXIT_API;
        } else if (there == 0) {
            json_t *body = json_pack("{s:s, s:s, s:s, s:I, s:s}", "stage", "app", "component",
                                     ms[i].component, "version", ms[i].version, "svn",
                                     (json_int_t)ms[i].svn, "digest", ms[i].digest);
            rc = body != NULL ? ctl_request_object(c, "POST", "/v1/reference-values", body, &o)
                              : CTL_EXIT_LOCAL;
            json_decref(body);
            if (rc == CTL_EXIT_OK)
                json_array_append_new(
                    res->added, describe(&ms[i], json_integer_value(json_object_get(o, "id"))));
            json_decref(o);
            o = NULL;
        }
    }
    json_decref(page);
    return rc;
}

static void
print_result(const struct ctl *c, const struct import_result *res)
{
    if (c->json) {
        json_t *o = json_pack("{s:O, s:O}", "added", res->added, "present", res->present);
        ctl_print_json(o);
        json_decref(o);
        return;
    }
    const json_t *lists[2] = {res->added, res->present};
    const char *words[2] = {"added  ", "present"};
    for (int k = 0; k < 2; k++) {
        size_t i;
        const json_t *v;
        json_array_foreach(lists[k], i, v)
        {
            printf("%s %-8s %-10s %s %s (svn %lld, id %lld)\n", words[k],
                   json_string_value(json_object_get(v, "scope")),
                   json_string_value(json_object_get(v, "stage")),
                   json_string_value(json_object_get(v, "component")),
                   json_string_value(json_object_get(v, "version")),
                   (long long)json_integer_value(json_object_get(v, "svn")),
                   (long long)json_integer_value(json_object_get(v, "id")));
        }
    }
    printf("%zu added, %zu already present\n", json_array_size(res->added),
           json_array_size(res->present));
}

int
ctl_refvals_import(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    struct import_result res = {json_array(), json_array()};
    struct store_measurement ms[IMPORT_MAX];
    json_t *doc = NULL;
    json_error_t jerr;
    size_t n = 0, napp = 0, i;
    int rc, pr = ctl_parse(c, argc, argv, NULL, pos, 1, 1, NULL);
    if (pr != 0) {
        rc = ctl_parse_exit(pr);
        goto out;
    }
    rc = CTL_EXIT_LOCAL;
    doc = json_load_file(pos[0], JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || res.added == NULL || res.present == NULL) {
        ctl_err("%s: %s", pos[0], doc == NULL ? jerr.text : "out of memory");
        goto out;
    }
    rc = CTL_EXIT_USAGE;
    n = json_array_size(doc);
    if (!json_is_array(doc) || n == 0 || n > IMPORT_MAX) {
        ctl_usage_error(c, "%s: expected a JSON array of 1-%d reference values", pos[0],
                        IMPORT_MAX);
        goto out;
    }
    json_t *e;
    n = 0;
    json_array_foreach(doc, i, e)
    {
        if (!json_is_object(e) || entry_parse(c, pos[0], i, e, &ms[n]) != 0)
            goto out;
        napp += !is_platform(ms[n++].stage);
    }
    int local = c->data_dir != NULL || c->config_path != NULL;
    rc = local && napp < n ? import_platform(c, ms, n, &res) : CTL_EXIT_OK;
    if (rc == CTL_EXIT_OK && (napp > 0 || !local))
        rc = import_api(c, ms, n, local, &res);
    if (rc == CTL_EXIT_OK)
        print_result(c, &res);
out:
    json_decref(doc);
    json_decref(res.added);
    json_decref(res.present);
    return rc;
}
