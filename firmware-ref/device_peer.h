/* device_peer: device-to-device mutual TLS exactly as docs/protocol.md §4 "Trust" says. A device
 * presents its certificate and chain with its operational key, trusts exactly the certificates of
 * its own tenant's trust bundle (the tenant's device root and issuing CAs; never the service root),
 * requires the peer's certificate, and after the handshake accepts the peer only if its SAN URI
 * names a device of its own tenant. */
#ifndef ADEV_DEVICE_PEER_H
#define ADEV_DEVICE_PEER_H

#include "device.h"

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#define ADEV_PEER_URI_MAX 256

/* The device's own identity, read from its certificate. */
struct adev_peer_self {
    int64_t tenant_id;
    char device_id[65];
};

/* The tenant and device id of a certificate's one Aegis SAN URI (the first certificate of
 * cert_pem). 0, or -1 when there is none or more than one URI. */
int adev_cert_identity(const char *cert_pem, int64_t *tenant, char id[65]);

/* A TLS context (client and server) for talking to peer devices with credential c: chain, key,
 * trust store of the bundle, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, TLS 1.2 at least.
 * *self gets the identity of c's certificate. Returns a new SSL_CTX (SSL_CTX_free), or NULL with a
 * message in err. */
SSL_CTX *adev_peer_ctx_new(const struct adev_credential *c, struct adev_peer_self *self, char *err,
                           size_t errlen);

/* After a completed handshake on ssl: 0 when the peer presented a certificate that verified and
 * whose one Aegis SAN URI names a device of self's tenant (its URI into uri), else -1 with the
 * reason in err. */
int adev_peer_check(SSL *ssl, const struct adev_peer_self *self, char *uri, size_t urilen,
                    char *err, size_t errlen);

#endif
