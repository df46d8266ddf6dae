#include "pki.h"

#include "util.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_FILE_MAX (64 * 1024)
#define CERT_PEM_MAX (64 * 1024)
#define CSR_PEM_MAX (16 * 1024)
#define PUBKEY_PEM_MAX (4 * 1024)
#define NAME_CHARS_MAX 64 /* ub_common_name / ub_organization_name */
#define SERIAL_BYTES 16
#define ROOT_CN "Aegis Root CA"
#define ROOT_LIFETIME_S ((int64_t)20 * 365 * 86400)
#define SERVER_LIFETIME_S ((int64_t)365 * 86400)
#define DEFAULT_HOSTS "localhost,127.0.0.1,::1"
#define TENANT_CA_MAX 100000

/* "what: <last OpenSSL error>", then clears the OpenSSL error queue. Never contains key material:
 * OpenSSL's error strings name the failing operation and reason only. */
static void
ossl_err(char *err, size_t errlen, const char *what)
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
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int
pki_is_p256(EVP_PKEY *pkey)
{
    char group[64];
    size_t glen = 0;
    if (pkey == NULL || !EVP_PKEY_is_a(pkey, "EC"))
        return 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1) {
        ERR_clear_error();
        return 0;
    }
    return strcmp(group, SN_X9_62_prime256v1) == 0 || strcmp(group, "P-256") == 0;
}

/* Drains a memory BIO into a new NUL-terminated string (caller frees). */
static char *
bio_to_string(BIO *bio, size_t *lenp)
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

static int
asn1_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Counts UTF-8 characters and returns the byte length of the first max of them. */
static size_t
utf8_prefix(const char *s, size_t max)
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
        name_add(name, "O", org, utf8_prefix(org, NAME_CHARS_MAX)) != 1)
        goto out;
    if (name_add(name, "CN", cn, utf8_prefix(cn, NAME_CHARS_MAX)) != 1)
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
cert_skeleton(X509_NAME *subject, const X509_NAME *issuer_name, EVP_PKEY *pubkey,
              int64_t not_before, int64_t not_after)
{
    X509 *cert = X509_new();
    if (cert == NULL)
        return NULL;
    if (X509_set_version(cert, X509_VERSION_3) != 1 || set_random_serial(cert) != 0 ||
        X509_set_subject_name(cert, subject) != 1 ||
        X509_set_issuer_name(cert, issuer_name != NULL ? issuer_name : subject) != 1 ||
        X509_set_pubkey(cert, pubkey) != 1 || set_validity(cert, not_before, not_after) != 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

int
pki_keygen(EVP_PKEY **out, char *err, size_t errlen)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (*out == NULL) {
        ossl_err(err, errlen, "key generation failed");
        return -1;
    }
    return 0;
}

int
pki_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
    int rc = -1;
    char *data = NULL;
    /* The secure-memory BIO clears its buffer when freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) {
        ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3. */
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        ossl_err(err, errlen, "cannot encode private key");
        goto out;
    }
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || data == NULL) {
        snprintf(err, errlen, "cannot encode private key");
        goto out;
    }
    if (util_write_file(path, data, (size_t)n, 0600) != 0) {
        snprintf(err, errlen, "%s: cannot write key file: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    return rc;
}

static int
check_mode(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if ((st->st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s: key file is accessible by group or others (mode %04o); run chmod 600 %s",
                 path, (unsigned)(st->st_mode & 07777), path);
        return -1;
    }
    return 0;
}

int
pki_check_key_perms(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return check_mode(path, &st, err, errlen);
}

int
pki_load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    int rc = -1;
    int fd = -1;
    char *buf = NULL;
    size_t got = 0;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    struct stat st;

    *out = NULL;
    /* Permissions are checked on the opened file, so the file read is the file checked. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (check_mode(path, &st, err, errlen) != 0)
        goto out;
    if (st.st_size <= 0 || st.st_size > KEY_FILE_MAX) {
        snprintf(err, errlen, "%s: key file is empty or too large", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "%s: read error", path);
            goto out;
        }
        got += (size_t)r;
    }
    bio = BIO_new_mem_buf(buf, (int)got);
    if (bio == NULL) {
        ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (key == NULL) {
        ERR_clear_error(); /* the reason may describe the key's contents; say only that it failed */
        snprintf(err, errlen, "%s: not a readable (unencrypted PEM) private key", path);
        goto out;
    }
    if (!pki_is_p256(key)) {
        snprintf(err, errlen, "%s: not an EC P-256 key", path);
        goto out;
    }
    *out = key;
    key = NULL;
    rc = 0;
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, got);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

char *
pki_cert_pem(X509 *cert)
{
    char *s = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1)
        goto out;
    s = bio_to_string(bio, NULL);
out:
    BIO_free(bio);
    return s;
}

X509 *
pki_cert_from_pem(const char *pem, size_t len)
{
    X509 *cert = NULL;
    BIO *bio = NULL;
    if (pem == NULL || len == 0 || len > CERT_PEM_MAX)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        goto out;
    cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
out:
    ERR_clear_error();
    BIO_free(bio);
    return cert;
}

int
pki_write_cert(const char *path, X509 *cert, char *err, size_t errlen)
{
    int rc = -1;
    char *pem = pki_cert_pem(cert);
    if (pem == NULL) {
        ossl_err(err, errlen, "cannot encode certificate");
        goto out;
    }
    if (util_write_file(path, pem, strlen(pem), 0644) != 0) {
        snprintf(err, errlen, "%s: cannot write certificate: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(pem);
    return rc;
}

int
pki_load_cert(const char *path, X509 **out, char *err, size_t errlen)
{
    size_t len = 0;
    char *pem = util_read_file(path, CERT_PEM_MAX, &len);
    *out = NULL;
    if (pem == NULL) {
        snprintf(err, errlen, "%s: cannot read certificate (missing or larger than %d bytes)", path,
                 CERT_PEM_MAX);
        return -1;
    }
    *out = pki_cert_from_pem(pem, len);
    free(pem);
    if (*out == NULL) {
        snprintf(err, errlen, "%s: not a PEM certificate", path);
        return -1;
    }
    return 0;
}

/* Signs a CA certificate: root when parent is NULL, else an issuing CA under parent. */
static int
make_ca_cert(EVP_PKEY *parent_key, X509 *parent, const char *cn, const char *org,
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
        if (asn1_to_unix(X509_get0_notAfter(parent), &parent_end) != 0) {
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
            ossl_err(err, errlen, "parent key does not match the parent certificate");
            goto out;
        }
    }
    if (pki_keygen(&key, err, errlen) != 0)
        goto out;
    name = make_name(cn, org);
    if (name == NULL) {
        ossl_err(err, errlen, "bad subject name");
        goto out;
    }
    cert = cert_skeleton(name, parent != NULL ? X509_get_subject_name(parent) : NULL, key,
                         not_before, not_after);
    if (cert == NULL) {
        ossl_err(err, errlen, "cannot build certificate");
        goto out;
    }
    X509 *issuer = parent != NULL ? parent : cert;
    if (add_ext(cert, issuer, NID_basic_constraints,
                parent != NULL ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE") != 0 ||
        add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(cert, issuer, NID_subject_key_identifier, "hash") != 0 ||
        (parent != NULL &&
         add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always") != 0)) {
        ossl_err(err, errlen, "cannot add CA extensions");
        goto out;
    }
    if (X509_sign(cert, parent != NULL ? parent_key : key, EVP_sha256()) <= 0) {
        ossl_err(err, errlen, "cannot sign CA certificate");
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
pki_make_root(const char *cn, int64_t lifetime_s, EVP_PKEY **key, X509 **cert, char *err,
              size_t errlen)
{
    return make_ca_cert(NULL, NULL, cn, NULL, lifetime_s, key, cert, err, errlen);
}

int
pki_make_ca(EVP_PKEY *parent_key, X509 *parent, const char *cn, const char *org, int64_t lifetime_s,
            EVP_PKEY **key, X509 **cert, char *err, size_t errlen)
{
    if (parent_key == NULL || parent == NULL) {
        snprintf(err, errlen, "CA needs a parent key and certificate");
        return -1;
    }
    return make_ca_cert(parent_key, parent, cn, org, lifetime_s, key, cert, err, errlen);
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
        ossl_err(err, errlen, "cannot build SAN");
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
            ossl_err(err, errlen, "cannot build SAN");
            goto out;
        }
        GENERAL_NAME_set0_value(gen, type, ia5);
        ia5 = NULL;
    }
    if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
        ossl_err(err, errlen, "cannot build SAN");
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
        ossl_err(err, errlen, "cannot allocate");
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
        ossl_err(err, errlen, "cannot add SAN");
        goto out;
    }
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

/* The leaf for pubkey under ca_cert, per profile. */
static int
issue_leaf(EVP_PKEY *ca_key, X509 *ca_cert, EVP_PKEY *pubkey, const struct pki_leaf_profile *p,
           X509 **out, char *err, size_t errlen)
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
    if (!pki_is_p256(pubkey)) {
        snprintf(err, errlen, "subject key is not EC P-256");
        goto out;
    }
    if (X509_check_private_key(ca_cert, ca_key) != 1) {
        ossl_err(err, errlen, "CA key does not match the CA certificate");
        goto out;
    }
    if (asn1_to_unix(X509_get0_notAfter(ca_cert), &ca_end) != 0 ||
        asn1_to_unix(X509_get0_notBefore(ca_cert), &ca_start) != 0) {
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
        ossl_err(err, errlen, "bad subject name");
        goto out;
    }
    cert = cert_skeleton(name, X509_get_subject_name(ca_cert), pubkey, not_before, not_after);
    if (cert == NULL) {
        ossl_err(err, errlen, "cannot build certificate");
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
        ossl_err(err, errlen, "cannot add leaf extensions");
        goto out;
    }
    if (add_san(cert, p, err, errlen) != 0)
        goto out;
    if (X509_sign(cert, ca_key, EVP_sha256()) <= 0) {
        ossl_err(err, errlen, "cannot sign certificate");
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
    int rc = -1;
    BIO *bio = NULL;
    X509_REQ *req = NULL;

    *out = NULL;
    if (csr_pem == NULL || csr_len == 0 || csr_len > CSR_PEM_MAX) {
        snprintf(err, errlen, "CSR is empty or larger than %d bytes", CSR_PEM_MAX);
        goto out;
    }
    bio = BIO_new_mem_buf(csr_pem, (int)csr_len);
    if (bio == NULL) {
        ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    req = PEM_read_bio_X509_REQ(bio, NULL, no_passphrase, NULL);
    if (req == NULL) {
        ossl_err(err, errlen, "not a PEM certificate request");
        goto out;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL) {
        ossl_err(err, errlen, "CSR has an unreadable public key");
        goto out;
    }
    if (!pki_is_p256(pub)) {
        snprintf(err, errlen, "CSR key is not EC P-256");
        goto out;
    }
    if (X509_REQ_verify(req, pub) != 1) {
        ossl_err(err, errlen, "CSR signature does not verify");
        goto out;
    }
    /* Only the verified public key is taken from the CSR: subject and extensions come from the
     * profile. */
    if (issue_leaf(ca_key, ca_cert, pub, p, out, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    X509_REQ_free(req);
    BIO_free(bio);
    return rc;
}

int
pki_issue_for_key(EVP_PKEY *ca_key, X509 *ca_cert, EVP_PKEY *subject_key,
                  const struct pki_leaf_profile *p, X509 **out, char *err, size_t errlen)
{
    return issue_leaf(ca_key, ca_cert, subject_key, p, out, err, errlen);
}

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
        ossl_err(err, errlen, "cannot allocate");
        goto out;
    }
    if (PEM_read_bio(bio, &name, &header, &der, &derlen) != 1 || strcmp(name, "PUBLIC KEY") != 0 ||
        header[0] != '\0') {
        ossl_err(err, errlen, "not a PEM public key");
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
        ossl_err(err, errlen, "cannot encode public key");
        goto out;
    }
    if (EVP_Digest(canon, (size_t)clen, md, NULL, EVP_sha256(), NULL) != 1) {
        ossl_err(err, errlen, "cannot hash public key");
        goto out;
    }
    if (norm_pem != NULL) {
        outbio = BIO_new(BIO_s_mem());
        if (outbio == NULL || PEM_write_bio(outbio, "PUBLIC KEY", "", canon, clen) <= 0 ||
            (*norm_pem = bio_to_string(outbio, NULL)) == NULL) {
            ossl_err(err, errlen, "cannot encode public key");
            goto out;
        }
    }
    util_hex(md, sizeof(md), id);
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
    OSSL_DECODER_CTX *dctx = NULL;

    if (pem == NULL || len == 0 || len > PUBKEY_PEM_MAX)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL || PEM_read_bio(bio, &name, &header, &der, &derlen) != 1 ||
        strcmp(name, "PUBLIC KEY") != 0)
        goto out;
    /* A decoder narrowed to DER SubjectPublicKeyInfo of EC: a third of the generic PEM path. */
    dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "DER", "SubjectPublicKeyInfo", "EC",
                                         EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    const unsigned char *q = der;
    size_t qlen = (size_t)derlen;
    if (dctx == NULL || OSSL_DECODER_from_data(dctx, &q, &qlen) != 1 || qlen != 0 ||
        !pki_is_p256(key)) {
        EVP_PKEY_free(key);
        key = NULL;
    }
out:
    ERR_clear_error();
    OSSL_DECODER_CTX_free(dctx);
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

/* dir/name into buf. */
static int
join(char *buf, size_t len, const char *dir, const char *name, char *err, size_t errlen)
{
    if (snprintf(buf, len, "%s/%s", dir, name) >= (int)len) {
        snprintf(err, errlen, "path too long under %.200s", dir);
        return -1;
    }
    return 0;
}

static int
exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Splits hosts into a comma-separated DNS list and IP list (each entry classified by whether it
 * parses as an IP address). */
static int
split_hosts(const char *hosts, char *dns, char *ip, size_t len, char *err, size_t errlen)
{
    size_t dl = 0, il = 0;
    const char *p = hosts;
    dns[0] = ip[0] = '\0';
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        size_t n = strcspn(p, ", ");
        char one[256];
        if (n >= sizeof(one)) {
            snprintf(err, errlen, "host name too long");
            return -1;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        p += n;
        ASN1_OCTET_STRING *a = a2i_IPADDRESS(one);
        ERR_clear_error();
        char *dst = a != NULL ? ip : dns;
        size_t *dlp = a != NULL ? &il : &dl;
        ASN1_OCTET_STRING_free(a);
        int w = snprintf(dst + *dlp, len - *dlp, "%s%s", *dlp > 0 ? "," : "", one);
        if (w < 0 || (size_t)w >= len - *dlp) {
            snprintf(err, errlen, "host list too long");
            return -1;
        }
        *dlp += (size_t)w;
    }
    if (dl == 0 && il == 0) {
        snprintf(err, errlen, "no host names for the server certificate");
        return -1;
    }
    return 0;
}

/* Issues a server key and certificate (serverAuth, SAN from hosts) under the root. */
static int
make_server(const char *key_path, const char *crt_path, EVP_PKEY *root_key, X509 *root,
            const char *hosts, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char dns[2048], ip[2048];

    if (split_hosts(hosts != NULL && *hosts != '\0' ? hosts : DEFAULT_HOSTS, dns, ip, sizeof(dns),
                    err, errlen) != 0)
        goto out;
    struct pki_leaf_profile p = {
        .common_name = "aegisd",
        .san_dns = dns[0] != '\0' ? dns : NULL,
        .san_ip = ip[0] != '\0' ? ip : NULL,
        .server_auth = 1,
        .client_auth = 0,
        .lifetime_s = SERVER_LIFETIME_S,
        .now = util_now(),
    };
    if (pki_keygen(&key, err, errlen) != 0 ||
        pki_issue_for_key(root_key, root, key, &p, &cert, err, errlen) != 0 ||
        pki_write_key(key_path, key, err, errlen) != 0 ||
        pki_write_cert(crt_path, cert, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int
pki_init_dir(const char *dir, const char *hosts, int *created, char *err, size_t errlen)
{
    int rc = -1;
    char root_key[PATH_MAX], root_crt[PATH_MAX], srv_key[PATH_MAX], srv_crt[PATH_MAX];
    EVP_PKEY *rkey = NULL;
    X509 *rcert = NULL;
    int made_root = 0;

    *created = 0;
    if (dir == NULL || *dir == '\0') {
        snprintf(err, errlen, "no PKI directory given");
        goto out;
    }
    if (join(root_key, sizeof(root_key), dir, "root.key", err, errlen) != 0 ||
        join(root_crt, sizeof(root_crt), dir, "root.crt", err, errlen) != 0 ||
        join(srv_key, sizeof(srv_key), dir, "server.key", err, errlen) != 0 ||
        join(srv_crt, sizeof(srv_crt), dir, "server.crt", err, errlen) != 0)
        goto out;
    if (util_mkdirs(dir, 0700) != 0) {
        snprintf(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
        goto out;
    }
    int have_rkey = exists(root_key), have_rcrt = exists(root_crt);
    if (have_rkey != have_rcrt) {
        /* Never replace half a root: a lone root.key may be the only copy of a key still in use. */
        snprintf(err, errlen, "%s: found %s without %s; restore it or remove both to re-initialise",
                 dir, have_rkey ? "root.key" : "root.crt", have_rkey ? "root.crt" : "root.key");
        goto out;
    }
    if (!have_rkey) {
        if (pki_make_root(ROOT_CN, ROOT_LIFETIME_S, &rkey, &rcert, err, errlen) != 0 ||
            pki_write_key(root_key, rkey, err, errlen) != 0 ||
            pki_write_cert(root_crt, rcert, err, errlen) != 0)
            goto out;
        made_root = 1;
        *created = 1;
    } else if (pki_check_key_perms(root_key, err, errlen) != 0) {
        goto out;
    }
    int have_skey = exists(srv_key), have_scrt = exists(srv_crt);
    if (have_scrt && !have_skey && !made_root) {
        snprintf(err, errlen, "%s: found server.crt without server.key; remove it to re-initialise",
                 dir);
        goto out;
    }
    /* The server key is disposable: it is (re)made whenever its certificate is missing or predates
     * the root. server.crt is written last, so it marks a complete pair. */
    if (made_root || !have_scrt) {
        if (rkey == NULL && (pki_load_key(root_key, &rkey, err, errlen) != 0 ||
                             pki_load_cert(root_crt, &rcert, err, errlen) != 0))
            goto out;
        if (make_server(srv_key, srv_crt, rkey, rcert, hosts, err, errlen) != 0)
            goto out;
        *created = 1;
    } else if (pki_check_key_perms(srv_key, err, errlen) != 0) {
        goto out;
    }
    rc = 0;
out:
    X509_free(rcert);
    EVP_PKEY_free(rkey);
    return rc;
}

/* The largest n of any ca-<n>.crt / ca-<n>.key in dir (0 if none). */
static int
max_ca_index(const char *dir, int64_t *max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    *max = 0;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strncmp(name, "ca-", 3) != 0)
            continue;
        const char *dot = strchr(name + 3, '.');
        if (dot == NULL || (size_t)(dot - (name + 3)) > 10)
            continue;
        char num[16];
        memcpy(num, name + 3, (size_t)(dot - (name + 3)));
        num[dot - (name + 3)] = '\0';
        int64_t n;
        if (util_parse_i64(num, 1, TENANT_CA_MAX, &n) == 0 && n > *max)
            *max = n;
    }
    closedir(d);
    return 0;
}

int
pki_tenant_ca_create(const char *dir, int64_t tenant_id, const char *tenant_name,
                     int64_t lifetime_s, char *key_name, size_t key_name_len, char **cert_pem,
                     int64_t *not_before, int64_t *not_after, char *err, size_t errlen)
{
    int rc = -1;
    char root_key[PATH_MAX], root_crt[PATH_MAX], tdir[PATH_MAX];
    char key_path[PATH_MAX], crt_path[PATH_MAX], name[128], cn[512];
    EVP_PKEY *rkey = NULL, *key = NULL;
    X509 *rcert = NULL, *cert = NULL;
    char *pem = NULL;
    int reserved = 0, fd = -1;
    int64_t n = 0;

    *cert_pem = NULL;
    if (dir == NULL || tenant_id <= 0 || tenant_name == NULL || *tenant_name == '\0' ||
        lifetime_s <= 0) {
        snprintf(err, errlen,
                 "tenant CA needs a directory, a tenant id > 0, a name and a lifetime");
        goto out;
    }
    if (join(root_key, sizeof(root_key), dir, "root.key", err, errlen) != 0 ||
        join(root_crt, sizeof(root_crt), dir, "root.crt", err, errlen) != 0)
        goto out;
    if (snprintf(tdir, sizeof(tdir), "%s/tenants/%lld", dir, (long long)tenant_id) >=
        (int)sizeof(tdir)) {
        snprintf(err, errlen, "path too long under %.200s", dir);
        goto out;
    }
    if (pki_load_key(root_key, &rkey, err, errlen) != 0 ||
        pki_load_cert(root_crt, &rcert, err, errlen) != 0)
        goto out;
    if (util_mkdirs(tdir, 0700) != 0) {
        snprintf(err, errlen, "%s: cannot create directory: %s", tdir, strerror(errno));
        goto out;
    }
    if (max_ca_index(tdir, &n) != 0) {
        snprintf(err, errlen, "%s: cannot list directory: %s", tdir, strerror(errno));
        goto out;
    }
    /* Reserve ca-<n>.key with O_EXCL so two concurrent creators never pick the same n; the real key
     * then replaces the placeholder atomically. */
    for (;;) {
        n++;
        if (n > TENANT_CA_MAX) {
            snprintf(err, errlen, "%s: too many issuing CAs", tdir);
            goto out;
        }
        if (snprintf(key_path, sizeof(key_path), "%s/ca-%lld.key", tdir, (long long)n) >=
                (int)sizeof(key_path) ||
            snprintf(crt_path, sizeof(crt_path), "%s/ca-%lld.crt", tdir, (long long)n) >=
                (int)sizeof(crt_path)) {
            snprintf(err, errlen, "path too long under %.200s", dir);
            goto out;
        }
        if (exists(crt_path))
            continue;
        fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            break;
        if (errno != EEXIST) {
            snprintf(err, errlen, "%s: %s", key_path, strerror(errno));
            goto out;
        }
    }
    close(fd);
    fd = -1;
    reserved = 1;
    if (snprintf(name, sizeof(name), "tenants/%lld/ca-%lld", (long long)tenant_id, (long long)n) >=
        (int)key_name_len) {
        snprintf(err, errlen, "key name buffer too small");
        goto out;
    }
    /* The tenant name is shortened (never the CA number) so the CN fits its 64 characters. */
    size_t prefix = strlen("Aegis Issuing CA ");
    int suffix = snprintf(NULL, 0, " %lld", (long long)n);
    size_t tn = utf8_prefix(tenant_name, NAME_CHARS_MAX - prefix - (size_t)suffix);
    snprintf(cn, sizeof(cn), "Aegis Issuing CA %.*s %lld", (int)tn, tenant_name, (long long)n);
    if (pki_make_ca(rkey, rcert, cn, tenant_name, lifetime_s, &key, &cert, err, errlen) != 0 ||
        pki_write_key(key_path, key, err, errlen) != 0 ||
        pki_write_cert(crt_path, cert, err, errlen) != 0)
        goto out;
    reserved = 0;
    pem = pki_cert_pem(cert);
    if (pem == NULL) {
        ossl_err(err, errlen, "cannot encode certificate");
        goto out;
    }
    if ((not_before != NULL && asn1_to_unix(X509_get0_notBefore(cert), not_before) != 0) ||
        (not_after != NULL && asn1_to_unix(X509_get0_notAfter(cert), not_after) != 0)) {
        snprintf(err, errlen, "cannot read certificate validity");
        goto out;
    }
    snprintf(key_name, key_name_len, "%s", name);
    *cert_pem = pem;
    pem = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (reserved) {
        unlink(key_path);
        unlink(crt_path);
    }
    free(pem);
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_free(rcert);
    EVP_PKEY_free(rkey);
    return rc;
}
