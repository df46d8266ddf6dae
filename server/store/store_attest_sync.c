/* store_attest_sync: attestation records made durable in groups (store.h
 * store_attestation_record_durable). A record commits without a flush of the write-ahead log, then
 * waits in a queue; one syncer thread takes everything queued, flushes the log once (fdatasync
 * through SQLite's own handle of it, on a connection of the syncer's), and only then calls each
 * record's done. Every record taken was committed before the flush began, so the flush covers it;
 * the handler's thread is free meanwhile (its request is deferred), and one flush serves every
 * attestation committed while the last one ran.
 *
 * The syncer starts with the first record and stops in store_close, after answering what is
 * queued. A failed flush marks the log broken for the whole store (store_int.h wal_broken): from
 * then on no record is acknowledged until a restart. */
#include "store.h"
#include "store_attest_int.h"
#include "store_int.h"

#include "log.h"
#include "util.h"

#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct waiter {
    store_durable_fn done;
    void *arg;
    struct waiter *next;
};

struct store_attest_sync {
    store *s;
    char *path; /* the database file's */
    int started;
    struct conn conn; /* the syncer's: its handle of the log is what is flushed */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a waiter was queued, or stopping */
    struct waiter *head, *tail;
    int stopping;
    pthread_t thread;
};

/* One flush of the log: STORE_OK, or STORE_ERR (logged) and the log marked broken. */
static int
flush_log(struct store_attest_sync *g)
{
    store *s = g->s;
    sqlite3_file *wal = NULL;

    if (atomic_load(&s->wal_broken))
        return STORE_ERR;
    if (sqlite3_file_control(g->conn.db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
        wal == NULL || wal->pMethods == NULL) {
        log_error("msg=\"store: the attestation syncer has no handle of the write-ahead log\"");
        return STORE_ERR;
    }
    uint64_t t0 = util_mono_ns();
    int rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
    lathist_observe(&s->sync_lat, util_mono_ns() - t0);
    if (rc != SQLITE_OK) {
        atomic_store(&s->wal_broken, 1);
        log_error("msg=\"store: cannot flush the write-ahead log; no attestation is acknowledged "
                  "and the service is not ready until aegisd is restarted\"");
        return STORE_ERR;
    }
    return STORE_OK;
}

static void *
syncer(void *arg)
{
    struct store_attest_sync *g = arg;

    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (g->head == NULL && !g->stopping)
            pthread_cond_wait(&g->cond, &g->lock);
        if (g->head == NULL)
            break; /* stopping, nothing left */
        struct waiter *w = g->head;
        g->head = g->tail = NULL;
        pthread_mutex_unlock(&g->lock);
        int rc = flush_log(g);
        if (rc != STORE_OK)
            atomic_fetch_add(&g->s->errors, 1);
        while (w != NULL) {
            struct waiter *next = w->next;
            w->done(w->arg, rc);
            free(w);
            w = next;
        }
        pthread_mutex_lock(&g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* Starts the syncer: its connection, with the log open on it (a read opens it, and it stays open
 * as long as the connection), and its thread. Under g->lock. */
static int
syncer_start(struct store_attest_sync *g)
{
    char err[256];
    if (store__conn_open(&g->conn, g->path, err, sizeof(err)) != 0 ||
        sqlite3_exec(g->conn.db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) !=
            SQLITE_OK) {
        log_error("msg=\"store: cannot open the attestation syncer's connection\" err=\"%s\"",
                  g->conn.db != NULL ? sqlite3_errmsg(g->conn.db) : err);
        store__conn_close(&g->conn);
        memset(&g->conn, 0, sizeof(g->conn));
        return -1;
    }
    if (pthread_create(&g->thread, NULL, syncer, g) != 0) {
        log_error("msg=\"store: cannot start the attestation syncer\"");
        store__conn_close(&g->conn);
        memset(&g->conn, 0, sizeof(g->conn));
        return -1;
    }
    g->started = 1;
    return 0;
}

int
store__attest_sync_open(store *s, const char *path)
{
    struct store_attest_sync *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->path = strdup(path)) == NULL) {
        free(g);
        return -1;
    }
    g->s = s;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    s->attest_sync = g;
    return 0;
}

void
store__attest_sync_close(store *s)
{
    struct store_attest_sync *g = s->attest_sync;
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = 1;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
    if (g->started) {
        pthread_join(g->thread, NULL); /* answers what is queued first */
        store__conn_close(&g->conn);
    }
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
    free(g->path);
    free(g);
    s->attest_sync = NULL;
}

int
store_attestation_record_durable(store *s, const struct store_attestation *a, store_durable_fn done,
                                 void *arg)
{
    struct store_attest_sync *g = s->attest_sync;
    struct waiter *w = NULL;
    int rc = STORE_ERR;

    assert(g != NULL && done != NULL);
    if (atomic_load(&s->wal_broken) || (w = calloc(1, sizeof(*w))) == NULL)
        goto out;
    pthread_mutex_lock(&g->lock);
    int ready = g->started || (!g->stopping && syncer_start(g) == 0);
    pthread_mutex_unlock(&g->lock);
    if (!ready)
        goto out;
    /* Committed before it is queued: the flush that takes it began after its commit. */
    if ((rc = store__attestation_write(s, a, 1, NULL)) != STORE_OK)
        goto out;
    w->done = done;
    w->arg = arg;
    pthread_mutex_lock(&g->lock);
    if (g->tail != NULL)
        g->tail->next = w;
    else
        g->head = w;
    g->tail = w;
    w = NULL;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
out:
    free(w);
    return rc;
}
