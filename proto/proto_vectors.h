/* proto_vectors: the protocol's test vector (docs/protocol.md sections 5 and 6), one copy for the
 * verifier's, the reference device's and the simulator's tests. Every value is what the formulas
 * of sections 2 and 3 give for the vector's inputs; the tests recompute them. The identity key is a
 * published test key: never use it on a device. */
#ifndef AEGIS_PROTO_VECTORS_H
#define AEGIS_PROTO_VECTORS_H

#include <stdint.h>

#define PROTO_VEC_EVENTS 3

/* One event of the vector, with its encoding, measurement and the composite after it (hex). */
struct proto_vec_event {
    uint8_t stage;
    const char *component, *version;
    uint32_t svn;
    const char *digest; /* SHA-256 of "<component> <version> image" */
    const char *enc, *measurement, *composite;
};

extern const struct proto_vec_event proto_vec_events[PROTO_VEC_EVENTS];
extern const char proto_vec_identity_key_pem[]; /* PKCS#8 P-256 private key */
extern const char proto_vec_identity_pub_pem[]; /* its SubjectPublicKeyInfo */
extern const char proto_vec_device_id[];        /* SHA-256 of the SPKI's DER, hex */
extern const char proto_vec_csr_bytes[];        /* the vector's stand-in for csr_der (14 bytes) */
extern const char proto_vec_csr_hash[];         /* SHA-256 of those bytes, hex */
/* The nonce is the bytes 0, 1, ..., 31. */
extern const char proto_vec_message_hex[];   /* the 144-byte signed message */
extern const char proto_vec_signature_hex[]; /* a DER ECDSA signature over it by the key */
extern const char proto_vec_signature_b64[]; /* the same signature as the evidence carries it */

#endif
