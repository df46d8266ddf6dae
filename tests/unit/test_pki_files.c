/* Unit tests of pki/pki.c's files: private key files (PKCS#8, 0600, refused when others may read
 * them), certificates through files and PEM text, the layout pki_init_dir makes and keeps, and
 * tenant CA rollover under it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_pki_fx.h"

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
    assert_int_equal(pki_make_root("R", NULL, -1, 3600, &rk, &root, err, sizeof(err)), 0);
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
    assert_cn(root, "Aegis Service Root CA");
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
    X509 *root = NULL, *service_root = NULL;

    tmp_path(dir, sizeof(dir), "tenant");
    assert_int_equal(pki_init_dir(dir, "localhost", &created, err, sizeof(err)), 0);
    snprintf(p, sizeof(p), "%s/root.crt", dir);
    assert_int_equal(pki_load_cert(p, &service_root, err, sizeof(err)), 0);

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
    /* Both were signed by the tenant's device root, made with the first. */
    snprintf(p, sizeof(p), "%s/tenants/7/root.crt", dir);
    assert_int_equal(pki_load_cert(p, &root, err, sizeof(err)), 0);
    assert_cn(root, "Aegis Device Root Acme");
    snprintf(p, sizeof(p), "%s/tenants/7/root.key", dir);
    assert_int_equal(mode_of(p), 0600);

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
    /* The service root, which devices pin for the service, never vouches for a tenant's CA. */
    assert_int_not_equal(verify_chain(service_root, NULL, ca1, X509_PURPOSE_ANY), 1);
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
    /* ... under its own root: tenant 7's root does not vouch for it. */
    assert_int_not_equal(verify_chain(root, NULL, ca3, X509_PURPOSE_ANY), 1);
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
    X509_free(service_root);
}

/* A tenant's device root: made once (pathLen 1, 0600 key), then the same one is returned; half a
 * root is refused rather than replaced. */
static void
test_tenant_root(void **state)
{
    (void)state;
    char err[512], dir[PATH_MAX], p[PATH_MAX + 64];
    char *pem1 = NULL, *pem2 = NULL;
    int created = -1;

    tmp_path(dir, sizeof(dir), "troot");
    assert_int_equal(pki_tenant_root(dir, 3, "Beta", 1, &pem1, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 1);
    assert_int_equal(pki_tenant_root(dir, 3, "Beta", 1, &pem2, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 0);
    assert_string_equal(pem1, pem2);
    X509 *root = pki_cert_from_pem(pem1, strlen(pem1));
    assert_non_null(root);
    assert_cn(root, "Aegis Device Root Beta");
    int crit = 0;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(root, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_true(bc->ca && crit);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 1);
    BASIC_CONSTRAINTS_free(bc);
    X509_free(root);
    snprintf(p, sizeof(p), "%s/tenants/3/root.key", dir);
    assert_int_equal(mode_of(p), 0600);
    free(pem2);
    assert_int_equal(pki_tenant_root(dir, 0, "Beta", 1, &pem2, NULL, err, sizeof(err)), -1);
    assert_null(pem2);

    assert_int_equal(unlink(p), 0);
    char *pem3 = NULL;
    assert_int_equal(pki_tenant_root(dir, 3, "Beta", 1, &pem3, NULL, err, sizeof(err)), -1);
    assert_null(pem3);
    assert_non_null(strstr(err, "root.crt without root.key"));
    /* Without create, a missing root is an error, never a new root. */
    assert_int_equal(pki_tenant_root(dir, 4, "Gamma", 0, &pem3, NULL, err, sizeof(err)), -1);
    assert_null(pem3);
    assert_non_null(strstr(err, "restore it"));
    snprintf(p, sizeof(p), "%s/tenants/4/root.key", dir);
    assert_int_equal(access(p, F_OK), -1);
    /* pki_pem_issued_by: the root issued its CA, not itself by another tenant's. */
    char *ca = NULL, *other = NULL, kn[128];
    assert_int_equal(pki_tenant_ca_create(dir, 5, "Delta", 86400, kn, sizeof(kn), &ca, NULL, NULL,
                                          err, sizeof(err)),
                     0);
    assert_int_equal(pki_tenant_root(dir, 5, "Delta", 0, &other, NULL, err, sizeof(err)), 0);
    assert_int_equal(pki_pem_issued_by(ca, other), 1);
    assert_int_equal(pki_pem_issued_by(ca, pem1), 0);
    assert_int_equal(pki_pem_issued_by("junk", other), 0);
    free(ca);
    free(other);
    free(pem1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_file_permissions),
        cmocka_unit_test(test_init_dir),
        cmocka_unit_test(test_tenant_root),
        cmocka_unit_test(test_tenant_ca_rollover),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
