/* evidence: the device ID, operational key, CSR and evidence JSON (docs/protocol.md sections 1-3)
 * with OpenSSL and jansson; the encodings themselves are proto_event's. */
#include "evidence.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

struct adev_opkey {
    EVP_PKEY *key;
};

int
adev_device_id(const uint8_t spki[ADEV_SPKI_LEN], uint8_t id[PROTO_HASH_LEN])
{
    return proto_sha256(spki, ADEV_SPKI_LEN, id);
}

int
adev_attest_message(const uint8_t nonce[PROTO_HASH_LEN], const uint8_t device_id[PROTO_HASH_LEN],
                    const uint8_t composite[PROTO_HASH_LEN], const uint8_t *csr_der, size_t csr_len,
                    uint8_t msg[PROTO_MSG_LEN])
{
    uint8_t csr_hash[PROTO_HASH_LEN];

    if (nonce == NULL || device_id == NULL || composite == NULL || csr_der == NULL ||
        csr_len == 0 || msg == NULL || proto_sha256(csr_der, csr_len, csr_hash) != 0)
        return -1;
    proto_attest_message(nonce, device_id, composite, csr_hash, msg);
    return 0;
}

/* --- operational key ------------------------------------------------------------------------- */

adev_opkey *
adev_opkey_generate(void)
{
    adev_opkey *k = NULL, *res = NULL;

    k = calloc(1, sizeof(*k));
    if (k == NULL || (k->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
        goto out;
    res = k;
    k = NULL;
out:
    adev_opkey_free(k);
    return res;
}

adev_opkey *
adev_opkey_from_pem(const char *pem, size_t len)
{
    adev_opkey *k = NULL;
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;

    if (pem == NULL || len == 0 || len > 16384)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        goto out;
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (key == NULL || !EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != 256)
        goto out;
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        goto out;
    k->key = key;
    key = NULL;
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    return k;
}

/* The contents of a memory BIO as a malloc'd NUL-terminated string, or NULL. */
static char *
bio_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || data == NULL)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

char *
adev_opkey_pem(const adev_opkey *k)
{
    char *s = NULL;
    BIO *bio = NULL;

    if (k == NULL)
        goto out;
    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL || PEM_write_bio_PKCS8PrivateKey(bio, k->key, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    s = bio_string(bio);
out:
    BIO_free(bio);
    return s;
}

int
adev_opkey_csr(const adev_opkey *k, const char *cn, char **pem, uint8_t **der, size_t *der_len)
{
    int rc = -1;
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    BIO *bio = NULL;
    char *p = NULL;
    uint8_t *d = NULL;

    if (pem != NULL)
        *pem = NULL;
    if (der != NULL)
        *der = NULL;
    if (k == NULL || cn == NULL || *cn == '\0')
        goto out;
    req = X509_REQ_new();
    name = X509_NAME_new();
    if (req == NULL || name == NULL || X509_REQ_set_version(req, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, k->key) != 1 ||
        X509_REQ_sign(req, k->key, EVP_sha256()) <= 0)
        goto out;
    if (pem != NULL) {
        bio = BIO_new(BIO_s_mem());
        if (bio == NULL || PEM_write_bio_X509_REQ(bio, req) != 1 || (p = bio_string(bio)) == NULL)
            goto out;
    }
    if (der != NULL) {
        int n = i2d_X509_REQ(req, NULL);
        if (n <= 0 || der_len == NULL || (d = malloc((size_t)n)) == NULL)
            goto out;
        uint8_t *q = d;
        if (i2d_X509_REQ(req, &q) != n)
            goto out;
        *der_len = (size_t)n;
    }
    if (pem != NULL)
        *pem = p;
    if (der != NULL)
        *der = d;
    p = NULL;
    d = NULL;
    rc = 0;
out:
    free(p);
    free(d);
    BIO_free(bio);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return rc;
}

int
adev_opkey_matches_cert(const adev_opkey *k, const char *cert_pem)
{
    int rc = -1;
    BIO *bio = NULL;
    X509 *cert = NULL;

    if (k == NULL || cert_pem == NULL)
        goto out;
    bio = BIO_new_mem_buf(cert_pem, -1);
    if (bio == NULL || (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
        goto out;
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (pub == NULL)
        goto out;
    rc = EVP_PKEY_eq(pub, k->key) == 1 ? 1 : 0;
out:
    X509_free(cert);
    BIO_free(bio);
    return rc;
}

/* Seconds from the epoch to t. */
static int
asn1_unix(const ASN1_TIME *t, int64_t *out)
{
    int rc = -1, days = 0, secs = 0;
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    if (epoch == NULL || t == NULL || ASN1_TIME_diff(&days, &secs, epoch, t) != 1)
        goto out;
    *out = (int64_t)days * 86400 + secs;
    rc = 0;
out:
    ASN1_TIME_free(epoch);
    return rc;
}

int
adev_cert_validity(const char *cert_pem, int64_t *not_before, int64_t *not_after)
{
    int rc = -1;
    BIO *bio = NULL;
    X509 *cert = NULL;

    if (cert_pem == NULL || not_before == NULL || not_after == NULL)
        goto out;
    bio = BIO_new_mem_buf(cert_pem, -1);
    if (bio == NULL || (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
        goto out;
    if (asn1_unix(X509_get0_notBefore(cert), not_before) != 0 ||
        asn1_unix(X509_get0_notAfter(cert), not_after) != 0)
        goto out;
    rc = 0;
out:
    X509_free(cert);
    BIO_free(bio);
    return rc;
}

void
adev_opkey_free(adev_opkey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->key);
    free(k);
}

void
adev_free_secret_str(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* --- evidence JSON --------------------------------------------------------------------------- */

static json_t *
hex_string(const uint8_t *b, size_t n)
{
    char buf[2 * 32 + 1];
    if (n > 32)
        return NULL;
    proto_hex(b, n, buf);
    return json_string(buf);
}

static json_t *
event_json(const struct proto_event *e)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:o}", "stage", proto_stage_name(e->stage), "component",
                     e->component, "version", e->version, "svn", (json_int_t)e->svn, "digest",
                     hex_string(e->digest, 32));
}

char *
adev_evidence_json(const struct adev_evidence *ev)
{
    char *out = NULL;
    json_t *root = NULL, *log = NULL;
    char *b64 = NULL;

    if (ev == NULL || ev->csr_pem == NULL || ev->signature == NULL || ev->sig_len == 0 ||
        ev->sig_len > ADEV_SIG_MAX || proto_event_log_check(ev->events, ev->n_events) != 0)
        goto out;
    log = json_array();
    if (log == NULL)
        goto out;
    for (size_t i = 0; i < ev->n_events; i++) {
        if (json_array_append_new(log, event_json(&ev->events[i])) != 0)
            goto out;
    }
    b64 = malloc(4 * ((ev->sig_len + 2) / 3) + 1);
    if (b64 == NULL)
        goto out;
    EVP_EncodeBlock((unsigned char *)b64, ev->signature, (int)ev->sig_len);
    root = json_pack("{s:i, s:o, s:o, s:o, s:O, s:s, s:s}", "version", PROTO_VERSION, "device_id",
                     hex_string(ev->device_id, 32), "nonce", hex_string(ev->nonce, 32), "composite",
                     hex_string(ev->composite, 32), "event_log", log, "csr", ev->csr_pem,
                     "signature", b64);
    if (root == NULL)
        goto out;
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    free(b64);
    json_decref(log);
    json_decref(root);
    return out;
}

char *
adev_evidence_build(adev_keystore *ks, const uint8_t nonce[32], const struct proto_event *ev,
                    size_t n, const adev_opkey *op, uint8_t composite[32])
{
    char *json = NULL, *csr_pem = NULL;
    uint8_t *csr_der = NULL;
    size_t csr_len = 0, sig_len = 0;
    uint8_t spki[ADEV_SPKI_LEN], msg[PROTO_MSG_LEN], sig[ADEV_SIG_MAX];
    char cn[PROTO_HASH_HEX + 1];
    struct adev_evidence e;

    memset(&e, 0, sizeof(e));
    if (ks == NULL || nonce == NULL || op == NULL || proto_event_log_check(ev, n) != 0)
        goto out;
    if (adev_keystore_public_der(ks, spki) != 0 || adev_device_id(spki, e.device_id) != 0 ||
        proto_composite(ev, n, e.composite) != 0)
        goto out;
    proto_hex(e.device_id, 32, cn);
    if (adev_opkey_csr(op, cn, &csr_pem, &csr_der, &csr_len) != 0)
        goto out;
    memcpy(e.nonce, nonce, 32);
    if (adev_attest_message(e.nonce, e.device_id, e.composite, csr_der, csr_len, msg) != 0 ||
        adev_keystore_sign(ks, msg, sizeof(msg), sig, sizeof(sig), &sig_len) != 0)
        goto out;
    e.events = ev;
    e.n_events = n;
    e.csr_pem = csr_pem;
    e.signature = sig;
    e.sig_len = sig_len;
    json = adev_evidence_json(&e);
    if (json != NULL && composite != NULL)
        memcpy(composite, e.composite, 32);
out:
    free(csr_pem);
    free(csr_der);
    return json;
}
