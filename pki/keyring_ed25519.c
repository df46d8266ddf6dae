/* keyring_ed25519: the online TUF keys of keyring.h. Kept apart from the CA keys' code because they
 * differ in format (ota_keys.h files), in cache (a few keys, used for every director answer) and in
 * policy (each key signs one role). */
#include "keyring.h"
#include "keyring_int.h"

#include "errbuf.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The role a key's name allows it to sign, or NULL for a name that is no online TUF key. */
static const char *
role_of_name(const char *name)
{
    static const struct {
        const char *suffix, *type;
    } roles[] = {
        {"tuf-snapshot", "snapshot"}, {"tuf-timestamp", "timestamp"}, {"tuf-director", "targets"}};
    const char *last = strrchr(name, '/');
    last = last != NULL ? last + 1 : name;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(last, roles[i].suffix) == 0)
            return roles[i].type;
    }
    return NULL;
}

/* Makes the key file: written under a name of this process, then linked into place, which fails
 * with EEXIST when another process was first (its key is then the one loaded). */
static int
create_key(const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    ota_key k;
    int rc = -1;
    if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp)) {
        errbuf_set(err, errlen, "signer: key path too long");
        return -1;
    }
    if (ota_key_generate(&k, err, errlen) != 0 || ota_key_save(&k, tmp, err, errlen) != 0)
        goto out;
    if (link(tmp, path) != 0 && errno != EEXIST) {
        errbuf_set(err, errlen, "signer: cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    unlink(tmp);
    ota_key_wipe(&k);
    return rc;
}

/* Copies the named key (with its secret) into *out from the cache, loading (or creating) it on a
 * miss. The caller wipes *out. */
static int
get_ed_key(keyring *s, const char *name, int create, ota_key *out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int rc = -1;
    if (!keyring_valid_key_name(name) || role_of_name(name) == NULL) {
        errbuf_set(err, errlen, "signer: not an online TUF key name");
        return -1;
    }
    if (snprintf(path, sizeof(path), "%s/%s.ed25519", keyring_dir(s), name) >= (int)sizeof(path)) {
        errbuf_set(err, errlen, "signer: key path too long");
        return -1;
    }
    keyring_lock(s);
    if (keyring_ed_cache_get(s, name, out) == 0) {
        rc = 0;
        goto out;
    }
    if (access(path, F_OK) != 0 && (!create || create_key(path, err, errlen) != 0)) {
        if (!create)
            errbuf_set(err, errlen, "signer: no key %s", name);
        goto out;
    }
    if (ota_key_load(path, out, err, errlen) != 0)
        goto out;
    keyring_ed_cache_put(s, name, out);
    rc = 0;
out:
    keyring_unlock(s);
    return rc;
}

int
keyring_ed25519_public(keyring *s, const char *key_name, int create, ota_key *pub, char *err,
                       size_t errlen)
{
    ota_key k;
    if (get_ed_key(s, key_name, create, &k, err, errlen) != 0)
        return -1;
    *pub = k;
    sodium_memzero(pub->sk, sizeof(pub->sk));
    pub->has_secret = 0;
    ota_key_wipe(&k);
    return 0;
}

/* The role rule: msg is a JSON object whose "_type" is the key's role (and a director's targets
 * carry "custom", which the image repository's targets never need). */
static int
allowed_to_sign(const char *name, const unsigned char *msg, size_t len, char *err, size_t errlen)
{
    const char *want = role_of_name(name);
    json_error_t je;
    json_t *j = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, &je);
    const char *type = json_string_value(json_object_get(j, "_type"));
    int ok = want != NULL && type != NULL && strcmp(type, want) == 0;
    if (ok && strcmp(want, "targets") == 0)
        ok = json_is_object(json_object_get(j, "custom"));
    json_decref(j);
    if (!ok)
        errbuf_set(err, errlen, "signer: key %s signs only %s metadata", name,
                   want != NULL ? want : "no");
    return ok ? 0 : -1;
}

int
keyring_ed25519_sign(keyring *s, const char *key_name, const unsigned char *msg, size_t len,
                     char sig_hex[OTA_SIG_HEX_LEN], char keyid[OTA_KEYID_HEX_LEN], char *err,
                     size_t errlen)
{
    ota_key k;
    int rc = -1;
    if (s == NULL || msg == NULL || len > KEYRING_MSG_MAX) {
        errbuf_set(err, errlen, "signer: message missing or too large");
        return -1;
    }
    if (allowed_to_sign(key_name, msg, len, err, errlen) != 0)
        return -1;
    if (get_ed_key(s, key_name, 0, &k, err, errlen) != 0)
        return -1;
    if (ota_key_sign(&k, msg, len, sig_hex, err, errlen) != 0)
        goto out;
    memcpy(keyid, k.keyid, OTA_KEYID_HEX_LEN);
    rc = 0;
out:
    ota_key_wipe(&k);
    return rc;
}
