/* upd_targets: the image repository's targets role (docs/update.md 2). The service proposes an
 * unsigned targets file listing every image of the tenant; the manufacturer signs it offline
 * (aegisctl ota sign) and uploads it; the service verifies it against the current root and its
 * images, and publishes it with a new snapshot and timestamp signed online. */
#ifndef AEGIS_UPD_TARGETS_H
#define AEGIS_UPD_TARGETS_H

#include "upd_repo.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Default and largest expiry of a proposal, in days from now. */
#define UPD_PROPOSAL_DAYS 365
/* Attempts of one publication that meets concurrent changes (upd_targets_publish). */
#define UPD_PUBLISH_TRIES 4

/* The target path of an image: "<component>/<sha256>". */
int upd_target_path(const char *component, const char *sha256, char *buf, size_t len);

/* {"proposal": unsigned targets envelope (version current + 1, expiring now + days, every image of
 * the tenant as a target), "added": [...], "removed": [...]} where each change is {"path",
 * "component", "kind", "version", "svn", "hardware", "length"}. days is 1..UPD_MAX_EXPIRES_DAYS. */
int upd_targets_proposal(store *st, int64_t tenant_id, int64_t now, int64_t days, json_t **out,
                         char *err, size_t errlen);

/* Verifies and publishes a signed targets file: shape (ota_check_image_targets: no delegations
 * or other members), a threshold of the current image root's targets keys, version exactly
 * current + 1, expiry in (now, now + max], size (UPD_MAX_TARGETS_BYTES), every target an image of
 * the tenant with its length, SHA-256 and custom fields (upd_target_path, the proposal's custom).
 * Then, in one transaction (audited "ota.targets.publish") that first checks that the root,
 * targets, snapshot and timestamp versions are still those it was verified against, the targets,
 * a new snapshot naming it and a new timestamp naming the snapshot; when they changed meanwhile
 * it starts over, at most UPD_PUBLISH_TRIES times (then UPD_E_CONFLICT). *out: {"targets",
 * "snapshot", "timestamp"} versions. */
int upd_targets_publish(store *st, struct signer *sg, int64_t tenant_id, const json_t *env,
                        const struct store_actor *a, int64_t now, json_t **out, char *err,
                        size_t errlen);

#endif
