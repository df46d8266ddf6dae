/* ops_metrics: what the operator scrapes and alerts on beyond the request series (docs/metrics.md):
 * the collector metrics.h calls at each scrape (process, database files and latencies, rate-limit
 * refusals, queue capacity), the periodic figures the daemon's cron pushes (devices by state, CA
 * expiries), and the operations listener's route table (/metrics, /healthz, /readyz only). */
#ifndef AEGIS_OPS_METRICS_H
#define AEGIS_OPS_METRICS_H

#include "api.h"
#include "router.h"

#include <stddef.h>

struct app;
struct metrics_out;

/* metrics_collect_fn with ctx = the daemon's struct app (const): process_*, aegis_database_*,
 * aegis_db_*_duration_seconds, aegis_ratelimit_refused_total, aegis_ingest_queue_capacity_reports.
 */
void opsm_collect(void *ctx, struct metrics_out *out);

/* Devices by state and each tenant's newest CA expiry, into app->metrics (a cron step: a grouped
 * count and one CA query per tenant). Returns 0, or -1 on a database error. */
int opsm_fleet(const struct app *app);

/* GET /metrics: the Prometheus text (whichever listener serves it). */
void opsm_metrics(api_req *r);

/* The operations listener's routes: GET /metrics, /healthz and /readyz. Static; *n gets the count.
 */
const struct route *opsm_routes(size_t *n);

#endif
