/* Unit tests of lib/log.h's log_quote: no value from outside can forge a key or a line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log.h"

#include <string.h>

static void
check(const char *in, const char *want)
{
    char buf[LOG_QUOTE_BUF];
    assert_string_equal(log_quote(buf, sizeof(buf), in), want);
}

static void
test_escapes(void **state)
{
    (void)state;
    check("GET", "\"GET\"");
    check(NULL, "\"\"");
    check("FOO\"msg=\"x", "\"FOO\\\"msg=\\\"x\"");
    check("a\\b", "\"a\\\\b\"");
    check("l1\nts=x level=error\r\t", "\"l1\\nts=x level=error\\r\\t\"");
    check("\x01\x1f\x7f", "\"\\x01\\x1f\\x7f\"");
}

static void
test_utf8(void **state)
{
    (void)state;
    check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
          "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    check("\xff\xfe", "\"\\xff\\xfe\"");
    check("\xc0\xaf", "\"\\xc0\\xaf\"");                   /* overlong '/' */
    check("\xed\xa0\x80", "\"\\xed\\xa0\\x80\"");          /* a surrogate */
    check("\xf4\x90\x80\x80", "\"\\xf4\\x90\\x80\\x80\""); /* past U+10FFFF */
    check("\xe2\x82", "\"\\xe2\\x82\"");                   /* cut short by the end */
}

static void
test_cut_to_fit(void **state)
{
    (void)state;
    char small[12];
    assert_string_equal(log_quote(small, sizeof(small), "abcdefghi"), "\"abcdefghi\"");
    assert_string_equal(log_quote(small, sizeof(small), "abcdefghij"), "\"abcdef...\"");
    assert_string_equal(log_quote(small, sizeof(small), "ab\"\"\"\""), "\"ab\\\"\\\"...\"");
    char big[LOG_QUOTE_BUF];
    char in[LOG_VALUE_MAX + 1];
    memset(in, 0x01, LOG_VALUE_MAX);
    in[LOG_VALUE_MAX] = '\0';
    log_quote(big, sizeof(big), in); /* the worst case of LOG_VALUE_MAX bytes fits whole */
    assert_int_equal(strlen(big), LOG_VALUE_MAX * 4 + 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_cut_to_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
