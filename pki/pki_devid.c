/* pki_devid: device IDs, the hex SHA-256 of a P-256 public key's DER SubjectPublicKeyInfo
 * (pki.h), with a reusable parser for bulk imports. */
#include "pki.h"
#include "pki_der.h"
#include "pki_util.h"

#include "proto_fields.h"
#include "util.h"

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUBKEY_PEM_MAX (4 * 1024)

/* OpenSSL 3.0 spends most of a one-off key parse setting up its decoder chain, so a parser keeps
 * one narrow decoder (DER SubjectPublicKeyInfo, EC) and reuses it for every key of a batch. */
struct pki_key_parser {
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY *out; /* where the decoder puts each key; taken and reset after every parse */
};

pki_key_parser *
pki_key_parser_new(void)
{
    pki_key_parser *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->dctx = OSSL_DECODER_CTX_new_for_pkey(&p->out, "DER", "SubjectPublicKeyInfo", "EC",
                                            EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (p->dctx == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void
pki_key_parser_free(pki_key_parser *p)
{
    if (p == NULL)
        return;
    OSSL_DECODER_CTX_free(p->dctx);
    EVP_PKEY_free(p->out);
    free(p);
}

/* Only whitespace left in bio. */
static int
rest_is_space(BIO *bio)
{
    char rest[256];
    int r;
    while ((r = BIO_read(bio, rest, sizeof(rest))) > 0) {
        for (int k = 0; k < r; k++)
            if (!isspace((unsigned char)rest[k]))
                return 0;
    }
    return 1;
}

int
pki_key_parser_device_id(pki_key_parser *p, const char *pem, size_t len, char id[65],
                         char **norm_pem, char *err, size_t errlen)
{
    static const char begin[] = "-----BEGIN PUBLIC KEY-----";
    int rc = -1;
    BIO *bio = NULL, *outbio = NULL;
    EVP_PKEY *pkey = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL, *canon = NULL;
    long derlen = 0;
    unsigned char md[32];

    if (norm_pem != NULL)
        *norm_pem = NULL;
    if (pem == NULL || len == 0 || len > PUBKEY_PEM_MAX) {
        snprintf(err, errlen, "public key is empty or larger than %d bytes", PUBKEY_PEM_MAX);
        goto out;
    }
    /* Nothing but whitespace may come before the PEM block (OpenSSL would skip any text). */
    size_t i = 0;
    while (i < len && isspace((unsigned char)pem[i]))
        i++;
    if (len - i < sizeof(begin) - 1 || memcmp(pem + i, begin, sizeof(begin) - 1) != 0) {
        snprintf(err, errlen, "expected a PEM public key (-----BEGIN PUBLIC KEY-----)");
        goto out;
    }
    bio = BIO_new_mem_buf(pem + i, (int)(len - i));
    if (bio == NULL) {
        pki_ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    if (PEM_read_bio(bio, &name, &header, &der, &derlen) != 1 || strcmp(name, "PUBLIC KEY") != 0 ||
        header[0] != '\0') {
        pki_ossl_err(err, errlen, "not a PEM public key");
        goto out;
    }
    /* ... and nothing but whitespace after it. */
    if (!rest_is_space(bio)) {
        snprintf(err, errlen, "unexpected data after the PEM public key");
        goto out;
    }
    const unsigned char *q = der;
    size_t qlen = (size_t)derlen;
    if (OSSL_DECODER_from_data(p->dctx, &q, &qlen) != 1 || p->out == NULL || qlen != 0) {
        EVP_PKEY_free(p->out);
        p->out = NULL;
        snprintf(err, errlen, "public key is not an EC P-256 SubjectPublicKeyInfo");
        goto out;
    }
    pkey = p->out;
    p->out = NULL;
    if (!pki_is_p256(pkey)) {
        snprintf(err, errlen, "public key is not EC P-256");
        goto out;
    }
    /* The ID is over the canonical encoding, whatever form (e.g. compressed point) was sent. */
    int clen = i2d_PUBKEY(pkey, &canon);
    if (clen <= 0 || canon == NULL) {
        pki_ossl_err(err, errlen, "cannot encode public key");
        goto out;
    }
    if (EVP_Digest(canon, (size_t)clen, md, NULL, EVP_sha256(), NULL) != 1) {
        pki_ossl_err(err, errlen, "cannot hash public key");
        goto out;
    }
    if (norm_pem != NULL) {
        outbio = BIO_new(BIO_s_mem());
        if (outbio == NULL || PEM_write_bio(outbio, "PUBLIC KEY", "", canon, clen) <= 0 ||
            (*norm_pem = pki_bio_to_string(outbio, NULL)) == NULL) {
            pki_ossl_err(err, errlen, "cannot encode public key");
            goto out;
        }
    }
    proto_hex(md, sizeof(md), id);
    rc = 0;
out:
    ERR_clear_error();
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    OPENSSL_free(canon);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    BIO_free(outbio);
    return rc;
}

EVP_PKEY *
pki_pubkey_from_pem(const char *pem, size_t len)
{
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long derlen = 0;
    EVP_PKEY *key = NULL;

    if (pem == NULL || len == 0 || len > PUBKEY_PEM_MAX)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL || PEM_read_bio(bio, &name, &header, &der, &derlen) != 1 ||
        strcmp(name, "PUBLIC KEY") != 0 || derlen <= 0)
        goto out;
    /* Not a decoder (a third of the generic PEM path, still 115 µs): pki_der.h. */
    key = pki_der_p256_pubkey(der, (size_t)derlen);
out:
    ERR_clear_error();
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    return key;
}

int
pki_device_id_from_pem(const char *pem, size_t len, char id[65], char **norm_pem, char *err,
                       size_t errlen)
{
    pki_key_parser *p = pki_key_parser_new();
    if (p == NULL) {
        snprintf(err, errlen, "cannot allocate a key parser");
        return -1;
    }
    int rc = pki_key_parser_device_id(p, pem, len, id, norm_pem, err, errlen);
    pki_key_parser_free(p);
    return rc;
}
