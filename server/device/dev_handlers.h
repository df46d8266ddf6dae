/* dev_handlers: the device-facing handlers (server/device/), one line each in the route table
 * (server/routes.c). The challenge and evidence routes take no client certificate (the evidence
 * proves the device); every other device route is mutual TLS (devauth.h). */
#ifndef AEGIS_DEV_HANDLERS_H
#define AEGIS_DEV_HANDLERS_H

#include "api.h"

/* attestation (dev_attest.c, docs/protocol.md 3) */
void dev_attest_challenge(api_req *r);
void dev_attest(api_req *r);

/* identity (dev_identity.c, mutual TLS) */
void dev_whoami(api_req *r);
void dev_trust_bundle(api_req *r);

/* failure reporting upload (dev_telemetry.c, mutual TLS, docs/telemetry.md) */
void dev_telemetry(api_req *r);

/* TUF metadata files (dev_tuf.c, docs/update.md 2): the image repository's and the director
 * repository's, of the caller's tenant; also served on the manufacturer's token routes */
void dev_tuf_file(api_req *r);
void dev_tuf_director_file(api_req *r);
/* image download (dev_images.c, mutual TLS, docs/update.md 5): GET and HEAD */
void dev_image_get(api_req *r);
/* the same bytes at the image repository's consistent target path (tuf/targets/{component}/{file})
 */
void dev_tuf_target(api_req *r);
/* Streams the image sha256 of r->tenant_id (Range, ETag), for a caller already authorised. */
void dev_image_serve(api_req *r, const char *sha256);
/* the recovery path (dev_recovery.c, docs/update.md 8): bearer grant, no client certificate */
void dev_recovery_tuf_file(api_req *r);
void dev_recovery_director_file(api_req *r);
void dev_recovery_image(api_req *r);

#endif
