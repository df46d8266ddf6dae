/* Unit tests of ctl_text: what aegisctl keeps, what it makes inert, and how wide text is. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ctl_text.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FFFD "\xEF\xBF\xBD"

static void
check_safe(const char *in, const char *want)
{
    char *s = ctl_text_safe(in, 0);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void
check_sanitize(const char *in, const char *want)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", in);
    ctl_text_sanitize(buf);
    assert_string_equal(buf, want);
}

static void
test_valid_utf8_is_kept(void **state)
{
    (void)state;
    static const char *const kept[] = {
        "Thermostat Zürich",
        "温度计",
        "Ελληνικά",
        "emoji 😀 ok",
        "e\xCC\x81 (e + combining acute)",
        "\xEF\xBF\xBF (U+FFFF)",
        "\xF4\x8F\xBF\xBF (U+10FFFF)",
        "Å ß ø",
        "plain ascii ~!@#",
    };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        check_safe(kept[i], kept[i]);
        check_sanitize(kept[i], kept[i]);
    }
}

/* The bug of issue 14: "Zürich" printed as "Z?\x?rich" (the lead byte kept, its continuation
 * replaced). Now one replacement per ill-formed sequence, and nothing else touched. */
static void
test_ill_formed_one_replacement_per_sequence(void **state)
{
    (void)state;
    check_safe("Z\xFCrich", "Z" FFFD "rich");            /* Latin-1 ü */
    check_safe("a\xC3", "a" FFFD);                       /* truncated at the end */
    check_safe("a\xE2\x82z", "a" FFFD "z");              /* truncated 3-byte: one */
    check_safe("a\xF0\x9F\x98z", "a" FFFD "z");          /* truncated 4-byte: one */
    check_safe("\x80\x80", FFFD FFFD);                   /* lone continuations: one each */
    check_safe("\xC0\xAF", FFFD FFFD);                   /* overlong '/' */
    check_safe("\xE0\x80\xAF", FFFD FFFD FFFD);          /* overlong, E0 needs A0-BF */
    check_safe("\xED\xA0\x80", FFFD FFFD FFFD);          /* a surrogate */
    check_safe("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* above U+10FFFF */
    check_safe("\xFF"
               "ok",
               FFFD "ok");
    check_safe("\x9B"
               "31m",
               FFFD "31m"); /* a lone 0x9b is an 8-bit CSI on some terminals */
    check_sanitize("Z\xFCrich", "Z?rich");
    check_sanitize("a\xF0\x9F\x98z", "a?z");
    check_sanitize("\xE0\x80\xAF", "???");
}

static void
test_controls_and_bidi_are_inert(void **state)
{
    (void)state;
    check_safe("red \x1B[31mX\x1B[0m", "red ?[31mX?[0m");
    check_safe("a\tb\nc\rd\x7F", "a?b?c?d?");
    check_safe("c1 \xC2\x9B"
               "2J",
               "c1 ?2J"); /* U+009B CSI */
    check_safe("abc\xE2\x80\xAE"
               "fdp.exe",
               "abc?fdp.exe");                                              /* U+202E RLO */
    check_safe("\xE2\x80\xAA\xE2\x80\xAB\xE2\x80\xAC\xE2\x80\xAD", "????"); /* U+202A-D */
    check_safe("\xE2\x81\xA6\xE2\x81\xA7\xE2\x81\xA8\xE2\x81\xA9", "????"); /* U+2066-9 */
    check_safe("\xE2\x80\x8E\xE2\x80\x8F\xD8\x9C", "???");                  /* LRM RLM ALM */
    check_safe("line\xE2\x80\xA8para\xE2\x80\xA9", "line?para?");           /* U+2028-9 */
    check_sanitize("abc\xE2\x80\xAE"
                   "fdp",
                   "abc?fdp");
    check_sanitize("\x1B]0;title\x07", "?]0;title?");
    /* for values printed for scripts, newlines and tabs stay */
    char *s = ctl_text_safe("a\tb\nc\x1B", CTL_TEXT_KEEP_LINES);
    assert_non_null(s);
    assert_string_equal(s, "a\tb\nc?");
    free(s);
}

static void
test_widths(void **state)
{
    (void)state;
    assert_int_equal(ctl_text_width(""), 0);
    assert_int_equal(ctl_text_width("Zürich"), 6);
    assert_int_equal(ctl_text_width("温度计"), 6);
    assert_int_equal(ctl_text_width("ｔｅｓｔ"), 8);                 /* fullwidth */
    assert_int_equal(ctl_text_width("e\xCC\x81"), 1);                /* combining mark */
    assert_int_equal(ctl_text_width("\xE1\x84\x80\xE1\x85\xA1"), 2); /* Hangul L + V jamo */
    assert_int_equal(ctl_text_width("😀"), 2);
    assert_int_equal(ctl_text_width("a\x1B"
                                    "b"),
                     3); /* '?' */
    assert_int_equal(ctl_text_width("a\xFF"
                                    "b"),
                     3);                                     /* U+FFFD */
    assert_int_equal(ctl_text_width("\xF0\xA0\x80\x80"), 2); /* CJK extension B */
    assert_int_equal(ctl_text_cp_width(0x200B), 0);
    assert_int_equal(ctl_text_cp_width(0x00AD), 1);
    assert_int_equal(ctl_text_cp_width(0xAC00), 2); /* Hangul syllable */
    assert_int_equal(ctl_text_cp_width(0x0378), 1); /* unassigned: narrow */
}

/* The same widths whatever the locale (tests run in C and C.UTF-8 alike). */
static void
test_widths_do_not_depend_on_the_locale(void **state)
{
    (void)state;
    setlocale(LC_ALL, "C");
    assert_int_equal(ctl_text_width("温度计 Zürich"), 13);
    if (setlocale(LC_ALL, "C.UTF-8") != NULL)
        assert_int_equal(ctl_text_width("温度计 Zürich"), 13);
    setlocale(LC_ALL, "C");
}

static void
check_cut(const char *in, size_t cols, const char *want)
{
    char *s = ctl_text_cut(in, cols);
    assert_non_null(s);
    assert_string_equal(s, want);
    assert_true(ctl_text_width(s) <= cols);
    free(s);
}

static void
test_cut(void **state)
{
    (void)state;
    check_cut("Thermostat", 10, "Thermostat");
    check_cut("Thermostat", 6, "Therm…");
    check_cut("Zürich-Nord", 5, "Züri…");
    check_cut("温度计温度计", 6, "温度…");   /* 2+2+1 */
    check_cut("温度计温度计", 7, "温度计…"); /* 2+2+2+1 */
    check_cut("ab温", 3, "ab…");
    check_cut("ae\xCC\x81zz", 3, "ae\xCC\x81…"); /* the mark stays with its base */
    check_cut("abc", 1, "…");
}

static void
test_pad(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ctl_text_pad(f, "温度", 6);
    fputc('|', f);
    ctl_text_pad(f, "Zü", 3);
    fputc('|', f);
    ctl_text_pad(f, "toolong", 3);
    fputc('|', f);
    fclose(f);
    assert_string_equal(buf, "温度  |Zü |toolong|");
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_utf8_is_kept),
        cmocka_unit_test(test_ill_formed_one_replacement_per_sequence),
        cmocka_unit_test(test_controls_and_bidi_are_inert),
        cmocka_unit_test(test_widths),
        cmocka_unit_test(test_widths_do_not_depend_on_the_locale),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_pad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
