/* api_range_parse (server/http/api_file.c): one byte range of a Range header against a size, as
 * RFC 9110 14 says; everything else answers the whole representation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api.h"

#include <stdint.h>

static void
part(const char *h, uint64_t size, uint64_t first, uint64_t last)
{
    uint64_t a = 99, b = 99;
    assert_int_equal(api_range_parse(h, size, &a, &b), API_RANGE_PART);
    assert_int_equal(a, first);
    assert_int_equal(b, last);
}

static void
kind(const char *h, uint64_t size, enum api_range_kind k)
{
    uint64_t a = 0, b = 0;
    assert_int_equal(api_range_parse(h, size, &a, &b), k);
}

static void
test_single_ranges(void **state)
{
    (void)state;
    part("bytes=0-99", 1000, 0, 99);
    part("bytes=10-10", 1000, 10, 10);
    part("bytes=500-", 1000, 500, 999);
    part("bytes=900-5000", 1000, 900, 999);
    part("bytes=-1", 1000, 999, 999);
    part("bytes=-100", 1000, 900, 999);
    part("bytes=-5000", 1000, 0, 999);
    part("BYTES = 1-2 ", 1000, 1, 2);
    part("bytes=999-", 1000, 999, 999);
    part("bytes=0-18446744073709551615", 1000, 0, 999);
    part("bytes=0-123456789012345678901234567890", 1000, 0, 999);
    part("bytes=-123456789012345678901234567890", 1000, 0, 999);
}

static void
test_unsatisfiable(void **state)
{
    (void)state;
    kind("bytes=1000-", 1000, API_RANGE_UNSATISFIABLE);
    kind("bytes=1000-2000", 1000, API_RANGE_UNSATISFIABLE);
    kind("bytes=-0", 1000, API_RANGE_UNSATISFIABLE);
    kind("bytes=123456789012345678901234567890-", 1000, API_RANGE_UNSATISFIABLE);
    kind("bytes=0-", 0, API_RANGE_UNSATISFIABLE);
    kind("bytes=-5", 0, API_RANGE_UNSATISFIABLE);
}

static void
test_ignored_is_whole(void **state)
{
    (void)state;
    const char *whole[] = {
        NULL,         "",           "bytes",           "bytes=",           "bytes=-",
        "bytes=5",    "bytes=9-3",  "bytes=0-9,20-29", "bytes=0-9, 20-29", "items=0-9",
        "bytesx=0-9", "bytes=0-9x", "bytes=+1-2",      "bytes=0x10-20",    "bytes=--5",
        "bytes=1 2-3"};
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
        kind(whole[i], 1000, API_RANGE_WHOLE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_ranges),
        cmocka_unit_test(test_unsatisfiable),
        cmocka_unit_test(test_ignored_is_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
