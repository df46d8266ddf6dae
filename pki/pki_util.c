/* pki_util: helpers the pki files share (pki_util.h). */
#include "pki_util.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* "what: <last OpenSSL error>", then clears the OpenSSL error queue. Never contains key material:
 * OpenSSL's error strings name the failing operation and reason only. */
void
pki_ossl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err, errlen, "%s: %s", what, buf);
    } else {
        snprintf(err, errlen, "%s", what);
    }
    ERR_clear_error();
}

/* A passphrase callback that refuses, so an encrypted key never makes OpenSSL prompt on the
 * terminal. */
int
pki_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Drains a memory BIO into a new NUL-terminated string (caller frees). */
char *
pki_bio_to_string(BIO *bio, size_t *lenp)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0 || data == NULL)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    if (lenp != NULL)
        *lenp = (size_t)n;
    return s;
}

int
pki_asn1_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Counts UTF-8 characters and returns the byte length of the first max of them. */
size_t
pki_utf8_prefix(const char *s, size_t max)
{
    size_t i = 0, chars = 0;
    while (s[i] != '\0') {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max)
                break;
            chars++;
        }
        i++;
    }
    return i;
}

int
pki_join(char *buf, size_t len, const char *dir, const char *name, char *err, size_t errlen)
{
    if (snprintf(buf, len, "%s/%s", dir, name) >= (int)len) {
        snprintf(err, errlen, "path too long under %.200s", dir);
        return -1;
    }
    return 0;
}

int
pki_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}
