/* attest: the verifier side of device attestation (docs/protocol.md sections 2 and 3): strict
 * parsing of evidence, event encoding, the composite fold, the signed message, identity signature
 * and CSR checks. Pure functions over small structs: no SQL, no HTTP, no global state; OpenSSL 3
 * EVP for SHA-256 and ECDSA, jansson for JSON, libsodium for base64. Thread-safe.
 *
 * Errors: functions return 0 on success and -1 on failure with a reason in err (never key material
 * or a nonce), unless their comment says otherwise. */
#ifndef AEGIS_ATTEST_H
#define AEGIS_ATTEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define ATTEST_PROTOCOL_VERSION 1
#define ATTEST_EVENTS_MIN 3
#define ATTEST_EVENTS_MAX 8
#define ATTEST_COMPONENT_MAX 64
#define ATTEST_VERSION_MAX 32
#define ATTEST_CSR_MAX 8192     /* bytes of the CSR's PEM text */
#define ATTEST_CSR_DER_MAX 6144 /* bytes of its DER (PEM base64 of 8 KiB decodes to less) */
#define ATTEST_SIG_B64_MAX 200  /* characters of the base64 signature */
#define ATTEST_SIG_MAX 150      /* bytes it can decode to (a P-256 DER signature is <= 72) */
#define ATTEST_HASH_LEN 32
#define ATTEST_MSG_LEN 144
#define ATTEST_ENC_MAX (1 + 1 + ATTEST_COMPONENT_MAX + 1 + ATTEST_VERSION_MAX + 4 + ATTEST_HASH_LEN)
#define ATTEST_SERIAL_HEX_MAX 80

/* The 16-byte domain separator that starts the signed message: "AEGIS-ATTEST-V1" and a NUL. */
extern const unsigned char attest_msg_prefix[16];

enum attest_stage {
    ATTEST_STAGE_BOOTLOADER = 1,
    ATTEST_STAGE_OS = 2,
    ATTEST_STAGE_APP = 3,
};

/* One measured-boot event. */
struct attest_event {
    enum attest_stage stage;
    char component[ATTEST_COMPONENT_MAX + 1]; /* 1..64 of [a-z0-9._-] */
    char version[ATTEST_VERSION_MAX + 1];     /* 1..32 of 0x21..0x7e */
    uint32_t svn;
    unsigned char digest[ATTEST_HASH_LEN];
};

/* Parsed evidence. Fixed size (no allocation): fits on a thread's stack. */
struct attest_evidence {
    char device_id[65]; /* 64 lower-case hex */
    unsigned char device_id_raw[ATTEST_HASH_LEN];
    unsigned char nonce[ATTEST_HASH_LEN];
    unsigned char composite[ATTEST_HASH_LEN];
    struct attest_event events[ATTEST_EVENTS_MAX];
    size_t nevents;
    const char *csr_pem; /* borrowed from the parsed JSON body: lives as long as it */
    size_t csr_pem_len;
    unsigned char csr_der[ATTEST_CSR_DER_MAX]; /* the PEM block's DER bytes (not yet checked) */
    size_t csr_der_len;
    unsigned char sig[ATTEST_SIG_MAX];
    size_t sig_len;
};

/* "bootloader", "os" or "app". */
const char *attest_stage_name(enum attest_stage stage);

/* Field rules of section 2, for s of len bytes: 1 when acceptable, else 0. */
int attest_component_ok(const char *s, size_t len); /* 1..64 of [a-z0-9._-] */
int attest_version_ok(const char *s, size_t len);   /* 1..32 of 0x21..0x7e */
int attest_hex32_ok(const char *s, size_t len);     /* 64 lower-case hex */

/* Parses the body of POST /v1/device/attest exactly as section 3.2 says: every field required and
 * of its type, unknown fields refused (top level and events), version 1, hex lower-case and of its
 * length, 3..8 events in the order bootloader, os, app..., svn 0..2^32-1, csr one PEM "CERTIFICATE
 * REQUEST" block of at most ATTEST_CSR_MAX bytes, signature padded base64 of at most
 * ATTEST_SIG_B64_MAX characters. The CSR is only PEM-decoded here; attest_check_csr checks its
 * DER. On success ev->csr_pem points into body. */
int attest_parse(const json_t *body, struct attest_evidence *ev, char *err, size_t errlen);

/* enc(e) of section 2 into out (ATTEST_ENC_MAX bytes); returns its length. */
size_t attest_event_encode(const struct attest_event *e, unsigned char out[ATTEST_ENC_MAX]);
/* The event's measurement SHA256(enc(e)). */
int attest_measurement(const struct attest_event *e, unsigned char out[ATTEST_HASH_LEN]);
/* The composite digest of n events: C_0 = 0^32, C_i = SHA256(C_{i-1} || SHA256(enc(e_i))). */
int attest_composite(const struct attest_event *ev, size_t n, unsigned char out[ATTEST_HASH_LEN]);
/* The 144-byte signed message: prefix || nonce || device_id || composite || csr_hash. */
void attest_message(const unsigned char nonce[ATTEST_HASH_LEN],
                    const unsigned char device_id[ATTEST_HASH_LEN],
                    const unsigned char composite[ATTEST_HASH_LEN],
                    const unsigned char csr_hash[ATTEST_HASH_LEN],
                    unsigned char out[ATTEST_MSG_LEN]);
/* SHA-256 of len bytes. */
int attest_sha256(const void *data, size_t len, unsigned char out[ATTEST_HASH_LEN]);

/* Verifies an ECDSA P-256 / SHA-256 DER signature over msg with the PEM SubjectPublicKeyInfo
 * pubkey_pem (which must be EC P-256). Returns 1 when it verifies, 0 when it does not (or the key
 * is not a P-256 key), -1 on an internal error. Each call uses a fresh EVP_MD_CTX. */
int attest_verify_signature(const char *pubkey_pem, const unsigned char *msg, size_t msglen,
                            const unsigned char *sig, size_t siglen, char *err, size_t errlen);

/* Checks a CSR's DER: one PKCS#10 request and nothing after it, an EC P-256 key, and a
 * self-signature that verifies with it. */
int attest_check_csr(const unsigned char *der, size_t len, char *err, size_t errlen);

/* The serial (lower-case hex) and validity of a PEM certificate. */
int attest_cert_info(const char *pem, char serial[ATTEST_SERIAL_HEX_MAX], int64_t *not_before,
                     int64_t *not_after, char *err, size_t errlen);

/* The event log as JSON: [{"stage", "component", "version", "svn", "digest"}, ...] (new reference;
 * NULL when out of memory). */
json_t *attest_events_json(const struct attest_evidence *ev);

#endif
