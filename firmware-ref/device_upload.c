/* device_upload: the device's telemetry upload (device.h, docs/telemetry.md section 2): batches
 * from the crash queue, retried with backoff, halved on a 413, until the queue is empty. */
#include "device.h"
#include "device_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- upload --------------------------------------------------------------------------------- */

static void send_batch(adev_device *d);

int
adev_device_upload(adev_device *d)
{
    if (d == NULL || d->busy || d->cfg.crashq == NULL)
        return -1;
    d->renewal = 0;
    d->upload_next = 0;
    d->detail[0] = '\0';
    return device_begin_op(d, ADEV_OP_UPLOAD, device_start_upload);
}

void
device_start_upload(adev_device *d)
{
    memset(&d->up, 0, sizeof(d->up));
    d->detail[0] = '\0';
    d->batch_size = d->cfg.upload_batch;
    d->fails = 0;
    send_batch(d);
}

/* Ends the upload with its counts. */
static void
upload_done(adev_device *d, enum adev_outcome outcome, const char *reason, long status)
{
    struct adev_report r = d->up;
    adev_crash_abandon(d->cfg.crashq);
    r.remaining = adev_crash_pending(d->cfg.crashq);
    device_finish(d, outcome, reason, status, &r);
}

/* A failed request: retried after a backoff while it may pass and fails remain, else the end. */
static void
upload_retry_or_fail(adev_device *d, const struct adev_http_response *resp)
{
    int retryable = 0;

    device_set_detail(d, resp->detail);
    if (resp->err == ADEV_NET_TIMEOUT || resp->err == ADEV_NET_CONNECT ||
        resp->err == ADEV_NET_OTHER)
        retryable = 1;
    if (resp->err == ADEV_NET_OK && (resp->status == 429 || resp->status >= 500))
        retryable = 1;
    d->fails++;
    if (retryable && d->fails < d->cfg.upload_max_attempts) {
        uint64_t ms =
            adev_upload_delay_ms(d->cfg.upload_backoff_base_ms, d->cfg.upload_backoff_max_ms,
                                 d->retries, resp->retry_after_s, d->cfg.retry_after_max_s);
        if (device_schedule(d, ms, send_batch) == 0) {
            d->retries++;
            return;
        }
    }
    if (resp->err != ADEV_NET_OK) {
        upload_done(d, ADEV_FAILED, adev_net_err_reason(resp->err), 0);
        return;
    }
    const char *code = device_refusal_code(d, resp);
    upload_done(d, resp->status >= 500 ? ADEV_FAILED : ADEV_REJECTED, code, resp->status);
}

static void
on_upload(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;
    struct adev_crash_ack a;

    d->call = NULL;
    if (resp->err != ADEV_NET_OK || resp->status != 200) {
        adev_crash_abandon(d->cfg.crashq);
        if (resp->err == ADEV_NET_OK && resp->status == 413 && d->batch_size > 1) {
            d->batch_size /= 2; /* too large for the service: smaller batches */
            send_batch(d);
            return;
        }
        upload_retry_or_fail(d, resp);
        return;
    }
    if (d->cfg.fault_lose_ack != NULL && d->cfg.fault_lose_ack(d, d->arg)) {
        device_set_detail(d, "test fault: power lost before the answer was applied");
        upload_done(d, ADEV_FAILED, "power_loss", resp->status);
        return;
    }
    int rc = adev_crash_ack(d->cfg.crashq, resp->body, resp->body_len, &a);
    if (rc != 0) {
        device_set_detail(d, rc == -2 ? "the queue could not be written"
                                      : "telemetry answer without results for the batch");
        upload_done(d, ADEV_FAILED, rc == -2 ? "storage_error" : "bad_response", resp->status);
        return;
    }
    d->up.batches++;
    d->up.stored += a.stored;
    d->up.duplicates += a.duplicates;
    d->up.rejected += a.rejected;
    d->up.crashes_acked += a.crashes;
    d->fails = 0;
    d->retries = 0;
    if (a.remaining == 0) {
        upload_done(d, ADEV_PASS, "ok", resp->status);
        return;
    }
    send_batch(d); /* the next batch at once */
}

static void
send_batch(adev_device *d)
{
    size_t n = 0;

    if (!d->have_cred && device_load_credential(d) != 0) {
        upload_done(d, ADEV_FAILED, "no_certificate", 0);
        return;
    }
    free(d->upload_body);
    d->upload_body = adev_crash_batch(d->cfg.crashq, d->batch_size, &n);
    if (d->upload_body == NULL) {
        if (n == 0)
            upload_done(d, ADEV_PASS, "ok", 0); /* nothing (more) to send */
        else
            upload_done(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    if (device_send_mtls(d, "POST", "/v1/device/telemetry", d->upload_body, on_upload) != 0)
        upload_done(d, ADEV_FAILED, "internal_error", 0);
}
