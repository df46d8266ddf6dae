/* Unit tests of ota_client: the TUF client workflow of a device (docs/update.md 3, 3.1, 4) over
 * repositories built here with ota_meta and fresh keys: one passing path and one failing case per
 * check of each step, and after every refusal the saved state is compared with the one before (a
 * failed check changes nothing). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

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

static void
test_image_happy_path(void **state)
{
    (void)state;
    char name[64];
    ota_client *c = client_of(image_roles());
    assert_int_equal(ota_client_root_name(c, name, sizeof(name)), 0);
    assert_string_equal(name, "2.root.json");
    OK(ota_client_roots_done(c, NOW, err, sizeof(err)));
    assert_int_equal(ota_client_snapshot_name(c, name, sizeof(name)), -1);
    assert_int_equal(ota_client_targets_name(c, name, sizeof(name)), -1);
    assert_null(ota_client_find_target(c, IMG_PATH));

    struct file snap = snapshot_file(1, LATER, 1, KEYS(&SK));
    OK(ts_step(c, timestamp_file(1, LATER, 1, &snap, KEYS(&TSK))));
    assert_int_equal(ota_client_snapshot_name(c, name, sizeof(name)), 0);
    assert_string_equal(name, "1.snapshot.json");
    OK(snap_step(c, snap));
    assert_int_equal(ota_client_targets_name(c, name, sizeof(name)), 0);
    assert_string_equal(name, "1.targets.json");
    assert_int_equal(ota_client_targets_current(c), 0);
    OK(targets_step(c, targets_file(1, LATER, KEYS(&TK[0], &TK[1]))));
    assert_int_equal(ota_client_targets_current(c), 1);
    assert_string_equal(ota_client_reason(c), "");
    const json_t *t = ota_client_find_target(c, IMG_PATH);
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "length")), 1024);
    assert_null(ota_client_find_target(c, "aegis-os/nothing"));

    /* the next publication, and the same timestamp again (an equal version is no change) */
    publish(c, 2, 2, 2);
    struct file again = snapshot_file(2, LATER, 2, KEYS(&SK));
    OK(ts_step(c, timestamp_file(2, LATER, 2, &again, KEYS(&TSK))));
    free(again.b);
    /* a re-signed snapshot naming the same targets: nothing to fetch */
    publish(c, 3, 3, 2);
    assert_int_equal(ota_client_targets_current(c), 1);
    ota_client_free(c);
}

static void
test_root_chain(void **state)
{
    (void)state;
    struct roles r = image_roles();
    /* rotation: RK[0], RK[1] leave, RK[3] joins, threshold 2 of {RK[2], RK[3]} */
    struct roles rot = r;
    rot.k[OTA_ROLE_ROOT] = KEYS(&RK[2], &RK[3]);
    ota_client *c = client_of(image_roles());
    char big[OTA_CLIENT_ROOT_MAX + 2];

    REFUSED(c, root_step(c, root_file(2, LATER, &r, KEYS(&RK[0]))), OTA_E_SIGNATURES,
            "root_signatures");
    /* new keys only: one of the trusted root's keys */
    REFUSED(c, root_step(c, root_file(2, LATER, &rot, KEYS(&RK[2], &RK[3]))), OTA_E_SIGNATURES,
            "root_signatures");
    /* old keys only: none of its own */
    REFUSED(c, root_step(c, root_file(2, LATER, &rot, KEYS(&RK[0], &RK[1]))), OTA_E_SIGNATURES,
            "root_signatures");
    REFUSED(c, root_step(c, root_file(3, LATER, &r, KEYS(&RK[0], &RK[1]))), OTA_E_VERSION,
            "root_version");
    REFUSED(c, root_step(c, root_file(1, LATER, &r, KEYS(&RK[0], &RK[1]))), OTA_E_VERSION,
            "root_version");
    REFUSED(c, root_step(c, timestamp_file(2, LATER, 1, NULL, KEYS(&RK[0], &RK[1]))), OTA_E_TYPE,
            "root_type");
    REFUSED(c, ota_client_root(c, "{\"signed\":", 10, err, sizeof(err)), OTA_E_FORMAT,
            "root_format");
    memset(big, ' ', sizeof(big));
    memcpy(big, "{}", 2);
    REFUSED(c, ota_client_root(c, big, OTA_CLIENT_ROOT_MAX + 1, err, sizeof(err)), OTA_E_FORMAT,
            "root_format");
    assert_non_null(strstr(err, "at most"));

    /* old and new thresholds met: trusted; an expired root in the middle of the chain is fine */
    OK(root_step(c, root_file(2, PAST, &rot, KEYS(&RK[0], &RK[2], &RK[3]))));
    REFUSED(c, ota_client_roots_done(c, NOW, err, sizeof(err)), OTA_E_EXPIRED, "root_expired");
    /* now the new keys rule: the old ones cannot sign root 3 */
    REFUSED(c, root_step(c, root_file(3, LATER, &rot, KEYS(&RK[0], &RK[1]))), OTA_E_SIGNATURES,
            "root_signatures");
    OK(root_step(c, root_file(3, LATER, &rot, KEYS(&RK[2], &RK[3]))));
    OK(ota_client_roots_done(c, NOW, err, sizeof(err)));
    ota_client_free(c);
}

static void
test_root_steps_bounded(void **state)
{
    (void)state;
    struct roles r = image_roles();
    char name[64];
    ota_client *c = client_of(image_roles());
    for (int v = 2; v < 2 + OTA_CLIENT_MAX_ROOT_STEPS; v++) {
        assert_int_equal(ota_client_root_name(c, name, sizeof(name)), 0);
        OK(root_step(c, root_file(v, LATER, &r, KEYS(&RK[0], &RK[1]))));
    }
    assert_int_equal(ota_client_root_name(c, name, sizeof(name)), -1);
    REFUSED(c,
            root_step(c, root_file(2 + OTA_CLIENT_MAX_ROOT_STEPS, LATER, &r, KEYS(&RK[0], &RK[1]))),
            OTA_E_VERSION, "root_version");
    /* the next check goes on from there */
    OK(ota_client_roots_done(c, NOW, err, sizeof(err)));
    assert_int_equal(ota_client_root_name(c, name, sizeof(name)), 0);
    assert_string_equal(name, "34.root.json");
    OK(root_step(c, root_file(34, LATER, &r, KEYS(&RK[0], &RK[1]))));
    ota_client_free(c);
}

static void
test_timestamp(void **state)
{
    (void)state;
    ota_client *c = client_of(image_roles());
    publish(c, 2, 2, 1);
    REFUSED(c, ts_step(c, timestamp_file(3, LATER, 2, NULL, KEYS(&SK))), OTA_E_SIGNATURES,
            "timestamp_signatures");
    REFUSED(c, ts_step(c, timestamp_file(1, LATER, 2, NULL, KEYS(&TSK))), OTA_E_VERSION,
            "timestamp_version");
    /* a newer timestamp naming an older snapshot */
    REFUSED(c, ts_step(c, timestamp_file(3, LATER, 1, NULL, KEYS(&TSK))), OTA_E_VERSION,
            "timestamp_version");
    REFUSED(c, ts_step(c, timestamp_file(3, NOW, 3, NULL, KEYS(&TSK))), OTA_E_EXPIRED,
            "timestamp_expired");
    REFUSED(c, ts_step(c, snapshot_file(3, LATER, 1, KEYS(&TSK))), OTA_E_TYPE, "timestamp_type");
    REFUSED(c,
            ts_step(c, oversize(timestamp_file(3, LATER, 3, NULL, KEYS(&TSK)),
                                OTA_CLIENT_TIMESTAMP_MAX)),
            OTA_E_FORMAT, "timestamp_format");
    REFUSED(c, ota_client_timestamp(c, "[]", 2, NOW, err, sizeof(err)), OTA_E_FORMAT,
            "timestamp_format");
    /* hashes without a sha256: nothing the device can check */
    json_t *s = ota_meta_new_timestamp(3, LATER, 3, -1, NULL);
    json_object_set_new(json_object_get(json_object_get(s, "meta"), "snapshot.json"), "hashes",
                        json_pack("{s:s}", "md5", "00"));
    REFUSED(c, ts_step(c, sign_file(s, KEYS(&TSK))), OTA_E_FORMAT, "timestamp_format");
    s = ota_meta_new_timestamp(3, LATER, 3, -1, NULL);
    json_object_set_new(s, "spec_version", json_string("2.0.0"));
    REFUSED(c, ts_step(c, sign_file(s, KEYS(&TSK))), OTA_E_SPEC, "timestamp_spec");
    OK(ts_step(c, timestamp_file(3, LATER, 3, NULL, KEYS(&TSK))));
    ota_client_free(c);
}

static void
test_snapshot(void **state)
{
    (void)state;
    ota_client *c = client_of(image_roles());
    REFUSED(c, snap_step(c, snapshot_file(1, LATER, 1, KEYS(&SK))), OTA_E_VERSION,
            "snapshot_version");
    publish(c, 1, 1, 2);

    /* the timestamp names the length and hash of snap */
    struct file snap = snapshot_file(2, LATER, 2, KEYS(&SK));
    OK(ts_step(c, timestamp_file(2, LATER, 2, &snap, KEYS(&TSK))));
    struct file longer = {malloc(snap.n + 2), snap.n + 1};
    memcpy(longer.b, snap.b, snap.n);
    memcpy(longer.b + snap.n, " ", 2);
    REFUSED(c, snap_step(c, longer), OTA_CLIENT_E_MISMATCH, "snapshot_mismatch");
    assert_non_null(strstr(err, "bytes"));
    /* same length, other bytes (another expiry date) */
    REFUSED(c, snap_step(c, snapshot_file(2, LATER + DAY, 2, KEYS(&SK))), OTA_CLIENT_E_MISMATCH,
            "snapshot_mismatch");
    assert_non_null(strstr(err, "SHA-256"));
    REFUSED(c,
            snap_step(c, oversize(snapshot_file(2, LATER, 2, KEYS(&SK)), OTA_CLIENT_SNAPSHOT_MAX)),
            OTA_E_FORMAT, "snapshot_format");
    OK(snap_step(c, snap));

    /* a timestamp without length and hash: the snapshot's own checks */
    OK(ts_step(c, timestamp_file(3, LATER, 3, NULL, KEYS(&TSK))));
    REFUSED(c, snap_step(c, snapshot_file(4, LATER, 2, KEYS(&SK))), OTA_E_VERSION,
            "snapshot_version");
    REFUSED(c, snap_step(c, snapshot_file(3, LATER, 2, KEYS(&TSK))), OTA_E_SIGNATURES,
            "snapshot_signatures");
    REFUSED(c, snap_step(c, snapshot_file(3, LATER, 1, KEYS(&SK))), OTA_E_VERSION,
            "snapshot_version");
    assert_non_null(strstr(err, "targets version 1"));
    REFUSED(c, snap_step(c, snapshot_file(3, PAST, 2, KEYS(&SK))), OTA_E_EXPIRED,
            "snapshot_expired");
    OK(snap_step(c, snapshot_file(3, LATER, 2, KEYS(&SK))));
    ota_client_free(c);
}

static void
test_targets(void **state)
{
    (void)state;
    ota_client *c = client_of(image_roles());
    REFUSED(c, targets_step(c, targets_file(1, LATER, KEYS(&TK[0], &TK[1]))), OTA_E_VERSION,
            "targets_version");
    publish(c, 1, 1, 1);
    OK(ts_step(c, timestamp_file(2, LATER, 2, NULL, KEYS(&TSK))));
    OK(snap_step(c, snapshot_file(2, LATER, 2, KEYS(&SK))));
    /* a compromised service: a valid snapshot naming targets it signed with its online key */
    REFUSED(c, targets_step(c, targets_file(2, LATER, KEYS(&SK))), OTA_E_SIGNATURES,
            "targets_signatures");
    REFUSED(c, targets_step(c, targets_file(2, LATER, KEYS(&TK[0]))), OTA_E_SIGNATURES,
            "targets_signatures");
    REFUSED(c, targets_step(c, targets_file(3, LATER, KEYS(&TK[0], &TK[1]))), OTA_E_VERSION,
            "targets_version");
    REFUSED(c, targets_step(c, targets_file(1, LATER, KEYS(&TK[0], &TK[1]))), OTA_E_VERSION,
            "targets_version");
    REFUSED(c, targets_step(c, targets_file(2, PAST, KEYS(&TK[0], &TK[1]))), OTA_E_EXPIRED,
            "targets_expired");
    json_t *s = targets_signed(2, LATER, NULL);
    json_object_set_new(s, "delegations", json_pack("{s:{}, s:[]}", "keys", "roles"));
    REFUSED(c, targets_step(c, sign_file(s, KEYS(&TK[0], &TK[1]))), OTA_E_FORMAT, "targets_format");
    json_t *extra = json_pack("{s:s}", "color", "blue");
    s = targets_signed(2, LATER, extra);
    json_decref(extra);
    REFUSED(c, targets_step(c, sign_file(s, KEYS(&TK[0], &TK[1]))), OTA_E_FORMAT, "targets_format");
    OK(targets_step(c, targets_file(2, LATER, KEYS(&TK[0], &TK[1]))));
    ota_client_free(c);
}

/* Targets reused without fetching them again must still be unexpired (a service that keeps naming
 * an expired targets file is a freeze attack); a timestamp of the trusted version changes nothing.
 */
static void
test_reused_targets_and_equal_timestamp(void **state)
{
    (void)state;
    ota_client *c = client_of(image_roles());
    publish(c, 2, 2, 1);
    assert_int_equal(ota_client_targets_current(c), 1);
    OK(ota_client_targets_unexpired(c, NOW, err, sizeof(err)));
    REFUSED(c, ota_client_targets_unexpired(c, LATER, err, sizeof(err)), OTA_E_EXPIRED,
            "targets_expired");
    /* timestamp version 2 again, other content (another expiry): passes, the trusted one stays */
    char *before = state_of(c);
    OK(ts_step(c, timestamp_file(2, LATER + DAY, 2, NULL, KEYS(&TSK))));
    char *after = state_of(c);
    assert_string_equal(before, after);
    free(before);
    free(after);
    ota_client_free(c);
}

/* A snapshot that names the length and hash of targets.json: they are checked. */
static void
test_targets_named_hash(void **state)
{
    (void)state;
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[OTA_SHA256_HEX_LEN];
    ota_client *c = client_of(image_roles());
    struct file t = targets_file(1, LATER, KEYS(&TK[0], &TK[1]));
    crypto_hash_sha256(h, (const unsigned char *)t.b, t.n);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    json_t *s = ota_meta_new_snapshot(1, LATER, 1);
    json_t *m = json_object_get(json_object_get(s, "meta"), "targets.json");
    json_object_set_new(m, "length", json_integer((json_int_t)t.n));
    json_object_set_new(m, "hashes", json_pack("{s:s}", "sha256", hex));
    OK(ts_step(c, timestamp_file(1, LATER, 1, NULL, KEYS(&TSK))));
    OK(snap_step(c, sign_file(s, KEYS(&SK))));
    REFUSED(c, targets_step(c, targets_file(1, LATER + DAY, KEYS(&TK[0], &TK[1]))),
            OTA_CLIENT_E_MISMATCH, "targets_mismatch");
    OK(targets_step(c, t));
    ota_client_free(c);
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

static void
test_rotation_forgets(void **state)
{
    (void)state;
    struct roles r = image_roles();
    ota_client *c = client_of(image_roles());
    publish(c, 5, 5, 3);
    /* the same keys: everything is kept */
    OK(root_step(c, root_file(2, LATER, &r, KEYS(&RK[0], &RK[1]))));
    assert_true(state_has(c, "timestamp") && state_has(c, "snapshot") && state_has(c, "targets"));
    /* a new timestamp key: timestamp and snapshot are forgotten, so a repository recovered from a
     * compromise may start again at lower versions; the old key is no longer trusted */
    r.k[OTA_ROLE_TIMESTAMP] = KEYS(&XK);
    OK(root_step(c, root_file(3, LATER, &r, KEYS(&RK[0], &RK[1]))));
    assert_false(state_has(c, "timestamp") || state_has(c, "snapshot"));
    assert_true(state_has(c, "targets"));
    REFUSED(c, ts_step(c, timestamp_file(1, LATER, 1, NULL, KEYS(&TSK))), OTA_E_SIGNATURES,
            "timestamp_signatures");
    OK(ts_step(c, timestamp_file(1, LATER, 1, NULL, KEYS(&XK))));
    /* the trusted targets still bound the snapshot */
    REFUSED(c, snap_step(c, snapshot_file(1, LATER, 2, KEYS(&SK))), OTA_E_VERSION,
            "snapshot_version");
    OK(snap_step(c, snapshot_file(1, LATER, 3, KEYS(&SK))));
    /* another targets threshold (same keys): the trusted targets are forgotten */
    r.th[OTA_ROLE_TARGETS] = 1;
    OK(root_step(c, root_file(4, LATER, &r, KEYS(&RK[0], &RK[1]))));
    assert_true(state_has(c, "timestamp") && state_has(c, "snapshot"));
    assert_false(state_has(c, "targets"));
    /* a new snapshot key forgets both */
    r.k[OTA_ROLE_SNAPSHOT] = KEYS(&XK);
    OK(root_step(c, root_file(5, LATER, &r, KEYS(&RK[0], &RK[1]))));
    assert_false(state_has(c, "timestamp") || state_has(c, "snapshot"));
    ota_client_free(c);
}

static ota_client *
reload(const char *text)
{
    return ota_client_load(text, strlen(text), err, sizeof(err));
}

static void
test_save_load(void **state)
{
    (void)state;
    ota_client *c = client_of(image_roles());
    publish(c, 2, 2, 1);
    char *s = state_of(c);
    ota_client *back = reload(s);
    if (back == NULL)
        fail_msg("load: %s", err);
    char *s2 = state_of(back);
    assert_string_equal(s, s2);
    assert_int_equal(ota_client_targets_current(back), 1);
    assert_non_null(ota_client_find_target(back, IMG_PATH));
    /* the loaded client goes on, with its rollback floors */
    REFUSED(back, ts_step(back, timestamp_file(1, LATER, 1, NULL, KEYS(&TSK))), OTA_E_VERSION,
            "timestamp_version");
    publish(back, 3, 3, 2);

    /* malformed states */
    assert_null(reload("not json"));
    assert_null(reload("{}"));
    assert_null(ota_client_load(s, strlen(s) - 1, err, sizeof(err)));
    json_t *doc = json_loads(s, 0, NULL);
    json_object_set_new(doc, "extra", json_true());
    char *t = json_dumps(doc, JSON_COMPACT);
    assert_null(reload(t));
    assert_non_null(strstr(err, "unknown member"));
    free(t);
    json_object_del(doc, "extra");
    /* a damaged targets signature: below its threshold of 2 */
    json_t *sig = json_array_get(json_object_get(json_object_get(doc, "targets"), "signatures"), 0);
    char bad[OTA_SIG_HEX_LEN];
    snprintf(bad, sizeof(bad), "%s", json_string_value(json_object_get(sig, "sig")));
    bad[0] = bad[0] == '0' ? '1' : '0';
    json_object_set_new(sig, "sig", json_string(bad));
    t = json_dumps(doc, JSON_COMPACT);
    assert_null(reload(t));
    assert_non_null(strstr(err, "targets"));
    free(t);
    /* the root alone is a state */
    json_object_del(doc, "targets");
    json_object_del(doc, "snapshot");
    json_object_del(doc, "timestamp");
    t = json_dumps(doc, JSON_COMPACT);
    ota_client *bare = reload(t);
    assert_non_null(bare);
    char name[64];
    assert_int_equal(ota_client_snapshot_name(bare, name, sizeof(name)), -1);
    ota_client_free(bare);
    free(t);
    json_decref(doc);
    free(s2);
    free(s);
    ota_client_free(back);
    ota_client_free(c);
}

static void
test_director(void **state)
{
    (void)state;
    ota_client *c = client_of(director_roles());
    OK(ota_client_roots_done(c, NOW, err, sizeof(err)));
    OK(dir_step(c, answer_file(5, LATER, DEVICE, TENANT, KEYS(&DK))));
    assert_non_null(answer_signed);
    assert_non_null(json_object_get(json_object_get(answer_signed, "targets"), IMG_PATH));
    /* an equal version with other content is accepted, and is the answer now */
    OK(dir_step(c, answer_file(5, LATER - DAY, DEVICE, TENANT, KEYS(&DK))));
    assert_string_equal(json_string_value(json_object_get(answer_signed, "expires")),
                        "2029-12-31T00:00:00Z");

    REFUSED(c, dir_step(c, answer_file(4, LATER, DEVICE, TENANT, KEYS(&DK))), OTA_E_VERSION,
            "director_version");
    assert_null(answer_signed);
    REFUSED(c, dir_step(c, answer_file(6, LATER, DEVICE, TENANT, KEYS(&XK))), OTA_E_SIGNATURES,
            "director_signatures");
    /* the image repository's targets keys do not sign director answers */
    REFUSED(c, dir_step(c, answer_file(6, LATER, DEVICE, TENANT, KEYS(&TK[0], &TK[1]))),
            OTA_E_SIGNATURES, "director_signatures");
    REFUSED(c, dir_step(c, answer_file(6, NOW, DEVICE, TENANT, KEYS(&DK))), OTA_E_EXPIRED,
            "director_expired");
    REFUSED(c, dir_step(c, answer_file(6, LATER, OTHER_DEVICE, TENANT, KEYS(&DK))),
            OTA_CLIENT_E_DEVICE, "director_device");
    REFUSED(c, dir_step(c, answer_file(6, LATER, DEVICE, TENANT + 1, KEYS(&DK))),
            OTA_CLIENT_E_DEVICE, "director_device");
    REFUSED(c, dir_step(c, snapshot_file(6, LATER, 1, KEYS(&DK))), OTA_E_TYPE, "director_type");
    REFUSED(c, dir_step(c, answer_file(6, LATER, "5BE1", TENANT, KEYS(&DK))), OTA_E_FORMAT,
            "director_format");
    REFUSED(c, dir_step(c, targets_file(6, LATER, KEYS(&DK))), OTA_E_FORMAT, "director_format");
    REFUSED(c,
            dir_step(c, oversize(answer_file(6, LATER, DEVICE, TENANT, KEYS(&DK)),
                                 OTA_CLIENT_DIRECTOR_MAX)),
            OTA_E_FORMAT, "director_format");
    OK(dir_step(c, answer_file(6, LATER, DEVICE, TENANT, KEYS(&DK))));

    /* the last answer survives a restart, and so does its rollback floor */
    char *s = state_of(c);
    ota_client *back = reload(s);
    assert_non_null(back);
    REFUSED(back, dir_step(back, answer_file(5, LATER, DEVICE, TENANT, KEYS(&DK))), OTA_E_VERSION,
            "director_version");
    /* a new director key (the targets role): the last answer is forgotten with the old key */
    struct roles r = director_roles();
    r.k[OTA_ROLE_TARGETS] = KEYS(&XK);
    OK(root_step(back, root_file(2, LATER, &r, KEYS(&RK[0], &RK[1]))));
    assert_false(state_has(back, "director"));
    OK(dir_step(back, answer_file(1, LATER, DEVICE, TENANT, KEYS(&XK))));
    free(s);
    ota_client_free(back);
    ota_client_free(c);
}

static uint32_t
svn_of(const char *component, void *arg)
{
    assert_string_equal(component, "aegis-os");
    return *(const uint32_t *)arg;
}

/* ota_client_agree of the director's target changed by member: value, with the device facts. */
static int
agree_with(const ota_client *images, const json_t *dt, const char *obj, const char *member,
           json_t *value, const struct ota_device_facts *dev, char reason[OTA_REASON_MAX])
{
    json_t *t = json_deep_copy(dt);
    if (member != NULL) {
        json_t *o = obj != NULL ? json_object_get(t, obj) : t;
        json_object_set_new(o, member, value);
    }
    int rc = ota_client_agree(images, IMG_PATH, t, dev, reason, err, sizeof(err));
    json_decref(t);
    return rc;
}

static void
test_agree(void **state)
{
    (void)state;
    char reason[OTA_REASON_MAX];
    uint32_t svn = 7;
    struct ota_device_facts dev = {"gw-rev-b", 4, svn_of, &svn};
    ota_client *images = client_of(image_roles());
    ota_client *dir = client_of(director_roles());
    /* no trusted targets yet: nothing is in the repository */
    OK(dir_step(dir, answer_file(1, LATER, DEVICE, TENANT, KEYS(&DK))));
    const json_t *dt = json_object_get(json_object_get(answer_signed, "targets"), IMG_PATH);
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &dev, reason), -1);
    assert_string_equal(reason, "not_in_repository");
    publish(images, 1, 1, 1);

    /* equal svn (and the director's extra deployment_id) */
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &dev, reason), 0);
    assert_string_equal(reason, "");
    struct {
        const char *obj, *member;
        json_t *value;
    } change[] = {
        {NULL, "length", json_integer(1025)},
        {"hashes", "sha256",
         json_string("00000000000000000000000000000000000000000000000000000000"
                     "00000000")},
        {"custom", "component", json_string("aegis-app")},
        {"custom", "kind", json_string("app")},
        {"custom", "version", json_string("2.1.1")},
        {"custom", "svn", json_integer(8)},
        {"custom", "hardware", json_string("gw-rev-c")},
        {"custom", "product_id", json_integer(5)},
        {"custom", "product_id", json_string("4")},
    };
    for (size_t i = 0; i < sizeof(change) / sizeof(change[0]); i++) {
        assert_int_equal(
            agree_with(images, dt, change[i].obj, change[i].member, change[i].value, &dev, reason),
            -1);
        assert_string_equal(reason, "not_in_repository");
        assert_non_null(strstr(err, change[i].member));
    }
    assert_int_equal(ota_client_agree(images, "aegis-os/other", dt, &dev, reason, err, sizeof(err)),
                     -1);
    assert_string_equal(reason, "not_in_repository");

    struct ota_device_facts other_hw = {"gw-rev-c", 4, svn_of, &svn};
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &other_hw, reason), -1);
    assert_string_equal(reason, "not_in_repository");
    assert_non_null(strstr(err, "hardware"));
    struct ota_device_facts other_product = {"gw-rev-b", 5, svn_of, &svn};
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &other_product, reason), -1);
    assert_string_equal(reason, "not_in_repository");
    assert_non_null(strstr(err, "product"));

    svn = 8;
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &dev, reason), -1);
    assert_string_equal(reason, "rollback");
    svn = 0;
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &dev, reason), 0);
    ota_client_free(dir);
    ota_client_free(images);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_happy_path),
        cmocka_unit_test(test_root_chain),
        cmocka_unit_test(test_root_steps_bounded),
        cmocka_unit_test(test_timestamp),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_targets_named_hash),
        cmocka_unit_test(test_reused_targets_and_equal_timestamp),
        cmocka_unit_test(test_rotation_forgets),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_director),
        cmocka_unit_test(test_agree),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
