/* hal_host: key store, storage, clock and randomness of adev_hal.h on a Linux host. */
#include "hal_host.h"
#include "hal_host_int.h"

#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEYSTORE_DIR "keystore"
#define KEYSTORE_FILE "identity.key" /* private to this file: nothing else names it */
#define STORAGE_DIR "storage"
#define TMP_MARK ".tmp." /* util_write_file's temporary files are ".<name>.tmp.<pid>.<n>" */
#define PATH_BUF 4096

struct adev_keystore {
    EVP_PKEY *key;
};

struct adev_storage {
    char *dir;
    int nosync;
};

struct adev_clock {
    int64_t skew;
};

static adev_host_write_hook write_hook;
static void *write_hook_arg;

/* --- files ---------------------------------------------------------------------------------- */

void
adev_host_set_write_hook(adev_host_write_hook hook, void *arg)
{
    write_hook = hook;
    write_hook_arg = arg;
}

void
adev_host_hook(const char *path, const void *data, size_t len)
{
    if (write_hook != NULL)
        write_hook(write_hook_arg, path, data, len);
}

int
adev_host_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    int rc = -1, fd = -1;
    uint8_t *buf = NULL;
    struct stat stt;
    size_t got = 0;

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        rc = errno == ENOENT ? -2 : -1;
        goto out;
    }
    if (fstat(fd, &stt) != 0 || !S_ISREG(stt.st_mode))
        goto out;
    if ((uint64_t)stt.st_size > max) {
        rc = -3;
        goto out;
    }
    size_t size = (size_t)stt.st_size;
    buf = malloc(size + 1);
    if (buf == NULL)
        goto out;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, got);
        free(buf);
    }
    return rc;
}

int
adev_host_make_dir(const char *path)
{
    if (mkdir(path, 0700) == 0)
        return 0;
    struct stat stt;
    if (errno == EEXIST && stat(path, &stt) == 0 && S_ISDIR(stt.st_mode))
        return 0;
    return -1;
}

/* --- key store ------------------------------------------------------------------------------- */

static int
keystore_paths(const char *dir, char *kdir, char *kfile)
{
    int n1 = snprintf(kdir, PATH_BUF, "%s/%s", dir, KEYSTORE_DIR);
    int n2 = snprintf(kfile, PATH_BUF, "%s/%s/%s", dir, KEYSTORE_DIR, KEYSTORE_FILE);
    return n1 > 0 && n1 < PATH_BUF && n2 > 0 && n2 < PATH_BUF ? 0 : -1;
}

int
adev_host_keystore_create(const char *dir, int *created)
{
    int rc = -1;
    char kdir[PATH_BUF], kfile[PATH_BUF];
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    char *pem = NULL;
    long pem_len = 0;

    if (created != NULL)
        *created = 0;
    if (dir == NULL || keystore_paths(dir, kdir, kfile) != 0)
        goto out;
    if (adev_host_make_dir(dir) != 0 || adev_host_make_dir(kdir) != 0)
        goto out;
    if (access(kfile, F_OK) == 0) {
        rc = 0;
        goto out;
    }
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    bio = BIO_new(BIO_s_secmem());
    if (key == NULL || bio == NULL ||
        PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    pem_len = BIO_get_mem_data(bio, &pem);
    if (pem_len <= 0 || util_write_file(kfile, pem, (size_t)pem_len, 0600) != 0)
        goto out;
    if (created != NULL)
        *created = 1;
    rc = 0;
out:
    BIO_free(bio); /* a secure-heap BIO: cleared on free */
    EVP_PKEY_free(key);
    return rc;
}

adev_keystore *
adev_host_keystore_open(const char *dir)
{
    adev_keystore *ks = NULL;
    char kdir[PATH_BUF], kfile[PATH_BUF];
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    struct stat stt;

    if (dir == NULL || keystore_paths(dir, kdir, kfile) != 0)
        goto out;
    if (stat(kfile, &stt) != 0 || (stt.st_mode & 077) != 0)
        goto out;
    if (adev_host_read_file(kfile, 16384, &pem, &pem_len) != 0)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)pem_len);
    if (bio == NULL)
        goto out;
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (key == NULL || !EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != 256)
        goto out;
    ks = calloc(1, sizeof(*ks));
    if (ks == NULL)
        goto out;
    ks->key = key;
    key = NULL;
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    adev_storage_free_secret(pem, pem_len);
    return ks;
}

int
adev_keystore_public_der(adev_keystore *ks, uint8_t out[ADEV_SPKI_LEN])
{
    if (ks == NULL)
        return -1;
    int n = i2d_PUBKEY(ks->key, NULL);
    if (n != ADEV_SPKI_LEN)
        return -1;
    uint8_t *p = out;
    return i2d_PUBKEY(ks->key, &p) == ADEV_SPKI_LEN ? 0 : -1;
}

int
adev_keystore_sign(adev_keystore *ks, const uint8_t *msg, size_t len, uint8_t *sig, size_t cap,
                   size_t *sig_len)
{
    int rc = -1;
    EVP_MD_CTX *md = NULL;
    size_t n = cap;

    if (ks == NULL || msg == NULL || sig == NULL || sig_len == NULL || cap < ADEV_SIG_MAX)
        goto out;
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ks->key) != 1 ||
        EVP_DigestSign(md, sig, &n, msg, len) != 1)
        goto out;
    *sig_len = n;
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

void
adev_keystore_free(adev_keystore *ks)
{
    if (ks == NULL)
        return;
    EVP_PKEY_free(ks->key);
    free(ks);
}

/* --- storage --------------------------------------------------------------------------------- */

static int
valid_name(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > ADEV_STORAGE_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int
blob_path(const adev_storage *st, const char *name, char *path)
{
    if (st == NULL || !valid_name(name))
        return -1;
    int n = snprintf(path, PATH_BUF, "%s/%s", st->dir, name);
    return n > 0 && n < PATH_BUF ? 0 : -1;
}

void
adev_host_remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && strstr(e->d_name, TMP_MARK) != NULL)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

adev_storage *
adev_host_storage_open(const char *dir)
{
    return adev_host_storage_open_flags(dir, 0);
}

adev_storage *
adev_host_storage_open_flags(const char *dir, int flags)
{
    adev_storage *st = NULL, *res = NULL;
    char path[PATH_BUF];

    if (dir == NULL)
        goto out;
    int n = snprintf(path, sizeof(path), "%s/%s", dir, STORAGE_DIR);
    if (n <= 0 || (size_t)n >= sizeof(path) || adev_host_make_dir(dir) != 0 ||
        adev_host_make_dir(path) != 0)
        goto out;
    adev_host_remove_stale_temps(path);
    st = calloc(1, sizeof(*st));
    if (st == NULL || (st->dir = strdup(path)) == NULL)
        goto out;
    st->nosync = (flags & ADEV_HOST_STORAGE_NOSYNC) != 0;
    res = st;
    st = NULL;
out:
    adev_storage_free(st);
    return res;
}

int
adev_storage_read(adev_storage *st, const char *name, size_t max, uint8_t **data, size_t *len)
{
    char path[PATH_BUF];
    if (data == NULL || len == NULL)
        return -1;
    *data = NULL;
    *len = 0;
    if (blob_path(st, name, path) != 0)
        return -1;
    return adev_host_read_file(path, max, data, len);
}

int
adev_storage_write(adev_storage *st, const char *name, const void *data, size_t len, int flags)
{
    char path[PATH_BUF];
    if (blob_path(st, name, path) != 0 || (data == NULL && len > 0))
        return -1;
    adev_host_hook(path, data, len);
    return util_write_file_flags(path, data != NULL ? data : "", len,
                                 (flags & ADEV_STORAGE_SECRET) ? 0600 : 0644,
                                 st->nosync ? UTIL_WRITE_NOSYNC : 0);
}

int
adev_storage_remove(adev_storage *st, const char *name)
{
    char path[PATH_BUF];
    if (blob_path(st, name, path) != 0)
        return -1;
    adev_host_hook(path, NULL, 0);
    if (unlink(path) != 0 && errno != ENOENT)
        return -1;
    return st->nosync ? 0 : util_fsync_dir(st->dir);
}

int
adev_storage_exists(adev_storage *st, const char *name)
{
    char path[PATH_BUF];
    struct stat stt;
    if (blob_path(st, name, path) != 0)
        return 0;
    return stat(path, &stt) == 0 && S_ISREG(stt.st_mode);
}

int
adev_storage_append(adev_storage *st, const char *name, const void *data, size_t len)
{
    char path[PATH_BUF];
    int rc = -1, fd = -1;
    const uint8_t *p = data;

    if (blob_path(st, name, path) != 0 || (data == NULL && len > 0))
        goto out;
    adev_host_hook(path, data, len);
    int existed = access(path, F_OK) == 0;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        goto out;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        p += n;
        len -= (size_t)n;
    }
    /* a new name must reach the directory too, or a power loss could drop the whole blob */
    if (!st->nosync && (fsync(fd) != 0 || (!existed && util_fsync_dir(st->dir) != 0)))
        goto out;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int
adev_storage_size(adev_storage *st, const char *name, uint64_t *size)
{
    char path[PATH_BUF];
    struct stat stt;
    if (size == NULL || blob_path(st, name, path) != 0)
        return -1;
    *size = 0;
    if (lstat(path, &stt) != 0)
        return errno == ENOENT ? -2 : -1;
    if (!S_ISREG(stt.st_mode))
        return -1;
    *size = (uint64_t)stt.st_size;
    return 0;
}

void
adev_storage_free_secret(uint8_t *data, size_t len)
{
    if (data == NULL)
        return;
    OPENSSL_cleanse(data, len);
    free(data);
}

void
adev_storage_free(adev_storage *st)
{
    if (st == NULL)
        return;
    free(st->dir);
    free(st);
}

/* --- clock and randomness -------------------------------------------------------------------- */

adev_clock *
adev_host_clock_new(int64_t skew_s)
{
    adev_clock *c = calloc(1, sizeof(*c));
    if (c != NULL)
        c->skew = skew_s;
    return c;
}

void
adev_host_clock_set_skew(adev_clock *c, int64_t skew_s)
{
    if (c != NULL)
        c->skew = skew_s;
}

int64_t
adev_clock_now(const adev_clock *c)
{
    return (int64_t)time(NULL) + (c != NULL ? c->skew : 0);
}

uint64_t
adev_clock_monotonic_us(const adev_clock *c)
{
    struct timespec ts;
    (void)c;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
adev_clock_free(adev_clock *c)
{
    free(c);
}

int
adev_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1)
            return -1;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}
