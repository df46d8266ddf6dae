/* ota_keys: ed25519 keys of TUF metadata (libsodium), their public key object and key id, signing
 * and verification of canonical bytes, and the private key file of offline keys (aegisctl).
 *
 * The TUF public key object of an ed25519 key is
 *     {"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"<64 lowercase hex>"}}
 * and its key id is the lowercase hex SHA-256 of the canonical JSON (ota_cjson.h) of that object,
 * as python-tuf and tuf-js compute it. A signature is the 64-byte ed25519 signature (pure
 * ed25519, RFC 8032) in 128 lowercase hex characters.
 *
 * Secrets: an ota_key with a secret holds the libsodium secret key (seed and public key) inline;
 * ota_key_wipe clears it with sodium_memzero, and every temporary copy of secret bytes made here
 * (hex text, file contents) is wiped before it is freed. The JSON parser's own scratch buffers
 * while a key file is loaded are the one copy this module cannot reach. */
#ifndef AEGIS_OTA_KEYS_H
#define AEGIS_OTA_KEYS_H

#include <jansson.h>
#include <stddef.h>

#define OTA_PK_BYTES 32
#define OTA_SEED_BYTES 32
#define OTA_SIG_BYTES 64
/* Sizes of hex texts with their NUL. */
#define OTA_KEYID_HEX_LEN 65
#define OTA_SIG_HEX_LEN 129

typedef struct ota_key {
    unsigned char pk[OTA_PK_BYTES];
    unsigned char sk[64]; /* libsodium's secret key (seed || pk); zero when has_secret is 0 */
    int has_secret;
    char keyid[OTA_KEYID_HEX_LEN];
} ota_key;

/* A new random key pair. Returns 0 / -1. */
int ota_key_generate(ota_key *k, char *err, size_t errlen);
/* The key pair of a 32-byte seed (RFC 8032's private key). Returns 0 / -1. */
int ota_key_from_seed(ota_key *k, const unsigned char seed[OTA_SEED_BYTES], char *err,
                      size_t errlen);
/* Zeroes the whole structure (secret included) with sodium_memzero. */
void ota_key_wipe(ota_key *k);

/* The TUF public key object of k (new reference, caller decrefs), or NULL when out of memory. */
json_t *ota_key_public_json(const ota_key *k);
/* Key id of a public key object as it stands (every member is hashed, so an object with extra
 * members, such as old keyid_hash_algorithms, keeps the id its producer gave it) into
 * out[OTA_KEYID_HEX_LEN]. Returns 0 / -1 (a real in the object, out of memory). */
int ota_keyid_of_json(const json_t *key_obj, char out[OTA_KEYID_HEX_LEN], char *err, size_t errlen);
/* Reads a public key object: keytype and scheme "ed25519", keyval.public 64 lowercase hex. k gets
 * the public key, no secret, and the key id of the object (ota_keyid_of_json). Returns 0 / -1. */
int ota_key_from_public_json(const json_t *key_obj, ota_key *k, char *err, size_t errlen);

/* Signs msg with k (which must have its secret): sig_hex gets 128 hex characters and a NUL.
 * Returns 0 / -1. */
int ota_key_sign(const ota_key *k, const unsigned char *msg, size_t len,
                 char sig_hex[OTA_SIG_HEX_LEN], char *err, size_t errlen);
/* Verifies a hex signature of msg by k. Returns 0 when valid, -1 when not (malformed hex, wrong
 * length or a bad signature; message in err). */
int ota_key_verify(const ota_key *k, const unsigned char *msg, size_t len, const char *sig_hex,
                   char *err, size_t errlen);

/* Private key file (an offline key of aegisctl), written atomically with mode 0600:
 *     {"keyid":"<id>","keytype":"ed25519","keyval":{"private":"<seed hex>","public":"<hex>"},
 *      "scheme":"ed25519"}
 * (one line, canonical JSON, newline at the end; "private" is the 32-byte seed as in
 * securesystemslib's key dictionaries). Returns 0 / -1. */
int ota_key_save(const ota_key *k, const char *path, char *err, size_t errlen);
/* Loads such a file into k. Refuses a file that is not a regular file, that group or others may
 * read or write, whose public key or key id do not match its seed. Returns 0 / -1 (k wiped). */
int ota_key_load(const char *path, ota_key *k, char *err, size_t errlen);

#endif
