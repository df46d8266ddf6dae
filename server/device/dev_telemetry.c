/* POST /v1/device/telemetry (docs/telemetry.md): a device uploads up to 100 reports over mutual
 * TLS. The batch is parsed (telemetry_parse.h; 400 invalid_batch, or per report "rejected" while
 * the others are stored), then handed to the writer (ingest.h), which answers once the reports are
 * durable. Per-device token bucket (429) and a bounded writer queue (503) push back. Free text is
 * stored as data and never logged. */
#include "api.h"
#include "api_util.h"
#include "app.h"
#include "dev_handlers.h"
#include "ingest.h"
#include "metrics.h"
#include "ratelimit.h"
#include "telemetry_parse.h"
#include "util.h"

#include <jansson.h>
#include <stddef.h>

void
dev_telemetry(api_req *r)
{
    struct ingest_batch *b = NULL;
    int retry = 0;

    if (!ratelimit_take(r->app->telemetry_rl, r->device->device_id, util_mono_ns(), &retry)) {
        r->retry_after = retry;
        api_error(r, 429, "rate_limited", "too many uploads from this device; retry in %d s",
                  retry);
        return;
    }
    char err[API_ERR_LEN];
    int prc = telemetry_parse_batch(r->json, r->device, &b, err, sizeof(err));
    if (prc == TELEMETRY_PARSE_INVALID) {
        api_error(r, 400, "invalid_batch", "%s", err);
        goto out;
    }
    if (prc != TELEMETRY_PARSE_OK) {
        r->retry_after = 1;
        api_error(r, 503, "unavailable", "the service is short of memory; retry in 1 s");
        goto out;
    }
    if (b->nvalid == 0 && b->upload.dropped == 0) {
        /* nothing to store: answer at once */
        size_t rejected = 0;
        json_t *answer = ingest_batch_answer(b, NULL, NULL, &rejected);
        metrics_telemetry(r->app->metrics, 0, 0, rejected);
        api_reply_built(r, 200, answer);
        goto out;
    }
    int rc = r->app->ingest != NULL ? ingest_submit(r->app->ingest, r, b, &retry) : INGEST_STOPPING;
    if (rc == INGEST_OK) {
        b = NULL; /* the writer answers */
        goto out;
    }
    r->retry_after = retry > 0 ? retry : 1;
    if (rc == INGEST_FULL)
        api_error(r, 503, "overloaded", "the service is busy storing reports; retry in %d s",
                  r->retry_after);
    else
        api_error(r, 503, "unavailable", "the service is shutting down; retry in %d s",
                  r->retry_after);
out:
    ingest_batch_free(b);
}
