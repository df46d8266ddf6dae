/* Unit tests of store_attestation_record_durable (server/store/store_attest_sync.c): every record
 * committed from many threads at once gets exactly one done with STORE_OK, after it is readable;
 * a refused record gets none; store_close answers whatever is still queued. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store.h"
#include "test_db_files.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEM                                                                                        \
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define UNKNOWN "9999999999999999999999999999999999999999999999999999999999999999"
#define THREADS 4
#define PER_THREAD 25

struct fx {
    char dir[64];
    char path[128];
    store *s;
    int64_t tenant;
};

static const struct store_actor ctl = {0, "aegisctl"};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256] = "";
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aegis-sas-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/aegis.db", f->dir);
    assert_int_equal(store_open(f->path, 3, &f->s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_migrate(f->s, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tenant_create(f->s, "acme", &ctl, &f->tenant), STORE_OK);
    struct store_actor a = {f->tenant, "token:1"};
    struct store_import_entry e = {D1, PEM};
    json_t *errors = NULL;
    size_t created = 0;
    assert_int_equal(store_device_import(f->s, f->tenant, &e, 1, 1, 0, &a, &errors, &created),
                     STORE_OK);
    json_decref(errors);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    if (f->s != NULL) {
        assert_int_equal(store_error_count(f->s), 0);
        store_close(f->s);
    }
    test_rm_db(f->path, f->dir);
    free(f);
    return 0;
}

/* What done saw. */
struct seen {
    atomic_int calls, ok;
};

static void
on_done(void *arg, int rc)
{
    struct seen *s = arg;
    atomic_fetch_add(&s->calls, 1);
    if (rc == STORE_OK)
        atomic_fetch_add(&s->ok, 1);
}

struct worker {
    struct fx *f;
    struct seen seen;
};

static void *
record_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct store_attestation rec = {
            .device_id = D1, .at = 1000 + i, .pass = 1, .cert_serial = "0a", .cert_not_after = 9};
        if (store_attestation_record_durable(w->f->s, &rec, on_done, &w->seen) != STORE_OK)
            return (void *)1;
    }
    return NULL;
}

/* The number of records of D1. */
static size_t
records(struct fx *f)
{
    struct store_page pg = {.limit = 1000};
    json_t *items = NULL;
    char next[129];
    assert_int_equal(store_attestation_list_device(f->s, f->tenant, D1, &pg, &items, next),
                     STORE_OK);
    size_t n = json_array_size(items);
    json_decref(items);
    return n;
}

static void
test_many_threads(void **state)
{
    struct fx *f = *state;
    pthread_t th[THREADS];
    struct worker w[THREADS];

    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.f = f};
        assert_int_equal(pthread_create(&th[i], NULL, record_many, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *rc = NULL;
        assert_int_equal(pthread_join(th[i], &rc), 0);
        assert_null(rc);
    }
    /* Each done comes once; wait for the last flush. */
    for (int tries = 0; tries < 500; tries++) {
        int total = 0;
        for (int i = 0; i < THREADS; i++)
            total += atomic_load(&w[i].seen.calls);
        if (total == THREADS * PER_THREAD)
            break;
        usleep(10 * 1000);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(atomic_load(&w[i].seen.calls), PER_THREAD);
        assert_int_equal(atomic_load(&w[i].seen.ok), PER_THREAD);
    }
    assert_int_equal(records(f), THREADS * PER_THREAD);
}

static void
test_refused_and_close(void **state)
{
    struct fx *f = *state;
    struct seen seen = {0, 0};

    /* An unknown device: nothing committed, no done. */
    struct store_attestation bad = {.device_id = UNKNOWN, .at = 1, .reason = "bad_nonce"};
    assert_int_equal(store_attestation_record_durable(f->s, &bad, on_done, &seen), STORE_NOTFOUND);
    /* Closing right after a record answers it. */
    struct store_attestation rec = {.device_id = D1, .at = 2, .reason = "blocked"};
    assert_int_equal(store_attestation_record_durable(f->s, &rec, on_done, &seen), STORE_OK);
    assert_int_equal(store_error_count(f->s), 0);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(atomic_load(&seen.calls), 1);
    assert_int_equal(atomic_load(&seen.ok), 1);

    /* The record survived the close. */
    char err[256];
    assert_int_equal(store_open(f->path, 2, &f->s, err, sizeof(err)), STORE_OK);
    assert_int_equal(records(f), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
