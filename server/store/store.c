/* store: the SQLite implementation of store.h.
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

#include "jsonx.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
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

static const char SQL_MIGRATIONS_CREATE[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at INTEGER NOT NULL)";
static const char SQL_MIGRATIONS_EXIST[] =
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'";
static const char SQL_VERSION[] = "SELECT coalesce(max(version), 0) FROM schema_migrations";
static const char SQL_MIGRATION_ADD[] =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)";

static const char SQL_AUDIT_ADD[] =
    "INSERT INTO audit_log (tenant_id, actor, action, object_type, object_id, detail, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_AUDIT_LIST[] =
    "SELECT id, actor, action, object_type, object_id, detail, created_at FROM audit_log "
    "WHERE tenant_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";

static const char SQL_TENANT_ADD[] = "INSERT INTO tenants (name, created_at) VALUES (?1, ?2)";
static const char SQL_TENANT_GET[] = "SELECT id, name, created_at FROM tenants WHERE id = ?1";
static const char SQL_TENANT_FIND[] = "SELECT id FROM tenants WHERE name = ?1";
static const char SQL_TENANT_LIST[] = "SELECT id, name, created_at FROM tenants ORDER BY id";

static const char SQL_CA_DEACTIVATE[] =
    "UPDATE tenant_cas SET active = 0 WHERE tenant_id = ?1 AND active = 1";
static const char SQL_CA_ADD[] =
    "INSERT INTO tenant_cas (tenant_id, cert_pem, key_name, not_before, not_after, active, "
    "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_CA_LIST[] =
    "SELECT id, cert_pem, key_name, not_before, not_after, active FROM tenant_cas "
    "WHERE tenant_id = ?1 AND not_after > ?2 ORDER BY active DESC, id DESC";

static const char SQL_TOKEN_ADD[] =
    "INSERT INTO api_tokens (tenant_id, name, role, hash, created_at, created_by) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_TOKEN_AUTH[] =
    "SELECT tenant_id, role, hash, revoked_at IS NOT NULL FROM api_tokens WHERE id = ?1";
static const char SQL_TOKEN_LIST[] =
    "SELECT id, name, role, created_at, created_by, revoked_at FROM api_tokens "
    "WHERE tenant_id = ?1 ORDER BY id";
static const char SQL_TOKEN_STATE[] =
    "SELECT name, revoked_at IS NOT NULL FROM api_tokens WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_TOKEN_REVOKE[] =
    "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND tenant_id = ?2";

#define PRODUCT_COLS "id, name, description, created_at, updated_at"
static const char SQL_PRODUCT_ADD[] =
    "INSERT INTO products (tenant_id, name, description, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?4)";
static const char SQL_PRODUCT_GET[] =
    "SELECT " PRODUCT_COLS " FROM products WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_PRODUCT_LIST[] = "SELECT " PRODUCT_COLS " FROM products "
                                       "WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
static const char SQL_PRODUCT_UPDATE[] =
    "UPDATE products SET name = coalesce(?3, name), description = coalesce(?4, description), "
    "updated_at = ?5 WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_PRODUCT_HAS_GROUPS[] =
    "SELECT EXISTS (SELECT 1 FROM device_groups WHERE product_id = ?1)";
static const char SQL_PRODUCT_DELETE[] = "DELETE FROM products WHERE id = ?1 AND tenant_id = ?2";

#define GROUP_COLS "id, product_id, name, description, created_at, updated_at"
static const char SQL_GROUP_ADD[] =
    "INSERT INTO device_groups (tenant_id, product_id, name, description, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
static const char SQL_GROUP_GET[] =
    "SELECT " GROUP_COLS " FROM device_groups WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_GROUP_LIST[] = "SELECT " GROUP_COLS " FROM device_groups "
                                     "WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
static const char SQL_GROUP_LIST_PRODUCT[] =
    "SELECT " GROUP_COLS " FROM device_groups "
    "WHERE product_id = ?4 AND tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
static const char SQL_GROUP_UPDATE[] =
    "UPDATE device_groups SET name = coalesce(?3, name), description = coalesce(?4, description), "
    "updated_at = ?5 WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_GROUP_HAS_DEVICES[] =
    "SELECT EXISTS (SELECT 1 FROM devices WHERE group_id = ?1)";
static const char SQL_GROUP_DELETE[] = "DELETE FROM device_groups WHERE id = ?1 AND tenant_id = ?2";

/* Device rows: id, tenant_id, blocked, group_id, product_id, public_key_pem, created_at,
 * claimed_at, updated_at, attest_at, attest_result, attest_reason. Visible to a tenant: claimed by
 * it, or unclaimed and imported by it. */
#define DEVICE_SELECT                                                                              \
    "SELECT d.id, d.tenant_id, d.blocked, d.group_id, g.product_id, d.public_key_pem, "            \
    "d.created_at, d.claimed_at, d.updated_at, d.attest_at, d.attest_result, d.attest_reason "     \
    "FROM devices d LEFT JOIN device_groups g ON g.id = d.group_id "
static const char SQL_DEVICE_GET[] =
    DEVICE_SELECT "WHERE d.id = ?1 AND (d.tenant_id = ?2 OR "
                  "(d.tenant_id IS NULL AND d.registered_by = ?2))";
/* The list statements share their parameters (each binds all five, whether it uses them or not): ?1
 * group, ?2 tenant, ?3 cursor (after this id), ?4 blocked (-1 = any), ?5 row limit. */
static const char SQL_DEVICE_LIST_ALL[] =
    DEVICE_SELECT "WHERE d.tenant_id = ?2 AND d.id > ?3 "
                  "UNION ALL " DEVICE_SELECT "WHERE d.tenant_id IS NULL AND d.registered_by = ?2 "
                  "AND d.id > ?3 ORDER BY 1 LIMIT ?5";
static const char SQL_DEVICE_LIST_UNCLAIMED[] =
    DEVICE_SELECT "WHERE d.tenant_id IS NULL AND d.registered_by = ?2 AND d.id > ?3 "
                  "ORDER BY d.id LIMIT ?5";
static const char SQL_DEVICE_LIST_CLAIMED[] =
    DEVICE_SELECT "WHERE d.tenant_id = ?2 AND d.blocked = ?4 AND d.id > ?3 "
                  "ORDER BY d.id LIMIT ?5";
static const char SQL_DEVICE_LIST_GROUP[] =
    DEVICE_SELECT "WHERE d.group_id = ?1 AND d.tenant_id = ?2 AND d.id > ?3 "
                  "AND (?4 = -1 OR d.blocked = ?4) ORDER BY d.id LIMIT ?5";
static const char SQL_DEVICE_OWNER[] =
    "SELECT tenant_id, group_id, blocked FROM devices WHERE id = ?1";
static const char SQL_DEVICE_ADD[] =
    "INSERT INTO devices (id, public_key_pem, registered_by, tenant_id, group_id, blocked, "
    "created_at, claimed_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?6)";
/* The last attestation stays only when the claiming tenant is the one that could already see it. */
static const char SQL_DEVICE_CLAIM[] =
    "UPDATE devices SET tenant_id = ?2, group_id = ?3, claimed_at = ?4, updated_at = ?4, "
    "attest_at = CASE WHEN registered_by = ?2 THEN attest_at END, "
    "attest_result = CASE WHEN registered_by = ?2 THEN attest_result END, "
    "attest_reason = CASE WHEN registered_by = ?2 THEN attest_reason END "
    "WHERE id = ?1 AND tenant_id IS NULL";
static const char SQL_DEVICE_MOVE[] =
    "UPDATE devices SET group_id = ?3, updated_at = ?4 WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_DEVICE_BLOCK[] =
    "UPDATE devices SET blocked = ?3, updated_at = ?4 WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_DEVICE_AUTH[] =
    "SELECT coalesce(d.tenant_id, 0), coalesce(d.group_id, 0), coalesce(g.product_id, 0), "
    "d.blocked, d.public_key_pem FROM devices d LEFT JOIN device_groups g ON g.id = d.group_id "
    "WHERE d.id = ?1";
static const char SQL_GROUP_OWNED[] =
    "SELECT 1 FROM device_groups WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_PRODUCT_OWNED[] = "SELECT 1 FROM products WHERE id = ?1 AND tenant_id = ?2";

/* --- Errors --- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

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
        if (rc != STORE_OK || exec1(s, c, SQL_COMMIT) != STORE_OK) {
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
    pthread_mutex_lock(&s->lock);
    while (s->nidle == 0)
        pthread_cond_wait(&s->cond, &s->lock);
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
        seterr(err, errlen, "cannot open database %s: %s", path,
               c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    if (pragma(c->db, "PRAGMA journal_mode = WAL", val, sizeof(val)) != 0 ||
        strcmp(val, "wal") != 0) {
        seterr(err, errlen, "cannot put database %s in WAL mode: %s", path, sqlite3_errmsg(c->db));
        goto out;
    }
    /* No checkpoint inside an API request: store_checkpoint does them off the request path. */
    if (pragma(c->db, "PRAGMA foreign_keys = ON", val, sizeof(val)) != 0 ||
        pragma(c->db, "PRAGMA synchronous = FULL", val, sizeof(val)) != 0 ||
        pragma(c->db, "PRAGMA wal_autocheckpoint = 0", val, sizeof(val)) != 0 ||
        pragma(c->db, "PRAGMA foreign_keys", val, sizeof(val)) != 0 || strcmp(val, "1") != 0) {
        seterr(err, errlen, "cannot configure database %s: %s", path, sqlite3_errmsg(c->db));
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
        seterr(err, errlen, "cannot open database %s: %s", path, strerror(errno));
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
store_open(const char *path, int pool_size, store **out, char *err, size_t errlen)
{
    store *s = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL || pool_size < 1 || pool_size > POOL_MAX) {
        seterr(err, errlen, "bad store_open arguments (pool size 1..%d)", POOL_MAX);
        goto out;
    }
    rc = STORE_ERR;
    if (create_file(path, err, errlen) != 0)
        goto out;
    if ((s = alloc_store(pool_size)) == NULL) {
        seterr(err, errlen, "out of memory");
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
    for (int i = 0; s->conns != NULL && i < s->size; i++)
        conn_close(&s->conns[i]);
    if (s->sync_ready) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->write_lock);
    }
    free(s->conns);
    free(s->idle);
    free(s);
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
    if (st == NULL || atomic_load(&s->wal_broken))
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

/* --- Small query helpers --- */

/* Steps a statement expected to return at most one row. Returns STORE_OK with a row, STORE_NOTFOUND
 * without, STORE_ERR on error (logged). */
int
store__step_row(store *s, struct conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    if (rc == SQLITE_DONE)
        return STORE_NOTFOUND;
    return store__db_error(s, c, what);
}

/* Steps a write statement to its end. */
int
store__step_done(store *s, struct conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? STORE_OK : store__write_error(s, c, rc, what);
}

/* rc is the OR of some sqlite3_bind_* results: anything but SQLITE_OK is a logged error. */
int
store__bound(store *s, struct conn *c, int rc)
{
    return rc == SQLITE_OK ? STORE_OK : store__db_error(s, c, "bind");
}

/* Binds text that may be NULL (as SQL NULL). */
int
store__bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v != NULL ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

/* Binds an id that is 0 when absent (as SQL NULL). */
int
store__bind_id(sqlite3_stmt *st, int i, int64_t v)
{
    return v > 0 ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

/* Runs an "is this id the tenant's" query (?1 id, ?2 tenant): STORE_OK or STORE_NOTFOUND. */
int
store__owned(store *s, struct conn *c, const char *sql, int64_t id, int64_t tenant_id)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    if (st == NULL)
        return STORE_ERR;
    int rc =
        store__bound(s, c, sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "ownership check");
    sqlite3_reset(st);
    return rc;
}

/* 1 if s is text of min..max bytes, valid UTF-8 without control characters. */
int
store__text_ok(const char *s, size_t min, size_t max)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n < min || n > max || !jsonx_text_ok(s, n))
        return 0;
    json_t *utf8 = json_stringn(s, n); /* NULL unless valid UTF-8 */
    json_decref(utf8);
    return utf8 != NULL;
}

int
store__actor_ok(const struct store_actor *a)
{
    return a != NULL && store__text_ok(a->who, 1, ACTOR_MAX_BYTES);
}

/* 1 if id is a device id: 64 lower-case hex characters. */
int
store__device_id_ok(const char *id)
{
    if (id == NULL)
        return 0;
    size_t n = 0;
    for (; id[n] != '\0'; n++) {
        if (n == DEVICE_ID_LEN ||
            !((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
            return 0;
    }
    return n == DEVICE_ID_LEN;
}

/* --- JSON of rows --- */
/* Each returns a new reference, or NULL when out of memory. */

json_t *
store__json_time(int64_t t)
{
    char buf[32];
    return json_string(util_rfc3339(t, buf, sizeof(buf)));
}

/* Column i as an RFC 3339 time, or JSON null when NULL. */
json_t *
store__col_time(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    return store__json_time(sqlite3_column_int64(st, i));
}

/* Column i as an integer, or JSON null when NULL. */
json_t *
store__col_int(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    return json_integer((json_int_t)sqlite3_column_int64(st, i));
}

/* Column i (NOT NULL text) as a string. */
json_t *
store__col_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    if (t == NULL)
        return NULL;
    return json_stringn(t, (size_t)sqlite3_column_bytes(st, i));
}

json_int_t
store__col_id(sqlite3_stmt *st, int i)
{
    return (json_int_t)sqlite3_column_int64(st, i);
}

/* id, name, created_at */
static json_t *
tenant_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o}", "id", store__col_id(st, 0), "name", store__col_text(st, 1),
                     "created_at", store__col_time(st, 2));
}

/* id, cert_pem, key_name, not_before, not_after, active */
static json_t *
ca_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:b}", "id", store__col_id(st, 0), "cert_pem",
                     store__col_text(st, 1), "key_name", store__col_text(st, 2), "not_before",
                     store__col_time(st, 3), "not_after", store__col_time(st, 4), "active",
                     sqlite3_column_int(st, 5) != 0);
}

/* id, name, role, created_at, created_by, revoked_at */
static json_t *
token_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "name",
                     store__col_text(st, 1), "role", store__col_text(st, 2), "created_at",
                     store__col_time(st, 3), "created_by", store__col_text(st, 4), "revoked_at",
                     store__col_time(st, 5));
}

/* PRODUCT_COLS */
static json_t *
product_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "name",
                     store__col_text(st, 1), "description", store__col_text(st, 2), "created_at",
                     store__col_time(st, 3), "updated_at", store__col_time(st, 4));
}

/* GROUP_COLS */
static json_t *
group_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "product_id",
                     store__col_id(st, 1), "name", store__col_text(st, 2), "description",
                     store__col_text(st, 3), "created_at", store__col_time(st, 4), "updated_at",
                     store__col_time(st, 5));
}

/* Columns 9..11 of DEVICE_SELECT: null before the first attestation, else {"at", "result",
 * "reason" (null on pass)}. */
static json_t *
device_attestation_json(sqlite3_stmt *st)
{
    if (sqlite3_column_type(st, 9) == SQLITE_NULL || sqlite3_column_type(st, 10) == SQLITE_NULL)
        return json_null();
    json_t *reason =
        sqlite3_column_type(st, 11) == SQLITE_NULL ? json_null() : store__col_text(st, 11);
    return json_pack("{s:o, s:o, s:o}", "at", store__col_time(st, 9), "result",
                     store__col_text(st, 10), "reason", reason);
}

/* DEVICE_SELECT */
static json_t *
device_json(sqlite3_stmt *st)
{
    const char *state = "active";
    if (sqlite3_column_type(st, 1) == SQLITE_NULL)
        state = "unclaimed";
    else if (sqlite3_column_int(st, 2) != 0)
        state = "blocked";
    return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", store__col_text(st, 0),
                     "state", state, "group_id", store__col_int(st, 3), "product_id",
                     store__col_int(st, 4), "public_key", store__col_text(st, 5), "created_at",
                     store__col_time(st, 6), "claimed_at", store__col_time(st, 7), "updated_at",
                     store__col_time(st, 8), "attestation", device_attestation_json(st));
}

/* id, actor, action, object_type, object_id, detail, created_at */
static json_t *
audit_json(sqlite3_stmt *st)
{
    json_t *object_id = NULL;
    switch (sqlite3_column_type(st, 4)) {
    case SQLITE_INTEGER:
        object_id = store__col_int(st, 4);
        break;
    case SQLITE_NULL:
        object_id = json_null();
        break;
    default:
        object_id = store__col_text(st, 4);
        break;
    }
    const char *detail = (const char *)sqlite3_column_text(st, 5);
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "actor",
                     store__col_text(st, 1), "action", store__col_text(st, 2), "object_type",
                     store__col_text(st, 3), "object_id", object_id, "detail",
                     detail != NULL ? json_loads(detail, JSON_REJECT_DUPLICATES, NULL) : NULL,
                     "created_at", store__col_time(st, 6));
}

/* Steps st to its end, appending row_json of each row to a new array *items. When limit > 0, st
 * must return up to limit + 1 rows: only limit are kept, and next_cursor gets column 0 of the last
 * kept row if a further row exists, else "". */
int
store__collect(store *s, struct conn *c, sqlite3_stmt *st, int limit, store__row_json_fn row_json,
               json_t **items, char *next_cursor)
{
    char last[CURSOR_BUF] = "";
    json_t *arr = json_array();
    int rc = STORE_ERR, n = 0, step;

    if (next_cursor != NULL)
        next_cursor[0] = '\0';
    if (arr == NULL)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (limit > 0 && n == limit) {
            if (next_cursor != NULL)
                memcpy(next_cursor, last, strlen(last) + 1);
            break;
        }
        json_t *row = row_json(st);
        if (row == NULL || json_array_append_new(arr, row) != 0) {
            log_error("msg=\"store: cannot build a JSON row (out of memory?)\"");
            goto out;
        }
        const unsigned char *key = sqlite3_column_text(st, 0);
        snprintf(last, sizeof(last), "%s", key != NULL ? (const char *)key : "");
        n++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        store__db_error(s, c, "list");
        goto out;
    }
    *items = arr;
    arr = NULL;
    rc = STORE_OK;
out:
    json_decref(arr);
    return rc;
}

/* Loads one row with a statement whose ?1 is an integer id and ?2 the tenant. */
int
store__load_by_id(store *s, struct conn *c, const char *sql, int64_t id, int64_t tenant_id,
                  store__row_json_fn row_json, json_t **out)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id))))
        goto out;
    if ((rc = store__step_row(s, c, st, "load")) != STORE_OK)
        goto out;
    if ((*out = row_json(st)) == NULL)
        rc = STORE_ERR;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* Loads a device visible to the tenant. */
static int
load_device(store *s, struct conn *c, int64_t tenant_id, const char *device_id, json_t **out)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_GET);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    if ((rc = store__bound(
             s, c, store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id))) != 0)
        goto out;
    if ((rc = store__step_row(s, c, st, "device load")) != STORE_OK)
        goto out;
    if ((*out = device_json(st)) == NULL)
        rc = STORE_ERR;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* --- Pages --- */

int
store__page_ok(const struct store_page *pg)
{
    return pg != NULL && pg->limit >= 1 && pg->limit <= PAGE_MAX;
}

/* An integer-id cursor: dflt when absent, STORE_INVALID when malformed. */
int
store__int_cursor(const struct store_page *pg, int64_t dflt, int64_t *out)
{
    if (pg->cursor == NULL) {
        *out = dflt;
        return STORE_OK;
    }
    return util_parse_i64(pg->cursor, 0, INT64_MAX, out) == 0 ? STORE_OK : STORE_INVALID;
}

/* Lists with a statement whose ?1 is the tenant, ?2 the cursor and ?3 the row limit (limit + 1). */
int
store__list_by_id(store *s, int64_t tenant_id, const char *sql, const struct store_page *pg,
                  int64_t after, int64_t extra, store__row_json_fn row_json, json_t **items,
                  char *next_cursor)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, after) |
            sqlite3_bind_int(st, 3, pg->limit + 1) |
            (sqlite3_bind_parameter_count(st) >= 4 ? sqlite3_bind_int64(st, 4, extra) : 0));
    if (rc != STORE_OK)
        goto out;
    rc = store__collect(s, c, st, pg->limit, row_json, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

/* --- Audit --- */

/* Writes an audit row in the open transaction. object_id is object_text when set, else object_int
 * when > 0, else NULL. detail is stolen (NULL means out of memory). */
int
store__audit(store *s, struct conn *c, int64_t tenant_id, const struct store_actor *a,
             const char *action, const char *object_type, int64_t object_int,
             const char *object_text, json_t *detail)
{
    char *text = NULL;
    int rc = STORE_ERR;
    sqlite3_stmt *st = NULL;

    if (detail == NULL || (text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        log_error("msg=\"store: cannot build audit detail\" action=%s", action);
        goto out;
    }
    if ((st = store__prep(s, c, SQL_AUDIT_ADD)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, a->who) |
                          store__bind_text(st, 3, action) | store__bind_text(st, 4, object_type) |
                          (object_text != NULL ? store__bind_text(st, 5, object_text)
                                               : store__bind_id(st, 5, object_int)) |
                          store__bind_text(st, 6, text) | sqlite3_bind_int64(st, 7, util_now()));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "audit insert");
out:
    if (st != NULL)
        sqlite3_reset(st);
    free(text);
    json_decref(detail);
    return rc;
}

int
store__list_newest(store *s, int64_t tenant_id, const char *sql, const struct store_page *pg,
                   store__row_json_fn row_json, json_t **items, char *next_cursor)
{
    int64_t before = 0;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg))
        goto out;
    if ((rc = store__int_cursor(pg, INT64_MAX, &before)) != STORE_OK)
        goto out;
    rc = store__list_by_id(s, tenant_id, sql, pg, before, 0, row_json, items, next_cursor);
out:
    return rc;
}

int
store_audit_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                 char *next_cursor)
{
    return store__list_newest(s, tenant_id, SQL_AUDIT_LIST, pg, audit_json, items, next_cursor);
}

/* --- Migrations --- */

static int
newest_version(void)
{
    int v = 0;
    for (int i = 0; i < schema_migration_count; i++)
        if (schema_migrations[i].version > v)
            v = schema_migrations[i].version;
    return v;
}

/* The highest version recorded in schema_migrations, 0 when the table is missing or empty. */
static int
read_version(store *s, struct conn *c, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = STORE_ERR;

    *version = 0;
    if ((st = store__prep(s, c, SQL_MIGRATIONS_EXIST)) == NULL)
        goto out;
    if ((rc = store__step_row(s, c, st, "schema version")) != STORE_OK)
        goto out;
    int exists = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    if (!exists)
        goto out;
    if ((st = store__prep(s, c, SQL_VERSION)) == NULL) {
        rc = STORE_ERR;
        goto out;
    }
    if ((rc = store__step_row(s, c, st, "schema version")) != STORE_OK)
        goto out;
    *version = sqlite3_column_int(st, 0);
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc == STORE_NOTFOUND ? STORE_ERR : rc;
}

static int
refuse_newer(int current, int newest, char *err, size_t errlen)
{
    if (current <= newest)
        return STORE_OK;
    seterr(err, errlen,
           "database schema version %d is newer than this binary's (%d); upgrade aegis", current,
           newest);
    log_error("msg=\"store: database schema is newer than this binary\" db_version=%d "
              "binary_version=%d",
              current, newest);
    return STORE_INVALID;
}

/* Applies migration m in one transaction unless the database already has it (re-read under the
 * write lock, so that two processes migrating at once apply it once). *did tells whether it was
 * applied. */
static int
migrate_one(store *s, struct conn *c, const struct schema_migration *m, int newest, int *did,
            char *err, size_t errlen)
{
    char *msg = NULL;
    int rc, cur = 0;
    sqlite3_stmt *st = NULL;

    *did = 0;
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    if ((rc = read_version(s, c, &cur)) != STORE_OK)
        goto out;
    if ((rc = refuse_newer(cur, newest, err, errlen)) != STORE_OK || m->version <= cur)
        goto out;
    if (sqlite3_exec(c->db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
        seterr(err, errlen, "migration %s failed: %s", m->name, msg != NULL ? msg : "?");
        rc = store__db_error(s, c, m->name);
        goto out;
    }
    if ((st = store__prep(s, c, SQL_MIGRATION_ADD)) == NULL) {
        rc = STORE_ERR;
        goto out;
    }
    rc = store__bound(s, c,
                      sqlite3_bind_int(st, 1, m->version) | store__bind_text(st, 2, m->name) |
                          sqlite3_bind_int64(st, 3, util_now()));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "migration record");
    *did = rc == STORE_OK;
out:
    if (st != NULL)
        sqlite3_reset(st);
    sqlite3_free(msg);
    rc = store__end_tx(s, c, rc);
    if (rc != STORE_OK) {
        *did = 0;
        if (err != NULL && errlen > 0 && err[0] == '\0')
            seterr(err, errlen, "migration %s failed (see the log)", m->name);
    }
    return rc;
}

int
store_migrate(store *s, int *applied, char *err, size_t errlen)
{
    int rc = STORE_ERR, n = 0, cur = 0, newest = newest_version();
    struct conn *c = store__take(s);

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (exec1(s, c, SQL_MIGRATIONS_CREATE) != STORE_OK) {
        seterr(err, errlen, "cannot create schema_migrations: %s", sqlite3_errmsg(c->db));
        goto out;
    }
    /* Checked outside a transaction too, so that a binary without migrations still refuses. */
    if ((rc = read_version(s, c, &cur)) != STORE_OK)
        goto out;
    if ((rc = refuse_newer(cur, newest, err, errlen)) != STORE_OK)
        goto out;
    for (int i = 0; i < schema_migration_count; i++) {
        int did = 0;
        if ((rc = migrate_one(s, c, &schema_migrations[i], newest, &did, err, errlen)) != STORE_OK)
            goto out;
        n += did;
        if (did)
            log_info("msg=\"store: migration applied\" version=%d name=%s",
                     schema_migrations[i].version, schema_migrations[i].name);
    }
    rc = STORE_OK;
out:
    store__give(s, c);
    if (applied != NULL)
        *applied = n;
    return rc;
}

int
store_schema_version(store *s, int *version)
{
    struct conn *c = store__take(s);
    int v = 0, rc = read_version(s, c, &v);
    store__give(s, c);
    if (version != NULL)
        *version = rc == STORE_OK ? v : 0;
    return rc;
}

/* --- Tenants --- */

int
store_tenant_create(store *s, const char *name, const struct store_actor *a, int64_t *id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t new_id = 0;
    int rc = STORE_INVALID;

    if (!store__text_ok(name, 1, NAME_MAX_BYTES) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TENANT_ADD)) == NULL)
        goto out;
    if ((rc = store__bound(
             s, c, store__bind_text(st, 1, name) | sqlite3_bind_int64(st, 2, util_now()))) != 0)
        goto out;
    if ((rc = store__step_done(s, c, st, "tenant insert")) != STORE_OK)
        goto out;
    new_id = sqlite3_last_insert_rowid(c->db);
    rc = store__audit(s, c, new_id, a, "tenant.create", "tenant", new_id, NULL,
                      json_pack("{s:s}", "name", name));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && id != NULL)
        *id = new_id;
    return rc;
}

int
store_tenant_get(store *s, int64_t id, json_t **out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_TENANT_GET);
    int rc = STORE_ERR;

    *out = NULL;
    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, id))) != STORE_OK)
        goto out;
    if ((rc = store__step_row(s, c, st, "tenant get")) != STORE_OK)
        goto out;
    if ((*out = tenant_json(st)) == NULL)
        rc = STORE_ERR;
out:
    store__give(s, c);
    return rc;
}

int
store_tenant_find(store *s, const char *name, int64_t *id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    if (name == NULL)
        goto out;
    c = store__take(s);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TENANT_FIND)) == NULL)
        goto out;
    if ((rc = store__bound(s, c, store__bind_text(st, 1, name))) != STORE_OK)
        goto out;
    if ((rc = store__step_row(s, c, st, "tenant find")) != STORE_OK)
        goto out;
    if (id != NULL)
        *id = sqlite3_column_int64(st, 0);
out:
    store__give(s, c);
    return rc;
}

int
store_tenant_list(store *s, json_t **out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_TENANT_LIST);
    int rc = STORE_ERR;

    *out = NULL;
    if (st != NULL)
        rc = store__collect(s, c, st, 0, tenant_json, out, NULL);
    store__give(s, c);
    return rc;
}

/* Checks inside a transaction that the tenant exists. */
int
store__tenant_exists(store *s, struct conn *c, int64_t tenant_id)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TENANT_GET);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id))) != STORE_OK)
        goto out;
    rc = store__step_row(s, c, st, "tenant check");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* --- Issuing CAs --- */

int
store_ca_add(store *s, int64_t tenant_id, const char *cert_pem, const char *key_name,
             int64_t not_before, int64_t not_after, int active, const struct store_actor *a,
             int64_t *id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t new_id = 0;
    int rc = STORE_INVALID;

    if (cert_pem == NULL || !store__text_ok(key_name, 1, 256) || not_after <= not_before ||
        !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (active) {
        if ((st = store__prep(s, c, SQL_CA_DEACTIVATE)) == NULL)
            goto out;
        if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id))) != STORE_OK ||
            (rc = store__step_done(s, c, st, "ca deactivate")) != STORE_OK)
            goto out;
        rc = STORE_ERR;
    }
    if ((st = store__prep(s, c, SQL_CA_ADD)) == NULL)
        goto out;
    rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, cert_pem) |
            store__bind_text(st, 3, key_name) | sqlite3_bind_int64(st, 4, not_before) |
            sqlite3_bind_int64(st, 5, not_after) | sqlite3_bind_int(st, 6, active != 0) |
            sqlite3_bind_int64(st, 7, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "ca insert")) != STORE_OK)
        goto out;
    new_id = sqlite3_last_insert_rowid(c->db);
    rc = store__audit(s, c, tenant_id, a, "ca.create", "ca", new_id, NULL,
                      json_pack("{s:s, s:b, s:o, s:o}", "key_name", key_name, "active", active != 0,
                                "not_before", store__json_time(not_before), "not_after",
                                store__json_time(not_after)));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && id != NULL)
        *id = new_id;
    return rc;
}

int
store_ca_list(store *s, int64_t tenant_id, int64_t now, json_t **out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_CA_LIST);
    int rc = STORE_ERR;

    *out = NULL;
    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, now))))
        goto out;
    rc = store__collect(s, c, st, 0, ca_json, out, NULL);
out:
    store__give(s, c);
    return rc;
}

/* --- API tokens --- */

static int
role_ok(const char *role)
{
    return role != NULL && (strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
                            strcmp(role, "reader") == 0);
}

int
store_token_create(store *s, int64_t tenant_id, const char *name, const char *role,
                   const unsigned char hash[32], const struct store_actor *a, int64_t *id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t new_id = 0;
    int rc = STORE_INVALID;

    if (!store__text_ok(name, 1, NAME_MAX_BYTES) || !role_ok(role) || hash == NULL ||
        !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TOKEN_ADD)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, name) |
                          store__bind_text(st, 3, role) |
                          sqlite3_bind_blob(st, 4, hash, 32, SQLITE_TRANSIENT) |
                          sqlite3_bind_int64(st, 5, util_now()) | store__bind_text(st, 6, a->who));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "token insert")) != STORE_OK)
        goto out;
    new_id = sqlite3_last_insert_rowid(c->db);
    rc = store__audit(s, c, tenant_id, a, "token.create", "token", new_id, NULL,
                      json_pack("{s:s, s:s}", "name", name, "role", role));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && id != NULL)
        *id = new_id;
    return rc;
}

int
store_token_get_auth(store *s, int64_t id, struct store_token *out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_TOKEN_AUTH);
    int rc = STORE_ERR;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, id))) != STORE_OK)
        goto out;
    if ((rc = store__step_row(s, c, st, "token load")) != STORE_OK)
        goto out;
    const void *hash = sqlite3_column_blob(st, 2);
    const unsigned char *role = sqlite3_column_text(st, 1);
    if (hash == NULL || role == NULL || sqlite3_column_bytes(st, 2) != 32) {
        rc = store__db_error(s, c, "token load (bad row)");
        goto out;
    }
    out->id = id;
    out->tenant_id = sqlite3_column_int64(st, 0);
    snprintf(out->role, sizeof(out->role), "%s", (const char *)role);
    memcpy(out->hash, hash, 32);
    out->revoked = sqlite3_column_int(st, 3) != 0;
out:
    store__give(s, c);
    return rc;
}

int
store_token_list(store *s, int64_t tenant_id, json_t **out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_TOKEN_LIST);
    int rc = STORE_ERR;

    *out = NULL;
    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id))) != STORE_OK)
        goto out;
    rc = store__collect(s, c, st, 0, token_json, out, NULL);
out:
    store__give(s, c);
    return rc;
}

int
store_token_revoke(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *detail = NULL;
    int rc = STORE_INVALID;

    if (!store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TOKEN_STATE)) == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id))) ||
        (rc = store__step_row(s, c, st, "token state")) != STORE_OK)
        goto out;
    if (sqlite3_column_int(st, 1) != 0)
        goto out; /* already revoked: nothing to do, nothing to audit */
    detail = json_pack("{s:o}", "name", store__col_text(st, 0));
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TOKEN_REVOKE)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id) |
                          sqlite3_bind_int64(st, 3, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "token revoke")) != STORE_OK)
        goto out;
    rc = store__audit(s, c, tenant_id, a, "token.revoke", "token", id, NULL, detail);
    detail = NULL;
out:
    json_decref(detail);
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

/* --- Products --- */

int
store_product_create(store *s, int64_t tenant_id, const char *name, const char *description,
                     const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (description == NULL)
        description = "";
    if (!store__text_ok(name, 1, NAME_MAX_BYTES) ||
        !store__text_ok(description, 0, DESC_MAX_BYTES) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_PRODUCT_ADD)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, name) |
                          store__bind_text(st, 3, description) |
                          sqlite3_bind_int64(st, 4, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "product insert")) != STORE_OK)
        goto out;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    if ((rc = store__audit(s, c, tenant_id, a, "product.create", "product", id, NULL,
                           json_pack("{s:s}", "name", name))) != STORE_OK)
        goto out;
    rc = store__load_by_id(s, c, SQL_PRODUCT_GET, id, tenant_id, product_json, &obj);
out:
    return store__finish(s, c, rc, obj, out);
}

int
store_product_get(store *s, int64_t tenant_id, int64_t id, json_t **out)
{
    struct conn *c = store__take(s);
    *out = NULL;
    int rc = store__load_by_id(s, c, SQL_PRODUCT_GET, id, tenant_id, product_json, out);
    store__give(s, c);
    return rc;
}

int
store_product_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                   char *next_cursor)
{
    int64_t after = 0;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg))
        goto out;
    if ((rc = store__int_cursor(pg, 0, &after)) != STORE_OK)
        goto out;
    rc = store__list_by_id(s, tenant_id, SQL_PRODUCT_LIST, pg, after, 0, product_json, items,
                           next_cursor);
out:
    return rc;
}

/* The detail of an update: the fields that were given. NULL when out of memory. */
static json_t *
update_detail(const char *name, const char *description)
{
    json_t *d = json_object();
    if (d == NULL)
        return NULL;
    if ((name != NULL && json_object_set_new(d, "name", json_string(name)) != 0) ||
        (description != NULL &&
         json_object_set_new(d, "description", json_string(description)) != 0)) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* The shared body of product and group updates: sql is the UPDATE (?1 id, ?2 tenant, ?3 name,
 * ?4 description, ?5 now), get_sql loads the row. */
static int
update_named(store *s, int64_t tenant_id, int64_t id, const char *name, const char *description,
             const struct store_actor *a, const char *sql, const char *get_sql,
             store__row_json_fn row_json, const char *action, const char *object_type, json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if ((name != NULL && !store__text_ok(name, 1, NAME_MAX_BYTES)) ||
        (description != NULL && !store__text_ok(description, 0, DESC_MAX_BYTES)) ||
        !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    if (name != NULL || description != NULL) {
        rc = STORE_ERR;
        if ((st = store__prep(s, c, sql)) == NULL)
            goto out;
        rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id) |
                              store__bind_text(st, 3, name) | store__bind_text(st, 4, description) |
                              sqlite3_bind_int64(st, 5, util_now()));
        if (rc != STORE_OK || (rc = store__step_done(s, c, st, action)) != STORE_OK)
            goto out;
        if (sqlite3_changes(c->db) == 0) {
            rc = STORE_NOTFOUND;
            goto out;
        }
        if ((rc = store__audit(s, c, tenant_id, a, action, object_type, id, NULL,
                               update_detail(name, description))) != STORE_OK)
            goto out;
    }
    rc = store__load_by_id(s, c, get_sql, id, tenant_id, row_json, &obj);
out:
    return store__finish(s, c, rc, obj, out);
}

int
store_product_update(store *s, int64_t tenant_id, int64_t id, const char *name,
                     const char *description, const struct store_actor *a, json_t **out)
{
    return update_named(s, tenant_id, id, name, description, a, SQL_PRODUCT_UPDATE, SQL_PRODUCT_GET,
                        product_json, "product.update", "product", out);
}

/* The shared body of product and group deletes: get_sql loads the row (for its name), busy_sql
 * tells whether it still has children (?1 id), del_sql deletes it (?1 id, ?2 tenant). */
static int
delete_named(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a,
             const char *get_sql, store__row_json_fn row_json, const char *busy_sql,
             const char *del_sql, const char *action, const char *object_type)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (!store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    if ((rc = store__load_by_id(s, c, get_sql, id, tenant_id, row_json, &obj)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, busy_sql)) == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, id))) != STORE_OK ||
        (rc = store__step_row(s, c, st, action)) != STORE_OK)
        goto out;
    if (sqlite3_column_int(st, 0) != 0) {
        rc = STORE_CONFLICT;
        goto out;
    }
    rc = STORE_ERR;
    if ((st = store__prep(s, c, del_sql)) == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, action)) != STORE_OK)
        goto out;
    rc = store__audit(s, c, tenant_id, a, action, object_type, id, NULL,
                      json_pack("{s:O}", "name", json_object_get(obj, "name")));
out:
    json_decref(obj);
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

int
store_product_delete(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a)
{
    return delete_named(s, tenant_id, id, a, SQL_PRODUCT_GET, product_json, SQL_PRODUCT_HAS_GROUPS,
                        SQL_PRODUCT_DELETE, "product.delete", "product");
}

/* --- Device groups --- */

int
store_group_create(store *s, int64_t tenant_id, int64_t product_id, const char *name,
                   const char *description, const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (description == NULL)
        description = "";
    if (!store__text_ok(name, 1, NAME_MAX_BYTES) ||
        !store__text_ok(description, 0, DESC_MAX_BYTES) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__owned(s, c, SQL_PRODUCT_OWNED, product_id, tenant_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_GROUP_ADD)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, product_id) |
                          store__bind_text(st, 3, name) | store__bind_text(st, 4, description) |
                          sqlite3_bind_int64(st, 5, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "group insert")) != STORE_OK)
        goto out;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    if ((rc = store__audit(s, c, tenant_id, a, "group.create", "group", id, NULL,
                           json_pack("{s:s, s:I}", "name", name, "product_id",
                                     (json_int_t)product_id))) != STORE_OK)
        goto out;
    rc = store__load_by_id(s, c, SQL_GROUP_GET, id, tenant_id, group_json, &obj);
out:
    return store__finish(s, c, rc, obj, out);
}

int
store_group_get(store *s, int64_t tenant_id, int64_t id, json_t **out)
{
    struct conn *c = store__take(s);
    *out = NULL;
    int rc = store__load_by_id(s, c, SQL_GROUP_GET, id, tenant_id, group_json, out);
    store__give(s, c);
    return rc;
}

int
store_group_list(store *s, int64_t tenant_id, int64_t product_id, const struct store_page *pg,
                 json_t **items, char *next_cursor)
{
    int64_t after = 0;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) || product_id < 0)
        goto out;
    if ((rc = store__int_cursor(pg, 0, &after)) != STORE_OK)
        goto out;
    rc = store__list_by_id(s, tenant_id, product_id > 0 ? SQL_GROUP_LIST_PRODUCT : SQL_GROUP_LIST,
                           pg, after, product_id, group_json, items, next_cursor);
out:
    return rc;
}

int
store_group_update(store *s, int64_t tenant_id, int64_t id, const char *name,
                   const char *description, const struct store_actor *a, json_t **out)
{
    return update_named(s, tenant_id, id, name, description, a, SQL_GROUP_UPDATE, SQL_GROUP_GET,
                        group_json, "group.update", "group", out);
}

int
store_group_delete(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a)
{
    return delete_named(s, tenant_id, id, a, SQL_GROUP_GET, group_json, SQL_GROUP_HAS_DEVICES,
                        SQL_GROUP_DELETE, "group.delete", "group");
}

/* --- Devices --- */

/* Who holds a device, read inside a transaction. */
struct device_owner {
    int64_t tenant_id; /* 0 while unclaimed */
    int64_t group_id;  /* 0 when in no group */
    int blocked;
};

/* STORE_OK with *o, STORE_NOTFOUND when the device is not in the registry. */
static int
device_owner(store *s, struct conn *c, const char *device_id, struct device_owner *o)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_OWNER);
    int rc = STORE_ERR;

    memset(o, 0, sizeof(*o));
    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, store__bind_text(st, 1, device_id))) != STORE_OK ||
        (rc = store__step_row(s, c, st, "device owner")) != STORE_OK)
        goto out;
    o->tenant_id = sqlite3_column_int64(st, 0);
    o->group_id = sqlite3_column_int64(st, 1);
    o->blocked = sqlite3_column_int(st, 2);
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* Claims an unclaimed device into tenant_id and group_id (0 = none) at time now. */
static int
device_claim(store *s, struct conn *c, const char *device_id, int64_t tenant_id, int64_t group_id,
             int64_t now)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_CLAIM);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id) |
                          store__bind_id(st, 3, group_id) | sqlite3_bind_int64(st, 4, now));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "device claim");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

struct import_ctx {
    int64_t tenant_id;
    int claim;
    int64_t group_id;
    int64_t now;
    json_t *errors; /* the already_claimed entries found so far */
    size_t created;
};

static int
import_conflict(struct import_ctx *x, size_t index, const char *device_id)
{
    json_t *e =
        json_pack("{s:I, s:s, s:s, s:s}", "index", (json_int_t)index, "device_id", device_id,
                  "error", "already_claimed", "message", "device is claimed by another tenant");
    return e != NULL && json_array_append_new(x->errors, e) == 0 ? STORE_OK : STORE_ERR;
}

/* Imports one entry. Once a conflict is known nothing more is written (the transaction will be
 * rolled back); the remaining entries are only checked, so that every conflict is reported. */
static int
import_one(store *s, struct conn *c, struct import_ctx *x, size_t index,
           const struct store_import_entry *e)
{
    struct device_owner o;
    int failing = json_array_size(x->errors) > 0;
    int rc = device_owner(s, c, e->device_id, &o);

    if (rc == STORE_OK) {
        if (o.tenant_id != 0 && o.tenant_id != x->tenant_id)
            return import_conflict(x, index, e->device_id);
        if (o.tenant_id == 0 && x->claim && !failing)
            return device_claim(s, c, e->device_id, x->tenant_id, x->group_id, x->now);
        return STORE_OK; /* known: kept as it is */
    }
    if (rc != STORE_NOTFOUND)
        return rc;
    if (failing)
        return STORE_OK;

    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_ADD);
    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(
        s, c,
        store__bind_text(st, 1, e->device_id) | store__bind_text(st, 2, e->public_key_pem) |
            sqlite3_bind_int64(st, 3, x->tenant_id) |
            store__bind_id(st, 4, x->claim ? x->tenant_id : 0) |
            store__bind_id(st, 5, x->claim ? x->group_id : 0) | sqlite3_bind_int64(st, 6, x->now) |
            (x->claim ? sqlite3_bind_int64(st, 7, x->now) : sqlite3_bind_null(st, 7)));
    if (rc == STORE_OK && (rc = store__step_done(s, c, st, "device insert")) == STORE_OK)
        x->created++;
    sqlite3_reset(st);
    return rc;
}

static int
import_args_ok(const struct store_import_entry *e, size_t n, int claim, int64_t group_id,
               const struct store_actor *a)
{
    if (e == NULL || n == 0 || group_id < 0 || (group_id > 0 && !claim) || !store__actor_ok(a))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!store__device_id_ok(e[i].device_id) || e[i].public_key_pem == NULL)
            return 0;
    return 1;
}

int
store_device_import(store *s, int64_t tenant_id, const struct store_import_entry *e, size_t n,
                    int claim, int64_t group_id, const struct store_actor *a, json_t **errors,
                    size_t *created)
{
    struct import_ctx x = {tenant_id, claim != 0, group_id, util_now(), NULL, 0};
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    if (errors != NULL)
        *errors = NULL;
    if (created != NULL)
        *created = 0;
    if (!import_args_ok(e, n, claim, group_id, a))
        goto out;
    rc = STORE_ERR;
    if ((x.errors = json_array()) == NULL)
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    if (group_id > 0 && (rc = store__owned(s, c, SQL_GROUP_OWNED, group_id, tenant_id)) != STORE_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        if ((rc = import_one(s, c, &x, i, &e[i])) != STORE_OK)
            goto out;
    if (json_array_size(x.errors) > 0) {
        rc = STORE_CONFLICT;
        goto out;
    }
    rc = store__audit(s, c, tenant_id, a, "device.import", "device", 0, NULL,
                      json_pack("{s:I, s:I, s:b, s:o}", "count", (json_int_t)n, "created",
                                (json_int_t)x.created, "claimed", x.claim, "group_id",
                                group_id > 0 ? json_integer(group_id) : json_null()));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_CONFLICT && errors != NULL && json_array_size(x.errors) > 0) {
        *errors = x.errors;
        x.errors = NULL;
    }
    if (rc == STORE_OK && created != NULL)
        *created = x.created;
    json_decref(x.errors);
    return rc;
}

int
store_device_get(store *s, int64_t tenant_id, const char *device_id, json_t **out)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    *out = NULL;
    if (!store__device_id_ok(device_id))
        goto out;
    c = store__take(s);
    rc = load_device(s, c, tenant_id, device_id, out);
out:
    store__give(s, c);
    return rc;
}

int
store_device_auth(store *s, const char *device_id, struct store_device_auth *out)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    memset(out, 0, sizeof(*out));
    if (!store__device_id_ok(device_id))
        goto out;
    c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_AUTH);
    rc = STORE_ERR;
    if (st == NULL || sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC) != SQLITE_OK)
        goto out;
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = store__db_error(s, c, "device auth");
        goto out;
    }
    out->tenant_id = sqlite3_column_int64(st, 0);
    out->group_id = sqlite3_column_int64(st, 1);
    out->product_id = sqlite3_column_int64(st, 2);
    out->blocked = sqlite3_column_int(st, 3) != 0;
    const unsigned char *pem = sqlite3_column_text(st, 4);
    snprintf(out->public_key_pem, sizeof(out->public_key_pem), "%s", pem ? (const char *)pem : "");
    rc = STORE_OK;
out:
    store__give(s, c);
    return rc;
}

/* The list statement for a filter, and the blocked value it binds (-1 = any). NULL: the filter
 * matches nothing (unclaimed devices are in no group). */
static const char *
device_list_sql(int64_t group_id, const char *state, int *blocked)
{
    *blocked = -1;
    if (state != NULL && strcmp(state, "active") == 0)
        *blocked = 0;
    else if (state != NULL && strcmp(state, "blocked") == 0)
        *blocked = 1;
    int unclaimed = state != NULL && strcmp(state, "unclaimed") == 0;

    if (group_id > 0)
        return unclaimed ? NULL : SQL_DEVICE_LIST_GROUP;
    if (unclaimed)
        return SQL_DEVICE_LIST_UNCLAIMED;
    return *blocked >= 0 ? SQL_DEVICE_LIST_CLAIMED : SQL_DEVICE_LIST_ALL;
}

static int
state_ok(const char *state)
{
    return state == NULL || strcmp(state, "unclaimed") == 0 || strcmp(state, "active") == 0 ||
           strcmp(state, "blocked") == 0;
}

int
store_device_list(store *s, int64_t tenant_id, int64_t group_id, const char *state,
                  const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    const char *sql = NULL;
    int blocked = -1, rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) || group_id < 0 ||
        !state_ok(state) || (pg->cursor != NULL && !store__device_id_ok(pg->cursor)))
        goto out;
    next_cursor[0] = '\0';
    rc = STORE_ERR;
    if ((sql = device_list_sql(group_id, state, &blocked)) == NULL) {
        *items = json_array();
        rc = *items != NULL ? STORE_OK : STORE_ERR;
        goto out;
    }
    c = store__take(s);
    if ((st = store__prep(s, c, sql)) == NULL)
        goto out;
    rc =
        store__bound(s, c,
                     sqlite3_bind_int64(st, 1, group_id) | sqlite3_bind_int64(st, 2, tenant_id) |
                         store__bind_text(st, 3, pg->cursor != NULL ? pg->cursor : "") |
                         sqlite3_bind_int(st, 4, blocked) | sqlite3_bind_int(st, 5, pg->limit + 1));
    if (rc != STORE_OK)
        goto out;
    rc = store__collect(s, c, st, pg->limit, device_json, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

int
store_device_claim(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                   const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    struct device_owner o;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (!store__device_id_ok(device_id) || group_id < 0 || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = device_owner(s, c, device_id, &o)) != STORE_OK)
        goto out;
    if (o.tenant_id != 0 && o.tenant_id != tenant_id) {
        rc = STORE_CONFLICT;
        goto out;
    }
    if (group_id > 0 && (rc = store__owned(s, c, SQL_GROUP_OWNED, group_id, tenant_id)) != STORE_OK)
        goto out;
    if (o.tenant_id == 0) { /* else already ours: kept as it is */
        if ((rc = device_claim(s, c, device_id, tenant_id, group_id, util_now())) != STORE_OK ||
            (rc = store__audit(s, c, tenant_id, a, "device.claim", "device", 0, device_id,
                               json_pack("{s:o}", "group_id",
                                         group_id > 0 ? json_integer(group_id) : json_null()))) !=
                STORE_OK)
            goto out;
    }
    rc = load_device(s, c, tenant_id, device_id, &obj);
out:
    return store__finish(s, c, rc, obj, out);
}

/* The shared body of move and block/unblock: the device must be claimed by the tenant; change()
 * decides from the current row whether anything changes, and applies it with its audit row. */
struct device_change {
    int64_t group_id; /* move: the new group (0 = none) */
    int blocked;      /* block/unblock: the new flag */
};
typedef int (*device_change_fn)(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                                const struct device_owner *o, const struct device_change *ch,
                                const struct store_actor *a);

static int
change_device(store *s, int64_t tenant_id, const char *device_id, const struct device_change *ch,
              device_change_fn change, const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    struct device_owner o;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (!store__device_id_ok(device_id) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = device_owner(s, c, device_id, &o)) != STORE_OK)
        goto out;
    if (o.tenant_id != tenant_id) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if ((rc = change(s, c, tenant_id, device_id, &o, ch, a)) != STORE_OK)
        goto out;
    rc = load_device(s, c, tenant_id, device_id, &obj);
out:
    return store__finish(s, c, rc, obj, out);
}

static int
apply_move(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
           const struct device_owner *o, const struct device_change *ch,
           const struct store_actor *a)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (ch->group_id > 0 &&
        (rc = store__owned(s, c, SQL_GROUP_OWNED, ch->group_id, tenant_id)) != STORE_OK)
        return rc;
    if (o->group_id == ch->group_id)
        return STORE_OK; /* already there */
    if ((st = store__prep(s, c, SQL_DEVICE_MOVE)) == NULL)
        return STORE_ERR;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id) |
                          store__bind_id(st, 3, ch->group_id) |
                          sqlite3_bind_int64(st, 4, util_now()));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "device move");
    sqlite3_reset(st);
    if (rc != STORE_OK)
        return rc;
    return store__audit(s, c, tenant_id, a, "device.move", "device", 0, device_id,
                        json_pack("{s:o, s:o}", "group_id",
                                  ch->group_id > 0 ? json_integer(ch->group_id) : json_null(),
                                  "previous_group_id",
                                  o->group_id > 0 ? json_integer(o->group_id) : json_null()));
}

static int
apply_blocked(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
              const struct device_owner *o, const struct device_change *ch,
              const struct store_actor *a)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (o->blocked == ch->blocked)
        return STORE_OK; /* idempotent */
    if ((st = store__prep(s, c, SQL_DEVICE_BLOCK)) == NULL)
        return STORE_ERR;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id) |
                          sqlite3_bind_int(st, 3, ch->blocked) |
                          sqlite3_bind_int64(st, 4, util_now()));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "device block");
    sqlite3_reset(st);
    if (rc != STORE_OK)
        return rc;
    return store__audit(s, c, tenant_id, a, ch->blocked ? "device.block" : "device.unblock",
                        "device", 0, device_id, json_object());
}

int
store_device_move(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                  const struct store_actor *a, json_t **out)
{
    struct device_change ch = {group_id, 0};
    if (group_id < 0) {
        if (out != NULL)
            *out = NULL;
        return STORE_INVALID;
    }
    return change_device(s, tenant_id, device_id, &ch, apply_move, a, out);
}

int
store_device_set_blocked(store *s, int64_t tenant_id, const char *device_id, int blocked,
                         const struct store_actor *a, json_t **out)
{
    struct device_change ch = {0, blocked != 0};
    return change_device(s, tenant_id, device_id, &ch, apply_blocked, a, out);
}
