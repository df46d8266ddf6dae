/* REST handlers for failure reporting (docs/api.md "Failure reporting"): crash buckets, a device's
 * reports, crash rates, emerging-problem flags, and the streamed export of every report (CSV or
 * JSON lines) whose reader pulls EXPORT_PAGE rows at a time from the store, so an export of
 * millions of reports holds one page in memory. */
#include "api_handlers.h"
#include "app.h"
#include "api.h"
#include "api_util.h"
#include "proto_fields.h"
#include "proto_telemetry.h"
#include "store.h"
#include "util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR 3600
#define DAY 86400
#define RATES_DEFAULT_SPAN (7 * DAY)
#define RATES_HOURLY_SPAN_MAX (31 * DAY)
#define RATES_DAILY_SPAN_MAX (3660LL * DAY)
#define RATES_ITEMS_MAX 10000
#define EXPORT_PAGE 1000

/* --- query arguments --- */

/* ?since= and ?until=, each with whether it was given (an explicit 1970-01-01T00:00:00Z is a bound
 * like any other). */
struct window {
    int64_t since, until;
    int has_since, has_until;
};

/* The window of the query: since 0 and until INT64_MAX where absent. 0, or -1 with a 400 reply
 * when malformed or when both are given and since >= until. */
static int
query_window(api_req *r, struct window *w)
{
    w->since = 0;
    w->until = INT64_MAX;
    if ((w->has_since = api_query_time(r, "since", &w->since)) < 0 ||
        (w->has_until = api_query_time(r, "until", &w->until)) < 0)
        return -1;
    if (w->has_since && w->has_until && w->since >= w->until) {
        api_error(r, 400, "bad_request", "'since' must be before 'until'");
        return -1;
    }
    return 0;
}

/* ?component=: NULL when absent; -1 with a 400 reply when malformed. */
static int
query_component(api_req *r, const char **out)
{
    *out = api_query(r, "component");
    if (*out != NULL && !proto_component_ok(*out, strlen(*out))) {
        api_error(r, 400, "bad_request", "component must be 1 to 64 characters of [a-z0-9._-]");
        return -1;
    }
    return 0;
}

/* --- buckets --- */

void
api_failure_buckets(api_req *r)
{
    struct store_bucket_filter f;
    struct store_page pg;
    struct window w;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    const char *sort = api_query(r, "sort");

    memset(&f, 0, sizeof(f));
    if (query_component(r, &f.component) != 0 || query_window(r, &w) != 0 ||
        api_query_i64(r, "product_id", 1, INT64_MAX, &f.product_id) < 0 ||
        api_query_i64(r, "group_id", 1, INT64_MAX, &f.group_id) < 0 || api_page(r, &pg) != 0)
        return;
    f.since = w.since;
    f.until = w.until;
    f.image_version = api_query(r, "image_version");
    if (f.image_version != NULL && !proto_version_ok(f.image_version, strlen(f.image_version))) {
        api_error(r, 400, "bad_request",
                  "image_version must be 1 to 32 printable ASCII characters");
        return;
    }
    if (sort == NULL || strcmp(sort, "count") == 0) {
        f.sort = STORE_BUCKETS_BY_COUNT;
    } else if (strcmp(sort, "devices") == 0) {
        f.sort = STORE_BUCKETS_BY_DEVICES;
    } else if (strcmp(sort, "recent") == 0) {
        f.sort = STORE_BUCKETS_BY_RECENT;
    } else {
        api_error(r, 400, "bad_request", "sort must be count, devices or recent");
        return;
    }
    int rc = store_bucket_list(r->app->st, r->tenant_id, &f, &pg, &items, next);
    api_reply_list(r, rc, items, next, "bucket");
}

void
api_failure_bucket_get(api_req *r)
{
    int64_t id;
    json_t *obj = NULL;
    if (api_param_id(r, 0, "bucket", &id) != 0)
        return;
    int rc = store_bucket_get(r->app->st, r->tenant_id, id, &obj);
    api_reply_store(r, rc, 200, obj, "bucket");
}

/* --- a device's reports --- */

void
api_device_reports(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL, *summary = NULL, *page = NULL;
    const char *id, *type = api_query(r, "type");

    if (api_param_device(r, &id) != 0 || api_page(r, &pg) != 0)
        return;
    if (type != NULL && proto_tel_type_parse(type, strlen(type)) < 0) {
        api_error(r, 400, "bad_request", "type must be crash, heartbeat or reboot");
        return;
    }
    int rc = store_device_reports(r->app->st, r->tenant_id, id, type, &pg, &items, next);
    if (rc == STORE_OK)
        rc = store_device_telemetry(r->app->st, r->tenant_id, id, &summary);
    if (rc != STORE_OK) {
        api_store_error(r, rc, "device");
        goto out;
    }
    page = json_pack("{s:o, s:o, s:o}", "items", items, "next_cursor",
                     next[0] != '\0' ? json_string(next) : json_null(), "summary", summary);
    items = summary = NULL;
    api_reply_built(r, 200, page);
out:
    json_decref(items);
    json_decref(summary);
}

/* --- crash rates --- */

void
api_crash_rates(api_req *r)
{
    const char *component, *gran = api_query(r, "granularity");
    int64_t step = DAY, span_max = RATES_DAILY_SPAN_MAX;
    struct window w;
    json_t *out = NULL;
    char a[32], b[32];

    if (query_component(r, &component) != 0 || query_window(r, &w) != 0)
        return;
    if (gran != NULL && strcmp(gran, "hour") == 0) {
        step = HOUR;
        span_max = RATES_HOURLY_SPAN_MAX;
    } else if (gran != NULL && strcmp(gran, "day") != 0) {
        api_error(r, 400, "bad_request", "granularity must be hour or day");
        return;
    }
    int64_t until = w.has_until ? w.until : util_now();
    int64_t since =
        w.has_since ? w.since : (until > RATES_DEFAULT_SPAN ? until - RATES_DEFAULT_SPAN : 0);
    since -= since % step; /* whole periods */
    if (since >= until) {
        api_error(r, 400, "bad_request", "'since' must be before 'until'");
        return;
    }
    if (until - since > span_max) {
        api_error(r, 400, "bad_request", "the window is longer than %lld days for granularity %s",
                  (long long)(span_max / DAY), step == HOUR ? "hour" : "day");
        return;
    }
    int rc = store_crash_rates(r->app->st, r->tenant_id, component, since, until, step,
                               RATES_ITEMS_MAX, &out);
    if (rc == STORE_OK &&
        (json_object_set_new(out, "component", component ? json_string(component) : json_null()) ||
         json_object_set_new(out, "granularity", json_string(step == HOUR ? "hour" : "day")) ||
         json_object_set_new(out, "since", json_string(util_rfc3339(since, a, sizeof(a)))) ||
         json_object_set_new(out, "until", json_string(util_rfc3339(until, b, sizeof(b)))))) {
        json_decref(out);
        out = NULL;
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply_store(r, rc, 200, out, "crash rates");
}

/* --- flags --- */

void
api_failure_flags(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    if (api_page(r, &pg) != 0)
        return;
    int rc = store_flag_list(r->app->st, r->tenant_id, &pg, &items, next);
    api_reply_list(r, rc, items, next, "flag");
}

/* --- export --- */

/* CSV columns, in order (docs/api.md). */
static const char *const csv_columns[] = {
    "received_at",     "device_id",        "report_id", "type",      "boot_id",  "uptime_s",
    "component",       "image_version",    "reason",    "pc",        "lr",       "return_addresses",
    "fault_registers", "free_memory",      "message",   "bucket_id", "period_s", "images",
    "counters",        "previous_boot_id", NULL};

struct out {
    char *p;
    size_t len, cap;
    int oom;
};

static void
out_put(struct out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 64 * 1024;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *np = realloc(o->p, cap);
        if (np == NULL) {
            o->oom = 1;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF (quotes doubled). Device
 * texts are data, never formulas: a field starting with =, +, -, @, tab or CR gets a leading '
 * (OWASP), and control characters other than tab, CR and LF become U+FFFD. */
static void
csv_field(struct out *o, const char *s, size_t n)
{
    int quote = 0, formula = n > 0 && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (quote || formula)
        out_put(o, "\"", 1);
    if (formula)
        out_put(o, "'", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        size_t rl = 0;
        if (c == '"') {
            rep = "\"\"";
            rl = 2;
        } else if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f) {
            rep = "\xEF\xBF\xBD";
            rl = 3;
        }
        if (rep != NULL) {
            out_put(o, s + start, i - start);
            out_put(o, rep, rl);
            start = i + 1;
        }
    }
    out_put(o, s + start, n - start);
    if (quote || formula)
        out_put(o, "\"", 1);
}

/* The CSV text of a report field: strings as they are, numbers in decimal, arrays of strings joined
 * with spaces, objects as compact JSON, absent or null as an empty field. */
static void
csv_value(struct out *o, const json_t *v)
{
    char num[32];
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v)) {
        csv_field(o, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        out_put(o, num, (size_t)n);
    } else if (json_is_array(v)) {
        struct out tmp = {NULL, 0, 0, 0};
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            if (i > 0)
                out_put(&tmp, " ", 1);
            if (json_is_string(e))
                out_put(&tmp, json_string_value(e), json_string_length(e));
        }
        if (tmp.oom)
            o->oom = 1;
        else if (tmp.len > 0)
            csv_field(o, tmp.p, tmp.len);
        free(tmp.p);
    } else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        if (t == NULL)
            o->oom = 1;
        else
            csv_field(o, t, strlen(t));
        free(t);
    }
}

static void
csv_row(struct out *o, const json_t *report)
{
    for (size_t i = 0; csv_columns[i] != NULL; i++) {
        if (i > 0)
            out_put(o, ",", 1);
        csv_value(o, json_object_get(report, csv_columns[i]));
    }
    out_put(o, "\r\n", 2);
}

static void
jsonl_row(struct out *o, const json_t *report)
{
    char *t = json_dumps(report, JSON_COMPACT);
    if (t == NULL) {
        o->oom = 1;
        return;
    }
    out_put(o, t, strlen(t));
    out_put(o, "\n", 1);
    free(t);
}

/* The state of one export, owned by the response. */
struct export
{
    store *st;
    int64_t tenant_id, since, until;
    int64_t after_time, after_id; /* keyset of the last row fetched */
    int csv;
    int done; /* the store had no more rows */
    struct out buf;
    size_t off; /* bytes of buf already sent */
};

static void
export_free(void *ctx)
{
    struct export *e = ctx;
    if (e == NULL)
        return;
    free(e->buf.p);
    free(e);
}

/* Refills e->buf with the next page of rows (formatted). Returns 0, or -1 on a store error. */
static int
export_fill(struct export *e)
{
    json_t *items = NULL, *it;
    size_t i;
    e->buf.len = 0;
    e->off = 0;
    if (store_report_export(e->st, e->tenant_id, e->since, e->until, &e->after_time, &e->after_id,
                            EXPORT_PAGE, &items) != STORE_OK)
        return -1;
    json_array_foreach(items, i, it)
    {
        if (e->csv)
            csv_row(&e->buf, it);
        else
            jsonl_row(&e->buf, it);
    }
    if (json_array_size(items) < EXPORT_PAGE)
        e->done = 1;
    json_decref(items);
    return e->buf.oom ? -1 : 0;
}

static ssize_t
export_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    struct export *e = ctx;
    (void)pos;
    while (e->off == e->buf.len) {
        if (e->done)
            return API_STREAM_END;
        if (export_fill(e) != 0)
            return API_STREAM_ERROR;
    }
    size_t n = e->buf.len - e->off;
    if (n > max)
        n = max;
    memcpy(buf, e->buf.p + e->off, n);
    e->off += n;
    return (ssize_t)n;
}

void
api_failures_export(api_req *r)
{
    const char *format = api_query(r, "format");
    struct window w;
    struct export *e = NULL;

    if (format == NULL || (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)) {
        api_error(r, 400, "bad_request", "format must be csv or jsonl");
        return;
    }
    if (query_window(r, &w) != 0)
        return;
    if ((e = calloc(1, sizeof(*e))) == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    e->st = r->app->st;
    e->tenant_id = r->tenant_id;
    e->since = w.since;
    e->until = w.until;
    e->csv = strcmp(format, "csv") == 0;
    if (e->csv) {
        for (size_t i = 0; csv_columns[i] != NULL; i++) {
            if (i > 0)
                out_put(&e->buf, ",", 1);
            out_put(&e->buf, csv_columns[i], strlen(csv_columns[i]));
        }
        out_put(&e->buf, "\r\n", 2);
        if (e->buf.oom) {
            export_free(e);
            api_error(r, 500, "internal", "out of memory");
            return;
        }
    }
    api_reply_stream(r, 200, e->csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
                     export_read, export_free, e);
}
