/* ota_verify: verification of TUF 1.0 metadata (ota_meta.h) as the TUF client workflow does it,
 * given a trusted root: the signature threshold of the role, "_type", "spec_version", version,
 * expiry; and the root chain rule (N+1.root.json).
 *
 * Signatures: only signatures whose key id is one of the role's key ids in the trusted root
 * count; unknown key ids, a second signature of the same key id (or of the same public key under
 * another id) and invalid signatures are ignored, never an error by themselves. The metadata
 * passes when the valid signatures of distinct keys reach the role's threshold.
 *
 * A root's key ids must be the SHA-256 of their key objects' canonical JSON (ota_keys.h), its
 * roles must be exactly the four top-level roles, each with distinct key ids present in "keys"
 * and a threshold >= 1; it holds at most OTA_MAX_ROOT_KEYS keys.
 *
 * Work is capped so that a hostile file cannot cost unbounded ed25519 verifications: metadata
 * checked against a role of n keys may carry at most 2n + 8 signatures (a root update: 2 (n + m)
 * + 8, n and m the root keys of the trusted and of the new root); more is OTA_E_FORMAT.
 *
 * Every function returns 0, or one of the negative codes below with a message that says which
 * check failed and why. */
#ifndef AEGIS_OTA_VERIFY_H
#define AEGIS_OTA_VERIFY_H

#include "ota_meta.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum {
    OTA_E_FORMAT = -1,     /* not metadata of the expected shape (fields, types, root keys) */
    OTA_E_TYPE = -2,       /* "_type" is not the expected role */
    OTA_E_SPEC = -3,       /* "spec_version" is not 1.x or 1.x.y */
    OTA_E_SIGNATURES = -4, /* fewer valid signatures of distinct role keys than the threshold */
    OTA_E_VERSION = -5,    /* version other than the required one (rollback, skipped root) */
    OTA_E_EXPIRED = -6,    /* expires <= the given time */
    OTA_E_NOMEM = -7,
};

/* Most keys a root may hold ("keys" members). */
#define OTA_MAX_ROOT_KEYS 64
/* Most signatures metadata checked against a role of n keys may carry. */
#define OTA_MAX_SIGS(n) (2 * (size_t)(n) + 8)

/* A short name of a code ("signatures", "expired", ...), for logs and API errors. */
const char *ota_verify_strerror(int code);

/* A trusted root: the parsed keys and roles of a root's "signed". Opaque; free with
 * ota_root_free. */
typedef struct ota_root ota_root;

/* Parses the root envelope env and checks that it is signed by a threshold of its own root keys
 * (what a trusted root shipped with a device or kept by the service is). Its expiry is not
 * checked (the caller decides: ota_root_expires). *out is new, caller frees. */
int ota_root_load(const json_t *env, ota_root **out, char *err, size_t errlen);
void ota_root_free(ota_root *r);
int64_t ota_root_version(const ota_root *r);
int64_t ota_root_expires(const ota_root *r);
/* Threshold of a role, and its number of keys. */
int64_t ota_root_threshold(const ota_root *r, ota_role role);
size_t ota_root_nkeys(const ota_root *r, ota_role role);
/* The i-th key (i < ota_root_nkeys) of a role: its public key and key id, no secret. Borrowed
 * from r. */
const ota_key *ota_root_key(const ota_root *r, ota_role role, size_t i);

/* The root chain step (TUF client workflow 5.3.4 to 5.3.6): env (N+1.root.json) must have
 * "_type" root, be signed by a threshold of trusted's root keys AND by a threshold of its own root
 * keys, and have version exactly trusted's + 1. Expiry is not checked here: the workflow checks it
 * only on the last root of the chain. *next is the new trusted root (caller frees). */
int ota_verify_root_update(const ota_root *trusted, const json_t *env, ota_root **next, char *err,
                           size_t errlen);

/* What ota_verify_meta requires of one metadata file. */
struct ota_want {
    ota_role role;       /* expected "_type", and whose keys and threshold apply */
    int64_t now;         /* expired when expires <= now; < 0: expiry not checked */
    int64_t version;     /* > 0: version must be exactly this (snapshot/targets named above) */
    int64_t min_version; /* > 0: version must be at least this (no rollback below trusted) */
};

/* Verifies env against trusted root r: shape of the role's "signed" (the fields of ota_meta.h),
 * "_type", "spec_version", the threshold of signatures, version, expiry, in this order. Sets
 * *version (may be NULL) to the metadata's version when it gets that far. */
int ota_verify_meta(const ota_root *r, const json_t *env, const struct ota_want *w,
                    int64_t *version, char *err, size_t errlen);

/* Only the signature threshold of role over env's "signed" by r's keys. *valid (may be NULL)
 * gets the number of distinct role keys with a valid signature. */
int ota_verify_signatures(const ota_root *r, ota_role role, const json_t *env, int *valid,
                          char *err, size_t errlen);

/* The stricter shape of the image repository's targets (docs/update.md 2.1), on top of
 * ota_verify_meta's: "signed" has exactly the members _type, spec_version, version, expires and
 * targets (no delegations: Aegis does not support them, ota/README.md), and every target path is
 * "<component>/<sha256>" whose sha256 is the target's hashes.sha256 (its only hash), with a
 * length >= 0 and custom {"component" (the path's), "kind", "version", "svn", "hardware",
 * "product_id"} and nothing else, each following the service's rule for an image upload
 * (proto_fields.h): component and hardware 1-64 of [a-z0-9._-], kind "os" or "app", version 1-32
 * printable ASCII characters (0x21-0x7e), svn an integer 0..PROTO_SVN_MAX, product_id an integer
 * >= 1. The service checks it on upload, aegisctl on the proposal it signs; a device SHOULD too
 * (a target that breaks a rule is then not installable, whoever signed it). Returns 0 or
 * OTA_E_FORMAT with a message naming the target and the rule. */
int ota_check_image_targets(const json_t *signed_obj, char *err, size_t errlen);

#endif
