/* pki_dir: the PKI directory (pki.h): the service root and the daemon's server certificate
 * (pki_init_dir). The tenants' device hierarchies are in pki_tenant.c. */
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

#define ROOT_CN "Aegis Service Root CA"
#define ROOT_LIFETIME_S ((int64_t)20 * 365 * 86400)
#define SERVER_LIFETIME_S ((int64_t)365 * 86400)
#define DEFAULT_HOSTS "localhost,127.0.0.1,::1"

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
    if (pki_join(root_key, sizeof(root_key), dir, "root.key", err, errlen) != 0 ||
        pki_join(root_crt, sizeof(root_crt), dir, "root.crt", err, errlen) != 0 ||
        pki_join(srv_key, sizeof(srv_key), dir, "server.key", err, errlen) != 0 ||
        pki_join(srv_crt, sizeof(srv_crt), dir, "server.crt", err, errlen) != 0)
        goto out;
    if (util_mkdirs(dir, 0700) != 0) {
        snprintf(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
        goto out;
    }
    int have_rkey = pki_exists(root_key), have_rcrt = pki_exists(root_crt);
    if (have_rkey != have_rcrt) {
        /* Never replace half a root: a lone root.key may be the only copy of a key still in use. */
        snprintf(err, errlen, "%s: found %s without %s; restore it or remove both to re-initialise",
                 dir, have_rkey ? "root.key" : "root.crt", have_rkey ? "root.crt" : "root.key");
        goto out;
    }
    if (!have_rkey) {
        if (pki_make_root(ROOT_CN, NULL, 1, ROOT_LIFETIME_S, &rkey, &rcert, err, errlen) != 0 ||
            pki_write_key(root_key, rkey, err, errlen) != 0 ||
            pki_write_cert(root_crt, rcert, err, errlen) != 0)
            goto out;
        made_root = 1;
        *created = 1;
    } else if (pki_check_key_perms(root_key, err, errlen) != 0) {
        goto out;
    }
    int have_skey = pki_exists(srv_key), have_scrt = pki_exists(srv_crt);
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
