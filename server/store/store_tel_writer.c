/* store_tel_writer: the telemetry writer's state (store.h "telemetry writer"): its own connection
 * outside the pool, its cache of known buckets, and the flush of the write-ahead log that makes its
 * commits durable. The store itself knows nothing of it: the writer only reports to the store what
 * is store-wide (a failed flush: the store is not ready; its last commit: checkpoints wait). */
#include "store_tel.h"

#include "log.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 64 MiB of page cache (negative: KiB), enough for the hot pages of the report indexes of a large
 * fleet; the connection checkpoints by itself; its commits are made durable by
 * store_telemetry_sync, off the writer's path. */
static const char SQL_WRITER_SETUP[] = "PRAGMA cache_size = -65536; "
                                       "PRAGMA wal_autocheckpoint = 10000; "
                                       "PRAGMA synchronous = NORMAL";

struct store_tel_writer {
    store *s;
    /* Outside the pool: its page cache stays warm between group commits (a pool connection's is
     * dropped whenever another connection has written). lock serialises its (normally single)
     * user, and guards buckets. */
    struct conn conn;
    pthread_mutex_t lock;
    struct store_agg buckets;
    /* The log's path and an open descriptor of it (opened on first use, reopened if the file was
     * replaced), for store_telemetry_sync. Guarded by sync_lock. */
    pthread_mutex_t sync_lock;
    char *wal_path;
    int wal_fd;
    int locks; /* mutexes initialised: 0, 1 (lock) or 2 */
};

/* The path of the store's database file, from a pool connection (caller frees), or NULL. */
static char *
db_path(store *s)
{
    struct conn *c = store__take(s);
    const char *p = sqlite3_db_filename(c->db, "main");
    char *copy = p != NULL && p[0] != '\0' ? strdup(p) : NULL;
    store__give(s, c);
    return copy;
}

static int wal_open(store_tel_writer *w);

int
store_tel_writer_open(store *s, store_tel_writer **out, char *err, size_t errlen)
{
    store_tel_writer *w = calloc(1, sizeof(*w));
    char *path = NULL;
    int rc = STORE_ERR;

    assert(s != NULL && out != NULL);
    *out = NULL;
    if (w == NULL || (path = db_path(s)) == NULL ||
        (w->wal_path = malloc(strlen(path) + sizeof("-wal"))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    w->s = s;
    w->wal_fd = -1;
    sprintf(w->wal_path, "%s-wal", path);
    for (; w->locks < 2; w->locks++) {
        if (pthread_mutex_init(w->locks == 0 ? &w->lock : &w->sync_lock, NULL) != 0) {
            snprintf(err, errlen, "out of resources for a lock");
            goto out;
        }
    }
    if (store__conn_open(&w->conn, path, err, errlen) != 0)
        goto out;
    if (sqlite3_exec(w->conn.db, SQL_WRITER_SETUP, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot configure database %s: %s", path, sqlite3_errmsg(w->conn.db));
        goto out;
    }
    /* Everything the writer needs is opened now, not at its first flush: started short of file
     * descriptors, the daemon fails here instead of answering every upload 503 later. The store
     * has run its migrations, so the log exists. */
    if (wal_open(w) != 0) {
        snprintf(err, errlen, "cannot open the write-ahead log %s: %s", w->wal_path,
                 strerror(errno));
        goto out;
    }
    *out = w;
    w = NULL;
    rc = STORE_OK;
out:
    store_tel_writer_close(w);
    free(path);
    return rc;
}

void
store_tel_writer_close(store_tel_writer *w)
{
    if (w == NULL)
        return;
    if (w->conn.db != NULL)
        store__conn_close(&w->conn);
    store__agg_free(&w->buckets);
    if (w->locks >= 2)
        pthread_mutex_destroy(&w->sync_lock);
    if (w->locks >= 1)
        pthread_mutex_destroy(&w->lock);
    if (w->wal_fd >= 0)
        close(w->wal_fd);
    free(w->wal_path);
    free(w);
}

struct conn *
store__telw_take(store_tel_writer *w)
{
    pthread_mutex_lock(&w->lock);
    return &w->conn;
}

void
store__telw_give(store_tel_writer *w, struct conn *c)
{
    assert(c == &w->conn);
    store__conn_settle(w->s, c);
    pthread_mutex_unlock(&w->lock);
}

store *
store__telw_store(const store_tel_writer *w)
{
    return w->s;
}

struct store_agg *
store__telw_buckets(store_tel_writer *w)
{
    return &w->buckets;
}

void
store__telw_committed(store_tel_writer *w)
{
    atomic_store(&w->s->ingest_commit_ns, util_mono_ns());
}

/* --- durability --- */

/* Opens the write-ahead log for store_telemetry_sync, and syncs its directory once, so that a log
 * SQLite has just created is still found after a power loss. */
static int
wal_open(store_tel_writer *w)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(w->wal_path, '/');
    int fd = open(w->wal_path, O_RDONLY | O_CLOEXEC), dfd = -1, rc = -1;

    if (fd < 0)
        goto out;
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == w->wal_path ? 1 : (int)(slash - w->wal_path),
                 w->wal_path);
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0)
        goto out;
    w->wal_fd = fd;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* 1 when wal_fd is still the log SQLite writes (not unlinked, and the file at its path). */
static int
wal_current(const store_tel_writer *w)
{
    struct stat open_st, path_st;
    return fstat(w->wal_fd, &open_st) == 0 && open_st.st_nlink > 0 &&
           stat(w->wal_path, &path_st) == 0 && open_st.st_ino == path_st.st_ino &&
           open_st.st_dev == path_st.st_dev;
}

int
store_telemetry_sync(store_tel_writer *w)
{
    store *s = w->s;
    int rc = STORE_ERR;

    pthread_mutex_lock(&w->sync_lock);
    if (w->wal_fd >= 0 && !wal_current(w)) {
        close(w->wal_fd);
        w->wal_fd = -1;
    }
    if (w->wal_fd < 0 && wal_open(w) != 0) {
        atomic_store(&s->wal_unopened, 1);
        log_error("msg=\"store: cannot open the write-ahead log to sync it\" path=%s error=\"%s\"",
                  w->wal_path, strerror(errno));
        goto out;
    }
    atomic_store(&s->wal_unopened, 0);
    /* sticky: a failed flush may have dropped the pages it could not write (Linux reports it
     * once), so a later flush that succeeds proves nothing */
    if (atomic_load(&s->wal_broken))
        goto out;
    uint64_t t0 = util_mono_ns();
    int synced = fdatasync(w->wal_fd);
    lathist_observe(&s->sync_lat, util_mono_ns() - t0);
    if (synced != 0) {
        atomic_store(&s->wal_broken, 1);
        log_error("msg=\"store: cannot flush the write-ahead log; no telemetry is acknowledged and "
                  "the service is not ready until aegisd is restarted\" path=%s error=\"%s\"",
                  w->wal_path, strerror(errno));
        goto out;
    }
    rc = STORE_OK;
out:
    if (rc != STORE_OK)
        atomic_fetch_add(&s->errors, 1);
    pthread_mutex_unlock(&w->sync_lock);
    return rc;
}

int
store_telemetry_log_ok(store_tel_writer *w)
{
    return !atomic_load(&w->s->wal_unopened);
}
