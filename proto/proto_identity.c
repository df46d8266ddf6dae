/* proto_identity: the device identity URI (proto_identity.h). */
#include "proto_identity.h"

#include <stdio.h>
#include <string.h>

#define DEVICE_PART ":device:"

int
proto_identity_uri_format(int64_t tenant_id, const char *device_id, char *out, size_t outlen)
{
    if (tenant_id < 1 || device_id == NULL || !proto_digest_hex_ok(device_id, strlen(device_id)))
        return -1;
    int n = snprintf(out, outlen, PROTO_IDENTITY_URI_PREFIX "%lld" DEVICE_PART "%s",
                     (long long)tenant_id, device_id);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* The tenant number of s[0..len): 1..19 digits, no leading zero, at most INT64_MAX. */
static int
parse_tenant(const char *s, size_t len, int64_t *out)
{
    if (len < 1 || len > 19 || s[0] == '0')
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits fit in 64 bits unsigned */
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int
proto_identity_uri_parse(const char *uri, size_t len, int64_t *tenant_id,
                         char device_id[PROTO_HASH_HEX + 1])
{
    const size_t plen = strlen(PROTO_IDENTITY_URI_PREFIX), dlen = strlen(DEVICE_PART);
    if (uri == NULL || len < plen + 1 + dlen + PROTO_HASH_HEX ||
        memcmp(uri, PROTO_IDENTITY_URI_PREFIX, plen) != 0)
        return -1;
    /* The id has a fixed length, so the tenant is whatever lies between prefix and ":device:". */
    const char *id = uri + len - PROTO_HASH_HEX;
    const char *tenant = uri + plen;
    size_t tlen = (size_t)(id - dlen - tenant);
    int64_t t;
    if (memcmp(id - dlen, DEVICE_PART, dlen) != 0 || parse_tenant(tenant, tlen, &t) != 0 ||
        !proto_digest_hex_ok(id, PROTO_HASH_HEX))
        return -1;
    *tenant_id = t;
    memcpy(device_id, id, PROTO_HASH_HEX);
    device_id[PROTO_HASH_HEX] = '\0';
    return 0;
}
