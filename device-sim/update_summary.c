/* update_summary: the options of `aegis-sim update` and its summary (update.h). */
#include "update.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define ROOT_MAX (64u << 10)
#define HW_DEFAULT "sim-hw"

static void
usage(FILE *f)
{
    fprintf(
        f,
        "usage: aegis-sim update --dir D --server URL --cacert FILE --product-id P\n"
        "                        --image-root FILE --director-root FILE [--hardware H]\n"
        "                        [--devices N] [--from I] [--concurrency K] [--time-scale X]\n"
        "                        [--health S] [--poll S] [--duration S] [--idle-stop S]\n"
        "                        [--kill-at POINT[:N]]\n"
        "                        [--until-version COMPONENT@VERSION]\n"
        "                        [--crash RATE@COMPONENT:VERSION]... [--fault NAME[=N|@I,J]]...\n"
        "                        [--server-keys DIR] [--seed N] [--json] [--no-fsync]\n"
        "  Runs devices through update checks, installs, trial boots, commits and rollbacks\n"
        "  (device-sim/README.md \"update\"). Times are simulated seconds divided by\n"
        "  --time-scale (1), except --duration (120) and --idle-stop, which are real.\n"
        "  --health 60  --poll 300  --concurrency 32 (devices powered at once)\n"
        "  --fault  corrupt-image | truncate-image | endless-image | freeze | replay |\n"
        "           bad-signature | unlisted-image | server-signed | lower-svn | crash-update\n"
        "  --server-keys  the tenant's online keys (<pki_dir>/tenants/<id>), for freeze,\n"
        "           replay, unlisted-image and server-signed\n");
}

static int
parse_until(const char *arg, struct upd_opts *o)
{
    const char *at = strchr(arg, '@');
    if (at == NULL || (size_t)(at - arg) > PROTO_COMPONENT_MAX ||
        !proto_component_ok(arg, (size_t)(at - arg)) || !proto_version_ok(at + 1, strlen(at + 1)))
        return -1;
    snprintf(o->until_component, sizeof(o->until_component), "%.*s", (int)(at - arg), arg);
    snprintf(o->until_version, sizeof(o->until_version), "%s", at + 1);
    return 0;
}

static int
parse_seconds(const char *arg, double min, double *out)
{
    char *end = NULL;
    double v = strtod(arg, &end);
    if (end == arg || *end != '\0' || !(v >= min) || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

/* --kill-at POINT[:N] (update.h). 0 or -1. */
static int
parse_kill(const char *arg, struct upd_opts *o)
{
    static const char *const points[] = {"boot",  "download",   "downloaded", "staged",  "armed",
                                         "trial", "committing", "committed",  "reported"};
    const char *colon = strchr(arg, ':');
    size_t n = colon != NULL ? (size_t)(colon - arg) : strlen(arg);
    int64_t count = 1;

    if (colon != NULL && sim_parse_i64(colon + 1, 1, 1000000000, &count) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
        if (strlen(points[i]) == n && strncmp(points[i], arg, n) == 0) {
            snprintf(o->kill_point, sizeof(o->kill_point), "%s", points[i]);
            o->kill_n = (long)count;
            return 0;
        }
    return -1;
}

/* One option of update's own. 1 when malformed, -1 when c is not one, else 0. */
static int
parse_update_opt(int c, struct sim *s, struct fleet_args *a, struct upd_opts *o)
{
    int64_t v;
    switch (c) {
    case 'x':
        if (a->n_specs >= FAULT_SPECS_MAX ||
            fleet_parse_fault(optarg, faultnet_names, UF_COUNT, &a->specs[a->n_specs]) != 0) {
            fprintf(stderr, "aegis-sim: bad --fault %s\n", optarg);
            return 1;
        }
        a->n_specs++;
        return 0;
    case 'p':
        if (sim_parse_i64(optarg, 1, INT64_MAX, &v) != 0)
            return 1;
        o->product_id = v;
        return 0;
    case 'H':
        o->hardware = optarg;
        return !proto_component_ok(optarg, strlen(optarg));
    case 'I':
        o->image_root_path = optarg;
        return 0;
    case 'R':
        o->director_root_path = optarg;
        return 0;
    case 'K':
        o->server_keys = optarg;
        return 0;
    case 'X':
        return parse_seconds(optarg, 1e-3, &o->time_scale) != 0;
    case 'h' + 256:
        return parse_seconds(optarg, 0, &o->health_s) != 0;
    case 'P':
        return parse_seconds(optarg, 0.001, &o->poll_s) != 0;
    case 'u':
        return parse_seconds(optarg, 0.1, &o->duration_s) != 0;
    case 'i':
        return parse_seconds(optarg, 0.1, &o->idle_stop_s) != 0;
    case 'V':
        return parse_until(optarg, o) != 0;
    case 'Z':
        return parse_kill(optarg, o) != 0;
    default:
        (void)s;
        return -1;
    }
}

/* The roots' text and the fleet's hardware. 0 or -1 (reported). */
static int
load_files(const struct sim *s, struct upd_opts *o)
{
    char path[SIM_PATH_MAX];
    o->image_root = sim_read_text(o->image_root_path, ROOT_MAX);
    o->director_root = sim_read_text(o->director_root_path, ROOT_MAX);
    if (o->image_root == NULL || o->director_root == NULL) {
        fprintf(stderr, "aegis-sim: cannot read --image-root or --director-root\n");
        return -1;
    }
    if (o->hardware != NULL)
        return 0;
    snprintf(path, sizeof(path), "%s/fleet.json", s->fleet);
    json_t *info = json_load_file(path, 0, NULL);
    const char *hw = json_string_value(json_object_get(info, "hardware"));
    o->fleet_hw = strdup(hw != NULL ? hw : HW_DEFAULT);
    json_decref(info);
    o->hardware = o->fleet_hw;
    return o->fleet_hw != NULL ? 0 : -1;
}

int
upd_parse_args(int argc, char **argv, struct sim *s, struct fleet_args *a, struct upd_run *u,
               int *exit_code)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"server", required_argument, NULL, 's'},
                                         {"cacert", required_argument, NULL, 'c'},
                                         {"devices", required_argument, NULL, 'n'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"concurrency", required_argument, NULL, 'k'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"attempts", required_argument, NULL, 'a'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"no-fsync", no_argument, NULL, 'N'},
                                         {"crash", required_argument, NULL, 'C'},
                                         {"seed", required_argument, NULL, 'S'},
                                         {"fault", required_argument, NULL, 'x'},
                                         {"product-id", required_argument, NULL, 'p'},
                                         {"hardware", required_argument, NULL, 'H'},
                                         {"image-root", required_argument, NULL, 'I'},
                                         {"director-root", required_argument, NULL, 'R'},
                                         {"server-keys", required_argument, NULL, 'K'},
                                         {"time-scale", required_argument, NULL, 'X'},
                                         {"health", required_argument, NULL, 'h' + 256},
                                         {"poll", required_argument, NULL, 'P'},
                                         {"duration", required_argument, NULL, 'u'},
                                         {"idle-stop", required_argument, NULL, 'i'},
                                         {"until-version", required_argument, NULL, 'V'},
                                         {"kill-at", required_argument, NULL, 'Z'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct upd_opts *o = &u->o;
    int c, bad = 0;

    fleet_opts_defaults(s, a);
    o->time_scale = 1;
    o->health_s = 60;
    o->poll_s = 300;
    o->duration_s = 120;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            *exit_code = SIM_EXIT_OK;
            return -1;
        }
        int r = parse_update_opt(c, s, a, o);
        if (r < 0 && (c == 'C' || c == 'S'))
            r = fleet_parse_boot_opt(c, s, a);
        else if (r < 0)
            r = strchr("dscnfktajN", c) != NULL ? fleet_parse_run_opt(c, s, a) : 1;
        bad |= r;
    }
    if (bad || optind != argc || s->fleet == NULL || s->server == NULL || a->cacert == NULL ||
        o->product_id == 0 || o->image_root_path == NULL || o->director_root_path == NULL ||
        strncmp(s->server, "https://", 8) != 0) {
        usage(stderr);
        *exit_code = SIM_EXIT_USAGE;
        return -1;
    }
    if (load_files(s, o) != 0) {
        *exit_code = SIM_EXIT_ERROR;
        return -1;
    }
    return 0;
}

void
upd_opts_free(struct upd_opts *o)
{
    free(o->image_root);
    free(o->director_root);
    free(o->fleet_hw);
    o->image_root = o->director_root = o->fleet_hw = NULL;
}

/* --- summary --------------------------------------------------------------------------------- */

/* What a device's run came to, as the summary counts it. */
static const char *
final_class(const struct upd_dev *ud)
{
    if (ud->broken)
        return "setup_error";
    if ((ud->commits > 0 && ud->outcome == UO_COMMITTED) || ud->at_target)
        return "updated"; /* (at its --until-version: also when it committed in an earlier run) */
    if (ud->rollbacks > 0 && ud->outcome == UO_ROLLED_BACK)
        return "rolled_back";
    if (ud->outcome == UO_REFUSED)
        return "refused";
    if (!ud->fd.offered)
        return "held_back";
    return "in_progress";
}

static json_t *
wave_entry(json_t *waves, const struct upd_dev *ud)
{
    char key[16];
    if (ud->fd.offered)
        snprintf(key, sizeof(key), "%u", (unsigned)ud->fd.wave);
    else
        snprintf(key, sizeof(key), "waiting");
    json_t *w = json_object_get(waves, key);
    if (w == NULL) {
        w = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:{}}", "devices", 0, "updated", 0,
                      "rolled_back", 0, "held_back", 0, "in_progress", 0, "setup_error", 0,
                      "refused");
        json_object_set_new(waves, key, w);
    }
    return w;
}

static json_t *
device_json(const struct sim *s, size_t i)
{
    const struct upd_dev *ud = &s->up->ud[i];
    return json_pack(
        "{s:I, s:s, s:s?, s:s, s:s?, s:s?, s:i, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "index",
        (json_int_t)(s->first + i), "device_id", s->ids[s->first + i], "fault",
        faultnet_names[ud->fd.fault], "outcome", final_class(ud), "reason",
        ud->reason[0] ? ud->reason : NULL, "version", ud->version[0] ? ud->version : NULL, "wave",
        ud->fd.wave, "deployment_id", (json_int_t)ud->fd.deployment_id, "boots", (int)ud->boots,
        "checks", (int)ud->checks, "installs", (int)ud->installs, "commits", (int)ud->commits,
        "rollbacks", (int)ud->rollbacks, "crashes", (int)ud->crashes, "errors", (int)ud->errors);
}

static json_t *
build(struct sim *s)
{
    struct upd_run *u = s->up;
    json_t *sum = NULL, *waves = json_object(), *faults = json_object(), *results = json_array();
    size_t updated = 0;
    struct rusage ru;

    if (waves == NULL || faults == NULL || results == NULL)
        goto out;
    for (size_t i = 0; i < s->n; i++) {
        const struct upd_dev *ud = &u->ud[i];
        const char *cls = final_class(ud);
        json_t *w = wave_entry(waves, ud);
        boots_tally(w, "devices", 1);
        if (strcmp(cls, "refused") == 0)
            boots_tally(json_object_get(w, "refused"), ud->reason, 1);
        else
            boots_tally(w, cls, 1);
        updated += strcmp(cls, "updated") == 0;
        if (ud->fd.fault != UF_NONE) {
            const char *name = faultnet_names[ud->fd.fault];
            json_t *f = json_object_get(faults, name);
            if (f == NULL) {
                f = json_pack("{s:s, s:[], s:{}}", "expected", faultnet_expected[ud->fd.fault],
                              "indexes", "outcomes");
                json_object_set_new(faults, name, f);
            }
            json_array_append_new(json_object_get(f, "indexes"),
                                  json_integer((json_int_t)(s->first + i)));
            boots_tally(json_object_get(f, "outcomes"), ud->reason[0] ? ud->reason : cls, 1);
        }
        json_array_append_new(results, device_json(s, i));
    }
    getrusage(RUSAGE_SELF, &ru);
    sum =
        json_pack("{s:s, s:I, s:I, s:i, s:f, s:f, s:I, s:f, s:O, s:O, s:O, s:O, s:{s:O}, s:i, s:O}",
                  "mode", "update", "devices", (json_int_t)s->n, "from", (json_int_t)s->first,
                  "concurrency", (int)s->concurrency, "time_scale", u->o.time_scale, "elapsed_s",
                  u->elapsed_s, "updated", (json_int_t)updated, "devices_updated_per_s",
                  u->elapsed_s > 0 ? (double)updated / u->elapsed_s : 0.0, "waves", waves, "faults",
                  faults, "refusals", u->refusals, "errors", u->errors, "attest", "outcomes",
                  s->attest_outcomes, "peak_rss_kib", (int)ru.ru_maxrss, "results", results);
out:
    json_decref(waves);
    json_decref(faults);
    json_decref(results);
    return sum;
}

static void
print_text(json_t *sum)
{
    const char *k, *r;
    json_t *w, *v;
#define G(o, key) ((long long)json_integer_value(json_object_get(o, key)))
    printf("update: %lld devices in %.1f s: %lld updated (%.2f devices/s); peak RSS %lld MiB\n",
           G(sum, "devices"), json_real_value(json_object_get(sum, "elapsed_s")), G(sum, "updated"),
           json_real_value(json_object_get(sum, "devices_updated_per_s")),
           G(sum, "peak_rss_kib") / 1024);
    json_object_foreach(json_object_get(sum, "waves"), k, w)
    {
        printf("  wave %s: %lld devices: updated %lld, rolled back %lld, held back %lld, in "
               "progress %lld; refused:",
               k, G(w, "devices"), G(w, "updated"), G(w, "rolled_back"), G(w, "held_back"),
               G(w, "in_progress"));
        json_object_foreach(json_object_get(w, "refused"), r, v)
        {
            printf(" %s %lld", r, (long long)json_integer_value(v));
        }
        printf("\n");
    }
    json_object_foreach(json_object_get(sum, "faults"), k, w)
    {
        printf("  fault %s (expected %s):", k, json_string_value(json_object_get(w, "expected")));
        json_object_foreach(json_object_get(w, "outcomes"), r, v)
        {
            printf(" %s %lld", r, (long long)json_integer_value(v));
        }
        printf("\n");
    }
    printf("  check errors (not refusals; the device polls again):");
    json_object_foreach(json_object_get(sum, "errors"), r, v)
    {
        printf(" %s %lld", r, (long long)json_integer_value(v));
    }
    printf("\n");
#undef G
}

int
upd_print_summary(struct sim *s, struct upd_run *u)
{
    (void)u;
    json_t *sum = build(s);
    if (sum == NULL)
        return -1;
    json_object_set_new(sum, "setup_errors", json_integer(s->setup_errors));
    if (s->json) {
        json_dumpf(sum, stdout, JSON_COMPACT);
        printf("\n");
    } else {
        json_object_del(sum, "results");
        print_text(sum);
    }
    json_decref(sum);
    return 0;
}
