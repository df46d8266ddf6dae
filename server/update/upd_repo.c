/* upd_repo: online keys, served files, status and root publication of a tenant's TUF repositories
 * (upd_repo.h). */
#include "upd_repo.h"

#include "log.h"
#include "ota_meta.h"
#include "signer.h"
#include "util.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const KEY_SUFFIX[UPD_KEY_COUNT] = {"tuf-snapshot", "tuf-timestamp",
                                                      "tuf-director"};
static const char *const KEY_FIELD[UPD_KEY_COUNT] = {"snapshot", "timestamp", "director"};

const char *
upd_strerror(int code)
{
    switch (code) {
    case UPD_OK:
        return "ok";
    case UPD_E_BAD_METADATA:
        return "bad_metadata";
    case UPD_E_SIGNATURES:
        return "signatures";
    case UPD_E_VERSION:
        return "version";
    case UPD_E_EXPIRES:
        return "expires";
    case UPD_E_KEYS:
        return "keys";
    case UPD_E_TARGET:
        return "unknown_target";
    case UPD_E_NO_ROOT:
        return "no_root";
    case UPD_E_CONFLICT:
        return "conflict";
    case UPD_E_NOTFOUND:
        return "not_found";
    case UPD_E_TOO_LARGE:
        return "payload_too_large";
    default:
        return "internal";
    }
}

int
upd_of_ota(int ota_rc)
{
    switch (ota_rc) {
    case 0:
        return UPD_OK;
    case OTA_E_FORMAT:
    case OTA_E_TYPE:
    case OTA_E_SPEC:
        return UPD_E_BAD_METADATA;
    case OTA_E_SIGNATURES:
        return UPD_E_SIGNATURES;
    case OTA_E_VERSION:
        return UPD_E_VERSION;
    case OTA_E_EXPIRED:
        return UPD_E_EXPIRES;
    default:
        return UPD_E_INTERNAL;
    }
}

int
upd_key_name(int64_t tenant_id, upd_key k, char *buf, size_t len)
{
    assert(k >= 0 && k < UPD_KEY_COUNT);
    int n = snprintf(buf, len, "tenants/%lld/%s", (long long)tenant_id, KEY_SUFFIX[k]);
    return n > 0 && (size_t)n < len ? 0 : UPD_E_INTERNAL;
}

int
upd_online_keys(struct signer *sg, int64_t tenant_id, int create, ota_key keys[UPD_KEY_COUNT],
                char *err, size_t errlen)
{
    char name[64];
    for (int k = 0; k < UPD_KEY_COUNT; k++) {
        if (upd_key_name(tenant_id, (upd_key)k, name, sizeof(name)) != 0)
            return UPD_E_INTERNAL;
        if (signer_ed25519_public(sg, name, create, &keys[k], err, errlen) == 0)
            continue;
        if (!create) { /* a reader's question never makes keys */
            snprintf(err, errlen,
                     "the online keys do not exist yet (an operator's or admin's GET /v1/ota/keys "
                     "makes them)");
            return UPD_E_NOTFOUND;
        }
        log_error("msg=\"online TUF key unavailable\" tenant=%lld key=%s err=\"%s\"",
                  (long long)tenant_id, KEY_SUFFIX[k], err);
        snprintf(err, errlen, "the online keys are unavailable");
        return UPD_E_INTERNAL;
    }
    return UPD_OK;
}

json_t *
upd_keys_json(const ota_key keys[UPD_KEY_COUNT])
{
    json_t *out = json_object();
    for (int k = 0; out != NULL && k < UPD_KEY_COUNT; k++) {
        json_t *pub = ota_key_public_json(&keys[k]);
        if (pub == NULL ||
            json_object_set_new(out, KEY_FIELD[k],
                                json_pack("{s:s, s:o}", "keyid", keys[k].keyid, "key", pub)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* "N.<role>.json" with N a positive decimal without leading zeros: the version, else 0. */
static int64_t
versioned_name(const char *name, const char *role)
{
    size_t digits = strspn(name, "0123456789");
    int64_t v = 0;
    char num[24];
    if (digits == 0 || digits >= sizeof(num) || name[0] == '0' || name[digits] != '.' ||
        strncmp(name + digits + 1, role, strlen(role)) != 0 ||
        strcmp(name + digits + 1 + strlen(role), ".json") != 0)
        return 0;
    memcpy(num, name, digits);
    num[digits] = '\0';
    return util_parse_i64(num, 1, INT64_MAX, &v) == 0 ? v : 0;
}

int
upd_file_get(store *st, int64_t tenant_id, const char *repo, const char *name,
             struct store_tuf_file *out)
{
    static const char *const roles[] = {"root", "snapshot", "targets"};
    int image = strcmp(repo, STORE_TUF_IMAGE) == 0;
    const char *role = NULL;
    int64_t version = 0;
    memset(out, 0, sizeof(*out));
    if (image && strcmp(name, "timestamp.json") == 0)
        role = "timestamp";
    for (size_t i = 0; role == NULL && i < (image ? 3u : 1u); i++)
        if ((version = versioned_name(name, roles[i])) > 0)
            role = roles[i];
    if (role == NULL)
        return UPD_E_NOTFOUND;
    int rc = store_tuf_get(st, tenant_id, repo, role, version, out);
    return rc == STORE_OK ? UPD_OK : rc == STORE_NOTFOUND ? UPD_E_NOTFOUND : UPD_E_INTERNAL;
}

/* {"version", "expires"} of the newest file of role, JSON null when there is none. */
static int
role_status(store *st, int64_t tenant_id, const char *repo, const char *role, json_t *into)
{
    struct store_tuf_file f;
    char t[32];
    int rc = store_tuf_get(st, tenant_id, repo, role, 0, &f);
    json_t *v = NULL;
    if (rc == STORE_OK)
        v = json_pack("{s:I, s:s}", "version", (json_int_t)f.version, "expires",
                      util_rfc3339(f.expires, t, sizeof(t)));
    else if (rc == STORE_NOTFOUND)
        v = json_null();
    store_tuf_file_free(&f);
    if (v == NULL || json_object_set_new(into, role, v) != 0)
        return UPD_E_INTERNAL;
    return UPD_OK;
}

int
upd_status(store *st, int64_t tenant_id, json_t **out)
{
    static const char *const roles[] = {"root", "targets", "snapshot", "timestamp"};
    json_t *image = json_object(), *director = json_object();
    int rc = image != NULL && director != NULL ? UPD_OK : UPD_E_INTERNAL;
    for (size_t i = 0; rc == UPD_OK && i < 4; i++)
        rc = role_status(st, tenant_id, STORE_TUF_IMAGE, roles[i], image);
    if (rc == UPD_OK)
        rc = role_status(st, tenant_id, STORE_TUF_DIRECTOR, "root", director);
    *out = rc == UPD_OK ? json_pack("{s:o, s:o}", "image", image, "director", director) : NULL;
    if (*out == NULL) {
        if (rc == UPD_OK) /* json_pack took neither on failure */
            rc = UPD_E_INTERNAL;
        json_decref(image);
        json_decref(director);
    }
    return rc;
}

json_t *
upd_parse(const struct store_tuf_file *f)
{
    json_error_t je;
    json_t *v = json_loadb(f->body, f->len, JSON_REJECT_DUPLICATES, &je);
    if (v == NULL || !json_is_object(v)) {
        log_error("msg=\"stored TUF metadata unreadable\" role=%s version=%lld", f->role,
                  (long long)f->version);
        json_decref(v);
        return NULL;
    }
    return v;
}

int
upd_current_root(store *st, int64_t tenant_id, const char *repo, ota_root **root, json_t **env)
{
    struct store_tuf_file f;
    char err[256];
    json_t *e = NULL;
    int rc = store_tuf_get(st, tenant_id, repo, "root", 0, &f);
    *root = NULL;
    if (env != NULL)
        *env = NULL;
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? UPD_E_NOTFOUND : UPD_E_INTERNAL;
    rc = UPD_E_INTERNAL;
    if ((e = upd_parse(&f)) == NULL)
        goto out;
    if (ota_root_load(e, root, err, sizeof(err)) != 0) {
        log_error("msg=\"stored TUF root unusable\" tenant=%lld repo=%s err=\"%s\"",
                  (long long)tenant_id, repo, err);
        goto out;
    }
    rc = UPD_OK;
    if (env != NULL) {
        *env = e;
        e = NULL;
    }
out:
    json_decref(e);
    store_tuf_file_free(&f);
    return rc;
}

int
upd_file_of(const json_t *env, struct store_tuf_file *f, char *err, size_t errlen)
{
    const json_t *s = json_object_get(env, "signed");
    const char *type = json_string_value(json_object_get(s, "_type"));
    const char *exp = json_string_value(json_object_get(s, "expires"));
    ota_role role;
    memset(f, 0, sizeof(*f));
    if (type == NULL || ota_role_parse(type, &role) != 0 || exp == NULL ||
        util_parse_rfc3339(exp, &f->expires) != 0 ||
        !json_is_integer(json_object_get(s, "version"))) {
        snprintf(err, errlen, "metadata without a role, version or expiry");
        return UPD_E_BAD_METADATA;
    }
    f->role = ota_role_name(role);
    f->version = json_integer_value(json_object_get(s, "version"));
    if (ota_meta_dump(env, &f->body, &f->len, err, errlen) != 0)
        return UPD_E_BAD_METADATA;
    static const size_t max[OTA_ROLE_COUNT] = {UPD_MAX_ROOT_BYTES, UPD_MAX_TARGETS_BYTES,
                                               UPD_MAX_SNAPSHOT_BYTES, UPD_MAX_TIMESTAMP_BYTES};
    if (f->len > max[role]) {
        snprintf(err, errlen, "%s: %zu bytes, at most %zu", f->role, f->len, max[role]);
        return UPD_E_TOO_LARGE;
    }
    return UPD_OK;
}

/* 1 when role of the root's "signed" s has exactly the one key id and threshold 1. */
static int
role_is_only(const json_t *s, const char *role, const char *keyid)
{
    const json_t *r = json_object_get(json_object_get(s, "roles"), role);
    const json_t *ids = json_object_get(r, "keyids");
    return json_integer_value(json_object_get(r, "threshold")) == 1 && json_array_size(ids) == 1 &&
           json_is_string(json_array_get(ids, 0)) &&
           strcmp(json_string_value(json_array_get(ids, 0)), keyid) == 0;
}

/* 1 when no key of role in r has the public key of an online key (under whatever key id: a key
 * object with an extra member has another id but the same key). */
static int
role_is_offline(const ota_root *r, ota_role role, const ota_key keys[UPD_KEY_COUNT])
{
    for (size_t i = 0; i < ota_root_nkeys(r, role); i++)
        for (int k = 0; k < UPD_KEY_COUNT; k++)
            if (memcmp(ota_root_key(r, role, i)->pk, keys[k].pk, OTA_PK_BYTES) == 0)
                return 0;
    return 1;
}

/* Every role's threshold is at most its number of keys (a higher one could never be met: the
 * repository would be stuck for good). */
static int
check_thresholds(const ota_root *r, char *err, size_t errlen)
{
    for (int i = 0; i < OTA_ROLE_COUNT; i++) {
        if (ota_root_threshold(r, (ota_role)i) > (int64_t)ota_root_nkeys(r, (ota_role)i)) {
            snprintf(err, errlen, "root: role %s has threshold %lld but %zu key(s)",
                     ota_role_name((ota_role)i), (long long)ota_root_threshold(r, (ota_role)i),
                     ota_root_nkeys(r, (ota_role)i));
            return UPD_E_KEYS;
        }
    }
    return UPD_OK;
}

/* The online-key rules of a root of repo (docs/update.md 1). */
static int
check_keys(const json_t *env, const ota_root *r, int image, const ota_key keys[UPD_KEY_COUNT],
           char *err, size_t errlen)
{
    const json_t *s = json_object_get(env, "signed");
    const char *dir = keys[UPD_KEY_DIRECTOR].keyid;
    int ok = json_is_true(json_object_get(s, "consistent_snapshot")) &&
             role_is_offline(r, OTA_ROLE_ROOT, keys);
    if (image)
        ok = ok && role_is_only(s, "snapshot", keys[UPD_KEY_SNAPSHOT].keyid) &&
             role_is_only(s, "timestamp", keys[UPD_KEY_TIMESTAMP].keyid) &&
             role_is_offline(r, OTA_ROLE_TARGETS, keys);
    else
        ok = ok && role_is_only(s, "targets", dir) && role_is_only(s, "snapshot", dir) &&
             role_is_only(s, "timestamp", dir);
    if (ok)
        return UPD_OK;
    snprintf(err, errlen,
             image ? "the image root must have consistent_snapshot true, exactly the online "
                     "snapshot and timestamp keys (GET /v1/ota/keys) with threshold 1 for those "
                     "roles, and no online public key for root or targets"
                   : "the director root must have consistent_snapshot true, exactly the online "
                     "director key (GET /v1/ota/keys) with threshold 1 for targets, snapshot and "
                     "timestamp, and no online public key for root");
    return UPD_E_KEYS;
}

/* The new root env verified against the repository's current root (or as a first root). */
static int
verify_root(store *st, int64_t tenant_id, const char *repo, const json_t *env, ota_root **next,
            char *err, size_t errlen)
{
    ota_root *trusted = NULL;
    int rc = upd_current_root(st, tenant_id, repo, &trusted, NULL);
    if (rc == UPD_E_NOTFOUND) {
        if ((rc = upd_of_ota(ota_root_load(env, next, err, errlen))) == UPD_OK &&
            ota_root_version(*next) != 1) {
            snprintf(err, errlen, "the repository has no root yet: the first root is version 1");
            rc = UPD_E_VERSION;
        }
    } else if (rc == UPD_OK) {
        rc = upd_of_ota(ota_verify_root_update(trusted, env, next, err, errlen));
    } else {
        snprintf(err, errlen, "the current root cannot be read");
    }
    ota_root_free(trusted);
    return rc;
}

int
upd_root_publish(store *st, struct signer *sg, int64_t tenant_id, const char *repo,
                 const json_t *env, const struct store_actor *a, int64_t now, int64_t *version,
                 char *err, size_t errlen)
{
    ota_key keys[UPD_KEY_COUNT];
    ota_root *next = NULL;
    struct store_tuf_file f;
    int image = strcmp(repo, STORE_TUF_IMAGE) == 0;
    int rc;

    memset(&f, 0, sizeof(f));
    if ((rc = upd_online_keys(sg, tenant_id, 1, keys, err, errlen)) != UPD_OK ||
        (rc = verify_root(st, tenant_id, repo, env, &next, err, errlen)) != UPD_OK)
        goto out;
    rc = UPD_E_EXPIRES;
    if (ota_root_expires(next) <= now) {
        snprintf(err, errlen, "root: expired");
        goto out;
    }
    if (ota_root_expires(next) > now + UPD_MAX_EXPIRES_DAYS * 86400LL) {
        snprintf(err, errlen, "root: expires more than %d days ahead", UPD_MAX_EXPIRES_DAYS);
        goto out;
    }
    if ((rc = check_keys(env, next, image, keys, err, errlen)) != UPD_OK ||
        (rc = check_thresholds(next, err, errlen)) != UPD_OK ||
        (rc = upd_file_of(env, &f, err, errlen)) != UPD_OK)
        goto out;
    /* the root it was verified against must still be the newest when it is stored */
    const struct store_tuf_expect e = {repo, "root", f.version - 1};
    rc = store_tuf_publish(st, tenant_id, repo, &f, 1, &e, 1, a, "ota.root.publish",
                           json_pack("{s:s, s:I}", "repo", repo, "version", (json_int_t)f.version));
    if (rc == STORE_CONFLICT) {
        snprintf(err, errlen, "root version %lld was published meanwhile", (long long)f.version);
        rc = UPD_E_CONFLICT;
    } else if (rc != STORE_OK) {
        snprintf(err, errlen, "the root could not be stored");
        rc = UPD_E_INTERNAL;
    }
    *version = f.version;
out:
    ota_root_free(next);
    store_tuf_file_free(&f);
    return rc;
}
