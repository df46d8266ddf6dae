/* Unit tests of pki_der: its CSR, key and certificate parsing gives what OpenSSL's d2i_X509_REQ,
 * d2i_PUBKEY, X509_REQ_verify and d2i_X509 give, for the common key form (its own path) and for
 * every other form (OpenSSL's generic path), and a certificate gets the same key either way. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pki_der.h"
#include "test_pki_fx.h"

#include <openssl/core_names.h>

/* The key forms a SubjectPublicKeyInfo can take. */
enum form { NAMED, COMPRESSED, EXPLICIT };

static EVP_PKEY *
p256(enum form f)
{
    EVP_PKEY *k = keygen("EC", "P-256", 0);
    if (f == COMPRESSED)
        assert_int_equal(EVP_PKEY_set_utf8_string_param(
                             k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
                         1);
    if (f == EXPLICIT)
        assert_int_equal(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_ENCODING, "explicit"),
                         1);
    return k;
}

static unsigned char *
spki_der(EVP_PKEY *k, int *len)
{
    unsigned char *der = NULL;
    *len = i2d_PUBKEY(k, &der);
    assert_true(*len > 0);
    return der;
}

/* der and then extra zero bytes (OPENSSL_free). */
static unsigned char *
longer_copy(const unsigned char *der, int len, size_t extra)
{
    unsigned char *p = OPENSSL_zalloc((size_t)len + extra);
    assert_non_null(p);
    memcpy(p, der, (size_t)len);
    return p;
}

/* A DER CSR for k, signed by signer. */
static unsigned char *
csr_der(EVP_PKEY *k, EVP_PKEY *signer, int *len)
{
    X509_REQ *req = X509_REQ_new();
    unsigned char *der = NULL;
    assert_non_null(req);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                               (const unsigned char *)"dev", -1, -1, 0);
    assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
    assert_true(X509_REQ_sign(req, signer, EVP_sha256()) > 0);
    *len = i2d_X509_REQ(req, &der);
    assert_true(*len > 0);
    X509_REQ_free(req);
    return der;
}

/* What OpenSSL's own path says of a DER CSR: 0 or a PKI_CSR_ code. */
static int
reference_csr(const unsigned char *der, int len)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, len);
    int rc = PKI_CSR_NOT_CSR;
    if (req != NULL) {
        EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
        rc = !pki_is_p256(pub)                ? PKI_CSR_NOT_P256
             : X509_REQ_verify(req, pub) != 1 ? PKI_CSR_BAD_SIGNATURE
                                              : 0;
    }
    X509_REQ_free(req);
    ERR_clear_error();
    return rc;
}

static void
test_pubkey_forms(void **state)
{
    (void)state;
    for (int f = NAMED; f <= EXPLICIT; f++) {
        int len;
        EVP_PKEY *k = p256((enum form)f);
        unsigned char *der = spki_der(k, &len);
        EVP_PKEY *got = pki_der_p256_pubkey(der, (size_t)len);
        const unsigned char *q = der;
        EVP_PKEY *want = d2i_PUBKEY(NULL, &q, len);
        assert_non_null(want);
        if (pki_is_p256(want)) {
            assert_non_null(got);
            assert_int_equal(EVP_PKEY_eq(got, want), 1);
        } else {
            assert_null(got);
        }
        assert_null(pki_der_p256_pubkey(der, (size_t)len - 1));
        EVP_PKEY_free(got);
        EVP_PKEY_free(want);
        OPENSSL_free(der);
        EVP_PKEY_free(k);
    }
    /* Other curves and types, a point off the curve, trailing bytes. */
    int len;
    EVP_PKEY *k = keygen("EC", "P-384", 0);
    unsigned char *der = spki_der(k, &len);
    assert_null(pki_der_p256_pubkey(der, (size_t)len));
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    k = keygen("ED25519", NULL, 0);
    der = spki_der(k, &len);
    assert_null(pki_der_p256_pubkey(der, (size_t)len));
    OPENSSL_free(der);
    EVP_PKEY_free(k);

    k = p256(NAMED);
    der = spki_der(k, &len);
    unsigned char *longer = longer_copy(der, len, 1);
    assert_null(pki_der_p256_pubkey(longer, (size_t)len + 1));
    der[len - 1] ^= 1; /* the point's last byte: off the curve */
    const unsigned char *q = der;
    EVP_PKEY *ref = d2i_PUBKEY(NULL, &q, len);
    assert_false(pki_is_p256(ref));
    assert_null(pki_der_p256_pubkey(der, (size_t)len));
    EVP_PKEY_free(ref);
    OPENSSL_free(longer);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    ERR_clear_error();
}

static void
test_csr_as_openssl(void **state)
{
    (void)state;
    EVP_PKEY *other = p256(NAMED);
    for (int f = NAMED; f <= EXPLICIT; f++) {
        int len;
        EVP_PKEY *k = p256((enum form)f);
        unsigned char *der = csr_der(k, k, &len);
        struct pki_csr csr;
        const unsigned char *p = der;

        /* Good; with bytes after it (left to the caller, as d2i). */
        unsigned char *longer = longer_copy(der, len, 3);
        p = longer;
        assert_int_equal(pki_csr_parse(&p, (size_t)len + 3, &csr), reference_csr(der, len));
        assert_int_equal(reference_csr(der, len), 0);
        assert_ptr_equal(p, longer + len);
        assert_int_equal(EVP_PKEY_eq(csr.key, k), 1);
        assert_true(f == NAMED ? csr.spki_point != NULL : csr.spki_point == NULL);

        /* The certificate gets the same key, and can give it back. */
        X509 *cert = X509_new();
        unsigned char *got = NULL, *want = NULL;
        assert_int_equal(pki_csr_set_pubkey(cert, &csr), 0);
        int glen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &got);
        int wlen = i2d_PUBKEY(k, &want);
        assert_int_equal(glen, wlen);
        assert_memory_equal(got, want, (size_t)wlen);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), k), 1);
        OPENSSL_free(got);
        OPENSSL_free(want);
        X509_free(cert);
        pki_csr_free(&csr);
        OPENSSL_free(longer);

        /* Signed by another key; truncated; the signature's last byte changed. */
        int blen;
        unsigned char *bad = csr_der(k, other, &blen);
        p = bad;
        assert_int_equal(pki_csr_parse(&p, (size_t)blen, &csr), PKI_CSR_BAD_SIGNATURE);
        assert_int_equal(reference_csr(bad, blen), PKI_CSR_BAD_SIGNATURE);
        assert_null(csr.key);
        p = der;
        assert_int_equal(pki_csr_parse(&p, (size_t)len - 1, &csr), PKI_CSR_NOT_CSR);
        der[len - 1] ^= 1;
        p = der;
        assert_int_equal(pki_csr_parse(&p, (size_t)len, &csr), reference_csr(der, len));
        OPENSSL_free(bad);
        OPENSSL_free(der);
        EVP_PKEY_free(k);
    }
    /* Another curve. */
    int len;
    EVP_PKEY *k = keygen("EC", "P-384", 0);
    unsigned char *der = csr_der(k, k, &len);
    struct pki_csr csr;
    const unsigned char *p = der;
    assert_int_equal(pki_csr_parse(&p, (size_t)len, &csr), PKI_CSR_NOT_P256);
    assert_int_equal(reference_csr(der, len), PKI_CSR_NOT_P256);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static int64_t
unix_of(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

static void
test_cert_facts(void **state)
{
    (void)state;
    char err[256];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    unsigned char *der = NULL;
    BIGNUM *serial = NULL;
    int64_t nb = 0, na = 0;

    assert_int_equal(pki_make_root("Facts", "Org", -1, 86400, &key, &cert, err, sizeof(err)), 0);
    int len = i2d_X509(cert, &der);
    assert_true(len > 0);
    assert_int_equal(pki_der_cert_facts(der, (size_t)len, &serial, &nb, &na), 0);
    BIGNUM *want = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    assert_int_equal(BN_cmp(serial, want), 0);
    assert_int_equal(nb, unix_of(X509_get0_notBefore(cert)));
    assert_int_equal(na, unix_of(X509_get0_notAfter(cert)));
    BN_free(serial);
    assert_int_equal(pki_der_cert_facts(der, (size_t)len - 1, &serial, &nb, &na), -1);
    assert_null(serial);
    assert_int_equal(pki_der_cert_facts((const unsigned char *)"x", 1, &serial, &nb, &na), -1);
    BN_free(want);
    OPENSSL_free(der);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* The shared template key is made once and only read: parses from several threads at once. */
static void *
parse_many(void *arg)
{
    const unsigned char *der = arg;
    size_t len = ((size_t)der[1]) + 2; /* a short-form DER SEQUENCE */
    for (int i = 0; i < 200; i++) {
        EVP_PKEY *k = pki_der_p256_pubkey(der, len);
        if (k == NULL)
            return (void *)1;
        EVP_PKEY_free(k);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    int len;
    EVP_PKEY *k = p256(NAMED);
    unsigned char *der = spki_der(k, &len);
    assert_int_equal((size_t)der[1] + 2, (size_t)len);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, parse_many, der), 0);
    for (int i = 0; i < 4; i++) {
        void *rc = NULL;
        assert_int_equal(pthread_join(th[i], &rc), 0);
        assert_null(rc);
    }
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pubkey_forms),
        cmocka_unit_test(test_csr_as_openssl),
        cmocka_unit_test(test_cert_facts),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
