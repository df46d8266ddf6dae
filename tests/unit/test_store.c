/* Unit tests of the store (store.h) on a fresh SQLite database in a temp directory per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log.h"
#include "schema.h"
#include "store.h"
#include "util.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM                                                                                        \
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
#define CURSOR_BUF 129

struct fx {
    char dir[64];
    char path[128];
    store *s;
    int64_t ta, tb; /* two tenants */
    struct store_actor a, b;
};

static const struct store_actor ctl = {0, "aegisctl"};

static int
newest(void)
{
    return schema_migrations[schema_migration_count - 1].version;
}

/* A deterministic pseudo-random device id (64 lower-case hex) for n. */
static void
dev_id(uint64_t n, char out[65])
{
    unsigned char b[32];
    uint64_t x = n * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < 32; i++) {
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 27;
        b[i] = (unsigned char)(x >> 56);
    }
    util_hex(b, 32, out);
}

static void
rm_db_files(const struct fx *f)
{
    char p[160];
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
    rmdir(f->dir);
}

static int
setup_empty(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aegis-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/aegis.db", f->dir);
    char err[256] = "";
    assert_int_equal(store_open(f->path, 3, &f->s, err, sizeof(err)), STORE_OK);
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    setup_empty(state);
    struct fx *f = *state;
    char err[256] = "";
    int applied = -1;
    assert_int_equal(store_migrate(f->s, &applied, err, sizeof(err)), STORE_OK);
    assert_int_equal(applied, schema_migration_count);
    assert_int_equal(store_tenant_create(f->s, "acme", &ctl, &f->ta), STORE_OK);
    assert_int_equal(store_tenant_create(f->s, "globex", &ctl, &f->tb), STORE_OK);
    f->a = (struct store_actor){f->ta, "token:1"};
    f->b = (struct store_actor){f->tb, "token:2"};
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    if (f->s != NULL)
        assert_int_equal(store_error_count(f->s), 0);
    store_close(f->s);
    rm_db_files(f);
    free(f);
    return 0;
}

static const char *
jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    assert_non_null(v);
    return v;
}

static int64_t
jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* The actor of a tenant of the fixture. */
static const struct store_actor *
actor_of(struct fx *f, int64_t tenant)
{
    return tenant == f->ta ? &f->a : &f->b;
}

static int64_t
make_product(struct fx *f, int64_t tenant, const char *name)
{
    const struct store_actor *a = actor_of(f, tenant);
    json_t *p = NULL;
    assert_int_equal(store_product_create(f->s, tenant, name, "d", a, &p), STORE_OK);
    int64_t id = jint(p, "id");
    json_decref(p);
    return id;
}

static int64_t
make_group(struct fx *f, int64_t tenant, int64_t product, const char *name)
{
    const struct store_actor *a = actor_of(f, tenant);
    json_t *g = NULL;
    assert_int_equal(store_group_create(f->s, tenant, product, name, NULL, a, &g), STORE_OK);
    int64_t id = jint(g, "id");
    json_decref(g);
    return id;
}

/* Imports one device; returns the store code. */
static int
import1(struct fx *f, int64_t tenant, const struct store_actor *a, const char *id, int claim,
        int64_t group)
{
    struct store_import_entry e = {id, PEM};
    json_t *errors = NULL;
    size_t created = 0;
    int rc = store_device_import(f->s, tenant, &e, 1, claim, group, a, &errors, &created);
    json_decref(errors);
    return rc;
}

/* The device's state, or NULL if the tenant cannot see it. The string is static. */
static const char *
dev_state(struct fx *f, int64_t tenant, const char *id)
{
    static char buf[16];
    json_t *d = NULL;
    if (store_device_get(f->s, tenant, id, &d) != STORE_OK)
        return NULL;
    snprintf(buf, sizeof(buf), "%s", jstr(d, "state"));
    json_decref(d);
    return buf;
}

/* Counts the devices of a filtered list, following every page. */
static size_t
count_devices(struct fx *f, int64_t tenant, int64_t group, const char *state, int limit)
{
    char cursor[CURSOR_BUF] = "", next[CURSOR_BUF];
    size_t n = 0;
    for (;;) {
        struct store_page pg = {cursor[0] != '\0' ? cursor : NULL, limit};
        json_t *items = NULL;
        assert_int_equal(store_device_list(f->s, tenant, group, state, &pg, &items, next),
                         STORE_OK);
        n += json_array_size(items);
        json_decref(items);
        if (next[0] == '\0')
            return n;
        memcpy(cursor, next, sizeof(cursor));
    }
}

/* The actions of the tenant's audit log, newest first, joined by spaces (all pages of limit 2). */
static void
audit_actions(struct fx *f, int64_t tenant, char *out, size_t outlen)
{
    char cursor[CURSOR_BUF] = "", next[CURSOR_BUF];
    int64_t last_id = INT64_MAX;
    out[0] = '\0';
    for (;;) {
        struct store_page pg = {cursor[0] != '\0' ? cursor : NULL, 2};
        json_t *items = NULL, *it;
        size_t i;
        assert_int_equal(store_audit_list(f->s, tenant, &pg, &items, next), STORE_OK);
        json_array_foreach(items, i, it)
        {
            assert_true(jint(it, "id") < last_id); /* newest first, no repeats */
            last_id = jint(it, "id");
            assert_true(json_is_object(json_object_get(it, "detail")));
            assert_non_null(json_object_get(it, "object_id"));
            jstr(it, "actor");
            jstr(it, "object_type");
            jstr(it, "created_at");
            size_t len = strlen(out);
            snprintf(out + len, outlen - len, "%s%s", len > 0 ? " " : "", jstr(it, "action"));
        }
        json_decref(items);
        if (next[0] == '\0')
            return;
        memcpy(cursor, next, sizeof(cursor));
    }
}

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
    assert_int_equal(json_object_size(it), 6);
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

/* --- products and groups --- */

static void
test_products(void **state)
{
    struct fx *f = *state;
    json_t *p = NULL, *items = NULL;
    char next[CURSOR_BUF];

    assert_int_equal(store_product_create(f->s, f->ta, "sensor", NULL, &f->a, &p), STORE_OK);
    int64_t id = jint(p, "id");
    assert_string_equal(jstr(p, "name"), "sensor");
    assert_string_equal(jstr(p, "description"), "");
    assert_string_equal(jstr(p, "created_at"), jstr(p, "updated_at"));
    assert_int_equal(json_object_size(p), 5);
    json_decref(p);
    assert_int_equal(store_product_create(f->s, f->ta, "sensor", "again", &f->a, &p),
                     STORE_CONFLICT);
    assert_null(p);
    /* Names are per tenant. */
    int64_t bid = make_product(f, f->tb, "sensor");

    assert_int_equal(store_product_get(f->s, f->ta, id, &p), STORE_OK);
    assert_int_equal(jint(p, "id"), id);
    json_decref(p);
    assert_int_equal(store_product_get(f->s, f->tb, id, &p), STORE_NOTFOUND);
    assert_null(p);

    assert_int_equal(store_product_update(f->s, f->ta, id, NULL, "new text", &f->a, &p), STORE_OK);
    assert_string_equal(jstr(p, "name"), "sensor");
    assert_string_equal(jstr(p, "description"), "new text");
    json_decref(p);
    assert_int_equal(store_product_update(f->s, f->ta, id, "gateway", NULL, &f->a, &p), STORE_OK);
    assert_string_equal(jstr(p, "name"), "gateway");
    assert_string_equal(jstr(p, "description"), "new text");
    json_decref(p);
    make_product(f, f->ta, "camera");
    assert_int_equal(store_product_update(f->s, f->ta, id, "camera", NULL, &f->a, &p),
                     STORE_CONFLICT);
    assert_int_equal(store_product_update(f->s, f->tb, id, "x", NULL, &f->b, &p), STORE_NOTFOUND);
    assert_int_equal(store_product_delete(f->s, f->tb, id, &f->b), STORE_NOTFOUND);

    /* Pagination: 5 products, pages of 2. */
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "p%d", i);
        make_product(f, f->ta, name);
    }
    struct store_page pg = {NULL, 2};
    int pages = 0, total = 0;
    int64_t last = 0;
    char cursor[CURSOR_BUF];
    do {
        assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_OK);
        for (size_t i = 0; i < json_array_size(items); i++) {
            int64_t pid = jint(json_array_get(items, i), "id");
            assert_true(pid > last);
            assert_true(pid != bid);
            last = pid;
        }
        total += (int)json_array_size(items);
        pages++;
        json_decref(items);
        memcpy(cursor, next, sizeof(cursor));
        pg.cursor = cursor;
    } while (next[0] != '\0');
    assert_int_equal(total, 5);
    assert_int_equal(pages, 3);

    pg.cursor = "abc";
    assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_INVALID);
    assert_null(items);
    pg.cursor = "-1";
    assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_INVALID);
    pg.cursor = NULL;
    pg.limit = 0;
    assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_INVALID);

    assert_int_equal(store_product_delete(f->s, f->ta, id, &f->a), STORE_OK);
    assert_int_equal(store_product_get(f->s, f->ta, id, &p), STORE_NOTFOUND);
    assert_int_equal(store_product_delete(f->s, f->ta, id, &f->a), STORE_NOTFOUND);

    char actions[1024];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "product.delete product.create product.create product.create "
                                 "product.create product.update product.update product.create "
                                 "tenant.create");
}

static void
test_groups(void **state)
{
    struct fx *f = *state;
    json_t *g = NULL, *items = NULL;
    char next[CURSOR_BUF];
    int64_t pa = make_product(f, f->ta, "sensor");
    int64_t pa2 = make_product(f, f->ta, "gateway");
    int64_t pb = make_product(f, f->tb, "sensor");

    assert_int_equal(store_group_create(f->s, f->ta, pa, "eu", "Europe", &f->a, &g), STORE_OK);
    int64_t ga = jint(g, "id");
    assert_int_equal(jint(g, "product_id"), pa);
    assert_string_equal(jstr(g, "name"), "eu");
    assert_string_equal(jstr(g, "description"), "Europe");
    jstr(g, "created_at");
    jstr(g, "updated_at");
    assert_int_equal(json_object_size(g), 6);
    json_decref(g);

    assert_int_equal(store_group_create(f->s, f->ta, pa, "eu", NULL, &f->a, &g), STORE_CONFLICT);
    assert_null(g);
    assert_int_equal(store_group_create(f->s, f->ta, pb, "x", NULL, &f->a, &g), STORE_NOTFOUND);
    assert_int_equal(store_group_create(f->s, f->tb, pa, "x", NULL, &f->b, &g), STORE_NOTFOUND);
    make_group(f, f->ta, pa2, "eu"); /* same name, other product */
    make_group(f, f->ta, pa, "us");
    int64_t gb = make_group(f, f->tb, pb, "eu");

    assert_int_equal(store_group_get(f->s, f->tb, ga, &g), STORE_NOTFOUND);
    assert_int_equal(store_group_update(f->s, f->tb, ga, "x", NULL, &f->b, &g), STORE_NOTFOUND);
    assert_int_equal(store_group_delete(f->s, f->tb, ga, &f->b), STORE_NOTFOUND);
    assert_int_equal(store_group_update(f->s, f->ta, ga, "us", NULL, &f->a, &g), STORE_CONFLICT);
    assert_int_equal(store_group_update(f->s, f->ta, ga, "europe", NULL, &f->a, &g), STORE_OK);
    assert_string_equal(jstr(g, "name"), "europe");
    assert_string_equal(jstr(g, "description"), "Europe");
    json_decref(g);

    struct store_page pg = {NULL, 100};
    assert_int_equal(store_group_list(f->s, f->ta, 0, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 3);
    assert_string_equal(next, "");
    json_decref(items);
    assert_int_equal(store_group_list(f->s, f->ta, pa, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 2);
    json_decref(items);
    assert_int_equal(store_group_list(f->s, f->ta, pb, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    assert_int_equal(store_group_list(f->s, f->tb, 0, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(jint(json_array_get(items, 0), "id"), gb);
    json_decref(items);

    /* Not empty: product with groups, group with devices. */
    assert_int_equal(store_product_delete(f->s, f->ta, pa, &f->a), STORE_CONFLICT);
    char id[65];
    dev_id(1, id);
    assert_int_equal(import1(f, f->ta, &f->a, id, 1, ga), STORE_OK);
    assert_int_equal(store_group_delete(f->s, f->ta, ga, &f->a), STORE_CONFLICT);
    assert_int_equal(store_device_move(f->s, f->ta, id, 0, &f->a, &g), STORE_OK);
    json_decref(g);
    assert_int_equal(store_group_delete(f->s, f->ta, ga, &f->a), STORE_OK);
    assert_int_equal(store_group_get(f->s, f->ta, ga, &g), STORE_NOTFOUND);

    char actions[1024];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "group.delete device.move device.import group.update "
                                 "group.create group.create group.create product.create "
                                 "product.create tenant.create");
}

/* --- devices --- */

static void
test_device_import_conflict_is_atomic(void **state)
{
    struct fx *f = *state;
    char ids[5][65];
    for (int i = 0; i < 5; i++)
        dev_id(100 + (uint64_t)i, ids[i]);

    /* A owns ids[1] and ids[3]. */
    assert_int_equal(import1(f, f->ta, &f->a, ids[1], 1, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, ids[3], 1, 0), STORE_OK);

    struct store_import_entry e[5];
    for (int i = 0; i < 5; i++)
        e[i] = (struct store_import_entry){ids[i], PEM};
    json_t *errors = NULL;
    size_t created = 99;
    assert_int_equal(store_device_import(f->s, f->tb, e, 5, 1, 0, &f->b, &errors, &created),
                     STORE_CONFLICT);
    assert_int_equal(created, 0);
    assert_non_null(errors);
    assert_int_equal(json_array_size(errors), 2);
    json_t *e0 = json_array_get(errors, 0), *e1 = json_array_get(errors, 1);
    assert_int_equal(jint(e0, "index"), 1);
    assert_string_equal(jstr(e0, "device_id"), ids[1]);
    assert_string_equal(jstr(e0, "error"), "already_claimed");
    jstr(e0, "message");
    assert_int_equal(jint(e1, "index"), 3);
    assert_string_equal(jstr(e1, "device_id"), ids[3]);
    json_decref(errors);

    /* Nothing of the batch was stored. */
    assert_int_equal(count_devices(f, f->tb, 0, NULL, 100), 0);
    for (int i = 0; i < 5; i++)
        assert_null(dev_state(f, f->tb, ids[i]));
    assert_null(dev_state(f, f->ta, ids[0]));
    assert_string_equal(dev_state(f, f->ta, ids[1]), "active");
    char actions[256];
    audit_actions(f, f->tb, actions, sizeof(actions));
    assert_string_equal(actions, "tenant.create");

    /* The same batch without the claimed entries goes through. */
    e[1] = e[0];
    e[3] = e[2];
    assert_int_equal(store_device_import(f->s, f->tb, e, 5, 0, 0, &f->b, &errors, &created),
                     STORE_OK);
    assert_null(errors);
    assert_int_equal(created, 3);
    assert_int_equal(count_devices(f, f->tb, 0, "unclaimed", 100), 3);

    /* Bad arguments. */
    struct store_import_entry bad = {"ABC", PEM};
    assert_int_equal(store_device_import(f->s, f->tb, &bad, 1, 1, 0, &f->b, &errors, &created),
                     STORE_INVALID);
    assert_int_equal(store_device_import(f->s, f->tb, e, 0, 1, 0, &f->b, &errors, &created),
                     STORE_INVALID);
    assert_int_equal(store_device_import(f->s, f->tb, e, 1, 0, 5, &f->b, &errors, &created),
                     STORE_INVALID); /* a group needs claim */
}

static void
test_device_import_10k_and_paginate(void **state)
{
    struct fx *f = *state;
    enum { N = 10000 };
    char(*ids)[65] = calloc(N, sizeof(*ids));
    struct store_import_entry *e = calloc(N, sizeof(*e));
    assert_non_null(ids);
    assert_non_null(e);
    for (int i = 0; i < N; i++) {
        dev_id((uint64_t)i, ids[i]);
        e[i] = (struct store_import_entry){ids[i], PEM};
    }
    int64_t p = make_product(f, f->ta, "sensor");
    int64_t g = make_group(f, f->ta, p, "fleet");

    json_t *errors = NULL;
    size_t created = 0;
    uint64_t t0 = util_mono_ns();
    assert_int_equal(store_device_import(f->s, f->ta, e, N, 1, g, &f->a, &errors, &created),
                     STORE_OK);
    double secs = (double)(util_mono_ns() - t0) / 1e9;
    print_message("    import of %d devices: %.3f s\n", N, secs);
    assert_true(secs < 3.0);
    assert_null(errors);
    assert_int_equal(created, N);

    /* Every device exactly once, in id order, pages of 1000. */
    char cursor[CURSOR_BUF] = "", next[CURSOR_BUF], prev[65] = "";
    size_t total = 0;
    int pages = 0;
    for (;;) {
        struct store_page pg = {cursor[0] != '\0' ? cursor : NULL, 1000};
        json_t *items = NULL, *it;
        size_t i;
        assert_int_equal(store_device_list(f->s, f->ta, 0, NULL, &pg, &items, next), STORE_OK);
        json_array_foreach(items, i, it)
        {
            const char *id = jstr(it, "id");
            assert_true(strcmp(id, prev) > 0);
            snprintf(prev, sizeof(prev), "%s", id);
            assert_string_equal(jstr(it, "state"), "active");
            assert_int_equal(jint(it, "group_id"), g);
            assert_int_equal(jint(it, "product_id"), p);
        }
        total += json_array_size(items);
        pages++;
        json_decref(items);
        if (next[0] == '\0')
            break;
        assert_int_equal(strlen(next), 64);
        memcpy(cursor, next, sizeof(cursor));
    }
    assert_int_equal(total, N);
    assert_int_equal(pages, 10);
    assert_int_equal(count_devices(f, f->ta, g, "active", 1000), N);
    assert_int_equal(count_devices(f, f->ta, 0, "active", 999), N);
    assert_int_equal(count_devices(f, f->ta, 0, "unclaimed", 1000), 0);
    assert_int_equal(count_devices(f, f->tb, 0, NULL, 1000), 0);

    /* Importing the same batch again changes nothing. */
    assert_int_equal(store_device_import(f->s, f->ta, e, N, 1, g, &f->a, &errors, &created),
                     STORE_OK);
    assert_int_equal(created, 0);

    /* One audit row per import, with its counts. */
    struct store_page pg = {NULL, 1};
    json_t *items = NULL;
    assert_int_equal(store_audit_list(f->s, f->ta, &pg, &items, next), STORE_OK);
    json_t *row = json_array_get(items, 0), *d = json_object_get(row, "detail");
    assert_string_equal(jstr(row, "action"), "device.import");
    assert_true(json_is_null(json_object_get(row, "object_id")));
    assert_int_equal(jint(d, "count"), N);
    assert_int_equal(jint(d, "created"), 0);
    assert_true(json_is_true(json_object_get(d, "claimed")));
    assert_int_equal(jint(d, "group_id"), g);
    json_decref(items);
    char actions[256];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions,
                        "device.import device.import group.create product.create tenant.create");
    free(ids);
    free(e);
}

static void
test_device_states_and_filters(void **state)
{
    struct fx *f = *state;
    char ids[5][65];
    json_t *d = NULL, *items = NULL;
    char next[CURSOR_BUF];
    int64_t p = make_product(f, f->ta, "sensor");
    int64_t g1 = make_group(f, f->ta, p, "g1");
    int64_t g2 = make_group(f, f->ta, p, "g2");

    for (int i = 0; i < 5; i++) {
        dev_id(200 + (uint64_t)i, ids[i]);
        assert_int_equal(import1(f, f->ta, &f->a, ids[i], 0, 0), STORE_OK);
    }
    assert_int_equal(store_device_get(f->s, f->ta, ids[0], &d), STORE_OK);
    assert_string_equal(jstr(d, "id"), ids[0]);
    assert_string_equal(jstr(d, "state"), "unclaimed");
    assert_true(json_is_null(json_object_get(d, "group_id")));
    assert_true(json_is_null(json_object_get(d, "product_id")));
    assert_true(json_is_null(json_object_get(d, "claimed_at")));
    assert_string_equal(jstr(d, "public_key"), PEM);
    jstr(d, "created_at");
    jstr(d, "updated_at");
    assert_true(json_is_null(json_object_get(d, "attestation"))); /* none yet */
    assert_int_equal(json_object_size(d), 9);
    json_decref(d);

    assert_int_equal(store_device_claim(f->s, f->ta, ids[0], g1, &f->a, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "active");
    assert_int_equal(jint(d, "group_id"), g1);
    assert_int_equal(jint(d, "product_id"), p);
    jstr(d, "claimed_at");
    json_decref(d);
    assert_int_equal(store_device_claim(f->s, f->ta, ids[1], 0, &f->a, &d), STORE_OK);
    json_decref(d);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, ids[1], 1, &f->a, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "blocked");
    json_decref(d);
    assert_int_equal(store_device_claim(f->s, f->ta, ids[2], g2, &f->a, &d), STORE_OK);
    json_decref(d);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, ids[2], 1, &f->a, &d), STORE_OK);
    json_decref(d);

    assert_int_equal(count_devices(f, f->ta, 0, NULL, 2), 5);
    assert_int_equal(count_devices(f, f->ta, 0, "unclaimed", 1), 2);
    assert_int_equal(count_devices(f, f->ta, 0, "active", 1), 1);
    assert_int_equal(count_devices(f, f->ta, 0, "blocked", 1), 2);
    assert_int_equal(count_devices(f, f->ta, g1, NULL, 1), 1);
    assert_int_equal(count_devices(f, f->ta, g1, "active", 1), 1);
    assert_int_equal(count_devices(f, f->ta, g1, "blocked", 1), 0);
    assert_int_equal(count_devices(f, f->ta, g2, "blocked", 1), 1);
    assert_int_equal(count_devices(f, f->ta, g1, "unclaimed", 1), 0);
    assert_int_equal(count_devices(f, f->tb, g1, NULL, 10), 0); /* A's group, seen from B */
    assert_int_equal(count_devices(f, f->tb, 0, NULL, 10), 0);

    struct store_page pg = {NULL, 10};
    assert_int_equal(store_device_list(f->s, f->ta, 0, "lost", &pg, &items, next), STORE_INVALID);
    assert_null(items);
    pg.cursor = "xyz";
    assert_int_equal(store_device_list(f->s, f->ta, 0, NULL, &pg, &items, next), STORE_INVALID);
    char upper[65];
    snprintf(upper, sizeof(upper), "%s", ids[0]);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    pg.cursor = upper;
    assert_int_equal(store_device_list(f->s, f->ta, 0, NULL, &pg, &items, next), STORE_INVALID);
    assert_int_equal(store_device_get(f->s, f->ta, upper, &d), STORE_INVALID);

    /* The cursor is exclusive: listing after the smallest id gives the other four. */
    char smallest[65];
    snprintf(smallest, sizeof(smallest), "%s", ids[0]);
    for (int i = 1; i < 5; i++)
        if (strcmp(ids[i], smallest) < 0)
            snprintf(smallest, sizeof(smallest), "%s", ids[i]);
    pg.cursor = smallest;
    assert_int_equal(store_device_list(f->s, f->ta, 0, NULL, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 4);
    assert_string_equal(next, "");
    json_decref(items);
}

static void
test_device_claim_move_block(void **state)
{
    struct fx *f = *state;
    char d1[65], d2[65], unknown[65];
    json_t *d = NULL;
    dev_id(300, d1);
    dev_id(301, d2);
    dev_id(302, unknown);
    int64_t pa = make_product(f, f->ta, "sensor");
    int64_t ga = make_group(f, f->ta, pa, "ga");
    int64_t pb = make_product(f, f->tb, "sensor");
    int64_t gb = make_group(f, f->tb, pb, "gb");

    assert_int_equal(store_device_claim(f->s, f->ta, unknown, 0, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_claim(f->s, f->ta, "nothex", 0, &f->a, &d), STORE_INVALID);

    /* A imports d1 and d2 without claiming: B does not see them. */
    assert_int_equal(import1(f, f->ta, &f->a, d1, 0, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, d2, 0, 0), STORE_OK);
    assert_null(dev_state(f, f->tb, d1));
    assert_string_equal(dev_state(f, f->ta, d1), "unclaimed");
    /* Unclaimed devices cannot be moved or blocked. */
    assert_int_equal(store_device_move(f->s, f->ta, d1, ga, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, d1, 1, &f->a, &d), STORE_NOTFOUND);

    /* B claims d1 with A's group: refused, nothing changes. */
    assert_int_equal(store_device_claim(f->s, f->tb, d1, ga, &f->b, &d), STORE_NOTFOUND);
    assert_string_equal(dev_state(f, f->ta, d1), "unclaimed");
    /* B claims it (any unclaimed registered device); then it is B's only. */
    assert_int_equal(store_device_claim(f->s, f->tb, d1, gb, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "active");
    assert_int_equal(jint(d, "group_id"), gb);
    assert_int_equal(jint(d, "product_id"), pb);
    json_decref(d);
    assert_null(dev_state(f, f->ta, d1));
    assert_int_equal(store_device_claim(f->s, f->ta, d1, 0, &f->a, &d), STORE_CONFLICT);
    assert_null(d);
    assert_int_equal(store_device_claim(f->s, f->tb, d1, 0, &f->b, &d), STORE_OK); /* idempotent */
    assert_int_equal(jint(d, "group_id"), gb);
    json_decref(d);
    /* A importing d1 now conflicts. */
    assert_int_equal(import1(f, f->ta, &f->a, d1, 0, 0), STORE_CONFLICT);

    /* Move: only the owner, only into its own groups. */
    assert_int_equal(store_device_move(f->s, f->ta, d1, ga, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_move(f->s, f->tb, d1, ga, &f->b, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_move(f->s, f->tb, d1, 0, &f->b, &d), STORE_OK);
    assert_true(json_is_null(json_object_get(d, "group_id")));
    assert_true(json_is_null(json_object_get(d, "product_id")));
    json_decref(d);
    assert_int_equal(store_device_move(f->s, f->tb, d1, gb, &f->b, &d), STORE_OK);
    assert_int_equal(jint(d, "group_id"), gb);
    json_decref(d);
    assert_int_equal(store_device_move(f->s, f->tb, unknown, gb, &f->b, &d), STORE_NOTFOUND);

    /* Block/unblock: only the owner; idempotent. */
    assert_int_equal(store_device_set_blocked(f->s, f->ta, d1, 1, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_set_blocked(f->s, f->tb, d1, 1, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "blocked");
    json_decref(d);
    assert_int_equal(store_device_set_blocked(f->s, f->tb, d1, 1, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "blocked");
    json_decref(d);
    assert_int_equal(store_device_set_blocked(f->s, f->tb, d1, 0, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "active");
    json_decref(d);

    /* A claims d2 into its group. */
    assert_int_equal(store_device_claim(f->s, f->ta, d2, ga, &f->a, &d), STORE_OK);
    assert_int_equal(jint(d, "group_id"), ga);
    json_decref(d);

    char actions[512];
    audit_actions(f, f->tb, actions, sizeof(actions));
    assert_string_equal(actions, "device.unblock device.block device.move device.move device.claim "
                                 "group.create product.create tenant.create");
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "device.claim device.import device.import group.create "
                                 "product.create tenant.create");

    /* The audit row of a device change names the device and the actor. */
    struct store_page pg = {NULL, 1};
    json_t *items = NULL;
    char next[CURSOR_BUF];
    assert_int_equal(store_audit_list(f->s, f->tb, &pg, &items, next), STORE_OK);
    json_t *row = json_array_get(items, 0);
    assert_string_equal(jstr(row, "object_type"), "device");
    assert_string_equal(jstr(row, "object_id"), d1);
    assert_string_equal(jstr(row, "actor"), "token:2");
    assert_true(strlen(next) > 0);
    json_decref(items);
    pg.cursor = "x1";
    assert_int_equal(store_audit_list(f->s, f->tb, &pg, &items, next), STORE_INVALID);
}

static void
test_audit_shapes(void **state)
{
    struct fx *f = *state;
    json_t *items = NULL, *p = NULL;
    char next[CURSOR_BUF];
    assert_int_equal(store_product_create(f->s, f->ta, "sensor", "x", &f->a, &p), STORE_OK);
    int64_t pid = jint(p, "id");
    json_decref(p);

    struct store_page pg = {NULL, 10};
    assert_int_equal(store_audit_list(f->s, f->ta, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(next, "");
    json_t *row = json_array_get(items, 0);
    assert_int_equal(json_object_size(row), 7);
    assert_string_equal(jstr(row, "action"), "product.create");
    assert_string_equal(jstr(row, "object_type"), "product");
    assert_int_equal(jint(row, "object_id"), pid);
    assert_string_equal(jstr(json_object_get(row, "detail"), "name"), "sensor");
    row = json_array_get(items, 1);
    assert_string_equal(jstr(row, "action"), "tenant.create");
    assert_string_equal(jstr(row, "actor"), "aegisctl");
    assert_int_equal(jint(row, "object_id"), f->ta);
    json_decref(items);

    /* B sees only its own rows. */
    assert_int_equal(store_audit_list(f->s, f->tb, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
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
        cmocka_unit_test_setup_teardown(test_products, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_import_conflict_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_import_10k_and_paginate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_states_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_claim_move_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_off_the_request_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_concurrent, setup, teardown),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
