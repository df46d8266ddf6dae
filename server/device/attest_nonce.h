/* attest_nonce: the challenge nonces of docs/protocol.md section 3.1, stateless. A nonce is
 *
 *     expires_at (8 bytes, big-endian seconds) || 8 random bytes
 *     || HMAC-SHA256(key, "AEGIS-NONCE-V1" 00 || device_id (64 hex characters) || the 16 bytes
 *        before)[0..16)
 *
 * so that a challenge stores nothing (nothing a stranger's challenges could evict) and the check
 * needs neither the registry nor the database; single use is the store's set of used nonces
 * (store_attest_load). The key is the database's (store_nonce_key): every daemon on one database
 * checks every other's nonces. Keys and nonces are never logged. */
#ifndef AEGIS_ATTEST_NONCE_H
#define AEGIS_ATTEST_NONCE_H

#include "store.h"

#include <stdint.h>

#define ATTEST_NONCE_LEN STORE_NONCE_LEN
#define ATTEST_NONCE_KEY_LEN STORE_NONCE_KEY_LEN
/* A nonce that claims to live longer is refused (config nonce_ttl is at most this). */
#define ATTEST_NONCE_TTL_MAX 3600

/* The nonce of device_id (64 lower-case hex) that expires at expires_at, into nonce. */
void attest_nonce_make(const unsigned char key[ATTEST_NONCE_KEY_LEN], const char *device_id,
                       int64_t expires_at, unsigned char nonce[ATTEST_NONCE_LEN]);
/* 0 with *expires_at when nonce was made with key for device_id and is unexpired at now (expiring
 * within ATTEST_NONCE_TTL_MAX of it); -1 otherwise. The MAC is compared in constant time. */
int attest_nonce_check(const unsigned char key[ATTEST_NONCE_KEY_LEN], const char *device_id,
                       const unsigned char nonce[ATTEST_NONCE_LEN], int64_t now,
                       int64_t *expires_at);
/* The daemon's key, into key: the database's, made from the random source when the database has
 * none yet. Returns 0, or -1 (logged). */
int attest_nonce_key_load(store *s, unsigned char key[ATTEST_NONCE_KEY_LEN]);

#endif
