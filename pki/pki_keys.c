/* pki_keys: P-256 keys and certificates as PEM text and files (pki.h): key generation, key files
 * written 0600 and refused on load when others may read them, certificate files and PEM. */
#include "pki.h"
#include "pki_util.h"

#include "util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX (64 * 1024)
#define CERT_PEM_MAX (64 * 1024)

int
pki_is_p256(EVP_PKEY *pkey)
{
    char group[64];
    size_t glen = 0;
    if (pkey == NULL || !EVP_PKEY_is_a(pkey, "EC"))
        return 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1) {
        ERR_clear_error();
        return 0;
    }
    return strcmp(group, SN_X9_62_prime256v1) == 0 || strcmp(group, "P-256") == 0;
}

int
pki_keygen(EVP_PKEY **out, char *err, size_t errlen)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (*out == NULL) {
        pki_ossl_err(err, errlen, "key generation failed");
        return -1;
    }
    return 0;
}

int
pki_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
    int rc = -1;
    char *data = NULL;
    /* The secure-memory BIO clears its buffer when freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) {
        pki_ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3. */
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        pki_ossl_err(err, errlen, "cannot encode private key");
        goto out;
    }
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || data == NULL) {
        snprintf(err, errlen, "cannot encode private key");
        goto out;
    }
    if (util_write_file(path, data, (size_t)n, 0600) != 0) {
        snprintf(err, errlen, "%s: cannot write key file: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    return rc;
}

static int
check_mode(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if ((st->st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s: key file is accessible by group or others (mode %04o); run chmod 600 %s",
                 path, (unsigned)(st->st_mode & 07777), path);
        return -1;
    }
    return 0;
}

int
pki_check_key_perms(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return check_mode(path, &st, err, errlen);
}

int
pki_load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    int rc = -1;
    int fd = -1;
    char *buf = NULL;
    size_t got = 0;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    struct stat st;

    *out = NULL;
    /* Permissions are checked on the opened file, so the file read is the file checked. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (check_mode(path, &st, err, errlen) != 0)
        goto out;
    if (st.st_size <= 0 || st.st_size > KEY_FILE_MAX) {
        snprintf(err, errlen, "%s: key file is empty or too large", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "%s: read error", path);
            goto out;
        }
        got += (size_t)r;
    }
    bio = BIO_new_mem_buf(buf, (int)got);
    if (bio == NULL) {
        pki_ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, pki_no_passphrase, NULL);
    if (key == NULL) {
        ERR_clear_error(); /* the reason may describe the key's contents; say only that it failed */
        snprintf(err, errlen, "%s: not a readable (unencrypted PEM) private key", path);
        goto out;
    }
    if (!pki_is_p256(key)) {
        snprintf(err, errlen, "%s: not an EC P-256 key", path);
        goto out;
    }
    *out = key;
    key = NULL;
    rc = 0;
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, got);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

char *
pki_cert_pem(X509 *cert)
{
    char *s = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1)
        goto out;
    s = pki_bio_to_string(bio, NULL);
out:
    BIO_free(bio);
    return s;
}

X509 *
pki_cert_from_pem(const char *pem, size_t len)
{
    X509 *cert = NULL;
    BIO *bio = NULL;
    if (pem == NULL || len == 0 || len > CERT_PEM_MAX)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        goto out;
    cert = PEM_read_bio_X509(bio, NULL, pki_no_passphrase, NULL);
out:
    ERR_clear_error();
    BIO_free(bio);
    return cert;
}

int
pki_write_cert(const char *path, X509 *cert, char *err, size_t errlen)
{
    int rc = -1;
    char *pem = pki_cert_pem(cert);
    if (pem == NULL) {
        pki_ossl_err(err, errlen, "cannot encode certificate");
        goto out;
    }
    if (util_write_file(path, pem, strlen(pem), 0644) != 0) {
        snprintf(err, errlen, "%s: cannot write certificate: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(pem);
    return rc;
}

int
pki_load_cert(const char *path, X509 **out, char *err, size_t errlen)
{
    size_t len = 0;
    char *pem = util_read_file(path, CERT_PEM_MAX, &len);
    *out = NULL;
    if (pem == NULL) {
        snprintf(err, errlen, "%s: cannot read certificate (missing or larger than %d bytes)", path,
                 CERT_PEM_MAX);
        return -1;
    }
    *out = pki_cert_from_pem(pem, len);
    free(pem);
    if (*out == NULL) {
        snprintf(err, errlen, "%s: not a PEM certificate", path);
        return -1;
    }
    return 0;
}
