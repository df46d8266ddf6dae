/* abboot: the A/B state machine over the slots and boot control block of adev_hal.h: the
 * bootloader's choice with a boot counter (as U-Boot's bootcount/bootlimit, RAUC's BOOT_x_LEFT and
 * Mender's upgrade_available do), staging an update into the inactive slot, the switch to a trial
 * boot, commit, and rollback. docs/update.md "The device's state machine" is the normative text.
 *
 *   factory:   slot 0 holds the system, active 0, no trial
 *   stage:     the inactive slot gets the active slot's manifest and images with the updated
 *              components replaced (images first, the manifest last); nothing boots it yet
 *   arm:       one control-block write: trial = inactive, tries = n          ("installed")
 *   boot:      trial pending with tries > 0: tries - 1 written, then the trial slot boots
 *              ("booted", booted_trial = 1); trial pending with tries == 0: the trial is over
 *              without a commit: trial = -1, rollback_reason "boot_limit" (unless one is set),
 *              the active slot boots
 *   commit:    on a trial boot: active = trial, trial = -1 (one write), then every component's
 *              security-version counter is raised to the svn the new slot's manifest names
 *              ("committed"); a boot of a committed slot raises them again (a power loss between
 *              the two writes loses nothing)
 *   reject:    on a trial boot whose health check failed: trial = -1, rollback_reason = why (one
 *              write); the next boot is the active slot                    ("rolled_back")
 *
 * A power loss at any point leaves a control block that names a complete slot: the active slot is
 * never written while it is active, and a slot is armed only after its manifest (written last)
 * is complete.
 *
 * Functions return 0 or a negative value with a message in err (which may be NULL). */
#ifndef ADEV_ABBOOT_H
#define ADEV_ABBOOT_H

#include "adev_hal.h"
#include "boot.h"

#include <stddef.h>
#include <stdint.h>

#define ADEV_AB_TRIES 1 /* default trial boots before a rollback */

/* The bootloader's decision for one boot. */
struct adev_ab_boot {
    int slot;  /* the slot that boots */
    int trial; /* 1: a trial boot of a staged update */
    /* the trial that just ended without a commit: its reason (else ""), to report */
    char rolled_back[ADEV_BOOTCTL_REASON_MAX];
};

/* Makes a factory device: images boot[0..n) (boot order, as adev_boot_install) and previous[]
 * into slot 0, slot 1 emptied, control block {active 0, trial -1}, counters raised to the svns
 * of boot[]. */
int adev_ab_factory(adev_slots *s, const struct adev_image *boot, size_t n,
                    const struct adev_image *previous, size_t nprev, char *err, size_t errlen);

/* The bootloader: decides which slot boots (above) and writes the control block before it
 * returns. Without a control block: slot 0, no trial. Then raises the counters to the svns of a
 * committed slot's manifest. */
int adev_ab_boot(adev_slots *s, struct adev_ab_boot *out, char *err, size_t errlen);

/* The storage of the slot the last adev_ab_boot chose (borrowed). */
adev_storage *adev_ab_running(adev_slots *s);

/* Stages images upd[0..n) (stage, component, version, svn, bytes; at most one per component)
 * into the inactive slot: the active slot's manifest with those components' entries replaced
 * (an os replaces the os stage; an app replaces the app of that component, or is added), the
 * images it keeps copied. The slot's old manifest is removed first, so an interrupted stage leaves
 * a slot without one (arm refuses it; staging again completes it). Refuses while a trial is
 * pending or running (also a rejected one, until the next boot). */
int adev_ab_stage(adev_slots *s, const struct adev_image *upd, size_t n, char *err, size_t errlen);

/* Arms the staged slot for tries trial boots (0: ADEV_AB_TRIES; at most 255) once measured boot
 * of it succeeds (a complete manifest and every image). */
int adev_ab_arm(adev_slots *s, unsigned tries, char *err, size_t errlen);

/* Commits the running trial boot and raises the counters. Only on a trial boot. */
int adev_ab_commit(adev_slots *s, char *err, size_t errlen);

/* Ends the running trial boot without a commit, with reason (1-63 printable ASCII characters):
 * the next boot is the committed slot. Only on a trial boot. */
int adev_ab_reject(adev_slots *s, const char *reason, char *err, size_t errlen);

/* Clears a reported rollback reason (the agent queued its report). */
int adev_ab_clear_rollback(adev_slots *s, char *err, size_t errlen);

/* 1 when the running boot is a trial boot that can still be committed or rejected, 0 when not
 * (also after a reject), -1 on error. */
int adev_ab_on_trial(adev_slots *s);

/* What the committed (active) slot runs for component: version into version[cap], svn, and the
 * image's SHA-256 (lower-case hex) into sha_hex[65]. 0, -2 when the component is not there, -1. */
int adev_ab_installed(adev_slots *s, const char *component, char *version, size_t cap,
                      uint32_t *svn, char sha_hex[65]);

#endif
