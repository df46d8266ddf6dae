/* keyring_int: what keyring.c shares with keyring_ed25519.c (the online TUF keys). Not for callers.
 */
#ifndef AEGIS_KEYRING_INT_H
#define AEGIS_KEYRING_INT_H

#include "keyring.h"

#define KEYRING_MSG_MAX (4 * 1024 * 1024)

/* The key name rule of keyring.h: [a-z0-9/-]{1,64}, no "..", no "//", not a root. */
int keyring_valid_key_name(const char *name);
const char *keyring_dir(const keyring *s);
/* The keyring's lock, held around the caches. */
void keyring_lock(keyring *s);
void keyring_unlock(keyring *s);
/* The cache of online keys (called with the lock held): get copies the key into *out (0) or
 * returns -1 on a miss; put stores a copy, evicting (and wiping) the oldest when full. */
int keyring_ed_cache_get(keyring *s, const char *name, ota_key *out);
void keyring_ed_cache_put(keyring *s, const char *name, const ota_key *k);

/* The serial (lowercase hex) and notAfter of cert into *out. Returns 0 / -1. */
int keyring_issued_of(X509 *cert, struct keyring_issued *out, char *err, size_t errlen);

#endif
