/* attest: evidence parsing and verification (attest.h, docs/protocol.md). */
#include "attest.h"

#include "errbuf.h"
#include "jsonx.h"
#include "pki.h"
#include "pki_der.h"
#include "proto_fields.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PUBKEY_PEM_MAX 4096

/* --- Parsing --- */

/* The string field key of obj (required): *s and *len, or -1 with a reason. where prefixes the
 * field name in messages ("" or "event_log[2]."). */
static int
get_string(const json_t *obj, const char *where, const char *key, const char **s, size_t *len,
           char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        errbuf_set(err, errlen, "field '%s%s' is required", where, key);
        return -1;
    }
    if (!json_is_string(v)) {
        errbuf_set(err, errlen, "field '%s%s' must be a string", where, key);
        return -1;
    }
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

/* A field of exactly 64 lower-case hex characters, decoded into out (32 bytes). */
static int
get_hex32(const json_t *obj, const char *where, const char *key, uint8_t out[PROTO_HASH_LEN],
          char *err, size_t errlen)
{
    const char *s;
    size_t len;
    if (get_string(obj, where, key, &s, &len, err, errlen) != 0)
        return -1;
    if (!proto_digest_hex_ok(s, len) || proto_unhex(s, len, out, PROTO_HASH_LEN, 1) != 0) {
        errbuf_set(err, errlen, "field '%s%s' must be %d lower-case hex characters", where, key,
                   PROTO_HASH_HEX);
        return -1;
    }
    return 0;
}

static int
parse_stage(const json_t *ev, const char *where, size_t i, uint8_t *stage, char *err, size_t errlen)
{
    const char *s;
    size_t len;
    int want = proto_event_stage_at(i);
    if (get_string(ev, where, "stage", &s, &len, err, errlen) != 0)
        return -1;
    /* The name up to a NUL decides which message: "os\u0000x" is a misplaced stage name. */
    int got = proto_stage_parse(s, strlen(s));
    if (got < 0) {
        errbuf_set(err, errlen, "field '%sstage' must be \"%s\", \"%s\" or \"%s\"", where,
                   proto_stage_name(PROTO_STAGE_BOOTLOADER), proto_stage_name(PROTO_STAGE_OS),
                   proto_stage_name(PROTO_STAGE_APP));
        return -1;
    }
    if (len != strlen(s) || got != want) {
        errbuf_set(
            err, errlen,
            "field '%sstage' must be \"%s\" (one bootloader, then one os, then 1 to %d apps)",
            where, proto_stage_name(want), PROTO_APPS_MAX);
        return -1;
    }
    *stage = (uint8_t)want;
    return 0;
}

static int
parse_component(const json_t *ev, const char *where, char *out, char *err, size_t errlen)
{
    const char *s;
    size_t len;
    if (get_string(ev, where, "component", &s, &len, err, errlen) != 0)
        return -1;
    if (!proto_component_ok(s, len)) {
        errbuf_set(err, errlen, "field '%scomponent' must be 1 to %d characters of [a-z0-9._-]",
                   where, PROTO_COMPONENT_MAX);
        return -1;
    }
    assert(len <= PROTO_COMPONENT_MAX); /* out has PROTO_COMPONENT_MAX + 1 bytes */
    memcpy(out, s, len + 1);
    return 0;
}

static int
parse_version(const json_t *ev, const char *where, char *out, char *err, size_t errlen)
{
    const char *s;
    size_t len;
    if (get_string(ev, where, "version", &s, &len, err, errlen) != 0)
        return -1;
    if (!proto_version_ok(s, len)) {
        errbuf_set(err, errlen, "field '%sversion' must be 1 to %d printable ASCII characters",
                   where, PROTO_VERSION_MAX);
        return -1;
    }
    assert(len <= PROTO_VERSION_MAX); /* out has PROTO_VERSION_MAX + 1 bytes */
    memcpy(out, s, len + 1);
    return 0;
}

static int
parse_svn(const json_t *ev, const char *where, uint32_t *out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(ev, "svn");
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)PROTO_SVN_MAX) {
        errbuf_set(err, errlen, "field '%ssvn' must be an integer from 0 to %lld", where,
                   (long long)PROTO_SVN_MAX);
        return -1;
    }
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int
parse_event(const json_t *v, size_t i, struct proto_event *e, char *err, size_t errlen)
{
    static const char *const keys[] = {"stage", "component", "version", "svn", "digest", NULL};
    char where[32], why[160];
    snprintf(where, sizeof(where), "event_log[%zu].", i);
    if (!json_is_object(v)) {
        errbuf_set(err, errlen, "event_log[%zu] must be an object", i);
        return -1;
    }
    if (jsonx_only_keys(v, keys, why, sizeof(why)) != 0) {
        errbuf_set(err, errlen, "event_log[%zu]: %s", i, why);
        return -1;
    }
    if (parse_stage(v, where, i, &e->stage, err, errlen) != 0 ||
        parse_component(v, where, e->component, err, errlen) != 0 ||
        parse_version(v, where, e->version, err, errlen) != 0 ||
        parse_svn(v, where, &e->svn, err, errlen) != 0 ||
        get_hex32(v, where, "digest", e->digest, err, errlen) != 0)
        return -1;
    return 0;
}

static int
parse_events(const json_t *body, struct attest_evidence *ev, char *err, size_t errlen)
{
    const json_t *log = json_object_get(body, "event_log");
    size_t n = json_array_size(log);
    if (log == NULL || !json_is_array(log) || n < PROTO_EVENTS_MIN || n > PROTO_EVENTS_MAX) {
        errbuf_set(err, errlen, "field 'event_log' must be an array of %d to %d events",
                   PROTO_EVENTS_MIN, PROTO_EVENTS_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (parse_event(json_array_get(log, i), i, &ev->events[i], err, errlen) != 0)
            return -1;
    ev->nevents = n;
    assert(proto_event_log_check(ev->events, n) == 0); /* the encoding relies on it */
    return 0;
}

/* 1 if the rest of bio is whitespace only. */
static int
rest_is_space(BIO *bio)
{
    char buf[64];
    int n;
    while ((n = BIO_read(bio, buf, (int)sizeof(buf))) > 0)
        for (int i = 0; i < n; i++)
            if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n')
                return 0;
    return 1;
}

/* Decodes the one PEM block of the CSR text into ev->csr_der (its DER is checked later). */
static int
pem_decode_csr(struct attest_evidence *ev, char *err, size_t errlen)
{
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    int rc = -1;

    if (ev->csr_pem_len < 11 || memcmp(ev->csr_pem, "-----BEGIN ", 11) != 0 ||
        (bio = BIO_new_mem_buf(ev->csr_pem, (int)ev->csr_pem_len)) == NULL)
        goto out;
    if (PEM_read_bio(bio, &name, &header, &data, &len) != 1 || len <= 0 ||
        (strcmp(name, PEM_STRING_X509_REQ) != 0 && strcmp(name, PEM_STRING_X509_REQ_OLD) != 0) ||
        header[0] != '\0' || (size_t)len > sizeof(ev->csr_der) || !rest_is_space(bio))
        goto out;
    memcpy(ev->csr_der, data, (size_t)len);
    ev->csr_der_len = (size_t)len;
    rc = 0;
out:
    if (rc != 0)
        errbuf_set(err, errlen, "field 'csr' must be one PEM CERTIFICATE REQUEST block");
    ERR_clear_error();
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    return rc;
}

static int
parse_csr(const json_t *body, struct attest_evidence *ev, char *err, size_t errlen)
{
    const char *s;
    size_t len;
    if (get_string(body, "", "csr", &s, &len, err, errlen) != 0)
        return -1;
    if (len < 1 || len > PROTO_EVIDENCE_CSR_MAX || strlen(s) != len) {
        errbuf_set(err, errlen, "field 'csr' must be 1 to %d bytes of PEM", PROTO_EVIDENCE_CSR_MAX);
        return -1;
    }
    ev->csr_pem = s;
    ev->csr_pem_len = len;
    return pem_decode_csr(ev, err, errlen);
}

static int
parse_signature(const json_t *body, struct attest_evidence *ev, char *err, size_t errlen)
{
    const char *s, *end = NULL;
    size_t len, bin = 0;
    if (get_string(body, "", "signature", &s, &len, err, errlen) != 0)
        return -1;
    if (len < 4 || len > PROTO_EVIDENCE_SIG_B64_MAX ||
        sodium_base642bin(ev->sig, sizeof(ev->sig), s, len, NULL, &bin, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != s + len || bin == 0) {
        errbuf_set(err, errlen,
                   "field 'signature' must be padded base64 (RFC 4648) of at most %d characters",
                   PROTO_EVIDENCE_SIG_B64_MAX);
        return -1;
    }
    ev->sig_len = bin;
    return 0;
}

static int
parse_header(const json_t *body, struct attest_evidence *ev, char *err, size_t errlen)
{
    const json_t *v = json_object_get(body, "version");
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) != PROTO_VERSION) {
        errbuf_set(err, errlen, "field 'version' must be %d", PROTO_VERSION);
        return -1;
    }
    if (get_hex32(body, "", "device_id", ev->device_id_raw, err, errlen) != 0)
        return -1;
    proto_hex(ev->device_id_raw, PROTO_HASH_LEN, ev->device_id);
    if (get_hex32(body, "", "nonce", ev->nonce, err, errlen) != 0 ||
        get_hex32(body, "", "composite", ev->composite, err, errlen) != 0)
        return -1;
    return 0;
}

int
attest_parse(const json_t *body, struct attest_evidence *ev, char *err, size_t errlen)
{
    static const char *const keys[] = {"version",   "device_id", "nonce",     "composite",
                                       "event_log", "csr",       "signature", NULL};
    memset(ev, 0, sizeof(*ev));
    if (!json_is_object(body)) {
        errbuf_set(err, errlen, "the evidence must be a JSON object");
        return -1;
    }
    if (jsonx_only_keys(body, keys, err, errlen) != 0 || parse_header(body, ev, err, errlen) != 0 ||
        parse_events(body, ev, err, errlen) != 0 || parse_csr(body, ev, err, errlen) != 0 ||
        parse_signature(body, ev, err, errlen) != 0) {
        sodium_memzero(ev->nonce, sizeof(ev->nonce));
        return -1;
    }
    return 0;
}

/* --- Keys, signatures, CSRs --- */

static EVP_PKEY *
load_pubkey(const char *pem)
{
    size_t len = strnlen(pem, PUBKEY_PEM_MAX + 1);
    if (len == 0 || len > PUBKEY_PEM_MAX)
        return NULL;
    return pki_pubkey_from_pem(pem, len);
}

int
attest_verify_signature(const char *pubkey_pem, const unsigned char *msg, size_t msglen,
                        const unsigned char *sig, size_t siglen, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    int rc = 0;

    if (pubkey_pem == NULL || msg == NULL || sig == NULL || siglen == 0) {
        errbuf_set(err, errlen, "signature or key missing");
        goto out;
    }
    key = load_pubkey(pubkey_pem);
    if (!pki_is_p256(key)) {
        errbuf_set(err, errlen, "the registered identity key is not an EC P-256 public key");
        goto out;
    }
    /* A new context for every verification: OpenSSL 3.0.x could keep the first key of a reused
     * context re-initialised with another. */
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1) {
        errbuf_set(err, errlen, "cannot set up signature verification");
        rc = -1;
        goto out;
    }
    if (EVP_DigestVerify(md, sig, siglen, msg, msglen) == 1)
        rc = 1;
    else
        errbuf_set(err, errlen, "the signature does not verify with the device's identity key");
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return rc;
}

int
attest_check_csr(const unsigned char *der, size_t len, char *err, size_t errlen)
{
    struct pki_csr csr;
    const unsigned char *p = der;

    if (der == NULL || len == 0 || len > ATTEST_CSR_DER_MAX) {
        errbuf_set(err, errlen, "the CSR is empty or too large");
        return -1;
    }
    int rc = pki_csr_parse(&p, len, &csr);
    if (rc == 0 && p != der + len)
        rc = PKI_CSR_NOT_CSR;
    pki_csr_free(&csr);
    if (rc == PKI_CSR_NOT_CSR)
        errbuf_set(err, errlen, "the CSR is not one DER PKCS#10 request");
    else if (rc == PKI_CSR_NOT_P256)
        errbuf_set(err, errlen, "the CSR's key is not EC P-256");
    else if (rc != 0)
        errbuf_set(err, errlen, "the CSR's self-signature does not verify");
    return rc == 0 ? 0 : -1;
}

/* The DER of a PEM certificate (OPENSSL_free), as PEM_read_bio_X509 takes it. */
static unsigned char *
cert_der(const char *pem, long *len)
{
    unsigned char *der = NULL;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL || PEM_bytes_read_bio(&der, len, NULL, PEM_STRING_X509, bio, NULL, NULL) != 1)
        der = NULL;
    BIO_free(bio);
    return der;
}

int
attest_cert_info(const char *pem, char serial[ATTEST_SERIAL_HEX_MAX], int64_t *not_before,
                 int64_t *not_after, char *err, size_t errlen)
{
    BIGNUM *bn = NULL;
    unsigned char *der = NULL;
    char *hex = NULL;
    long len = 0;
    int rc = -1;

    serial[0] = '\0';
    /* Not d2i_X509: OpenSSL 3.0 would set up a key decoder for the leaf's key (pki_der.h). */
    if (pem == NULL || (der = cert_der(pem, &len)) == NULL) {
        errbuf_set(err, errlen, "not a PEM certificate");
        goto out;
    }
    if (pki_der_cert_facts(der, (size_t)len, &bn, not_before, not_after) != 0 ||
        (hex = BN_bn2hex(bn)) == NULL || strlen(hex) >= ATTEST_SERIAL_HEX_MAX) {
        errbuf_set(err, errlen, "unreadable certificate serial or validity");
        goto out;
    }
    for (size_t i = 0; hex[i] != '\0'; i++)
        serial[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
    serial[strlen(hex)] = '\0';
    rc = 0;
out:
    ERR_clear_error();
    OPENSSL_free(hex);
    OPENSSL_free(der);
    BN_free(bn);
    return rc;
}

json_t *
attest_events_json(const struct attest_evidence *ev)
{
    json_t *arr = json_array();
    char hex[PROTO_HASH_HEX + 1];
    for (size_t i = 0; arr != NULL && i < ev->nevents; i++) {
        const struct proto_event *e = &ev->events[i];
        proto_hex(e->digest, PROTO_HASH_LEN, hex);
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "stage", proto_stage_name(e->stage),
                              "component", e->component, "version", e->version, "svn",
                              (json_int_t)e->svn, "digest", hex);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}
