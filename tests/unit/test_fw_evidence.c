/* Unit tests of firmware-ref/evidence.c: the protocol's test vector (docs/protocol.md section 6:
 * event encoding, composite fold, device ID, the 144-byte message, the evidence body), event and
 * log rules, the operational key and CSR, and the evidence JSON shape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "evidence.h"
#include "hal_host.h"
#include "proto_vectors.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- the test vector of docs/protocol.md section 6 (proto/proto_vectors.h), recomputed here
 * independently from the formulas of sections 2 and 3 --- */

/* Decodes a vector's hex, which is always lower case. */
static int
unhex(const char *hex, uint8_t *out, size_t n)
{
    return proto_unhex(hex, strlen(hex), out, n, 1);
}

static void
assert_hex(const uint8_t *b, size_t n, const char *want)
{
    char got[2 * 256 + 1];
    assert_true(n <= 256);
    proto_hex(b, n, got);
    assert_string_equal(got, want);
}

static void
vector_events(struct proto_event ev[3])
{
    memset(ev, 0, 3 * sizeof(*ev));
    for (int i = 0; i < 3; i++) {
        char img[128];
        ev[i].stage = proto_vec_events[i].stage;
        snprintf(ev[i].component, sizeof(ev[i].component), "%s", proto_vec_events[i].component);
        snprintf(ev[i].version, sizeof(ev[i].version), "%s", proto_vec_events[i].version);
        ev[i].svn = proto_vec_events[i].svn;
        snprintf(img, sizeof(img), "%s %s image", proto_vec_events[i].component,
                 proto_vec_events[i].version);
        assert_int_equal(proto_sha256(img, strlen(img), ev[i].digest), 0);
        assert_hex(ev[i].digest, 32, proto_vec_events[i].digest);
    }
}

static void
test_vector_encoding_and_fold(void **state)
{
    (void)state;
    struct proto_event ev[3];
    uint8_t enc[PROTO_EVENT_ENC_MAX], h[32], c[32];
    size_t len;

    vector_events(ev);
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(proto_event_encode(&ev[i], enc, &len), 0);
        assert_hex(enc, len, proto_vec_events[i].enc);
        assert_int_equal(proto_sha256(enc, len, h), 0);
        assert_hex(h, 32, proto_vec_events[i].measurement);
        /* the incremental extend and the whole-log fold agree at every step */
        assert_int_equal(proto_composite_extend(c, &ev[i]), 0);
        assert_hex(c, 32, proto_vec_events[i].composite);
        assert_int_equal(proto_composite(ev, (size_t)i + 1, h), 0);
        assert_hex(h, 32, proto_vec_events[i].composite);
    }
    /* C_0 is 32 zero bytes */
    assert_int_equal(proto_composite(ev, 0, h), 0);
    uint8_t zero[32] = {0};
    assert_memory_equal(h, zero, 32);
    /* an invalid event has no encoding */
    ev[0].stage = 0;
    assert_int_equal(proto_event_encode(&ev[0], enc, &len), -1);
}

static void
test_vector_device_id_and_message(void **state)
{
    (void)state;
    BIO *bio = BIO_new_mem_buf(proto_vec_identity_pub_pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(pub);
    uint8_t spki[ADEV_SPKI_LEN], *p = spki, id[32], nonce[32], comp[32], msg[PROTO_MSG_LEN];
    assert_int_equal(i2d_PUBKEY(pub, NULL), ADEV_SPKI_LEN);
    assert_int_equal(i2d_PUBKEY(pub, &p), ADEV_SPKI_LEN);
    assert_int_equal(adev_device_id(spki, id), 0);
    assert_hex(id, 32, proto_vec_device_id);

    for (int i = 0; i < 32; i++)
        nonce[i] = (uint8_t)i;
    assert_int_equal(unhex(proto_vec_events[2].composite, comp, 32), 0);
    assert_int_equal(adev_attest_message(nonce, id, comp, (const uint8_t *)proto_vec_csr_bytes,
                                         strlen(proto_vec_csr_bytes), msg),
                     0);
    assert_hex(msg, sizeof(msg), proto_vec_message_hex);
    assert_memory_equal(msg, "AEGIS-ATTEST-V1", 16); /* with its NUL */
    assert_memory_equal(msg, proto_msg_prefix, 16);
    assert_int_equal(proto_sha256(proto_vec_csr_bytes, strlen(proto_vec_csr_bytes), comp), 0);
    assert_hex(comp, 32, proto_vec_csr_hash);
    assert_int_equal(adev_attest_message(nonce, id, comp, NULL, 0, msg), -1);
    EVP_PKEY_free(pub);
    BIO_free(bio);
}

static EVP_PKEY *
vector_public_key(void)
{
    BIO *bio = BIO_new_mem_buf(proto_vec_identity_pub_pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pub);
    return pub;
}

static int
verifies(EVP_PKEY *pub, const uint8_t *sig, size_t sig_len, const uint8_t *msg, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    int ok = EVP_DigestVerify(md, sig, sig_len, msg, len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* The vector's key in a host key store: the same device ID, and signatures over the vector's
 * message that verify with the published public key (as the published signature does). */
static void
test_vector_key_store_signature(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_fw_evidence.XXXXXX", path[128];
    uint8_t spki[ADEV_SPKI_LEN], id[32], msg[PROTO_MSG_LEN], sig[ADEV_SIG_MAX], pub_sig[128];
    size_t sig_len = 0;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/keystore", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/keystore/identity.key", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fchmod(fileno(f), 0600), 0);
    fputs(proto_vec_identity_key_pem, f);
    fclose(f);
    adev_keystore *ks = adev_host_keystore_open(dir);
    assert_non_null(ks);
    assert_int_equal(adev_keystore_public_der(ks, spki), 0);
    assert_int_equal(adev_device_id(spki, id), 0);
    assert_hex(id, 32, proto_vec_device_id);

    assert_int_equal(unhex(proto_vec_message_hex, msg, sizeof(msg)), 0);
    assert_int_equal(adev_keystore_sign(ks, msg, sizeof(msg), sig, sizeof(sig), &sig_len), 0);
    EVP_PKEY *pub = vector_public_key();
    assert_true(verifies(pub, sig, sig_len, msg, sizeof(msg)));
    size_t n = strlen(proto_vec_signature_hex) / 2;
    assert_int_equal(unhex(proto_vec_signature_hex, pub_sig, n), 0);
    assert_true(verifies(pub, pub_sig, n, msg, sizeof(msg)));
    msg[143] ^= 1;
    assert_false(verifies(pub, sig, sig_len, msg, sizeof(msg)));
    EVP_PKEY_free(pub);
    adev_keystore_free(ks);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The evidence body of section 6, field for field, from the vector's values and signature. */
static void
test_vector_evidence_body(void **state)
{
    (void)state;
    struct proto_event ev[3];
    struct adev_evidence e;
    uint8_t sig[128];
    size_t n = strlen(proto_vec_signature_hex) / 2;

    vector_events(ev);
    memset(&e, 0, sizeof(e));
    assert_int_equal(unhex(proto_vec_device_id, e.device_id, 32), 0);
    for (int i = 0; i < 32; i++)
        e.nonce[i] = (uint8_t)i;
    assert_int_equal(proto_composite(ev, 3, e.composite), 0);
    assert_int_equal(unhex(proto_vec_signature_hex, sig, n), 0);
    e.events = ev;
    e.n_events = 3;
    e.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\n...";
    e.signature = sig;
    e.sig_len = n;
    char *text = adev_evidence_json(&e);
    assert_non_null(text);
    json_t *got = json_loads(text, 0, NULL);
    json_t *want =
        json_pack("{s:i, s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:i, s:s}, {s:s, s:s, s:s, s:i, s:s}, "
                  "{s:s, s:s, s:s, s:i, s:s}], s:s, s:s}",
                  "version", 1, "device_id", proto_vec_device_id, "nonce",
                  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "composite",
                  proto_vec_events[2].composite, "event_log", "stage", "bootloader", "component",
                  "aegis-bl", "version", "1.0.0", "svn", 1, "digest",
                  "671110ef05d05c0f9fe1e24b8618426e2a4c76e00cef45f96901a26f03e21dbd", "stage", "os",
                  "component", "aegis-os", "version", "2.3.1", "svn", 7, "digest",
                  "235a4df5aafadcb8a03079d8e9c78ee94be0e460d6a445750092b06a28c33ef3", "stage",
                  "app", "component", "acme-thermo", "version", "0.9.0-rc1", "svn", 42, "digest",
                  "28c2eb485677225e582e05aab123655160f102aa26b2f11d458fb865709c5270", "csr",
                  "-----BEGIN CERTIFICATE REQUEST-----\n...", "signature", proto_vec_signature_b64);
    assert_non_null(got);
    assert_non_null(want);
    if (!json_equal(got, want))
        fail_msg("evidence body differs from the vector: %s", text);
    json_decref(got);
    json_decref(want);
    free(text);
}

static void
test_hex(void **state)
{
    (void)state;
    uint8_t b[2];
    char s[5];
    /* files and flags: either case; the wire: lower case only */
    assert_int_equal(proto_unhex("aB0f", 4, b, 2, 0), 0);
    assert_int_equal(b[0], 0xab);
    assert_int_equal(b[1], 0x0f);
    proto_hex(b, 2, s);
    assert_string_equal(s, "ab0f");
    assert_int_equal(proto_unhex("aB0f", 4, b, 2, 1), -1);
    assert_int_equal(proto_unhex("ab0", 3, b, 2, 0), -1);
    assert_int_equal(proto_unhex("ab0g", 4, b, 2, 0), -1);
    assert_int_equal(proto_unhex("ab0f00", 6, b, 2, 0), -1);
}

static void
test_event_rules(void **state)
{
    (void)state;
    struct proto_event ev[PROTO_EVENTS_MAX + 1];
    vector_events(ev);
    assert_int_equal(proto_event_log_check(ev, 3), 0);
    /* component syntax */
    struct proto_event e = ev[0];
    snprintf(e.component, sizeof(e.component), "Aegis-BL");
    assert_int_equal(proto_event_check(&e), -1);
    snprintf(e.component, sizeof(e.component), "a/b");
    assert_int_equal(proto_event_check(&e), -1);
    e.component[0] = '\0';
    assert_int_equal(proto_event_check(&e), -1);
    memset(e.component, 'a', PROTO_COMPONENT_MAX);
    e.component[PROTO_COMPONENT_MAX] = '\0';
    assert_int_equal(proto_event_check(&e), 0); /* 64 is the maximum */
    /* version: printable, no spaces */
    e = ev[0];
    snprintf(e.version, sizeof(e.version), "1.0 beta");
    assert_int_equal(proto_event_check(&e), -1);
    e.version[0] = '\0';
    assert_int_equal(proto_event_check(&e), -1);
    memset(e.version, '~', PROTO_VERSION_MAX);
    e.version[PROTO_VERSION_MAX] = '\0';
    assert_int_equal(proto_event_check(&e), 0);
    e.stage = 4;
    assert_int_equal(proto_event_check(&e), -1);
    /* log order and counts */
    assert_int_equal(proto_event_log_check(ev, 2), -1); /* no app */
    struct proto_event swapped[3] = {ev[1], ev[0], ev[2]};
    assert_int_equal(proto_event_log_check(swapped, 3), -1);
    struct proto_event two_os[3] = {ev[0], ev[1], ev[1]};
    assert_int_equal(proto_event_log_check(two_os, 3), -1);
    for (int i = 3; i <= PROTO_EVENTS_MAX; i++)
        ev[i] = ev[2];
    assert_int_equal(proto_event_log_check(ev, PROTO_EVENTS_MAX), 0); /* six apps */
    assert_int_equal(proto_event_log_check(ev, PROTO_EVENTS_MAX + 1), -1);
    assert_string_equal(proto_stage_name(PROTO_STAGE_OS), "os");
    assert_int_equal(proto_stage_parse("app", 3), PROTO_STAGE_APP);
    assert_int_equal(proto_stage_parse("rom", 3), -1);
}

static void
test_opkey_and_csr(void **state)
{
    (void)state;
    adev_opkey *k = adev_opkey_generate(), *other = adev_opkey_generate();
    char *pem = NULL, *keypem = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_non_null(k);
    assert_non_null(other);
    assert_int_equal(adev_opkey_csr(k, "device", &pem, &der, &der_len), 0);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
    /* the PEM and DER are the same CSR, self-signed with k, P-256 */
    const uint8_t *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der_len);
    assert_non_null(req);
    EVP_PKEY *rk = X509_REQ_get0_pubkey(req);
    assert_int_equal(X509_REQ_verify(req, rk), 1);
    assert_true(EVP_PKEY_is_a(rk, "EC"));
    assert_int_equal(EVP_PKEY_get_bits(rk), 256);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req2 = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    assert_non_null(req2);
    uint8_t *der2 = NULL;
    int n2 = i2d_X509_REQ(req2, &der2);
    assert_int_equal(n2, (int)der_len);
    assert_memory_equal(der2, der, der_len);
    /* PEM round trip of the key */
    keypem = adev_opkey_pem(k);
    assert_non_null(strstr(keypem, "PRIVATE KEY"));
    adev_opkey *k2 = adev_opkey_from_pem(keypem, strlen(keypem));
    assert_non_null(k2);
    assert_null(adev_opkey_from_pem("junk", 4));
    OPENSSL_free(der2);
    X509_REQ_free(req);
    X509_REQ_free(req2);
    BIO_free(bio);
    free(pem);
    free(der);
    adev_free_secret_str(keypem);
    adev_opkey_free(k);
    adev_opkey_free(k2);
    adev_opkey_free(other);
}

/* Evidence JSON: exactly the keys of protocol.md 3.2, right types and formats, a signature by the
 * identity key over the message of the nonce, device ID, composite and CSR. */
static void
test_evidence_json_shape(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_fw_evidence.XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(adev_host_keystore_create(dir, NULL), 0);
    adev_keystore *ks = adev_host_keystore_open(dir);
    assert_non_null(ks);
    adev_opkey *op = adev_opkey_generate();
    struct proto_event ev[3];
    uint8_t nonce[32], comp[32], spki[ADEV_SPKI_LEN], id[32];
    vector_events(ev);
    assert_int_equal(adev_random(nonce, sizeof(nonce)), 0);

    char *text = adev_evidence_build(ks, nonce, ev, 3, op, comp);
    assert_non_null(text);
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    const char *keys[] = {"version",   "device_id", "nonce",    "composite",
                          "event_log", "csr",       "signature"};
    assert_int_equal(json_object_size(root), 7);
    for (size_t i = 0; i < 7; i++)
        assert_non_null(json_object_get(root, keys[i]));
    assert_int_equal(json_integer_value(json_object_get(root, "version")), 1);

    assert_int_equal(adev_keystore_public_der(ks, spki), 0);
    assert_int_equal(adev_device_id(spki, id), 0);
    char idhex[65], noncehex[65], comphex[65];
    proto_hex(id, 32, idhex);
    proto_hex(nonce, 32, noncehex);
    proto_hex(comp, 32, comphex);
    assert_string_equal(json_string_value(json_object_get(root, "device_id")), idhex);
    assert_string_equal(json_string_value(json_object_get(root, "nonce")), noncehex);
    assert_string_equal(json_string_value(json_object_get(root, "composite")),
                        proto_vec_events[2].composite);
    assert_string_equal(comphex, proto_vec_events[2].composite);

    json_t *log = json_object_get(root, "event_log");
    assert_true(json_is_array(log));
    assert_int_equal(json_array_size(log), 3);
    static const char *const stages[] = {"bootloader", "os", "app"};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(log, i);
        char dig[65];
        assert_int_equal(json_object_size(e), 5);
        assert_string_equal(json_string_value(json_object_get(e, "stage")), stages[i]);
        assert_string_equal(json_string_value(json_object_get(e, "component")),
                            proto_vec_events[i].component);
        assert_string_equal(json_string_value(json_object_get(e, "version")),
                            proto_vec_events[i].version);
        assert_true(json_is_integer(json_object_get(e, "svn")));
        assert_int_equal(json_integer_value(json_object_get(e, "svn")), proto_vec_events[i].svn);
        proto_hex(ev[i].digest, 32, dig);
        assert_string_equal(json_string_value(json_object_get(e, "digest")), dig);
    }

    /* the CSR: PEM, self-signed by the operational key */
    const char *csr = json_string_value(json_object_get(root, "csr"));
    assert_non_null(csr);
    assert_int_equal(strncmp(csr, "-----BEGIN CERTIFICATE REQUEST-----\n", 36), 0);
    BIO *bio = BIO_new_mem_buf(csr, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    assert_non_null(req);
    uint8_t *csr_der = NULL;
    int csr_len = i2d_X509_REQ(req, &csr_der);
    assert_true(csr_len > 0);

    /* the signature: padded standard base64 of a DER ECDSA signature that verifies */
    const char *sig64 = json_string_value(json_object_get(root, "signature"));
    assert_non_null(sig64);
    size_t slen = strlen(sig64);
    assert_int_equal(slen % 4, 0);
    uint8_t sig[128];
    int n = EVP_DecodeBlock(sig, (const unsigned char *)sig64, (int)slen);
    assert_true(n > 0);
    while (slen > 0 && sig64[slen - 1] == '=') {
        n--;
        slen--;
    }
    uint8_t msg[PROTO_MSG_LEN];
    assert_int_equal(adev_attest_message(nonce, id, comp, csr_der, (size_t)csr_len, msg), 0);
    const uint8_t *sp = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &sp, ADEV_SPKI_LEN);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, (size_t)n, msg, sizeof(msg)), 1);
    /* a different nonce would not verify */
    msg[20] ^= 1;
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_not_equal(EVP_DigestVerify(md, sig, (size_t)n, msg, sizeof(msg)), 1);

    /* a malformed log is refused before anything is signed */
    struct proto_event bad[3] = {ev[1], ev[0], ev[2]};
    assert_null(adev_evidence_build(ks, nonce, bad, 3, op, NULL));

    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pub);
    OPENSSL_free(csr_der);
    X509_REQ_free(req);
    BIO_free(bio);
    json_decref(root);
    free(text);
    adev_opkey_free(op);
    adev_keystore_free(ks);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_encoding_and_fold),
        cmocka_unit_test(test_vector_device_id_and_message),
        cmocka_unit_test(test_vector_key_store_signature),
        cmocka_unit_test(test_vector_evidence_body),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_event_rules),
        cmocka_unit_test(test_opkey_and_csr),
        cmocka_unit_test(test_evidence_json_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
