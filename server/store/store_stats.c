/* store_stats: the dashboard's figures (store_stats.h). */
#include "store_stats.h"
#include "store_int.h"

#include "util.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_ATTEST_STATS[] =
    "SELECT (created_at / ?4) * ?4 AS p, result, reason, count(*) FROM attestations "
    "WHERE tenant_id = ?1 AND created_at >= ?2 AND created_at < ?3 GROUP BY p, result, reason";
/* A tenant sees the devices rows it owns or imported unclaimed, and its shadows (store_devices.c).
 */
static const char SQL_DEVICE_STATES[] =
    "SELECT (SELECT count(*) FROM devices WHERE tenant_id IS NULL AND registered_by = ?1) + "
    "(SELECT count(*) FROM device_shadows WHERE tenant_id = ?1 AND claimed_at IS NULL), "
    "(SELECT count(*) FROM devices WHERE tenant_id = ?1 AND blocked = 0) + "
    "(SELECT count(*) FROM device_shadows WHERE tenant_id = ?1 AND claimed_at IS NOT NULL AND "
    "blocked = 0), "
    "(SELECT count(*) FROM devices WHERE tenant_id = ?1 AND blocked = 1) + "
    "(SELECT count(*) FROM device_shadows WHERE tenant_id = ?1 AND claimed_at IS NOT NULL AND "
    "blocked = 1)";
/* Only the owner's devices row has attestations (a shadow's device never authenticates to it).
 * The certificate is the device's current one (store_device_certificate): one seek per device in
 * attestations_passed (migration 0016; the planner took attestations_by_result before, which walks
 * every passed record of the tenant for each device). */
static const char SQL_DEVICE_CERTS[] =
    "SELECT d.id, d.blocked, d.attest_result, (SELECT a.cert_not_after FROM attestations a "
    "INDEXED BY attestations_passed WHERE a.tenant_id = ?1 AND a.device_id = d.id AND "
    "a.result = 'pass' AND a.created_at >= d.claimed_at ORDER BY a.id DESC LIMIT 1) "
    "FROM devices d WHERE d.tenant_id = ?1";
static const char SQL_FLEET_SERIES[] =
    "SELECT (hour / ?4) * ?4 AS p, sum(device_seconds), sum(crashes), sum(crash_hours) "
    "FROM telemetry_fleet WHERE tenant_id = ?1 AND hour >= ?2 AND hour < ?3 GROUP BY p";
static const char SQL_BUCKETS_OWNED[] =
    "SELECT b.id FROM json_each(?2) j JOIN failure_buckets b ON b.id = j.value "
    "WHERE b.tenant_id = ?1 ORDER BY j.key";
/* Each bucket's window in telemetry_reports_crash_days (migration 0016): the planner would take
 * the index by tenant and time otherwise, which reads every report of the window. */
static const char SQL_BUCKET_DAILY[] =
    "SELECT r.bucket_id, (r.received_at - ?3) / 86400, count(*) FROM json_each(?2) j "
    "JOIN telemetry_reports r INDEXED BY telemetry_reports_crash_days ON r.bucket_id = j.value "
    "WHERE r.bucket_id IS NOT NULL AND r.received_at >= ?3 AND r.received_at < ?4 "
    "AND r.tenant_id = ?1 GROUP BY 1, 2";
static const char SQL_BUCKET_VERSIONS[] =
    "SELECT v.bucket_id, v.image_version, v.count FROM bucket_versions v "
    "JOIN failure_buckets b ON b.id = v.bucket_id "
    "WHERE b.tenant_id = ?1 AND v.bucket_id IN (SELECT value FROM json_each(?2)) "
    "ORDER BY v.bucket_id, v.count DESC, v.image_version";

/* Steps st (bound) through its rows, handing each to row; STORE_OK at the end. */
static int
each_row(store *s, struct conn *c, sqlite3_stmt *st, const char *what,
         int (*row)(sqlite3_stmt *st, void *ctx), void *ctx)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (row(st, ctx) != 0)
            return STORE_ERR;
    if (rc != SQLITE_DONE)
        return store__db_error(s, c, what);
    return STORE_OK;
}

/* An array of n objects made by mk(i). NULL when out of memory. */
static json_t *
periods_new(size_t n, int64_t since, int64_t step, json_t *(*mk)(int64_t start))
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        if (json_array_append_new(a, mk(since + (int64_t)i * step)) != 0) {
            json_decref(a);
            a = NULL;
        }
    return a;
}

static json_t *
time_json(int64_t t)
{
    char buf[32];
    return json_string(util_rfc3339(t, buf, sizeof(buf)));
}

/* --- attestations by period --- */

static json_t *
attest_period(int64_t start)
{
    return json_pack("{s:o, s:I, s:I, s:{}}", "period_start", time_json(start), "pass",
                     (json_int_t)0, "fail", (json_int_t)0, "reasons");
}

struct attest_acc {
    json_t *items, *totals;
    int64_t since, step;
};

/* Adds n to the integer key of o (created at 0). */
static int
add_count(json_t *o, const char *key, json_int_t n)
{
    json_t *v = json_object_get(o, key);
    return json_object_set_new(o, key, json_integer((v ? json_integer_value(v) : 0) + n));
}

static int
attest_row(sqlite3_stmt *st, void *ctx)
{
    struct attest_acc *a = ctx;
    int64_t p = sqlite3_column_int64(st, 0);
    const char *result = (const char *)sqlite3_column_text(st, 1);
    const char *reason = (const char *)sqlite3_column_text(st, 2);
    json_int_t n = sqlite3_column_int64(st, 3);
    json_t *item = json_array_get(a->items, (size_t)((p - a->since) / a->step));
    if (item == NULL || result == NULL)
        return -1;
    json_t *targets[2] = {item, a->totals};
    for (int i = 0; i < 2; i++) {
        if (add_count(targets[i], result, n) != 0)
            return -1;
        if (reason != NULL && add_count(json_object_get(targets[i], "reasons"), reason, n) != 0)
            return -1;
    }
    return 0;
}

int
store_attest_stats(store *s, int64_t tenant_id, int64_t since, int64_t until, int64_t step,
                   json_t **out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_ATTEST_STATS);
    struct attest_acc a = {NULL, NULL, since, step};
    int rc = STORE_ERR;

    assert(step > 0 && since % step == 0 && until > since);
    *out = NULL;
    a.items = periods_new((size_t)((until - since + step - 1) / step), since, step, attest_period);
    a.totals = attest_period(0);
    if (st == NULL || a.items == NULL || a.totals == NULL)
        goto out;
    json_object_del(a.totals, "period_start");
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, since) |
                          sqlite3_bind_int64(st, 3, until) | sqlite3_bind_int64(st, 4, step));
    if (rc == STORE_OK)
        rc = each_row(s, c, st, "attestation stats", attest_row, &a);
    if (rc == STORE_OK &&
        (*out = json_pack("{s:O, s:O}", "items", a.items, "totals", a.totals)) == NULL)
        rc = STORE_ERR;
out:
    json_decref(a.items);
    json_decref(a.totals);
    store__give(s, c);
    return rc;
}

/* --- devices and certificates --- */

struct cert_acc {
    int64_t now, within;
    size_t max;
    json_int_t pass, fail, never, valid, expiring, expired, none;
    json_t *soonest; /* [{"device_id", "not_after"}], at most max, soonest first */
    int64_t *at;     /* their not_after, in the same order */
};

/* Keeps the max soonest certificates: an insertion into the sorted short list. */
static int
cert_keep(struct cert_acc *a, const char *id, int64_t na)
{
    size_t n = json_array_size(a->soonest);
    if (a->max == 0 || (n == a->max && na >= a->at[n - 1]))
        return 0;
    if (n == a->max)
        json_array_remove(a->soonest, --n);
    size_t i = n;
    while (i > 0 && a->at[i - 1] > na) {
        a->at[i] = a->at[i - 1];
        i--;
    }
    a->at[i] = na;
    return json_array_insert_new(
        a->soonest, i, json_pack("{s:s, s:o}", "device_id", id, "not_after", time_json(na)));
}

static int
cert_row(sqlite3_stmt *st, void *ctx)
{
    struct cert_acc *a = ctx;
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *res = (const char *)sqlite3_column_text(st, 2);
    if (id == NULL)
        return -1;
    if (res == NULL)
        a->never++;
    else if (strcmp(res, "pass") == 0)
        a->pass++;
    else
        a->fail++;
    if (sqlite3_column_int(st, 1) != 0) /* blocked: no certificate of it works */
        return 0;
    if (sqlite3_column_type(st, 3) == SQLITE_NULL) {
        a->none++;
        return 0;
    }
    int64_t na = sqlite3_column_int64(st, 3);
    if (na <= a->now)
        a->expired++;
    else if (na <= a->now + a->within)
        a->expiring++;
    else {
        a->valid++;
        return 0;
    }
    return cert_keep(a, id, na);
}

int
store_device_stats(store *s, int64_t tenant_id, int64_t now, int64_t within, size_t max,
                   json_t **out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_STATES);
    struct cert_acc a;
    json_int_t states[3] = {0, 0, 0};
    int rc = STORE_ERR;

    *out = NULL;
    memset(&a, 0, sizeof(a));
    a.now = now;
    a.within = within;
    a.max = max;
    a.soonest = json_array();
    a.at = calloc(max + 1, sizeof(*a.at));
    if (st == NULL || a.soonest == NULL || a.at == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id))) != STORE_OK ||
        (rc = store__step_row(s, c, st, "device states")) != STORE_OK)
        goto out;
    for (int i = 0; i < 3; i++)
        states[i] = sqlite3_column_int64(st, i);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_DEVICE_CERTS)) == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id));
    if (rc == STORE_OK)
        rc = each_row(s, c, st, "device certificates", cert_row, &a);
    if (rc != STORE_OK)
        goto out;
    *out = json_pack("{s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, s:O}",
                     "states", "unclaimed", states[0], "active", states[1], "blocked", states[2],
                     "attestation", "pass", a.pass, "fail", a.fail, "never", a.never,
                     "certificates", "valid", a.valid, "expiring", a.expiring, "expired", a.expired,
                     "none", a.none, "expiring", a.soonest);
    if (*out == NULL)
        rc = STORE_ERR;
out:
    json_decref(a.soonest);
    free(a.at);
    store__give(s, c);
    return rc;
}

/* --- the fleet's crash-free hours by period --- */

static json_t *
fleet_period(int64_t start)
{
    return json_pack("{s:o, s:f, s:I, s:I, s:f}", "period_start", time_json(start), "device_hours",
                     0.0, "crashes", (json_int_t)0, "crash_hours", (json_int_t)0,
                     "crash_free_device_hours", 0.0);
}

struct fleet_acc {
    json_t *items;
    int64_t since, step;
};

static int
fleet_row(sqlite3_stmt *st, void *ctx)
{
    struct fleet_acc *a = ctx;
    json_t *item =
        json_array_get(a->items, (size_t)((sqlite3_column_int64(st, 0) - a->since) / a->step));
    double hours = (double)sqlite3_column_int64(st, 1) / 3600.0;
    json_int_t crash_hours = sqlite3_column_int64(st, 3);
    double free_hours = hours - (double)crash_hours;
    if (item == NULL)
        return -1;
    /* As GET /v1/failures/crash-rates' fleet figures: never below 0 (crash hours are counted by
     * the hour a crash arrived, device-hours by heartbeats, so they may disagree). */
    return json_object_set_new(item, "device_hours", json_real(hours)) |
           json_object_set_new(item, "crashes", json_integer(sqlite3_column_int64(st, 2))) |
           json_object_set_new(item, "crash_hours", json_integer(crash_hours)) |
           json_object_set_new(item, "crash_free_device_hours",
                               json_real(free_hours > 0 ? free_hours : 0.0));
}

int
store_fleet_series(store *s, int64_t tenant_id, int64_t since, int64_t until, int64_t step,
                   json_t **out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_FLEET_SERIES);
    struct fleet_acc a = {NULL, since, step};
    int rc = STORE_ERR;

    assert(step > 0 && since % step == 0 && until > since);
    *out = NULL;
    a.items = periods_new((size_t)((until - since + step - 1) / step), since, step, fleet_period);
    if (st == NULL || a.items == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, since) |
                          sqlite3_bind_int64(st, 3, until) | sqlite3_bind_int64(st, 4, step));
    if (rc == STORE_OK)
        rc = each_row(s, c, st, "fleet series", fleet_row, &a);
    if (rc == STORE_OK) {
        *out = a.items;
        a.items = NULL;
    }
out:
    json_decref(a.items);
    store__give(s, c);
    return rc;
}

/* --- per-bucket series --- */

/* The bucket object of id in items (made with store_bucket_series' shape), or NULL. */
static json_t *
bucket_item(json_t *items, int64_t id)
{
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o)
    {
        if (json_integer_value(json_object_get(o, "bucket_id")) == id)
            return o;
    }
    return NULL;
}

struct bucket_acc {
    json_t *items;
    int days;
};

static int
bucket_owned_row(sqlite3_stmt *st, void *ctx)
{
    struct bucket_acc *a = ctx;
    json_t *daily = json_array();
    for (int d = 0; daily != NULL && d < a->days; d++)
        if (json_array_append_new(daily, json_integer(0)) != 0)
            return -1;
    return json_array_append_new(a->items, json_pack("{s:I, s:o, s:[]}", "bucket_id",
                                                     (json_int_t)sqlite3_column_int64(st, 0),
                                                     "daily", daily, "versions"));
}

static int
bucket_daily_row(sqlite3_stmt *st, void *ctx)
{
    struct bucket_acc *a = ctx;
    json_t *o = bucket_item(a->items, sqlite3_column_int64(st, 0));
    int64_t day = sqlite3_column_int64(st, 1);
    if (o == NULL || day < 0 || day >= a->days)
        return 0; /* another tenant's (none: the query is the tenant's) or out of range */
    return json_array_set_new(json_object_get(o, "daily"), (size_t)day,
                              json_integer(sqlite3_column_int64(st, 2)));
}

static int
bucket_version_row(sqlite3_stmt *st, void *ctx)
{
    struct bucket_acc *a = ctx;
    json_t *o = bucket_item(a->items, sqlite3_column_int64(st, 0));
    const char *v = (const char *)sqlite3_column_text(st, 1);
    if (o == NULL || v == NULL)
        return 0;
    return json_array_append_new(json_object_get(o, "versions"),
                                 json_pack("{s:s, s:I}", "image_version", v, "count",
                                           (json_int_t)sqlite3_column_int64(st, 2)));
}

int
store_bucket_series(store *s, int64_t tenant_id, const int64_t *ids, size_t n, int64_t since,
                    int days, json_t **out)
{
    static const char *const sql[3] = {SQL_BUCKETS_OWNED, SQL_BUCKET_DAILY, SQL_BUCKET_VERSIONS};
    static int (*const rows[3])(sqlite3_stmt *, void *) = {bucket_owned_row, bucket_daily_row,
                                                           bucket_version_row};
    struct conn *c = store__take(s);
    struct bucket_acc a = {json_array(), days};
    json_t *idl = json_array();
    char *idtext = NULL;
    int rc = STORE_ERR;

    assert(days > 0);
    *out = NULL;
    for (size_t i = 0; idl != NULL && i < n; i++)
        if (json_array_append_new(idl, json_integer(ids[i])) != 0)
            goto out;
    if (a.items == NULL || idl == NULL || (idtext = json_dumps(idl, JSON_COMPACT)) == NULL)
        goto out;
    for (int q = 0; q < 3; q++) {
        sqlite3_stmt *st = store__prep(s, c, sql[q]);
        rc = STORE_ERR;
        if (st == NULL)
            goto out;
        rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, tenant_id) |
                              sqlite3_bind_text(st, 2, idtext, -1, SQLITE_STATIC) |
                              (q == 1 ? sqlite3_bind_int64(st, 3, since) |
                                            sqlite3_bind_int64(st, 4, since + 86400LL * days)
                                      : SQLITE_OK));
        if (rc == STORE_OK)
            rc = each_row(s, c, st, "bucket series", rows[q], &a);
        if (rc != STORE_OK)
            goto out;
    }
    *out = a.items;
    a.items = NULL;
out:
    json_decref(a.items);
    json_decref(idl);
    free(idtext);
    store__give(s, c);
    return rc;
}
