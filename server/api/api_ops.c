/* Operational endpoints: liveness, readiness, metrics. No authentication; nothing
 * tenant-specific. */
#include "app.h"
#include "api.h"
#include "metrics.h"
#include "api_handlers.h"
#include "ops_metrics.h"

void
api_healthz(api_req *r)
{
    api_reply(r, 200, json_pack("{s:s}", "status", "ok"));
}

void
api_readyz(api_req *r)
{
    if (metrics_draining(r->app->metrics)) {
        api_error(r, 503, "draining", "the service is shutting down");
        return;
    }
    if (store_ping(r->app->st) != STORE_OK) {
        api_error(r, 503, "unavailable", "database is not reachable");
        return;
    }
    api_reply(r, 200, json_pack("{s:s}", "status", "ready"));
}

/* The main listener's /metrics: off when the operations listener serves it (metrics_listen), so
 * that what the service does is not shown to the devices' side. */
void
api_metrics(api_req *r)
{
    if (r->app->cfg->metrics_port >= 0) {
        api_error(r, 404, "not_found", "/metrics is served on metrics_listen");
        return;
    }
    opsm_metrics(r);
}
