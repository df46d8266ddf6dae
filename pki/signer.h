/* signer: the one narrow door to CA private keys. Callers name a key ("root", "tenants/1/ca-2") and
 * ask for a certificate from a CSR or a signature over bytes; they never see the key. Today keys
 * are loaded in-process from the PKI directory (and cached); the interface is closed and
 * length-checked so it can move behind a socketpair into its own process without touching callers.
 * Thread-safe. */
#ifndef AEGIS_SIGNER_H
#define AEGIS_SIGNER_H

#include "ota_keys.h"
#include "pki.h"

#include <stddef.h>

typedef struct signer signer;

/* A signer over the keys in pki_dir. Returns NULL on error (message in err). Free with
 * signer_free. */
signer *signer_new(const char *pki_dir, char *err, size_t errlen);
void signer_free(signer *s);

/* Issues a leaf from csr_pem with the key key_name and its certificate ca_cert_pem (the profile as
 * in pki_issue_from_csr). *cert_pem gets the leaf PEM (malloc'd, caller frees). key_name is
 * [a-z0-9/-]{1,64} and may not contain "..". Returns 0 / -1. */
int signer_issue_from_csr(signer *s, const char *key_name, const char *ca_cert_pem,
                          const char *csr_pem, size_t csr_len, const struct pki_leaf_profile *p,
                          char **cert_pem, char *err, size_t errlen);

/* ECDSA-SHA256 signature (DER) over msg with key key_name; *sig (malloc'd) and *siglen. */
int signer_sign_bytes(signer *s, const char *key_name, const unsigned char *msg, size_t len,
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
int signer_ed25519_public(signer *s, const char *key_name, int create, ota_key *pub, char *err,
                          size_t errlen);
/* Signs the canonical bytes of a "signed" object with key_name: sig_hex gets 128 hex characters,
 * keyid the key's id. Returns 0, or -1 (the role rule above, a missing key, ...). */
int signer_ed25519_sign(signer *s, const char *key_name, const unsigned char *msg, size_t len,
                        char sig_hex[OTA_SIG_HEX_LEN], char keyid[OTA_KEYID_HEX_LEN], char *err,
                        size_t errlen);

#endif
