/* The fixture of the PKI unit tests (test_pki_*.c): a temp directory per binary (the group's
 * setup and teardown), keys and CSRs, and the checks of a chain by OpenSSL's verifier and by the
 * openssl command line. Its functions are static inline so that each test file compiles only what
 * it uses; strings they return are the caller's to free(). */
#ifndef AEGIS_TEST_PKI_FX_H
#define AEGIS_TEST_PKI_FX_H

#include "pki.h"
#include "keyring.h"
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

static inline int
group_setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/aegis-test-pki-XXXXXX");
    return mkdtemp(tmp_root) == NULL ? -1 : 0;
}

static inline int
group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh directory under the test's temp root. */
static inline void
tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmp_root, name);
}

/* Runs cmd, captures up to outlen-1 bytes of its stdout; returns the exit status. */
static inline int
run(const char *cmd, char *out, size_t outlen)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline void
write_text(const char *path, const char *text)
{
    assert_int_equal(util_write_file(path, text, strlen(text), 0644), 0);
}

static inline EVP_PKEY *
keygen(const char *type, const char *curve_or_null, size_t rsa_bits)
{
    EVP_PKEY *k = curve_or_null != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve_or_null)
                                        : EVP_PKEY_Q_keygen(NULL, NULL, type, rsa_bits);
    assert_non_null(k);
    return k;
}

static inline char *
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
static inline char *
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

static inline int64_t
asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

static inline void
assert_cn(X509 *cert, const char *cn)
{
    char buf[256];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
                                          sizeof(buf)) > 0);
    assert_string_equal(buf, cn);
}

/* X509_verify_cert with root trusted and ca (may be NULL) as untrusted chain for purpose. */
static inline int
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

/* Writes the PEMs under dir and runs the real openssl verify. (Room for dir's PATH_MAX and a file
 * name: inlined, the compiler sees dir's size and -Wformat-truncation rejects smaller buffers.) */
static inline void
openssl_verify(const char *dir, X509 *root, X509 *ca, X509 *leaf)
{
    char rp[PATH_MAX + 16], cp[PATH_MAX + 16], lp[PATH_MAX + 16], cmd[4 * PATH_MAX], out[1024];
    char err[256];
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
    char want[PATH_MAX + 24];
    snprintf(want, sizeof(want), "%s: OK", lp);
    assert_non_null(strstr(out, want));
}

static inline struct pki_leaf_profile
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

/* A PKI directory with the service root, tenant 1's device root and its issuing CA ca-1 (the
 * keyring's and the signer process's tests). Free with tenant_pki_free. */
struct tenant_pki {
    char dir[PATH_MAX];
    char key_name[128];
    char *ca_pem;
    X509 *root, *ca;
};

static inline void
tenant_pki_make(struct tenant_pki *e, const char *name)
{
    char err[512], p[PATH_MAX + 32];
    int created = 0;
    memset(e, 0, sizeof(*e));
    tmp_path(e->dir, sizeof(e->dir), name);
    assert_int_equal(pki_init_dir(e->dir, "localhost", &created, err, sizeof(err)), 0);
    assert_int_equal(pki_tenant_ca_create(e->dir, 1, "Tenant One", 365 * 86400LL, e->key_name,
                                          sizeof(e->key_name), &e->ca_pem, NULL, NULL, err,
                                          sizeof(err)),
                     0);
    snprintf(p, sizeof(p), "%s/tenants/1/root.crt", e->dir); /* the tenant's device root */
    assert_int_equal(pki_load_cert(p, &e->root, err, sizeof(err)), 0);
    e->ca = pki_cert_from_pem(e->ca_pem, strlen(e->ca_pem));
    assert_non_null(e->ca);
}

static inline void
tenant_pki_free(struct tenant_pki *e)
{
    free(e->ca_pem);
    X509_free(e->root);
    X509_free(e->ca);
}

#endif
