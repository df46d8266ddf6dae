/* Unit tests of ota_client: the TUF client workflow of a device (docs/update.md 3, 3.1) over
 * repositories built with ota_meta and fresh keys (test_ota_client_fx.h): one passing path and one
 * failing case per check of each step of the image repository, and after every refusal the saved
 * state is compared with the one before (a failed check changes nothing). The director answer and
 * the agreement are in test_ota_client_dir.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_ota_client_fx.h"

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
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
