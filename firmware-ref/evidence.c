/* evidence: protocol encodings (docs/protocol.md sections 1-3) with OpenSSL and jansson. */
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

static const char *const stage_names[] = {NULL, "bootloader", "os", "app"};

const char *
adev_stage_name(int stage)
{
    return stage >= ADEV_STAGE_BOOTLOADER && stage <= ADEV_STAGE_APP ? stage_names[stage] : NULL;
}

int
adev_stage_parse(const char *name)
{
    for (int i = ADEV_STAGE_BOOTLOADER; name != NULL && i <= ADEV_STAGE_APP; i++) {
        if (strcmp(name, stage_names[i]) == 0)
            return i;
    }
    return -1;
}

int
adev_event_check(const struct adev_event *e)
{
    if (e == NULL || adev_stage_name(e->stage) == NULL)
        return -1;
    size_t nc = strnlen(e->component, sizeof(e->component));
    size_t nv = strnlen(e->version, sizeof(e->version));
    if (nc == 0 || nc > ADEV_COMPONENT_MAX || nv == 0 || nv > ADEV_VERSION_MAX)
        return -1;
    for (size_t i = 0; i < nc; i++) {
        char c = e->component[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return -1;
    }
    for (size_t i = 0; i < nv; i++) {
        unsigned char c = (unsigned char)e->version[i];
        if (c < 0x21 || c > 0x7e)
            return -1;
    }
    return 0;
}

int
adev_event_log_check(const struct adev_event *ev, size_t n)
{
    if (ev == NULL || n < ADEV_EVENTS_MIN || n > ADEV_EVENTS_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int want = i == 0 ? ADEV_STAGE_BOOTLOADER : i == 1 ? ADEV_STAGE_OS : ADEV_STAGE_APP;
        if (adev_event_check(&ev[i]) != 0 || ev[i].stage != want)
            return -1;
    }
    return 0;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int
adev_event_encode(const struct adev_event *e, uint8_t *out, size_t cap, size_t *len)
{
    if (adev_event_check(e) != 0 || out == NULL || len == NULL || cap < ADEV_EVENT_ENC_MAX)
        return -1;
    size_t nc = strlen(e->component), nv = strlen(e->version), o = 0;
    out[o++] = e->stage;
    out[o++] = (uint8_t)nc;
    memcpy(out + o, e->component, nc);
    o += nc;
    out[o++] = (uint8_t)nv;
    memcpy(out + o, e->version, nv);
    o += nv;
    put_u32(out + o, e->svn);
    o += 4;
    memcpy(out + o, e->digest, 32);
    o += 32;
    *len = o;
    return 0;
}

int
adev_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return -1;
    return 0;
}

int
adev_composite_extend(uint8_t composite[32], const struct adev_event *e)
{
    uint8_t acc[64]; /* C_{i-1} || SHA256(enc(e_i)) */
    uint8_t enc[ADEV_EVENT_ENC_MAX];
    size_t len;

    if (composite == NULL || adev_event_encode(e, enc, sizeof(enc), &len) != 0)
        return -1;
    memcpy(acc, composite, 32);
    if (adev_sha256(enc, len, acc + 32) != 0 || adev_sha256(acc, sizeof(acc), composite) != 0)
        return -1;
    return 0;
}

int
adev_composite(const struct adev_event *ev, size_t n, uint8_t out[32])
{
    uint8_t c[32];

    if ((ev == NULL && n > 0) || out == NULL)
        return -1;
    memset(c, 0, sizeof(c));
    for (size_t i = 0; i < n; i++) {
        if (adev_composite_extend(c, &ev[i]) != 0)
            return -1;
    }
    memcpy(out, c, 32);
    return 0;
}

int
adev_device_id(const uint8_t spki[ADEV_SPKI_LEN], uint8_t id[32])
{
    return adev_sha256(spki, ADEV_SPKI_LEN, id);
}

void
adev_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
adev_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (hex == NULL || strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int
adev_attest_message(const uint8_t nonce[32], const uint8_t device_id[32],
                    const uint8_t composite[32], const uint8_t *csr_der, size_t csr_len,
                    uint8_t msg[ADEV_MSG_LEN])
{
    if (nonce == NULL || device_id == NULL || composite == NULL || csr_der == NULL ||
        csr_len == 0 || msg == NULL)
        return -1;
    memcpy(msg, ADEV_MSG_TAG, 16); /* the string's NUL is the 16th byte */
    memcpy(msg + 16, nonce, 32);
    memcpy(msg + 48, device_id, 32);
    memcpy(msg + 80, composite, 32);
    return adev_sha256(csr_der, csr_len, msg + 112);
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
    adev_hex(b, n, buf);
    return json_string(buf);
}

static json_t *
event_json(const struct adev_event *e)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:o}", "stage", adev_stage_name(e->stage), "component",
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
        ev->sig_len > ADEV_SIG_MAX || adev_event_log_check(ev->events, ev->n_events) != 0)
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
    root = json_pack("{s:i, s:o, s:o, s:o, s:O, s:s, s:s}", "version", 1, "device_id",
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
adev_evidence_build(adev_keystore *ks, const uint8_t nonce[32], const struct adev_event *ev,
                    size_t n, const adev_opkey *op, uint8_t composite[32])
{
    char *json = NULL, *csr_pem = NULL;
    uint8_t *csr_der = NULL;
    size_t csr_len = 0, sig_len = 0;
    uint8_t spki[ADEV_SPKI_LEN], msg[ADEV_MSG_LEN], sig[ADEV_SIG_MAX];
    char cn[ADEV_ID_HEX];
    struct adev_evidence e;

    memset(&e, 0, sizeof(e));
    if (ks == NULL || nonce == NULL || op == NULL || adev_event_log_check(ev, n) != 0)
        goto out;
    if (adev_keystore_public_der(ks, spki) != 0 || adev_device_id(spki, e.device_id) != 0 ||
        adev_composite(ev, n, e.composite) != 0)
        goto out;
    adev_hex(e.device_id, 32, cn);
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
