/* Unit tests of aegisctl's argument helpers: the time parser (ctl_time), "did you mean"
 * (ctl_suggest), the global options after the command (ctl_parse), the device ID prefix resolution
 * (ctl_device_resolve, with a fake request) and the options a usage line names (ctl_complete). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ctl_args.h"
#include "ctl_complete.h"
#include "ctl_suggest.h"
#include "ctl_time.h"

#include <stdio.h>
#include <string.h>

#define NOW ((int64_t)1795000000) /* 2026-11-18T11:06:40Z */

/* The API form of s parsed at NOW, or "ERR". */
static const char *
api_time(const char *s, char out[CTL_TIME_LEN])
{
    int64_t t;
    if (ctl_time_parse(s, NOW, &t, NULL) != 0 || ctl_time_format(t, out) != 0)
        snprintf(out, CTL_TIME_LEN, "ERR");
    return out;
}

static void
test_time_rfc3339_offsets_and_fractions(void **state)
{
    (void)state;
    char b[CTL_TIME_LEN];
    assert_string_equal(api_time("2026-11-22T10:00:00Z", b), "2026-11-22T10:00:00Z");
    assert_string_equal(api_time("2026-11-22t10:00:00z", b), "2026-11-22T10:00:00Z");
    assert_string_equal(api_time("2026-11-22 10:00:00Z", b), "2026-11-22T10:00:00Z");
    assert_string_equal(api_time("2026-11-22T11:00:00+01:00", b), "2026-11-22T10:00:00Z");
    assert_string_equal(api_time("2026-11-22T05:30:00-04:30", b), "2026-11-22T10:00:00Z");
    assert_string_equal(api_time("2026-11-22T10:00:00.999Z", b), "2026-11-22T10:00:00Z");
    assert_string_equal(api_time("2026-11-22T10:00:00.5+00:00", b), "2026-11-22T10:00:00Z");
    /* across a day, a month and a year */
    assert_string_equal(api_time("2027-01-01T00:30:00+02:00", b), "2026-12-31T22:30:00Z");
    assert_string_equal(api_time("2026-02-28T23:00:00-02:00", b), "2026-03-01T01:00:00Z");
}

static void
test_time_dates_and_durations(void **state)
{
    (void)state;
    char b[CTL_TIME_LEN];
    assert_string_equal(api_time("2026-11-22", b), "2026-11-22T00:00:00Z");
    assert_string_equal(api_time("2024-02-29", b), "2024-02-29T00:00:00Z");
    assert_string_equal(api_time("now", b), "2026-11-18T11:06:40Z");
    assert_string_equal(api_time("90s", b), "2026-11-18T11:05:10Z");
    assert_string_equal(api_time("15m", b), "2026-11-18T10:51:40Z");
    assert_string_equal(api_time("1h", b), "2026-11-18T10:06:40Z");
    assert_string_equal(api_time("1h30m", b), "2026-11-18T09:36:40Z");
    assert_string_equal(api_time("2d", b), "2026-11-16T11:06:40Z");
    assert_string_equal(api_time("1w", b), "2026-11-11T11:06:40Z");
    assert_string_equal(api_time("0s", b), "2026-11-18T11:06:40Z");
}

static void
test_time_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {"",
                                      "2026-11-22T10:00:00",
                                      "2026-11-22T10:00Z",
                                      "2026-02-30",
                                      "2026-13-01",
                                      "2026-11-22T24:00:00Z",
                                      "2026-11-22T10:00:00.Z",
                                      "2026-11-22T10:00:00+1:00",
                                      "2026-11-22T10:00:00+01:00x",
                                      "2026-11-22X10:00:00Z",
                                      "1y",
                                      "90",
                                      "h",
                                      "-1h",
                                      "1h-",
                                      "99999999999999999999s",
                                      "1000000w",
                                      "26-11-22",
                                      "2026-1-5",
                                      "2026-11-22T10:00:60Z",
                                      NULL};
    char b[CTL_TIME_LEN];
    for (size_t i = 0; bad[i] != NULL; i++) {
        const char *why = NULL;
        int64_t t;
        if (strcmp(api_time(bad[i], b), "ERR") != 0)
            fail_msg("accepted '%s' as %s", bad[i], b);
        assert_int_equal(ctl_time_parse(bad[i], NOW, &t, &why), -1);
        assert_non_null(why);
    }
}

static void
test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(ctl_edit_distance("list", "list"), 0);
    assert_int_equal(ctl_edit_distance("lst", "list"), 1);
    assert_int_equal(ctl_edit_distance("devcies", "devices"), 1); /* a transposition */
    assert_int_equal(ctl_edit_distance("", "abc"), 3);
    assert_int_equal(ctl_edit_distance("kitten", "sitting"), 3);
    char longer[CTL_SUGGEST_MAX + 2];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_true(ctl_edit_distance(longer, "a") > 100);
}

static const char *
best_of(const char *typed, const char *const *cands)
{
    struct ctl_suggest s;
    ctl_suggest_init(&s, typed);
    for (size_t i = 0; cands[i] != NULL; i++)
        ctl_suggest_add(&s, cands[i]);
    return ctl_suggest_best(&s);
}

static void
test_did_you_mean(void **state)
{
    (void)state;
    static const char *const groups[] = {"devices", "deployments", "products", "images",
                                         "devices", "tenant",      "tokens",   NULL};
    static const char *const subs[] = {"import", "list", "show", "claim", "move", "block", NULL};
    static const char *const opts[] = {"--limit", "--cursor", "--all", "--group", "--state", NULL};
    assert_string_equal(best_of("devcies", groups), "devices");
    assert_string_equal(best_of("device", groups), "devices");
    assert_string_equal(best_of("prodcts", groups), "products");
    assert_string_equal(best_of("dev", groups), "devices"); /* a prefix of one only */
    assert_null(best_of("de", groups));                     /* of two */
    assert_null(best_of("xyzzy", groups));
    assert_string_equal(best_of("lst", subs), "list");
    assert_string_equal(best_of("shwo", subs), "show");
    assert_null(best_of("frobnicate", subs));
    assert_string_equal(best_of("--limt", opts), "--limit");
    assert_string_equal(best_of("--stat", opts), "--state");
    assert_null(best_of("--verbose", opts));
}

/* --- ctl_parse and the global options --- */

static void
test_global_options_after_the_command(void **state)
{
    (void)state;
    static struct ctl_cmd cmd = {"devices", "list", NULL, 1, "[--limit N]", "list", "", NULL};
    struct ctl c;
    const char *limit = NULL, *pos[1] = {NULL};
    const struct ctl_opt opts[] = {{"--limit", CTL_OPT_STR, &limit, NULL}, {NULL, 0, NULL, NULL}};
    char *argv[] = {"--server",     "https://x",       "--limit", "5",        "-o", "wide",
                    "--no-headers", "--token-file=/t", "pos",     "--cacert", "/ca"};
    memset(&c, 0, sizeof(c));
    c.cmd = &cmd;
    int n = 0;
    assert_int_equal(ctl_parse(&c, 11, argv, opts, pos, 0, 1, &n), 0);
    assert_string_equal(c.server, "https://x");
    assert_string_equal(c.token_file, "/t");
    assert_string_equal(c.cacert, "/ca");
    assert_string_equal(limit, "5");
    assert_int_equal(c.output, CTL_OUT_WIDE);
    assert_int_equal(c.no_headers, 1);
    assert_int_equal(c.api_explicit, 1);
    assert_int_equal(n, 1);
    assert_string_equal(pos[0], "pos");

    /* the forms of -o, and --json */
    char *o1[] = {"-ojsonpath={.items[*].id}"};
    memset(&c, 0, sizeof(c));
    c.cmd = &cmd;
    assert_int_equal(ctl_parse(&c, 1, o1, NULL, NULL, 0, 0, NULL), 0);
    assert_int_equal(c.output, CTL_OUT_JSONPATH);
    assert_string_equal(c.jsonpath, "{.items[*].id}");
    char *o2[] = {"--output=name"};
    memset(&c, 0, sizeof(c));
    c.cmd = &cmd;
    assert_int_equal(ctl_parse(&c, 1, o2, NULL, NULL, 0, 0, NULL), 0);
    assert_int_equal(c.output, CTL_OUT_NAME);
    char *o3[] = {"--json"};
    memset(&c, 0, sizeof(c));
    c.cmd = &cmd;
    assert_int_equal(ctl_parse(&c, 1, o3, NULL, NULL, 0, 0, NULL), 0);
    assert_int_equal(c.output, CTL_OUT_JSON);
    assert_int_equal(c.json, 1);
}

static void
test_global_option_errors(void **state)
{
    (void)state;
    static struct ctl_cmd cmd = {"devices", "list", NULL, 1, "", "list", "", NULL};
    char *twice[] = {"--server", "https://a", "--server", "https://b"};
    char *bad_o[] = {"-o", "yaml"};
    char *o_json[] = {"-o", "wide", "--json"};
    char *no_val[] = {"--cacert"};
    char *flag_val[] = {"--no-headers=1"};
    char *empty_path[] = {"-o", "jsonpath="};
    char *bad_path[] = {"-o", "jsonpath={"};
    char *filter_path[] = {"--output=jsonpath={.items[?(@.id==1)]}"};
    struct {
        char **argv;
        int argc;
    } cases[] = {{twice, 4},    {bad_o, 2},      {o_json, 3},   {no_val, 1},
                 {flag_val, 1}, {empty_path, 2}, {bad_path, 2}, {filter_path, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctl c;
        memset(&c, 0, sizeof(c));
        c.cmd = &cmd;
        assert_int_equal(ctl_parse(&c, cases[i].argc, cases[i].argv, NULL, NULL, 0, 0, NULL), -1);
    }
}

static void
test_command_option_wins(void **state)
{
    (void)state;
    /* refvals add has its own --version, failures buckets too: not the global one */
    static struct ctl_cmd cmd = {"x", "y", NULL, 1, "[--server S]", "x", "", NULL};
    struct ctl c;
    const char *server = NULL;
    const struct ctl_opt opts[] = {{"--server", CTL_OPT_STR, &server, NULL}, {NULL, 0, NULL, NULL}};
    char *argv[] = {"--server", "mine"};
    memset(&c, 0, sizeof(c));
    c.cmd = &cmd;
    assert_int_equal(ctl_parse(&c, 2, argv, opts, NULL, 0, 0, NULL), 0);
    assert_string_equal(server, "mine");
    assert_null(c.server);
    assert_int_equal(c.api_explicit, 0);
}

/* --- device prefixes --- */

static const char *const ids[] = {
    "abcd000000000000000000000000000000000000000000000000000000000001",
    "abcd000000000000000000000000000000000000000000000000000000000002",
    "abce000000000000000000000000000000000000000000000000000000000003",
};
static char last_prefix[65];
static int fetches;

/* A server's GET /v1/devices?id_prefix=P&limit=2 over ids. */
static int
fake_fetch(struct ctl *c, const char *prefix, json_t **page)
{
    (void)c;
    fetches++;
    snprintf(last_prefix, sizeof(last_prefix), "%s", prefix);
    json_t *items = json_array();
    size_t n = 0;
    int more = 0;
    for (size_t i = 0; i < 3; i++) {
        if (strncmp(ids[i], prefix, strlen(prefix)) != 0)
            continue;
        if (n == 2) {
            more = 1;
            break;
        }
        json_array_append_new(items, json_pack("{s:s}", "id", ids[i]));
        n++;
    }
    *page = json_pack("{s:o, s:s?}", "items", items, "next_cursor", more ? "c" : NULL);
    return CTL_EXIT_OK;
}

static int
fake_bad_fetch(struct ctl *c, const char *prefix, json_t **page)
{
    (void)c;
    (void)prefix;
    *page = json_pack("{s:[{s:s}], s:n}", "items", "id", ids[2], "next_cursor");
    return CTL_EXIT_OK;
}

static int
fake_down(struct ctl *c, const char *prefix, json_t **page)
{
    (void)c;
    (void)prefix;
    *page = NULL;
    return CTL_EXIT_CONN;
}

static void
test_device_prefix(void **state)
{
    (void)state;
    static struct ctl_cmd cmd = {"devices", "show", NULL, 1, "ID", "show", "", NULL};
    struct ctl c;
    char out[65];
    memset(&c, 0, sizeof(c));
    c.cmd = &cmd;
    fetches = 0;
    /* a whole ID is used as it is, lower-cased, without a request */
    assert_int_equal(
        ctl_device_resolve(&c, "ABCD000000000000000000000000000000000000000000000000000000000009",
                           fake_fetch, out),
        CTL_EXIT_OK);
    assert_string_equal(out, "abcd000000000000000000000000000000000000000000000000000000000009");
    assert_int_equal(fetches, 0);
    /* one match */
    assert_int_equal(ctl_device_resolve(&c, "ABCE", fake_fetch, out), CTL_EXIT_OK);
    assert_string_equal(out, ids[2]);
    assert_string_equal(last_prefix, "abce");
    char p63[64];
    snprintf(p63, sizeof(p63), "%.63s", ids[2]);
    assert_int_equal(ctl_device_resolve(&c, p63, fake_fetch, out), CTL_EXIT_OK);
    assert_string_equal(out, ids[2]);
    snprintf(p63, sizeof(p63), "%.63s", ids[1]); /* ids[0] and ids[1] differ in the last one */
    assert_int_equal(ctl_device_resolve(&c, p63, fake_fetch, out), CTL_EXIT_USAGE);
    /* several, none */
    assert_int_equal(ctl_device_resolve(&c, "abcd", fake_fetch, out), CTL_EXIT_USAGE);
    assert_int_equal(ctl_device_resolve(&c, "abc", fake_fetch, out), CTL_EXIT_USAGE); /* short */
    assert_int_equal(ctl_device_resolve(&c, "ffff", fake_fetch, out), CTL_EXIT_NOT_FOUND);
    /* malformed: no request */
    fetches = 0;
    assert_int_equal(ctl_device_resolve(&c, "abcg", fake_fetch, out), CTL_EXIT_USAGE);
    assert_int_equal(ctl_device_resolve(&c, "", fake_fetch, out), CTL_EXIT_USAGE);
    assert_int_equal(
        ctl_device_resolve(&c, "abcd0000000000000000000000000000000000000000000000000000000000011",
                           fake_fetch, out),
        CTL_EXIT_USAGE);
    assert_int_equal(fetches, 0);
    /* a server that answers a device of another prefix, or none */
    assert_int_equal(ctl_device_resolve(&c, "abcd", fake_bad_fetch, out), CTL_EXIT_API);
    assert_int_equal(ctl_device_resolve(&c, "abcd", fake_down, out), CTL_EXIT_CONN);
}

/* --- options named in usage lines (completion) --- */

static void
collect(void *arg, const char *opt, size_t len)
{
    char *buf = arg;
    size_t l = strlen(buf);
    snprintf(buf + l, 256 - l, "%s%.*s", l ? " " : "", (int)len, opt);
}

/* A CTL_OPT_MULTI option is repeatable, its values kept whole (commas included), at most
 * CTL_OPT_MULTI_MAX of them; a CTL_OPT_STR option given twice stays a usage error. */
static void
test_repeatable_option(void **state)
{
    (void)state;
    static struct ctl_cmd cmd = {"devices", "list", NULL, 1, "", "list", "", NULL};
    const char *tags[CTL_OPT_MULTI_MAX] = {NULL}, *state_v = NULL;
    int ntags = 0;
    struct ctl_opt opts[] = {{"--tag", CTL_OPT_MULTI, tags, &ntags},
                             {"--state", CTL_OPT_STR, &state_v, NULL},
                             {NULL, 0, NULL, NULL}};
    struct ctl c;
    char *two[] = {"--tag", "x=a,b", "--state", "active", "--tag=site=lyon"};
    memset(&c, 0, sizeof(c));
    c.cmd = &cmd;
    assert_int_equal(ctl_parse(&c, 5, two, opts, NULL, 0, 0, NULL), 0);
    assert_int_equal(ntags, 2);
    assert_string_equal(tags[0], "x=a,b");
    assert_string_equal(tags[1], "site=lyon");
    char *many[2 * (CTL_OPT_MULTI_MAX + 1)];
    for (int i = 0; i < CTL_OPT_MULTI_MAX + 1; i++) {
        many[2 * i] = "--tag";
        many[2 * i + 1] = "k=v";
    }
    ntags = 0;
    assert_int_equal(ctl_parse(&c, 2 * CTL_OPT_MULTI_MAX, many, opts, NULL, 0, 0, NULL), 0);
    assert_int_equal(ntags, CTL_OPT_MULTI_MAX);
    ntags = 0;
    assert_int_equal(ctl_parse(&c, 2 * (CTL_OPT_MULTI_MAX + 1), many, opts, NULL, 0, 0, NULL), -1);
    char *state_twice[] = {"--state", "active", "--state", "blocked"};
    state_v = NULL;
    assert_int_equal(ctl_parse(&c, 4, state_twice, opts, NULL, 0, 0, NULL), -1);
}

static void
test_usage_options(void **state)
{
    (void)state;
    char buf[256] = "";
    assert_int_equal(
        ctl_usage_options("FILE [--no-claim] [--group ID] [--batch-size N]", collect, buf), 3);
    assert_string_equal(buf, "--no-claim --group --batch-size");
    buf[0] = '\0';
    assert_int_equal(ctl_usage_options("ID --group ID|none [--group-x] --group", collect, buf), 2);
    assert_string_equal(buf, "--group --group-x");
    buf[0] = '\0';
    assert_int_equal(ctl_usage_options("", collect, buf), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_rfc3339_offsets_and_fractions),
        cmocka_unit_test(test_time_dates_and_durations),
        cmocka_unit_test(test_time_rejects),
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_did_you_mean),
        cmocka_unit_test(test_global_options_after_the_command),
        cmocka_unit_test(test_global_option_errors),
        cmocka_unit_test(test_command_option_wins),
        cmocka_unit_test(test_device_prefix),
        cmocka_unit_test(test_usage_options),
        cmocka_unit_test(test_repeatable_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
