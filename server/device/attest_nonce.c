/* attest_nonce: stateless challenge nonces (attest_nonce.h). */
#include "attest_nonce.h"
#include "log.h"
#include "util.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#define STAMP_LEN 16 /* expiry and random bytes: what the MAC covers besides the device */
#define MAC_LEN (ATTEST_NONCE_LEN - STAMP_LEN)
#define DEVICE_HEX 64

_Static_assert(crypto_auth_hmacsha256_KEYBYTES == ATTEST_NONCE_KEY_LEN, "the key is HMAC's");
_Static_assert(MAC_LEN == 16, "a 128-bit tag");

static const unsigned char DOMAIN[] = "AEGIS-NONCE-V1"; /* with its NUL: 15 bytes */

/* The MAC of stamp (the nonce's first STAMP_LEN bytes) for device_id, into mac. */
static void
nonce_mac(const unsigned char *key, const char *device_id, const unsigned char *stamp,
          unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    assert(strlen(device_id) == DEVICE_HEX);
    crypto_auth_hmacsha256_init(&st, key, ATTEST_NONCE_KEY_LEN);
    crypto_auth_hmacsha256_update(&st, DOMAIN, sizeof(DOMAIN));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)device_id, DEVICE_HEX);
    crypto_auth_hmacsha256_update(&st, stamp, STAMP_LEN);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

void
attest_nonce_make(const unsigned char key[ATTEST_NONCE_KEY_LEN], const char *device_id,
                  int64_t expires_at, unsigned char nonce[ATTEST_NONCE_LEN])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    uint64_t e = (uint64_t)expires_at;
    for (int i = 0; i < 8; i++)
        nonce[i] = (unsigned char)(e >> (56 - 8 * i));
    randombytes_buf(nonce + 8, STAMP_LEN - 8);
    nonce_mac(key, device_id, nonce, mac);
    memcpy(nonce + STAMP_LEN, mac, MAC_LEN);
    sodium_memzero(mac, sizeof(mac));
}

int
attest_nonce_check(const unsigned char key[ATTEST_NONCE_KEY_LEN], const char *device_id,
                   const unsigned char nonce[ATTEST_NONCE_LEN], int64_t now, int64_t *expires_at)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    uint64_t e = 0;
    nonce_mac(key, device_id, nonce, mac);
    int ok = sodium_memcmp(mac, nonce + STAMP_LEN, MAC_LEN) == 0;
    sodium_memzero(mac, sizeof(mac));
    for (int i = 0; i < 8; i++)
        e = e << 8 | nonce[i];
    /* An expiry beyond INT64_MAX is not one this service made; the MAC decides first anyway. */
    if (!ok || e > (uint64_t)INT64_MAX || (int64_t)e <= now ||
        (int64_t)e - now > ATTEST_NONCE_TTL_MAX)
        return -1;
    *expires_at = (int64_t)e;
    return 0;
}

int
attest_nonce_key_load(store *s, unsigned char key[ATTEST_NONCE_KEY_LEN])
{
    unsigned char fresh[ATTEST_NONCE_KEY_LEN];
    randombytes_buf(fresh, sizeof(fresh));
    int rc = store_nonce_key(s, fresh, util_now(), key);
    sodium_memzero(fresh, sizeof(fresh));
    if (rc != STORE_OK) {
        log_error("msg=\"cannot load the nonce key\" rc=%d", rc);
        return -1;
    }
    return 0;
}
