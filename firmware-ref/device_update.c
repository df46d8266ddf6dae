/* device_update: the update check of the device's agent (device.h adev_device_update,
 * docs/update.md 3-6): the status queue, the director's answer, the TUF chains of both
 * repositories, and the plan of what to install. The download and the A/B steps are in
 * device_update_dl.c. */
#include "device.h"
#include "device_peer.h"
#include "device_update_int.h"

#include "abboot.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TUF_PREFIX "/v1/device/tuf/"
#define DIRECTOR_PREFIX "/v1/device/director/"
#define REC_TUF_PREFIX "/v1/device/recovery/tuf/"
#define REC_DIRECTOR_PREFIX "/v1/device/recovery/director/"

static void poll_director(adev_device *d);
static void image_repo(adev_device *d);
static void director_repo(adev_device *d);
static void root_next(adev_device *d);

/* --- the operation --------------------------------------------------------------------------- */

void
device_update_free(adev_device *d)
{
    struct upd_ctx *u = d->upd;
    if (u == NULL)
        return;
    ota_client_free(u->img);
    ota_client_free(u->dir);
    free(u->answer);
    json_decref(u->raw);
    for (size_t i = 0; i < UPD_IMAGES_MAX; i++)
        free(u->data[i]);
    free(u);
    d->upd = NULL;
}

void
upd_finish(adev_device *d, enum adev_outcome outcome, const char *reason, long status)
{
    struct adev_report r;
    size_t queued = 0;
    char *body = NULL;

    memset(&r, 0, sizeof(r));
    if (d->upd != NULL)
        r = d->upd->rep;
    if (upd_outbox_peek(d->hal.storage, &body, &queued) == 0)
        r.status_queued = queued;
    free(body);
    device_update_free(d);
    device_finish(d, outcome, reason, status, &r);
}

void
upd_retry(adev_device *d, const struct adev_http_response *resp, void (*again)(adev_device *))
{
    if (device_retry_later(d, resp, again))
        return;
    if (resp->err != ADEV_NET_OK) {
        upd_finish(d, ADEV_FAILED, adev_net_err_reason(resp->err), 0);
        return;
    }
    if (d->upd->recovery && resp->status == 401)
        d->rec_token[0] = '\0'; /* the grant expired or was replaced: attest again for a new one */
    const char *code = device_refusal_code(d, resp);
    upd_finish(d, resp->status >= 500 ? ADEV_FAILED : ADEV_REJECTED, code, resp->status);
}

void
upd_progress(adev_device *d)
{
    d->attempts = 0;
    d->retries = 0;
}

void
upd_drop(adev_device *d)
{
    device_update_free(d);
    d->busy = 0;
    d->call = NULL;
}

int
upd_power_lost(adev_device *d, const char *point)
{
    if (d->cfg.fault_point == NULL || !d->cfg.fault_point(d, point, d->arg))
        return 0;
    upd_drop(d); /* nothing more happens, nothing is reported */
    return 1;
}

int
upd_save(adev_device *d)
{
    if (upd_state_save(d->hal.storage, &d->upd->st) == 0)
        return 0;
    upd_finish(d, ADEV_FAILED, "storage_error", 0);
    return -1;
}

int
upd_report_all(adev_device *d, const char *state, const char *reason)
{
    const struct upd_attempt *a = &d->upd->st.at;
    for (size_t i = 0; i < a->n; i++)
        if (upd_outbox_push(d->hal.storage, a->img[i].attempt_id, a->deployment_id, a->img[i].sha,
                            state, reason) != 0)
            return -1;
    return 0;
}

int
upd_get(adev_device *d, const char *path, size_t max, const char *const *headers,
        int (*sink)(void *, const void *, size_t), adev_http_cb cb)
{
    char url[1024], auth[96];
    const char *h[6];
    size_t nh = 0;
    struct adev_http_request req;

    memset(&req, 0, sizeof(req));
    if (device_url_of(d, path, url, sizeof(url)) != 0)
        return -1;
    if (d->upd->recovery) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", d->rec_token);
        h[nh++] = auth;
    } else {
        assert(d->have_cred);
        req.client_cert_pem = d->cred.chain_pem;
        req.client_key_pem = d->cred.key_pem;
    }
    for (size_t i = 0; headers != NULL && headers[i] != NULL && nh < 5; i++)
        h[nh++] = headers[i];
    h[nh] = NULL;
    req.method = "GET";
    req.url = url;
    req.headers = h;
    req.max_body = max;
    req.on_body = sink;
    req.on_body_arg = d;
    req.ca_pem = d->ca;
    req.now = adev_clock_now(d->hal.clock);
    req.timeout_ms = d->cfg.timeout_ms;
    d->attempts++;
    d->call = adev_transport_request(d->hal.transport, &req, cb, d);
    return d->call != NULL ? 0 : -1;
}

struct upd_ctx *
upd_begin(adev_device *d)
{
    char id[65];
    d->upd = calloc(1, sizeof(*d->upd));
    if (d->upd == NULL) {
        device_finish(d, ADEV_FAILED, "internal_error", 0, NULL);
        return NULL;
    }
    if (upd_state_load(d->hal.storage, &d->upd->st) != 0) {
        /* unreadable: forget it rather than never update again (the A/B state is the bootloader's,
         * and the service keeps the attempts; at worst one attempt goes unreported) */
        memset(&d->upd->st, 0, sizeof(d->upd->st));
        if (upd_state_save(d->hal.storage, &d->upd->st) != 0) {
            upd_finish(d, ADEV_FAILED, "storage_error", 0);
            return NULL;
        }
    }
    if (!d->have_cred && device_load_credential(d) != 0 && d->rec_token[0] == '\0') {
        upd_finish(d, ADEV_FAILED, "no_certificate", 0);
        return NULL;
    }
    if (d->have_cred && adev_cert_identity(d->cred.cert_pem, &d->upd->tenant, id) != 0)
        d->upd->tenant = 0;
    return d->upd;
}

static void
upd_start(adev_device *d)
{
    if (upd_begin(d) == NULL)
        return;
    if (upd_reconcile(d) != 0) {
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    if (d->upd->st.at.state >= UPD_INSTALLED) { /* armed: nothing more before the reboot */
        d->upd->rep.reboot = 1;
        upd_finish(d, ADEV_PASS, "installed", 0);
        return;
    }
    if (d->rec_token[0] != '\0') { /* a recovery grant: its answer, its routes, no reports */
        d->upd->recovery = 1;
        d->upd->answer = strdup(d->rec_director);
        if (d->upd->answer == NULL) {
            upd_finish(d, ADEV_FAILED, "internal_error", 0);
            return;
        }
        d->upd->answer_len = strlen(d->upd->answer);
        d->upd->raw = json_loadb(d->upd->answer, d->upd->answer_len, 0, NULL);
        image_repo(d);
        return;
    }
    d->upd->after_flush = poll_director;
    upd_flush(d);
}

int
adev_device_update(adev_device *d)
{
    if (d == NULL || d->busy || d->hal.slots == NULL || d->cfg.hardware == NULL ||
        d->cfg.image_root_json == NULL || d->cfg.director_root_json == NULL ||
        adev_ab_on_trial(d->hal.slots) != 0)
        return -1;
    d->renewal = 0;
    d->upload_next = 0;
    d->detail[0] = '\0';
    return device_begin_op(d, ADEV_OP_UPDATE, upd_start);
}

/* --- the status queue ------------------------------------------------------------------------ */

static void
on_status(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;
    d->call = NULL;
    /* 200 and the final refusals (400, 404, 409: the service will never take it) end a report;
     * anything else keeps it for the next flush */
    if (resp->err == ADEV_NET_OK && (resp->status == 200 || resp->status == 400 ||
                                     resp->status == 404 || resp->status == 409)) {
        upd_progress(d);
        if (upd_outbox_pop(d->hal.storage) != 0) {
            upd_finish(d, ADEV_FAILED, "storage_error", 0);
            return;
        }
        d->upd->rep.status_sent++;
        if (upd_power_lost(d, "reported"))
            return;
        upd_flush(d);
        return;
    }
    d->upd->after_flush(d);
}

void
upd_flush(adev_device *d)
{
    char *body = NULL;
    size_t n = 0;

    if (d->upd->recovery || !d->have_cred || upd_outbox_peek(d->hal.storage, &body, &n) != 0 ||
        body == NULL) {
        free(body);
        d->upd->after_flush(d);
        return;
    }
    free(d->upload_body); /* the request body must live until the answer */
    d->upload_body = body;
    if (device_send_mtls(d, "POST", "/v1/device/update/status", body, on_status) != 0)
        upd_finish(d, ADEV_FAILED, "internal_error", 0);
}

/* --- refusals -------------------------------------------------------------------------------- */

static void
refused_done(adev_device *d)
{
    upd_finish(d, ADEV_REJECTED, d->reason, 0);
}

/* Queues "failed" with reason for one target of the answer (a new attempt) and its backoff. */
static int
refuse_target(adev_device *d, int64_t dep, const json_t *t, const char *reason)
{
    struct upd_state *s = &d->upd->st;
    const char *sha = json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
    char id[UPD_ID_MAX + 1], running[65] = "", ver[40];
    uint8_t r[8];
    uint32_t svn;
    const char *comp =
        json_string_value(json_object_get(json_object_get(t, "custom"), "component"));

    if (sha == NULL || strlen(sha) != 64 || dep <= 0)
        return 0; /* nothing the service could record */
    if (comp != NULL &&
        adev_ab_installed(d->hal.slots, comp, ver, sizeof(ver), &svn, running) == 0 &&
        strcmp(running, sha) == 0)
        return 0; /* it runs that image already */
    struct upd_backoff *b = upd_backoff_find(s, sha);
    int64_t now_ms = adev_clock_now(d->hal.clock) * 1000;
    if (b != NULL && now_ms < b->next_at_ms)
        return 0; /* refused and reported already, not yet due again */
    if (adev_random(r, sizeof(r)) != 0)
        return -1;
    snprintf(id, sizeof(id), "%02x%02x%02x%02x%02x%02x%02x%02x-r", r[0], r[1], r[2], r[3], r[4],
             r[5], r[6], r[7]);
    upd_backoff_fail(s, sha, now_ms, d->cfg.update_backoff_base_ms, d->cfg.update_backoff_max_ms);
    return upd_outbox_push(d->hal.storage, id, dep, sha, "failed", reason);
}

void
upd_end_refused(adev_device *d, const char *reason, const char *detail)
{
    if (reason != d->reason)
        snprintf(d->reason, sizeof(d->reason), "%s", reason);
    device_set_detail(d, detail);
    d->upd->after_flush = refused_done;
    upd_flush(d);
}

void
upd_refuse(adev_device *d, const char *reason, const char *detail)
{
    const json_t *sig = json_object_get(d->upd->raw, "signed");
    const json_t *targets = json_object_get(sig, "targets");
    const json_t *dep = json_object_get(json_object_get(sig, "custom"), "deployment_id");
    const char *path;
    const json_t *t;
    size_t n = 0;

    json_object_foreach((json_t *)targets, path, t)
    {
        if (++n > UPD_IMAGES_MAX) /* an answer names at most 16: a longer one is junk */
            break;
        if (refuse_target(d, json_is_integer(dep) ? json_integer_value(dep) : 0, t, reason) != 0) {
            upd_finish(d, ADEV_FAILED, "storage_error", 0);
            return;
        }
    }
    if (upd_save(d) != 0)
        return;
    d->upd->rep.deployment_id = json_is_integer(dep) ? json_integer_value(dep) : 0;
    upd_end_refused(d, reason, detail);
}

/* A refusal by an ota_client step. */
static void
refuse_client(adev_device *d, const ota_client *c, const char *err)
{
    const char *why = ota_client_reason(c);
    upd_refuse(d, why[0] != '\0' ? why : "metadata_invalid", err);
}

/* --- the director ---------------------------------------------------------------------------- */

static void
on_director(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;
    struct upd_ctx *u = d->upd;

    d->call = NULL;
    if (resp->err == ADEV_NET_OK && (resp->status == 200 || resp->status == 304))
        upd_progress(d);
    if (resp->err == ADEV_NET_OK && resp->status == 304 && u->st.at.state == UPD_NONE) {
        upd_finish(d, ADEV_PASS, "up_to_date", 304);
        return;
    }
    if (resp->err == ADEV_NET_OK && resp->status == 304) { /* resume the attempt: ask in full */
        u->st.etag[0] = '\0';
        poll_director(d);
        return;
    }
    if (resp->err != ADEV_NET_OK || resp->status != 200) {
        upd_retry(d, resp, poll_director);
        return;
    }
    u->answer = malloc(resp->body_len + 1);
    if (u->answer == NULL) {
        upd_finish(d, ADEV_FAILED, "internal_error", resp->status);
        return;
    }
    memcpy(u->answer, resp->body, resp->body_len + 1);
    u->answer_len = resp->body_len;
    snprintf(u->etag, sizeof(u->etag), "%s", resp->etag != NULL ? resp->etag : "");
    u->raw = json_loadb(u->answer, u->answer_len, 0, NULL);
    image_repo(d);
}

static void
poll_director(adev_device *d)
{
    char inm[UPD_ETAG_MAX + 32];
    const char *h[2] = {NULL, NULL};
    if (d->upd->st.etag[0] != '\0' && d->upd->st.at.state == UPD_NONE) {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", d->upd->st.etag);
        h[0] = inm;
    }
    if (upd_get(d, "/v1/device/update", OTA_CLIENT_DIRECTOR_MAX, h, NULL, on_director) != 0)
        upd_finish(d, ADEV_FAILED, "internal_error", 0);
}

/* --- the TUF chains -------------------------------------------------------------------------- */

/* The client of a repository from its saved state, else from the configured root. */
static ota_client *
load_client(adev_device *d, const char *blob, const char *root, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ota_client *c = NULL;
    int r = adev_storage_read(d->hal.storage, blob, OTA_CLIENT_STATE_MAX, &data, &len);
    if (r == 0)
        c = ota_client_load((const char *)data, len, err, errlen);
    free(data);
    /* only a device that never stored a state starts from the root it shipped with: falling back
     * from a damaged one would forget every rollback floor and trust retired root keys again */
    if (r == -2)
        c = ota_client_new(root, strlen(root), err, errlen);
    return c;
}

static int
save_client(adev_device *d, const ota_client *c, const char *blob)
{
    char *text = NULL;
    size_t len = 0;
    int rc = ota_client_save(c, &text, &len);
    if (rc == 0)
        rc = adev_storage_write(d->hal.storage, blob, text, len, 0);
    free(text);
    return rc;
}

/* The client the root loop works on: the director's once it is loaded (after the image
 * repository's). */
static ota_client *
loop_client(adev_device *d)
{
    return d->upd->dir != NULL ? d->upd->dir : d->upd->img;
}

/* The root loop is over (a 404, or the most steps of one check): the last root must be unexpired;
 * a device further behind continues at its next check from the roots it verified. */
static void
roots_end(adev_device *d)
{
    ota_client *c = loop_client(d);
    char err[256];
    if (ota_client_roots_done(c, adev_clock_now(d->hal.clock), err, sizeof(err)) != 0) {
        save_client(d, c, c == d->upd->dir ? ADEV_BLOB_TUF_DIRECTOR : ADEV_BLOB_TUF_IMAGE);
        refuse_client(d, c, err);
        return;
    }
    d->upd->after_roots(d);
}

static void
on_root(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;
    ota_client *c = loop_client(d);
    char err[256];

    d->call = NULL;
    if (resp->err == ADEV_NET_OK && (resp->status == 200 || resp->status == 404))
        upd_progress(d);
    if (resp->err == ADEV_NET_OK && resp->status == 404) { /* the end of the chain */
        roots_end(d);
        return;
    }
    if (resp->err != ADEV_NET_OK || resp->status != 200) {
        upd_retry(d, resp, root_next);
        return;
    }
    if (ota_client_root(c, resp->body, resp->body_len, err, sizeof(err)) != 0) {
        save_client(d, c, c == d->upd->dir ? ADEV_BLOB_TUF_DIRECTOR : ADEV_BLOB_TUF_IMAGE);
        refuse_client(d, c, err);
        return;
    }
    root_next(d);
}

static void
root_next(adev_device *d)
{
    char name[64], path[128];
    ota_client *c = loop_client(d);
    if (ota_client_root_name(c, name, sizeof(name)) != 0) {
        roots_end(d); /* the most root steps of one check: go on from there */
        return;
    }
    snprintf(path, sizeof(path), "%s%s", d->upd->repo_prefix, name);
    if (upd_get(d, path, OTA_CLIENT_ROOT_MAX, NULL, NULL, on_root) != 0)
        upd_finish(d, ADEV_FAILED, "internal_error", 0);
}

/* One fetched file of the image repository's top-level chain. */
typedef int (*meta_step)(ota_client *, const char *, size_t, int64_t, char *, size_t);

static void fetch_meta(adev_device *d);

static void
on_meta(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;
    struct upd_ctx *u = d->upd;
    char err[256];
    int64_t now = adev_clock_now(d->hal.clock);
    int rc;

    d->call = NULL;
    if (resp->err != ADEV_NET_OK || resp->status != 200) {
        upd_retry(d, resp, fetch_meta);
        return;
    }
    upd_progress(d);
    if (u->meta_step == 0)
        rc = ota_client_timestamp(u->img, resp->body, resp->body_len, now, err, sizeof(err));
    else if (u->meta_step == 1)
        rc = ota_client_snapshot(u->img, resp->body, resp->body_len, now, err, sizeof(err));
    else
        rc = ota_client_targets(u->img, resp->body, resp->body_len, now, err, sizeof(err));
    if (rc != 0) {
        save_client(d, u->img, ADEV_BLOB_TUF_IMAGE); /* roots verified so far stay trusted */
        refuse_client(d, u->img, err);
        return;
    }
    u->meta_step++;
    if (u->meta_step == 2 && ota_client_targets_current(u->img)) {
        /* not fetched again: the trusted copy must still be unexpired (a service that keeps
         * naming an expired targets file is a freeze attack) */
        if (ota_client_targets_unexpired(u->img, now, err, sizeof(err)) != 0) {
            save_client(d, u->img, ADEV_BLOB_TUF_IMAGE);
            refuse_client(d, u->img, err);
            return;
        }
        u->meta_step++;
    }
    fetch_meta(d);
}

/* The timestamp, the snapshot and the targets in turn (meta_step counts the files done). */
static void
fetch_meta(adev_device *d)
{
    struct upd_ctx *u = d->upd;
    char name[64], path[160];
    size_t max;

    if (u->meta_step >= 3) {
        if (save_client(d, u->img, ADEV_BLOB_TUF_IMAGE) != 0) {
            upd_finish(d, ADEV_FAILED, "storage_error", 0);
            return;
        }
        director_repo(d);
        return;
    }
    if (u->meta_step == 0) {
        snprintf(name, sizeof(name), "timestamp.json");
        max = OTA_CLIENT_TIMESTAMP_MAX;
    } else if (u->meta_step == 1) {
        ota_client_snapshot_name(u->img, name, sizeof(name));
        max = OTA_CLIENT_SNAPSHOT_MAX;
    } else {
        ota_client_targets_name(u->img, name, sizeof(name));
        max = OTA_CLIENT_TARGETS_MAX;
    }
    snprintf(path, sizeof(path), "%s%s", u->recovery ? REC_TUF_PREFIX : TUF_PREFIX, name);
    if (upd_get(d, path, max, NULL, NULL, on_meta) != 0)
        upd_finish(d, ADEV_FAILED, "internal_error", 0);
}

static void
image_meta(adev_device *d)
{
    d->upd->meta_step = 0;
    fetch_meta(d);
}

/* Step 1 of docs/update.md 3: the image repository. */
static void
image_repo(adev_device *d)
{
    char err[256];
    struct upd_ctx *u = d->upd;
    u->img = load_client(d, ADEV_BLOB_TUF_IMAGE, d->cfg.image_root_json, err, sizeof(err));
    if (u->img == NULL) {
        upd_refuse(d, "root_format", err);
        return;
    }
    u->repo_prefix = u->recovery ? REC_TUF_PREFIX : TUF_PREFIX;
    u->after_roots = image_meta;
    root_next(d);
}

static void
director_answer(adev_device *d)
{
    struct upd_ctx *u = d->upd;
    char err[256], id[65];
    int64_t tenant = u->tenant;

    if (tenant == 0) { /* no certificate to read it from (recovery): the answer's own */
        const json_t *t = json_object_get(
            json_object_get(json_object_get(u->raw, "signed"), "custom"), "tenant_id");
        tenant = json_is_integer(t) ? json_integer_value(t) : 0;
    }
    snprintf(id, sizeof(id), "%s", d->id_hex);
    if (ota_client_director(u->dir, u->answer, u->answer_len, adev_clock_now(d->hal.clock), id,
                            tenant, NULL, err, sizeof(err)) != 0) {
        save_client(d, u->dir, ADEV_BLOB_TUF_DIRECTOR);
        refuse_client(d, u->dir, err);
        return;
    }
    if (save_client(d, u->dir, ADEV_BLOB_TUF_DIRECTOR) != 0) {
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    upd_plan(d);
}

/* Step 2: the director repository's roots, then its answer. */
static void
director_repo(adev_device *d)
{
    char err[256];
    struct upd_ctx *u = d->upd;
    u->dir = load_client(d, ADEV_BLOB_TUF_DIRECTOR, d->cfg.director_root_json, err, sizeof(err));
    if (u->dir == NULL) {
        upd_refuse(d, "root_format", err);
        return;
    }
    u->repo_prefix = u->recovery ? REC_DIRECTOR_PREFIX : DIRECTOR_PREFIX;
    u->after_roots = director_answer;
    root_next(d);
}

uint64_t
adev_update_poll_ms(uint64_t period_ms)
{
    uint64_t r = 0, span = period_ms * 2 / 5;
    if (span == 0 || adev_random(&r, sizeof(r)) != 0)
        return period_ms;
    return period_ms - period_ms / 5 + r % (span + 1);
}
