/* hal_host: the host (Linux) port of the key store, storage, clock and randomness of adev_hal.h.
 *
 * A device lives in one directory:
 *   DIR/keystore/identity.key   the identity key (PKCS#8 PEM, 0600 in a 0700 directory). Only this
 *                               port's key store touches it; storage names cannot reach it.
 *   DIR/storage/<name>          storage blobs (0644, or 0600 for secrets), written to a temporary
 *                               file, fsync'd, renamed over the old one, then the directory
 *                               fsync'd (lib/util.h, util_write_file).
 *
 * Randomness is OpenSSL's RAND_bytes; the clock is time() plus a configurable skew. */
#ifndef ADEV_HAL_HOST_H
#define ADEV_HAL_HOST_H

#include "adev_hal.h"

/* Makes DIR (0700) and a new identity key in its key store unless one exists ("manufacturing").
 * *created (may be NULL) is set to 1 when a key was made. Returns 0 or -1. */
int adev_host_keystore_create(const char *dir, int *created);
/* Opens the key store of DIR; refuses a key file readable by group or others. NULL on failure. */
adev_keystore *adev_host_keystore_open(const char *dir);

/* Opens (creating DIR/storage, 0700, if needed) the storage of DIR, and removes temporary files
 * left by an interrupted write. NULL on failure. */
adev_storage *adev_host_storage_open(const char *dir);

/* Flag of adev_host_storage_open_flags: writes stay atomic (temporary file + rename) but are not
 * fsync'd, for bulk provisioning that syncs the file system once at the end (a crash may then lose
 * recent writes, never mix old and new bytes). */
#define ADEV_HOST_STORAGE_NOSYNC 1
/* As adev_host_storage_open, with flags (0 or ADEV_HOST_STORAGE_NOSYNC). */
adev_storage *adev_host_storage_open_flags(const char *dir, int flags);

/* Opens (creating them, 0700, if needed) the A/B slots of DIR:
 *   DIR/slots/0/, DIR/slots/1/   each slot's storage (the layout of adev_host_storage_open's
 *                                DIR/storage, one level down: DIR/slots/<i>/storage/<name>)
 *   DIR/slots/bootctl.json       the boot control block (atomic: temp + fsync + rename)
 *   DIR/slots/svn.json           the security-version counters (atomic; raised only)
 * flags: 0 or ADEV_HOST_STORAGE_NOSYNC (applies to the slots' storage and both files). NULL on
 * failure. Free with adev_slots_free. */
adev_slots *adev_host_slots_open(const char *dir, int flags);

/* Test seam for power-loss tests: hook(arg, path, data, len) runs before every change this port
 * makes to a file (storage write, append or removal (data NULL), boot control block, counters),
 * in the writing process; a test kills the process there, or first leaves a truncated temporary
 * file as a write cut short would. Process-wide; NULL removes it. Not for production code. */
typedef void (*adev_host_write_hook)(void *arg, const char *path, const void *data, size_t len);
void adev_host_set_write_hook(adev_host_write_hook hook, void *arg);

/* A clock that is time() + skew_s seconds. */
adev_clock *adev_host_clock_new(int64_t skew_s);
void adev_host_clock_set_skew(adev_clock *c, int64_t skew_s);

#endif
