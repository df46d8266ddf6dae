/* gen_keys N OUTFILE: writes a JSON array of N fresh EC P-256 public keys, each a PEM
 * SubjectPublicKeyInfo string, to OUTFILE ("-" for stdout). Used by the integration tests to import
 * many devices at once. Exit status: 0 ok, 2 usage, 1 any other failure (message on stderr). */
#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_KEYS_MAX 1000000L

/* Parses a whole decimal count in [1, GEN_KEYS_MAX]. Returns 0, or -1. */
static int
parse_count(const char *s, long *out)
{
    char *end = NULL;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > GEN_KEYS_MAX)
        return -1;
    *out = v;
    return 0;
}

/* A new P-256 key's public half as a PEM SubjectPublicKeyInfo JSON string (new reference), or
 * NULL. */
static json_t *
new_public_key_pem(void)
{
    json_t *res = NULL;
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    char *data = NULL;
    long len;

    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, key) != 1)
        goto out;
    len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || data == NULL)
        goto out;
    res = json_stringn(data, (size_t)len);
out:
    BIO_free(bio);
    EVP_PKEY_free(key);
    return res;
}

int
main(int argc, char **argv)
{
    int rc = 1;
    long n = 0;
    json_t *arr = NULL;

    if (argc != 3 || parse_count(argv[1], &n) != 0) {
        fprintf(stderr, "usage: gen_keys N OUTFILE   (N from 1 to %ld, OUTFILE or - for stdout)\n",
                GEN_KEYS_MAX);
        rc = 2;
        goto out;
    }
    arr = json_array();
    if (arr == NULL) {
        fprintf(stderr, "gen_keys: out of memory\n");
        goto out;
    }
    for (long i = 0; i < n; i++) {
        json_t *pem = new_public_key_pem();
        if (pem == NULL || json_array_append_new(arr, pem) != 0) {
            unsigned long e = ERR_get_error();
            fprintf(stderr, "gen_keys: key %ld: %s\n", i,
                    e != 0 ? ERR_reason_error_string(e) : "cannot generate key");
            goto out;
        }
    }
    if (strcmp(argv[2], "-") == 0) {
        if (json_dumpf(arr, stdout, JSON_COMPACT) != 0 || fputc('\n', stdout) == EOF ||
            fflush(stdout) != 0) {
            fprintf(stderr, "gen_keys: cannot write to stdout\n");
            goto out;
        }
    } else if (json_dump_file(arr, argv[2], JSON_COMPACT) != 0) {
        fprintf(stderr, "gen_keys: cannot write %s\n", argv[2]);
        goto out;
    }
    rc = 0;
out:
    json_decref(arr);
    return rc;
}
