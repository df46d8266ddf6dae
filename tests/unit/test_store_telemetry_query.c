/* Unit tests of the telemetry store's reads (server/store/store_tel_query.c): bucket samples (and
 * migration 4, which made them), aggregates and crash rates, bucket lists with their sorts,
 * filters and pages, tenant isolation, exports, a device's reports, and the failure flags. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_telemetry_fx.h"

/* The ids of the samples of the bucket at the top of the list, newest first, into ids. */
static size_t
top_samples(struct fx *f, int64_t *ids, size_t max)
{
    char next[CURSOR_BUF];
    struct store_bucket_filter flt = {.until = INT64_MAX};
    json_t *b = NULL, *items = bucket_list(f, f->ta, &flt, 1, NULL, next);
    assert_int_equal(store_bucket_get(f->s, f->ta, jint(json_array_get(items, 0), "id"), &b),
                     STORE_OK);
    json_t *samples = json_object_get(b, "samples");
    size_t n = json_array_size(samples);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++)
        ids[i] = jint(json_array_get(samples, i), "report_id");
    json_decref(b);
    json_decref(items);
    return n;
}

/* A bucket's samples are its 10 newest stored reports, newest first, across groups; reports
 * deleted by retention drop out. */
static void
test_bucket_samples(void **state)
{
    struct fx *f = *state;
    int64_t ids[16];
    int purged = 0;
    for (int i = 0; i < 12; i++)
        mk_crash(f, i, D1, i + 1, "1.0", "0x10");
    ingest(f, 12, T0);
    assert_int_equal(top_samples(f, ids, 16), 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ids[i], 12 - i);
    mk_crash(f, 0, D2, 1, "1.0", "0x10");
    mk_crash(f, 1, D1, 13, "1.0", "0x20"); /* another bucket */
    mk_crash(f, 2, D1, 14, "1.0", "0x10");
    ingest(f, 3, T0 + 86400);
    assert_int_equal(top_samples(f, ids, 16), 10);
    assert_int_equal(ids[0], 14);
    assert_int_equal(ids[1], 1); /* D2's report 1 */
    for (int i = 2; i < 10; i++)
        assert_int_equal(ids[i], 14 - i);
    /* retention deletes the 12 reports of T0: the two newer samples stay */
    assert_int_equal(store_report_purge(f->s, T0 + 1, 1000, &purged), STORE_OK);
    assert_int_equal(purged, 12);
    assert_int_equal(top_samples(f, ids, 16), 2);
    assert_int_equal(ids[0], 14);
    assert_int_equal(ids[1], 1);
}

static void
exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg != NULL ? msg : "?");
}

/* Migration 4 on a database of version 3 with reports: the bucket keeps its counters and its 10
 * newest reports are its samples, and the two report indexes it replaces are gone. */
static void
test_migration_4_backfills_samples(void **state)
{
    (void)state;
    char dir[] = "/tmp/aegis-mig4-XXXXXX", path[64], sql[1024], err[256] = "";
    sqlite3 *db = NULL;
    store *s = NULL;
    int applied = 0;
    json_t *b = NULL;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/aegis.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode=WAL");
    exec_ok(db, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (int i = 0; i < schema_migration_count && schema_migrations[i].version <= 3; i++) {
        exec_ok(db, schema_migrations[i].sql);
        snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations VALUES (%d, '%s', 1)",
                 schema_migrations[i].version, schema_migrations[i].name);
        exec_ok(db, sql);
    }
    exec_ok(db, "INSERT INTO tenants (id, name, created_at) VALUES (1, 'acme', 1)");
    exec_ok(db, "INSERT INTO devices (id, public_key_pem, registered_by, tenant_id, created_at, "
                "claimed_at, updated_at) VALUES ('" D1 "', 'k', 1, 1, 1, 1, 1)");
    exec_ok(db, "INSERT INTO failure_buckets (id, tenant_id, signature, component, reason, pc, "
                "first_seen, last_seen, count, devices) VALUES (1, 1, printf('%064d', 0), "
                "'aegis-app', 'hardfault', '0x10', 1, 12, 12, 1)");
    for (int i = 1; i <= 12; i++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO telemetry_reports (tenant_id, device_id, report_id, type, boot_id, "
                 "uptime_s, component, image_version, reason, pc, lr, return_addresses, "
                 "fault_registers, free_memory, received_at, bucket_id) VALUES "
                 "(1, '" D1 "', %d, 'crash', '" BOOT "', 1, 'aegis-app', '1.0', 'hardfault', "
                 "'0x10', '0x1', '[]', '{}', 1, %d, 1)",
                 i, i);
        exec_ok(db, sql);
    }
    sqlite3_close(db);

    assert_int_equal(store_open(path, 2, &s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_migrate(s, &applied, err, sizeof(err)), STORE_OK);
    assert_true(applied >= 1);
    assert_int_equal(store_bucket_get(s, 1, 1, &b), STORE_OK);
    assert_int_equal(jint(b, "count"), 12); /* the counters moved to bucket_stats */
    assert_int_equal(jint(b, "devices"), 1);
    json_t *samples = json_object_get(b, "samples");
    assert_int_equal(json_array_size(samples), 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(jint(json_array_get(samples, i), "report_id"), 12 - (int64_t)i);
    json_decref(b);
    assert_int_equal(store_error_count(s), 0);
    store_close(s);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_schema WHERE name IN "
                           "('telemetry_reports_by_bucket', 'telemetry_reports_by_age')",
                           -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    test_rm_db(path, dir);
}

static void
test_aggregates_and_rates(void **state)
{
    struct fx *f = *state;
    json_t *out = NULL, *b = NULL;
    char next[CURSOR_BUF];
    struct store_bucket_filter flt = {.until = INT64_MAX};
    /* hour 0: D1 and D2 run 1.0 for an hour each; D1 crashes twice, D2 once (same bucket) */
    mk_heartbeat(f, 0, D1, 1, "1.0", 3600);
    mk_heartbeat(f, 1, D2, 1, "1.0", 3600);
    mk_crash(f, 2, D1, 2, "1.0", "0x10");
    mk_crash(f, 3, D1, 3, "1.0", "0x10");
    mk_crash(f, 4, D2, 2, "1.0", "0x10");
    ingest(f, 5, T0 + 10);
    /* hour 1: D1 runs 2.0 for half an hour and crashes once */
    mk_heartbeat(f, 0, D1, 4, "2.0", 1800);
    mk_crash(f, 1, D1, 5, "2.0", "0x10");
    ingest(f, 2, T0 + 3600 + 10);

    json_t *items = bucket_list(f, f->ta, &flt, 10, NULL, next);
    assert_int_equal(json_array_size(items), 1);
    json_t *top = json_array_get(items, 0);
    assert_int_equal(jint(top, "count"), 4);
    assert_int_equal(jint(top, "devices"), 2);
    assert_int_equal(store_bucket_get(f->s, f->ta, jint(top, "id"), &b), STORE_OK);
    json_t *versions = json_object_get(b, "versions");
    assert_int_equal(json_array_size(versions), 2);
    assert_string_equal(jstr(json_array_get(versions, 0), "image_version"), "1.0");
    assert_int_equal(jint(json_array_get(versions, 0), "count"), 3);
    assert_int_equal(jint(json_array_get(versions, 1), "count"), 1);
    json_t *samples = json_object_get(b, "samples");
    assert_int_equal(json_array_size(samples), 4);
    assert_string_equal(jstr(json_array_get(samples, 0), "message"), "boom, \"quoted\"");
    json_decref(b);
    json_decref(items);

    assert_int_equal(store_crash_rates(f->s, f->ta, "aegis-app", T0, T0 + 7200, 3600, 100, &out),
                     STORE_OK);
    json_t *its = json_object_get(out, "items");
    assert_int_equal(json_array_size(its), 2);
    json_t *h0 = json_array_get(its, 0), *h1 = json_array_get(its, 1);
    assert_string_equal(jstr(h0, "image_version"), "1.0");
    assert_true(jreal(h0, "device_hours") == 2.0);
    assert_int_equal(jint(h0, "crashes"), 3);
    assert_true(jreal(h0, "crash_rate") == 1.5);
    assert_string_equal(jstr(h1, "image_version"), "2.0");
    assert_true(jreal(h1, "crash_rate") == 2.0);
    json_t *fleet = json_object_get(out, "fleet");
    assert_true(jreal(fleet, "device_hours") == 2.5);
    assert_int_equal(jint(fleet, "crashes"), 4);
    /* device-hours with a crash: D1 and D2 in hour 0, D1 in hour 1 */
    assert_int_equal(jint(fleet, "crash_hours"), 3);
    assert_true(jreal(fleet, "crash_free_device_hours") == 0.0);
    assert_false(json_is_true(json_object_get(out, "truncated")));
    json_decref(out);
    /* by day, and capped */
    assert_int_equal(
        store_crash_rates(f->s, f->ta, NULL, T0 - T0 % 86400, T0 + 86400, 86400, 1, &out),
        STORE_OK);
    assert_int_equal(json_array_size(json_object_get(out, "items")), 1);
    assert_true(json_is_true(json_object_get(out, "truncated")));
    json_decref(out);
}

static void
test_bucket_list_sort_filters_pages(void **state)
{
    struct fx *f = *state;
    char next[CURSOR_BUF], cur[CURSOR_BUF];
    struct store_bucket_filter flt = {.until = INT64_MAX};
    /* bucket A (pc 0xa): 3 reports from D1; bucket B (0xb): 2 from D1, D2; bucket C (0xc): 1,
     * latest */
    mk_crash(f, 0, D1, 1, "1.0", "0xa");
    mk_crash(f, 1, D1, 2, "1.0", "0xa");
    mk_crash(f, 2, D1, 3, "2.0", "0xa");
    mk_crash(f, 3, D1, 4, "1.0", "0xb");
    mk_crash(f, 4, D2, 1, "1.0", "0xb");
    ingest(f, 5, T0);
    mk_crash(f, 0, D2, 2, "2.0", "0xc");
    ingest(f, 1, T0 + 100);

    json_t *items = bucket_list(f, f->ta, &flt, 100, NULL, next);
    assert_string_equal(jstr(json_array_get(items, 0), "pc"), "0xa");
    assert_string_equal(jstr(json_array_get(items, 1), "pc"), "0xb");
    json_decref(items);
    flt.sort = STORE_BUCKETS_BY_DEVICES;
    items = bucket_list(f, f->ta, &flt, 100, NULL, next);
    assert_string_equal(jstr(json_array_get(items, 0), "pc"), "0xb");
    json_decref(items);
    flt.sort = STORE_BUCKETS_BY_RECENT;
    items = bucket_list(f, f->ta, &flt, 100, NULL, next);
    assert_string_equal(jstr(json_array_get(items, 0), "pc"), "0xc");
    json_decref(items);
    /* pages of one, by count: a, b, c */
    flt.sort = STORE_BUCKETS_BY_COUNT;
    const char *want[] = {"0xa", "0xb", "0xc"};
    cur[0] = '\0';
    for (int i = 0; i < 3; i++) {
        items = bucket_list(f, f->ta, &flt, 1, i == 0 ? NULL : cur, next);
        assert_int_equal(json_array_size(items), 1);
        assert_string_equal(jstr(json_array_get(items, 0), "pc"), want[i]);
        json_decref(items);
        assert_int_equal(next[0] == '\0', i == 2);
        snprintf(cur, sizeof(cur), "%s", next);
    }
    /* counted over the reports of one version */
    flt.image_version = "2.0";
    items = bucket_list(f, f->ta, &flt, 100, NULL, next);
    assert_int_equal(json_array_size(items), 2);
    assert_int_equal(jint(json_array_get(items, 0), "count"), 1);
    json_decref(items);
    /* a time window after the first ingest: only bucket C */
    flt.image_version = NULL;
    flt.since = T0 + 50;
    items = bucket_list(f, f->ta, &flt, 100, NULL, next);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "pc"), "0xc");
    json_decref(items);
    /* a malformed cursor */
    struct store_page pg = {"nope", 10};
    assert_int_equal(store_bucket_list(f->s, f->ta, &flt, &pg, &items, next), STORE_INVALID);
}

static void
test_isolation(void **state)
{
    struct fx *f = *state;
    struct store_page pg = {NULL, 100};
    struct store_bucket_filter flt = {.until = INT64_MAX};
    char next[CURSOR_BUF];
    json_t *items = NULL, *b = NULL;
    int64_t t = 0, id = 0;
    mk_crash(f, 0, D1, 1, "1.0", "0x10");
    mk_crash(f, 1, D3, 1, "1.0", "0x10"); /* globex: the same signature, its own bucket */
    ingest(f, 2, T0);
    items = bucket_list(f, f->ta, &flt, 100, NULL, next);
    assert_int_equal(json_array_size(items), 1);
    int64_t bucket_a = jint(json_array_get(items, 0), "id");
    json_decref(items);
    items = bucket_list(f, f->tb, &flt, 100, NULL, next);
    assert_int_equal(json_array_size(items), 1);
    assert_int_not_equal(jint(json_array_get(items, 0), "id"), bucket_a);
    assert_int_equal(jint(json_array_get(items, 0), "count"), 1);
    json_decref(items);
    assert_int_equal(store_bucket_get(f->s, f->tb, bucket_a, &b), STORE_NOTFOUND);
    assert_null(b);
    assert_int_equal(store_device_reports(f->s, f->tb, D1, NULL, &pg, &items, next),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_telemetry(f->s, f->tb, D1, &b), STORE_NOTFOUND);
    assert_int_equal(store_report_export(f->s, f->tb, 0, INT64_MAX, &t, &id, 100, &items),
                     STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "device_id"), D3);
    json_decref(items);
}

static void
test_export_keyset(void **state)
{
    struct fx *f = *state;
    int64_t t = 0, id = 0;
    json_t *items = NULL;
    size_t total = 0;
    for (int i = 0; i < 10; i++)
        mk_heartbeat(f, i, D1, i + 1, "1.0", 60);
    ingest(f, 5, T0);
    ingest(f, 10, T0 + 1); /* 5 duplicates, 5 new */
    for (int round = 0; round < 10; round++) {
        assert_int_equal(store_report_export(f->s, f->ta, 0, INT64_MAX, &t, &id, 3, &items),
                         STORE_OK);
        size_t n = json_array_size(items);
        total += n;
        json_decref(items);
        if (n < 3)
            break;
    }
    assert_int_equal(total, 10);
    /* a window: only the second ingest */
    t = id = 0;
    assert_int_equal(store_report_export(f->s, f->ta, T0 + 1, T0 + 2, &t, &id, 100, &items),
                     STORE_OK);
    assert_int_equal(json_array_size(items), 5);
    json_decref(items);
}

static void
test_device_reports_pages(void **state)
{
    struct fx *f = *state;
    char next[CURSOR_BUF], cur[CURSOR_BUF];
    json_t *items = NULL;
    for (int i = 0; i < 5; i++)
        mk_heartbeat(f, i, D1, 10 + i, "1.0", 60);
    mk_crash(f, 5, D1, 20, "1.0", "0x10");
    ingest(f, 6, T0);
    struct store_page pg = {NULL, 4};
    assert_int_equal(store_device_reports(f->s, f->ta, D1, NULL, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 4);
    assert_int_equal(jint(json_array_get(items, 0), "report_id"), 20);
    assert_string_equal(next, "12");
    json_decref(items);
    snprintf(cur, sizeof(cur), "%s", next);
    pg.cursor = cur;
    assert_int_equal(store_device_reports(f->s, f->ta, D1, NULL, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 2);
    assert_int_equal(jint(json_array_get(items, 1), "report_id"), 10);
    assert_string_equal(next, "");
    json_decref(items);
    pg.cursor = NULL;
    assert_int_equal(store_device_reports(f->s, f->ta, D1, "crash", &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "type"), "crash");
    assert_int_equal(json_array_size(json_object_get(json_array_get(items, 0), "return_addresses")),
                     2);
    json_decref(items);
    assert_int_equal(store_device_reports(f->s, f->ta, D1, "bogus", &pg, &items, next),
                     STORE_INVALID);
}

static void
test_flags(void **state)
{
    struct fx *f = *state;
    struct store_page pg = {NULL, 100};
    char next[CURSOR_BUF];
    json_t *items = NULL;
    int raised = -1;
    /* a bucket on 2 devices within its first hour: flagged with a threshold of 1, not of 2 */
    mk_crash(f, 0, D1, 1, "1.0", "0x10");
    ingest(f, 1, T0);
    mk_crash(f, 0, D2, 1, "1.0", "0x10");
    ingest(f, 1, T0 + 600);
    assert_int_equal(store_flag_new_buckets(f->s, T0 - 10, 2, T0 + 700, &raised), STORE_OK);
    assert_int_equal(raised, 0);
    assert_int_equal(store_flag_new_buckets(f->s, T0 - 10, 1, T0 + 700, &raised), STORE_OK);
    assert_int_equal(raised, 1);
    assert_int_equal(store_flag_new_buckets(f->s, T0 - 10, 1, T0 + 800, &raised), STORE_OK);
    assert_int_equal(raised, 0); /* once */
    /* versions: 1.0 has 2 device-hours and 1 crash (rate 0.5); 2.0 has 2 device-hours and 3 crashes
     * (1.5, three times as many) */
    mk_heartbeat(f, 0, D1, 10, "1.0", 3600);
    mk_heartbeat(f, 1, D2, 10, "1.0", 3600);
    ingest(f, 2, T0 + 1000);
    mk_heartbeat(f, 0, D1, 11, "2.0", 3600);
    mk_heartbeat(f, 1, D2, 11, "2.0", 3600);
    mk_crash(f, 2, D1, 12, "2.0", "0x20");
    mk_crash(f, 3, D1, 13, "2.0", "0x20");
    mk_crash(f, 4, D2, 12, "2.0", "0x20");
    ingest(f, 5, T0 + 5000);
    /* 1.0 crashed twice (the bucket test above): rate 1.0; 2.0: 1.5, not above 2x */
    assert_int_equal(store_flag_rate_regressions(f->s, 200, 3600, T0 + 6000, &raised), STORE_OK);
    assert_int_equal(raised, 0);
    /* above 1.4x: flagged, once; not when it needs more device-hours than there are */
    assert_int_equal(store_flag_rate_regressions(f->s, 140, 3 * 3600, T0 + 6000, &raised),
                     STORE_OK);
    assert_int_equal(raised, 0);
    assert_int_equal(store_flag_rate_regressions(f->s, 140, 3600, T0 + 6000, &raised), STORE_OK);
    assert_int_equal(raised, 1);
    assert_int_equal(store_flag_rate_regressions(f->s, 140, 3600, T0 + 6000, &raised), STORE_OK);
    assert_int_equal(raised, 0);
    assert_int_equal(store_flag_list(f->s, f->ta, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 2);
    json_t *reg = json_array_get(items, 0);
    assert_string_equal(jstr(reg, "kind"), "rate_regression");
    assert_string_equal(jstr(reg, "image_version"), "2.0");
    assert_string_equal(jstr(reg, "previous_version"), "1.0");
    assert_true(jreal(json_object_get(reg, "detail"), "crash_rate") == 1.5);
    assert_string_equal(jstr(json_array_get(items, 1), "kind"), "new_bucket");
    json_decref(items);
    /* another tenant sees none */
    assert_int_equal(store_flag_list(f->s, f->tb, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
}

/* A crash carries the uptime since its boot's last heartbeat (period_s, images): those device-
 * seconds count for each image that ran, so a version that crashes before its first heartbeat has
 * a rate; and a predecessor without crashes counts as one, so one early crash is no regression. */
/* Slot 0: a crash of D1 running aegis-app 4.0, period seconds after its boot's last heartbeat. */
static void
mk_early_crash(struct fx *f, int64_t rid, int64_t period)
{
    struct store_report *c = mk_crash(f, 0, D1, rid, "4.0", "0x40");
    c->period_s = period;
    c->nimages = 1;
    c->image_component[0] = "aegis-app";
    c->image_versions[0] = "4.0";
    c->images = "{\"aegis-app\":\"4.0\"}";
}

static void
test_crash_period_and_quiet_predecessor(void **state)
{
    struct fx *f = *state;
    json_t *out = NULL;
    int raised = -1;
    mk_heartbeat(f, 0, D1, 1, "3.0", 3600); /* 3.0: one hour, no crash */
    ingest(f, 1, T0);
    mk_early_crash(f, 2, 1800);
    ingest(f, 1, T0 + 100);
    assert_int_equal(
        store_crash_rates(f->s, f->ta, "aegis-app", T0 - 3600, T0 + 3600, 3600, 100, &out),
        STORE_OK);
    json_t *v = json_array_get(json_object_get(out, "versions"), 1);
    assert_string_equal(jstr(v, "image_version"), "4.0");
    assert_true(jreal(v, "device_hours") == 0.5);
    assert_int_equal(jint(v, "crashes"), 1);
    assert_true(jreal(json_object_get(out, "fleet"), "device_hours") == 1.5);
    json_decref(out);
    /* 2 crashes per hour against (at least) 1: not above 2x */
    assert_int_equal(store_flag_rate_regressions(f->s, 200, 1800, T0 + 200, &raised), STORE_OK);
    assert_int_equal(raised, 0);
    /* another early crash: 2 in 40 minutes, 3 per hour: flagged */
    mk_early_crash(f, 3, 600);
    ingest(f, 1, T0 + 300);
    assert_int_equal(store_flag_rate_regressions(f->s, 200, 1800, T0 + 400, &raised), STORE_OK);
    assert_int_equal(raised, 1);
    /* the crash keeps its period */
    struct store_page pg = {NULL, 10};
    char next[CURSOR_BUF];
    json_t *items = NULL;
    assert_int_equal(store_device_reports(f->s, f->ta, D1, "crash", &pg, &items, next), STORE_OK);
    assert_int_equal(jint(json_array_get(items, 0), "period_s"), 600);
    assert_string_equal(jstr(json_object_get(json_array_get(items, 0), "images"), "aegis-app"),
                        "4.0");
    json_decref(items);
}

int
main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bucket_samples, setup, teardown),
        cmocka_unit_test(test_migration_4_backfills_samples),
        cmocka_unit_test_setup_teardown(test_aggregates_and_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bucket_list_sort_filters_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_keyset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_reports_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_period_and_quiet_predecessor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
