/* director: what each device should install now (docs/update.md section 4), as TUF targets
 * metadata signed online with the tenant's director key ("tenants/<id>/tuf-director", through the
 * signer). The answer for a device is computed once per generation of its tenant and served from
 * memory; the tenant's plan (each group's current deployment with its images) is loaded once per
 * generation. So the hit path touches no SQLite: only a tenant seen for the first time since the
 * start, or a generation change, reads the store.
 *
 * Generations: every change of what devices should install bumps the tenant's generation in the
 * store (store_deploy.h) in the change's transaction; the changer then calls director_note (the
 * API handlers), or director_sync picks it up (the cron step, every second, also for changes made
 * by another process). An answer expires DIRECTOR_EXPIRY_S after its generation was made (the
 * store's time, so one version has one expiry in every daemon and across restarts); director_sync,
 * and a plan load, bump a tenant whose generation is older than DIRECTOR_RESIGN_S, so answers are
 * re-signed long before they expire.
 *
 * Thread-safe. Ownership: bodies returned are malloc'd copies the caller frees. */
#ifndef AEGIS_DIRECTOR_H
#define AEGIS_DIRECTOR_H

#include "store.h"
#include "store_deploy.h"

#include <stddef.h>
#include <stdint.h>

struct signer;

#define DIRECTOR_EXPIRY_S 86400 /* an answer's "expires": its generation's time + 1 day */
#define DIRECTOR_RESIGN_S 43200 /* a generation older than this is replaced by a new one */
#define DIRECTOR_ETAG_MAX 48    /* a quoted ETag and its NUL */
/* The default number of devices whose answer is kept (director_set_cache_max); beyond it, an
 * answer at random is dropped for each new one. */
#define DIRECTOR_CACHE_MAX 200000

typedef struct director director;

/* st and sg must outlive it. NULL when out of memory. */
director *director_new(store *st, struct signer *sg);
void director_free(director *d);
/* Keeps at most max (>= 1) devices' answers in memory (the config's director_cache_max). */
void director_set_cache_max(director *d, size_t max);
/* The answers built (signed) since director_new: the cache misses, for /metrics. */
uint64_t director_built(director *d);

/* The device whose answer is asked (from its authenticated identity). */
struct director_device {
    int64_t tenant_id;
    const char *device_id;
    int64_t group_id; /* 0: none */
};

/* The device's current answer at time now: etag gets its quoted ETag; when body is not NULL,
 * *body gets a copy of the signed metadata (JSON, *len bytes). Returns 0, or -1 with a reason in
 * err (the store or the signer failed). */
int director_answer(director *d, const struct director_device *dev, int64_t now,
                    char etag[DIRECTOR_ETAG_MAX], char **body, size_t *len, char *err,
                    size_t errlen);
/* 1 when the device's current answer names the image sha256 (hex), 0 when it does not, -1 when
 * the plan could not be loaded. For the image download endpoint. */
int director_names_image(director *d, const struct director_device *dev, const char *sha256);

/* Which images a recovery answer may name, beyond the rules below: accept(ctx, image) returns 1 to
 * keep it (e.g. only images that would pass attestation). */
struct director_filter {
    int (*accept)(void *ctx, const struct store_deploy_image *im);
    void *ctx;
};

/* The recovery answer of a device refused at attestation for its platform (docs/update.md
 * section 8): signed like director_answer's, with custom.recovery true, naming only the "os" images
 * of its group's deployment when that is running or completed, whatever the device's wave, that
 * accept keeps (NULL: all of them). images
 * gets their SHA-256 (at most max; *n of them) and *body the signed metadata (malloc'd, *len bytes;
 * the caller frees). Not cached: refused attestations are rare. Returns 0, or -1 with a reason in
 * err (no such deployment or image, the store or the signer failed). */
int director_recovery_answer(director *d, const struct director_device *dev,
                             const struct director_filter *accept, char (*images)[65], size_t max,
                             size_t *n, char **body, size_t *len, char *err, size_t errlen);

/* The tenant's generation is gen now (after a change the caller made): answers of an older one
 * are not served again. */
void director_note(director *d, int64_t tenant_id, int64_t gen);
/* Reads every tenant's generation from the store, and bumps (re-signs) tenants whose loaded
 * plan's generation was made more than DIRECTOR_RESIGN_S before now. Returns 0, or -1 when the
 * store failed. */
int director_sync(director *d, int64_t now);

#endif
