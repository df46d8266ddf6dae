/* keyring: the private keys of the PKI directory, loaded on first use and cached, inside the one
 * process that may read them: the signer process (signer/, docs/architecture.md "The signer
 * process"). Callers name a key ("tenants/1/ca-2") and ask for a certificate from a CSR or a
 * signature over bytes; they never see the key. aegisd itself never links a call to it: it asks
 * the signer through signer/signer.h. Thread-safe. */
#ifndef AEGIS_KEYRING_H
#define AEGIS_KEYRING_H

#include "ota_keys.h"
#include "pki.h"

#include <stddef.h>

typedef struct keyring keyring;

/* A keyring over the keys in pki_dir. Returns NULL on error (message in err). Free with
 * keyring_free. */
keyring *keyring_new(const char *pki_dir, char *err, size_t errlen);
void keyring_free(keyring *s);

/* Issues a leaf from csr_pem with the key key_name and a CA certificate the caller hands in,
 * ca_cert_pem (the profile as in pki_issue_from_csr). Only for the in-process signer shim
 * (signer/signer.c); the signer process uses keyring_issue, which never takes a CA certificate
 * from its caller. *cert_pem gets the leaf PEM (malloc'd, caller frees). key_name is
 * [a-z0-9/-]{1,64} and may not contain "..". Returns 0 / -1. */
int keyring_issue_from_csr(keyring *s, const char *key_name, const char *ca_cert_pem,
                           const char *csr_pem, size_t csr_len, const struct pki_leaf_profile *p,
                           char **cert_pem, char *err, size_t errlen);

/* What keyring_issue and keyring_ca_create made, for the issuance log. */
struct keyring_issued {
    char serial_hex[41]; /* lowercase hex, no leading zeros beyond one byte's */
    int64_t not_after;   /* unix s */
};

/* Issues a leaf from csr_pem (PKCS#10, EC P-256, its signature checked) with the CA key key_name
 * and the CA's own certificate <pki_dir>/<key_name>.crt, both loaded once and cached (never a CA
 * certificate the caller hands in). *cert_pem gets the leaf PEM (malloc'd, caller frees), *out its
 * serial and notAfter. Returns 0 / -1. */
int keyring_issue(keyring *s, const char *key_name, const char *csr_pem, size_t csr_len,
                  const struct pki_leaf_profile *p, char **cert_pem, struct keyring_issued *out,
                  char *err, size_t errlen);

/* The TLS server key: loaded once from path (a private PEM file, as pki_load_key), then
 * ECDSA-SHA256 signatures (DER into sig, *siglen; sig holds 72 bytes) over data. Return 0 / -1. */
int keyring_tls_load(keyring *s, const char *path, char *err, size_t errlen);
int keyring_tls_sign(keyring *s, const unsigned char *data, size_t len, unsigned char sig[72],
                     size_t *siglen, char *err, size_t errlen);
/* The same signature over a SHA-256 digest of such data (what GnuTLS hands an external key). */
int keyring_tls_sign_digest(keyring *s, const unsigned char digest[32], unsigned char sig[72],
                            size_t *siglen, char *err, size_t errlen);
/* Checks the key in path: EC P-256 and the public key of cert_pem's first certificate (the leaf of
 * the chain served with it); then, when commit is set, makes it the TLS key. Files that do not
 * match leave the old key in place (a renewal on SIGHUP). Returns 0 / -1. */
int keyring_tls_reload(keyring *s, const char *path, const char *cert_pem, int commit, char *err,
                       size_t errlen);

/* The notAfter of the tenant's newest issuing CA in the PKI directory (tenants/<id>/ca-<n>.crt,
 * the highest n), 0 when it has none. Returns 0 / -1. */
int keyring_ca_newest(keyring *s, int64_t tenant_id, int64_t *not_after, char *err, size_t errlen);
/* Makes the tenant's next issuing CA under its device root (pki_tenant_ca_create): key_name gets
 * its name ("tenants/<id>/ca-<n>"), *cert_pem its certificate (malloc'd), *out its serial and
 * notAfter. Returns 0 / -1. */
int keyring_ca_create(keyring *s, int64_t tenant_id, const char *tenant_name, int64_t lifetime_s,
                      char key_name[80], char **cert_pem, struct keyring_issued *out, char *err,
                      size_t errlen);

/* ECDSA-SHA256 signature (DER) over msg with key key_name; *sig (malloc'd) and *siglen. */
int keyring_sign_bytes(keyring *s, const char *key_name, const unsigned char *msg, size_t len,
                       unsigned char **sig, size_t *siglen, char *err, size_t errlen);

/* Online ed25519 keys: the TUF roles the service signs for a tenant (docs/update.md "Keys"). Their
 * names end in "tuf-snapshot", "tuf-timestamp" or "tuf-director" (e.g. "tenants/7/tuf-snapshot");
 * each is the private key file of ota_keys.h at <pki_dir>/<name>.ed25519 (0600), made on first use
 * when create is set (by link(2), so two processes that race agree on one key). Each key signs only
 * metadata of its own role, whatever the caller asks: the canonical "signed" bytes must be a JSON
 * object whose "_type" is "snapshot", "timestamp" or (director) "targets" with a "custom" object.
 * So no request can make the service sign the image repository's targets or a root. */

/* The public half of the key (pub->has_secret is 0). Returns 0, or -1 (no such key and create is
 * 0, a bad name, an unreadable file). */
int keyring_ed25519_public(keyring *s, const char *key_name, int create, ota_key *pub, char *err,
                           size_t errlen);
/* Signs the canonical bytes of a "signed" object with key_name: sig_hex gets 128 hex characters,
 * keyid the key's id. Returns 0, or -1 (the role rule above, a missing key, ...). */
int keyring_ed25519_sign(keyring *s, const char *key_name, const unsigned char *msg, size_t len,
                         char sig_hex[OTA_SIG_HEX_LEN], char keyid[OTA_KEYID_HEX_LEN], char *err,
                         size_t errlen);

#endif
