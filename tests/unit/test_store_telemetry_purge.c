/* Unit tests of the telemetry store's retention (server/store/store_tel_purge.c): old reports go
 * in batches, a report stamped in the future holds none up, buckets keep their counts, and a
 * report sent again after its purge is a duplicate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_telemetry_fx.h"

static void
test_retention_batches(void **state)
{
    struct fx *f = *state;
    struct store_page pg = {NULL, 100};
    struct store_bucket_filter flt = {.until = INT64_MAX};
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
    struct store_bucket_filter flt = {.until = INT64_MAX};
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

int
main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retention_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_second_life_after_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
