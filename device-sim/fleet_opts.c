/* fleet_opts: the options of "run" and "whoami" (fleet.h): parsing, usage, and the --fault
 * specifications assigned to devices. */
#include "fleet.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONCURRENCY_DEFAULT 32
#define SKEW_DEFAULT (-86400) /* the clock-skew fault: one day behind */
#define ATTEMPTS_DEFAULT 8

static int
fault_parse(const char *name, size_t len, const char *const *names, int count)
{
    for (int i = 1; i < count; i++) {
        if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
            return i;
    }
    return 0;
}

int
fleet_parse_fault(const char *arg, const char *const *names, int count, struct fault_spec *spec)
{
    const char *sep = strpbrk(arg, "=@");
    size_t len = sep ? (size_t)(sep - arg) : strlen(arg);
    memset(spec, 0, sizeof(*spec));
    spec->f = fault_parse(arg, len, names, count);
    if (spec->f == 0)
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

void
fleet_usage(FILE *f, int whoami)
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

/* One option of the device flow into s or a. Returns 1 when the option is malformed. */
int
fleet_parse_run_opt(int c, struct sim *s, struct fleet_args *a)
{
    int64_t v = 0;
    int bad = 0;

    switch (c) {
    case 'd':
        s->fleet = optarg;
        break;
    case 's':
        s->server = optarg;
        break;
    case 'c':
        a->cacert = optarg;
        break;
    case 'n':
        bad |= sim_parse_i64(optarg, 1, SIM_DEVICES_MAX, &a->n_opt) != 0;
        break;
    case 'f':
        bad |= sim_parse_i64(optarg, 0, SIM_DEVICES_MAX - 1, &a->from) != 0;
        break;
    case 'k':
        bad |= sim_parse_i64(optarg, 1, 10000, &v) != 0;
        s->concurrency = (long)v;
        break;
    case 'W':
        s->no_whoami = 1;
        break;
    case 'r':
        s->renew = 1;
        break;
    case 'F':
        s->fresh = 1;
        break;
    case 'x':
        if (a->n_specs >= FAULT_SPECS_MAX ||
            fleet_parse_fault(optarg, fleet_fault_names, F_COUNT, &a->specs[a->n_specs]) != 0) {
            fprintf(stderr, "aegis-sim: bad --fault %s\n", optarg);
            bad = 1;
        } else {
            a->n_specs++;
        }
        break;
    case 'w':
        bad |= sim_parse_i64(optarg, -10LL * 365 * 86400, 10LL * 365 * 86400, &s->skew) != 0;
        break;
    case 't':
        bad |= sim_parse_i64(optarg, 100, 600000, &v) != 0;
        s->timeout_ms = (uint32_t)v;
        break;
    case 'a':
        bad |= sim_parse_i64(optarg, 1, 100, &v) != 0;
        s->attempts = (unsigned)v;
        break;
    case 'j':
        s->json = 1;
        break;
    case 'N':
        s->no_fsync = 1;
        break;
    case 'T':
        a->token_file = optarg;
        break;
    default:
        bad = 1;
    }
    return bad;
}

/* One option of the boot cycle (--boots and the failure-reporting options) into s->bt. Returns
 * -1 when c is not one, 1 when the option is malformed, else 0. */
int
fleet_parse_boot_opt(int c, struct sim *s, struct fleet_args *a)
{
    int64_t v = 0;
    int bad = 0;

    switch (c) {
    case 'B':
        bad |= sim_parse_i64(optarg, 1, 1000, &v) != 0;
        s->bt.boots = (long)v;
        break;
    case 'C':
        if (s->bt.n_crash >= CRASH_SPECS_MAX ||
            boots_parse_crash(optarg, &s->bt.crash[s->bt.n_crash]) != 0) {
            fprintf(stderr, "aegis-sim: bad --crash %s\n", optarg);
            bad = 1;
        } else {
            s->bt.n_crash++;
        }
        a->boot_opts = 1;
        break;
    case 'P':
        bad |= sim_parse_prob(optarg, &s->bt.power_loss) != 0;
        a->boot_opts = 1;
        break;
    case 'O':
        bad |= sim_parse_prob(optarg, &s->bt.offline) != 0;
        a->boot_opts = 1;
        break;
    case 'D':
        s->bt.drain = 1;
        a->boot_opts = 1;
        break;
    case 'U':
        bad |= sim_parse_i64(optarg, 1, 86400, &v) != 0;
        s->bt.uptime_s = (uint32_t)v;
        a->boot_opts = 1;
        break;
    case 'Q':
        bad |= sim_parse_i64(optarg, 1, ADEV_CRASH_CAPACITY_MAX, &v) != 0;
        s->bt.queue = (unsigned)v;
        a->boot_opts = 1;
        break;
    case 'b': {
        int64_t base = 0, max = 0;
        char *colon = strchr(optarg, ':');
        if (colon != NULL)
            *colon = '\0';
        bad |= sim_parse_i64(optarg, 1, 600000, &base) != 0;
        bad |= colon != NULL && sim_parse_i64(colon + 1, 1, 3600000, &max) != 0;
        s->bt.backoff_base_ms = (uint32_t)base;
        s->bt.backoff_max_ms = (uint32_t)max;
        a->boot_opts = 1;
        break;
    }
    case 'A':
        bad |= sim_parse_i64(optarg, 1, 1000, &v) != 0;
        s->bt.upload_attempts = (unsigned)v;
        a->boot_opts = 1;
        break;
    case 'S':
        bad |= sim_parse_i64(optarg, 0, INT64_MAX, &v) != 0;
        s->bt.seed = (uint64_t)v;
        break;
    default:
        return -1;
    }
    return bad;
}

void
fleet_opts_defaults(struct sim *s, struct fleet_args *a)
{
    memset(a, 0, sizeof(*a));
    a->n_opt = -1;
    s->concurrency = CONCURRENCY_DEFAULT;
    s->skew = SKEW_DEFAULT;
    s->attempts = ATTEMPTS_DEFAULT;
    optind = 1;
}

int
fleet_parse_args(int argc, char **argv, struct sim *s, struct fleet_args *a, int *exit_code)
{
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
    int c, bad = 0;

    fleet_opts_defaults(s, a);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            fleet_usage(stdout, s->whoami_only);
            *exit_code = SIM_EXIT_OK;
            return -1;
        }
        int r = fleet_parse_boot_opt(c, s, a);
        bad |= r < 0 ? fleet_parse_run_opt(c, s, a) : r;
    }
    if (a->boot_opts && s->bt.boots == 0)
        s->bt.boots = 1; /* the failure-reporting options imply one boot */
    if (bad || optind != argc || s->fleet == NULL || s->server == NULL || a->cacert == NULL ||
        (s->whoami_only && (s->renew || s->bt.boots > 0)) || (s->renew && s->bt.boots > 0) ||
        strncmp(s->server, "https://", 8) != 0) {
        fleet_usage(stderr, s->whoami_only);
        *exit_code = SIM_EXIT_USAGE;
        return -1;
    }
    return 0;
}

void
fleet_args_free(struct fleet_args *a)
{
    for (size_t k = 0; k < a->n_specs; k++)
        free(a->specs[k].idx);
    if (a->n_specs < FAULT_SPECS_MAX)
        free(a->specs[a->n_specs].idx); /* a spec that failed to parse */
}

/* Assigns faults to the selected devices. 0, or -1 (message printed). */
int
fleet_assign_faults(struct sim *s, const struct fault_spec *specs, size_t n_specs)
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
    for (size_t i = 0; i < s->n && !s->update; i++) {
        int wrong = s->whoami_only ? (s->faults[i] != F_NONE && s->faults[i] != F_EXPIRED_CERT)
                                   : s->faults[i] == F_EXPIRED_CERT;
        if (wrong) {
            fprintf(stderr, "aegis-sim: fault %s belongs to %s\n", fleet_fault_names[s->faults[i]],
                    s->whoami_only ? "run" : "the whoami command");
            return -1;
        }
    }
    return 0;
}
