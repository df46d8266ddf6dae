/* Unit tests of the wire rules in proto/ that the attestation and telemetry tests do not reach on
 * their own: the device identity URI, the telemetry report types and the crash address form. Each
 * test states the expected strings literally, so a change to a rule shows up here as well as in the
 * code that uses it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "proto_identity.h"
#include "proto_telemetry.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int
parse(const char *uri, int64_t *tenant, char id[PROTO_HASH_HEX + 1])
{
    return proto_identity_uri_parse(uri, strlen(uri), tenant, id);
}

static void
test_identity_uri_round_trip(void **state)
{
    (void)state;
    char uri[PROTO_IDENTITY_URI_MAX + 1], id[PROTO_HASH_HEX + 1];
    int64_t t = 0;

    assert_int_equal(proto_identity_uri_format(42, ID, uri, sizeof(uri)), 0);
    assert_string_equal(uri, "urn:aegis:tenant:42:device:" ID);
    assert_int_equal(parse(uri, &t, id), 0);
    assert_int_equal(t, 42);
    assert_string_equal(id, ID);

    /* The longest tenant fills the buffer exactly. */
    assert_int_equal(proto_identity_uri_format(INT64_MAX, ID, uri, sizeof(uri)), 0);
    assert_int_equal(strlen(uri), PROTO_IDENTITY_URI_MAX);
    assert_int_equal(parse(uri, &t, id), 0);
    assert_true(t == INT64_MAX);
}

static void
test_identity_uri_format_refuses(void **state)
{
    (void)state;
    char uri[PROTO_IDENTITY_URI_MAX + 1];
    assert_int_equal(proto_identity_uri_format(0, ID, uri, sizeof(uri)), -1);
    assert_int_equal(proto_identity_uri_format(-1, ID, uri, sizeof(uri)), -1);
    assert_int_equal(proto_identity_uri_format(1, "abc", uri, sizeof(uri)), -1);
    assert_int_equal(proto_identity_uri_format(1, NULL, uri, sizeof(uri)), -1);
    /* Upper case is not the wire's device id. */
    assert_int_equal(proto_identity_uri_format(
                         1, "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", uri,
                         sizeof(uri)),
                     -1);
    /* "urn:aegis:tenant:1:device:" is 26 bytes: with the id and the NUL, 91 are needed. */
    assert_int_equal(proto_identity_uri_format(1, ID, uri, 90), -1);
    assert_int_equal(proto_identity_uri_format(1, ID, uri, 91), 0);
}

static void
test_identity_uri_parse_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "urn:aegis:tenant:",
        "urn:aegis:tenant:1:device:",
        "urn:aegis:tenant::device:" ID,
        "urn:aegis:tenant:0:device:" ID,
        "urn:aegis:tenant:01:device:" ID,
        "urn:aegis:tenant:-1:device:" ID,
        "urn:aegis:tenant:+1:device:" ID,
        "urn:aegis:tenant: 1:device:" ID,
        "urn:aegis:tenant:9223372036854775808:device:" ID,
        "urn:aegis:tenant:10000000000000000000:device:" ID,
        "urn:aegis:tenant:1:x:device:" ID,
        "urn:aegis:tenant:1:devices:" ID,
        "urn:aegis:tenant:1:device:" ID "0",
        "urn:aegis:tenant:1:device:0" ID,
        "urn:aegis:tenant:1:device:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "urn:aegis:tenant:1:device:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF",
        "URN:aegis:tenant:1:device:" ID,
        "urn:aegis:tenants:1:device:" ID,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t = -7;
        char id[PROTO_HASH_HEX + 1] = "";
        if (parse(bad[i], &t, id) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(t, -7); /* nothing written on failure */
        assert_string_equal(id, "");
    }
}

static void
test_identity_uri_parse_by_length(void **state)
{
    (void)state;
    /* A certificate's URI is counted bytes: a NUL inside is refused, bytes after len are not read.
     */
    char uri[128] = "urn:aegis:tenant:7:device:" ID;
    size_t len = strlen(uri);
    int64_t t = 0;
    char id[PROTO_HASH_HEX + 1];
    uri[17] = '\0';
    assert_int_equal(proto_identity_uri_parse(uri, len, &t, id), -1);
    uri[17] = '7';
    memcpy(uri + len, "junk", 5);
    assert_int_equal(proto_identity_uri_parse(uri, len, &t, id), 0);
    assert_int_equal(t, 7);
    assert_int_equal(proto_identity_uri_parse(NULL, 0, &t, id), -1);
}

static void
test_tel_type_names(void **state)
{
    (void)state;
    static const struct {
        int type;
        const char *name;
    } types[] = {{PROTO_TEL_CRASH, "crash"},
                 {PROTO_TEL_HEARTBEAT, "heartbeat"},
                 {PROTO_TEL_REBOOT, "reboot"}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        assert_string_equal(proto_tel_type_name(types[i].type), types[i].name);
        assert_int_equal(proto_tel_type_parse(types[i].name, strlen(types[i].name)), types[i].type);
    }
    assert_null(proto_tel_type_name(0));
    assert_null(proto_tel_type_name(4));
    assert_int_equal(proto_tel_type_parse("Crash", 5), -1);
    assert_int_equal(proto_tel_type_parse("crash", 4), -1);
    assert_int_equal(proto_tel_type_parse("crash\0", 6), -1);
    assert_int_equal(proto_tel_type_parse("", 0), -1);
    assert_int_equal(proto_tel_type_parse(NULL, 0), -1);
}

static void
test_tel_addr_norm(void **state)
{
    (void)state;
    static const char *const good[][2] = {
        {"0x0800ABCD", "0x800abcd"},
        {"0x0", "0x0"},
        {"0x0000", "0x0"},
        {"0x1", "0x1"},
        {"0xffffffffffffffff", "0xffffffffffffffff"},
        {"0x0000000000000001", "0x1"},
    };
    char out[PROTO_TEL_ADDR_LEN];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(proto_tel_addr_norm(good[i][0], strlen(good[i][0]), out), 0);
        assert_string_equal(out, good[i][1]);
    }
    static const char *const bad[] = {"0x", "800", "0X1", "0x1g", "0x11111111111111111", " 0x1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(proto_tel_addr_norm(bad[i], strlen(bad[i]), out), -1);
    assert_int_equal(proto_tel_addr_norm("0x1\0", 4, out), -1);
    assert_int_equal(proto_tel_addr_norm(NULL, 0, out), -1);
}

static void
test_tel_addr_format_is_normal(void **state)
{
    (void)state;
    static const uint64_t values[] = {0, 1, 0x800abcd, 0x8000000000000000ull, UINT64_MAX};
    static const char *const want[] = {"0x0", "0x1", "0x800abcd", "0x8000000000000000",
                                       "0xffffffffffffffff"};
    char out[PROTO_TEL_ADDR_LEN], norm[PROTO_TEL_ADDR_LEN];
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        proto_tel_addr_format(values[i], out);
        assert_string_equal(out, want[i]);
        /* What the device writes, the service stores unchanged. */
        assert_int_equal(proto_tel_addr_norm(out, strlen(out), norm), 0);
        assert_string_equal(norm, out);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_uri_round_trip),
        cmocka_unit_test(test_identity_uri_format_refuses),
        cmocka_unit_test(test_identity_uri_parse_refuses),
        cmocka_unit_test(test_identity_uri_parse_by_length),
        cmocka_unit_test(test_tel_type_names),
        cmocka_unit_test(test_tel_addr_norm),
        cmocka_unit_test(test_tel_addr_format_is_normal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
