/* Unit tests of the telemetry writer (server/device/ingest.c) on a real store; each batch's
 * completion callback records its answer. Covered: every submitted batch is answered after its
 * commit, groups, the in-flight bound (INGEST_FULL while the writer is held up), flush on stop and
 * free, refusal after stop, and the answer's shape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ingest.h"
#include "config.h"
#include "log.h"
#include "metrics.h"

#include "store_int.h"
#include "test_db_files.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEM                                                                                        \
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define BOOT "0123456789abcdef0123456789abcdef"
#define NREQ 40

/* --- the requests' answers, and fakes of the metrics --- */

struct fake_req {
    atomic_int replied;
    int status;
    int retry_after;
    json_t *body;
};

static void
on_done(void *ctx, int status, json_t *body, int retry_after)
{
    struct fake_req *q = ctx;
    q->status = status;
    q->body = body;
    q->retry_after = retry_after;
    atomic_fetch_add(&q->replied, 1);
}

#define DONE(f, i) ((struct ingest_done){on_done, &(f)->req[i]})

static atomic_uint_fast64_t stored_total;

void
metrics_telemetry(struct metrics *m, uint64_t stored, uint64_t duplicates, uint64_t rejected)
{
    (void)m;
    (void)duplicates;
    (void)rejected;
    atomic_fetch_add(&stored_total, stored);
}

void
metrics_ingest_in_flight(struct metrics *m, int64_t n)
{
    (void)m;
    (void)n;
}

static atomic_uint_fast64_t commits_total, group_reports_total, flushes_total;

void
metrics_ingest_commit(struct metrics *m, uint64_t reports)
{
    (void)m;
    atomic_fetch_add(&commits_total, 1);
    atomic_fetch_add(&group_reports_total, reports);
}

void
metrics_ingest_flush(struct metrics *m)
{
    (void)m;
    atomic_fetch_add(&flushes_total, 1);
}

/* --- fixture --- */

struct fx {
    char dir[64];
    char path[128];
    struct config cfg;
    store *st;
    int64_t tenant;
    int db_errors_expected;
    struct fake_req req[NREQ];
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256] = "";
    struct store_actor ctl = {0, "aegisctl"};
    assert_non_null(f);
    atomic_store(&stored_total, 0);
    atomic_store(&commits_total, 0);
    atomic_store(&group_reports_total, 0);
    atomic_store(&flushes_total, 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aegis-ingest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/aegis.db", f->dir);
    assert_int_equal(store_open(f->path, 3, &f->st, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_migrate(f->st, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tenant_create(f->st, "acme", &ctl, &f->tenant), STORE_OK);
    struct store_actor a = {f->tenant, "token:1"};
    struct store_import_entry e = {D1, PEM};
    json_t *errors = NULL;
    size_t created = 0;
    assert_int_equal(store_device_import(f->st, f->tenant, &e, 1, 1, 0, &a, &errors, &created),
                     STORE_OK);
    config_defaults(&f->cfg);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NREQ; i++)
        json_decref(f->req[i].body);
    if (!f->db_errors_expected)
        assert_int_equal(store_error_count(f->st), 0);
    store_close(f->st);
    test_rm_db(f->path, f->dir);
    free(f);
    return 0;
}

/* A batch of n heartbeats with report ids first.., the last one rejected when reject_last. */
static struct ingest_batch *
heartbeats(struct fx *f, int64_t first, size_t n, int reject_last)
{
    struct ingest_batch *b = ingest_batch_new(n);
    assert_non_null(b);
    b->n = n;
    snprintf(b->device_id, sizeof(b->device_id), "%s", D1);
    b->upload.tenant_id = f->tenant;
    b->upload.device_id = b->device_id;
    for (size_t i = 0; i < n; i++) {
        struct ingest_item *it = &b->items[i];
        struct store_report *r = &it->rep;
        it->report_id = first + (int64_t)i;
        if (reject_last && i == n - 1) {
            it->rejected = 1;
            snprintf(it->error, sizeof(it->error), "pc: bad");
            continue;
        }
        r->tenant_id = f->tenant;
        r->device_id = b->device_id;
        r->type = STORE_REPORT_HEARTBEAT;
        r->report_id = first + (int64_t)i;
        r->boot_id = BOOT;
        r->period_s = 60;
        r->nimages = 1;
        r->image_component[0] = "aegis-app";
        r->image_versions[0] = "1.0";
        it->owned[1] = strdup("{\"aegis-app\":\"1.0\"}");
        it->owned[2] = strdup("{}");
        r->images = it->owned[1];
        r->counters = it->owned[2];
        b->nvalid++;
    }
    return b;
}

static void
wait_replies(struct fx *f, int n)
{
    for (int spin = 0; spin < 2000; spin++) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += atomic_load(&f->req[i].replied);
        if (done == n)
            return;
        usleep(5000);
    }
    fail_msg("not every request was answered");
}

/* --- tests --- */

static void
test_every_batch_answered_after_commit(void **state)
{
    struct fx *f = *state;
    ingest *ing = ingest_new(f->st, (size_t)f->cfg.ingest_queue_max, NULL);
    assert_non_null(ing);
    for (int i = 0; i < NREQ; i++)
        assert_int_equal(
            ingest_submit(ing, heartbeats(f, 1 + i * 10, 10, i == 0), DONE(f, i), NULL), INGEST_OK);
    wait_replies(f, NREQ);
    for (int i = 0; i < NREQ; i++) {
        assert_int_equal(atomic_load(&f->req[i].replied), 1);
        assert_int_equal(f->req[i].status, 200);
        json_t *b = f->req[i].body;
        assert_int_equal(json_integer_value(json_object_get(b, "stored")), i == 0 ? 9 : 10);
        assert_int_equal(json_integer_value(json_object_get(b, "rejected")), i == 0 ? 1 : 0);
        assert_int_equal(json_array_size(json_object_get(b, "results")), 10);
    }
    json_t *rej = json_array_get(json_object_get(f->req[0].body, "results"), 9);
    assert_string_equal(json_string_value(json_object_get(rej, "status")), "rejected");
    assert_int_equal(json_integer_value(json_object_get(rej, "index")), 9);
    /* counted before answered: nothing is left to count once every request has its answer */
    assert_int_equal(ingest_in_flight(ing), 0);
    assert_int_equal(atomic_load(&stored_total), NREQ * 10 - 1);
    assert_int_equal(atomic_load(&group_reports_total), NREQ * 10 - 1);
    uint64_t commits = atomic_load(&commits_total), flushes = atomic_load(&flushes_total);
    assert_true(commits >= 1 && commits <= NREQ);
    assert_true(flushes >= 1 && flushes <= commits);
    /* the writer has just committed: the timer's checkpoint leaves the log to it */
    int nlog = -1, copied = -1;
    assert_int_equal(store_checkpoint(f->st, &nlog, &copied), STORE_OK);
    assert_int_equal(nlog, 0);
    atomic_store(&f->st->ingest_commit_ns, 0); /* long ago */
    assert_int_equal(store_checkpoint(f->st, &nlog, &copied), STORE_OK);
    assert_true(nlog > 0 && copied == nlog);
    ingest_free(ing);
}

/* While the writer waits for the store's write lock, reports pile up to ingest_queue_max: the next
 * batch is refused (INGEST_FULL, with a Retry-After) and stays the caller's; then everything is
 * answered. */
static void
test_bound_and_flush(void **state)
{
    struct fx *f = *state;
    int retry = 0;
    f->cfg.ingest_queue_max = 25;
    pthread_mutex_lock(&f->st->write_lock);
    ingest *ing = ingest_new(f->st, (size_t)f->cfg.ingest_queue_max, NULL);
    assert_non_null(ing);
    assert_int_equal(ingest_submit(ing, heartbeats(f, 1, 10, 0), DONE(f, 0), NULL), INGEST_OK);
    assert_int_equal(ingest_submit(ing, heartbeats(f, 11, 10, 0), DONE(f, 1), NULL), INGEST_OK);
    struct ingest_batch *b = heartbeats(f, 21, 10, 0);
    assert_int_equal(ingest_submit(ing, b, DONE(f, 2), &retry), INGEST_FULL);
    assert_true(retry >= 1);
    assert_int_equal(ingest_in_flight(ing), 20);
    ingest_batch_free(b);
    assert_int_equal(ingest_submit(ing, heartbeats(f, 21, 5, 0), DONE(f, 2), NULL), INGEST_OK);
    pthread_mutex_unlock(&f->st->write_lock);
    /* free flushes: every request is answered before it returns */
    ingest_free(ing);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&f->req[i].replied), 1);
        assert_int_equal(f->req[i].status, 200);
    }
    /* group commit: the batches that queued while the writer waited went in one transaction */
    assert_true(atomic_load(&commits_total) <= 2);
    assert_int_equal(atomic_load(&group_reports_total), 25);
    /* a batch larger than the bound passes when nothing else is in flight */
    ing = ingest_new(f->st, (size_t)f->cfg.ingest_queue_max, NULL);
    assert_non_null(ing);
    assert_int_equal(ingest_submit(ing, heartbeats(f, 100, 30, 0), DONE(f, 3), NULL), INGEST_OK);
    ingest_free(ing);
    assert_int_equal(f->req[3].status, 200);
    assert_int_equal(json_integer_value(json_object_get(f->req[3].body, "stored")), 30);
}

/* A report is acknowledged only once the log is flushed: when the flush fails, the committed
 * batch is answered 503 (the device keeps it and sends it again; the retry is a duplicate). */
static void
test_failed_flush_is_503(void **state)
{
    struct fx *f = *state;
    ingest *ing = ingest_new(f->st, (size_t)f->cfg.ingest_queue_max, NULL);
    assert_non_null(ing);
    atomic_store(&f->st->wal_broken, 1); /* as after a failed fdatasync (sticky) */
    f->db_errors_expected = 1;
    log_set_level(LOG_ERROR + 1);
    assert_int_equal(ingest_submit(ing, heartbeats(f, 1, 3, 0), DONE(f, 0), NULL), INGEST_OK);
    ingest_free(ing);
    log_set_level(LOG_WARN);
    assert_int_equal(f->req[0].status, 503);
    assert_true(f->req[0].retry_after >= 1);
    assert_string_equal(json_string_value(json_object_get(f->req[0].body, "error")), "unavailable");
    assert_int_equal(atomic_load(&stored_total), 0); /* nothing counted as stored */
    /* nor is a log whose flush failed copied into the database */
    int nlog = -1, copied = -1;
    atomic_store(&f->st->ingest_commit_ns, 0);
    assert_int_equal(store_checkpoint(f->st, &nlog, &copied), STORE_OK);
    assert_int_equal(nlog, 0);
}

/* A store failure answers 503 with Retry-After; nothing is half-stored. */
static void
test_store_failure_is_503(void **state)
{
    struct fx *f = *state;
    ingest *ing = ingest_new(f->st, (size_t)f->cfg.ingest_queue_max, NULL);
    assert_non_null(ing);
    struct ingest_batch *b = heartbeats(f, 1, 3, 0);
    b->upload.tenant_id = 999999; /* no such tenant: the foreign key fails the transaction */
    for (size_t i = 0; i < b->n; i++)
        b->items[i].rep.tenant_id = 999999;
    f->db_errors_expected = 1;
    log_set_level(LOG_ERROR + 1);
    assert_int_equal(ingest_submit(ing, b, DONE(f, 0), NULL), INGEST_OK);
    ingest_free(ing);
    log_set_level(LOG_WARN);
    assert_int_equal(f->req[0].status, 503);
    assert_true(f->req[0].retry_after >= 1);
    assert_string_equal(json_string_value(json_object_get(f->req[0].body, "error")), "unavailable");
}

/* ingest_stop answers what is queued and refuses the rest; the batch refused stays the caller's,
 * its callback never called; stop is idempotent and free after it is fine (main.c's order). */
static void
test_stop_answers_queued_refuses_rest(void **state)
{
    struct fx *f = *state;
    int retry = 0;
    pthread_mutex_lock(&f->st->write_lock); /* the writer waits: both batches stay queued */
    ingest *ing = ingest_new(f->st, (size_t)f->cfg.ingest_queue_max, NULL);
    assert_non_null(ing);
    assert_int_equal(ingest_submit(ing, heartbeats(f, 1, 5, 0), DONE(f, 0), NULL), INGEST_OK);
    assert_int_equal(ingest_submit(ing, heartbeats(f, 6, 5, 0), DONE(f, 1), NULL), INGEST_OK);
    pthread_mutex_unlock(&f->st->write_lock);
    ingest_stop(ing);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(atomic_load(&f->req[i].replied), 1);
        assert_int_equal(f->req[i].status, 200);
    }
    struct ingest_batch *b = heartbeats(f, 11, 5, 0);
    assert_int_equal(ingest_submit(ing, b, DONE(f, 2), &retry), INGEST_STOPPING);
    assert_true(retry >= 1);
    assert_int_equal(atomic_load(&f->req[2].replied), 0);
    ingest_batch_free(b);
    ingest_stop(ing);
    ingest_free(ing);
    assert_int_equal(atomic_load(&f->req[2].replied), 0);
}

static void
test_new_and_free_edge_cases(void **state)
{
    struct fx *f = *state;
    ingest_free(NULL);
    ingest_stop(NULL);
    ingest_batch_free(NULL);
    assert_null(ingest_batch_new(0));
    ingest *ing = ingest_new(f->st, (size_t)f->cfg.ingest_queue_max, NULL);
    assert_non_null(ing);
    ingest_free(ing); /* nothing queued */
}

int
main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_batch_answered_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_and_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failure_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_flush_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_answers_queued_refuses_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_and_free_edge_cases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
