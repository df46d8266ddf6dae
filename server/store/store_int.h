/* store internals shared by the store's source files. Nothing outside server/store/ includes this
 * header: the rest of Aegis sees only store.h.
 *
 * Which file holds what: docs/architecture.md, "The store".
 *
 * Conventions:
 *  - A call takes a connection with store__take() for its whole duration and gives it back with
 *    store__give(); changes run between store__begin() and store__end_tx() and write their audit
 *    row with store__audit() in the same transaction.
 *  - Statements are named `static const char SQL_...[]` constants of the calling file; the
 *    per-connection statement cache is keyed by their addresses (store__prep).
 *  - Values are only ever bound, never formatted into SQL. Database errors are logged without
 *    values (store__db_error) and counted for /metrics.
 *  - Functions return STORE_OK or a negative STORE_* code unless their comment says otherwise. */
#ifndef AEGIS_STORE_INT_H
#define AEGIS_STORE_INT_H

#include "store.h"

#include "lathist.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_MAX 64
#define PURGE_MAX 100000   /* rows per retention batch */
#define STMT_CACHE_MAX 192 /* statements per connection: every SQL_ constant of store*.c */
#define BUSY_TIMEOUT_MS 5000
#define NAME_MAX_BYTES STORE_NAME_MAX
#define DESC_MAX_BYTES 1024
#define ACTOR_MAX_BYTES 64
#define PAGE_MAX 1000
#define CURSOR_BUF                                                                                 \
    (PROTO_HASH_HEX + 1) /* the header's minimum for next_cursor: a device id and its NUL */

struct cached_stmt {
    const char *sql; /* the string constant it was prepared from (compared by address) */
    sqlite3_stmt *st;
};

struct conn {
    sqlite3 *db;
    struct cached_stmt cache[STMT_CACHE_MAX];
    int ncache;
    int writing; /* holds the store's write lock (between begin and end_tx) */
    int light;   /* the open transaction runs with synchronous=NORMAL */
};

struct store {
    pthread_mutex_t lock; /* guards idle and nidle */
    pthread_cond_t cond;  /* signalled when a connection goes back to the pool */
    /* One writer at a time inside the process: SQLite allows one anyway, and waiting on a mutex
     * beats SQLite's busy handler, which sleeps in steps of milliseconds. Other processes
     * (aegisctl) still meet the busy timeout. */
    pthread_mutex_t write_lock;
    int sync_ready;     /* lock and cond initialised */
    struct conn *conns; /* size connections */
    struct conn **idle; /* stack of the nidle connections not in use */
    int size;
    int nidle;
    /* What the telemetry writer (store_tel_writer.c, which owns its own state) reports to the
     * whole store. A flush of the log failed: Linux reports it once and may have dropped the dirty
     * pages, so a later flush that succeeds proves nothing. From then on nothing is acknowledged
     * (and the store is not ready) until a restart recovers from what is on disk. */
    atomic_int wal_broken;
    /* The last flush could not even start (the log could not be opened, e.g. EMFILE): not ready
     * until a flush succeeds again. */
    atomic_int wal_unopened;
    /* util_mono_ns of the telemetry writer's last commit: store_checkpoint leaves the log to it
     * while it writes (its connection checkpoints by itself). */
    atomic_uint_least64_t ingest_commit_ns;
    atomic_uint_least64_t errors;
    /* calls that took a connection (store_calls) */
    atomic_uint_least64_t calls;
    /* the device-state generations (store_devgen.c): STORE_DEVGEN_SLOTS counters, shared with other
     * processes on the database when devgen_shared */
    atomic_uint_least64_t *devgen;
    int devgen_shared;
    /* attestation records' group flush (store_attest_sync.c) */
    struct store_attest_sync *attest_sync;
    /* how long COMMITs and flushes of the write-ahead log take (store_commit_latency) */
    struct lathist commit_lat, sync_lat;
};

/* --- errors --- */
/* Logs and counts a database error on c (may be NULL). what names the operation, never a value.
 * Returns STORE_ERR. */
int store__db_error(store *s, struct conn *c, const char *what);
/* Turns the failed sqlite3_step result rc of a write into a STORE code: a unique violation is
 * STORE_CONFLICT, a CHECK violation STORE_INVALID, anything else a logged STORE_ERR. */
int store__write_error(store *s, struct conn *c, int rc, const char *what);

/* --- device-state generations (store_devgen.c) --- */
/* Maps the generations of the database at path (or private ones, logged): 0, or -1 when out of
 * memory. */
int store__devgen_open(store *s, const char *path);
void store__devgen_close(store *s);
/* --- attestation records' group flush (store_attest_sync.c) --- */
/* Sets it up (its thread starts with the first record): 0, or -1 when out of memory. */
int store__attest_sync_open(store *s, const char *path);
/* Answers what is queued, stops the syncer. Before the pool's connections close. */
void store__attest_sync_close(store *s);
/* Marks a committed change of the device's registry state (store_device_gen): called after the
 * commit, so a reader that saw the old generation reads again and sees the change. */
void store__device_changed(store *s, const char *device_id);

/* --- retention --- */
/* Runs one retention DELETE (sql binds ?1 = arg and ?2 = max_rows, 1..PURGE_MAX) in its own
 * transaction without an fsync (a purge lost to a power cut is done again); *purged (may be NULL)
 * gets the rows deleted. what names it in logs. */
int store__purge(store *s, const char *sql, int64_t arg, int max_rows, int *purged,
                 const char *what);

/* --- connections, statements, transactions --- */
/* Takes an idle connection, waiting while all are in use. Give it back with store__give. */
struct conn *store__take(store *s);
/* Puts c back: resets every statement, rolls back a forgotten transaction. Accepts NULL. */
void store__give(store *s, struct conn *c);
/* A connection outside the pool (the telemetry writer's), opened on the database file at path and
 * configured as the pool's; on failure (-1, reason in err) c->db may be set: close it with
 * store__conn_close, which finalises its statements. store__conn_settle ends whatever a call left
 * on it, as store__give does for a pool connection. */
int store__conn_open(struct conn *c, const char *path, char *err, size_t errlen);
void store__conn_close(struct conn *c);
void store__conn_settle(store *s, struct conn *c);
/* The cached statement for sql (an SQL_ constant), reset and without bindings. Borrowed from c;
 * NULL on error (logged). */
sqlite3_stmt *store__prep(store *s, struct conn *c, const char *sql);
/* BEGIN IMMEDIATE. */
int store__begin(store *s, struct conn *c);
/* As store__begin, for rows that need not survive a power loss (nonces): the commit survives a
 * crash or restart of the daemon (WAL), but skips the fsync. */
int store__begin_light(store *s, struct conn *c);
/* Ends the transaction open on c, if any: commits when rc is STORE_OK, else rolls back. Returns
 * rc, or STORE_ERR when the commit failed. Accepts c == NULL. */
int store__end_tx(store *s, struct conn *c, int rc);
/* The common end of a change that returns an object: ends the transaction on c (commit when rc is
 * STORE_OK), gives c back (c may be NULL), and hands obj to *out on success (out may be NULL),
 * freeing it otherwise. Returns the final code. */
int store__finish(store *s, struct conn *c, int rc, json_t *obj, json_t **out);

/* --- stepping and binding --- */
/* A statement expected to return at most one row: STORE_OK with a row, STORE_NOTFOUND without. */
int store__step_row(store *s, struct conn *c, sqlite3_stmt *st, const char *what);
/* Steps a write statement to its end (errors through store__write_error). */
int store__step_done(store *s, struct conn *c, sqlite3_stmt *st, const char *what);
/* rc is the OR of sqlite3_bind_* results: anything but SQLITE_OK is a logged STORE_ERR. */
int store__bound(store *s, struct conn *c, int rc);
/* Binds text that may be NULL (as SQL NULL). Returns an SQLite code. */
int store__bind_text(sqlite3_stmt *st, int i, const char *v);
/* Binds an id that is 0 when absent (as SQL NULL). Returns an SQLite code. */
int store__bind_id(sqlite3_stmt *st, int i, int64_t v);
/* Steps sql with ?1 = id to its one row: STORE_OK with *st on the row (borrowed from c),
 * STORE_NOTFOUND without. *st is NULL only when the statement could not be prepared. */
int store__row_by_id(store *s, struct conn *c, const char *sql, int64_t id, const char *what,
                     sqlite3_stmt **st);
/* Runs an "is this id the tenant's" query (?1 id, ?2 tenant): STORE_OK or STORE_NOTFOUND. */
int store__owned(store *s, struct conn *c, const char *sql, int64_t id, int64_t tenant_id);
/* Inside a transaction: STORE_OK if the tenant exists, else STORE_NOTFOUND. */
int store__tenant_exists(store *s, struct conn *c, int64_t tenant_id);

/* --- argument checks: 1 if acceptable, else 0 --- */
/* Text of min..max bytes, valid UTF-8 without control characters. */
int store__text_ok(const char *s, size_t min, size_t max);
int store__actor_ok(const struct store_actor *a);
/* A NUL-terminated device id that proto_digest_hex_ok accepts (NULL: 0). */
int store__device_id_ok(const char *id);

/* --- JSON of columns (new references; NULL when out of memory) --- */
json_t *store__json_time(int64_t t);
/* Column i as an RFC 3339 time, or JSON null when NULL. */
json_t *store__col_time(sqlite3_stmt *st, int i);
/* Column i as an integer, or JSON null when NULL. */
json_t *store__col_int(sqlite3_stmt *st, int i);
/* Column i (NOT NULL text) as a string. */
json_t *store__col_text(sqlite3_stmt *st, int i);
json_int_t store__col_id(sqlite3_stmt *st, int i);

/* --- lists --- */
typedef json_t *(*store__row_json_fn)(sqlite3_stmt *st);
/* Steps st to its end, appending row_json of each row to a new array *items. When limit > 0, st
 * must return up to limit + 1 rows: only limit are kept, and next_cursor (CURSOR_BUF bytes) gets
 * column 0 of the last kept row if a further row exists, else "". */
int store__collect(store *s, struct conn *c, sqlite3_stmt *st, int limit,
                   store__row_json_fn row_json, json_t **items, char *next_cursor);
/* Typed rows: fills the zeroed element elem from the current row of st. Returns 0, or -1 (out of
 * memory, or a row that breaks the schema's rules) leaving nothing allocated in elem. */
typedef int (*store__row_fn)(sqlite3_stmt *st, void *elem);
/* Steps st to its end, one element of elem_size bytes per row: *rows gets a malloc'd array (NULL
 * when there is no row) and *n the elements filled. On an error both hold what was filled, for the
 * caller to free. */
int store__collect_rows(store *s, struct conn *c, sqlite3_stmt *st, size_t elem_size,
                        store__row_fn row, void **rows, size_t *n);
/* A new JSON array of to_json of each of the n typed rows (elem_size bytes each), or NULL when out
 * of memory. */
json_t *store__rows_json(const void *rows, size_t n, size_t elem_size,
                         json_t *(*to_json)(const void *row));
/* Loads one row with a statement whose ?1 is an integer id and ?2 the tenant. */
int store__load_by_id(store *s, struct conn *c, const char *sql, int64_t id, int64_t tenant_id,
                      store__row_json_fn row_json, json_t **out);
/* STORE_OK when the device is visible to the tenant (its owner, or its importer while unclaimed, or
 * a tenant holding a registration of the same key), else STORE_NOTFOUND (or STORE_ERR). */
int store__device_visible(store *s, struct conn *c, int64_t tenant_id, const char *device_id);
/* The one row of sql (?1 the device id, ?2 the tenant) about a device the tenant sees, made into
 * *out (the caller's) by row; without a row, none()'s. Takes a connection of its own.
 * STORE_NOTFOUND: the device is not visible to the tenant; STORE_INVALID: a malformed id. */
int store__device_row(store *s, int64_t tenant_id, const char *device_id, const char *sql,
                      const char *what, json_t *(*row)(sqlite3_stmt *st), json_t *(*none)(void),
                      json_t **out);
/* 1 if pg is a valid page request. */
int store__page_ok(const struct store_page *pg);
/* An integer-id cursor: dflt when absent, STORE_INVALID when malformed. */
int store__int_cursor(const struct store_page *pg, int64_t dflt, int64_t *out);
/* Lists with a statement whose ?1 is the tenant, ?2 the cursor and ?3 the row limit (limit + 1),
 * and ?4 extra when the statement has a fourth parameter. Takes its own connection. */
int store__list_by_id(store *s, int64_t tenant_id, const char *sql, const struct store_page *pg,
                      int64_t after, int64_t extra, store__row_json_fn row_json, json_t **items,
                      char *next_cursor);
/* A newest-first page of the tenant's rows (sql as above, ?2 the id to stay below): checks the
 * arguments and the cursor, then store__list_by_id. */
int store__list_newest(store *s, int64_t tenant_id, const char *sql, const struct store_page *pg,
                       store__row_json_fn row_json, json_t **items, char *next_cursor);

/* --- audit --- */
/* Writes an audit row in the open transaction. object_id is object_text when set, else object_int
 * when > 0, else NULL. detail is stolen (NULL means out of memory). */
int store__audit(store *s, struct conn *c, int64_t tenant_id, const struct store_actor *a,
                 const char *action, const char *object_type, int64_t object_int,
                 const char *object_text, json_t *detail);

#endif
