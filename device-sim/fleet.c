/* fleet: "run" and "whoami": many devices on one libuv loop, each a firmware-ref device with its
 * own directory, host HAL and transport (its own connections), all served by one adev_uvnet. With
 * --boots, each device goes through a cycle of boots instead (boots.c). */
#include "fleet.h"
#include "service.h"

#include "evidence.h"
#include "hal_host.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BACKOFF_BASE_MS 200
#define CA_MAX (1u << 20)

const char *const fleet_fault_names[F_COUNT] = {
    NULL, "tampered-os", "old-os", "replay-nonce", "blocked", "clock-skew", "expired-cert",
};

const char *const fleet_step_names[S_COUNT] = {"attest", "whoami", "renew", "renew_whoami"};

static void fill(struct sim *s);

/* --- one device ------------------------------------------------------------------------------ */

void
fleet_dev_destroy(struct simdev *sd)
{
    adev_device_free(sd->dev); /* before the queue and slots it borrows */
    boots_dev_destroy(sd);
    adev_slots_free(sd->slots);
    sd->slots = NULL;
    adev_transport_free(sd->tr);
    adev_clock_free(sd->clk);
    adev_storage_free(sd->st);
    adev_keystore_free(sd->ks);
    sd->dev = NULL;
    sd->tr = NULL;
    sd->clk = NULL;
    sd->st = NULL;
    sd->ks = NULL;
}

void
fleet_dev_done(struct simdev *sd)
{
    struct sim *s = sd->sim;
    fleet_dev_destroy(sd);
    s->active--;
    s->finished++;
    if (s->finished == s->n && s->running)
        uv_stop(&s->loop);
    else
        fill(s);
}

void
fleet_record(struct simdev *sd, enum step st, const struct adev_report *r)
{
    struct result *res = sd->res;
    snprintf(res->code[st], sizeof(res->code[st]), "%s", r->reason);
    res->pass[st] = r->outcome == ADEV_PASS;
    res->ms[st] = r->latency_ms;
    res->attempts += r->attempts;
    if (r->outcome != ADEV_PASS && res->detail[0] == '\0')
        snprintf(res->detail, sizeof(res->detail), "%s: %s (HTTP %ld)", fleet_step_names[st],
                 r->detail[0] ? r->detail : r->reason, r->http_status);
    if (r->op == ADEV_OP_ATTEST && r->outcome == ADEV_PASS) {
        res->issued = 1;
        res->not_before = r->not_before;
        res->not_after = r->not_after;
        res->renew_at = r->renew_at;
    }
}

void
fleet_on_report(adev_device *dev, const struct adev_report *r, void *arg)
{
    struct simdev *sd = arg;
    (void)dev;
    if (sd->sim->up != NULL) {
        upd_on_report(sd, r);
        return;
    }
    if (sd->sim->bt.boots > 0) {
        boots_on_report(sd, r);
        return;
    }
    fleet_record(sd, sd->step, r);
    switch (sd->step) {
    case S_ATTEST:
    case S_RENEW:
        if (r->outcome == ADEV_PASS && !sd->sim->no_whoami) {
            sd->step = sd->step == S_ATTEST ? S_WHOAMI : S_RENEW_WHOAMI; /* chained by device */
            return;
        }
        break;
    case S_WHOAMI:
        if (sd->sim->renew && !sd->sim->whoami_only) {
            sd->step = S_RENEW;
            if (adev_device_attest(sd->dev) == 0)
                return;
            snprintf(sd->res->code[S_RENEW], CODE_MAX, "internal_error");
        }
        break;
    default:
        break;
    }
    fleet_dev_done(sd);
}

static int
dev_start(struct sim *s, struct simdev *sd)
{
    int rc = -1;
    char dir[SIM_PATH_MAX];
    struct adev_device_config cfg;
    struct adev_hal hal;

    memset(&cfg, 0, sizeof(cfg));
    cfg.server_url = s->server;
    cfg.server_ca_pem = s->ca_pem;
    cfg.timeout_ms = s->timeout_ms;
    cfg.max_attempts = s->attempts;
    cfg.backoff_base_ms = BACKOFF_BASE_MS;
    cfg.whoami_after_attest = !s->no_whoami;
    cfg.boot.tamper_os = sd->fault == F_TAMPERED_OS;
    cfg.boot.boot_previous_os = sd->fault == F_OLD_OS;
    cfg.fault_replay = sd->fault == F_REPLAY;
    if (sim_device_dir(s->fleet, sd->index, dir) != 0 ||
        (sd->ks = adev_host_keystore_open(dir)) == NULL ||
        (sd->st = adev_host_storage_open_flags(dir, s->no_fsync ? ADEV_HOST_STORAGE_NOSYNC : 0)) ==
            NULL ||
        (sd->clk = adev_host_clock_new(sd->fault == F_CLOCK_SKEW ? s->skew : 0)) == NULL)
        goto out;
    if (s->fresh && adev_storage_remove(sd->st, ADEV_BLOB_CREDENTIAL) != 0)
        goto out;
    if (s->bt.boots > 0) {
        rc = boots_start(s, sd);
        goto out;
    }
    if ((sd->tr = adev_uvnet_transport_new(s->net)) == NULL)
        goto out;
    hal.keys = sd->ks;
    hal.storage = sd->st;
    hal.clock = sd->clk;
    hal.transport = sd->tr;
    hal.timers = adev_uvnet_timers(s->net);
    hal.slots = NULL; /* `run` boots from storage */
    sd->dev = adev_device_new(&hal, &cfg, fleet_on_report, sd);
    if (sd->dev == NULL)
        goto out;
    if (strcmp(adev_device_id_hex(sd->dev), s->ids[sd->index]) != 0) {
        fprintf(stderr, "aegis-sim: %s: key store does not match devices.json\n", dir);
        goto out;
    }
    sd->step = s->whoami_only ? S_WHOAMI : S_ATTEST;
    if ((s->whoami_only ? adev_device_whoami(sd->dev) : adev_device_attest(sd->dev)) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        fprintf(stderr, "aegis-sim: device %zu could not start\n", sd->index);
        fleet_dev_destroy(sd);
    }
    return rc;
}

/* Starts devices until the concurrency limit. A device that cannot start is a setup error
 * (counted, reported as "setup_error"). */
static void
fill(struct sim *s)
{
    while (s->active < (size_t)s->concurrency && s->next < s->n) {
        struct simdev *sd = &s->devs[s->next++];
        s->active++;
        if (dev_start(s, sd) != 0) {
            s->setup_errors++;
            snprintf(sd->res->code[sd->step], CODE_MAX, "setup_error");
            s->active--;
            s->finished++;
            if (s->finished == s->n && s->running)
                uv_stop(&s->loop);
        }
    }
}

/* --- command --------------------------------------------------------------------------------- */

/* What the service holds for the run's devices (service.h). 0 or -1 (reported). */
static int
count_held(const struct sim *s, const char *cacert, const char *token, struct service_count *out)
{
    char err[512];
    if (service_count(s->server, cacert, token, s->ids + s->first, s->n, out, err, sizeof(err)) ==
        0)
        return 0;
    fprintf(stderr, "aegis-sim: cannot read what the service holds: %s\n", err);
    return -1;
}

/* Adds to the telemetry summary t what the service took in during the run (after - before) and
 * whether it equals what the devices had acknowledged. */
static int
add_service(json_t *t, const struct service_count *before, const struct service_count *after)
{
    json_int_t reports = (json_int_t)(after->reports - before->reports);
    json_int_t crashes = (json_int_t)(after->crash_reports - before->crash_reports);
    int equal = reports == json_integer_value(json_object_get(t, "reports_acked")) &&
                crashes == json_integer_value(json_object_get(t, "crash_reports_acked"));
    return json_object_set_new(
        t, "service",
        json_pack("{s:I, s:I, s:b}", "reports", reports, "crash_reports", crashes, "equal", equal));
}

int
fleet_select_devices(struct sim *s, const struct fleet_args *a, long *total)
{
    *total = sim_fleet_size(s->fleet, &s->ids);
    if (*total <= 0) {
        fprintf(stderr, "aegis-sim: %s has no devices.json (run aegis-sim provision)\n", s->fleet);
        return SIM_EXIT_ERROR;
    }
    if (a->from >= *total || (a->n_opt > 0 && a->from + a->n_opt > *total)) {
        fprintf(stderr, "aegis-sim: devices [%lld, %lld) are not all in %s (%ld devices)\n",
                (long long)a->from, (long long)(a->from + (a->n_opt > 0 ? a->n_opt : 0)), s->fleet,
                *total);
        return SIM_EXIT_USAGE;
    }
    s->first = (size_t)a->from;
    s->n = a->n_opt > 0 ? (size_t)a->n_opt : (size_t)(*total - a->from);
    s->ca_pem = sim_read_text(a->cacert, CA_MAX);
    if (s->ca_pem == NULL) {
        fprintf(stderr, "aegis-sim: cannot read %s\n", a->cacert);
        return SIM_EXIT_ERROR;
    }
    s->faults = calloc(s->n, sizeof(*s->faults));
    s->results = calloc(s->n, sizeof(*s->results));
    s->devs = calloc(s->n, sizeof(*s->devs));
    if (s->faults == NULL || s->results == NULL || s->devs == NULL)
        return SIM_EXIT_ERROR;
    if (fleet_assign_faults(s, a->specs, a->n_specs) != 0)
        return SIM_EXIT_USAGE;
    return SIM_EXIT_OK;
}

/* With --boots and a token: what the service holds before the run (*token: malloc'd, or NULL
 * without a token). SIM_EXIT_OK or SIM_EXIT_ERROR (reported). */
static int
service_before(struct sim *s, const struct fleet_args *a, char **token,
               struct service_count *before)
{
    const char *token_bad = NULL;
    if (s->bt.boots == 0)
        return SIM_EXIT_OK;
    *token = service_token(a->token_file, &token_bad);
    if (token_bad != NULL) {
        fprintf(stderr, "aegis-sim: cannot read the token file %s\n", token_bad);
        return SIM_EXIT_ERROR;
    }
    if (*token != NULL && count_held(s, a->cacert, *token, before) != 0)
        return SIM_EXIT_ERROR;
    return SIM_EXIT_OK;
}

int
fleet_loop_setup(struct sim *s, int *loop_ok)
{
    s->rng = s->bt.seed;
    s->upload_outcomes = json_object();
    s->attest_outcomes = json_object();
    s->crash_sites = json_object();
    if (s->upload_outcomes == NULL || s->attest_outcomes == NULL || s->crash_sites == NULL)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        s->devs[i].sim = s;
        s->devs[i].index = s->first + i;
        s->devs[i].fault = s->faults[i];
        s->devs[i].res = &s->results[i];
    }
    if (uv_loop_init(&s->loop) != 0)
        return -1;
    *loop_ok = 1;
    struct adev_uvnet_opts nopts = {s->timeout_ms, 0, 0, 0};
    s->net = adev_uvnet_new(&s->loop, &nopts);
    return s->net != NULL ? 0 : -1;
}

/* Runs every selected device to its end; *elapsed_s gets the time it took. 0 or -1. */
static int
run_devices(struct sim *s, double *elapsed_s)
{
    double t0 = sim_now_ms();
    fill(s);
    if (s->finished < s->n) {
        s->running = 1; /* read by the device callbacks that uv_run calls */
        uv_run(&s->loop, UV_RUN_DEFAULT);
        // cppcheck-suppress redundantAssignment
        s->running = 0;
    }
    *elapsed_s = (sim_now_ms() - t0) / 1000.0;
    if (s->finished < s->n) {
        fprintf(stderr, "aegis-sim: the loop stopped with %zu devices unfinished\n",
                s->n - s->finished);
        return -1;
    }
    return 0;
}

/* The summary, with the boot cycle's telemetry (and what the service took in, with a token), and
 * its output. 0 or -1. */
static int
report(struct sim *s, const struct fleet_args *a, const char *token,
       const struct service_count *before, double elapsed_s)
{
    int rc = -1;
    struct service_count after = {0, 0};
    json_t *sum = fleet_summary(s, elapsed_s);

    if (sum == NULL)
        goto out;
    if (s->bt.boots > 0) {
        json_t *t = boots_summary(s);
        if (t == NULL || json_object_set_new(sum, "telemetry", t) != 0)
            goto out;
        if (token != NULL &&
            (count_held(s, a->cacert, token, &after) != 0 || add_service(t, before, &after) != 0))
            goto out;
    }
    json_object_set_new(sum, "setup_errors", json_integer(s->setup_errors));
    rc = fleet_print(s, sum);
out:
    json_decref(sum);
    return rc;
}

void
fleet_cleanup(struct sim *s, struct fleet_args *a, char *token, long total, int loop_ok)
{
    for (size_t i = 0; s->devs != NULL && i < s->n; i++)
        fleet_dev_destroy(&s->devs[i]);
    adev_uvnet_free(s->net);
    if (loop_ok) {
        uv_run(&s->loop, UV_RUN_DEFAULT); /* close callbacks free the handles */
        if (uv_loop_close(&s->loop) != 0)
            fprintf(stderr, "aegis-sim: libuv handles left open\n");
    }
    json_decref(s->upload_outcomes);
    json_decref(s->attest_outcomes);
    json_decref(s->crash_sites);
    fleet_args_free(a);
    free(s->faults);
    free(s->results);
    free(s->devs);
    free(s->ca_pem);
    service_token_free(token);
    sim_free_ids(s->ids, total > 0 ? (size_t)total : 0);
}

static int
fleet_main(int argc, char **argv, int whoami_only)
{
    int rc = SIM_EXIT_ERROR, loop_ok = 0;
    struct sim s;
    struct fleet_args a;
    char *token = NULL;
    struct service_count held_before = {0, 0};
    long total = 0;
    double elapsed_s = 0;

    memset(&s, 0, sizeof(s));
    s.whoami_only = whoami_only;
    if (fleet_parse_args(argc, argv, &s, &a, &rc) != 0)
        goto out;
    rc = fleet_select_devices(&s, &a, &total);
    if (rc != SIM_EXIT_OK)
        goto out;
    boots_defaults(&s.bt);
    rc = SIM_EXIT_ERROR;
    if (service_before(&s, &a, &token, &held_before) != SIM_EXIT_OK ||
        fleet_loop_setup(&s, &loop_ok) != 0 || run_devices(&s, &elapsed_s) != 0 ||
        report(&s, &a, token, &held_before, elapsed_s) != 0)
        goto out;
    /* outcomes are data; a device that could not even start (its directory is broken) is not */
    rc = s.setup_errors == 0 ? SIM_EXIT_OK : SIM_EXIT_ERROR;
out:
    fleet_cleanup(&s, &a, token, total, loop_ok);
    return rc;
}

int
sim_run(int argc, char **argv)
{
    return fleet_main(argc, argv, 0);
}

int
sim_whoami(int argc, char **argv)
{
    return fleet_main(argc, argv, 1);
}
