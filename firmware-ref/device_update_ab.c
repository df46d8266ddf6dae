/* device_update_ab: the agent's A/B steps (device.h): the install into the inactive slot and the
 * switch to a trial boot, commit and rollback of a trial boot, the reconciliation of the recorded
 * attempt with the boot control block after a reboot or a power loss, and the recovery grant. */
#include "device.h"
#include "device_update_int.h"

#include "abboot.h"
#include "proto_fields.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- install --------------------------------------------------------------------------------- */

static void
installed_done(adev_device *d)
{
    d->upd->rep.reboot = 1;
    d->rec_token[0] = '\0'; /* a recovery grant serves one install */
    upd_finish(d, ADEV_PASS, "installed", 200);
}

/* The verified images (in memory) into the inactive slot, then the switch: one control-block
 * write arms the trial boot. */
void
upd_install(adev_device *d)
{
    struct upd_ctx *u = d->upd;
    struct upd_attempt *a = &u->st.at;
    struct adev_image imgs[UPD_IMAGES_MAX];
    char err[256];

    for (size_t i = 0; i < a->n; i++) {
        imgs[i].stage = strcmp(a->img[i].kind, "os") == 0 ? PROTO_STAGE_OS : PROTO_STAGE_APP;
        imgs[i].component = a->img[i].component;
        imgs[i].version = a->img[i].version;
        imgs[i].svn = a->img[i].svn;
        imgs[i].data = u->data[i];
        imgs[i].len = u->len[i];
    }
    if (adev_ab_stage(d->hal.slots, imgs, a->n, err, sizeof(err)) != 0) {
        device_set_detail(d, err);
        upd_finish(d, ADEV_FAILED, "write_failed", 0);
        return;
    }
    if (upd_power_lost(d, "staged"))
        return;
    if (adev_ab_arm(d->hal.slots, d->cfg.update_tries, err, sizeof(err)) != 0) {
        device_set_detail(d, err);
        upd_finish(d, ADEV_FAILED, "write_failed", 0);
        return;
    }
    if (upd_power_lost(d, "armed"))
        return;
    a->state = UPD_INSTALLED;
    if (upd_save(d) != 0)
        return; /* ended (and reported) by upd_save: d may be gone */
    if (upd_report_all(d, "installed", NULL) != 0) {
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    upd_drop_downloads(d); /* the download area is free again */
    u->after_flush = installed_done;
    upd_flush(d);
}

/* --- reconciliation -------------------------------------------------------------------------- */

/* The attempt is over (committed or rolled back): reports, backoff, forget it. */
static int
end_attempt(adev_device *d, const char *state, const char *reason)
{
    struct upd_state *s = &d->upd->st;
    int64_t now_ms = adev_clock_now(d->hal.clock) * 1000;
    if (upd_report_all(d, state, reason) != 0)
        return -1;
    for (size_t i = 0; i < s->at.n; i++) {
        struct upd_backoff *b = upd_backoff_find(s, s->at.img[i].sha);
        if (reason != NULL)
            upd_backoff_fail(s, s->at.img[i].sha, now_ms, d->cfg.update_backoff_base_ms,
                             d->cfg.update_backoff_max_ms);
        else if (b != NULL)
            b->fails = 0, b->next_at_ms = 0;
    }
    snprintf(d->upd->rep.update_version, sizeof(d->upd->rep.update_version), "%s",
             s->at.img[0].version);
    upd_drop_downloads(d);
    memset(&s->at, 0, sizeof(s->at));
    return 0;
}

int
upd_reconcile(adev_device *d)
{
    struct upd_state *s = &d->upd->st;
    struct adev_bootctl bc;
    char err[128];

    if (s->at.state == UPD_NONE)
        return 0;
    if (adev_bootctl_read(d->hal.slots, &bc) != 0)
        return -1;
    int slot = s->at.slot;
    /* armed, but the power went before the attempt recorded it, and the trial is already over: a
     * rollback reason is only ever left by a trial (and cleared once reported or superseded) */
    int armed_unrecorded = s->at.state == UPD_DOWNLOADING && bc.trial != slot &&
                           bc.active != slot && bc.rollback_reason[0] != '\0';
    if (bc.trial == slot || armed_unrecorded) {
        if (s->at.state < UPD_INSTALLED) {
            s->at.state = UPD_INSTALLED;
            upd_drop_downloads(d);
            if (upd_report_all(d, "installed", NULL) != 0)
                return -1;
        }
    }
    if (bc.trial == slot) { /* on trial once it booted */
        if (bc.booted_trial && bc.booted == slot && s->at.state < UPD_BOOTED) {
            s->at.state = UPD_BOOTED;
            if (upd_report_all(d, "booted", NULL) != 0)
                return -1;
        }
    } else if (bc.active == slot) { /* committed (the report was lost with the power) */
        if (end_attempt(d, "committed", NULL) != 0)
            return -1;
    } else if (s->at.state >= UPD_INSTALLED) { /* the trial ended without a commit */
        const char *why = bc.rollback_reason[0] != '\0' ? bc.rollback_reason : "boot_limit";
        /* stored before the reason is cleared: a power loss in between leaves a reason that the
         * next attempt clears (new_attempt), never a second report */
        if (end_attempt(d, "rolled_back", why) != 0 || upd_state_save(d->hal.storage, s) != 0 ||
            adev_ab_clear_rollback(d->hal.slots, err, sizeof(err)) != 0)
            return -1;
    }
    return upd_state_save(d->hal.storage, s);
}

/* --- commit and rollback --------------------------------------------------------------------- */

static void
confirm_done(adev_device *d)
{
    upd_finish(d, ADEV_PASS, d->reason, 200);
}

/* Ends the trial: commit (reason NULL) or rollback with reason. */
static void
confirm(adev_device *d, const char *reason)
{
    char err[256];
    int rc;

    if (upd_reconcile(d) != 0) {
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    if (upd_power_lost(d, "committing"))
        return;
    rc = reason == NULL ? adev_ab_commit(d->hal.slots, err, sizeof(err))
                        : adev_ab_reject(d->hal.slots, reason, err, sizeof(err));
    if (rc != 0) {
        device_set_detail(d, err);
        upd_finish(d, ADEV_FAILED, "write_failed", 0);
        return;
    }
    if (upd_power_lost(d, "committed"))
        return;
    if (d->upd->st.at.state != UPD_NONE &&
        (end_attempt(d, reason == NULL ? "committed" : "rolled_back", reason) != 0 ||
         (reason != NULL && adev_ab_clear_rollback(d->hal.slots, err, sizeof(err)) != 0))) {
        upd_finish(d, ADEV_FAILED, "storage_error", 0);
        return;
    }
    if (upd_save(d) != 0)
        return;
    snprintf(d->reason, sizeof(d->reason), "%s", reason == NULL ? "committed" : "rolled_back");
    d->upd->after_flush = confirm_done;
    upd_flush(d);
}

static void
commit_start(adev_device *d)
{
    if (upd_begin(d) == NULL)
        return;
    char why[ADEV_BOOTCTL_REASON_MAX];
    if (!d->attested) /* docs/update.md 9.1: commit only after a passing attestation of this boot */
        snprintf(why, sizeof(why), "attestation_%.40s",
                 d->attest_refusal[0] != '\0' ? d->attest_refusal : "missing");
    confirm(d, d->attested ? NULL : why);
}

static void
reject_start(adev_device *d)
{
    if (upd_begin(d) == NULL)
        return;
    confirm(d, d->trial_reason);
}

int
adev_device_update_commit(adev_device *d)
{
    if (d == NULL || d->busy || d->hal.slots == NULL || adev_ab_on_trial(d->hal.slots) != 1)
        return -1;
    d->detail[0] = '\0';
    return device_begin_op(d, ADEV_OP_CONFIRM, commit_start);
}

int
adev_device_update_reject(adev_device *d, const char *reason)
{
    size_t n = reason != NULL ? strlen(reason) : 0;
    if (d == NULL || d->busy || d->hal.slots == NULL || n == 0 || n >= ADEV_BOOTCTL_REASON_MAX ||
        adev_ab_on_trial(d->hal.slots) != 1)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (reason[i] < 0x21 || reason[i] > 0x7e)
            return -1;
    snprintf(d->trial_reason, sizeof(d->trial_reason), "%s", reason);
    return device_begin_op(d, ADEV_OP_CONFIRM, reject_start);
}

/* --- recovery -------------------------------------------------------------------------------- */

void
device_take_recovery(adev_device *d, const struct adev_http_response *resp)
{
    json_t *root = json_loadb(resp->body, resp->body_len, 0, NULL);
    const json_t *rec = json_object_get(root, "recovery");
    const char *tok = json_string_value(json_object_get(rec, "token"));
    const json_t *dir = json_object_get(rec, "director");
    char *text = NULL;

    if (tok != NULL && strlen(tok) == 64 && json_is_object(dir) &&
        (text = json_dumps(dir, JSON_COMPACT)) != NULL) {
        snprintf(d->rec_token, sizeof(d->rec_token), "%s", tok);
        free(d->rec_director);
        d->rec_director = text;
    }
    json_decref(root);
}

int
adev_device_has_recovery(const adev_device *d)
{
    return d != NULL && d->rec_token[0] != '\0';
}
