/* store_backup: the database as a file, for aegisctl backup and restore (store.h "backup and
 * restore"): a consistent copy of a database other processes serve from (SQLite's online backup
 * API), the checks a copy must pass before a service runs on it, and whether a process has a
 * database open. These work on database files, not on an open store: aegisctl has no pool. */
#include "store.h"

#include "errbuf.h"
#include "schema.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_BUSY_TIMEOUT_MS 5000
/* A backup step answered busy or locked (another process writing the schema, a checkpoint that
 * truncates the log): tried again this many times, 50 ms apart. */
#define BACKUP_RETRIES 200

static const char SQL_INTEGRITY[] = "PRAGMA integrity_check";
static const char SQL_FOREIGN_KEYS[] = "PRAGMA foreign_key_check";
static const char SQL_HAS_MIGRATIONS[] =
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'";
static const char SQL_MIGRATIONS[] = "SELECT version, name FROM schema_migrations ORDER BY version";
static const char SQL_ROLLBACK_JOURNAL[] = "PRAGMA journal_mode = DELETE";
static const char SQL_EXCLUSIVE_MODE[] = "PRAGMA locking_mode = EXCLUSIVE";
static const char SQL_BEGIN_EXCLUSIVE[] = "BEGIN EXCLUSIVE";
static const char SQL_ROLLBACK[] = "ROLLBACK";

/* Opens path without creating it. 0, or -1 with the reason in err. */
static int
open_db(const char *path, int flags, sqlite3 **db, char *err, size_t errlen)
{
    *db = NULL;
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        errbuf_set(err, errlen, "cannot open database %s: %s", path,
                   *db != NULL ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_extended_result_codes(*db, 1);
    return 0;
}

/* Runs sql (no parameters) to the end; *first gets the first column of its first row ("" when none
 * or NULL) if first is not NULL. Returns the number of rows, or -1 with the reason in err. */
static int
run(sqlite3 *db, const char *sql, char *first, size_t firstlen, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rows = -1, rc;
    if (first != NULL)
        first[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (rows++ == 0 && first != NULL)
            snprintf(first, firstlen, "%s", t != NULL ? (const char *)t : "");
    }
    if (rc != SQLITE_DONE)
        rows = -1;
out:
    if (rows < 0)
        errbuf_set(err, errlen, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rows;
}

/* The schema checks of store_check_file on an open database: migrations recorded and named as this
 * binary's, none newer. STORE_OK, STORE_INVALID or STORE_ERR with the reason in err. */
static int
check_schema(sqlite3 *db, int *version, char *err, size_t errlen)
{
    char has[8];
    sqlite3_stmt *st = NULL;
    int rc = STORE_ERR, step, n = 0;

    *version = 0;
    if (run(db, SQL_HAS_MIGRATIONS, has, sizeof(has), err, errlen) < 0)
        goto out;
    rc = STORE_INVALID;
    if (strcmp(has, "1") != 0) {
        errbuf_set(err, errlen, "not an Aegis database (no schema_migrations table)");
        goto out;
    }
    if (sqlite3_prepare_v2(db, SQL_MIGRATIONS, -1, &st, NULL) != SQLITE_OK) {
        errbuf_set(err, errlen, "cannot read schema_migrations: %s", sqlite3_errmsg(db));
        goto out;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int v = sqlite3_column_int(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        *version = v;
        if (n >= schema_migration_count) {
            errbuf_set(err, errlen,
                       "database schema version %d is newer than this binary's (%d); use a newer "
                       "aegisctl",
                       v, schema_migrations[schema_migration_count - 1].version);
            goto out;
        }
        const struct schema_migration *m = &schema_migrations[n++];
        if (v != m->version || name == NULL || strcmp(name, m->name) != 0) {
            errbuf_set(err, errlen,
                       "migration %d of the database is '%s', this binary's is %d '%s': not a "
                       "database of this Aegis",
                       v, name != NULL ? name : "", m->version, m->name);
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        errbuf_set(err, errlen, "cannot read schema_migrations: %s", sqlite3_errmsg(db));
        rc = STORE_ERR;
        goto out;
    }
    if (n == 0) {
        errbuf_set(err, errlen, "the database has no migration applied");
        goto out;
    }
    rc = STORE_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* 1 when msg, a line of PRAGMA integrity_check, is "NULL value in T.C" and T.C holds no NULL.
 * SQLite 3.40 reports that of every row of a WITHOUT ROWID table whose NOT NULL column lies between
 * primary-key columns (deployment_images.tenant_id), so such a line is checked with a query. */
static int
false_null(sqlite3 *db, const char *msg)
{
    static const char prefix[] = "NULL value in ";
    char table[128];
    const char *dot;
    int n = -1;
    if (strncmp(msg, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    msg += sizeof(prefix) - 1;
    if ((dot = strrchr(msg, '.')) == NULL || dot - msg >= (int)sizeof(table))
        return 0;
    snprintf(table, sizeof(table), "%.*s", (int)(dot - msg), msg);
    /* identifiers cannot be bound: %w doubles any quote inside the quoted names */
    char *sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\" WHERE \"%w\" IS NULL", table, dot + 1);
    sqlite3_stmt *st = NULL;
    if (sql != NULL && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return n == 0;
}

/* PRAGMA integrity_check: STORE_OK, STORE_INVALID with its first real complaint, or STORE_ERR. */
static int
check_integrity(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = STORE_ERR, step, bad = 0;
    if (sqlite3_prepare_v2(db, SQL_INTEGRITY, -1, &st, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *msg = (const char *)sqlite3_column_text(st, 0);
        if (msg == NULL || strcmp(msg, "ok") == 0 || false_null(db, msg))
            continue;
        if (bad++ == 0)
            errbuf_set(err, errlen, "integrity check failed: %s", msg);
    }
    if (step != SQLITE_DONE)
        goto out;
    rc = bad > 0 ? STORE_INVALID : STORE_OK;
out:
    if (rc == STORE_ERR)
        errbuf_set(err, errlen, "integrity check failed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

/* store_check_file on an open database. */
static int
check_db(sqlite3 *db, int *version, char *err, size_t errlen)
{
    char first[256];
    int rows, rc = check_integrity(db, err, errlen);
    if (rc != STORE_OK)
        return rc;
    if ((rows = run(db, SQL_FOREIGN_KEYS, first, sizeof(first), err, errlen)) < 0)
        return STORE_ERR;
    if (rows > 0) {
        errbuf_set(err, errlen, "foreign key check failed: %d row(s), first in table %s", rows,
                   first);
        return STORE_INVALID;
    }
    return check_schema(db, version, err, errlen);
}

int
store_check_file(const char *path, int *version, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int v = 0, rc = STORE_ERR;
    if (open_db(path, SQLITE_OPEN_READONLY, &db, err, errlen) != 0)
        goto out;
    sqlite3_busy_timeout(db, BACKUP_BUSY_TIMEOUT_MS);
    rc = check_db(db, &v, err, errlen);
out:
    sqlite3_close(db);
    if (version != NULL)
        *version = rc == STORE_OK ? v : 0;
    return rc;
}

/* Copies src into dst in one step, so under one read transaction: a consistent snapshot, whatever
 * other processes commit meanwhile (in WAL mode they are not held up). A step that meets a lock is
 * tried again. */
static int
copy_db(sqlite3 *src, sqlite3 *dst, char *err, size_t errlen)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    int rc = SQLITE_OK;
    if (b == NULL) {
        errbuf_set(err, errlen, "cannot start the backup: %s", sqlite3_errmsg(dst));
        return STORE_ERR;
    }
    for (int i = 0; i < BACKUP_RETRIES; i++) {
        rc = sqlite3_backup_step(b, -1);
        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        errbuf_set(err, errlen, "backup failed: %s", sqlite3_errstr(rc));
        return STORE_ERR;
    }
    return STORE_OK;
}

int
store_backup(const char *src_path, const char *dst_path, int *version, char *err, size_t errlen)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = STORE_ERR, made = 0, v = 0;
    char mode[16];

    if (access(src_path, F_OK) != 0) {
        errbuf_set(err, errlen, "no database at %s", src_path);
        goto out;
    }
    /* exactly 0600, and never over an existing file */
    int fd = open(dst_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        errbuf_set(err, errlen, "cannot create %s: %s", dst_path, strerror(errno));
        goto out;
    }
    made = 1;
    if (fchmod(fd, 0600) != 0 || close(fd) != 0) {
        errbuf_set(err, errlen, "cannot create %s: %s", dst_path, strerror(errno));
        goto out;
    }
    if (open_db(src_path, SQLITE_OPEN_READWRITE, &src, err, errlen) != 0 ||
        open_db(dst_path, SQLITE_OPEN_READWRITE, &dst, err, errlen) != 0)
        goto out;
    sqlite3_busy_timeout(src, BACKUP_BUSY_TIMEOUT_MS);
    if ((rc = copy_db(src, dst, err, errlen)) != STORE_OK)
        goto out;
    /* The copy is a single file: no -wal next to it to lose on the way (the service puts it back
     * in WAL mode when it opens it). */
    rc = STORE_ERR;
    if (run(dst, SQL_ROLLBACK_JOURNAL, mode, sizeof(mode), err, errlen) < 0)
        goto out;
    if (strcmp(mode, "delete") != 0) {
        errbuf_set(err, errlen, "cannot leave WAL mode in the copy (journal mode %s)", mode);
        goto out;
    }
    rc = check_db(dst, &v, err, errlen);
out:
    sqlite3_close(src);
    if (sqlite3_close(dst) != SQLITE_OK && rc == STORE_OK) {
        errbuf_set(err, errlen, "cannot close %s", dst_path);
        rc = STORE_ERR;
    }
    if (rc == STORE_OK) {
        /* SQLite synced the pages; this makes the file's own metadata durable too */
        int fd2 = open(dst_path, O_RDONLY | O_CLOEXEC);
        if (fd2 < 0 || fsync(fd2) != 0) {
            errbuf_set(err, errlen, "cannot sync %s: %s", dst_path, strerror(errno));
            rc = STORE_ERR;
        }
        if (fd2 >= 0)
            close(fd2);
    }
    if (rc != STORE_OK && made)
        unlink(dst_path);
    if (version != NULL)
        *version = rc == STORE_OK ? v : 0;
    return rc;
}

int
store_in_use(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = -1;
    struct stat sb;

    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        errbuf_set(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (open_db(path, SQLITE_OPEN_READWRITE, &db, err, errlen) != 0)
        goto out;
    /* Every connection that has the database open in WAL mode holds a shared lock on it for as
     * long as it is open; an exclusive lock is granted only when no other connection exists. */
    sqlite3_busy_timeout(db, 0);
    if (run(db, SQL_EXCLUSIVE_MODE, NULL, 0, err, errlen) < 0)
        goto out;
    sqlite3_stmt *st = NULL;
    int step = SQLITE_ERROR;
    if (sqlite3_prepare_v2(db, SQL_BEGIN_EXCLUSIVE, -1, &st, NULL) == SQLITE_OK)
        step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step == SQLITE_DONE) {
        rc = 0;
        (void)run(db, SQL_ROLLBACK, NULL, 0, err, errlen);
    } else if ((step & 0xff) == SQLITE_BUSY || (step & 0xff) == SQLITE_LOCKED) {
        rc = 1;
    } else if ((step & 0xff) == SQLITE_NOTADB || (step & 0xff) == SQLITE_CORRUPT) {
        rc = 0; /* the lock was granted before the file was read: nobody holds it */
    } else {
        errbuf_set(err, errlen, "cannot lock %s: %s", path, sqlite3_errmsg(db));
    }
out:
    sqlite3_close(db);
    return rc;
}
