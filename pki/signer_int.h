/* signer_int: what signer.c shares with signer_ed25519.c (the online TUF keys). Not for callers. */
#ifndef AEGIS_SIGNER_INT_H
#define AEGIS_SIGNER_INT_H

#include "signer.h"

#define SIGNER_MSG_MAX (4 * 1024 * 1024)

/* The key name rule of signer.h: [a-z0-9/-]{1,64}, no "..", no "//", not a root. */
int signer_valid_key_name(const char *name);
const char *signer_dir(const signer *s);
/* The signer's lock, held around the caches. */
void signer_lock(signer *s);
void signer_unlock(signer *s);
/* The cache of online keys (called with the lock held): get copies the key into *out (0) or
 * returns -1 on a miss; put stores a copy, evicting (and wiping) the oldest when full. */
int signer_ed_cache_get(signer *s, const char *name, ota_key *out);
void signer_ed_cache_put(signer *s, const char *name, const ota_key *k);

#endif
