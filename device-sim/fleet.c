/* fleet: "run" and "whoami": many devices on one libuv loop, each a firmware-ref device with its
 * own directory, host HAL and transport (its own connections), all served by one adev_uvnet. With
 * --boots, each device goes through a cycle of boots instead (boots.c). */
#include "fleet.h"
#include "service.h"

#include "evidence.h"
#include "hal_host.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define CONCURRENCY_DEFAULT 32
#define SKEW_DEFAULT (-86400) /* the clock-skew fault: one day behind */
#define ATTEMPTS_DEFAULT 8
#define BACKOFF_BASE_MS 200
#define CA_MAX (1u << 20)
#define FAULT_SPECS_MAX 32

static const char *const fault_names[F_COUNT] = {
    NULL, "tampered-os", "old-os", "replay-nonce", "blocked", "clock-skew", "expired-cert",
};

static const char *const step_names[S_COUNT] = {"attest", "whoami", "renew", "renew_whoami"};

struct fault_spec {
    enum fault f;
    long count;  /* devices to take from the lowest free indexes, or 0 */
    size_t *idx; /* explicit indexes (absolute), or NULL */
    size_t n_idx;
};

static void fill(struct sim *s);

static enum fault
fault_parse(const char *name, size_t len)
{
    for (int i = 1; i < F_COUNT; i++) {
        if (strlen(fault_names[i]) == len && strncmp(fault_names[i], name, len) == 0)
            return (enum fault)i;
    }
    return F_NONE;
}

/* NAME, NAME=COUNT or NAME@I[,J...] */
static int
parse_fault(const char *arg, struct fault_spec *spec)
{
    const char *sep = strpbrk(arg, "=@");
    size_t len = sep ? (size_t)(sep - arg) : strlen(arg);
    memset(spec, 0, sizeof(*spec));
    spec->f = fault_parse(arg, len);
    if (spec->f == F_NONE)
        return -1;
    if (sep == NULL) {
        spec->count = 1;
        return 0;
    }
    if (*sep == '=') {
        int64_t v;
        if (sim_parse_i64(sep + 1, 1, SIM_DEVICES_MAX, &v) != 0)
            return -1;
        spec->count = (long)v;
        return 0;
    }
    char *copy = strdup(sep + 1), *save = NULL;
    size_t cap = strlen(sep + 1) / 2 + 1;
    spec->idx = calloc(cap, sizeof(*spec->idx));
    if (copy == NULL || spec->idx == NULL) {
        free(copy);
        return -1;
    }
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        int64_t v;
        if (spec->n_idx >= cap || sim_parse_i64(tok, 0, SIM_DEVICES_MAX - 1, &v) != 0) {
            free(copy);
            return -1;
        }
        spec->idx[spec->n_idx++] = (size_t)v;
    }
    free(copy);
    return spec->n_idx > 0 ? 0 : -1;
}

/* --- one device ------------------------------------------------------------------------------ */

void
fleet_dev_destroy(struct simdev *sd)
{
    adev_device_free(sd->dev); /* before the queue it borrows */
    boots_dev_destroy(sd);
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
        snprintf(res->detail, sizeof(res->detail), "%s: %s (HTTP %ld)", step_names[st],
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

/* --- summary --------------------------------------------------------------------------------- */

static json_t *
latency_json(struct sim *s, enum step st)
{
    double *v = calloc(s->n + 1, sizeof(*v));
    size_t k = 0;
    json_t *o;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (s->results[i].pass[st])
            v[k++] = s->results[i].ms[st];
    }
    double p50 = sim_percentile(v, k, 50), p99 = sim_percentile(v, k, 99); /* sorts v */
    double max = k ? v[k - 1] : 0.0;
    o = json_pack("{s:I, s:f, s:f, s:f}", "n", (json_int_t)k, "p50", p50, "p99", p99, "max", max);
    free(v);
    return o;
}

static json_t *
step_json(struct sim *s, enum step st)
{
    json_t *outcomes = json_object();
    size_t count = 0;
    if (outcomes == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        const char *code = s->results[i].code[st];
        if (code[0] == '\0')
            continue;
        count++;
        json_int_t prev = json_integer_value(json_object_get(outcomes, code));
        json_object_set_new(outcomes, code, json_integer(prev + 1));
    }
    return json_pack("{s:I, s:o, s:o}", "count", (json_int_t)count, "outcomes", outcomes,
                     "latency_ms", latency_json(s, st));
}

static json_t *
results_json(struct sim *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < s->n; i++) {
        struct result *r = &s->results[i];
        json_t *o = json_pack("{s:I, s:s, s:s?, s:b, s:I}", "index", (json_int_t)(s->first + i),
                              "device_id", s->ids[s->first + i], "fault", fault_names[s->faults[i]],
                              "certificate", r->issued, "attempts", (json_int_t)r->attempts);
        if (o == NULL)
            continue;
        for (int st = 0; st < S_COUNT; st++)
            json_object_set_new(o, step_names[st],
                                r->code[st][0] ? json_string(r->code[st]) : json_null());
        if (r->issued) {
            json_object_set_new(o, "not_before", json_integer(r->not_before));
            json_object_set_new(o, "not_after", json_integer(r->not_after));
            json_object_set_new(o, "renew_at", json_integer(r->renew_at));
        }
        if (r->detail[0] != '\0')
            json_object_set_new(o, "detail", json_string(r->detail));
        if (s->bt.boots > 0)
            json_object_set_new(o, "telemetry", boots_device_json(&s->devs[i]));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *
faults_json(struct sim *s)
{
    json_t *out = json_object();
    for (int f = 1; out != NULL && f < F_COUNT; f++) {
        json_t *idx = json_array(), *outcomes = json_object();
        if (idx == NULL || outcomes == NULL) {
            json_decref(idx);
            json_decref(outcomes);
            continue;
        }
        for (size_t i = 0; i < s->n; i++) {
            if (s->faults[i] != (enum fault)f)
                continue;
            json_array_append_new(idx, json_integer((json_int_t)(s->first + i)));
            /* a device's outcome: the code of its first failed step, or "pass" */
            const char *code = "pass";
            for (int st = 0; st < S_COUNT; st++) {
                if (s->results[i].code[st][0] != '\0' && !s->results[i].pass[st]) {
                    code = s->results[i].code[st];
                    break;
                }
            }
            json_int_t prev = json_integer_value(json_object_get(outcomes, code));
            json_object_set_new(outcomes, code, json_integer(prev + 1));
        }
        if (json_array_size(idx) == 0) {
            json_decref(idx);
            json_decref(outcomes);
            continue;
        }
        json_object_set_new(out, fault_names[f],
                            json_pack("{s:o, s:o}", "indexes", idx, "outcomes", outcomes));
    }
    return out;
}

static void
print_text(struct sim *s, json_t *sum)
{
    printf("aegis-sim %s: %zu devices (from %zu), concurrency %ld, %.2f s\n",
           s->whoami_only ? "whoami" : "run", s->n, s->first, s->concurrency,
           json_real_value(json_object_get(sum, "elapsed_s")));
    for (int st = 0; st < S_COUNT; st++) {
        json_t *o = json_object_get(sum, step_names[st]);
        if (o == NULL || json_integer_value(json_object_get(o, "count")) == 0)
            continue;
        printf("  %-13s %5lld:", step_names[st],
               (long long)json_integer_value(json_object_get(o, "count")));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(o, "outcomes"), k, v)
        {
            printf(" %s %lld", k, (long long)json_integer_value(v));
        }
        json_t *lat = json_object_get(o, "latency_ms");
        printf("   latency ms p50 %.1f p99 %.1f max %.1f\n",
               json_real_value(json_object_get(lat, "p50")),
               json_real_value(json_object_get(lat, "p99")),
               json_real_value(json_object_get(lat, "max")));
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(sum, "faults"), k, v)
    {
        printf("  fault %-12s devices %zu:", k, json_array_size(json_object_get(v, "indexes")));
        const char *k2;
        json_t *v2;
        json_object_foreach(json_object_get(v, "outcomes"), k2, v2)
        {
            printf(" %s %lld", k2, (long long)json_integer_value(v2));
        }
        printf("\n");
    }
    if (json_object_get(sum, "telemetry") != NULL)
        boots_print(json_object_get(sum, "telemetry"));
    for (size_t i = 0, shown = 0; i < s->n && shown < 10; i++) {
        if (s->results[i].detail[0] != '\0') {
            printf("  device %zu: %s\n", s->first + i, s->results[i].detail);
            shown++;
        }
    }
}

/* --- command --------------------------------------------------------------------------------- */

static void
usage(FILE *f, int whoami)
{
    if (whoami)
        fprintf(
            f,
            "usage: aegis-sim whoami --dir D --server URL --cacert FILE [--devices N] "
            "[--from I]\n"
            "                        [--concurrency K] [--fault expired-cert[=COUNT|@I,..]] "
            "[--json]\n"
            "  Calls GET /v1/device/whoami over mutual TLS with each device's stored\n"
            "  certificate, without attesting (a device that keeps using an old certificate).\n");
    else
        fprintf(
            f,
            "usage: aegis-sim run --dir D --server URL --cacert FILE [--devices N] [--from I]\n"
            "                     [--concurrency K] [--renew] [--fresh] [--no-whoami]\n"
            "                     [--skew SECONDS]\n"
            "                     [--fault NAME[=COUNT|@I,J,..]]... [--timeout-ms MS] "
            "[--attempts N] [--json]\n"
            "  Boots, attests, stores the certificate and calls whoami over mutual TLS, for\n"
            "  devices [I, I+N) of D (default: all), K at a time (default %d).\n"
            "  --renew     then renew once (a fresh attestation) and call whoami again\n"
            "  --fresh     forget stored certificates first\n"
            "  --no-whoami stop after attestation (for benchmarks)\n"
            "  --fault     tampered-os | old-os | replay-nonce | blocked | clock-skew, on COUNT\n"
            "              devices (default 1, lowest indexes first) or on the listed indexes\n"
            "  --skew      clock offset of clock-skew devices in seconds (default %d)\n"
            "  --no-fsync  device storage without fsync (faster; not power-loss safe)\n"
            "failure reporting (device-sim/README.md):\n"
            "                     [--boots N] [--crash RATE[@COMPONENT[:VERSION]]]... [--drain]\n"
            "                     [--power-loss P] [--offline P] [--uptime S] [--queue N]\n"
            "                     [--upload-backoff-ms BASE[:MAX]] [--upload-attempts N] [--seed "
            "N]\n"
            "                     [--token-file FILE]\n"
            "  --boots     N simulated boots per device: reboot report, attest, upload the\n"
            "              queue, a heartbeat after --uptime S (3600), maybe a crash, reboot\n"
            "  --crash     per boot, the probability of a crash in COMPONENT (default the app)\n"
            "              at VERSION (default the running one); several, tried in order\n"
            "  --power-loss  per upload answer: power lost before the device applies it\n"
            "  --offline   per boot: the network goes away for 0.2-3 s at the first upload\n"
            "  --drain     then boot and upload until every queue is empty\n"
            "  --queue     queue capacity (32); --upload-backoff-ms (50:2000) and\n"
            "              --upload-attempts (8): the upload's retries, scaled down\n"
            "  --token-file  a tenant API token (else AEGIS_TOKEN): the summary adds what the\n"
            "              service holds of the run's reports and crashes, read before and after\n",
            CONCURRENCY_DEFAULT, SKEW_DEFAULT);
}

/* Assigns faults to the selected devices. 0, or -1 (message printed). */
static int
assign_faults(struct sim *s, struct fault_spec *specs, size_t n_specs)
{
    for (size_t k = 0; k < n_specs; k++) {
        for (size_t j = 0; j < specs[k].n_idx; j++) {
            size_t i = specs[k].idx[j];
            if (i < s->first || i >= s->first + s->n || s->faults[i - s->first] != F_NONE) {
                fprintf(stderr, "aegis-sim: fault index %zu is outside the run or taken twice\n",
                        i);
                return -1;
            }
            s->faults[i - s->first] = specs[k].f;
        }
    }
    size_t cursor = 0;
    for (size_t k = 0; k < n_specs; k++) {
        for (long c = 0; c < specs[k].count; c++) {
            while (cursor < s->n && s->faults[cursor] != F_NONE)
                cursor++;
            if (cursor >= s->n) {
                fprintf(stderr, "aegis-sim: more fault devices than devices in the run\n");
                return -1;
            }
            s->faults[cursor] = specs[k].f;
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        int wrong = s->whoami_only ? (s->faults[i] != F_NONE && s->faults[i] != F_EXPIRED_CERT)
                                   : s->faults[i] == F_EXPIRED_CERT;
        if (wrong) {
            fprintf(stderr, "aegis-sim: fault %s belongs to %s\n", fault_names[s->faults[i]],
                    s->whoami_only ? "run" : "the whoami command");
            return -1;
        }
    }
    return 0;
}

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

static int
fleet_main(int argc, char **argv, int whoami_only)
{
    int rc = SIM_EXIT_ERROR, loop_ok = 0;
    struct sim s;
    struct fault_spec specs[FAULT_SPECS_MAX];
    size_t n_specs = 0;
    const char *cacert = NULL, *token_file = NULL, *token_bad = NULL;
    char *token = NULL;
    struct service_count held_before = {0, 0}, held_after = {0, 0};
    int64_t n_opt = -1, from = 0, v;
    long total = 0;
    json_t *sum = NULL;
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"server", required_argument, NULL, 's'},
                                         {"cacert", required_argument, NULL, 'c'},
                                         {"devices", required_argument, NULL, 'n'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"concurrency", required_argument, NULL, 'k'},
                                         {"renew", no_argument, NULL, 'r'},
                                         {"no-whoami", no_argument, NULL, 'W'},
                                         {"fresh", no_argument, NULL, 'F'},
                                         {"fault", required_argument, NULL, 'x'},
                                         {"skew", required_argument, NULL, 'w'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"attempts", required_argument, NULL, 'a'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"boots", required_argument, NULL, 'B'},
                                         {"crash", required_argument, NULL, 'C'},
                                         {"power-loss", required_argument, NULL, 'P'},
                                         {"offline", required_argument, NULL, 'O'},
                                         {"drain", no_argument, NULL, 'D'},
                                         {"uptime", required_argument, NULL, 'U'},
                                         {"queue", required_argument, NULL, 'Q'},
                                         {"upload-backoff-ms", required_argument, NULL, 'b'},
                                         {"upload-attempts", required_argument, NULL, 'A'},
                                         {"seed", required_argument, NULL, 'S'},
                                         {"no-fsync", no_argument, NULL, 'N'},
                                         {"token-file", required_argument, NULL, 'T'},
                                         {NULL, 0, NULL, 0}};
    int c, usage_err = 0, boot_opts = 0;

    memset(&s, 0, sizeof(s));
    memset(specs, 0, sizeof(specs));
    s.whoami_only = whoami_only;
    s.concurrency = CONCURRENCY_DEFAULT;
    s.skew = SKEW_DEFAULT;
    s.attempts = ATTEMPTS_DEFAULT;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            s.fleet = optarg;
            break;
        case 's':
            s.server = optarg;
            break;
        case 'c':
            cacert = optarg;
            break;
        case 'n':
            usage_err |= sim_parse_i64(optarg, 1, SIM_DEVICES_MAX, &n_opt) != 0;
            break;
        case 'f':
            usage_err |= sim_parse_i64(optarg, 0, SIM_DEVICES_MAX - 1, &from) != 0;
            break;
        case 'k':
            usage_err |= sim_parse_i64(optarg, 1, 10000, &v) != 0;
            s.concurrency = (long)v;
            break;
        case 'W':
            s.no_whoami = 1;
            break;
        case 'r':
            s.renew = 1;
            break;
        case 'F':
            s.fresh = 1;
            break;
        case 'x':
            if (n_specs >= FAULT_SPECS_MAX || parse_fault(optarg, &specs[n_specs]) != 0) {
                fprintf(stderr, "aegis-sim: bad --fault %s\n", optarg);
                usage_err = 1;
            } else {
                n_specs++;
            }
            break;
        case 'w':
            usage_err |=
                sim_parse_i64(optarg, -10LL * 365 * 86400, 10LL * 365 * 86400, &s.skew) != 0;
            break;
        case 't':
            usage_err |= sim_parse_i64(optarg, 100, 600000, &v) != 0;
            s.timeout_ms = (uint32_t)v;
            break;
        case 'a':
            usage_err |= sim_parse_i64(optarg, 1, 100, &v) != 0;
            s.attempts = (unsigned)v;
            break;
        case 'j':
            s.json = 1;
            break;
        case 'B':
            usage_err |= sim_parse_i64(optarg, 1, 1000, &v) != 0;
            s.bt.boots = (long)v;
            break;
        case 'C':
            if (s.bt.n_crash >= CRASH_SPECS_MAX ||
                boots_parse_crash(optarg, &s.bt.crash[s.bt.n_crash]) != 0) {
                fprintf(stderr, "aegis-sim: bad --crash %s\n", optarg);
                usage_err = 1;
            } else {
                s.bt.n_crash++;
            }
            boot_opts = 1;
            break;
        case 'P':
            usage_err |= sim_parse_prob(optarg, &s.bt.power_loss) != 0;
            boot_opts = 1;
            break;
        case 'O':
            usage_err |= sim_parse_prob(optarg, &s.bt.offline) != 0;
            boot_opts = 1;
            break;
        case 'D':
            s.bt.drain = 1;
            boot_opts = 1;
            break;
        case 'U':
            usage_err |= sim_parse_i64(optarg, 1, 86400, &v) != 0;
            s.bt.uptime_s = (uint32_t)v;
            boot_opts = 1;
            break;
        case 'Q':
            usage_err |= sim_parse_i64(optarg, 1, ADEV_CRASH_CAPACITY_MAX, &v) != 0;
            s.bt.queue = (unsigned)v;
            boot_opts = 1;
            break;
        case 'b': {
            int64_t base = 0, max = 0;
            char *colon = strchr(optarg, ':');
            if (colon != NULL)
                *colon = '\0';
            usage_err |= sim_parse_i64(optarg, 1, 600000, &base) != 0;
            usage_err |= colon != NULL && sim_parse_i64(colon + 1, 1, 3600000, &max) != 0;
            s.bt.backoff_base_ms = (uint32_t)base;
            s.bt.backoff_max_ms = (uint32_t)max;
            boot_opts = 1;
            break;
        }
        case 'A':
            usage_err |= sim_parse_i64(optarg, 1, 1000, &v) != 0;
            s.bt.upload_attempts = (unsigned)v;
            boot_opts = 1;
            break;
        case 'S':
            usage_err |= sim_parse_i64(optarg, 0, INT64_MAX, &v) != 0;
            s.bt.seed = (uint64_t)v;
            break;
        case 'N':
            s.no_fsync = 1;
            break;
        case 'T':
            token_file = optarg;
            break;
        case 'h':
            usage(stdout, whoami_only);
            rc = SIM_EXIT_OK;
            goto out;
        default:
            usage_err = 1;
        }
    }
    if (boot_opts && s.bt.boots == 0)
        s.bt.boots = 1; /* the failure-reporting options imply one boot */
    if (usage_err || optind != argc || s.fleet == NULL || s.server == NULL || cacert == NULL ||
        (whoami_only && (s.renew || s.bt.boots > 0)) || (s.renew && s.bt.boots > 0) ||
        strncmp(s.server, "https://", 8) != 0) {
        usage(stderr, whoami_only);
        rc = SIM_EXIT_USAGE;
        goto out;
    }
    total = sim_fleet_size(s.fleet, &s.ids);
    if (total <= 0) {
        fprintf(stderr, "aegis-sim: %s has no devices.json (run aegis-sim provision)\n", s.fleet);
        goto out;
    }
    if (from >= total || (n_opt > 0 && from + n_opt > total)) {
        fprintf(stderr, "aegis-sim: devices [%lld, %lld) are not all in %s (%ld devices)\n",
                (long long)from, (long long)(from + (n_opt > 0 ? n_opt : 0)), s.fleet, total);
        rc = SIM_EXIT_USAGE;
        goto out;
    }
    s.first = (size_t)from;
    s.n = n_opt > 0 ? (size_t)n_opt : (size_t)(total - from);
    s.ca_pem = sim_read_text(cacert, CA_MAX);
    if (s.ca_pem == NULL) {
        fprintf(stderr, "aegis-sim: cannot read %s\n", cacert);
        goto out;
    }
    s.faults = calloc(s.n, sizeof(*s.faults));
    s.results = calloc(s.n, sizeof(*s.results));
    s.devs = calloc(s.n, sizeof(*s.devs));
    if (s.faults == NULL || s.results == NULL || s.devs == NULL)
        goto out;
    if (assign_faults(&s, specs, n_specs) != 0) {
        rc = SIM_EXIT_USAGE;
        goto out;
    }
    boots_defaults(&s.bt);
    if (s.bt.boots > 0) {
        token = service_token(token_file, &token_bad);
        if (token_bad != NULL) {
            fprintf(stderr, "aegis-sim: cannot read the token file %s\n", token_bad);
            goto out;
        }
        if (token != NULL && count_held(&s, cacert, token, &held_before) != 0)
            goto out;
    }
    s.rng = s.bt.seed;
    s.upload_outcomes = json_object();
    s.attest_outcomes = json_object();
    s.crash_sites = json_object();
    if (s.upload_outcomes == NULL || s.attest_outcomes == NULL || s.crash_sites == NULL)
        goto out;
    for (size_t i = 0; i < s.n; i++) {
        s.devs[i].sim = &s;
        s.devs[i].index = s.first + i;
        s.devs[i].fault = s.faults[i];
        s.devs[i].res = &s.results[i];
    }
    if (uv_loop_init(&s.loop) != 0)
        goto out;
    loop_ok = 1;
    struct adev_uvnet_opts nopts = {s.timeout_ms, 0, 0, 0};
    s.net = adev_uvnet_new(&s.loop, &nopts);
    if (s.net == NULL)
        goto out;

    double t0 = sim_now_ms();
    fill(&s);
    if (s.finished < s.n) {
        s.running = 1; /* read by the device callbacks that uv_run calls */
        uv_run(&s.loop, UV_RUN_DEFAULT);
        // cppcheck-suppress redundantAssignment
        s.running = 0;
    }
    double elapsed_s = (sim_now_ms() - t0) / 1000.0;
    if (s.finished < s.n) {
        fprintf(stderr, "aegis-sim: the loop stopped with %zu devices unfinished\n",
                s.n - s.finished);
        goto out;
    }

    sum = json_pack("{s:s, s:I, s:I, s:I, s:f, s:f}", "mode", whoami_only ? "whoami" : "run",
                    "devices", (json_int_t)s.n, "from", (json_int_t)s.first, "concurrency",
                    (json_int_t)s.concurrency, "elapsed_s", elapsed_s, "devices_per_s",
                    elapsed_s > 0 ? (double)s.n / elapsed_s : 0.0);
    if (sum == NULL)
        goto out;
    for (int st = 0; st < S_COUNT; st++) {
        if (whoami_only && st != S_WHOAMI)
            continue;
        if (!s.renew && (st == S_RENEW || st == S_RENEW_WHOAMI))
            continue;
        json_object_set_new(sum, step_names[st], step_json(&s, (enum step)st));
    }
    json_object_set_new(sum, "faults", faults_json(&s));
    if (s.bt.boots > 0) {
        json_t *t = boots_summary(&s);
        if (t == NULL || json_object_set_new(sum, "telemetry", t) != 0)
            goto out;
        if (token != NULL && (count_held(&s, cacert, token, &held_after) != 0 ||
                              add_service(t, &held_before, &held_after) != 0))
            goto out;
    }
    json_object_set_new(sum, "setup_errors", json_integer(s.setup_errors));
    if (s.json) {
        json_object_set_new(sum, "results", results_json(&s));
        if (json_dumpf(sum, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0)
            goto out;
        printf("\n");
    } else {
        print_text(&s, sum);
    }
    fflush(stdout);
    /* outcomes are data; a device that could not even start (its directory is broken) is not */
    rc = s.setup_errors == 0 ? SIM_EXIT_OK : SIM_EXIT_ERROR;
out:
    for (size_t i = 0; s.devs != NULL && i < s.n; i++)
        fleet_dev_destroy(&s.devs[i]);
    adev_uvnet_free(s.net);
    if (loop_ok) {
        uv_run(&s.loop, UV_RUN_DEFAULT); /* close callbacks free the handles */
        if (uv_loop_close(&s.loop) != 0)
            fprintf(stderr, "aegis-sim: libuv handles left open\n");
    }
    json_decref(sum);
    json_decref(s.upload_outcomes);
    json_decref(s.attest_outcomes);
    json_decref(s.crash_sites);
    for (size_t k = 0; k < n_specs; k++)
        free(specs[k].idx);
    if (n_specs < FAULT_SPECS_MAX)
        free(specs[n_specs].idx); /* a spec that failed to parse */
    free(s.faults);
    free(s.results);
    free(s.devs);
    free(s.ca_pem);
    service_token_free(token);
    sim_free_ids(s.ids, total > 0 ? (size_t)total : 0);
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
