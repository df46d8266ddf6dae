/* device_peer: device-to-device mutual TLS (device_peer.h, docs/protocol.md §4). */
#include "device_peer.h"

#include "proto_identity.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* Tenant and device of cert's one SAN URI "urn:aegis:tenant:<t>:device:<id>" (normalised into
 * uri). -1 when there is no such URI, or more than one URI. */
static int
san_identity(X509 *cert, int64_t *tenant, char id[65], char *uri, size_t urilen)
{
    int found = 0, uris = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != GEN_URI)
            continue;
        uris++;
        const char *s = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
        int len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
        if (len > 0 && proto_identity_uri_parse(s, (size_t)len, tenant, id) == 0 &&
            proto_identity_uri_format(*tenant, id, uri, urilen) == 0)
            found = 1;
    }
    GENERAL_NAMES_free(names);
    return found && uris == 1 ? 0 : -1;
}

int
adev_cert_identity(const char *cert_pem, int64_t *tenant, char id[65])
{
    char uri[ADEV_PEER_URI_MAX];
    BIO *bio = BIO_new_mem_buf(cert_pem, -1);
    X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int rc = cert != NULL ? san_identity(cert, tenant, id, uri, sizeof(uri)) : -1;
    X509_free(cert);
    BIO_free(bio);
    return rc;
}

/* Adds every certificate of pem to the context's trust store; the number added, -1 on error. */
static int
trust_bundle(SSL_CTX *ctx, const char *pem)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = NULL;
    int n = 0;
    while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) != 1)
            n = -1;
        X509_free(x);
        if (n < 0)
            break;
        n++;
    }
    ERR_clear_error();
    int no_bio = bio == NULL;
    BIO_free(bio);
    return no_bio ? -1 : n;
}

/* The leaf (first certificate of chain_pem) as the context's certificate, the rest as its chain.
 * Returns the leaf (borrowed from ctx) or NULL. */
static X509 *
use_chain(SSL_CTX *ctx, const char *chain_pem)
{
    BIO *bio = BIO_new_mem_buf(chain_pem, -1);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int ok = x != NULL && SSL_CTX_use_certificate(ctx, x) == 1;
    X509_free(x); /* ctx holds its own reference */
    while (ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        ok = SSL_CTX_add0_chain_cert(ctx, x) == 1; /* takes x on success */
        if (!ok)
            X509_free(x);
    }
    ERR_clear_error();
    BIO_free(bio);
    return ok ? SSL_CTX_get0_certificate(ctx) : NULL;
}

static int
use_key(SSL_CTX *ctx, const char *key_pem)
{
    BIO *bio = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    int ok = pkey != NULL && SSL_CTX_use_PrivateKey(ctx, pkey) == 1 &&
             SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return ok ? 0 : -1;
}

SSL_CTX *
adev_peer_ctx_new(const struct adev_credential *c, struct adev_peer_self *self, char *err,
                  size_t errlen)
{
    char uri[ADEV_PEER_URI_MAX];
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    X509 *leaf = NULL;

    memset(self, 0, sizeof(*self));
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        snprintf(err, errlen, "cannot make a TLS context");
        goto fail;
    }
    if ((leaf = use_chain(ctx, c->chain_pem)) == NULL || use_key(ctx, c->key_pem) != 0) {
        snprintf(err, errlen, "the credential's certificate or key cannot be used");
        goto fail;
    }
    if (san_identity(leaf, &self->tenant_id, self->device_id, uri, sizeof(uri)) != 0) {
        snprintf(err, errlen, "own certificate has no Aegis SAN URI");
        goto fail;
    }
    /* The bundle is the tenant's own (its device root and issuing CAs); partial chains let the
     * issuing CAs anchor too, which accepts nothing from outside the tenant either. */
    if (trust_bundle(ctx, c->bundle_pem) <= 0 ||
        X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx), X509_V_FLAG_PARTIAL_CHAIN) != 1) {
        snprintf(err, errlen, "the credential has no usable trust bundle");
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

int
adev_peer_check(SSL *ssl, const struct adev_peer_self *self, char *uri, size_t urilen, char *err,
                size_t errlen)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    int64_t tenant = 0;
    char id[65];
    if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
        snprintf(err, errlen, "no verified peer certificate");
        return -1;
    }
    if (san_identity(peer, &tenant, id, uri, urilen) != 0) {
        snprintf(err, errlen, "peer certificate has no single Aegis device SAN URI");
        return -1;
    }
    if (tenant != self->tenant_id) {
        snprintf(err, errlen, "peer %s is of tenant %lld, not %lld", uri, (long long)tenant,
                 (long long)self->tenant_id);
        return -1;
    }
    return 0;
}
