/* attest: the verifier's side of device attestation (docs/protocol.md section 3): strict parsing
 * of evidence, the identity signature, CSR checks, certificate facts and the event log as JSON. The
 * wire rules (field syntax, event encoding, composite, signed message, SHA-256) are proto/'s
 * (proto_fields.h, proto_event.h). Pure functions over small structs: no SQL, no HTTP, no global
 * state; OpenSSL 3 EVP for ECDSA, jansson for JSON, libsodium for base64. Thread-safe.
 *
 * Errors: functions return 0 on success and -1 on failure with a reason in err (never key material
 * or a nonce), unless their comment says otherwise. */
#ifndef AEGIS_ATTEST_H
#define AEGIS_ATTEST_H

#include "proto_event.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The wire's limits are proto_event.h's (PROTO_EVIDENCE_*); these are what they decode to. */
#define ATTEST_CSR_DER_MAX                                                                         \
    (PROTO_EVIDENCE_CSR_MAX / 4 * 3)                        /* base64 of the PEM decodes to less   \
                                                             */
#define ATTEST_SIG_MAX (PROTO_EVIDENCE_SIG_B64_MAX / 4 * 3) /* a P-256 DER signature is <= 72 */
#define ATTEST_SERIAL_HEX_MAX 80

/* Parsed evidence. Fixed size (no allocation): fits on a thread's stack. */
struct attest_evidence {
    char device_id[PROTO_HASH_HEX + 1]; /* 64 lower-case hex */
    uint8_t device_id_raw[PROTO_HASH_LEN];
    uint8_t nonce[PROTO_HASH_LEN];
    uint8_t composite[PROTO_HASH_LEN];
    struct proto_event events[PROTO_EVENTS_MAX];
    size_t nevents;
    const char *csr_pem; /* borrowed from the parsed JSON body: lives as long as it */
    size_t csr_pem_len;
    uint8_t csr_der[ATTEST_CSR_DER_MAX]; /* the PEM block's DER bytes (not yet checked) */
    size_t csr_der_len;
    uint8_t sig[ATTEST_SIG_MAX];
    size_t sig_len;
};

/* Parses the body of POST /v1/device/attest exactly as section 3.2 says: every field required and
 * of its type, unknown fields refused (top level and events), version 1, hex lower-case and of its
 * length, 3..8 events in the order bootloader, os, app..., svn 0..2^32-1, csr one PEM "CERTIFICATE
 * REQUEST" block of at most PROTO_EVIDENCE_CSR_MAX bytes, signature padded base64 of at most
 * PROTO_EVIDENCE_SIG_B64_MAX characters. The CSR is only PEM-decoded here; attest_check_csr checks
 * its DER. On success ev->csr_pem points into body, and every event passes proto_event_log_check.
 */
int attest_parse(const json_t *body, struct attest_evidence *ev, char *err, size_t errlen);

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
