/* metrics: request counters and latency histograms per route, rendered in Prometheus text format.
 * Lock-free (atomics); routes are fixed at start, so every series is preallocated. */
#ifndef AEGIS_METRICS_H
#define AEGIS_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics;

/* Series for nroutes routes plus one "unmatched" slot (index nroutes). labels[i] is the route
 * pattern and methods[i] its method; both must outlive the metrics. Returns NULL on allocation
 * failure. Free with metrics_free. */
struct metrics *metrics_new(size_t nroutes, const char *const *labels, const char *const *methods);
void metrics_free(struct metrics *m);

/* Records one finished request: route index (nroutes for unmatched), HTTP status, duration in
 * ns. */
void metrics_observe(struct metrics *m, size_t route, int status, uint64_t duration_ns);
/* Open connections gauge. */
void metrics_connection(struct metrics *m, int delta);
/* A connection refused at max_connections or per_ip_connections
 * (aegis_http_connections_refused_total). */
void metrics_connection_refused(struct metrics *m);

/* Telemetry reports answered stored, duplicate and rejected
 * (aegis_telemetry_reports_total{status}). */
void metrics_telemetry(struct metrics *m, uint64_t stored, uint64_t duplicates, uint64_t rejected);
/* One attestation: reason NULL for a pass, else its failure reason (aegis_attestations_total). */
void metrics_attestation(struct metrics *m, const char *reason);
/* Failure flags raised (aegis_failure_flags_total{kind}). */
enum metrics_flag_kind { METRICS_FLAG_NEW_BUCKET = 0, METRICS_FLAG_RATE_REGRESSION = 1 };
void metrics_failure_flags(struct metrics *m, enum metrics_flag_kind kind, uint64_t n);
/* Reports in flight to the telemetry writer (aegis_ingest_in_flight_reports gauge). */
void metrics_ingest_in_flight(struct metrics *m, int64_t n);
/* One group transaction of the telemetry writer committed, holding reports reports
 * (aegis_ingest_group_commits_total, aegis_ingest_group_reports_total). */
void metrics_ingest_commit(struct metrics *m, uint64_t reports);
/* One flush of the telemetry log by the syncer, however many groups it made durable
 * (aegis_ingest_flushes_total). */
void metrics_ingest_flush(struct metrics *m);
/* One update attempt moved to state (store_deploy.h's enum store_attempt_state order:
 * aegis_update_attempts_total{state}). */
#define METRICS_ATTEMPT_STATES 6
void metrics_update_attempt(struct metrics *m, int state);
/* The rollout step's figures: deployments per state (store_deploy.h's order; NULL: unchanged) for
 * the aegis_deployments gauge, and the halts and advances (completions included) it just made. */
#define METRICS_DEPLOYMENT_STATES 5
void metrics_rollout(struct metrics *m, const int64_t by_state[METRICS_DEPLOYMENT_STATES],
                     uint64_t halts, uint64_t advances);
/* The devices of the running deployments' current waves by state (rollout.h's enum
 * rollout_wave_state order: aegis_rollout_wave_devices{state} gauge). */
#define METRICS_WAVE_STATES 6
void metrics_rollout_waves(struct metrics *m, const int64_t by_state[METRICS_WAVE_STATES]);
/* The director's answers built (signed) since the start, a counter
 * (aegis_director_answers_built_total). */
void metrics_director(struct metrics *m, uint64_t built);

/* --- the operator's series (docs/metrics.md) --- */

/* A certificate the signer issued for aegisd (aegis_certificates_issued_total{kind}). */
enum metrics_cert_kind { METRICS_CERT_DEVICE = 0, METRICS_CERT_CA = 1 };
void metrics_cert_issued(struct metrics *m, enum metrics_cert_kind kind);
/* The serving TLS certificate's notAfter, unix s (aegis_tls_cert_expiry_seconds). */
void metrics_tls_cert(struct metrics *m, int64_t not_after);
/* One reload of the TLS certificate on SIGHUP, ok or refused (aegis_tls_reloads_total{result}). */
void metrics_tls_reload(struct metrics *m, int ok);
/* Each tenant's newest issuing CA's notAfter, unix s (aegis_ca_expiry_seconds{tenant}): replaces
 * the previous set (copied). Returns 0, or -1 when out of memory (the old set stays). */
int metrics_ca_expiry(struct metrics *m, const int64_t *tenant_ids, const int64_t *not_after,
                      size_t n);
/* Devices by registry state: unclaimed, active, blocked (aegis_devices{state}). */
#define METRICS_DEVICE_STATES 3
void metrics_devices(struct metrics *m, const int64_t by_state[METRICS_DEVICE_STATES]);
/* The periodic jobs' steps: step i's name (borrowed, must outlive m), then each run's outcome at
 * unix time when (aegis_cron_last_success_timestamp_seconds{step},
 * aegis_cron_failures_total{step}). At most METRICS_CRON_MAX steps; others are ignored. */
#define METRICS_CRON_MAX 32
void metrics_cron_step(struct metrics *m, size_t i, const char *name);
void metrics_cron_run(struct metrics *m, size_t i, int ok, int64_t when);
/* An issuance the signer refused because the tenant's rate was spent (SIGNER_BUSY): counted with
 * the rate limiters' refusals, aegis_ratelimit_refused_total{limiter="signer_issue"}. */
void metrics_signer_busy(struct metrics *m);
uint64_t metrics_signer_busy_total(struct metrics *m);
/* The drain began (aegis_draining 1; /readyz answers 503 from now on). */
void metrics_set_draining(struct metrics *m);
int metrics_draining(struct metrics *m);

/* Series a collector adds to each scrape (the daemon's: process, database files and latencies,
 * rate limits, queue capacity; server/opsm.c). fn runs on the scraping thread. */
struct metrics_out;
typedef void (*metrics_collect_fn)(void *ctx, struct metrics_out *out);
/* Sets the collector (before the server starts; ctx must outlive m). */
void metrics_set_collector(struct metrics *m, metrics_collect_fn fn, void *ctx);
/* Appends text to a scrape. */
void metrics_printf(struct metrics_out *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends the HELP and TYPE lines of a metric family. */
void metrics_family(struct metrics_out *out, const char *name, const char *type, const char *help);
/* Appends the _bucket, _sum and _count samples of a histogram in seconds; labels is "" or
 * `k="v",...` without braces. */
struct lathist;
void metrics_histogram(struct metrics_out *out, const char *name, const char *labels,
                       const struct lathist *h);

/* Prometheus text (malloc'd, caller frees; *len set). db_errors is the store's error count. NULL on
 * OOM. */
char *metrics_render(struct metrics *m, uint64_t db_errors, size_t *len);

#endif
