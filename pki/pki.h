/* pki: certificates and keys with OpenSSL 3 EVP APIs only. ECDSA P-256 everywhere, SHA-256
 * signatures.
 *
 * Layout of a PKI directory (created by pki_init_dir / aegisctl pki init):
 *   root.crt, root.key                         the service root: signs the daemon's TLS
 *                                              certificate only; devices pin it for the service
 *   server.crt, server.key                     the daemon's TLS certificate (serverAuth), issued
 *                                              by the service root
 *   tenants/<tenant_id>/root.crt, .key         the tenant's device root (offline in production):
 *                                              the anchor its devices pin for each other
 *   tenants/<tenant_id>/ca-<n>.crt, .key       the tenant's online issuing CAs, issued by the
 *                                              tenant's device root
 *
 * Private keys are PKCS#8 PEM, written 0600, and refused on load if group- or world-readable.
 *
 * Errors: functions return 0 or -1 and put a reason in err (no secrets in it). Objects returned
 * through pointers are owned by the caller (EVP_PKEY_free / X509_free / free for char *). */
#ifndef AEGIS_PKI_H
#define AEGIS_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define PKI_BACKDATE_S 300 /* notBefore of leaves is backdated this much for clock skew */

/* 1 if pkey is an EC key on the named curve P-256, else 0 (NULL gives 0). */
int pki_is_p256(EVP_PKEY *pkey);

/* A new ECDSA P-256 key. */
int pki_keygen(EVP_PKEY **out, char *err, size_t errlen);
/* Writes key as PKCS#8 PEM with mode 0600 (atomically). */
int pki_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen);
/* Loads a PEM private key; refuses files readable by group or others. */
int pki_load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen);
/* Refuses (-1) a key file that is group- or world-readable or missing. */
int pki_check_key_perms(const char *path, char *err, size_t errlen);
int pki_write_cert(const char *path, X509 *cert, char *err, size_t errlen); /* 0644 */
int pki_load_cert(const char *path, X509 **out, char *err, size_t errlen);
/* PEM text of a certificate (malloc'd, caller frees). */
char *pki_cert_pem(X509 *cert);
/* Parses one PEM certificate. */
X509 *pki_cert_from_pem(const char *pem, size_t len);

/* Self-signed root CA: CN=cn, O=org (may be NULL), basicConstraints CA:TRUE with pathlen (< 0: no
 * constraint; critical), KU keyCertSign|cRLSign, SKI. */
int pki_make_root(const char *cn, const char *org, int pathlen, int64_t lifetime_s, EVP_PKEY **key,
                  X509 **cert, char *err, size_t errlen);
/* Intermediate (issuing) CA signed by the parent: CA:TRUE pathlen:0, KU keyCertSign|cRLSign, SKI,
 * AKI. Its lifetime is clipped to the parent's notAfter. */
int pki_make_ca(EVP_PKEY *parent_key, X509 *parent, const char *cn, const char *org,
                int64_t lifetime_s, EVP_PKEY **key, X509 **cert, char *err, size_t errlen);

/* What a leaf certificate issued from a CSR looks like. */
struct pki_leaf_profile {
    const char *common_name;  /* subject CN (required) */
    const char *organization; /* subject O, or NULL */
    const char *san_uri;      /* SAN URI (e.g. "urn:aegis:tenant:1:device:<id>"), or NULL */
    const char *san_dns;      /* comma-separated SAN DNS names, or NULL */
    const char *san_ip;       /* comma-separated SAN IP addresses, or NULL */
    int server_auth;          /* add EKU serverAuth besides clientAuth */
    int client_auth;          /* add EKU clientAuth (normally 1) */
    int64_t lifetime_s;       /* clipped to the CA's notAfter */
    int64_t now;              /* issuance time (unix s); notBefore = now - PKI_BACKDATE_S */
};

/* Issues a leaf from a PEM PKCS#10 CSR: checks the CSR's signature and that its key is EC P-256;
 * the subject and extensions come from the profile, never from the CSR. 128-bit random serial
 * (positive), AKI/SKI, basicConstraints CA:FALSE, KU digitalSignature (critical), EKU per
 * profile. */
int pki_issue_from_csr(EVP_PKEY *ca_key, X509 *ca_cert, const char *csr_pem, size_t csr_len,
                       const struct pki_leaf_profile *p, X509 **out, char *err, size_t errlen);
/* Issues a leaf for a key the caller holds (the server's TLS certificate), same profile rules. */
int pki_issue_for_key(EVP_PKEY *ca_key, X509 *ca_cert, EVP_PKEY *subject_key,
                      const struct pki_leaf_profile *p, X509 **out, char *err, size_t errlen);

/* Parses a PEM public key (SubjectPublicKeyInfo), which must be EC P-256; id gets the hex SHA-256
 * of its DER encoding (the device ID), norm_pem (may be NULL) a normalised PEM (malloc'd). */
int pki_device_id_from_pem(const char *pem, size_t len, char id[65], char **norm_pem, char *err,
                           size_t errlen);

/* Parses a PEM SubjectPublicKeyInfo that must be EC P-256 (e.g. a registered identity key). Returns
 * a new key (EVP_PKEY_free) or NULL. */
EVP_PKEY *pki_pubkey_from_pem(const char *pem, size_t len);

/* A reusable parser of device public keys for bulk import: OpenSSL 3.0's decoder set-up dominates
 * the cost of parsing one key, so it is done once per batch. Not thread-safe: one parser per
 * request. pki_key_parser_new returns NULL on allocation failure; free with pki_key_parser_free
 * (accepts NULL). */
typedef struct pki_key_parser pki_key_parser;
pki_key_parser *pki_key_parser_new(void);
void pki_key_parser_free(pki_key_parser *p);
/* As pki_device_id_from_pem, with a parser. */
int pki_key_parser_device_id(pki_key_parser *p, const char *pem, size_t len, char id[65],
                             char **norm_pem, char *err, size_t errlen);

/* Creates the service root and server certificate under dir (mode 0700) unless they exist. hosts is
 * a comma-separated list of DNS names / IP addresses for the server certificate
 * ("localhost,127.0.0.1,::1"). *created is set to 1 when anything new was made. */
int pki_init_dir(const char *dir, const char *hosts, int *created, char *err, size_t errlen);

/* The tenant's device root, dir/tenants/<tenant_id>/root.{crt,key}; when it is missing and create
 * is set it is made (CN "Aegis Device Root <name>" shortened to 64 characters, O=<name>, pathLen 1,
 * 20 years), else -1. *cert_pem (malloc'd) gets its certificate; *created (may be NULL) 1 when it
 * was made now. Safe against concurrent callers (flock). */
int pki_tenant_root(const char *dir, int64_t tenant_id, const char *tenant_name, int create,
                    char **cert_pem, int *created, char *err, size_t errlen);
/* 1 if the PEM certificate cert_pem was signed by the certificate issuer_pem (names and signature),
 * else 0 (also when either does not parse). */
int pki_pem_issued_by(const char *cert_pem, const char *issuer_pem);

/* Creates a new issuing CA for a tenant under dir/tenants/<tenant_id>/ca-<n>.{crt,key}, signed by
 * the tenant's device root (made first if missing, as pki_tenant_root). key_name gets
 * "tenants/<id>/ca-<n>" (the signer's name for it); cert_pem (malloc'd) the certificate. */
int pki_tenant_ca_create(const char *dir, int64_t tenant_id, const char *tenant_name,
                         int64_t lifetime_s, char *key_name, size_t key_name_len, char **cert_pem,
                         int64_t *not_before, int64_t *not_after, char *err, size_t errlen);

#endif
