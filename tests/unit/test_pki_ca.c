/* Unit tests for pki/pki.c and pki/signer.c: root -> issuing CA -> leaf from a CSR, checked with
 * OpenSSL's verifier and the openssl command line, every leaf extension, CSR and key-file refusals,
 * directory layout, tenant CA rollover, device IDs and the signer seam. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pki.h"
#include "signer.h"
#include "util.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmp_root[64];

static int
group_setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/aegis-test-pki-XXXXXX");
    return mkdtemp(tmp_root) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh directory under the test's temp root. */
static void
tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmp_root, name);
}

/* Runs cmd, captures up to outlen-1 bytes of its stdout; returns the exit status. */
static int
run(const char *cmd, char *out, size_t outlen)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
write_text(const char *path, const char *text)
{
    assert_int_equal(util_write_file(path, text, strlen(text), 0644), 0);
}

static EVP_PKEY *
keygen(const char *type, const char *curve_or_null, size_t rsa_bits)
{
    EVP_PKEY *k = curve_or_null != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve_or_null)
                                        : EVP_PKEY_Q_keygen(NULL, NULL, type, rsa_bits);
    assert_non_null(k);
    return k;
}

static char *
bio_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

/* A PEM CSR for key's public half, signed by signing_key (normally key itself). The CSR asks for
 * things the issuer must ignore: subject CN "evil", basicConstraints CA:TRUE and a SAN. If flip, a
 * byte of the signature is flipped after signing. */
static char *
make_csr(EVP_PKEY *key, EVP_PKEY *signing_key, int flip)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"evil", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:evil.example");
    assert_non_null(bc);
    assert_non_null(san);
    sk_X509_EXTENSION_push(exts, bc);
    sk_X509_EXTENSION_push(exts, san);
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, signing_key, EVP_sha256()) > 0);

    unsigned char *der = NULL;
    int dlen = i2d_X509_REQ(req, &der);
    assert_true(dlen > 0);
    if (flip)
        der[dlen - 3] ^= 0x01; /* inside the ECDSA signature's s */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio(bio, "CERTIFICATE REQUEST", "", der, dlen) > 0);
    char *pem = bio_string(bio);
    BIO_free(bio);
    OPENSSL_free(der);
    X509_REQ_free(req);
    return pem;
}

static int64_t
asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

static int
ext_critical(X509 *cert, int nid)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    assert_true(idx >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(cert, idx));
}

static void
assert_cn(X509 *cert, const char *cn)
{
    char buf[256];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
                                          sizeof(buf)) > 0);
    assert_string_equal(buf, cn);
}

/* X509_verify_cert with root trusted and ca (may be NULL) as untrusted chain for purpose. */
static int
verify_chain(X509 *root, X509 *ca, X509 *leaf, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_non_null(chain);
    assert_int_equal(X509_STORE_add_cert(store, root), 1);
    if (ca != NULL)
        assert_true(sk_X509_push(chain, ca) > 0);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, chain), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        print_message("verify: %s\n", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    sk_X509_free(chain);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

/* Writes the PEMs under dir and runs the real openssl verify. */
static void
openssl_verify(const char *dir, X509 *root, X509 *ca, X509 *leaf)
{
    char rp[PATH_MAX], cp[PATH_MAX], lp[PATH_MAX], cmd[4 * PATH_MAX], out[1024], err[256];
    snprintf(rp, sizeof(rp), "%s/root.pem", dir);
    snprintf(cp, sizeof(cp), "%s/ca.pem", dir);
    snprintf(lp, sizeof(lp), "%s/leaf.pem", dir);
    assert_int_equal(pki_write_cert(rp, root, err, sizeof(err)), 0);
    assert_int_equal(pki_write_cert(cp, ca, err, sizeof(err)), 0);
    assert_int_equal(pki_write_cert(lp, leaf, err, sizeof(err)), 0);
    snprintf(cmd, sizeof(cmd), "openssl verify -CAfile '%s' -untrusted '%s' '%s' 2>&1", rp, cp, lp);
    int st = run(cmd, out, sizeof(out));
    if (st != 0)
        print_message("openssl verify: %s\n", out);
    assert_int_equal(st, 0);
    char want[PATH_MAX + 8];
    snprintf(want, sizeof(want), "%s: OK", lp);
    assert_non_null(strstr(out, want));
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
        pki_make_root("Test Root", root_life, &f->root_key, &f->root, err, sizeof(err)), 0);
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

static struct pki_leaf_profile
device_profile(int64_t now)
{
    struct pki_leaf_profile p = {
        .common_name = "device-1",
        .organization = "Tenant One",
        .san_uri = "urn:aegis:tenant:1:device:abc123",
        .client_auth = 1,
        .lifetime_s = 86400,
        .now = now,
    };
    return p;
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

static void
test_key_file_permissions(void **state)
{
    (void)state;
    char err[512], dir[PATH_MAX], path[PATH_MAX + 16];
    EVP_PKEY *key = NULL, *loaded = NULL;
    struct stat st;

    tmp_path(dir, sizeof(dir), "keys");
    assert_int_equal(util_mkdirs(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/k.key", dir);
    assert_int_equal(pki_keygen(&key, err, sizeof(err)), 0);
    assert_int_equal(pki_write_key(path, key, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    size_t len = 0;
    char *text = util_read_file(path, 65536, &len);
    assert_non_null(text);
    assert_true(strncmp(text, "-----BEGIN PRIVATE KEY-----\n", 28) == 0); /* PKCS#8 */
    free(text);

    assert_int_equal(pki_check_key_perms(path, err, sizeof(err)), 0);
    assert_int_equal(pki_load_key(path, &loaded, err, sizeof(err)), 0);
    assert_int_equal(EVP_PKEY_eq(loaded, key), 1);
    EVP_PKEY_free(loaded);
    loaded = NULL;

    static const mode_t bad_modes[] = {0644, 0640, 0604, 0660, 0601};
    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        assert_int_equal(chmod(path, bad_modes[i]), 0);
        err[0] = '\0';
        assert_int_equal(pki_load_key(path, &loaded, err, sizeof(err)), -1);
        assert_null(loaded);
        assert_non_null(strstr(err, path));
        assert_int_equal(pki_check_key_perms(path, err, sizeof(err)), -1);
        assert_non_null(strstr(err, path));
    }
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(pki_load_key(path, &loaded, err, sizeof(err)), 0);
    EVP_PKEY_free(loaded);
    loaded = NULL;

    /* Missing file, not a key, a key of the wrong type. */
    snprintf(path, sizeof(path), "%s/missing.key", dir);
    assert_int_equal(pki_load_key(path, &loaded, err, sizeof(err)), -1);
    assert_int_equal(pki_check_key_perms(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    snprintf(path, sizeof(path), "%s/junk.key", dir);
    assert_int_equal(util_write_file(path, "hello\n", 6, 0600), 0);
    assert_int_equal(pki_load_key(path, &loaded, err, sizeof(err)), -1);
    EVP_PKEY *rsa = keygen("RSA", NULL, 2048);
    snprintf(path, sizeof(path), "%s/rsa.key", dir);
    assert_int_equal(pki_write_key(path, rsa, err, sizeof(err)), 0);
    assert_int_equal(pki_load_key(path, &loaded, err, sizeof(err)), -1);
    assert_null(loaded);

    /* Certificates round-trip through files and PEM text, 0644. */
    X509 *root = NULL, *back = NULL;
    EVP_PKEY *rk = NULL;
    assert_int_equal(pki_make_root("R", 3600, &rk, &root, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/r.crt", dir);
    assert_int_equal(pki_write_cert(path, root, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(pki_load_cert(path, &back, err, sizeof(err)), 0);
    assert_int_equal(X509_cmp(root, back), 0);
    X509_free(back);
    char *pem = pki_cert_pem(root);
    assert_non_null(pem);
    back = pki_cert_from_pem(pem, strlen(pem));
    assert_non_null(back);
    assert_int_equal(X509_cmp(root, back), 0);
    X509_free(back);
    assert_null(pki_cert_from_pem("garbage", 7));
    free(pem);
    X509_free(root);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(key);
}

static int
mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 07777);
}

static void
test_init_dir(void **state)
{
    (void)state;
    char err[512], dir[PATH_MAX], p[PATH_MAX + 32];
    int created = -1;
    X509 *root = NULL, *srv = NULL;

    tmp_path(dir, sizeof(dir), "init/pki");
    assert_int_equal(
        pki_init_dir(dir, "localhost,127.0.0.1,::1,aegis.example", &created, err, sizeof(err)), 0);
    assert_int_equal(created, 1);
    assert_int_equal(mode_of(dir), 0700);
    snprintf(p, sizeof(p), "%s/root.key", dir);
    assert_int_equal(mode_of(p), 0600);
    snprintf(p, sizeof(p), "%s/server.key", dir);
    assert_int_equal(mode_of(p), 0600);

    snprintf(p, sizeof(p), "%s/root.crt", dir);
    assert_int_equal(pki_load_cert(p, &root, err, sizeof(err)), 0);
    size_t len = 0;
    char *root_before = util_read_file(p, 65536, &len);
    assert_non_null(root_before);
    assert_cn(root, "Aegis Root CA");
    int64_t life = asn1_unix(X509_get0_notAfter(root)) - util_now();
    assert_true(life > 19 * 365 * 86400LL && life <= 20 * 366 * 86400LL);

    snprintf(p, sizeof(p), "%s/server.crt", dir);
    assert_int_equal(pki_load_cert(p, &srv, err, sizeof(err)), 0);
    assert_cn(srv, "aegisd");
    assert_true(X509_get_extended_key_usage(srv) & XKU_SSL_SERVER);
    assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv, "aegis.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
    life = asn1_unix(X509_get0_notAfter(srv)) - util_now();
    assert_true(life > 364 * 86400LL && life <= 366 * 86400LL);
    assert_int_equal(verify_chain(root, NULL, srv, X509_PURPOSE_SSL_SERVER), 1);
    /* The server key on disk belongs to the server certificate. */
    EVP_PKEY *skey = NULL;
    snprintf(p, sizeof(p), "%s/server.key", dir);
    assert_int_equal(pki_load_key(p, &skey, err, sizeof(err)), 0);
    assert_int_equal(X509_check_private_key(srv, skey), 1);
    EVP_PKEY_free(skey);

    /* Second run: nothing new, nothing replaced. */
    created = -1;
    assert_int_equal(pki_init_dir(dir, "localhost", &created, err, sizeof(err)), 0);
    assert_int_equal(created, 0);
    snprintf(p, sizeof(p), "%s/root.crt", dir);
    char *root_after = util_read_file(p, 65536, NULL);
    assert_non_null(root_after);
    assert_string_equal(root_before, root_after);

    /* A missing server certificate is re-made under the same root. */
    snprintf(p, sizeof(p), "%s/server.crt", dir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(pki_init_dir(dir, NULL, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 1);
    X509_free(srv);
    assert_int_equal(pki_load_cert(p, &srv, err, sizeof(err)), 0);
    assert_int_equal(verify_chain(root, NULL, srv, X509_PURPOSE_SSL_SERVER), 1);

    /* A lone root.key is never replaced. */
    snprintf(p, sizeof(p), "%s/root.crt", dir);
    char moved[PATH_MAX + 32];
    snprintf(moved, sizeof(moved), "%s/root.crt.bak", dir);
    assert_int_equal(rename(p, moved), 0);
    assert_int_equal(pki_init_dir(dir, NULL, &created, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "root.key"));
    assert_int_equal(rename(moved, p), 0);

    /* A world-readable root key fails the check. */
    snprintf(p, sizeof(p), "%s/root.key", dir);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(pki_init_dir(dir, NULL, &created, err, sizeof(err)), -1);
    assert_non_null(strstr(err, p));
    assert_int_equal(chmod(p, 0600), 0);

    free(root_before);
    free(root_after);
    X509_free(root);
    X509_free(srv);
}

static void
test_tenant_ca_rollover(void **state)
{
    (void)state;
    char err[512], dir[PATH_MAX], p[PATH_MAX + 64], kn1[128], kn2[128];
    char *pem1 = NULL, *pem2 = NULL;
    int64_t nb = 0, na = 0;
    int created = 0;
    X509 *root = NULL;

    tmp_path(dir, sizeof(dir), "tenant");
    assert_int_equal(pki_init_dir(dir, "localhost", &created, err, sizeof(err)), 0);
    snprintf(p, sizeof(p), "%s/root.crt", dir);
    assert_int_equal(pki_load_cert(p, &root, err, sizeof(err)), 0);

    int64_t before = util_now();
    assert_int_equal(pki_tenant_ca_create(dir, 7, "Acme", 2 * 365 * 86400LL, kn1, sizeof(kn1),
                                          &pem1, &nb, &na, err, sizeof(err)),
                     0);
    assert_string_equal(kn1, "tenants/7/ca-1");
    assert_true(nb <= before && nb >= before - PKI_BACKDATE_S - 2);
    assert_true(na >= before + 2 * 365 * 86400LL && na <= util_now() + 2 * 365 * 86400LL);
    assert_int_equal(pki_tenant_ca_create(dir, 7, "Acme", 2 * 365 * 86400LL, kn2, sizeof(kn2),
                                          &pem2, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(kn2, "tenants/7/ca-2");

    snprintf(p, sizeof(p), "%s/tenants/7", dir);
    assert_int_equal(mode_of(p), 0700);
    snprintf(p, sizeof(p), "%s/tenants/7/ca-1.key", dir);
    assert_int_equal(mode_of(p), 0600);
    snprintf(p, sizeof(p), "%s/tenants/7/ca-2.key", dir);
    assert_int_equal(mode_of(p), 0600);

    X509 *ca1 = pki_cert_from_pem(pem1, strlen(pem1));
    X509 *ca2 = pki_cert_from_pem(pem2, strlen(pem2));
    assert_non_null(ca1);
    assert_non_null(ca2);
    assert_cn(ca1, "Aegis Issuing CA Acme 1");
    assert_cn(ca2, "Aegis Issuing CA Acme 2");
    char org[64];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(ca2), NID_organizationName, org,
                                          sizeof(org)) > 0);
    assert_string_equal(org, "Acme");
    assert_int_equal(verify_chain(root, NULL, ca1, X509_PURPOSE_ANY), 1);
    assert_int_equal(verify_chain(root, NULL, ca2, X509_PURPOSE_ANY), 1);
    assert_int_not_equal(X509_cmp(ca1, ca2), 0);

    /* The files on disk are what was returned; the key matches. */
    X509 *disk = NULL;
    EVP_PKEY *k2 = NULL;
    snprintf(p, sizeof(p), "%s/tenants/7/ca-2.crt", dir);
    assert_int_equal(pki_load_cert(p, &disk, err, sizeof(err)), 0);
    assert_int_equal(X509_cmp(disk, ca2), 0);
    snprintf(p, sizeof(p), "%s/tenants/7/ca-2.key", dir);
    assert_int_equal(pki_load_key(p, &k2, err, sizeof(err)), 0);
    assert_int_equal(X509_check_private_key(ca2, k2), 1);

    /* Another tenant starts at 1; a very long name still gives a CN of at most 64 characters. */
    char *pem3 = NULL, kn3[128];
    const char *longname = "A Tenant With A Remarkably Long Name That Goes On And On Forever";
    assert_int_equal(pki_tenant_ca_create(dir, 8, longname, 86400, kn3, sizeof(kn3), &pem3, NULL,
                                          NULL, err, sizeof(err)),
                     0);
    assert_string_equal(kn3, "tenants/8/ca-1");
    X509 *ca3 = pki_cert_from_pem(pem3, strlen(pem3));
    assert_non_null(ca3);
    char cn[128];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(ca3), NID_commonName, cn, sizeof(cn)) > 0);
    assert_true(strlen(cn) <= 64);
    assert_true(strncmp(cn, "Aegis Issuing CA A Tenant", 25) == 0);
    assert_true(strcmp(cn + strlen(cn) - 2, " 1") == 0);

    /* Bad arguments; a key name buffer too small. */
    char *pem4 = NULL, small[8];
    assert_int_equal(pki_tenant_ca_create(dir, 0, "x", 86400, kn3, sizeof(kn3), &pem4, NULL, NULL,
                                          err, sizeof(err)),
                     -1);
    assert_int_equal(pki_tenant_ca_create(dir, 9, "x", 86400, small, sizeof(small), &pem4, NULL,
                                          NULL, err, sizeof(err)),
                     -1);
    assert_null(pem4);
    /* ... which left nothing behind: the next one for tenant 9 is still ca-1. */
    assert_int_equal(pki_tenant_ca_create(dir, 9, "x", 86400, kn3, sizeof(kn3), &pem4, NULL, NULL,
                                          err, sizeof(err)),
                     0);
    assert_string_equal(kn3, "tenants/9/ca-1");

    free(pem4);
    X509_free(ca3);
    free(pem3);
    EVP_PKEY_free(k2);
    X509_free(disk);
    X509_free(ca1);
    X509_free(ca2);
    free(pem1);
    free(pem2);
    X509_free(root);
}

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

struct signer_env {
    char dir[PATH_MAX];
    char key_name[128];
    char *ca_pem;
    X509 *root, *ca;
};

static void
signer_env_make(struct signer_env *e, const char *name)
{
    char err[512], p[PATH_MAX + 16];
    int created = 0;
    memset(e, 0, sizeof(*e));
    tmp_path(e->dir, sizeof(e->dir), name);
    assert_int_equal(pki_init_dir(e->dir, "localhost", &created, err, sizeof(err)), 0);
    assert_int_equal(pki_tenant_ca_create(e->dir, 1, "Tenant One", 365 * 86400LL, e->key_name,
                                          sizeof(e->key_name), &e->ca_pem, NULL, NULL, err,
                                          sizeof(err)),
                     0);
    snprintf(p, sizeof(p), "%s/root.crt", e->dir);
    assert_int_equal(pki_load_cert(p, &e->root, err, sizeof(err)), 0);
    e->ca = pki_cert_from_pem(e->ca_pem, strlen(e->ca_pem));
    assert_non_null(e->ca);
}

static void
signer_env_free(struct signer_env *e)
{
    free(e->ca_pem);
    X509_free(e->root);
    X509_free(e->ca);
}

static void
test_signer_issue(void **state)
{
    (void)state;
    struct signer_env e;
    char err[512], p[PATH_MAX + 160];
    char *leaf_pem = NULL;
    X509 *direct = NULL;
    EVP_PKEY *ca_key = NULL;
    signer_env_make(&e, "signer");

    signer *s = signer_new(e.dir, err, sizeof(err));
    assert_non_null(s);
    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    char *csr = make_csr(dev, dev, 0);
    struct pki_leaf_profile prof = device_profile(util_now());
    assert_int_equal(signer_issue_from_csr(s, e.key_name, e.ca_pem, csr, strlen(csr), &prof,
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
    assert_int_equal(signer_issue_from_csr(s, e.key_name, e.ca_pem, csr, strlen(csr), &prof, &again,
                                           err, sizeof(err)),
                     0);
    free(again);
    again = NULL;

    /* A CA certificate that does not belong to the key; a bad CSR; a bad CA PEM. */
    char *root_pem = pki_cert_pem(e.root);
    assert_int_equal(signer_issue_from_csr(s, e.key_name, root_pem, csr, strlen(csr), &prof, &again,
                                           err, sizeof(err)),
                     -1);
    assert_int_equal(
        signer_issue_from_csr(s, e.key_name, e.ca_pem, "junk", 4, &prof, &again, err, sizeof(err)),
        -1);
    assert_int_equal(signer_issue_from_csr(s, e.key_name, "junk", csr, strlen(csr), &prof, &again,
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
    signer_free(s);
    signer_env_free(&e);
}

static void
test_signer_key_names(void **state)
{
    (void)state;
    struct signer_env e;
    char err[512];
    unsigned char *sig = NULL;
    size_t siglen = 0;
    signer_env_make(&e, "signer-names");
    signer *s = signer_new(e.dir, err, sizeof(err));
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
        "x\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(signer_sign_bytes(s, bad[i], (const unsigned char *)"m", 1, &sig, &siglen,
                                           err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "key name"));
        assert_null(sig);
        char *pem = NULL;
        struct pki_leaf_profile prof = device_profile(util_now());
        assert_int_equal(
            signer_issue_from_csr(s, bad[i], e.ca_pem, "x", 1, &prof, &pem, err, sizeof(err)), -1);
        assert_null(pem);
    }
    /* Well-formed but missing. */
    assert_int_equal(signer_sign_bytes(s, "tenants/1/ca-9", (const unsigned char *)"m", 1, &sig,
                                       &siglen, err, sizeof(err)),
                     -1);
    /* A key readable by others is refused through the signer too. */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/server.key", e.dir);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(signer_sign_bytes(s, "server", (const unsigned char *)"m", 1, &sig, &siglen,
                                       err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "server.key"));
    assert_int_equal(chmod(p, 0600), 0);
    /* A directory that does not exist. */
    assert_null(signer_new("/nonexistent/aegis/pki", err, sizeof(err)));
    signer_free(NULL);
    signer_free(s);
    signer_env_free(&e);
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
    struct signer_env e;
    char err[512];
    unsigned char *sig = NULL;
    size_t siglen = 0;
    static const unsigned char msg[] = "{\"signed\":{\"version\":1}}";
    signer_env_make(&e, "signer-sign");
    signer *s = signer_new(e.dir, err, sizeof(err));
    assert_non_null(s);

    assert_int_equal(
        signer_sign_bytes(s, "root", msg, sizeof(msg) - 1, &sig, &siglen, err, sizeof(err)), 0);
    assert_non_null(sig);
    assert_true(siglen > 8 && siglen <= 72);
    assert_int_equal(sig[0], 0x30); /* DER SEQUENCE */

    assert_int_equal(verify_sig(X509_get0_pubkey(e.root), sig, siglen, msg, sizeof(msg) - 1), 1);
    /* A different message, or a different key, does not verify. */
    assert_int_not_equal(verify_sig(X509_get0_pubkey(e.root), sig, siglen, msg, sizeof(msg) - 2),
                         1);
    assert_int_not_equal(verify_sig(X509_get0_pubkey(e.ca), sig, siglen, msg, sizeof(msg) - 1), 1);
    free(sig);
    sig = NULL;

    /* With the tenant CA key, and over an empty message. */
    assert_int_equal(signer_sign_bytes(s, e.key_name, (const unsigned char *)"", 0, &sig, &siglen,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(verify_sig(X509_get0_pubkey(e.ca), sig, siglen, (const unsigned char *)"", 0),
                     1);
    free(sig);
    signer_free(s);
    signer_env_free(&e);
}

struct thread_arg {
    signer *s;
    struct signer_env *e;
    char *csr;
    int failures;
};

static void *
signer_thread(void *p)
{
    struct thread_arg *a = p;
    char err[512];
    for (int i = 0; i < 20; i++) {
        char *pem = NULL;
        unsigned char *sig = NULL;
        size_t siglen = 0;
        struct pki_leaf_profile prof = device_profile(util_now());
        if (signer_issue_from_csr(a->s, a->e->key_name, a->e->ca_pem, a->csr, strlen(a->csr), &prof,
                                  &pem, err, sizeof(err)) != 0)
            a->failures++;
        if (signer_sign_bytes(a->s, i % 2 ? "root" : "server", (const unsigned char *)"abc", 3,
                              &sig, &siglen, err, sizeof(err)) != 0)
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
    struct signer_env e;
    char err[512];
    pthread_t t[4];
    struct thread_arg args[4];
    signer_env_make(&e, "signer-threads");
    signer *s = signer_new(e.dir, err, sizeof(err));
    assert_non_null(s);
    EVP_PKEY *dev = keygen("EC", "P-256", 0);
    char *csr = make_csr(dev, dev, 0);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){.s = s, .e = &e, .csr = csr};
        assert_int_equal(pthread_create(&t[i], NULL, signer_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    free(csr);
    EVP_PKEY_free(dev);
    signer_free(s);
    signer_env_free(&e);
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
        cmocka_unit_test(test_key_file_permissions),
        cmocka_unit_test(test_init_dir),
        cmocka_unit_test(test_tenant_ca_rollover),
        cmocka_unit_test(test_device_id),
        cmocka_unit_test(test_signer_issue),
        cmocka_unit_test(test_signer_key_names),
        cmocka_unit_test(test_signer_sign_bytes),
        cmocka_unit_test(test_signer_threads),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
