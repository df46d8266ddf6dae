/* device: the attestation client state machine. */
#include "device.h"
#include "device_int.h"

#include "abboot.h"
#include "evidence.h"

#include <assert.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_ATTEMPTS 5
#define DEFAULT_BACKOFF_BASE_MS 500
#define DEFAULT_BACKOFF_MAX_MS 30000
#define DEFAULT_RETRY_AFTER_MAX_S 300
#define DEFAULT_UPLOAD_BATCH 10
#define DEFAULT_UPLOAD_ATTEMPTS 8
#define DEFAULT_UPLOAD_BASE_MS 1000
#define DEFAULT_UPLOAD_MAX_MS 300000

static void send_challenge(adev_device *d);
static void send_attest(adev_device *d);
static void send_whoami(adev_device *d);
static void start_attest(adev_device *d);

/* --- helpers --------------------------------------------------------------------------------- */

static char *
dup_str(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int
device_url_of(const adev_device *d, const char *path, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s", d->url, path);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static uint64_t
rand_below(uint64_t n)
{
    uint64_t r = 0;
    if (n <= 1)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    do {
        if (adev_random(&r, sizeof(r)) != 0)
            return 0;
    } while (r >= limit);
    return r % n;
}

int
adev_renew_point(int64_t not_before, int64_t not_after, int64_t *at)
{
    if (at == NULL || not_after <= not_before)
        return -1;
    int64_t life = not_after - not_before;
    if (life > INT64_MAX / 8)
        return -1;
    int64_t lo = not_before + (life * 5 + 9) / 10; /* ceil(50 %) */
    int64_t hi = not_before + (life * 8) / 10;     /* floor(80 %) */
    if (hi < lo)
        hi = lo;
    *at = lo + (int64_t)rand_below((uint64_t)(hi - lo) + 1);
    return 0;
}

uint64_t
adev_upload_delay_ms(uint32_t base_ms, uint32_t max_ms, unsigned retry, long retry_after_s,
                     uint32_t retry_after_max_s)
{
    if (retry_after_s > 0) {
        uint64_t s = (uint64_t)retry_after_s < retry_after_max_s ? (uint64_t)retry_after_s
                                                                 : retry_after_max_s;
        return 1000 * s + rand_below(500 * s + 1);
    }
    unsigned shift = retry > 30 ? 30 : retry;
    uint64_t window = (uint64_t)base_ms << shift;
    if (window > max_ms)
        window = max_ms;
    return rand_below(window + 1);
}

/* Copies a code from the service into d->reason, keeping only [a-z0-9_] (it ends up in logs and
 * summaries). */
static const char *
set_reason(adev_device *d, const char *code)
{
    size_t o = 0;
    for (const char *p = code; p != NULL && *p != '\0' && o + 1 < sizeof(d->reason); p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
            d->reason[o++] = *p;
    }
    d->reason[o] = '\0';
    return d->reason;
}

void
device_set_detail(adev_device *d, const char *s)
{
    size_t o = 0;
    for (const char *p = s; p != NULL && *p != '\0' && o + 1 < sizeof(d->detail); p++)
        d->detail[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    d->detail[o] = '\0';
}

/* Ends the operation with one report. Whatever follows (the next operation of the flow, then, and
 * the renewal timer) is armed before the callback runs, so the callback may free the device. */
static void
finish_then(adev_device *d, enum adev_outcome outcome, const char *reason, long status,
            const struct adev_report *extra, enum adev_op next_op, void (*then)(adev_device *))
{
    struct adev_report r;
    memset(&r, 0, sizeof(r));
    if (extra != NULL)
        r = *extra;
    r.op = d->op;
    r.renewal = d->renewal;
    r.outcome = outcome;
    if (reason != d->reason)
        snprintf(d->reason, sizeof(d->reason), "%s", reason);
    r.reason = d->reason;
    r.detail = d->detail;
    r.http_status = status;
    r.attempts = d->attempts;
    r.latency_ms = (double)(adev_clock_monotonic_us(d->hal.clock) - d->t0_us) / 1000.0;
    d->busy = 0;
    d->call = NULL;
    /* the next operation of the same flow (keeps the renewal flag) */
    if (then != NULL && device_begin_op(d, next_op, then) == 0)
        r.next_op = next_op;
    d->cb(d, &r, d->arg);
}

void
device_finish(adev_device *d, enum adev_outcome outcome, const char *reason, long status,
              const struct adev_report *extra)
{
    finish_then(d, outcome, reason, status, extra, 0, NULL);
}

/* The service's code of a refusal: "reason" when present (attestation_failed), else "error". */
const char *
device_refusal_code(adev_device *d, const struct adev_http_response *resp)
{
    json_t *root = json_loadb(resp->body, resp->body_len, 0, NULL);
    const char *code = NULL;
    if (json_is_object(root)) {
        json_t *reason = json_object_get(root, "reason");
        json_t *error = json_object_get(root, "error");
        json_t *msg = json_object_get(root, "message");
        code = json_is_string(reason)  ? json_string_value(reason)
               : json_is_string(error) ? json_string_value(error)
                                       : NULL;
        if (json_is_string(msg))
            device_set_detail(d, json_string_value(msg));
    }
    if (code != NULL && *code != '\0')
        set_reason(d, code);
    else
        snprintf(d->reason, sizeof(d->reason), "http_%ld", resp->status);
    json_decref(root);
    return d->reason;
}

static void
on_step(void *arg)
{
    adev_device *d = arg;
    d->step_timer = NULL;
    d->step(d);
}

/* Starts operation op (the device is idle): fresh attempt counters and clock, first step start on
 * the next loop turn. 0, or -1 (the device stays idle) when the step cannot be scheduled. */
int
device_begin_op(adev_device *d, enum adev_op op, void (*start)(adev_device *))
{
    d->busy = 1;
    d->op = op;
    d->attempts = 0;
    d->retries = 0;
    d->t0_us = adev_clock_monotonic_us(d->hal.clock);
    if (device_schedule(d, 0, start) != 0) {
        d->busy = 0;
        return -1;
    }
    return 0;
}

int
device_schedule(adev_device *d, uint64_t ms, void (*step)(adev_device *))
{
    d->step = step;
    d->step_timer = adev_timer_start(d->hal.timers, ms, on_step, d);
    return d->step_timer != NULL ? 0 : -1;
}

/* Retries a failed request (again) when the failure may pass and attempts remain, else ends
 * the operation with the failure. */
int
device_retry_later(adev_device *d, const struct adev_http_response *resp,
                   void (*again)(adev_device *))
{
    int retryable = 0;

    device_set_detail(d, resp->detail);
    if (resp->err == ADEV_NET_TIMEOUT || resp->err == ADEV_NET_CONNECT ||
        resp->err == ADEV_NET_OTHER)
        retryable = 1;
    if (resp->err == ADEV_NET_OK && (resp->status == 429 || resp->status == 503))
        retryable = 1;
    if (!retryable || d->attempts >= d->cfg.max_attempts)
        return 0;
    uint64_t delay_ms;
    if (resp->retry_after_s >= 0) {
        uint64_t s = (uint64_t)resp->retry_after_s;
        delay_ms = 1000 * (s < d->cfg.retry_after_max_s ? s : d->cfg.retry_after_max_s);
    } else {
        unsigned shift = d->retries > 16 ? 16 : d->retries;
        uint64_t full = (uint64_t)d->cfg.backoff_base_ms << shift;
        if (full > d->cfg.backoff_max_ms)
            full = d->cfg.backoff_max_ms;
        delay_ms = full / 2 + rand_below(full / 2 + 1); /* "equal jitter" */
    }
    if (device_schedule(d, delay_ms, again) != 0)
        return 0;
    d->retries++;
    return 1;
}

void
device_retry_or_fail(adev_device *d, const struct adev_http_response *resp,
                     void (*again)(adev_device *))
{
    if (device_retry_later(d, resp, again))
        return;
    if (resp->err != ADEV_NET_OK) {
        device_finish(d, ADEV_FAILED, adev_net_err_reason(resp->err), 0, NULL);
        return;
    }
    const char *code = device_refusal_code(d, resp);
    device_finish(d, resp->status >= 500 ? ADEV_FAILED : ADEV_REJECTED, code, resp->status, NULL);
}

static void
fail_internal(adev_device *d, const char *reason, long status)
{
    device_finish(d, ADEV_FAILED, reason, status, NULL);
}

/* --- renewal --------------------------------------------------------------------------------- */

static void
on_renew(void *arg)
{
    adev_device *d = arg;
    d->renew_timer = NULL;
    if (d->busy) { /* another operation is running: try again shortly */
        d->renew_timer = adev_timer_start(d->hal.timers, 1000, on_renew, d);
        return;
    }
    adev_device_attest(d);
}

/* --- attestation ----------------------------------------------------------------------------- */

int
adev_device_attest(adev_device *d)
{
    if (d == NULL || d->busy)
        return -1;
    adev_timer_cancel(d->hal.timers, d->renew_timer);
    d->renew_timer = NULL;
    d->renewal = adev_device_has_certificate(d);
    d->replayed = 0;
    d->upload_next = 0;
    d->detail[0] = '\0';
    return device_begin_op(d, ADEV_OP_ATTEST, start_attest);
}

static void
start_attest(adev_device *d)
{
    /* with A/B slots, the bootloader (adev_ab_boot) chose the slot this boot runs */
    adev_storage *sys = d->hal.slots != NULL ? adev_ab_running(d->hal.slots) : d->hal.storage;
    if (sys == NULL || adev_boot_run(sys, &d->cfg.boot, &d->boot) != 0) {
        fail_internal(d, "boot_failed", 0);
        return;
    }
    adev_opkey_free(d->op_key); /* a fresh key for every certificate */
    d->op_key = adev_opkey_generate();
    if (d->op_key == NULL) {
        fail_internal(d, "internal_error", 0);
        return;
    }
    send_challenge(d);
}

static void
on_challenge(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;
    json_t *root = NULL;
    uint8_t nonce[32];

    d->call = NULL;
    if (resp->err != ADEV_NET_OK || resp->status != 200) {
        device_retry_or_fail(d, resp, send_challenge);
        goto out;
    }
    root = json_loadb(resp->body, resp->body_len, 0, NULL);
    json_t *jn = json_object_get(root, "nonce");
    if (!json_is_string(jn) ||
        proto_unhex(json_string_value(jn), json_string_length(jn), nonce, sizeof(nonce), 0) != 0) {
        device_set_detail(d, "challenge answer without a 64-hex nonce");
        fail_internal(d, "bad_response", resp->status);
        goto out;
    }
    free(d->evidence);
    d->evidence =
        adev_evidence_build(d->hal.keys, nonce, d->boot.events, d->boot.n, d->op_key, NULL);
    if (d->evidence == NULL) {
        fail_internal(d, "evidence_failed", 0);
        goto out;
    }
    send_attest(d);
out:
    json_decref(root);
}

static void
on_whoami_next(adev_device *d)
{
    d->detail[0] = '\0';
    send_whoami(d);
}

static void
attest_passed(adev_device *d, const struct adev_http_response *resp)
{
    json_t *root = NULL;
    const char *result = NULL, *cert = NULL, *chain = NULL, *bundle = NULL, *nb = NULL, *na = NULL;
    struct adev_report extra;
    json_error_t jerr;

    memset(&extra, 0, sizeof(extra));
    root = json_loadb(resp->body, resp->body_len, 0, &jerr);
    if (root == NULL ||
        json_unpack_ex(root, &jerr, 0, "{s:s, s:s, s:s, s:s, s:s, s:s}", "result", &result,
                       "certificate", &cert, "chain", &chain, "trust_bundle", &bundle, "not_before",
                       &nb, "not_after", &na) != 0 ||
        strcmp(result, "pass") != 0) {
        device_set_detail(d, root == NULL ? "attest answer is not JSON" : jerr.text);
        fail_internal(d, "bad_response", resp->status);
        goto out;
    }
    if (adev_opkey_matches_cert(d->op_key, cert) != 1 ||
        adev_cert_validity(cert, &extra.not_before, &extra.not_after) != 0 ||
        adev_renew_point(extra.not_before, extra.not_after, &extra.renew_at) != 0) {
        device_set_detail(d, "the certificate is not for the key of the CSR, or unreadable");
        fail_internal(d, "bad_response", resp->status);
        goto out;
    }
    if (device_store_credential(d, cert, chain, bundle, &extra) != 0) {
        fail_internal(d, "storage_error", resp->status);
        goto out;
    }
    device_drop_credential(d);
    d->attested = 1;
    d->rec_token[0] = '\0'; /* a passing attestation needs no recovery grant */
    if (d->cfg.auto_renew) {
        int64_t wait_s = extra.renew_at - adev_clock_now(d->hal.clock);
        uint64_t ms = wait_s > 0 ? (uint64_t)wait_s * 1000 : 0;
        d->renew_timer = adev_timer_start(d->hal.timers, ms, on_renew, d);
    }
    d->upload_next = d->cfg.upload_after_attest && adev_crash_pending(d->cfg.crashq) > 0;
    if (d->cfg.whoami_after_attest)
        finish_then(d, ADEV_PASS, "pass", resp->status, &extra, ADEV_OP_WHOAMI, on_whoami_next);
    else if (d->upload_next)
        finish_then(d, ADEV_PASS, "pass", resp->status, &extra, ADEV_OP_UPLOAD,
                    device_start_upload);
    else
        device_finish(d, ADEV_PASS, "pass", resp->status, &extra);
out:
    json_decref(root);
}

static void
on_attest(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;

    d->call = NULL;
    if (resp->err != ADEV_NET_OK || resp->status == 429 || resp->status == 503) {
        device_retry_or_fail(d, resp, send_challenge); /* the nonce may be spent: start over */
        return;
    }
    if (resp->status == 200 && d->cfg.fault_replay && !d->replayed) {
        d->replayed = 1; /* throw the answer away, send the same evidence again */
        send_attest(d);
        return;
    }
    if (resp->status != 200) {
        if (resp->status == 403)
            device_take_recovery(d, resp);
        const char *code = device_refusal_code(d, resp);
        snprintf(d->attest_refusal, sizeof(d->attest_refusal), "%s", code);
        device_finish(d, resp->status >= 500 ? ADEV_FAILED : ADEV_REJECTED, code, resp->status,
                      NULL);
        return;
    }
    attest_passed(d, resp);
}

static void
send_json(adev_device *d, const char *path, const char *body, adev_http_cb cb)
{
    char url[1024];
    struct adev_http_request req;

    memset(&req, 0, sizeof(req));
    if (device_url_of(d, path, url, sizeof(url)) != 0) {
        fail_internal(d, "internal_error", 0);
        return;
    }
    req.method = "POST";
    req.url = url;
    req.content_type = "application/json";
    req.body = body;
    req.body_len = strlen(body);
    req.ca_pem = d->ca;
    req.now = adev_clock_now(d->hal.clock);
    req.timeout_ms = d->cfg.timeout_ms;
    d->attempts++;
    d->call = adev_transport_request(d->hal.transport, &req, cb, d);
    if (d->call == NULL)
        fail_internal(d, "internal_error", 0);
}

static void
send_challenge(adev_device *d)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", d->id_hex);
    send_json(d, "/v1/device/attest/challenge", body, on_challenge);
}

static void
send_attest(adev_device *d)
{
    send_json(d, "/v1/device/attest", d->evidence, on_attest);
}

/* --- whoami ---------------------------------------------------------------------------------- */

int
adev_device_whoami(adev_device *d)
{
    if (d == NULL || d->busy)
        return -1;
    d->renewal = 0;
    d->upload_next = 0;
    return device_begin_op(d, ADEV_OP_WHOAMI, on_whoami_next);
}

static void
on_whoami(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;
    json_t *root = NULL;

    d->call = NULL;
    if (resp->err != ADEV_NET_OK || resp->status != 200) {
        device_retry_or_fail(d, resp, send_whoami);
        goto out;
    }
    root = json_loadb(resp->body, resp->body_len, 0, NULL);
    json_t *id = json_object_get(root, "device_id");
    if (!json_is_string(id) || strcmp(json_string_value(id), d->id_hex) != 0) {
        device_set_detail(d, "whoami answered another or no device_id");
        fail_internal(d, "bad_response", resp->status);
        goto out;
    }
    if (d->upload_next && adev_crash_pending(d->cfg.crashq) > 0)
        finish_then(d, ADEV_PASS, "ok", resp->status, NULL, ADEV_OP_UPLOAD, device_start_upload);
    else
        device_finish(d, ADEV_PASS, "ok", resp->status, NULL);
out:
    json_decref(root);
}

int
device_send_mtls(adev_device *d, const char *method, const char *path, const char *body,
                 adev_http_cb cb)
{
    char url[1024];
    struct adev_http_request req;

    assert(d->have_cred); /* the client certificate of the request */
    memset(&req, 0, sizeof(req));
    if (device_url_of(d, path, url, sizeof(url)) != 0)
        return -1;
    req.method = method;
    req.url = url;
    if (body != NULL) {
        req.content_type = "application/json";
        req.body = body;
        req.body_len = strlen(body);
    }
    req.ca_pem = d->ca;
    req.client_cert_pem = d->cred.chain_pem;
    req.client_key_pem = d->cred.key_pem;
    req.now = adev_clock_now(d->hal.clock);
    req.timeout_ms = d->cfg.timeout_ms;
    d->attempts++;
    d->call = adev_transport_request(d->hal.transport, &req, cb, d);
    return d->call != NULL ? 0 : -1;
}

static void
send_whoami(adev_device *d)
{
    if (!d->have_cred && device_load_credential(d) != 0) {
        fail_internal(d, "no_certificate", 0);
        return;
    }
    if (device_send_mtls(d, "GET", "/v1/device/whoami", NULL, on_whoami) != 0)
        fail_internal(d, "internal_error", 0);
}

/* --- lifetime -------------------------------------------------------------------------------- */

adev_device *
adev_device_new(const struct adev_hal *hal, const struct adev_device_config *cfg, adev_report_cb cb,
                void *arg)
{
    adev_device *d = NULL, *res = NULL;
    uint8_t spki[ADEV_SPKI_LEN];

    if (hal == NULL || cfg == NULL || cb == NULL || hal->keys == NULL || hal->storage == NULL ||
        hal->clock == NULL || hal->transport == NULL || hal->timers == NULL ||
        cfg->server_url == NULL || cfg->server_ca_pem == NULL)
        goto out;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        goto out;
    d->hal = *hal;
    d->cfg = *cfg;
    d->cb = cb;
    d->arg = arg;
    d->url = dup_str(cfg->server_url);
    d->ca = dup_str(cfg->server_ca_pem);
    if (d->url == NULL || d->ca == NULL)
        goto out;
    size_t n = strlen(d->url);
    while (n > 0 && d->url[n - 1] == '/')
        d->url[--n] = '\0';
    d->cfg.server_url = d->url;
    d->cfg.server_ca_pem = d->ca;
    d->hw = dup_str(cfg->hardware);
    d->img_root = dup_str(cfg->image_root_json);
    d->dir_root = dup_str(cfg->director_root_json);
    if ((cfg->hardware != NULL && d->hw == NULL) ||
        (cfg->image_root_json != NULL && d->img_root == NULL) ||
        (cfg->director_root_json != NULL && d->dir_root == NULL))
        goto out;
    d->cfg.hardware = d->hw;
    d->cfg.image_root_json = d->img_root;
    d->cfg.director_root_json = d->dir_root;
    if (d->cfg.max_attempts == 0)
        d->cfg.max_attempts = DEFAULT_ATTEMPTS;
    if (d->cfg.backoff_base_ms == 0)
        d->cfg.backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
    if (d->cfg.backoff_max_ms == 0)
        d->cfg.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (d->cfg.retry_after_max_s == 0)
        d->cfg.retry_after_max_s = DEFAULT_RETRY_AFTER_MAX_S;
    if (d->cfg.upload_batch == 0)
        d->cfg.upload_batch = DEFAULT_UPLOAD_BATCH;
    if (d->cfg.upload_batch > PROTO_TEL_REPORTS_MAX)
        d->cfg.upload_batch = PROTO_TEL_REPORTS_MAX;
    if (d->cfg.upload_max_attempts == 0)
        d->cfg.upload_max_attempts = DEFAULT_UPLOAD_ATTEMPTS;
    if (d->cfg.upload_backoff_base_ms == 0)
        d->cfg.upload_backoff_base_ms = DEFAULT_UPLOAD_BASE_MS;
    if (d->cfg.upload_backoff_max_ms == 0)
        d->cfg.upload_backoff_max_ms = DEFAULT_UPLOAD_MAX_MS;
    if (d->cfg.update_backoff_base_ms == 0)
        d->cfg.update_backoff_base_ms = 300000; /* docs/update.md 4: at least 5 minutes */
    if (d->cfg.update_backoff_max_ms == 0)
        d->cfg.update_backoff_max_ms = 86400000;
    if (d->cfg.update_tries == 0)
        d->cfg.update_tries = 2;
    if (adev_keystore_public_der(hal->keys, spki) != 0 || adev_device_id(spki, d->id) != 0)
        goto out;
    proto_hex(d->id, sizeof(d->id), d->id_hex);
    res = d;
    d = NULL;
out:
    adev_device_free(d);
    return res;
}

const struct adev_boot_log *
adev_device_boot_log(const adev_device *d)
{
    return d != NULL ? &d->boot : NULL;
}

const char *
adev_device_id_hex(const adev_device *d)
{
    return d != NULL ? d->id_hex : NULL;
}

int
adev_device_has_certificate(adev_device *d)
{
    return d != NULL && adev_storage_exists(d->hal.storage, ADEV_BLOB_CREDENTIAL);
}

void
adev_device_free(adev_device *d)
{
    if (d == NULL)
        return;
    if (d->call != NULL)
        adev_transport_cancel(d->hal.transport, d->call);
    adev_timer_cancel(d->hal.timers, d->step_timer);
    adev_timer_cancel(d->hal.timers, d->renew_timer);
    adev_opkey_free(d->op_key);
    free(d->evidence);
    free(d->upload_body);
    device_update_free(d);
    free(d->rec_director);
    free(d->hw);
    free(d->img_root);
    free(d->dir_root);
    adev_crash_abandon(d->cfg.crashq);
    device_drop_credential(d);
    free(d->url);
    free(d->ca);
    free(d);
}
