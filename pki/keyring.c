#include "keyring.h"
#include "keyring_int.h"

#include <openssl/err.h>
#include <openssl/evp.h>

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
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        EVP_PKEY_free(s->slots[i].key);
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

/* The key named name, from the cache or loaded (permissions checked). The caller owns one reference
 * and releases it with EVP_PKEY_free. */
static EVP_PKEY *
get_key(keyring *s, const char *name, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL, *loaded = NULL;
    char path[PATH_MAX];

    if (name == NULL || !keyring_valid_key_name(name)) {
        snprintf(err, errlen, "signer: bad key name (expected [a-z0-9/-]{1,64})");
        return NULL;
    }
    if (snprintf(path, sizeof(path), "%s/%s.key", s->dir, name) >= (int)sizeof(path)) {
        snprintf(err, errlen, "signer: key path too long");
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (s->slots[i].key != NULL && strcmp(s->slots[i].name, name) == 0) {
            if (EVP_PKEY_up_ref(s->slots[i].key) == 1)
                key = s->slots[i].key;
            else
                snprintf(err, errlen, "signer: cannot reference key");
            goto out;
        }
    }
    /* Loading under the lock keeps two threads from loading one key twice; it happens once per
     * key. */
    if (pki_load_key(path, &loaded, err, errlen) != 0)
        goto out;
    struct slot *sl = NULL;
    for (size_t i = 0; i < CACHE_SLOTS && sl == NULL; i++) {
        if (s->slots[i].key == NULL)
            sl = &s->slots[i];
    }
    if (sl == NULL) {
        sl = &s->slots[s->next];
        s->next = (s->next + 1) % CACHE_SLOTS;
        EVP_PKEY_free(sl->key); /* users of the evicted key hold their own references */
        sl->key = NULL;
    }
    if (EVP_PKEY_up_ref(loaded) != 1) {
        snprintf(err, errlen, "signer: cannot reference key");
        goto out;
    }
    snprintf(sl->name, sizeof(sl->name), "%s", name);
    sl->key = loaded;
    key = loaded;
    loaded = NULL;
out:
    pthread_mutex_unlock(&s->lock);
    EVP_PKEY_free(loaded);
    return key;
}

int
keyring_issue_from_csr(keyring *s, const char *key_name, const char *ca_cert_pem,
                       const char *csr_pem, size_t csr_len, const struct pki_leaf_profile *p,
                       char **cert_pem, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *ca = NULL, *leaf = NULL;

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
    key = get_key(s, key_name, err, errlen);
    if (key == NULL)
        goto out;
    if (pki_issue_from_csr(key, ca, csr_pem, csr_len, p, &leaf, err, errlen) != 0)
        goto out;
    *cert_pem = pki_cert_pem(leaf);
    if (*cert_pem == NULL) {
        ossl_err(err, errlen, "signer: cannot encode certificate");
        goto out;
    }
    rc = 0;
out:
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(key);
    return rc;
}

int
keyring_sign_bytes(keyring *s, const char *key_name, const unsigned char *msg, size_t len,
                   unsigned char **sig, size_t *siglen, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *buf = NULL;
    size_t n = 0;

    *sig = NULL;
    *siglen = 0;
    if (s == NULL || (msg == NULL && len > 0) || len > KEYRING_MSG_MAX) {
        snprintf(err, errlen, "signer: message missing or larger than %d bytes", KEYRING_MSG_MAX);
        goto out;
    }
    key = get_key(s, key_name, err, errlen);
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
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, buf, &n, msg != NULL ? msg : (const unsigned char *)"", len) != 1) {
        ossl_err(err, errlen, "signer: signing failed");
        goto out;
    }
    *sig = buf;
    *siglen = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return rc;
}
