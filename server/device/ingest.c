/* ingest: one writer thread with group commit, and a syncer thread (ingest.h).
 *
 * The queue is a singly linked list of batches under one mutex; the writer takes whole batches off
 * its head until the next would pass INGEST_GROUP_MAX reports and writes them with one
 * store_telemetry_ingest call (one transaction). The commit reaches the write-ahead log without
 * waiting for the disk; the group's batches then go to the syncer, which makes everything committed
 * so far durable with one store_telemetry_sync, answers every request of those groups, and only
 * then releases their reports from the in-flight count. So the disk's flush of group k overlaps
 * the writing of group k+1, and one flush often covers several groups. The writer's arrays are
 * sized once at start, so a group costs no allocation beyond the answers. */
#include "ingest.h"

#include "log.h"
#include "metrics.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MIN_S 1
#define RETRY_MAX_S 30
#define WRITER_RATE_GUESS 5000 /* reports per second, for the Retry-After of a full queue */
#define BATCH_MAX 1000         /* items of one batch (the protocol allows 100) */

struct ingest {
    store_tel_writer *w; /* the store's telemetry writer, owned */
    struct metrics *metrics;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a batch was queued, or stopping */
    struct ingest_batch *head, *tail;
    size_t in_flight; /* items queued or being written */
    size_t max;
    int stopping; /* under lock: ingest_submit refuses */
    int stopped;  /* ingest_stop has joined the threads (its caller's thread only) */
    int locks;    /* lock, cond and sync_cond initialised: 0..3 */
    pthread_t thread;
    int started;
    /* committed batches waiting for the syncer (under lock) */
    pthread_cond_t sync_cond; /* a batch was committed, or sync_stopping */
    struct ingest_batch *sync_head, *sync_tail;
    int sync_stopping;
    pthread_t syncer;
    int syncer_started;
    /* the writer's own arrays, INGEST_GROUP_MAX + BATCH slack */
    struct store_report **reps;
    struct store_upload *ups;
    struct ingest_batch **group;
    size_t cap_reps, cap_group;
};

/* --- batches --- */

struct ingest_batch *
ingest_batch_new(size_t n)
{
    if (n == 0 || n > BATCH_MAX)
        return NULL;
    return calloc(1, sizeof(struct ingest_batch) + n * sizeof(struct ingest_item));
}

void
ingest_batch_free(struct ingest_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        for (size_t k = 0; k < sizeof(b->items[i].owned) / sizeof(b->items[i].owned[0]); k++)
            free(b->items[i].owned[k]);
    json_decref(b->json);
    free(b);
}

/* One entry of "results". */
static json_t *
result_json(const struct ingest_item *it, size_t index)
{
    if (it->rejected) {
        json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "index", (json_int_t)index, "status",
                              "rejected", "error", "invalid_report", "message", it->error);
        if (o != NULL && it->report_id > 0 &&
            json_object_set_new(o, "report_id", json_integer(it->report_id)) != 0) {
            json_decref(o);
            o = NULL;
        }
        return o;
    }
    const char *status = it->rep.result == STORE_REPORT_STORED      ? "stored"
                         : it->rep.result == STORE_REPORT_DUPLICATE ? "duplicate"
                                                                    : "pending";
    return json_pack("{s:I, s:s}", "report_id", (json_int_t)it->report_id, "status", status);
}

json_t *
ingest_batch_answer(const struct ingest_batch *b, size_t *stored, size_t *dups, size_t *rejected)
{
    size_t ns = 0, nd = 0, nr = 0;
    json_t *results = json_array(), *answer = NULL;
    if (results == NULL)
        goto out;
    for (size_t i = 0; i < b->n; i++) {
        const struct ingest_item *it = &b->items[i];
        json_t *r = result_json(it, i);
        if (r == NULL || json_array_append_new(results, r) != 0)
            goto out;
        if (it->rejected)
            nr++;
        else if (it->rep.result == STORE_REPORT_STORED)
            ns++;
        else if (it->rep.result == STORE_REPORT_DUPLICATE)
            nd++;
    }
    answer = json_pack("{s:I, s:I, s:I, s:O}", "stored", (json_int_t)ns, "duplicates",
                       (json_int_t)nd, "rejected", (json_int_t)nr, "results", results);
out:
    json_decref(results);
    if (stored != NULL)
        *stored = ns;
    if (dups != NULL)
        *dups = nd;
    if (rejected != NULL)
        *rejected = nr;
    return answer;
}

/* --- the writer --- */

/* Seconds a device should wait when the queue holds n reports. */
static int
retry_seconds(size_t n)
{
    size_t s = RETRY_MIN_S + n / WRITER_RATE_GUESS;
    return s > RETRY_MAX_S ? RETRY_MAX_S : (int)s;
}

/* Takes n reports off the in-flight count once their requests are answered. */
static void
release(ingest *ing, size_t n)
{
    pthread_mutex_lock(&ing->lock);
    ing->in_flight -= n;
    metrics_ingest_in_flight(ing->metrics, (int64_t)ing->in_flight);
    pthread_mutex_unlock(&ing->lock);
}

/* Answers a list of batches (linked by next) and frees them. ok: their reports are durable. A
 * batch is counted in the metrics and taken off the in-flight count before its answer goes out, so
 * whoever reads /metrics after an answer sees that answer counted. */
static void
answer_batches(ingest *ing, struct ingest_batch *b, int ok)
{
    while (b != NULL) {
        struct ingest_batch *next = b->next;
        int status = 503;
        json_t *answer = NULL;
        if (ok) {
            size_t st = 0, d = 0, r = 0;
            answer = ingest_batch_answer(b, &st, &d, &r);
            status = answer != NULL ? 200 : 500;
            metrics_telemetry(ing->metrics, st, d, r);
        }
        if (status == 503)
            answer = json_pack("{s:s, s:s}", "error", "unavailable", "message",
                               "the reports could not be stored; retry later");
        else if (status == 500)
            answer = json_pack("{s:s, s:s}", "error", "internal", "message", "out of memory");
        release(ing, b->n);
        b->done.fn(b->done.ctx, status, answer, status == 503 ? retry_seconds(0) + 1 : 0);
        ingest_batch_free(b);
        b = next;
    }
}

/* Links the group's batches into a list (by next); returns its head, *tail its last. */
static struct ingest_batch *
link_group(struct ingest_batch **group, size_t ng, struct ingest_batch **tail)
{
    for (size_t i = 0; i < ng; i++)
        group[i]->next = i + 1 < ng ? group[i + 1] : NULL;
    *tail = group[ng - 1];
    return group[0];
}

/* Hands a committed group to the syncer. */
static void
to_syncer(ingest *ing, struct ingest_batch **group, size_t ng)
{
    struct ingest_batch *tail;
    struct ingest_batch *head = link_group(group, ng, &tail);
    pthread_mutex_lock(&ing->lock);
    if (ing->sync_tail != NULL)
        ing->sync_tail->next = head;
    else
        ing->sync_head = head;
    ing->sync_tail = tail;
    pthread_cond_signal(&ing->sync_cond);
    pthread_mutex_unlock(&ing->lock);
}

/* Lays the group's valid reports and uploads out for the store. Returns the number of reports. */
static size_t
lay_out(ingest *ing, struct ingest_batch **group, size_t ng)
{
    size_t nrep = 0;
    for (size_t i = 0; i < ng; i++) {
        struct ingest_batch *b = group[i];
        b->upload.first = nrep;
        for (size_t k = 0; k < b->n; k++)
            if (!b->items[k].rejected)
                ing->reps[nrep++] = &b->items[k].rep;
        b->upload.nreports = nrep - b->upload.first;
        ing->ups[i] = b->upload;
    }
    return nrep;
}

/* Writes one group in one transaction; when a batch is refused as invalid (a bug: handlers validate
 * with the store's rules), each batch is written on its own so that one cannot fail the others. */
static void
write_group(ingest *ing, struct ingest_batch **group, size_t ng)
{
    size_t nrep = lay_out(ing, group, ng);
    uint64_t t0 = util_mono_ns();
    int rc = store_telemetry_ingest(ing->w, ing->reps, nrep, ing->ups, ng, util_now());
    log_debug("msg=\"telemetry group written\" batches=%zu reports=%zu rc=%d dur_ms=%.2f", ng, nrep,
              rc, (double)(util_mono_ns() - t0) / 1e6);
    if (rc == STORE_INVALID && ng > 1) {
        for (size_t i = 0; i < ng; i++)
            write_group(ing, &group[i], 1);
        return;
    }
    if (rc == STORE_OK) {
        metrics_ingest_commit(ing->metrics, nrep);
        to_syncer(ing, group, ng);
        return;
    }
    log_error("msg=\"telemetry reports not stored\" batches=%zu reports=%zu rc=%d", ng, nrep, rc);
    struct ingest_batch *tail;
    answer_batches(ing, link_group(group, ng, &tail), 0);
}

static void *
writer(void *arg)
{
    ingest *ing = arg;
    for (;;) {
        size_t ng = 0, items = 0;
        pthread_mutex_lock(&ing->lock);
        while (ing->head == NULL && !ing->stopping)
            pthread_cond_wait(&ing->cond, &ing->lock);
        if (ing->head == NULL) {
            pthread_mutex_unlock(&ing->lock);
            break; /* stopping, and everything is answered */
        }
        while (ing->head != NULL && ng < ing->cap_group &&
               (ng == 0 || items + ing->head->n <= INGEST_GROUP_MAX)) {
            struct ingest_batch *b = ing->head;
            ing->head = b->next;
            b->next = NULL;
            items += b->n;
            ing->group[ng++] = b;
        }
        if (ing->head == NULL)
            ing->tail = NULL;
        pthread_mutex_unlock(&ing->lock);

        write_group(ing, ing->group, ng);
    }
    return NULL;
}

/* Makes committed groups durable and answers them, as many as are waiting per flush. */
static void *
syncer(void *arg)
{
    ingest *ing = arg;
    for (;;) {
        pthread_mutex_lock(&ing->lock);
        while (ing->sync_head == NULL && !ing->sync_stopping) {
            if (store_telemetry_log_ok(ing->w)) {
                pthread_cond_wait(&ing->sync_cond, &ing->lock);
                continue;
            }
            /* The last flush could not open the log (the store is not ready): try again every
             * second, so that readiness comes back without waiting for an upload. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&ing->sync_cond, &ing->lock, &ts) == ETIMEDOUT &&
                ing->sync_head == NULL && !ing->sync_stopping) {
                pthread_mutex_unlock(&ing->lock);
                (void)store_telemetry_sync(ing->w); /* logs its own failure */
                pthread_mutex_lock(&ing->lock);
            }
        }
        struct ingest_batch *list = ing->sync_head;
        ing->sync_head = ing->sync_tail = NULL;
        pthread_mutex_unlock(&ing->lock);
        if (list == NULL)
            break; /* stopping, and everything is answered */
        int durable = store_telemetry_sync(ing->w) == STORE_OK;
        metrics_ingest_flush(ing->metrics);
        answer_batches(ing, list, durable);
    }
    return NULL;
}

/* Stops the threads started (each answers what it holds first), destroys the locks made, closes
 * the writer, frees. For ingest_new's failure and ingest_free. */
static void
destroy(ingest *ing)
{
    ingest_stop(ing);
    if (ing->locks >= 3)
        pthread_cond_destroy(&ing->sync_cond);
    if (ing->locks >= 2)
        pthread_cond_destroy(&ing->cond);
    if (ing->locks >= 1)
        pthread_mutex_destroy(&ing->lock);
    store_tel_writer_close(ing->w);
    free(ing->reps);
    free(ing->ups);
    free(ing->group);
    free(ing);
}

ingest *
ingest_new(store *st, size_t queue_max, struct metrics *m)
{
    ingest *ing = calloc(1, sizeof(*ing));
    char err[256] = "out of memory or threads";

    assert(st != NULL);
    if (ing == NULL)
        goto fail;
    ing->metrics = m;
    ing->max = queue_max > 0 ? queue_max : 1;
    /* A group holds at most INGEST_GROUP_MAX reports, plus one batch that started it alone. */
    ing->cap_reps = INGEST_GROUP_MAX + BATCH_MAX;
    ing->cap_group = INGEST_GROUP_MAX;
    ing->reps = calloc(ing->cap_reps, sizeof(struct store_report *));
    ing->ups = calloc(ing->cap_group, sizeof(*ing->ups));
    ing->group = calloc(ing->cap_group, sizeof(struct ingest_batch *));
    if (ing->reps == NULL || ing->ups == NULL || ing->group == NULL)
        goto fail;
    if (store_tel_writer_open(st, &ing->w, err, sizeof(err)) != STORE_OK)
        goto fail;
    if (pthread_mutex_init(&ing->lock, NULL) != 0)
        goto fail;
    ing->locks = 1;
    if (pthread_cond_init(&ing->cond, NULL) != 0)
        goto fail;
    ing->locks = 2;
    if (pthread_cond_init(&ing->sync_cond, NULL) != 0)
        goto fail;
    ing->locks = 3;
    if (pthread_create(&ing->syncer, NULL, syncer, ing) != 0)
        goto fail;
    ing->syncer_started = 1;
    if (pthread_create(&ing->thread, NULL, writer, ing) != 0)
        goto fail;
    ing->started = 1;
    return ing;
fail:
    log_error("msg=\"telemetry writer not started: %s\"", err);
    if (ing != NULL)
        destroy(ing);
    return NULL;
}

/* Sets a stop flag under the lock and wakes the thread that waits on cond. */
static void
raise_flag(ingest *ing, int *flag, pthread_cond_t *cond)
{
    pthread_mutex_lock(&ing->lock);
    *flag = 1;
    pthread_cond_signal(cond);
    pthread_mutex_unlock(&ing->lock);
}

void
ingest_stop(ingest *ing)
{
    if (ing == NULL || ing->stopped)
        return;
    ing->stopped = 1;
    if (ing->locks < 3) {
        assert(!ing->started && !ing->syncer_started); /* threads come after the locks */
        return;
    }
    /* From here ingest_submit refuses: nothing is queued behind the writer's last group. */
    raise_flag(ing, &ing->stopping, &ing->cond);
    if (ing->started)
        pthread_join(ing->thread, NULL);
    /* the writer has handed over its last group: let the syncer answer it and stop */
    raise_flag(ing, &ing->sync_stopping, &ing->sync_cond);
    if (ing->syncer_started)
        pthread_join(ing->syncer, NULL);
    assert(ing->head == NULL && ing->sync_head == NULL && ing->in_flight == 0);
}

void
ingest_free(ingest *ing)
{
    if (ing != NULL)
        destroy(ing);
}

int
ingest_submit(ingest *ing, struct ingest_batch *b, struct ingest_done done, int *retry_after)
{
    int rc = INGEST_OK;
    assert(ing != NULL && b != NULL && done.fn != NULL);
    if (retry_after != NULL)
        *retry_after = 0;
    pthread_mutex_lock(&ing->lock);
    if (ing->stopping) {
        rc = INGEST_STOPPING;
        if (retry_after != NULL)
            *retry_after = RETRY_MAX_S;
        goto out;
    }
    /* A batch larger than the whole queue still passes when nothing else is in flight. */
    if (ing->in_flight > 0 && ing->in_flight + b->n > ing->max) {
        rc = INGEST_FULL;
        if (retry_after != NULL)
            *retry_after = retry_seconds(ing->in_flight);
        goto out;
    }
    b->done = done;
    b->next = NULL;
    if (ing->tail != NULL)
        ing->tail->next = b;
    else
        ing->head = b;
    ing->tail = b;
    ing->in_flight += b->n;
    metrics_ingest_in_flight(ing->metrics, (int64_t)ing->in_flight);
    pthread_cond_signal(&ing->cond);
out:
    pthread_mutex_unlock(&ing->lock);
    return rc;
}

size_t
ingest_in_flight(ingest *ing)
{
    pthread_mutex_lock(&ing->lock);
    size_t n = ing->in_flight;
    pthread_mutex_unlock(&ing->lock);
    return n;
}
