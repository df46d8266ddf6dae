#include "keyring.h"
#include "keyring_int.h"

#include "pki_util.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KEY_NAME_MAX 64
#define CACHE_SLOTS 32
#define ED_SLOTS 16
#define CA_PEM_MAX (64 * 1024)

struct slot {
    char name[KEY_NAME_MAX + 1];
    EVP_PKEY *key; /* the cache's reference; users take their own with EVP_PKEY_up_ref */
    X509 *cert;    /* <name>.crt, parsed on the first keyring_issue with the key (else NULL) */
};

struct ed_slot {
    char name[KEY_NAME_MAX + 1];
    ota_key key; /* with its secret; wiped on eviction and in keyring_free */
    int used;
};

struct keyring {
    char dir[PATH_MAX];
    pthread_mutex_t lock; /* guards slots, next, ed and ed_next */
    struct slot slots[CACHE_SLOTS];
    size_t next; /* slot to evict when the table is full */
    struct ed_slot ed[ED_SLOTS];
    size_t ed_next;
    EVP_PKEY *tls; /* keyring_tls_load's key (guarded by lock) */
};

static void
ossl_err(char *err, size_t errlen, const char *what)
{
    char e[200];
    ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", what, e);
}

/* [a-z0-9/-]{1,64}, no leading, trailing or doubled "/", no "..", and not a root ("root" or
 * ".../root"): roots are offline keys (the service root, each tenant's device root) that the daemon
 * never uses, so no request can make it sign with one. */
int
keyring_valid_key_name(const char *name)
{
    size_t n = strnlen(name, KEY_NAME_MAX + 1);
    if (n == 0 || n > KEY_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
        return 0;
    const char *last = strrchr(name, '/');
    if (strcmp(last != NULL ? last + 1 : name, "root") == 0)
        return 0;
    if (strstr(name, "..") != NULL || strstr(name, "//") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '-'))
            return 0;
    }
    return 1;
}

keyring *
keyring_new(const char *pki_dir, char *err, size_t errlen)
{
    keyring *s = NULL;
    struct stat st;
    if (pki_dir == NULL || *pki_dir == '\0') {
        snprintf(err, errlen, "signer: no PKI directory given");
        goto out;
    }
    if (stat(pki_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "signer: %s: not a directory", pki_dir);
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "signer: out of memory");
        goto out;
    }
    if (snprintf(s->dir, sizeof(s->dir), "%s", pki_dir) >= (int)sizeof(s->dir)) {
        snprintf(err, errlen, "signer: PKI directory path too long");
        goto out;
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        snprintf(err, errlen, "signer: cannot create mutex");
        goto out;
    }
    return s;
out:
    free(s);
    return NULL;
}

void
keyring_free(keyring *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        EVP_PKEY_free(s->slots[i].key);
        X509_free(s->slots[i].cert);
    }
    EVP_PKEY_free(s->tls);
    sodium_memzero(s->ed, sizeof(s->ed));
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *
keyring_dir(const keyring *s)
{
    return s->dir;
}

void
keyring_lock(keyring *s)
{
    pthread_mutex_lock(&s->lock);
}

void
keyring_unlock(keyring *s)
{
    pthread_mutex_unlock(&s->lock);
}

int
keyring_ed_cache_get(keyring *s, const char *name, ota_key *out)
{
    for (size_t i = 0; i < ED_SLOTS; i++) {
        if (s->ed[i].used && strcmp(s->ed[i].name, name) == 0) {
            *out = s->ed[i].key;
            return 0;
        }
    }
    return -1;
}

void
keyring_ed_cache_put(keyring *s, const char *name, const ota_key *k)
{
    struct ed_slot *sl = NULL;
    for (size_t i = 0; i < ED_SLOTS && sl == NULL; i++) {
        if (!s->ed[i].used)
            sl = &s->ed[i];
    }
    if (sl == NULL) {
        sl = &s->ed[s->ed_next];
        s->ed_next = (s->ed_next + 1) % ED_SLOTS;
        ota_key_wipe(&sl->key);
    }
    snprintf(sl->name, sizeof(sl->name), "%s", name);
    sl->key = *k;
    sl->used = 1;
}

/* The cache slot of name, loading the key on a miss (permissions checked), evicting the oldest
 * slot when the table is full. Called with the lock held. */
static struct slot *
slot_of(keyring *s, const char *name, const char *path, char *err, size_t errlen)
{
    EVP_PKEY *loaded = NULL;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (s->slots[i].key != NULL && strcmp(s->slots[i].name, name) == 0)
            return &s->slots[i];
    }
    /* Loading under the lock keeps two threads from loading one key twice; it happens once per
     * key. */
    if (pki_load_key(path, &loaded, err, errlen) != 0)
        return NULL;
    struct slot *sl = NULL;
    for (size_t i = 0; i < CACHE_SLOTS && sl == NULL; i++) {
        if (s->slots[i].key == NULL)
            sl = &s->slots[i];
    }
    if (sl == NULL) {
        sl = &s->slots[s->next];
        s->next = (s->next + 1) % CACHE_SLOTS;
        /* users of the evicted key and certificate hold their own references */
        EVP_PKEY_free(sl->key);
        X509_free(sl->cert);
    }
    snprintf(sl->name, sizeof(sl->name), "%s", name);
    sl->key = loaded;
    sl->cert = NULL;
    return sl;
}

/* The key named name, from the cache or loaded, and (when cert is not NULL) its certificate
 * <name>.crt, parsed once per key. The caller owns one reference to each (EVP_PKEY_free,
 * X509_free). */
static EVP_PKEY *
get_key(keyring *s, const char *name, X509 **cert, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    char path[PATH_MAX];

    if (cert != NULL)
        *cert = NULL;
    if (name == NULL || !keyring_valid_key_name(name)) {
        snprintf(err, errlen, "signer: bad key name (expected [a-z0-9/-]{1,64})");
        return NULL;
    }
    if (snprintf(path, sizeof(path), "%s/%s.key", s->dir, name) >= (int)sizeof(path)) {
        snprintf(err, errlen, "signer: key path too long");
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    struct slot *sl = slot_of(s, name, path, err, errlen);
    if (sl == NULL)
        goto out;
    if (cert != NULL && sl->cert == NULL) {
        memcpy(path + strlen(path) - 4, ".crt", 4); /* <name>.key -> <name>.crt */
        if (pki_load_cert(path, &sl->cert, err, errlen) != 0)
            goto out;
    }
    if (EVP_PKEY_up_ref(sl->key) != 1 || (cert != NULL && X509_up_ref(sl->cert) != 1)) {
        snprintf(err, errlen, "signer: cannot reference key");
        goto out;
    }
    key = sl->key;
    if (cert != NULL)
        *cert = sl->cert;
out:
    pthread_mutex_unlock(&s->lock);
    return key;
}

int
keyring_issued_of(X509 *cert, struct keyring_issued *out, char *err, size_t errlen)
{
    int rc = -1;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (hex == NULL || strlen(hex) >= sizeof(out->serial_hex) ||
        pki_asn1_to_unix(X509_get0_notAfter(cert), &out->not_after) != 0) {
        snprintf(err, errlen, "signer: cannot read the certificate's serial or notAfter");
        goto out;
    }
    for (size_t i = 0; hex[i] != '\0'; i++)
        out->serial_hex[i] = (char)tolower((unsigned char)hex[i]);
    out->serial_hex[strlen(hex)] = '\0';
    rc = 0;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    return rc;
}

/* The leaf from csr_pem under (key, ca) as PEM into *cert_pem, and (out not NULL) its serial and
 * notAfter. */
static int
issue_pem(EVP_PKEY *key, X509 *ca, const char *csr_pem, size_t csr_len,
          const struct pki_leaf_profile *p, char **cert_pem, struct keyring_issued *out, char *err,
          size_t errlen)
{
    X509 *leaf = NULL;
    int rc = -1;
    if (pki_issue_from_csr(key, ca, csr_pem, csr_len, p, &leaf, err, errlen) != 0 ||
        (out != NULL && keyring_issued_of(leaf, out, err, errlen) != 0))
        goto out;
    *cert_pem = pki_cert_pem(leaf);
    if (*cert_pem == NULL) {
        ossl_err(err, errlen, "signer: cannot encode certificate");
        goto out;
    }
    rc = 0;
out:
    X509_free(leaf);
    return rc;
}

int
keyring_issue(keyring *s, const char *key_name, const char *csr_pem, size_t csr_len,
              const struct pki_leaf_profile *p, char **cert_pem, struct keyring_issued *out,
              char *err, size_t errlen)
{
    X509 *ca = NULL;
    *cert_pem = NULL;
    if (s == NULL || csr_pem == NULL || p == NULL || out == NULL) {
        snprintf(err, errlen, "signer: missing argument");
        return -1;
    }
    EVP_PKEY *key = get_key(s, key_name, &ca, err, errlen);
    int rc = key != NULL ? issue_pem(key, ca, csr_pem, csr_len, p, cert_pem, out, err, errlen) : -1;
    X509_free(ca);
    EVP_PKEY_free(key);
    return rc;
}

int
keyring_issue_from_csr(keyring *s, const char *key_name, const char *ca_cert_pem,
                       const char *csr_pem, size_t csr_len, const struct pki_leaf_profile *p,
                       char **cert_pem, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *ca = NULL;

    *cert_pem = NULL;
    if (s == NULL || ca_cert_pem == NULL || csr_pem == NULL || p == NULL) {
        snprintf(err, errlen, "signer: missing argument");
        goto out;
    }
    size_t calen = strnlen(ca_cert_pem, CA_PEM_MAX + 1);
    if (calen > CA_PEM_MAX || (ca = pki_cert_from_pem(ca_cert_pem, calen)) == NULL) {
        snprintf(err, errlen, "signer: CA certificate is not a PEM certificate");
        goto out;
    }
    key = get_key(s, key_name, NULL, err, errlen);
    if (key == NULL)
        goto out;
    rc = issue_pem(key, ca, csr_pem, csr_len, p, cert_pem, NULL, err, errlen);
out:
    X509_free(ca);
    EVP_PKEY_free(key);
    return rc;
}

int
keyring_tls_load(keyring *s, const char *path, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    if (s == NULL || path == NULL || pki_load_key(path, &key, err, errlen) != 0)
        return -1;
    /* sig[72] of keyring_tls_sign holds a P-256 signature and no larger one */
    if (!pki_is_p256(key)) {
        snprintf(err, errlen, "signer: TLS key %s is not EC P-256", path);
        EVP_PKEY_free(key);
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    EVP_PKEY_free(s->tls);
    s->tls = key;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* ECDSA-SHA256 over msg with key into sig (*siglen: its room in, its length out). */
static int
digest_sign(EVP_PKEY *key, const unsigned char *msg, size_t len, unsigned char *sig, size_t *siglen,
            char *err, size_t errlen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok =
        md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(md, sig, siglen, msg != NULL ? msg : (const unsigned char *)"", len) == 1;
    if (!ok)
        ossl_err(err, errlen, "signer: signing failed");
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

/* The TLS key, referenced for the caller (EVP_PKEY_free), or NULL (message in err). */
static EVP_PKEY *
tls_key_ref(keyring *s, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->tls != NULL && EVP_PKEY_up_ref(s->tls) == 1)
        key = s->tls;
    pthread_mutex_unlock(&s->lock);
    if (key == NULL)
        snprintf(err, errlen, "signer: no TLS key loaded");
    return key;
}

int
keyring_tls_sign(keyring *s, const unsigned char *data, size_t len, unsigned char sig[72],
                 size_t *siglen, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    *siglen = 0;
    if (s == NULL || data == NULL || len > KEYRING_MSG_MAX) {
        snprintf(err, errlen, "signer: TLS data missing or too large");
        return -1;
    }
    if ((key = tls_key_ref(s, err, errlen)) == NULL)
        return -1;
    size_t n = 72;
    int rc = digest_sign(key, data, len, sig, &n, err, errlen);
    if (rc == 0)
        *siglen = n;
    EVP_PKEY_free(key);
    return rc;
}

int
keyring_tls_sign_digest(keyring *s, const unsigned char digest[32], unsigned char sig[72],
                        size_t *siglen, char *err, size_t errlen)
{
    EVP_PKEY *key = tls_key_ref(s, err, errlen);
    EVP_PKEY_CTX *ctx = key != NULL ? EVP_PKEY_CTX_new(key, NULL) : NULL;
    size_t n = 72;
    *siglen = 0;
    int ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_sign(ctx, sig, &n, digest, 32) == 1;
    if (ok)
        *siglen = n;
    else if (key != NULL)
        ossl_err(err, errlen, "signer: signing failed");
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

int
keyring_sign_bytes(keyring *s, const char *key_name, const unsigned char *msg, size_t len,
                   unsigned char **sig, size_t *siglen, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    unsigned char *buf = NULL;
    size_t n = 0;

    *sig = NULL;
    *siglen = 0;
    if (s == NULL || (msg == NULL && len > 0) || len > KEYRING_MSG_MAX) {
        snprintf(err, errlen, "signer: message missing or larger than %d bytes", KEYRING_MSG_MAX);
        goto out;
    }
    key = get_key(s, key_name, NULL, err, errlen);
    if (key == NULL)
        goto out;
    /* An ECDSA DER signature is at most EVP_PKEY_get_size bytes; *siglen gets the actual length. */
    int max = EVP_PKEY_get_size(key);
    if (max <= 0) {
        ossl_err(err, errlen, "signer: cannot size signature");
        goto out;
    }
    n = (size_t)max;
    buf = malloc(n);
    if (buf == NULL) {
        snprintf(err, errlen, "signer: out of memory");
        goto out;
    }
    if (digest_sign(key, msg, len, buf, &n, err, errlen) != 0)
        goto out;
    *sig = buf;
    *siglen = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    EVP_PKEY_free(key);
    return rc;
}

int
keyring_tls_reload(keyring *s, const char *path, const char *cert_pem, int commit, char *err,
                   size_t errlen)
{
    EVP_PKEY *key = NULL;
    X509 *leaf = pki_cert_from_pem(cert_pem, strlen(cert_pem));
    int rc = -1;
    if (leaf == NULL) {
        snprintf(err, errlen, "signer: the TLS certificate file holds no PEM certificate");
        goto out;
    }
    if (pki_load_key(path, &key, err, errlen) != 0)
        goto out;
    if (!pki_is_p256(key)) {
        snprintf(err, errlen, "signer: TLS key %s is not EC P-256", path);
        goto out;
    }
    if (X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "signer: the TLS key %s is not the certificate's", path);
        goto out;
    }
    if (commit) {
        pthread_mutex_lock(&s->lock);
        EVP_PKEY_free(s->tls);
        s->tls = key;
        pthread_mutex_unlock(&s->lock);
        key = NULL;
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(leaf);
    return rc;
}
