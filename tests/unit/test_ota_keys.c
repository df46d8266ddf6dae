/* Unit tests of ota_keys: ed25519 keys of TUF metadata, their key ids, signatures and key files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ota_keys.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* RFC 8032 section 7.1, TEST 1: secret key (seed), public key, signature of the empty message. */
static const char RFC_SEED[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char RFC_PK[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char RFC_SIG_EMPTY[] =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
    "6bd25bf5f0595bbe24655141438e7a100b";
/* Key id of RFC_PK's TUF key object, computed independently with Python 3:
 *   key = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": RFC_PK}}
 *   hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
 */
static const char RFC_KEYID[] = "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";

static void
rfc_key(ota_key *k)
{
    unsigned char seed[32];
    for (int i = 0; i < 32; i++)
        sscanf(RFC_SEED + 2 * i, "%2hhx", &seed[i]);
    assert_int_equal(ota_key_from_seed(k, seed, NULL, 0), 0);
}

static void
test_rfc8032_vector_and_keyid(void **state)
{
    (void)state;
    ota_key k;
    char sig[OTA_SIG_HEX_LEN];
    char err[128] = "";
    rfc_key(&k);
    json_t *pub = ota_key_public_json(&k);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(pub, "keyval"), "public")), RFC_PK);
    json_decref(pub);
    assert_string_equal(k.keyid, RFC_KEYID);
    assert_int_equal(ota_key_sign(&k, (const unsigned char *)"", 0, sig, err, sizeof(err)), 0);
    assert_string_equal(sig, RFC_SIG_EMPTY);
    assert_int_equal(ota_key_verify(&k, (const unsigned char *)"", 0, sig, err, sizeof(err)), 0);
    /* another message, a flipped bit, malformed hex: refused */
    assert_int_equal(ota_key_verify(&k, (const unsigned char *)"x", 1, sig, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not verify"));
    sig[0] = sig[0] == 'e' ? 'f' : 'e';
    assert_int_equal(ota_key_verify(&k, (const unsigned char *)"", 0, sig, err, sizeof(err)), -1);
    char upper[OTA_SIG_HEX_LEN];
    snprintf(upper, sizeof(upper), "E%s", RFC_SIG_EMPTY + 1);
    assert_int_equal(ota_key_verify(&k, (const unsigned char *)"", 0, upper, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "hex"));
    assert_int_equal(ota_key_verify(&k, (const unsigned char *)"", 0, "abcd", err, sizeof(err)),
                     -1);
    ota_key_wipe(&k);
    static const ota_key zero;
    assert_memory_equal(&k, &zero, sizeof(k));
}

static void
test_public_key_object(void **state)
{
    (void)state;
    ota_key k, p;
    char err[128] = "";
    char id[OTA_KEYID_HEX_LEN];
    rfc_key(&k);
    json_t *obj = ota_key_public_json(&k);
    assert_int_equal(ota_key_from_public_json(obj, &p, err, sizeof(err)), 0);
    assert_string_equal(p.keyid, RFC_KEYID);
    assert_memory_equal(p.pk, k.pk, OTA_PK_BYTES);
    assert_int_equal(p.has_secret, 0);
    /* public only: cannot sign */
    char sig[OTA_SIG_HEX_LEN];
    assert_int_equal(ota_key_sign(&p, (const unsigned char *)"m", 1, sig, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no private key"));
    /* the id hashes the object as it stands: an extra member gives another id */
    json_object_set_new(obj, "keyid_hash_algorithms", json_pack("[s]", "sha256"));
    assert_int_equal(ota_keyid_of_json(obj, id, err, sizeof(err)), 0);
    assert_string_not_equal(id, RFC_KEYID);
    json_decref(obj);
    /* other key types and malformed keys */
    obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "rsa", "scheme", "rsassa-pss-sha256",
                    "keyval", "public", RFC_PK);
    assert_int_equal(ota_key_from_public_json(obj, &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "only ed25519"));
    json_decref(obj);
    obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519", "keyval",
                    "public", "d75a98");
    assert_int_equal(ota_key_from_public_json(obj, &p, err, sizeof(err)), -1);
    json_decref(obj);
    obj = json_pack("{s:s, s:s}", "keytype", "ed25519", "scheme", "ed25519");
    assert_int_equal(ota_key_from_public_json(obj, &p, err, sizeof(err)), -1);
    json_decref(obj);
    ota_key_wipe(&k);
}

static void
test_generate_sign_verify(void **state)
{
    (void)state;
    ota_key a, b;
    char sig[OTA_SIG_HEX_LEN];
    const unsigned char msg[] = "{\"_type\":\"targets\"}";
    assert_int_equal(ota_key_generate(&a, NULL, 0), 0);
    assert_int_equal(ota_key_generate(&b, NULL, 0), 0);
    assert_string_not_equal(a.keyid, b.keyid);
    assert_int_equal(strlen(a.keyid), 64);
    assert_int_equal(ota_key_sign(&a, msg, sizeof(msg) - 1, sig, NULL, 0), 0);
    assert_int_equal(strlen(sig), 128);
    assert_int_equal(ota_key_verify(&a, msg, sizeof(msg) - 1, sig, NULL, 0), 0);
    assert_int_equal(ota_key_verify(&b, msg, sizeof(msg) - 1, sig, NULL, 0), -1);
    ota_key_wipe(&a);
    ota_key_wipe(&b);
}

static void
test_key_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/aegis-ota-keys.XXXXXX";
    char path[128];
    char err[256] = "";
    struct stat st;
    ota_key k, l, pub;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/root-1.key", dir);
    assert_int_equal(ota_key_generate(&k, NULL, 0), 0);
    assert_int_equal(ota_key_save(&k, path, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ota_key_load(path, &l, err, sizeof(err)), 0);
    assert_memory_equal(&k, &l, sizeof(k));

    /* the file is canonical JSON with the seed as keyval.private */
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "keyid")), k.keyid);
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_object_get(j, "keyval"), "private"))), 64);

    /* readable by others: refused */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(ota_key_load(path, &l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);

    /* a public key that is not the seed's: refused */
    ota_key other;
    assert_int_equal(ota_key_generate(&other, NULL, 0), 0);
    json_t *opub = ota_key_public_json(&other);
    json_object_set(json_object_get(j, "keyval"), "public",
                    json_object_get(json_object_get(opub, "keyval"), "public"));
    json_decref(opub);
    assert_int_equal(json_dump_file(j, path, JSON_COMPACT), 0);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(ota_key_load(path, &l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "do not match"));
    json_decref(j);

    /* not a key file, no file, a public-only key */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"keytype\":\"ed25519\"}", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(ota_key_load(path, &l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not an ed25519 private key file"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(ota_key_load(path, &l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no such key file"));
    json_t *pj = ota_key_public_json(&other);
    assert_int_equal(ota_key_from_public_json(pj, &pub, NULL, 0), 0);
    json_decref(pj);
    assert_int_equal(ota_key_save(&pub, path, err, sizeof(err)), -1);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(rmdir(dir), 0);
    ota_key_wipe(&other);
    ota_key_wipe(&k);
    ota_key_wipe(&l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vector_and_keyid),
        cmocka_unit_test(test_public_key_object),
        cmocka_unit_test(test_generate_sign_verify),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
