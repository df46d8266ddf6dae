/* evidence: what the device adds to the protocol's encodings (proto/proto_event.h: events, the
 * composite digest, the 144-byte signed message): its device ID, the operational key and its
 * PKCS#10 CSR, and the evidence JSON of POST /v1/device/attest (docs/protocol.md).
 *
 * Errors: 0 / negative; pointers NULL. Returned memory is owned by the caller as each function
 * says. The identity key is only ever used through adev_keystore_sign. */
#ifndef ADEV_EVIDENCE_H
#define ADEV_EVIDENCE_H

#include "adev_hal.h"
#include "proto_event.h"

#include <stddef.h>
#include <stdint.h>

/* Device ID = SHA256(spki), the device's name for itself (docs/protocol.md section 1). */
int adev_device_id(const uint8_t spki[ADEV_SPKI_LEN], uint8_t id[PROTO_HASH_LEN]);

/* The signed message of section 3.2 for a CSR: proto_attest_message with SHA256(csr_der). */
int adev_attest_message(const uint8_t nonce[PROTO_HASH_LEN],
                        const uint8_t device_id[PROTO_HASH_LEN],
                        const uint8_t composite[PROTO_HASH_LEN], const uint8_t *csr_der,
                        size_t csr_len, uint8_t msg[PROTO_MSG_LEN]);

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
    uint8_t device_id[PROTO_HASH_LEN];
    uint8_t nonce[PROTO_HASH_LEN];
    uint8_t composite[PROTO_HASH_LEN];
    const struct proto_event *events;
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
char *adev_evidence_build(adev_keystore *ks, const uint8_t nonce[PROTO_HASH_LEN],
                          const struct proto_event *ev, size_t n, const adev_opkey *op,
                          uint8_t composite[PROTO_HASH_LEN]);

#endif
