/* Unit tests of ota_meta and ota_verify: TUF metadata built, signed and verified as the TUF client
 * workflow does (thresholds, _type, version, expiry, the root chain). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ota_meta.h"
#include "ota_verify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T2030 1893456000LL /* 2030-01-01T00:00:00Z */
#define NOW 1767225600LL   /* 2026-01-01T00:00:00Z */

static const char RFC_SEED[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
#define RFC_KEYID_STR "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916"
static const char RFC_KEYID[] = RFC_KEYID_STR;

/* Root v1 with RFC 8032 TEST 1's key in every role, expires 2030-01-01T00:00:00Z, computed with
 * Python 3 and the cryptography package:
 *   root = {"_type": "root", "spec_version": "1.0.31", "version": 1,
 *           "expires": "2030-01-01T00:00:00Z", "consistent_snapshot": True, "keys": {ID: KEY},
 *           "roles": {r: {"keyids": [ID], "threshold": 1} for r in ROLES}}
 *   b = json.dumps(root, sort_keys=True, separators=(",", ":")).encode()
 *   Ed25519PrivateKey.from_private_bytes(seed).sign(b).hex() */
#define K RFC_KEYID_STR
#define ROLE "{\"keyids\":[\"" K "\"],\"threshold\":1}"
static const char PY_ROOT[] =
    "{\"_type\":\"root\",\"consistent_snapshot\":true,\"expires\":\"2030-01-01T00:00:00Z\","
    "\"keys\":{\"" K "\":{\"keytype\":\"ed25519\",\"keyval\":{\"public\":"
    "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"},"
    "\"scheme\":\"ed25519\"}},\"roles\":{\"root\":" ROLE ",\"snapshot\":" ROLE ",\"targets\":" ROLE
    ",\"timestamp\":" ROLE "},\"spec_version\":\"1.0.31\",\"version\":1}";
static const char PY_ROOT_SIG[] =
    "b31eb95d52f4bb9186288ea327961b1ea25a7ec7d869272ce5ced0a27d0815270dd99983d68990350145e3def180cc"
    "5837c04604c9c6cc8f308c40ea8c8df303";

/* The "signed" of targets built in test_tufjs_canonical_vector, encoded by tuf-js's own encoder
 * (@tufjs/canonical-json 2.0.0, node 20: canonicalize(signed)), bytes pasted here. */
static const char TUFJS_TARGETS[] =
    "{\"_type\":\"targets\",\"expires\":\"2030-01-01T00:00:00Z\",\"spec_version\":\"1.0.31\","
    "\"targets\":{\"app/z.bin\":{\"hashes\":{\"sha256\":"
    "\"0101010101010101010101010101010101010101010101010101010101010101\"},\"length\":0},"
    "\"os/caf\xc3\xa9-\xc3\xbc.img\":{\"custom\":{\"component\":\"os\",\"flag\":true,"
    "\"hwclass\":\"a\\\\b\",\"kind\":\"os\",\"neg\":-42,\"none\":null,\"note\":\"Z\xc3\xbc"
    "rich\n\",\"svn\":3,\"version\":\"2.1.0 \\\"beta\\\"\"},\"hashes\":{\"sha256\":"
    "\"abababababababababababababababababababababababababababababababab\"},\"length\":1048576}},"
    "\"version\":7}";

static char err[512];

static void
keygen(ota_key *k, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(ota_key_generate(&k[i], NULL, 0), 0);
}

/* A signed-part root whose role keys are given per role (n keys, threshold th). */
static json_t *
make_root(int64_t version, ota_key *const keys[OTA_ROLE_COUNT], const int n[OTA_ROLE_COUNT],
          const int th[OTA_ROLE_COUNT])
{
    json_t *s = ota_meta_new_root(version, T2030);
    assert_non_null(s);
    for (int r = 0; r < OTA_ROLE_COUNT; r++) {
        for (int i = 0; i < n[r]; i++)
            assert_int_equal(ota_meta_root_add_key(s, (ota_role)r, &keys[r][i], err, sizeof(err)),
                             0);
        assert_int_equal(ota_meta_root_set_threshold(s, (ota_role)r, th[r], err, sizeof(err)), 0);
    }
    return s;
}

/* Envelope of s signed by the n keys ks. */
static json_t *
signed_by(json_t *s, const ota_key *ks, int n)
{
    json_t *env = ota_meta_envelope(s);
    assert_non_null(env);
    for (int i = 0; i < n; i++)
        assert_int_equal(ota_meta_sign(env, &ks[i], err, sizeof(err)), 0);
    return env;
}

static void
sign_more(json_t *env, const ota_key *ks, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(ota_meta_sign(env, &ks[i], err, sizeof(err)), 0);
}

/* One key per role (rk[0] root, [1] targets, [2] snapshot, [3] timestamp), thresholds 1. */
static ota_root *
simple_root(ota_key rk[OTA_ROLE_COUNT])
{
    ota_key *keys[OTA_ROLE_COUNT] = {&rk[0], &rk[1], &rk[2], &rk[3]};
    const int n[] = {1, 1, 1, 1}, th[] = {1, 1, 1, 1};
    ota_root *r = NULL;
    keygen(rk, OTA_ROLE_COUNT);
    json_t *env = signed_by(make_root(1, keys, n, th), &rk[0], 1);
    assert_int_equal(ota_root_load(env, &r, err, sizeof(err)), 0);
    json_decref(env);
    return r;
}

static void
test_python_root_vector(void **state)
{
    (void)state;
    ota_key k;
    unsigned char seed[32];
    char *bytes = NULL;
    size_t len = 0;
    ota_root *r = NULL;
    for (int i = 0; i < 32; i++)
        sscanf(RFC_SEED + 2 * i, "%2hhx", &seed[i]);
    assert_int_equal(ota_key_from_seed(&k, seed, NULL, 0), 0);
    ota_key *keys[] = {&k, &k, &k, &k};
    const int n[] = {1, 1, 1, 1}, th[] = {1, 1, 1, 1};
    json_t *env = signed_by(make_root(1, keys, n, th), &k, 1);
    assert_int_equal(ota_meta_signed_bytes(env, &bytes, &len, err, sizeof(err)), 0);
    assert_int_equal(len, strlen(PY_ROOT));
    assert_memory_equal(bytes, PY_ROOT, len);
    json_t *sig = json_array_get(json_object_get(env, "signatures"), 0);
    assert_string_equal(json_string_value(json_object_get(sig, "keyid")), RFC_KEYID);
    assert_string_equal(json_string_value(json_object_get(sig, "sig")), PY_ROOT_SIG);
    assert_int_equal(ota_root_load(env, &r, err, sizeof(err)), 0);
    assert_int_equal(ota_root_version(r), 1);
    assert_int_equal(ota_root_expires(r), T2030);
    assert_int_equal(ota_root_threshold(r, OTA_ROLE_TIMESTAMP), 1);
    assert_int_equal(ota_root_nkeys(r, OTA_ROLE_TARGETS), 1);
    /* signing again with the same key replaces its signature, never adds a second */
    sign_more(env, &k, 1);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 1);
    ota_root_free(r);
    free(bytes);
    json_decref(env);
    ota_key_wipe(&k);
}

static void
test_tufjs_canonical_vector(void **state)
{
    (void)state;
    char *bytes = NULL;
    size_t len = 0;
    char a[65], b[65];
    for (int i = 0; i < 64; i++) {
        a[i] = i % 2 ? 'b' : 'a';
        b[i] = i % 2 ? '1' : '0';
    }
    a[64] = b[64] = '\0';
    json_t *s = ota_meta_new_targets(7, T2030);
    json_t *custom = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:b, s:n, s:i}", "component", "os",
                               "kind", "os", "version", "2.1.0 \"beta\"", "svn", 3, "hwclass",
                               "a\\b", "note", "Z\xc3\xbcrich\n", "flag", 1, "none", "neg", -42);
    assert_int_equal(ota_meta_targets_add(s, "os/caf\xc3\xa9-\xc3\xbc.img", 1048576, a, custom, err,
                                          sizeof(err)),
                     0);
    json_decref(custom);
    assert_int_equal(ota_meta_targets_add(s, "app/z.bin", 0, b, NULL, err, sizeof(err)), 0);
    json_t *env = ota_meta_envelope(s);
    assert_int_equal(ota_meta_signed_bytes(env, &bytes, &len, err, sizeof(err)), 0);
    assert_int_equal(len, strlen(TUFJS_TARGETS));
    assert_memory_equal(bytes, TUFJS_TARGETS, len);
    free(bytes);
    json_decref(env);
}

/* Every role signed and verified; a file written by ota_meta_dump and read back still verifies. */
static void
test_roles_round_trip(void **state)
{
    (void)state;
    ota_key rk[OTA_ROLE_COUNT];
    ota_root *r = simple_root(rk);
    char sha[65];
    memset(sha, 'c', 64);
    sha[64] = '\0';
    json_t *t = ota_meta_new_targets(3, T2030);
    assert_int_equal(ota_meta_targets_add(t, "os/1.img", 10, sha, NULL, err, sizeof(err)), 0);
    json_t *envs[] = {signed_by(t, &rk[1], 1),
                      signed_by(ota_meta_new_snapshot(4, T2030, 3), &rk[2], 1),
                      signed_by(ota_meta_new_timestamp(5, T2030, 4, 700, sha), &rk[3], 1)};
    const ota_role roles[] = {OTA_ROLE_TARGETS, OTA_ROLE_SNAPSHOT, OTA_ROLE_TIMESTAMP};
    for (int i = 0; i < 3; i++) {
        struct ota_want w = {.role = roles[i], .now = NOW, .version = 3 + i};
        int64_t v = 0;
        char *text = NULL;
        size_t len = 0;
        json_error_t je;
        assert_int_equal(ota_meta_dump(envs[i], &text, &len, err, sizeof(err)), 0);
        json_t *back = json_loadb(text, len, 0, &je);
        assert_non_null(back);
        assert_int_equal(ota_verify_meta(r, back, &w, &v, err, sizeof(err)), 0);
        assert_int_equal(v, 3 + i);
        /* signed by another role's key: refused */
        struct ota_want other = {.role = roles[(i + 1) % 3], .now = NOW};
        assert_int_equal(ota_verify_meta(r, back, &other, NULL, err, sizeof(err)), OTA_E_TYPE);
        json_decref(back);
        free(text);
        json_decref(envs[i]);
    }
    ota_root_free(r);
}

/* Targets keys A, B, C with threshold 2: one key twice is still one; unknown and invalid
 * signatures are ignored. */
static void
test_threshold_two_of_three(void **state)
{
    (void)state;
    ota_key rk[OTA_ROLE_COUNT], tk[3], stranger;
    ota_root *r = NULL;
    keygen(rk, OTA_ROLE_COUNT);
    keygen(tk, 3);
    keygen(&stranger, 1);
    ota_key *keys[] = {&rk[0], tk, &rk[2], &rk[3]};
    const int n[] = {1, 3, 1, 1}, th[] = {1, 2, 1, 1};
    json_t *renv = signed_by(make_root(1, keys, n, th), &rk[0], 1);
    assert_int_equal(ota_root_load(renv, &r, err, sizeof(err)), 0);
    json_decref(renv);
    assert_int_equal(ota_root_threshold(r, OTA_ROLE_TARGETS), 2);

    struct ota_want w = {.role = OTA_ROLE_TARGETS, .now = NOW};
    json_t *env = signed_by(ota_meta_new_targets(1, T2030), &tk[0], 1);
    json_t *sigs = json_object_get(env, "signatures");
    int valid = -1;
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_SIGNATURES);
    /* A's signature twice, a stranger's, C's key id with a bad signature */
    json_array_append_new(sigs, json_deep_copy(json_array_get(sigs, 0)));
    sign_more(env, &stranger, 1);
    json_array_append_new(
        sigs, json_pack("{s:s, s:s}", "keyid", tk[2].keyid, "sig",
                        json_string_value(json_object_get(json_array_get(sigs, 0), "sig"))));
    assert_int_equal(ota_verify_signatures(r, OTA_ROLE_TARGETS, env, &valid, err, sizeof(err)),
                     OTA_E_SIGNATURES);
    assert_int_equal(valid, 1);
    assert_non_null(strstr(err, "1 valid signature(s) of distinct keys, threshold 2"));
    assert_non_null(strstr(err, "1 by unknown key ids, 1 duplicate, 1 invalid"));
    /* B signs: 2 of 3 */
    sign_more(env, &tk[1], 1);
    assert_int_equal(ota_verify_signatures(r, OTA_ROLE_TARGETS, env, &valid, err, sizeof(err)), 0);
    assert_int_equal(valid, 2);
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), 0);
    /* a change after signing breaks every signature */
    json_object_set_new(json_object_get(env, "signed"), "version", json_integer(2));
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_SIGNATURES);
    json_decref(env);
    ota_root_free(r);
}

static void
test_expiry_type_spec_version(void **state)
{
    (void)state;
    ota_key rk[OTA_ROLE_COUNT];
    ota_root *r = simple_root(rk);
    json_t *env = signed_by(ota_meta_new_timestamp(9, NOW, 4, -1, NULL), &rk[3], 1);
    struct ota_want w = {.role = OTA_ROLE_TIMESTAMP, .now = NOW - 1};
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), 0);
    w.now = NOW; /* expires <= now: expired */
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_EXPIRED);
    assert_non_null(strstr(err, "expired at 2026-01-01T00:00:00Z"));
    w.now = -1;
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), 0);
    /* versions: rollback below the trusted one, or not the one named */
    w.min_version = 10;
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_VERSION);
    assert_non_null(strstr(err, "version 9 where at least 10"));
    w.min_version = 9;
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), 0);
    w.version = 8;
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_VERSION);
    /* the wrong _type, even correctly signed by the role's key */
    w = (struct ota_want){.role = OTA_ROLE_SNAPSHOT, .now = -1};
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_TYPE);
    assert_string_equal(ota_verify_strerror(OTA_E_TYPE), "type");
    json_decref(env);
    /* spec_version 2.x, correctly signed */
    json_t *s = ota_meta_new_timestamp(9, T2030, 4, -1, NULL);
    json_object_set_new(s, "spec_version", json_string("2.0.0"));
    env = signed_by(s, &rk[3], 1);
    w = (struct ota_want){.role = OTA_ROLE_TIMESTAMP, .now = NOW};
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_SPEC);
    json_object_set_new(s, "spec_version", json_string("1.0"));
    sign_more(env, &rk[3], 1);
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), 0);
    json_decref(env);
    ota_root_free(r);
}

/* Root rotation: v2 must be signed by a threshold of v1's root keys (A, B; 2) and by a threshold
 * of its own (C, D, E; 2), and be exactly version 2. */
static void
test_root_rotation(void **state)
{
    (void)state;
    ota_key old[2], nw[3], other[3];
    ota_root *r1 = NULL, *r2 = NULL, *r3 = NULL;
    keygen(old, 2);
    keygen(nw, 3);
    keygen(other, 3);
    ota_key *k1[] = {old, &other[0], &other[1], &other[2]};
    ota_key *k2[] = {nw, &other[0], &other[1], &other[2]};
    const int n1[] = {2, 1, 1, 1}, n2[] = {3, 1, 1, 1}, th[] = {2, 1, 1, 1};
    json_t *e1 = signed_by(make_root(1, k1, n1, th), old, 2);
    assert_int_equal(ota_root_load(e1, &r1, err, sizeof(err)), 0);

    json_t *e2 = signed_by(make_root(2, k2, n2, th), nw, 2); /* new keys only */
    assert_int_equal(ota_verify_root_update(r1, e2, &r2, err, sizeof(err)), OTA_E_SIGNATURES);
    assert_null(r2);
    assert_non_null(strstr(err, "by the trusted root's keys"));
    json_array_clear(json_object_get(e2, "signatures"));
    sign_more(e2, old, 2); /* old keys only */
    assert_int_equal(ota_verify_root_update(r1, e2, &r2, err, sizeof(err)), OTA_E_SIGNATURES);
    assert_non_null(strstr(err, "by its own keys"));
    json_array_clear(json_object_get(e2, "signatures"));
    sign_more(e2, old, 1); /* one old key is below the old threshold */
    sign_more(e2, nw, 3);
    assert_int_equal(ota_verify_root_update(r1, e2, &r2, err, sizeof(err)), OTA_E_SIGNATURES);
    assert_non_null(strstr(err, "trusted root's keys: 1 valid"));
    sign_more(e2, &old[1], 1);
    assert_int_equal(ota_verify_root_update(r1, e2, &r2, err, sizeof(err)), 0);
    assert_int_equal(ota_root_version(r2), 2);
    assert_int_equal(ota_root_nkeys(r2, OTA_ROLE_ROOT), 3);

    /* a replay of v1, a skipped version, both signed by everyone */
    sign_more(e1, nw, 3);
    assert_int_equal(ota_verify_root_update(r2, e1, &r3, err, sizeof(err)), OTA_E_VERSION);
    json_t *e4 = signed_by(make_root(4, k2, n2, th), nw, 3);
    assert_int_equal(ota_verify_root_update(r2, e4, &r3, err, sizeof(err)), OTA_E_VERSION);
    assert_non_null(strstr(err, "version 4 after trusted version 2 (must be 3)"));
    assert_null(r3);
    /* the old keys no longer sign roots after the rotation */
    json_t *e3 = signed_by(make_root(3, k1, n1, th), old, 2);
    assert_int_equal(ota_verify_root_update(r2, e3, &r3, err, sizeof(err)), OTA_E_SIGNATURES);
    /* a targets file verified against the rotated root */
    json_t *t = signed_by(ota_meta_new_targets(1, T2030), &other[0], 1);
    struct ota_want w = {.role = OTA_ROLE_TARGETS, .now = NOW};
    assert_int_equal(ota_verify_meta(r2, t, &w, NULL, err, sizeof(err)), 0);
    json_decref(t);
    json_decref(e1);
    json_decref(e2);
    json_decref(e3);
    json_decref(e4);
    ota_root_free(r1);
    ota_root_free(r2);
}

/* Malformed roots and envelopes, and what the builders refuse. */
static void
test_format_refusals(void **state)
{
    (void)state;
    ota_key rk[OTA_ROLE_COUNT];
    ota_root *r = simple_root(rk), *bad = NULL;
    ota_key *keys[] = {&rk[0], &rk[1], &rk[2], &rk[3]};
    const int n[] = {1, 1, 1, 1}, th[] = {1, 1, 1, 1};
    struct ota_want w = {.role = OTA_ROLE_TARGETS, .now = NOW};
    json_t *s, *env;

    /* a key id that is not the hash of its key */
    s = make_root(1, keys, n, th);
    json_t *keyobj = json_object_get(json_object_get(s, "keys"), rk[0].keyid);
    json_object_set_new(keyobj, "extra", json_true());
    env = signed_by(s, &rk[0], 1);
    assert_int_equal(ota_root_load(env, &bad, err, sizeof(err)), OTA_E_FORMAT);
    assert_non_null(strstr(err, "not the SHA-256 of its key"));
    json_decref(env);
    /* 0: a role missing, 1: a role naming an absent key, 2: an extra role */
    for (int i = 0; i < 3; i++) {
        s = make_root(1, keys, n, th);
        json_t *roles = json_object_get(s, "roles");
        if (i == 0)
            json_object_del(roles, "snapshot");
        else if (i == 1)
            json_array_append_new(json_object_get(json_object_get(roles, "targets"), "keyids"),
                                  json_string(RFC_KEYID));
        else
            json_object_set_new(roles, "mirrors",
                                json_pack("{s:[], s:i}", "keyids", "threshold", 1));
        env = signed_by(s, &rk[0], 1);
        assert_int_equal(ota_root_load(env, &bad, err, sizeof(err)), OTA_E_FORMAT);
        assert_null(bad);
        json_decref(env);
    }
    /* envelopes: no signatures, a signature without sig, a target without sha256 */
    env = json_pack("{s:o}", "signed", ota_meta_new_targets(1, T2030));
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_FORMAT);
    json_decref(env);
    env = signed_by(ota_meta_new_targets(1, T2030), &rk[1], 1);
    json_object_del(json_array_get(json_object_get(env, "signatures"), 0), "sig");
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_FORMAT);
    json_decref(env);
    s = ota_meta_new_targets(1, T2030);
    json_object_set_new(json_object_get(s, "targets"), "x.bin",
                        json_pack("{s:i, s:{}}", "length", 1, "hashes"));
    env = signed_by(s, &rk[1], 1);
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_FORMAT);
    assert_non_null(strstr(err, "x.bin"));
    json_decref(env);
    /* builders */
    char sha[65];
    memset(sha, 'f', 64);
    sha[64] = '\0';
    s = ota_meta_new_targets(1, T2030);
    const char *paths[] = {"", "/abs", "a//b", "../x", "a/./b", "a/..", "dir/"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(ota_meta_targets_add(s, paths[i], 1, sha, NULL, err, sizeof(err)), -1);
    assert_int_equal(ota_meta_targets_add(s, "a/.b/c..", 1, sha, NULL, err, sizeof(err)), 0);
    assert_int_equal(ota_meta_targets_add(s, "x", 1, "FF", NULL, err, sizeof(err)), -1);
    assert_int_equal(ota_meta_targets_add(s, "x", -1, sha, NULL, err, sizeof(err)), -1);
    json_decref(s);
    assert_null(ota_meta_new_snapshot(0, T2030, 1));
    assert_null(ota_meta_new_timestamp(1, T2030, 1, 10, NULL));
    s = ota_meta_new_root(1, T2030);
    assert_int_equal(ota_meta_root_set_threshold(s, OTA_ROLE_ROOT, 0, err, sizeof(err)), -1);
    json_decref(s);
    ota_role role;
    assert_int_equal(ota_role_parse("snapshot", &role), 0);
    assert_int_equal(role, OTA_ROLE_SNAPSHOT);
    assert_int_equal(ota_role_parse("mirrors", &role), -1);
    ota_root_free(r);
}

/* ota_root_key gives each role's public keys, in root order, without secrets. */
static void
test_root_key_accessor(void **state)
{
    (void)state;
    ota_key rk[OTA_ROLE_COUNT], tk[3];
    ota_root *r = NULL;
    keygen(rk, OTA_ROLE_COUNT);
    keygen(tk, 3);
    ota_key *keys[] = {&rk[0], tk, &rk[2], &rk[3]};
    const int n[] = {1, 3, 1, 1}, th[] = {1, 2, 1, 1};
    json_t *env = signed_by(make_root(1, keys, n, th), &rk[0], 1);
    assert_int_equal(ota_root_load(env, &r, err, sizeof(err)), 0);
    assert_int_equal(ota_root_nkeys(r, OTA_ROLE_TARGETS), 3);
    for (size_t i = 0; i < 3; i++) {
        const ota_key *k = ota_root_key(r, OTA_ROLE_TARGETS, i);
        assert_memory_equal(k->pk, tk[i].pk, OTA_PK_BYTES);
        assert_string_equal(k->keyid, tk[i].keyid);
        assert_int_equal(k->has_secret, 0);
    }
    assert_memory_equal(ota_root_key(r, OTA_ROLE_TIMESTAMP, 0)->pk, rk[3].pk, OTA_PK_BYTES);
    json_decref(env);
    ota_root_free(r);
}

/* At most 2n + 8 signatures for a role of n keys, 2 (n + m) + 8 for a root update; at most
 * OTA_MAX_ROOT_KEYS keys in a root. */
static void
test_work_caps(void **state)
{
    (void)state;
    ota_key rk[OTA_ROLE_COUNT], nk[2];
    ota_root *r = simple_root(rk), *next = NULL, *big = NULL;
    struct ota_want w = {.role = OTA_ROLE_TARGETS, .now = NOW};
    json_t *env = signed_by(ota_meta_new_targets(1, T2030), &rk[1], 1);
    json_t *sigs = json_object_get(env, "signatures");
    while (json_array_size(sigs) < OTA_MAX_SIGS(1))
        json_array_append_new(sigs, json_deep_copy(json_array_get(sigs, 0)));
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), 0);
    json_array_append_new(sigs, json_deep_copy(json_array_get(sigs, 0)));
    assert_int_equal(ota_verify_meta(r, env, &w, NULL, err, sizeof(err)), OTA_E_FORMAT);
    assert_non_null(strstr(err, "at most 10"));
    json_decref(env);
    /* a rotation from 1 to 2 root keys may carry 2 (1 + 2) + 8 = 14 signatures */
    keygen(nk, 2);
    ota_key *keys[] = {nk, &rk[1], &rk[2], &rk[3]};
    const int n[] = {2, 1, 1, 1}, th[] = {2, 1, 1, 1};
    env = signed_by(make_root(2, keys, n, th), nk, 2);
    sign_more(env, &rk[0], 1);
    sigs = json_object_get(env, "signatures");
    while (json_array_size(sigs) < 14)
        json_array_append_new(sigs, json_deep_copy(json_array_get(sigs, 0)));
    assert_int_equal(ota_verify_root_update(r, env, &next, err, sizeof(err)), 0);
    ota_root_free(next);
    json_array_append_new(sigs, json_deep_copy(json_array_get(sigs, 0)));
    assert_int_equal(ota_verify_root_update(r, env, &next, err, sizeof(err)), OTA_E_FORMAT);
    assert_null(next);
    json_decref(env);
    /* 65 keys in a root */
    json_t *s = make_root(1, (ota_key *const[]){&rk[0], &rk[1], &rk[2], &rk[3]},
                          (const int[]){1, 1, 1, 1}, (const int[]){1, 1, 1, 1});
    for (int i = 0; i < OTA_MAX_ROOT_KEYS - 3; i++) {
        ota_key k;
        keygen(&k, 1);
        assert_int_equal(ota_meta_root_add_key(s, OTA_ROLE_TARGETS, &k, err, sizeof(err)), 0);
    }
    env = signed_by(s, &rk[0], 1);
    assert_int_equal(ota_root_load(env, &big, err, sizeof(err)), OTA_E_FORMAT);
    assert_non_null(strstr(err, "65 keys, at most 64"));
    json_decref(env);
    ota_root_free(r);
}

/* The image repository's targets: only the five members, "<component>/<sha256>" paths, the
 * custom fields and nothing else. */
static void
test_image_targets_shape(void **state)
{
    (void)state;
    char sha[65], path[80];
    memset(sha, 'a', 64);
    sha[64] = '\0';
    snprintf(path, sizeof(path), "aegis-os/%s", sha);
    json_t *custom =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:i}", "component", "aegis-os", "kind", "os",
                  "version", "2.0.0", "svn", 5, "hardware", "gw", "product_id", 1);
    json_t *good = ota_meta_new_targets(2, T2030);
    assert_int_equal(ota_meta_targets_add(good, path, 10, sha, custom, err, sizeof(err)), 0);
    assert_int_equal(ota_check_image_targets(good, err, sizeof(err)), 0);
    for (int i = 0; i < 9; i++) {
        json_t *s = json_deep_copy(good);
        json_t *t = json_object_get(json_object_get(s, "targets"), path);
        json_t *c = json_object_get(t, "custom");
        switch (i) {
        case 0:
            json_object_set_new(s, "delegations", json_pack("{s:{}, s:[]}", "keys", "roles"));
            break;
        case 1:
            json_object_set_new(s, "custom", json_object());
            break;
        case 2: /* the path's sha is not the hash */
            json_object_set_new(
                json_object_get(t, "hashes"), "sha256",
                json_string("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
            break;
        case 3: /* another component than the path's */
            json_object_set_new(c, "component", json_string("aegis"));
            break;
        case 4:
            json_object_set_new(c, "kind", json_string("bootloader"));
            break;
        case 5:
            json_object_del(c, "svn");
            break;
        case 6:
            json_object_set_new(c, "extra", json_true());
            break;
        case 7:
            json_object_set_new(json_object_get(t, "hashes"), "sha512", json_string("00"));
            break;
        case 8:
            json_object_set_new(json_object_get(s, "targets"), "x.bin", json_deep_copy(t));
            break;
        }
        assert_int_equal(ota_check_image_targets(s, err, sizeof(err)), OTA_E_FORMAT);
        json_decref(s);
    }
    json_decref(custom);
    json_decref(good);
}

/* The image field rules (the service's for an upload) on the custom fields: each value just
 * inside a bound passes, just outside is refused with the rule named. */
static void
test_image_targets_field_rules(void **state)
{
    (void)state;
    char sha[65], path[80], v32[33], v600[601], h65[66];
    memset(sha, 'a', 64);
    sha[64] = '\0';
    memset(v32, 'x', 32);
    v32[32] = '\0';
    memset(v600, '1', 600);
    v600[600] = '\0';
    memset(h65, 'h', 65);
    h65[65] = '\0';
    snprintf(path, sizeof(path), "aegis-os/%s", sha);
    json_t *custom = json_pack("{s:s, s:s, s:s, s:I, s:s, s:i}", "component", "aegis-os", "kind",
                               "app", "version", v32, "svn", (json_int_t)4294967295LL, "hardware",
                               "gw-rev.b_2", "product_id", 1);
    json_t *good = ota_meta_new_targets(2, T2030);
    assert_int_equal(ota_meta_targets_add(good, path, 0, sha, custom, err, sizeof(err)), 0);
    assert_int_equal(ota_check_image_targets(good, err, sizeof(err)), 0);
    const struct {
        const char *field;
        json_t *value;
        const char *rule;
    } bad[] = {
        {"version", json_string(v600), "version: 1-32"},
        {"version", json_string("123456789012345678901234567890123"), "version: 1-32"},
        {"version", json_string(""), "version: 1-32"},
        {"version", json_string("2.0 beta"), "version: 1-32"},
        {"version", json_string("2.0\x7f"), "version: 1-32"},
        {"version", json_stringn("2.0\0x", 5), "version: 1-32"},
        {"version", json_integer(2), "version: 1-32"},
        {"svn", json_integer(4294967296LL), "svn: an integer 0..4294967295"},
        {"svn", json_integer(-1), "svn: an integer 0..4294967295"},
        {"svn", json_real(1.0), "svn: an integer 0..4294967295"},
        {"product_id", json_integer(0), "product_id: an integer >= 1"},
        {"product_id", json_string("1"), "product_id: an integer >= 1"},
        {"hardware", json_string("GW"), "hardware: 1-64"},
        {"hardware", json_string(""), "hardware: 1-64"},
        {"hardware", json_string(".."), "hardware: 1-64"},
        {"hardware", json_string(h65), "hardware: 1-64"},
        {"kind", json_string("OS"), "kind: \"os\" or \"app\""},
        {"kind", json_null(), "kind: \"os\" or \"app\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *s = json_deep_copy(good);
        json_t *c = json_object_get(json_object_get(json_object_get(s, "targets"), path), "custom");
        json_object_set_new(c, bad[i].field, bad[i].value);
        assert_int_equal(ota_check_image_targets(s, err, sizeof(err)), OTA_E_FORMAT);
        assert_non_null(strstr(err, bad[i].rule));
        json_decref(s);
    }
    /* a component outside the rule, in the path and in custom alike */
    json_t *s = ota_meta_new_targets(2, T2030);
    snprintf(path, sizeof(path), "Aegis-os/%s", sha);
    json_object_set_new(custom, "component", json_string("Aegis-os"));
    assert_int_equal(ota_meta_targets_add(s, path, 0, sha, custom, err, sizeof(err)), 0);
    assert_int_equal(ota_check_image_targets(s, err, sizeof(err)), OTA_E_FORMAT);
    assert_non_null(strstr(err, "component: 1-64"));
    json_decref(s);
    json_decref(custom);
    json_decref(good);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_root_vector),
        cmocka_unit_test(test_tufjs_canonical_vector),
        cmocka_unit_test(test_roles_round_trip),
        cmocka_unit_test(test_threshold_two_of_three),
        cmocka_unit_test(test_expiry_type_spec_version),
        cmocka_unit_test(test_root_rotation),
        cmocka_unit_test(test_format_refusals),
        cmocka_unit_test(test_root_key_accessor),
        cmocka_unit_test(test_work_caps),
        cmocka_unit_test(test_image_targets_shape),
        cmocka_unit_test(test_image_targets_field_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
