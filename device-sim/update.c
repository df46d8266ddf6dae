/* update: `aegis-sim update` (device-sim/README.md "update"): a fleet through whole rollouts.
 *
 * Every device lives on the shared loop as a timer and a small struct (struct upd_dev); at most
 * --concurrency devices are powered at once (the others wait in a ring). A powered device:
 * power on -> the bootloader (adev_ab_boot) -> attest (+ upload its crash queue) -> on a trial
 * boot, a health period (--health / --time-scale) that a matching --crash (or the crash-update
 * fault) cuts short with a crash (recorded in the queue, the trial rejected, a reboot), else a
 * commit -> an update check: "installed" reboots at once, anything else powers off and polls
 * again after --poll / --time-scale, spread by the agent's adev_update_poll_ms. A refusal
 * (ADEV_REJECTED) is recorded with its reason; a failure (ADEV_FAILED: network, storage, timeout)
 * is only counted, and the device polls again. The run stops after --duration, when every device
 * runs --until-version or ended refused or rolled back, or after --idle-stop seconds without a
 * change. */
#include "update.h"

#include "abboot.h"
#include "hal_host.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS 200
#define ATTEST_RETRY_S 30 /* a device whose attestation failed tries again after (scaled) */
#define CRASH_REASON "crashed_on_trial"

static void power_request(struct simdev *sd);
static void power_on_timer(void *arg);

static struct upd_run *
run_of(const struct simdev *sd)
{
    return sd->sim->up;
}

static struct upd_dev *
ud_of(const struct simdev *sd)
{
    return &run_of(sd)->ud[sd->index - sd->sim->first];
}

static void
changed(struct simdev *sd)
{
    run_of(sd)->changed_ms = sim_now_ms();
}

/* ms of simulated seconds at the run's time scale. */
static uint64_t
scaled_ms(const struct sim *s, double seconds)
{
    double ms = seconds * 1000.0 / s->up->o.time_scale;
    return ms < 1 ? 1 : (uint64_t)ms;
}

/* Whether the device runs --until-version (or the committed slot does). */
static void
check_target(struct simdev *sd)
{
    struct upd_run *u = run_of(sd);
    struct upd_dev *ud = ud_of(sd);
    char version[PROTO_VERSION_MAX + 1], sha[65];
    uint32_t svn;
    if (u->o.until_component[0] == '\0')
        return;
    ud->at_target = adev_ab_installed(sd->slots, u->o.until_component, version, sizeof(version),
                                      &svn, sha) == 0 &&
                    strcmp(version, u->o.until_version) == 0;
}

/* Power off (only storage and slots survive), then the next power-on after delay_ms, or never
 * (delay_ms < 0). Gives the power to the next waiting device. */
static void
power_off(struct simdev *sd, const char *reset_cause, int64_t delay_ms)
{
    struct sim *s = sd->sim;
    struct upd_run *u = s->up;
    struct upd_dev *ud = ud_of(sd);

    fleet_dev_destroy(sd); /* device, queue, transport, slots, key store, storage, clock */
    sd->bd.reset_cause = reset_cause;
    ud->powered = 0;
    s->active--;
    if (delay_ms >= 0) {
        sd->bd.timer =
            adev_timer_start(adev_uvnet_timers(s->net), (uint64_t)delay_ms, power_on_timer, sd);
        if (sd->bd.timer == NULL)
            ud->broken = 1;
    }
    while (u->wait_n > 0 && s->active < (size_t)s->concurrency) {
        struct simdev *next = &s->devs[u->wait[u->wait_head]];
        u->wait_head = (u->wait_head + 1) % s->n;
        u->wait_n--;
        ud_of(next)->queued = 0;
        power_request(next);
    }
}

/* The next power-on after a poll period, spread by the agent's own jitter (what a real device
 * running the reference agent waits). */
/* Sleeps until the next poll: the device keeps running the same boot (its certificate, its
 * measurements) but the simulator drops its memory; only a reboot runs the bootloader. */
static void
poll_later(struct simdev *sd, double seconds)
{
    ud_of(sd)->wake = 1;
    power_off(sd, "user", (int64_t)adev_update_poll_ms(scaled_ms(sd->sim, seconds)));
}

static void
broken(struct simdev *sd, const char *what)
{
    fprintf(stderr, "aegis-sim: device %zu: %s\n", sd->index, what);
    sd->sim->setup_errors++;
    ud_of(sd)->broken = 1;
    changed(sd);
    power_off(sd, NULL, -1);
}

/* --- the trial boot -------------------------------------------------------------------------- */

/* The crash that ends this trial boot: 1 + the index of the first --crash whose component and
 * version run on trial and whose rate hits; CRASH_OWN for the crash-update fault; else 0. */
#define CRASH_OWN 255
static uint8_t
trial_crash(struct simdev *sd)
{
    struct sim *s = sd->sim;
    const struct adev_boot_log *log = adev_device_boot_log(sd->dev);
    if (ud_of(sd)->fd.fault == UF_CRASH_UPDATE)
        return CRASH_OWN;
    for (size_t k = 0; k < s->bt.n_crash && k < CRASH_SPECS_MAX; k++) {
        const struct crash_spec *c = &s->bt.crash[k];
        for (size_t i = 0; log != NULL && i < log->n; i++) {
            const struct proto_event *e = &log->events[i];
            int match = (c->component[0] == '\0' ? e->stage == PROTO_STAGE_APP
                                                 : strcmp(c->component, e->component) == 0) &&
                        (c->version[0] == '\0' || strcmp(c->version, e->version) == 0);
            if (match && boots_uniform(s) < c->rate)
                return (uint8_t)(k + 1);
        }
    }
    return 0;
}

/* --kill-at: the whole process dies here (a power loss of every device at once). */
static void
maybe_kill(struct sim *s, const char *point)
{
    struct upd_opts *o = &s->up->o;
    if (o->kill_point[0] == '\0' || strcmp(o->kill_point, point) != 0 || --o->kill_n > 0)
        return;
    fflush(NULL);
    kill(getpid(), SIGKILL);
}

/* The agent's fault points (device.h): only --kill-at uses them. */
static int
on_fault_point(adev_device *dev, const char *point, void *arg)
{
    struct simdev *sd = arg;
    (void)dev;
    maybe_kill(sd->sim, point);
    return 0;
}

static void
health_over(void *arg)
{
    struct simdev *sd = arg;
    sd->bd.timer = NULL;
    maybe_kill(sd->sim, "trial");
    if (adev_device_update_commit(sd->dev) != 0)
        broken(sd, "cannot end the trial boot");
}

static void
crash_now(void *arg)
{
    struct simdev *sd = arg;
    struct upd_dev *ud = ud_of(sd);
    struct adev_crash_image images[PROTO_TEL_IMAGES_MAX];
    char err[256];
    struct crash_spec own; /* crash-update: the app, at the version it runs */
    const struct crash_spec *spec = &own;

    memset(&own, 0, sizeof(own));
    own.rate = 1;
    if (ud->crash_k != CRASH_OWN)
        spec = &sd->sim->bt.crash[ud->crash_k - 1];
    sd->bd.timer = NULL;
    uint32_t uptime = 1 + (uint32_t)(boots_uniform(sd->sim) * (sd->sim->up->o.health_s));
    boots_crash(sd, spec, uptime, uptime, images, boots_images(sd, images));
    ud->crashes++;
    /* the crash handler leaves the reason for the bootloader; the next boot is the old slot */
    if (adev_ab_reject(sd->slots, CRASH_REASON, err, sizeof(err)) != 0)
        fprintf(stderr, "aegis-sim: device %zu: %s\n", sd->index, err);
    changed(sd);
    power_off(sd, NULL, 0); /* the crash recorded the reset reason */
}

/* After the boot's attestation (and upload): the health period of a trial, or an update check. */
static void
after_attest(struct simdev *sd)
{
    struct sim *s = sd->sim;
    struct upd_dev *ud = ud_of(sd);

    if (ud->on_trial) {
        ud->crash_k = sd->res->pass[S_ATTEST] ? trial_crash(sd) : 0;
        int c = ud->crash_k != 0;
        double health = s->up->o.health_s;
        uint64_t ms = scaled_ms(s, c ? health * boots_uniform(s) : health);
        sd->bd.timer =
            adev_timer_start(adev_uvnet_timers(s->net), ms, c ? crash_now : health_over, sd);
        if (sd->bd.timer == NULL)
            broken(sd, "cannot start the health period");
        return;
    }
    ud->cert_ok = sd->res->pass[S_ATTEST] != 0;
    if (!ud->cert_ok && !adev_device_has_recovery(sd->dev)) {
        poll_later(sd, ATTEST_RETRY_S);
        return;
    }
    /* a refusal of its platform with a recovery grant (docs/update.md 8): it heals itself through
     * the recovery routes, then attests again on the trial boot */
    ud->checks++;
    if (adev_device_update(sd->dev) != 0)
        broken(sd, "cannot start an update check");
}

static void
refused(struct simdev *sd, const struct adev_report *r)
{
    struct upd_dev *ud = ud_of(sd);
    struct upd_run *u = run_of(sd);
    ud->refusals++;
    boots_tally(u->refusals, r->reason, 1);
    if (ud->reason[0] == '\0') {
        snprintf(ud->reason, sizeof(ud->reason), "%s", r->reason);
        if (ud->outcome == UO_NONE)
            ud->outcome = UO_REFUSED;
        changed(sd);
    }
}

/* A check the device could not complete (the network, its storage, a timeout): not a verdict on
 * the release, so it neither refuses nor ends the device's run; the next poll tries again. */
static void
failed(struct simdev *sd, const struct adev_report *r)
{
    ud_of(sd)->errors++;
    boots_tally(run_of(sd)->errors, r->reason, 1);
}

static void
on_confirm(struct simdev *sd, const struct adev_report *r)
{
    struct upd_dev *ud = ud_of(sd);
    if (strcmp(r->reason, "committed") == 0) {
        ud->commits++;
        ud->outcome = UO_COMMITTED;
        ud->on_trial = 0;
        snprintf(ud->version, sizeof(ud->version), "%s", r->update_version);
        check_target(sd);
        changed(sd);
        ud->checks++;
        if (adev_device_update(sd->dev) != 0)
            broken(sd, "cannot start an update check");
        return;
    }
    /* rejected (e.g. its attestation failed): the next boot is the old slot */
    ud->rollbacks++;
    ud->outcome = UO_ROLLED_BACK;
    changed(sd);
    power_off(sd, "user", 0);
}

void
upd_on_report(struct simdev *sd, const struct adev_report *r)
{
    struct upd_dev *ud = ud_of(sd);
    switch (r->op) {
    case ADEV_OP_ATTEST:
        fleet_record(sd, S_ATTEST, r);
        boots_tally(sd->sim->attest_outcomes, r->reason, 1);
        if (r->next_op == ADEV_OP_UPLOAD)
            return;
        after_attest(sd);
        return;
    case ADEV_OP_UPLOAD:
        boots_tally(sd->sim->upload_outcomes, r->reason, 1);
        after_attest(sd);
        return;
    case ADEV_OP_CONFIRM:
        on_confirm(sd, r);
        return;
    case ADEV_OP_UPDATE:
        break;
    default:
        poll_later(sd, sd->sim->up->o.poll_s);
        return;
    }
    ud->flushed = r->status_queued == 0;
    if (r->reboot) {
        ud->installs++;
        changed(sd);
        power_off(sd, "user", 0);
        return;
    }
    /* ADEV_PASS: up_to_date, backoff (a refused target not yet due again), attempt_limit */
    if (r->outcome == ADEV_REJECTED)
        refused(sd, r);
    else if (r->outcome == ADEV_FAILED)
        failed(sd, r);
    poll_later(sd, sd->sim->up->o.poll_s);
}

/* --- power ----------------------------------------------------------------------------------- */

/* The device's HAL and a device over it (the crash queue opened, no boot of it). 0 or -1. */
static int
open_device(struct sim *s, struct simdev *sd, int reboot)
{
    struct upd_run *u = s->up;
    struct upd_dev *ud = ud_of(sd);
    struct adev_device_config cfg;
    struct adev_hal hal;
    char dir[SIM_PATH_MAX];
    int flags = s->no_fsync ? ADEV_HOST_STORAGE_NOSYNC : 0;

    if (sim_device_dir(s->fleet, sd->index, dir) != 0 ||
        (sd->ks = adev_host_keystore_open(dir)) == NULL ||
        (sd->st = adev_host_storage_open_flags(dir, flags)) == NULL ||
        (sd->clk = adev_host_clock_new(0)) == NULL ||
        (sd->slots = adev_host_slots_open(dir, flags)) == NULL)
        return -1;
    if (reboot) {
        struct adev_ab_boot ab;
        char err[256];
        if (adev_ab_boot(sd->slots, &ab, err, sizeof(err)) != 0) {
            fprintf(stderr, "aegis-sim: device %zu: bootloader: %s\n", sd->index, err);
            return -1;
        }
        maybe_kill(s, "boot");
        ud->boots++;
        ud->on_trial = (uint8_t)ab.trial;
        ud->flushed = 0; /* until an update check of this boot sent its reports */
        ud->cert_ok = 0;
        if (ab.rolled_back[0] != '\0') {
            ud->rollbacks++;
            ud->outcome = UO_ROLLED_BACK;
            changed(sd);
        }
        check_target(sd);
        if (boots_open_queue(s, sd) != 0) /* a new boot: its reboot report */
            return -1;
    } else {
        struct adev_crash_opts qo = {s->bt.queue, sd->clk};
        if ((sd->bd.q = adev_crash_open(sd->st, &qo)) == NULL)
            return -1;
    }
    sd->tr = faultnet_new(adev_uvnet_transport_new(s->net), adev_uvnet_timers(s->net), &ud->fd,
                          &u->keys, sd->slots);
    if (sd->tr == NULL)
        return -1;
    boots_device_setup(s, sd, &cfg, &hal);
    cfg.hardware = u->o.hardware;
    cfg.product_id = u->o.product_id;
    cfg.image_root_json = u->o.image_root;
    cfg.director_root_json = u->o.director_root;
    cfg.update_backoff_base_ms = (uint64_t)(300000.0 / u->o.time_scale) + 1;
    cfg.update_backoff_max_ms = (uint64_t)(86400000.0 / u->o.time_scale) + 1;
    if (u->o.kill_point[0] != '\0')
        cfg.fault_point = on_fault_point;
    hal.slots = sd->slots;
    sd->dev = adev_device_new(&hal, &cfg, fleet_on_report, sd);
    return sd->dev != NULL && strcmp(adev_device_id_hex(sd->dev), s->ids[sd->index]) == 0 ? 0 : -1;
}

/* Power on: a reboot (the bootloader, the boot's attestation), or a wake from sleep to poll (an
 * update check with the certificate of this boot, or the attestation again if it had failed).
 * 0 or -1. */
static int
boot(struct sim *s, struct simdev *sd)
{
    struct upd_dev *ud = ud_of(sd);
    int reboot = !ud->wake;
    ud->wake = 0;
    if (open_device(s, sd, reboot) != 0)
        return -1;
    if (!reboot && ud->cert_ok) {
        ud->checks++;
        return adev_device_update(sd->dev);
    }
    sd->step = S_ATTEST;
    return adev_device_attest(sd->dev);
}

/* Powers the device on now, or queues it until a powered one goes off. */
static void
power_request(struct simdev *sd)
{
    struct sim *s = sd->sim;
    struct upd_run *u = s->up;
    struct upd_dev *ud = ud_of(sd);

    if (s->active >= (size_t)s->concurrency) {
        if (!ud->queued) {
            u->wait[(u->wait_head + u->wait_n) % s->n] = sd->index - s->first;
            u->wait_n++;
            ud->queued = 1;
        }
        return;
    }
    s->active++;
    ud->powered = 1;
    if (boot(s, sd) != 0)
        broken(sd, "a boot failed to start");
}

static void
power_on_timer(void *arg)
{
    struct simdev *sd = arg;
    sd->bd.timer = NULL;
    power_request(sd);
}

/* --- the run --------------------------------------------------------------------------------- */

/* 1 while a device is between an install and its end (on trial, or armed and not yet rebooted):
 * quiet, but not idle; --idle-stop waits for it (--duration still bounds the run). */
static int
mid_update(const struct sim *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct upd_dev *ud = &s->up->ud[i];
        if (!ud->broken && (ud->on_trial || ud->installs > ud->commits + ud->rollbacks))
            return 1;
    }
    return 0;
}

/* 1 when the run is over (--duration, --until-version, --idle-stop). */
static int
over(struct sim *s)
{
    struct upd_run *u = s->up;
    double now = sim_now_ms();
    if (now - u->t0_ms >= u->o.duration_s * 1000.0)
        return 1;
    if (u->o.idle_stop_s > 0 && now - u->changed_ms >= u->o.idle_stop_s * 1000.0 && !mid_update(s))
        return 1;
    if (u->o.until_component[0] == '\0')
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct upd_dev *ud = &u->ud[i];
        /* at its target (committed) or refused or rolled back, with its reports sent */
        int ended =
            ud->broken ||
            ((ud->at_target || ud->outcome == UO_REFUSED || ud->outcome == UO_ROLLED_BACK) &&
             ud->flushed && !ud->on_trial);
        if (!ended)
            return 0;
    }
    return 1;
}

static void
tick(void *arg)
{
    struct sim *s = arg;
    s->up->tick = NULL;
    if (over(s)) {
        uv_stop(&s->loop);
        return;
    }
    s->up->tick = adev_timer_start(adev_uvnet_timers(s->net), TICK_MS, tick, s);
    if (s->up->tick == NULL)
        uv_stop(&s->loop);
}

/* Every device's first power-on, spread over the first poll period (a fleet does not boot at one
 * instant); then the loop until the run is over. */
static int
run_fleet(struct sim *s)
{
    struct upd_run *u = s->up;
    adev_timers *timers = adev_uvnet_timers(s->net);

    u->t0_ms = u->changed_ms = sim_now_ms();
    for (size_t i = 0; i < s->n; i++) {
        struct simdev *sd = &s->devs[i];
        uint64_t ms = (uint64_t)(boots_uniform(s) * (double)s->n * 2); /* ~500 boots/s */
        sd->bd.timer = adev_timer_start(timers, ms, power_on_timer, sd);
        if (sd->bd.timer == NULL)
            return -1;
    }
    u->tick = adev_timer_start(timers, TICK_MS, tick, s);
    if (u->tick == NULL)
        return -1;
    s->running = 1;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    s->running = 0;
    u->elapsed_s = (sim_now_ms() - u->t0_ms) / 1000.0;
    adev_timer_cancel(timers, u->tick);
    u->tick = NULL;
    return 0;
}

/* The update state of the selected devices, their faults, and the server's keys. 0 or -1. */
static int
upd_setup(struct sim *s, struct upd_run *u)
{
    char err[256];
    int need_keys = 0;
    u->ud = calloc(s->n, sizeof(*u->ud));
    u->wait = calloc(s->n, sizeof(*u->wait));
    u->refusals = json_object();
    u->errors = json_object();
    if (u->ud == NULL || u->wait == NULL || u->refusals == NULL || u->errors == NULL)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        u->ud[i].fd.fault = (uint8_t)s->faults[i];
        need_keys |= faultnet_needs_keys((enum upd_fault)s->faults[i]);
        s->devs[i].fault = F_NONE; /* the attestation faults of `run` do not apply */
    }
    if (u->o.server_keys != NULL &&
        faultnet_keys_load(u->o.server_keys, &u->keys, err, sizeof(err)) != 0) {
        fprintf(stderr, "aegis-sim: --server-keys: %s\n", err);
        return -1;
    }
    if (need_keys && !u->keys.loaded) {
        fprintf(stderr, "aegis-sim: these faults forge metadata: give --server-keys DIR\n");
        return -1;
    }
    s->up = u;
    return 0;
}

static void
upd_free(struct upd_run *u)
{
    faultnet_keys_wipe(&u->keys);
    free(u->ud);
    free(u->wait);
    json_decref(u->refusals);
    json_decref(u->errors);
    upd_opts_free(&u->o);
}

int
sim_update(int argc, char **argv)
{
    int rc = SIM_EXIT_ERROR, loop_ok = 0;
    struct sim s;
    struct fleet_args a;
    struct upd_run u;
    long total = 0;

    memset(&s, 0, sizeof(s));
    memset(&u, 0, sizeof(u));
    s.update = 1;
    if (upd_parse_args(argc, argv, &s, &a, &u, &rc) != 0)
        goto out;
    rc = fleet_select_devices(&s, &a, &total);
    if (rc != SIM_EXIT_OK)
        goto out;
    boots_defaults(&s.bt);
    rc = SIM_EXIT_ERROR;
    if (fleet_loop_setup(&s, &loop_ok) != 0 || upd_setup(&s, &u) != 0 || run_fleet(&s) != 0 ||
        upd_print_summary(&s, &u) != 0)
        goto out;
    rc = s.setup_errors == 0 ? SIM_EXIT_OK : SIM_EXIT_ERROR;
out:
    s.up = NULL; /* no device callback runs during the cleanup */
    fleet_cleanup(&s, &a, NULL, total, loop_ok);
    upd_free(&u);
    return rc;
}
