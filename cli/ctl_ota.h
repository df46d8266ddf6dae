/* ctl_ota: the manufacturer's offline TUF keys of aegisctl ota (docs/cli.md "ota") and the roots
 * built from them. A key directory holds one private key file (ota_keys.h, mode 0600) per key,
 * named "<role>.<keyid>.ed25519" with role "root" or "targets"; which of them count is decided by
 * the repository's trusted root (ctl_ota_trust.h), never by the file names nor by the server.
 * Private keys never leave the directory: only signatures and public keys are sent. */
#ifndef AEGIS_CTL_OTA_H
#define AEGIS_CTL_OTA_H

#include "ctl.h"
#include "ota_keys.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_OTA_MAX_KEYS 16

/* Keys of one role loaded from (or made into) a key directory. */
struct ctl_ota_keys {
    ota_key k[CTL_OTA_MAX_KEYS];
    size_t n;
};

/* Wipes every key (sodium_memzero). */
void ctl_ota_keys_wipe(struct ctl_ota_keys *ks);
/* Makes n new keys of role ("root" or "targets") and saves them into dir (created 0700 if
 * missing). Returns 0, or -1 with the error printed. */
int ctl_ota_keys_make(const char *dir, const char *role, size_t n, struct ctl_ota_keys *ks);
/* Loads the keys of role in dir whose key ids are in keyids (a JSON array; NULL: every one).
 * Returns 0, or -1 with the error printed (an unreadable directory or key file). */
int ctl_ota_keys_load(const char *dir, const char *role, const json_t *keyids,
                      struct ctl_ota_keys *ks);
/* Deletes the key files of role in dir whose key ids are not in keyids. */
void ctl_ota_keys_prune(const char *dir, const char *role, const json_t *keyids);

/* The public halves of a role's keys in a root's "signed" object s into ks (no secrets). */
int ctl_ota_root_keys(const json_t *s, const char *role, struct ctl_ota_keys *ks);

/* One root's key assignment: per role the keys and the threshold. */
struct ctl_ota_root_spec {
    const struct ctl_ota_keys *keys[4]; /* root, targets, snapshot, timestamp */
    int64_t threshold[4];
};
/* A root envelope (unsigned) of version, expiring at expires, with the spec's keys; refused (NULL)
 * when a threshold is not within 1 .. its number of keys. NULL with the error printed. */
json_t *ctl_ota_build_root(int64_t version, int64_t expires, const struct ctl_ota_root_spec *spec);
/* Signs env with at most max keys of ks (all when max is 0). Returns the number that signed, or -1
 * with the error printed. */
int ctl_ota_sign(json_t *env, const struct ctl_ota_keys *ks, size_t max);

#endif
