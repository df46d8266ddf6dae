/* signer: aegisd's side of the key process (docs/architecture.md "The signer process"). aegisd
 * holds no private key: signer_start forks the signer (a supervisor that restarts its worker)
 * before any thread exists, and every call below is a request over one of a few sockets to it. The
 * signer alone reads the key files of the PKI directory and the TLS key; it enforces its own policy
 * (signer/sg_policy.h) whatever it is asked, and records every certificate it issues in its
 * append-only issuance log (signer/sg_ilog.h). Thread-safe: callers on any thread. */
#ifndef AEGIS_SIGNER_H
#define AEGIS_SIGNER_H

#include "ota_keys.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct signer signer;

/* Return codes of every call below besides 0. */
#define SIGNER_ERR (-1)         /* a malformed request or an internal failure (message in err) */
#define SIGNER_UNAVAILABLE (-2) /* no answer: the signer died, is restarting or timed out (503) */
#define SIGNER_REFUSED (-3)     /* its policy refused the request (message says which rule) */
#define SIGNER_BUSY (-4)        /* the tenant's issuance rate is spent (503 with Retry-After) */

/* The largest DER ECDSA P-256 signature. */
#define SIGNER_SIG_MAX 72

struct signer_opts {
    const char *pki_dir;      /* the key files: <pki_dir>/<key name>.{key,crt,ed25519} */
    const char *tls_key;      /* the server's TLS private key file (PEM, 0600) */
    const char *issuance_log; /* the signer's append-only issuance log (created 0600) */
    int64_t max_lifetime_s;   /* the longest device certificate it issues */
    double issue_rate;        /* device certificates per second per tenant (token bucket) */
    double issue_burst;       /* ... and the bucket's size */
    int64_t timeout_ms;       /* how long a caller waits for an answer before SIGNER_UNAVAILABLE */
    size_t channels;          /* sockets to the signer: callers served at once (others wait) */
    const char *tls_cert;     /* the TLS certificate chain file (PEM) the key is served with */
};

/* Forks the signer (call before any thread is started: it forks) and connects to it. The signer
 * exits when aegisd does. Returns NULL on error (message in err); free with signer_free. */
signer *signer_start(const struct signer_opts *o, char *err, size_t errlen);
/* Closes the sockets (the signer exits) and reaps it. Accepts NULL. */
void signer_free(signer *s);
/* 1 while the signer's supervisor runs, 0 once it has exited (it is reaped then). The supervisor
 * restarts its worker, but nothing restarts the supervisor: aegisd cannot fork a new signer (its
 * Landlock domain would bind the child too), so it stops and lets its service manager start both
 * again. Call from one thread. */
int signer_alive(signer *s);
/* The signer supervisor's pid (its worker is its only child). */
pid_t signer_pid(const signer *s);
/* How many times the signer's worker was restarted since start. */
uint64_t signer_restarts(const signer *s);

/* What a device certificate is issued for; the signer builds the documented leaf profile itself
 * (docs/protocol.md: CN = device_id, O = tenant_name, SAN URI urn:aegis:tenant:<id>:device:<id>,
 * EKU clientAuth + serverAuth, lifetime ≤ its max_lifetime_s) and refuses anything else. */
struct signer_leaf_req {
    int64_t tenant_id;
    const char *tenant_name; /* printable, ≤ 128 bytes */
    const char *device_id;   /* 64 lowercase hex */
    const char *ca_key_name; /* the tenant's issuing CA, "tenants/<tenant_id>/ca-<n>" */
    const char *csr_pem;     /* PKCS#10, EC P-256 key, ≤ 8 KiB */
    size_t csr_len;
    int64_t lifetime_s; /* asked for; more than max_lifetime_s is refused */
};

/* Issues a device certificate: *cert_pem gets the leaf (malloc'd, caller frees). Returns 0 or a
 * SIGNER_* code. */
int signer_issue_device_cert(signer *s, const struct signer_leaf_req *req, char **cert_pem,
                             char *err, size_t errlen);

/* Online ed25519 keys: the TUF roles the service signs for a tenant (docs/update.md "Keys"). Their
 * names end in "tuf-snapshot", "tuf-timestamp" or "tuf-director" (e.g. "tenants/7/tuf-snapshot");
 * made on first use when create is set. Each key signs only metadata of its own role with an expiry
 * within the role's bound, whatever the caller asks: so no request can make the signer sign the
 * image repository's targets or a root. */

/* The public half of the key (pub->has_secret is 0). Returns 0 or a SIGNER_* code. */
int signer_ed25519_public(signer *s, const char *key_name, int create, ota_key *pub, char *err,
                          size_t errlen);
/* Signs the canonical bytes of a "signed" object with key_name: sig_hex gets 128 hex characters,
 * keyid the key's id. Returns 0 or a SIGNER_* code. */
int signer_ed25519_sign(signer *s, const char *key_name, const unsigned char *msg, size_t len,
                        char sig_hex[OTA_SIG_HEX_LEN], char keyid[OTA_KEYID_HEX_LEN], char *err,
                        size_t errlen);

/* The TLS server key's signature (ECDSA P-256 with SHA-256, DER into sig, *siglen its length) over
 * data, which must be what a TLS server signs: a TLS 1.3 server CertificateVerify content or TLS
 * 1.2 ServerKeyExchange parameters. Returns 0 or a SIGNER_* code. */
int signer_tls_sign(signer *s, const unsigned char *data, size_t len,
                    unsigned char sig[SIGNER_SIG_MAX], size_t *siglen, char *err, size_t errlen);
/* The same signature over the SHA-256 digest of such data: what a GnuTLS external key is asked
 * (GnuTLS 3.7 hashes an ECDSA key's TLS 1.2 and 1.3 handshake data itself and hands its external
 * key only the digest, server/http/http_tlskey.c), so the content is no longer there to check.
 * Returns 0 or a SIGNER_* code. */
#define SIGNER_TLS_DIGEST_LEN 32
int signer_tls_sign_digest(signer *s, const unsigned char digest[SIGNER_TLS_DIGEST_LEN],
                           unsigned char sig[SIGNER_SIG_MAX], size_t *siglen, char *err,
                           size_t errlen);

/* CA rollover: a new issuing CA for the tenant, made and kept by the signer under the tenant's
 * device root, allowed only when the tenant's newest CA ends within the rollover window
 * (sg_policy.h). *key_name and *cert_pem (malloc'd, caller frees) name it for the store. Returns 0
 * or a SIGNER_* code. */
int signer_ca_rollover(signer *s, int64_t tenant_id, const char *tenant_name, char **key_name,
                       char **cert_pem, char *err, size_t errlen);

/* Renewal of the server's TLS identity (SIGHUP): the signer reads its TLS key file and certificate
 * chain file again and checks that the key is EC P-256 and the chain's leaf its certificate; if
 * so it hands back the chain (*chain_pem, malloc'd, caller frees) and, when commit is set, signs
 * with the new key from then on (aegisd then serves the chain to new handshakes). Otherwise it
 * keeps the old key (SIGNER_ERR, message in err). Returns 0 or a SIGNER_* code. */
int signer_tls_reload(signer *s, int commit, char **chain_pem, char *err, size_t errlen);

#endif
