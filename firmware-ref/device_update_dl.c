/* device_update_dl: what the agent does with a verified director answer (device_update.c): the
 * plan, the download (length as a hard limit, resumed with Range), the digest check, the install
 * into the inactive slot and the switch to a trial boot; commit and rollback of a trial boot; and
 * the reconciliation of the recorded attempt with the boot control block. */
#include "device.h"
#include "device_update_int.h"

#include "abboot.h"
#include "proto_event.h"
#include "proto_fields.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the plan -------------------------------------------------------------------------------- */

static uint32_t
svn_of(const char *component, void *arg)
{
    adev_device *d = arg;
    uint32_t svn = 0;
    if (adev_svn_read(d->hal.slots, component, &svn) != 0)
        return UINT32_MAX; /* unreadable counter: install nothing */
    return svn;
}

/* 1 when the committed slot runs component (any image of it). */
static int
has_component(adev_device *d, const char *component)
{
    char ver[40], running[65];
    uint32_t svn;
    return adev_ab_installed(d->hal.slots, component, ver, sizeof(ver), &svn, running) == 0;
}

void
upd_drop_downloads(adev_device *d)
{
    const struct upd_attempt *a = &d->upd->st.at;
    char name[40];
    for (size_t i = 0; i < a->n; i++) {
        snprintf(name, sizeof(name), "dl-%.32s", a->img[i].sha);
        adev_storage_remove(d->hal.storage, name);
    }
}

/* 1 when the committed slot runs exactly the image sha of component. */
static int
runs(adev_device *d, const char *component, const char *sha)
{
    char ver[40], running[65];
    uint32_t svn;
    return adev_ab_installed(d->hal.slots, component, ver, sizeof(ver), &svn, running) == 0 &&
           strcmp(running, sha) == 0;
}

/* Fills im from a verified director target. 0 or -1. */
static int
image_of(const json_t *t, struct upd_image *im)
{
    const json_t *c = json_object_get(t, "custom");
    const char *sha = json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
    const char *comp = json_string_value(json_object_get(c, "component"));
    const char *kind = json_string_value(json_object_get(c, "kind"));
    const char *ver = json_string_value(json_object_get(c, "version"));
    const json_t *svn = json_object_get(c, "svn"), *len = json_object_get(t, "length");

    memset(im, 0, sizeof(*im));
    if (sha == NULL || comp == NULL || kind == NULL || ver == NULL || !json_is_integer(svn) ||
        !json_is_integer(len) || json_integer_value(len) < 0 ||
        json_integer_value(len) > ADEV_IMAGE_MAX || json_integer_value(svn) < 0 ||
        json_integer_value(svn) > UINT32_MAX || strlen(sha) != 64 || strlen(comp) > 64 ||
        strlen(kind) > 7 || strlen(ver) > 32)
        return -1;
    snprintf(im->sha, sizeof(im->sha), "%s", sha);
    snprintf(im->component, sizeof(im->component), "%s", comp);
    snprintf(im->kind, sizeof(im->kind), "%s", kind);
    snprintf(im->version, sizeof(im->version), "%s", ver);
    im->svn = (uint32_t)json_integer_value(svn);
    im->length = (uint64_t)json_integer_value(len);
    return 0;
}

/* 1 when the recorded attempt installs exactly images want[0..n) of deployment dep. */
static int
same_attempt(const struct upd_attempt *a, int64_t dep, const struct upd_image *want, size_t n)
{
    if (a->state != UPD_DOWNLOADING || a->deployment_id != dep || a->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(a->img[i].sha, want[i].sha) != 0)
            return 0;
    return 1;
}

/* A new attempt of images want[0..n): ids, the inactive slot (its "downloading" reports are queued
 * once it is saved). 0 or -1. */
static int
new_attempt(adev_device *d, int64_t dep, const struct upd_image *want, size_t n)
{
    struct upd_state *s = &d->upd->st;
    struct adev_bootctl bc;
    uint8_t r[8];

    char err[128];
    if (s->at.state == UPD_DOWNLOADING) {
        if (upd_report_all(d, "failed", "superseded") != 0)
            return -1;
        upd_drop_downloads(d);
    }
    /* a rollback reason left by a power loss after its report was queued belongs to no attempt */
    if (adev_bootctl_read(d->hal.slots, &bc) != 0 || adev_random(r, sizeof(r)) != 0 ||
        (bc.rollback_reason[0] != '\0' &&
         adev_ab_clear_rollback(d->hal.slots, err, sizeof(err)) != 0))
        return -1;
    memset(&s->at, 0, sizeof(s->at));
    s->at.state = UPD_DOWNLOADING;
    s->at.deployment_id = dep;
    s->at.slot = 1 - bc.active;
    s->at.n = n;
    for (size_t i = 0; i < n; i++) {
        s->at.img[i] = want[i];
        snprintf(s->at.img[i].attempt_id, sizeof(s->at.img[i].attempt_id),
                 "%02x%02x%02x%02x%02x%02x%02x%02x-%zu", r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                 r[7], i);
    }
    if (s->counted_deployment != dep) {
        s->counted_deployment = dep;
        s->counted_attempts = 0;
    }
    s->counted_attempts += (unsigned)n;
    return 0;
}

void
upd_plan(adev_device *d)
{
    struct upd_ctx *u = d->upd;
    const json_t *sig = json_object_get(u->raw, "signed");
    const json_t *targets = json_object_get(sig, "targets");
    const json_t *depj = json_object_get(json_object_get(sig, "custom"), "deployment_id");
    int64_t dep = json_is_integer(depj) ? json_integer_value(depj) : 0;
    int64_t now_ms = adev_clock_now(d->hal.clock) * 1000;
    struct ota_device_facts facts = {d->cfg.hardware, d->cfg.product_id, svn_of, d};
    struct upd_image want[UPD_IMAGES_MAX];
    size_t n = 0, waiting = 0;
    const char *path;
    const json_t *t;
    char reason[OTA_REASON_MAX], err[256];

    u->rep.deployment_id = dep;
    json_object_foreach((json_t *)targets, path, t)
    {
        if (n == UPD_IMAGES_MAX || image_of(t, &want[n]) != 0) {
            upd_refuse(d, "director_format", "a target the agent cannot read");
            return;
        }
        for (size_t k = 0; k < n; k++)
            if (strcmp(want[k].component, want[n].component) == 0) {
                upd_refuse(d, "director_format", "two targets for one component");
                return;
            }
        if (runs(d, want[n].component, want[n].sha))
            continue; /* it runs that image: nothing to do, nothing to report */
        if (strcmp(want[n].kind, "os") == 0 && !has_component(d, want[n].component)) {
            /* an OS under another name would replace this one past its anti-rollback counter */
            upd_refuse(d, "unknown_component",
                       "an OS image of a component the device does not run");
            return;
        }
        if (ota_client_agree(u->img, path, t, &facts, reason, err, sizeof(err)) != 0) {
            upd_refuse(d, reason, err); /* nothing is installed */
            return;
        }
        const struct upd_backoff *b = upd_backoff_find(&u->st, want[n].sha);
        if (b != NULL && now_ms < b->next_at_ms)
            waiting++;
        n++;
    }
    if (n == 0 && u->st.at.state == UPD_DOWNLOADING &&
        upd_report_all(d, "failed", "superseded") == 0) { /* no longer offered */
        upd_drop_downloads(d);
        memset(&u->st.at, 0, sizeof(u->st.at));
    }
    if (n == 0 || waiting > 0 || dep <= 0) {
        snprintf(u->st.etag, sizeof(u->st.etag), "%s", n == 0 ? u->etag : "");
        if (upd_save(d) == 0)
            upd_finish(d, ADEV_PASS, n == 0 ? "up_to_date" : "backoff", 200);
        return;
    }
    int fresh = !same_attempt(&u->st.at, dep, want, n);
    if (fresh) {
        if (u->st.counted_deployment == dep && u->st.counted_attempts + n > UPD_ATTEMPTS_MAX) {
            upd_finish(d, ADEV_PASS, "attempt_limit", 200);
            return;
        }
        if (new_attempt(d, dep, want, n) != 0) {
            upd_finish(d, ADEV_FAILED, "storage_error", 0);
            return;
        }
    }
    snprintf(u->rep.update_version, sizeof(u->rep.update_version), "%s", want[0].version);
    if (upd_save(d) != 0)
        return;
    /* queued once the attempt is stored: a power loss before leaves no report of an unknown
     * attempt (after, a repeated report is harmless) */
    if (fresh && upd_report_all(d, "downloading", NULL) != 0) {
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    u->cur = 0;
    u->after_flush = upd_download;
    upd_flush(d); /* "downloading" goes out first */
}

/* --- download -------------------------------------------------------------------------------- */

static void
blob_of(const struct upd_image *im, char name[40])
{
    snprintf(name, 40, "dl-%.32s", im->sha);
}

/* The transport's body sink: appends to the download area; the target's length is the hard
 * limit of what one answer may carry. */
static int
on_piece(void *arg, const void *data, size_t len)
{
    adev_device *d = arg;
    struct upd_ctx *u = d->upd;
    const struct upd_image *im = &u->st.at.img[u->cur];
    char name[40];

    if (u->got + len > im->length) {
        u->over = 1;
        return 1;
    }
    blob_of(im, name);
    if (adev_storage_append(d->hal.storage, name, data, len) != 0)
        return 1;
    u->got += len;
    if (d->cfg.fault_point != NULL && d->cfg.fault_point(d, "download", d->arg)) {
        u->lost = 1; /* the power is gone: the callback drops everything */
        return 1;
    }
    return 0;
}

/* Ends the attempt with a "failed" refusal of image i for reason (the others: reason too). */
static void
fail_attempt(adev_device *d, const char *reason, const char *detail)
{
    struct upd_state *s = &d->upd->st;
    char name[40];
    int64_t now_ms = adev_clock_now(d->hal.clock) * 1000;

    for (size_t i = 0; i < s->at.n; i++) {
        blob_of(&s->at.img[i], name);
        adev_storage_remove(d->hal.storage, name);
        upd_backoff_fail(s, s->at.img[i].sha, now_ms, d->cfg.update_backoff_base_ms,
                         d->cfg.update_backoff_max_ms);
    }
    if (upd_report_all(d, "failed", reason) != 0) {
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    memset(&s->at, 0, sizeof(s->at));
    if (upd_save(d) != 0)
        return;
    upd_end_refused(d, reason, detail);
}

static void verify_image(adev_device *d);

/* The stored bytes are not a prefix of the image (a 206 elsewhere, a 416 while the stored bytes do
 * not match): start the download over, once per image; a second time ends the attempt. */
static void
start_over(adev_device *d, const char *name, const char *reason, const char *detail)
{
    adev_storage_remove(d->hal.storage, name);
    if (d->upd->restarted) {
        fail_attempt(d, reason, detail);
        return;
    }
    d->upd->restarted = 1;
    upd_download(d);
}

/* Keeps the last got bytes of the download area (a 200 answered a resume with the whole image). */
static int
keep_suffix(adev_device *d, const char *name, uint64_t got)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = -1;
    if (adev_storage_read(d->hal.storage, name, ADEV_IMAGE_MAX * 2u, &data, &len) == 0 &&
        len >= got)
        rc = adev_storage_write(d->hal.storage, name, data + (len - got), (size_t)got, 0);
    free(data);
    return rc;
}

static void
on_download(const struct adev_http_response *resp, void *arg)
{
    adev_device *d = arg;
    struct upd_ctx *u = d->upd;
    char name[40];

    d->call = NULL;
    if (u->lost) {
        upd_drop(d);
        return;
    }
    blob_of(&u->st.at.img[u->cur], name);
    if (u->over || resp->err == ADEV_NET_TOO_LARGE) {
        /* the target's length is the hard limit of every answer (the transport's max_body, and
         * on_piece behind it) */
        fail_attempt(d, "too_large", "the image's answer is longer than its target's length");
        return;
    }
    if (resp->err == ADEV_NET_OK && resp->status >= 200 && resp->status < 300)
        upd_progress(d);
    if (resp->err == ADEV_NET_OK && resp->status == 404) {
        /* the service serves only what the device's current answer names (docs/update.md 5): the
         * rollout stopped (paused, halted, aborted) while it downloaded */
        fail_attempt(d, "superseded", "the image is no longer offered");
        return;
    }
    if (resp->err != ADEV_NET_OK ||
        (resp->status != 200 && resp->status != 206 && resp->status != 416)) {
        if (u->got > 0 && u->progress < 1000) { /* cut off after progress: resume at once */
            u->progress++;
            upd_download(d);
            return;
        }
        upd_retry(d, resp, upd_download); /* the attempt stays: the next check resumes it */
        return;
    }
    if (resp->status == 200 && u->have > 0 && keep_suffix(d, name, u->got) != 0) {
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    if (resp->status == 206) {
        char want[48];
        snprintf(want, sizeof(want), "bytes %llu-", (unsigned long long)u->have);
        if (resp->content_range == NULL || strncmp(resp->content_range, want, strlen(want)) != 0) {
            start_over(d, name, "bad_range", "a 206 that does not continue the download");
            return;
        }
    }
    u->had_416 = resp->status == 416;
    uint64_t have = resp->status == 200 ? u->got : u->have + u->got;
    const struct upd_image *im = &u->st.at.img[u->cur];
    if (resp->status != 416 && u->got == u->asked && have < im->length) {
        u->progress = 0;
        upd_download(d); /* the next piece */
        return;
    }
    verify_image(d);
}

void
upd_download(adev_device *d)
{
    struct upd_ctx *u = d->upd;
    const struct upd_image *im;
    char name[40], path[160], range[96], ifr[96];
    const char *h[3] = {NULL, NULL, NULL};
    uint64_t have = 0;

    if (u->cur == u->st.at.n) {
        upd_install(d);
        return;
    }
    im = &u->st.at.img[u->cur];
    blob_of(im, name);
    if (adev_storage_size(d->hal.storage, name, &have) != 0)
        have = 0;
    if (have > im->length) { /* not this image's bytes: start over */
        adev_storage_remove(d->hal.storage, name);
        have = 0;
    }
    if (have == im->length) {
        verify_image(d);
        return;
    }
    u->have = have;
    u->got = 0;
    u->over = 0;
    u->asked = im->length - have;
    if (d->cfg.download_chunk_max > 0 && u->asked > d->cfg.download_chunk_max)
        u->asked = d->cfg.download_chunk_max;
    if (have > 0 || u->asked < im->length) {
        snprintf(range, sizeof(range), "Range: bytes=%llu-%llu", (unsigned long long)have,
                 (unsigned long long)(have + u->asked - 1));
        snprintf(ifr, sizeof(ifr), "If-Range: \"%s\"", im->sha);
        h[0] = range;
        h[1] = ifr;
    }
    snprintf(path, sizeof(path), "%s%s",
             u->recovery ? "/v1/device/recovery/images/" : "/v1/device/images/", im->sha);
    /* a 200 may carry the whole image: the target's length bounds every answer */
    if (upd_get(d, path, im->length > 0 ? im->length : 1, h, on_piece, on_download) != 0)
        upd_finish(d, ADEV_FAILED, "internal_error", 0);
}

/* Length and SHA-256 of the downloaded image against the verified target, before anything is
 * written to the inactive slot; kept in memory for the install. */
static void
verify_image(adev_device *d)
{
    struct upd_ctx *u = d->upd;
    const struct upd_image *im = &u->st.at.img[u->cur];
    char name[40], hex[65];
    uint8_t *data = NULL, digest[32];
    size_t len = 0;

    blob_of(im, name);
    int r = adev_storage_read(d->hal.storage, name, (size_t)im->length + 1, &data, &len);
    if (r != 0 && r != -2 && r != -3) {
        free(data);
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    if (r != 0 || len != im->length) {
        free(data);
        if (u->had_416 && !u->restarted) { /* docs/update.md 5: a 416 that does not match */
            start_over(d, name, "length_mismatch", "the stored image does not match");
            return;
        }
        fail_attempt(d, r == -3 ? "too_large" : "length_mismatch",
                     "the downloaded image's length is not its target's");
        return;
    }
    proto_sha256(data, len, digest);
    proto_hex(digest, sizeof(digest), hex);
    if (strcmp(hex, im->sha) != 0) {
        free(data);
        if (u->had_416 && !u->restarted) {
            start_over(d, name, "hash_mismatch", "the stored image does not match");
            return;
        }
        fail_attempt(d, "hash_mismatch", "the downloaded image's SHA-256 is not its target's");
        return;
    }
    free(u->data[u->cur]);
    u->data[u->cur] = data;
    u->len[u->cur] = len;
    if (upd_power_lost(d, "downloaded"))
        return;
    u->cur++;
    u->progress = 0;
    u->restarted = 0;
    u->had_416 = 0;
    upd_download(d);
}
