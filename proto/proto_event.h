/* proto_event: the byte-exact encodings of attestation (docs/protocol.md sections 2 and 3.2): a
 * measured-boot event, its measurement, the composite digest of the event log, and the 144-byte
 * message the identity key signs. One definition for the verifier (server/device/attest.c), the
 * reference device (firmware-ref/evidence.c), the simulator and the tests. OpenSSL 3 for SHA-256.
 * Errors: 0 / -1. Thread-safe, no allocation. */
#ifndef AEGIS_PROTO_EVENT_H
#define AEGIS_PROTO_EVENT_H

#include "proto_fields.h"

#include <stddef.h>
#include <stdint.h>

#define PROTO_EVENTS_MIN 3 /* bootloader, os, and at least one app */
#define PROTO_EVENTS_MAX 8
#define PROTO_APPS_MAX (PROTO_EVENTS_MAX - 2)
/* enc(e): u8 stage, u8 len, component, u8 len, version, u32 svn (big-endian), digest */
#define PROTO_EVENT_ENC_MAX                                                                        \
    (1 + 1 + PROTO_COMPONENT_MAX + 1 + PROTO_VERSION_MAX + 4 + PROTO_HASH_LEN)
#define PROTO_MSG_LEN 144 /* prefix || nonce || device_id || composite || SHA256(csr_der) */
/* The evidence body of POST /v1/device/attest (section 3.2). */
#define PROTO_EVIDENCE_BODY_MAX (64 * 1024) /* bytes of the body */
#define PROTO_EVIDENCE_CSR_MAX 8192         /* bytes of "csr", the CSR's PEM text */
#define PROTO_EVIDENCE_SIG_B64_MAX 200      /* characters of "signature", padded base64 */

/* The 16 bytes that start the signed message: "AEGIS-ATTEST-V1" and a 00 byte. */
extern const uint8_t proto_msg_prefix[16];

/* One measured-boot event (section 2). */
struct proto_event {
    uint8_t stage; /* enum proto_stage */
    char component[PROTO_COMPONENT_MAX + 1];
    char version[PROTO_VERSION_MAX + 1];
    uint32_t svn;
    uint8_t digest[PROTO_HASH_LEN]; /* SHA-256 of the image */
};

/* 0 when the event's fields follow section 2 (stage, component and version syntax). */
int proto_event_check(const struct proto_event *e);
/* The stage event i of a log must have: the bootloader, then the os, then apps. */
int proto_event_stage_at(size_t i);
/* 0 when the log is well formed: valid events, one bootloader, then one os, then 1..6 apps. */
int proto_event_log_check(const struct proto_event *ev, size_t n);
/* enc(e) into out (PROTO_EVENT_ENC_MAX bytes); *len gets its length. -1 if e is not valid. */
int proto_event_encode(const struct proto_event *e, uint8_t out[PROTO_EVENT_ENC_MAX], size_t *len);
/* The event's measurement, SHA256(enc(e)). */
int proto_measurement(const struct proto_event *e, uint8_t out[PROTO_HASH_LEN]);
/* One extend step, in place: composite = SHA256(composite || SHA256(enc(e))). */
int proto_composite_extend(uint8_t composite[PROTO_HASH_LEN], const struct proto_event *e);
/* The composite of ev[0..n): C_0 = 0^32, C_i = SHA256(C_{i-1} || SHA256(enc(e_i))). The events
 * must each be valid (the log rules are not checked, so partial logs fold too). */
int proto_composite(const struct proto_event *ev, size_t n, uint8_t out[PROTO_HASH_LEN]);
/* The signed message: prefix || nonce || device_id || composite || csr_hash. */
void proto_attest_message(const uint8_t nonce[PROTO_HASH_LEN],
                          const uint8_t device_id[PROTO_HASH_LEN],
                          const uint8_t composite[PROTO_HASH_LEN],
                          const uint8_t csr_hash[PROTO_HASH_LEN], uint8_t out[PROTO_MSG_LEN]);
/* SHA-256 of len bytes of data. */
int proto_sha256(const void *data, size_t len, uint8_t out[PROTO_HASH_LEN]);

#endif
