/* Unit tests of pki_device_id_from_pem: a device's ID is the SHA-256 of its P-256 public key's
 * DER (the same as the openssl command line's), and what is not exactly one such key is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_pki_fx.h"

static char *
pubkey_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
    char *s = bio_string(bio);
    BIO_free(bio);
    return s;
}

static void
test_device_id(void **state)
{
    (void)state;
    char err[256], id[65], id2[65], path[PATH_MAX], cmd[2 * PATH_MAX], out[256];
    char *norm = NULL;
    EVP_PKEY *k = keygen("EC", "P-256", 0);
    char *pem = pubkey_pem(k);

    assert_int_equal(pki_device_id_from_pem(pem, strlen(pem), id, &norm, err, sizeof(err)), 0);
    assert_int_equal(strlen(id), 64);
    assert_non_null(norm);
    assert_string_equal(norm, pem);

    /* Same as openssl pkey -pubin -outform DER | sha256sum. */
    tmp_path(path, sizeof(path), "dev.pub");
    write_text(path, pem);
    snprintf(cmd, sizeof(cmd), "openssl pkey -pubin -in '%s' -outform DER | sha256sum", path);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_true(strlen(out) >= 64);
    assert_memory_equal(out, id, 64);

    /* Surrounding whitespace is fine and gives the same id; norm_pem may be NULL. */
    size_t plen = strlen(pem);
    char *ws = malloc(plen + 16);
    assert_non_null(ws);
    snprintf(ws, plen + 16, "\n  %s\n\n", pem);
    assert_int_equal(pki_device_id_from_pem(ws, strlen(ws), id2, NULL, err, sizeof(err)), 0);
    assert_string_equal(id, id2);

    /* Trailing and leading garbage. */
    snprintf(ws, plen + 16, "%sjunk\n", pem);
    assert_int_equal(pki_device_id_from_pem(ws, strlen(ws), id2, NULL, err, sizeof(err)), -1);
    snprintf(ws, plen + 16, "junk\n%s", pem);
    assert_int_equal(pki_device_id_from_pem(ws, strlen(ws), id2, NULL, err, sizeof(err)), -1);
    free(ws);

    /* Length bound: the text given is what counts. */
    assert_int_equal(pki_device_id_from_pem(pem, plen - 10, id2, NULL, err, sizeof(err)), -1);
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, ' ', 5000 - plen - 1);
    memcpy(big + 5000 - plen - 1, pem, plen + 1);
    assert_int_equal(pki_device_id_from_pem(big, strlen(big), id2, NULL, err, sizeof(err)), -1);
    free(big);

    /* RSA, P-384, garbage, a private key, an empty string. */
    EVP_PKEY *rsa = keygen("RSA", NULL, 2048);
    char *rsa_pem = pubkey_pem(rsa);
    free(norm);
    norm = NULL;
    assert_int_equal(pki_device_id_from_pem(rsa_pem, strlen(rsa_pem), id2, &norm, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "P-256"));
    EVP_PKEY *p384 = keygen("EC", "P-384", 0);
    char *p384_pem = pubkey_pem(p384);
    assert_int_equal(
        pki_device_id_from_pem(p384_pem, strlen(p384_pem), id2, NULL, err, sizeof(err)), -1);
    const char *garbage = "-----BEGIN PUBLIC KEY-----\nnot base64!!\n-----END PUBLIC KEY-----\n";
    assert_int_equal(pki_device_id_from_pem(garbage, strlen(garbage), id2, NULL, err, sizeof(err)),
                     -1);
    assert_int_equal(pki_device_id_from_pem("hello", 5, id2, NULL, err, sizeof(err)), -1);
    assert_int_equal(pki_device_id_from_pem("", 0, id2, NULL, err, sizeof(err)), -1);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    char *priv = bio_string(bio);
    BIO_free(bio);
    assert_int_equal(pki_device_id_from_pem(priv, strlen(priv), id2, NULL, err, sizeof(err)), -1);
    OPENSSL_cleanse(priv, strlen(priv));
    free(priv);
    assert_null(norm); /* left NULL by the failures */

    free(p384_pem);
    EVP_PKEY_free(p384);
    free(rsa_pem);
    EVP_PKEY_free(rsa);
    free(norm);
    free(pem);
    EVP_PKEY_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_id),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
