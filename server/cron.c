#include "cron.h"

#include "app.h"

#include "director.h"
#include "log.h"
#include "metrics.h"
#include "ops_metrics.h"
#include "pki.h"
#include "pki_util.h"
#include "sg_policy.h"
#include "signer.h"
#include "upd_online.h"
#include "rollout.h"
#include "util.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Used nonces are kept until they expire (from then on their MAC check refuses them), then deleted
 * in batches this large, so one tick never holds the write lock for long. */
#define NONCE_PURGE_BATCH 5000
#define NONCE_PURGE_MAX_BATCHES 20
/* Old telemetry reports and attestation records are deleted in small transactions, so the ingest
 * writer never waits long for the write lock, with a pause between them in which a waiting writer
 * takes the lock (a mutex is not fair: the loop thread would take it straight back). As many as fit
 * in a time budget per run (0.75 s every 5 s: the loop thread also handles signals), so retention
 * keeps up with a fleet that reports thousands per second instead of falling behind at a fixed
 * 1,000 rows per second. */
#define RETENTION_BATCH 1000
#define RETENTION_BUDGET_NS (750ULL * 1000 * 1000)
#define RETENTION_PAUSE_MS 2
/* New buckets are watched for flagging this long after they were first seen (their first hour, and
 * slack for reports that arrive late). */
#define NEW_BUCKET_WATCH_S (2 * 86400)

struct step {
    const char *name;
    uint64_t period_ms;
    void (*run)(cron *c);
};

static void purge_nonces(cron *c);
static void detect_failures(cron *c);
static void purge_reports(cron *c);
static void purge_attestations(cron *c);
static void checkpoint(cron *c);
static void sweep_uploads(cron *c);
static void resign_tuf(cron *c);
static void rollouts(cron *c);
static void purge_attempts(cron *c);
static void rollout_waves(cron *c);
static void rotate_cas(cron *c);
static void fleet_gauges(cron *c);

/* clang-format off */
static const struct step steps[] = {
    {"purge_nonces", 10000, purge_nonces},
    {"detect_failures", 5000, detect_failures},
    {"purge_reports", 5000, purge_reports},
    {"purge_attestations", 5000, purge_attestations},
    {"checkpoint", 2000, checkpoint},
    {"sweep_uploads", 600000, sweep_uploads},
    {"resign_tuf", 60000, resign_tuf},
    {"rollouts", 1000, rollouts},
    {"purge_attempts", 60000, purge_attempts},
    {"rollout_waves", 5000, rollout_waves},
    {"rotate_cas", 3600000, rotate_cas},
    {"fleet_gauges", 15000, fleet_gauges},
};
/* clang-format on */
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

struct cron {
    uv_timer_t timer;
    store *st;
    const struct config *cfg;
    struct metrics *metrics;
    struct signer *sg;
    struct director *director;
    const struct app *app;
    uint64_t last_ms[NSTEPS];
    int failed; /* the running step met an error that is not the database's (on_tick) */
};

/* Image uploads a crash cut off leave their temporary file (store_image_sweep). */
static void
sweep_uploads(cron *c)
{
    char dir[PATH_MAX];
    int removed = 0;
    snprintf(dir, sizeof(dir), "%s/images", c->cfg->data_dir);
    if (store_image_sweep(dir, &removed) != 0)
        log_warn("msg=\"cannot sweep the image upload directory\" dir=%s", dir);
    else if (removed > 0)
        log_info("msg=\"removed leftover image uploads\" count=%d", removed);
}

/* API requests never checkpoint the write-ahead log (store.h store_checkpoint): this keeps it short
 * when the telemetry writer, which checkpoints by itself, is idle. */
static void
checkpoint(cron *c)
{
    int nlog = 0, copied = 0;
    if (store_checkpoint(c->st, &nlog, &copied) == STORE_OK && nlog > 0)
        log_debug("msg=checkpoint log_pages=%d copied_pages=%d", nlog, copied);
}

/* The image repositories' online roles, re-signed with half their lifetime left (docs/update.md 2).
 */
static void
resign_tuf(cron *c)
{
    int n = 0, rc = upd_refresh_all(c->st, c->sg, util_now(), &n);
    c->failed = rc != 0;
    if (rc == 0 && n > 0)
        log_info("msg=\"online TUF metadata re-signed\" files=%d", n);
}

static void
purge_nonces(cron *c)
{
    int purged = NONCE_PURGE_BATCH, total = 0;
    for (int i = 0; i < NONCE_PURGE_MAX_BATCHES && purged == NONCE_PURGE_BATCH; i++) {
        if (store_nonce_purge(c->st, util_now(), NONCE_PURGE_BATCH, &purged) != STORE_OK)
            return;
        total += purged;
    }
    if (total > 0)
        log_debug("msg=\"purged expired used nonces\" count=%d", total);
}

/* Emerging problems (docs/api.md "Failure reporting"): new buckets that spread fast, and image
 * versions that crash more than their predecessors. Each condition is flagged once. */
static void
detect_failures(cron *c)
{
    const struct config *cfg = c->cfg;
    int64_t now = util_now();
    int raised = 0;
    if (store_flag_new_buckets(c->st, now - NEW_BUCKET_WATCH_S, cfg->flag_new_bucket_devices, now,
                               &raised) == STORE_OK &&
        raised > 0) {
        metrics_failure_flags(c->metrics, METRICS_FLAG_NEW_BUCKET, (uint64_t)raised);
        log_info("msg=\"failure flags raised\" kind=new_bucket count=%d", raised);
    }
    if (store_flag_rate_regressions(c->st, cfg->flag_rate_factor_pct,
                                    cfg->flag_min_device_hours * 3600, now, &raised) == STORE_OK &&
        raised > 0) {
        metrics_failure_flags(c->metrics, METRICS_FLAG_RATE_REGRESSION, (uint64_t)raised);
        log_info("msg=\"failure flags raised\" kind=rate_regression count=%d", raised);
    }
}

/* Staged rollouts (docs/update.md section 7): halts and advances of running deployments, then the
 * director takes the new generations (and re-signs answers that near their expiry). */
static void
rollouts(cron *c)
{
    _Static_assert(STORE_DEPLOY_NSTATES == METRICS_DEPLOYMENT_STATES, "deployment states");
    struct rollout_run run;
    int64_t counts[STORE_DEPLOY_NSTATES];
    int64_t now = util_now();
    rollout_check(c->st, now, &run);
    if (c->director != NULL) {
        director_sync(c->director, now);
        metrics_director(c->metrics, director_built(c->director));
    }
    metrics_rollout(c->metrics,
                    store_deploy_count_states(c->st, counts) == STORE_OK ? counts : NULL,
                    (uint64_t)run.halted, (uint64_t)run.advanced + (uint64_t)run.completed);
}

/* Deletes with purge, in batches of RETENTION_BATCH, what is older than days. */
static void
retention(cron *c, int (*purge)(store *, int64_t, int, int *), int64_t days, const char *what)
{
    int64_t before = util_now() - days * 86400;
    int purged = RETENTION_BATCH, total = 0;
    uint64_t t0 = util_mono_ns();
    while (purged == RETENTION_BATCH) {
        if (total > 0) {
            if (util_mono_ns() - t0 >= RETENTION_BUDGET_NS)
                break; /* the rest on the next run */
            uv_sleep(RETENTION_PAUSE_MS);
        }
        if (purge(c->st, before, RETENTION_BATCH, &purged) != STORE_OK)
            break;
        total += purged;
    }
    if (total > 0)
        log_info("msg=\"purged old %s\" count=%d backlog=%s", what, total,
                 purged == RETENTION_BATCH ? "yes" : "no");
}

/* Retention: reports older than report_retention_days go; the aggregates stay. */
static void
purge_reports(cron *c)
{
    retention(c, store_report_purge, c->cfg->report_retention_days, "telemetry reports");
}

/* Retention: attestation records older than attestation_retention_days go; each device's last
 * result stays in the registry. */
static void
purge_attestations(cron *c)
{
    retention(c, store_attestation_purge, c->cfg->attestation_retention_days,
              "attestation records");
}

/* Retention: update attempts of deployments aborted or completed more than
 * update_attempt_retention_days ago go (docs/update.md section 6). */
static void
purge_attempts(cron *c)
{
    retention(c, store_attempt_purge, c->cfg->update_attempt_retention_days, "update attempts");
}

/* The devices of the running deployments' current waves by state, for /metrics (every 5 s: it
 * reads each group's devices). */
static void
rollout_waves(cron *c)
{
    _Static_assert(ROLLOUT_WAVE_NSTATES == METRICS_WAVE_STATES, "wave states");
    int64_t w[ROLLOUT_WAVE_NSTATES];
    if (rollout_wave_totals(c->st, w) == 0)
        metrics_rollout_waves(c->metrics, w);
}

/* Records the CA the signer made for the tenant as its active one. */
static int
record_ca(cron *c, int64_t tenant_id, const char *key_name, const char *pem)
{
    int64_t nb = 0, na = 0, id = 0;
    X509 *x = pki_cert_from_pem(pem, strlen(pem));
    int ok = x != NULL && pki_asn1_to_unix(X509_get0_notBefore(x), &nb) == 0 &&
             pki_asn1_to_unix(X509_get0_notAfter(x), &na) == 0;
    X509_free(x);
    struct store_actor actor = {tenant_id, "aegisd (CA rollover)"};
    if (!ok || store_ca_add(c->st, tenant_id, pem, key_name, nb, na, 1, &actor, &id) != STORE_OK)
        return -1;
    log_info("msg=\"issuing CA rolled over\" tenant=%lld ca=%s not_after=%lld",
             (long long)tenant_id, key_name, (long long)na);
    return 0;
}

/* CA rollover (docs/security.md): a tenant whose newest issuing CA ends within the signer's window
 * gets a new one, made and kept by the signer; devices are issued from it from then on, and the old
 * one stays trusted until it expires. Tenants without a CA are left to `aegisctl pki rotate`. */
static void
rotate_cas(cron *c)
{
    struct store_tenant *ts = NULL;
    size_t nt = 0;
    int64_t now = util_now();
    if (store_tenant_load_all(c->st, &ts, &nt) != STORE_OK)
        return;
    for (size_t i = 0; i < nt; i++) {
        struct store_ca *cas = NULL;
        size_t n = 0;
        char err[512] = "", *key = NULL, *pem = NULL;
        if (store_ca_load_all(c->st, ts[i].id, now, &cas, &n) != STORE_OK)
            continue;
        int64_t newest = 0;
        for (size_t j = 0; j < n; j++)
            newest = cas[j].not_after > newest ? cas[j].not_after : newest;
        store_ca_free(cas, n);
        if (n == 0 || newest - now >= SG_CA_ROLLOVER_WINDOW_S)
            continue;
        int issued =
            signer_ca_rollover(c->sg, ts[i].id, ts[i].name, &key, &pem, err, sizeof(err)) == 0;
        if (issued)
            metrics_cert_issued(c->metrics, METRICS_CERT_CA);
        if (!issued || record_ca(c, ts[i].id, key, pem) != 0) {
            c->failed = 1;
            log_error("msg=\"CA rollover failed\" tenant=%lld err=\"%s\"", (long long)ts[i].id,
                      err);
        }
        free(key);
        free(pem);
    }
    free(ts);
}

/* Devices by state and CA expiries for /metrics (ops_metrics.h). */
static void
fleet_gauges(cron *c)
{
    c->failed = opsm_fleet(c->app) != 0;
}

static void
on_tick(uv_timer_t *t)
{
    cron *c = t->data;
    uint64_t now = uv_now(t->loop);
    for (size_t i = 0; i < NSTEPS; i++) {
        if (now - c->last_ms[i] < steps[i].period_ms)
            continue;
        c->last_ms[i] = now;
        uint64_t t0 = util_mono_ns(), errors = store_error_count(c->st);
        c->failed = 0;
        steps[i].run(c);
        /* A step logs its own errors; the database's are counted by the store. */
        metrics_cron_run(c->metrics, i, !c->failed && store_error_count(c->st) == errors,
                         util_now());
        log_debug("msg=cron step=%s dur_ms=%.2f", steps[i].name,
                  (double)(util_mono_ns() - t0) / 1e6);
    }
}

cron *
cron_start(uv_loop_t *loop, const struct app *app)
{
    assert(loop != NULL && app != NULL && app->st != NULL && app->cfg != NULL);
    cron *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->st = app->st;
    c->cfg = app->cfg;
    c->metrics = app->metrics;
    c->sg = app->sg;
    c->director = app->director;
    c->app = app;
    for (size_t i = 0; i < NSTEPS; i++)
        metrics_cron_step(c->metrics, i, steps[i].name);
    /* Every step runs at the first tick (unsigned: now - last_ms is the period then, however young
     * the monotonic clock is). */
    for (size_t i = 0; i < NSTEPS; i++)
        c->last_ms[i] = uv_now(loop) - steps[i].period_ms;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_tick, 1000, 1000);
    return c;
}

static void
on_closed(uv_handle_t *h)
{
    free(h->data);
}

void
cron_stop(cron *c)
{
    if (c == NULL)
        return;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}
