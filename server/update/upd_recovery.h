/* upd_recovery: the grants of the recovery path (docs/update.md section 8). A device whose
 * attestation was refused because its bootloader or OS is unknown or below the tenant's minimum
 * has still proved, with its identity key over a fresh nonce, that it is the device; it gets no
 * certificate, but a short-lived grant that opens exactly the platform images its director
 * answer names and the image repository's metadata, so it can heal itself and attest again.
 *
 * A grant is a random bearer token (32 bytes, 64 hex characters on the wire) kept only as its
 * SHA-256, in memory: a restart forgets every grant and the device simply attests again.
 * Bounded (UPD_RECOVERY_MAX grants; the oldest is dropped first) and thread-safe. */
#ifndef AEGIS_UPD_RECOVERY_H
#define AEGIS_UPD_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#define UPD_RECOVERY_MAX 4096
#define UPD_RECOVERY_IMAGES 16 /* as many as a deployment holds (STORE_DEPLOY_IMAGES_MAX) */
#define UPD_RECOVERY_TTL_S 900
#define UPD_RECOVERY_TOKEN_HEX 65 /* 64 hex characters and the NUL */

typedef struct upd_recovery upd_recovery;

/* What a grant opens. */
struct upd_recovery_grant {
    int64_t tenant_id;
    char device_id[65];
    size_t nimages;
    char images[UPD_RECOVERY_IMAGES][65]; /* SHA-256 hex of the images it may download */
    int64_t expires_at;
};

/* NULL when out of memory. Free with upd_recovery_free (accepts NULL). */
upd_recovery *upd_recovery_new(void);
void upd_recovery_free(upd_recovery *rc);

/* Makes a grant for g (copied; g->expires_at is set to now + UPD_RECOVERY_TTL_S) and writes its
 * token into token. A device's earlier grant is replaced. Returns 0, or -1 (bad grant). */
int upd_recovery_grant(upd_recovery *rc, struct upd_recovery_grant *g, int64_t now,
                       char token[UPD_RECOVERY_TOKEN_HEX]);
/* Looks a presented token up: 0 with *g filled when it names an unexpired grant, else -1. */
int upd_recovery_find(upd_recovery *rc, const char *token, int64_t now,
                      struct upd_recovery_grant *g);
/* 1 when g opens the image sha256 (hex), else 0. */
int upd_recovery_allows(const struct upd_recovery_grant *g, const char *sha256);

#endif
