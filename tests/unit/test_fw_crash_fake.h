/* The fake telemetry service of the upload tests (test_fw_crash_upload.c), over a scripted fake
 * transport with virtual-time timers (the pattern of test_fw_device.c): it checks every body
 * against docs/telemetry.md section 1 (test_fw_crash_fx.h) and answers as section 2 says (stored
 * once per report_id, duplicate afterwards); a fake CA issues the device's certificate. Functions
 * are static inline, as in test_fw_crash_fx.h. */
#ifndef AEGIS_TEST_FW_CRASH_FAKE_H
#define AEGIS_TEST_FW_CRASH_FAKE_H

#include "test_fw_crash_fx.h"

#include "device.h"
#include "evidence.h"
#include "hal_host.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_STORED 4096

enum act {
    A_SERVE = 0, /* the service: stored once per report_id, then duplicate */
    A_STATUS,    /* a canned status and body, nothing stored */
    A_NETERR,    /* the request never reaches the service */
    A_LOST,      /* the service stores it, the answer is lost (timeout) */
    A_PARTIAL,   /* the service stores it but answers results for the first `keep` only */
};

struct action {
    enum act a;
    long status;
    const char *body;
    long retry_after;
    int err;
    size_t keep;
};

struct adev_http_call {
    int used;
    adev_http_cb cb;
    void *arg;
    char method[8];
    char path[64];
    char *body;
    char content_type[40];
    int has_cert;
};

struct adev_timer {
    int active;
    uint64_t due;
    void (*cb)(void *);
    void *arg;
};

#define MAX_CALLS 4
#define MAX_TIMERS 8
#define MAX_LOG 64

struct fake {
    adev_transport t;
    adev_timers tm;
    struct adev_http_call calls[MAX_CALLS];
    struct adev_timer timers[MAX_TIMERS];
    uint64_t now_ms;
    const struct action *script;
    size_t n_script, pos;
    uint64_t delays[MAX_LOG];
    size_t n_delays;
    /* the service's state */
    int64_t stored_ids[MAX_STORED];
    size_t n_stored;
    size_t stored_crashes;
    int64_t dropped_total;
    int64_t reject_id; /* answer this report_id "rejected" */
    size_t requests, batch_sizes[MAX_LOG];
    unsigned lose_acks; /* fault_lose_ack answers 1 this many times */
    struct adev_report reports[16];
    char reasons[16][64];
    size_t n_reports;
    EVP_PKEY *ca_key;
    X509 *ca;
    char dir[64];
    adev_keystore *ks;
    adev_storage *st;
    adev_clock *clk;
    adev_crashq *q;
    adev_device *dev;
};

static inline struct fake *
fake_of_t(adev_transport *t)
{
    return (struct fake *)((char *)t - offsetof(struct fake, t));
}

static inline struct fake *
fake_of_tm(adev_timers *tm)
{
    return (struct fake *)((char *)tm - offsetof(struct fake, tm));
}

static inline adev_http_call *
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
        snprintf(c->content_type, sizeof(c->content_type), "%s",
                 req->content_type ? req->content_type : "");
        c->body = req->body ? strndup(req->body, req->body_len) : NULL;
        c->has_cert = req->client_cert_pem != NULL && req->client_key_pem != NULL;
        return c;
    }
    fail_msg("more than %d requests in flight", MAX_CALLS);
    return NULL;
}

static inline void
fake_cancel(adev_transport *t, adev_http_call *c)
{
    (void)t;
    free(c->body);
    c->body = NULL;
    c->used = 0;
}

static inline void
fake_free(adev_transport *t)
{
    (void)t;
}

static const struct adev_transport_ops fake_tops = {fake_request, fake_cancel, fake_free};

static inline adev_timer *
fake_timer_start(adev_timers *tm, uint64_t ms, void (*cb)(void *), void *arg)
{
    struct fake *f = fake_of_tm(tm);
    if (f->n_delays < MAX_LOG) { /* every timer: 0 for the start of an operation */
        f->delays[f->n_delays++] = ms;
    }
    for (int i = 0; i < MAX_TIMERS; i++) {
        if (!f->timers[i].active) {
            f->timers[i] = (struct adev_timer){1, f->now_ms + ms, cb, arg};
            return &f->timers[i];
        }
    }
    fail_msg("too many timers");
    return NULL;
}

static inline void
fake_timer_cancel(adev_timers *tm, adev_timer *t)
{
    (void)tm;
    t->active = 0;
}

static const struct adev_timers_ops fake_tmops = {fake_timer_start, fake_timer_cancel};

static inline int
seen(struct fake *f, int64_t id)
{
    for (size_t i = 0; i < f->n_stored; i++) {
        if (f->stored_ids[i] == id)
            return 1;
    }
    return 0;
}

/* The service's side of POST /v1/device/telemetry: validates the batch (a malformed one fails the
 * test: the device must never send one), stores new reports, answers section 2. */
static inline char *
serve_telemetry(struct fake *f, const char *body, size_t keep)
{
    json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(root);
    static const char *const keys[] = {"version", "dropped", "reports"};
    assert_true(keys_ok(root, keys, N(keys)));
    assert_int_equal(json_integer_value(json_object_get(root, "version")), PROTO_VERSION);
    assert_true(int_in(root, "dropped", 0, PROTO_TEL_U32_MAX));
    json_t *reports = json_object_get(root, "reports"), *r;
    assert_true(json_is_array(reports));
    assert_true(json_array_size(reports) >= 1 && json_array_size(reports) <= PROTO_TEL_REPORTS_MAX);
    assert_true(strlen(body) <= PROTO_TEL_BODY_MAX);
    if (f->requests < MAX_LOG)
        f->batch_sizes[f->requests] = json_array_size(reports);
    f->requests++;
    json_t *results = json_array();
    int64_t prev = 0;
    size_t i, st = 0, dup = 0, rej = 0;
    json_array_foreach(reports, i, r)
    {
        const char *why = report_problem(r);
        if (why != NULL)
            fail_msg("report %zu of the batch: %s", i, why);
        int64_t id = json_integer_value(json_object_get(r, "report_id"));
        assert_true(id > prev); /* oldest first */
        prev = id;
        const char *status;
        if (id == f->reject_id) {
            status = "rejected";
            rej++;
        } else if (seen(f, id)) {
            status = "duplicate";
            dup++;
        } else {
            assert_true(f->n_stored < MAX_STORED);
            f->stored_ids[f->n_stored++] = id;
            f->stored_crashes += proto_tel_type_parse(str_of(r, "type"),
                                                      len_of(str_of(r, "type"))) == PROTO_TEL_CRASH;
            status = "stored";
            st++;
        }
        if (i < keep)
            json_array_append_new(
                results, json_pack("{s:I, s:s}", "report_id", (json_int_t)id, "status", status));
    }
    /* as the service does: a batch of duplicates only is a retry of one it stored, whose count
     * it added then */
    if (!(st == 0 && dup > 0))
        f->dropped_total += json_integer_value(json_object_get(root, "dropped"));
    json_t *ans = json_pack("{s:I, s:I, s:I, s:o}", "stored", (json_int_t)st, "duplicates",
                            (json_int_t)dup, "rejected", (json_int_t)rej, "results", results);
    char *text = json_dumps(ans, 0);
    json_decref(ans);
    json_decref(root);
    return text;
}

/* A certificate for the CSR of an evidence body, signed by the fake CA (as test_fw_device.c). */
static inline char *
issue(struct fake *f, const char *evidence, char **ca_pem)
{
    json_t *root = json_loads(evidence, 0, NULL);
    assert_non_null(root);
    BIO *in = BIO_new_mem_buf(json_string_value(json_object_get(root, "csr")), -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
    assert_non_null(req);
    X509 *cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_set_version(cert, 2);
    X509_set_issuer_name(cert, X509_get_subject_name(f->ca));
    X509_set_subject_name(cert, X509_get_subject_name(f->ca));
    X509_gmtime_adj(X509_getm_notBefore(cert), -300);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, X509_REQ_get0_pubkey(req));
    assert_true(X509_sign(cert, f->ca_key, EVP_sha256()) > 0);
    BIO *out = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    char *data = NULL;
    PEM_write_bio_X509(out, cert);
    long n = BIO_get_mem_data(out, &data);
    char *pem = strndup(data, (size_t)n);
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

static inline void
respond(struct fake *f, struct adev_http_call *c)
{
    struct adev_http_response r;
    char *body = NULL;

    memset(&r, 0, sizeof(r));
    r.retry_after_s = -1;
    r.detail = "";
    if (strcmp(c->path, "/v1/device/attest/challenge") == 0) {
        r.status = 200;
        body = strdup("{\"nonce\": \"000102030405060708090a0b0c0d0e0f"
                      "101112131415161718191a1b1c1d1e1f\", \"ttl_s\": 60}");
    } else if (strcmp(c->path, "/v1/device/attest") == 0) {
        char *ca = NULL, *cert = issue(f, c->body, &ca);
        json_t *o =
            json_pack("{s:s, s:s, s:s+, s:s, s:s, s:s}", "result", "pass", "certificate", cert,
                      "chain", cert, ca, "trust_bundle", ca, "not_before", "x", "not_after", "y");
        body = json_dumps(o, 0);
        json_decref(o);
        free(cert);
        free(ca);
        r.status = 200;
    } else if (strcmp(c->path, "/v1/device/whoami") == 0) {
        char buf[160];
        snprintf(buf, sizeof(buf), "{\"device_id\": \"%s\"}", adev_device_id_hex(f->dev));
        body = strdup(buf);
        r.status = 200;
    } else {
        assert_string_equal(c->path, "/v1/device/telemetry");
        assert_string_equal(c->method, "POST");
        assert_string_equal(c->content_type, "application/json");
        assert_true(c->has_cert); /* mutual TLS with the stored certificate */
        struct action def = {A_SERVE, 0, NULL, 0, 0, 0};
        const struct action *s = f->pos < f->n_script ? &f->script[f->pos++] : &def;
        r.retry_after_s = s->retry_after ? s->retry_after : -1;
        switch (s->a) {
        case A_SERVE:
            body = serve_telemetry(f, c->body, SIZE_MAX);
            r.status = 200;
            break;
        case A_PARTIAL:
            body = serve_telemetry(f, c->body, s->keep);
            r.status = 200;
            break;
        case A_LOST:
            free(serve_telemetry(f, c->body, SIZE_MAX));
            r.err = ADEV_NET_TIMEOUT;
            r.detail = "the answer was lost";
            break;
        case A_NETERR:
            r.err = s->err;
            r.detail = "simulated network failure";
            break;
        case A_STATUS:
            r.status = s->status;
            body = strdup(s->body ? s->body : "");
            break;
        }
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

static inline void
run(struct fake *f)
{
    for (int guard = 0; guard < 5000; guard++) {
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

static inline void
on_report(adev_device *dev, const struct adev_report *r, void *arg)
{
    struct fake *f = arg;
    (void)dev;
    assert_true(f->n_reports < N(f->reports));
    f->reports[f->n_reports] = *r;
    snprintf(f->reasons[f->n_reports], sizeof(f->reasons[0]), "%s", r->reason);
    f->reports[f->n_reports].reason = f->reasons[f->n_reports];
    f->reports[f->n_reports].detail = "";
    f->n_reports++;
}

static inline int
lose_ack(adev_device *d, void *arg)
{
    struct fake *f = arg;
    (void)d;
    if (f->lose_acks == 0)
        return 0;
    f->lose_acks--;
    return 1;
}

/* A credential in storage: an operational key and a self-signed certificate for it. */
static inline void
store_credential(struct fake *f)
{
    adev_opkey *k = adev_opkey_generate();
    char *key = adev_opkey_pem(k);
    BIO *b = BIO_new_mem_buf(key, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    assert_non_null(pk);
    X509 *c = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(c), 9);
    X509_set_version(c, 2);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               (const unsigned char *)"device", -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(c));
    X509_gmtime_adj(X509_getm_notBefore(c), -300);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509_set_pubkey(c, pk);
    assert_true(X509_sign(c, pk, EVP_sha256()) > 0);
    BIO *out = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(out, c);
    char *data = NULL;
    long n = BIO_get_mem_data(out, &data);
    char *cert = strndup(data, (size_t)n);
    json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "version", 1, "key", key,
                          "certificate", cert, "chain", cert, "trust_bundle", cert, "not_before",
                          (json_int_t)1, "not_after", (json_int_t)2, "renew_at", (json_int_t)2);
    char *text = json_dumps(o, 0);
    assert_int_equal(
        adev_storage_write(f->st, ADEV_BLOB_CREDENTIAL, text, strlen(text), ADEV_STORAGE_SECRET),
        0);
    free(text);
    json_decref(o);
    free(cert);
    BIO_free(out);
    X509_free(c);
    EVP_PKEY_free(pk);
    BIO_free(b);
    adev_free_secret_str(key);
    adev_opkey_free(k);
}

static inline int
up_setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->t.ops = &fake_tops;
    f->tm.ops = &fake_tmops;
    f->reject_id = -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_fw_crash.XXXXXX");
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

static inline int
up_teardown(void **state)
{
    struct fake *f = *state;
    char cmd[128];
    adev_device_free(f->dev);
    adev_crash_free(f->q);
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

/* Power on: the queue from storage (a new boot), and a device over it. */
static inline void
power_on(struct fake *f, const struct action *script, size_t n, struct adev_device_config *cfg)
{
    struct adev_hal hal = {f->ks, f->st, f->clk, &f->t, &f->tm, NULL};
    struct adev_device_config def;
    memset(&def, 0, sizeof(def));
    if (cfg == NULL)
        cfg = &def;
    f->q = adev_crash_open(f->st, NULL);
    assert_non_null(f->q);
    assert_true(adev_crash_boot(f->q, NULL, 0) >= 0);
    cfg->server_url = "https://aegis.test";
    cfg->server_ca_pem = "-----BEGIN CERTIFICATE-----\n(not parsed by the fake)\n";
    cfg->crashq = f->q;
    cfg->fault_lose_ack = lose_ack;
    f->script = script;
    f->n_script = n;
    f->pos = 0;
    f->dev = adev_device_new(&hal, cfg, on_report, f);
    assert_non_null(f->dev);
}

/* Power off: everything in memory is lost. */
static inline void
power_off(struct fake *f)
{
    adev_device_free(f->dev);
    f->dev = NULL;
    adev_crash_free(f->q);
    f->q = NULL;
}

static inline void
queue_crashes(struct fake *f, int n)
{
    for (int i = 0; i < n; i++) {
        struct adev_crash_info ci =
            crash_at(i % 2 ? "aegis-os" : "aegis-app", "hardfault", 0x8000000 + (uint64_t)i * 4);
        assert_int_equal(adev_crash_record(f->q, &ci), ADEV_CRASH_QUEUED);
    }
}

static inline struct adev_report *
last_report(struct fake *f)
{
    assert_true(f->n_reports > 0);
    return &f->reports[f->n_reports - 1];
}

#endif
