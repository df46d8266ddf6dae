/* Unit tests for server/config.c: defaults, the "key = value" file format, refusals with file:line,
 * flags through config_set, derived paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[64];
static char cfg_path[128];

static int
group_setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/aegis-test-config-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL)
        return -1;
    snprintf(cfg_path, sizeof(cfg_path), "%s/aegisd.conf", tmp_dir);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    unlink(cfg_path);
    return rmdir(tmp_dir);
}

/* Writes text to the test's config file and loads it on top of the defaults into c. */
static int
load(struct config *c, const char *text, char *err, size_t errlen)
{
    assert_int_equal(util_write_file(cfg_path, text, strlen(text), 0600), 0);
    config_defaults(c);
    err[0] = '\0';
    return config_load_file(c, cfg_path, err, errlen);
}

/* The error names the file and the line. */
static void
assert_where(const char *err, int line)
{
    char want[160];
    snprintf(want, sizeof(want), "%s:%d:", cfg_path, line);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not name '%s'", err, want);
}

static void
test_defaults(void **state)
{
    (void)state;
    struct config c;
    memset(&c, 0x5a, sizeof(c));
    config_defaults(&c);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8443);
    assert_string_equal(c.data_dir, "var");
    assert_string_equal(c.database, "");
    assert_string_equal(c.pki_dir, "");
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.log_file, "");
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.max_connections, 1024);
    assert_int_equal(c.connection_timeout_s, 30);
    assert_int_equal(c.max_body_bytes, 1024 * 1024);
    assert_int_equal(c.import_max_bytes, 8 * 1024 * 1024);
    assert_int_equal(c.drain_timeout_s, 10);
    assert_int_equal(c.per_ip_connections, 64);
    assert_int_equal(c.cert_lifetime_s, 86400);
    assert_int_equal(c.nonce_ttl_s, 60);
}

static void
test_good_file(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    const char *text = "# Aegis daemon\n"
                       "\n"
                       "listen = 0.0.0.0:9443\n"
                       "   data_dir   =   /srv/aegis   \n"
                       "\t# indented comment\n"
                       "log_level = debug\n"
                       "log_file = \"/var/log/aegis d.log\"\n"
                       "threads = 8\n"
                       "max_connections = 5000\n"
                       "connection_timeout = 15\n"
                       "max_body_bytes = 2048\n"
                       "import_max_bytes = 1048576\n"
                       "drain_timeout = 0\n"
                       "per_ip_connections = 32\n"
                       "cert_lifetime = 3600\n"
                       "nonce_ttl = 120\n"
                       "   \n";
    assert_int_equal(load(&c, text, err, sizeof(err)), 0);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9443);
    assert_string_equal(c.data_dir, "/srv/aegis");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.log_file, "/var/log/aegis d.log");
    assert_int_equal(c.threads, 8);
    assert_int_equal(c.max_connections, 5000);
    assert_int_equal(c.connection_timeout_s, 15);
    assert_int_equal(c.max_body_bytes, 2048);
    assert_int_equal(c.import_max_bytes, 1048576);
    assert_int_equal(c.drain_timeout_s, 0);
    assert_int_equal(c.per_ip_connections, 32);
    assert_int_equal(c.cert_lifetime_s, 3600);
    assert_int_equal(c.nonce_ttl_s, 120);
}

static void
test_comments_and_blank_only(void **state)
{
    (void)state;
    struct config c, d;
    char err[512];
    assert_int_equal(
        load(&c, "# nothing here\n\n   \n\t\n# listen = 1.2.3.4:1\n", err, sizeof(err)), 0);
    config_defaults(&d);
    assert_memory_equal(&c, &d, sizeof(c));
    /* An empty file, and a last line without a newline. */
    assert_int_equal(load(&c, "", err, sizeof(err)), 0);
    assert_int_equal(load(&c, "threads = 3", err, sizeof(err)), 0);
    assert_int_equal(c.threads, 3);
}

static void
test_quoted_values(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    assert_int_equal(load(&c, "data_dir = \"/with space/x\"\npki_dir=\"p\"\nthreads = \"4\"\n", err,
                          sizeof(err)),
                     0);
    assert_string_equal(c.data_dir, "/with space/x");
    assert_string_equal(c.pki_dir, "p");
    assert_int_equal(c.threads, 4);
    /* A value that is just "" is empty, which a string key refuses. */
    assert_int_equal(load(&c, "data_dir = \"\"\n", err, sizeof(err)), -1);
    assert_where(err, 1);
    /* A lone quote is kept as is. */
    assert_int_equal(load(&c, "data_dir = \"\n", err, sizeof(err)), 0);
    assert_string_equal(c.data_dir, "\"");
}

static void
test_unknown_key(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    assert_int_equal(load(&c, "threads = 2\n\n# c\nlisten_port = 80\n", err, sizeof(err)), -1);
    assert_where(err, 4);
    assert_non_null(strstr(err, "unknown key"));
    assert_non_null(strstr(err, "listen_port"));
    /* Keys are case-sensitive. */
    assert_int_equal(load(&c, "Threads = 2\n", err, sizeof(err)), -1);
    assert_where(err, 1);
}

static void
test_bad_integers(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    static const char *const bad[] = {
        "threads = abc\n",
        "threads = 12abc\n",
        "threads = \n",
        "threads = 1.5\n",
        "threads = +4\n",
        "threads = 0x10\n",
        "threads = 257\n",
        "threads = -1\n",
        "max_connections = 0\n",
        "max_connections = 100001\n",
        "max_body_bytes = 1023\n",
        "cert_lifetime = 3599\n",
        "cert_lifetime = 604801\n",
        "nonce_ttl = 4\n",
        "connection_timeout = 99999999999999999999999\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (load(&c, bad[i], err, sizeof(err)) != -1)
            fail_msg("accepted '%s'", bad[i]);
        assert_where(err, 1);
    }
    /* The message names the key and the range. */
    assert_int_equal(load(&c, "# x\nthreads = 999\n", err, sizeof(err)), -1);
    assert_where(err, 2);
    assert_non_null(strstr(err, "threads"));
    assert_non_null(strstr(err, "0 to 256"));
    /* Bounds themselves are accepted. */
    assert_int_equal(
        load(&c, "threads = 256\ncert_lifetime = 604800\nnonce_ttl = 5\n", err, sizeof(err)), 0);
    assert_int_equal(c.threads, 256);
    assert_int_equal(c.cert_lifetime_s, 604800);
}

static void
test_listen(void **state)
{
    (void)state;
    struct config c;
    char err[512], host[256];
    int port = -1;

    assert_int_equal(load(&c, "listen = [::1]:8443\n", err, sizeof(err)), 0);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 8443);
    assert_int_equal(load(&c, "listen = localhost:0\n", err, sizeof(err)), 0);
    assert_string_equal(c.listen_host, "localhost");
    assert_int_equal(c.listen_port, 0);

    static const char *const bad[] = {
        "listen = 8443\n",       "listen = :8443\n",   "listen = host:\n",
        "listen = host:65536\n", "listen = host:-1\n", "listen = host:80x\n",
        "listen = [::1]8443\n",  "listen = [::1\n",    "listen = []:80\n",
        "listen = host:port\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (load(&c, bad[i], err, sizeof(err)) != -1)
            fail_msg("accepted '%s'", bad[i]);
        assert_where(err, 1);
        assert_non_null(strstr(err, "listen"));
    }

    assert_int_equal(config_parse_listen("10.0.0.1:443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.0.0.1");
    assert_int_equal(port, 443);
    assert_int_equal(config_parse_listen("[fe80::1]:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 65535);
    /* A host that does not fit the buffer. */
    assert_int_equal(config_parse_listen("abcdefgh:1", host, 8, &port), -1);
}

static void
test_bad_lines(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    assert_int_equal(load(&c, "threads = 2\nthreads\n", err, sizeof(err)), -1);
    assert_where(err, 2);
    assert_int_equal(load(&c, "log_level = loud\n", err, sizeof(err)), -1);
    assert_where(err, 1);
    assert_non_null(strstr(err, "log_level"));

    /* A line longer than the reader's buffer. */
    size_t n = 4096;
    char *text = malloc(n + 32);
    assert_non_null(text);
    memcpy(text, "data_dir = ", 11);
    memset(text + 11, 'a', n);
    memcpy(text + 11 + n, "\n", 2);
    assert_int_equal(load(&c, text, err, sizeof(err)), -1);
    assert_where(err, 1);
    free(text);

    /* A string longer than its field. */
    text = malloc(CONFIG_PATH_MAX + 32);
    assert_non_null(text);
    memcpy(text, "data_dir = ", 11);
    memset(text + 11, 'b', CONFIG_PATH_MAX);
    memcpy(text + 11 + CONFIG_PATH_MAX, "\n", 2);
    assert_int_equal(load(&c, text, err, sizeof(err)), -1);
    assert_where(err, 1);
    free(text);
}

static void
test_missing_file(void **state)
{
    (void)state;
    struct config c;
    char err[512], path[160];
    snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmp_dir);
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
}

static void
test_config_set(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "listen", "127.0.0.1:0", "--listen", err, sizeof(err)), 0);
    assert_int_equal(c.listen_port, 0);
    assert_int_equal(config_set(&c, "threads", "nope", "--threads", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--threads"));
    assert_int_equal(config_set(&c, "bogus", "1", "--bogus", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--bogus"));
    /* A later file overrides earlier values and leaves the rest. */
    assert_int_equal(config_set(&c, "threads", "2", "--threads", err, sizeof(err)), 0);
    assert_int_equal(util_write_file(cfg_path, "nonce_ttl = 30\n", 15, 0600), 0);
    assert_int_equal(config_load_file(&c, cfg_path, err, sizeof(err)), 0);
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.nonce_ttl_s, 30);
}

static void
test_event_loop(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(c.event_loop_epoll, 1); /* epoll by default */
    assert_int_equal(config_set(&c, "event_loop", "epoll", "f:1", err, sizeof(err)), 0);
    assert_int_equal(c.event_loop_epoll, 1);
    assert_int_equal(config_set(&c, "event_loop", "poll", "f:2", err, sizeof(err)), 0);
    assert_int_equal(c.event_loop_epoll, 0);
    assert_int_equal(config_set(&c, "event_loop", "select", "f:3", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "f:3"));
    assert_non_null(strstr(err, "poll or epoll"));
}

static void
test_finalize(void **state)
{
    (void)state;
    struct config c;
    char err[512];

    config_defaults(&c);
    assert_int_equal(config_set(&c, "data_dir", "/srv/aegis", "t", err, sizeof(err)), 0);
    assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
    assert_string_equal(c.database, "/srv/aegis/aegis.db");
    assert_string_equal(c.pki_dir, "/srv/aegis/pki");
    assert_string_equal(c.tls_cert, "/srv/aegis/pki/server.crt");
    assert_string_equal(c.tls_key, "/srv/aegis/pki/server.key");

    /* Explicit settings win; tls_* follow an explicit pki_dir. */
    config_defaults(&c);
    assert_int_equal(config_set(&c, "database", "/db/a.db", "t", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "pki_dir", "/etc/aegis/pki", "t", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "tls_key", "/k/server.key", "t", err, sizeof(err)), 0);
    assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
    assert_string_equal(c.database, "/db/a.db");
    assert_string_equal(c.pki_dir, "/etc/aegis/pki");
    assert_string_equal(c.tls_cert, "/etc/aegis/pki/server.crt");
    assert_string_equal(c.tls_key, "/k/server.key");

    /* Defaults: relative to "var". */
    config_defaults(&c);
    assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
    assert_string_equal(c.database, "var/aegis.db");
    assert_string_equal(c.tls_cert, "var/pki/server.crt");

    /* A data_dir so long that the derived paths do not fit. */
    char longdir[CONFIG_PATH_MAX];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[sizeof(longdir) - 1] = '\0';
    config_defaults(&c);
    assert_int_equal(config_set(&c, "data_dir", longdir, "t", err, sizeof(err)), 0);
    assert_int_equal(config_finalize(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too long"));
}

static void
test_trailing_comments(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    assert_int_equal(load(&c,
                          "threads = 3 # three\nlog_level = debug#no blank\n"
                          "data_dir = \"/d#1\"  # quoted: '#' is kept\npki_dir = \"p\"#c\n"
                          "database = /x/a.db\t# tab\n",
                          err, sizeof(err)),
                     0);
    assert_int_equal(c.threads, 3);
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.data_dir, "/d#1");
    assert_string_equal(c.pki_dir, "p");
    assert_string_equal(c.database, "/x/a.db");
    /* Text after a quoted value's closing quote. */
    assert_int_equal(load(&c, "threads = 1\ndata_dir = \"a\" b\n", err, sizeof(err)), -1);
    assert_where(err, 2);
    /* A value that is only a comment is empty. */
    assert_int_equal(load(&c, "data_dir = # none\n", err, sizeof(err)), -1);
    assert_where(err, 1);
}

static void
test_duplicate_key(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    assert_int_equal(
        load(&c, "threads = 2\n# x\nlisten = 127.0.0.1:1\nthreads = 2\n", err, sizeof(err)), -1);
    assert_where(err, 4);
    assert_non_null(strstr(err, "duplicate key 'threads' (first set on line 1)"));
    /* Flags after the file are not duplicates. */
    assert_int_equal(load(&c, "threads = 2\n", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "threads", "5", "--threads", err, sizeof(err)), 0);
    assert_int_equal(c.threads, 5);
}

static void
test_log_file_and_format(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    /* Empty log_file: stderr, as documented; bare or quoted. */
    assert_int_equal(load(&c, "log_file =\n", err, sizeof(err)), 0);
    assert_string_equal(c.log_file, "");
    assert_int_equal(load(&c, "log_file = \"\"\n", err, sizeof(err)), 0);
    assert_string_equal(c.log_file, "");
    assert_int_equal(load(&c, "log_file = /var/log/a.log\n", err, sizeof(err)), 0);
    assert_string_equal(c.log_file, "/var/log/a.log");
    assert_string_equal(c.log_format, "text");
    assert_int_equal(load(&c, "log_format = json\n", err, sizeof(err)), 0);
    assert_string_equal(c.log_format, "json");
    assert_int_equal(load(&c, "log_format = xml\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "log_format: expected text or json"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_comments_and_blank_only),
        cmocka_unit_test(test_quoted_values),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_integers),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_config_set),
        cmocka_unit_test(test_event_loop),
        cmocka_unit_test(test_finalize),
        cmocka_unit_test(test_trailing_comments),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_log_file_and_format),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
