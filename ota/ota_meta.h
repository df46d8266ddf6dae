/* ota_meta: builds and signs TUF 1.0 metadata of the four top-level roles (root, targets,
 * snapshot, timestamp). Verification is ota_verify.h.
 *
 * A metadata file is the envelope {"signed": {...}, "signatures": [{"keyid", "sig"}, ...]}; each
 * signature is over the canonical JSON (ota_cjson.h) of "signed". Every "signed" object has
 *     "_type"         the role name
 *     "spec_version"  OTA_SPEC_VERSION (python-tuf 3+ and tuf-js 2+/3+ accept any "1.x[.y]")
 *     "version"       integer >= 1
 *     "expires"       "YYYY-MM-DDTHH:MM:SSZ" (UTC)
 * and per role:
 *     root       "consistent_snapshot": true, "keys": {keyid: public key object (ota_keys.h)},
 *                "roles": {role: {"keyids": [...], "threshold": n}} for all four roles
 *     targets    "targets": {path: {"length": n, "hashes": {"sha256": hex}, "custom": {...}}}
 *     snapshot   "meta": {"targets.json": {"version": n}}
 *     timestamp  "meta": {"snapshot.json": {"version": n[, "length": n, "hashes": {"sha256"}]}}
 *
 * Ownership: every json_t * returned is a new reference the caller decrefs. Builders never keep
 * a caller's pointer (custom values are copied). Functions return 0 / -1 with a message. */
#ifndef AEGIS_OTA_META_H
#define AEGIS_OTA_META_H

#include "ota_keys.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The TUF specification version written into metadata (the one tuf-js 2.x/3.x and python-tuf 3.x
 * and later implement; both accept any 1.x). */
#define OTA_SPEC_VERSION "1.0.31"
/* Hex SHA-256 with its NUL. */
#define OTA_SHA256_HEX_LEN 65

typedef enum {
    OTA_ROLE_ROOT,
    OTA_ROLE_TARGETS,
    OTA_ROLE_SNAPSHOT,
    OTA_ROLE_TIMESTAMP,
    OTA_ROLE_COUNT
} ota_role;

/* "root", "targets", "snapshot", "timestamp". */
const char *ota_role_name(ota_role r);
/* The role of a name. Returns 0, or -1 for any other name. */
int ota_role_parse(const char *name, ota_role *out);
/* 1 when s is exactly 64 lowercase hex characters (a SHA-256 or an ed25519 key as TUF writes
 * them), else 0. */
int ota_is_sha256_hex(const char *s);

/* The "signed" object of a root: the common fields, consistent_snapshot true, no keys, every
 * role with no keyids and threshold 1. NULL when out of memory or expires is out of range. */
json_t *ota_meta_new_root(int64_t version, int64_t expires);
/* Adds k's public key to root's "keys" (once) and its key id to role's keyids (once). */
int ota_meta_root_add_key(json_t *root, ota_role role, const ota_key *k, char *err, size_t errlen);
/* Sets role's threshold (>= 1). */
int ota_meta_root_set_threshold(json_t *root, ota_role role, int64_t threshold, char *err,
                                size_t errlen);

/* The "signed" object of targets with an empty "targets" map. */
json_t *ota_meta_new_targets(int64_t version, int64_t expires);
/* Adds (or replaces) the target path: length >= 0, sha256_hex 64 lowercase hex, custom an object
 * (copied) or NULL for none. path is relative ('/'-separated, no leading '/', no "." or ".."
 * segment, no empty segment). */
int ota_meta_targets_add(json_t *targets, const char *path, int64_t length, const char *sha256_hex,
                         const json_t *custom, char *err, size_t errlen);

/* The "signed" object of snapshot naming targets.json's version. */
json_t *ota_meta_new_snapshot(int64_t version, int64_t expires, int64_t targets_version);
/* The "signed" object of timestamp naming snapshot.json's version, and its length and SHA-256
 * when snapshot_length >= 0 and snapshot_sha256 is not NULL (both or neither). */
json_t *ota_meta_new_timestamp(int64_t version, int64_t expires, int64_t snapshot_version,
                               int64_t snapshot_length, const char *snapshot_sha256);

/* The envelope of a "signed" object with no signatures yet; takes the caller's reference to
 * signed_obj (also on failure). */
json_t *ota_meta_envelope(json_t *signed_obj);
/* Canonical bytes of env's "signed" (what is signed): *out malloc'd, caller frees. */
int ota_meta_signed_bytes(const json_t *env, char **out, size_t *len, char *err, size_t errlen);
/* Signs env's "signed" with k and adds the signature, replacing an earlier one of the same key id
 * (a key signs once). */
int ota_meta_sign(json_t *env, const ota_key *k, char *err, size_t errlen);
/* The file bytes of env: compact JSON with sorted keys, UTF-8 unescaped, no newline at the end
 * (any JSON will do for readers, who verify the canonical form of "signed"). *out malloc'd, caller
 * frees. */
int ota_meta_dump(const json_t *env, char **out, size_t *len, char *err, size_t errlen);

#endif
