/* upd_online: the image repository's online roles, snapshot and timestamp, signed through the
 * signer with the tenant's online keys (docs/update.md 2): made when a targets version is
 * published (upd_targets.h), and re-signed by the daemon's cron step before they expire. */
#ifndef AEGIS_UPD_ONLINE_H
#define AEGIS_UPD_ONLINE_H

#include "upd_repo.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct signer;

/* Signs env's "signed" with the tenant's online key k and appends the
 * signature. The signer refuses anything but its own role. */
int upd_sign_online(struct signer *sg, int64_t tenant_id, upd_key k, json_t *env, char *err,
                    size_t errlen);

/* A new snapshot (version, naming targets_version, expiring now + UPD_SNAPSHOT_LIFE_S) into *out
 * (store_tuf_file_free). */
int upd_new_snapshot(struct signer *sg, int64_t tenant_id, int64_t version, int64_t targets_version,
                     int64_t now, struct store_tuf_file *out, char *err, size_t errlen);
/* A new timestamp (version, naming snap's version, length and SHA-256, expiring now +
 * UPD_TIMESTAMP_LIFE_S) into *out. */
int upd_new_timestamp(struct signer *sg, int64_t tenant_id, int64_t version,
                      const struct store_tuf_file *snap, int64_t now, struct store_tuf_file *out,
                      char *err, size_t errlen);

/* Re-signs the tenant's online roles that have less than half of their lifetime left at now: a new
 * snapshot (same targets) and timestamp when the snapshot is due, else a new timestamp when it is
 * due. *resigned gets the number of files published (0, 1 or 2). A repository without a timestamp
 * is left alone. UPD_E_CONFLICT when a publication took the version meanwhile (next run). */
int upd_refresh(store *st, struct signer *sg, int64_t tenant_id, int64_t now, int *resigned,
                char *err, size_t errlen);

/* upd_refresh for every tenant whose image repository has a timestamp (the daemon's cron step).
 * *resigned gets the files published in all. Failures are logged and leave the others be. */
int upd_refresh_all(store *st, struct signer *sg, int64_t now, int *resigned);

#endif
