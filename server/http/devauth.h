/* devauth: authenticates a device from the TLS client certificate chain it presented (mutual TLS).
 * The TLS layer (GnuTLS, in libmicrohttpd) proves possession of the certificate's key; devauth
 * decides whether the certificate names a device that may talk to us now:
 *   - its SAN URI is urn:aegis:tenant:<tid>:device:<id> (proto_identity_uri_parse);
 *   - it chains to one of that tenant's unexpired issuing CAs (old and new during rollover), is
 *     within its validity, and has the clientAuth purpose;
 *   - the device exists, is claimed by that tenant, and is not blocked at this moment (checked on
 *     every call, so a block takes effect on the next request; from memory, without a database
 *     read, while the device's state has not changed: devstate.h).
 * Tenant trust stores are cached for a few seconds. A chain that does not verify against a cached
 * store loaded before the call began is checked once more against the tenant's CAs read from the
 * database then, so a certificate from a CA just added by `aegisctl pki rotate` (by any process on
 * the database) is never refused. Such reloads are at most one per cache slot (tenant) per 200 ms;
 * a call that needs one sooner waits, at most that long, instead of being refused. Thread-safe. */
#ifndef AEGIS_DEVAUTH_H
#define AEGIS_DEVAUTH_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

enum devauth_result {
    DEVAUTH_OK = 0,
    DEVAUTH_NO_CERT = -1,        /* no client certificate */
    DEVAUTH_BAD_CERT = -2,       /* unparsable, not ours, wrong chain or purpose */
    DEVAUTH_EXPIRED = -3,        /* outside its validity */
    DEVAUTH_UNKNOWN_DEVICE = -4, /* not in the registry or not claimed by the tenant */
    DEVAUTH_BLOCKED = -5,
    DEVAUTH_ERROR = -6, /* database or allocation failure */
};

/* A DER certificate as presented by the peer, leaf first. */
struct devauth_cert {
    const unsigned char *der;
    size_t len;
};

struct devauth_identity {
    char device_id[65];
    int64_t tenant_id;
    int64_t group_id;   /* 0: none */
    int64_t product_id; /* 0: none */
    char serial[80];    /* certificate serial, hex */
    int64_t not_before;
    int64_t not_after;
};

/* What one TLS connection already proved: the peer's certificate chain cannot change within a
 * connection, so the chain is verified once per connection (keyed by the leaf's SHA-256); validity
 * and the device's state are still checked on every request. Zero-initialise; owned by the
 * connection. */
struct devauth_conn {
    int valid;
    unsigned char leaf_sha256[32];
    struct devauth_identity id;
};

typedef struct devauth devauth;

/* Returns NULL on allocation failure. st must outlive it. Free with devauth_free (accepts NULL). */
devauth *devauth_new(store *st);
void devauth_free(devauth *d);

/* Checks the chain (n certificates, leaf first) at time now. On DEVAUTH_OK fills *id; on a refusal
 * only id->device_id may be set: the device the certificate names (for the log), empty when it
 * names none. err gets a short reason for the log and the client (no secrets). */
enum devauth_result devauth_verify(devauth *d, const struct devauth_cert *chain, size_t n,
                                   int64_t now, struct devauth_identity *id, char *err,
                                   size_t errlen);
/* As devauth_verify, reusing (and filling) the connection's cache, which may be NULL. */
enum devauth_result devauth_verify_cached(devauth *d, struct devauth_conn *cache,
                                          const struct devauth_cert *chain, size_t n, int64_t now,
                                          struct devauth_identity *id, char *err, size_t errlen);

/* 1 when the device is, now, claimed by tenant_id and not blocked (devstate.h: from memory while
 * its state has not changed), else 0: what a credential other than a certificate (a recovery
 * grant) must still hold on every request, so that an unclaim, transfer, block or delete ends it at
 * once. */
int devauth_device_current(devauth *d, const char *device_id, int64_t tenant_id);

#endif
