/* dev_update: GET /v1/device/update and POST /v1/device/update/status (dev_update.h). The check is
 * the hottest endpoint of the service: it is answered from the director's memory (director.h). */
#include "dev_update.h"

#include "api_util.h"
#include "app.h"
#include "devauth.h"
#include "director.h"
#include "log.h"
#include "metrics.h"
#include "proto_fields.h"
#include "ratelimit.h"
#include "rollout.h"
#include "store_deploy.h"

#include <stdlib.h>
#include <string.h>

#define UPDATE_RETRY_AFTER_S 5

void
dev_update_check(api_req *r)
{
    const struct devauth_identity *id = r->device;
    director *d = r->app->director;
    struct director_device dev = {id->tenant_id, id->device_id, id->group_id};
    char etag[DIRECTOR_ETAG_MAX], err[160];
    char *body = NULL;
    size_t len = 0;

    /* The tag alone first: the hot path (304) copies no body. A 200 takes tag and body from one
     * call, so they always belong together. */
    if (d == NULL || director_answer(d, &dev, util_now(), etag, NULL, NULL, err, sizeof(err)) != 0)
        goto out;
    if (!api_if_none_match(r, etag) &&
        director_answer(d, &dev, util_now(), etag, &body, &len, err, sizeof(err)) != 0)
        goto out;
    api_reply_header(r, "ETag", etag);
    api_reply_header(r, "Cache-Control", "no-cache");
    if (body == NULL)
        api_reply(r, 304, NULL);
    else
        api_reply_text(r, 200, "application/json", body, len);
    return;
out:
    /* The plan or the signer could not be read now (a busy or failing store): the device asks
     * again, as for an image download (docs/update.md section 4). */
    log_error("msg=\"director answer failed\" tenant=%lld device=%s err=\"%s\"",
              (long long)id->tenant_id, id->device_id, d != NULL ? err : "no director");
    r->retry_after = UPDATE_RETRY_AFTER_S;
    api_error(r, 503, "unavailable", "the update metadata cannot be made now; retry later");
}

/* The report's fields into at (strings borrowed from r->json): -1 with a 400 set. */
static int
parse_status(api_req *r, struct store_attempt *at, const char **state_name)
{
    static const char *const keys[] = {"attempt_id", "deployment_id", "image",
                                       "state",      "reason",        NULL};
    json_t *dep;
    if (api_body_object(r, keys) != 0)
        return -1;
    at->attempt_id = json_string_value(json_object_get(r->json, "attempt_id"));
    at->image = json_string_value(json_object_get(r->json, "image"));
    at->reason = json_string_value(json_object_get(r->json, "reason"));
    *state_name = json_string_value(json_object_get(r->json, "state"));
    dep = json_object_get(r->json, "deployment_id");
    at->deployment_id = json_is_integer(dep) ? json_integer_value(dep) : 0;
    if (!store_attempt_id_ok(at->attempt_id)) {
        api_invalid(r, "'attempt_id' must be 1-64 of [A-Za-z0-9._-]");
        return -1;
    }
    if (at->deployment_id < 1 || at->image == NULL ||
        !proto_digest_hex_ok(at->image, strlen(at->image)) ||
        store_attempt_state_parse(*state_name, &at->state) != 0) {
        api_invalid(r, "'deployment_id' (integer), 'image' (sha256 hex) and 'state' (downloading, "
                       "installed, booted, committed, rolled_back or failed) are required");
        return -1;
    }
    if (json_object_get(r->json, "reason") != NULL &&
        (at->reason == NULL || at->reason[0] == '\0' || strlen(at->reason) > 200)) {
        api_invalid(r, "'reason' must be a string of 1-200 bytes");
        return -1;
    }
    if (at->reason == NULL &&
        (at->state == STORE_ATTEMPT_FAILED || at->state == STORE_ATTEMPT_ROLLED_BACK)) {
        api_invalid(r, "'reason' is required for failed and rolled_back");
        return -1;
    }
    return 0;
}

/* Replies the outcome of store_attempt_report. */
static void
reply_report(api_req *r, int rc, int outcome, const struct store_attempt *at,
             const char *state_name)
{
    if (rc == STORE_NOTFOUND)
        api_invalid(r, "'image' is not one of the deployment's images");
    else if (rc == STORE_CONFLICT && outcome == STORE_ATTEMPT_CAPPED)
        api_error(r, 409, "conflict", "the device has %d attempts at deployment %lld already",
                  STORE_ATTEMPTS_MAX, (long long)at->deployment_id);
    else if (rc == STORE_CONFLICT)
        api_error(r, 409, "conflict",
                  "attempt %s is past '%s' already, or about another deployment or image",
                  at->attempt_id, state_name);
    else if (rc != STORE_OK)
        api_store_error(r, rc, "attempt");
    else {
        if (outcome == STORE_ATTEMPT_MOVED)
            metrics_update_attempt(r->app->metrics, (int)at->state);
        api_reply_built(r, 200,
                        json_pack("{s:s, s:I, s:s, s:i, s:b}", "attempt_id", at->attempt_id,
                                  "deployment_id", (json_int_t)at->deployment_id, "state",
                                  state_name, "wave", at->wave, "changed",
                                  outcome == STORE_ATTEMPT_MOVED));
    }
}

/* The deployment the report is about, when the device may report on it: its tenant's (else 404),
 * of the device's group (else 404: a device learns nothing of other groups' deployments), and
 * with the device's wave reached (else 409). -1 with the answer set. */
static int
report_allowed(api_req *r, struct store_attempt *at, struct store_deployment *dep)
{
    const struct devauth_identity *id = r->device;
    int rc = store_deploy_get(r->app->st, id->tenant_id, at->deployment_id, dep);
    if (rc == STORE_OK && dep->group_id != id->group_id)
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK) {
        api_store_error(r, rc, "deployment");
        return -1;
    }
    at->group_id = dep->group_id;
    at->wave = rollout_wave_of(id->device_id, dep);
    /* current_wave is the last wave reached, also once paused, halted, aborted or completed. */
    if (at->wave > dep->current_wave) {
        api_error(r, 409, "conflict", "the device's wave %d of deployment %lld is not reached",
                  at->wave, (long long)dep->id);
        return -1;
    }
    return 0;
}

void
dev_update_status(api_req *r)
{
    const struct devauth_identity *id = r->device;
    struct store_attempt at = {0};
    struct store_deployment *dep = NULL;
    const char *state_name = NULL;
    int outcome = STORE_ATTEMPT_SAME, retry = 0, rc;

    if (!ratelimit_take(r->app->update_status_rl, id->device_id, util_mono_ns(), &retry)) {
        r->retry_after = retry;
        api_error(r, 429, "rate_limited", "too many status reports from this device; retry in %d s",
                  retry);
        return;
    }
    if ((dep = calloc(1, sizeof(*dep))) == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    if (parse_status(r, &at, &state_name) != 0)
        goto out;
    at.tenant_id = id->tenant_id;
    at.device_id = id->device_id;
    if (report_allowed(r, &at, dep) != 0)
        goto out;
    rc = store_attempt_report(r->app->st, &at, util_now(), &outcome);
    reply_report(r, rc, outcome, &at, state_name);
out:
    free(dep);
}
