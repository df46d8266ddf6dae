/* The operator's metrics (server/metrics.h "the operator's series", lib/lathist.h) and the
 * configuration keys of issue 14's operations work (server/config.h metrics_listen,
 * config_next_change): the latency histogram's buckets, the text of the new families (checked by
 * promtool on a live daemon in tests/integration/test_metrics.py), the CA expiry set replaced
 * whole, the collector's place in a scrape, and metrics_listen's forms. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "lathist.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_lathist_buckets_are_cumulative(void **state)
{
    (void)state;
    struct lathist h;
    struct lathist_snap sn;
    memset(&h, 0, sizeof(h));
    lathist_observe(&h, 50000);          /* 50 µs: the first bucket */
    lathist_observe(&h, 3000000);        /* 3 ms: le 0.005 */
    lathist_observe(&h, 20000000000ULL); /* 20 s: above the last bound, +Inf only */
    lathist_read(&h, &sn);
    assert_int_equal(sn.count, 3);
    assert_int_equal(sn.cum[0], 1);
    assert_int_equal(sn.cum[4], 1); /* le 0.0025 */
    assert_int_equal(sn.cum[5], 2); /* le 0.005 */
    assert_int_equal(sn.cum[LATHIST_BUCKETS - 1], 2);
    assert_int_equal(sn.sum_ns, 50000 + 3000000 + 20000000000ULL);
    for (int i = 1; i < LATHIST_BUCKETS; i++)
        assert_true(lathist_bound_ns(i) > lathist_bound_ns(i - 1));
}

static const char *const labels[] = {"/healthz"};
static const char *const methods[] = {"GET"};

static struct lathist collected;

static void
collect(void *ctx, struct metrics_out *out)
{
    (*(int *)ctx)++;
    metrics_family(out, "test_latency_seconds", "histogram", "A test histogram.");
    metrics_histogram(out, "test_latency_seconds", "", &collected);
    metrics_histogram(out, "test_latency_seconds", "kind=\"x\"", &collected);
}

/* The scrape's text, which must hold each of want. */
static char *
render_holding(struct metrics *m, const char *const *want, size_t n)
{
    size_t len = 0;
    char *text = metrics_render(m, 0, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    for (size_t i = 0; i < n; i++) {
        if (strstr(text, want[i]) == NULL)
            fail_msg("missing %s in:\n%s", want[i], text);
    }
    return text;
}

static void
test_operator_series(void **state)
{
    (void)state;
    struct metrics *m = metrics_new(1, labels, methods);
    int calls = 0;
    int64_t now = util_now(), states[METRICS_DEVICE_STATES] = {4, 5, 6};
    int64_t tenants[] = {7, 9}, not_after[] = {now + 1000, now - 10};
    assert_non_null(m);
    memset(&collected, 0, sizeof(collected));
    lathist_observe(&collected, 2000000);
    metrics_set_collector(m, collect, &calls);
    metrics_cert_issued(m, METRICS_CERT_DEVICE);
    metrics_cert_issued(m, METRICS_CERT_DEVICE);
    metrics_cert_issued(m, METRICS_CERT_CA);
    metrics_tls_cert(m, now + 86400);
    metrics_tls_reload(m, 1);
    metrics_tls_reload(m, 0);
    metrics_tls_reload(m, 0);
    metrics_devices(m, states);
    metrics_cron_step(m, 0, "purge_nonces");
    metrics_cron_step(m, 1, "checkpoint");
    metrics_cron_run(m, 0, 1, 1700000000);
    metrics_cron_run(m, 1, 0, 1700000001);
    assert_int_equal(metrics_ca_expiry(m, tenants, not_after, 2), 0);
    assert_false(metrics_draining(m));
    metrics_set_draining(m);
    assert_true(metrics_draining(m));
    const char *want[] = {
        "aegis_build_info{version=\"",
        "aegis_draining 1\n",
        "aegis_certificates_issued_total{kind=\"device\"} 2\n",
        "aegis_certificates_issued_total{kind=\"ca\"} 1\n",
        "aegis_tls_reloads_total{result=\"ok\"} 1\n",
        "aegis_tls_reloads_total{result=\"error\"} 2\n",
        "aegis_ca_expiry_seconds{tenant=\"9\"} -",
        "aegis_devices{state=\"unclaimed\"} 4\n",
        "aegis_devices{state=\"blocked\"} 6\n",
        "aegis_cron_last_success_timestamp_seconds{step=\"purge_nonces\"} 1700000000\n",
        "aegis_cron_last_success_timestamp_seconds{step=\"checkpoint\"} 0\n",
        "aegis_cron_failures_total{step=\"checkpoint\"} 1\n",
        "# TYPE test_latency_seconds histogram\n",
        "test_latency_seconds_bucket{le=\"0.001\"} 0\n",
        "test_latency_seconds_bucket{le=\"0.0025\"} 1\n",
        "test_latency_seconds_bucket{le=\"+Inf\"} 1\n",
        "test_latency_seconds_sum 0.002000000\n",
        "test_latency_seconds_count 1\n",
        "test_latency_seconds_bucket{kind=\"x\",le=\"+Inf\"} 1\n",
        "test_latency_seconds_count{kind=\"x\"} 1\n",
    };
    char *text = render_holding(m, want, sizeof(want) / sizeof(want[0]));
    long long left = -1;
    const char *tls = strstr(text, "\naegis_tls_cert_expiry_seconds ");
    assert_non_null(tls);
    assert_int_equal(sscanf(tls + 1, "aegis_tls_cert_expiry_seconds %lld", &left), 1);
    assert_true(left > 86000 && left <= 86400);
    assert_int_equal(calls, 1);
    free(text);

    /* A new CA set replaces the old one whole. */
    assert_int_equal(metrics_ca_expiry(m, tenants, not_after, 1), 0);
    text = render_holding(m, want, 1);
    assert_non_null(strstr(text, "aegis_ca_expiry_seconds{tenant=\"7\"}"));
    assert_null(strstr(text, "aegis_ca_expiry_seconds{tenant=\"9\"}"));
    free(text);
    assert_int_equal(metrics_ca_expiry(m, NULL, NULL, 0), 0);
    metrics_free(m);
}

static void
test_metrics_listen_forms(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(c.metrics_port, -1);
    assert_int_equal(config_set(&c, "metrics_listen", "9100", "t", err, sizeof(err)), 0);
    assert_string_equal(c.metrics_host, "127.0.0.1");
    assert_int_equal(c.metrics_port, 9100);
    assert_int_equal(config_set(&c, "metrics_listen", "[::1]:9200", "t", err, sizeof(err)), 0);
    assert_string_equal(c.metrics_host, "::1");
    assert_int_equal(c.metrics_port, 9200);
    assert_int_equal(config_set(&c, "metrics_listen", "0.0.0.0:9300", "t", err, sizeof(err)), 0);
    assert_string_equal(c.metrics_host, "0.0.0.0");
    assert_int_equal(config_set(&c, "metrics_listen", "", "t", err, sizeof(err)), 0);
    assert_int_equal(c.metrics_port, -1);
    assert_int_equal(config_set(&c, "metrics_listen", "host:", "t", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "metrics_listen"));
    assert_int_equal(config_set(&c, "metrics_listen", "70000", "t", err, sizeof(err)), -1);
}

static void
test_next_change_names_each_changed_key(void **state)
{
    (void)state;
    struct config a, b;
    char err[256];
    size_t it = 0;
    config_defaults(&a);
    config_defaults(&b);
    assert_null(config_next_change(&a, &b, &it));
    it = 0;
    assert_int_equal(config_set(&b, "log_level", "warn", "t", err, sizeof(err)), 0);
    assert_int_equal(config_set(&b, "max_connections", "77", "t", err, sizeof(err)), 0);
    assert_int_equal(config_set(&b, "listen", "127.0.0.1:9443", "t", err, sizeof(err)), 0);
    assert_int_equal(config_set(&b, "tls_cert", "/x/server.crt", "t", err, sizeof(err)), 0);
    assert_int_equal(config_set(&b, "metrics_listen", "9100", "t", err, sizeof(err)), 0);
    const char *want[] = {"listen", "tls_cert", "log_level", "max_connections", "metrics_listen"};
    const char *got[8];
    size_t n = 0;
    for (const char *k; n < 8 && (k = config_next_change(&a, &b, &it)) != NULL;)
        got[n++] = k;
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], want[i]);
    assert_true(config_key_reloadable("log_level"));
    assert_false(config_key_reloadable("max_connections"));
    assert_false(config_key_reloadable("tls_cert"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lathist_buckets_are_cumulative),
        cmocka_unit_test(test_operator_series),
        cmocka_unit_test(test_metrics_listen_forms),
        cmocka_unit_test(test_next_change_names_each_changed_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
