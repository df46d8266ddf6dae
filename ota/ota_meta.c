/* ota_meta: builders and signing of TUF metadata (see ota_meta.h). */
#include "ota_meta.h"

#include "errbuf.h"
#include "ota_cjson.h"
#include "util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[OTA_ROLE_COUNT] = {"root", "targets", "snapshot", "timestamp"};

const char *
ota_role_name(ota_role r)
{
    assert(r >= 0 && r < OTA_ROLE_COUNT);
    return role_names[r];
}

int
ota_role_parse(const char *name, ota_role *out)
{
    for (int r = 0; r < OTA_ROLE_COUNT; r++) {
        if (name != NULL && strcmp(name, role_names[r]) == 0) {
            *out = (ota_role)r;
            return 0;
        }
    }
    return -1;
}

int
ota_is_sha256_hex(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return 0;
    for (size_t i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

/* The common fields. 253402300799 is 9999-12-31T23:59:59Z, the last time the format can write. */
static json_t *
new_signed(ota_role role, int64_t version, int64_t expires)
{
    char when[32];
    if (version < 1 || expires < 0 || expires > 253402300799LL)
        return NULL;
    util_rfc3339(expires, when, sizeof(when));
    return json_pack("{s:s, s:s, s:I, s:s}", "_type", ota_role_name(role), "spec_version",
                     OTA_SPEC_VERSION, "version", (json_int_t)version, "expires", when);
}

json_t *
ota_meta_new_root(int64_t version, int64_t expires)
{
    json_t *s = new_signed(OTA_ROLE_ROOT, version, expires);
    json_t *roles = json_object();
    if (s == NULL || roles == NULL)
        goto fail;
    for (int r = 0; r < OTA_ROLE_COUNT; r++) {
        if (json_object_set_new(roles, role_names[r],
                                json_pack("{s:[], s:I}", "keyids", "threshold", (json_int_t)1)) < 0)
            goto fail;
    }
    if (json_object_set_new(s, "consistent_snapshot", json_true()) < 0 ||
        json_object_set_new(s, "keys", json_object()) < 0 || json_object_set(s, "roles", roles) < 0)
        goto fail;
    json_decref(roles);
    return s;
fail:
    json_decref(roles);
    json_decref(s);
    return NULL;
}

/* The role entry of a root built here (or any root of that shape). */
static json_t *
root_role(json_t *root, ota_role role, char *err, size_t errlen)
{
    json_t *r = json_object_get(json_object_get(root, "roles"), ota_role_name(role));
    if (!json_is_object(r) || !json_is_array(json_object_get(r, "keyids"))) {
        errbuf_set(err, errlen, "root: no role %s with keyids", ota_role_name(role));
        return NULL;
    }
    return r;
}

int
ota_meta_root_add_key(json_t *root, ota_role role, const ota_key *k, char *err, size_t errlen)
{
    json_t *r = root_role(root, role, err, errlen);
    json_t *keys = json_object_get(root, "keys");
    if (r == NULL)
        return -1;
    if (!json_is_object(keys)) {
        errbuf_set(err, errlen, "root: no keys object");
        return -1;
    }
    if (json_object_get(keys, k->keyid) == NULL &&
        json_object_set_new(keys, k->keyid, ota_key_public_json(k)) < 0)
        goto oom;
    json_t *ids = json_object_get(r, "keyids");
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (id != NULL && strcmp(id, k->keyid) == 0)
            return 0;
    }
    if (json_array_append_new(ids, json_string(k->keyid)) < 0)
        goto oom;
    return 0;
oom:
    errbuf_set(err, errlen, "out of memory");
    return -1;
}

int
ota_meta_root_set_threshold(json_t *root, ota_role role, int64_t threshold, char *err,
                            size_t errlen)
{
    json_t *r = root_role(root, role, err, errlen);
    if (r == NULL)
        return -1;
    if (threshold < 1) {
        errbuf_set(err, errlen, "root: threshold of %s must be at least 1", ota_role_name(role));
        return -1;
    }
    if (json_object_set_new(r, "threshold", json_integer(threshold)) < 0) {
        errbuf_set(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

json_t *
ota_meta_new_targets(int64_t version, int64_t expires)
{
    json_t *s = new_signed(OTA_ROLE_TARGETS, version, expires);
    if (s != NULL && json_object_set_new(s, "targets", json_object()) < 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

/* Relative '/'-separated path without empty, "." or ".." segments: the same name on every client
 * and no way out of a client's target directory. */
static int
target_path_ok(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || path[0] == '/' || path[n - 1] == '/' || strstr(path, "//") != NULL)
        return 0;
    for (const char *seg = path; seg != NULL; seg = strchr(seg, '/')) {
        if (*seg == '/')
            seg++;
        size_t len = strcspn(seg, "/");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
    }
    return 1;
}

int
ota_meta_targets_add(json_t *targets, const char *path, int64_t length, const char *sha256_hex,
                     const json_t *custom, char *err, size_t errlen)
{
    json_t *map = json_object_get(targets, "targets");
    json_t *t = NULL;
    if (!json_is_object(map)) {
        errbuf_set(err, errlen, "targets: no targets map");
        return -1;
    }
    if (path == NULL || !target_path_ok(path)) {
        errbuf_set(err, errlen, "target path '%.64s' is not a relative path of named segments",
                   path ? path : "");
        return -1;
    }
    if (length < 0 || !ota_is_sha256_hex(sha256_hex) ||
        (custom != NULL && !json_is_object(custom))) {
        errbuf_set(err, errlen,
                   "target %.64s: length >= 0, a hex sha256 and an object as custom "
                   "are required",
                   path);
        return -1;
    }
    t = json_pack("{s:I, s:{s:s}}", "length", (json_int_t)length, "hashes", "sha256", sha256_hex);
    if (t == NULL ||
        (custom != NULL && json_object_set_new(t, "custom", json_deep_copy(custom)) < 0) ||
        json_object_set(map, path, t) < 0) {
        json_decref(t);
        errbuf_set(err, errlen, "out of memory");
        return -1;
    }
    json_decref(t);
    return 0;
}

json_t *
ota_meta_new_snapshot(int64_t version, int64_t expires, int64_t targets_version)
{
    json_t *s = new_signed(OTA_ROLE_SNAPSHOT, version, expires);
    if (s == NULL || targets_version < 1 ||
        json_object_set_new(
            s, "meta",
            json_pack("{s:{s:I}}", "targets.json", "version", (json_int_t)targets_version)) < 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

json_t *
ota_meta_new_timestamp(int64_t version, int64_t expires, int64_t snapshot_version,
                       int64_t snapshot_length, const char *snapshot_sha256)
{
    json_t *s = new_signed(OTA_ROLE_TIMESTAMP, version, expires);
    json_t *m = json_pack("{s:I}", "version", (json_int_t)snapshot_version);
    int with_hash = snapshot_length >= 0 && snapshot_sha256 != NULL;
    if (s == NULL || m == NULL || snapshot_version < 1)
        goto fail;
    if ((snapshot_length >= 0) != (snapshot_sha256 != NULL) ||
        (snapshot_sha256 != NULL && !ota_is_sha256_hex(snapshot_sha256)))
        goto fail;
    if (with_hash &&
        (json_object_set_new(m, "length", json_integer(snapshot_length)) < 0 ||
         json_object_set_new(m, "hashes", json_pack("{s:s}", "sha256", snapshot_sha256)) < 0))
        goto fail;
    if (json_object_set_new(s, "meta", json_pack("{s:O}", "snapshot.json", m)) < 0)
        goto fail;
    json_decref(m);
    return s;
fail:
    json_decref(m);
    json_decref(s);
    return NULL;
}

json_t *
ota_meta_envelope(json_t *signed_obj)
{
    if (signed_obj == NULL)
        return NULL;
    return json_pack("{s:o, s:[]}", "signed", signed_obj, "signatures");
}

int
ota_meta_signed_bytes(const json_t *env, char **out, size_t *len, char *err, size_t errlen)
{
    const json_t *s = json_object_get(env, "signed");
    if (!json_is_object(s)) {
        *out = NULL;
        *len = 0;
        errbuf_set(err, errlen, "metadata: no \"signed\" object");
        return -1;
    }
    return ota_cjson_encode(s, out, len, err, errlen);
}

int
ota_meta_sign(json_t *env, const ota_key *k, char *err, size_t errlen)
{
    char *bytes = NULL;
    size_t len = 0;
    char sig[OTA_SIG_HEX_LEN];
    int rc = -1;
    json_t *sigs = json_object_get(env, "signatures");
    if (!json_is_array(sigs)) {
        errbuf_set(err, errlen, "metadata: no \"signatures\" array");
        return -1;
    }
    if (ota_meta_signed_bytes(env, &bytes, &len, err, errlen) < 0 ||
        ota_key_sign(k, (const unsigned char *)bytes, len, sig, err, errlen) < 0)
        goto out;
    json_t *entry = json_pack("{s:s, s:s}", "keyid", k->keyid, "sig", sig);
    size_t i;
    for (i = 0; i < json_array_size(sigs); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(sigs, i), "keyid"));
        if (id != NULL && strcmp(id, k->keyid) == 0)
            break;
    }
    if (entry == NULL || (i < json_array_size(sigs) ? json_array_set_new(sigs, i, entry)
                                                    : json_array_append_new(sigs, entry)) < 0) {
        errbuf_set(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(bytes);
    return rc;
}

int
ota_meta_dump(const json_t *env, char **out, size_t *len, char *err, size_t errlen)
{
    *out = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
    if (*out == NULL) {
        *len = 0;
        errbuf_set(err, errlen, "metadata: cannot be written as JSON");
        return -1;
    }
    *len = strlen(*out);
    return 0;
}
