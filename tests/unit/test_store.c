/* Unit tests of the store (store.h) on a fresh SQLite database in a temp directory per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_fx.h"

/* --- migrations and the database file --- */

static void
test_migrate_fresh(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    int v = -1, applied = -1;
    struct stat sb;

    assert_int_equal(store_schema_version(f->s, &v), STORE_OK);
    assert_int_equal(v, 0);
    assert_int_equal(store_migrate(f->s, &applied, err, sizeof(err)), STORE_OK);
    assert_int_equal(applied, schema_migration_count);
    assert_int_equal(store_schema_version(f->s, &v), STORE_OK);
    assert_int_equal(v, newest());
    assert_int_equal(store_migrate(f->s, &applied, err, sizeof(err)), STORE_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(store_ping(f->s), STORE_OK);

    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    if (stat(wal, &sb) == 0)
        assert_int_equal(sb.st_mode & 0077, 0);

    /* WAL is recorded in the file: a second, independent connection sees it. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM schema_migrations", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), schema_migration_count);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void
test_migrate_refuses_newer_db(void **state)
{
    struct fx *f = *state;
    char err[256] = "", sql[160];
    int v = 0, applied = -1;
    sqlite3 *db = NULL;

    assert_int_equal(store_migrate(f->s, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'future', 0)",
             newest() + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(store_migrate(f->s, &applied, err, sizeof(err)), STORE_INVALID);
    assert_int_equal(applied, 0);
    char want[64];
    snprintf(want, sizeof(want), "version %d", newest() + 1);
    assert_non_null(strstr(err, want));
    assert_int_equal(store_schema_version(f->s, &v), STORE_OK);
    assert_int_equal(v, newest() + 1);
}

struct race {
    store *s;
    int applied;
    int rc;
};

static void *
race_migrate(void *arg)
{
    struct race *r = arg;
    char err[256];
    r->rc = store_migrate(r->s, &r->applied, err, sizeof(err));
    return NULL;
}

/* Two stores (as two processes would) migrate the same fresh database at once: each migration lands
 * once. */
static void
test_migrate_race(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct race r[2] = {{f->s, 0, -1}, {NULL, 0, -1}};
    pthread_t th[2];
    int v = 0;

    assert_int_equal(store_open(f->path, 1, &r[1].s, err, sizeof(err)), STORE_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_migrate, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(r[0].rc, STORE_OK);
    assert_int_equal(r[1].rc, STORE_OK);
    assert_int_equal(r[0].applied + r[1].applied, schema_migration_count);
    assert_int_equal(store_schema_version(r[1].s, &v), STORE_OK);
    assert_int_equal(v, newest());
    assert_int_equal(store_error_count(r[1].s), 0);
    store_close(r[1].s);
}

static void
test_open_bad_path(void **state)
{
    (void)state;
    store *s = (store *)1;
    char err[256] = "";
    assert_int_not_equal(store_open("/nonexistent-dir/x/aegis.db", 1, &s, err, sizeof(err)),
                         STORE_OK);
    assert_null(s);
    assert_true(strlen(err) > 0);
    assert_int_equal(store_open("/tmp/x.db", 0, &s, err, sizeof(err)), STORE_INVALID);
    store_close(NULL);
}

/* --- tenants and CAs --- */

static void
test_tenants(void **state)
{
    struct fx *f = *state;
    int64_t id = 0;
    json_t *t = NULL;

    assert_true(f->ta > 0 && f->tb > f->ta);
    assert_int_equal(store_tenant_create(f->s, "acme", &ctl, &id), STORE_CONFLICT);
    assert_int_equal(store_tenant_create(f->s, "", &ctl, &id), STORE_INVALID);
    assert_int_equal(store_tenant_create(f->s, "bad\nname", &ctl, &id), STORE_INVALID);
    assert_int_equal(store_tenant_find(f->s, "globex", &id), STORE_OK);
    assert_int_equal(id, f->tb);
    assert_int_equal(store_tenant_find(f->s, "nobody", &id), STORE_NOTFOUND);

    assert_int_equal(store_tenant_get(f->s, f->ta, &t), STORE_OK);
    assert_int_equal(jint(t, "id"), f->ta);
    assert_string_equal(jstr(t, "name"), "acme");
    int64_t ts = 0;
    assert_int_equal(util_parse_rfc3339(jstr(t, "created_at"), &ts), 0);
    assert_true(ts > 0 && ts <= util_now());
    assert_int_equal(json_object_size(t), 3);
    json_decref(t);
    assert_int_equal(store_tenant_get(f->s, 9999, &t), STORE_NOTFOUND);
    assert_null(t);

    assert_int_equal(store_tenant_list(f->s, &t), STORE_OK);
    assert_int_equal(json_array_size(t), 2);
    assert_string_equal(jstr(json_array_get(t, 0), "name"), "acme");
    assert_string_equal(jstr(json_array_get(t, 1), "name"), "globex");
    json_decref(t);

    /* The typed forms hold the same rows. */
    struct store_tenant one, *all = NULL;
    size_t n = 0;
    assert_int_equal(store_tenant_load(f->s, f->tb, &one), STORE_OK);
    assert_int_equal(one.id, f->tb);
    assert_string_equal(one.name, "globex");
    assert_true(one.created_at > 0 && one.created_at <= util_now());
    assert_int_equal(store_tenant_load(f->s, 9999, &one), STORE_NOTFOUND);
    assert_int_equal(store_tenant_load_all(f->s, &all, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(all[0].id, f->ta);
    assert_string_equal(all[0].name, "acme");
    assert_string_equal(all[1].name, "globex");
    free(all);

    char actions[512];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "tenant.create");
}

static void
test_cas(void **state)
{
    struct fx *f = *state;
    int64_t now = util_now(), c1 = 0, c2 = 0, c3 = 0;
    json_t *l = NULL;

    assert_int_equal(
        store_ca_add(f->s, f->ta, "PEM1", "tenants/1/ca-1", now - 10, now + 1000, 1, &ctl, &c1),
        STORE_OK);
    assert_int_equal(
        store_ca_add(f->s, f->ta, "PEM2", "tenants/1/ca-2", now - 5, now + 2000, 1, &ctl, &c2),
        STORE_OK);
    assert_int_equal(
        store_ca_add(f->s, f->ta, "PEM0", "tenants/1/ca-0", now - 100, now - 1, 0, &ctl, &c3),
        STORE_OK);
    assert_int_equal(store_ca_add(f->s, 9999, "PEM", "k", now, now + 1, 1, &ctl, &c3),
                     STORE_NOTFOUND);
    assert_int_equal(store_ca_add(f->s, f->ta, "PEM", "k", now, now, 1, &ctl, &c3), STORE_INVALID);

    assert_int_equal(store_ca_list(f->s, f->ta, now, &l), STORE_OK);
    assert_int_equal(json_array_size(l), 2); /* the expired one is not listed */
    json_t *first = json_array_get(l, 0), *second = json_array_get(l, 1);
    assert_int_equal(jint(first, "id"), c2);
    assert_true(json_is_true(json_object_get(first, "active")));
    assert_string_equal(jstr(first, "cert_pem"), "PEM2");
    assert_string_equal(jstr(first, "key_name"), "tenants/1/ca-2");
    jstr(first, "not_before");
    jstr(first, "not_after");
    assert_int_equal(jint(second, "id"), c1);
    assert_true(json_is_false(json_object_get(second, "active")));
    json_decref(l);

    assert_int_equal(store_ca_list(f->s, f->tb, now, &l), STORE_OK);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);

    /* The typed form: the same CAs in the same order. */
    struct store_ca *cas = NULL;
    size_t n = 0;
    assert_int_equal(store_ca_load_all(f->s, f->ta, now, &cas, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(cas[0].id, c2);
    assert_true(cas[0].active);
    assert_string_equal(cas[0].cert_pem, "PEM2");
    assert_string_equal(cas[0].key_name, "tenants/1/ca-2");
    assert_int_equal(cas[0].not_before, now - 5);
    assert_int_equal(cas[0].not_after, now + 2000);
    assert_int_equal(cas[1].id, c1);
    assert_false(cas[1].active);
    store_ca_free(cas, n);
    assert_int_equal(store_ca_load_all(f->s, f->tb, now, &cas, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_null(cas);

    char actions[512];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "ca.create ca.create ca.create tenant.create");
}

/* --- tokens --- */

static void
test_tokens(void **state)
{
    struct fx *f = *state;
    unsigned char h1[32], h2[32];
    int64_t t1 = 0, t2 = 0, tx = 0;
    struct store_token tok;
    json_t *l = NULL;

    memset(h1, 0xa1, sizeof(h1));
    memset(h2, 0xb2, sizeof(h2));
    assert_int_equal(store_token_create(f->s, f->ta, "first admin", "admin", h1, &ctl, &t1),
                     STORE_OK);
    assert_int_equal(store_token_create(f->s, f->tb, "ci", "reader", h2, &f->b, &t2), STORE_OK);
    assert_int_equal(store_token_create(f->s, f->ta, "x", "root", h1, &ctl, &tx), STORE_INVALID);
    assert_int_equal(store_token_create(f->s, 9999, "x", "admin", h1, &ctl, &tx), STORE_NOTFOUND);

    assert_int_equal(store_token_get_auth(f->s, t1, &tok), STORE_OK);
    assert_int_equal(tok.id, t1);
    assert_int_equal(tok.tenant_id, f->ta);
    assert_string_equal(tok.role, "admin");
    assert_memory_equal(tok.hash, h1, 32);
    assert_int_equal(tok.revoked, 0);
    assert_int_equal(store_token_get_auth(f->s, 424242, &tok), STORE_NOTFOUND);

    assert_int_equal(store_token_list(f->s, f->ta, &l), STORE_OK);
    assert_int_equal(json_array_size(l), 1);
    json_t *it = json_array_get(l, 0);
    assert_int_equal(jint(it, "id"), t1);
    assert_string_equal(jstr(it, "name"), "first admin");
    assert_string_equal(jstr(it, "role"), "admin");
    assert_string_equal(jstr(it, "created_by"), "aegisctl");
    jstr(it, "created_at");
    assert_true(json_is_null(json_object_get(it, "revoked_at")));
    assert_null(json_object_get(it, "hash"));
    assert_true(json_is_null(json_object_get(it, "expires_at")));   /* never */
    assert_true(json_is_null(json_object_get(it, "last_used_at"))); /* not yet */
    assert_int_equal(json_object_size(it), 8);
    json_t *one = NULL;
    assert_int_equal(store_token_get(f->s, f->ta, t1, &one), STORE_OK);
    assert_true(json_equal(one, it));
    json_decref(one);
    assert_int_equal(store_token_get(f->s, f->tb, t1, &one), STORE_NOTFOUND);
    assert_null(one);
    json_decref(l);

    /* Tenant B cannot revoke A's token; A can, twice. */
    assert_int_equal(store_token_revoke(f->s, f->tb, t1, &f->b), STORE_NOTFOUND);
    assert_int_equal(store_token_get_auth(f->s, t1, &tok), STORE_OK);
    assert_int_equal(tok.revoked, 0);
    assert_int_equal(store_token_revoke(f->s, f->ta, t1, &f->a), STORE_OK);
    assert_int_equal(store_token_revoke(f->s, f->ta, t1, &f->a), STORE_OK);
    assert_int_equal(store_token_get_auth(f->s, t1, &tok), STORE_OK);
    assert_int_equal(tok.revoked, 1);
    assert_int_equal(store_token_list(f->s, f->ta, &l), STORE_OK);
    assert_true(json_is_string(json_object_get(json_array_get(l, 0), "revoked_at")));
    json_decref(l);
    assert_int_equal(store_token_get_auth(f->s, t2, &tok), STORE_OK);
    assert_int_equal(tok.revoked, 0);

    char actions[512];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "token.revoke token.create tenant.create");
    audit_actions(f, f->tb, actions, sizeof(actions));
    assert_string_equal(actions, "token.create tenant.create");
}

/* --- concurrency --- */

struct worker {
    struct fx *f;
    int n;
    int failures;
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 25; i++) {
        char name[32];
        json_t *p = NULL;
        snprintf(name, sizeof(name), "w%d-%d", w->n, i);
        if (store_product_create(w->f->s, w->f->ta, name, NULL, &w->f->a, &p) != STORE_OK)
            w->failures++;
        json_decref(p);
        if (store_product_list(w->f->s, w->f->ta, &(struct store_page){NULL, 10}, &p,
                               (char[CURSOR_BUF]){0}) != STORE_OK)
            w->failures++;
        json_decref(p);
    }
    return NULL;
}

/* API writes never checkpoint the log on their own (SQLite's default would, every 1,000 pages,
 * inside whichever request crossed the mark); store_checkpoint copies it all, and the next write
 * starts the log over. */
static void
test_checkpoint_off_the_request_path(void **state)
{
    struct fx *f = *state;
    int nlog = -1, copied = -1;
    char name[32];
    json_t *p = NULL;
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "product-%d", i);
        assert_int_equal(store_product_create(f->s, f->ta, name, NULL, &f->a, &p), STORE_OK);
        json_decref(p);
    }
    assert_int_equal(store_checkpoint(f->s, &nlog, &copied), STORE_OK);
    assert_true(nlog > 1000);
    assert_int_equal(copied, nlog);
    assert_int_equal(store_product_create(f->s, f->ta, "one-more", NULL, &f->a, &p), STORE_OK);
    json_int_t id = json_integer_value(json_object_get(p, "id"));
    json_decref(p);
    assert_int_equal(store_checkpoint(f->s, &nlog, &copied), STORE_OK);
    assert_true(nlog > 0 && nlog < 50);
    assert_int_equal(copied, nlog);
    /* nothing was lost on the way */
    assert_int_equal(store_product_get(f->s, f->ta, id, &p), STORE_OK);
    json_decref(p);
}

static void
test_pool_concurrent(void **state)
{
    struct fx *f = *state;
    enum { T = 8 };
    pthread_t th[T];
    struct worker w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct worker){f, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    char cursor[CURSOR_BUF] = "", next[CURSOR_BUF];
    size_t total = 0;
    do {
        struct store_page pg = {cursor[0] != '\0' ? cursor : NULL, 1000};
        json_t *items = NULL;
        assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_OK);
        total += json_array_size(items);
        json_decref(items);
        memcpy(cursor, next, sizeof(cursor));
    } while (next[0] != '\0');
    assert_int_equal(total, T * 25);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_fresh, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_refuses_newer_db, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_race, setup_empty, teardown),
        cmocka_unit_test(test_open_bad_path),
        cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_off_the_request_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_concurrent, setup, teardown),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
