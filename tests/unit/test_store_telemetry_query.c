/* Unit tests of the store's failure-reporting part (server/store/store_tel*.c): address
 * normalisation and bucket signatures, dedup, aggregates (buckets, versions, usage, fleet), lists
 * and filters, flags, retention in batches, and tenant isolation, on a fresh SQLite database per
 * test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log.h"
#include "schema.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEM                                                                                        \
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
#undef CURSOR_BUF /* store_int.h: the store's minimum; the tests use a larger buffer */
#define CURSOR_BUF 129
#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "3333333333333333333333333333333333333333333333333333333333333333"
#define BOOT "0123456789abcdef0123456789abcdef"
#define T0 1800000000LL /* an hour start: 2027-01-15T08:00:00Z */
#define MAXR 64

struct fx {
    char dir[64];
    char path[128];
    store *s;
    store_tel_writer *w;
    int64_t ta, tb;
    struct store_actor a, b;
    struct store_report r[MAXR];
    struct store_report *p[MAXR];
};

static const struct store_actor ctl = {0, "aegisctl"};

static void
import_dev(struct fx *f, int64_t tenant, const struct store_actor *a, const char *id)
{
    struct store_import_entry e = {id, PEM};
    json_t *errors = NULL;
    size_t created = 0;
    assert_int_equal(store_device_import(f->s, tenant, &e, 1, 1, 0, a, &errors, &created),
                     STORE_OK);
    json_decref(errors);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256] = "";
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aegis-stel-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/aegis.db", f->dir);
    assert_int_equal(store_open(f->path, 3, &f->s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_migrate(f->s, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tel_writer_open(f->s, &f->w, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tenant_create(f->s, "acme", &ctl, &f->ta), STORE_OK);
    assert_int_equal(store_tenant_create(f->s, "globex", &ctl, &f->tb), STORE_OK);
    f->a = (struct store_actor){f->ta, "token:1"};
    f->b = (struct store_actor){f->tb, "token:2"};
    import_dev(f, f->ta, &f->a, D1);
    import_dev(f, f->ta, &f->a, D2);
    import_dev(f, f->tb, &f->b, D3);
    for (int i = 0; i < MAXR; i++)
        f->p[i] = &f->r[i];
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char p[160];
    assert_int_equal(store_error_count(f->s), 0);
    store_tel_writer_close(f->w);
    store_close(f->s);
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t
tenant_of(const struct fx *f, const char *dev)
{
    return strcmp(dev, D3) == 0 ? f->tb : f->ta;
}

/* Fills report slot i as a crash of dev. */
static struct store_report *
mk_crash(struct fx *f, int i, const char *dev, int64_t rid, const char *version, const char *pc)
{
    struct store_report *r = &f->r[i];
    memset(r, 0, sizeof(*r));
    r->tenant_id = tenant_of(f, dev);
    r->device_id = dev;
    r->type = STORE_REPORT_CRASH;
    r->report_id = rid;
    r->boot_id = BOOT;
    r->uptime_s = 10;
    r->component = "aegis-app";
    r->image_version = version;
    r->reason = "hardfault";
    assert_int_equal(store_telemetry_addr(pc, strlen(pc), r->pc), 0);
    snprintf(r->lr, sizeof(r->lr), "0x1");
    snprintf(r->ra[0], sizeof(r->ra[0]), "0x8001000");
    snprintf(r->ra[1], sizeof(r->ra[1]), "0x8002000");
    r->nra = 2;
    r->fault_registers = "{\"cfsr\":\"0x8200\"}";
    r->free_memory = 100;
    r->message = "boom, \"quoted\"";
    r->message_len = strlen(r->message);
    return r;
}

static struct store_report *
mk_heartbeat(struct fx *f, int i, const char *dev, int64_t rid, const char *version, int64_t period)
{
    struct store_report *r = &f->r[i];
    memset(r, 0, sizeof(*r));
    r->tenant_id = tenant_of(f, dev);
    r->device_id = dev;
    r->type = STORE_REPORT_HEARTBEAT;
    r->report_id = rid;
    r->boot_id = BOOT;
    r->uptime_s = period;
    r->period_s = period;
    r->free_memory = 100;
    r->nimages = 1;
    r->image_component[0] = "aegis-app";
    r->image_versions[0] = version;
    r->images = "{\"aegis-app\":\"x\"}";
    r->counters = "{}";
    return r;
}

/* An upload of reports first .. first + n - 1 of the fixture, its last_report_id their highest. */
static struct store_upload
upload_of(const struct fx *f, const char *dev, int64_t tenant, int64_t dropped, size_t first,
          size_t n)
{
    struct store_upload u = {tenant, dev, dropped, 0, first, n};
    for (size_t i = first; i < first + n; i++)
        if (f->r[i].report_id > u.last_report_id)
            u.last_report_id = f->r[i].report_id;
    return u;
}

/* Ingests reports 0..n-1 (one upload per device run is not needed here: no uploads). */
static void
ingest(struct fx *f, size_t n, int64_t now)
{
    assert_int_equal(store_telemetry_ingest(f->w, f->p, n, NULL, 0, now), STORE_OK);
}

static json_t *
bucket_list(struct fx *f, int64_t tenant, const struct store_bucket_filter *flt, int limit,
            const char *cursor, char *next)
{
    struct store_page pg = {cursor, limit};
    json_t *items = NULL;
    assert_int_equal(store_bucket_list(f->s, tenant, flt, &pg, &items, next), STORE_OK);
    return items;
}

static int64_t
jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static double
jreal(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static const char *
jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    assert_non_null(v);
    return v;
}

/* --- tests --- */

static void
test_addresses(void **state)
{
    char out[STORE_TEL_ADDR_LEN];
    (void)state;
    assert_int_equal(store_telemetry_addr("0x0800ABCD", 10, out), 0);
    assert_string_equal(out, "0x800abcd");
    assert_int_equal(store_telemetry_addr("0x0", 3, out), 0);
    assert_string_equal(out, "0x0");
    assert_int_equal(store_telemetry_addr("0x0000", 6, out), 0);
    assert_string_equal(out, "0x0");
    assert_int_equal(store_telemetry_addr("0xffffffffffffffff", 18, out), 0);
    assert_string_equal(out, "0xffffffffffffffff");
    assert_int_equal(store_telemetry_addr("0x", 2, out), -1);
    assert_int_equal(store_telemetry_addr("800", 3, out), -1);
    assert_int_equal(store_telemetry_addr("0X1", 3, out), -1);
    assert_int_equal(store_telemetry_addr("0x1g", 4, out), -1);
    assert_int_equal(store_telemetry_addr("0x11111111111111111", 19, out), -1);
    assert_int_equal(store_telemetry_addr("0x1\0", 4, out), -1); /* a NUL inside */
    assert_int_equal(store_telemetry_addr(NULL, 0, out), -1);
}

static void
test_signature(void **state)
{
    char ra[4][STORE_TEL_ADDR_LEN] = {"0x8001000", "0x8002000", "0x8003000", "0x8004000"};
    char sig[65], sig2[65];
    (void)state;
    /* SHA-256 of "aegis-app|hardfault|0x800abcd|0x8001000|0x8002000|" (2 frames: the third empty)
     */
    store_telemetry_signature("aegis-app", "hardfault", "0x800abcd",
                              (const char(*)[STORE_TEL_ADDR_LEN])ra, 2, sig);
    assert_string_equal(sig, "e1edbda0df11d97c9440dc6ff03dddf56f86c058f5db6b563c0c7069f1303640");
    /* only the first three frames count */
    store_telemetry_signature("aegis-app", "hardfault", "0x800abcd",
                              (const char(*)[STORE_TEL_ADDR_LEN])ra, 3, sig);
    store_telemetry_signature("aegis-app", "hardfault", "0x800abcd",
                              (const char(*)[STORE_TEL_ADDR_LEN])ra, 4, sig2);
    assert_string_equal(sig, "88a6cfb9d582f3b0fc090c21d5a8c375e4e01f5ffad6e5e3f6c702b8e20ccc3d");
    assert_string_equal(sig, sig2);
}

/* Two spellings of the same pc land in one bucket; another pc in another. */
static void
test_bucket_normalisation(void **state)
{
    struct fx *f = *state;
    char next[CURSOR_BUF];
    struct store_bucket_filter flt = {0};
    mk_crash(f, 0, D1, 1, "1.0", "0x0800ABCD");
    mk_crash(f, 1, D1, 2, "1.0", "0x800abcd");
    mk_crash(f, 2, D1, 3, "1.0", "0x800abce");
    ingest(f, 3, T0);
    json_t *items = bucket_list(f, f->ta, &flt, 100, NULL, next);
    assert_int_equal(json_array_size(items), 2);
    json_t *top = json_array_get(items, 0);
    assert_int_equal(jint(top, "count"), 2);
    assert_string_equal(jstr(top, "pc"), "0x800abcd");
    assert_string_equal(jstr(top, "signature"),
                        "e1edbda0df11d97c9440dc6ff03dddf56f86c058f5db6b563c0c7069f1303640");
    assert_int_equal(json_array_size(json_object_get(top, "frames")), 2);
    json_decref(items);
}

static void
test_dedup(void **state)
{
    struct fx *f = *state;
    struct store_upload up;
    json_t *sum = NULL;
    mk_crash(f, 0, D1, 7, "1.0", "0x10");
    mk_crash(f, 1, D1, 7, "1.0", "0x10"); /* the same report twice in one call */
    mk_heartbeat(f, 2, D1, 8, "1.0", 60);
    up = upload_of(f, D1, f->ta, 3, 0, 3);
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 3, &up, 1, T0), STORE_OK);
    assert_int_equal(f->r[0].result, STORE_REPORT_STORED);
    assert_int_equal(f->r[1].result, STORE_REPORT_DUPLICATE);
    assert_int_equal(f->r[2].result, STORE_REPORT_STORED);
    /* the retry of the whole upload: only duplicates, and dropped is not counted twice */
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 3, &up, 1, T0 + 5), STORE_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->r[i].result, STORE_REPORT_DUPLICATE);
    assert_int_equal(store_device_telemetry(f->s, f->ta, D1, &sum), STORE_OK);
    assert_int_equal(jint(sum, "dropped"), 3);
    assert_int_equal(jint(sum, "reports"), 2);
    json_decref(sum);
    /* an upload whose reports were all rejected (none reaches the store), sent three times because
     * its answers were lost: its count is added once; the next upload's is added too */
    struct store_upload rejected = {f->ta, D1, 5, 12, 0, 0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_telemetry_ingest(f->w, f->p, 0, &rejected, 1, T0 + 6), STORE_OK);
    struct store_upload later = {f->ta, D1, 2, 13, 0, 0};
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 0, &later, 1, T0 + 7), STORE_OK);
    /* one without any report id cannot be told from its retry: not added */
    struct store_upload no_ids = {f->ta, D1, 4, 0, 0, 0};
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 0, &no_ids, 1, T0 + 8), STORE_OK);
    assert_int_equal(store_device_telemetry(f->s, f->ta, D1, &sum), STORE_OK);
    assert_int_equal(jint(sum, "dropped"), 3 + 5 + 2);
    json_decref(sum);
    /* the same report id again with other contents (a device whose ids restarted): a duplicate,
     * and no empty bucket for its signature */
    mk_crash(f, 0, D1, 7, "1.0", "0x20");
    up = upload_of(f, D1, f->ta, 0, 0, 1);
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 1, &up, 1, T0 + 9), STORE_OK);
    assert_int_equal(f->r[0].result, STORE_REPORT_DUPLICATE);
    /* the bucket counted the crash once */
    char next[CURSOR_BUF];
    struct store_bucket_filter flt = {0};
    json_t *items = bucket_list(f, f->ta, &flt, 10, NULL, next);
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(jint(json_array_get(items, 0), "count"), 1);
    json_decref(items);
}

/* Buckets known from earlier groups (the writer's cache of bucket ids) are counted like new ones:
 * count, devices, versions and last_seen move, a retried report is not counted again, and a
 * group that rolls back leaves nothing cached (its bucket id is reused by the next new bucket). */
static void
test_known_buckets_across_groups(void **state)
{
    struct fx *f = *state;
    char next[CURSOR_BUF], err[256] = "";
    struct store_bucket_filter flt = {0};
    json_t *b = NULL;

    mk_crash(f, 0, D1, 1, "1.0", "0x10");
    ingest(f, 1, T0);
    mk_crash(f, 0, D1, 1, "1.0", "0x10"); /* a retry */
    mk_crash(f, 1, D2, 1, "2.0", "0x10");
    mk_crash(f, 2, D1, 2, "1.0", "0x10");
    ingest(f, 3, T0 + 100);
    assert_int_equal(f->r[0].result, STORE_REPORT_DUPLICATE);
    assert_int_equal(f->r[1].result, STORE_REPORT_STORED);
    json_t *items = bucket_list(f, f->ta, &flt, 10, NULL, next);
    assert_int_equal(json_array_size(items), 1);
    json_t *top = json_array_get(items, 0);
    assert_int_equal(jint(top, "count"), 3);
    assert_int_equal(jint(top, "devices"), 2);
    assert_string_equal(jstr(top, "first_seen"), "2027-01-15T08:00:00Z"); /* T0 */
    assert_string_equal(jstr(top, "last_seen"), "2027-01-15T08:01:40Z");  /* T0 + 100 */
    assert_int_equal(store_bucket_get(f->s, f->ta, jint(top, "id"), &b), STORE_OK);
    assert_int_equal(json_array_size(json_object_get(b, "versions")), 2);
    json_decref(b);
    json_decref(items);

    /* a group that fails after creating bucket 0x20: nothing of it stays, nor in the cache */
    mk_crash(f, 0, D1, 3, "1.0", "0x20");
    mk_crash(f, 1, "4444444444444444444444444444444444444444444444444444444444444444", 1, "1.0",
             "0x30"); /* not a registered device */
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 2, NULL, 0, T0 + 200), STORE_ERR);
    mk_crash(f, 0, D1, 4, "1.0", "0x40"); /* takes the id 0x20 had */
    mk_crash(f, 1, D1, 3, "1.0", "0x20");
    ingest(f, 2, T0 + 300);
    items = bucket_list(f, f->ta, &flt, 10, NULL, next);
    assert_int_equal(json_array_size(items), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *it = json_array_get(items, i);
        assert_int_equal(jint(it, "count"), strcmp(jstr(it, "pc"), "0x10") == 0 ? 3 : 1);
        assert_true(strcmp(jstr(it, "pc"), "0x30") != 0);
    }
    json_decref(items);
    /* the failed group counted one database error: start a fresh count for the teardown */
    assert_int_equal(store_error_count(f->s), 1);
    store_tel_writer_close(f->w);
    store_close(f->s);
    assert_int_equal(store_open(f->path, 3, &f->s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tel_writer_open(f->s, &f->w, err, sizeof(err)), STORE_OK);
}

/* The ids of the samples of the bucket at the top of the list, newest first, into ids. */
static size_t
top_samples(struct fx *f, int64_t *ids, size_t max)
{
    char next[CURSOR_BUF];
    struct store_bucket_filter flt = {0};
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
    char dir[] = "/tmp/aegis-mig4-XXXXXX", path[64], sql[1024], err[256] = "", p[80];
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
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    rmdir(dir);
}

/* Ingest commits reach the log; store_telemetry_sync makes them durable, any number of times. */
static void
test_sync(void **state)
{
    struct fx *f = *state;
    struct store_page pg = {NULL, 100};
    char next[CURSOR_BUF];
    json_t *items = NULL;
    mk_crash(f, 0, D1, 1, "1.0", "0x10");
    ingest(f, 1, T0);
    assert_int_equal(store_telemetry_sync(f->w), STORE_OK);
    assert_int_equal(store_telemetry_sync(f->w), STORE_OK);
    assert_int_equal(store_device_reports(f->s, f->ta, D1, NULL, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
}

/* A failed flush of the log is sticky: Linux reports it once and may drop the pages it could not
 * write, so no later flush is trusted and the store stops being ready. The log's path is pointed at
 * /dev/null for a moment (the writer reopens a log that was replaced), whose fdatasync fails
 * (EINVAL). */
static void
test_sync_failure_is_sticky(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    mk_crash(f, 0, D1, 1, "1.0", "0x10");
    ingest(f, 1, T0);
    assert_int_equal(store_telemetry_sync(f->w), STORE_OK);
    assert_int_equal(store_ping(f->s), STORE_OK);
    char wal[160], aside[170];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    snprintf(aside, sizeof(aside), "%s-wal.aside", f->path);
    assert_int_equal(rename(wal, aside), 0);
    assert_int_equal(symlink("/dev/null", wal), 0);
    assert_int_equal(store_telemetry_sync(f->w), STORE_ERR);
    assert_int_equal(unlink(wal), 0);
    assert_int_equal(rename(aside, wal), 0);
    assert_int_equal(store_telemetry_sync(f->w), STORE_ERR); /* the real log again: still refused */
    assert_int_equal(store_ping(f->s), STORE_ERR);
    /* a restart (a new store on the same file) trusts the disk again */
    store_tel_writer_close(f->w);
    store_close(f->s);
    assert_int_equal(store_open(f->path, 3, &f->s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tel_writer_open(f->s, &f->w, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_telemetry_sync(f->w), STORE_OK);
    assert_int_equal(store_ping(f->s), STORE_OK);
}

/* A malformed report fails the whole call before anything is written. */
static void
test_invalid_report_stores_nothing(void **state)
{
    struct fx *f = *state;
    struct store_page pg = {NULL, 100};
    char next[CURSOR_BUF];
    json_t *items = NULL;
    mk_crash(f, 0, D1, 1, "1.0", "0x10");
    mk_crash(f, 1, D1, 2, "1.0", "0x10");
    f->r[1].reason = "Bad Reason";
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 2, NULL, 0, T0), STORE_INVALID);
    assert_int_equal(f->r[0].result, STORE_REPORT_PENDING);
    mk_crash(f, 1, D1, 2, "1.0", "0x10");
    snprintf(f->r[1].pc, sizeof(f->r[1].pc), "0x0010"); /* not normalised */
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 2, NULL, 0, T0), STORE_INVALID);
    assert_int_equal(store_device_reports(f->s, f->ta, D1, NULL, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
}

static void
test_aggregates_and_rates(void **state)
{
    struct fx *f = *state;
    json_t *out = NULL, *b = NULL;
    char next[CURSOR_BUF];
    struct store_bucket_filter flt = {0};
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
    struct store_bucket_filter flt = {0};
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
    struct store_bucket_filter flt = {0};
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
test_retention_batches(void **state)
{
    struct fx *f = *state;
    struct store_page pg = {NULL, 100};
    struct store_bucket_filter flt = {0};
    char next[CURSOR_BUF];
    json_t *items = NULL;
    int purged = -1;
    for (int i = 0; i < 5; i++)
        mk_crash(f, i, D1, i + 1, "1.0", "0x10");
    ingest(f, 5, T0);
    mk_crash(f, 0, D1, 6, "1.0", "0x10");
    ingest(f, 1, T0 + 86400);
    assert_int_equal(store_report_purge(f->s, T0 + 1, 2, &purged), STORE_OK);
    assert_int_equal(purged, 2);
    assert_int_equal(store_report_purge(f->s, T0 + 1, 2, &purged), STORE_OK);
    assert_int_equal(purged, 2);
    assert_int_equal(store_report_purge(f->s, T0 + 1, 2, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_report_purge(f->s, T0 + 1, 2, &purged), STORE_OK);
    assert_int_equal(purged, 0);
    assert_int_equal(store_report_purge(f->s, T0 + 1, 0, &purged), STORE_INVALID);
    /* reports stamped in the future (a clock that jumped) before older ones do not hold them up */
    mk_crash(f, 0, D2, 1, "1.0", "0x10");
    ingest(f, 1, T0 + 400 * 86400);
    mk_crash(f, 0, D2, 2, "1.0", "0x10");
    ingest(f, 1, T0);
    assert_int_equal(store_report_purge(f->s, T0 + 1, 2, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_device_reports(f->s, f->ta, D1, "crash", &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    /* the bucket keeps its count: the 6 crashes of D1 and the 2 of D2 */
    items = bucket_list(f, f->ta, &flt, 10, NULL, next);
    assert_int_equal(jint(json_array_get(items, 0), "count"), 8);
    json_decref(items);
}

/* A report sent again after retention deleted it (a device back after months with a batch whose
 * answer it never got) is a duplicate: stored once, counted once. */
static void
test_no_second_life_after_retention(void **state)
{
    struct fx *f = *state;
    struct store_bucket_filter flt = {0};
    char next[CURSOR_BUF];
    json_t *items = NULL;
    int purged = -1;
    const int64_t base = 5000000;
    for (int i = 0; i < 3; i++)
        mk_crash(f, i, D1, base + i + 1, "1.0", "0x10");
    struct store_upload up = upload_of(f, D1, f->ta, 0, 0, 3);
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 3, &up, 1, T0), STORE_OK);
    assert_int_equal(store_report_purge(f->s, T0 + 1, 100, &purged), STORE_OK);
    assert_int_equal(purged, 3);
    /* the same three again, and a new one; and one far below (a device that lost its ID state
     * and started again lower down: new, not an old one) */
    for (int i = 0; i < 4; i++)
        mk_crash(f, i, D1, base + i + 1, "1.0", "0x10");
    mk_crash(f, 4, D1, 7, "1.0", "0x10");
    up = upload_of(f, D1, f->ta, 0, 0, 5);
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 5, &up, 1, T0 + 100 * 86400), STORE_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->r[i].result, STORE_REPORT_DUPLICATE);
    assert_int_equal(f->r[3].result, STORE_REPORT_STORED);
    assert_int_equal(f->r[4].result, STORE_REPORT_STORED);
    items = bucket_list(f, f->ta, &flt, 10, NULL, next);
    assert_int_equal(jint(json_array_get(items, 0), "count"), 5);
    json_decref(items);
    /* another device's ids are its own */
    mk_crash(f, 0, D2, 1, "1.0", "0x10");
    up = upload_of(f, D2, tenant_of(f, D2), 0, 0, 1);
    assert_int_equal(store_telemetry_ingest(f->w, f->p, 1, &up, 1, T0 + 100 * 86400), STORE_OK);
    assert_int_equal(f->r[0].result, STORE_REPORT_STORED);
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
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_signature),
        cmocka_unit_test_setup_teardown(test_bucket_normalisation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_buckets_across_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bucket_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_is_sticky, setup, teardown),
        cmocka_unit_test(test_migration_4_backfills_samples),
        cmocka_unit_test_setup_teardown(test_invalid_report_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregates_and_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bucket_list_sort_filters_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_keyset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_second_life_after_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_reports_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_period_and_quiet_predecessor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
