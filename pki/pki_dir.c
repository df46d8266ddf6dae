/* pki_dir: the PKI directory (pki.h): the root and the daemon's server certificate
 * (pki_init_dir), and tenants' issuing CAs under tenants/<id>/ (pki_tenant_ca_create). */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROOT_CN "Aegis Root CA"
#define ROOT_LIFETIME_S ((int64_t)20 * 365 * 86400)
#define SERVER_LIFETIME_S ((int64_t)365 * 86400)
#define DEFAULT_HOSTS "localhost,127.0.0.1,::1"
#define TENANT_CA_MAX 100000

/* dir/name into buf. */
static int
join(char *buf, size_t len, const char *dir, const char *name, char *err, size_t errlen)
{
    if (snprintf(buf, len, "%s/%s", dir, name) >= (int)len) {
        snprintf(err, errlen, "path too long under %.200s", dir);
        return -1;
    }
    return 0;
}

static int
exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Splits hosts into a comma-separated DNS list and IP list (each entry classified by whether it
 * parses as an IP address). */
static int
split_hosts(const char *hosts, char *dns, char *ip, size_t len, char *err, size_t errlen)
{
    size_t dl = 0, il = 0;
    const char *p = hosts;
    dns[0] = ip[0] = '\0';
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        size_t n = strcspn(p, ", ");
        char one[256];
        if (n >= sizeof(one)) {
            snprintf(err, errlen, "host name too long");
            return -1;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        p += n;
        ASN1_OCTET_STRING *a = a2i_IPADDRESS(one);
        ERR_clear_error();
        char *dst = a != NULL ? ip : dns;
        size_t *dlp = a != NULL ? &il : &dl;
        ASN1_OCTET_STRING_free(a);
        int w = snprintf(dst + *dlp, len - *dlp, "%s%s", *dlp > 0 ? "," : "", one);
        if (w < 0 || (size_t)w >= len - *dlp) {
            snprintf(err, errlen, "host list too long");
            return -1;
        }
        *dlp += (size_t)w;
    }
    if (dl == 0 && il == 0) {
        snprintf(err, errlen, "no host names for the server certificate");
        return -1;
    }
    return 0;
}

/* Issues a server key and certificate (serverAuth, SAN from hosts) under the root. */
static int
make_server(const char *key_path, const char *crt_path, EVP_PKEY *root_key, X509 *root,
            const char *hosts, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char dns[2048], ip[2048];

    if (split_hosts(hosts != NULL && *hosts != '\0' ? hosts : DEFAULT_HOSTS, dns, ip, sizeof(dns),
                    err, errlen) != 0)
        goto out;
    struct pki_leaf_profile p = {
        .common_name = "aegisd",
        .san_dns = dns[0] != '\0' ? dns : NULL,
        .san_ip = ip[0] != '\0' ? ip : NULL,
        .server_auth = 1,
        .client_auth = 0,
        .lifetime_s = SERVER_LIFETIME_S,
        .now = util_now(),
    };
    if (pki_keygen(&key, err, errlen) != 0 ||
        pki_issue_for_key(root_key, root, key, &p, &cert, err, errlen) != 0 ||
        pki_write_key(key_path, key, err, errlen) != 0 ||
        pki_write_cert(crt_path, cert, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int
pki_init_dir(const char *dir, const char *hosts, int *created, char *err, size_t errlen)
{
    int rc = -1;
    char root_key[PATH_MAX], root_crt[PATH_MAX], srv_key[PATH_MAX], srv_crt[PATH_MAX];
    EVP_PKEY *rkey = NULL;
    X509 *rcert = NULL;
    int made_root = 0;

    *created = 0;
    if (dir == NULL || *dir == '\0') {
        snprintf(err, errlen, "no PKI directory given");
        goto out;
    }
    if (join(root_key, sizeof(root_key), dir, "root.key", err, errlen) != 0 ||
        join(root_crt, sizeof(root_crt), dir, "root.crt", err, errlen) != 0 ||
        join(srv_key, sizeof(srv_key), dir, "server.key", err, errlen) != 0 ||
        join(srv_crt, sizeof(srv_crt), dir, "server.crt", err, errlen) != 0)
        goto out;
    if (util_mkdirs(dir, 0700) != 0) {
        snprintf(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
        goto out;
    }
    int have_rkey = exists(root_key), have_rcrt = exists(root_crt);
    if (have_rkey != have_rcrt) {
        /* Never replace half a root: a lone root.key may be the only copy of a key still in use. */
        snprintf(err, errlen, "%s: found %s without %s; restore it or remove both to re-initialise",
                 dir, have_rkey ? "root.key" : "root.crt", have_rkey ? "root.crt" : "root.key");
        goto out;
    }
    if (!have_rkey) {
        if (pki_make_root(ROOT_CN, ROOT_LIFETIME_S, &rkey, &rcert, err, errlen) != 0 ||
            pki_write_key(root_key, rkey, err, errlen) != 0 ||
            pki_write_cert(root_crt, rcert, err, errlen) != 0)
            goto out;
        made_root = 1;
        *created = 1;
    } else if (pki_check_key_perms(root_key, err, errlen) != 0) {
        goto out;
    }
    int have_skey = exists(srv_key), have_scrt = exists(srv_crt);
    if (have_scrt && !have_skey && !made_root) {
        snprintf(err, errlen, "%s: found server.crt without server.key; remove it to re-initialise",
                 dir);
        goto out;
    }
    /* The server key is disposable: it is (re)made whenever its certificate is missing or predates
     * the root. server.crt is written last, so it marks a complete pair. */
    if (made_root || !have_scrt) {
        if (rkey == NULL && (pki_load_key(root_key, &rkey, err, errlen) != 0 ||
                             pki_load_cert(root_crt, &rcert, err, errlen) != 0))
            goto out;
        if (make_server(srv_key, srv_crt, rkey, rcert, hosts, err, errlen) != 0)
            goto out;
        *created = 1;
    } else if (pki_check_key_perms(srv_key, err, errlen) != 0) {
        goto out;
    }
    rc = 0;
out:
    X509_free(rcert);
    EVP_PKEY_free(rkey);
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
    char root_key[PATH_MAX], root_crt[PATH_MAX], tdir[PATH_MAX];
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
    if (join(root_key, sizeof(root_key), dir, "root.key", err, errlen) != 0 ||
        join(root_crt, sizeof(root_crt), dir, "root.crt", err, errlen) != 0)
        goto out;
    if (snprintf(tdir, sizeof(tdir), "%s/tenants/%lld", dir, (long long)tenant_id) >=
        (int)sizeof(tdir)) {
        snprintf(err, errlen, "path too long under %.200s", dir);
        goto out;
    }
    if (pki_load_key(root_key, &rkey, err, errlen) != 0 ||
        pki_load_cert(root_crt, &rcert, err, errlen) != 0)
        goto out;
    if (util_mkdirs(tdir, 0700) != 0) {
        snprintf(err, errlen, "%s: cannot create directory: %s", tdir, strerror(errno));
        goto out;
    }
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
        if (exists(crt_path))
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
