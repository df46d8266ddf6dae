/* upd_targets: proposal, verification and publication of the image repository's targets
 * (upd_targets.h). */
#include "upd_targets.h"

#include "log.h"
#include "ota_meta.h"
#include "upd_online.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGES_PAGE 1000
#define IMAGES_CURSOR 129 /* a next_cursor of store_image_list (at most 128 bytes) */

int
upd_target_path(const char *component, const char *sha256, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", component, sha256);
    return n > 0 && (size_t)n < len ? 0 : UPD_E_INTERNAL;
}

/* Adds the image img (its store JSON) to the targets "signed" object s. */
static int
add_image(json_t *s, const json_t *img, char *err, size_t errlen)
{
    const char *comp = json_string_value(json_object_get(img, "component"));
    const char *sha = json_string_value(json_object_get(img, "sha256"));
    char path[160];
    int rc = UPD_E_INTERNAL;
    json_t *custom =
        json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "component", json_object_get(img, "component"),
                  "kind", json_object_get(img, "kind"), "version", json_object_get(img, "version"),
                  "svn", json_object_get(img, "svn"), "hardware", json_object_get(img, "hardware"),
                  "product_id", json_object_get(img, "product_id"));
    if (custom != NULL && comp != NULL && sha != NULL &&
        upd_target_path(comp, sha, path, sizeof(path)) == 0 &&
        ota_meta_targets_add(s, path, json_integer_value(json_object_get(img, "size")), sha, custom,
                             err, errlen) == 0)
        rc = UPD_OK;
    json_decref(custom);
    return rc;
}

/* Every image of the tenant (store JSON) into *out, a new array. */
static int
all_images(store *st, int64_t tenant_id, json_t **out)
{
    char next[IMAGES_CURSOR] = "";
    json_t *all = json_array();
    int rc = all != NULL ? STORE_OK : STORE_ERR;
    do {
        struct store_page pg = {next[0] != '\0' ? next : NULL, IMAGES_PAGE};
        char cursor[sizeof(next)] = "";
        json_t *items = NULL;
        if (rc == STORE_OK)
            rc = store_image_list(st, tenant_id, &pg, &items, cursor);
        if (rc == STORE_OK && json_array_extend(all, items) != 0)
            rc = STORE_ERR;
        json_decref(items);
        memcpy(next, cursor, sizeof(next));
    } while (rc == STORE_OK && next[0] != '\0');
    if (rc != STORE_OK) {
        json_decref(all);
        all = NULL;
    }
    *out = all;
    return rc == STORE_OK ? UPD_OK : UPD_E_INTERNAL;
}

/* The newest targets of the tenant: *env its envelope (NULL when none) and *version (0). */
static int
current_targets(store *st, int64_t tenant_id, json_t **env, int64_t *version)
{
    struct store_tuf_file f;
    int rc = store_tuf_get(st, tenant_id, STORE_TUF_IMAGE, "targets", 0, &f);
    *env = NULL;
    *version = 0;
    if (rc == STORE_NOTFOUND)
        return UPD_OK;
    if (rc == STORE_OK) {
        *version = f.version;
        *env = upd_parse(&f);
    }
    store_tuf_file_free(&f);
    return *env != NULL ? UPD_OK : UPD_E_INTERNAL;
}

/* The version of the newest file of role in the image repository (0 when none). */
static int
newest_version(store *st, int64_t tenant_id, const char *role, int64_t *version)
{
    struct store_tuf_file f;
    int rc = store_tuf_get(st, tenant_id, STORE_TUF_IMAGE, role, 0, &f);
    *version = rc == STORE_OK ? f.version : 0;
    store_tuf_file_free(&f);
    return rc == STORE_OK || rc == STORE_NOTFOUND ? UPD_OK : UPD_E_INTERNAL;
}

/* Appends to list a change entry for every target of a that b lacks. */
static int
diff(const json_t *a, const json_t *b, json_t *list)
{
    const char *path;
    json_t *t;
    json_object_foreach((json_t *)a, path, t)
    {
        if (json_object_get(b, path) != NULL)
            continue;
        const json_t *c = json_object_get(t, "custom");
        json_t *e = json_pack(
            "{s:s, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "path", path, "component",
            json_object_get(c, "component"), "kind", json_object_get(c, "kind"), "version",
            json_object_get(c, "version"), "svn", json_object_get(c, "svn"), "hardware",
            json_object_get(c, "hardware"), "length", json_object_get(t, "length"));
        if (json_array_append_new(list, e) != 0)
            return UPD_E_INTERNAL;
    }
    return UPD_OK;
}

int
upd_targets_proposal(store *st, int64_t tenant_id, int64_t now, int64_t days, json_t **out,
                     char *err, size_t errlen)
{
    json_t *cur = NULL, *images = NULL, *env = NULL, *added = json_array(), *removed = json_array();
    int64_t version = 0;
    int rc;
    *out = NULL;
    if ((rc = current_targets(st, tenant_id, &cur, &version)) != UPD_OK ||
        (rc = all_images(st, tenant_id, &images)) != UPD_OK)
        goto out;
    rc = UPD_E_INTERNAL;
    json_t *s = ota_meta_new_targets(version + 1, now + days * 86400);
    if ((env = ota_meta_envelope(s)) == NULL || added == NULL || removed == NULL)
        goto out;
    for (size_t i = 0; i < json_array_size(images); i++)
        if (add_image(s, json_array_get(images, i), err, errlen) != UPD_OK)
            goto out;
    const json_t *now_t = json_object_get(s, "targets");
    const json_t *was_t = json_object_get(json_object_get(cur, "signed"), "targets");
    if (diff(now_t, was_t, added) != UPD_OK || diff(was_t, now_t, removed) != UPD_OK)
        goto out;
    *out = json_pack("{s:O, s:O, s:O}", "proposal", env, "added", added, "removed", removed);
    rc = *out != NULL ? UPD_OK : UPD_E_INTERNAL;
out:
    if (rc == UPD_E_INTERNAL)
        snprintf(err, errlen, "the proposal could not be made");
    json_decref(cur);
    json_decref(images);
    json_decref(env);
    json_decref(added);
    json_decref(removed);
    return rc;
}

/* One listed target: an image of the tenant, with its path, length, hash and custom fields. */
static int
check_target(store *st, int64_t tenant_id, const char *path, const json_t *t, char *err,
             size_t errlen)
{
    const char *sha = json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
    json_t *img = NULL, *want = ota_meta_new_targets(1, 1);
    int rc = store_image_get(st, tenant_id, sha, &img);
    if (rc != STORE_OK || want == NULL) {
        snprintf(err, errlen, "target %.160s: no image of this tenant has SHA-256 %.64s", path,
                 sha);
        rc = rc == STORE_NOTFOUND ? UPD_E_TARGET : UPD_E_INTERNAL;
        goto out;
    }
    if ((rc = add_image(want, img, err, errlen)) != UPD_OK)
        goto out;
    const json_t *expected = json_object_get(json_object_get(want, "targets"), path);
    if (expected == NULL || !json_equal((json_t *)expected, (json_t *)t)) {
        char *e = json_dumps(json_object_get(want, "targets"), JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(err, errlen,
                 "target %.160s does not match the image of its SHA-256: expected %.600s", path,
                 e != NULL ? e : "?");
        free(e);
        rc = UPD_E_TARGET;
    }
out:
    json_decref(img);
    json_decref(want);
    return rc;
}

static int
check_targets(store *st, int64_t tenant_id, const json_t *env, char *err, size_t errlen)
{
    const json_t *targets = json_object_get(json_object_get(env, "signed"), "targets");
    const char *path;
    json_t *t;
    json_object_foreach((json_t *)targets, path, t)
    {
        int rc = check_target(st, tenant_id, path, t, err, errlen);
        if (rc != UPD_OK)
            return rc;
    }
    return UPD_OK;
}

/* The versions a publication was verified against: the image root's, and the newest targets,
 * snapshot and timestamp (0: none). */
struct basis {
    int64_t root, targets, snapshot, timestamp;
};

/* Verifies env as the next targets of the tenant; *f gets its file, *b what it was verified
 * against. */
static int
verify_targets(store *st, int64_t tenant_id, const json_t *env, int64_t now,
               struct store_tuf_file *f, struct basis *b, char *err, size_t errlen)
{
    ota_root *root = NULL;
    int rc = upd_current_root(st, tenant_id, STORE_TUF_IMAGE, &root, NULL);
    if (rc == UPD_E_NOTFOUND) {
        snprintf(err, errlen, "the image repository has no root yet (PUT /v1/ota/root)");
        rc = UPD_E_NO_ROOT;
        goto out;
    }
    if (rc != UPD_OK || (rc = newest_version(st, tenant_id, "targets", &b->targets)) != UPD_OK)
        goto out;
    b->root = ota_root_version(root);
    struct ota_want w = {OTA_ROLE_TARGETS, now, b->targets + 1, 0};
    if ((rc = upd_of_ota(ota_verify_meta(root, env, &w, NULL, err, errlen))) != UPD_OK ||
        (rc = upd_of_ota(ota_check_image_targets(json_object_get(env, "signed"), err, errlen))) !=
            UPD_OK ||
        (rc = upd_file_of(env, f, err, errlen)) != UPD_OK)
        goto out;
    if (f->expires > now + UPD_MAX_EXPIRES_DAYS * 86400LL) {
        snprintf(err, errlen, "targets: expires more than %d days ahead", UPD_MAX_EXPIRES_DAYS);
        rc = UPD_E_EXPIRES;
        goto out;
    }
    rc = check_targets(st, tenant_id, env, err, errlen);
out:
    ota_root_free(root);
    return rc;
}

/* One attempt of upd_targets_publish: verified, signed online and stored on condition that
 * nothing it was verified against changed meanwhile (UPD_E_CONFLICT: try again). */
static int
publish_once(store *st, struct signer *sg, int64_t tenant_id, const json_t *env,
             const struct store_actor *a, int64_t now, struct store_tuf_file f[3], char *err,
             size_t errlen)
{
    struct basis b = {0, 0, 0, 0};
    int rc;
    if ((rc = verify_targets(st, tenant_id, env, now, &f[0], &b, err, errlen)) != UPD_OK ||
        (rc = newest_version(st, tenant_id, "snapshot", &b.snapshot)) != UPD_OK ||
        (rc = newest_version(st, tenant_id, "timestamp", &b.timestamp)) != UPD_OK ||
        (rc = upd_new_snapshot(sg, tenant_id, b.snapshot + 1, f[0].version, now, &f[1], err,
                               errlen)) != UPD_OK ||
        (rc = upd_new_timestamp(sg, tenant_id, b.timestamp + 1, &f[1], now, &f[2], err, errlen)) !=
            UPD_OK)
        return rc;
    const struct store_tuf_expect e[] = {{STORE_TUF_IMAGE, "root", b.root},
                                         {STORE_TUF_IMAGE, "targets", b.targets},
                                         {STORE_TUF_IMAGE, "snapshot", b.snapshot},
                                         {STORE_TUF_IMAGE, "timestamp", b.timestamp}};
    json_t *detail = json_pack(
        "{s:I, s:I, s:I, s:I}", "version", (json_int_t)f[0].version, "targets",
        (json_int_t)json_object_size(json_object_get(json_object_get(env, "signed"), "targets")),
        "snapshot", (json_int_t)f[1].version, "timestamp", (json_int_t)f[2].version);
    rc = store_tuf_publish(st, tenant_id, STORE_TUF_IMAGE, f, 3, e, 4, a, "ota.targets.publish",
                           detail);
    if (rc == STORE_CONFLICT) {
        snprintf(err, errlen, "the repository changed while targets version %lld was published",
                 (long long)f[0].version);
        return UPD_E_CONFLICT;
    }
    if (rc != STORE_OK) {
        snprintf(err, errlen, "the targets could not be stored");
        return UPD_E_INTERNAL;
    }
    return UPD_OK;
}

int
upd_targets_publish(store *st, struct signer *sg, int64_t tenant_id, const json_t *env,
                    const struct store_actor *a, int64_t now, json_t **out, char *err,
                    size_t errlen)
{
    struct store_tuf_file f[3]; /* targets, snapshot, timestamp */
    int rc = UPD_E_CONFLICT;
    memset(f, 0, sizeof(f));
    *out = NULL;
    /* A conflict is a root rotation, another targets version or the cron's re-signing that came
     * between verification and storing: the next attempt verifies against what is there now, so
     * stale input gets its own error (signatures, version) and a re-signing costs nothing. */
    for (int i = 0; i < UPD_PUBLISH_TRIES && rc == UPD_E_CONFLICT; i++) {
        for (int j = 0; j < 3; j++)
            store_tuf_file_free(&f[j]);
        rc = publish_once(st, sg, tenant_id, env, a, now, f, err, errlen);
    }
    if (rc == UPD_OK && (*out = json_pack("{s:I, s:I, s:I}", "targets", (json_int_t)f[0].version,
                                          "snapshot", (json_int_t)f[1].version, "timestamp",
                                          (json_int_t)f[2].version)) == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = UPD_E_INTERNAL;
    }
    for (int i = 0; i < 3; i++)
        store_tuf_file_free(&f[i]);
    return rc;
}
