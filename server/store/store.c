/* store: the SQLite database behind store.h, and what keeps it durable: opening it (file mode,
 * pragmas, write-ahead log), the pool of connections, transactions, retention batches, readiness
 * and checkpoints. Each resource's SQL is in its own store_*.c file (docs/architecture.md, "The
 * store"); the telemetry writer's own connection and the flush of the log are store_tel_writer.c's.
 *
 * A store is a pool of connections. A call takes an idle connection for its whole duration (waiting
 * on a condition variable while all are busy), so a connection is only ever used by one thread at a
 * time and is opened with SQLITE_OPEN_NOMUTEX. Each connection keeps its prepared statements in a
 * small cache keyed by the address of the SQL string constant; every statement is reset when it is
 * handed out and again when the connection goes back to the pool, so no read transaction outlives a
 * call.
 *
 * Changes run between BEGIN IMMEDIATE and COMMIT and write their audit row in the same transaction.
 * Values are only ever bound, never formatted into SQL. Database errors are logged with SQLite's
 * message (never with bound values) and counted for /metrics. */
#include "store.h"
#include "store_int.h"

#include "errbuf.h"
#include "log.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- SQL --- */
/* Every statement is a named constant: the statement cache is keyed by these addresses. */

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SYNC_NORMAL[] = "PRAGMA synchronous=NORMAL";
static const char SQL_SYNC_FULL[] = "PRAGMA synchronous=FULL";
static const char SQL_PING[] = "SELECT count(*) FROM sqlite_schema";

/* --- Errors --- */

/* Logs and counts a database error on c. what names the operation, never a value. Returns
 * STORE_ERR. */
int
store__db_error(store *s, struct conn *c, const char *what)
{
    atomic_fetch_add(&s->errors, 1);
    log_error("msg=\"store: %s failed\" sqlite=\"%s\" code=%d", what,
              c != NULL ? sqlite3_errmsg(c->db) : "-",
              c != NULL ? sqlite3_extended_errcode(c->db) : 0);
    return STORE_ERR;
}

/* Turns the failed result rc of a write into a STORE code. A unique violation is a conflict and a
 * CHECK violation a bad argument (neither is a database error); anything else is logged and
 * counted. */
int
store__write_error(store *s, struct conn *c, int rc, const char *what)
{
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_CONFLICT;
    if (rc == SQLITE_CONSTRAINT_CHECK) {
        log_warn("msg=\"store: %s refused by a CHECK constraint\" sqlite=\"%s\"", what,
                 sqlite3_errmsg(c->db));
        return STORE_INVALID;
    }
    return store__db_error(s, c, what);
}

/* --- Connections and statements --- */

/* The cached statement for sql (one of the SQL_ constants above), reset and without bindings.
 * Borrowed from c; NULL on error (logged). */
sqlite3_stmt *
store__prep(store *s, struct conn *c, const char *sql)
{
    assert(s != NULL && c != NULL && c->db != NULL && sql != NULL);
    for (int i = 0; i < c->ncache; i++) {
        if (c->cache[i].sql == sql) {
            sqlite3_reset(c->cache[i].st);
            sqlite3_clear_bindings(c->cache[i].st);
            return c->cache[i].st;
        }
    }
    if (c->ncache == STMT_CACHE_MAX) {
        atomic_fetch_add(&s->errors, 1);
        log_error("msg=\"store: statement cache full (raise STMT_CACHE_MAX)\"");
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        store__db_error(s, c, "prepare");
        return NULL;
    }
    c->cache[c->ncache].sql = sql;
    c->cache[c->ncache].st = st;
    c->ncache++;
    return st;
}

/* Runs a statement without parameters that returns no rows (BEGIN, COMMIT, ...). */
static int
exec1(store *s, struct conn *c, const char *sql)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    if (st == NULL)
        return STORE_ERR;
    int rc = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : store__db_error(s, c, sql);
    sqlite3_reset(st);
    return rc;
}

static void
release_write(store *s, struct conn *c)
{
    if (c->light) {
        (void)exec1(s, c, SQL_SYNC_FULL);
        c->light = 0;
    }
    if (c->writing) {
        c->writing = 0;
        pthread_mutex_unlock(&s->write_lock);
    }
}

static int
begin_tx(store *s, struct conn *c, int light)
{
    assert(!c->writing); /* write_lock is not recursive: a nested begin would deadlock */
    pthread_mutex_lock(&s->write_lock);
    c->writing = 1;
    if (light) {
        c->light = 1;
        if (exec1(s, c, SQL_SYNC_NORMAL) != STORE_OK)
            goto fail;
    }
    if (exec1(s, c, SQL_BEGIN) != STORE_OK)
        goto fail;
    return STORE_OK;
fail:
    release_write(s, c);
    return STORE_ERR;
}

int
store__begin(store *s, struct conn *c)
{
    return begin_tx(s, c, 0);
}

int
store__begin_light(store *s, struct conn *c)
{
    return begin_tx(s, c, 1);
}

/* Ends the transaction open on c, if any: commits when rc is STORE_OK, else rolls back. Returns rc,
 * or STORE_ERR when the commit failed. Accepts c == NULL. */
int
store__end_tx(store *s, struct conn *c, int rc)
{
    if (c == NULL)
        return rc;
    if (!sqlite3_get_autocommit(c->db)) {
        uint64_t t0 = util_mono_ns();
        if (rc == STORE_OK && exec1(s, c, SQL_COMMIT) == STORE_OK) {
            lathist_observe(&s->commit_lat, util_mono_ns() - t0);
        } else {
            if (!sqlite3_get_autocommit(c->db))
                (void)exec1(s, c, SQL_ROLLBACK);
            rc = rc == STORE_OK ? STORE_ERR : rc;
        }
    }
    release_write(s, c);
    return rc;
}

int
store__finish(store *s, struct conn *c, int rc, json_t *obj, json_t **out)
{
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && out != NULL)
        *out = obj;
    else
        json_decref(obj);
    return rc;
}

/* Takes an idle connection, waiting while all are in use. The caller gives it back with
 * store__give(). */
struct conn *
store__take(store *s)
{
    atomic_fetch_add(&s->calls, 1);
    pthread_mutex_lock(&s->lock);
    while (s->nidle == 0)
        pthread_cond_wait(&s->cond, &s->lock);
    assert(s->nidle <= s->size);
    struct conn *c = s->idle[--s->nidle];
    pthread_mutex_unlock(&s->lock);
    return c;
}

/* Puts c back into the pool: resets every statement (ending any read), drops their bindings, and
 * rolls back a transaction a caller forgot. Accepts NULL. */
/* Ends whatever a call left on c: statements reset, bindings dropped, a transaction rolled back. */
static void
conn_settle(store *s, struct conn *c)
{
    for (int i = 0; i < c->ncache; i++) {
        sqlite3_reset(c->cache[i].st);
        sqlite3_clear_bindings(c->cache[i].st);
    }
    if (!sqlite3_get_autocommit(c->db)) {
        log_error("msg=\"store: transaction left open, rolling back\"");
        (void)exec1(s, c, SQL_ROLLBACK);
    }
    release_write(s, c);
}

void
store__give(store *s, struct conn *c)
{
    if (c == NULL)
        return;
    conn_settle(s, c);
    pthread_mutex_lock(&s->lock);
    assert(s->nidle < s->size); /* else a connection was given back twice */
    s->idle[s->nidle++] = c;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Runs a PRAGMA and copies the text of its first result column into out ("" when it returns no
 * row). */
static int
pragma(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, outlen, "%s", t != NULL ? (const char *)t : "");
    } else if (step != SQLITE_DONE) {
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Opens one pool connection on an existing database file and configures it. On failure c->db may be
 * set and is closed by conn_close. */
static int
conn_open(struct conn *c, const char *path, char *err, size_t errlen)
{
    char val[32];
    int rc = -1;

    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        errbuf_set(err, errlen, "cannot open database %s: %s", path,
                   c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    if (pragma(c->db, "PRAGMA journal_mode = WAL", val, sizeof(val)) != 0 ||
        strcmp(val, "wal") != 0) {
        errbuf_set(err, errlen, "cannot put database %s in WAL mode: %s", path,
                   sqlite3_errmsg(c->db));
        goto out;
    }
    /* No checkpoint inside an API request: store_checkpoint does them off the request path. */
    if (pragma(c->db, "PRAGMA foreign_keys = ON", val, sizeof(val)) != 0 ||
        pragma(c->db, "PRAGMA synchronous = FULL", val, sizeof(val)) != 0 ||
        pragma(c->db, "PRAGMA wal_autocheckpoint = 0", val, sizeof(val)) != 0 ||
        pragma(c->db, "PRAGMA foreign_keys", val, sizeof(val)) != 0 || strcmp(val, "1") != 0) {
        errbuf_set(err, errlen, "cannot configure database %s: %s", path, sqlite3_errmsg(c->db));
        goto out;
    }
    rc = 0;
out:
    return rc;
}

static void
conn_close(struct conn *c)
{
    for (int i = 0; i < c->ncache; i++)
        sqlite3_finalize(c->cache[i].st);
    c->ncache = 0;
    sqlite3_close(c->db);
    c->db = NULL;
}

/* For a connection outside the pool (the telemetry writer's, store_tel_writer.c). */
int
store__conn_open(struct conn *c, const char *path, char *err, size_t errlen)
{
    return conn_open(c, path, err, errlen);
}

void
store__conn_close(struct conn *c)
{
    conn_close(c);
}

void
store__conn_settle(store *s, struct conn *c)
{
    conn_settle(s, c);
}

/* Creates the database file with mode 0600 if it does not exist, so that SQLite (which gives its
 * -wal and -shm files the database's mode) never creates anything more open. */
static int
create_file(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        errbuf_set(err, errlen, "cannot open database %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0)
        log_warn("msg=\"store: database file is accessible to group or others\" path=%s mode=%03o",
                 path, (unsigned)(sb.st_mode & 0777));
    close(fd);
    return 0;
}

/* A store without connections yet (free with store_close), or NULL when out of memory. */
static store *
alloc_store(int pool_size)
{
    store *s = calloc(1, sizeof(*s));
    int ok = 0;

    if (s == NULL)
        goto out;
    atomic_init(&s->errors, 0);
    atomic_init(&s->wal_broken, 0);
    atomic_init(&s->ingest_commit_ns, 0);
    s->conns = calloc((size_t)pool_size, sizeof(*s->conns));
    s->idle = calloc((size_t)pool_size, sizeof(struct conn *));
    if (s->conns == NULL || s->idle == NULL)
        goto out;
    s->size = pool_size;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto out;
    if (pthread_cond_init(&s->cond, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        goto out;
    }
    if (pthread_mutex_init(&s->write_lock, NULL) != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        goto out;
    }
    s->sync_ready = 1;
    ok = 1;
out:
    if (!ok) {
        store_close(s);
        s = NULL;
    }
    return s;
}

int
store_temp_dir(const char *dir)
{
    if (dir == NULL)
        return STORE_OK;
    /* sqlite3_temp_directory is SQLite's documented (if legacy) way to set it after initialisation;
     * it must hold memory from sqlite3_malloc, freed here when this replaces an earlier value. */
    static char *ours;
    char *copy = sqlite3_mprintf("%s", dir);
    if (copy == NULL)
        return STORE_ERR;
    sqlite3_temp_directory = copy;
    sqlite3_free(ours);
    ours = copy;
    return STORE_OK;
}

int
store_open(const char *path, int pool_size, store **out, char *err, size_t errlen)
{
    store *s = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL || pool_size < 1 || pool_size > POOL_MAX) {
        errbuf_set(err, errlen, "bad store_open arguments (pool size 1..%d)", POOL_MAX);
        goto out;
    }
    rc = STORE_ERR;
    if (create_file(path, err, errlen) != 0)
        goto out;
    if ((s = alloc_store(pool_size)) == NULL) {
        errbuf_set(err, errlen, "out of memory");
        goto out;
    }
    if (store__devgen_open(s, path) != 0 || store__attest_sync_open(s, path) != 0) {
        errbuf_set(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < pool_size; i++) {
        if (conn_open(&s->conns[i], path, err, errlen) != 0)
            goto out;
        s->idle[s->nidle++] = &s->conns[i];
    }
    *out = s;
    s = NULL;
    rc = STORE_OK;
out:
    store_close(s);
    return rc;
}

/* No call may be in flight: the connections are closed as they are. */
void
store_close(store *s)
{
    if (s == NULL)
        return;
    store__attest_sync_close(s);
    for (int i = 0; s->conns != NULL && i < s->size; i++)
        conn_close(&s->conns[i]);
    if (s->sync_ready) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->write_lock);
    }
    store__devgen_close(s);
    free(s->conns);
    free(s->idle);
    free(s);
}

const struct lathist *
store_commit_latency(const store *s, int flushes)
{
    return flushes ? &s->sync_lat : &s->commit_lat;
}

uint64_t
store_error_count(const store *s)
{
    return s != NULL ? (uint64_t)atomic_load(&s->errors) : 0;
}

int
store__purge(store *s, const char *sql, int64_t arg, int max_rows, int *purged, const char *what)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    if (purged != NULL)
        *purged = 0;
    if (max_rows < 1 || max_rows > PURGE_MAX)
        goto out;
    c = store__take(s);
    if ((rc = store__begin_light(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, sql)) == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, arg) | sqlite3_bind_int(st, 2, max_rows));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, what)) != STORE_OK)
        goto out;
    if (purged != NULL)
        *purged = sqlite3_changes(c->db);
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

int
store_ping(store *s)
{
    struct conn *c = store__take(s);
    int rc = STORE_ERR;
    sqlite3_stmt *st = store__prep(s, c, SQL_PING);
    if (st == NULL || atomic_load(&s->wal_broken) || atomic_load(&s->wal_unopened))
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        store__db_error(s, c, "ping");
        goto out;
    }
    rc = STORE_OK;
out:
    store__give(s, c);
    return rc;
}

/* The telemetry writer counts as busy this long after a commit. */
#define INGEST_BUSY_NS (2ULL * 1000 * 1000 * 1000)

int
store_checkpoint(store *s, int *log_frames, int *copied_frames)
{
    int nlog = 0, ncopied = 0, rc = STORE_OK;
    uint64_t last = atomic_load(&s->ingest_commit_ns);
    if (atomic_load(&s->wal_broken) || (last != 0 && util_mono_ns() - last < INGEST_BUSY_NS))
        goto out;
    struct conn *c = store__take(s);
    pthread_mutex_lock(&s->write_lock);
    int src = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &ncopied);
    pthread_mutex_unlock(&s->write_lock);
    if (src != SQLITE_OK) {
        /* BUSY: another process is checkpointing, which is no error */
        if (src != SQLITE_BUSY)
            rc = store__db_error(s, c, "checkpoint");
        nlog = ncopied = 0;
    }
    store__give(s, c);
out:
    if (log_frames != NULL)
        *log_frames = nlog;
    if (copied_frames != NULL)
        *copied_frames = ncopied;
    return rc;
}
