/* Unit tests of lib/log.h: log_quote (no value from outside can forge a key or a line), JSON lines
 * (log_json.h), the thread's request context, and journald's priority prefixes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log.h"
#include "log_json.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* log_json_line's object for body, parsed back; fails the test when it is not one JSON object. */
static json_t *
json_of(const char *body, size_t cap)
{
    char out[4096];
    assert_true(cap <= sizeof(out));
    size_t n = log_json_line(out, cap, "2026-01-02T03:04:05.678Z", "info", body);
    assert_true(n <= cap);
    json_error_t e;
    json_t *j = json_loadb(out, n, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", e.text, (int)n, out);
    assert_true(json_is_object(j));
    return j;
}

static void
test_json_pairs(void **state)
{
    (void)state;
    json_t *j = json_of("msg=request method=\"GET\" status=200 dur_ms=1.25 ver=1.2.3 neg=-4 "
                        "lead=007 detail=\"a\\\"b\\\\c\\nd\\x01e\\xff\" empty= status=500",
                        4096);
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "2026-01-02T03:04:05.678Z");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "request");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200); /* first one wins */
    assert_true(json_is_real(json_object_get(j, "dur_ms")));
    assert_string_equal(json_string_value(json_object_get(j, "ver")), "1.2.3");
    assert_int_equal(json_integer_value(json_object_get(j, "neg")), -4);
    assert_string_equal(json_string_value(json_object_get(j, "lead")), "007");
    /* A control byte is the character; a byte that is not UTF-8 stays the text \xff. */
    assert_string_equal(json_string_value(json_object_get(j, "detail")), "a\"b\\c\nd\x01"
                                                                         "e\\xff");
    assert_string_equal(json_string_value(json_object_get(j, "empty")), "");
    json_decref(j);
    /* Quoted numbers stay strings; a body's own ts= or level= cannot replace the line's. */
    j = json_of("msg=x id=\"42\" ts=1 level=error", 4096);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "42");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "2026-01-02T03:04:05.678Z");
    json_decref(j);
}

static void
test_json_unparsable_body(void **state)
{
    (void)state;
    /* An unescaped quote, a cut quote, free text, a missing key: kept whole as msg, never a forged
     * member. */
    const char *bodies[] = {"msg=\"cannot open \"x\" now\" injected=1", "msg=\"cut in the mid",
                            "just text", "=x", "msg=x ="};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_t *j = json_of(bodies[i], 4096);
        assert_int_equal(json_object_size(j), 3);
        assert_non_null(json_string_value(json_object_get(j, "msg")));
        json_decref(j);
    }
    /* Raw control bytes and bytes that are not UTF-8, bare or quoted: escaped. */
    json_t *j = json_of("msg=a\tb\x02 err=\"\x80\x1b[31m\"", 4096);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "a\tb\x02");
    assert_string_equal(json_string_value(json_object_get(j, "err")), "\\x80\x1b[31m");
    json_decref(j);
}

static void
test_json_cut_stays_valid(void **state)
{
    (void)state;
    char body[1500];
    size_t o = 0;
    for (int i = 0; i < 30; i++)
        o += (size_t)snprintf(body + o, sizeof(body) - o, "k%d=\"\\x01\\x02\\xfe\" n%d=%d ", i, i,
                              i);
    /* Every cap from the least up cuts somewhere else: strings, numbers, keys. */
    for (size_t cap = 64; cap < 700; cap += 7)
        json_decref(json_of(body, cap));
}

/* Logs one line into a fresh file and returns its text (static buffer). */
static const char *
logged(void (*emit)(void))
{
    static char buf[8192];
    char path[] = "/tmp/test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(log_open(path), 0);
    emit();
    assert_int_equal(log_open(NULL), 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    close(fd);
    unlink(path);
    return buf;
}

static void
emit_plain(void)
{
    log_info("msg=hello n=%d", 1);
}

static void
emit_own_device(void)
{
    log_warn("msg=\"own field\" device=other");
}

static void
test_context(void **state)
{
    (void)state;
    log_set_format(LOG_FORMAT_TEXT);
    log_ctx_set("r1ab", "dev-01");
    const char *l = logged(emit_plain);
    assert_non_null(strstr(l, " level=info msg=hello n=1 req=r1ab device=dev-01\n"));
    assert_memory_equal(l, "ts=", 3);
    /* The line's own device= is kept, not repeated. */
    l = logged(emit_own_device);
    assert_non_null(strstr(l, "msg=\"own field\" device=other req=r1ab\n"));
    /* A value outside the bare characters is quoted; a long one is cut. */
    log_ctx_set("a b\n", NULL);
    l = logged(emit_plain);
    assert_non_null(strstr(l, "n=1 req=\"a b\\n\"\n"));
    char longid[200];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    log_ctx_set(longid, NULL);
    l = logged(emit_plain);
    assert_int_equal(strcspn(strstr(l, "req=") + 4, "\n"), LOG_CTX_MAX);
    log_ctx_clear();
    l = logged(emit_plain);
    assert_null(strstr(l, "req="));
    /* JSON lines carry the context as members. */
    log_set_format(LOG_FORMAT_JSON);
    log_ctx_set("r2", "dev-02");
    l = logged(emit_plain);
    log_ctx_clear();
    log_set_format(LOG_FORMAT_TEXT);
    json_t *j = json_loads(l, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "req")), "r2");
    assert_string_equal(json_string_value(json_object_get(j, "device")), "dev-02");
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 1);
    json_decref(j);
    enum log_format f;
    assert_int_equal(log_parse_format("json", &f), 0);
    assert_int_equal(f, LOG_FORMAT_JSON);
    assert_int_equal(log_parse_format("JSON", &f), -1);
}

/* With stderr on the stream $JOURNAL_STREAM names: "<N>" priorities and no ts=. */
static void
test_journald_prefix(void **state)
{
    (void)state;
    char path[] = "/tmp/test_log_j_XXXXXX", env[64], buf[512];
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    struct stat st;
    assert_true(fd >= 0 && saved >= 0 && fstat(fd, &st) == 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);
    assert_int_equal(log_open(""), 0);
    log_error("msg=e");
    log_warn("msg=w");
    log_info("msg=i");
    setenv("JOURNAL_STREAM", "1:2", 1); /* another stream: plain lines */
    assert_int_equal(log_open(NULL), 0);
    log_info("msg=plain");
    unsetenv("JOURNAL_STREAM");
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_memory_equal(
        buf, "<3>level=error msg=e\n<4>level=warn msg=w\n<6>level=info msg=i\nts=",
        strlen("<3>level=error msg=e\n<4>level=warn msg=w\n<6>level=info msg=i\nts="));
    assert_non_null(strstr(buf, " level=info msg=plain\n"));
    close(fd);
    unlink(path);
    assert_int_equal(log_open(NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_cut_to_fit),
        cmocka_unit_test(test_json_pairs),
        cmocka_unit_test(test_json_unparsable_body),
        cmocka_unit_test(test_json_cut_stays_valid),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_journald_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
