/* Unit tests of proto/proto_fields.c: the field rules of the device protocol (docs/protocol.md
 * section 2), which the service, the reference device, the simulator and the CLI all use. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "proto_fields.h"

#include <string.h>

static void
test_component(void **state)
{
    (void)state;
    assert_true(proto_component_ok("aegis-os", 8));
    assert_true(proto_component_ok("a.b_c-9", 7));
    char longest[PROTO_COMPONENT_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    assert_true(proto_component_ok(longest, PROTO_COMPONENT_MAX));
    assert_false(proto_component_ok(longest, PROTO_COMPONENT_MAX + 1));
    assert_false(proto_component_ok("", 0));
    assert_false(proto_component_ok(NULL, 3));
    assert_false(proto_component_ok("Aegis", 5)); /* upper case */
    assert_false(proto_component_ok("a b", 3));   /* space */
    assert_false(proto_component_ok("a/b", 3));   /* a path */
    assert_false(proto_component_ok("..", 2));    /* path segments */
    assert_false(proto_component_ok(".", 1));
    assert_true(proto_component_ok("...", 3));
    assert_true(proto_component_ok(".a", 2));
    assert_false(proto_component_ok("ab\0c", 4));       /* a NUL inside the length */
    assert_false(proto_component_ok("caf\xc3\xa9", 5)); /* not ASCII */
}

static void
test_version(void **state)
{
    (void)state;
    assert_true(proto_version_ok("0.9.0-rc1", 9));
    assert_true(proto_version_ok("!~", 2)); /* 0x21 and 0x7e are the bounds */
    assert_false(proto_version_ok("1 0", 3));
    assert_false(proto_version_ok("1\x7f", 2));
    assert_false(proto_version_ok("", 0));
    char longest[PROTO_VERSION_MAX + 1];
    memset(longest, '1', sizeof(longest));
    assert_true(proto_version_ok(longest, PROTO_VERSION_MAX));
    assert_false(proto_version_ok(longest, PROTO_VERSION_MAX + 1));
}

static void
test_hex(void **state)
{
    (void)state;
    const char *id = "0ce17f0b2a589611ee12e8a6374854de93794f7c63c0c863f12f9c0c34ccc525";
    uint8_t bin[PROTO_HASH_LEN];
    char back[PROTO_HASH_HEX + 1];
    assert_true(proto_digest_hex_ok(id, strlen(id)));
    assert_false(proto_digest_hex_ok(id, strlen(id) - 1));
    assert_false(
        proto_digest_hex_ok("0CE17F0B2A589611EE12E8A6374854DE93794F7C63C0C863F12F9C0C34CCC525",
                            64)); /* the wire is lower case */
    assert_int_equal(proto_unhex(id, strlen(id), bin, sizeof(bin), 1), 0);
    proto_hex(bin, sizeof(bin), back);
    assert_string_equal(back, id);
    /* files and flags may use either case; the wire may not */
    assert_int_equal(proto_unhex("AbCd", 4, bin, 2, 0), 0);
    assert_int_equal(bin[0], 0xab);
    assert_int_equal(bin[1], 0xcd);
    assert_int_equal(proto_unhex("AbCd", 4, bin, 2, 1), -1);
    assert_int_equal(proto_unhex("abc", 3, bin, 2, 0), -1);
    assert_int_equal(proto_unhex("zz", 2, bin, 1, 0), -1);
}

static void
test_stages_and_sets(void **state)
{
    (void)state;
    assert_string_equal(proto_stage_name(PROTO_STAGE_BOOTLOADER), "bootloader");
    assert_string_equal(proto_stage_name(PROTO_STAGE_APP), "app");
    assert_null(proto_stage_name(0));
    assert_null(proto_stage_name(4));
    assert_int_equal(proto_stage_parse("os", 2), PROTO_STAGE_OS);
    assert_int_equal(proto_stage_parse("osx", 2), PROTO_STAGE_OS); /* only len bytes count */
    assert_int_equal(proto_stage_parse("kernel", 6), -1);
    assert_true(proto_chars_ok("abc", 3, 1, 3, "cba"));
    assert_false(proto_chars_ok("abc", 3, 4, 9, "abc")); /* too short */
    assert_false(proto_chars_ok("abc", 3, 1, 2, "abc")); /* too long */
    assert_false(proto_chars_ok("abd", 3, 1, 3, "abc"));
    assert_true(proto_chars_ok("", 0, 0, 3, "abc"));
    /* every byte value: in the set exactly when listed */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    for (int i = 1; i < 256; i++)
        assert_int_equal(proto_chars_ok(&all[i], 1, 1, 1, "\x01\x7f\x80\xff"),
                         i == 1 || i == 0x7f || i == 0x80 || i == 0xff);
    assert_false(proto_chars_ok(all, 1, 1, 1, "\x01")); /* NUL is never in a set */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_component),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_stages_and_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
