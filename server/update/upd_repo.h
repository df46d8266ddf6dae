/* upd_repo: a tenant's two TUF repositories (docs/update.md sections 1-3): the online keys, the
 * stored files as devices fetch them, the status, and the publication of a manufacturer-signed
 * root (image or director repository). Targets are upd_targets.h, the online snapshot and
 * timestamp upd_online.h. Nothing here signs a root or targets: those come signed from the
 * manufacturer and are verified before they are stored.
 *
 * Functions return 0 or a negative UPD_E_* code with a message in err (one that may be shown to
 * the manufacturer: it names the check that failed, never a secret). */
#ifndef AEGIS_UPD_REPO_H
#define AEGIS_UPD_REPO_H

#include "ota_keys.h"
#include "ota_verify.h"
#include "store.h"
#include "store_tuf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct signer;

enum {
    UPD_OK = 0,
    UPD_E_BAD_METADATA = -1, /* not TUF metadata of the expected role and shape */
    UPD_E_SIGNATURES = -2,   /* below the threshold of the keys that must sign it */
    UPD_E_VERSION = -3,      /* not exactly the current version + 1 (or 1 for a first root) */
    UPD_E_EXPIRES = -4,      /* expired, or expires further than UPD_MAX_EXPIRES_DAYS ahead */
    UPD_E_KEYS = -5,         /* a root that does not give the online roles exactly their keys */
    UPD_E_TARGET = -6,       /* a target that is not an image of the tenant as it is stored */
    UPD_E_NO_ROOT = -7,      /* targets before the image repository has a root */
    UPD_E_CONFLICT = -8,     /* another publication took this version first: retry */
    UPD_E_NOTFOUND = -9,     /* no such file */
    UPD_E_INTERNAL = -10,    /* database, signer or memory failure (logged) */
    UPD_E_TOO_LARGE = -11,   /* a file above its role's UPD_MAX_*_BYTES */
};

/* A short name of a code ("bad_metadata", "signatures", "version", "expires", "keys",
 * "unknown_target", "no_root", "conflict", "not_found", "payload_too_large", "internal"): the API's
 * error code. */
const char *upd_strerror(int code);

/* Lifetimes of the online roles, and how far ahead a manufacturer-signed file may expire. The
 * cron step re-signs an online role when less than half of its lifetime is left. */
#define UPD_TIMESTAMP_LIFE_S 86400
#define UPD_SNAPSHOT_LIFE_S (7 * 86400)
#define UPD_MAX_EXPIRES_DAYS 3650

/* The largest file of each role as stored and served (docs/update.md 2.1), so that a device can
 * size its buffers: an upload whose file would be larger is refused (UPD_E_TOO_LARGE). */
#define UPD_MAX_ROOT_BYTES (64 * 1024)
#define UPD_MAX_TARGETS_BYTES (8 * 1024 * 1024)
#define UPD_MAX_SNAPSHOT_BYTES (16 * 1024)
#define UPD_MAX_TIMESTAMP_BYTES (16 * 1024)

/* The tenant's online keys. */
typedef enum { UPD_KEY_SNAPSHOT, UPD_KEY_TIMESTAMP, UPD_KEY_DIRECTOR, UPD_KEY_COUNT } upd_key;
/* The signer's name of a tenant's online key ("tenants/<id>/tuf-snapshot", ...). */
int upd_key_name(int64_t tenant_id, upd_key k, char *buf, size_t len);
/* The public halves of the tenant's three online keys, made when missing if create is set (only
 * for operators and admins: docs/api.md); without create, UPD_E_NOTFOUND when they do not exist
 * yet. */
int upd_online_keys(struct signer *sg, int64_t tenant_id, int create, ota_key keys[UPD_KEY_COUNT],
                    char *err, size_t errlen);
/* {"snapshot": {"keyid", "key"}, "timestamp": {...}, "director": {...}} (key: the TUF public key
 * object). New reference, or NULL when out of memory. */
json_t *upd_keys_json(const ota_key keys[UPD_KEY_COUNT]);

/* The file name of a repository as served (docs/update.md 2): in the image repository
 * "N.root.json", "timestamp.json", "N.snapshot.json", "N.targets.json"; in the director repository
 * "N.root.json" only. *out as store_tuf_get (caller frees with store_tuf_file_free). UPD_E_NOTFOUND
 * for any other name or a version that does not exist. */
int upd_file_get(store *st, int64_t tenant_id, const char *repo, const char *name,
                 struct store_tuf_file *out);

/* The version and expiry of every role of both repositories: {"image": {"root": {"version",
 * "expires"} | null, "targets", "snapshot", "timestamp"}, "director": {"root"}}. */
int upd_status(store *st, int64_t tenant_id, json_t **out);

/* The current (newest) root of repo, parsed and trusted (it was verified when published): *root
 * new (ota_root_free), *env (may be NULL) its envelope (json_decref). UPD_E_NOTFOUND when the
 * repository has no root yet. */
int upd_current_root(store *st, int64_t tenant_id, const char *repo, ota_root **root, json_t **env);

/* Publishes a manufacturer-signed root of repo (STORE_TUF_IMAGE or STORE_TUF_DIRECTOR): the first
 * must be version 1 and signed by a threshold of its own root keys, a later one must follow the
 * root chain rule (ota_verify_root_update); its expiry must be in (now, now + max]; the online
 * roles must have exactly their online key with threshold 1, no online public key may be a root
 * or targets key (whatever its key id), and every role's threshold must be at most its number of
 * keys (docs/update.md 1). The current root must still be the one verified against when the root
 * is stored. Audited as "ota.root.publish". *version gets the version published. */
int upd_root_publish(store *st, struct signer *sg, int64_t tenant_id, const char *repo,
                     const json_t *env, const struct store_actor *a, int64_t now, int64_t *version,
                     char *err, size_t errlen);

/* --- shared by the update modules --- */
/* Maps an OTA_E_* code of ota_verify to an UPD_E_* code. */
int upd_of_ota(int ota_rc);
/* The canonical file bytes of env into f (role, version and expires read from env's "signed",
 * body malloc'd: store_tuf_file_free). UPD_E_TOO_LARGE above the role's UPD_MAX_*_BYTES. */
int upd_file_of(const json_t *env, struct store_tuf_file *f, char *err, size_t errlen);
/* Parses a stored file's body (a JSON object). NULL when it is not one (logged). */
json_t *upd_parse(const struct store_tuf_file *f);

#endif
