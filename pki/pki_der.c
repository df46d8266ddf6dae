/* pki_der: CSRs, EC public keys and certificate facts without OpenSSL 3.0's per-key decoder
 * set-up (pki_der.h says why). */
/* EC_KEY (deprecated in 3.0) is used on purpose in pki_csr_set_pubkey: see there. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "pki_der.h"
#include "pki_util.h"

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define P256_POINT_LEN 65 /* 0x04 || X || Y */

/* --- ASN.1 shapes: OpenSSL's X509_PUBKEY, X509_REQ and X509, the key left as bytes --- */

typedef struct {
    X509_ALGOR *algor;
    ASN1_BIT_STRING *public_key;
} PKI_SPKI;

/* As X509_REQ_INFO; enc keeps the bytes as received, which are the ones signed. */
typedef struct {
    ASN1_ENCODING enc;
    ASN1_INTEGER *version;
    X509_NAME *subject;
    PKI_SPKI *pubkey;
    STACK_OF(X509_ATTRIBUTE) * attributes;
} PKI_REQ_INFO;

typedef struct {
    PKI_REQ_INFO *info;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} PKI_REQ;

/* As X509_CINF. */
typedef struct {
    ASN1_INTEGER *version;
    ASN1_INTEGER *serial;
    X509_ALGOR *signature;
    X509_NAME *issuer;
    X509_VAL *validity;
    X509_NAME *subject;
    PKI_SPKI *key;
    ASN1_BIT_STRING *issuer_uid;
    ASN1_BIT_STRING *subject_uid;
    STACK_OF(X509_EXTENSION) * extensions;
} PKI_TBS;

typedef struct {
    PKI_TBS *tbs;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} PKI_CERT;

/* clang-format off */
ASN1_SEQUENCE(PKI_SPKI) = {
    ASN1_SIMPLE(PKI_SPKI, algor, X509_ALGOR),
    ASN1_SIMPLE(PKI_SPKI, public_key, ASN1_BIT_STRING),
/* cppcheck-suppress unknownMacro */
} static_ASN1_SEQUENCE_END(PKI_SPKI)

ASN1_SEQUENCE_enc(PKI_REQ_INFO, enc, 0) = {
    ASN1_SIMPLE(PKI_REQ_INFO, version, ASN1_INTEGER),
    ASN1_SIMPLE(PKI_REQ_INFO, subject, X509_NAME),
    ASN1_SIMPLE(PKI_REQ_INFO, pubkey, PKI_SPKI),
    ASN1_IMP_SET_OF_OPT(PKI_REQ_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(PKI_REQ_INFO, PKI_REQ_INFO)

ASN1_SEQUENCE(PKI_REQ) = {
    ASN1_SIMPLE(PKI_REQ, info, PKI_REQ_INFO),
    ASN1_SIMPLE(PKI_REQ, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(PKI_REQ, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(PKI_REQ)

ASN1_SEQUENCE(PKI_TBS) = {
    ASN1_EXP_OPT(PKI_TBS, version, ASN1_INTEGER, 0),
    ASN1_SIMPLE(PKI_TBS, serial, ASN1_INTEGER),
    ASN1_SIMPLE(PKI_TBS, signature, X509_ALGOR),
    ASN1_SIMPLE(PKI_TBS, issuer, X509_NAME),
    ASN1_SIMPLE(PKI_TBS, validity, X509_VAL),
    ASN1_SIMPLE(PKI_TBS, subject, X509_NAME),
    ASN1_SIMPLE(PKI_TBS, key, PKI_SPKI),
    ASN1_IMP_OPT(PKI_TBS, issuer_uid, ASN1_BIT_STRING, 1),
    ASN1_IMP_OPT(PKI_TBS, subject_uid, ASN1_BIT_STRING, 2),
    ASN1_EXP_SEQUENCE_OF_OPT(PKI_TBS, extensions, X509_EXTENSION, 3),
} static_ASN1_SEQUENCE_END(PKI_TBS)

ASN1_SEQUENCE(PKI_CERT) = {
    ASN1_SIMPLE(PKI_CERT, tbs, PKI_TBS),
    ASN1_SIMPLE(PKI_CERT, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(PKI_CERT, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(PKI_CERT)

/* --- Keys --- */

/* Key parameters only (the group P-256): every fast key is a copy of it plus a point; and the
 * group for legacy keys. Made once, then only read (EVP_PKEY_copy_parameters and EC_KEY_set_group
 * copy them), never freed. */
static EVP_PKEY *p256_params;
/* clang-format on */
static EC_GROUP *p256_group;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void
p256_params_make(void)
{
    OSSL_PARAM ps[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
                       OSSL_PARAM_END};
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (c == NULL || EVP_PKEY_fromdata_init(c) != 1 ||
        EVP_PKEY_fromdata(c, &p256_params, EVP_PKEY_KEY_PARAMETERS, ps) != 1)
        p256_params = NULL; /* every key then takes the generic path */
    EVP_PKEY_CTX_free(c);
    p256_group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    ERR_clear_error();
}

/* As pki_is_p256, which this file cannot include (pki.c includes it). */
static int
is_p256(EVP_PKEY *k)
{
    char g[64];
    size_t n = 0;
    int ok = k != NULL && EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_group_name(k, g, sizeof(g), &n);
    return ok && (strcmp(g, SN_X9_62_prime256v1) == 0 || strcmp(g, "P-256") == 0);
}

/* The 65-byte point of spki when it is the common form (id-ecPublicKey, named curve P-256,
 * uncompressed point, no unused bits), else NULL. */
static const unsigned char *
common_point(const PKI_SPKI *spki)
{
    const ASN1_OBJECT *alg = NULL;
    const void *param = NULL;
    int ptype = 0;
    const ASN1_BIT_STRING *pub = spki->public_key;

    X509_ALGOR_get0(&alg, &ptype, &param, spki->algor);
    if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT ||
        OBJ_obj2nid(param) != NID_X9_62_prime256v1)
        return NULL;
    if (ASN1_STRING_length(pub) != P256_POINT_LEN || (pub->flags & 0x07) != 0 ||
        ASN1_STRING_get0_data(pub)[0] != POINT_CONVERSION_UNCOMPRESSED)
        return NULL;
    return ASN1_STRING_get0_data(pub);
}

/* The key of spki, which must be EC P-256: from the point for the common form (a point off the
 * curve is refused there, as by the decoder), else by OpenSSL's decoder from the DER. *point (may
 * be NULL) gets a copy of the common form's point (OPENSSL_malloc'd), else NULL. */
static EVP_PKEY *
spki_key(const PKI_SPKI *spki, unsigned char **point)
{
    const unsigned char *pt = common_point(spki);
    unsigned char *der = NULL;
    EVP_PKEY *key = NULL;

    if (point != NULL)
        *point = NULL;
    pthread_once(&p256_once, p256_params_make);
    if (pt != NULL && p256_params != NULL) {
        key = EVP_PKEY_new();
        if (key == NULL || EVP_PKEY_copy_parameters(key, p256_params) != 1 ||
            EVP_PKEY_set1_encoded_public_key(key, pt, P256_POINT_LEN) != 1)
            goto fail;
        if (point != NULL && (*point = OPENSSL_memdup(pt, P256_POINT_LEN)) == NULL)
            goto fail;
        goto out;
    }
    int len = ASN1_item_i2d((const ASN1_VALUE *)spki, &der, ASN1_ITEM_rptr(PKI_SPKI));
    const unsigned char *q = der;
    if (len <= 0 || (key = d2i_PUBKEY(NULL, &q, len)) == NULL)
        goto fail;
    if (!is_p256(key))
        goto fail;
    goto out;
fail:
    EVP_PKEY_free(key);
    key = NULL;
out:
    ERR_clear_error();
    OPENSSL_free(der);
    return key;
}

EVP_PKEY *
pki_der_p256_pubkey(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    PKI_SPKI *spki = NULL;
    EVP_PKEY *key = NULL;

    if (der == NULL || len == 0 || len > INT_MAX)
        return NULL;
    spki = (PKI_SPKI *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(PKI_SPKI));
    if (spki != NULL && p == der + len)
        key = spki_key(spki, NULL);
    ASN1_item_free((ASN1_VALUE *)spki, ASN1_ITEM_rptr(PKI_SPKI));
    ERR_clear_error();
    return key;
}

/* --- CSRs --- */

int
pki_csr_parse(const unsigned char **pp, size_t len, struct pki_csr *out)
{
    PKI_REQ *req = NULL;
    int rc = PKI_CSR_NOT_CSR;

    memset(out, 0, sizeof(*out));
    if (pp == NULL || *pp == NULL || len == 0 || len > INT_MAX)
        goto out;
    req = (PKI_REQ *)ASN1_item_d2i(NULL, pp, (long)len, ASN1_ITEM_rptr(PKI_REQ));
    if (req == NULL)
        goto out;
    rc = PKI_CSR_NOT_P256;
    if ((out->key = spki_key(req->info->pubkey, &out->spki_point)) == NULL)
        goto out;
    /* What X509_REQ_verify does, over the request info as received. */
    rc = PKI_CSR_BAD_SIGNATURE;
    if (ASN1_item_verify(ASN1_ITEM_rptr(PKI_REQ_INFO), req->sig_alg, req->signature, req->info,
                         out->key) != 1)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        pki_csr_free(out);
    ASN1_item_free((ASN1_VALUE *)req, ASN1_ITEM_rptr(PKI_REQ));
    ERR_clear_error();
    return rc;
}

void
pki_csr_free(struct pki_csr *csr)
{
    if (csr == NULL)
        return;
    EVP_PKEY_free(csr->key);
    OPENSSL_free(csr->spki_point);
    csr->key = NULL;
    csr->spki_point = NULL;
}

int
pki_csr_set_pubkey(X509 *cert, const struct pki_csr *csr)
{
    EC_KEY *ec = NULL;
    EVP_PKEY *legacy = NULL;
    int rc = -1;

    assert(csr->key != NULL);
    pthread_once(&p256_once, p256_params_make);
    if (csr->spki_point == NULL || p256_group == NULL)
        return X509_set_pubkey(cert, csr->key) == 1 ? 0 : -1;
    /* X509_set_pubkey encodes a legacy key with its own code, and the certificate keeps the key
     * (X509_get0_pubkey works); a provider key would go through an encoder and then a decoder, 400
     * µs. The DER is the same: named curve, uncompressed point. */
    if ((ec = EC_KEY_new()) == NULL || (legacy = EVP_PKEY_new()) == NULL ||
        EC_KEY_set_group(ec, p256_group) != 1 ||
        EC_KEY_oct2key(ec, csr->spki_point, P256_POINT_LEN, NULL) != 1 ||
        EVP_PKEY_assign_EC_KEY(legacy, ec) != 1)
        goto out;
    ec = NULL; /* legacy's now */
    rc = X509_set_pubkey(cert, legacy) == 1 ? 0 : -1;
out:
    EC_KEY_free(ec);
    EVP_PKEY_free(legacy);
    return rc;
}

/* --- Certificates --- */

int
pki_der_cert_facts(const unsigned char *der, size_t len, BIGNUM **serial, int64_t *not_before,
                   int64_t *not_after)
{
    const unsigned char *p = der;
    PKI_CERT *cert = NULL;
    int rc = -1;

    *serial = NULL;
    if (der == NULL || len == 0 || len > INT_MAX)
        goto out;
    cert = (PKI_CERT *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(PKI_CERT));
    if (cert == NULL || pki_asn1_to_unix(cert->tbs->validity->notBefore, not_before) != 0 ||
        pki_asn1_to_unix(cert->tbs->validity->notAfter, not_after) != 0 ||
        (*serial = ASN1_INTEGER_to_BN(cert->tbs->serial, NULL)) == NULL)
        goto out;
    rc = 0;
out:
    ASN1_item_free((ASN1_VALUE *)cert, ASN1_ITEM_rptr(PKI_CERT));
    ERR_clear_error();
    return rc;
}
