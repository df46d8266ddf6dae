/* Unit tests of ota_cjson: the canonical JSON that TUF signatures are computed over. Expected
 * bytes are those of securesystemslib's encode_canonical / @tufjs/canonical-json for the same
 * value (for ASCII-only values identical to Python's
 * json.dumps(v, sort_keys=True, separators=(",", ":"))). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ota_cjson.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Encodes v (taking the reference) and compares with want (wantlen bytes). */
static void
check_bytes(json_t *v, const char *want, size_t wantlen)
{
    char *out = NULL;
    size_t len = 0;
    char err[128] = "";
    assert_non_null(v);
    assert_int_equal(ota_cjson_encode(v, &out, &len, err, sizeof(err)), 0);
    assert_int_equal(len, wantlen);
    assert_memory_equal(out, want, wantlen);
    assert_int_equal(out[len], '\0');
    free(out);
    json_decref(v);
}

static void
check(json_t *v, const char *want)
{
    check_bytes(v, want, strlen(want));
}

/* Parses text with jansson, then encodes. */
static void
check_text(const char *text, const char *want)
{
    json_error_t e;
    check(json_loads(text, JSON_DECODE_ANY, &e), want);
}

static void
refuse(json_t *v, const char *msg_part)
{
    char *out = (char *)"x";
    size_t len = 1;
    char err[128] = "";
    assert_non_null(v);
    assert_int_equal(ota_cjson_encode(v, &out, &len, err, sizeof(err)), -1);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err, msg_part));
    json_decref(v);
}

static void
test_sorted_nested_no_whitespace(void **state)
{
    (void)state;
    check_text("{ \"b\" : 1, \"a\": {\"d\": [1, 2, {\"y\": true, \"x\": null}], \"c\": false} }",
               "{\"a\":{\"c\":false,\"d\":[1,2,{\"x\":null,\"y\":true}]},\"b\":1}");
    check_text("{}", "{}");
    check_text("[]", "[]");
    check_text("[[],{},\"\"]", "[[],{},\"\"]");
    check_text("{\"keyval\":{\"public\":\"ab\"},\"scheme\":\"ed25519\",\"keytype\":\"ed25519\"}",
               "{\"keytype\":\"ed25519\",\"keyval\":{\"public\":\"ab\"},\"scheme\":\"ed25519\"}");
}

/* Byte order of the UTF-8 keys = code point order (Python's sorted()): "" < "Z" < "a" < "ab" <
 * "z" < U+00E9 < U+E000 < U+1F600. (tuf-js would put U+1F600, a surrogate pair in UTF-16, before
 * U+E000: the one documented divergence, irrelevant for ASCII keys.) */
static void
test_sorted_by_bytes_non_ascii(void **state)
{
    (void)state;
    json_t *o = json_object();
    const char *keys[] = {"z", "\xc3\xa9", "\xf0\x9f\x98\x80", "\xee\x80\x80", "ab", "a", "Z", ""};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        json_object_set_new(o, keys[i], json_integer((json_int_t)i));
    check(o, "{\"\":7,\"Z\":6,\"a\":5,\"ab\":4,\"z\":0,\"\xc3\xa9\":1,\"\xee\x80\x80\":3,"
             "\"\xf0\x9f\x98\x80\":2}");
    /* a key that begins another sorts first; a NUL inside a key (jansson 2.14) is a byte too */
    o = json_object();
    json_object_setn_new(o, "a\0b", 3, json_true());
    json_object_set_new(o, "a", json_false());
    json_object_set_new(o, "a\x01", json_null());
    static const char want[] = "{\"a\":false,\"a\0b\":true,\"a\x01\":null}";
    check_bytes(o, want, sizeof(want) - 1);
}

/* Only '"' and '\' are escaped; control characters, '/', and UTF-8 are written raw. */
static void
test_string_escapes(void **state)
{
    (void)state;
    check(json_string("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
    check(json_string("tab\tnl\ncr\r\x01\x1f"), "\"tab\tnl\ncr\r\x01\x1f\"");
    check(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
          "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    check(json_string("\\\\\"\""), "\"\\\\\\\\\\\"\\\"\"");
    check(json_string(""), "\"\"");
    /* escapes in the JSON text are decoded by the parser, then written raw */
    check_text("\"\\u00e9\\n\\/\\\"\"", "\"\xc3\xa9\n/\\\"\"");
    static const char nul[] = "\"a\0b\"";
    check_bytes(json_stringn("a\0b", 3), nul, sizeof(nul) - 1);
    /* keys are escaped the same way */
    json_t *o = json_pack("{s:i}", "k\"\\", 1);
    check(o, "{\"k\\\"\\\\\":1}");
}

static void
test_integers_and_literals(void **state)
{
    (void)state;
    check(json_integer(0), "0");
    check(json_integer(-1), "-1");
    check(json_integer(9007199254740993LL), "9007199254740993");
    check(json_integer(INT64_MAX), "9223372036854775807");
    check(json_integer(INT64_MIN), "-9223372036854775808");
    check(json_true(), "true");
    check(json_false(), "false");
    check(json_null(), "null");
    check_text("[-0, 10, -200]", "[0,10,-200]");
}

static void
test_reals_refused(void **state)
{
    (void)state;
    json_error_t e;
    refuse(json_real(1.5), "real");
    refuse(json_real(1.0), "real");
    refuse(json_pack("{s:{s:[i,f]}}", "signed", "x", 1, 0.25), "real");
    refuse(json_loads("[1e0]", 0, &e), "real");
    /* "1.0" in a metadata file parses as a real: refused, as Python's encoder refuses a float */
    refuse(json_loads("{\"version\":1.0}", 0, &e), "real");
}

static void
test_depth_limited(void **state)
{
    (void)state;
    json_t *v = json_integer(1);
    for (int i = 0; i < OTA_CJSON_MAX_DEPTH; i++)
        v = json_pack("[o]", v);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(ota_cjson_encode(v, &out, &len, NULL, 0), 0);
    assert_int_equal(len, 2 * OTA_CJSON_MAX_DEPTH + 1);
    free(out);
    refuse(json_pack("[o]", v), "deeper");
    char err[64] = "";
    assert_int_equal(ota_cjson_encode(NULL, &out, &len, err, sizeof(err)), -1);
    assert_null(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_nested_no_whitespace),
        cmocka_unit_test(test_sorted_by_bytes_non_ascii),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_integers_and_literals),
        cmocka_unit_test(test_reals_refused),
        cmocka_unit_test(test_depth_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
