#include "devauth.h"

#include "devstate.h"
#include "log.h"
#include "pki.h"
#include "proto_identity.h"
#include "util.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 64
#define CACHE_TTL_NS (5ull * 1000000000ull)
/* A chain that does not verify reloads its tenant's CAs at most this often (per cache slot), so a
 * stranger's certificates cannot make every request read the database. */
#define RELOAD_MIN_NS (200ull * 1000000ull)
#define MAX_CHAIN 4

struct cache_slot {
    int64_t tenant_id;
    uint64_t loaded_ns; /* when the load that made trust began (util_mono_ns) */
    uint64_t reload_ns; /* when the last reload after a failed chain began */
    int reloading;      /* such a reload is running (outside the lock) */
    X509_STORE *trust;  /* the tenant's unexpired issuing CAs */
};

struct devauth {
    store *st;
    devstate *states; /* the devices' registry state, in memory (devstate.h) */
    pthread_mutex_t lock;
    pthread_cond_t reloaded; /* signalled when a reload ends; uses CLOCK_MONOTONIC */
    struct cache_slot slots[CACHE_SLOTS];
};

static enum devauth_result check_device(devauth *d, struct devauth_identity *id, char *err,
                                        size_t errlen);

devauth *
devauth_new(store *st)
{
    devauth *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->st = st;
    if ((d->states = devstate_new(st)) == NULL) {
        free(d);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->reloaded, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&d->lock, NULL);
    return d;
}

void
devauth_free(devauth *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < CACHE_SLOTS; i++)
        X509_STORE_free(d->slots[i].trust);
    devstate_free(d->states);
    pthread_cond_destroy(&d->reloaded);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* The one SAN URI of the certificate, parsed. */
static int
cert_identity(X509 *leaf, int64_t *tenant_id, char device_id[65])
{
    GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int rc = -1, found = 0;
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *s = gn->d.uniformResourceIdentifier;
        if (found++ || s->length <= 0 ||
            proto_identity_uri_parse((const char *)s->data, (size_t)s->length, tenant_id,
                                     device_id) != 0)
            goto out;
    }
    rc = found == 1 ? 0 : -1;
out:
    GENERAL_NAMES_free(names);
    return rc;
}

/* A new trust store holding the tenant's unexpired issuing CAs, or NULL. */
static X509_STORE *
load_trust(devauth *d, int64_t tenant_id, int64_t now)
{
    struct store_ca *cas = NULL;
    size_t n = 0;
    X509_STORE *trust = NULL;
    if (store_ca_load_all(d->st, tenant_id, now, &cas, &n) != STORE_OK || n == 0)
        goto out;
    trust = X509_STORE_new();
    if (trust == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        X509 *cert = pki_cert_from_pem(cas[i].cert_pem, strlen(cas[i].cert_pem));
        if (cert != NULL)
            X509_STORE_add_cert(trust, cert);
        X509_free(cert);
    }
out:
    store_ca_free(cas, n);
    return trust;
}

/* Caches trust (taking a reference) as the tenant's, loaded at loaded_ns, unless the slot already
 * holds a later load of that tenant. Called with the lock held. */
static void
slot_put(struct cache_slot *slot, int64_t tenant_id, X509_STORE *trust, uint64_t loaded_ns)
{
    if (slot->trust != NULL && slot->tenant_id == tenant_id && slot->loaded_ns > loaded_ns)
        return;
    X509_STORE_up_ref(trust);
    X509_STORE_free(slot->trust);
    slot->trust = trust;
    slot->tenant_id = tenant_id;
    slot->loaded_ns = loaded_ns;
}

/* The tenant's trust store, from the cache or freshly loaded; the caller frees its reference.
 * *loaded_ns gets when its load began. */
static X509_STORE *
tenant_trust(devauth *d, int64_t tenant_id, int64_t now, uint64_t *loaded_ns)
{
    uint64_t t = util_mono_ns();
    struct cache_slot *slot = &d->slots[(uint64_t)tenant_id % CACHE_SLOTS];
    X509_STORE *trust = NULL;
    pthread_mutex_lock(&d->lock);
    if (slot->trust != NULL && slot->tenant_id == tenant_id && t - slot->loaded_ns < CACHE_TTL_NS) {
        trust = slot->trust;
        X509_STORE_up_ref(trust);
        *loaded_ns = slot->loaded_ns;
    }
    pthread_mutex_unlock(&d->lock);
    if (trust != NULL)
        return trust;
    trust = load_trust(d, tenant_id, now);
    *loaded_ns = t;
    if (trust == NULL)
        return NULL;
    pthread_mutex_lock(&d->lock);
    slot_put(slot, tenant_id, trust, t);
    pthread_mutex_unlock(&d->lock);
    return trust;
}

/* Waits on the reload condition until the slot may reload again (or a reload ends). Called with
 * the lock held. */
static void
wait_reload(devauth *d, const struct cache_slot *slot)
{
    if (slot->reloading) {
        pthread_cond_wait(&d->reloaded, &d->lock);
        return;
    }
    uint64_t at = slot->reload_ns + RELOAD_MIN_NS;
    struct timespec ts = {.tv_sec = (time_t)(at / 1000000000ull),
                          .tv_nsec = (long)(at % 1000000000ull)};
    pthread_cond_timedwait(&d->reloaded, &d->lock, &ts);
}

/* A trust store of the tenant whose load began at or after since (a monotonic time), or NULL: the
 * cached one if it is that recent, else a fresh load. Reloads of a slot are at least RELOAD_MIN_NS
 * apart; a caller that comes sooner waits for its turn rather than being refused, so a CA committed
 * before since is always seen. The caller frees its reference. */
static X509_STORE *
tenant_trust_since(devauth *d, int64_t tenant_id, int64_t now, uint64_t since)
{
    struct cache_slot *slot = &d->slots[(uint64_t)tenant_id % CACHE_SLOTS];
    X509_STORE *trust = NULL;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        if (slot->trust != NULL && slot->tenant_id == tenant_id && slot->loaded_ns >= since) {
            trust = slot->trust;
            X509_STORE_up_ref(trust);
            break;
        }
        uint64_t t = util_mono_ns();
        if (!slot->reloading && t - slot->reload_ns >= RELOAD_MIN_NS) {
            slot->reloading = 1;
            slot->reload_ns = t;
            pthread_mutex_unlock(&d->lock);
            trust = load_trust(d, tenant_id, now);
            pthread_mutex_lock(&d->lock);
            slot->reloading = 0;
            if (trust != NULL)
                slot_put(slot, tenant_id, trust, t);
            pthread_cond_broadcast(&d->reloaded);
            break;
        }
        wait_reload(d, slot);
    }
    pthread_mutex_unlock(&d->lock);
    return trust;
}

static int64_t
asn1_time_unix(const ASN1_TIME *at)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(at, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void
serial_hex(X509 *cert, char *out, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, len, "%s", hex ? hex : "");
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    OPENSSL_free(hex);
    BN_free(bn);
}

/* Verifies leaf (with the peer's other certificates as untrusted intermediates) against trust at
 * now. */
static enum devauth_result
verify_chain(X509_STORE *trust, X509 *leaf, STACK_OF(X509) * untrusted, int64_t now, char *err,
             size_t errlen)
{
    enum devauth_result rc = DEVAUTH_BAD_CERT;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL || X509_STORE_CTX_init(ctx, trust, leaf, untrusted) != 1) {
        rc = DEVAUTH_ERROR;
        snprintf(err, errlen, "cannot verify");
        goto out;
    }
    /* The tenant's issuing CA is the trust anchor: the root is offline and not needed here. */
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
    if (X509_verify_cert(ctx) == 1) {
        rc = DEVAUTH_OK;
        goto out;
    }
    int e = X509_STORE_CTX_get_error(ctx);
    rc = (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID)
             ? DEVAUTH_EXPIRED
             : DEVAUTH_BAD_CERT;
    snprintf(err, errlen, "client certificate refused: %s", X509_verify_cert_error_string(e));
out:
    X509_STORE_CTX_free(ctx);
    return rc;
}

/* Parses the presented chain: *leaf and the rest as *untrusted. */
static int
parse_chain(const struct devauth_cert *chain, size_t n, X509 **leaf, STACK_OF(X509) * *untrusted)
{
    *untrusted = sk_X509_new_null();
    if (*untrusted == NULL)
        return -1;
    for (size_t i = 0; i < n && i < MAX_CHAIN; i++) {
        const unsigned char *p = chain[i].der;
        X509 *c = d2i_X509(NULL, &p, (long)chain[i].len);
        if (c == NULL || p != chain[i].der + chain[i].len) {
            X509_free(c);
            return -1;
        }
        if (i == 0)
            *leaf = c;
        else if (!sk_X509_push(*untrusted, c)) {
            X509_free(c);
            return -1;
        }
    }
    return *leaf != NULL ? 0 : -1;
}

/* Verifies the chain against the tenant's CAs. `aegisctl pki rotate` commits a new CA before
 * anything is issued from it, so when the chain fails against a trust store loaded before this
 * call began, the CAs are read once more: that load sees every CA of any certificate the service
 * (this daemon or another on the database) issued before the device connected. */
static enum devauth_result
verify_tenant_chain(devauth *d, int64_t tenant_id, X509 *leaf, STACK_OF(X509) * untrusted,
                    int64_t now, char *err, size_t errlen)
{
    enum devauth_result rc = DEVAUTH_BAD_CERT;
    uint64_t since = util_mono_ns(), loaded_ns = 0;
    X509_STORE *trust = tenant_trust(d, tenant_id, now, &loaded_ns);
    if (trust != NULL)
        rc = verify_chain(trust, leaf, untrusted, now, err, errlen);
    if (rc == DEVAUTH_BAD_CERT && trust != NULL && loaded_ns < since) {
        X509_STORE_free(trust);
        trust = tenant_trust_since(d, tenant_id, now, since);
        if (trust != NULL)
            rc = verify_chain(trust, leaf, untrusted, now, err, errlen);
    }
    if (trust == NULL)
        snprintf(err, errlen, "client certificate refused: unknown issuer");
    X509_STORE_free(trust);
    return rc;
}

/* After a refusal only the device the certificate names stays in *id (empty when it names
 * none), so that the refusal can be logged with it; nothing else of an unverified certificate. */
static void
keep_only_name(struct devauth_identity *id)
{
    char name[sizeof(id->device_id)];
    memcpy(name, id->device_id, sizeof(name));
    memset(id, 0, sizeof(*id));
    memcpy(id->device_id, name, sizeof(name));
}

enum devauth_result
devauth_verify(devauth *d, const struct devauth_cert *chain, size_t n, int64_t now,
               struct devauth_identity *id, char *err, size_t errlen)
{
    enum devauth_result rc = DEVAUTH_BAD_CERT;
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = NULL;

    memset(id, 0, sizeof(*id));
    if (n == 0) {
        snprintf(err, errlen, "a device certificate is required");
        return DEVAUTH_NO_CERT;
    }
    if (parse_chain(chain, n, &leaf, &untrusted) != 0) {
        snprintf(err, errlen, "unparsable client certificate");
        goto out;
    }
    if (cert_identity(leaf, &id->tenant_id, id->device_id) != 0) {
        snprintf(err, errlen, "client certificate does not name an Aegis device");
        goto out;
    }
    rc = verify_tenant_chain(d, id->tenant_id, leaf, untrusted, now, err, errlen);
    if (rc != DEVAUTH_OK)
        goto out;
    id->not_before = asn1_time_unix(X509_get0_notBefore(leaf));
    id->not_after = asn1_time_unix(X509_get0_notAfter(leaf));
    serial_hex(leaf, id->serial, sizeof(id->serial));
    rc = check_device(d, id, err, errlen);
out:
    X509_free(leaf);
    sk_X509_pop_free(untrusted, X509_free);
    if (rc != DEVAUTH_OK)
        keep_only_name(id);
    return rc;
}

/* The device's state now (devstate.h: from memory while no change was committed since it was
 * read): claimed by the certificate's tenant and not blocked. Fills group/product. */
static enum devauth_result
check_device(devauth *d, struct devauth_identity *id, char *err, size_t errlen)
{
    struct devstate_dev dev;
    enum devauth_result rc;
    int src = devstate_get(d->states, id->device_id, &dev);
    if (src == STORE_ERR) {
        rc = DEVAUTH_ERROR;
        snprintf(err, errlen, "database unavailable");
        goto out;
    }
    if (src != STORE_OK || dev.tenant_id != id->tenant_id) {
        rc = DEVAUTH_UNKNOWN_DEVICE;
        snprintf(err, errlen, "device is not registered to this tenant");
        goto out;
    }
    if (dev.blocked) {
        rc = DEVAUTH_BLOCKED;
        snprintf(err, errlen, "device is blocked");
        goto out;
    }
    /* A certificate counts only for the registration it was issued under: after an unclaim and a
     * new claim, or a delete and a new import, the device must attest again (a blocked device
     * would otherwise come back with its old certificate). Leaves are issued only to claimed
     * devices, at notBefore + PKI_BACKDATE_S. */
    if (id->not_before + PKI_BACKDATE_S < dev.claimed_at) {
        rc = DEVAUTH_UNKNOWN_DEVICE;
        snprintf(err, errlen, "certificate issued before the device's current registration");
        goto out;
    }
    id->group_id = dev.group_id;
    id->product_id = dev.product_id;
    rc = DEVAUTH_OK;
out:
    return rc;
}

enum devauth_result
devauth_verify_cached(devauth *d, struct devauth_conn *cache, const struct devauth_cert *chain,
                      size_t n, int64_t now, struct devauth_identity *id, char *err, size_t errlen)
{
    unsigned char h[32];
    if (cache == NULL || n == 0)
        return devauth_verify(d, chain, n, now, id, err, errlen);
    SHA256(chain[0].der, chain[0].len, h);
    if (!cache->valid || memcmp(h, cache->leaf_sha256, sizeof(h)) != 0) {
        enum devauth_result rc = devauth_verify(d, chain, n, now, id, err, errlen);
        /* Only what verified is cached, and the device's state is checked again on every
         * request. */
        cache->valid = rc == DEVAUTH_OK;
        if (cache->valid) {
            memcpy(cache->leaf_sha256, h, sizeof(h));
            cache->id = *id;
        }
        return rc;
    }
    *id = cache->id;
    if (now < id->not_before || now > id->not_after) {
        keep_only_name(id);
        snprintf(err, errlen, "client certificate refused: certificate has expired");
        return DEVAUTH_EXPIRED;
    }
    enum devauth_result rc = check_device(d, id, err, errlen);
    if (rc != DEVAUTH_OK)
        keep_only_name(id);
    return rc;
}

int
devauth_device_current(devauth *d, const char *device_id, int64_t tenant_id)
{
    struct devstate_dev dev;
    return devstate_get(d->states, device_id, &dev) == STORE_OK && tenant_id > 0 &&
           dev.tenant_id == tenant_id && !dev.blocked;
}
