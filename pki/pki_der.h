/* pki_der: the DER structures the attestation path reads per request (a CSR, an EC public key, a
 * certificate's serial and validity), parsed without OpenSSL 3.0's per-key decoder set-up.
 *
 * Why: in OpenSSL 3.0, d2i_X509, d2i_X509_REQ and d2i_PUBKEY build a decoder chain over every
 * provider's key types for every embedded key, and X509_set_pubkey encodes and decodes the key
 * again: 120-200 µs each on this machine, ten times the ECDSA verification. Here OpenSSL's own
 * ASN.1 templates (X509_NAME, X509_ALGOR, X509_ATTRIBUTE, X509_VAL, X509_EXTENSION) are used in the
 * shape of X509_REQ and X509, with the SubjectPublicKeyInfo kept as bytes, so what parses is what
 * d2i_* accepts; an uncompressed EC P-256 point with the named curve is then made into a key from a
 * template (a few µs). Every other key form (another curve, explicit parameters, a compressed
 * point) takes OpenSSL's generic path, so the answers are those of d2i_* and X509_REQ_verify.
 *
 * Thread-safe (one template key made once). Errors: 0 or -1 with a reason in err (never key
 * material), NULL for functions returning an object. */
#ifndef AEGIS_PKI_DER_H
#define AEGIS_PKI_DER_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* A DER SubjectPublicKeyInfo that must be EC P-256: a new key (EVP_PKEY_free), or NULL. The whole
 * of der must be the one structure. */
EVP_PKEY *pki_der_p256_pubkey(const unsigned char *der, size_t len);

/* A checked CSR: what issuing takes from it. */
struct pki_csr {
    EVP_PKEY *key; /* the subject's P-256 key (owned; pki_csr_free) */
    /* The key's point when its SubjectPublicKeyInfo had the common form (named curve P-256,
     * uncompressed point), else NULL. Owned. */
    unsigned char *spki_point; /* the 65-byte point */
};

/* Parses one DER PKCS#10 request at *pp of len bytes as d2i_X509_REQ does (*pp advances past it;
 * what follows is the caller's to check) and checks it as X509_REQ_verify does with its own key,
 * which must be EC P-256. Returns 0 with *out filled (pki_csr_free), or the first failing check:
 * PKI_CSR_NOT_CSR, PKI_CSR_NOT_P256 or PKI_CSR_BAD_SIGNATURE (*out is then empty). */
#define PKI_CSR_NOT_CSR (-1)
#define PKI_CSR_NOT_P256 (-2)
#define PKI_CSR_BAD_SIGNATURE (-3)
int pki_csr_parse(const unsigned char **pp, size_t len, struct pki_csr *out);
void pki_csr_free(struct pki_csr *csr);

/* X509_set_pubkey(cert, csr->key), without OpenSSL 3.0's encode-decode round for the common form.
 */
int pki_csr_set_pubkey(X509 *cert, const struct pki_csr *csr);

/* The serial (a new BIGNUM, BN_free) and validity of the DER certificate at the start of der, as
 * d2i_X509 reads them. */
int pki_der_cert_facts(const unsigned char *der, size_t len, BIGNUM **serial, int64_t *not_before,
                       int64_t *not_after);

#endif
