/* devstate (server/http/devstate.h): the device-state cache of device authentication. A hit reads
 * no database (store_calls stays put); every change through the store, by this store or by another
 * one on the same database file (another process), is seen by the very next lookup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "devstate.h"
#include "test_store_fx.h"

#define HASH "1111111111111111111111111111111111111111111111111111111111111111"

/* The device's state through the cache, asserting whether the lookup read the database. */
static int
get(struct fx *f, devstate *d, const char *id, int expect_read, struct devstate_dev *out)
{
    uint64_t before = store_calls(f->s);
    int rc = devstate_get(d, id, out);
    assert_int_equal(store_calls(f->s) != before, expect_read);
    return rc;
}

static void
test_hit_reads_no_database(void **state)
{
    struct fx *f = *state;
    char id[65];
    struct devstate_dev dev;
    json_t *o = NULL;
    dev_id(1, id);
    assert_int_equal(store_device_gen_shared(f->s), 1);
    devstate *d = devstate_new(f->s);
    assert_non_null(d);

    /* unknown: read once, then remembered as unknown */
    assert_int_equal(get(f, d, id, 1, &dev), STORE_NOTFOUND);
    assert_int_equal(get(f, d, id, 0, &dev), STORE_NOTFOUND);
    /* an import makes it known at once */
    int64_t p = make_product(f, f->ta, "gw");
    int64_t g = make_group(f, f->ta, p, "g1");
    assert_int_equal(import1(f, f->ta, &f->a, id, 1, g), STORE_OK);
    assert_int_equal(get(f, d, id, 1, &dev), STORE_OK);
    assert_int_equal(dev.tenant_id, f->ta);
    assert_int_equal(dev.group_id, g);
    assert_int_equal(dev.product_id, p);
    assert_int_equal(dev.blocked, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(get(f, d, id, 0, &dev), STORE_OK);
    /* block, unblock, move: each seen by the next lookup, which reads once */
    assert_int_equal(store_device_set_blocked(f->s, f->ta, id, 1, &f->a, &o), STORE_OK);
    json_decref(o);
    assert_int_equal(get(f, d, id, 1, &dev), STORE_OK);
    assert_int_equal(dev.blocked, 1);
    assert_int_equal(get(f, d, id, 0, &dev), STORE_OK);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, id, 0, &f->a, &o), STORE_OK);
    json_decref(o);
    assert_int_equal(get(f, d, id, 1, &dev), STORE_OK);
    assert_int_equal(dev.blocked, 0);
    assert_int_equal(store_device_move(f->s, f->ta, id, 0, &f->a, &o), STORE_OK);
    json_decref(o);
    assert_int_equal(get(f, d, id, 1, &dev), STORE_OK);
    assert_int_equal(dev.group_id, 0);
    assert_int_equal(dev.product_id, 0);
    /* a malformed id is refused without a read or an entry */
    assert_int_equal(get(f, d, "abc", 0, &dev), STORE_INVALID);
    devstate_free(d);
}

/* Another process on the database: a second store on the same file maps the same generations. */
static void
test_change_by_another_store_is_seen(void **state)
{
    struct fx *f = *state;
    char id[65], err[256] = "";
    struct devstate_dev dev;
    json_t *o = NULL;
    store *other = NULL;
    dev_id(2, id);
    assert_int_equal(import1(f, f->ta, &f->a, id, 1, 0), STORE_OK);
    assert_int_equal(store_open(f->path, 1, &other, err, sizeof(err)), STORE_OK);
    devstate *d = devstate_new(f->s);
    assert_non_null(d);
    assert_int_equal(get(f, d, id, 1, &dev), STORE_OK);
    assert_int_equal(get(f, d, id, 0, &dev), STORE_OK);
    assert_int_equal(dev.blocked, 0);

    assert_int_equal(store_device_set_blocked(other, f->ta, id, 1, &f->a, &o), STORE_OK);
    json_decref(o);
    assert_int_equal(get(f, d, id, 1, &dev), STORE_OK);
    assert_int_equal(dev.blocked, 1);
    /* a transfer to the other tenant, claimed there: no longer the first tenant's */
    assert_int_equal(store_device_transfer_create(other, f->ta, id, HASH, util_now() + 60, &f->a),
                     STORE_OK);
    assert_int_equal(store_device_claim_transfer(other, f->tb, id, 0, HASH, &f->b, &o), STORE_OK);
    json_decref(o);
    assert_int_equal(get(f, d, id, 1, &dev), STORE_OK);
    assert_int_equal(dev.tenant_id, f->tb);
    assert_int_equal(dev.blocked, 0);
    assert_int_equal(get(f, d, id, 0, &dev), STORE_OK);
    store_close(other);
    devstate_free(d);
}

int
main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_reads_no_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_by_another_store_is_seen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
