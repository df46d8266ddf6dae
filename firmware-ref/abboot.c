/* abboot: the A/B state machine (abboot.h) over the slots of adev_hal.h. Every transition is one
 * write of the boot control block, and the slot it names is complete before that write: that is
 * the whole power-loss argument (abboot.h), and why nothing here writes the control block before
 * the slot it points to is checked. */
#include "abboot.h"

#include "proto_fields.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRIES_MAX 255 /* what the host's control block accepts */

static int
fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* The control block; a device without one is a factory device that never booted: slot 0. */
static int
ctl_read(adev_slots *s, struct adev_bootctl *c, char *err, size_t errlen)
{
    int rc = adev_bootctl_read(s, c);
    if (rc == -2) {
        memset(c, 0, sizeof(*c));
        c->trial = -1;
        return 0;
    }
    return rc == 0 ? 0 : fail(err, errlen, -1, "boot control block unreadable or malformed");
}

static int
ctl_write(adev_slots *s, struct adev_bootctl *c, char *err, size_t errlen)
{
    c->seq++;
    return adev_bootctl_write(s, c) == 0 ? 0
                                         : fail(err, errlen, -1, "boot control block write failed");
}

/* Raises every counter to the svn that slot's manifest names for its boot chain. */
static int
raise_counters(adev_slots *s, int slot, char *err, size_t errlen)
{
    struct adev_manifest m;
    if (adev_manifest_read(adev_slots_storage(s, slot), &m) != 0)
        return fail(err, errlen, -1, "slot %d: no valid manifest", slot);
    for (size_t i = 0; i < m.n; i++) {
        if (adev_svn_raise(s, m.stages[i].component, m.stages[i].svn) != 0)
            return fail(err, errlen, -1, "raising the counter of %s failed", m.stages[i].component);
    }
    return 0;
}

/* Empties a slot: the manifest first (from then on the slot is not bootable, whatever is left),
 * then the images it named. */
static int
slot_clear(adev_storage *st)
{
    struct adev_manifest m;
    int have = adev_manifest_read(st, &m) == 0;
    if (adev_storage_remove(st, ADEV_MANIFEST) != 0)
        return -1;
    for (size_t i = 0; have && i < m.n + m.nprev; i++) {
        const struct adev_manifest_entry *e = i < m.n ? &m.stages[i] : &m.previous[i - m.n];
        if (adev_storage_remove(st, e->image) != 0)
            return -1;
    }
    return 0;
}

int
adev_ab_factory(adev_slots *s, const struct adev_image *boot, size_t n,
                const struct adev_image *previous, size_t nprev, char *err, size_t errlen)
{
    struct adev_bootctl c;
    adev_storage *s0 = adev_slots_storage(s, 0), *s1 = adev_slots_storage(s, 1);

    if (s0 == NULL || s1 == NULL || boot == NULL)
        return fail(err, errlen, -1, "bad arguments");
    if (slot_clear(s0) != 0 || adev_boot_install(s0, boot, n, previous, nprev) != 0)
        return fail(err, errlen, -1, "installing slot 0 failed");
    if (slot_clear(s1) != 0)
        return fail(err, errlen, -1, "emptying slot 1 failed");
    struct adev_bootctl old;
    memset(&c, 0, sizeof(c));
    c.trial = -1;
    if (adev_bootctl_read(s, &old) == 0)
        c.seq = old.seq; /* seq keeps counting across a re-flash */
    if (ctl_write(s, &c, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (adev_svn_raise(s, boot[i].component, boot[i].svn) != 0)
            return fail(err, errlen, -1, "raising the counter of %s failed", boot[i].component);
    }
    return 0;
}

int
adev_ab_boot(adev_slots *s, struct adev_ab_boot *out, char *err, size_t errlen)
{
    struct adev_bootctl c;

    if (s == NULL || out == NULL)
        return fail(err, errlen, -1, "bad arguments");
    memset(out, 0, sizeof(*out));
    if (ctl_read(s, &c, err, errlen) != 0)
        return -1;
    c.booted = c.active;
    c.booted_trial = 0;
    if (c.trial >= 0 && c.tries > 0) {
        /* counted before the boot: a trial that hangs or crashes before its commit uses up its
         * tries, and the bootloader gives up on it by itself */
        c.tries--;
        c.booted = c.trial;
        c.booted_trial = 1;
    } else if (c.trial >= 0) {
        c.trial = -1;
        if (c.rollback_reason[0] == '\0')
            snprintf(c.rollback_reason, sizeof(c.rollback_reason), "boot_limit");
    }
    if (ctl_write(s, &c, err, errlen) != 0)
        return -1;
    out->slot = c.booted;
    out->trial = c.booted_trial;
    snprintf(out->rolled_back, sizeof(out->rolled_back), "%s", c.rollback_reason);
    /* a commit whose counters were lost to a power cut gets them now */
    return c.booted_trial ? 0 : raise_counters(s, c.booted, err, errlen);
}

adev_storage *
adev_ab_running(adev_slots *s)
{
    struct adev_bootctl c;
    if (ctl_read(s, &c, NULL, 0) != 0)
        return NULL;
    return adev_slots_storage(s, c.booted);
}

/* Stage and arm work on the inactive slot, only while the committed slot runs with no trial. */
static int
idle_state(adev_slots *s, struct adev_bootctl *c, char *err, size_t errlen)
{
    if (ctl_read(s, c, err, errlen) != 0)
        return -1;
    if (c->trial >= 0 || c->booted_trial || c->booted != c->active)
        return fail(err, errlen, -1, "a trial is pending or running");
    return 0;
}

/* Which update replaces manifest entry e: an os or bootloader replaces its stage, an app the app
 * of its component. */
static const struct adev_image *
replacement(const struct adev_manifest_entry *e, const struct adev_image *upd, size_t n, int *used)
{
    for (size_t i = 0; i < n; i++) {
        int same = e->stage == PROTO_STAGE_APP ? upd[i].stage == PROTO_STAGE_APP &&
                                                     strcmp(upd[i].component, e->component) == 0
                                               : upd[i].stage == e->stage;
        if (same) {
            used[i] = 1;
            return &upd[i];
        }
    }
    return NULL;
}

/* The images of the next system: the active manifest's, replaced, kept (read into bufs), or
 * added. */
struct plan {
    struct adev_manifest m;
    struct adev_image boot[PROTO_EVENTS_MAX], prev[ADEV_PREVIOUS_MAX];
    size_t n, nprev;
    uint8_t *bufs[PROTO_EVENTS_MAX + ADEV_PREVIOUS_MAX];
    size_t nbufs;
};

/* An image kept from the active slot: e's claims and its bytes. */
static int
keep(struct plan *p, adev_storage *active, const struct adev_manifest_entry *e,
     struct adev_image *im)
{
    size_t len = 0;
    uint8_t **buf = &p->bufs[p->nbufs];
    if (adev_storage_read(active, e->image, ADEV_IMAGE_MAX, buf, &len) != 0)
        return -1;
    p->nbufs++;
    *im = (struct adev_image){e->stage, e->component, e->version, e->svn, *buf, len};
    return 0;
}

static int
plan_make(struct plan *p, adev_storage *active, const struct adev_image *upd, size_t n, char *err,
          size_t errlen)
{
    int used[PROTO_EVENTS_MAX] = {0};

    if (adev_manifest_read(active, &p->m) != 0)
        return fail(err, errlen, -1, "the active slot has no valid manifest");
    for (size_t i = 0; i < n; i++) {
        if (upd[i].component == NULL || upd[i].version == NULL || upd[i].data == NULL ||
            !proto_component_ok(upd[i].component, strlen(upd[i].component)))
            return fail(err, errlen, -1, "update %zu: bad image", i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(upd[i].component, upd[j].component) == 0)
                return fail(err, errlen, -1, "component %s named twice", upd[i].component);
        }
    }
    for (size_t i = 0; i < p->m.n; i++) {
        const struct adev_image *u = replacement(&p->m.stages[i], upd, n, used);
        if (u != NULL)
            p->boot[p->n++] = *u;
        else if (keep(p, active, &p->m.stages[i], &p->boot[p->n++]) != 0)
            return fail(err, errlen, -1, "reading %s of the active slot failed",
                        p->m.stages[i].image);
    }
    for (size_t i = 0; i < n; i++) {
        if (used[i])
            continue;
        if (upd[i].stage != PROTO_STAGE_APP || p->n >= PROTO_EVENTS_MAX)
            return fail(err, errlen, -1, "component %s: no place for it in the boot chain",
                        upd[i].component);
        p->boot[p->n++] = upd[i];
    }
    for (size_t i = 0; i < p->m.nprev; i++) {
        if (keep(p, active, &p->m.previous[i], &p->prev[p->nprev++]) != 0)
            return fail(err, errlen, -1, "reading %s of the active slot failed",
                        p->m.previous[i].image);
    }
    return 0;
}

int
adev_ab_stage(adev_slots *s, const struct adev_image *upd, size_t n, char *err, size_t errlen)
{
    struct adev_bootctl c;
    struct plan *p = NULL;
    int rc = -1;

    if (s == NULL || (upd == NULL && n > 0) || n > PROTO_EVENTS_MAX) {
        rc = fail(err, errlen, -1, "bad arguments");
        goto out;
    }
    if (idle_state(s, &c, err, errlen) != 0)
        goto out;
    p = calloc(1, sizeof(*p));
    if (p == NULL || plan_make(p, adev_slots_storage(s, c.active), upd, n, err, errlen) != 0)
        goto out;
    /* the manifest goes first and comes back last (adev_boot_install writes it after the
     * images): an interrupted stage leaves a slot without a manifest, which arm refuses */
    adev_storage *target = adev_slots_storage(s, 1 - c.active);
    if (slot_clear(target) != 0 ||
        adev_boot_install(target, p->boot, p->n, p->prev, p->nprev) != 0) {
        fail(err, errlen, -1, "writing slot %d failed (or the new boot chain is invalid)",
             1 - c.active);
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; p != NULL && i < p->nbufs; i++)
        free(p->bufs[i]);
    free(p);
    return rc;
}

int
adev_ab_arm(adev_slots *s, unsigned tries, char *err, size_t errlen)
{
    struct adev_bootctl c;
    struct adev_boot_log *log = NULL;
    int rc = -1;

    if (tries > TRIES_MAX) {
        rc = fail(err, errlen, -1, "at most %d tries", TRIES_MAX);
        goto out;
    }
    if (s == NULL || idle_state(s, &c, err, errlen) != 0)
        goto out;
    /* the slot must boot (manifest present, every image there and measurable) before anything
     * points at it */
    log = malloc(sizeof(*log));
    if (log == NULL || adev_boot_run(adev_slots_storage(s, 1 - c.active), NULL, log) != 0) {
        fail(err, errlen, -1, "slot %d holds no complete system (stage it first)", 1 - c.active);
        goto out;
    }
    c.trial = 1 - c.active;
    c.tries = tries ? tries : ADEV_AB_TRIES;
    rc = ctl_write(s, &c, err, errlen);
out:
    free(log);
    return rc;
}

/* The running boot is a trial that can still end: commit or reject. */
static int
trial_state(adev_slots *s, struct adev_bootctl *c, char *err, size_t errlen)
{
    if (ctl_read(s, c, err, errlen) != 0)
        return -1;
    if (!c->booted_trial || c->trial != c->booted)
        return fail(err, errlen, -1, "not on a trial boot");
    return 0;
}

int
adev_ab_commit(adev_slots *s, char *err, size_t errlen)
{
    struct adev_bootctl c;
    if (s == NULL || trial_state(s, &c, err, errlen) != 0)
        return -1;
    c.active = c.trial;
    c.trial = -1;
    c.tries = 0;
    c.booted_trial = 0;
    if (ctl_write(s, &c, err, errlen) != 0)
        return -1;
    return raise_counters(s, c.active, err, errlen);
}

int
adev_ab_reject(adev_slots *s, const char *reason, char *err, size_t errlen)
{
    struct adev_bootctl c;
    size_t len = reason != NULL ? strlen(reason) : 0;

    if (len == 0 || len >= ADEV_BOOTCTL_REASON_MAX)
        return fail(err, errlen, -1, "reason must be 1-%d characters", ADEV_BOOTCTL_REASON_MAX - 1);
    for (size_t i = 0; i < len; i++) {
        if (reason[i] < 0x20 || reason[i] > 0x7e)
            return fail(err, errlen, -1, "reason must be printable ASCII");
    }
    if (s == NULL || trial_state(s, &c, err, errlen) != 0)
        return -1;
    /* booted_trial stays: the rejected system still runs until the next boot, and nothing may
     * be staged over it meanwhile */
    c.trial = -1;
    c.tries = 0;
    snprintf(c.rollback_reason, sizeof(c.rollback_reason), "%s", reason);
    return ctl_write(s, &c, err, errlen);
}

int
adev_ab_clear_rollback(adev_slots *s, char *err, size_t errlen)
{
    struct adev_bootctl c;
    if (s == NULL || ctl_read(s, &c, err, errlen) != 0)
        return -1;
    if (c.rollback_reason[0] == '\0')
        return 0;
    c.rollback_reason[0] = '\0';
    return ctl_write(s, &c, err, errlen);
}

int
adev_ab_on_trial(adev_slots *s)
{
    struct adev_bootctl c;
    if (s == NULL || ctl_read(s, &c, NULL, 0) != 0)
        return -1;
    return c.booted_trial && c.trial == c.booted;
}

int
adev_ab_installed(adev_slots *s, const char *component, char *version, size_t cap, uint32_t *svn,
                  char sha_hex[65])
{
    struct adev_bootctl c;
    struct adev_manifest m;
    uint8_t *img = NULL, digest[32];
    size_t len = 0;
    int rc = -1;

    if (s == NULL || component == NULL || version == NULL || svn == NULL || sha_hex == NULL ||
        ctl_read(s, &c, NULL, 0) != 0)
        goto out;
    adev_storage *st = adev_slots_storage(s, c.active);
    if (adev_manifest_read(st, &m) != 0)
        goto out;
    const struct adev_manifest_entry *e = NULL;
    for (size_t i = 0; i < m.n && e == NULL; i++)
        e = strcmp(m.stages[i].component, component) == 0 ? &m.stages[i] : NULL;
    if (e == NULL) {
        rc = -2;
        goto out;
    }
    if (strlen(e->version) >= cap ||
        adev_storage_read(st, e->image, ADEV_IMAGE_MAX, &img, &len) != 0 ||
        proto_sha256(img, len, digest) != 0)
        goto out;
    snprintf(version, cap, "%s", e->version);
    *svn = e->svn;
    proto_hex(digest, sizeof(digest), sha_hex);
    rc = 0;
out:
    free(img);
    return rc;
}
