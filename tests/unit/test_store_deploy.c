/* Unit tests of deployments and update attempts in the store (store_deploy.c,
 * store_deploy_status.c) and of what else bumps the director generation (store_images.c,
 * store_devices.c), on a fresh SQLite database per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store_deploy.h"
#include "test_store_fx.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A tenant's product, two of its groups, three devices claimed into the first, one image row of
 * the product (SHA_A) and one of another product (SHA_B). */
struct dfx {
    int64_t product, other_product, group, group2;
    char dev[3][65];
};

static void
add_image(struct fx *f, const char *sha, int64_t product)
{
    sqlite3 *db = NULL;
    char sql[512];
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "INSERT INTO images (tenant_id, sha256, size, product_id, component, kind, version, "
             "svn, hardware, created_at) VALUES (%lld, '%s', 10, %lld, 'aegis-os', 'os', '1.0', 1, "
             "'hw', 1)",
             (long long)f->ta, sha, (long long)product);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
deploy_fixture(struct fx *f, struct dfx *x)
{
    x->product = make_product(f, f->ta, "gw");
    x->other_product = make_product(f, f->ta, "sensor");
    x->group = make_group(f, f->ta, x->product, "g1");
    x->group2 = make_group(f, f->ta, x->product, "g2");
    for (int i = 0; i < 3; i++) {
        dev_id((uint64_t)i + 100, x->dev[i]);
        assert_int_equal(import1(f, f->ta, &f->a, x->dev[i], 1, x->group), STORE_OK);
    }
    add_image(f, SHA_A, x->product);
    add_image(f, SHA_B, x->other_product);
}

static int64_t
create(struct fx *f, const struct dfx *x, const char *sha, int64_t now, int *rc)
{
    struct store_deploy_new nd = {.group_id = x->group,
                                  .name = "r",
                                  .nimages = 1,
                                  .nwaves = 2,
                                  .waves = {50, 100},
                                  .soak_seconds = 60,
                                  .threshold_pct = 50,
                                  .min_attempts = 1};
    const char *what = NULL;
    int64_t id = 0;
    nd.images[0] = sha;
    *rc = store_deploy_create(f->s, f->ta, &nd, now, &f->a, &id, NULL, &what);
    if (*rc == STORE_INVALID)
        assert_string_equal(what, "product");
    return id;
}

static int
report(struct fx *f, const struct dfx *x, int dev, const char *attempt, int64_t dep,
       enum store_attempt_state state, int64_t now, int *outcome)
{
    struct store_attempt at = {f->ta, x->dev[dev], attempt,
                               dep,   x->group,    SHA_A,
                               1,     state,       state >= STORE_ATTEMPT_ROLLED_BACK ? "r" : NULL};
    return store_attempt_report(f->s, &at, now, outcome);
}

static int64_t
generation(struct fx *f)
{
    int64_t g = 0;
    int64_t made_at = 0;
    assert_int_equal(store_director_generation(f->s, f->ta, &g, &made_at), STORE_OK);
    return g;
}

/* The halt checks' window starts at creation or a resume, not at an advance (docs/update.md
 * section 7), so a flag raised before an advance still counts. */
static void
test_advance_keeps_checks_since(void **state)
{
    struct fx *f = *state;
    struct dfx x;
    struct store_deployment d;
    int rc;
    deploy_fixture(f, &x);
    int64_t id = create(f, &x, SHA_A, 1000, &rc);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(store_deploy_transition(f->s, f->ta, id, STORE_DEPLOY_ADVANCE, 0, NULL, 2000,
                                             &f->a, &d, NULL),
                     STORE_OK);
    assert_int_equal(d.current_wave, 2);
    assert_int_equal(d.wave_started_at, 2000);
    assert_int_equal(d.checks_since, 1000);
    assert_int_equal(store_deploy_transition(f->s, f->ta, id, STORE_DEPLOY_PAUSE, 0, NULL, 2500,
                                             &f->a, NULL, NULL),
                     STORE_OK);
    assert_int_equal(store_deploy_transition(f->s, f->ta, id, STORE_DEPLOY_RESUME, 0, NULL, 3000,
                                             &f->a, &d, NULL),
                     STORE_OK);
    assert_int_equal(d.checks_since, 3000);
}

/* The failure rate counts devices by their latest finished attempt, not attempts. */
static void
test_failures_count_devices(void **state)
{
    struct fx *f = *state;
    struct dfx x;
    int rc, out;
    int64_t finished = 0, bad = 0;
    deploy_fixture(f, &x);
    int64_t id = create(f, &x, SHA_A, 1000, &rc);
    const char *fails[] = {"f1", "f2", "f3"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(report(f, &x, 0, fails[i], id, STORE_ATTEMPT_FAILED, 1100 + i, &out),
                         STORE_OK);
    assert_int_equal(report(f, &x, 1, "b1", id, STORE_ATTEMPT_FAILED, 1100, &out), STORE_OK);
    assert_int_equal(report(f, &x, 1, "b2", id, STORE_ATTEMPT_COMMITTED, 1200, &out), STORE_OK);
    assert_int_equal(out, STORE_ATTEMPT_MOVED);
    assert_int_equal(store_attempt_failures(f->s, id, 1, 1000, &finished, &bad), STORE_OK);
    assert_int_equal(finished, 2);
    assert_int_equal(bad, 1);
}

/* A device records at most STORE_ATTEMPTS_MAX attempts at a deployment, and only at its group's. */
static void
test_attempt_cap_and_group(void **state)
{
    struct fx *f = *state;
    struct dfx x;
    char aid[16];
    int rc, out;
    deploy_fixture(f, &x);
    int64_t id = create(f, &x, SHA_A, 1000, &rc);
    for (int i = 0; i < STORE_ATTEMPTS_MAX; i++) {
        snprintf(aid, sizeof(aid), "a%d", i);
        assert_int_equal(report(f, &x, 2, aid, id, STORE_ATTEMPT_DOWNLOADING, 1100, &out),
                         STORE_OK);
    }
    assert_int_equal(report(f, &x, 2, "one-more", id, STORE_ATTEMPT_DOWNLOADING, 1100, &out),
                     STORE_CONFLICT);
    assert_int_equal(out, STORE_ATTEMPT_CAPPED);
    assert_int_equal(report(f, &x, 2, "a0", id, STORE_ATTEMPT_COMMITTED, 1100, &out), STORE_OK);
    struct store_attempt at = {
        f->ta, x.dev[0], "g", id, x.group2, SHA_A, 1, STORE_ATTEMPT_DOWNLOADING, NULL};
    assert_int_equal(store_attempt_report(f->s, &at, 1100, &out), STORE_NOTFOUND);
}

/* Attempts of deployments over for longer than the retention go; running ones' stay. */
static void
test_attempt_purge(void **state)
{
    struct fx *f = *state;
    struct dfx x;
    int rc, out, purged = -1;
    deploy_fixture(f, &x);
    int64_t id = create(f, &x, SHA_A, 1000, &rc);
    assert_int_equal(report(f, &x, 0, "p1", id, STORE_ATTEMPT_DOWNLOADING, 1100, &out), STORE_OK);
    assert_int_equal(report(f, &x, 1, "p2", id, STORE_ATTEMPT_COMMITTED, 1100, &out), STORE_OK);
    assert_int_equal(store_attempt_purge(f->s, 5000, 100, &purged), STORE_OK);
    assert_int_equal(purged, 0);
    assert_int_equal(store_deploy_transition(f->s, f->ta, id, STORE_DEPLOY_ABORT, 0, NULL, 2000,
                                             &f->a, NULL, NULL),
                     STORE_OK);
    assert_int_equal(store_attempt_purge(f->s, 2000, 100, &purged), STORE_OK);
    assert_int_equal(purged, 0);
    assert_int_equal(store_attempt_purge(f->s, 2001, 1, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_attempt_purge(f->s, 2001, 100, &purged), STORE_OK);
    assert_int_equal(purged, 1);
}

/* An image of another product than the group's is refused. */
static void
test_product_mismatch(void **state)
{
    struct fx *f = *state;
    struct dfx x;
    int rc;
    deploy_fixture(f, &x);
    create(f, &x, SHA_B, 1000, &rc);
    assert_int_equal(rc, STORE_INVALID);
    create(f, &x, SHA_A, 1000, &rc);
    assert_int_equal(rc, STORE_OK);
}

/* An image of a group's completed deployment (its current release) is in use; deleting one that is
 * not bumps the generation. */
static void
test_image_delete_current(void **state)
{
    struct fx *f = *state;
    struct dfx x;
    int rc;
    deploy_fixture(f, &x);
    int64_t id = create(f, &x, SHA_A, 1000, &rc);
    for (int i = 0; i < 2; i++)
        assert_int_equal(store_deploy_transition(f->s, f->ta, id, STORE_DEPLOY_ADVANCE, 0, NULL,
                                                 2000, &f->a, NULL, NULL),
                         STORE_OK);
    assert_int_equal(store_image_delete(f->s, f->dir, f->ta, SHA_A, &f->a), STORE_CONFLICT);
    int64_t g = generation(f);
    assert_int_equal(store_image_delete(f->s, f->dir, f->ta, SHA_B, &f->a), STORE_OK);
    assert_int_equal(generation(f), g + 1);
}

/* Moving a device to another group, or claiming it into one, changes its director answer: a new
 * generation. */
static void
test_group_changes_bump_generation(void **state)
{
    struct fx *f = *state;
    struct dfx x;
    json_t *o = NULL;
    char id[65];
    deploy_fixture(f, &x);
    int64_t g = generation(f);
    assert_int_equal(store_device_move(f->s, f->ta, x.dev[0], x.group2, &f->a, &o), STORE_OK);
    json_decref(o);
    assert_int_equal(generation(f), g + 1);
    dev_id(7, id);
    assert_int_equal(import1(f, f->ta, &f->a, id, 0, 0), STORE_OK);
    assert_int_equal(store_device_claim(f->s, f->ta, id, x.group, &f->a, &o), STORE_OK);
    json_decref(o);
    assert_int_equal(generation(f), g + 2);
}

int
main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_advance_keeps_checks_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_count_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempt_cap_and_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempt_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_product_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_delete_current, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_changes_bump_generation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
