/* Unit tests of util.h helpers that guard what goes into JSON answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Repairs a copy of in; checks the result and the number of bytes replaced, and that jansson (the
 * encoder of every answer) takes it. */
static void
check_repair(const char *in, const char *want, size_t replaced)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", in);
    assert_int_equal(util_utf8_repair(buf), replaced);
    assert_string_equal(buf, want);
    json_t *s = json_string(buf);
    assert_non_null(s);
    json_decref(s);
}

static void
test_valid_text_is_kept(void **state)
{
    (void)state;
    check_repair("", "", 0);
    check_repair("plain ascii", "plain ascii", 0);
    check_repair("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                 "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0);
    check_repair("\xed\x9f\xbf \xef\xbf\xbf \xf4\x8f\xbf\xbf",
                 "\xed\x9f\xbf \xef\xbf\xbf \xf4\x8f\xbf\xbf", 0);
}

static void
test_broken_sequences_become_question_marks(void **state)
{
    (void)state;
    /* cut inside a character, as "%.32s" does, at the end and before more text */
    check_repair("ab\xc3", "ab?", 1);
    check_repair("x\xe2\x82'",
                 "x?"
                 "?'",
                 2); /* split: no trigraph */
    check_repair("\xf0\x9f\x98", "???", 3);
    /* a lone continuation byte, overlong forms, surrogates, above U+10FFFF, bytes never used */
    check_repair("\x80z", "?z", 1);
    check_repair("\xc0\xaf", "??", 2);
    check_repair("\xe0\x80\xaf", "???", 3);
    check_repair("\xed\xa0\x80", "???", 3);
    check_repair("\xf4\x90\x80\x80", "????", 4);
    check_repair("\xf5\xff\xfe", "???", 3);
}

/* A message cut by snprintf at its buffer's end, the other way a quoted name ends inside a
 * character. */
static void
test_truncated_message(void **state)
{
    (void)state;
    char msg[7];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation" /* the cut is the point */
    snprintf(msg, sizeof(msg), "k '%s'", "\xc3\xa9\xc3\xa9\xc3\xa9");
#pragma GCC diagnostic pop
    assert_int_equal(util_utf8_repair(msg), 1);
    assert_string_equal(msg, "k '\xc3\xa9?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_is_kept),
        cmocka_unit_test(test_broken_sequences_become_question_marks),
        cmocka_unit_test(test_truncated_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
