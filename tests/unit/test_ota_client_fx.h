/* test_ota_client_fx: the repositories, keys and helpers of the ota_client unit tests
 * (test_ota_client.c: the image repository; test_ota_client_dir.c: the director and the
 * agreement). Included once per test program; everything is static. */
#ifndef TEST_OTA_CLIENT_FX_H
#define TEST_OTA_CLIENT_FX_H

/* each test program uses its part of the helpers */
#pragma GCC diagnostic ignored "-Wunused-function"

#include "ota_client.h"
#include "ota_verify.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1767225600LL   /* 2026-01-01T00:00:00Z */
#define LATER 1893456000LL /* 2030-01-01T00:00:00Z */
#define PAST (NOW - 60)
#define DAY 86400

/* Root keys (3 of them in root 1, threshold 2; RK[3] joins by rotation), targets keys (threshold
 * 2), the online snapshot, timestamp and director keys, and a stranger's key. */
static ota_key RK[4], TK[2], SK, TSK, DK, XK;
static char IMG_SHA[OTA_SHA256_HEX_LEN], IMG_PATH[96];
static const char DEVICE[] = "5be1000000000000000000000000000000000000000000000000000000000001";
static const char OTHER_DEVICE[] =
    "5be1000000000000000000000000000000000000000000000000000000000002";
#define TENANT 3
static char err[512];

/* A list of keys: the signers of a file, or a role's keys. */
struct keys {
    const ota_key *k[4];
    int n;
};
#define KEYS(...)                                                                                  \
    ((struct keys){{__VA_ARGS__},                                                                  \
                   (int)(sizeof((const ota_key *[]){__VA_ARGS__}) / sizeof(const ota_key *))})

/* The keys and thresholds of a root, per role (OTA_ROLE_ROOT, _TARGETS, _SNAPSHOT, _TIMESTAMP). */
struct roles {
    struct keys k[OTA_ROLE_COUNT];
    int th[OTA_ROLE_COUNT];
};

/* File bytes (malloc'd, NUL after them). */
struct file {
    char *b;
    size_t n;
};

static int
setup(void **state)
{
    (void)state;
    unsigned char h[crypto_hash_sha256_BYTES];
    ota_key *all[] = {&RK[0], &RK[1], &RK[2], &RK[3], &TK[0], &TK[1], &SK, &TSK, &DK, &XK};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (ota_key_generate(all[i], NULL, 0) != 0)
            return -1;
    }
    crypto_hash_sha256(h, (const unsigned char *)"image-1", 7);
    sodium_bin2hex(IMG_SHA, sizeof(IMG_SHA), h, sizeof(h));
    snprintf(IMG_PATH, sizeof(IMG_PATH), "aegis-os/%s", IMG_SHA);
    return 0;
}

static struct roles
image_roles(void)
{
    return (struct roles){
        {KEYS(&RK[0], &RK[1], &RK[2]), KEYS(&TK[0], &TK[1]), KEYS(&SK), KEYS(&TSK)}, {2, 2, 1, 1}};
}

static struct roles
director_roles(void)
{
    return (struct roles){{KEYS(&RK[0], &RK[1], &RK[2]), KEYS(&DK), KEYS(&DK), KEYS(&DK)},
                          {2, 1, 1, 1}};
}

/* The file of "signed" s (taken) signed by each of by. */
static struct file
sign_file(json_t *s, struct keys by)
{
    struct file f = {0};
    assert_non_null(s);
    json_t *env = ota_meta_envelope(s);
    for (int i = 0; i < by.n; i++)
        assert_int_equal(ota_meta_sign(env, by.k[i], err, sizeof(err)), 0);
    assert_int_equal(ota_meta_dump(env, &f.b, &f.n, err, sizeof(err)), 0);
    json_decref(env);
    return f;
}

static struct file
root_file(int64_t v, int64_t expires, const struct roles *r, struct keys by)
{
    json_t *s = ota_meta_new_root(v, expires);
    for (int role = 0; role < OTA_ROLE_COUNT; role++) {
        for (int i = 0; i < r->k[role].n; i++)
            assert_int_equal(
                ota_meta_root_add_key(s, (ota_role)role, r->k[role].k[i], err, sizeof(err)), 0);
        assert_int_equal(
            ota_meta_root_set_threshold(s, (ota_role)role, r->th[role], err, sizeof(err)), 0);
    }
    return sign_file(s, by);
}

/* The custom fields of the one image. */
static json_t *
image_custom(void)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:s, s:i}", "component", "aegis-os", "kind", "os",
                     "version", "2.1.0", "svn", 7, "hardware", "gw-rev-b", "product_id", 4);
}

/* The "signed" of targets listing the image (custom plus extra members, may be NULL). */
static json_t *
targets_signed(int64_t v, int64_t expires, const json_t *extra)
{
    json_t *s = ota_meta_new_targets(v, expires);
    json_t *custom = image_custom();
    if (extra != NULL)
        json_object_update(custom, (json_t *)extra);
    assert_int_equal(ota_meta_targets_add(s, IMG_PATH, 1024, IMG_SHA, custom, err, sizeof(err)), 0);
    json_decref(custom);
    return s;
}

static struct file
targets_file(int64_t v, int64_t expires, struct keys by)
{
    return sign_file(targets_signed(v, expires, NULL), by);
}

static struct file
snapshot_file(int64_t v, int64_t expires, int64_t targets_v, struct keys by)
{
    return sign_file(ota_meta_new_snapshot(v, expires, targets_v), by);
}

/* A timestamp naming snapshot version snap_v, with the length and SHA-256 of snap when given. */
static struct file
timestamp_file(int64_t v, int64_t expires, int64_t snap_v, const struct file *snap, struct keys by)
{
    char hex[OTA_SHA256_HEX_LEN];
    unsigned char h[crypto_hash_sha256_BYTES];
    if (snap != NULL) {
        crypto_hash_sha256(h, (const unsigned char *)snap->b, snap->n);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    }
    return sign_file(
        ota_meta_new_timestamp(v, expires, snap_v, snap ? (int64_t)snap->n : -1, snap ? hex : NULL),
        by);
}

/* A director answer for device dev of tenant, naming the image. */
static struct file
answer_file(int64_t v, int64_t expires, const char *dev, int64_t tenant, struct keys by)
{
    json_t *extra = json_pack("{s:i}", "deployment_id", 12);
    json_t *s = targets_signed(v, expires, extra);
    json_object_set_new(s, "custom",
                        json_pack("{s:s, s:I, s:i, s:i}", "device_id", dev, "tenant_id",
                                  (json_int_t)tenant, "deployment_id", 12, "wave", 2));
    json_decref(extra);
    return sign_file(s, by);
}

/* f padded with spaces to max + 1 bytes: valid JSON one byte too long. */
static struct file
oversize(struct file f, size_t max)
{
    f.b = realloc(f.b, max + 2);
    assert_non_null(f.b);
    memset(f.b + f.n, ' ', max + 1 - f.n);
    f.n = max + 1;
    f.b[f.n] = '\0';
    return f;
}

/* The steps, each taking (and freeing) the file. */
static int
root_step(ota_client *c, struct file f)
{
    int rc = ota_client_root(c, f.b, f.n, err, sizeof(err));
    free(f.b);
    return rc;
}

static int
ts_step(ota_client *c, struct file f)
{
    int rc = ota_client_timestamp(c, f.b, f.n, NOW, err, sizeof(err));
    free(f.b);
    return rc;
}

static int
snap_step(ota_client *c, struct file f)
{
    int rc = ota_client_snapshot(c, f.b, f.n, NOW, err, sizeof(err));
    free(f.b);
    return rc;
}

static int
targets_step(ota_client *c, struct file f)
{
    int rc = ota_client_targets(c, f.b, f.n, NOW, err, sizeof(err));
    free(f.b);
    return rc;
}

static const json_t *answer_signed;

static int
dir_step(ota_client *c, struct file f)
{
    int rc =
        ota_client_director(c, f.b, f.n, NOW, DEVICE, TENANT, &answer_signed, err, sizeof(err));
    free(f.b);
    return rc;
}

static char *
state_of(const ota_client *c)
{
    char *s = NULL;
    size_t n = 0;
    assert_int_equal(ota_client_save(c, &s, &n), 0);
    assert_int_equal(strlen(s), n);
    return s;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s: %d (%s)", #call, rc_, err);                                              \
    } while (0)

/* call fails with code and reason why, and c's saved state is what it was before. */
#define REFUSED(c, call, code, why)                                                                \
    do {                                                                                           \
        char *before_ = state_of(c);                                                               \
        int rc_ = (call);                                                                          \
        if (rc_ != (code))                                                                         \
            fail_msg("%s: %d where %d (%s)", #call, rc_, (code), err);                             \
        assert_string_equal(ota_client_reason(c), (why));                                          \
        char *after_ = state_of(c);                                                                \
        assert_string_equal(before_, after_);                                                      \
        free(before_);                                                                             \
        free(after_);                                                                              \
    } while (0)

/* A client trusting root 1 of roles r. */
static ota_client *
client_of(struct roles r)
{
    struct file f = root_file(1, LATER, &r, KEYS(&RK[0], &RK[1]));
    ota_client *c = ota_client_new(f.b, f.n, err, sizeof(err));
    if (c == NULL)
        fail_msg("ota_client_new: %s", err);
    free(f.b);
    return c;
}

/* Timestamp tv naming snapshot sv (with its length and hash) naming targets t, all accepted. */
static void
publish(ota_client *c, int64_t tv, int64_t sv, int64_t t)
{
    struct file snap = snapshot_file(sv, LATER, t, KEYS(&SK));
    OK(ts_step(c, timestamp_file(tv, LATER, sv, &snap, KEYS(&TSK))));
    OK(snap_step(c, snap));
    if (!ota_client_targets_current(c))
        OK(targets_step(c, targets_file(t, LATER, KEYS(&TK[0], &TK[1]))));
}

static ota_client *
reload(const char *text)
{
    return ota_client_load(text, strlen(text), err, sizeof(err));
}

/* 1 when the saved state of c has member name. */
static int
state_has(const ota_client *c, const char *name)
{
    char *s = state_of(c);
    json_t *doc = json_loads(s, 0, NULL);
    int has = json_object_get(doc, name) != NULL;
    json_decref(doc);
    free(s);
    return has;
}

#endif
