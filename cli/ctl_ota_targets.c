/* ctl_ota_targets: local checks of a targets proposal and its changes (ctl_ota_targets.h). */
#include "ctl_ota_targets.h"

#include "ctl_args.h"
#include "ctl_print.h"
#include "ota_meta.h"
#include "ota_verify.h"
#include "proto_fields.h"
#include "util.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
ctl_ota_check_proposal(const json_t *s, int64_t want_version, int64_t now, int64_t days)
{
    char err[512];
    const char *type = json_string_value(json_object_get(s, "_type"));
    const char *spec = json_string_value(json_object_get(s, "spec_version"));
    const char *exp = json_string_value(json_object_get(s, "expires"));
    const json_t *v = json_object_get(s, "version");
    int64_t expires = 0;
    if (ota_check_image_targets(s, err, sizeof(err)) != 0) {
        ctl_err("refused: the proposal: %s", err);
        return -1;
    }
    if (type == NULL || strcmp(type, "targets") != 0 || spec == NULL ||
        strcmp(spec, OTA_SPEC_VERSION) != 0 || !json_is_integer(v) ||
        json_integer_value(v) != want_version || exp == NULL ||
        util_parse_rfc3339(exp, &expires) != 0 || expires <= now ||
        expires > now + (days + 1) * 86400) {
        ctl_err("refused: the proposal is not targets version %lld of spec %s expiring within %lld "
                "days",
                (long long)want_version, OTA_SPEC_VERSION, (long long)days);
        return -1;
    }
    return 0;
}

void
ctl_ota_diff_free(struct ctl_ota_diff *d)
{
    json_decref(d->added);
    json_decref(d->removed);
    json_decref(d->changed);
    memset(d, 0, sizeof(*d));
}

int
ctl_ota_diff_make(const json_t *cur, const json_t *next, struct ctl_ota_diff *d)
{
    const char *path;
    json_t *t;
    d->added = json_array();
    d->removed = json_array();
    d->changed = json_array();
    int rc = d->added != NULL && d->removed != NULL && d->changed != NULL ? 0 : -1;
    json_object_foreach((json_t *)next, path, t)
    {
        const json_t *was = json_object_get(cur, path);
        json_t *list = was == NULL ? d->added : !json_equal((json_t *)was, t) ? d->changed : NULL;
        if (rc == 0 && list != NULL && json_array_append_new(list, json_string(path)) != 0)
            rc = -1;
    }
    json_object_foreach((json_t *)cur, path, t)
    {
        if (rc == 0 && json_object_get(next, path) == NULL &&
            json_array_append_new(d->removed, json_string(path)) != 0)
            rc = -1;
    }
    if (rc != 0) {
        ctl_err("out of memory");
        ctl_ota_diff_free(d);
    }
    return rc;
}

int
ctl_ota_diff_empty(const struct ctl_ota_diff *d)
{
    return json_array_size(d->added) + json_array_size(d->removed) + json_array_size(d->changed) ==
           0;
}

int
ctl_ota_check_added(const struct ctl_ota_diff *d, const json_t *next)
{
    const char *path;
    json_t *t, *count = json_object();
    int rc = count != NULL ? 0 : -1;
    /* the proposal passed ota_check_image_targets: every target has its sha256 */
    json_object_foreach((json_t *)next, path, t)
    {
        const char *sha =
            json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
        json_int_t n = json_integer_value(json_object_get(count, sha));
        if (rc == 0 && json_object_set_new(count, sha, json_integer(n + 1)) != 0)
            rc = -1;
    }
    if (rc != 0)
        ctl_err("out of memory");
    for (size_t i = 0; rc == 0 && i < json_array_size(d->added); i++) {
        path = json_string_value(json_array_get(d->added, i));
        const char *sha = json_string_value(
            json_object_get(json_object_get(json_object_get(next, path), "hashes"), "sha256"));
        if (json_integer_value(json_object_get(count, sha)) > 1) {
            ctl_err("refused: the proposal adds %s, whose SHA-256 another of its targets has too "
                    "(one image is one target)",
                    path);
            rc = -1;
        }
    }
    json_decref(count);
    return rc;
}

/* The string v when it is one of at most max bytes, else "?": a line is never truncated. */
static const char *
bounded(const json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) <= max ? json_string_value(v) : "?";
}

#define TARGET_FMT "%s %s  %s %s svn %lld  %s  sha256 %s  length %lld"
/* The longest line: the format's text, a mark, the bounded fields and two 64-bit integers. */
#define TARGET_LINE                                                                                \
    (sizeof(TARGET_FMT) + sizeof("  was") + 2 * PROTO_COMPONENT_MAX + sizeof("app") +              \
     PROTO_VERSION_MAX + PROTO_HASH_HEX + 2 * 20)

/* One line of a target: mark, component, kind, version, svn, hardware, SHA-256, length. Fields
 * outside their rule (only in targets signed before the rules were checked) print as "?". */
static void
print_target(FILE *f, const char *mark, const json_t *t)
{
    const json_t *c = json_object_get(t, "custom");
    char line[TARGET_LINE];
    assert(strlen(mark) < sizeof("  was"));
    int n =
        snprintf(line, sizeof(line), TARGET_FMT, mark,
                 bounded(json_object_get(c, "component"), PROTO_COMPONENT_MAX),
                 bounded(json_object_get(c, "kind"), 3),
                 bounded(json_object_get(c, "version"), PROTO_VERSION_MAX),
                 (long long)json_integer_value(json_object_get(c, "svn")),
                 bounded(json_object_get(c, "hardware"), PROTO_COMPONENT_MAX),
                 bounded(json_object_get(json_object_get(t, "hashes"), "sha256"), PROTO_HASH_HEX),
                 (long long)json_integer_value(json_object_get(t, "length")));
    assert(n >= 0 && (size_t)n < sizeof(line));
    ctl_sanitize(line);
    fprintf(f, "%s\n", line);
}

static void
print_list(FILE *f, const json_t *paths, const json_t *in, const char *mark, const json_t *was)
{
    for (size_t i = 0; i < json_array_size(paths); i++) {
        const char *p = json_string_value(json_array_get(paths, i));
        print_target(f, mark, json_object_get(in, p));
        if (was != NULL)
            print_target(f, "  was", json_object_get(was, p));
    }
}

void
ctl_ota_diff_print(FILE *f, const struct ctl_ota_diff *d, const json_t *cur, const json_t *next,
                   int64_t version)
{
    fprintf(f, "targets version %lld: %zu added, %zu removed, %zu changed\n", (long long)version,
            json_array_size(d->added), json_array_size(d->removed), json_array_size(d->changed));
    print_list(f, d->added, next, "+", NULL);
    print_list(f, d->removed, cur, "-", NULL);
    print_list(f, d->changed, next, "~", cur);
}

/* The fields an --expect entry may name after its SHA-256, in their order. */
static const char *const EXPECT_FIELDS[] = {"component", "version", "svn", "kind", "hardware"};
#define EXPECT_ENTRY_MAX 512

/* The version of an --expect entry: %XX escapes decoded (a version may hold ',' ':' '%'), then
 * the image rule. Returns a new string, or NULL. */
static json_t *
expect_version(const char *s)
{
    char out[PROTO_VERSION_MAX + 1];
    size_t n = 0;
    for (; *s != '\0' && n < sizeof(out); n++) {
        uint8_t b;
        if (*s == '%' && proto_unhex(s + 1, strnlen(s + 1, 2), &b, 1, 0) != 0)
            return NULL;
        out[n] = *s == '%' ? (char)b : *s;
        s += *s == '%' ? 3 : 1;
    }
    return *s == '\0' && proto_version_ok(out, n) ? json_stringn(out, n) : NULL;
}

/* One field (i of EXPECT_FIELDS) of an --expect entry as the proposal's custom holds it, or NULL
 * with a usage error. */
static json_t *
expect_field(struct ctl *c, size_t i, const char *s)
{
    int64_t svn;
    json_t *v = NULL;
    switch (i) {
    case 0:
    case 4:
        v = proto_component_ok(s, strlen(s)) ? json_string(s) : NULL;
        break;
    case 1:
        v = expect_version(s);
        break;
    case 2:
        if (ctl_int(c, "--expect: SVN", s, 0, PROTO_SVN_MAX, &svn) != 0)
            return NULL;
        v = json_integer(svn);
        break;
    case 3:
        v = strcmp(s, "os") == 0 || strcmp(s, "app") == 0 ? json_string(s) : NULL;
        break;
    }
    if (v == NULL)
        ctl_usage_error(c, "--expect: '%.64s' is not a valid %s", s, EXPECT_FIELDS[i]);
    return v;
}

/* One entry "SHA256[:COMPONENT:VERSION:SVN[:KIND[:HARDWARE]]]" (NUL-terminated in buf, which it
 * splits) into set: SHA-256 (lower case) -> the fields it names. Returns 0, or -1 with a usage
 * error. */
static int
expect_entry(struct ctl *c, char *buf, json_t *set)
{
    char *tok[7] = {NULL}, sha[PROTO_HASH_HEX + 1];
    uint8_t h[PROTO_HASH_LEN];
    size_t n = 0;
    /* split at every ':', keeping empty fields (refused below, not skipped) */
    for (char *p = buf; n < 7;) {
        tok[n++] = p;
        char *colon = strchr(p, ':');
        if (colon == NULL)
            break;
        *colon = '\0';
        p = colon + 1;
    }
    if (n == 2 || n == 3 || n > 6 || strlen(tok[0]) != PROTO_HASH_HEX ||
        proto_unhex(tok[0], PROTO_HASH_HEX, h, sizeof(h), 0) != 0) {
        ctl_usage_error(c, "--expect: an entry is SHA256 or "
                           "SHA256:COMPONENT:VERSION:SVN[:KIND[:HARDWARE]]");
        return -1;
    }
    proto_hex(h, sizeof(h), sha);
    json_t *want = json_object();
    int rc = want != NULL && json_object_get(set, sha) == NULL ? 0 : -1;
    if (rc != 0)
        ctl_usage_error(c, "--expect: %s is named twice", sha);
    for (size_t i = 1; rc == 0 && i < n; i++) {
        json_t *v = expect_field(c, i - 1, tok[i]);
        rc = v != NULL ? json_object_set_new(want, EXPECT_FIELDS[i - 1], v) : -1;
    }
    if (rc == 0 && json_object_set_new(set, sha, want) == 0)
        return 0;
    json_decref(want);
    return -1;
}

json_t *
ctl_ota_expect_parse(struct ctl *c, const char *expect)
{
    json_t *set = json_object();
    char buf[EXPECT_ENTRY_MAX];
    if (set == NULL || expect[0] == '\0')
        goto fail;
    for (const char *p = expect; *p != '\0';) {
        size_t l = strcspn(p, ",");
        if (l == 0 || l >= sizeof(buf)) {
            ctl_usage_error(c, "--expect: an empty or overlong entry");
            goto fail;
        }
        memcpy(buf, p, l);
        buf[l] = '\0';
        if (expect_entry(c, buf, set) != 0)
            goto fail;
        p += l + (p[l] == ',');
    }
    return set;
fail:
    if (set == NULL || expect[0] == '\0')
        ctl_usage_error(c, "--expect: at least one entry");
    json_decref(set);
    return NULL;
}

/* The fields named by want that the added target t (of the checked proposal) does not have: 0, or
 * -1 with the difference printed. */
static int
expect_fields(const char *path, const json_t *t, const json_t *want)
{
    const json_t *custom = json_object_get(t, "custom");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v)
    {
        const json_t *got = json_object_get(custom, k);
        if (got == NULL || !json_equal((json_t *)got, v)) {
            char *g = json_dumps(got, JSON_ENCODE_ANY), *w = json_dumps(v, JSON_ENCODE_ANY);
            ctl_err("refused: --expect: the proposal adds %s with %s %s, %s expected", path, k,
                    g ? g : "?", w ? w : "?");
            free(g);
            free(w);
            return -1;
        }
    }
    return 0;
}

int
ctl_ota_diff_expect(const struct ctl_ota_diff *d, const json_t *next, const json_t *want)
{
    for (size_t i = 0; i < json_array_size(d->added); i++) {
        const char *path = json_string_value(json_array_get(d->added, i));
        const json_t *t = json_object_get(next, path);
        const char *sha =
            json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
        const json_t *w = json_object_get(want, sha);
        if (w == NULL) {
            ctl_err("refused: --expect: the proposal also adds %s", path);
            return -1;
        }
        if (expect_fields(path, t, w) != 0)
            return -1;
    }
    if (json_object_size(want) != json_array_size(d->added) || json_array_size(d->changed) != 0) {
        ctl_err("refused: --expect: the proposal adds %zu and changes %zu target(s), %zu expected "
                "added",
                json_array_size(d->added), json_array_size(d->changed), json_object_size(want));
        return -1;
    }
    return 0;
}
