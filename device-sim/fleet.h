/* fleet: the state of "run" and "whoami" (fleet.c), shared with the boot cycle of `run --boots`
 * (boots.c). Private to device-sim. */
#ifndef AEGIS_SIM_FLEET_H
#define AEGIS_SIM_FLEET_H

#include "sim.h"

#include "crash.h"
#include "device.h"
#include "transport_uv.h"

#include <jansson.h>
#include <stdio.h>
#include <uv.h>

#define CODE_MAX 64
#define CRASH_SPECS_MAX 16
#define FAULT_SPECS_MAX 32

enum fault {
    F_NONE = 0,
    F_TAMPERED_OS,
    F_OLD_OS,
    F_REPLAY,
    F_BLOCKED,
    F_CLOCK_SKEW,
    F_EXPIRED_CERT,
    F_COUNT
};

/* What the summary counts: one step of a device's flow. */
enum step { S_ATTEST, S_WHOAMI, S_RENEW, S_RENEW_WHOAMI, S_COUNT };

/* The names of the faults (NULL for F_NONE) and of the steps, as options and summaries spell
 * them. */
extern const char *const fleet_fault_names[F_COUNT];
extern const char *const fleet_step_names[S_COUNT];

/* --fault NAME[=COUNT|@I,J,..] */
struct fault_spec {
    int f;       /* an enum fault, or of `update` an enum upd_fault */
    long count;  /* devices to take from the lowest free indexes, or 0 */
    size_t *idx; /* explicit indexes (absolute, malloc'd), or NULL */
    size_t n_idx;
};

/* The options of a run that do not live in struct sim (fleet_opts.c). */
struct fleet_args {
    const char *cacert, *token_file;
    int64_t n_opt, from; /* --devices (-1: all), --from */
    struct fault_spec specs[FAULT_SPECS_MAX];
    size_t n_specs;
    int boot_opts; /* a failure-reporting option was given (implies --boots 1) */
};

struct result {
    char code[S_COUNT][CODE_MAX]; /* "" = step not reached */
    int pass[S_COUNT];
    double ms[S_COUNT];
    unsigned attempts;
    int issued; /* obtained a certificate in this run */
    int64_t not_before, not_after, renew_at;
    char detail[256]; /* of the first failure */
};

/* --crash RATE[@COMPONENT[:VERSION]] */
struct crash_spec {
    double rate;
    char component[PROTO_COMPONENT_MAX + 1]; /* "" = the device's app */
    char version[PROTO_VERSION_MAX + 1];     /* "" = the version it runs */
};

/* Options of the boot cycle (boots.c); boots == 0: not used. */
struct boots_opts {
    long boots; /* simulated boots per device */
    struct crash_spec crash[CRASH_SPECS_MAX];
    size_t n_crash;
    double power_loss; /* per upload request: power lost before its answer is applied */
    double offline;    /* per boot: the network goes away for a while at the first upload */
    int drain;         /* after the boots, boot again until the queue is empty */
    uint32_t uptime_s; /* simulated uptime of a boot (the heartbeat period) */
    unsigned queue;    /* queue capacity; 0: the device default */
    uint32_t backoff_base_ms, backoff_max_ms;
    unsigned upload_attempts;
    uint32_t offline_min_ms, offline_max_ms;
    uint64_t seed;
};

/* One device's counts over the run (boots.c). */
struct boots_dev {
    adev_crashq *q;
    adev_timer *timer; /* the next power-on */
    long boot, drain_boots;
    int draining, crashed, offline_armed, drain_tries;
    double offline_until_ms;
    const char *reset_cause; /* seen by the next boot */
    char attest_code[CODE_MAX];
    uint64_t crashes_made, crash_reports, crash_repeats, crash_dropped;
    uint64_t early_crashes;   /* before the boot's heartbeat */
    uint64_t device_seconds;  /* running time in reports queued (heartbeats, crashes, repeats) */
    uint64_t reports_made[3]; /* crash, heartbeat, reboot: new report IDs */
    uint64_t dropped;         /* reports lost to a full queue (any type) */
    uint64_t stored, duplicates, rejected, crashes_acked, crashes_rejected, batches;
    uint64_t power_losses, offline_boots, uploads, upload_ok, upload_requests;
    size_t queued_start, queued_crashes_start, queued_end, queued_crashes_end;
    uint64_t dropped_pending_end;
};

struct sim;
struct upd_run;

struct simdev {
    struct sim *sim;
    size_t index; /* absolute */
    enum fault fault;
    enum step step;
    adev_keystore *ks;
    adev_storage *st;
    adev_clock *clk;
    adev_transport *tr;
    adev_device *dev;
    adev_slots *slots; /* update: the device's A/B slots while powered */
    struct result *res;
    struct boots_dev bd;
};

struct sim {
    uv_loop_t loop;
    adev_uvnet *net;
    const char *fleet, *server;
    char *ca_pem;
    char **ids;
    size_t first, n; /* selected devices: [first, first + n) */
    size_t next, active, finished;
    long concurrency;
    int whoami_only, renew, fresh, json;
    int no_whoami; /* attest only (benchmarks) */
    int no_fsync;  /* device storage without fsync (faster, not power-loss safe) */
    int64_t skew;
    uint32_t timeout_ms;
    unsigned attempts;
    int *faults; /* per selected device: enum fault, or enum upd_fault with update */
    int update;  /* the `update` command (update.c) */
    struct upd_run *up;
    struct result *results;
    struct simdev *devs;
    int setup_errors;
    int running; /* inside uv_run: uv_stop when the last device is done */
    struct boots_opts bt;
    uint64_t rng; /* the run's pseudo-random state (--seed) */
    json_t *upload_outcomes, *attest_outcomes, *crash_sites; /* boot-cycle tallies */
};

/* --- fleet_opts.c --- */

/* Parses the command line into s (whoami_only set by the caller) and a (free with
 * fleet_args_free, also after a failure). 0 to run; -1 to stop with *exit_code (after --help, or
 * the usage on stderr). */
int fleet_parse_args(int argc, char **argv, struct sim *s, struct fleet_args *a, int *exit_code);
void fleet_args_free(struct fleet_args *a);
/* The defaults of s and a before parsing (also resets getopt). */
void fleet_opts_defaults(struct sim *s, struct fleet_args *a);
/* One option of the device flow (getopt letters of fleet_opts.c: d s c n f k W r F x w t a j N
 * T) into s or a: 1 when malformed, else 0. */
int fleet_parse_run_opt(int c, struct sim *s, struct fleet_args *a);
/* One option of the boot cycle (B C P O D U Q b A S) into s->bt: -1 when c is none of them, 1
 * when malformed, else 0. */
int fleet_parse_boot_opt(int c, struct sim *s, struct fleet_args *a);
void fleet_usage(FILE *f, int whoami);
/* Parses NAME, NAME=COUNT or NAME@I[,J...] with names[1..count) (names[0]: none). 0 or -1
 * (spec->idx malloc'd: fleet_args_free). */
int fleet_parse_fault(const char *arg, const char *const *names, int count,
                      struct fault_spec *spec);
/* Assigns the specs' faults to the selected devices (s->faults). 0, or -1 (message printed). */
int fleet_assign_faults(struct sim *s, const struct fault_spec *specs, size_t n_specs);

/* --- fleet_summary.c --- */

/* The summary up to its "faults" (caller frees), or NULL. */
json_t *fleet_summary(struct sim *s, double elapsed_s);
/* Prints the summary: JSON with the per-device results (--json), else text. 0 or -1. */
int fleet_print(struct sim *s, json_t *sum);

/* --- fleet.c --- */

/* The report callback of every device. */
void fleet_on_report(adev_device *dev, const struct adev_report *r, void *arg);
/* Records a report of step st in the device's result. */
void fleet_record(struct simdev *sd, enum step st, const struct adev_report *r);
/* Frees what the device holds (accepts a partly started device). */
void fleet_dev_destroy(struct simdev *sd);
/* The device is finished: frees it and starts the next one. */
void fleet_dev_done(struct simdev *sd);
/* Reads the fleet's device list and selects the run's devices (ids, CA, per-device tables, the
 * faults of a->specs). SIM_EXIT_OK, or the exit code (message printed); *total: the fleet size. */
int fleet_select_devices(struct sim *s, const struct fleet_args *a, long *total);
/* The run's tallies, the devices' slots, the loop and the network; *loop_ok when the loop must
 * be closed. 0 or -1. */
int fleet_loop_setup(struct sim *s, int *loop_ok);
/* Frees everything of the run (accepts a run stopped at any step). */
void fleet_cleanup(struct sim *s, struct fleet_args *a, char *token, long total, int loop_ok);

/* --- boots.c --- */

/* Parses RATE[@COMPONENT[:VERSION]]. 0 or -1. */
int boots_parse_crash(const char *arg, struct crash_spec *out);
/* Sets defaults for the options left 0. */
void boots_defaults(struct boots_opts *o);
/* Starts the device's first boot (its ks, st and clk are open). 0 or -1. */
int boots_start(struct sim *s, struct simdev *sd);
/* A report of the device's firmware during the boot cycle. */
void boots_on_report(struct simdev *sd, const struct adev_report *r);
/* Frees the boot-cycle state of a device. */
void boots_dev_destroy(struct simdev *sd);
/* The "telemetry" object of the summary, and the per-device one. */
json_t *boots_summary(struct sim *s);
json_t *boots_device_json(const struct simdev *sd);
/* Prints the "telemetry" object as text. */
void boots_print(json_t *telemetry);
/* Adds by to obj's integer key. */
void boots_tally(json_t *obj, const char *key, json_int_t by);
/* A uniform double in [0, 1) from the run's generator. */
double boots_uniform(struct sim *s);
/* What runs, from the device's boot log, into images[PROTO_TEL_IMAGES_MAX]; the count. */
size_t boots_images(const struct simdev *sd, struct adev_crash_image *images);
/* Records a crash of spec in the device's queue (its crash site, counts): at uptime seconds since
 * boot, period seconds after the last heartbeat, with what runs. */
void boots_crash(struct simdev *sd, const struct crash_spec *spec, uint32_t uptime, uint32_t period,
                 const struct adev_crash_image *images, size_t n_images);
/* The device configuration and HAL of a boot (its ks, st, clk, tr and queue are open). */
void boots_device_setup(struct sim *s, struct simdev *sd, struct adev_device_config *cfg,
                        struct adev_hal *hal);
/* The boot's failure-report queue from storage and its reboot report (bd->reset_cause). 0 or -1. */
int boots_open_queue(struct sim *s, struct simdev *sd);

/* --- update.c --- */

/* A report of the device's firmware during the update cycle. */
void upd_on_report(struct simdev *sd, const struct adev_report *r);

#endif
