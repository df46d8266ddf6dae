/* signer (transitional): the calls of signer.h served in-process over pki/keyring.h, until the
 * signer process (sg_proc.c) and its client replace this file. */
#include "signer.h"

#include "errbuf.h"
#include "keyring.h"
#include "pki.h"
#include "util.h"

#include <openssl/evp.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct signer {
    keyring *kr;
    EVP_PKEY *tls;
    char pki_dir[PATH_MAX];
    int64_t max_lifetime_s;
};

signer *
signer_start(const struct signer_opts *o, char *err, size_t errlen)
{
    signer *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->pki_dir, sizeof(s->pki_dir), "%s", o->pki_dir);
    s->max_lifetime_s = o->max_lifetime_s;
    if ((s->kr = keyring_new(o->pki_dir, err, errlen)) == NULL ||
        pki_load_key(o->tls_key, &s->tls, err, errlen) != 0) {
        signer_free(s);
        return NULL;
    }
    return s;
}

void
signer_free(signer *s)
{
    if (s == NULL)
        return;
    keyring_free(s->kr);
    EVP_PKEY_free(s->tls);
    free(s);
}

pid_t
signer_pid(const signer *s)
{
    (void)s;
    return getpid();
}

uint64_t
signer_restarts(const signer *s)
{
    (void)s;
    return 0;
}

int
signer_issue_device_cert(signer *s, const struct signer_leaf_req *req, char **cert_pem, char *err,
                         size_t errlen)
{
    char uri[160], path[PATH_MAX + 80];
    if (req->lifetime_s > s->max_lifetime_s) {
        errbuf_set(err, errlen, "lifetime above the signer's maximum");
        return SIGNER_REFUSED;
    }
    snprintf(uri, sizeof(uri), "urn:aegis:tenant:%lld:device:%s", (long long)req->tenant_id,
             req->device_id);
    struct pki_leaf_profile p = {req->device_id,  req->tenant_name, uri, NULL, NULL, 1, 1,
                                 req->lifetime_s, util_now()};
    snprintf(path, sizeof(path), "%s/%s.crt", s->pki_dir, req->ca_key_name);
    char *ca = util_read_file(path, 64 * 1024, NULL);
    if (ca == NULL) {
        errbuf_set(err, errlen, "cannot read %s", path);
        return SIGNER_ERR;
    }
    int rc = keyring_issue_from_csr(s->kr, req->ca_key_name, ca, req->csr_pem, req->csr_len, &p,
                                    cert_pem, err, errlen);
    free(ca);
    return rc == 0 ? 0 : SIGNER_ERR;
}

int
signer_ed25519_public(signer *s, const char *key_name, int create, ota_key *pub, char *err,
                      size_t errlen)
{
    return keyring_ed25519_public(s->kr, key_name, create, pub, err, errlen) == 0 ? 0 : SIGNER_ERR;
}

int
signer_ed25519_sign(signer *s, const char *key_name, const unsigned char *msg, size_t len,
                    char sig_hex[OTA_SIG_HEX_LEN], char keyid[OTA_KEYID_HEX_LEN], char *err,
                    size_t errlen)
{
    return keyring_ed25519_sign(s->kr, key_name, msg, len, sig_hex, keyid, err, errlen) == 0
               ? 0
               : SIGNER_ERR;
}

int
signer_tls_sign(signer *s, const unsigned char *data, size_t len, unsigned char sig[SIGNER_SIG_MAX],
                size_t *siglen, char *err, size_t errlen)
{
    int rc = SIGNER_ERR;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    *siglen = SIGNER_SIG_MAX;
    if (md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->tls) == 1 &&
        EVP_DigestSign(md, sig, siglen, data, len) == 1)
        rc = 0;
    else
        errbuf_set(err, errlen, "TLS signature failed");
    EVP_MD_CTX_free(md);
    return rc;
}

int
signer_tls_sign_digest(signer *s, const unsigned char digest[SIGNER_TLS_DIGEST_LEN],
                       unsigned char sig[SIGNER_SIG_MAX], size_t *siglen, char *err, size_t errlen)
{
    int rc = SIGNER_ERR;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(s->tls, NULL);
    *siglen = SIGNER_SIG_MAX;
    if (ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_sign(ctx, sig, siglen, digest, SIGNER_TLS_DIGEST_LEN) == 1)
        rc = 0;
    else
        errbuf_set(err, errlen, "TLS signature failed");
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int
signer_ca_rollover(signer *s, int64_t tenant_id, const char *tenant_name, char **key_name,
                   char **cert_pem, char *err, size_t errlen)
{
    (void)s, (void)tenant_id, (void)tenant_name, (void)key_name, (void)cert_pem;
    errbuf_set(err, errlen, "CA rollover needs the signer process");
    return SIGNER_ERR;
}
