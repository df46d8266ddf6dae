/* Unit tests of store_tuf: files stored per version, and a publication's expectations checked
 * inside its transaction (a concurrent root rotation or re-signing makes it a conflict). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store_tuf.h"
#include "test_store_fx.h"

static struct store_tuf_file
file(const char *role, int64_t version)
{
    static char body[] = "{}";
    struct store_tuf_file f = {role, version, 2000000000, body, 2};
    return f;
}

static int
newest_of(store *s, int64_t tenant, const char *role)
{
    struct store_tuf_file f;
    int rc = store_tuf_get(s, tenant, STORE_TUF_IMAGE, role, 0, &f);
    int64_t v = rc == STORE_OK ? f.version : 0;
    store_tuf_file_free(&f);
    return (int)v;
}

static void
test_publish_expectations(void **state)
{
    struct fx *f = *state;
    struct store_tuf_file root1 = file("root", 1), root2 = file("root", 2);
    struct store_tuf_file t[3] = {file("targets", 1), file("snapshot", 1), file("timestamp", 1)};
    const struct store_tuf_expect none = {STORE_TUF_IMAGE, "root", 0};
    assert_int_equal(store_tuf_publish(f->s, f->ta, STORE_TUF_IMAGE, &root1, 1, &none, 1, &f->a,
                                       "ota.root.publish", json_object()),
                     STORE_OK);
    /* verified against root 1, but root 2 came first: nothing is stored */
    assert_int_equal(
        store_tuf_publish(f->s, f->ta, STORE_TUF_IMAGE, &root2, 1, NULL, 0, NULL, NULL, NULL),
        STORE_OK);
    const struct store_tuf_expect stale[] = {{STORE_TUF_IMAGE, "root", 1},
                                             {STORE_TUF_IMAGE, "targets", 0}};
    assert_int_equal(store_tuf_publish(f->s, f->ta, STORE_TUF_IMAGE, t, 3, stale, 2, &f->a,
                                       "ota.targets.publish", json_object()),
                     STORE_CONFLICT);
    assert_int_equal(newest_of(f->s, f->ta, "targets"), 0);
    assert_int_equal(newest_of(f->s, f->ta, "snapshot"), 0);
    /* against the current versions it goes through */
    const struct store_tuf_expect fresh[] = {{STORE_TUF_IMAGE, "root", 2},
                                             {STORE_TUF_IMAGE, "targets", 0},
                                             {STORE_TUF_IMAGE, "timestamp", 0}};
    assert_int_equal(store_tuf_publish(f->s, f->ta, STORE_TUF_IMAGE, t, 3, fresh, 3, &f->a,
                                       "ota.targets.publish", json_object()),
                     STORE_OK);
    assert_int_equal(newest_of(f->s, f->ta, "timestamp"), 1);
    /* another tenant's versions are its own; a bad expectation is invalid */
    assert_int_equal(
        store_tuf_publish(f->s, f->tb, STORE_TUF_IMAGE, &root1, 1, &none, 1, NULL, NULL, NULL),
        STORE_OK);
    const struct store_tuf_expect bad = {STORE_TUF_IMAGE, "mirrors", 0};
    assert_int_equal(
        store_tuf_publish(f->s, f->tb, STORE_TUF_IMAGE, &root2, 1, &bad, 1, NULL, NULL, NULL),
        STORE_INVALID);
    assert_int_equal(
        store_tuf_publish(f->s, f->tb, STORE_TUF_IMAGE, &root2, 1, NULL, 1, NULL, NULL, NULL),
        STORE_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_expectations, setup, teardown),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
