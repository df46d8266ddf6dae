/* Unit tests of firmware-ref/device.c: the renewal point, and the attestation client's state
 * machine against a scripted fake transport and virtual-time timers (retries honouring
 * Retry-After, backoff, final refusals, client-side failures, the replay fault, whoami, renewal).
 * The fake service issues real certificates from the device's CSR with a throw-away CA. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "device.h"
#include "evidence.h"
#include "hal_host.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* --- renewal point --------------------------------------------------------------------------- */

static void
test_renew_point_bounds(void **state)
{
    (void)state;
    const int64_t nb = 1700000000, life = 86400 + 300;
    const int64_t lo = nb + life / 2, hi = nb + life * 8 / 10;
    int64_t min = INT64_MAX, max = INT64_MIN, at;
    double sum = 0;
    const int draws = 100000;

    for (int i = 0; i < draws; i++) {
        assert_int_equal(adev_renew_point(nb, nb + life, &at), 0);
        if (at < lo || at > hi)
            fail_msg("draw %d: %lld outside [%lld, %lld]", i, (long long)at, (long long)lo,
                     (long long)hi);
        min = at < min ? at : min;
        max = at > max ? at : max;
        sum += (double)(at - nb);
    }
    /* uniform over the whole window: reaches both ends, mean at 65 % */
    assert_true(min - lo < life / 1000);
    assert_true(hi - max < life / 1000);
    double mean = sum / draws / (double)life;
    assert_true(mean > 0.645 && mean < 0.655);
    /* tiny lifetimes stay inside too */
    for (int64_t l = 1; l < 50; l++) {
        for (int i = 0; i < 200; i++) {
            assert_int_equal(adev_renew_point(nb, nb + l, &at), 0);
            assert_true(at >= nb + (l + 1) / 2 && at <= nb + l);
            assert_true((at - nb) * 10 >= l * 5 && (at - nb) * 10 <= l * 8 + 9);
        }
    }
    assert_int_equal(adev_renew_point(nb, nb, &at), -1);
    assert_int_equal(adev_renew_point(nb, nb - 1, &at), -1);
}

/* --- a fake service -------------------------------------------------------------------------- */

enum kind { K_AUTO, K_CANNED, K_NETERR };

struct step {
    const char *path; /* expected request path */
    enum kind kind;
    long status;
    const char *body; /* K_CANNED */
    long retry_after;
    int err; /* K_NETERR */
};

struct adev_http_call {
    int used;
    adev_http_cb cb;
    void *arg;
    char method[8];
    char path[64];
    char *body;
    int has_cert;
    int64_t now;
};

struct adev_timer {
    int active;
    uint64_t due;
    void (*cb)(void *);
    void *arg;
};

#define MAX_CALLS 4
#define MAX_TIMERS 8
#define MAX_LOG 32

struct fake {
    adev_transport t;
    adev_timers tm;
    struct adev_http_call calls[MAX_CALLS];
    struct adev_timer timers[MAX_TIMERS];
    uint64_t now_ms;
    const struct step *script;
    size_t n_script, pos;
    char log[MAX_LOG][80];
    size_t n_log;
    uint64_t delays[MAX_LOG];
    size_t n_delays;
    char *attest_bodies[MAX_LOG];
    size_t n_attest;
    struct adev_report reports[8];
    char reasons[8][64];
    size_t n_reports;
    EVP_PKEY *ca_key;
    X509 *ca;
    char dir[64];
    adev_keystore *ks;
    adev_storage *st;
    adev_clock *clk;
    adev_device *dev;
};

static struct fake *
fake_of_t(adev_transport *t)
{
    return (struct fake *)((char *)t - offsetof(struct fake, t));
}

static struct fake *
fake_of_tm(adev_timers *tm)
{
    return (struct fake *)((char *)tm - offsetof(struct fake, tm));
}

static adev_http_call *
fake_request(adev_transport *t, const struct adev_http_request *req, adev_http_cb cb, void *arg)
{
    struct fake *f = fake_of_t(t);
    for (int i = 0; i < MAX_CALLS; i++) {
        struct adev_http_call *c = &f->calls[i];
        if (c->used)
            continue;
        memset(c, 0, sizeof(*c));
        c->used = 1;
        c->cb = cb;
        c->arg = arg;
        snprintf(c->method, sizeof(c->method), "%s", req->method);
        const char *path = strstr(req->url, "/v1/");
        snprintf(c->path, sizeof(c->path), "%s", path ? path : req->url);
        c->body = req->body ? strndup(req->body, req->body_len) : NULL;
        c->has_cert = req->client_cert_pem != NULL && req->client_key_pem != NULL;
        c->now = req->now;
        assert_non_null(req->ca_pem);
        return c;
    }
    fail_msg("more than %d requests in flight", MAX_CALLS);
    return NULL;
}

static void
fake_cancel(adev_transport *t, adev_http_call *c)
{
    (void)t;
    free(c->body);
    c->body = NULL;
    c->used = 0;
}

static void
fake_free(adev_transport *t)
{
    (void)t;
}

static const struct adev_transport_ops fake_tops = {fake_request, fake_cancel, fake_free};

static adev_timer *
fake_timer_start(adev_timers *tm, uint64_t ms, void (*cb)(void *), void *arg)
{
    struct fake *f = fake_of_tm(tm);
    if (ms > 0 && f->n_delays < MAX_LOG)
        f->delays[f->n_delays++] = ms;
    for (int i = 0; i < MAX_TIMERS; i++) {
        if (!f->timers[i].active) {
            f->timers[i] = (struct adev_timer){1, f->now_ms + ms, cb, arg};
            return &f->timers[i];
        }
    }
    fail_msg("too many timers");
    return NULL;
}

static void
fake_timer_cancel(adev_timers *tm, adev_timer *t)
{
    (void)tm;
    t->active = 0;
}

static const struct adev_timers_ops fake_tmops = {fake_timer_start, fake_timer_cancel};

/* A certificate for the CSR in an evidence body, signed by the fake CA. */
static char *
issue(struct fake *f, const char *evidence, char **ca_pem)
{
    json_t *root = json_loads(evidence, 0, NULL);
    assert_non_null(root);
    const char *csr = json_string_value(json_object_get(root, "csr"));
    assert_non_null(csr);
    BIO *in = BIO_new_mem_buf(csr, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
    assert_non_null(req);
    X509 *cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_set_version(cert, 2);
    X509_set_issuer_name(cert, X509_get_subject_name(f->ca));
    X509_set_subject_name(cert, X509_get_subject_name(f->ca));
    time_t now = time(NULL);
    X509_time_adj_ex(X509_getm_notBefore(cert), 0, -300, &now);
    X509_time_adj_ex(X509_getm_notAfter(cert), 1, 0, &now);
    X509_set_pubkey(cert, X509_REQ_get0_pubkey(req));
    assert_true(X509_sign(cert, f->ca_key, EVP_sha256()) > 0);
    BIO *out = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(out, cert);
    char *data = NULL;
    long n = BIO_get_mem_data(out, &data);
    char *pem = strndup(data, (size_t)n);
    BIO *cb = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cb, f->ca);
    n = BIO_get_mem_data(cb, &data);
    *ca_pem = strndup(data, (size_t)n);
    BIO_free(cb);
    BIO_free(out);
    X509_free(cert);
    X509_REQ_free(req);
    BIO_free(in);
    json_decref(root);
    return pem;
}

static void
respond(struct fake *f, struct adev_http_call *c)
{
    char line[80];
    snprintf(line, sizeof(line), "%s %s%s", c->method, c->path, c->has_cert ? " +cert" : "");
    if (f->n_log < MAX_LOG)
        snprintf(f->log[f->n_log++], sizeof(f->log[0]), "%s", line);
    if (f->pos >= f->n_script)
        fail_msg("unexpected request %s", line);
    const struct step *s = &f->script[f->pos++];
    assert_string_equal(c->path, s->path);
    if (strcmp(c->path, "/v1/device/attest") == 0 && f->n_attest < MAX_LOG)
        f->attest_bodies[f->n_attest++] = strdup(c->body);

    struct adev_http_response r;
    char *body = NULL;
    memset(&r, 0, sizeof(r));
    r.retry_after_s = s->retry_after ? s->retry_after : -1;
    r.detail = "";
    if (s->kind == K_NETERR) {
        r.err = s->err;
        r.body = "";
        r.detail = "simulated network failure";
    } else if (s->kind == K_CANNED) {
        r.status = s->status;
        body = strdup(s->body ? s->body : "");
    } else if (strcmp(s->path, "/v1/device/attest/challenge") == 0) {
        r.status = 200;
        assert_null(strstr(line, "+cert"));
        body = strdup("{\"nonce\": \"000102030405060708090a0b0c0d0e0f"
                      "101112131415161718191a1b1c1d1e1f\", \"ttl_s\": 60}");
    } else if (strcmp(s->path, "/v1/device/attest") == 0) {
        char *ca = NULL, *cert = issue(f, c->body, &ca);
        json_t *o = json_pack("{s:s, s:s, s:s+, s:s, s:s, s:s}", "result", "pass", "certificate",
                              cert, "chain", cert, ca, "trust_bundle", ca, "not_before",
                              "2024-01-01T00:00:00Z", "not_after", "2024-01-02T00:00:00Z");
        assert_non_null(o);
        body = json_dumps(o, 0);
        json_decref(o);
        free(cert);
        free(ca);
        r.status = 200;
    } else if (strcmp(s->path, "/v1/device/whoami") == 0) {
        assert_true(c->has_cert);
        char buf[160];
        snprintf(buf, sizeof(buf), "{\"device_id\": \"%s\", \"tenant_id\": 1}",
                 adev_device_id_hex(f->dev));
        body = strdup(buf);
        r.status = 200;
    }
    r.body = body ? body : "";
    r.body_len = strlen(r.body);
    adev_http_cb cb = c->cb;
    void *arg = c->arg;
    free(c->body);
    c->body = NULL;
    c->used = 0;
    cb(&r, arg);
    free(body);
}

/* Runs until nothing is pending: answers requests first, then fires the earliest timer. */
static void
run(struct fake *f)
{
    for (int guard = 0; guard < 1000; guard++) {
        int did = 0;
        for (int i = 0; i < MAX_CALLS && !did; i++) {
            if (f->calls[i].used) {
                respond(f, &f->calls[i]);
                did = 1;
            }
        }
        if (did)
            continue;
        struct adev_timer *next = NULL;
        for (int i = 0; i < MAX_TIMERS; i++) {
            if (f->timers[i].active && (next == NULL || f->timers[i].due < next->due))
                next = &f->timers[i];
        }
        if (next == NULL)
            return;
        f->now_ms = next->due;
        next->active = 0;
        next->cb(next->arg);
    }
    fail_msg("the device does not settle");
}

static void
on_report(adev_device *dev, const struct adev_report *r, void *arg)
{
    struct fake *f = arg;
    (void)dev;
    assert_true(f->n_reports < 8);
    f->reports[f->n_reports] = *r;
    snprintf(f->reasons[f->n_reports], sizeof(f->reasons[0]), "%s", r->reason);
    f->reports[f->n_reports].reason = f->reasons[f->n_reports];
    f->reports[f->n_reports].detail = "";
    f->n_reports++;
}

static int
setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->t.ops = &fake_tops;
    f->tm.ops = &fake_tmops;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_fw_device.XXXXXX");
    if (mkdtemp(f->dir) == NULL || adev_host_keystore_create(f->dir, NULL) != 0)
        return -1;
    f->ks = adev_host_keystore_open(f->dir);
    f->st = adev_host_storage_open(f->dir);
    f->clk = adev_host_clock_new(0);
    uint8_t img[64];
    memset(img, 7, sizeof(img));
    const struct adev_image boot[3] = {
        {PROTO_STAGE_BOOTLOADER, "aegis-bl", "1.0.0", 1, img, sizeof(img)},
        {PROTO_STAGE_OS, "aegis-os", "2.1.0", 3, img, sizeof(img)},
        {PROTO_STAGE_APP, "thermo", "1.0.0", 1, img, sizeof(img)},
    };
    if (f->ks == NULL || f->st == NULL || f->clk == NULL ||
        adev_boot_install(f->st, boot, 3, NULL, 0) != 0)
        return -1;
    /* a throw-away CA */
    f->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f->ca = X509_new();
    X509_NAME *name = X509_get_subject_name(f->ca);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fake CA", -1, -1,
                               0);
    X509_set_issuer_name(f->ca, name);
    X509_set_version(f->ca, 2);
    X509_gmtime_adj(X509_getm_notBefore(f->ca), -3600);
    X509_gmtime_adj(X509_getm_notAfter(f->ca), 86400 * 30);
    X509_set_pubkey(f->ca, f->ca_key);
    if (X509_sign(f->ca, f->ca_key, EVP_sha256()) <= 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fake *f = *state;
    char cmd[128];
    adev_device_free(f->dev);
    for (size_t i = 0; i < f->n_attest; i++)
        free(f->attest_bodies[i]);
    for (int i = 0; i < MAX_CALLS; i++)
        free(f->calls[i].body);
    adev_clock_free(f->clk);
    adev_storage_free(f->st);
    adev_keystore_free(f->ks);
    X509_free(f->ca);
    EVP_PKEY_free(f->ca_key);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void
make_device(struct fake *f, const struct step *script, size_t n, struct adev_device_config *cfg)
{
    struct adev_hal hal = {f->ks, f->st, f->clk, &f->t, &f->tm, NULL};
    struct adev_device_config def;
    memset(&def, 0, sizeof(def));
    if (cfg == NULL)
        cfg = &def;
    cfg->server_url = "https://aegis.test/";
    cfg->server_ca_pem = "-----BEGIN CERTIFICATE-----\n(not parsed by the fake)\n";
    if (cfg->backoff_base_ms == 0)
        cfg->backoff_base_ms = 100;
    f->script = script;
    f->n_script = n;
    f->pos = 0;
    f->dev = adev_device_new(&hal, cfg, on_report, f);
    assert_non_null(f->dev);
    assert_int_equal(strlen(adev_device_id_hex(f->dev)), 64);
}

#define CHALLENGE "/v1/device/attest/challenge"
#define ATTEST "/v1/device/attest"
#define WHOAMI "/v1/device/whoami"
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_flow_with_retries(void **state)
{
    struct fake *f = *state;
    static const struct step script[] = {
        {CHALLENGE, K_CANNED, 429, "{\"error\": \"rate_limited\"}", 3, 0},
        {CHALLENGE, K_AUTO, 0, NULL, 0, 0},
        {ATTEST, K_CANNED, 503, "{\"error\": \"unavailable\"}", 0, 0},
        {CHALLENGE, K_AUTO, 0, NULL, 0, 0},
        {ATTEST, K_AUTO, 0, NULL, 0, 0},
        {WHOAMI, K_AUTO, 0, NULL, 0, 0},
    };
    struct adev_device_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.whoami_after_attest = 1;
    make_device(f, script, N(script), &cfg);
    assert_false(adev_device_has_certificate(f->dev));
    assert_int_equal(adev_device_attest(f->dev), 0);
    assert_int_equal(adev_device_attest(f->dev), -1); /* busy */
    run(f);
    assert_int_equal(f->pos, N(script));
    assert_int_equal(f->n_reports, 2);
    assert_int_equal(f->reports[0].op, ADEV_OP_ATTEST);
    assert_int_equal(f->reports[0].outcome, ADEV_PASS);
    assert_string_equal(f->reports[0].reason, "pass");
    assert_int_equal(f->reports[0].attempts, 5);
    assert_int_equal(f->reports[0].renewal, 0);
    int64_t nb = f->reports[0].not_before, na = f->reports[0].not_after;
    assert_true(na > nb);
    assert_true(f->reports[0].renew_at >= nb + (na - nb) / 2);
    assert_true(f->reports[0].renew_at <= nb + (na - nb) * 8 / 10);
    assert_int_equal(f->reports[1].op, ADEV_OP_WHOAMI);
    assert_int_equal(f->reports[1].outcome, ADEV_PASS);
    assert_string_equal(f->reports[1].reason, "ok");
    /* Retry-After honoured exactly, then the second retry's backoff: [base, 2 base] */
    assert_int_equal(f->n_delays, 2);
    assert_int_equal(f->delays[0], 3000);
    assert_true(f->delays[1] >= 100 && f->delays[1] <= 200);
    /* TLS client certificate only on whoami */
    assert_string_equal(f->log[5], "GET /v1/device/whoami +cert");
    assert_string_equal(f->log[4], "POST /v1/device/attest");
    /* the credential is stored, the key as a secret */
    assert_true(adev_device_has_certificate(f->dev));
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/storage/credential.json", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    struct adev_credential c1, c2;
    assert_int_equal(adev_credential_load(f->st, &c1), 0);
    assert_non_null(strstr(c1.key_pem, "PRIVATE KEY"));
    assert_non_null(strstr(c1.bundle_pem, "BEGIN CERTIFICATE"));
    assert_int_equal(strncmp(c1.chain_pem, c1.cert_pem, strlen(c1.cert_pem)), 0); /* leaf first */
    assert_int_equal(c1.not_before, nb);
    assert_int_equal(c1.not_after, na);
    assert_int_equal(c1.renew_at, f->reports[0].renew_at);
    /* the next attestation is a renewal with a fresh key */
    static const struct step renew[] = {
        {CHALLENGE, K_AUTO, 0, NULL, 0, 0},
        {ATTEST, K_AUTO, 0, NULL, 0, 0},
        {WHOAMI, K_AUTO, 0, NULL, 0, 0},
    };
    f->script = renew;
    f->n_script = N(renew);
    f->pos = 0;
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 4);
    assert_int_equal(f->reports[2].renewal, 1);
    assert_int_equal(f->reports[2].outcome, ADEV_PASS);
    assert_int_equal(f->reports[3].outcome, ADEV_PASS);
    assert_int_equal(adev_credential_load(f->st, &c2), 0);
    assert_string_not_equal(c1.key_pem, c2.key_pem);
    assert_string_not_equal(c1.cert_pem, c2.cert_pem);
    adev_credential_clear(&c1);
    adev_credential_clear(&c2);
    /* a credential whose key does not match its certificate is refused */
    char *text = NULL;
    uint8_t *raw = NULL;
    size_t len = 0;
    assert_int_equal(adev_storage_read(f->st, ADEV_BLOB_CREDENTIAL, 1 << 20, &raw, &len), 0);
    json_t *o = json_loadb((const char *)raw, len, 0, NULL);
    adev_opkey *other = adev_opkey_generate();
    char *other_pem = adev_opkey_pem(other);
    json_object_set_new(o, "key", json_string(other_pem));
    text = json_dumps(o, 0);
    assert_int_equal(adev_storage_write(f->st, ADEV_BLOB_CREDENTIAL, text, strlen(text), 1), 0);
    assert_int_equal(adev_credential_load(f->st, &c2), -1);
    assert_int_equal(adev_storage_remove(f->st, ADEV_BLOB_CREDENTIAL), 0);
    assert_int_equal(adev_credential_load(f->st, &c2), -2);
    free(text);
    json_decref(o);
    adev_free_secret_str(other_pem);
    adev_opkey_free(other);
    adev_storage_free_secret(raw, len);
}

static void
test_refusal_is_final(void **state)
{
    struct fake *f = *state;
    static const struct step script[] = {
        {CHALLENGE, K_AUTO, 0, NULL, 0, 0},
        {ATTEST, K_CANNED, 403,
         "{\"error\": \"attestation_failed\", \"reason\": \"unknown_measurement\", "
         "\"message\": \"no reference value\"}",
         0, 0},
    };
    struct adev_device_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.whoami_after_attest = 1;
    make_device(f, script, N(script), &cfg);
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 1);
    assert_int_equal(f->reports[0].outcome, ADEV_REJECTED);
    assert_string_equal(f->reports[0].reason, "unknown_measurement");
    assert_int_equal(f->reports[0].http_status, 403);
    assert_int_equal(f->reports[0].attempts, 2);
    assert_false(adev_device_has_certificate(f->dev));
}

static void
test_client_side_failures(void **state)
{
    struct fake *f = *state;
    /* a wrong clock (server certificate not yet valid) is final, not retried */
    static const struct step clock[] = {{CHALLENGE, K_NETERR, 0, NULL, 0, ADEV_NET_CLOCK}};
    make_device(f, clock, N(clock), NULL);
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 1);
    assert_int_equal(f->reports[0].outcome, ADEV_FAILED);
    assert_string_equal(f->reports[0].reason, "clock_skew");
    assert_int_equal(f->reports[0].attempts, 1);
    adev_device_free(f->dev);
    f->dev = NULL;

    /* timeouts are retried up to max_attempts */
    static const struct step slow[] = {
        {CHALLENGE, K_NETERR, 0, NULL, 0, ADEV_NET_TIMEOUT},
        {CHALLENGE, K_NETERR, 0, NULL, 0, ADEV_NET_TIMEOUT},
        {CHALLENGE, K_NETERR, 0, NULL, 0, ADEV_NET_TIMEOUT},
    };
    struct adev_device_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_attempts = 3;
    make_device(f, slow, N(slow), &cfg);
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 2);
    assert_int_equal(f->reports[1].outcome, ADEV_FAILED);
    assert_string_equal(f->reports[1].reason, "timeout");
    assert_int_equal(f->reports[1].attempts, 3);
    /* exponential: the second delay's range is twice the first's */
    assert_int_equal(f->n_delays, 2);
    assert_true(f->delays[0] >= 50 && f->delays[0] <= 100);
    assert_true(f->delays[1] >= 100 && f->delays[1] <= 200);
    adev_device_free(f->dev);
    f->dev = NULL;

    /* a malformed challenge answer */
    static const struct step junk[] = {{CHALLENGE, K_CANNED, 200, "{\"nonce\": \"abc\"}", 0, 0}};
    make_device(f, junk, N(junk), NULL);
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 3);
    assert_string_equal(f->reports[2].reason, "bad_response");
    /* whoami without a certificate */
    assert_int_equal(adev_device_whoami(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 4);
    assert_int_equal(f->reports[3].op, ADEV_OP_WHOAMI);
    assert_string_equal(f->reports[3].reason, "no_certificate");
}

static void
test_replay_fault(void **state)
{
    struct fake *f = *state;
    static const struct step script[] = {
        {CHALLENGE, K_AUTO, 0, NULL, 0, 0},
        {ATTEST, K_AUTO, 0, NULL, 0, 0},
        {ATTEST, K_CANNED, 403,
         "{\"error\": \"attestation_failed\", \"reason\": \"bad_nonce\", \"message\": \"used\"}", 0,
         0},
    };
    struct adev_device_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.whoami_after_attest = 1;
    cfg.fault_replay = 1;
    make_device(f, script, N(script), &cfg);
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 1);
    assert_string_equal(f->reports[0].reason, "bad_nonce");
    assert_int_equal(f->n_attest, 2);
    assert_string_equal(f->attest_bodies[0], f->attest_bodies[1]); /* byte for byte */
    assert_false(adev_device_has_certificate(f->dev));             /* the first answer dropped */
}

static void
test_whoami_refused_and_auto_renew(void **state)
{
    struct fake *f = *state;
    static const struct step script[] = {
        {CHALLENGE, K_AUTO, 0, NULL, 0, 0},
        {ATTEST, K_AUTO, 0, NULL, 0, 0},
        {WHOAMI, K_CANNED, 403, "{\"error\": \"device_blocked\", \"message\": \"blocked\"}", 0, 0},
        /* the renewal timer fires */
        {CHALLENGE, K_AUTO, 0, NULL, 0, 0},
        {ATTEST, K_CANNED, 403, "{\"error\": \"attestation_failed\", \"reason\": \"blocked\"}", 0,
         0},
    };
    struct adev_device_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.whoami_after_attest = 1;
    cfg.auto_renew = 1;
    make_device(f, script, N(script), &cfg);
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->pos, N(script));
    assert_int_equal(f->n_reports, 3);
    assert_int_equal(f->reports[1].op, ADEV_OP_WHOAMI);
    assert_int_equal(f->reports[1].outcome, ADEV_REJECTED);
    assert_string_equal(f->reports[1].reason, "device_blocked");
    /* renewal armed for renew_at (seconds away), then a renewal attestation */
    int64_t wait_s = f->reports[0].renew_at - (int64_t)time(NULL);
    assert_int_equal(f->n_delays, 1);
    assert_true((int64_t)f->delays[0] >= (wait_s - 5) * 1000);
    assert_true((int64_t)f->delays[0] <= (wait_s + 5) * 1000);
    assert_int_equal(f->reports[2].renewal, 1);
    assert_string_equal(f->reports[2].reason, "blocked");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renew_point_bounds),
        cmocka_unit_test_setup_teardown(test_flow_with_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_side_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whoami_refused_and_auto_renew, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
