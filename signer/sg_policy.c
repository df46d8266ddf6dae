/* sg_policy: the rules of sg_policy.h. Every check here repeats one that aegisd already makes (or
 * should make): the signer cannot trust aegisd to have made it. */
#include "sg_policy.h"

#include "errbuf.h"
#include "proto_fields.h"
#include "proto_identity.h"
#include "util.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tenants whose buckets are remembered; one more evicts the least recently used. */
#define SG_BUCKETS 1024
/* The highest issuing CA number (as pki_tenant.c's TENANT_CA_MAX). */
#define SG_CA_INDEX_MAX 100000

#define TLS13_PAD 64
#define TLS13_LABEL "TLS 1.3, server CertificateVerify"
#define TLS12_RANDOMS 64
#define TLS12_NAMED_CURVE 3

struct bucket {
    int64_t tenant_id; /* 0: a free entry */
    double tokens;
    double last;   /* when tokens was computed (monotonic s) */
    uint64_t used; /* the policy's tick at the last take, for LRU eviction */
};

struct sg_policy {
    struct sg_policy_opts o;
    uint64_t tick;
    struct bucket b[SG_BUCKETS];
};

sg_policy *
sg_policy_new(const struct sg_policy_opts *o)
{
    if (o == NULL || o->max_lifetime_s <= 0 || !(o->issue_rate > 0) || !(o->issue_burst >= 1) ||
        !isfinite(o->issue_rate) || !isfinite(o->issue_burst))
        return NULL;
    sg_policy *p = calloc(1, sizeof(*p));
    if (p != NULL)
        p->o = *o;
    return p;
}

void
sg_policy_free(sg_policy *p)
{
    free(p);
}

/* Printable UTF-8 of 1..SG_TENANT_NAME_MAX bytes: no C0 or C1 control character, no DEL. */
int
sg_policy_tenant_name_ok(const char *s)
{
    size_t n = strnlen(s, SG_TENANT_NAME_MAX + 1);
    if (n == 0 || n > SG_TENANT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *c = (const unsigned char *)s + i;
        size_t k = util_utf8_char_len(s + i);
        if (k == 0 || c[0] < 0x20 || c[0] == 0x7f || (c[0] == 0xc2 && c[1] < 0xa0))
            return 0;
        i += k;
    }
    return 1;
}

/* name is exactly "tenants/<tenant_id>/ca-<n>", n in 1..SG_CA_INDEX_MAX without leading zeros. */
static int
tenant_ca_name(const char *name, int64_t tenant_id)
{
    char prefix[48];
    int64_t n;
    int len = snprintf(prefix, sizeof(prefix), "tenants/%lld/ca-", (long long)tenant_id);
    assert(len > 0 && (size_t)len < sizeof(prefix));
    return strncmp(name, prefix, (size_t)len) == 0 &&
           util_parse_i64(name + len, 1, SG_CA_INDEX_MAX, &n) == 0;
}

int
sg_policy_leaf(const sg_policy *p, const struct signer_leaf_req *req, int64_t now,
               struct pki_leaf_profile *out, char uri[160], char *err, size_t errlen)
{
    const char *why = NULL;
    if (req->tenant_id < 1)
        why = "tenant id must be at least 1";
    else if (req->tenant_name == NULL || !sg_policy_tenant_name_ok(req->tenant_name))
        why = "tenant name must be 1..128 bytes of printable UTF-8";
    else if (req->device_id == NULL ||
             !proto_digest_hex_ok(req->device_id, strnlen(req->device_id, PROTO_HASH_HEX + 1)))
        why = "device id must be 64 lowercase hex characters";
    else if (req->ca_key_name == NULL || !tenant_ca_name(req->ca_key_name, req->tenant_id))
        why = "CA key name must be tenants/<tenant id>/ca-<n> of the same tenant";
    else if (req->csr_pem == NULL || req->csr_len == 0 || req->csr_len > SG_CSR_MAX)
        why = "CSR must be 1..8192 bytes";
    else if (req->lifetime_s <= 0 || req->lifetime_s > p->o.max_lifetime_s)
        why = "lifetime must be positive and at most the signer's maximum";
    else if (proto_identity_uri_format(req->tenant_id, req->device_id, uri, 160) != 0)
        why = "identity URI does not fit";
    if (why != NULL) {
        errbuf_set(err, errlen, "signer policy: %s", why);
        return SIGNER_REFUSED;
    }
    *out = (struct pki_leaf_profile){.common_name = req->device_id,
                                     .organization = req->tenant_name,
                                     .san_uri = uri,
                                     .server_auth = 1,
                                     .client_auth = 1,
                                     .lifetime_s = req->lifetime_s,
                                     .now = now};
    return 0;
}

/* 1 when bucket b would be full again at now: forgetting it then gives its tenant nothing. */
static int
refilled(const sg_policy *p, const struct bucket *b, double now)
{
    return b->tenant_id == 0 || b->tokens + (now - b->last) * p->o.issue_rate >= p->o.issue_burst;
}

/* The tenant's bucket, found or made (full), in place of the least recently used bucket that is
 * full again. NULL when every bucket still counts spent tokens: evicting one would hand its tenant
 * a fresh burst (requests for a thousand made-up tenants must not reset a real one's). */
static struct bucket *
bucket_of(sg_policy *p, int64_t tenant_id, double now)
{
    struct bucket *lru = NULL;
    for (size_t i = 0; i < SG_BUCKETS; i++) {
        struct bucket *b = &p->b[i];
        if (b->tenant_id == tenant_id)
            return b;
        if (refilled(p, b, now) && (lru == NULL || b->used < lru->used))
            lru = b;
    }
    if (lru != NULL)
        *lru = (struct bucket){tenant_id, p->o.issue_burst, now, 0};
    return lru;
}

int
sg_policy_take(sg_policy *p, int64_t tenant_id, double now, int64_t *retry_after_s)
{
    if (tenant_id < 1) /* 0 marks a free entry; sg_policy_leaf refuses these anyway */
        return SIGNER_REFUSED;
    struct bucket *b = bucket_of(p, tenant_id, now);
    if (b == NULL) {
        *retry_after_s = 1;
        return SIGNER_BUSY;
    }
    b->used = ++p->tick;
    if (now > b->last) {
        double t = b->tokens + (now - b->last) * p->o.issue_rate;
        b->tokens = t < p->o.issue_burst ? t : p->o.issue_burst;
        b->last = now;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    /* whole seconds until a token, rounded up (no libm in the link) */
    double wait = (1 - b->tokens) / p->o.issue_rate;
    int64_t s = wait >= 86400 ? 86400 : (int64_t)wait;
    *retry_after_s = s < wait ? s + 1 : s < 1 ? 1 : s;
    return SIGNER_BUSY;
}

/* The role a TUF key's name lets it sign and that role's longest expiry, or NULL. */
static const char *
tuf_role(const char *key_name, int64_t *max_s)
{
    static const struct {
        const char *suffix, *type;
        int64_t max_s;
    } roles[] = {{"tuf-snapshot", "snapshot", SG_TUF_SNAPSHOT_MAX_S},
                 {"tuf-timestamp", "timestamp", SG_TUF_TIMESTAMP_MAX_S},
                 {"tuf-director", "targets", SG_TUF_DIRECTOR_MAX_S}};
    const char *last = strrchr(key_name, '/');
    last = last != NULL ? last + 1 : key_name;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(last, roles[i].suffix) == 0) {
            *max_s = roles[i].max_s;
            return roles[i].type;
        }
    }
    return NULL;
}

/* The rules of sg_policy_tuf over a parsed object: NULL, or which one failed. */
static const char *
tuf_refusal(json_t *j, const char *type, int64_t max_s, int64_t now)
{
    const char *t = json_string_value(json_object_get(j, "_type"));
    json_t *version = json_object_get(j, "version");
    const char *expires = json_string_value(json_object_get(j, "expires"));
    int64_t exp;
    if (!json_is_object(j))
        return "not a JSON object";
    if (t == NULL || strcmp(t, type) != 0)
        return "_type is not the key's role";
    if (strcmp(type, "targets") == 0 && !json_is_object(json_object_get(j, "custom")))
        return "director targets without a custom object";
    if (!json_is_integer(version) || json_integer_value(version) < 1)
        return "version is not a positive integer";
    if (expires == NULL || util_parse_rfc3339(expires, &exp) != 0)
        return "expires is not YYYY-MM-DDTHH:MM:SSZ";
    if (exp <= now)
        return "expires is not in the future";
    if (exp - now > max_s + SG_TUF_SLACK_S)
        return "expires is later than the role allows";
    return NULL;
}

int
sg_policy_tuf(const char *key_name, const unsigned char *msg, size_t len, int64_t now, char *err,
              size_t errlen)
{
    int64_t max_s = 0;
    const char *type = key_name != NULL ? tuf_role(key_name, &max_s) : NULL;
    if (type == NULL || msg == NULL) {
        errbuf_set(err, errlen, "signer policy: not an online TUF key");
        return SIGNER_REFUSED;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, &je);
    const char *why = j != NULL ? tuf_refusal(j, type, max_s, now) : "not JSON";
    json_decref(j);
    if (why != NULL) {
        errbuf_set(err, errlen, "signer policy: %s metadata for %s: %s", type, key_name, why);
        return SIGNER_REFUSED;
    }
    return 0;
}

/* The length of a public point (RFC 8422 uncompressed / RFC 7748) on a TLS named group, 0 for a
 * group the server does not offer. */
static size_t
tls12_point_len(unsigned curve)
{
    switch (curve) {
    case 23: /* secp256r1 */
        return 65;
    case 24: /* secp384r1 */
        return 97;
    case 29: /* x25519 */
        return 32;
    case 30: /* x448 */
        return 56;
    default:
        return 0;
    }
}

static int
is_tls13_verify(const unsigned char *d, size_t len)
{
    const size_t head = TLS13_PAD + sizeof(TLS13_LABEL); /* the label's NUL is the 0 separator */
    if (len != head + 32 && len != head + 48)
        return 0;
    for (size_t i = 0; i < TLS13_PAD; i++) {
        if (d[i] != 0x20)
            return 0;
    }
    return memcmp(d + TLS13_PAD, TLS13_LABEL, sizeof(TLS13_LABEL)) == 0;
}

static int
is_tls12_key_exchange(const unsigned char *d, size_t len)
{
    const size_t head = TLS12_RANDOMS + 4; /* curve type, curve id (2), point length */
    if (len <= head || d[TLS12_RANDOMS] != TLS12_NAMED_CURVE)
        return 0;
    size_t want = tls12_point_len((unsigned)d[TLS12_RANDOMS + 1] << 8 | d[TLS12_RANDOMS + 2]);
    return want != 0 && d[TLS12_RANDOMS + 3] == want && len == head + want;
}

int
sg_policy_tls(const unsigned char *data, size_t len, char *err, size_t errlen)
{
    if (data != NULL && len <= SG_TLS_DATA_MAX &&
        (is_tls13_verify(data, len) || is_tls12_key_exchange(data, len)))
        return 0;
    errbuf_set(err, errlen,
               "signer policy: not a TLS 1.3 server CertificateVerify nor TLS 1.2 ECDHE "
               "ServerKeyExchange content");
    return SIGNER_REFUSED;
}

int
sg_policy_ca_rollover(int64_t newest_not_after, int64_t now, char *err, size_t errlen)
{
    if (newest_not_after == 0 || newest_not_after - now <= SG_CA_ROLLOVER_WINDOW_S)
        return 0;
    errbuf_set(err, errlen,
               "signer policy: the tenant's newest CA is valid for more than %d days: no rollover",
               SG_CA_ROLLOVER_WINDOW_S / 86400);
    return SIGNER_REFUSED;
}
