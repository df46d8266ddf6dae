/* update: the state of `aegis-sim update` (update.c: the cycle; update_summary.c: options and
 * summary). Private to device-sim. */
#ifndef AEGIS_SIM_UPDATE_H
#define AEGIS_SIM_UPDATE_H

#include "faultnet.h"
#include "fleet.h"

#include "ota_client.h"

enum upd_outcome { UO_NONE = 0, UO_COMMITTED, UO_ROLLED_BACK, UO_REFUSED };

struct upd_opts {
    const char *hardware; /* NULL: D/fleet.json's, else "sim-hw" */
    const char *image_root_path, *director_root_path, *server_keys;
    char *image_root, *director_root; /* their text (malloc'd) */
    char *fleet_hw;                   /* D/fleet.json's hardware (malloc'd), or NULL */
    int64_t product_id;
    double time_scale, health_s, poll_s, duration_s, idle_stop_s;
    char until_component[PROTO_COMPONENT_MAX + 1], until_version[PROTO_VERSION_MAX + 1];
    /* --kill-at POINT[:N]: the process kills itself (SIGKILL: a power loss of the whole fleet) the
     * N-th time (default 1) any device reaches POINT, one of the agent's fault points (device.h)
     * or the simulator's "boot" (after the bootloader's write) and "trial" (on a trial boot, after
     * its attestation, before the commit) */
    char kill_point[16];
    long kill_n;
};

/* One device over the whole run: kept while it is powered off (small, so that 10,000 fit). */
struct upd_dev {
    struct faultnet_dev fd;
    uint8_t powered, queued, on_trial, outcome, at_target, flushed, broken;
    uint8_t wake;    /* the next power-on is a wake from sleep (a poll), not a reboot */
    uint8_t cert_ok; /* the boot's attestation passed: a wake checks for updates at once */
    uint8_t crash_k; /* the crash of this trial boot (update.c) */
    char reason[OTA_REASON_MAX];         /* the first refusal, or "" */
    char version[PROTO_VERSION_MAX + 1]; /* what it committed last */
    uint32_t boots, checks, installs, commits, rollbacks, refusals, crashes;
    uint32_t errors; /* update checks that ended ADEV_FAILED */
};

struct upd_run {
    struct upd_opts o;
    struct upd_dev *ud; /* per selected device */
    struct faultnet_keys keys;
    size_t *wait; /* devices waiting for power (a ring of s->n) */
    size_t wait_head, wait_n;
    adev_timer *tick; /* the stop check */
    double t0_ms, changed_ms, elapsed_s;
    json_t *refusals; /* reason -> count of refusals (ADEV_REJECTED update checks) */
    json_t *errors;   /* reason -> count of update checks that failed (ADEV_FAILED) */
};

/* --- update_summary.c --- */

/* Parses the command line into s, a and u->o (free with upd_opts_free and fleet_args_free). 0 to
 * run; -1 to stop with *exit_code. */
int upd_parse_args(int argc, char **argv, struct sim *s, struct fleet_args *a, struct upd_run *u,
                   int *exit_code);
void upd_opts_free(struct upd_opts *o);
/* Prints the summary (text, or JSON with --json). 0 or -1. */
int upd_print_summary(struct sim *s, struct upd_run *u);

#endif
