/* proto_event: event encoding, composite and signed message (proto_event.h). */
#include "proto_event.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>

const uint8_t proto_msg_prefix[16] = {'A', 'E', 'G', 'I', 'S', '-', 'A', 'T',
                                      'T', 'E', 'S', 'T', '-', 'V', '1', 0};

int
proto_event_check(const struct proto_event *e)
{
    if (e == NULL || proto_stage_name(e->stage) == NULL)
        return -1;
    size_t nc = strnlen(e->component, sizeof(e->component));
    size_t nv = strnlen(e->version, sizeof(e->version));
    if (!proto_component_ok(e->component, nc) || !proto_version_ok(e->version, nv))
        return -1;
    return 0;
}

int
proto_event_stage_at(size_t i)
{
    return i == 0 ? PROTO_STAGE_BOOTLOADER : i == 1 ? PROTO_STAGE_OS : PROTO_STAGE_APP;
}

int
proto_event_log_check(const struct proto_event *ev, size_t n)
{
    if (ev == NULL || n < PROTO_EVENTS_MIN || n > PROTO_EVENTS_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (proto_event_check(&ev[i]) != 0 || ev[i].stage != proto_event_stage_at(i))
            return -1;
    }
    return 0;
}

int
proto_event_encode(const struct proto_event *e, uint8_t out[PROTO_EVENT_ENC_MAX], size_t *len)
{
    if (proto_event_check(e) != 0 || out == NULL || len == NULL)
        return -1;
    size_t nc = strlen(e->component), nv = strlen(e->version), o = 0;
    out[o++] = e->stage;
    out[o++] = (uint8_t)nc;
    memcpy(out + o, e->component, nc);
    o += nc;
    out[o++] = (uint8_t)nv;
    memcpy(out + o, e->version, nv);
    o += nv;
    out[o++] = (uint8_t)(e->svn >> 24);
    out[o++] = (uint8_t)(e->svn >> 16);
    out[o++] = (uint8_t)(e->svn >> 8);
    out[o++] = (uint8_t)e->svn;
    memcpy(out + o, e->digest, PROTO_HASH_LEN);
    *len = o + PROTO_HASH_LEN;
    return 0;
}

int
proto_sha256(const void *data, size_t len, uint8_t out[PROTO_HASH_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != PROTO_HASH_LEN) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int
proto_measurement(const struct proto_event *e, uint8_t out[PROTO_HASH_LEN])
{
    uint8_t enc[PROTO_EVENT_ENC_MAX];
    size_t n;
    if (proto_event_encode(e, enc, &n) != 0)
        return -1;
    return proto_sha256(enc, n, out);
}

int
proto_composite_extend(uint8_t composite[PROTO_HASH_LEN], const struct proto_event *e)
{
    uint8_t acc[2 * PROTO_HASH_LEN]; /* C_{i-1} || SHA256(enc(e_i)) */
    if (composite == NULL)
        return -1;
    memcpy(acc, composite, PROTO_HASH_LEN);
    if (proto_measurement(e, acc + PROTO_HASH_LEN) != 0 ||
        proto_sha256(acc, sizeof(acc), composite) != 0)
        return -1;
    return 0;
}

int
proto_composite(const struct proto_event *ev, size_t n, uint8_t out[PROTO_HASH_LEN])
{
    uint8_t c[PROTO_HASH_LEN];
    if ((ev == NULL && n > 0) || out == NULL)
        return -1;
    memset(c, 0, sizeof(c)); /* C_0 */
    for (size_t i = 0; i < n; i++) {
        if (proto_composite_extend(c, &ev[i]) != 0)
            return -1;
    }
    memcpy(out, c, PROTO_HASH_LEN);
    return 0;
}

void
proto_attest_message(const uint8_t nonce[PROTO_HASH_LEN], const uint8_t device_id[PROTO_HASH_LEN],
                     const uint8_t composite[PROTO_HASH_LEN],
                     const uint8_t csr_hash[PROTO_HASH_LEN], uint8_t out[PROTO_MSG_LEN])
{
    memcpy(out, proto_msg_prefix, sizeof(proto_msg_prefix));
    memcpy(out + 16, nonce, PROTO_HASH_LEN);
    memcpy(out + 48, device_id, PROTO_HASH_LEN);
    memcpy(out + 80, composite, PROTO_HASH_LEN);
    memcpy(out + 112, csr_hash, PROTO_HASH_LEN);
}
