/* pki: certificate building (pki.h): root and issuing CAs, and leaves issued from a CSR or for a
 * key, with the subject, extensions and SAN of a profile. */
#include "pki.h"
#include "pki_der.h"
#include "pki_util.h"

#include "util.h"

#include <assert.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CSR_PEM_MAX (16 * 1024)
#define SERIAL_BYTES 16

static int
name_add(X509_NAME *name, const char *field, const char *value, size_t len)
{
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value,
                                      (int)len, -1, 0);
}

/* A subject of CN (and O), each cut to the 64 characters X.520 allows. */
static X509_NAME *
make_name(const char *cn, const char *org)
{
    X509_NAME *name = X509_NAME_new(), *ret = NULL;
    if (name == NULL)
        goto out;
    if (org != NULL && *org != '\0' &&
        name_add(name, "O", org, pki_utf8_prefix(org, PKI_NAME_CHARS_MAX)) != 1)
        goto out;
    if (name_add(name, "CN", cn, pki_utf8_prefix(cn, PKI_NAME_CHARS_MAX)) != 1)
        goto out;
    ret = name;
    name = NULL;
out:
    X509_NAME_free(name);
    return ret;
}

/* 128 random bits, top bit cleared (positive DER INTEGER), never zero. */
static int
set_random_serial(X509 *cert)
{
    unsigned char raw[SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int rc = -1;
    do {
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            goto out;
        raw[0] &= 0x7F;
    } while (raw[0] == 0 && memcmp(raw, raw + 1, sizeof(raw) - 1) == 0);
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
        goto out;
    rc = 0;
out:
    BN_free(bn);
    return rc;
}

static int
set_validity(X509 *cert, int64_t not_before, int64_t not_after)
{
    if (ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) == NULL)
        return -1;
    return 0;
}

/* Adds one extension from its OpenSSL config-string form. issuer may be cert itself (self-signed).
 * Values are constants of this file, never caller input. */
static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    memset(&ctx, 0, sizeof(ctx));
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* A new X509 v3 with serial, subject, issuer name, public key and validity set. */
static X509 *
cert_skeleton(X509_NAME *subject, const X509_NAME *issuer_name, const struct pki_csr *pubkey,
              int64_t not_before, int64_t not_after)
{
    X509 *cert = X509_new();
    if (cert == NULL)
        return NULL;
    if (X509_set_version(cert, X509_VERSION_3) != 1 || set_random_serial(cert) != 0 ||
        X509_set_subject_name(cert, subject) != 1 ||
        X509_set_issuer_name(cert, issuer_name != NULL ? issuer_name : subject) != 1 ||
        pki_csr_set_pubkey(cert, pubkey) != 0 || set_validity(cert, not_before, not_after) != 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* Signs a CA certificate: root when parent is NULL (pathlen < 0: no path length constraint), else
 * an issuing CA under parent (always pathlen 0). */
static int
make_ca_cert(EVP_PKEY *parent_key, X509 *parent, const char *cn, const char *org, int pathlen,
             int64_t lifetime_s, EVP_PKEY **keyp, X509 **certp, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    X509_NAME *name = NULL;
    int64_t now = util_now();
    int64_t not_before = now - PKI_BACKDATE_S;
    int64_t not_after = now + lifetime_s;

    *keyp = NULL;
    *certp = NULL;
    if (cn == NULL || *cn == '\0' || lifetime_s <= 0) {
        snprintf(err, errlen, "CA needs a common name and a positive lifetime");
        goto out;
    }
    if (parent != NULL) {
        int64_t parent_end;
        if (pki_asn1_to_unix(X509_get0_notAfter(parent), &parent_end) != 0) {
            snprintf(err, errlen, "parent CA has an unreadable notAfter");
            goto out;
        }
        if (parent_end < not_after)
            not_after = parent_end;
        if (not_after <= now) {
            snprintf(err, errlen, "parent CA has expired");
            goto out;
        }
        if (X509_check_private_key(parent, parent_key) != 1) {
            pki_ossl_err(err, errlen, "parent key does not match the parent certificate");
            goto out;
        }
    }
    if (pki_keygen(&key, err, errlen) != 0)
        goto out;
    name = make_name(cn, org);
    if (name == NULL) {
        pki_ossl_err(err, errlen, "bad subject name");
        goto out;
    }
    struct pki_csr subject = {key, NULL};
    cert = cert_skeleton(name, parent != NULL ? X509_get_subject_name(parent) : NULL, &subject,
                         not_before, not_after);
    if (cert == NULL) {
        pki_ossl_err(err, errlen, "cannot build certificate");
        goto out;
    }
    X509 *issuer = parent != NULL ? parent : cert;
    char bc[64] = "critical,CA:TRUE";
    if (parent != NULL || pathlen >= 0)
        snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", parent != NULL ? 0 : pathlen);
    if (add_ext(cert, issuer, NID_basic_constraints, bc) != 0 ||
        add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(cert, issuer, NID_subject_key_identifier, "hash") != 0 ||
        (parent != NULL &&
         add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always") != 0)) {
        pki_ossl_err(err, errlen, "cannot add CA extensions");
        goto out;
    }
    if (X509_sign(cert, parent != NULL ? parent_key : key, EVP_sha256()) <= 0) {
        pki_ossl_err(err, errlen, "cannot sign CA certificate");
        goto out;
    }
    *keyp = key;
    *certp = cert;
    key = NULL;
    cert = NULL;
    rc = 0;
out:
    X509_NAME_free(name);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int
pki_make_root(const char *cn, const char *org, int pathlen, int64_t lifetime_s, EVP_PKEY **key,
              X509 **cert, char *err, size_t errlen)
{
    assert(pathlen < 16);
    return make_ca_cert(NULL, NULL, cn, org, pathlen, lifetime_s, key, cert, err, errlen);
}

int
pki_make_ca(EVP_PKEY *parent_key, X509 *parent, const char *cn, const char *org, int64_t lifetime_s,
            EVP_PKEY **key, X509 **cert, char *err, size_t errlen)
{
    if (parent_key == NULL || parent == NULL) {
        snprintf(err, errlen, "CA needs a parent key and certificate");
        return -1;
    }
    return make_ca_cert(parent_key, parent, cn, org, 0, lifetime_s, key, cert, err, errlen);
}

/* Appends one SAN entry to gens; type GEN_URI, GEN_DNS or GEN_IPADD. */
static int
san_push(GENERAL_NAMES *gens, int type, const char *value, size_t len, char *err, size_t errlen)
{
    int rc = -1;
    char buf[256];
    GENERAL_NAME *gen = NULL;
    ASN1_IA5STRING *ia5 = NULL;
    ASN1_OCTET_STRING *ip = NULL;

    if (len == 0 || len >= sizeof(buf)) {
        snprintf(err, errlen, "SAN entry is empty or longer than %zu bytes", sizeof(buf) - 1);
        goto out;
    }
    memcpy(buf, value, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c <= 0x20 || c >= 0x7F) {
            snprintf(err, errlen, "SAN entry has a space, control or non-ASCII character");
            goto out;
        }
    }
    gen = GENERAL_NAME_new();
    if (gen == NULL) {
        pki_ossl_err(err, errlen, "cannot build SAN");
        goto out;
    }
    if (type == GEN_IPADD) {
        ip = a2i_IPADDRESS(buf);
        if (ip == NULL) {
            ERR_clear_error();
            snprintf(err, errlen, "SAN IP '%.64s' is not an IP address", buf);
            goto out;
        }
        GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
        ip = NULL;
    } else {
        ia5 = ASN1_IA5STRING_new();
        if (ia5 == NULL || ASN1_STRING_set(ia5, buf, (int)len) != 1) {
            pki_ossl_err(err, errlen, "cannot build SAN");
            goto out;
        }
        GENERAL_NAME_set0_value(gen, type, ia5);
        ia5 = NULL;
    }
    if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
        pki_ossl_err(err, errlen, "cannot build SAN");
        goto out;
    }
    gen = NULL;
    rc = 0;
out:
    ASN1_OCTET_STRING_free(ip);
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gen);
    return rc;
}

/* Appends every entry of a comma-separated list (spaces around entries ignored). */
static int
san_push_list(GENERAL_NAMES *gens, int type, const char *list, char *err, size_t errlen)
{
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (san_push(gens, type, p, m, err, errlen) != 0)
            return -1;
        if (end == NULL)
            break;
        p = end + 1;
        if (*p == '\0') {
            snprintf(err, errlen, "SAN list ends with a comma");
            return -1;
        }
    }
    return 0;
}

static int
add_san(X509 *cert, const struct pki_leaf_profile *p, char *err, size_t errlen)
{
    int rc = -1;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL) {
        pki_ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    if (p->san_uri != NULL && *p->san_uri != '\0' &&
        san_push(gens, GEN_URI, p->san_uri, strlen(p->san_uri), err, errlen) != 0)
        goto out;
    if (p->san_dns != NULL && *p->san_dns != '\0' &&
        san_push_list(gens, GEN_DNS, p->san_dns, err, errlen) != 0)
        goto out;
    if (p->san_ip != NULL && *p->san_ip != '\0' &&
        san_push_list(gens, GEN_IPADD, p->san_ip, err, errlen) != 0)
        goto out;
    if (sk_GENERAL_NAME_num(gens) > 0 &&
        X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1) {
        pki_ossl_err(err, errlen, "cannot add SAN");
        goto out;
    }
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

/* The leaf for the subject's key under ca_cert, per profile. */
static int
issue_leaf(EVP_PKEY *ca_key, X509 *ca_cert, const struct pki_csr *subject,
           const struct pki_leaf_profile *p, X509 **out, char *err, size_t errlen)
{
    int rc = -1;
    X509 *cert = NULL;
    X509_NAME *name = NULL;
    int64_t ca_end, ca_start;

    *out = NULL;
    if (ca_key == NULL || ca_cert == NULL || p == NULL) {
        snprintf(err, errlen, "issuing needs a CA key, a CA certificate and a profile");
        goto out;
    }
    if (p->common_name == NULL || *p->common_name == '\0') {
        snprintf(err, errlen, "profile has no common name");
        goto out;
    }
    if (p->lifetime_s <= 0) {
        snprintf(err, errlen, "profile lifetime must be positive");
        goto out;
    }
    if (!p->client_auth && !p->server_auth) {
        snprintf(err, errlen, "profile allows neither clientAuth nor serverAuth");
        goto out;
    }
    if (!pki_is_p256(subject->key)) {
        snprintf(err, errlen, "subject key is not EC P-256");
        goto out;
    }
    if (X509_check_private_key(ca_cert, ca_key) != 1) {
        pki_ossl_err(err, errlen, "CA key does not match the CA certificate");
        goto out;
    }
    if (pki_asn1_to_unix(X509_get0_notAfter(ca_cert), &ca_end) != 0 ||
        pki_asn1_to_unix(X509_get0_notBefore(ca_cert), &ca_start) != 0) {
        snprintf(err, errlen, "CA certificate has unreadable validity");
        goto out;
    }
    int64_t not_before = p->now - PKI_BACKDATE_S;
    int64_t not_after = p->lifetime_s > INT64_MAX - p->now ? INT64_MAX : p->now + p->lifetime_s;
    if (not_after > ca_end)
        not_after = ca_end;
    if (ca_end <= p->now) {
        snprintf(err, errlen, "CA certificate has expired");
        goto out;
    }
    if (ca_start > p->now) {
        snprintf(err, errlen, "CA certificate is not yet valid");
        goto out;
    }
    name = make_name(p->common_name, p->organization);
    if (name == NULL) {
        pki_ossl_err(err, errlen, "bad subject name");
        goto out;
    }
    cert = cert_skeleton(name, X509_get_subject_name(ca_cert), subject, not_before, not_after);
    if (cert == NULL) {
        pki_ossl_err(err, errlen, "cannot build certificate");
        goto out;
    }
    const char *eku = p->client_auth && p->server_auth ? "clientAuth,serverAuth"
                      : p->client_auth                 ? "clientAuth"
                                                       : "serverAuth";
    if (add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(cert, ca_cert, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(cert, ca_cert, NID_ext_key_usage, eku) != 0 ||
        add_ext(cert, ca_cert, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid:always") != 0) {
        pki_ossl_err(err, errlen, "cannot add leaf extensions");
        goto out;
    }
    if (add_san(cert, p, err, errlen) != 0)
        goto out;
    if (X509_sign(cert, ca_key, EVP_sha256()) <= 0) {
        pki_ossl_err(err, errlen, "cannot sign certificate");
        goto out;
    }
    *out = cert;
    cert = NULL;
    rc = 0;
out:
    X509_NAME_free(name);
    X509_free(cert);
    return rc;
}

int
pki_issue_from_csr(EVP_PKEY *ca_key, X509 *ca_cert, const char *csr_pem, size_t csr_len,
                   const struct pki_leaf_profile *p, X509 **out, char *err, size_t errlen)
{
    static const char *const why[] = {"not a PEM certificate request", "CSR key is not EC P-256",
                                      "CSR signature does not verify"};
    int rc = -1;
    BIO *bio = NULL;
    unsigned char *der = NULL;
    long len = 0;
    struct pki_csr csr = {NULL, NULL};

    *out = NULL;
    if (csr_pem == NULL || csr_len == 0 || csr_len > CSR_PEM_MAX) {
        snprintf(err, errlen, "CSR is empty or larger than %d bytes", CSR_PEM_MAX);
        goto out;
    }
    bio = BIO_new_mem_buf(csr_pem, (int)csr_len);
    if (bio == NULL) {
        pki_ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    /* As PEM_read_bio_X509_REQ, without d2i_X509_REQ's key decoder (pki_der.h). */
    const unsigned char *q = NULL;
    int crc = PKI_CSR_NOT_CSR;
    if (PEM_bytes_read_bio(&der, &len, NULL, PEM_STRING_X509_REQ, bio, pki_no_passphrase, NULL) ==
            1 &&
        len > 0) {
        q = der;
        crc = pki_csr_parse(&q, (size_t)len, &csr);
    }
    if (crc != 0) {
        assert(crc >= PKI_CSR_BAD_SIGNATURE && crc <= PKI_CSR_NOT_CSR);
        pki_ossl_err(err, errlen, why[-crc - 1]);
        goto out;
    }
    /* Only the verified public key is taken from the CSR: subject and extensions come from the
     * profile. */
    if (issue_leaf(ca_key, ca_cert, &csr, p, out, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    pki_csr_free(&csr);
    OPENSSL_free(der);
    BIO_free(bio);
    return rc;
}

int
pki_issue_for_key(EVP_PKEY *ca_key, X509 *ca_cert, EVP_PKEY *subject_key,
                  const struct pki_leaf_profile *p, X509 **out, char *err, size_t errlen)
{
    struct pki_csr subject = {subject_key, NULL};
    return issue_leaf(ca_key, ca_cert, &subject, p, out, err, errlen);
}
