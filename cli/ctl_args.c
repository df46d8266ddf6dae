#include "ctl_args.h"

#include "proto_fields.h"
#include "util.h"

#include <assert.h>
#include <string.h>

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
    if (strcmp(a, "--json") == 0) {
        c->json = 1;
        return 0;
    }
    if (strncmp(a, "--json=", 7) == 0) {
        ctl_usage_error(c, "option --json takes no value");
        return -1;
    }
    const char *eq = strchr(a, '=');
    size_t nl = eq != NULL ? (size_t)(eq - a) : strlen(a);
    int k = find_opt(opts, a, nl);
    if (k < 0) {
        ctl_usage_error(c, "unknown option '%.*s'", (int)(nl > 64 ? 64 : nl), a);
        return -1;
    }
    if (k < 32 && (*seen & (1u << k)) != 0) {
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
ctl_time_ok(struct ctl *c, const char *opt, const char *s)
{
    int64_t t;
    if (util_parse_rfc3339(s, &t) != 0) {
        ctl_usage_error(c, "%s: expected an RFC 3339 UTC time such as 2026-11-22T10:00:00Z", opt);
        return -1;
    }
    return 0;
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
    if (ctl_parse_device_id(c, pos[0], id) != 0) {
        *exit_code = CTL_EXIT_USAGE;
        return -1;
    }
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
