/* http_tlskey (server/http/http_tlskey.h): the TLS identity whose private key is the signer's. The
 * signer is faked here (signer_tls_sign_digest below, so signer.o is not linked): it signs with a
 * key made by the test, or fails as a dead signer does. Checks the start-time checks of the chain,
 * that a signature through the external key is the signer's (and what GnuTLS hands it: a SHA-256
 * digest), that a failing signer fails the signature without a crash, and the one serving identity
 * that the certificate callback answers with. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http_tlskey.h"
#include "signer.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The fake signer: its key, whether it fails, and what it was last asked. */
static gnutls_privkey_t fake_key;
static int fake_fails;
static unsigned fake_calls;
static const unsigned char *fake_expect; /* the digest it must be asked for, when not NULL */

int
signer_tls_sign_digest(signer *s, const unsigned char digest[SIGNER_TLS_DIGEST_LEN],
                       unsigned char sig[SIGNER_SIG_MAX], size_t *siglen, char *err, size_t errlen)
{
    (void)s;
    fake_calls++;
    if (fake_expect != NULL)
        assert_memory_equal(digest, fake_expect, SIGNER_TLS_DIGEST_LEN);
    if (fake_fails) {
        snprintf(err, errlen, "signer unavailable (fake)");
        return SIGNER_UNAVAILABLE;
    }
    gnutls_datum_t d = {(unsigned char *)digest, SIGNER_TLS_DIGEST_LEN}, out = {NULL, 0};
    assert_int_equal(gnutls_privkey_sign_hash2(fake_key, GNUTLS_SIGN_ECDSA_SHA256, 0, &d, &out), 0);
    assert_true(out.size <= SIGNER_SIG_MAX);
    memcpy(sig, out.data, out.size);
    *siglen = out.size;
    gnutls_free(out.data);
    return 0;
}

/* Any non-NULL pointer: the fake ignores it. */
static char sg_dummy;
#define SG ((signer *)(void *)&sg_dummy)

struct ident {
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    char *pem;
};

/* A key (EC P-256, or RSA) and its certificate, issued by issuer (self-signed when NULL). */
static void
ident_make(struct ident *id, int rsa, const struct ident *issuer, const char *cn)
{
    gnutls_datum_t out = {NULL, 0};
    assert_int_equal(gnutls_x509_privkey_init(&id->key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(
                         id->key, rsa ? GNUTLS_PK_RSA : GNUTLS_PK_ECDSA,
                         rsa ? 2048 : GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                     0);
    assert_int_equal(gnutls_x509_crt_init(&id->crt), 0);
    assert_int_equal(gnutls_x509_crt_set_version(id->crt, 3), 0);
    unsigned char serial[8];
    assert_int_equal(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)), 0);
    serial[0] &= 0x7f;
    assert_int_equal(gnutls_x509_crt_set_serial(id->crt, serial, sizeof(serial)), 0);
    assert_int_equal(gnutls_x509_crt_set_activation_time(id->crt, time(NULL) - 60), 0);
    assert_int_equal(gnutls_x509_crt_set_expiration_time(id->crt, time(NULL) + 3600), 0);
    assert_int_equal(gnutls_x509_crt_set_dn(id->crt, cn, NULL), 0);
    assert_int_equal(gnutls_x509_crt_set_key(id->crt, id->key), 0);
    if (issuer == NULL)
        assert_int_equal(gnutls_x509_crt_set_basic_constraints(id->crt, 1, -1), 0);
    const struct ident *by = issuer != NULL ? issuer : id;
    assert_int_equal(gnutls_x509_crt_sign2(id->crt, by->crt, by->key, GNUTLS_DIG_SHA256, 0), 0);
    assert_int_equal(gnutls_x509_crt_export2(id->crt, GNUTLS_X509_FMT_PEM, &out), 0);
    id->pem = calloc(1, out.size + 1);
    assert_non_null(id->pem);
    memcpy(id->pem, out.data, out.size);
    gnutls_free(out.data);
}

static void
ident_free(struct ident *id)
{
    gnutls_x509_crt_deinit(id->crt);
    gnutls_x509_privkey_deinit(id->key);
    free(id->pem);
}

/* The fake signer signs with id's key from now on. */
static void
signer_uses(const struct ident *id)
{
    gnutls_privkey_deinit(fake_key);
    assert_int_equal(gnutls_privkey_init(&fake_key), 0);
    assert_int_equal(gnutls_privkey_import_x509(fake_key, id->key, 0), 0);
    fake_fails = 0;
}

static char *
concat(const char *a, const char *b)
{
    char *s = malloc(strlen(a) + strlen(b) + 1);
    assert_non_null(s);
    strcpy(s, a);
    strcat(s, b);
    return s;
}

static void
test_signature_is_the_signers(void **state)
{
    (void)state;
    struct ident ca, leaf;
    char err[256];
    ident_make(&ca, 0, NULL, "CN=test ca");
    ident_make(&leaf, 0, &ca, "CN=127.0.0.1");
    signer_uses(&leaf);
    char *chain = concat(leaf.pem, ca.pem);
    fake_calls = 0;
    http_tlskey *k = http_tlskey_new(SG, chain, err, sizeof(err));
    assert_non_null(k);
    assert_int_equal(fake_calls, 1); /* the start-time check */

    assert_int_equal(http_tlskey_serve(k, err, sizeof(err)), 0);
    gnutls_pcert_st *pc = NULL;
    unsigned int n = 0;
    gnutls_privkey_t pk = NULL;
    assert_int_equal(http_tlskey_retrieve(NULL, NULL, 0, NULL, 0, &pc, &n, &pk), 0);
    assert_int_equal(n, 2); /* the leaf first */
    gnutls_datum_t leaf_der = {NULL, 0};
    assert_int_equal(gnutls_x509_crt_export2(leaf.crt, GNUTLS_X509_FMT_DER, &leaf_der), 0);
    assert_int_equal(pc[0].cert.size, leaf_der.size);
    assert_memory_equal(pc[0].cert.data, leaf_der.data, leaf_der.size);
    gnutls_free(leaf_der.data);

    /* Signed through the external key as GnuTLS does in a handshake (TLS 1.3's and 1.2's names of
     * the algorithm): the signer is asked for the SHA-256 digest of the data. */
    unsigned char msg[64 + 34 + 48], digest[SIGNER_TLS_DIGEST_LEN];
    memset(msg, ' ', sizeof(msg));
    assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, msg, sizeof(msg), digest), 0);
    gnutls_datum_t d = {msg, sizeof(msg)}, sig = {NULL, 0};
    for (int i = 0; i < 2; i++) {
        gnutls_sign_algorithm_t algo =
            i ? GNUTLS_SIGN_ECDSA_SHA256 : GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
        fake_calls = 0;
        fake_expect = digest;
        assert_int_equal(gnutls_privkey_sign_data2(pk, algo, 0, &d, &sig), 0);
        fake_expect = NULL;
        assert_int_equal(fake_calls, 1);
        assert_true(gnutls_pubkey_verify_data2(pc[0].pubkey, algo, 0, &d, &sig) >= 0);
        gnutls_free(sig.data);
        sig.data = NULL;
    }

    /* A dead signer fails the signature (the handshake), nothing else. */
    fake_fails = 1;
    assert_int_equal(gnutls_privkey_sign_data2(pk, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, &d, &sig),
                     GNUTLS_E_PK_SIGN_FAILED);
    /* Only ECDSA with SHA-256: the signer signs nothing else. */
    fake_fails = 0;
    assert_true(gnutls_privkey_sign_data2(pk, GNUTLS_SIGN_ECDSA_SHA384, 0, &d, &sig) < 0);

    http_tlskey_free(k);
    /* Freed: it serves no more. */
    assert_int_equal(http_tlskey_retrieve(NULL, NULL, 0, NULL, 0, &pc, &n, &pk), -1);
    free(chain);
    ident_free(&leaf);
    ident_free(&ca);
}

static void
test_one_serving_identity(void **state)
{
    (void)state;
    struct ident id;
    char err[256];
    ident_make(&id, 0, NULL, "CN=127.0.0.1");
    signer_uses(&id);
    http_tlskey *a = http_tlskey_new(SG, id.pem, err, sizeof(err));
    http_tlskey *b = http_tlskey_new(SG, id.pem, err, sizeof(err));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(http_tlskey_serve(a, err, sizeof(err)), 0);
    assert_int_equal(http_tlskey_serve(b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already serves"));
    http_tlskey_free(b); /* not serving: a still does */
    gnutls_pcert_st *pc = NULL;
    unsigned int n = 0;
    gnutls_privkey_t pk = NULL;
    assert_int_equal(http_tlskey_retrieve(NULL, NULL, 0, NULL, 0, &pc, &n, &pk), 0);
    http_tlskey_free(a);
    ident_free(&id);
}

/* http_tlskey_new refuses chain (err must contain what). */
static void
expect_refused(const char *chain, const char *what)
{
    char err[256] = "";
    http_tlskey *k = http_tlskey_new(SG, chain, err, sizeof(err));
    assert_null(k);
    if (strstr(err, what) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, what);
}

static void
test_start_checks(void **state)
{
    (void)state;
    struct ident ca, leaf, other, rsa;
    ident_make(&ca, 0, NULL, "CN=test ca");
    ident_make(&leaf, 0, &ca, "CN=127.0.0.1");
    ident_make(&other, 0, NULL, "CN=other");
    ident_make(&rsa, 1, NULL, "CN=rsa");
    signer_uses(&leaf);
    char *reversed = concat(ca.pem, leaf.pem);
    expect_refused(reversed, "TLS certificate chain");
    expect_refused("", "TLS certificate chain");
    expect_refused("not a certificate", "TLS certificate chain");
    expect_refused(other.pem, "does not match");
    expect_refused(rsa.pem, "not EC P-256");
    fake_fails = 1;
    expect_refused(leaf.pem, "cannot sign");
    free(reversed);
    ident_free(&rsa);
    ident_free(&other);
    ident_free(&leaf);
    ident_free(&ca);
}

static int
teardown(void **state)
{
    (void)state;
    gnutls_privkey_deinit(fake_key);
    fake_key = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_signature_is_the_signers, teardown),
        cmocka_unit_test_teardown(test_one_serving_identity, teardown),
        cmocka_unit_test_teardown(test_start_checks, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
