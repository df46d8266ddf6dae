/* Unit tests of deleting a device with telemetry (store_devices_drop.c): its reports go, the
 * aggregates stay, and a bucket's sample chain is relinked around the deleted reports so that the
 * bucket detail still shows the newest samples of the other devices. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_telemetry_fx.h"

/* The device ids of the bucket's samples, newest first, into out (at most max); returns their
 * number. Checks the bucket's count and devices. */
static size_t
samples_of(struct fx *f, int64_t bucket, int64_t count, int64_t devices, const char **out,
           size_t max)
{
    json_t *b = NULL;
    assert_int_equal(store_bucket_get(f->s, f->ta, bucket, &b), STORE_OK);
    assert_int_equal(jint(b, "count"), count);
    assert_int_equal(jint(b, "devices"), devices);
    json_t *samples = json_object_get(b, "samples");
    size_t n = json_array_size(samples);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++) {
        const char *d = jstr(json_array_get(samples, i), "device_id");
        out[i] = strcmp(d, D1) == 0 ? D1 : D2;
    }
    json_decref(b);
    return n;
}

static void
test_delete_relinks_bucket_samples(void **state)
{
    struct fx *f = *state;
    struct store_device_dropped d;
    const char *s[16];
    char next[CURSOR_BUF];

    /* 24 crashes of one bucket, D1 and D2 taking turns, in separate commits (ids in order). */
    for (int i = 0; i < 24; i++) {
        mk_crash(f, 0, i % 2 ? D2 : D1, 1 + i, "1.0.0", "0x0800abcd");
        ingest(f, 1, T0 + i);
    }
    mk_heartbeat(f, 0, D1, 100, "1.0.0", 3600);
    ingest(f, 1, T0 + 30);
    json_t *items =
        bucket_list(f, f->ta, &(struct store_bucket_filter){.until = INT64_MAX}, 10, NULL, next);
    assert_int_equal(json_array_size(items), 1);
    int64_t bucket = jint(json_array_get(items, 0), "id");
    json_decref(items);
    assert_int_equal(samples_of(f, bucket, 24, 2, s, 16), 10);

    assert_int_equal(store_device_delete(f->s, f->ta, D1, &f->a, &d), STORE_OK);
    assert_int_equal(d.reports, 13);
    assert_int_equal(d.handed_over, 0);
    /* The counts stay; the samples are D2's newest ten. */
    size_t n = samples_of(f, bucket, 24, 2, s, 16);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(s[i], D2);
    json_t *reports = NULL;
    struct store_page pg = {NULL, 100};
    assert_int_equal(store_device_reports(f->s, f->ta, D1, NULL, &pg, &reports, next),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_reports(f->s, f->ta, D2, NULL, &pg, &reports, next), STORE_OK);
    assert_int_equal(json_array_size(reports), 12);
    json_decref(reports);
    /* New crashes chain on as before. */
    mk_crash(f, 0, D2, 50, "1.0.0", "0x0800abcd");
    ingest(f, 1, T0 + 40);
    assert_int_equal(samples_of(f, bucket, 25, 2, s, 16), 10);

    /* The last device of the bucket: no sample left, the counts stay. */
    assert_int_equal(store_device_delete(f->s, f->ta, D2, &f->a, &d), STORE_OK);
    assert_int_equal(d.reports, 13);
    assert_int_equal(samples_of(f, bucket, 25, 2, s, 16), 0);
    assert_int_equal(store_device_delete(f->s, f->ta, D2, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_delete(f->s, f->tb, D1, &f->b, &d), STORE_NOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delete_relinks_bucket_samples, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
