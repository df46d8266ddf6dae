/* Unit tests of pki/keyring.c, the signer process's keys: issuing from a CSR as pki_issue_from_csr
 * does (with the CA certificate from the PKI directory, parsed once), the TLS key, the tenants'
 * issuing CAs (newest, rollover), signing bytes, refusing key names outside the PKI directory and
 * keys others may read, and use from several threads at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_pki_fx.h"

#include <ctype.h>

static void
test_signer_issue(void **state)
{
    (void)state;
    struct tenant_pki e;
    char err[512], p[PATH_MAX + 160];
    char *leaf_pem = NULL;
    X509 *direct = NULL;
    EVP_PKEY *ca_key = NULL;
    tenant_pki_make(&e, "signer");

    keyring *s = keyring_new(e.dir, err, sizeof(err));
    assert_non_null(s);
    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    char *csr = make_csr(dev, dev, 0);
    struct pki_leaf_profile prof = device_profile(util_now());
    assert_int_equal(keyring_issue_from_csr(s, e.key_name, e.ca_pem, csr, strlen(csr), &prof,
                                            &leaf_pem, err, sizeof(err)),
                     0);
    assert_non_null(leaf_pem);
    X509 *leaf = pki_cert_from_pem(leaf_pem, strlen(leaf_pem));
    assert_non_null(leaf);
    assert_int_equal(verify_chain(e.root, e.ca, leaf, X509_PURPOSE_SSL_CLIENT), 1);
    char dir[PATH_MAX];
    tmp_path(dir, sizeof(dir), "signer-verify");
    assert_int_equal(util_mkdirs(dir, 0700), 0);
    openssl_verify(dir, e.root, e.ca, leaf);

    /* It matches what pki_issue_from_csr makes with the same key directly (all but
     * serial/signature). */
    snprintf(p, sizeof(p), "%s/%s.key", e.dir, e.key_name);
    assert_int_equal(pki_load_key(p, &ca_key, err, sizeof(err)), 0);
    assert_int_equal(
        pki_issue_from_csr(ca_key, e.ca, csr, strlen(csr), &prof, &direct, err, sizeof(err)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(leaf), X509_get_subject_name(direct)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_issuer_name(direct)), 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(leaf), X509_get0_notBefore(direct)), 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(leaf), X509_get0_notAfter(direct)), 0);
    assert_int_equal(X509_get_ext_count(leaf), X509_get_ext_count(direct));
    for (int i = 0; i < X509_get_ext_count(leaf); i++) {
        X509_EXTENSION *a = X509_get_ext(leaf, i), *b = X509_get_ext(direct, i);
        assert_int_equal(OBJ_cmp(X509_EXTENSION_get_object(a), X509_EXTENSION_get_object(b)), 0);
        assert_int_equal(
            ASN1_OCTET_STRING_cmp(X509_EXTENSION_get_data(a), X509_EXTENSION_get_data(b)), 0);
    }
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf), X509_get0_serialNumber(direct)), 0);

    /* Second issue comes from the cache. */
    char *again = NULL;
    assert_int_equal(keyring_issue_from_csr(s, e.key_name, e.ca_pem, csr, strlen(csr), &prof,
                                            &again, err, sizeof(err)),
                     0);
    free(again);
    again = NULL;

    /* A CA certificate that does not belong to the key; a bad CSR; a bad CA PEM. */
    char *root_pem = pki_cert_pem(e.root);
    assert_int_equal(keyring_issue_from_csr(s, e.key_name, root_pem, csr, strlen(csr), &prof,
                                            &again, err, sizeof(err)),
                     -1);
    assert_int_equal(
        keyring_issue_from_csr(s, e.key_name, e.ca_pem, "junk", 4, &prof, &again, err, sizeof(err)),
        -1);
    assert_int_equal(keyring_issue_from_csr(s, e.key_name, "junk", csr, strlen(csr), &prof, &again,
                                            err, sizeof(err)),
                     -1);
    assert_null(again);

    free(root_pem);
    X509_free(direct);
    EVP_PKEY_free(ca_key);
    X509_free(leaf);
    free(leaf_pem);
    free(csr);
    EVP_PKEY_free(dev);
    keyring_free(s);
    tenant_pki_free(&e);
}

static void
test_signer_key_names(void **state)
{
    (void)state;
    struct tenant_pki e;
    char err[512];
    unsigned char *sig = NULL;
    size_t siglen = 0;
    tenant_pki_make(&e, "signer-names");
    keyring *s = keyring_new(e.dir, err, sizeof(err));
    assert_non_null(s);

    static const char *const bad[] = {
        "../x",
        "/etc/x",
        "A",
        "",
        "root.key",
        "a//b",
        "root/",
        "a b",
        "tenants/1/../../root",
        "root", /* the offline roots, though their files exist */
        "tenants/1/root",
        "x\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(keyring_sign_bytes(s, bad[i], (const unsigned char *)"m", 1, &sig, &siglen,
                                            err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "key name"));
        assert_null(sig);
        char *pem = NULL;
        struct pki_leaf_profile prof = device_profile(util_now());
        assert_int_equal(
            keyring_issue_from_csr(s, bad[i], e.ca_pem, "x", 1, &prof, &pem, err, sizeof(err)), -1);
        assert_null(pem);
    }
    /* Well-formed but missing. */
    assert_int_equal(keyring_sign_bytes(s, "tenants/1/ca-9", (const unsigned char *)"m", 1, &sig,
                                        &siglen, err, sizeof(err)),
                     -1);
    /* A key readable by others is refused through the signer too. */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/server.key", e.dir);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(keyring_sign_bytes(s, "server", (const unsigned char *)"m", 1, &sig, &siglen,
                                        err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "server.key"));
    assert_int_equal(chmod(p, 0600), 0);
    /* A directory that does not exist. */
    assert_null(keyring_new("/nonexistent/aegis/pki", err, sizeof(err)));
    keyring_free(NULL);
    keyring_free(s);
    tenant_pki_free(&e);
}

/* EVP_DigestVerify with a fresh context (OpenSSL 3.0 keeps the first key when a context is
 * re-initialised with another one after a one-shot verify). */
static int
verify_sig(EVP_PKEY *pub, const unsigned char *sig, size_t siglen, const unsigned char *msg,
           size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    int rc = EVP_DigestVerify(md, sig, siglen, msg, len);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}

static void
test_signer_sign_bytes(void **state)
{
    (void)state;
    struct tenant_pki e;
    char err[512];
    unsigned char *sig = NULL;
    size_t siglen = 0;
    static const unsigned char msg[] = "{\"signed\":{\"version\":1}}";
    tenant_pki_make(&e, "signer-sign");
    keyring *s = keyring_new(e.dir, err, sizeof(err));
    assert_non_null(s);

    assert_int_equal(
        keyring_sign_bytes(s, e.key_name, msg, sizeof(msg) - 1, &sig, &siglen, err, sizeof(err)),
        0);
    assert_non_null(sig);
    assert_true(siglen > 8 && siglen <= 72);
    assert_int_equal(sig[0], 0x30); /* DER SEQUENCE */

    assert_int_equal(verify_sig(X509_get0_pubkey(e.ca), sig, siglen, msg, sizeof(msg) - 1), 1);
    /* A different message, or a different key, does not verify. */
    assert_int_not_equal(verify_sig(X509_get0_pubkey(e.ca), sig, siglen, msg, sizeof(msg) - 2), 1);
    assert_int_not_equal(verify_sig(X509_get0_pubkey(e.root), sig, siglen, msg, sizeof(msg) - 1),
                         1);
    free(sig);
    sig = NULL;

    /* With the tenant CA key, and over an empty message. */
    assert_int_equal(keyring_sign_bytes(s, e.key_name, (const unsigned char *)"", 0, &sig, &siglen,
                                        err, sizeof(err)),
                     0);
    assert_int_equal(verify_sig(X509_get0_pubkey(e.ca), sig, siglen, (const unsigned char *)"", 0),
                     1);
    free(sig);
    keyring_free(s);
    tenant_pki_free(&e);
}

/* keyring_issue: the CA certificate comes from <pki_dir>/<key_name>.crt, parsed once with its key;
 * the serial and notAfter it reports are the leaf's. */
static void
test_keyring_issue_cached_ca(void **state)
{
    (void)state;
    struct tenant_pki e;
    char err[512], p[PATH_MAX + 160];
    char *pem = NULL;
    struct keyring_issued out;
    tenant_pki_make(&e, "keyring-issue");
    keyring *s = keyring_new(e.dir, err, sizeof(err));
    assert_non_null(s);
    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    char *csr = make_csr(dev, dev, 0);
    struct pki_leaf_profile prof = device_profile(util_now());

    assert_int_equal(
        keyring_issue(s, e.key_name, csr, strlen(csr), &prof, &pem, &out, err, sizeof(err)), 0);
    X509 *leaf = pki_cert_from_pem(pem, strlen(pem));
    assert_non_null(leaf);
    assert_int_equal(verify_chain(e.root, e.ca, leaf, X509_PURPOSE_SSL_CLIENT), 1);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    char *hex = BN_bn2hex(bn);
    for (char *c = hex; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    assert_string_equal(out.serial_hex, hex);
    assert_int_equal(out.not_after, asn1_unix(X509_get0_notAfter(leaf)));
    assert_int_equal(out.not_after, prof.now + prof.lifetime_s);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(leaf);
    free(pem);
    pem = NULL;

    /* Parsed once: a certificate file replaced after the first use changes nothing. */
    snprintf(p, sizeof(p), "%s/%s.crt", e.dir, e.key_name);
    write_text(p, "not a certificate\n");
    assert_int_equal(
        keyring_issue(s, e.key_name, csr, strlen(csr), &prof, &pem, &out, err, sizeof(err)), 0);
    free(pem);
    pem = NULL;
    /* A new keyring reads it: a broken file, and then another CA's certificate for the key. */
    keyring *s2 = keyring_new(e.dir, err, sizeof(err));
    assert_int_equal(
        keyring_issue(s2, e.key_name, csr, strlen(csr), &prof, &pem, &out, err, sizeof(err)), -1);
    keyring_free(s2);
    char *root_pem = pki_cert_pem(e.root);
    write_text(p, root_pem);
    s2 = keyring_new(e.dir, err, sizeof(err));
    assert_int_equal(
        keyring_issue(s2, e.key_name, csr, strlen(csr), &prof, &pem, &out, err, sizeof(err)), -1);
    assert_null(pem);
    /* No such key, a bad name, a bad CSR. */
    assert_int_equal(
        keyring_issue(s, "tenants/1/ca-9", csr, strlen(csr), &prof, &pem, &out, err, sizeof(err)),
        -1);
    assert_int_equal(
        keyring_issue(s, "tenants/1/root", csr, strlen(csr), &prof, &pem, &out, err, sizeof(err)),
        -1);
    assert_int_equal(keyring_issue(s, e.key_name, "junk", 4, &prof, &pem, &out, err, sizeof(err)),
                     -1);
    assert_null(pem);
    free(root_pem);
    keyring_free(s2);
    free(csr);
    EVP_PKEY_free(dev);
    keyring_free(s);
    tenant_pki_free(&e);
}

/* The TLS key: loaded once, ECDSA-SHA256 that the server certificate's key verifies; P-256 only. */
static void
test_keyring_tls(void **state)
{
    (void)state;
    struct tenant_pki e;
    char err[512], p[PATH_MAX + 32];
    unsigned char sig[72];
    size_t siglen = 0;
    static const unsigned char data[] = "what a TLS server signs";
    X509 *server = NULL;
    tenant_pki_make(&e, "keyring-tls");
    keyring *s = keyring_new(e.dir, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(keyring_tls_sign(s, data, sizeof(data), sig, &siglen, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no TLS key"));

    snprintf(p, sizeof(p), "%s/server.key", e.dir);
    assert_int_equal(keyring_tls_load(s, p, err, sizeof(err)), 0);
    assert_int_equal(keyring_tls_sign(s, data, sizeof(data), sig, &siglen, err, sizeof(err)), 0);
    assert_true(siglen > 8 && siglen <= 72);
    snprintf(p, sizeof(p), "%s/server.crt", e.dir);
    assert_int_equal(pki_load_cert(p, &server, err, sizeof(err)), 0);
    assert_int_equal(verify_sig(X509_get0_pubkey(server), sig, siglen, data, sizeof(data)), 1);
    assert_int_not_equal(verify_sig(X509_get0_pubkey(server), sig, siglen, data, 3), 1);

    /* A P-384 key (its signature would not fit in 72 bytes), a missing file, a world-readable key.
     */
    EVP_PKEY *big = keygen("EC", "P-384", 0);
    snprintf(p, sizeof(p), "%s/p384.key", e.dir);
    assert_int_equal(pki_write_key(p, big, err, sizeof(err)), 0);
    assert_int_equal(keyring_tls_load(s, p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "P-256"));
    snprintf(p, sizeof(p), "%s/none.key", e.dir);
    assert_int_equal(keyring_tls_load(s, p, err, sizeof(err)), -1);
    snprintf(p, sizeof(p), "%s/server.key", e.dir);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(keyring_tls_load(s, p, err, sizeof(err)), -1);
    /* the loaded key is still there */
    assert_int_equal(keyring_tls_sign(s, data, sizeof(data), sig, &siglen, err, sizeof(err)), 0);
    EVP_PKEY_free(big);
    X509_free(server);
    keyring_free(s);
    tenant_pki_free(&e);
}

/* keyring_ca_newest finds the highest ca-<n>.crt; keyring_ca_create makes the next one, which then
 * issues. */
static void
test_keyring_ca(void **state)
{
    (void)state;
    struct tenant_pki e;
    char err[512], name[80], p[PATH_MAX + 32];
    char *pem = NULL, *leaf = NULL;
    struct keyring_issued out, lo;
    int64_t na = -1;
    tenant_pki_make(&e, "keyring-ca");
    keyring *s = keyring_new(e.dir, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(keyring_ca_newest(s, 1, &na, err, sizeof(err)), 0);
    assert_int_equal(na, asn1_unix(X509_get0_notAfter(e.ca)));
    assert_int_equal(keyring_ca_newest(s, 2, &na, err, sizeof(err)), 0);
    assert_int_equal(na, 0);
    assert_int_equal(keyring_ca_newest(s, 0, &na, err, sizeof(err)), -1);

    int64_t before = util_now();
    assert_int_equal(keyring_ca_create(s, 1, "Tenant One", 2 * 365 * 86400LL, name, &pem, &out, err,
                                       sizeof(err)),
                     0);
    assert_string_equal(name, "tenants/1/ca-2");
    X509 *ca2 = pki_cert_from_pem(pem, strlen(pem));
    assert_non_null(ca2);
    assert_int_equal(out.not_after, asn1_unix(X509_get0_notAfter(ca2)));
    assert_true(out.not_after >= before + 2 * 365 * 86400LL - 5);
    assert_true(strlen(out.serial_hex) > 0);
    assert_int_equal(keyring_ca_newest(s, 1, &na, err, sizeof(err)), 0);
    assert_int_equal(na, out.not_after);
    /* a stray name does not count */
    snprintf(p, sizeof(p), "%s/tenants/1/ca-99.crt.bak", e.dir);
    write_text(p, "x");
    assert_int_equal(keyring_ca_newest(s, 1, &na, err, sizeof(err)), 0);
    assert_int_equal(na, out.not_after);

    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    char *csr = make_csr(dev, dev, 0);
    struct pki_leaf_profile prof = device_profile(util_now());
    assert_int_equal(keyring_issue(s, name, csr, strlen(csr), &prof, &leaf, &lo, err, sizeof(err)),
                     0);
    X509 *l = pki_cert_from_pem(leaf, strlen(leaf));
    assert_int_equal(verify_chain(e.root, ca2, l, X509_PURPOSE_SSL_CLIENT), 1);
    /* A second tenant gets its first CA (and its device root) from nothing. */
    free(pem);
    assert_int_equal(keyring_ca_create(s, 2, "Two", 86400, name, &pem, &out, err, sizeof(err)), 0);
    assert_string_equal(name, "tenants/2/ca-1");
    free(pem);
    assert_int_equal(keyring_ca_create(s, 0, "Zero", 86400, name, &pem, &out, err, sizeof(err)),
                     -1);
    assert_null(pem);
    X509_free(l);
    free(leaf);
    free(csr);
    EVP_PKEY_free(dev);
    X509_free(ca2);
    keyring_free(s);
    tenant_pki_free(&e);
}

struct thread_arg {
    keyring *s;
    struct tenant_pki *e;
    char *csr;
    int failures;
};

static void *
keyring_thread(void *p)
{
    struct thread_arg *a = p;
    char err[512];
    for (int i = 0; i < 20; i++) {
        char *pem = NULL;
        unsigned char *sig = NULL;
        size_t siglen = 0;
        struct pki_leaf_profile prof = device_profile(util_now());
        struct keyring_issued out;
        if ((i % 2 ? keyring_issue(a->s, a->e->key_name, a->csr, strlen(a->csr), &prof, &pem, &out,
                                   err, sizeof(err))
                   : keyring_issue_from_csr(a->s, a->e->key_name, a->e->ca_pem, a->csr,
                                            strlen(a->csr), &prof, &pem, err, sizeof(err))) != 0)
            a->failures++;
        if (keyring_sign_bytes(a->s, i % 2 ? a->e->key_name : "server",
                               (const unsigned char *)"abc", 3, &sig, &siglen, err,
                               sizeof(err)) != 0)
            a->failures++;
        free(pem);
        free(sig);
    }
    return NULL;
}

static void
test_signer_threads(void **state)
{
    (void)state;
    struct tenant_pki e;
    char err[512];
    pthread_t t[4];
    struct thread_arg args[4];
    tenant_pki_make(&e, "signer-threads");
    keyring *s = keyring_new(e.dir, err, sizeof(err));
    assert_non_null(s);
    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    char *csr = make_csr(dev, dev, 0);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){.s = s, .e = &e, .csr = csr};
        assert_int_equal(pthread_create(&t[i], NULL, keyring_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    free(csr);
    EVP_PKEY_free(dev);
    keyring_free(s);
    tenant_pki_free(&e);
}

/* The online TUF keys: made once (the same key on every later call and for a second signer), 0600,
 * signing only their own role's metadata, verifiable with the public key they report. */
static void
test_signer_ed25519(void **state)
{
    (void)state;
    struct tenant_pki e;
    char err[512], sig[OTA_SIG_HEX_LEN], keyid[OTA_KEYID_HEX_LEN], p[PATH_MAX + 64];
    ota_key pub, again;
    struct stat st;
    tenant_pki_make(&e, "signer-ed");
    keyring *s = keyring_new(e.dir, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(keyring_ed25519_public(s, "tenants/1/tuf-snapshot", 0, &pub, err, sizeof(err)),
                     -1);
    assert_int_equal(keyring_ed25519_public(s, "tenants/1/tuf-snapshot", 1, &pub, err, sizeof(err)),
                     0);
    assert_int_equal(pub.has_secret, 0);
    snprintf(p, sizeof(p), "%s/tenants/1/tuf-snapshot.ed25519", e.dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    keyring *s2 = keyring_new(e.dir, err, sizeof(err));
    assert_int_equal(
        keyring_ed25519_public(s2, "tenants/1/tuf-snapshot", 1, &again, err, sizeof(err)), 0);
    assert_string_equal(again.keyid, pub.keyid);

    const char *snap = "{\"_type\":\"snapshot\",\"version\":1}";
    assert_int_equal(keyring_ed25519_sign(s, "tenants/1/tuf-snapshot", (const unsigned char *)snap,
                                          strlen(snap), sig, keyid, err, sizeof(err)),
                     0);
    assert_string_equal(keyid, pub.keyid);
    assert_int_equal(
        ota_key_verify(&pub, (const unsigned char *)snap, strlen(snap), sig, err, sizeof(err)), 0);
    /* each key signs its own role only: never targets (the offline role) or a root */
    const char *refused[][2] = {
        {"tenants/1/tuf-snapshot", "{\"_type\":\"targets\",\"custom\":{}}"},
        {"tenants/1/tuf-snapshot", "{\"_type\":\"root\"}"},
        {"tenants/1/tuf-snapshot", "not json"},
        {"tenants/1/tuf-director", "{\"_type\":\"targets\",\"targets\":{}}"},
        {"tenants/1/tuf-timestamp", "{\"_type\":\"snapshot\"}"},
        {"tenants/1/ca-1", "{\"_type\":\"snapshot\"}"},
        {"tenants/1/tuf-root", "{\"_type\":\"root\"}"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(keyring_ed25519_sign(s, refused[i][0],
                                              (const unsigned char *)refused[i][1],
                                              strlen(refused[i][1]), sig, keyid, err, sizeof(err)),
                         -1);
    }
    const char *dir = "{\"_type\":\"targets\",\"custom\":{\"device\":\"d\"}}";
    assert_int_equal(keyring_ed25519_public(s, "tenants/1/tuf-director", 1, &pub, err, sizeof(err)),
                     0);
    assert_int_equal(keyring_ed25519_sign(s, "tenants/1/tuf-director", (const unsigned char *)dir,
                                          strlen(dir), sig, keyid, err, sizeof(err)),
                     0);
    keyring_free(s2);
    keyring_free(s);
    tenant_pki_free(&e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signer_issue),      cmocka_unit_test(test_signer_key_names),
        cmocka_unit_test(test_signer_sign_bytes), cmocka_unit_test(test_signer_threads),
        cmocka_unit_test(test_signer_ed25519),    cmocka_unit_test(test_keyring_issue_cached_ca),
        cmocka_unit_test(test_keyring_tls),       cmocka_unit_test(test_keyring_ca),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
