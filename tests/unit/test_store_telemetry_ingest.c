/* Unit tests of the telemetry store's writing (server/store/store_tel.c, store_tel_ingest.c,
 * store_tel_writer.c): address normalisation and bucket signatures, dedup within a call, across
 * calls and across groups, durable sync and its sticky failure, and malformed reports that store
 * nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_telemetry_fx.h"

static void
test_addresses(void **state)
{
    char out[STORE_TEL_ADDR_LEN];
    (void)state;
    assert_int_equal(proto_tel_addr_norm("0x0800ABCD", 10, out), 0);
    assert_string_equal(out, "0x800abcd");
    assert_int_equal(proto_tel_addr_norm("0x0", 3, out), 0);
    assert_string_equal(out, "0x0");
    assert_int_equal(proto_tel_addr_norm("0x0000", 6, out), 0);
    assert_string_equal(out, "0x0");
    assert_int_equal(proto_tel_addr_norm("0xffffffffffffffff", 18, out), 0);
    assert_string_equal(out, "0xffffffffffffffff");
    assert_int_equal(proto_tel_addr_norm("0x", 2, out), -1);
    assert_int_equal(proto_tel_addr_norm("800", 3, out), -1);
    assert_int_equal(proto_tel_addr_norm("0X1", 3, out), -1);
    assert_int_equal(proto_tel_addr_norm("0x1g", 4, out), -1);
    assert_int_equal(proto_tel_addr_norm("0x11111111111111111", 19, out), -1);
    assert_int_equal(proto_tel_addr_norm("0x1\0", 4, out), -1); /* a NUL inside */
    assert_int_equal(proto_tel_addr_norm(NULL, 0, out), -1);
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
    struct store_bucket_filter flt = {.until = INT64_MAX};
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
    struct store_bucket_filter flt = {.until = INT64_MAX};
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
    struct store_bucket_filter flt = {.until = INT64_MAX};
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
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_is_sticky, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_report_stores_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
