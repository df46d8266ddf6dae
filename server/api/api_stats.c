/* api_stats: GET /v1/attestations/stats, /v1/devices/stats, /v1/failures/fleet and
 * /v1/failures/bucket-series (api_stats.h). */
#include "api_stats.h"

#include "api_util.h"
#include "app.h"
#include "store_stats.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define HOUR 3600
#define DAY 86400
#define STATS_DEFAULT_SPAN (7 * DAY)
#define STATS_HOURLY_SPAN_MAX (31 * DAY)
#define STATS_DAILY_SPAN_MAX (366 * DAY)
/* a certificate "expires soon" within this many seconds unless ?within= says otherwise */
#define CERT_WITHIN_DEFAULT (6 * HOUR)
#define CERT_LIST_DEFAULT 20
#define CERT_LIST_MAX 100
#define SERIES_IDS_MAX 100
#define SERIES_DAYS_DEFAULT 14
#define SERIES_DAYS_MAX 90

/* The window of a series: ?granularity=hour|day (default day), ?since= (default until - 7 days,
 * rounded down to the period) and ?until= (exclusive; default: the second after now). Whole periods
 * only, at most 31 days by hour and 366 by day. 0, or -1 with a 400 reply. */
static int
series_window(api_req *r, int64_t *since, int64_t *until, int64_t *step)
{
    const char *g = api_query(r, "granularity");
    int has_since, has_until;
    int64_t span_max = STATS_DAILY_SPAN_MAX;
    *step = DAY;
    if (g != NULL && strcmp(g, "hour") == 0) {
        *step = HOUR;
        span_max = STATS_HOURLY_SPAN_MAX;
    } else if (g != NULL && strcmp(g, "day") != 0) {
        api_error(r, 400, "bad_request", "granularity must be hour or day");
        return -1;
    }
    if ((has_since = api_query_time(r, "since", since)) < 0 ||
        (has_until = api_query_time(r, "until", until)) < 0)
        return -1;
    if (!has_until) /* up to now, this second included */
        *until = util_now() + 1;
    if (!has_since)
        *since = *until > STATS_DEFAULT_SPAN ? *until - STATS_DEFAULT_SPAN : 0;
    *since -= *since % *step;
    if (*since >= *until) {
        api_error(r, 400, "bad_request", "'since' must be before 'until'");
        return -1;
    }
    if (*until - *since > span_max) {
        api_error(r, 400, "bad_request", "the window is longer than %lld days for granularity %s",
                  (long long)(span_max / DAY), *step == HOUR ? "hour" : "day");
        return -1;
    }
    return 0;
}

/* Adds "granularity", "since" and "until" to o (a reply under construction): 0, or -1. */
static int
window_fields(json_t *o, int64_t since, int64_t until, int64_t step)
{
    char a[32], b[32];
    return json_object_set_new(o, "granularity", json_string(step == HOUR ? "hour" : "day")) |
           json_object_set_new(o, "since", json_string(util_rfc3339(since, a, sizeof(a)))) |
           json_object_set_new(o, "until", json_string(util_rfc3339(until, b, sizeof(b))));
}

/* Replies 200 with o (stolen) after window_fields, or the store's error. */
static void
reply_window(api_req *r, int rc, json_t *o, int64_t since, int64_t until, int64_t step,
             const char *what)
{
    if (rc == STORE_OK && window_fields(o, since, until, step) != 0) {
        json_decref(o);
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply_store(r, rc, 200, o, what);
}

void
api_attest_stats(api_req *r)
{
    int64_t since, until, step;
    json_t *out = NULL;
    if (series_window(r, &since, &until, &step) != 0)
        return;
    int rc = store_attest_stats(r->app->st, r->tenant_id, since, until, step, &out);
    reply_window(r, rc, out, since, until, step, "attestation stats");
}

void
api_fleet_series(api_req *r)
{
    int64_t since, until, step;
    json_t *items = NULL, *out = NULL;
    if (series_window(r, &since, &until, &step) != 0)
        return;
    int rc = store_fleet_series(r->app->st, r->tenant_id, since, until, step, &items);
    if (rc == STORE_OK && (out = json_pack("{s:o}", "items", items)) == NULL)
        rc = STORE_ERR;
    reply_window(r, rc, out, since, until, step, "fleet series");
}

void
api_device_stats(api_req *r)
{
    int64_t within = CERT_WITHIN_DEFAULT, limit = CERT_LIST_DEFAULT;
    json_t *out = NULL;
    if (api_query_i64(r, "within", 60, 366LL * DAY, &within) < 0 ||
        api_query_i64(r, "limit", 0, CERT_LIST_MAX, &limit) < 0)
        return;
    int64_t now = util_now();
    int rc = store_device_stats(r->app->st, r->tenant_id, now, within, (size_t)limit, &out);
    char at[32];
    if (rc == STORE_OK &&
        (json_object_set_new(out, "at", json_string(util_rfc3339(now, at, sizeof(at)))) |
         json_object_set_new(out, "within", json_integer(within))) != 0) {
        json_decref(out);
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply_store(r, rc, 200, out, "device stats");
}

void
api_bucket_series(api_req *r)
{
    const char *vals[SERIES_IDS_MAX + 1];
    int64_t ids[SERIES_IDS_MAX], days = SERIES_DAYS_DEFAULT;
    json_t *items = NULL;
    size_t n = api_query_all(r, "id", vals, SERIES_IDS_MAX);
    if (n == 0 || n > SERIES_IDS_MAX) {
        api_error(r, 400, "bad_request", "give 1 to %d bucket ids as ?id=", SERIES_IDS_MAX);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (util_parse_i64(vals[i], 1, INT64_MAX, &ids[i]) != 0) {
            api_error(r, 400, "bad_request", "a bucket id must be an integer from 1");
            return;
        }
    if (api_query_i64(r, "days", 1, SERIES_DAYS_MAX, &days) < 0)
        return;
    int64_t today = util_now() / DAY * DAY;
    int64_t since = today - (days - 1) * DAY;
    int rc = store_bucket_series(r->app->st, r->tenant_id, ids, n, since, (int)days, &items);
    json_t *out = NULL;
    char a[32];
    if (rc == STORE_OK &&
        (out = json_pack("{s:s, s:I, s:o}", "since", util_rfc3339(since, a, sizeof(a)), "days",
                         (json_int_t)days, "items", items)) == NULL)
        rc = STORE_ERR;
    api_reply_store(r, rc, 200, out, "bucket series");
}
