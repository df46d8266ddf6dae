/* Unit tests of the attestation verifier (server/device/attest.c): the protocol's test vector
 * (docs/protocol.md section 6), strict evidence parsing, signatures and CSR checks; and of the
 * stateless nonces (server/device/attest_nonce.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "attest.h"
#include "attest_nonce.h"
#include "pki.h"
#include "proto_event.h"
#include "proto_vectors.h"
#include "util.h"

#include <jansson.h>
#include <sodium.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/rsa.h>
#include <stdlib.h>

/* --- the test vector of docs/protocol.md section 6 (proto_vectors.h) --- */

#define VEC proto_vec_events
#define ID_PUB proto_vec_identity_pub_pem
#define DEVICE_ID proto_vec_device_id
#define CSR_HASH proto_vec_csr_hash
#define MSG_HEX proto_vec_message_hex
#define SIG_HEX proto_vec_signature_hex

/* Another P-256 key: the vector's signature must not verify with it. */
static const char OTHER_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEh8AzOkt3gquVbvDmkPLx+XtB21iV\n"
                                "lUu3drLbKXXhpVBs+iHF1LNLoD0f35RypJ3tYluEeDrAmurBhQVU+VKY2w==\n"
                                "-----END PUBLIC KEY-----\n";

static size_t
unhex(const char *hex, unsigned char *out, size_t max)
{
    size_t n = 0;
    assert_int_equal(sodium_hex2bin(out, max, hex, strlen(hex), NULL, &n, NULL), 0);
    return n;
}

static void
assert_hex(const unsigned char *b, size_t n, const char *want)
{
    char got[2 * PROTO_EVENT_ENC_MAX + 1];
    assert_true(n <= PROTO_EVENT_ENC_MAX);
    proto_hex(b, n, got);
    assert_string_equal(got, want);
}

static void
vector_events(struct proto_event ev[3])
{
    memset(ev, 0, 3 * sizeof(*ev));
    for (int i = 0; i < 3; i++) {
        ev[i].stage = VEC[i].stage;
        snprintf(ev[i].component, sizeof(ev[i].component), "%s", VEC[i].component);
        snprintf(ev[i].version, sizeof(ev[i].version), "%s", VEC[i].version);
        ev[i].svn = VEC[i].svn;
        assert_int_equal(unhex(VEC[i].digest, ev[i].digest, 32), 32);
    }
}

static void
test_vector_digests_are_image_hashes(void **state)
{
    (void)state;
    unsigned char h[32];
    char text[96];
    for (int i = 0; i < 3; i++) {
        snprintf(text, sizeof(text), "%s %s image", VEC[i].component, VEC[i].version);
        assert_int_equal(proto_sha256(text, strlen(text), h), 0);
        assert_hex(h, 32, VEC[i].digest);
    }
    assert_int_equal(proto_sha256(proto_vec_csr_bytes, strlen(proto_vec_csr_bytes), h), 0);
    assert_hex(h, 32, CSR_HASH);
    /* The device ID is SHA-256 of the key's DER SubjectPublicKeyInfo. */
    char id[65];
    assert_int_equal(pki_device_id_from_pem(ID_PUB, strlen(ID_PUB), id, NULL, text, sizeof(text)),
                     0);
    assert_string_equal(id, DEVICE_ID);
}

static void
test_vector_encoding_and_composite(void **state)
{
    (void)state;
    struct proto_event ev[3];
    unsigned char enc[PROTO_EVENT_ENC_MAX], h[32];
    vector_events(ev);
    for (int i = 0; i < 3; i++) {
        size_t n = 0;
        assert_int_equal(proto_event_encode(&ev[i], enc, &n), 0);
        assert_hex(enc, n, VEC[i].enc);
        assert_int_equal(proto_measurement(&ev[i], h), 0);
        assert_hex(h, 32, VEC[i].measurement);
        assert_int_equal(proto_composite(ev, (size_t)i + 1, h), 0);
        assert_hex(h, 32, VEC[i].composite);
    }
    /* The fold starts from 32 zero bytes: no events, no change. */
    assert_int_equal(proto_composite(ev, 0, h), 0);
    assert_hex(h, 32, "0000000000000000000000000000000000000000000000000000000000000000");
}

static void
test_vector_message(void **state)
{
    (void)state;
    unsigned char nonce[32], id[32], comp[32], csr[32], msg[PROTO_MSG_LEN];
    char hex[2 * PROTO_MSG_LEN + 1];
    for (int i = 0; i < 32; i++)
        nonce[i] = (unsigned char)i;
    unhex(DEVICE_ID, id, 32);
    unhex(VEC[2].composite, comp, 32);
    unhex(CSR_HASH, csr, 32);
    proto_attest_message(nonce, id, comp, csr, msg);
    proto_hex(msg, sizeof(msg), hex);
    assert_string_equal(hex, MSG_HEX);
    assert_memory_equal(msg, "AEGIS-ATTEST-V1", 16); /* with its NUL */
}

static void
test_vector_signature(void **state)
{
    (void)state;
    unsigned char msg[PROTO_MSG_LEN], sig[80];
    char err[160];
    assert_int_equal(unhex(MSG_HEX, msg, sizeof(msg)), PROTO_MSG_LEN);
    size_t slen = unhex(SIG_HEX, sig, sizeof(sig));
    /* Alternate keys several times: every call must use its own key (fresh context). */
    for (int round = 0; round < 3; round++) {
        assert_int_equal(
            attest_verify_signature(ID_PUB, msg, sizeof(msg), sig, slen, err, sizeof(err)), 1);
        assert_int_equal(
            attest_verify_signature(OTHER_PUB, msg, sizeof(msg), sig, slen, err, sizeof(err)), 0);
    }
    msg[100] ^= 1;
    assert_int_equal(attest_verify_signature(ID_PUB, msg, sizeof(msg), sig, slen, err, sizeof(err)),
                     0);
    msg[100] ^= 1;
    sig[slen - 1] ^= 1;
    assert_int_equal(attest_verify_signature(ID_PUB, msg, sizeof(msg), sig, slen, err, sizeof(err)),
                     0);
    sig[slen - 1] ^= 1;
    /* Not DER, truncated, not a key. */
    assert_int_equal(attest_verify_signature(ID_PUB, msg, sizeof(msg), (const unsigned char *)"xx",
                                             2, err, sizeof(err)),
                     0);
    assert_int_equal(
        attest_verify_signature(ID_PUB, msg, sizeof(msg), sig, slen - 3, err, sizeof(err)), 0);
    assert_int_equal(
        attest_verify_signature("not a key", msg, sizeof(msg), sig, slen, err, sizeof(err)), 0);
}

/* --- keys and CSRs made at run time --- */

static EVP_PKEY *
ec_key(const char *curve)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    assert_non_null(k);
    return k;
}

/* A CSR signed by key, as DER (malloc'd; *len set). */
static unsigned char *
csr_der(EVP_PKEY *key, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    unsigned char *der = NULL;
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, 0), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                                (const unsigned char *)"ignored", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    X509_REQ_free(req);
    return der;
}

/* The PEM of a DER CSR (malloc'd). */
static char *
csr_pem(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out;
    assert_non_null(req);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    long n = BIO_get_mem_data(bio, &data);
    out = calloc(1, (size_t)n + 1);
    memcpy(out, data, (size_t)n);
    BIO_free(bio);
    X509_REQ_free(req);
    return out;
}

static void
test_csr_checks(void **state)
{
    (void)state;
    char err[160];
    size_t len;
    EVP_PKEY *p256 = ec_key("P-256"), *p384 = ec_key("P-384"), *rsa = EVP_RSA_gen(2048);
    assert_non_null(rsa);

    unsigned char *good = csr_der(p256, &len);
    assert_int_equal(attest_check_csr(good, len, err, sizeof(err)), 0);
    /* trailing bytes, truncation, garbage */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, good, len);
    longer[len] = 0;
    assert_int_equal(attest_check_csr(longer, len + 1, err, sizeof(err)), -1);
    assert_int_equal(attest_check_csr(good, len - 1, err, sizeof(err)), -1);
    assert_int_equal(attest_check_csr((const unsigned char *)"garbage", 7, err, sizeof(err)), -1);
    assert_int_equal(attest_check_csr(good, 0, err, sizeof(err)), -1);
    /* a bad self-signature: flip a bit in the signature's last byte */
    good[len - 1] ^= 1;
    assert_int_equal(attest_check_csr(good, len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "self-signature"));
    free(good);
    free(longer);

    unsigned char *d = csr_der(p384, &len);
    assert_int_equal(attest_check_csr(d, len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "P-256"));
    free(d);
    d = csr_der(rsa, &len);
    assert_int_equal(attest_check_csr(d, len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "P-256"));
    free(d);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
}

static void
test_signature_with_rsa_key_refused(void **state)
{
    (void)state;
    unsigned char msg[PROTO_MSG_LEN] = {0}, sig[80];
    char err[160], *pem = NULL;
    size_t slen = unhex(SIG_HEX, sig, sizeof(sig));
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa), 1);
    long n = BIO_get_mem_data(bio, &pem);
    char *text = calloc(1, (size_t)n + 1);
    memcpy(text, pem, (size_t)n);
    assert_int_equal(attest_verify_signature(text, msg, sizeof(msg), sig, slen, err, sizeof(err)),
                     0);
    assert_non_null(strstr(err, "P-256"));
    free(text);
    BIO_free(bio);
    EVP_PKEY_free(rsa);
}

/* --- parsing --- */

struct fx {
    EVP_PKEY *key;
    unsigned char *der;
    size_t der_len;
    char *pem;
    json_t *body; /* a valid evidence body */
};

static json_t *
vector_event_json(int i)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:s}", "stage", proto_stage_name(VEC[i].stage),
                     "component", VEC[i].component, "version", VEC[i].version, "svn",
                     (int)VEC[i].svn, "digest", VEC[i].digest);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->key = ec_key("P-256");
    f->der = csr_der(f->key, &f->der_len);
    f->pem = csr_pem(f->der, f->der_len);
    f->body = json_pack(
        "{s:i, s:s, s:s, s:s, s:[o, o, o], s:s, s:s}", "version", 1, "device_id", DEVICE_ID,
        "nonce", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "composite",
        VEC[2].composite, "event_log", vector_event_json(0), vector_event_json(1),
        vector_event_json(2), "csr", f->pem, "signature", proto_vec_signature_b64);
    assert_non_null(f->body);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    json_decref(f->body);
    free(f->pem);
    free(f->der);
    EVP_PKEY_free(f->key);
    free(f);
    return 0;
}

static void
test_parse_valid(void **state)
{
    struct fx *f = *state;
    struct attest_evidence *ev = calloc(1, sizeof(*ev));
    char err[256] = "";
    unsigned char sig[80];
    assert_int_equal(attest_parse(f->body, ev, err, sizeof(err)), 0);
    assert_string_equal(ev->device_id, DEVICE_ID);
    for (int i = 0; i < 32; i++)
        assert_int_equal(ev->nonce[i], i);
    assert_int_equal(ev->nevents, 3);
    assert_int_equal(ev->events[2].stage, PROTO_STAGE_APP);
    assert_string_equal(ev->events[2].component, "acme-thermo");
    assert_string_equal(ev->events[2].version, "0.9.0-rc1");
    assert_int_equal(ev->events[2].svn, 42);
    assert_int_equal(ev->csr_der_len, f->der_len);
    assert_memory_equal(ev->csr_der, f->der, f->der_len);
    assert_ptr_equal(ev->csr_pem, json_string_value(json_object_get(f->body, "csr")));
    size_t slen = unhex(SIG_HEX, sig, sizeof(sig));
    assert_int_equal(ev->sig_len, slen);
    assert_memory_equal(ev->sig, sig, slen);
    /* The composite of the parsed log is the vector's. */
    unsigned char c[32];
    assert_int_equal(proto_composite(ev->events, ev->nevents, c), 0);
    assert_memory_equal(c, ev->composite, 32);
    json_t *j = attest_events_json(ev);
    assert_true(json_equal(j, json_object_get(f->body, "event_log")));
    json_decref(j);
    free(ev);
}

static void
test_parse_eight_events(void **state)
{
    struct fx *f = *state;
    struct attest_evidence *ev = calloc(1, sizeof(*ev));
    char err[256];
    json_t *log = json_object_get(f->body, "event_log");
    for (int i = 0; i < 5; i++)
        json_array_append_new(log, vector_event_json(2));
    assert_int_equal(json_array_size(log), 8);
    assert_int_equal(attest_parse(f->body, ev, err, sizeof(err)), 0);
    assert_int_equal(ev->nevents, 8);
    json_array_append_new(log, vector_event_json(2));
    assert_int_equal(attest_parse(f->body, ev, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "event_log"));
    free(ev);
}

/* One way to break a valid body: set path ("key" or "event_log.N.key") to the JSON literal value,
 * or delete it when value is NULL. */
struct mutation {
    const char *path;
    const char *value;
    const char *err_has; /* a substring of the error message */
};

static void
apply(json_t *body, const struct mutation *m)
{
    json_t *obj = body;
    char key[64];
    snprintf(key, sizeof(key), "%s", m->path);
    int idx = -1;
    if (strncmp(m->path, "event_log.", 10) == 0) {
        idx = atoi(m->path + 10);
        obj = json_array_get(json_object_get(body, "event_log"), (size_t)idx);
        snprintf(key, sizeof(key), "%s", strchr(m->path + 10, '.') + 1);
        assert_non_null(obj);
    }
    if (m->value == NULL) {
        assert_int_equal(json_object_del(obj, key), 0);
        return;
    }
    json_error_t jerr;
    json_t *v = json_loads(m->value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    assert_non_null(v);
    assert_int_equal(json_object_set_new(obj, key, v), 0);
}

static const struct mutation MUTATIONS[] = {
    {"extra", "1", "unknown"},
    {"version", NULL, "version"},
    {"version", "2", "version"},
    {"version", "\"1\"", "version"},
    {"version", "1.0", "version"},
    {"device_id", NULL, "device_id"},
    {"device_id", "\"0CE17F0B2A589611EE12E8A6374854DE93794F7C63C0C863F12F9C0C34CCC525\"",
     "device_id"},
    {"device_id", "\"0ce17f0b\"", "device_id"},
    {"device_id", "7", "device_id"},
    {"nonce", NULL, "nonce"},
    {"nonce", "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1\"", "nonce"},
    {"nonce", "\"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"", "nonce"},
    {"composite", NULL, "composite"},
    {"composite", "null", "composite"},
    {"event_log", NULL, "event_log"},
    {"event_log", "{}", "event_log"},
    {"event_log", "[]", "event_log"},
    {"event_log.2.stage", "\"kernel\"", "stage"},
    {"event_log.0.extra", "true", "unknown"},
    {"event_log.1.digest", NULL, "digest"},
    {"event_log.2.component", "\"Acme\"", "component"},
    {"event_log.2.component", "\"\"", "component"},
    {"event_log.2.component", "\"a b\"", "component"},
    {"event_log.2.component",
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "component"},
    {"event_log.2.version", "\"\"", "version"},
    {"event_log.2.version", "\"1.0 beta\"", "version"},
    {"event_log.2.version", "\"123456789012345678901234567890123\"", "version"},
    {"event_log.2.version", "\"1.\\u00e9\"", "version"},
    {"event_log.2.version", "\"1\\u0000\"", "version"},
    {"event_log.2.version", "3", "version"},
    {"event_log.2.svn", "-1", "svn"},
    {"event_log.2.svn", "4294967296", "svn"},
    {"event_log.2.svn", "\"42\"", "svn"},
    {"event_log.2.svn", "4.2", "svn"},
    {"event_log.2.svn", "true", "svn"},
    {"event_log.2.digest", "\"28c2eb\"", "digest"},
    {"event_log.2.digest", "\"28C2EB485677225E582E05AAB123655160F102AA26B2F11D458FB865709C5270\"",
     "digest"},
    {"csr", NULL, "csr"},
    {"csr", "42", "csr"},
    {"csr", "\"\"", "csr"},
    {"csr", "\"hello\"", "csr"},
    {"csr", "\"-----BEGIN CERTIFICATE-----\\nMAA=\\n-----END CERTIFICATE-----\\n\"", "csr"},
    {"csr",
     "\"-----BEGIN CERTIFICATE REQUEST-----\\nnot base64!\\n-----END CERTIFICATE REQUEST-----\\n\"",
     "csr"},
    {"signature", NULL, "signature"},
    {"signature", "\"\"", "signature"},
    {"signature", "\"not base64\"", "signature"},
    {"signature",
     "\"MEUCIAWK5x273/nzth0cbLsiOcuDc2tg8aimannK80qLjgrqAiEAlzgWzAXBNFG7bXwa3V/"
     "RCdxJ46AdQa0wsA3sTZqHN28\"",
     "signature"},
    {"signature",
     "\"MEUCIAWK5x273/nzth0cbLsiOcuDc2tg8aimannK80qLjgrq\\nAiEAlzgWzAXBNFG7bXwa3V/"
     "RCdxJ46AdQa0wsA3sTZqHN28=\"",
     "signature"},
    {"signature", "[1]", "signature"},
};

/* The body with m applied must fail to parse, saying m->err_has. */
static void
check_mutation(struct fx *f, struct attest_evidence *ev, const struct mutation *m)
{
    char err[256] = "";
    json_t *b = json_deep_copy(f->body);
    apply(b, m);
    int rc = attest_parse(b, ev, err, sizeof(err));
    if (rc != -1 || strstr(err, m->err_has) == NULL)
        fail_msg("mutation (%s = %s): rc %d, error \"%s\"", m->path,
                 m->value ? m->value : "(deleted)", rc, err);
    json_decref(b);
}

static void
test_parse_failures(void **state)
{
    struct fx *f = *state;
    struct attest_evidence *ev = calloc(1, sizeof(*ev));
    char err[256];
    for (size_t i = 0; i < sizeof(MUTATIONS) / sizeof(MUTATIONS[0]); i++)
        check_mutation(f, ev, &MUTATIONS[i]);
    /* Each event of the vector's log given each other stage: the error names the stage its place
     * in the log requires (the order rule is proto's). */
    for (size_t i = 0; i < PROTO_VEC_EVENTS; i++) {
        for (int s = PROTO_STAGE_BOOTLOADER; s <= PROTO_STAGE_APP; s++) {
            char path[32], value[32], want[32];
            if (s == proto_event_stage_at(i))
                continue;
            snprintf(path, sizeof(path), "event_log.%zu.stage", i);
            snprintf(value, sizeof(value), "\"%s\"", proto_stage_name(s));
            snprintf(want, sizeof(want), "\"%s\"", proto_stage_name(proto_event_stage_at(i)));
            const struct mutation m = {path, value, want};
            check_mutation(f, ev, &m);
        }
    }
    /* not an object */
    json_t *arr = json_array();
    assert_int_equal(attest_parse(arr, ev, err, sizeof(err)), -1);
    json_decref(arr);
    free(ev);
}

/* Builds a body with csr set to text and checks the parse result. */
static void
parse_csr_text(struct fx *f, const char *text, int want)
{
    struct attest_evidence *ev = calloc(1, sizeof(*ev));
    char err[256];
    json_t *b = json_deep_copy(f->body);
    json_object_set_new(b, "csr", json_string(text));
    assert_int_equal(attest_parse(b, ev, err, sizeof(err)), want);
    json_decref(b);
    free(ev);
}

static void
test_parse_csr_pem_shapes(void **state)
{
    struct fx *f = *state;
    size_t n = strlen(f->pem);
    char *buf = calloc(1, 2 * n + PROTO_EVIDENCE_CSR_MAX + 16);

    /* trailing whitespace is fine, trailing text is not */
    snprintf(buf, 2 * n + 16, "%s\n\n  \n", f->pem);
    parse_csr_text(f, buf, 0);
    snprintf(buf, 2 * n + 16, "%sjunk\n", f->pem);
    parse_csr_text(f, buf, -1);
    /* two blocks, leading text */
    snprintf(buf, 2 * n + 16, "%s%s", f->pem, f->pem);
    parse_csr_text(f, buf, -1);
    snprintf(buf, 2 * n + 16, "x\n%s", f->pem);
    parse_csr_text(f, buf, -1);
    /* longer than 8 KiB (padded with whitespace, otherwise valid) */
    memcpy(buf, f->pem, n);
    memset(buf + n, '\n', PROTO_EVIDENCE_CSR_MAX + 1 - n);
    buf[PROTO_EVIDENCE_CSR_MAX + 1] = '\0';
    parse_csr_text(f, buf, -1);
    buf[PROTO_EVIDENCE_CSR_MAX] = '\0';
    parse_csr_text(f, buf, 0);
    free(buf);
}

static void
test_signature_length_bound(void **state)
{
    struct fx *f = *state;
    struct attest_evidence *ev = calloc(1, sizeof(*ev));
    char err[256], b64[256];
    unsigned char raw[150];
    memset(raw, 0x30, sizeof(raw));
    /* 150 bytes -> 200 characters: accepted by the parser (the signature check refuses it) */
    sodium_bin2base64(b64, sizeof(b64), raw, 150, sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(strlen(b64), 200);
    json_t *b = json_deep_copy(f->body);
    json_object_set_new(b, "signature", json_string(b64));
    assert_int_equal(attest_parse(b, ev, err, sizeof(err)), 0);
    assert_int_equal(ev->sig_len, 150);
    /* 151 bytes -> 204 characters: refused */
    memset(raw, 0x30, sizeof(raw));
    unsigned char more[151];
    memset(more, 0x30, sizeof(more));
    sodium_bin2base64(b64, sizeof(b64), more, 151, sodium_base64_VARIANT_ORIGINAL);
    json_object_set_new(b, "signature", json_string(b64));
    assert_int_equal(attest_parse(b, ev, err, sizeof(err)), -1);
    json_decref(b);
    free(ev);
}

static void
test_cert_info(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char err[160], serial[ATTEST_SERIAL_HEX_MAX];
    int64_t nb = 0, na = 0;
    assert_int_equal(pki_make_root("test root", NULL, -1, 86400, &key, &cert, err, sizeof(err)), 0);
    char *pem = pki_cert_pem(cert);
    assert_int_equal(attest_cert_info(pem, serial, &nb, &na, err, sizeof(err)), 0);
    assert_true(strlen(serial) > 0 && strspn(serial, "0123456789abcdef") == strlen(serial));
    assert_true(na - nb >= 86400 - 1 && na - nb <= 86400 + PKI_BACKDATE_S + 1);
    assert_int_equal(attest_cert_info("nope", serial, &nb, &na, err, sizeof(err)), -1);
    free(pem);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* --- nonces (attest_nonce.c) --- */

#define NONCE_DEV_A "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11"
#define NONCE_DEV_B "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22"

/* A nonce checks for its device and key until it expires, and for nothing else. */
static void
test_nonce_mac(void **state)
{
    (void)state;
    unsigned char key[ATTEST_NONCE_KEY_LEN], other_key[ATTEST_NONCE_KEY_LEN];
    unsigned char n[ATTEST_NONCE_LEN], n2[ATTEST_NONCE_LEN], bad[ATTEST_NONCE_LEN];
    int64_t now = 1700000000, exp = -1;

    memset(key, 7, sizeof(key));
    memset(other_key, 8, sizeof(other_key));
    attest_nonce_make(key, NONCE_DEV_A, now + 60, n);
    assert_int_equal(attest_nonce_check(key, NONCE_DEV_A, n, now, &exp), 0);
    assert_int_equal(exp, now + 60);
    assert_int_equal(attest_nonce_check(key, NONCE_DEV_A, n, now + 59, &exp), 0);
    /* expired, another device, another key */
    assert_int_equal(attest_nonce_check(key, NONCE_DEV_A, n, now + 60, &exp), -1);
    assert_int_equal(attest_nonce_check(key, NONCE_DEV_B, n, now, &exp), -1);
    assert_int_equal(attest_nonce_check(other_key, NONCE_DEV_A, n, now, &exp), -1);
    /* any changed bit: the expiry, the random bytes, the MAC */
    for (size_t i = 0; i < ATTEST_NONCE_LEN * 8; i++) {
        memcpy(bad, n, sizeof(bad));
        bad[i / 8] ^= (unsigned char)(1u << (i % 8));
        assert_int_equal(attest_nonce_check(key, NONCE_DEV_A, bad, now, &exp), -1);
    }
    /* two challenges in one second differ */
    attest_nonce_make(key, NONCE_DEV_A, now + 60, n2);
    assert_memory_not_equal(n, n2, sizeof(n));
    assert_int_equal(attest_nonce_check(key, NONCE_DEV_A, n2, now, &exp), 0);
    /* a lifetime over the maximum is refused, at the maximum accepted */
    attest_nonce_make(key, NONCE_DEV_A, now + ATTEST_NONCE_TTL_MAX + 1, n);
    assert_int_equal(attest_nonce_check(key, NONCE_DEV_A, n, now, &exp), -1);
    attest_nonce_make(key, NONCE_DEV_A, now + ATTEST_NONCE_TTL_MAX, n);
    assert_int_equal(attest_nonce_check(key, NONCE_DEV_A, n, now, &exp), 0);
}

/* The layout of docs/protocol.md section 3.1: expiry big-endian, then 8 random bytes, then the
 * first 16 bytes of the HMAC. */
static void
test_nonce_layout(void **state)
{
    (void)state;
    unsigned char key[ATTEST_NONCE_KEY_LEN], n[ATTEST_NONCE_LEN];
    unsigned char mac[crypto_auth_hmacsha256_BYTES], in[15 + 64 + 16];
    int64_t exp = 0x0102030405060708LL;
    memset(key, 9, sizeof(key));
    attest_nonce_make(key, NONCE_DEV_A, exp, n);
    for (int i = 0; i < 8; i++)
        assert_int_equal(n[i], i + 1);
    memcpy(in, "AEGIS-NONCE-V1", 15);
    memcpy(in + 15, NONCE_DEV_A, 64);
    memcpy(in + 15 + 64, n, 16);
    crypto_auth_hmacsha256(mac, in, sizeof(in), key);
    assert_memory_equal(n + 16, mac, 16);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_digests_are_image_hashes),
        cmocka_unit_test(test_vector_encoding_and_composite),
        cmocka_unit_test(test_vector_message),
        cmocka_unit_test(test_vector_signature),
        cmocka_unit_test(test_csr_checks),
        cmocka_unit_test(test_signature_with_rsa_key_refused),
        cmocka_unit_test_setup_teardown(test_parse_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_eight_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_csr_pem_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signature_length_bound, setup, teardown),
        cmocka_unit_test(test_cert_info),
        cmocka_unit_test(test_nonce_mac),
        cmocka_unit_test(test_nonce_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
