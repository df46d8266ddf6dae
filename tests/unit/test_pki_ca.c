/* Unit tests of pki/pki.c's CA and leaf building: root -> issuing CA -> leaf from a CSR, checked
 * with OpenSSL's verifier and the openssl command line, every leaf and CA extension, lifetimes
 * clipped to the issuer's, the server profile and the CSRs it refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_pki_fx.h"

static int
ext_critical(X509 *cert, int nid)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    assert_true(idx >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(cert, idx));
}

/* A root, an issuing CA under it and a device key, shared by several tests. */
struct fixture {
    EVP_PKEY *root_key, *ca_key, *dev_key;
    X509 *root, *ca;
};

static void
fixture_make(struct fixture *f, int64_t root_life, int64_t ca_life)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    assert_int_equal(
        pki_make_root("Test Root", NULL, -1, root_life, &f->root_key, &f->root, err, sizeof(err)),
        0);
    assert_int_equal(pki_make_ca(f->root_key, f->root, "Test Issuing CA", "Tenant One", ca_life,
                                 &f->ca_key, &f->ca, err, sizeof(err)),
                     0);
    assert_int_equal(pki_keygen(&f->dev_key, err, sizeof(err)), 0);
}

static void
fixture_free(struct fixture *f)
{
    EVP_PKEY_free(f->root_key);
    EVP_PKEY_free(f->ca_key);
    EVP_PKEY_free(f->dev_key);
    X509_free(f->root);
    X509_free(f->ca);
}

static void
test_chain_and_leaf_extensions(void **state)
{
    (void)state;
    struct fixture f;
    char err[256], dir[PATH_MAX];
    X509 *leaf = NULL;
    int crit = -1;
    int64_t now = util_now();

    fixture_make(&f, 10 * 365 * 86400LL, 5 * 365 * 86400LL);
    char *csr = make_csr(f.dev_key, f.dev_key, 0);
    struct pki_leaf_profile p = device_profile(now);
    assert_int_equal(
        pki_issue_from_csr(f.ca_key, f.ca, csr, strlen(csr), &p, &leaf, err, sizeof(err)), 0);
    assert_non_null(leaf);

    /* The chain verifies in-process and with the openssl command line. */
    assert_int_equal(verify_chain(f.root, f.ca, leaf, X509_PURPOSE_SSL_CLIENT), 1);
    tmp_path(dir, sizeof(dir), "chain");
    assert_int_equal(util_mkdirs(dir, 0700), 0);
    openssl_verify(dir, f.root, f.ca, leaf);

    /* Version, signature algorithm, subject from the profile (not the CSR), issuer. */
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
    assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
    assert_cn(leaf, "device-1");
    char org[64];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_organizationName, org,
                                          sizeof(org)) > 0);
    assert_string_equal(org, "Tenant One");
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(f.ca)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), f.dev_key), 1);

    /* Exactly six extensions: nothing copied from the CSR. */
    assert_int_equal(X509_get_ext_count(leaf), 6);

    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(leaf, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(bc->ca, 0);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);

    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    assert_int_equal(ext_critical(leaf, NID_key_usage), 1);

    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_CLIENT);
    assert_int_equal(ext_critical(leaf, NID_ext_key_usage), 0);

    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
    assert_int_equal(g->type, GEN_URI);
    assert_int_equal(ASN1_STRING_length(g->d.uniformResourceIdentifier),
                     (int)strlen("urn:aegis:tenant:1:device:abc123"));
    assert_memory_equal(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
                        "urn:aegis:tenant:1:device:abc123",
                        strlen("urn:aegis:tenant:1:device:abc123"));
    GENERAL_NAMES_free(gens);

    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(leaf);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(leaf);
    assert_non_null(ski);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(f.ca)), 0);
    assert_int_not_equal(ASN1_OCTET_STRING_cmp(ski, X509_get0_subject_key_id(f.ca)), 0);

    /* 128-bit random positive serial. */
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    assert_non_null(serial);
    assert_false(BN_is_negative(serial));
    assert_false(BN_is_zero(serial));
    assert_true(BN_num_bits(serial) <= 127);
    assert_true(BN_num_bits(serial) >= 96); /* fails with probability 2^-31 */
    BN_free(serial);

    assert_int_equal(asn1_unix(X509_get0_notBefore(leaf)), now - PKI_BACKDATE_S);
    assert_int_equal(asn1_unix(X509_get0_notAfter(leaf)), now + 86400);

    X509_free(leaf);
    free(csr);
    fixture_free(&f);
}

static void
test_ca_extensions(void **state)
{
    (void)state;
    struct fixture f;
    int crit = -1;
    int64_t now = util_now();
    fixture_make(&f, 10 * 365 * 86400LL, 5 * 365 * 86400LL);

    /* Root: self-signed, CA:TRUE critical without pathlen, KU keyCertSign|cRLSign critical, SKI, no
     * AKI. */
    assert_int_equal(X509_check_issued(f.root, f.root), X509_V_OK);
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(f.root, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_not_equal(bc->ca, 0);
    assert_null(bc->pathlen);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_get_key_usage(f.root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(ext_critical(f.root, NID_key_usage), 1);
    assert_non_null(X509_get0_subject_key_id(f.root));
    assert_int_equal(X509_get_ext_by_NID(f.root, NID_authority_key_identifier, -1), -1);
    assert_cn(f.root, "Test Root");
    int64_t na = asn1_unix(X509_get0_notAfter(f.root));
    assert_true(na >= now + 10 * 365 * 86400LL && na <= util_now() + 10 * 365 * 86400LL);

    /* Issuing CA: CA:TRUE pathlen:0 critical, same KU, SKI, AKI = root SKI. */
    bc = X509_get_ext_d2i(f.ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_not_equal(bc->ca, 0);
    assert_non_null(bc->pathlen);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_get_key_usage(f.ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(ext_critical(f.ca, NID_key_usage), 1);
    assert_non_null(X509_get0_subject_key_id(f.ca));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(f.ca), X509_get0_subject_key_id(f.root)),
        0);
    assert_int_equal(X509_get_signature_nid(f.ca), NID_ecdsa_with_SHA256);
    assert_cn(f.ca, "Test Issuing CA");
    assert_int_equal(verify_chain(f.root, NULL, f.ca, X509_PURPOSE_ANY), 1);
    fixture_free(&f);
}

static void
test_lifetimes_clipped(void **state)
{
    (void)state;
    struct fixture f;
    char err[256];
    X509 *leaf = NULL, *ca2 = NULL;
    EVP_PKEY *ca2_key = NULL;
    int64_t now = util_now();

    /* Root lives 2 hours, CA asks for a year: clipped to the root. */
    fixture_make(&f, 7200, 365 * 86400LL);
    assert_int_equal(asn1_unix(X509_get0_notAfter(f.ca)), asn1_unix(X509_get0_notAfter(f.root)));

    /* A CA that lives one hour; a leaf asking for a day ends with the CA. */
    assert_int_equal(
        pki_make_ca(f.root_key, f.root, "Short CA", NULL, 3600, &ca2_key, &ca2, err, sizeof(err)),
        0);
    int64_t ca_end = asn1_unix(X509_get0_notAfter(ca2));
    assert_true(ca_end >= now + 3600 && ca_end <= util_now() + 3600);
    char *csr = make_csr(f.dev_key, f.dev_key, 0);
    struct pki_leaf_profile p = device_profile(util_now());
    assert_int_equal(
        pki_issue_from_csr(ca2_key, ca2, csr, strlen(csr), &p, &leaf, err, sizeof(err)), 0);
    assert_int_equal(asn1_unix(X509_get0_notAfter(leaf)), ca_end);
    assert_int_equal(asn1_unix(X509_get0_notBefore(leaf)), p.now - PKI_BACKDATE_S);
    assert_int_equal(verify_chain(f.root, ca2, leaf, X509_PURPOSE_SSL_CLIENT), 1);

    /* Issuing at a time the CA has expired is refused. */
    X509 *late = NULL;
    p.now = ca_end + 10;
    assert_int_equal(
        pki_issue_from_csr(ca2_key, ca2, csr, strlen(csr), &p, &late, err, sizeof(err)), -1);
    assert_null(late);

    /* A CA key that does not belong to the CA certificate is refused. */
    p.now = util_now();
    assert_int_equal(
        pki_issue_from_csr(f.root_key, ca2, csr, strlen(csr), &p, &late, err, sizeof(err)), -1);
    assert_null(late);

    X509_free(leaf);
    X509_free(ca2);
    EVP_PKEY_free(ca2_key);
    free(csr);
    fixture_free(&f);
}

static void
test_server_profile(void **state)
{
    (void)state;
    struct fixture f;
    char err[256];
    X509 *leaf = NULL;
    fixture_make(&f, 86400 * 30, 86400 * 20);
    struct pki_leaf_profile p = {
        .common_name = "gw.example",
        .san_uri = "urn:aegis:tenant:1:device:xyz",
        .san_dns = "gw.example, alt.example",
        .san_ip = "192.0.2.7,2001:db8::1",
        .server_auth = 1,
        .client_auth = 1,
        .lifetime_s = 3600,
        .now = util_now(),
    };
    assert_int_equal(pki_issue_for_key(f.ca_key, f.ca, f.dev_key, &p, &leaf, err, sizeof(err)), 0);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_CLIENT | XKU_SSL_SERVER);
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 5);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_URI);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 1)->type, GEN_DNS);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 2)->type, GEN_DNS);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 3)->type, GEN_IPADD);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 4)->type, GEN_IPADD);
    GENERAL_NAMES_free(gens);
    assert_int_equal(X509_check_host(leaf, "alt.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "192.0.2.7", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "2001:db8::1", 0), 1);
    assert_int_equal(verify_chain(f.root, f.ca, leaf, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(verify_chain(f.root, f.ca, leaf, X509_PURPOSE_SSL_CLIENT), 1);
    X509_free(leaf);

    /* A client-only leaf is not good for a server. */
    p.server_auth = 0;
    p.san_dns = p.san_ip = NULL;
    assert_int_equal(pki_issue_for_key(f.ca_key, f.ca, f.dev_key, &p, &leaf, err, sizeof(err)), 0);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_CLIENT);
    assert_int_not_equal(verify_chain(f.root, f.ca, leaf, X509_PURPOSE_SSL_SERVER), 1);
    X509_free(leaf);
    leaf = NULL;

    /* Bad profiles. */
    p.san_ip = "not-an-ip";
    assert_int_equal(pki_issue_for_key(f.ca_key, f.ca, f.dev_key, &p, &leaf, err, sizeof(err)), -1);
    p.san_ip = NULL;
    p.san_dns = "a.example,,b.example";
    assert_int_equal(pki_issue_for_key(f.ca_key, f.ca, f.dev_key, &p, &leaf, err, sizeof(err)), -1);
    p.san_dns = NULL;
    p.san_uri = "urn:has space";
    assert_int_equal(pki_issue_for_key(f.ca_key, f.ca, f.dev_key, &p, &leaf, err, sizeof(err)), -1);
    p.san_uri = NULL;
    p.common_name = NULL;
    assert_int_equal(pki_issue_for_key(f.ca_key, f.ca, f.dev_key, &p, &leaf, err, sizeof(err)), -1);
    p.common_name = "x";
    p.client_auth = 0;
    assert_int_equal(pki_issue_for_key(f.ca_key, f.ca, f.dev_key, &p, &leaf, err, sizeof(err)), -1);
    p.client_auth = 1;
    p.lifetime_s = 0;
    assert_int_equal(pki_issue_for_key(f.ca_key, f.ca, f.dev_key, &p, &leaf, err, sizeof(err)), -1);
    assert_null(leaf);
    fixture_free(&f);
}

static void
test_csr_rejections(void **state)
{
    (void)state;
    struct fixture f;
    char err[256];
    X509 *leaf = NULL;
    fixture_make(&f, 86400 * 30, 86400 * 20);
    struct pki_leaf_profile p = device_profile(util_now());

    /* Signed by a different key than the one it carries. */
    EVP_PKEY *other = keygen("EC", "P-256", 0);
    char *csr = make_csr(f.dev_key, other, 0);
    assert_int_equal(
        pki_issue_from_csr(f.ca_key, f.ca, csr, strlen(csr), &p, &leaf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "signature"));
    free(csr);

    /* A flipped bit in the signature. */
    csr = make_csr(f.dev_key, f.dev_key, 1);
    assert_int_equal(
        pki_issue_from_csr(f.ca_key, f.ca, csr, strlen(csr), &p, &leaf, err, sizeof(err)), -1);
    free(csr);

    /* RSA and P-384 keys. */
    EVP_PKEY *rsa = keygen("RSA", NULL, 2048);
    csr = make_csr(rsa, rsa, 0);
    assert_int_equal(
        pki_issue_from_csr(f.ca_key, f.ca, csr, strlen(csr), &p, &leaf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "P-256"));
    free(csr);
    EVP_PKEY *p384 = keygen("EC", "P-384", 0);
    csr = make_csr(p384, p384, 0);
    assert_int_equal(
        pki_issue_from_csr(f.ca_key, f.ca, csr, strlen(csr), &p, &leaf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "P-256"));

    /* Not a CSR, empty, and too large (even if it would parse: padded with a comment-like prefix).
     */
    const char *junk =
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    assert_int_equal(
        pki_issue_from_csr(f.ca_key, f.ca, junk, strlen(junk), &p, &leaf, err, sizeof(err)), -1);
    assert_int_equal(pki_issue_from_csr(f.ca_key, f.ca, "", 0, &p, &leaf, err, sizeof(err)), -1);
    free(csr);
    csr = make_csr(f.dev_key, f.dev_key, 0);
    size_t big = 16 * 1024 + 1;
    char *padded = malloc(big + strlen(csr) + 1);
    assert_non_null(padded);
    memset(padded, '\n', big);
    memcpy(padded + big, csr, strlen(csr) + 1);
    assert_int_equal(
        pki_issue_from_csr(f.ca_key, f.ca, padded, strlen(padded), &p, &leaf, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "16384"));
    /* The same CSR within the bound is fine. */
    assert_int_equal(
        pki_issue_from_csr(f.ca_key, f.ca, csr, strlen(csr), &p, &leaf, err, sizeof(err)), 0);
    X509_free(leaf);
    free(padded);
    free(csr);
    EVP_PKEY_free(other);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
    fixture_free(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_and_leaf_extensions),
        cmocka_unit_test(test_ca_extensions),
        cmocka_unit_test(test_lifetimes_clipped),
        cmocka_unit_test(test_server_profile),
        cmocka_unit_test(test_csr_rejections),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
