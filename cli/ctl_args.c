#include "ctl_args.h"

#include "ctl_client.h"
#include "ctl_jsonpath.h"
#include "ctl_suggest.h"
#include "proto_fields.h"
#include "util.h"

#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <string.h>

#define PREFIX_MIN 4

const struct ctl_gopt ctl_global_opts[] = {
    {"--data-dir", 1},   {"--config", 1},     {"--server", 1}, {"--token", 1},
    {"--token-file", 1}, {"--cacert", 1},     {"--output", 1}, {"-o", 1},
    {"--json", 0},       {"--no-headers", 0}, {NULL, 0}};

/* The field of c a global option with a string value sets, or NULL for the others. */
static const char **
global_field(struct ctl *c, const char *name)
{
    static const struct {
        const char *name;
        size_t off;
    } fields[] = {{"--data-dir", offsetof(struct ctl, data_dir)},
                  {"--config", offsetof(struct ctl, config_path)},
                  {"--server", offsetof(struct ctl, server)},
                  {"--token", offsetof(struct ctl, token_arg)},
                  {"--token-file", offsetof(struct ctl, token_file)},
                  {"--cacert", offsetof(struct ctl, cacert)}};
    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
        if (strcmp(fields[k].name, name) == 0)
            return (const char **)(void *)((char *)c + fields[k].off);
    return NULL;
}

/* -o / --output VALUE: table, wide, json, name or jsonpath=EXPR. */
static int
set_output(struct ctl *c, const char *v)
{
    static const struct {
        const char *name;
        enum ctl_output out;
    } modes[] = {{"table", CTL_OUT_TABLE},
                 {"wide", CTL_OUT_WIDE},
                 {"json", CTL_OUT_JSON},
                 {"name", CTL_OUT_NAME}};
    if (c->json || c->output != CTL_OUT_TABLE) {
        ctl_usage_error(c, "the output format (-o, --output, --json) given twice");
        return -1;
    }
    if (strncmp(v, "jsonpath=", 9) == 0) {
        if (v[9] == '\0') {
            ctl_usage_error(c, "-o jsonpath=EXPR: the expression is empty");
            return -1;
        }
        /* refused here, before any request: a bad template is a usage error, not a late one */
        char err[160];
        if (ctl_jsonpath_check(v + 9, err, sizeof(err)) != 0) {
            ctl_usage_error(c, "-o jsonpath: %s", err);
            return -1;
        }
        c->output = CTL_OUT_JSONPATH;
        c->jsonpath = v + 9;
        return 0;
    }
    for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); k++) {
        if (strcmp(v, modes[k].name) == 0) {
            c->output = modes[k].out;
            c->json = c->output == CTL_OUT_JSON;
            return 0;
        }
    }
    ctl_usage_error(c, "-o: expected table, wide, json, name or jsonpath=EXPR, got '%.64s'", v);
    return -1;
}

/* The value of a global option that takes one: "--name=V", "--name V", and for "-o" also "-oV". */
static int
global_value(struct ctl *c, int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t nl = strlen(name);
    if (a[nl] == '=' || (strcmp(name, "-o") == 0 && a[nl] != '\0')) {
        *val = a + nl + (a[nl] == '=');
        return 0;
    }
    if (*i + 1 >= argc) {
        ctl_usage_error(c, "option %s needs a value", name);
        return -1;
    }
    *val = argv[++*i];
    return 0;
}

int
ctl_global_option(struct ctl *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *val = NULL;
    const struct ctl_gopt *g = ctl_global_opts;
    for (; g->name != NULL; g++) {
        size_t nl = strlen(g->name);
        if (strncmp(a, g->name, nl) == 0 &&
            (a[nl] == '\0' || a[nl] == '=' || (strcmp(g->name, "-o") == 0)))
            break;
    }
    if (g->name == NULL)
        return 0;
    if (!g->has_value) {
        if (strchr(a, '=') != NULL) {
            ctl_usage_error(c, "option %s takes no value", g->name);
            return -1;
        }
        if (strcmp(g->name, "--json") == 0 && c->output != CTL_OUT_TABLE && !c->json) {
            ctl_usage_error(c, "the output format (-o, --output, --json) given twice");
            return -1;
        }
        if (strcmp(g->name, "--json") == 0) {
            c->json = 1;
            c->output = CTL_OUT_JSON;
        } else {
            c->no_headers = 1;
        }
        return 1;
    }
    if (global_value(c, argc, argv, i, g->name, &val) != 0)
        return -1;
    if (g->name[1] == 'o' || strcmp(g->name, "--output") == 0)
        return set_output(c, val) == 0 ? 1 : -1;
    const char **dst = global_field(c, g->name);
    assert(dst != NULL);
    if (*dst != NULL) {
        ctl_usage_error(c, "option %s given twice", g->name);
        return -1;
    }
    *dst = val;
    if (strcmp(g->name, "--server") == 0 || strncmp(g->name, "--token", 7) == 0)
        c->api_explicit = 1;
    return 1;
}

int
ctl_parse_exit(int parse_rc)
{
    return parse_rc > 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

/* The index of the option named by a ("--name" or "--name=value", nl characters), or -1. */
static int
find_opt(const struct ctl_opt *opts, const char *a, size_t nl)
{
    for (int j = 0; opts != NULL && opts[j].name != NULL; j++)
        if (strlen(opts[j].name) == nl && strncmp(opts[j].name, a, nl) == 0)
            return j;
    return -1;
}

/* "unknown option", with the nearest of the command's and the global options. */
static void
unknown_option(struct ctl *c, const struct ctl_opt *opts, const char *a, size_t nl)
{
    char typed[CTL_SUGGEST_MAX + 1];
    struct ctl_suggest sg;
    snprintf(typed, sizeof(typed), "%.*s", (int)(nl > CTL_SUGGEST_MAX ? CTL_SUGGEST_MAX : nl), a);
    ctl_suggest_init(&sg, typed);
    for (int j = 0; opts != NULL && opts[j].name != NULL; j++)
        ctl_suggest_add(&sg, opts[j].name);
    for (const struct ctl_gopt *g = ctl_global_opts; g->name != NULL; g++)
        if (strlen(g->name) > 2)
            ctl_suggest_add(&sg, g->name);
    ctl_suggest_add(&sg, "--help");
    const char *best = ctl_suggest_best(&sg);
    if (best != NULL)
        ctl_usage_error(c, "unknown option '%s'; did you mean '%s'?", typed, best);
    else
        ctl_usage_error(c, "unknown option '%s'", typed);
}

/* One option at argv[*i] (advanced past its value). Returns 0, 1 (--help printed) or -1. */
static int
parse_option(struct ctl *c, int argc, char **argv, int *i, const struct ctl_opt *opts,
             unsigned *seen)
{
    const char *a = argv[*i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        ctl_cmd_help(stdout, c->cmd);
        return 1;
    }
    const char *eq = strchr(a, '=');
    size_t nl = eq != NULL ? (size_t)(eq - a) : strlen(a);
    int k = find_opt(opts, a, nl);
    if (k < 0) {
        int g = ctl_global_option(c, argc, argv, i);
        if (g == 0)
            unknown_option(c, opts, a, nl);
        return g > 0 ? 0 : -1;
    }
    if (k < 32 && (*seen & (1u << k)) != 0 && opts[k].kind != CTL_OPT_MULTI) {
        ctl_usage_error(c, "option %s given twice", opts[k].name);
        return -1;
    }
    if (k < 32)
        *seen |= 1u << k;
    if (opts[k].kind == CTL_OPT_FLAG) {
        if (eq != NULL) {
            ctl_usage_error(c, "option %s takes no value", opts[k].name);
            return -1;
        }
        assert(opts[k].flag != NULL);
        *opts[k].flag = 1;
        return 0;
    }
    const char *val = eq != NULL ? eq + 1 : NULL;
    if (val == NULL) {
        if (*i + 1 >= argc) {
            ctl_usage_error(c, "option %s needs a value", opts[k].name);
            return -1;
        }
        val = argv[++*i];
    }
    assert(opts[k].str != NULL);
    if (opts[k].kind == CTL_OPT_MULTI) {
        assert(opts[k].flag != NULL);
        if (*opts[k].flag >= CTL_OPT_MULTI_MAX) {
            ctl_usage_error(c, "option %s given more than %d times", opts[k].name,
                            CTL_OPT_MULTI_MAX);
            return -1;
        }
        opts[k].str[(*opts[k].flag)++] = val;
        return 0;
    }
    *opts[k].str = val;
    return 0;
}

int
ctl_parse(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, const char **pos,
          int minpos, int maxpos, int *npos)
{
    int n = 0, only_pos = 0;
    unsigned seen = 0; /* bit i: opts[i] given */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            int r = parse_option(c, argc, argv, &i, opts, &seen);
            if (r != 0)
                return r;
            continue;
        }
        if (n >= maxpos) {
            ctl_usage_error(c, "unexpected argument '%.64s'", a);
            return -1;
        }
        pos[n++] = a;
    }
    if (n < minpos) {
        ctl_usage_error(c, "missing argument");
        return -1;
    }
    if (npos != NULL)
        *npos = n;
    return 0;
}

int
ctl_int(struct ctl *c, const char *what, const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (util_parse_i64(s, min, max, out) != 0) {
        ctl_usage_error(c, "%s: expected an integer from %lld to %lld, got '%.32s'", what,
                        (long long)min, (long long)max, s);
        return -1;
    }
    return 0;
}

int
ctl_parse_id(struct ctl *c, const char *what, const char *s, int64_t *out)
{
    return ctl_int(c, what, s, 1, INT64_MAX, out);
}

int
ctl_parse_device_id(struct ctl *c, const char *s, char out[65])
{
    uint8_t id[PROTO_HASH_LEN];
    if (proto_unhex(s, strlen(s), id, sizeof(id), 0) != 0) {
        ctl_usage_error(c, "ID: a device ID is 64 hex characters");
        return -1;
    }
    proto_hex(id, sizeof(id), out); /* the wire's lower case */
    return 0;
}

int
ctl_parse_limit(struct ctl *c, const char *s, int64_t *out)
{
    *out = 0;
    return s == NULL ? 0 : ctl_int(c, "--limit", s, 1, 1000, out);
}

int
ctl_cursor_ok(struct ctl *c, const char *cursor)
{
    if (cursor != NULL && (cursor[0] == '\0' || strlen(cursor) > 128)) {
        ctl_usage_error(c, "--cursor: 1-128 bytes");
        return -1;
    }
    return 0;
}

int
ctl_parse_digest(struct ctl *c, const char *s, char out[65])
{
    uint8_t digest[PROTO_HASH_LEN];
    if (proto_unhex(s, strlen(s), digest, sizeof(digest), 0) != 0) {
        ctl_usage_error(c, "--digest: expected 64 hex characters (SHA-256 of the image)");
        return -1;
    }
    proto_hex(digest, sizeof(digest), out); /* the wire's lower case */
    return 0;
}

int
ctl_parse_time(struct ctl *c, const char *opt, const char *s, char out[CTL_TIME_LEN])
{
    int64_t t;
    const char *why = NULL;
    if (ctl_time_parse(s, util_now(), &t, &why) != 0 || ctl_time_format(t, out) != 0) {
        ctl_usage_error(c, "%s '%.64s': %s", opt, s, why != NULL ? why : "out of range");
        return -1;
    }
    return 0;
}

/* GET /v1/devices?id_prefix=P&limit=2: two are enough to tell one match from several. */
static int
fetch_prefix(struct ctl *c, const char *prefix, json_t **page)
{
    struct ctl_query q;
    memset(&q, 0, sizeof(q));
    ctl_query_add(&q, "id_prefix", prefix);
    return ctl_fetch_list(c, "/v1/devices", &q, 2, NULL, 0, page);
}

int
ctl_device_arg(struct ctl *c, const char *s, char out[65])
{
    return ctl_device_resolve(c, s, fetch_prefix, out);
}

/* The "id" of a page's item i when it is a device ID that starts with prefix, else NULL. */
static const char *
match_id(const json_t *items, size_t i, const char *prefix)
{
    const char *id = json_string_value(json_object_get(json_array_get(items, i), "id"));
    if (id == NULL || strlen(id) != 2 * PROTO_HASH_LEN || strncmp(id, prefix, strlen(prefix)) != 0)
        return NULL;
    return id;
}

int
ctl_device_resolve(struct ctl *c, const char *s, ctl_prefix_fetch fetch, char out[65])
{
    char prefix[2 * PROTO_HASH_LEN + 1];
    size_t n = strlen(s);
    if (n == 2 * PROTO_HASH_LEN)
        return ctl_parse_device_id(c, s, out) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    for (size_t k = 0; k < n && k < sizeof(prefix) - 1; k++)
        prefix[k] = (char)tolower((unsigned char)s[k]);
    if (n < PREFIX_MIN || n > 2 * PROTO_HASH_LEN || strspn(s, "0123456789abcdefABCDEF") != n)
        return ctl_usage_error(c,
                               "ID: a device ID is 64 hex characters, or a unique prefix of it "
                               "(at least %d)",
                               PREFIX_MIN);
    prefix[n] = '\0';
    json_t *page = NULL;
    int rc = fetch(c, prefix, &page);
    if (rc != CTL_EXIT_OK)
        return rc;
    const json_t *items = json_object_get(page, "items");
    size_t count = json_array_size(items);
    for (size_t i = 0; i < count; i++) {
        if (match_id(items, i, prefix) == NULL) {
            ctl_err("bad_response: the server answered a device that does not match %s", prefix);
            rc = CTL_EXIT_API;
            goto out;
        }
    }
    if (count == 0) {
        ctl_err("no device matches prefix %s", prefix);
        rc = CTL_EXIT_NOT_FOUND;
    } else if (count > 1) {
        int more = count > 2 || json_is_string(json_object_get(page, "next_cursor"));
        ctl_err("device prefix %s is ambiguous: matches %s, %s%s", prefix,
                match_id(items, 0, prefix), match_id(items, 1, prefix), more ? ", ..." : "");
        rc = CTL_EXIT_USAGE;
    } else {
        memcpy(out, match_id(items, 0, prefix), 2 * PROTO_HASH_LEN + 1);
    }
out:
    json_decref(page);
    return rc;
}

int
ctl_component_ok(const char *s)
{
    return proto_component_ok(s, strlen(s));
}

int
ctl_version_ok(const char *s)
{
    return proto_version_ok(s, strlen(s));
}

int
ctl_args_id(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, int64_t *id,
            int *exit_code)
{
    const char *pos[1] = {NULL};
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0) {
        *exit_code = ctl_parse_exit(pr);
        return -1;
    }
    if (ctl_parse_id(c, "ID", pos[0], id) != 0) {
        *exit_code = CTL_EXIT_USAGE;
        return -1;
    }
    return 0;
}

int
ctl_args_device(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts,
                const char *suffix, char *path, size_t pathlen, int *exit_code)
{
    const char *pos[1] = {NULL};
    char id[65];
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0) {
        *exit_code = ctl_parse_exit(pr);
        return -1;
    }
    *exit_code = ctl_device_arg(c, pos[0], id);
    if (*exit_code != CTL_EXIT_OK)
        return -1;
    snprintf(path, pathlen, "/v1/devices/%s%s", id, suffix);
    return 0;
}

int
ctl_set_str(struct ctl *c, json_t *obj, const char *what, const char *key, const char *s)
{
    json_t *v = json_string(s);
    if (v == NULL) {
        ctl_usage_error(c, "%s: not valid UTF-8", what);
        return -1;
    }
    if (json_object_set_new(obj, key, v) != 0) {
        ctl_err("out of memory");
        return -1;
    }
    return 0;
}

int
ctl_set_int(json_t *obj, const char *key, int64_t v)
{
    if (json_object_set_new(obj, key, json_integer((json_int_t)v)) != 0) {
        ctl_err("out of memory");
        return -1;
    }
    return 0;
}
