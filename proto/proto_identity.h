/* proto_identity: the device identity URI "urn:aegis:tenant:<tenant>:device:<device id>" that a
 * device certificate carries as its one SAN URI (docs/protocol.md section 3.4). The service writes
 * it when it issues the certificate (server/device/dev_attest.c) and reads it back when the device
 * presents it (server/http/devauth.c); devices read it from each other's certificates
 * (device-sim/d2d.c). The tenant is a decimal 1..INT64_MAX without leading zeros, the device id a
 * lower-case digest hex (proto_digest_hex_ok). Pure functions, thread-safe, no allocation. */
#ifndef AEGIS_PROTO_IDENTITY_H
#define AEGIS_PROTO_IDENTITY_H

#include "proto_fields.h"

#include <stddef.h>
#include <stdint.h>

#define PROTO_IDENTITY_URI_PREFIX "urn:aegis:tenant:"
/* The longest URI: prefix, 19 digits, ":device:", the id (without the NUL). */
#define PROTO_IDENTITY_URI_MAX (sizeof(PROTO_IDENTITY_URI_PREFIX) - 1 + 19 + 8 + PROTO_HASH_HEX)

/* Writes the URI of (tenant_id, device_id) into out (outlen bytes, NUL-terminated). Returns 0, or
 * -1 when tenant_id < 1, device_id is not a digest hex, or out is too small. */
int proto_identity_uri_format(int64_t tenant_id, const char *device_id, char *out, size_t outlen);
/* Parses uri[0..len) (no NUL needed; an embedded NUL is refused). On 0 fills *tenant_id and
 * device_id (NUL-terminated); -1 when it is not exactly such a URI. */
int proto_identity_uri_parse(const char *uri, size_t len, int64_t *tenant_id,
                             char device_id[PROTO_HASH_HEX + 1]);

#endif
