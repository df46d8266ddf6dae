/* Unit tests of aegisctl's printers (ctl_print) and its -o jsonpath templates (ctl_jsonpath). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ctl_jsonpath.h"
#include "ctl_print.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct ctl_col cols[] = {{"ID", "id", 0, 0},
                                      {"NAME", "name", 0, CTL_COL_CUT},
                                      {"STATE", "state", 0, 0},
                                      {"EXTRA", "extra", 0, CTL_COL_WIDE},
                                      {NULL, NULL, 0, 0}};

static json_t *
load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return v;
}

/* The table of items (JSON text) with the options, as a string (caller frees). */
static char *
table(const char *items, const struct ctl_col *c, int wide, int no_headers, size_t width)
{
    struct ctl_table_opts o = {wide, no_headers, width};
    char *buf = NULL;
    size_t len = 0;
    json_t *v = load(items);
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ctl_table_write(f, v, c, &o);
    fclose(f);
    json_decref(v);
    return buf;
}

static void
check_table(const char *items, const struct ctl_col *c, int wide, int no_headers, size_t width,
            const char *want)
{
    char *got = table(items, c, wide, no_headers, width);
    assert_string_equal(got, want);
    free(got);
}

static const char rows[] =
    "[{\"id\": 1, \"name\": \"Thermostat Zürich\", \"state\": \"ok\","
    " \"extra\": [\"a\", \"b\"]},"
    " {\"id\": 22, \"name\": \"温度计\", \"state\": null},"
    " {\"id\": 3, \"name\": \"x\\u202eevil\\u001b[31m\", \"state\": \"ok\"}]";

/* Alignment by display width: "温度计" is 6 columns, "Zürich" keeps its ü. */
static void
test_table_utf8_aligned(void **state)
{
    (void)state;
    check_table(rows, cols, 0, 0, 0,
                "ID  NAME               STATE\n"
                "1   Thermostat Zürich  ok\n"
                "22  温度计             -\n"
                "3   x?evil?[31m        ok\n");
}

static void
test_table_wide_and_no_headers(void **state)
{
    (void)state;
    check_table(rows, cols, 1, 1, 0,
                "1   Thermostat Zürich  ok  a,b\n"
                "22  温度计             -   -\n"
                "3   x?evil?[31m        ok  -\n");
}

/* On a terminal the free-text column is cut with "…" to fit; the ID never is; -o wide and a
 * non-terminal (width 0) never cut. */
static void
test_table_fits_the_terminal(void **state)
{
    (void)state;
    check_table(rows, cols, 0, 0, 20,
                "ID  NAME       STATE\n"
                "1   Thermost…  ok\n"
                "22  温度计     -\n"
                "3   x?evil?[…  ok\n");
    /* cannot fit: cut down to the header's width (at least 5), then the line overflows */
    check_table(rows, cols, 0, 0, 5,
                "ID  NAME   STATE\n"
                "1   Ther…  ok\n"
                "22  温度…  -\n"
                "3   x?ev…  ok\n");
    char *w = table(rows, cols, 1, 0, 20);
    assert_non_null(strstr(w, "Thermostat Zürich"));
    free(w);
}

/* A column's max applies on a terminal only. */
static void
test_table_max_on_terminal_only(void **state)
{
    (void)state;
    static const struct ctl_col capped[] = {
        {"ID", "id", 0, 0}, {"NAME", "name", 8, 0}, {NULL, NULL, 0, 0}};
    check_table("[{\"id\": \"0123456789abcdef\", \"name\": \"a long name\"}]", capped, 0, 0, 0,
                "ID                NAME\n0123456789abcdef  a long name\n");
    check_table("[{\"id\": \"0123456789abcdef\", \"name\": \"a long name\"}]", capped, 0, 0, 200,
                "ID                NAME\n0123456789abcdef  a long …\n");
    /* the ID is kept whole even when nothing else can give */
    check_table("[{\"id\": \"0123456789abcdef\", \"name\": \"a long name\"}]", capped, 0, 0, 10,
                "ID                NAME\n0123456789abcdef  a lo…\n");
}

/* On a terminal a 64-hex ID is its 12-character prefix, whole with -o wide and off a terminal;
 * a CTL_COL_DROP column is left out when the table cannot fit with the others cut. */
static void
test_table_short_ids_and_drop(void **state)
{
    (void)state;
    static const struct ctl_col hashed[] = {{"ID", "id", 0, CTL_COL_HASH},
                                            {"TYPE", "type", 0, CTL_COL_DROP},
                                            {"NOTE", "note", 0, CTL_COL_CUT},
                                            {NULL, NULL, 0, 0}};
    static const char id[] = "6156cd7c2e00aaaabbbbccccddddeeeeffff00001111222233334444555566667777";
    char items[256], want[512];
    assert_int_equal(strlen(id), 68); /* not 64: kept whole */
    snprintf(items, sizeof(items),
             "[{\"id\": \"%.64s\", \"type\": \"device\", \"note\": \"x\"},"
             " {\"id\": \"%s\", \"type\": \"d\", \"note\": \"y\"}]",
             id, "short");
    check_table(items, hashed, 0, 0, 80,
                "ID            TYPE    NOTE\n6156cd7c2e00  device  x\nshort         d       y\n");
    snprintf(want, sizeof(want), "ID%62s  TYPE    NOTE\n%.64s  device  x\nshort%59s  d       y\n",
             "", id, "");
    check_table(items, hashed, 0, 0, 0, want);  /* not a terminal */
    check_table(items, hashed, 1, 0, 80, want); /* -o wide */
    /* ID 12 + 2 + TYPE 6 + 2 + NOTE 4 = 26 > 24: TYPE is left out, NOTE is then the last column */
    check_table(items, hashed, 0, 0, 24, "ID            NOTE\n6156cd7c2e00  x\nshort         y\n");
}

static void
test_table_nested_cells(void **state)
{
    (void)state;
    static const struct ctl_col c[] = {
        {"ID", "id", 0, 0}, {"TAGS", "tags", 0, 0}, {"ATT", "att", 0, 0}, {NULL, NULL, 0, 0}};
    check_table("[{\"id\": 1, \"tags\": [\"x\", 2, true], \"att\": {\"result\": \"pass\", "
                "\"at\": null}}, {\"id\": 2, \"tags\": [], \"att\": {}}]",
                c, 0, 0, 0,
                "ID  TAGS      ATT\n"
                "1   x,2,true  result=pass,at=-\n"
                "2   -         -\n");
}

static char *
object(const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    json_t *v = load(text);
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ctl_object_write(f, v);
    fclose(f);
    json_decref(v);
    return buf;
}

static void
test_object_nested_readable(void **state)
{
    (void)state;
    char *got =
        object("{\"id\": \"ab\", \"name\": \"Zürich\", \"state\": null, \"empty\": \"\","
               " \"attestation\": {\"at\": \"2026-01-01T00:00:00Z\", \"result\": \"pass\"},"
               " \"tags\": [\"a\", \"b\"], \"none\": [], \"labels\": {},"
               " \"waves\": [{\"n\": 1, \"percent\": 10}, {\"n\": 2, \"sub\": {\"k\": \"v\"}}],"
               " \"pem\": \"-----BEGIN X-----\\nAAAA\\n-----END X-----\\n\"}");
    assert_string_equal(got, "id:          ab\n"
                             "name:        Zürich\n"
                             "state:       -\n"
                             "empty:\n"
                             "attestation:\n"
                             "  at:     2026-01-01T00:00:00Z\n"
                             "  result: pass\n"
                             "tags:\n"
                             "  - a\n"
                             "  - b\n"
                             "none:        -\n"
                             "labels:      -\n"
                             "waves:\n"
                             "  - n:       1\n"
                             "    percent: 10\n"
                             "  - n:   2\n"
                             "    sub:\n"
                             "      k: v\n"
                             "pem:\n"
                             "    -----BEGIN X-----\n"
                             "    AAAA\n"
                             "    -----END X-----\n");
    free(got);
    /* keys and values inert, aligned by display width */
    got = object("{\"名前\": \"a\\u001b]0;x\\u0007\", \"k\": \"\\u2067b\"}");
    assert_string_equal(got, "名前: a?]0;x?\nk:    ?b\n");
    free(got);
}

/* ctl_data_write in one mode, as a string; *rc gets its return. */
static char *
data(enum ctl_output mode, const char *path, const char *text, const struct ctl_col *c, int *rc)
{
    char *buf = NULL, err[128] = "";
    size_t len = 0;
    json_t *v = load(text);
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    *rc = ctl_data_write(f, mode, path, v, c, err, sizeof(err));
    fclose(f);
    json_decref(v);
    return buf;
}

static void
check_data(enum ctl_output mode, const char *path, const char *text, const struct ctl_col *c,
           const char *want)
{
    int rc;
    char *got = data(mode, path, text, c, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(got, want);
    free(got);
}

static const char page[] = "{\"items\": [{\"id\": 7, \"name\": \"a\", \"tags\": [\"x\", \"y\"]},"
                           " {\"id\": 9, \"name\": \"b\\u202e\\nc\", \"tags\": []}],"
                           " \"next_cursor\": null}";

static void
test_data_modes(void **state)
{
    (void)state;
    int rc;
    char *got = data(CTL_OUT_TABLE, NULL, page, cols, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "");
    free(got);
    got = data(CTL_OUT_WIDE, NULL, page, cols, &rc);
    assert_int_equal(rc, 0);
    free(got);
    check_data(CTL_OUT_JSON, NULL, "{\"a\": [1]}", NULL, "{\n  \"a\": [\n    1\n  ]\n}\n");
    check_data(CTL_OUT_NAME, NULL, page, cols, "7\n9\n");
    check_data(CTL_OUT_NAME, NULL, "[{\"id\": \"ab\"}, {\"x\": 1}]", NULL, "ab\n");
    check_data(CTL_OUT_NAME, NULL, "{\"id\": 5, \"name\": \"p\"}", NULL, "5\n");
    static const struct ctl_col by_sha[] = {
        {"SIZE", "size", 0, 0}, {"SHA256", "sha256", 0, CTL_COL_ID}, {NULL, NULL, 0, 0}};
    check_data(CTL_OUT_NAME, NULL, "{\"sha256\": \"ff00\", \"size\": 3}", by_sha, "ff00\n");
}

static void
test_jsonpath(void **state)
{
    (void)state;
    check_data(CTL_OUT_JSONPATH, "{.items[*].id}", page, NULL, "7 9");
    check_data(CTL_OUT_JSONPATH, "{.items[0].name}{\"\\n\"}", page, NULL, "a\n");
    check_data(CTL_OUT_JSONPATH, "{.items[-1].id}", page, NULL, "9");
    check_data(CTL_OUT_JSONPATH, "{$.items[5].id}{.missing}{.next_cursor}", page, NULL, "null");
    check_data(CTL_OUT_JSONPATH, "{range .items[*]}{.id}{\"\\t\"}{.name}{\"\\n\"}{end}", page, NULL,
               "7\ta\n9\tb?\nc\n");
    check_data(CTL_OUT_JSONPATH, "ids: {range .items[*]}[{@.id}:{range .tags[*]}{@}{end}]{end}",
               page, NULL, "ids: [7:xy][9:]");
    check_data(CTL_OUT_JSONPATH, "{.items[0].tags}", page, NULL, "[\"x\",\"y\"]");
    check_data(CTL_OUT_JSONPATH, "{['items'][0]['name']}", page, NULL, "a");
    check_data(CTL_OUT_JSONPATH, "{.a.*}", "{\"a\": {\"x\": 1, \"y\": true}}", NULL, "1 true");
    check_data(CTL_OUT_JSONPATH, "{.}", "\"s\"", NULL, "s");
    check_data(CTL_OUT_JSONPATH, "{ .items[1].id }", page, NULL, "9");
}

static void
test_jsonpath_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{.items",     "{range .items[*]}{.id}",
        "{end}",       "{.items[?(@.id==7)]}",
        "{..id}",      "{.items[1:2]}",
        "{.a b}",      "{\"unterminated}",
        "{.items[x]}", "text }",
        "{\"\\q\"}",   "{.}.x}",
    };
    char err[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (ctl_jsonpath_check(bad[i], err, sizeof(err)) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
        int rc;
        char *got = data(CTL_OUT_JSONPATH, bad[i], page, NULL, &rc);
        assert_int_equal(rc, -1);
        free(got);
    }
    assert_int_equal(ctl_jsonpath_check("{range .items[*]}{.id}{end}", err, sizeof(err)), 0);
    assert_int_equal(ctl_jsonpath_check("plain text", err, sizeof(err)), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_utf8_aligned),
        cmocka_unit_test(test_table_wide_and_no_headers),
        cmocka_unit_test(test_table_fits_the_terminal),
        cmocka_unit_test(test_table_max_on_terminal_only),
        cmocka_unit_test(test_table_short_ids_and_drop),
        cmocka_unit_test(test_table_nested_cells),
        cmocka_unit_test(test_object_nested_readable),
        cmocka_unit_test(test_data_modes),
        cmocka_unit_test(test_jsonpath),
        cmocka_unit_test(test_jsonpath_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
