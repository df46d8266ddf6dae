/* store_migrate: the schema migrations compiled into the binary (schema.h), applied in order, each
 * in its own transaction, and recorded in schema_migrations (store.h). */
#include "store.h"
#include "store_int.h"

#include "errbuf.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#include <sqlite3.h>
#include <stddef.h>

/* --- SQL --- */

static const char SQL_MIGRATIONS_CREATE[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at INTEGER NOT NULL)";
static const char SQL_MIGRATIONS_EXIST[] =
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'";
static const char SQL_VERSION[] = "SELECT coalesce(max(version), 0) FROM schema_migrations";
static const char SQL_MIGRATION_ADD[] =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)";

/* --- Migrations --- */

static int
migrate_newest(void)
{
    int v = 0;
    for (int i = 0; i < schema_migration_count; i++)
        if (schema_migrations[i].version > v)
            v = schema_migrations[i].version;
    return v;
}

/* The highest version recorded in schema_migrations, 0 when the table is missing or empty. */
static int
migrate_read_version(store *s, struct conn *c, int *version)
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
migrate_refuse_newer(int current, int newest, char *err, size_t errlen)
{
    if (current <= newest)
        return STORE_OK;
    errbuf_set(err, errlen,
               "database schema version %d is newer than this binary's (%d); upgrade aegis",
               current, newest);
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
    if ((rc = migrate_read_version(s, c, &cur)) != STORE_OK)
        goto out;
    if ((rc = migrate_refuse_newer(cur, newest, err, errlen)) != STORE_OK || m->version <= cur)
        goto out;
    if (sqlite3_exec(c->db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
        errbuf_set(err, errlen, "migration %s failed: %s", m->name, msg != NULL ? msg : "?");
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
            errbuf_set(err, errlen, "migration %s failed (see the log)", m->name);
    }
    return rc;
}

int
store_migrate(store *s, int *applied, char *err, size_t errlen)
{
    int rc = STORE_ERR, n = 0, cur = 0, newest = migrate_newest();
    struct conn *c = store__take(s);

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    sqlite3_stmt *st = store__prep(s, c, SQL_MIGRATIONS_CREATE);
    if (st == NULL || store__step_done(s, c, st, "schema_migrations create") != STORE_OK) {
        errbuf_set(err, errlen, "cannot create schema_migrations: %s", sqlite3_errmsg(c->db));
        goto out;
    }
    /* Checked outside a transaction too, so that a binary without migrations still refuses. */
    if ((rc = migrate_read_version(s, c, &cur)) != STORE_OK)
        goto out;
    if ((rc = migrate_refuse_newer(cur, newest, err, errlen)) != STORE_OK)
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
    int v = 0, rc = migrate_read_version(s, c, &v);
    store__give(s, c);
    if (version != NULL)
        *version = rc == STORE_OK ? v : 0;
    return rc;
}

int
store_migrations_pending(store *s, int *pending)
{
    int v = 0, n = 0, rc = store_schema_version(s, &v);
    if (rc == STORE_OK)
        for (int i = 0; i < schema_migration_count; i++)
            n += schema_migrations[i].version > v;
    *pending = n;
    return rc;
}
