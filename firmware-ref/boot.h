/* boot: measured boot, simulated over device storage (docs/protocol.md section 2).
 *
 * A device's storage holds its images and a manifest (blob "manifest.json"):
 *   {"version": 1,
 *    "stages":   [{"stage": "bootloader", "component", "version", "svn", "image": "<blob>"},
 *                 {"stage": "os", ...}, {"stage": "app", ...} (1-6 apps)],
 *    "previous": [{"stage": "os", ...}]}          older images kept for recovery (optional)
 * The manifest stands in for the signed headers of real images: it says what each image claims
 * to be; the measurement (the image's SHA-256) is what the image is.
 *
 * adev_boot_run walks the chain ROM -> bootloader -> OS -> apps: each stage reads the next
 * image, measures it (an event: stage, component, version, svn, SHA-256 of the bytes), extends
 * the composite with it, and only then "runs" it. */
#ifndef ADEV_BOOT_H
#define ADEV_BOOT_H

#include "adev_hal.h"
#include "evidence.h"

#define ADEV_MANIFEST "manifest.json"
#define ADEV_IMAGE_MAX (16u << 20) /* largest image the simulated ROM loads */

struct adev_boot_opts {
    int boot_previous_os; /* boot the manifest's previous OS instead (a rollback to older code) */
    int tamper_os;        /* flip one byte of the OS image as it is loaded (modified flash) */
};

/* The measurements of one boot: the event log and its composite digest. */
struct adev_boot_log {
    struct proto_event events[PROTO_EVENTS_MAX];
    size_t n;
    uint8_t composite[32];
};

/* One manifest entry: what an image claims to be and the blob that holds it. */
struct adev_manifest_entry {
    int stage; /* enum proto_stage */
    char component[PROTO_COMPONENT_MAX + 1];
    char version[PROTO_VERSION_MAX + 1];
    uint32_t svn;
    char image[ADEV_STORAGE_NAME_MAX + 1];
};

#define ADEV_PREVIOUS_MAX 8 /* older images a manifest keeps */

/* The manifest of a storage: the boot chain in boot order, and the older images kept. */
struct adev_manifest {
    struct adev_manifest_entry stages[PROTO_EVENTS_MAX];
    size_t n;
    struct adev_manifest_entry previous[ADEV_PREVIOUS_MAX];
    size_t nprev;
};

/* Reads and checks the manifest of st strictly (its images are not read). 0, -2 when there is
 * none, -1 when it is malformed or unreadable. */
int adev_manifest_read(adev_storage *st, struct adev_manifest *m);

/* Boots from st. opts may be NULL. Returns 0; -1 on a missing or malformed manifest or image. */
int adev_boot_run(adev_storage *st, const struct adev_boot_opts *opts, struct adev_boot_log *out);

/* An image to install (all borrowed). */
struct adev_image {
    int stage; /* enum proto_stage */
    const char *component;
    const char *version;
    uint32_t svn;
    const uint8_t *data;
    size_t len;
};

/* Writes images and the manifest to st ("flashing"): boot[0..n) in boot order (a log that
 * proto_event_log_check accepts), previous[0..nprev) the older images kept (may be NULL/0).
 * Returns 0 or -1. */
int adev_boot_install(adev_storage *st, const struct adev_image *boot, size_t n,
                      const struct adev_image *previous, size_t nprev);

#endif
