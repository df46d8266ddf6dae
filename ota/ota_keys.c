/* ota_keys: ed25519 keys of TUF metadata (see ota_keys.h). */
#include "ota_keys.h"

#include "errbuf.h"
#include "ota_cjson.h"
#include "util.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A key file is a few hundred bytes; anything much larger is not one. */
#define KEY_FILE_MAX 4096

static void
to_hex(char *out, const unsigned char *bin, size_t n)
{
    sodium_bin2hex(out, n * 2 + 1, bin, n);
}

/* Strict: exactly 2n lowercase hex characters, so one value has one spelling. */
static int
from_hex(unsigned char *out, size_t n, const char *hex)
{
    if (hex == NULL || strlen(hex) != n * 2)
        return -1;
    for (size_t i = 0; i < n * 2; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
    }
    size_t got = 0;
    if (sodium_hex2bin(out, n, hex, n * 2, NULL, &got, NULL) != 0 || got != n)
        return -1;
    return 0;
}

static int
set_keyid(ota_key *k, char *err, size_t errlen)
{
    json_t *obj = ota_key_public_json(k);
    if (obj == NULL) {
        errbuf_set(err, errlen, "out of memory");
        return -1;
    }
    int rc = ota_keyid_of_json(obj, k->keyid, err, errlen);
    json_decref(obj);
    return rc;
}

int
ota_key_from_seed(ota_key *k, const unsigned char seed[OTA_SEED_BYTES], char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    if (sodium_init() < 0 || crypto_sign_seed_keypair(k->pk, k->sk, seed) != 0) {
        errbuf_set(err, errlen, "ed25519 key from seed failed");
        goto fail;
    }
    k->has_secret = 1;
    if (set_keyid(k, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    ota_key_wipe(k);
    return -1;
}

int
ota_key_generate(ota_key *k, char *err, size_t errlen)
{
    unsigned char seed[OTA_SEED_BYTES];
    if (sodium_init() < 0) {
        errbuf_set(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    randombytes_buf(seed, sizeof(seed));
    int rc = ota_key_from_seed(k, seed, err, errlen);
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

void
ota_key_wipe(ota_key *k)
{
    if (k != NULL)
        sodium_memzero(k, sizeof(*k));
}

json_t *
ota_key_public_json(const ota_key *k)
{
    char hex[OTA_PK_BYTES * 2 + 1];
    to_hex(hex, k->pk, OTA_PK_BYTES);
    return json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519", "keyval",
                     "public", hex);
}

int
ota_keyid_of_json(const json_t *key_obj, char out[OTA_KEYID_HEX_LEN], char *err, size_t errlen)
{
    char *c = NULL;
    size_t n = 0;
    unsigned char h[crypto_hash_sha256_BYTES];
    if (ota_cjson_encode(key_obj, &c, &n, err, errlen) < 0)
        return -1;
    crypto_hash_sha256(h, (const unsigned char *)c, n);
    free(c);
    to_hex(out, h, sizeof(h));
    return 0;
}

int
ota_key_from_public_json(const json_t *key_obj, ota_key *k, char *err, size_t errlen)
{
    const char *type = NULL, *scheme = NULL, *pub = NULL;
    memset(k, 0, sizeof(*k));
    if (json_unpack((json_t *)key_obj, "{s:s, s:s, s:{s:s}}", "keytype", &type, "scheme", &scheme,
                    "keyval", "public", &pub) != 0) {
        errbuf_set(err, errlen, "key: keytype, scheme and keyval.public strings are required");
        return -1;
    }
    if (strcmp(type, "ed25519") != 0 || strcmp(scheme, "ed25519") != 0) {
        errbuf_set(err, errlen, "key: unsupported keytype/scheme %.32s/%.32s (only ed25519)", type,
                   scheme);
        return -1;
    }
    if (from_hex(k->pk, OTA_PK_BYTES, pub) < 0) {
        errbuf_set(err, errlen, "key: keyval.public is not 64 lowercase hex characters");
        return -1;
    }
    return ota_keyid_of_json(key_obj, k->keyid, err, errlen);
}

int
ota_key_sign(const ota_key *k, const unsigned char *msg, size_t len, char sig_hex[OTA_SIG_HEX_LEN],
             char *err, size_t errlen)
{
    unsigned char sig[OTA_SIG_BYTES];
    if (!k->has_secret) {
        errbuf_set(err, errlen, "key %.16s...: no private key to sign with", k->keyid);
        return -1;
    }
    if (crypto_sign_detached(sig, NULL, msg, len, k->sk) != 0) {
        errbuf_set(err, errlen, "ed25519 signing failed");
        return -1;
    }
    to_hex(sig_hex, sig, sizeof(sig));
    return 0;
}

int
ota_key_verify(const ota_key *k, const unsigned char *msg, size_t len, const char *sig_hex,
               char *err, size_t errlen)
{
    unsigned char sig[OTA_SIG_BYTES];
    if (from_hex(sig, sizeof(sig), sig_hex) < 0) {
        errbuf_set(err, errlen, "signature by %.16s...: not 128 lowercase hex characters",
                   k->keyid);
        return -1;
    }
    if (sodium_init() < 0 || crypto_sign_verify_detached(sig, msg, len, k->pk) != 0) {
        errbuf_set(err, errlen, "signature by %.16s...: does not verify", k->keyid);
        return -1;
    }
    return 0;
}

int
ota_key_save(const ota_key *k, const char *path, char *err, size_t errlen)
{
    /* Formatted by hand, not through jansson, so the only copies of the seed's hex are these two
     * buffers, both wiped. Members in canonical order. */
    char seed_hex[OTA_SEED_BYTES * 2 + 1], pk_hex[OTA_PK_BYTES * 2 + 1];
    char text[512];
    int rc = -1;
    if (!k->has_secret) {
        errbuf_set(err, errlen, "key %.16s...: no private key to save", k->keyid);
        return -1;
    }
    to_hex(seed_hex, k->sk, OTA_SEED_BYTES); /* libsodium's sk begins with the seed */
    to_hex(pk_hex, k->pk, OTA_PK_BYTES);
    int n = snprintf(text, sizeof(text),
                     "{\"keyid\":\"%s\",\"keytype\":\"ed25519\",\"keyval\":{\"private\":\"%s\","
                     "\"public\":\"%s\"},\"scheme\":\"ed25519\"}\n",
                     k->keyid, seed_hex, pk_hex);
    assert(n > 0 && (size_t)n < sizeof(text));
    if (util_write_file(path, text, (size_t)n, 0600) < 0) {
        errbuf_set(err, errlen, "%s: cannot write the key file", path);
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(seed_hex, sizeof(seed_hex));
    sodium_memzero(text, sizeof(text));
    return rc;
}

/* The seed of a parsed key file, checked against its public key and key id. */
static int
key_from_file_json(json_t *j, ota_key *k, char *err, size_t errlen)
{
    const char *keyid = NULL, *type = NULL, *scheme = NULL, *priv = NULL, *pub = NULL;
    unsigned char seed[OTA_SEED_BYTES];
    unsigned char pk[OTA_PK_BYTES];
    int rc = -1;
    if (json_unpack(j, "{s:s, s:s, s:s, s:{s:s, s:s}}", "keyid", &keyid, "keytype", &type, "scheme",
                    &scheme, "keyval", "private", &priv, "public", &pub) != 0 ||
        strcmp(type, "ed25519") != 0 || strcmp(scheme, "ed25519") != 0) {
        errbuf_set(err, errlen, "not an ed25519 private key file");
        goto out;
    }
    if (from_hex(seed, sizeof(seed), priv) < 0 || from_hex(pk, sizeof(pk), pub) < 0) {
        errbuf_set(err, errlen, "keyval.private/public are not 64 lowercase hex characters");
        goto out;
    }
    if (ota_key_from_seed(k, seed, err, errlen) < 0)
        goto out;
    if (memcmp(pk, k->pk, sizeof(pk)) != 0 || strcmp(keyid, k->keyid) != 0) {
        errbuf_set(err, errlen, "public key or key id do not match the private key");
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(seed, sizeof(seed));
    /* jansson's string holds the seed's hex: cleared in place before the value is freed */
    if (priv != NULL)
        sodium_memzero((char *)priv, strlen(priv));
    return rc;
}

int
ota_key_load(const char *path, ota_key *k, char *err, size_t errlen)
{
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    json_t *j = NULL;
    json_error_t jerr;
    char msg[160] = "";
    int rc = -1;
    memset(k, 0, sizeof(*k));
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        errbuf_set(err, errlen, "%s: no such key file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        errbuf_set(err, errlen,
                   "%s: a private key file must not be open to group or others "
                   "(mode %03o; chmod 600)",
                   path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    text = util_read_file(path, KEY_FILE_MAX, &len);
    if (text == NULL) {
        errbuf_set(err, errlen, "%s: cannot read the key file (or larger than %d bytes)", path,
                   KEY_FILE_MAX);
        goto out;
    }
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        errbuf_set(err, errlen, "%s: not JSON (line %d: %s)", path, jerr.line, jerr.text);
        goto out;
    }
    if (key_from_file_json(j, k, msg, sizeof(msg)) < 0) {
        errbuf_set(err, errlen, "%s: %s", path, msg);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        ota_key_wipe(k);
    json_decref(j);
    sodium_memzero(&jerr, sizeof(jerr)); /* its text may quote the file */
    if (text != NULL) {
        sodium_memzero(text, len);
        free(text);
    }
    return rc;
}
