/* Unit tests of signer/sg_policy.c, what the signer signs whatever aegisd asks: the device leaf
 * request and the profile made from it, the per-tenant issuance buckets (and their bounded table),
 * the online TUF roles' metadata, the TLS data shapes, and the CA rollover window. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sg_policy.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEV "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NOW 1800000000LL

static const struct sg_policy_opts opts = {
    .max_lifetime_s = 90 * 86400, .issue_rate = 2, .issue_burst = 5};

static struct signer_leaf_req
good_req(void)
{
    return (struct signer_leaf_req){.tenant_id = 7,
                                    .tenant_name = "Acme Wärme GmbH",
                                    .device_id = DEV,
                                    .ca_key_name = "tenants/7/ca-12",
                                    .csr_pem = "-----BEGIN CERTIFICATE REQUEST-----",
                                    .csr_len = 35,
                                    .lifetime_s = 86400};
}

static void
test_leaf_profile(void **state)
{
    (void)state;
    char uri[160], err[256];
    struct pki_leaf_profile p;
    sg_policy *pol = sg_policy_new(&opts);
    assert_non_null(pol);
    struct signer_leaf_req r = good_req();
    assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), 0);
    assert_string_equal(p.common_name, DEV);
    assert_string_equal(p.organization, "Acme Wärme GmbH");
    assert_string_equal(p.san_uri, "urn:aegis:tenant:7:device:" DEV);
    assert_null(p.san_dns);
    assert_null(p.san_ip);
    assert_int_equal(p.client_auth, 1);
    assert_int_equal(p.server_auth, 1);
    assert_int_equal(p.lifetime_s, 86400);
    assert_int_equal(p.now, NOW);
    r.lifetime_s = opts.max_lifetime_s; /* the maximum itself is allowed */
    assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), 0);
    sg_policy_free(pol);
}

static void
test_leaf_refused(void **state)
{
    (void)state;
    /* the name rule, also applied to a rolled-over CA's subject */
    assert_int_equal(sg_policy_tenant_name_ok("Thermostat Z\xc3\xbcrich"), 1);
    assert_int_equal(sg_policy_tenant_name_ok(""), 0);
    assert_int_equal(sg_policy_tenant_name_ok("evil\nCN=root"), 0);
    char uri[160], err[256], name[200];
    struct pki_leaf_profile p;
    sg_policy *pol = sg_policy_new(&opts);
    memset(name, 'n', sizeof(name));
    name[SG_TENANT_NAME_MAX + 1] = '\0';
    static const char *const bad_names[] = {"",           "a\tb",     "a\nb",   "del\x7f",
                                            "c1\xc2\x85", "\xff\xfe", "cut\xc3"};
    static const char *const bad_ids[] = {
        "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "abc", DEV "0",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg"};
    static const char *const bad_cas[] = {
        "tenants/8/ca-1",  "tenants/7/ca-0",        "tenants/7/ca-01", "tenants/7/root",
        "tenants/7/ca-",   "tenants/7/ca-1/x",      "tenants/77/ca-1", "server",
        "tenants/7/ca-1 ", "tenants/7/tuf-snapshot"};
    struct signer_leaf_req r;
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        r = good_req();
        r.tenant_name = bad_names[i];
        assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), SIGNER_REFUSED);
        assert_non_null(strstr(err, "tenant name"));
    }
    r = good_req();
    r.tenant_name = name; /* 129 bytes */
    assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), SIGNER_REFUSED);
    name[SG_TENANT_NAME_MAX] = '\0';
    assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        r = good_req();
        r.device_id = bad_ids[i];
        assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), SIGNER_REFUSED);
        assert_non_null(strstr(err, "device id"));
    }
    for (size_t i = 0; i < sizeof(bad_cas) / sizeof(bad_cas[0]); i++) {
        r = good_req();
        r.ca_key_name = bad_cas[i];
        assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), SIGNER_REFUSED);
        assert_non_null(strstr(err, "CA key name"));
    }
    const struct {
        int64_t tenant, lifetime;
        size_t csr_len;
        const char *what;
    } bad[] = {{0, 86400, 35, "tenant id"},
               {-7, 86400, 35, "tenant id"},
               {7, 0, 35, "lifetime"},
               {7, -1, 35, "lifetime"},
               {7, 90 * 86400 + 1, 35, "lifetime"},
               {7, 86400, 0, "CSR"},
               {7, 86400, SG_CSR_MAX + 1, "CSR"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = good_req();
        r.tenant_id = bad[i].tenant;
        r.lifetime_s = bad[i].lifetime;
        r.csr_len = bad[i].csr_len;
        assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), SIGNER_REFUSED);
        assert_non_null(strstr(err, bad[i].what));
    }
    r = good_req();
    r.csr_pem = NULL;
    assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), SIGNER_REFUSED);
    r = good_req();
    r.tenant_name = NULL;
    assert_int_equal(sg_policy_leaf(pol, &r, NOW, &p, uri, err, sizeof(err)), SIGNER_REFUSED);
    sg_policy_free(pol);
}

static void
test_new_bounds(void **state)
{
    (void)state;
    struct sg_policy_opts o = opts;
    o.max_lifetime_s = 0;
    assert_null(sg_policy_new(&o));
    o = opts;
    o.issue_rate = 0;
    assert_null(sg_policy_new(&o));
    o = opts;
    o.issue_burst = 0.5;
    assert_null(sg_policy_new(&o));
    assert_null(sg_policy_new(NULL));
    sg_policy_free(NULL);
}

static void
test_buckets(void **state)
{
    (void)state;
    int64_t retry = 0;
    sg_policy *pol = sg_policy_new(&opts); /* 2/s, burst 5 */
    double t = 1000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(sg_policy_take(pol, 1, t, &retry), 0);
    assert_int_equal(sg_policy_take(pol, 1, t, &retry), SIGNER_BUSY);
    assert_int_equal(retry, 1);
    /* another tenant has its own bucket */
    assert_int_equal(sg_policy_take(pol, 2, t, &retry), 0);
    assert_int_equal(sg_policy_take(pol, 0, t, &retry), SIGNER_REFUSED);
    assert_int_equal(sg_policy_take(pol, -1, t, &retry), SIGNER_REFUSED);
    /* half a second gives one token back, no more */
    assert_int_equal(sg_policy_take(pol, 1, t + 0.5, &retry), 0);
    assert_int_equal(sg_policy_take(pol, 1, t + 0.5, &retry), SIGNER_BUSY);
    /* a clock that goes back refills nothing */
    assert_int_equal(sg_policy_take(pol, 1, t - 100, &retry), SIGNER_BUSY);
    /* a long pause fills up to the burst only */
    t += 3600;
    for (int i = 0; i < 5; i++)
        assert_int_equal(sg_policy_take(pol, 1, t, &retry), 0);
    assert_int_equal(sg_policy_take(pol, 1, t, &retry), SIGNER_BUSY);
    sg_policy_free(pol);

    /* a slow rate: the retry is the wait for one whole token */
    struct sg_policy_opts o = {.max_lifetime_s = 1, .issue_rate = 0.1, .issue_burst = 1};
    pol = sg_policy_new(&o);
    assert_int_equal(sg_policy_take(pol, 3, 0, &retry), 0);
    assert_int_equal(sg_policy_take(pol, 3, 0, &retry), SIGNER_BUSY);
    assert_int_equal(retry, 10);
    assert_int_equal(sg_policy_take(pol, 3, 4, &retry), SIGNER_BUSY);
    assert_int_equal(retry, 6);
    sg_policy_free(pol);
}

/* The table holds 1024 tenants. Only a bucket that is full again may be forgotten (the least
 * recently used of those): made-up tenants cannot reset a real tenant's spent bucket. */
static void
test_buckets_lru(void **state)
{
    (void)state;
    int64_t retry = 0;
    struct sg_policy_opts o = {.max_lifetime_s = 1, .issue_rate = 0.001, .issue_burst = 1};
    sg_policy *pol = sg_policy_new(&o);
    for (int64_t id = 1; id <= 1024; id++)
        assert_int_equal(sg_policy_take(pol, id, 0, &retry), 0);
    /* all spent; tenant 1 used last */
    assert_int_equal(sg_policy_take(pol, 1, 0, &retry), SIGNER_BUSY);
    /* every bucket still counts a spent token: a new tenant waits instead of evicting one */
    for (int64_t id = 5000; id < 7000; id++)
        assert_int_equal(sg_policy_take(pol, id, 0, &retry), SIGNER_BUSY);
    assert_int_equal(sg_policy_take(pol, 2, 0, &retry), SIGNER_BUSY); /* not reset */
    /* 1000 s later every bucket is full again: the least recently used (2) gives way, harmlessly */
    assert_int_equal(sg_policy_take(pol, 5000, 1000, &retry), 0);
    assert_int_equal(sg_policy_take(pol, 5000, 1000, &retry), SIGNER_BUSY);
    assert_int_equal(sg_policy_take(pol, 2, 1000, &retry), 0); /* full, as it would have been */
    assert_int_equal(sg_policy_take(pol, 2, 1000, &retry), SIGNER_BUSY);
    sg_policy_free(pol);
}

/* RFC 3339 of NOW + d. */
static const char *
at(int64_t d, char buf[32])
{
    time_t t = (time_t)(NOW + d);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static int
tuf(const char *key, const char *type, int version, const char *expires, const char *extra)
{
    char msg[512], err[256];
    snprintf(msg, sizeof(msg), "{\"_type\":\"%s\",\"version\":%d,\"expires\":\"%s\"%s}", type,
             version, expires, extra);
    return sg_policy_tuf(key, (const unsigned char *)msg, strlen(msg), NOW, err, sizeof(err));
}

static void
test_tuf(void **state)
{
    (void)state;
    char b[32], err[256];
    const int64_t slack = SG_TUF_SLACK_S;
    assert_int_equal(tuf("tenants/1/tuf-timestamp", "timestamp", 1, at(86400 + slack, b), ""), 0);
    assert_int_equal(tuf("tenants/1/tuf-timestamp", "timestamp", 1, at(86401 + slack, b), ""),
                     SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", 3, at(7 * 86400 + slack, b), ""), 0);
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", 3, at(7 * 86400 + slack + 1, b), ""),
                     SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-director", "targets", 9, at(3600, b), ",\"custom\":{}"), 0);
    assert_int_equal(
        tuf("tenants/1/tuf-director", "targets", 9, at(2 * 86400, b), ",\"custom\":{}"),
        SIGNER_REFUSED);
    /* the director's targets need "custom" (the image repository's never carry it) */
    assert_int_equal(tuf("tenants/1/tuf-director", "targets", 9, at(3600, b), ""), SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-director", "targets", 9, at(3600, b), ",\"custom\":1"),
                     SIGNER_REFUSED);
    /* another role's metadata, or a key that is no online TUF key */
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "timestamp", 1, at(60, b), ""), SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-timestamp", "root", 1, at(60, b), ""), SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-root", "root", 1, at(60, b), ""), SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/ca-1", "snapshot", 1, at(60, b), ""), SIGNER_REFUSED);
    /* version and expires */
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", 0, at(60, b), ""), SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", -2, at(60, b), ""), SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", 1, at(0, b), ""), SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", 1, at(-60, b), ""), SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", 1, "2027-01-15 08:00:00Z", ""),
                     SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", 1, "2027-01-15T08:00:00+00:00", ""),
                     SIGNER_REFUSED);
    assert_int_equal(tuf("tenants/1/tuf-snapshot", "snapshot", 1, "2027-02-30T08:00:00Z", ""),
                     SIGNER_REFUSED);
    static const char *const raw[] = {
        "not json",
        "[1]",
        "{\"_type\":\"snapshot\",\"version\":\"1\",\"expires\":\"2027-01-15T08:00:00Z\"}",
        "{\"_type\":\"snapshot\",\"version\":1.0,\"expires\":\"2027-01-15T08:00:00Z\"}",
        "{\"_type\":\"snapshot\",\"version\":1}",
        "{\"_type\":\"snapshot\",\"_type\":\"snapshot\",\"version\":1,\"expires\":\"x\"}"};
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
        assert_int_equal(sg_policy_tuf("tenants/1/tuf-snapshot", (const unsigned char *)raw[i],
                                       strlen(raw[i]), NOW, err, sizeof(err)),
                         SIGNER_REFUSED);
    assert_int_equal(sg_policy_tuf(NULL, (const unsigned char *)"{}", 2, NOW, err, sizeof(err)),
                     SIGNER_REFUSED);
}

/* A TLS 1.3 CertificateVerify content with a hash of hlen bytes into buf; returns its length. */
static size_t
tls13(unsigned char *buf, size_t hlen)
{
    memset(buf, 0x20, 64);
    memcpy(buf + 64, "TLS 1.3, server CertificateVerify", 33);
    buf[97] = 0;
    memset(buf + 98, 0xab, hlen);
    return 98 + hlen;
}

/* TLS 1.2 ECDHE ServerKeyExchange data: randoms, named_curve, curve, point length, point. */
static size_t
tls12(unsigned char *buf, unsigned curve, size_t plen, size_t actual)
{
    memset(buf, 0x11, 64);
    buf[64] = 3;
    buf[65] = (unsigned char)(curve >> 8);
    buf[66] = (unsigned char)curve;
    buf[67] = (unsigned char)plen;
    memset(buf + 68, 0x04, actual);
    return 68 + actual;
}

static void
test_tls(void **state)
{
    (void)state;
    unsigned char b[SG_TLS_DATA_MAX + 8];
    char err[256];
    size_t n;
    n = tls13(b, 32);
    assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), 0);
    n = tls13(b, 48);
    assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), 0);
    for (size_t h = 0; h < 80; h++) {
        if (h == 32 || h == 48)
            continue;
        n = tls13(b, h);
        assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);
    }
    n = tls13(b, 32);
    b[10] = 0x21;
    assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);
    n = tls13(b, 32);
    b[73] = 'c'; /* "client CertificateVerify": a client's signature is not the server's to make */
    assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);
    n = tls13(b, 32);
    b[97] = 1;
    assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);

    const struct {
        unsigned curve;
        size_t plen;
    } ok[] = {{23, 65}, {24, 97}, {29, 32}, {30, 56}};
    for (size_t i = 0; i < 4; i++) {
        n = tls12(b, ok[i].curve, ok[i].plen, ok[i].plen);
        assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), 0);
        n = tls12(b, ok[i].curve, ok[i].plen, ok[i].plen + 1); /* trailing bytes */
        assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);
        n = tls12(b, ok[i].curve, ok[i].plen, ok[i].plen - 1); /* cut short */
        assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);
        n = tls12(b, ok[i].curve, ok[i].plen - 1, ok[i].plen - 1); /* not the curve's length */
        assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);
    }
    n = tls12(b, 25, 133, 133); /* secp521r1: not offered */
    assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);
    n = tls12(b, 23, 65, 65);
    b[64] = 1; /* explicit_prime */
    assert_int_equal(sg_policy_tls(b, n, err, sizeof(err)), SIGNER_REFUSED);
    /* what else a key might be made to sign: a CSR, a certificate body, a hash */
    assert_int_equal(sg_policy_tls((const unsigned char *)"0\x82\x01", 3, err, sizeof(err)),
                     SIGNER_REFUSED);
    memset(b, 0x20, sizeof(b));
    assert_int_equal(sg_policy_tls(b, 32, err, sizeof(err)), SIGNER_REFUSED);
    assert_int_equal(sg_policy_tls(b, sizeof(b), err, sizeof(err)), SIGNER_REFUSED);
    assert_int_equal(sg_policy_tls(NULL, 0, err, sizeof(err)), SIGNER_REFUSED);
    assert_non_null(strstr(err, "TLS"));
}

static void
test_ca_rollover(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(sg_policy_ca_rollover(0, NOW, err, sizeof(err)), 0); /* the first CA */
    assert_int_equal(sg_policy_ca_rollover(NOW + SG_CA_ROLLOVER_WINDOW_S, NOW, err, sizeof(err)),
                     0);
    assert_int_equal(sg_policy_ca_rollover(NOW - 1, NOW, err, sizeof(err)), 0); /* expired */
    assert_int_equal(
        sg_policy_ca_rollover(NOW + SG_CA_ROLLOVER_WINDOW_S + 1, NOW, err, sizeof(err)),
        SIGNER_REFUSED);
    assert_non_null(strstr(err, "30 days"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_profile), cmocka_unit_test(test_leaf_refused),
        cmocka_unit_test(test_new_bounds),   cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_buckets_lru),  cmocka_unit_test(test_tuf),
        cmocka_unit_test(test_tls),          cmocka_unit_test(test_ca_rollover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
