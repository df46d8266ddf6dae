/* ingest: the one writer of telemetry reports (docs/telemetry.md), with group commit.
 *
 * Handlers (dev_telemetry.c) validate an upload into a batch and hand it over with ingest_submit,
 * which defers the request (api_defer). One writer thread takes everything queued, up to
 * INGEST_GROUP_MAX reports, and writes it in ONE transaction (store_telemetry_ingest); a syncer
 * thread makes the committed groups durable (store_telemetry_sync: one flush of the write-ahead log
 * for every group committed since the last) and only then answers each request
 * (api_deferred_reply) with its per-report results.
 * Reports in flight (queued or being written) are bounded by config ingest_queue_max: above it
 * ingest_submit refuses, and the handler answers 503 overloaded, so memory never grows with the
 * backlog. Thread-safe. */
#ifndef AEGIS_INGEST_H
#define AEGIS_INGEST_H

#include "api.h"
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

/* One upload of one device. */
struct ingest_batch {
    json_t *json;               /* a reference to the request body, which the reports point into */
    char device_id[65];         /* the authenticated device */
    struct store_upload upload; /* tenant, device, dropped (first/nreports set by the writer) */
    size_t n;                   /* items */
    size_t nvalid;              /* items not rejected */
    /* the writer's queue */
    struct ingest_batch *next;
    api_deferred *deferred;
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

/* Starts the writer thread on app->st, with app->cfg->ingest_queue_max (app->metrics, when set at
 * write time, gets the counts). Returns NULL on failure (logged). app must outlive it. */
ingest *ingest_new(struct app *app);
/* Stops taking batches, writes and answers every queued one (no request is left without a reply),
 * joins the writer, and frees. Accepts NULL. Call after the HTTP drain and before http_stop. */
void ingest_free(ingest *ing);

enum {
    INGEST_OK = 0,
    INGEST_FULL = -1,     /* too many reports in flight: answer 503 overloaded */
    INGEST_STOPPING = -2, /* shutting down: answer 503 unavailable */
};
/* Queues batch b for request r. INGEST_OK: r is deferred and b belongs to the writer, which answers
 * r. INGEST_FULL or INGEST_STOPPING: nothing happened (b is still the caller's, r not deferred);
 * *retry_after (may be NULL) gets the seconds to suggest. */
int ingest_submit(ingest *ing, api_req *r, struct ingest_batch *b, int *retry_after);
/* Reports in flight, for /metrics. */
size_t ingest_in_flight(ingest *ing);

#endif
