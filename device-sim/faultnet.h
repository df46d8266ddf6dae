/* faultnet: the update faults of `aegis-sim update` (device-sim/README.md "update"), as an
 * adev_transport that wraps a device's real transport and rewrites the answers a faulty device
 * gets: what a hostile network or a compromised service could send it. Every device's transport
 * is wrapped (also without a fault) so that the director answers can be read for the summary
 * (the wave, the deployment, whether anything was offered).
 *
 * Forging uses the service's online keys (--server-keys DIR: the daemon's
 * <pki_dir>/tenants/<tenant>/tuf-{timestamp,snapshot,director}.ed25519): exactly what a
 * compromised service holds, never the offline root and targets keys. Private to device-sim. */
#ifndef AEGIS_SIM_FAULTNET_H
#define AEGIS_SIM_FAULTNET_H

#include "adev_hal.h"
#include "ota_keys.h"

#include <stdint.h>

enum upd_fault {
    UF_NONE = 0,
    UF_CORRUPT,       /* corrupt-image: a byte of the image flipped       -> hash_mismatch */
    UF_TRUNCATE,      /* truncate-image: a short 200, 416 for a resume    -> length_mismatch */
    UF_ENDLESS,       /* endless-image: the body never ends               -> too_large */
    UF_FREEZE,        /* timestamp re-signed, expired                     -> timestamp_expired */
    UF_REPLAY,        /* a timestamp older than the trusted one           -> timestamp_version */
    UF_BAD_SIGNATURE, /* a byte of the director's signature flipped       -> director_signatures */
    UF_UNLISTED,      /* director names the image with another length     -> not_in_repository */
    UF_SERVER_SIGNED, /* targets signed by the online snapshot key        -> targets_signatures */
    UF_LOWER_SVN,     /* the counter raised above the offered svn         -> rollback */
    UF_CRASH_UPDATE,  /* every trial boot of a new version crashes (update.c) -> rolled_back */
    UF_COUNT
};

/* Option names ("corrupt-image", ...; NULL for UF_NONE) and the reason each must end with. */
extern const char *const faultnet_names[UF_COUNT];
extern const char *const faultnet_expected[UF_COUNT];

/* The service's online keys (secrets: faultnet_keys_wipe). */
struct faultnet_keys {
    ota_key timestamp, snapshot, director;
    int loaded;
};

/* Loads DIR/tuf-{timestamp,snapshot,director}.ed25519. 0, or -1 with a message. */
int faultnet_keys_load(const char *dir, struct faultnet_keys *k, char *err, size_t errlen);
void faultnet_keys_wipe(struct faultnet_keys *k);
/* 1 when fault f needs the server's keys. */
int faultnet_needs_keys(enum upd_fault f);

/* What one device's fault state and the director's answers left (kept across power cycles by the
 * caller; small). */
struct faultnet_dev {
    uint8_t fault;    /* enum upd_fault */
    uint8_t offered;  /* a director answer named targets */
    uint8_t replayed; /* replay: the newer timestamp was served once */
    uint16_t wave;    /* signed.custom.wave of the last answer naming targets, 0 */
    uint32_t forged;  /* answers rewritten */
    int64_t deployment_id;
    /* server-signed: the versions served in place of the real ones (0: none yet) */
    int64_t real_snapshot, fake_snapshot, real_targets, fake_targets;
};

/* Wraps inner (owned from here on, also on failure) for the device fd (borrowed, outlives the
 * transport); keys and slots are borrowed (slots: the device's, for lower-svn). NULL on failure. */
adev_transport *faultnet_new(adev_transport *inner, adev_timers *timers, struct faultnet_dev *fd,
                             const struct faultnet_keys *keys, adev_slots *slots);

#endif
