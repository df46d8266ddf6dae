/* evidence: the byte-exact encodings of the Aegis device protocol, version 1 (docs/protocol.md):
 * measurement events, the composite digest, the 144-byte signed message, the operational key and
 * its PKCS#10 CSR, and the evidence JSON of POST /v1/device/attest.
 *
 * Errors: 0 / negative; pointers NULL. Returned memory is owned by the caller as each function
 * says. The identity key is only ever used through adev_keystore_sign. */
#ifndef ADEV_EVIDENCE_H
#define ADEV_EVIDENCE_H

#include "adev_hal.h"

#include <stddef.h>
#include <stdint.h>

enum adev_stage {
    ADEV_STAGE_BOOTLOADER = 1,
    ADEV_STAGE_OS = 2,
    ADEV_STAGE_APP = 3,
};

#define ADEV_COMPONENT_MAX 64
#define ADEV_VERSION_MAX 32
#define ADEV_EVENTS_MIN 3
#define ADEV_EVENTS_MAX 8
#define ADEV_APPS_MAX 6
/* u8 stage, u8 len, component, u8 len, version, u32 svn, digest */
#define ADEV_EVENT_ENC_MAX (1 + 1 + ADEV_COMPONENT_MAX + 1 + ADEV_VERSION_MAX + 4 + 32)
#define ADEV_MSG_LEN 144
#define ADEV_MSG_TAG "AEGIS-ATTEST-V1" /* followed by one 00 byte: 16 bytes */
#define ADEV_ID_HEX 65                 /* 64 hex characters and a NUL */

/* One measurement (section 2). */
struct adev_event {
    uint8_t stage; /* enum adev_stage */
    char component[ADEV_COMPONENT_MAX + 1];
    char version[ADEV_VERSION_MAX + 1];
    uint32_t svn;
    uint8_t digest[32]; /* SHA-256 of the image */
};

/* "bootloader", "os", "app", or NULL for an unknown code. */
const char *adev_stage_name(int stage);
/* The stage code of a name, or -1. */
int adev_stage_parse(const char *name);
/* 0 when the event's fields follow section 2 (stage, component and version syntax). */
int adev_event_check(const struct adev_event *e);
/* 0 when the log is well formed: valid events, exactly one bootloader, then exactly one os, then
 * 1-6 apps. */
int adev_event_log_check(const struct adev_event *ev, size_t n);
/* enc(e) into out (cap >= ADEV_EVENT_ENC_MAX); *len gets its length. */
int adev_event_encode(const struct adev_event *e, uint8_t *out, size_t cap, size_t *len);
/* One extend step, in place: composite = SHA256(composite || SHA256(enc(e))). */
int adev_composite_extend(uint8_t composite[32], const struct adev_event *e);
/* The composite digest of ev[0..n): C_0 = 0^32, C_i = SHA256(C_{i-1} || SHA256(enc(e_i))). The
 * events are checked with adev_event_check (not the log rules, so partial logs fold too). */
int adev_composite(const struct adev_event *ev, size_t n, uint8_t out[32]);

/* SHA-256 of data (a convenience over OpenSSL). */
int adev_sha256(const void *data, size_t len, uint8_t out[32]);
/* Device ID = SHA256(spki). */
int adev_device_id(const uint8_t spki[ADEV_SPKI_LEN], uint8_t id[32]);
/* Lower-case hex of in[0..n) into out (2n+1 bytes, NUL-terminated). */
void adev_hex(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2n hex characters (either case) of hex into out[0..n). */
int adev_unhex(const char *hex, uint8_t *out, size_t n);

/* The signed message of section 3.2:
 * "AEGIS-ATTEST-V1" 00 || nonce || device_id || composite || SHA256(csr_der). */
int adev_attest_message(const uint8_t nonce[32], const uint8_t device_id[32],
                        const uint8_t composite[32], const uint8_t *csr_der, size_t csr_len,
                        uint8_t msg[ADEV_MSG_LEN]);

/* The operational key: a fresh P-256 key per certificate request. It is kept in device storage
 * (secret) next to its certificate; unlike the identity key it is an ordinary software key. */
typedef struct adev_opkey adev_opkey;

adev_opkey *adev_opkey_generate(void);
/* Parses a PEM private key, which must be EC P-256. */
adev_opkey *adev_opkey_from_pem(const char *pem, size_t len);
/* The key as PKCS#8 PEM (a secret: malloc'd, NUL-terminated; free with adev_free_secret_str). */
char *adev_opkey_pem(const adev_opkey *k);
/* A PKCS#10 CSR signed by the key, subject CN=cn (the service ignores subject and extensions).
 * *pem (malloc'd, NUL-terminated) and *der (malloc'd, *der_len bytes) are owned by the caller;
 * either output pointer may be NULL when not wanted. */
int adev_opkey_csr(const adev_opkey *k, const char *cn, char **pem, uint8_t **der, size_t *der_len);
/* 1 when the first certificate of cert_pem carries this key's public half, 0 when not, -1 on a
 * parse error. */
int adev_opkey_matches_cert(const adev_opkey *k, const char *cert_pem);
void adev_opkey_free(adev_opkey *k);
/* The validity period (unix seconds) of the first certificate of cert_pem. */
int adev_cert_validity(const char *cert_pem, int64_t *not_before, int64_t *not_after);
/* Wipes and frees a NUL-terminated secret string (accepts NULL). */
void adev_free_secret_str(char *s);

/* The evidence of section 3.2, all inputs borrowed. */
struct adev_evidence {
    uint8_t device_id[32];
    uint8_t nonce[32];
    uint8_t composite[32];
    const struct adev_event *events;
    size_t n_events;
    const char *csr_pem;
    const uint8_t *signature; /* DER ECDSA signature over the message */
    size_t sig_len;
};

/* The JSON body of POST /v1/device/attest (compact, malloc'd, NUL-terminated; caller frees). */
char *adev_evidence_json(const struct adev_evidence *ev);

/* Everything at once: checks the log, folds the composite, makes the CSR of op, signs the message
 * with the identity key in ks, and returns the evidence JSON (malloc'd; caller frees). composite
 * (may be NULL) gets the composite digest. */
char *adev_evidence_build(adev_keystore *ks, const uint8_t nonce[32], const struct adev_event *ev,
                          size_t n, const adev_opkey *op, uint8_t composite[32]);

#endif
