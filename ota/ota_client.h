/* ota_client: the TUF 1.0 client workflow (specification section 5) over bytes the caller
 * fetched, with the trusted state the caller persists: what a device's update agent does
 * (docs/update.md section 3 and 3.1), and what aegisctl can use to check a repository as a device
 * would. No I/O here: the caller fetches each file the client asks for (ota_client_next_root's
 * name, the timestamp, the snapshot and targets versions it names) and hands the bytes over, and
 * stores ota_client_save's JSON between runs.
 *
 * One ota_client is one repository (the image repository, or the director repository, whose
 * trusted state is only its root and the last director answer). Every step either moves the
 * trusted state forward or leaves it exactly as it was (a failed check never half-applies), and
 * stops at the first failure with a reason code (below) and a message.
 *
 * Order of a check (image repository):
 *   for (;;) { ota_client_root_name(c, name); fetch name; 404 -> break; ota_client_root(c, bytes) }
 *   ota_client_roots_done(c, now)          the last root must not be expired
 *   ota_client_timestamp(c, bytes, now)    then fetch ota_client_snapshot_name(...)
 *   ota_client_snapshot(c, bytes, now)     then fetch ota_client_targets_name(...)
 *   ota_client_targets(c, bytes, now)
 *   ota_client_find_target(c, path, ...)
 * Director repository: the same root loop, then ota_client_director(c, bytes, now, ...).
 *
 * Ownership: ota_client_new/_load return a new client the caller frees with ota_client_free;
 * json_t * results are new references unless said borrowed. */
#ifndef AEGIS_OTA_CLIENT_H
#define AEGIS_OTA_CLIENT_H

#include "ota_meta.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Sizes a client accepts (docs/update.md 2.1 and 4). */
#define OTA_CLIENT_ROOT_MAX (64u << 10)
#define OTA_CLIENT_TIMESTAMP_MAX (16u << 10)
#define OTA_CLIENT_SNAPSHOT_MAX (16u << 10)
#define OTA_CLIENT_TARGETS_MAX (8u << 20)
#define OTA_CLIENT_DIRECTOR_MAX (32u << 10)
/* Most root updates in one check (the spec's MAX_ROOT_ROTATIONS is 256; a device needs fewer). */
#define OTA_CLIENT_MAX_ROOT_STEPS 32
/* Largest saved state ota_client_load reads: every file at its limit, and room for the JSON
 * around them. */
#define OTA_CLIENT_STATE_MAX                                                                       \
    (OTA_CLIENT_ROOT_MAX + OTA_CLIENT_TIMESTAMP_MAX + OTA_CLIENT_SNAPSHOT_MAX +                    \
     OTA_CLIENT_TARGETS_MAX + OTA_CLIENT_DIRECTOR_MAX + 1024u)

/* Reason codes: "<file>_<check>", stable, reported by devices (docs/update.md 6):
 *   file:  root, timestamp, snapshot, targets, director
 *   check: format (not JSON / not the role's shape / over its size), type, spec, signatures
 *          (threshold not met), version (a rollback or another version than named), expired,
 *          mismatch (length or hash other than the referring file says), device (a director
 *          answer for another device or tenant)
 * e.g. "timestamp_expired", "targets_signatures", "root_version", "snapshot_mismatch".
 * Each check function returns 0 or a negative code: ota_verify.h's OTA_E_* (check format, type,
 * spec, signatures, version, expired; OTA_E_NOMEM is reported as "<file>_format"), or one of the
 * two below, which only the client makes. */
#define OTA_REASON_MAX 32
enum {
    OTA_CLIENT_E_MISMATCH = -20, /* "<file>_mismatch" */
    OTA_CLIENT_E_DEVICE = -21,   /* "director_device" */
};

typedef struct ota_client ota_client;

/* A client trusting only root_env (bytes of a root.json signed by a threshold of its own root
 * keys; its expiry is checked by ota_client_roots_done). NULL with a message on failure. */
ota_client *ota_client_new(const char *root, size_t len, char *err, size_t errlen);
/* A client from a saved state (ota_client_save's text). The device's own storage is trusted for
 * versions and expiry (checked when each file was accepted), but every saved file is verified
 * again against the saved root (signatures of its role's keys and shape), so a damaged or
 * hand-edited state is refused. NULL on a malformed state (the caller starts again from its
 * shipped root). */
ota_client *ota_client_load(const char *state, size_t len, char *err, size_t errlen);
/* The trusted state as one JSON text {"root", "timestamp", "snapshot", "targets", "director"}
 * (the files trusted, each an envelope as verified; sorted keys, so the same state gives the same
 * bytes). *out malloc'd, caller frees. 0 or -1. */
int ota_client_save(const ota_client *c, char **out, size_t *len);
void ota_client_free(ota_client *c);

/* The reason code of the last check call's failure ("" when it passed: every check function
 * clears it first), borrowed. */
const char *ota_client_reason(const ota_client *c);

/* --- root chain ---------------------------------------------------------------------------- */

/* The name of the next root to try: "<trusted version + 1>.root.json" into name[cap]. -1 after
 * OTA_CLIENT_MAX_ROOT_STEPS steps in this check (counted since ota_client_load/new or the last
 * ota_client_roots_done): the caller ends the loop there, as after a 404 (the next check goes on
 * from the root reached). */
int ota_client_root_name(ota_client *c, char *name, size_t cap);
/* The next root: signed by a threshold of the trusted root's root keys and of its own, version
 * exactly trusted + 1 (a root after OTA_CLIENT_MAX_ROOT_STEPS steps: "root_version"). On success it
 * becomes the trusted root; when its timestamp or snapshot keys differ from the old root's (the
 * set of key ids, or the threshold), the trusted timestamp and snapshot are forgotten, and when
 * its targets keys differ, the trusted targets (or director answer: its keys are the director
 * root's targets keys), TUF 5.3.11. 0 or a negative OTA_E_* code (ota_verify.h). */
int ota_client_root(ota_client *c, const char *bytes, size_t len, char *err, size_t errlen);
/* The root loop is over: the trusted root must not be expired at now. */
int ota_client_roots_done(ota_client *c, int64_t now, char *err, size_t errlen);

/* --- image repository ---------------------------------------------------------------------- */

/* timestamp.json: signed by a threshold of the timestamp keys, version >= the trusted one's, the
 * snapshot version it names >= the one the trusted timestamp named and >= the trusted snapshot's,
 * the hashes it names (if any) with a sha256, unexpired. Becomes trusted, except at an equal
 * version: it passes, and the trusted one stays (nothing new; TUF 5.4.3.1). */
int ota_client_timestamp(ota_client *c, const char *bytes, size_t len, int64_t now, char *err,
                         size_t errlen);
/* "<V>.snapshot.json" for the trusted timestamp's V. -1 without a trusted timestamp. */
int ota_client_snapshot_name(const ota_client *c, char *name, size_t cap);
/* The snapshot: at most OTA_CLIENT_SNAPSHOT_MAX bytes, length and SHA-256 equal to the
 * timestamp's (when it names them; else "snapshot_mismatch"), signed by a threshold of the
 * snapshot keys, version exactly V, unexpired, the targets version it names >= the one the trusted
 * snapshot named and >= the trusted targets'. Becomes trusted. Without a trusted timestamp:
 * "snapshot_version". */
int ota_client_snapshot(ota_client *c, const char *bytes, size_t len, int64_t now, char *err,
                        size_t errlen);
/* "<T>.targets.json" for the trusted snapshot's T. -1 without a trusted snapshot. */
int ota_client_targets_name(const ota_client *c, char *name, size_t cap);
/* The trusted targets must not be expired at now (when they are reused without fetching them
 * again, ota_client_targets_current): else "targets_expired" and OTA_E_EXPIRED. */
int ota_client_targets_unexpired(ota_client *c, int64_t now, char *err, size_t errlen);
/* 1 when the trusted targets are already version T (the file need not be fetched again), else 0. */
int ota_client_targets_current(const ota_client *c);
/* The targets: length and SHA-256 equal to the snapshot's (when it names them), signed by a
 * threshold of the targets keys, version exactly T, unexpired, and the strict shape of
 * docs/update.md 2.1 (ota_check_image_targets, else "targets_format"). Becomes trusted. Without a
 * trusted snapshot: "targets_version". */
int ota_client_targets(ota_client *c, const char *bytes, size_t len, int64_t now, char *err,
                       size_t errlen);
/* The trusted targets' entry of path ({"length", "hashes", "custom"}), borrowed from c, or NULL
 * when not listed (or no targets are trusted). */
const json_t *ota_client_find_target(const ota_client *c, const char *path);

/* --- director repository ------------------------------------------------------------------- */

/* A director answer (docs/update.md 4): "_type" targets, signed by a threshold of the director
 * root's targets keys, unexpired at now, version >= the last accepted answer's (an equal one is
 * accepted), and its signed.custom naming device_id (64 lower-case hex) and tenant_id (missing or
 * malformed: "director_format"; another device's or tenant's: "director_device"), at most
 * OTA_CLIENT_DIRECTOR_MAX bytes. On success it becomes the last accepted answer and *signed_out
 * (may be NULL) gets its "signed" object (borrowed from c, valid until the next call on c); on a
 * failure *signed_out is NULL. */
int ota_client_director(ota_client *c, const char *bytes, size_t len, int64_t now,
                        const char *device_id, int64_t tenant_id, const json_t **signed_out,
                        char *err, size_t errlen);

/* --- agreement (docs/update.md 3, steps 3 and 4) ------------------------------------------- */

/* What the device is and runs, for ota_client_agree. */
struct ota_device_facts {
    const char *hardware; /* its hardware class */
    int64_t product_id;   /* the product it was provisioned as */
    /* its security version of a component (0 when it has none); arg is passed back */
    uint32_t (*svn_of)(const char *component, void *arg);
    void *arg;
};

/* One director target checked against the image repository (images, a client whose targets are
 * trusted): the same path, length, SHA-256 and custom fields component, kind, version, svn,
 * hardware and product_id (members of the director's custom beyond these, such as deployment_id,
 * are not compared), the device's hardware and product, else "not_in_repository"; an svn below
 * the device's counter (dev->svn_of), "rollback" (equal is fine). 0 when installable (reason "");
 * -1 with the reason code in reason[OTA_REASON_MAX] and a message. */
int ota_client_agree(const ota_client *images, const char *path, const json_t *director_target,
                     const struct ota_device_facts *dev, char reason[OTA_REASON_MAX], char *err,
                     size_t errlen);

#endif
