/* signer: the one narrow door to CA private keys. Callers name a key ("root", "tenants/1/ca-2") and
 * ask for a certificate from a CSR or a signature over bytes; they never see the key. Today keys
 * are loaded in-process from the PKI directory (and cached); the interface is closed and
 * length-checked so it can move behind a socketpair into its own process without touching callers.
 * Thread-safe. */
#ifndef AEGIS_SIGNER_H
#define AEGIS_SIGNER_H

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

#endif
