/* ctl_ota_targets: local checks of a targets proposal and its changes (ctl_ota_targets.h). */
#include "ctl_ota_targets.h"

#include "ctl_print.h"
#include "ota_meta.h"
#include "ota_verify.h"
#include "util.h"

#include <stdio.h>
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

/* One line of a target: mark, component, kind, version, svn, hardware, SHA-256, length. */
static void
print_target(const char *mark, const json_t *t)
{
    const json_t *c = json_object_get(t, "custom");
    char line[640];
    snprintf(line, sizeof(line), "%s %s  %s %s svn %lld  %s  sha256 %s  length %lld", mark,
             json_string_value(json_object_get(c, "component")) ?: "?",
             json_string_value(json_object_get(c, "kind")) ?: "?",
             json_string_value(json_object_get(c, "version")) ?: "?",
             (long long)json_integer_value(json_object_get(c, "svn")),
             json_string_value(json_object_get(c, "hardware")) ?: "?",
             json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256")) ?: "?",
             (long long)json_integer_value(json_object_get(t, "length")));
    ctl_sanitize(line);
    printf("%s\n", line);
}

static void
print_list(const json_t *paths, const json_t *in, const char *mark, const json_t *was)
{
    for (size_t i = 0; i < json_array_size(paths); i++) {
        const char *p = json_string_value(json_array_get(paths, i));
        print_target(mark, json_object_get(in, p));
        if (was != NULL)
            print_target("  was", json_object_get(was, p));
    }
}

void
ctl_ota_diff_print(const struct ctl_ota_diff *d, const json_t *cur, const json_t *next,
                   int64_t version)
{
    printf("targets version %lld: %zu added, %zu removed, %zu changed\n", (long long)version,
           json_array_size(d->added), json_array_size(d->removed), json_array_size(d->changed));
    print_list(d->added, next, "+", NULL);
    print_list(d->removed, cur, "-", NULL);
    print_list(d->changed, next, "~", cur);
}

/* The comma-separated list as a set (a JSON object of its members); NULL when it repeats one. */
static json_t *
expect_set(const char *expect)
{
    json_t *set = json_object();
    for (const char *p = expect; set != NULL && *p != '\0';) {
        size_t l = strcspn(p, ",");
        char sha[OTA_SHA256_HEX_LEN];
        snprintf(sha, sizeof(sha), "%.*s", (int)(l < 64 ? l : 64), p);
        if (l != 64 || json_object_get(set, sha) != NULL ||
            json_object_set_new(set, sha, json_true()) != 0) {
            json_decref(set);
            return NULL;
        }
        p += l + (p[l] == ',');
    }
    return set;
}

int
ctl_ota_diff_expect(const struct ctl_ota_diff *d, const json_t *next, const char *expect)
{
    json_t *set = expect_set(expect);
    int rc = -1;
    if (set == NULL || json_object_size(set) == 0) {
        ctl_err("--expect: distinct SHA-256s (64 hex characters) separated by commas");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(d->added); i++) {
        const json_t *t = json_object_get(next, json_string_value(json_array_get(d->added, i)));
        const char *sha =
            json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
        if (sha == NULL || json_object_get(set, sha) == NULL) {
            ctl_err("refused: --expect: the proposal also adds %.64s", sha ? sha : "?");
            goto out;
        }
    }
    if (json_object_size(set) != json_array_size(d->added) || json_array_size(d->changed) != 0) {
        ctl_err("refused: --expect: the proposal adds %zu and changes %zu target(s), %zu expected "
                "added",
                json_array_size(d->added), json_array_size(d->changed), json_object_size(set));
        goto out;
    }
    rc = 0;
out:
    json_decref(set);
    return rc;
}
