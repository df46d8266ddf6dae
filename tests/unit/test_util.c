/* Unit tests of util.h helpers: those that guard what goes into JSON answers, and the file writer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* --- util_write_file --- */

static char *
make_tmpdir(void)
{
    char *d = strdup("/tmp/test_util.XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

/* The number of util_write_file temporary files (".<name>.tmp.*") in dir. */
static int
temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] == '.' && strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void
check_file(const char *path, const char *want, unsigned mode)
{
    size_t len;
    char *got = util_read_file(path, 1024, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_string_equal(got, want);
    free(got);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, mode);
}

/* The mode is exactly the one asked for, whatever the umask (key files are 0600). */
static void
test_write_file_mode(void **state)
{
    (void)state;
    char *dir = make_tmpdir(), path[256];
    mode_t old = umask(077);
    snprintf(path, sizeof(path), "%s/public", dir);
    assert_int_equal(util_write_file(path, "pub", 3, 0644), 0);
    check_file(path, "pub", 0644);
    umask(0);
    snprintf(path, sizeof(path), "%s/secret", dir);
    assert_int_equal(util_write_file_flags(path, "key", 3, 0600, UTIL_WRITE_NOSYNC), 0);
    check_file(path, "key", 0600);
    umask(old);
    assert_int_equal(temp_files(dir), 0);
    unlink(path);
    snprintf(path, sizeof(path), "%s/public", dir);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* A new file replaces the old by rename: a reader holding the old one keeps reading it whole, and
 * the mode is the new one. */
static void
test_write_file_replaces_atomically(void **state)
{
    (void)state;
    char *dir = make_tmpdir(), path[256], buf[16];
    snprintf(path, sizeof(path), "%s/state", dir);
    assert_int_equal(util_write_file(path, "old contents", 12, 0644), 0);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(util_write_file(path, "new", 3, 0600), 0);
    check_file(path, "new", 0600);
    assert_int_equal(read(fd, buf, sizeof(buf)), 12);
    assert_memory_equal(buf, "old contents", 12);
    close(fd);
    assert_int_equal(util_write_file(path, "", 0, 0600), 0); /* empty is a valid file */
    check_file(path, "", 0600);
    assert_int_equal(temp_files(dir), 0);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* A failed write leaves neither a temporary file nor a change. */
static void
test_write_file_error_leaves_no_temp(void **state)
{
    (void)state;
    char *dir = make_tmpdir(), path[256], inner[300];
    snprintf(path, sizeof(path), "%s/busy", dir); /* a non-empty directory: rename fails */
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(inner, sizeof(inner), "%s/x", path);
    assert_int_equal(util_write_file(inner, "x", 1, 0644), 0);
    assert_int_equal(util_write_file(path, "data", 4, 0644), -1);
    assert_int_equal(temp_files(dir), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    snprintf(path, sizeof(path), "%s/missing/f", dir); /* no such directory: nothing created */
    assert_int_equal(util_write_file(path, "data", 4, 0644), -1);
    snprintf(path, sizeof(path), "%s/", dir); /* no file name */
    assert_int_equal(util_write_file(path, "data", 4, 0644), -1);
    assert_int_equal(temp_files(dir), 0);
    unlink(inner);
    snprintf(path, sizeof(path), "%s/busy", dir);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* A path without a directory is written in the current one. */
static void
test_write_file_relative(void **state)
{
    (void)state;
    char *dir = make_tmpdir(), cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(util_write_file("here", "h", 1, 0640), 0);
    check_file("here", "h", 0640);
    assert_int_equal(temp_files("."), 0);
    unlink("here");
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* One spelling per number: what an id or a limit in a path, a query or the configuration may be. */
static void
test_parse_i64_is_strict(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(util_parse_i64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(util_parse_i64("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(util_parse_i64("-7", -10, 10, &v), 0);
    assert_int_equal(v, -7);
    const char *bad[] = {"",   "+1",  " 1",  "1 ",   "01",  "007",
                         "-0", "-01", "1e3", "0x10", "--1", "9223372036854775808",
                         NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        v = 99;
        assert_int_equal(util_parse_i64(bad[i], INT64_MIN, INT64_MAX, &v), -1);
        assert_int_equal(v, 99);
    }
    assert_int_equal(util_parse_i64("11", 0, 10, &v), -1);
}

/* Times that exist, written as the service writes them. */
static void
test_parse_rfc3339_is_strict(void **state)
{
    (void)state;
    int64_t t = -1;
    assert_int_equal(util_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(util_parse_rfc3339("2026-02-28T23:59:59Z", &t), 0);
    assert_int_equal(util_parse_rfc3339("2028-02-29T00:00:00Z", &t), 0); /* a leap year */
    const char *bad[] = {"2026-02-30T00:00:00Z",
                         "2026-02-29T00:00:00Z",
                         "2026-04-31T10:00:00Z",
                         "2026-13-01T00:00:00Z",
                         "2026-01-01T24:00:00Z",
                         "2026-01-01T00:60:00Z",
                         "2026-1-05T00:00:00Z",
                         "2026-01-01T00:00:00",
                         "2026-01-01 00:00:00Z",
                         "2026-01-01T00:00:00+00:00",
                         NULL};
    for (size_t i = 0; bad[i] != NULL; i++)
        assert_int_equal(util_parse_rfc3339(bad[i], &t), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_is_kept),
        cmocka_unit_test(test_broken_sequences_become_question_marks),
        cmocka_unit_test(test_truncated_message),
        cmocka_unit_test(test_write_file_mode),
        cmocka_unit_test(test_write_file_replaces_atomically),
        cmocka_unit_test(test_write_file_error_leaves_no_temp),
        cmocka_unit_test(test_write_file_relative),
        cmocka_unit_test(test_parse_i64_is_strict),
        cmocka_unit_test(test_parse_rfc3339_is_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
