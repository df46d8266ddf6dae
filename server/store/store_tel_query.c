/* store_tel_query: failure reporting's reads (store.h "failure reporting"; docs/api.md "Failure
 * reporting"): crash buckets, a device's reports, exports, crash rates, and the failure flags the
 * daemon's periodic job raises. Same rules as every store file (store_int.h): one pool connection
 * per call, values only bound. */
#include "store_tel.h"

#include "log.h"
#include "proto_fields.h"
#include "util.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES_MAX 10
#define CURSOR_PAIR_BUF 48

#define BUCKET_COLS                                                                                \
    "b.id, b.signature, b.component, b.reason, b.pc, b.frames, b.first_seen, s.last_seen, "        \
    "s.count, s.devices"
#define BUCKETS "failure_buckets b JOIN bucket_stats s ON s.bucket_id = b.id"
/* ?1 tenant, ?2 component or NULL, ?3 row limit, ?4 sort, ?5 ?6 the keyset (sort key, id). */
static const char SQL_BUCKET_LIST[] =
    "SELECT " BUCKET_COLS
    ", CASE ?4 WHEN 1 THEN s.devices WHEN 2 THEN s.last_seen ELSE s.count END "
    "AS k FROM " BUCKETS " WHERE b.tenant_id = ?1 AND (?2 IS NULL OR b.component = ?2) "
    "AND (k < ?5 OR (k = ?5 AND b.id > ?6)) ORDER BY k DESC, b.id LIMIT ?3";
/* As above over the stored reports that match: ?7 since, ?8 until, ?9 image version or NULL, ?10
 * product (0 = any), ?11 group (0 = any). */
static const char SQL_BUCKET_LIST_REPORTS[] =
    "SELECT b.id, b.signature, b.component, b.reason, b.pc, b.frames, min(r.received_at), "
    "max(r.received_at), count(*), count(DISTINCT r.device_id), "
    "CASE ?4 WHEN 1 THEN count(DISTINCT r.device_id) WHEN 2 THEN max(r.received_at) "
    "ELSE count(*) END AS k "
    "FROM telemetry_reports r JOIN failure_buckets b ON b.id = r.bucket_id "
    "WHERE r.tenant_id = ?1 AND r.received_at >= ?7 AND r.received_at < ?8 "
    "AND r.bucket_id IS NOT NULL AND (?2 IS NULL OR r.component = ?2) "
    "AND (?9 IS NULL OR r.image_version = ?9) AND (?10 = 0 OR r.product_id = ?10) "
    "AND (?11 = 0 OR r.group_id = ?11) "
    "GROUP BY b.id HAVING k < ?5 OR (k = ?5 AND b.id > ?6) ORDER BY k DESC, b.id LIMIT ?3";
static const char SQL_BUCKET_GET[] =
    "SELECT " BUCKET_COLS " FROM " BUCKETS " WHERE b.id = ?1 AND b.tenant_id = ?2";
static const char SQL_BUCKET_VERSIONS[] =
    "SELECT image_version, count, first_seen, last_seen FROM bucket_versions WHERE bucket_id = ?1 "
    "ORDER BY count DESC, image_version LIMIT 1000";

#define REPORT_COLS                                                                                \
    "id, device_id, report_id, type, boot_id, uptime_s, received_at, component, image_version, "   \
    "reason, pc, lr, return_addresses, fault_registers, free_memory, message, period_s, images, "  \
    "counters, previous_boot_id, bucket_id"
/* The bucket's ?2 newest reports: its samples chain from last_report back through prev_in_bucket,
 * ending at a report retention deleted. */
static const char SQL_BUCKET_SAMPLES[] =
    "WITH RECURSIVE chain(id, n) AS (SELECT last_report, 1 FROM bucket_stats WHERE bucket_id = ?1 "
    "UNION ALL SELECT r.prev_in_bucket, chain.n + 1 FROM chain JOIN telemetry_reports r "
    "ON r.id = chain.id WHERE chain.n < ?2 AND r.prev_in_bucket IS NOT NULL) "
    "SELECT " REPORT_COLS " FROM telemetry_reports WHERE id IN (SELECT id FROM chain) "
    "ORDER BY id DESC LIMIT ?2";
/* The tenant's registrations: its devices row, or its shadow (migration 0008). */
static const char SQL_TEL_DEVICE_VISIBLE[] =
    "SELECT 1 FROM devices WHERE id = ?1 AND "
    "(tenant_id = ?2 OR (tenant_id IS NULL AND registered_by = ?2)) "
    "UNION ALL SELECT 1 FROM device_shadows WHERE device_id = ?1 AND tenant_id = ?2";
/* ?1 device, ?2 tenant, ?3 before this report_id, ?4 type or NULL, ?5 row limit */
static const char SQL_DEVICE_REPORTS[] =
    "SELECT " REPORT_COLS " FROM telemetry_reports WHERE device_id = ?1 AND tenant_id = ?2 "
    "AND report_id < ?3 AND (?4 IS NULL OR type = ?4) ORDER BY report_id DESC LIMIT ?5";
static const char SQL_DEVICE_TELEMETRY[] =
    "SELECT dropped, reports, last_upload FROM telemetry_devices "
    "WHERE device_id = ?1 AND tenant_id = ?2";
static const char SQL_REPORT_EXPORT[] =
    "SELECT " REPORT_COLS " FROM telemetry_reports WHERE tenant_id = ?1 AND received_at >= ?2 "
    "AND received_at < ?3 AND (received_at, id) > (?4, ?5) ORDER BY received_at, id LIMIT ?6";

/* ?1 tenant, ?2 component or NULL, ?3 row limit, ?4 granularity, ?5 since, ?6 until */
static const char SQL_RATE_ITEMS[] =
    "SELECT component, image_version, (hour / ?4) * ?4 AS p, sum(device_seconds), sum(crashes) "
    "FROM telemetry_usage WHERE tenant_id = ?1 AND (?2 IS NULL OR component = ?2) "
    "AND hour >= ?5 AND hour < ?6 GROUP BY component, image_version, p "
    "ORDER BY p, component, image_version LIMIT ?3";
static const char SQL_RATE_VERSIONS[] =
    "SELECT u.component, u.image_version, v.first_seen, sum(u.device_seconds), sum(u.crashes) "
    "FROM telemetry_usage u LEFT JOIN telemetry_versions v ON v.tenant_id = u.tenant_id "
    "AND v.component = u.component AND v.image_version = u.image_version "
    "WHERE u.tenant_id = ?1 AND (?2 IS NULL OR u.component = ?2) AND u.hour >= ?5 "
    "AND u.hour < ?6 AND ?4 > 0 GROUP BY u.component, u.image_version "
    "ORDER BY u.component, v.first_seen, u.image_version LIMIT ?3";
static const char SQL_RATE_FLEET[] =
    "SELECT coalesce(sum(device_seconds), 0), coalesce(sum(crashes), 0), "
    "coalesce(sum(crash_hours), 0) FROM telemetry_fleet "
    "WHERE tenant_id = ?1 AND hour >= ?2 AND hour < ?3";

#define FLAG_COLS                                                                                  \
    "id, kind, created_at, bucket_id, component, image_version, previous_version, detail"
static const char SQL_FLAG_LIST[] = "SELECT " FLAG_COLS " FROM failure_flags "
                                    "WHERE tenant_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
static const char SQL_FLAG_NEW_BUCKETS[] =
    "INSERT OR IGNORE INTO failure_flags (tenant_id, kind, subject, bucket_id, component, "
    "image_version, previous_version, detail, created_at) "
    "SELECT b.tenant_id, 'new_bucket', CAST(b.id AS TEXT), b.id, b.component, NULL, NULL, "
    "json_object('devices_first_hour', s.devices_first_hour, 'threshold', ?2, 'reason', b.reason, "
    "'pc', b.pc, 'signature', b.signature), ?3 "
    "FROM " BUCKETS " WHERE b.first_seen >= ?1 AND s.devices_first_hour > ?2 ORDER BY b.id";
static const char SQL_FLAG_REGRESSIONS[] =
    "INSERT OR IGNORE INTO failure_flags (tenant_id, kind, subject, bucket_id, component, "
    "image_version, previous_version, detail, created_at) "
    "SELECT tenant_id, 'rate_regression', component || '@' || image_version, NULL, component, "
    "image_version, prev_version, "
    "json_object('crashes', crashes, 'device_hours', device_seconds / 3600.0, "
    "'crash_rate', crashes * 3600.0 / device_seconds, 'previous_crashes', prev_crashes, "
    "'previous_device_hours', prev_seconds / 3600.0, "
    "'previous_crash_rate', prev_crashes * 3600.0 / prev_seconds, 'factor_pct', ?1), ?3 "
    "FROM (SELECT tenant_id, component, image_version, device_seconds, crashes, "
    "lag(image_version) OVER w AS prev_version, lag(device_seconds) OVER w AS prev_seconds, "
    "lag(crashes) OVER w AS prev_crashes FROM telemetry_versions "
    "WINDOW w AS (PARTITION BY tenant_id, component ORDER BY first_seen, image_version)) "
    "WHERE prev_version IS NOT NULL AND device_seconds >= ?2 AND prev_seconds >= ?2 "
    "AND crashes > 0 AND crashes * 100.0 * prev_seconds > ?1 * 1.0 * max(prev_crashes, 1) * "
    "device_seconds "
    "ORDER BY tenant_id, component, image_version";

/* --- JSON of rows --- */

/* Column i, JSON text, parsed (NULL column: JSON null). NULL when out of memory or invalid. */
static json_t *
col_json(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t != NULL ? json_loads(t, JSON_REJECT_DUPLICATES, NULL) : NULL;
}

static json_t *
col_text_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : store__col_text(st, i);
}

/* BUCKET_COLS (first_seen and last_seen at 6 and 7, count and devices at 8 and 9) */
static json_t *
bucket_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I}", "id",
                     store__col_id(st, 0), "signature", store__col_text(st, 1), "component",
                     store__col_text(st, 2), "reason", store__col_text(st, 3), "pc",
                     store__col_text(st, 4), "frames", col_json(st, 5), "first_seen",
                     store__col_time(st, 6), "last_seen", store__col_time(st, 7), "count",
                     store__col_id(st, 8), "devices", store__col_id(st, 9));
}

/* Sets key to v (stolen); 0, or -1 when v is NULL (out of memory). */
static int
set(json_t *o, const char *key, json_t *v)
{
    return v == NULL || json_object_set_new(o, key, v) != 0 ? -1 : 0;
}

/* REPORT_COLS */
static json_t *
report_json(sqlite3_stmt *st)
{
    const char *type = (const char *)sqlite3_column_text(st, 3);
    json_t *o = json_pack("{s:I, s:o, s:I, s:o, s:o, s:I, s:o}", "id", store__col_id(st, 0),
                          "device_id", store__col_text(st, 1), "report_id", store__col_id(st, 2),
                          "type", store__col_text(st, 3), "boot_id", store__col_text(st, 4),
                          "uptime_s", store__col_id(st, 5), "received_at", store__col_time(st, 6));
    int bad = o == NULL || type == NULL;
    int t = bad ? -1 : proto_tel_type_parse(type, strlen(type));
    if (!bad && t == PROTO_TEL_CRASH) {
        const char *msg = (const char *)sqlite3_column_text(st, 15);
        bad = set(o, "component", store__col_text(st, 7)) ||
              set(o, "image_version", store__col_text(st, 8)) ||
              set(o, "reason", store__col_text(st, 9)) || set(o, "pc", store__col_text(st, 10)) ||
              set(o, "lr", store__col_text(st, 11)) ||
              set(o, "return_addresses", col_json(st, 12)) ||
              set(o, "fault_registers", col_json(st, 13)) ||
              set(o, "free_memory", store__col_int(st, 14)) ||
              set(o, "message",
                  msg != NULL ? json_stringn(msg, (size_t)sqlite3_column_bytes(st, 15))
                              : json_null()) ||
              set(o, "bucket_id", store__col_int(st, 20)) ||
              set(o, "period_s",
                  sqlite3_column_type(st, 16) == SQLITE_NULL ? json_null()
                                                             : store__col_int(st, 16)) ||
              set(o, "images", col_json(st, 17));
    } else if (!bad && t == PROTO_TEL_HEARTBEAT) {
        bad = set(o, "period_s", store__col_int(st, 16)) ||
              set(o, "free_memory", store__col_int(st, 14)) || set(o, "images", col_json(st, 17)) ||
              set(o, "counters", col_json(st, 18));
    } else if (!bad) {
        bad = set(o, "reason", col_text_or_null(st, 9)) ||
              set(o, "previous_boot_id", col_text_or_null(st, 19));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* FLAG_COLS */
static json_t *
flag_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "kind",
                     store__col_text(st, 1), "created_at", store__col_time(st, 2), "bucket_id",
                     store__col_int(st, 3), "component", store__col_text(st, 4), "image_version",
                     col_text_or_null(st, 5), "previous_version", col_text_or_null(st, 6), "detail",
                     col_json(st, 7));
}

/* --- Lists with their own cursors --- */

typedef void (*cursor_fn)(sqlite3_stmt *st, char *out, size_t len);

/* As store__collect, with the cursor of a row made by cursor. */
static int
collect(store *s, struct conn *c, sqlite3_stmt *st, int limit, store__row_json_fn row_json,
        cursor_fn cursor, json_t **items, char *next_cursor)
{
    char last[CURSOR_BUF] = "";
    json_t *arr = json_array();
    int rc = STORE_ERR, n = 0, step;

    next_cursor[0] = '\0';
    if (arr == NULL)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            memcpy(next_cursor, last, strlen(last) + 1);
            break;
        }
        json_t *row = row_json(st);
        if (row == NULL || json_array_append_new(arr, row) != 0) {
            log_error("msg=\"store: cannot build a JSON row (out of memory?)\"");
            goto out;
        }
        cursor(st, last, sizeof(last));
        n++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        store__db_error(s, c, "list");
        goto out;
    }
    *items = arr;
    arr = NULL;
    rc = STORE_OK;
out:
    json_decref(arr);
    return rc;
}

/* "<sort key>.<id>" of a bucket row (the key is the last column, 10). */
static void
bucket_cursor(sqlite3_stmt *st, char *out, size_t len)
{
    snprintf(out, len, "%lld.%lld", (long long)sqlite3_column_int64(st, 10),
             (long long)sqlite3_column_int64(st, 0));
}

/* The report_id of a report row. */
static void
report_cursor(sqlite3_stmt *st, char *out, size_t len)
{
    snprintf(out, len, "%lld", (long long)sqlite3_column_int64(st, 2));
}

/* Parses "<k>.<id>" (k may be negative? no: counts and times are >= 0). */
static int
pair_cursor(const char *cur, int64_t *k, int64_t *id)
{
    char a[CURSOR_PAIR_BUF];
    const char *dot = strchr(cur, '.');
    if (dot == NULL || (size_t)(dot - cur) >= sizeof(a))
        return STORE_INVALID;
    memcpy(a, cur, (size_t)(dot - cur));
    a[dot - cur] = '\0';
    if (util_parse_i64(a, 0, INT64_MAX, k) != 0 || util_parse_i64(dot + 1, 0, INT64_MAX, id) != 0)
        return STORE_INVALID;
    return STORE_OK;
}

/* --- Buckets --- */

int
store_bucket_list(store *s, int64_t tenant_id, const struct store_bucket_filter *f,
                  const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t k = INT64_MAX, after = 0;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || f == NULL || !store__page_ok(pg) ||
        (f->component != NULL && !store__tel_text_ok(f->component, proto_component_ok)) ||
        (f->image_version != NULL && !store__tel_text_ok(f->image_version, proto_version_ok)) ||
        f->product_id < 0 || f->group_id < 0 || f->since < 0 || f->until < 0 ||
        f->sort < STORE_BUCKETS_BY_COUNT || f->sort > STORE_BUCKETS_BY_RECENT)
        goto out;
    if (pg->cursor != NULL && (rc = pair_cursor(pg->cursor, &k, &after)) != STORE_OK)
        goto out;
    int scan = f->image_version != NULL || f->product_id > 0 || f->group_id > 0 || f->since > 0 ||
               f->until != INT64_MAX;
    c = store__take(s);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, scan ? SQL_BUCKET_LIST_REPORTS : SQL_BUCKET_LIST)) == NULL)
        goto out;
    int b = sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, f->component) |
            sqlite3_bind_int(st, 3, pg->limit + 1) | sqlite3_bind_int(st, 4, (int)f->sort) |
            sqlite3_bind_int64(st, 5, k) | sqlite3_bind_int64(st, 6, after);
    if (scan)
        b |= sqlite3_bind_int64(st, 7, f->since) | sqlite3_bind_int64(st, 8, f->until) |
             store__bind_text(st, 9, f->image_version) | sqlite3_bind_int64(st, 10, f->product_id) |
             sqlite3_bind_int64(st, 11, f->group_id);
    if ((rc = store__bound(s, c, b)) != STORE_OK)
        goto out;
    rc = collect(s, c, st, pg->limit, bucket_json, bucket_cursor, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

/* {"image_version", "count", "first_seen", "last_seen"} */
static json_t *
bucket_version_json(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:I, s:o, s:o}", "image_version", store__col_text(st, 0), "count",
                     store__col_id(st, 1), "first_seen", store__col_time(st, 2), "last_seen",
                     store__col_time(st, 3));
}

/* Runs st (bindings set) and returns its rows as a new array in *out. */
static int
rows(store *s, struct conn *c, sqlite3_stmt *st, store__row_json_fn row_json, json_t **out)
{
    char ignored[CURSOR_BUF];
    return store__collect(s, c, st, 0, row_json, out, ignored);
}

/* The rows of a statement whose ?1 is a bucket id (and ?2 a row limit when limit > 0), as a new
 * array. */
static int
bucket_rows(store *s, struct conn *c, const char *sql, int64_t id, int limit,
            store__row_json_fn row_json, json_t **out)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;
    if (st == NULL)
        return rc;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, id) |
                          (limit > 0 ? sqlite3_bind_int(st, 2, limit) : SQLITE_OK));
    if (rc == STORE_OK)
        rc = rows(s, c, st, row_json, out);
    sqlite3_reset(st);
    return rc;
}

int
store_bucket_get(store *s, int64_t tenant_id, int64_t id, json_t **out)
{
    struct conn *c = NULL;
    json_t *obj = NULL, *versions = NULL, *samples = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || id < 1)
        goto out;
    c = store__take(s);
    if ((rc = store__load_by_id(s, c, SQL_BUCKET_GET, id, tenant_id, bucket_json, &obj)) !=
            STORE_OK ||
        (rc = bucket_rows(s, c, SQL_BUCKET_VERSIONS, id, 0, bucket_version_json, &versions)) !=
            STORE_OK ||
        (rc = bucket_rows(s, c, SQL_BUCKET_SAMPLES, id, SAMPLES_MAX, report_json, &samples)) !=
            STORE_OK)
        goto out;
    /* json_object_set_new takes the value, even when it fails */
    int bad = json_object_set_new(obj, "versions", versions) != 0;
    bad |= json_object_set_new(obj, "samples", samples) != 0;
    versions = samples = NULL;
    if (bad) {
        rc = STORE_ERR;
        goto out;
    }
    *out = obj;
    obj = NULL;
out:
    json_decref(obj);
    json_decref(versions);
    json_decref(samples);
    store__give(s, c);
    return rc;
}

/* --- Reports --- */

int
store__device_visible(store *s, struct conn *c, int64_t tenant_id, const char *device_id)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TEL_DEVICE_VISIBLE);
    if (st == NULL)
        return STORE_ERR;
    int rc = store__bound(
        s, c, store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "device lookup");
    sqlite3_reset(st);
    return rc;
}

int
store_device_reports(store *s, int64_t tenant_id, const char *device_id, const char *type,
                     const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t before = INT64_MAX;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) ||
        !store__device_id_ok(device_id) ||
        (type != NULL && proto_tel_type_parse(type, strlen(type)) < 0))
        goto out;
    if ((rc = store__int_cursor(pg, INT64_MAX, &before)) != STORE_OK)
        goto out;
    c = store__take(s);
    if ((rc = store__device_visible(s, c, tenant_id, device_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_DEVICE_REPORTS)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id) |
                          sqlite3_bind_int64(st, 3, before) | store__bind_text(st, 4, type) |
                          sqlite3_bind_int(st, 5, pg->limit + 1));
    if (rc == STORE_OK)
        rc = collect(s, c, st, pg->limit, report_json, report_cursor, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

int
store__device_row(store *s, int64_t tenant_id, const char *device_id, const char *sql,
                  const char *what, json_t *(*row)(sqlite3_stmt *st), json_t *(*none)(void),
                  json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || !store__device_id_ok(device_id))
        goto out;
    c = store__take(s);
    if ((rc = store__device_visible(s, c, tenant_id, device_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, sql)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, what);
    if (rc == STORE_OK)
        *out = row(st);
    else if (rc == STORE_NOTFOUND)
        *out = none();
    else
        goto out;
    rc = *out != NULL ? STORE_OK : STORE_ERR;
out:
    if (st != NULL)
        sqlite3_reset(st);
    store__give(s, c);
    return rc;
}

static json_t *
telemetry_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:I, s:o}", "dropped", store__col_id(st, 0), "reports",
                     store__col_id(st, 1), "last_upload", store__col_time(st, 2));
}

static json_t *
telemetry_none(void)
{
    return json_pack("{s:i, s:i, s:n}", "dropped", 0, "reports", 0, "last_upload");
}

int
store_device_telemetry(store *s, int64_t tenant_id, const char *device_id, json_t **out)
{
    return store__device_row(s, tenant_id, device_id, SQL_DEVICE_TELEMETRY, "device telemetry",
                             telemetry_json, telemetry_none, out);
}

int
store_report_export(store *s, int64_t tenant_id, int64_t since, int64_t until, int64_t *after_time,
                    int64_t *after_id, int limit, json_t **items)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *arr = NULL;
    int rc = STORE_INVALID, step;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || after_time == NULL || after_id == NULL || limit < 1 || limit > PAGE_MAX ||
        since < 0 || until < since)
        goto out;
    c = store__take(s);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_REPORT_EXPORT)) == NULL || (arr = json_array()) == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, since) |
                               sqlite3_bind_int64(st, 3, until) |
                               sqlite3_bind_int64(st, 4, *after_time) |
                               sqlite3_bind_int64(st, 5, *after_id) |
                               sqlite3_bind_int(st, 6, limit))) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    int64_t t = *after_time, id = *after_id;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = report_json(st);
        if (row == NULL || json_array_append_new(arr, row) != 0)
            goto out;
        id = sqlite3_column_int64(st, 0);
        t = sqlite3_column_int64(st, 6);
    }
    if (step != SQLITE_DONE) {
        store__db_error(s, c, "report export");
        goto out;
    }
    *after_time = t;
    *after_id = id;
    *items = arr;
    arr = NULL;
    rc = STORE_OK;
out:
    json_decref(arr);
    store__give(s, c);
    return rc;
}

/* --- Crash rates --- */

static json_t *
hours(int64_t seconds)
{
    return json_real((double)seconds / STORE_TEL_HOUR);
}

static json_t *
rate(int64_t crashes, int64_t seconds)
{
    return seconds > 0 ? json_real((double)crashes * STORE_TEL_HOUR / (double)seconds)
                       : json_null();
}

/* SQL_RATE_ITEMS */
static json_t *
rate_item_json(sqlite3_stmt *st)
{
    int64_t secs = sqlite3_column_int64(st, 3), crashes = sqlite3_column_int64(st, 4);
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "component", store__col_text(st, 0),
                     "image_version", store__col_text(st, 1), "period_start",
                     store__col_time(st, 2), "device_hours", hours(secs), "crashes",
                     (json_int_t)crashes, "crash_rate", rate(crashes, secs));
}

/* SQL_RATE_VERSIONS */
static json_t *
rate_version_json(sqlite3_stmt *st)
{
    int64_t secs = sqlite3_column_int64(st, 3), crashes = sqlite3_column_int64(st, 4);
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "component", store__col_text(st, 0),
                     "image_version", store__col_text(st, 1), "first_seen", store__col_time(st, 2),
                     "device_hours", hours(secs), "crashes", (json_int_t)crashes, "crash_rate",
                     rate(crashes, secs));
}

/* Runs one of the rate statements (?1 tenant, ?2 component, ?3 limit, ?4 granularity, ?5 since, ?6
 * until) into *out; *more is set when a row beyond max was there. */
static int
rate_rows(store *s, struct conn *c, const char *sql, int64_t tenant_id, const char *component,
          int64_t granularity, int64_t since, int64_t until, int max, store__row_json_fn fn,
          json_t **out, int *more)
{
    char next[CURSOR_BUF];
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;
    if (st == NULL)
        goto out;
    rc =
        store__bound(s, c,
                     sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, component) |
                         sqlite3_bind_int(st, 3, max + 1) | sqlite3_bind_int64(st, 4, granularity) |
                         sqlite3_bind_int64(st, 5, since) | sqlite3_bind_int64(st, 6, until));
    if (rc == STORE_OK)
        rc = store__collect(s, c, st, max, fn, out, next);
    if (rc == STORE_OK && next[0] != '\0')
        *more = 1;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

int
store_crash_rates(store *s, int64_t tenant_id, const char *component, int64_t since, int64_t until,
                  int64_t granularity, int max_items, json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *items = NULL, *versions = NULL, *fleet = NULL;
    int rc = STORE_INVALID, more = 0;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || (component != NULL && !store__tel_text_ok(component, proto_component_ok)) ||
        since < 0 || until < since ||
        (granularity != STORE_TEL_HOUR && granularity != 24 * STORE_TEL_HOUR) || max_items < 1 ||
        max_items > 100000)
        goto out;
    c = store__take(s);
    if ((rc = rate_rows(s, c, SQL_RATE_ITEMS, tenant_id, component, granularity, since, until,
                        max_items, rate_item_json, &items, &more)) != STORE_OK ||
        (rc = rate_rows(s, c, SQL_RATE_VERSIONS, tenant_id, component, granularity, since, until,
                        max_items, rate_version_json, &versions, &more)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_RATE_FLEET)) == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, since) |
                               sqlite3_bind_int64(st, 3, until))) != STORE_OK ||
        (rc = store__step_row(s, c, st, "fleet hours")) != STORE_OK)
        goto out;
    int64_t secs = sqlite3_column_int64(st, 0), crashes = sqlite3_column_int64(st, 1),
            crash_hours = sqlite3_column_int64(st, 2);
    double free_hours = (double)secs / STORE_TEL_HOUR - (double)crash_hours;
    fleet = json_pack("{s:o, s:I, s:I, s:f}", "device_hours", hours(secs), "crashes",
                      (json_int_t)crashes, "crash_hours", (json_int_t)crash_hours,
                      "crash_free_device_hours", free_hours > 0 ? free_hours : 0.0);
    rc = STORE_ERR;
    if (fleet == NULL)
        goto out;
    *out = json_pack("{s:o, s:o, s:o, s:b}", "items", items, "versions", versions, "fleet", fleet,
                     "truncated", more);
    items = versions = fleet = NULL;
    if (*out != NULL)
        rc = STORE_OK;
out:
    json_decref(items);
    json_decref(versions);
    json_decref(fleet);
    store__give(s, c);
    return rc;
}

/* --- Flags --- */

int
store_flag_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                char *next_cursor)
{
    return store__list_newest(s, tenant_id, SQL_FLAG_LIST, pg, flag_json, items, next_cursor);
}

/* Runs a flag-raising statement (?1 ?2 its arguments, ?3 now) in its own transaction. */
static int
raise_flags(store *s, const char *sql, int64_t a1, int64_t a2, int64_t now, int *raised)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = NULL;
    int rc;

    *raised = 0;
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, sql)) == NULL)
        goto out;
    rc = store__tel_run_write(s, c, st,
                              sqlite3_bind_int64(st, 1, a1) | sqlite3_bind_int64(st, 2, a2) |
                                  sqlite3_bind_int64(st, 3, now),
                              "flag detection");
    if (rc == STORE_OK)
        *raised = sqlite3_changes(c->db);
out:
    rc = store__end_tx(s, c, rc);
    if (rc != STORE_OK)
        *raised = 0;
    store__give(s, c);
    return rc;
}

int
store_flag_new_buckets(store *s, int64_t since, int64_t min_devices, int64_t now, int *raised)
{
    int ignored;
    if (raised == NULL)
        raised = &ignored;
    *raised = 0;
    if (since < 0 || min_devices < 0)
        return STORE_INVALID;
    return raise_flags(s, SQL_FLAG_NEW_BUCKETS, since, min_devices, now, raised);
}

int
store_flag_rate_regressions(store *s, int64_t factor_pct, int64_t min_device_seconds, int64_t now,
                            int *raised)
{
    int ignored;
    if (raised == NULL)
        raised = &ignored;
    *raised = 0;
    if (factor_pct < 100 || min_device_seconds < 1)
        return STORE_INVALID;
    return raise_flags(s, SQL_FLAG_REGRESSIONS, factor_pct, min_device_seconds, now, raised);
}
