/* Unit tests of firmware-ref/hal_host.c: the key store never gives out its private key, storage
 * writes are atomic (also when the writer is killed mid-write), blob names cannot escape the
 * storage directory, secrets are 0600; clock skew; randomness. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "adev_hal.h"
#include "evidence.h"
#include "hal_host.h"

#include <dirent.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *
tmpdir(void)
{
    char *d = strdup("/tmp/test_fw_hal.XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void
rmtree(char *d)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
    free(d);
}

static int
contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    }
    return 0;
}

/* The key file's private scalar (what must never come out of the API). */
static void
private_scalar(const char *dir, uint8_t out[32])
{
    char path[512];
    snprintf(path, sizeof(path), "%s/keystore/identity.key", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    BIGNUM *d = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
    assert_int_equal(BN_bn2binpad(d, out, 32), 32);
    BN_clear_free(d);
    EVP_PKEY_free(k);
}

static void
test_keystore_create_and_sign(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char path[512];
    struct stat st;
    int created = 0;

    assert_int_equal(adev_host_keystore_create(dir, &created), 0);
    assert_int_equal(created, 1);
    snprintf(path, sizeof(path), "%s/keystore", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/keystore/identity.key", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    adev_keystore *ks = adev_host_keystore_open(dir);
    assert_non_null(ks);
    uint8_t spki[ADEV_SPKI_LEN], spki2[ADEV_SPKI_LEN];
    assert_int_equal(adev_keystore_public_der(ks, spki), 0);

    /* making it again keeps the key ("manufacturing" happens once) */
    assert_int_equal(adev_host_keystore_create(dir, &created), 0);
    assert_int_equal(created, 0);
    adev_keystore *ks2 = adev_host_keystore_open(dir);
    assert_int_equal(adev_keystore_public_der(ks2, spki2), 0);
    assert_memory_equal(spki, spki2, sizeof(spki));
    adev_keystore_free(ks2);

    /* the public key is a P-256 SubjectPublicKeyInfo with no private part */
    const uint8_t *p = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, sizeof(spki));
    assert_non_null(pub);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    assert_int_equal(EVP_PKEY_get_bits(pub), 256);
    BIGNUM *priv = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 0);

    /* signatures verify with it */
    const uint8_t msg[] = "sign me";
    uint8_t sig[ADEV_SIG_MAX];
    size_t sig_len = 0;
    assert_int_equal(adev_keystore_sign(ks, msg, sizeof(msg), sig, sizeof(sig), &sig_len), 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, sig_len, msg, sizeof(msg)), 1);
    assert_int_equal(adev_keystore_sign(ks, msg, sizeof(msg), sig, 10, &sig_len), -1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pub);
    adev_keystore_free(ks);
    adev_keystore_free(NULL);
    rmtree(dir);
}

/* API level: nothing the key store or storage interface returns carries the private key, and
 * storage names cannot reach the key file. */
static void
test_keystore_never_exposes_private_key(void **state)
{
    (void)state;
    char *dir = tmpdir();
    uint8_t d[32], spki[ADEV_SPKI_LEN], sig[ADEV_SIG_MAX];
    size_t sig_len;

    assert_int_equal(adev_host_keystore_create(dir, NULL), 0);
    private_scalar(dir, d);
    adev_keystore *ks = adev_host_keystore_open(dir);
    adev_storage *st = adev_host_storage_open(dir);
    assert_non_null(ks);
    assert_non_null(st);

    assert_int_equal(adev_keystore_public_der(ks, spki), 0);
    assert_false(contains(spki, sizeof(spki), d, 8));
    for (int i = 0; i < 64; i++) {
        uint8_t msg[32];
        assert_int_equal(adev_random(msg, sizeof(msg)), 0);
        assert_int_equal(adev_keystore_sign(ks, msg, sizeof(msg), sig, sizeof(sig), &sig_len), 0);
        assert_false(contains(sig, sig_len, d, 8));
    }
    /* storage names cannot climb into the key store */
    const char *names[] = {"../keystore/identity.key",
                           "keystore/identity.key",
                           "identity.key",
                           "..",
                           ".",
                           "/etc/passwd",
                           "a/b",
                           "",
                           ".hidden"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        int rc = adev_storage_read(st, names[i], 1 << 20, &data, &len);
        assert_true(rc == -1 || rc == -2);
        assert_null(data);
        assert_false(adev_storage_exists(st, names[i]));
    }
    assert_int_equal(adev_storage_write(st, "../keystore/identity.key", "x", 1, 0), -1);
    assert_int_equal(adev_storage_remove(st, "../keystore/identity.key"), -1);

    /* a key file readable by others is refused */
    char path[512];
    snprintf(path, sizeof(path), "%s/keystore/identity.key", dir);
    assert_int_equal(chmod(path, 0640), 0);
    assert_null(adev_host_keystore_open(dir));
    assert_int_equal(chmod(path, 0600), 0);
    adev_keystore *again = adev_host_keystore_open(dir);
    assert_non_null(again);
    adev_keystore_free(again);
    assert_null(adev_host_keystore_open("/nonexistent/device"));

    adev_storage_free(st);
    adev_keystore_free(ks);
    rmtree(dir);
}

static void
test_storage_basics(void **state)
{
    (void)state;
    char *dir = tmpdir();
    adev_storage *st = adev_host_storage_open(dir);
    uint8_t *data = NULL;
    size_t len = 0;
    char path[512];
    struct stat stt;

    assert_non_null(st);
    assert_int_equal(adev_storage_read(st, "blob", 100, &data, &len), -2);
    assert_false(adev_storage_exists(st, "blob"));
    assert_int_equal(adev_storage_write(st, "blob", "hello", 5, 0), 0);
    assert_true(adev_storage_exists(st, "blob"));
    assert_int_equal(adev_storage_read(st, "blob", 100, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal((char *)data, "hello"); /* NUL-terminated */
    free(data);
    assert_int_equal(adev_storage_read(st, "blob", 4, &data, &len), -3);
    assert_null(data);
    /* overwrite, empty blob */
    assert_int_equal(adev_storage_write(st, "blob", NULL, 0, 0), 0);
    assert_int_equal(adev_storage_read(st, "blob", 100, &data, &len), 0);
    assert_int_equal(len, 0);
    free(data);
    /* modes: secrets are 0600, others 0644 (under umask 022) */
    mode_t old = umask(022);
    assert_int_equal(adev_storage_write(st, "secret.key", "k", 1, ADEV_STORAGE_SECRET), 0);
    assert_int_equal(adev_storage_write(st, "public.pem", "p", 1, 0), 0);
    umask(old);
    snprintf(path, sizeof(path), "%s/storage/secret.key", dir);
    assert_int_equal(stat(path, &stt), 0);
    assert_int_equal(stt.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/storage/public.pem", dir);
    assert_int_equal(stat(path, &stt), 0);
    assert_int_equal(stt.st_mode & 0777, 0644);
    /* a secret overwriting a public blob becomes 0600 too */
    assert_int_equal(adev_storage_write(st, "public.pem", "p", 1, ADEV_STORAGE_SECRET), 0);
    assert_int_equal(stat(path, &stt), 0);
    assert_int_equal(stt.st_mode & 0777, 0600);
    /* names */
    char longname[ADEV_STORAGE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(adev_storage_write(st, longname, "x", 1, 0), -1);
    longname[ADEV_STORAGE_NAME_MAX] = '\0';
    assert_int_equal(adev_storage_write(st, longname, "x", 1, 0), 0);
    assert_int_equal(adev_storage_write(st, "sp ace", "x", 1, 0), -1);
    /* remove */
    assert_int_equal(adev_storage_remove(st, "blob"), 0);
    assert_false(adev_storage_exists(st, "blob"));
    assert_int_equal(adev_storage_remove(st, "blob"), 0); /* missing is fine */
    adev_storage_free_secret(NULL, 0);
    adev_storage_free(st);
    adev_storage_free(NULL);
    rmtree(dir);
}

static int
count_temps(const char *sdir)
{
    DIR *d = opendir(sdir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp.") != NULL)
            n++;
    }
    closedir(d);
    return n;
}

#define BIG (256 * 1024)

/* A writer killed at a random moment leaves the old content or the new, never a mix; a reopened
 * storage removes the temporary files of interrupted writes. */
static void
test_storage_atomic_under_kill(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char sdir[512];
    uint8_t *a = malloc(BIG), *b = malloc(BIG);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 'a', BIG);
    memset(b, 'b', BIG);
    snprintf(sdir, sizeof(sdir), "%s/storage", dir);
    adev_storage *st = adev_host_storage_open(dir);
    assert_int_equal(adev_storage_write(st, "blob", a, BIG, 0), 0);
    srand((unsigned)time(NULL));
    int saw_b = 0;
    for (int round = 0; round < 25; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int i = 0;; i++)
                adev_storage_write(st, "blob", i % 2 ? a : b, BIG, 0);
        }
        struct timespec ts = {0, (long)(rand() % 8000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(adev_storage_read(st, "blob", BIG, &data, &len), 0);
        assert_int_equal(len, BIG);
        assert_true(data[0] == 'a' || data[0] == 'b');
        saw_b |= data[0] == 'b';
        assert_memory_equal(data, data[0] == 'a' ? a : b, BIG);
        free(data);
    }
    if (!saw_b) /* timing dependent: not asserted */
        print_message("note: the writer never completed a write before it was killed\n");
    adev_storage_free(st);
    /* leftovers of killed writers are cleaned when the storage is opened again */
    FILE *f = NULL;
    char stale[600];
    snprintf(stale, sizeof(stale), "%s/.blob.tmp.99999.1", sdir);
    f = fopen(stale, "w");
    assert_non_null(f);
    fputs("partial", f);
    fclose(f);
    assert_true(count_temps(sdir) > 0);
    st = adev_host_storage_open(dir);
    assert_non_null(st);
    assert_int_equal(count_temps(sdir), 0);
    adev_storage_free(st);
    free(a);
    free(b);
    rmtree(dir);
}

static void
test_clock_and_random(void **state)
{
    (void)state;
    adev_clock *c = adev_host_clock_new(-3600);
    int64_t now = (int64_t)time(NULL);
    int64_t t = adev_clock_now(c);
    assert_true(t >= now - 3601 && t <= now - 3599);
    adev_host_clock_set_skew(c, 180);
    t = adev_clock_now(c);
    assert_true(t >= now + 179 && t <= now + 182);
    uint64_t m1 = adev_clock_monotonic_us(c), m2 = adev_clock_monotonic_us(c);
    assert_true(m2 >= m1);
    adev_clock_free(c);
    adev_clock_free(NULL);

    uint8_t r1[32], r2[32], zero[32] = {0};
    assert_int_equal(adev_random(r1, sizeof(r1)), 0);
    assert_int_equal(adev_random(r2, sizeof(r2)), 0);
    assert_memory_not_equal(r1, r2, sizeof(r1));
    assert_memory_not_equal(r1, zero, sizeof(r1));
    assert_string_equal(adev_net_err_reason(ADEV_NET_CLOCK), "clock_skew");
    assert_string_equal(adev_net_err_reason(ADEV_NET_TLS), "tls_error");
    assert_string_equal(adev_net_err_reason(ADEV_NET_TIMEOUT), "timeout");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keystore_create_and_sign),
        cmocka_unit_test(test_keystore_never_exposes_private_key),
        cmocka_unit_test(test_storage_basics),
        cmocka_unit_test(test_storage_atomic_under_kill),
        cmocka_unit_test(test_clock_and_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
