/* ingest: the one writer of telemetry reports (docs/telemetry.md), with group commit.
 *
 * The handler (dev_telemetry.c) has the upload parsed into a batch (telemetry_parse.c) and hands
 * it over with ingest_submit, with a completion callback. One writer thread takes everything
 * queued, up to INGEST_GROUP_MAX reports, and writes it in ONE transaction (store_telemetry_ingest,
 * on the store's telemetry writer, which this module owns); a syncer thread makes the committed
 * groups durable (store_telemetry_sync: one flush of the write-ahead log for every group committed
 * since the last) and only then calls each batch's callback with its per-report results. Reports in
 * flight (queued or being written) are bounded by queue_max: above it ingest_submit refuses, and
 * the handler answers 503 overloaded, so memory never grows with the backlog. Depends on the store
 * and metrics only. Thread-safe, but for ingest_free.
 *
 * Life: ingest_new; ingest_submit from any thread; ingest_stop (answers what is queued, refuses
 * the rest) before the HTTP layer stops; ingest_free once no thread can call ingest_submit. */
#ifndef AEGIS_INGEST_H
#define AEGIS_INGEST_H

#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define INGEST_GROUP_MAX 5000 /* reports per transaction (a batch is never split) */
#define INGEST_ERR_MAX 160

/* One report of an upload, in the order of the batch. */
struct ingest_item {
    int rejected;      /* malformed: answered "rejected", never stored */
    int oom;           /* the service ran out of memory checking it: not the report's fault */
    int64_t report_id; /* the report's report_id, -1 when it had no valid one */
    char error[INGEST_ERR_MAX]; /* why it was rejected */
    struct store_report rep;    /* a valid report (its strings point into the batch's JSON) */
    char *owned[3];             /* texts rep points at (JSON of registers, images, counters) */
};

/* The answer to a submitted batch: status 200 (body the batch's answer), 500 or 503 (body an error
 * {"error", "message"}), body stolen (may be NULL when out of memory), retry_after seconds (0:
 * none). Called exactly once per accepted batch, from one of the writer's threads (or
 * ingest_stop's caller), never under the writer's lock. */
typedef void (*ingest_done_fn)(void *ctx, int status, json_t *body, int retry_after);
struct ingest_done {
    ingest_done_fn fn;
    void *ctx;
};

/* One upload of one device. */
struct ingest_batch {
    json_t *json;               /* a reference to the request body, which the reports point into */
    char device_id[65];         /* the authenticated device */
    struct store_upload upload; /* tenant, device, dropped (first/nreports set by the writer) */
    size_t n;                   /* items */
    size_t nvalid;              /* items not rejected */
    /* the writer's queue */
    struct ingest_batch *next;
    struct ingest_done done;    /* who gets the answer */
    struct ingest_item items[]; /* n */
};

/* A batch of n items (zeroed, json NULL), or NULL when out of memory. Free with ingest_batch_free
 * (accepts NULL), which drops the JSON reference and the owned texts. */
struct ingest_batch *ingest_batch_new(size_t n);
void ingest_batch_free(struct ingest_batch *b);
/* The answer to a batch once its reports have results (telemetry.md section 2): {"stored",
 * "duplicates", "rejected", "results": [...]}. *stored, *dups and *rejected (each may be NULL) get
 * the counts. NULL when out of memory. */
json_t *ingest_batch_answer(const struct ingest_batch *b, size_t *stored, size_t *dups,
                            size_t *rejected);

typedef struct ingest ingest;
struct metrics;

/* Opens the store's telemetry writer on st and starts the writer and syncer threads. queue_max:
 * reports in flight before ingest_submit refuses (at least 1); m (may be NULL) gets the counts.
 * Returns NULL on failure (logged). st and m must outlive it. */
ingest *ingest_new(store *st, size_t queue_max, struct metrics *m);
/* Stops taking batches (ingest_submit returns INGEST_STOPPING from now on), writes and answers
 * every queued one (no request is left without a reply), and joins the threads. Idempotent; call
 * from one thread (the daemon's main), after the HTTP drain and before http_stop. */
void ingest_stop(ingest *ing);
/* ingest_stop if not done yet, then frees. Accepts NULL. Only once no thread can call ingest_*
 * (after http_stop). */
void ingest_free(ingest *ing);

enum {
    INGEST_OK = 0,
    INGEST_FULL = -1,     /* too many reports in flight: answer 503 overloaded */
    INGEST_STOPPING = -2, /* shutting down: answer 503 unavailable */
};
/* Queues batch b. INGEST_OK: b belongs to the writer, which calls done.fn(done.ctx, ...) once.
 * INGEST_FULL or INGEST_STOPPING: nothing happened (b is still the caller's, done never called);
 * *retry_after (may be NULL) gets the seconds to suggest. */
int ingest_submit(ingest *ing, struct ingest_batch *b, struct ingest_done done, int *retry_after);
/* Reports in flight, for /metrics. */
size_t ingest_in_flight(ingest *ing);

#endif
