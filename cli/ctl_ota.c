/* ctl_ota: offline TUF key directories and roots (ctl_ota.h). */
#include "ctl_ota.h"

#include "ota_meta.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define KEY_EXT ".ed25519"

void
ctl_ota_keys_wipe(struct ctl_ota_keys *ks)
{
    sodium_memzero(ks, sizeof(*ks));
}

static int
key_path(char *buf, size_t len, const char *dir, const char *role, const char *keyid)
{
    int n = snprintf(buf, len, "%s/%s.%s" KEY_EXT, dir, role, keyid);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int
ctl_ota_keys_make(const char *dir, const char *role, size_t n, struct ctl_ota_keys *ks)
{
    char path[PATH_MAX], err[256];
    ctl_ota_keys_wipe(ks);
    if (n < 1 || n > CTL_OTA_MAX_KEYS) {
        ctl_err("%s keys: 1 to %d", role, CTL_OTA_MAX_KEYS);
        return -1;
    }
    if (util_mkdirs(dir, 0700) != 0) {
        ctl_err("%s: %s", dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ota_key_generate(&ks->k[i], err, sizeof(err)) != 0 ||
            key_path(path, sizeof(path), dir, role, ks->k[i].keyid) != 0 ||
            ota_key_save(&ks->k[i], path, err, sizeof(err)) != 0) {
            ctl_err("cannot make a %s key in %s: %s", role, dir, err);
            ctl_ota_keys_wipe(ks);
            return -1;
        }
        ks->n++;
    }
    return 0;
}

/* 1 when keyid is in the array ids (NULL: every key id is). */
static int
listed(const json_t *ids, const char *keyid)
{
    if (ids == NULL)
        return 1;
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *s = json_string_value(json_array_get(ids, i));
        if (s != NULL && strcmp(s, keyid) == 0)
            return 1;
    }
    return 0;
}

/* The key id of a file name "<role>.<keyid>.ed25519" into id, or -1 for another name. */
static int
file_keyid(const char *name, const char *role, char id[OTA_KEYID_HEX_LEN])
{
    size_t rl = strlen(role), nl = strlen(name), el = strlen(KEY_EXT);
    if (nl != rl + 1 + 64 + el || strncmp(name, role, rl) != 0 || name[rl] != '.' ||
        strcmp(name + nl - el, KEY_EXT) != 0)
        return -1;
    memcpy(id, name + rl + 1, 64);
    id[64] = '\0';
    return ota_is_sha256_hex(id) ? 0 : -1;
}

int
ctl_ota_keys_load(const char *dir, const char *role, const json_t *keyids, struct ctl_ota_keys *ks)
{
    char path[PATH_MAX], id[OTA_KEYID_HEX_LEN], err[256];
    struct dirent *e;
    int rc = 0;
    DIR *d = opendir(dir);
    ctl_ota_keys_wipe(ks);
    if (d == NULL) {
        ctl_err("%s: %s", dir, strerror(errno));
        return -1;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (file_keyid(e->d_name, role, id) != 0 || !listed(keyids, id) ||
            ks->n == CTL_OTA_MAX_KEYS)
            continue;
        if (key_path(path, sizeof(path), dir, role, id) != 0 ||
            ota_key_load(path, &ks->k[ks->n], err, sizeof(err)) != 0 ||
            strcmp(ks->k[ks->n].keyid, id) != 0) {
            ctl_err("%s: %s", path, err);
            rc = -1;
            break;
        }
        ks->n++;
    }
    closedir(d);
    if (rc != 0)
        ctl_ota_keys_wipe(ks);
    return rc;
}

void
ctl_ota_keys_prune(const char *dir, const char *role, const json_t *keyids)
{
    char path[PATH_MAX], id[OTA_KEYID_HEX_LEN];
    struct dirent *e;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (file_keyid(e->d_name, role, id) == 0 && !listed(keyids, id) &&
            key_path(path, sizeof(path), dir, role, id) == 0 && unlink(path) != 0)
            ctl_err("cannot remove the retired key %s: %s", path, strerror(errno));
    }
    closedir(d);
}

int
ctl_ota_root_keys(const json_t *s, const char *role, struct ctl_ota_keys *ks)
{
    const json_t *ids =
        json_object_get(json_object_get(json_object_get(s, "roles"), role), "keyids");
    const json_t *keys = json_object_get(s, "keys");
    char err[256];
    ctl_ota_keys_wipe(ks);
    for (size_t i = 0; i < json_array_size(ids) && ks->n < CTL_OTA_MAX_KEYS; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (id == NULL || ota_key_from_public_json(json_object_get(keys, id), &ks->k[ks->n], err,
                                                   sizeof(err)) != 0) {
            ctl_err("the current root's %s key %.64s is unusable: %s", role, id ? id : "?", err);
            return -1;
        }
        ks->n++;
    }
    return 0;
}

json_t *
ctl_ota_build_root(int64_t version, int64_t expires, const struct ctl_ota_root_spec *spec)
{
    char err[256];
    json_t *s = ota_meta_new_root(version, expires), *env = NULL;
    if (s == NULL) {
        ctl_err("cannot build the root");
        return NULL;
    }
    for (int r = 0; r < OTA_ROLE_COUNT; r++) {
        const struct ctl_ota_keys *ks = spec->keys[r];
        /* a threshold the keys cannot meet would leave the repository stuck for good */
        if (spec->threshold[r] < 1 || spec->threshold[r] > (int64_t)ks->n) {
            snprintf(err, sizeof(err), "the %s threshold %lld is not within its %zu key(s)",
                     ota_role_name((ota_role)r), (long long)spec->threshold[r], ks->n);
            goto out;
        }
        for (size_t i = 0; i < ks->n; i++)
            if (ota_meta_root_add_key(s, (ota_role)r, &ks->k[i], err, sizeof(err)) != 0)
                goto out;
        if (ota_meta_root_set_threshold(s, (ota_role)r, spec->threshold[r], err, sizeof(err)) != 0)
            goto out;
    }
    env = ota_meta_envelope(s);
    s = NULL;
out:
    if (env == NULL)
        ctl_err("cannot build the root: %s", s != NULL ? err : "out of memory");
    json_decref(s);
    return env;
}

int
ctl_ota_sign(json_t *env, const struct ctl_ota_keys *ks, size_t max)
{
    char err[256];
    int n = 0;
    for (size_t i = 0; i < ks->n && (max == 0 || (size_t)n < max); i++) {
        if (ota_meta_sign(env, &ks->k[i], err, sizeof(err)) != 0) {
            ctl_err("cannot sign: %s", err);
            return -1;
        }
        n++;
    }
    return n;
}
