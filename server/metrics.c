#include "metrics.h"

#include "lathist.h"
#include "util.h"
#include "version.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statuses the API answers with; anything else is counted as "other". */
static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405,
                               409, 411, 413, 415, 429, 500, 503, 0};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

/* Histogram bucket upper bounds in microseconds (Prometheus' usual seconds ladder). */
static const uint64_t bounds_us[] = {1000,   5000,   10000,   25000,   50000,  100000,
                                     250000, 500000, 1000000, 2500000, 5000000};
#define NBUCKET (sizeof(bounds_us) / sizeof(bounds_us[0]))

struct series {
    atomic_uint_fast64_t by_status[NSTATUS];
    atomic_uint_fast64_t buckets[NBUCKET]; /* not cumulative; summed at render */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
};

/* Attestation outcomes: pass, the reasons of docs/protocol.md 3.3, and anything else. */
static const char *const attest_results[] = {
    "pass",    "unknown_device", "not_claimed",         "blocked",  "bad_nonce", "bad_signature",
    "bad_csr", "log_mismatch",   "unknown_measurement", "rollback", "other"};
#define NATTEST (sizeof(attest_results) / sizeof(attest_results[0]))

/* Update attempt states (store_deploy.h's order) and deployment states, for their series. */
static const char *const attempt_states[METRICS_ATTEMPT_STATES] = {
    "downloading", "installed", "booted", "committed", "rolled_back", "failed"};
static const char *const deployment_states[METRICS_DEPLOYMENT_STATES] = {
    "running", "paused", "halted", "aborted", "completed"};
static const char *const wave_states[METRICS_WAVE_STATES] = {
    "devices", "waiting", "in_progress", "committed", "rolled_back", "failed"};

struct metrics {
    size_t nroutes;
    const char *const *labels;
    const char *const *methods;
    atomic_int_fast64_t connections;
    atomic_uint_fast64_t connections_refused;
    struct series *s;                /* nroutes + 1 */
    atomic_uint_fast64_t reports[3]; /* stored, duplicate, rejected */
    atomic_uint_fast64_t flags[2];   /* enum metrics_flag_kind */
    atomic_int_fast64_t ingest_in_flight;
    atomic_uint_fast64_t ingest_commits, ingest_group_reports, ingest_flushes;
    atomic_uint_fast64_t attestations[NATTEST]; /* by attest_results */
    atomic_uint_fast64_t attempts[METRICS_ATTEMPT_STATES];
    atomic_int_fast64_t deployments[METRICS_DEPLOYMENT_STATES];
    atomic_uint_fast64_t rollout_halts, rollout_advances;
    atomic_int_fast64_t wave_devices[METRICS_WAVE_STATES];
    atomic_uint_fast64_t director_built;
    /* the operator's series */
    atomic_uint_fast64_t certs_issued[2]; /* enum metrics_cert_kind */
    atomic_int_fast64_t tls_not_after;
    atomic_uint_fast64_t tls_reloads[2]; /* refused, ok */
    atomic_int_fast64_t devices[METRICS_DEVICE_STATES];
    atomic_int draining;
    atomic_uint_fast64_t signer_busy;
    const char *cron_names[METRICS_CRON_MAX];
    atomic_int_fast64_t cron_success[METRICS_CRON_MAX];
    atomic_uint_fast64_t cron_failures[METRICS_CRON_MAX];
    pthread_mutex_t ca_lock; /* guards ca_tenants, ca_not_after, nca */
    int64_t *ca_tenants, *ca_not_after;
    size_t nca;
    metrics_collect_fn collect;
    void *collect_ctx;
};

void
metrics_update_attempt(struct metrics *m, int state)
{
    if (m != NULL && state >= 0 && state < METRICS_ATTEMPT_STATES)
        atomic_fetch_add(&m->attempts[state], 1);
}

void
metrics_rollout(struct metrics *m, const int64_t by_state[METRICS_DEPLOYMENT_STATES],
                uint64_t halts, uint64_t advances)
{
    if (m == NULL)
        return;
    for (int i = 0; by_state != NULL && i < METRICS_DEPLOYMENT_STATES; i++)
        atomic_store(&m->deployments[i], by_state[i]);
    atomic_fetch_add(&m->rollout_halts, halts);
    atomic_fetch_add(&m->rollout_advances, advances);
}

void
metrics_rollout_waves(struct metrics *m, const int64_t by_state[METRICS_WAVE_STATES])
{
    for (int i = 0; m != NULL && i < METRICS_WAVE_STATES; i++)
        atomic_store(&m->wave_devices[i], by_state[i]);
}

void
metrics_director(struct metrics *m, uint64_t built)
{
    if (m != NULL)
        atomic_store(&m->director_built, built);
}

void
metrics_attestation(struct metrics *m, const char *reason)
{
    size_t i = 0; /* "pass" */
    if (reason != NULL) {
        for (i = 1; i < NATTEST - 1 && strcmp(attest_results[i], reason) != 0; i++)
            ;
    }
    atomic_fetch_add(&m->attestations[i], 1);
}

struct metrics *
metrics_new(size_t nroutes, const char *const *labels, const char *const *methods)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->s = calloc(nroutes + 1, sizeof(*m->s));
    if (m->s == NULL) {
        free(m);
        return NULL;
    }
    m->nroutes = nroutes;
    m->labels = labels;
    m->methods = methods;
    pthread_mutex_init(&m->ca_lock, NULL);
    return m;
}

void
metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->ca_lock);
    free(m->ca_tenants);
    free(m->ca_not_after);
    free(m->s);
    free(m);
}

static size_t
status_slot(int status)
{
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (statuses[i] == status)
            return i;
    return NSTATUS - 1;
}

void
metrics_observe(struct metrics *m, size_t route, int status, uint64_t duration_ns)
{
    if (route > m->nroutes)
        route = m->nroutes;
    struct series *s = &m->s[route];
    uint64_t us = duration_ns / 1000;
    atomic_fetch_add(&s->by_status[status_slot(status)], 1);
    atomic_fetch_add(&s->count, 1);
    atomic_fetch_add(&s->sum_us, us);
    for (size_t b = 0; b < NBUCKET; b++) {
        if (us <= bounds_us[b]) {
            atomic_fetch_add(&s->buckets[b], 1);
            break;
        }
    }
}

void
metrics_connection(struct metrics *m, int delta)
{
    atomic_fetch_add(&m->connections, delta);
}

void
metrics_connection_refused(struct metrics *m)
{
    atomic_fetch_add(&m->connections_refused, 1);
}

void
metrics_telemetry(struct metrics *m, uint64_t stored, uint64_t duplicates, uint64_t rejected)
{
    if (m == NULL)
        return;
    atomic_fetch_add(&m->reports[0], stored);
    atomic_fetch_add(&m->reports[1], duplicates);
    atomic_fetch_add(&m->reports[2], rejected);
}

void
metrics_failure_flags(struct metrics *m, enum metrics_flag_kind kind, uint64_t n)
{
    if (m == NULL || (kind != METRICS_FLAG_NEW_BUCKET && kind != METRICS_FLAG_RATE_REGRESSION))
        return;
    atomic_fetch_add(&m->flags[kind], n);
}

void
metrics_ingest_in_flight(struct metrics *m, int64_t n)
{
    if (m != NULL)
        atomic_store(&m->ingest_in_flight, n);
}

void
metrics_ingest_commit(struct metrics *m, uint64_t reports)
{
    if (m == NULL)
        return;
    atomic_fetch_add(&m->ingest_commits, 1);
    atomic_fetch_add(&m->ingest_group_reports, reports);
}

void
metrics_ingest_flush(struct metrics *m)
{
    if (m != NULL)
        atomic_fetch_add(&m->ingest_flushes, 1);
}

struct metrics_out {
    char *p;
    size_t len, cap;
    int oom;
};

/* Appends to b, growing it; b->oom once it cannot grow (the scrape then fails whole). */
static void
vappend(struct metrics_out *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    for (;;) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, aq);
        va_end(aq);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

void
metrics_printf(struct metrics_out *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vappend(b, fmt, ap);
    va_end(ap);
}

static void
render_route(struct metrics_out *b, const char *label, const char *method, struct series *s)
{
    for (size_t i = 0; i < NSTATUS; i++) {
        uint64_t v = atomic_load(&s->by_status[i]);
        if (v == 0)
            continue;
        char st[8];
        if (statuses[i] == 0)
            snprintf(st, sizeof(st), "other");
        else
            snprintf(st, sizeof(st), "%d", statuses[i]);
        metrics_printf(b,
                       "aegis_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
                       label, method, st, (unsigned long long)v);
    }
}

static void
render_histogram(struct metrics_out *b, const char *label, const char *method, struct series *s)
{
    uint64_t count = atomic_load(&s->count);
    if (count == 0)
        return;
    uint64_t cum = 0;
    for (size_t i = 0; i < NBUCKET; i++) {
        cum += atomic_load(&s->buckets[i]);
        metrics_printf(
            b,
            "aegis_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} "
            "%llu\n",
            label, method, (double)bounds_us[i] / 1e6, (unsigned long long)cum);
    }
    metrics_printf(
        b,
        "aegis_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} "
        "%llu\n",
        label, method, (unsigned long long)count);
    metrics_printf(b, "aegis_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n",
                   label, method, (double)atomic_load(&s->sum_us) / 1e6);
    metrics_printf(b,
                   "aegis_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
                   label, method, (unsigned long long)count);
}

/* Update attempts, deployments per state and the rollout's own transitions. */
static void
render_updates(struct metrics_out *b, struct metrics *m)
{
    metrics_printf(
        b, "# HELP aegis_update_attempts_total Update status reports that moved an attempt, "
           "by the state reached.\n"
           "# TYPE aegis_update_attempts_total counter\n");
    for (int i = 0; i < METRICS_ATTEMPT_STATES; i++)
        metrics_printf(b, "aegis_update_attempts_total{state=\"%s\"} %llu\n", attempt_states[i],
                       (unsigned long long)atomic_load(&m->attempts[i]));
    metrics_printf(b, "# HELP aegis_deployments Deployments by state (all tenants).\n"
                      "# TYPE aegis_deployments gauge\n");
    for (int i = 0; i < METRICS_DEPLOYMENT_STATES; i++)
        metrics_printf(b, "aegis_deployments{state=\"%s\"} %lld\n", deployment_states[i],
                       (long long)atomic_load(&m->deployments[i]));
    metrics_printf(
        b,
        "# HELP aegis_rollout_transitions_total Rollout changes made by the rollout checks.\n"
        "# TYPE aegis_rollout_transitions_total counter\n"
        "aegis_rollout_transitions_total{kind=\"halt\"} %llu\n"
        "aegis_rollout_transitions_total{kind=\"advance\"} %llu\n",
        (unsigned long long)atomic_load(&m->rollout_halts),
        (unsigned long long)atomic_load(&m->rollout_advances));
    metrics_printf(b,
                   "# HELP aegis_rollout_wave_devices Devices of the running deployments' current "
                   "waves (all tenants), by their latest update attempt.\n"
                   "# TYPE aegis_rollout_wave_devices gauge\n");
    for (int i = 0; i < METRICS_WAVE_STATES; i++)
        metrics_printf(b, "aegis_rollout_wave_devices{state=\"%s\"} %lld\n", wave_states[i],
                       (long long)atomic_load(&m->wave_devices[i]));
    metrics_printf(b,
                   "# HELP aegis_director_answers_built_total Director answers built and signed "
                   "(a cache miss of GET /v1/device/update).\n"
                   "# TYPE aegis_director_answers_built_total counter\n"
                   "aegis_director_answers_built_total %llu\n",
                   (unsigned long long)atomic_load(&m->director_built));
}

void
metrics_cert_issued(struct metrics *m, enum metrics_cert_kind kind)
{
    if (m != NULL && (kind == METRICS_CERT_DEVICE || kind == METRICS_CERT_CA))
        atomic_fetch_add(&m->certs_issued[kind], 1);
}

void
metrics_tls_cert(struct metrics *m, int64_t not_after)
{
    if (m != NULL)
        atomic_store(&m->tls_not_after, not_after);
}

void
metrics_tls_reload(struct metrics *m, int ok)
{
    if (m != NULL)
        atomic_fetch_add(&m->tls_reloads[ok ? 1 : 0], 1);
}

int
metrics_ca_expiry(struct metrics *m, const int64_t *tenant_ids, const int64_t *not_after, size_t n)
{
    int64_t *t = NULL, *na = NULL;
    if (m == NULL)
        return 0;
    if (n > 0) {
        t = malloc(n * sizeof(*t));
        na = malloc(n * sizeof(*na));
        if (t == NULL || na == NULL) {
            free(t);
            free(na);
            return -1;
        }
        memcpy(t, tenant_ids, n * sizeof(*t));
        memcpy(na, not_after, n * sizeof(*na));
    }
    pthread_mutex_lock(&m->ca_lock);
    free(m->ca_tenants);
    free(m->ca_not_after);
    m->ca_tenants = t;
    m->ca_not_after = na;
    m->nca = n;
    pthread_mutex_unlock(&m->ca_lock);
    return 0;
}

void
metrics_devices(struct metrics *m, const int64_t by_state[METRICS_DEVICE_STATES])
{
    for (int i = 0; m != NULL && i < METRICS_DEVICE_STATES; i++)
        atomic_store(&m->devices[i], by_state[i]);
}

void
metrics_cron_step(struct metrics *m, size_t i, const char *name)
{
    if (m != NULL && i < METRICS_CRON_MAX)
        m->cron_names[i] = name;
}

void
metrics_cron_run(struct metrics *m, size_t i, int ok, int64_t when)
{
    if (m == NULL || i >= METRICS_CRON_MAX)
        return;
    if (ok)
        atomic_store(&m->cron_success[i], when);
    else
        atomic_fetch_add(&m->cron_failures[i], 1);
}

void
metrics_signer_busy(struct metrics *m)
{
    if (m != NULL)
        atomic_fetch_add(&m->signer_busy, 1);
}

uint64_t
metrics_signer_busy_total(struct metrics *m)
{
    return m != NULL ? (uint64_t)atomic_load(&m->signer_busy) : 0;
}

void
metrics_set_draining(struct metrics *m)
{
    if (m != NULL)
        atomic_store(&m->draining, 1);
}

int
metrics_draining(struct metrics *m)
{
    return m != NULL && atomic_load(&m->draining);
}

void
metrics_set_collector(struct metrics *m, metrics_collect_fn fn, void *ctx)
{
    m->collect = fn;
    m->collect_ctx = ctx;
}

void
metrics_family(struct metrics_out *out, const char *name, const char *type, const char *help)
{
    metrics_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
metrics_histogram(struct metrics_out *out, const char *name, const char *labels,
                  const struct lathist *h)
{
    struct lathist_snap sn;
    const char *sep = labels[0] != '\0' ? "," : "";
    lathist_read(h, &sn);
    for (int i = 0; i < LATHIST_BUCKETS; i++)
        metrics_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                       (double)lathist_bound_ns(i) / 1e9, (unsigned long long)sn.cum[i]);
    metrics_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)sn.count);
    metrics_printf(out, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels,
                   labels[0] ? "}" : "", (double)sn.sum_ns / 1e9);
    metrics_printf(out, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                   labels[0] ? "}" : "", (unsigned long long)sn.count);
}

/* Certificates, expiries, devices, the periodic jobs, the drain and the build. */
static void
render_ops(struct metrics_out *b, struct metrics *m)
{
    static const char *const device_states[METRICS_DEVICE_STATES] = {"unclaimed", "active",
                                                                     "blocked"};
    int64_t now = util_now(), tls = atomic_load(&m->tls_not_after);
    metrics_family(b, "aegis_build_info", "gauge", "The running aegisd's version (always 1).");
    metrics_printf(b, "aegis_build_info{version=\"%s\"} 1\n", AEGIS_VERSION);
    metrics_family(b, "aegis_draining", "gauge",
                   "1 from the moment a drain (SIGTERM, SIGINT) started: /readyz answers 503.");
    metrics_printf(b, "aegis_draining %d\n", atomic_load(&m->draining));
    metrics_family(b, "aegis_certificates_issued_total", "counter",
                   "Certificates the signer issued for aegisd since start, by kind.");
    metrics_printf(b,
                   "aegis_certificates_issued_total{kind=\"device\"} %llu\n"
                   "aegis_certificates_issued_total{kind=\"ca\"} %llu\n",
                   (unsigned long long)atomic_load(&m->certs_issued[METRICS_CERT_DEVICE]),
                   (unsigned long long)atomic_load(&m->certs_issued[METRICS_CERT_CA]));
    if (tls != 0) {
        metrics_family(b, "aegis_tls_cert_expiry_seconds", "gauge",
                       "Seconds until the serving TLS certificate's notAfter (negative: expired).");
        metrics_printf(b, "aegis_tls_cert_expiry_seconds %lld\n", (long long)(tls - now));
    }
    metrics_family(b, "aegis_tls_reloads_total", "counter",
                   "Reloads of the TLS certificate and key on SIGHUP, by result.");
    metrics_printf(b,
                   "aegis_tls_reloads_total{result=\"ok\"} %llu\n"
                   "aegis_tls_reloads_total{result=\"error\"} %llu\n",
                   (unsigned long long)atomic_load(&m->tls_reloads[1]),
                   (unsigned long long)atomic_load(&m->tls_reloads[0]));
    metrics_family(b, "aegis_ca_expiry_seconds", "gauge",
                   "Seconds until each tenant's newest issuing CA's notAfter.");
    pthread_mutex_lock(&m->ca_lock);
    for (size_t i = 0; i < m->nca; i++)
        metrics_printf(b, "aegis_ca_expiry_seconds{tenant=\"%lld\"} %lld\n",
                       (long long)m->ca_tenants[i], (long long)(m->ca_not_after[i] - now));
    pthread_mutex_unlock(&m->ca_lock);
    metrics_family(b, "aegis_devices", "gauge", "Devices by registry state (all tenants).");
    for (int i = 0; i < METRICS_DEVICE_STATES; i++)
        metrics_printf(b, "aegis_devices{state=\"%s\"} %lld\n", device_states[i],
                       (long long)atomic_load(&m->devices[i]));
    metrics_family(b, "aegis_cron_last_success_timestamp_seconds", "gauge",
                   "When each periodic step last ran without an error (unix s; 0: not yet).");
    for (size_t i = 0; i < METRICS_CRON_MAX; i++)
        if (m->cron_names[i] != NULL)
            metrics_printf(b, "aegis_cron_last_success_timestamp_seconds{step=\"%s\"} %lld\n",
                           m->cron_names[i], (long long)atomic_load(&m->cron_success[i]));
    metrics_family(b, "aegis_cron_failures_total", "counter",
                   "Runs of each periodic step that met an error.");
    for (size_t i = 0; i < METRICS_CRON_MAX; i++)
        if (m->cron_names[i] != NULL)
            metrics_printf(b, "aegis_cron_failures_total{step=\"%s\"} %llu\n", m->cron_names[i],
                           (unsigned long long)atomic_load(&m->cron_failures[i]));
}

char *
metrics_render(struct metrics *m, uint64_t db_errors, size_t *len)
{
    struct metrics_out b = {malloc(8192), 0, 8192, 0};
    if (b.p == NULL)
        return NULL;
    metrics_printf(&b,
                   "# HELP aegis_http_requests_total HTTP requests by route, method and status.\n"
                   "# TYPE aegis_http_requests_total counter\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        const char *label = r < m->nroutes ? m->labels[r] : "unmatched";
        const char *method = r < m->nroutes ? m->methods[r] : "any";
        render_route(&b, label, method, &m->s[r]);
    }
    metrics_printf(&b, "# HELP aegis_http_request_duration_seconds Request latency by route.\n"
                       "# TYPE aegis_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        const char *label = r < m->nroutes ? m->labels[r] : "unmatched";
        const char *method = r < m->nroutes ? m->methods[r] : "any";
        render_histogram(&b, label, method, &m->s[r]);
    }
    metrics_printf(&b,
                   "# HELP aegis_http_connections Open HTTP connections.\n"
                   "# TYPE aegis_http_connections gauge\n"
                   "aegis_http_connections %lld\n"
                   "# HELP aegis_http_connections_refused_total Connections closed at once at "
                   "max_connections or per_ip_connections, no connection being able to give way.\n"
                   "# TYPE aegis_http_connections_refused_total counter\n"
                   "aegis_http_connections_refused_total %llu\n"
                   "# HELP aegis_db_errors_total Database errors since start.\n"
                   "# TYPE aegis_db_errors_total counter\n"
                   "aegis_db_errors_total %llu\n",
                   (long long)atomic_load(&m->connections),
                   (unsigned long long)atomic_load(&m->connections_refused),
                   (unsigned long long)db_errors);
    metrics_printf(
        &b,
        "# HELP aegis_telemetry_reports_total Telemetry reports answered, by status.\n"
        "# TYPE aegis_telemetry_reports_total counter\n"
        "aegis_telemetry_reports_total{status=\"stored\"} %llu\n"
        "aegis_telemetry_reports_total{status=\"duplicate\"} %llu\n"
        "aegis_telemetry_reports_total{status=\"rejected\"} %llu\n"
        "# HELP aegis_failure_flags_total Emerging-problem flags raised, by kind.\n"
        "# TYPE aegis_failure_flags_total counter\n"
        "aegis_failure_flags_total{kind=\"new_bucket\"} %llu\n"
        "aegis_failure_flags_total{kind=\"rate_regression\"} %llu\n"
        "# HELP aegis_ingest_in_flight_reports Telemetry reports queued for or being written.\n"
        "# TYPE aegis_ingest_in_flight_reports gauge\n"
        "aegis_ingest_in_flight_reports %lld\n"
        "# HELP aegis_ingest_group_commits_total Group transactions committed by the telemetry "
        "writer.\n"
        "# TYPE aegis_ingest_group_commits_total counter\n"
        "aegis_ingest_group_commits_total %llu\n"
        "# HELP aegis_ingest_group_reports_total Reports written in committed groups, "
        "duplicates included.\n"
        "# TYPE aegis_ingest_group_reports_total counter\n"
        "aegis_ingest_group_reports_total %llu\n"
        "# HELP aegis_ingest_flushes_total Flushes of the telemetry log, each making every "
        "group committed before it durable.\n"
        "# TYPE aegis_ingest_flushes_total counter\n"
        "aegis_ingest_flushes_total %llu\n",
        (unsigned long long)atomic_load(&m->reports[0]),
        (unsigned long long)atomic_load(&m->reports[1]),
        (unsigned long long)atomic_load(&m->reports[2]),
        (unsigned long long)atomic_load(&m->flags[0]),
        (unsigned long long)atomic_load(&m->flags[1]), (long long)atomic_load(&m->ingest_in_flight),
        (unsigned long long)atomic_load(&m->ingest_commits),
        (unsigned long long)atomic_load(&m->ingest_group_reports),
        (unsigned long long)atomic_load(&m->ingest_flushes));
    metrics_printf(&b,
                   "# HELP aegis_attestations_total Device attestations, by result and reason.\n"
                   "# TYPE aegis_attestations_total counter\n");
    for (size_t i = 0; i < NATTEST; i++)
        metrics_printf(&b, "aegis_attestations_total{result=\"%s\",reason=\"%s\"} %llu\n",
                       i == 0 ? "pass" : "fail", i == 0 ? "" : attest_results[i],
                       (unsigned long long)atomic_load(&m->attestations[i]));
    render_updates(&b, m);
    render_ops(&b, m);
    if (m->collect != NULL)
        m->collect(m->collect_ctx, &b);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
