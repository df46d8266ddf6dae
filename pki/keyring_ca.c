/* keyring_ca: the tenants' issuing CAs as the signer sees them (keyring.h): which one is newest,
 * and a new one at rollover. The files are pki_tenant.c's; the signer alone may write them. */
#include "keyring.h"
#include "keyring_int.h"

#include "errbuf.h"
#include "pki_util.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CA_INDEX_MAX 100000 /* as pki_tenant.c */

/* n of a name "ca-<n>.crt", or 0 for any other name. */
static int64_t
ca_index(const char *name)
{
    char num[16];
    int64_t n;
    const char *dot = strchr(name, '.');
    if (strncmp(name, "ca-", 3) != 0 || dot == NULL || strcmp(dot, ".crt") != 0 ||
        (size_t)(dot - name - 3) >= sizeof(num))
        return 0;
    memcpy(num, name + 3, (size_t)(dot - name - 3));
    num[dot - name - 3] = '\0';
    return util_parse_i64(num, 1, CA_INDEX_MAX, &n) == 0 ? n : 0;
}

int
keyring_ca_newest(keyring *s, int64_t tenant_id, int64_t *not_after, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    int64_t max = 0;
    X509 *cert = NULL;
    struct dirent *de;
    *not_after = 0;
    if (s == NULL || tenant_id < 1) {
        errbuf_set(err, errlen, "signer: tenant id must be at least 1");
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/tenants/%lld", keyring_dir(s), (long long)tenant_id);
    DIR *d = opendir(dir);
    if (d == NULL && errno == ENOENT)
        return 0; /* a tenant without a hierarchy yet */
    if (d == NULL) {
        errbuf_set(err, errlen, "signer: %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        int64_t n = ca_index(de->d_name);
        max = n > max ? n : max;
    }
    closedir(d);
    if (max == 0)
        return 0;
    snprintf(path, sizeof(path), "%s/ca-%lld.crt", dir, (long long)max);
    int rc = pki_load_cert(path, &cert, err, errlen) == 0 &&
                     pki_asn1_to_unix(X509_get0_notAfter(cert), not_after) == 0
                 ? 0
                 : -1;
    if (rc != 0 && cert != NULL)
        errbuf_set(err, errlen, "signer: %s: unreadable notAfter", path);
    X509_free(cert);
    return rc;
}

int
keyring_ca_create(keyring *s, int64_t tenant_id, const char *tenant_name, int64_t lifetime_s,
                  char key_name[80], char **cert_pem, struct keyring_issued *out, char *err,
                  size_t errlen)
{
    X509 *cert = NULL;
    *cert_pem = NULL;
    if (s == NULL || out == NULL)
        return errbuf_set(err, errlen, "signer: missing argument"), -1;
    if (pki_tenant_ca_create(keyring_dir(s), tenant_id, tenant_name, lifetime_s, key_name, 80,
                             cert_pem, NULL, NULL, err, errlen) != 0)
        return -1;
    cert = pki_cert_from_pem(*cert_pem, strlen(*cert_pem));
    int rc = cert != NULL ? keyring_issued_of(cert, out, err, errlen) : -1;
    if (cert == NULL)
        errbuf_set(err, errlen, "signer: cannot parse the new CA certificate");
    if (rc != 0) {
        free(*cert_pem);
        *cert_pem = NULL;
    }
    X509_free(cert);
    return rc;
}
