/* pki_tenant: the device hierarchy of each tenant (pki.h): its device root, the one anchor its
 * devices trust for each other (docs/protocol.md §4), and the issuing CAs the root signs. The
 * service root (pki_dir.c) signs none of them, so nothing of one tenant chains to another tenant's
 * anchor or to the anchor devices pin for the service. */
#include "pki.h"
#include "pki_util.h"

#include "util.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define TENANT_CA_MAX 100000
#define TENANT_ROOT_LIFETIME_S ((int64_t)20 * 365 * 86400)
/* root -> issuing CA (pathLen 0) -> device */
#define TENANT_ROOT_PATHLEN 1

/* tdir = dir/tenants/<id>, created (0700) if missing. */
static int
tenant_dir(const char *dir, int64_t tenant_id, char *tdir, size_t len, char *err, size_t errlen)
{
    if (snprintf(tdir, len, "%s/tenants/%lld", dir, (long long)tenant_id) >= (int)len) {
        snprintf(err, errlen, "path too long under %.200s", dir);
        return -1;
    }
    if (util_mkdirs(tdir, 0700) != 0) {
        snprintf(err, errlen, "%s: cannot create directory: %s", tdir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Makes and writes tdir/root.{key,crt}; the certificate last, so it marks a complete pair. */
static int
tenant_root_make(const char *key_path, const char *crt_path, const char *tenant_name,
                 EVP_PKEY **key, X509 **cert, char *err, size_t errlen)
{
    char cn[256];
    size_t prefix = strlen("Aegis Device Root ");
    size_t tn = pki_utf8_prefix(tenant_name, PKI_NAME_CHARS_MAX - prefix);
    snprintf(cn, sizeof(cn), "Aegis Device Root %.*s", (int)tn, tenant_name);
    if (pki_make_root(cn, tenant_name, TENANT_ROOT_PATHLEN, TENANT_ROOT_LIFETIME_S, key, cert, err,
                      errlen) != 0 ||
        pki_write_key(key_path, *key, err, errlen) != 0 ||
        pki_write_cert(crt_path, *cert, err, errlen) != 0) {
        /* Both were made here under the lock: remove both, or the next call finds half a root. */
        unlink(crt_path);
        unlink(key_path);
        return -1;
    }
    return 0;
}

/* Loads the tenant's device root from tdir, making it first when there is none and create is set
 * (*created = 1).
 * Creators in several processes take turns on an flock of tdir/.lock, so a tenant never gets two
 * roots. Half a root (a key without its certificate or the reverse) is refused, never replaced. */
static int
tenant_root_get(const char *tdir, const char *tenant_name, int create, EVP_PKEY **key, X509 **cert,
                int *created, char *err, size_t errlen)
{
    char key_path[PATH_MAX], crt_path[PATH_MAX], lock_path[PATH_MAX];
    int rc = -1, lock = -1;

    *key = NULL;
    *cert = NULL;
    if (pki_join(key_path, sizeof(key_path), tdir, "root.key", err, errlen) != 0 ||
        pki_join(crt_path, sizeof(crt_path), tdir, "root.crt", err, errlen) != 0 ||
        pki_join(lock_path, sizeof(lock_path), tdir, ".lock", err, errlen) != 0)
        goto out;
    lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        snprintf(err, errlen, "%s: %s", lock_path, strerror(errno));
        goto out;
    }
    int have_key = pki_exists(key_path), have_crt = pki_exists(crt_path);
    if (have_key != have_crt) {
        snprintf(err, errlen, "%s: found %s without %s; restore it or remove both", tdir,
                 have_key ? "root.key" : "root.crt", have_key ? "root.crt" : "root.key");
        goto out;
    }
    if (have_key) {
        if (pki_load_key(key_path, key, err, errlen) != 0 ||
            pki_load_cert(crt_path, cert, err, errlen) != 0)
            goto out;
    } else if (!create) {
        snprintf(err, errlen,
                 "%s: the tenant's device root (root.crt, root.key) is not here; restore it", tdir);
        goto out;
    } else {
        if (tenant_root_make(key_path, crt_path, tenant_name, key, cert, err, errlen) != 0)
            goto out;
        if (created != NULL)
            *created = 1;
    }
    rc = 0;
out:
    if (lock >= 0)
        close(lock); /* releases the flock */
    if (rc != 0) {
        EVP_PKEY_free(*key);
        X509_free(*cert);
        *key = NULL;
        *cert = NULL;
    }
    return rc;
}

int
pki_tenant_root(const char *dir, int64_t tenant_id, const char *tenant_name, int create,
                char **cert_pem, int *created, char *err, size_t errlen)
{
    char tdir[PATH_MAX];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc = -1;

    *cert_pem = NULL;
    if (created != NULL)
        *created = 0;
    if (dir == NULL || tenant_id <= 0 || tenant_name == NULL || *tenant_name == '\0') {
        snprintf(err, errlen, "a tenant root needs a directory, a tenant id > 0 and a name");
        goto out;
    }
    if (tenant_dir(dir, tenant_id, tdir, sizeof(tdir), err, errlen) != 0 ||
        tenant_root_get(tdir, tenant_name, create, &key, &cert, created, err, errlen) != 0)
        goto out;
    *cert_pem = pki_cert_pem(cert);
    if (*cert_pem == NULL) {
        pki_ossl_err(err, errlen, "cannot encode certificate");
        goto out;
    }
    rc = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* The largest n of any ca-<n>.crt / ca-<n>.key in dir (0 if none). */
static int
max_ca_index(const char *dir, int64_t *max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    *max = 0;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strncmp(name, "ca-", 3) != 0)
            continue;
        const char *dot = strchr(name + 3, '.');
        if (dot == NULL || (size_t)(dot - (name + 3)) > 10)
            continue;
        char num[16];
        memcpy(num, name + 3, (size_t)(dot - (name + 3)));
        num[dot - (name + 3)] = '\0';
        int64_t n;
        if (util_parse_i64(num, 1, TENANT_CA_MAX, &n) == 0 && n > *max)
            *max = n;
    }
    closedir(d);
    return 0;
}

int
pki_tenant_ca_create(const char *dir, int64_t tenant_id, const char *tenant_name,
                     int64_t lifetime_s, char *key_name, size_t key_name_len, char **cert_pem,
                     int64_t *not_before, int64_t *not_after, char *err, size_t errlen)
{
    int rc = -1;
    char tdir[PATH_MAX];
    char key_path[PATH_MAX], crt_path[PATH_MAX], name[128], cn[512];
    EVP_PKEY *rkey = NULL, *key = NULL;
    X509 *rcert = NULL, *cert = NULL;
    char *pem = NULL;
    int reserved = 0, fd = -1;
    int64_t n = 0;

    *cert_pem = NULL;
    if (dir == NULL || tenant_id <= 0 || tenant_name == NULL || *tenant_name == '\0' ||
        lifetime_s <= 0) {
        snprintf(err, errlen,
                 "tenant CA needs a directory, a tenant id > 0, a name and a lifetime");
        goto out;
    }
    if (tenant_dir(dir, tenant_id, tdir, sizeof(tdir), err, errlen) != 0 ||
        tenant_root_get(tdir, tenant_name, 1, &rkey, &rcert, NULL, err, errlen) != 0)
        goto out;
    if (max_ca_index(tdir, &n) != 0) {
        snprintf(err, errlen, "%s: cannot list directory: %s", tdir, strerror(errno));
        goto out;
    }
    /* Reserve ca-<n>.key with O_EXCL so two concurrent creators never pick the same n; the real key
     * then replaces the placeholder atomically. */
    for (;;) {
        n++;
        if (n > TENANT_CA_MAX) {
            snprintf(err, errlen, "%s: too many issuing CAs", tdir);
            goto out;
        }
        if (snprintf(key_path, sizeof(key_path), "%s/ca-%lld.key", tdir, (long long)n) >=
                (int)sizeof(key_path) ||
            snprintf(crt_path, sizeof(crt_path), "%s/ca-%lld.crt", tdir, (long long)n) >=
                (int)sizeof(crt_path)) {
            snprintf(err, errlen, "path too long under %.200s", dir);
            goto out;
        }
        if (pki_exists(crt_path))
            continue;
        fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            break;
        if (errno != EEXIST) {
            snprintf(err, errlen, "%s: %s", key_path, strerror(errno));
            goto out;
        }
    }
    close(fd);
    fd = -1;
    reserved = 1;
    if (snprintf(name, sizeof(name), "tenants/%lld/ca-%lld", (long long)tenant_id, (long long)n) >=
        (int)key_name_len) {
        snprintf(err, errlen, "key name buffer too small");
        goto out;
    }
    /* The tenant name is shortened (never the CA number) so the CN fits its 64 characters. */
    size_t prefix = strlen("Aegis Issuing CA ");
    int suffix = snprintf(NULL, 0, " %lld", (long long)n);
    size_t tn = pki_utf8_prefix(tenant_name, PKI_NAME_CHARS_MAX - prefix - (size_t)suffix);
    snprintf(cn, sizeof(cn), "Aegis Issuing CA %.*s %lld", (int)tn, tenant_name, (long long)n);
    if (pki_make_ca(rkey, rcert, cn, tenant_name, lifetime_s, &key, &cert, err, errlen) != 0 ||
        pki_write_key(key_path, key, err, errlen) != 0 ||
        pki_write_cert(crt_path, cert, err, errlen) != 0)
        goto out;
    reserved = 0;
    pem = pki_cert_pem(cert);
    if (pem == NULL) {
        pki_ossl_err(err, errlen, "cannot encode certificate");
        goto out;
    }
    if ((not_before != NULL && pki_asn1_to_unix(X509_get0_notBefore(cert), not_before) != 0) ||
        (not_after != NULL && pki_asn1_to_unix(X509_get0_notAfter(cert), not_after) != 0)) {
        snprintf(err, errlen, "cannot read certificate validity");
        goto out;
    }
    snprintf(key_name, key_name_len, "%s", name);
    *cert_pem = pem;
    pem = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (reserved) {
        unlink(key_path);
        unlink(crt_path);
    }
    free(pem);
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_free(rcert);
    EVP_PKEY_free(rkey);
    return rc;
}

int
pki_pem_issued_by(const char *cert_pem, const char *issuer_pem)
{
    X509 *cert = pki_cert_from_pem(cert_pem, strlen(cert_pem));
    X509 *issuer = pki_cert_from_pem(issuer_pem, strlen(issuer_pem));
    EVP_PKEY *pub = issuer != NULL ? X509_get0_pubkey(issuer) : NULL;
    int yes = cert != NULL && pub != NULL && X509_check_issued(issuer, cert) == X509_V_OK &&
              X509_verify(cert, pub) == 1;
    ERR_clear_error();
    X509_free(cert);
    X509_free(issuer);
    return yes;
}
