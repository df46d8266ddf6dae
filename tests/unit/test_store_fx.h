/* The fixture of the store's unit tests (test_store.c, test_store_devices.c): a fresh SQLite
 * database in a temp directory per test, two tenants, and helpers that create and count rows. Its
 * functions are static inline so that each test file compiles only what it uses. */
#ifndef AEGIS_TEST_STORE_FX_H
#define AEGIS_TEST_STORE_FX_H

#include "log.h"
#include "schema.h"
#include "store.h"
#include "test_db_files.h"
#include "proto_fields.h"
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

static inline int
newest(void)
{
    return schema_migrations[schema_migration_count - 1].version;
}

/* A deterministic pseudo-random device id (64 lower-case hex) for n. */
static inline void
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
    proto_hex(b, 32, out);
}

static inline void
rm_db_files(const struct fx *f)
{
    test_rm_db(f->path, f->dir);
}

static inline int
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

static inline int
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

static inline int
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

static inline const char *
jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    assert_non_null(v);
    return v;
}

static inline int64_t
jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* The actor of a tenant of the fixture. */
static inline const struct store_actor *
actor_of(struct fx *f, int64_t tenant)
{
    return tenant == f->ta ? &f->a : &f->b;
}

static inline int64_t
make_product(struct fx *f, int64_t tenant, const char *name)
{
    const struct store_actor *a = actor_of(f, tenant);
    json_t *p = NULL;
    assert_int_equal(store_product_create(f->s, tenant, name, "d", a, &p), STORE_OK);
    int64_t id = jint(p, "id");
    json_decref(p);
    return id;
}

static inline int64_t
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
static inline int
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
static inline const char *
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
static inline size_t
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
static inline void
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

#endif
