/* Device attestation endpoints (docs/protocol.md section 3), over TLS without a client
 * certificate: POST /v1/device/attest/challenge hands out stateless single-use nonces
 * (attest_nonce.h), POST /v1/device/attest checks evidence in the protocol's order and answers a
 * short-lived certificate or 403 attestation_failed with the first failing reason.
 *
 * Until the identity signature has verified, nothing depends on the registry: the nonce is checked
 * without it, an unknown device is answered as a bad signature (after a verification with a key
 * no device has, which takes the same time), and nothing is recorded. Only attempts that proved
 * possession of the identity key are recorded. Nonces are never logged.
 *
 * An attempt talks to the store twice: store_attest_load uses the nonce up and reads everything
 * the checks need, store_attestation_record writes the outcome. The certificate is issued by the
 * signer in between. A pass is answered once its record is durable, with the request deferred
 * meanwhile (store_attestation_record_durable: one flush of the log for many attestations). */
#include "dev_handlers.h"
#include "app.h"
#include "api.h"
#include "metrics.h"
#include "api_util.h"
#include "attest.h"
#include "attest_nonce.h"
#include "director.h"
#include "upd_recovery.h"
#include "proto_event.h"
#include "proto_identity.h"
#include "log.h"
#include "pki.h"
#include "ratelimit.h"
#include "signer.h"
#include "store.h"
#include "util.h"

#include <arpa/inet.h>
#include <assert.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_KEY_MAX 64
#define MSG_MAX 256

/* The answers before possession of the identity key is proved: fixed, so that they tell nothing
 * of the registry (section 3.3). */
#define BAD_NONCE_MSG "the nonce was not issued to this device ID, has expired or was used"
#define BAD_SIGNATURE_MSG                                                                          \
    "the signature does not verify with the identity key registered for this device ID"

/* A P-256 key whose private half was thrown away: an unknown device's signature is verified with
 * it, so that it takes the time of a registered device's and fails. */
static const char NO_DEVICE_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8RVqhnV5hiNII3mLzs9P7rblj93e\n"
    "L5Ib9SvP++Rxq+ojDh8mQcQm7AH1YzoUpGQWOENdYrX+sx27Eo5ZaLB74w==\n"
    "-----END PUBLIC KEY-----\n";

/* --- challenge --- */

/* The rate-limit key of a client address: the address, or for IPv6 its /64 (one host commonly
 * holds a whole /64). */
static void
client_key(const char *peer, char *out, size_t len)
{
    struct in6_addr a6;
    if (strchr(peer, ':') != NULL && inet_pton(AF_INET6, peer, &a6) == 1 &&
        !IN6_IS_ADDR_V4MAPPED(&a6)) {
        char text[INET6_ADDRSTRLEN];
        memset(a6.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) != NULL) {
            snprintf(out, len, "%s/64", text);
            return;
        }
    }
    snprintf(out, len, "%s", peer);
}

/* Takes a token for the caller's address from the challenge limiter: challenges and evidence
 * (prefix "a:", a bucket of its own at the same rate) are limited separately. Returns 0, or -1 with
 * 429 rate_limited and Retry-After set. */
static int
rate_allowed(api_req *r, const char *prefix, const char *what)
{
    char key[RL_KEY_MAX], addr[RL_KEY_MAX];
    int retry = 0;
    client_key(r->peer, addr, sizeof(addr));
    snprintf(key, sizeof(key), "%s%s", prefix, addr);
    if (addr[0] == '\0' || ratelimit_take(r->app->challenge_rl, key, util_mono_ns(), &retry))
        return 0;
    r->retry_after = retry;
    api_error(r, 429, "rate_limited", "too many %s from this address; retry in %d s", what, retry);
    return -1;
}

/* The body {"device_id": "<64 lower-case hex>"}. Returns 0 with *id borrowed from r->json, or -1
 * with a 400 reply set. */
static int
challenge_body(api_req *r, const char **id)
{
    static const char *const keys[] = {"device_id", NULL};
    const json_t *v;
    if (api_body_object(r, keys) != 0)
        return -1;
    v = json_object_get(r->json, "device_id");
    if (!json_is_string(v) || !proto_digest_hex_ok(json_string_value(v), json_string_length(v))) {
        api_invalid(r, "field 'device_id' must be 64 lower-case hex characters");
        return -1;
    }
    *id = json_string_value(v);
    return 0;
}

void
dev_attest_challenge(api_req *r)
{
    unsigned char nonce[ATTEST_NONCE_LEN];
    char hex[PROTO_HASH_HEX + 1], exp[32];
    const char *device_id = NULL;
    int64_t now = util_now(), ttl = r->app->cfg->nonce_ttl_s;

    _Static_assert(ATTEST_NONCE_LEN == PROTO_HASH_LEN, "a nonce is 64 hex characters");
    assert(ttl <= ATTEST_NONCE_TTL_MAX);
    if (rate_allowed(r, "", "challenges") != 0 || challenge_body(r, &device_id) != 0)
        return;
    /* Neither the registry nor the database is asked: every device ID gets the same kind of
     * answer, and no number of challenges changes the nonces of another caller. */
    attest_nonce_make(r->app->nonce_key, device_id, now + ttl, nonce);
    log_debug("msg=\"attestation challenge\" device=%s peer=%s", device_id, r->peer);
    proto_hex(nonce, sizeof(nonce), hex);
    api_reply_built(r, 200,
                    json_pack("{s:s, s:s, s:I}", "nonce", hex, "expires_at",
                              util_rfc3339(now + ttl, exp, sizeof(exp)), "ttl_s", (json_int_t)ttl));
    sodium_memzero(nonce, sizeof(nonce));
    sodium_memzero(hex, sizeof(hex));
}

/* --- attest --- */

/* One attestation attempt. */
struct attempt {
    api_req *r;
    int64_t now;
    struct attest_evidence ev;
    struct store_measurement m[PROTO_EVENTS_MAX]; /* the events as the store sees them */
    char digest[PROTO_EVENTS_MAX][PROTO_HASH_HEX + 1];
    struct store_attest_ctx ctx; /* what the store read for the attempt */
    json_t *measurements;        /* the event log as presented, for the record */
    int platform_refused; /* checks 7-8 failed on a bootloader or os event: recovery applies */
};

/* The record of the attempt (strings borrowed from a). */
static struct store_attestation
record_of(const struct attempt *a, const char *reason, const char *serial, int64_t not_after)
{
    return (struct store_attestation){
        .device_id = a->ev.device_id,
        .at = a->now,
        .pass = reason == NULL,
        .reason = reason,
        .measurements = a->measurements,
        .cert_serial = serial,
        .cert_not_after = not_after,
        .peer = a->r->peer[0] != '\0' ? a->r->peer : NULL,
    };
}

/* Records the failed attempt of a registered device. Returns the store code. */
static int
record(struct attempt *a, const char *reason)
{
    struct store_attestation rec = record_of(a, reason, NULL, 0);
    int rc = store_attestation_record(a->r->app->st, &rec, NULL);
    if (rc != STORE_OK)
        log_error("msg=\"cannot record an attestation\" device=%s rc=%d", a->ev.device_id, rc);
    return rc;
}

/* Whether a platform image of a recovery answer would pass attestation once installed: a reference
 * value (as bootloader or os) not below the tenant's minimum. Images that would fail again are not
 * offered: the device would heal into a second refusal. */
static int
recovery_accepts(void *ctx, const struct store_deploy_image *im)
{
    const struct attempt *a = ctx;
    static const char *const stages[] = {"os", "bootloader"};
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        struct store_measurement m = {stages[i], im->component, im->version, im->svn, im->sha256};
        int ok = 0;
        if (store_refval_accepts(a->r->app->st, a->ctx.tenant_id, &m, &ok) == STORE_OK && ok)
            return 1;
    }
    return 0;
}

/* The recovery grant of a device refused for its platform (docs/update.md section 8):
 * {"token", "expires_at", "director"}, or NULL when its group has nothing to offer (or on any
 * error: the refusal stands without it). */
static json_t *
recovery_grant(struct attempt *a)
{
    const struct app *app = a->r->app;
    struct upd_recovery_grant g = {.tenant_id = a->ctx.tenant_id};
    char err[MSG_MAX] = "", token[UPD_RECOVERY_TOKEN_HEX], when[32];
    char *body = NULL;
    size_t len = 0;
    json_t *dev = NULL, *director_json = NULL, *out = NULL;

    if (app->director == NULL || app->recovery == NULL ||
        store_device_get(app->st, a->ctx.tenant_id, a->ev.device_id, &dev) != STORE_OK)
        goto out;
    snprintf(g.device_id, sizeof(g.device_id), "%s", a->ev.device_id);
    struct director_device dd = {a->ctx.tenant_id, a->ev.device_id,
                                 json_integer_value(json_object_get(dev, "group_id"))};
    struct director_filter filter = {recovery_accepts, a};
    if (director_recovery_answer(app->director, &dd, &filter, g.images, UPD_RECOVERY_IMAGES,
                                 &g.nimages, &body, &len, err, sizeof(err)) != 0 ||
        (director_json = json_loadb(body, len, 0, NULL)) == NULL ||
        upd_recovery_grant(app->recovery, &g, a->now, token) != 0)
        goto out;
    out = json_pack("{s:s, s:s, s:O}", "token", token, "expires_at",
                    util_rfc3339(g.expires_at, when, sizeof(when)), "director", director_json);
    log_info("msg=\"recovery granted\" device=%s tenant=%lld images=%zu", a->ev.device_id,
             (long long)a->ctx.tenant_id, g.nimages);
out:
    if (out == NULL && err[0] != '\0')
        log_info("msg=\"no recovery\" device=%s reason=\"%s\"", a->ev.device_id, err);
    sodium_memzero(token, sizeof(token));
    json_decref(director_json);
    json_decref(dev);
    free(body);
    return out;
}

static void fail(struct attempt *a, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the failure of a device that proved possession of its key, and answers 403
 * attestation_failed. */
static void
fail(struct attempt *a, const char *reason, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    assert(a->ctx.registered);
    (void)record(a, reason);
    metrics_attestation(a->r->app->metrics, reason);
    log_info("msg=attestation result=fail reason=%s device=%s tenant=%lld peer=%s", reason,
             a->ev.device_id, (long long)a->ctx.tenant_id, a->r->peer);
    json_t *extra = json_pack("{s:s}", "reason", reason);
    json_t *grant = a->platform_refused ? recovery_grant(a) : NULL;
    if (extra != NULL && grant != NULL)
        json_object_set_new(extra, "recovery", grant);
    else
        json_decref(grant);
    api_error_with(a->r, 403, "attestation_failed", extra, "%s", msg);
}

/* Answers an attempt that did not prove possession of the identity key: reason (bad_nonce or
 * bad_signature) with its fixed message, nothing recorded. why, the operator's reason (metrics and
 * log), may say more: unknown_device. */
static void
refuse(struct attempt *a, const char *reason, const char *why)
{
    metrics_attestation(a->r->app->metrics, why);
    log_info("msg=attestation result=fail reason=%s device=%s peer=%s", why, a->ev.device_id,
             a->r->peer);
    api_error_with(a->r, 403, "attestation_failed", json_pack("{s:s}", "reason", reason), "%s",
                   strcmp(reason, "bad_nonce") == 0 ? BAD_NONCE_MSG : BAD_SIGNATURE_MSG);
}

/* The events as store measurements (strings borrowed from a->ev and a->digest). */
static void
measurements_of(struct attempt *a)
{
    assert(a->ev.nevents <= PROTO_EVENTS_MAX);
    for (size_t i = 0; i < a->ev.nevents; i++) {
        const struct proto_event *e = &a->ev.events[i];
        proto_hex(e->digest, PROTO_HASH_LEN, a->digest[i]);
        a->m[i] = (struct store_measurement){proto_stage_name(e->stage), e->component, e->version,
                                             (int64_t)e->svn, a->digest[i]};
    }
}

/* Check 2: the identity signature, with the registered key (an unknown device's with
 * NO_DEVICE_PUB, answered alike). Returns 0, or -1 with the reply set. */
static int
check_identity(struct attempt *a)
{
    uint8_t csr_hash[PROTO_HASH_LEN], msg[PROTO_MSG_LEN];
    char err[MSG_MAX] = "";
    const char *pem = a->ctx.registered ? a->ctx.public_key_pem : NO_DEVICE_PUB;
    int rc = -1;

    if (proto_sha256(a->ev.csr_der, a->ev.csr_der_len, csr_hash) != 0) {
        api_error(a->r, 500, "internal", "cannot hash the CSR");
        goto out;
    }
    proto_attest_message(a->ev.nonce, a->ev.device_id_raw, a->ev.composite, csr_hash, msg);
    int v =
        attest_verify_signature(pem, msg, sizeof(msg), a->ev.sig, a->ev.sig_len, err, sizeof(err));
    if (v < 0) {
        log_error("msg=\"signature check failed\" device=%s err=\"%s\"", a->ev.device_id, err);
        api_error(a->r, 500, "internal", "cannot verify the signature");
        goto out;
    }
    if (v == 0 || !a->ctx.registered) {
        log_debug("msg=\"bad signature\" device=%s err=\"%s\"", a->ev.device_id, err);
        refuse(a, "bad_signature", a->ctx.registered ? "bad_signature" : "unknown_device");
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(msg, sizeof(msg));
    return rc;
}

/* Checks 3-5, once the device has proved possession of its key: claimed, not blocked, CSR.
 * Returns 0, or -1 with the reply set. */
static int
check_device(struct attempt *a)
{
    char err[MSG_MAX] = "";

    a->r->tenant_id = a->ctx.tenant_id;
    if (a->ctx.tenant_id == 0) {
        fail(a, "not_claimed", "the device is not claimed by a tenant");
        return -1;
    }
    if (a->ctx.blocked) {
        fail(a, "blocked", "the device is blocked");
        return -1;
    }
    if (attest_check_csr(a->ev.csr_der, a->ev.csr_der_len, err, sizeof(err)) != 0) {
        fail(a, "bad_csr", "%s", err);
        return -1;
    }
    return 0;
}

/* Check 1, then the one read: the nonce's MAC and expiry, then its single use. Returns 0 with
 * a->ctx filled, or -1 with the reply set. */
static int
check_nonce(struct attempt *a)
{
    const struct app *app = a->r->app;
    int64_t expires_at = 0;

    if (attest_nonce_check(app->nonce_key, a->ev.device_id, a->ev.nonce, a->now, &expires_at) !=
        0) {
        refuse(a, "bad_nonce", "bad_nonce");
        return -1;
    }
    int rc = store_attest_load(app->st, a->ev.device_id, a->ev.nonce, expires_at, a->now, a->m,
                               a->ev.nevents, &a->ctx);
    if (rc != STORE_OK) {
        api_store_error(a->r, rc, "device");
        return -1;
    }
    if (!a->ctx.nonce_ok) {
        refuse(a, "bad_nonce", "bad_nonce");
        return -1;
    }
    return 0;
}

/* Checks 6-8: the log replays to the composite, every event is a known-good measurement, and none
 * is below the tenant's minimum svn. Returns 0, or -1 with the reply set. */
static int
check_measurements(struct attempt *a)
{
    uint8_t composite[PROTO_HASH_LEN];
    const struct store_measurement *m = a->m;
    size_t i, n = a->ev.nevents;

    if (proto_composite(a->ev.events, n, composite) != 0) {
        api_error(a->r, 500, "internal", "cannot replay the event log");
        return -1;
    }
    if (CRYPTO_memcmp(composite, a->ev.composite, sizeof(composite)) != 0) {
        fail(a, "log_mismatch", "the event log does not replay to the composite digest");
        return -1;
    }
    for (i = 0; i < n && a->ctx.known[i]; i++)
        ;
    if (i < n) {
        a->platform_refused = a->ev.events[i].stage != PROTO_STAGE_APP;
        fail(a, "unknown_measurement",
             "event_log[%zu] (%s %s %s, svn %lld) matches no reference value", i, m[i].stage,
             m[i].component, m[i].version, (long long)m[i].svn);
        return -1;
    }
    for (i = 0; i < n && m[i].svn >= a->ctx.min_svn[i]; i++)
        ;
    if (i < n) {
        a->platform_refused = a->ev.events[i].stage != PROTO_STAGE_APP;
        fail(a, "rollback", "event_log[%zu] (%s) has svn %lld, below the minimum %lld", i,
             m[i].component, (long long)m[i].svn, (long long)a->ctx.min_svn[i]);
        return -1;
    }
    return 0;
}

/* --- the certificate --- */

/* Appends pem (and a newline if it lacks one) to the malloc'd string *buf of *len bytes. */
static int
append_pem(char **buf, size_t *len, const char *pem)
{
    size_t n = pem != NULL ? strlen(pem) : 0;
    char *nb = realloc(*buf, *len + n + 2);
    if (nb == NULL)
        return -1;
    if (n > 0)
        memcpy(nb + *len, pem, n);
    *len += n;
    if (n > 0 && pem[n - 1] != '\n')
        nb[(*len)++] = '\n';
    nb[*len] = '\0';
    *buf = nb;
    return 0;
}

/* What the tenant's CAs give a certificate: the active CA (borrowed from a->ctx) and the trust
 * bundle (malloc'd): the tenant's device root, then every unexpired issuing CA. */
struct issuer {
    const struct store_attest_ca *ca;
    char *bundle;
    size_t bundle_len;
};

/* Returns 0, or -1 with the reply set. */
static int
load_issuer(struct attempt *a, struct issuer *is)
{
    /* The tenant's device root heads the bundle (docs/protocol.md §4). */
    if (a->ctx.device_root_pem != NULL &&
        append_pem(&is->bundle, &is->bundle_len, a->ctx.device_root_pem) != 0) {
        api_error(a->r, 500, "internal", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < a->ctx.ncas; i++) {
        const struct store_attest_ca *ca = &a->ctx.cas[i];
        if (is->ca == NULL && ca->active)
            is->ca = ca;
        if (append_pem(&is->bundle, &is->bundle_len, ca->cert_pem) != 0) {
            api_error(a->r, 500, "internal", "out of memory");
            return -1;
        }
    }
    if (is->ca == NULL || is->ca->key_name == NULL) {
        log_error("msg=\"attestation passed but the tenant has no active issuing CA\" tenant=%lld "
                  "hint=\"aegisctl pki rotate <tenant>\"",
                  (long long)a->ctx.tenant_id);
        api_error(a->r, 503, "unavailable", "the tenant has no active issuing CA");
        return -1;
    }
    return 0;
}

/* Issues the device certificate from the CSR: the signer process builds the profile of section 3.4
 * itself and enforces its own limits, so its refusals map to answers here. *leaf is malloc'd. */
static int
issue_leaf(struct attempt *a, const struct issuer *is, char **leaf)
{
    char err[MSG_MAX];
    struct signer_leaf_req req = {a->ctx.tenant_id,
                                  a->ctx.tenant_name,
                                  a->ev.device_id,
                                  is->ca->key_name,
                                  a->ev.csr_pem,
                                  a->ev.csr_pem_len,
                                  a->r->app->cfg->cert_lifetime_s};
    int rc = signer_issue_device_cert(a->r->app->sg, &req, leaf, err, sizeof(err));
    if (rc == 0) {
        metrics_cert_issued(a->r->app->metrics, METRICS_CERT_DEVICE);
        return 0;
    }
    log_error("msg=\"cannot issue a device certificate\" device=%s tenant=%lld rc=%d err=\"%s\"",
              a->ev.device_id, (long long)a->ctx.tenant_id, rc, err);
    if (rc == SIGNER_UNAVAILABLE) {
        a->r->retry_after = 1;
        api_error(a->r, 503, "signer_unavailable", "the signer is restarting; try again");
    } else if (rc == SIGNER_BUSY) {
        metrics_signer_busy(a->r->app->metrics);
        a->r->retry_after = 1;
        api_error(a->r, 503, "signer_busy", "the tenant's certificate issuance rate is spent");
    } else {
        api_error(a->r, 500, "internal", "cannot issue the certificate");
    }
    return -1;
}

/* A pass waiting for its record to be durable: the deferred request and its answer. */
struct pending_pass {
    api_deferred *d;
    json_t *body; /* the 200 answer */
    struct metrics *metrics;
    int64_t tenant_id;
    char device_id[PROTO_HASH_HEX + 1];
    char serial[ATTEST_SERIAL_HEX_MAX];
    char peer[sizeof(((api_req *)0)->peer)];
};

/* The store's answer (store_durable_fn): the certificate is answered only once its record is
 * durable. Runs on the store's syncer thread: touches nothing of the request but p. */
static void
pass_durable(void *arg, int rc)
{
    struct pending_pass *p = arg;
    if (rc == STORE_OK) {
        metrics_attestation(p->metrics, NULL);
        log_info("msg=attestation result=pass device=%s tenant=%lld serial=%s peer=%s",
                 p->device_id, (long long)p->tenant_id, p->serial, p->peer);
        api_deferred_reply(p->d, 200, p->body, 0);
    } else {
        log_error("msg=\"cannot record an attestation\" device=%s rc=%d", p->device_id, rc);
        json_decref(p->body);
        api_deferred_reply(p->d, 500,
                           json_pack("{s:s, s:s}", "error", "internal", "message",
                                     "cannot record the attestation"),
                           0);
    }
    free(p);
}

/* Records the pass and answers body (stolen) once the record is durable: the request is deferred,
 * so that this thread serves others while the log is flushed (one flush for many attestations). */
static void
record_pass(struct attempt *a, const char *serial, int64_t not_after, json_t *body)
{
    struct pending_pass *p = calloc(1, sizeof(*p));
    if (p == NULL || body == NULL) {
        free(p);
        json_decref(body);
        api_error(a->r, 500, "internal", "out of memory");
        return;
    }
    *p = (struct pending_pass){
        .body = body, .metrics = a->r->app->metrics, .tenant_id = a->ctx.tenant_id};
    snprintf(p->device_id, sizeof(p->device_id), "%s", a->ev.device_id);
    snprintf(p->serial, sizeof(p->serial), "%s", serial);
    snprintf(p->peer, sizeof(p->peer), "%s", a->r->peer);
    struct store_attestation rec = record_of(a, NULL, serial, not_after);
    p->d = api_defer(a->r);
    int rc = store_attestation_record_durable(a->r->app->st, &rec, pass_durable, p);
    if (rc != STORE_OK) {
        a->r->err_code = "internal";
        pass_durable(p, rc);
    }
}

/* Issues the certificate, records the pass and answers 200 once the record is durable. */
static void
pass(struct attempt *a)
{
    struct issuer is = {NULL, NULL, 0};
    char *leaf = NULL, *chain = NULL;
    char serial[ATTEST_SERIAL_HEX_MAX], err[MSG_MAX], nb[32], na[32];
    size_t chain_len = 0;
    int64_t not_before = 0, not_after = 0;

    if (load_issuer(a, &is) != 0 || issue_leaf(a, &is, &leaf) != 0)
        goto out;
    if (attest_cert_info(leaf, serial, &not_before, &not_after, err, sizeof(err)) != 0 ||
        append_pem(&chain, &chain_len, leaf) != 0 ||
        append_pem(&chain, &chain_len, is.ca->cert_pem)) {
        api_error(a->r, 500, "internal", "cannot assemble the certificate chain");
        goto out;
    }
    record_pass(a, serial, not_after,
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "result", "pass", "certificate", leaf,
                          "chain", chain, "trust_bundle", is.bundle, "not_before",
                          util_rfc3339(not_before, nb, sizeof(nb)), "not_after",
                          util_rfc3339(not_after, na, sizeof(na))));
out:
    free(leaf);
    free(chain);
    free(is.bundle);
}

void
dev_attest(api_req *r)
{
    struct attempt *a = calloc(1, sizeof(*a));
    char err[MSG_MAX];

    if (a == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    a->r = r;
    a->now = util_now();
    /* Every attempt with a valid nonce writes to the database: bound them per address too. */
    if (rate_allowed(r, "a:", "attestation attempts") != 0)
        goto out;
    /* A body without the evidence's shape does not consume the nonce. */
    if (attest_parse(r->json, &a->ev, err, sizeof(err)) != 0) {
        api_error(r, 400, "invalid_evidence", "%s", err);
        goto out;
    }
    if ((a->measurements = attest_events_json(&a->ev)) == NULL) {
        api_error(r, 500, "internal", "out of memory");
        goto out;
    }
    measurements_of(a);
    if (check_nonce(a) == 0 && check_identity(a) == 0 && check_device(a) == 0 &&
        check_measurements(a) == 0)
        pass(a);
out:
    store_attest_ctx_free(&a->ctx);
    json_decref(a->measurements);
    sodium_memzero(a, sizeof(*a)); /* the nonce with the rest */
    free(a);
}
