/* POST /v1/device/telemetry (docs/telemetry.md): a device uploads up to 100 reports over mutual
 * TLS. The batch is parsed (telemetry_parse.h; 400 invalid_batch, or per report "rejected" while
 * the others are stored), then handed to the writer (ingest.h), which answers once the reports are
 * durable (the request is deferred: api_defer). Per-device token bucket (429) and a bounded writer
 * queue (503) push back. Free text is stored as data and never logged. */
#include "api.h"
#include "api_util.h"
#include "app.h"
#include "dev_handlers.h"
#include "ingest.h"
#include "metrics.h"
#include "ratelimit.h"
#include "telemetry_parse.h"
#include "util.h"

#include <assert.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The writer's answer (ingest.h ingest_done_fn) to the deferred request ctx. */
static void
reply_deferred(void *ctx, int status, json_t *body, int retry_after)
{
    api_deferred_reply(ctx, status, body, retry_after);
}

/* Hands b to the writer, which answers r once its reports are durable; or answers r 503 when the
 * writer refuses (b stays the caller's). Returns 1 when the writer took b. r is deferred first, so
 * that the writer may answer before this returns; a refusal completes it at once, on this
 * thread. */
static int
submit(api_req *r, struct ingest_batch *b)
{
    /* set before the HTTP layer started and never written again: no lock needed */
    ingest *ing = r->app->ingest;
    api_deferred *d;
    int retry = 0;

    assert(ing != NULL);
    d = api_defer(r);
    int rc = ingest_submit(ing, b, (struct ingest_done){reply_deferred, d}, &retry);
    if (rc == INGEST_OK)
        return 1;
    char msg[96];
    retry = retry > 0 ? retry : 1;
    r->err_code = rc == INGEST_FULL ? "overloaded" : "unavailable";
    if (rc == INGEST_FULL)
        snprintf(msg, sizeof(msg), "the service is busy storing reports; retry in %d s", retry);
    else
        snprintf(msg, sizeof(msg), "the service is shutting down; retry in %d s", retry);
    api_deferred_reply(d, 503, json_pack("{s:s, s:s}", "error", r->err_code, "message", msg),
                       retry);
    return 0;
}

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
    if (submit(r, b))
        b = NULL; /* the writer answers */
out:
    ingest_batch_free(b);
}
