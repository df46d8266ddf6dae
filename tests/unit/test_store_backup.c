/* store_backup, store_check_file, store_in_use (aegisctl backup and restore): a copy taken while
 * another thread commits is one consistent snapshot holding everything committed before it started;
 * the copy is one 0600 file that passes the checks; the checks refuse a newer schema, another
 * lineage of migrations, a file that is not an Aegis database and a damaged one; a database in use
 * is told from one that is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_store_fx.h"

#include <fcntl.h>
#include <stdatomic.h>

struct writer {
    store *s;
    atomic_int stop;
    atomic_int made; /* tenants committed */
};

static void *
write_tenants(void *arg)
{
    struct writer *w = arg;
    char name[32];
    while (!atomic_load(&w->stop)) {
        int64_t id = 0;
        snprintf(name, sizeof(name), "t%d", atomic_load(&w->made));
        assert_int_equal(store_tenant_create(w->s, name, &ctl, &id), STORE_OK);
        atomic_fetch_add(&w->made, 1);
    }
    return NULL;
}

/* Rows of table in the database at path (opened apart from the store). */
static int
count_rows(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void
exec_on(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
copy_path(const struct fx *f, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", f->dir, name);
}

static void
test_backup_while_committing(void **state)
{
    struct fx *f = *state;
    char copy[192], err[512] = "", wal[200];
    struct writer w = {f->s, 0, 0};
    pthread_t t;
    copy_path(f, "copy.db", copy, sizeof(copy));
    assert_int_equal(pthread_create(&t, NULL, write_tenants, &w), 0);
    while (atomic_load(&w.made) < 50)
        usleep(1000);
    /* every tenant counted before the call is committed, so it must be in the copy */
    int before = atomic_load(&w.made) + 2, version = 0;
    assert_int_equal(store_backup(f->path, copy, &version, err, sizeof(err)), STORE_OK);
    int after = atomic_load(&w.made) + 2;
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    assert_int_equal(version, newest());

    int n = count_rows(copy, "SELECT count(*) FROM tenants");
    assert_true(n >= before && n <= after + 1);
    /* each tenant's audit row came in its transaction: the copy holds whole transactions */
    assert_int_equal(count_rows(copy, "SELECT count(*) FROM audit_log WHERE action = "
                                      "'tenant.create'"),
                     n);
    struct stat sb;
    assert_int_equal(stat(copy, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof(wal), "%s-wal", copy);
    assert_int_not_equal(access(wal, F_OK), 0);
    assert_int_equal(store_check_file(copy, &version, err, sizeof(err)), STORE_OK);
    assert_int_equal(version, newest());
    unlink(copy);
}

static void
test_backup_never_overwrites(void **state)
{
    struct fx *f = *state;
    char copy[192], err[512] = "";
    copy_path(f, "there.db", copy, sizeof(copy));
    int fd = open(copy, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    assert_int_equal(store_backup(f->path, copy, NULL, err, sizeof(err)), STORE_ERR);
    assert_non_null(strstr(err, "File exists"));
    assert_int_equal(count_rows(f->path, "SELECT count(*) FROM tenants"), 2);
    struct stat sb;
    assert_int_equal(stat(copy, &sb), 0);
    assert_int_equal(sb.st_size, 4);
    unlink(copy);
    char missing[192];
    copy_path(f, "missing.db", missing, sizeof(missing));
    assert_int_equal(store_backup(missing, copy, NULL, err, sizeof(err)), STORE_ERR);
    assert_int_not_equal(access(copy, F_OK), 0);
}

static void
test_check_refuses(void **state)
{
    struct fx *f = *state;
    char copy[192], err[512] = "", sql[256];
    int version = -1;
    copy_path(f, "c.db", copy, sizeof(copy));

    /* a migration newer than this binary's */
    assert_int_equal(store_backup(f->path, copy, NULL, err, sizeof(err)), STORE_OK);
    snprintf(sql, sizeof(sql),
             "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'x', 1)",
             newest() + 1);
    exec_on(copy, sql);
    assert_int_equal(store_check_file(copy, &version, err, sizeof(err)), STORE_INVALID);
    assert_non_null(strstr(err, "newer"));
    assert_int_equal(version, 0);
    unlink(copy);

    /* migrations of another lineage */
    assert_int_equal(store_backup(f->path, copy, NULL, err, sizeof(err)), STORE_OK);
    exec_on(copy, "UPDATE schema_migrations SET name = 'elsewhere' WHERE version = 3");
    assert_int_equal(store_check_file(copy, NULL, err, sizeof(err)), STORE_INVALID);
    assert_non_null(strstr(err, "elsewhere"));
    unlink(copy);

    /* not an Aegis database */
    exec_on(copy, "CREATE TABLE t (x)");
    assert_int_equal(store_check_file(copy, NULL, err, sizeof(err)), STORE_INVALID);
    assert_non_null(strstr(err, "not an Aegis database"));
    unlink(copy);

    /* a row that breaks a foreign key */
    assert_int_equal(store_backup(f->path, copy, NULL, err, sizeof(err)), STORE_OK);
    exec_on(copy, "INSERT INTO products (tenant_id, name, created_at, updated_at) VALUES (999, "
                  "'p', 1, 1)");
    assert_int_equal(store_check_file(copy, NULL, err, sizeof(err)), STORE_INVALID);
    assert_non_null(strstr(err, "foreign key"));
    unlink(copy);
}

/* SQLite 3.40's integrity_check says "NULL value in deployment_images.tenant_id" of every row of
 * that table (a NOT NULL column between its primary key's columns): not a reason to refuse a
 * backup. */
static void
test_check_accepts_deployment_images(void **state)
{
    struct fx *f = *state;
    char copy[192], err[512] = "", sql[1024];
    copy_path(f, "dep.db", copy, sizeof(copy));
    snprintf(sql, sizeof(sql),
             "INSERT INTO products (id, tenant_id, name, created_at, updated_at) VALUES (7, %lld, "
             "'p', 1, 1);"
             "INSERT INTO device_groups (id, tenant_id, product_id, name, created_at, updated_at) "
             "VALUES (8, %lld, 7, 'g', 1, 1);"
             "INSERT INTO deployments (id, tenant_id, group_id, name, waves, soak_seconds, "
             "failure_threshold_pct, min_attempts, state, current_wave, wave_started_at, "
             "checks_since, created_at, updated_at) VALUES (9, %lld, 8, 'd', '[100]', 0, 10, 1, "
             "'running', 1, 1, 1, 1, 1);"
             "INSERT INTO deployment_images (deployment_id, tenant_id, sha256) VALUES (9, %lld, "
             "'ab');",
             (long long)f->ta, (long long)f->ta, (long long)f->ta, (long long)f->ta);
    exec_on(f->path, sql);
    assert_int_equal(store_backup(f->path, copy, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(count_rows(copy, "SELECT count(*) FROM deployment_images"), 1);
    unlink(copy);
}

static void
test_check_finds_damage(void **state)
{
    struct fx *f = *state;
    char copy[192], err[512] = "", junk[4096];
    copy_path(f, "d.db", copy, sizeof(copy));
    for (int i = 0; i < 200; i++) {
        char name[16];
        int64_t id;
        snprintf(name, sizeof(name), "x%d", i);
        assert_int_equal(store_tenant_create(f->s, name, &ctl, &id), STORE_OK);
    }
    assert_int_equal(store_backup(f->path, copy, NULL, err, sizeof(err)), STORE_OK);
    struct stat sb;
    assert_int_equal(stat(copy, &sb), 0);
    /* overwrite pages past the first (the header stays readable) */
    memset(junk, 0xa5, sizeof(junk));
    int fd = open(copy, O_WRONLY);
    assert_true(fd >= 0);
    for (off_t off = 4096; off + 4096 <= sb.st_size; off += 3 * 4096)
        assert_int_equal(pwrite(fd, junk, sizeof(junk), off), (ssize_t)sizeof(junk));
    close(fd);
    assert_int_not_equal(store_check_file(copy, NULL, err, sizeof(err)), STORE_OK);
    assert_true(err[0] != '\0');
    unlink(copy);
}

static void
test_in_use(void **state)
{
    struct fx *f = *state;
    char err[512] = "", missing[192];
    copy_path(f, "none.db", missing, sizeof(missing));
    assert_int_equal(store_in_use(missing, err, sizeof(err)), 0);
    assert_int_not_equal(access(missing, F_OK), 0);
    /* a file that is not a database is in nobody's use (restore --force may replace it) */
    char junk[4096];
    memset(junk, 'x', sizeof(junk));
    int fd = open(missing, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    assert_int_equal(store_in_use(missing, err, sizeof(err)), 0);
    unlink(missing);
    /* the fixture's store holds it open */
    assert_int_equal(store_in_use(f->path, err, sizeof(err)), 1);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_in_use(f->path, err, sizeof(err)), 0);
    /* and the check left it usable */
    assert_int_equal(store_open(f->path, 2, &f->s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_in_use(f->path, err, sizeof(err)), 1);
    assert_int_equal(count_rows(f->path, "SELECT count(*) FROM tenants"), 2);
}

int
main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backup_while_committing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_never_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_accepts_deployment_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_use, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
