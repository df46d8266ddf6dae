#include "http_tlskey.h"

#include "errbuf.h"
#include "log.h"
#include "signer.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct http_tlskey {
    signer *sg; /* borrowed */
    gnutls_pcert_st chain[HTTP_TLSKEY_CHAIN_MAX];
    unsigned int nchain;
    gnutls_privkey_t key;         /* external: its callbacks below, userdata = this */
    struct http_tlskey *replaced; /* owned: the identity this one replaced (http_tlskey_replace) */
};

/* The identity http_tlskey_retrieve answers with. It cannot use the session's pointer instead:
 * that is libmicrohttpd's connection, or http_hs's state in epoll mode. Set before libmicrohttpd
 * starts its threads, cleared after it joined them. */
static _Atomic(http_tlskey *) serving;

/* What a TLS 1.3 server signs (RFC 8446 §4.4.3) ahead of the transcript hash. */
static const char CV_PREFIX_TEXT[] = "TLS 1.3, server CertificateVerify";
#define CV_PAD 64

/* The two names GnuTLS has for an ECDSA P-256 SHA-256 signature: TLS 1.3's scheme, bound to the
 * curve, and TLS 1.2's, which is not. Both are the one signature the signer makes. */
static int
is_our_sign_algo(gnutls_sign_algorithm_t algo)
{
    return algo == GNUTLS_SIGN_ECDSA_SECP256R1_SHA256 || algo == GNUTLS_SIGN_ECDSA_SHA256;
}

static int
key_info(gnutls_privkey_t key, unsigned int flags, void *userdata)
{
    (void)key, (void)userdata;
    /* The asked algorithm is in the high bits of flags, so this flag is tested first. */
    if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
        return is_our_sign_algo((gnutls_sign_algorithm_t)GNUTLS_FLAGS_TO_SIGN_ALGO(flags));
    if (flags == GNUTLS_PRIVKEY_INFO_PK_ALGO)
        return GNUTLS_PK_ECDSA;
    if (flags == GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
        return GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
    if (flags == GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
        return 256;
    return -1;
}

/* GnuTLS's sign_hash callback. GnuTLS 3.7 hashes what an ECDSA key signs in a handshake itself
 * (privkey.c privkey_sign_and_hash_data) and hands an external key only the digest: SHA-256 of the
 * TLS 1.3 CertificateVerify content (algo ECDSA-SECP256R1-SHA256) or of TLS 1.2's client random,
 * server random and ECDHE parameters (algo ECDSA-SHA256); its sign_data callback is used only for
 * keys that cannot sign a digest (EdDSA), and without this one it calls a NULL legacy callback. The
 * signature is DER, in gnutls_malloc'd memory (GnuTLS frees it). */
static int
sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned int flags,
          const gnutls_datum_t *hash, gnutls_datum_t *signature)
{
    struct http_tlskey *k = userdata;
    unsigned char sig[SIGNER_SIG_MAX];
    size_t siglen = 0;
    char err[160];
    (void)key, (void)flags;
    if (!is_our_sign_algo(algo) || hash->size != SIGNER_TLS_DIGEST_LEN)
        return GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM;
    int rc = signer_tls_sign_digest(k->sg, hash->data, sig, &siglen, err, sizeof(err));
    if (rc != 0) {
        log_warn("msg=\"TLS handshake signature failed\" rc=%d detail=\"%s\"", rc, err);
        return GNUTLS_E_PK_SIGN_FAILED;
    }
    assert(siglen > 0 && siglen <= SIGNER_SIG_MAX);
    signature->data = gnutls_malloc(siglen);
    if (signature->data == NULL)
        return GNUTLS_E_MEMORY_ERROR;
    memcpy(signature->data, sig, siglen);
    signature->size = (unsigned int)siglen;
    return 0;
}

/* The leaf must carry an EC P-256 key: the signer signs ECDSA P-256 only. */
static int
check_leaf_key(gnutls_pubkey_t pub, char *err, size_t errlen)
{
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    gnutls_datum_t x = {NULL, 0}, y = {NULL, 0};
    if (gnutls_pubkey_get_pk_algorithm(pub, NULL) != GNUTLS_PK_ECDSA ||
        gnutls_pubkey_export_ecc_raw(pub, &curve, &x, &y) != 0 ||
        curve != GNUTLS_ECC_CURVE_SECP256R1)
        errbuf_set(err, errlen, "the TLS certificate's key is not EC P-256");
    gnutls_free(x.data);
    gnutls_free(y.data);
    return curve == GNUTLS_ECC_CURVE_SECP256R1 ? 0 : -1;
}

/* One signature through the key, as a TLS 1.3 handshake makes it (over a CertificateVerify content
 * with a random transcript hash), checked with the leaf's public key: the signer's key is the
 * certificate's, or no handshake could succeed. */
static int
check_key_matches(struct http_tlskey *k, char *err, size_t errlen)
{
    unsigned char msg[CV_PAD + sizeof(CV_PREFIX_TEXT) + 32];
    gnutls_datum_t d = {msg, (unsigned int)sizeof(msg)}, sig = {NULL, 0};
    memset(msg, ' ', CV_PAD);
    memcpy(msg + CV_PAD, CV_PREFIX_TEXT, sizeof(CV_PREFIX_TEXT)); /* with its NUL separator */
    int rc = gnutls_rnd(GNUTLS_RND_NONCE, msg + CV_PAD + sizeof(CV_PREFIX_TEXT), 32);
    if (rc == 0)
        rc = gnutls_privkey_sign_data2(k->key, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, &d, &sig);
    if (rc < 0) {
        errbuf_set(err, errlen, "the signer cannot sign with the TLS key: %s", gnutls_strerror(rc));
        return -1;
    }
    rc = gnutls_pubkey_verify_data2(k->chain[0].pubkey, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, &d,
                                    &sig);
    gnutls_free(sig.data);
    if (rc < 0) {
        errbuf_set(err, errlen, "the TLS certificate does not match the signer's TLS key");
        return -1;
    }
    return 0;
}

/* A new identity with chain_pem parsed (its leaf's key checked), without its key yet; NULL on
 * error (message in err). */
static struct http_tlskey *
parse_chain(const char *chain_pem, char *err, size_t errlen)
{
    struct http_tlskey *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    k->nchain = HTTP_TLSKEY_CHAIN_MAX;
    /* GnuTLS takes the PEM text read-only through a non-const datum. */
    gnutls_datum_t pem = {(unsigned char *)chain_pem, (unsigned int)strlen(chain_pem)};
    int rc = gnutls_pcert_list_import_x509_raw(k->chain, &k->nchain, &pem, GNUTLS_X509_FMT_PEM,
                                               GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (rc < 0) {
        k->nchain = 0;
        errbuf_set(err, errlen,
                   "TLS certificate chain: %s (leaf first, then its issuers, at most %d)",
                   gnutls_strerror(rc), HTTP_TLSKEY_CHAIN_MAX);
        goto fail;
    }
    if (k->nchain == 0) {
        errbuf_set(err, errlen, "TLS certificate chain: no certificate");
        goto fail;
    }
    if (check_leaf_key(k->chain[0].pubkey, err, errlen) != 0)
        goto fail;
    return k;
fail:
    http_tlskey_free(k);
    return NULL;
}

int
http_tlskey_check_chain(const char *chain_pem, char *err, size_t errlen)
{
    struct http_tlskey *k = parse_chain(chain_pem, err, errlen);
    int rc = k != NULL ? 0 : -1;
    http_tlskey_free(k);
    return rc;
}

http_tlskey *
http_tlskey_new(signer *sg, const char *chain_pem, char *err, size_t errlen)
{
    struct http_tlskey *k = parse_chain(chain_pem, err, errlen);
    if (k == NULL)
        return NULL;
    k->sg = sg;
    int rc;
    if (gnutls_privkey_init(&k->key) != 0) {
        errbuf_set(err, errlen, "out of memory");
        goto fail;
    }
    rc = gnutls_privkey_import_ext4(k->key, k, NULL, sign_hash, NULL, NULL, key_info, 0);
    if (rc < 0) {
        errbuf_set(err, errlen, "TLS external key: %s", gnutls_strerror(rc));
        goto fail;
    }
    if (check_key_matches(k, err, errlen) != 0)
        goto fail;
    return k;
fail:
    http_tlskey_free(k);
    return NULL;
}

void
http_tlskey_free(http_tlskey *k)
{
    while (k != NULL) {
        http_tlskey *self = k, *next = k->replaced;
        atomic_compare_exchange_strong(&serving, &self, NULL);
        if (k->key != NULL)
            gnutls_privkey_deinit(k->key);
        for (unsigned int i = 0; i < k->nchain; i++)
            gnutls_pcert_deinit(&k->chain[i]);
        free(k);
        k = next;
    }
}

void
http_tlskey_replace(http_tlskey *cur, http_tlskey *next)
{
    assert(cur != NULL && next != NULL && next->replaced == NULL);
    next->replaced = cur;
    http_tlskey *expect = cur;
    /* Only the serving identity is replaced; http_tlskey_serve made it so. */
    int swapped = atomic_compare_exchange_strong(&serving, &expect, next);
    assert(swapped);
    (void)swapped;
}

/* The leaf as an X.509 certificate (caller deinits), or NULL. */
static gnutls_x509_crt_t
leaf_crt(const http_tlskey *k)
{
    gnutls_x509_crt_t crt = NULL;
    if (k->nchain == 0 || gnutls_x509_crt_init(&crt) != 0)
        return NULL;
    if (gnutls_x509_crt_import(crt, &k->chain[0].cert, GNUTLS_X509_FMT_DER) != 0) {
        gnutls_x509_crt_deinit(crt);
        return NULL;
    }
    return crt;
}

int64_t
http_tlskey_not_after(const http_tlskey *k)
{
    gnutls_x509_crt_t crt = leaf_crt(k);
    if (crt == NULL)
        return 0;
    time_t t = gnutls_x509_crt_get_expiration_time(crt);
    gnutls_x509_crt_deinit(crt);
    return t == (time_t)-1 ? 0 : (int64_t)t;
}

void
http_tlskey_serial(const http_tlskey *k, char buf[41])
{
    unsigned char serial[20];
    size_t n = sizeof(serial);
    gnutls_x509_crt_t crt = leaf_crt(k);
    buf[0] = '\0';
    if (crt != NULL && gnutls_x509_crt_get_serial(crt, serial, &n) == 0) {
        size_t o = 0;
        for (size_t i = 0; i < n && i < 20; i++)
            o += (size_t)snprintf(buf + o, 41 - o, "%02x", serial[i]);
    }
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
}

int
http_tlskey_serve(http_tlskey *k, char *err, size_t errlen)
{
    http_tlskey *none = NULL;
    if (!atomic_compare_exchange_strong(&serving, &none, k)) {
        errbuf_set(err, errlen, "another HTTPS server already serves in this process");
        return -1;
    }
    return 0;
}

int
http_tlskey_retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca_rdn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                     gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)s, (void)req_ca_rdn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    http_tlskey *k = atomic_load(&serving);
    if (k == NULL)
        return -1;
    /* GnuTLS neither writes through nor frees what this callback returns (retrieve_function2). */
    *pcert = k->chain;
    *pcert_length = k->nchain;
    *pkey = k->key;
    return 0;
}
