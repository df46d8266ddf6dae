#include "cmd_failures.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_res.h"
#include "proto_telemetry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_LEN 4096

static const struct ctl_col bucket_cols[] = {{"ID", "id", 0, 0},
                                             {"COUNT", "count", 0, 0},
                                             {"DEVICES", "devices", 0, 0},
                                             {"COMPONENT", "component", 24, CTL_COL_CUT},
                                             {"REASON", "reason", 0, CTL_COL_CUT},
                                             {"PC", "pc", 0, 0},
                                             {"FIRST_SEEN", "first_seen", 0, 0},
                                             {"LAST_SEEN", "last_seen", 0, 0},
                                             {NULL, NULL, 0, 0}};
static const struct ctl_filter bucket_filters[] = {
    {"--limit", CTL_F_LIMIT, NULL, NULL, NULL, NULL},
    {"--cursor", CTL_F_CURSOR, NULL, NULL, NULL, NULL},
    {"--component", CTL_F_COMPONENT, "component", NULL,
     "--component: 1-64 characters of [a-z0-9._-]", NULL},
    {"--version", CTL_F_VERSION, "image_version", NULL,
     "--version: 1-32 printable ASCII characters, no spaces", NULL},
    {"--product", CTL_F_ID, "product_id", NULL, NULL, NULL},
    {"--group", CTL_F_ID, "group_id", NULL, NULL, NULL},
    {"--since", CTL_F_TIME, "since", NULL, NULL, NULL},
    {"--until", CTL_F_TIME, "until", NULL, NULL, NULL},
    {"--sort", CTL_F_ENUM, "sort", "count|devices|recent",
     "--sort: expected count, devices or recent", NULL},
    {"--all", CTL_F_ALL, NULL, NULL, NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL}};
static const struct ctl_resource buckets_res = {"/v1/failures/buckets", bucket_cols, bucket_filters,
                                                CTL_ID_INT, NULL};

static const struct ctl_col flag_cols[] = {{"ID", "id", 0, 0},
                                           {"CREATED_AT", "created_at", 0, 0},
                                           {"KIND", "kind", 0, 0},
                                           {"COMPONENT", "component", 24, CTL_COL_CUT},
                                           {"VERSION", "image_version", 0, CTL_COL_CUT},
                                           {"PREVIOUS", "previous_version", 0, CTL_COL_CUT},
                                           {"BUCKET", "bucket_id", 0, 0},
                                           {"DETAIL", "detail", 60, CTL_COL_CUT},
                                           {NULL, NULL, 0, 0}};
static const struct ctl_filter flag_filters[] = {{"--limit", CTL_F_LIMIT, NULL, NULL, NULL, NULL},
                                                 {"--cursor", CTL_F_CURSOR, NULL, NULL, NULL, NULL},
                                                 {"--all", CTL_F_ALL, NULL, NULL, NULL, NULL},
                                                 {NULL, 0, NULL, NULL, NULL, NULL}};
static const struct ctl_resource flags_res = {"/v1/failures/flags", flag_cols, flag_filters,
                                              CTL_ID_NONE, NULL};

/* --since / --until: times (ctl_parse_time), passed on in the API's UTC form. */
static int
add_time(struct ctl *c, struct ctl_query *q, const char *opt, const char *key, const char *v)
{
    char t[CTL_TIME_LEN];
    if (v == NULL)
        return 0;
    if (ctl_parse_time(c, opt, v, t) != 0)
        return -1;
    ctl_query_add(q, key, t);
    return 0;
}

/* The string o[key], or dflt. */
static const char *
text_or(const json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : dflt;
}

/* Replaces the real numbers under key in every object of items by text with `digits` decimals, for
 * tables (ctl_print_table shows reals with all their digits). */
static void
round_reals(json_t *items, const char *key, int digits)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *v = json_object_get(it, key);
        if (json_is_real(v)) {
            char buf[48];
            snprintf(buf, sizeof(buf), "%.*f", digits, json_real_value(v));
            json_object_set_new(it, key, json_string(buf));
        }
    }
}

static int
ctl_failures_show(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col vcols[] = {{"IMAGE_VERSION", "image_version", 0, CTL_COL_CUT},
                                           {"COUNT", "count", 0, 0},
                                           {"FIRST_SEEN", "first_seen", 0, 0},
                                           {"LAST_SEEN", "last_seen", 0, 0},
                                           {NULL, NULL, 0, 0}};
    static const struct ctl_col scols[] = {{"RECEIVED_AT", "received_at", 0, 0},
                                           {"DEVICE_ID", "device_id", 0, CTL_COL_HASH},
                                           {"REPORT_ID", "report_id", 0, CTL_COL_ID},
                                           {"VERSION", "image_version", 0, CTL_COL_CUT},
                                           {"LR", "lr", 0, 0},
                                           {"MESSAGE", "message", 50, CTL_COL_CUT},
                                           {NULL, NULL, 0, 0}};
    int64_t id;
    int ec;
    char path[64];
    json_t *o = NULL;
    if (ctl_args_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    snprintf(path, sizeof(path), "/v1/failures/buckets/%lld", (long long)id);
    int rc = ctl_request_object(c, "GET", path, NULL, &o);
    if (rc != CTL_EXIT_OK)
        return rc;
    int printed = ctl_print_data(c, o, NULL);
    if (printed == 0) {
        json_t *versions = json_incref(json_object_get(o, "versions"));
        json_t *samples = json_incref(json_object_get(o, "samples"));
        json_object_del(o, "versions");
        json_object_del(o, "samples");
        ctl_print_object(o);
        printf("\nversions:\n");
        ctl_print_table(c, versions, vcols);
        printf("\nsamples (newest first):\n");
        ctl_print_table(c, samples, scols);
        json_decref(versions);
        json_decref(samples);
    }
    json_decref(o);
    return ctl_print_exit(printed);
}

static int
ctl_failures_device(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"REPORT_ID", "report_id", 0, CTL_COL_ID},
                                          {"TYPE", "type", 0, 0},
                                          {"RECEIVED_AT", "received_at", 0, 0},
                                          {"UPTIME_S", "uptime_s", 0, 0},
                                          {"COMPONENT", "component", 20, CTL_COL_CUT},
                                          {"VERSION", "image_version", 0, CTL_COL_CUT},
                                          {"REASON", "reason", 0, CTL_COL_CUT},
                                          {"PC", "pc", 0, 0},
                                          {"BUCKET", "bucket_id", 0, 0},
                                          {"MESSAGE", "message", 40, CTL_COL_CUT},
                                          {NULL, NULL, 0, 0}};
    const char *type = NULL, *limit_s = NULL, *cursor = NULL;
    int all = 0;
    const struct ctl_opt opts[] = {{"--type", CTL_OPT_STR, &type, NULL},
                                   {"--limit", CTL_OPT_STR, &limit_s, NULL},
                                   {"--cursor", CTL_OPT_STR, &cursor, NULL},
                                   {"--all", CTL_OPT_FLAG, NULL, &all},
                                   {NULL, 0, NULL, NULL}};
    struct ctl_query q = {{0}, 0};
    char path[128];
    int64_t limit;
    int ec;
    json_t *first = NULL;
    if (ctl_args_device(c, argc, argv, opts, "/reports", path, sizeof(path), &ec) != 0)
        return ec;
    if (ctl_parse_limit(c, limit_s, &limit) != 0 || ctl_cursor_ok(c, cursor) != 0)
        return CTL_EXIT_USAGE;
    if (type != NULL) {
        if (proto_tel_type_parse(type, strlen(type)) < 0)
            return ctl_usage_error(c, "--type: expected crash, heartbeat or reboot");
        ctl_query_add(&q, "type", type);
    }
    if (!ctl_print_text_mode(c))
        return ctl_list_print(c, path, &q, limit, cursor, all, cols);
    /* the device's counters come with every page */
    char one[192];
    snprintf(one, sizeof(one), "%s?limit=1", path);
    int rc = ctl_request_object(c, "GET", one, NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = ctl_list_print(c, path, &q, limit, cursor, all, cols);
    if (rc == CTL_EXIT_OK) {
        const json_t *s = json_object_get(first, "summary");
        char *last = NULL;
        const json_t *lu = json_object_get(s, "last_upload");
        if (json_is_string(lu))
            last = strdup(json_string_value(lu));
        printf("\nreports stored: %lld, dropped on the device: %lld, last upload: %s\n",
               (long long)json_integer_value(json_object_get(s, "reports")),
               (long long)json_integer_value(json_object_get(s, "dropped")),
               last != NULL ? last : "-");
        free(last);
    }
    json_decref(first);
    return rc;
}

static int
ctl_failures_rates(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col vcols[] = {{"COMPONENT", "component", 24, CTL_COL_CUT},
                                           {"VERSION", "image_version", 0, CTL_COL_CUT},
                                           {"FIRST_SEEN", "first_seen", 0, 0},
                                           {"DEVICE_HOURS", "device_hours", 0, 0},
                                           {"CRASHES", "crashes", 0, 0},
                                           {"CRASHES_PER_HOUR", "crash_rate", 0, 0},
                                           {NULL, NULL, 0, 0}};
    static const struct ctl_col pcols[] = {{"PERIOD", "period_start", 0, 0},
                                           {"COMPONENT", "component", 24, CTL_COL_CUT},
                                           {"VERSION", "image_version", 0, CTL_COL_CUT},
                                           {"DEVICE_HOURS", "device_hours", 0, 0},
                                           {"CRASHES", "crashes", 0, 0},
                                           {"CRASHES_PER_HOUR", "crash_rate", 0, 0},
                                           {NULL, NULL, 0, 0}};
    const char *component = NULL, *since = NULL, *until = NULL, *gran = NULL;
    const struct ctl_opt opts[] = {{"--component", CTL_OPT_STR, &component, NULL},
                                   {"--since", CTL_OPT_STR, &since, NULL},
                                   {"--until", CTL_OPT_STR, &until, NULL},
                                   {"--granularity", CTL_OPT_STR, &gran, NULL},
                                   {NULL, 0, NULL, NULL}};
    struct ctl_query q = {{0}, 0};
    char path[PATH_LEN];
    json_t *o = NULL;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (component != NULL) {
        if (!ctl_component_ok(component))
            return ctl_usage_error(c, "--component: 1-64 characters of [a-z0-9._-]");
        ctl_query_add(&q, "component", component);
    }
    if (add_time(c, &q, "--since", "since", since) != 0 ||
        add_time(c, &q, "--until", "until", until) != 0)
        return CTL_EXIT_USAGE;
    if (gran != NULL) {
        if (strcmp(gran, "hour") != 0 && strcmp(gran, "day") != 0)
            return ctl_usage_error(c, "--granularity: expected hour or day");
        ctl_query_add(&q, "granularity", gran);
    }
    if (q.bad ||
        snprintf(path, sizeof(path), "/v1/failures/crash-rates%s", q.s) >= (int)sizeof(path))
        return ctl_usage_error(c, "arguments too long");
    int rc = ctl_request_object(c, "GET", path, NULL, &o);
    if (rc != CTL_EXIT_OK)
        return rc;
    int printed = ctl_print_data(c, o, NULL);
    if (printed == 0) {
        json_t *versions = json_object_get(o, "versions"), *items = json_object_get(o, "items");
        const json_t *fleet = json_object_get(o, "fleet");
        round_reals(versions, "device_hours", 1);
        round_reals(versions, "crash_rate", 4);
        round_reals(items, "device_hours", 1);
        round_reals(items, "crash_rate", 4);
        const char *gran_s = text_or(o, "granularity", "period");
        printf("%s to %s, by %s\n\nversions:\n", text_or(o, "since", "?"), text_or(o, "until", "?"),
               gran_s);
        ctl_print_table(c, versions, vcols);
        printf("\nper %s:\n", gran_s);
        ctl_print_table(c, items, pcols);
        double dh = json_number_value(json_object_get(fleet, "device_hours"));
        double free_h = json_number_value(json_object_get(fleet, "crash_free_device_hours"));
        printf("\nfleet: %.1f device-hours, %lld crashes, %.1f crash-free device-hours", dh,
               (long long)json_integer_value(json_object_get(fleet, "crashes")), free_h);
        if (dh > 0)
            printf(" (%.2f%%)", 100.0 * free_h / dh);
        printf("\n");
        if (json_is_true(json_object_get(o, "truncated")))
            printf("(truncated: narrow --since/--until or --component)\n");
    }
    json_decref(o);
    return ctl_print_exit(printed);
}

static int
ctl_failures_export(struct ctl *c, int argc, char **argv)
{
    const char *format = NULL, *since = NULL, *until = NULL;
    const struct ctl_opt opts[] = {{"--format", CTL_OPT_STR, &format, NULL},
                                   {"--since", CTL_OPT_STR, &since, NULL},
                                   {"--until", CTL_OPT_STR, &until, NULL},
                                   {NULL, 0, NULL, NULL}};
    struct ctl_query q = {{0}, 0};
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (format == NULL || (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0))
        return ctl_usage_error(c, "--format: expected csv or jsonl");
    ctl_query_add(&q, "format", format);
    if (add_time(c, &q, "--since", "since", since) != 0 ||
        add_time(c, &q, "--until", "until", until) != 0)
        return CTL_EXIT_USAGE;
    return ctl_download(c, "/v1/failures/export", &q);
}

const struct ctl_cmd cmd_failures_cmds[] = {
    {"failures", "buckets", ctl_res_list, 1,
     "[--component C] [--version V] [--product ID] [--group ID] [--since T] [--until T] "
     "[--sort count|devices|recent] [--limit N] [--cursor C] [--all]",
     "list crash buckets (failures grouped by signature)",
     "Lists the tenant's crash buckets: crashes with the same component, reason, pc and first "
     "three\n"
     "return addresses. Without filters (or with --component only) the figures are all-time; with\n"
     "--version, --product, --group, --since or --until they are counted over the stored reports\n"
     "that match (reports older than the retention are gone).\n"
     "\n"
     "Options:\n"
     "  --component C   only crashes of this component\n"
     "  --version V     only crashes of this image version\n"
     "  --product ID    only crashes of devices in this product\n"
     "  --group ID      only crashes of devices in this device group\n"
     "  --since T       received at or after T: RFC 3339 (2026-11-22T10:00:00Z, +01:00 offsets),\n"
     "                  a date (2026-11-22) or a time back from now (90s, 15m, 1h, 2d, 1w)\n"
     "  --until T       received before T\n"
     "  --sort S        count (most reports first, default), devices or recent\n"
     "  --limit N       page size, 1-1000\n"
     "  --cursor C      start at this cursor\n"
     "  --all           follow next_cursor to the last page\n",
     &buckets_res},
    {"failures", "show", ctl_failures_show, 1, "ID", "show a crash bucket",
     "Shows the bucket ID: its signature and figures, its counts per image version, and up to 10\n"
     "of its reports, newest first.\n",
     NULL},
    {"failures", "device", ctl_failures_device, 1,
     "ID [--type crash|heartbeat|reboot] [--limit N] [--cursor C] [--all]",
     "list a device's reports, newest first",
     "Lists the reports of the device ID (64 hex characters), newest first, one page (default "
     "100)\n"
     "unless --all, then its counters: reports stored, reports it dropped (queue full), last "
     "upload.\n"
     "\n"
     "Options:\n"
     "  --type T      crash, heartbeat or reboot\n"
     "  --limit N     page size, 1-1000\n"
     "  --cursor C    start at this cursor\n"
     "  --all         follow next_cursor to the last page\n",
     NULL},
    {"failures", "rates", ctl_failures_rates, 1,
     "[--component C] [--since T] [--until T] [--granularity hour|day]",
     "crash rates per image version (crashes per device-hour)",
     "Shows, for the window (default: the last 7 days), the device-hours, crashes and crash rate "
     "of\n"
     "every image version and of every version per hour or day, and the fleet's crash-free\n"
     "device-hours. Device-hours come from the devices' heartbeats.\n"
     "\n"
     "Options:\n"
     "  --component C     only this component\n"
     "  --since T         from T (RFC 3339, a date, or back from now: 1h, 2d)\n"
     "  --until T         to T (default now)\n"
     "  --granularity G   hour (windows up to 31 days) or day (default)\n",
     NULL},
    {"failures", "export", ctl_failures_export, 1, "--format csv|jsonl [--since T] [--until T]",
     "export every report (streamed to stdout)",
     "Writes the tenant's stored reports, in the order received, to stdout as CSV (a header line,\n"
     "then one line per report; columns in docs/api.md) or JSON lines. The export is streamed: "
     "use\n"
     "  aegisctl failures export --format csv > reports.csv\n"
     "\n"
     "Options:\n"
     "  --format F    csv or jsonl (required)\n"
     "  --since T     received at or after T (RFC 3339, a date, or back from now: 1h, 2d)\n"
     "  --until T     received before T\n",
     NULL},
    {"failures", "flags", ctl_res_list, 1, "[--limit N] [--cursor C] [--all]",
     "list emerging-problem flags, newest first",
     "Lists the flags raised by the service: new_bucket (a new crash bucket seen on more than\n"
     "flag_new_bucket_devices devices within its first hour) and rate_regression (an image "
     "version\n"
     "whose crash rate exceeds its predecessor's by flag_rate_factor_pct percent).\n",
     &flags_res},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
