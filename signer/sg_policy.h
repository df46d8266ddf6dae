/* sg_policy: what the signer signs, whatever aegisd asks (docs/security.md). Pure checks plus the
 * per-tenant issuance buckets; runs only inside the signer process. Not thread-safe: the signer's
 * worker is one thread. */
#ifndef AEGIS_SG_POLICY_H
#define AEGIS_SG_POLICY_H

#include "pki.h"
#include "signer.h"

#include <stddef.h>
#include <stdint.h>

/* The longest expiry each online TUF role may carry (docs/update.md "Keys"): the service's own
 * lifetimes (timestamp 1 day, snapshot 7 days, director 1 day) plus SG_TUF_SLACK_S. */
#define SG_TUF_TIMESTAMP_MAX_S 86400
#define SG_TUF_SNAPSHOT_MAX_S (7 * 86400)
#define SG_TUF_DIRECTOR_MAX_S 86400
#define SG_TUF_SLACK_S 3600
/* A CA rollover is allowed only when the tenant's newest CA ends within this window. */
#define SG_CA_ROLLOVER_WINDOW_S (30 * 86400)
/* The lifetime of a CA the signer makes at rollover (as `aegisctl pki rotate`). */
#define SG_CA_LIFETIME_S (2 * 365 * 86400LL)
/* Bounds of request fields. */
#define SG_TENANT_NAME_MAX 128
#define SG_CSR_MAX (8 * 1024)
#define SG_TLS_DATA_MAX 1024

struct sg_policy_opts {
    int64_t max_lifetime_s; /* > 0 */
    double issue_rate;      /* > 0: certificates per second per tenant */
    double issue_burst;     /* >= 1 */
};

typedef struct sg_policy sg_policy;

/* A policy (its buckets empty-full). NULL when out of memory or opts are out of range. Free with
 * sg_policy_free. */
sg_policy *sg_policy_new(const struct sg_policy_opts *o);
void sg_policy_free(sg_policy *p);

/* Checks a device-certificate request and fills *out, the profile to issue with, whose strings
 * point into req and uri (which must outlive *out). now is the signer's clock (unix s). Returns 0,
 * SIGNER_REFUSED (message in err: which field and rule). */
int sg_policy_leaf(const sg_policy *p, const struct signer_leaf_req *req, int64_t now,
                   struct pki_leaf_profile *out, char uri[160], char *err, size_t errlen);

/* 1 when s is a tenant name the signer writes into a certificate (a leaf's O, a rolled-over CA's
 * subject): 1..SG_TENANT_NAME_MAX bytes of UTF-8 without control characters, else 0. */
int sg_policy_tenant_name_ok(const char *s);

/* Takes one issuance from the tenant's bucket at time now (seconds, monotonic). Returns 0, or
 * SIGNER_BUSY when it is empty (*retry_after_s gets the seconds until a token), or SIGNER_REFUSED
 * for a tenant id below 1. A bounded table:
 * the least recently used tenant is forgotten (and starts full) when it is full. */
int sg_policy_take(sg_policy *p, int64_t tenant_id, double now, int64_t *retry_after_s);

/* Checks the canonical bytes of a TUF "signed" object that key_name is asked to sign: a JSON
 * object of the key's role (tuf-timestamp: "_type" timestamp; tuf-snapshot: snapshot;
 * tuf-director: targets with a "custom" object), a positive integer "version", and an "expires"
 * (RFC 3339 UTC) later than now and at most the role's maximum + SG_TUF_SLACK_S after now. Returns
 * 0 or SIGNER_REFUSED. */
int sg_policy_tuf(const char *key_name, const unsigned char *msg, size_t len, int64_t now,
                  char *err, size_t errlen);

/* Checks that data is what a TLS server signs with its key: a TLS 1.3 server CertificateVerify
 * content (64 spaces, "TLS 1.3, server CertificateVerify", 0, a transcript hash of 32 or 48 bytes)
 * or TLS 1.2 ECDHE ServerKeyExchange data (client random 32, server random 32, named_curve (3),
 * a curve id of secp256r1 (23), secp384r1 (24), x25519 (29) or x448 (30), a point length that is
 * that curve's (65, 97, 32, 56) and exactly that many bytes to the end). Returns 0 or
 * SIGNER_REFUSED. */
int sg_policy_tls(const unsigned char *data, size_t len, char *err, size_t errlen);

/* Whether a CA rollover is allowed: the tenant's newest CA (its notAfter newest_not_after, 0 when
 * it has none, which allows the tenant its first) ends within SG_CA_ROLLOVER_WINDOW_S of now.
 * Returns 0 or SIGNER_REFUSED. */
int sg_policy_ca_rollover(int64_t newest_not_after, int64_t now, char *err, size_t errlen);

#endif
