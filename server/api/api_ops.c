/* Operational endpoints: liveness, readiness, metrics. No authentication; nothing
 * tenant-specific. */
#include "app.h"
#include "api.h"
#include "metrics.h"
#include "api_handlers.h"

#include <stdlib.h>

void
api_healthz(api_req *r)
{
    api_reply(r, 200, json_pack("{s:s}", "status", "ok"));
}

void
api_readyz(api_req *r)
{
    if (store_ping(r->app->st) != STORE_OK) {
        api_error(r, 503, "unavailable", "database is not reachable");
        return;
    }
    api_reply(r, 200, json_pack("{s:s}", "status", "ready"));
}

void
api_metrics(api_req *r)
{
    size_t len = 0;
    char *text = metrics_render(r->app->metrics, store_error_count(r->app->st), &len);
    if (text == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
