/* store: reference values and security minimums of attestation (store.h "device attestation"), the
 * policy an attempt is checked against. Same rules as every store file (store_int.h): one
 * connection per call, changes in one BEGIN IMMEDIATE transaction with their audit row, values only
 * bound. */
#include "store.h"
#include "proto_fields.h"
#include "store_int.h"
#include "store_refval_int.h"

#include "util.h"

#include <assert.h>
#include <sqlite3.h>
#include <string.h>

/* --- SQL --- */

#define REFVAL_COLS "id, scope, stage, component, version, svn, digest, created_at"
static const char SQL_REFVAL_ADD[] =
    "INSERT INTO reference_values (scope, stage, component, version, svn, digest, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
/* ?1 id, ?2 scope */
static const char SQL_REFVAL_GET[] =
    "SELECT " REFVAL_COLS " FROM reference_values WHERE id = ?1 AND scope = ?2";
static const char SQL_REFVAL_LIST[] = "SELECT " REFVAL_COLS " FROM reference_values "
                                      "WHERE (scope = 0 OR scope = ?1) AND id > ?2 "
                                      "ORDER BY id LIMIT ?3";
static const char SQL_REFVAL_DELETE[] = "DELETE FROM reference_values WHERE id = ?1 AND scope = ?2";
static const char SQL_REFVAL_MATCH[] =
    "SELECT 1 FROM reference_values WHERE scope = ?1 AND stage = ?2 AND component = ?3 "
    "AND version = ?4 AND svn = ?5 AND digest = ?6";

#define MINIMUM_COLS "component, min_svn, updated_at"
static const char SQL_MINIMUM_GET[] = "SELECT " MINIMUM_COLS " FROM security_minimums "
                                      "WHERE tenant_id = ?1 AND component = ?2";
static const char SQL_MINIMUM_SET[] =
    "INSERT INTO security_minimums (tenant_id, component, min_svn, updated_at) "
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, component) DO UPDATE SET "
    "min_svn = excluded.min_svn, updated_at = excluded.updated_at";
static const char SQL_MINIMUM_LIST[] = "SELECT " MINIMUM_COLS " FROM security_minimums "
                                       "WHERE tenant_id = ?1 AND component > ?2 "
                                       "ORDER BY component LIMIT ?3";
static const char SQL_MINIMUM_DELETE[] =
    "DELETE FROM security_minimums WHERE tenant_id = ?1 AND component = ?2";

/* --- Argument checks (the schema's CHECK constraints say the same; the syntax is proto/'s) --- */

static int
stage_ok(const char *stage)
{
    return stage != NULL && proto_stage_parse(stage, strlen(stage)) > 0;
}

static int
platform_stage(const char *stage)
{
    return strcmp(stage, "app") != 0;
}

static int
component_ok(const char *c)
{
    return c != NULL && proto_component_ok(c, strlen(c));
}

static int
version_ok(const char *v)
{
    return v != NULL && proto_version_ok(v, strlen(v));
}

static int
digest_ok(const char *d)
{
    return d != NULL && proto_digest_hex_ok(d, strlen(d));
}

static int
svn_ok(int64_t svn)
{
    return svn >= 0 && svn <= PROTO_SVN_MAX;
}

int
store__measurement_ok(const struct store_measurement *m)
{
    return m != NULL && stage_ok(m->stage) && component_ok(m->component) &&
           version_ok(m->version) && svn_ok(m->svn) && digest_ok(m->digest);
}

/* --- JSON of rows --- */

/* REFVAL_COLS */
static json_t *
refval_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:o, s:o, s:o, s:I, s:o, s:o}", "id", store__col_id(st, 0),
                     "scope", sqlite3_column_int64(st, 1) == 0 ? "platform" : "tenant", "stage",
                     store__col_text(st, 2), "component", store__col_text(st, 3), "version",
                     store__col_text(st, 4), "svn", store__col_id(st, 5), "digest",
                     store__col_text(st, 6), "created_at", store__col_time(st, 7));
}

/* MINIMUM_COLS */
static json_t *
minimum_json(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:I, s:o}", "component", store__col_text(st, 0), "min_svn",
                     store__col_id(st, 1), "updated_at", store__col_time(st, 2));
}

/* --- Reference values --- */

static int
bind_measurement(sqlite3_stmt *st, int first, const struct store_measurement *m)
{
    return store__bind_text(st, first, m->stage) | store__bind_text(st, first + 1, m->component) |
           store__bind_text(st, first + 2, m->version) | sqlite3_bind_int64(st, first + 3, m->svn) |
           store__bind_text(st, first + 4, m->digest);
}

static json_t *
measurement_detail(const struct store_measurement *v)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:s}", "stage", v->stage, "component", v->component,
                     "version", v->version, "svn", (json_int_t)v->svn, "digest", v->digest);
}

/* Inserts v with its audit row (tenants' values) in c's transaction; *id gets its row id. */
static int
refval_insert(store *s, struct conn *c, int64_t tenant_id, const struct store_measurement *v,
              const struct store_actor *a, int64_t *id)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_REFVAL_ADD);
    if (st == NULL)
        return STORE_ERR;
    int rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, tenant_id) | bind_measurement(st, 2, v) |
                              sqlite3_bind_int64(st, 7, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "refval insert")) != STORE_OK)
        return rc;
    *id = sqlite3_last_insert_rowid(c->db);
    if (tenant_id > 0)
        rc = store__audit(s, c, tenant_id, a, "refval.create", "refval", *id, NULL,
                          measurement_detail(v));
    return rc;
}

int
store__refval_ensure(store *s, struct conn *c, int64_t tenant_id, const struct store_measurement *v,
                     const struct store_actor *a)
{
    int known = 0;
    int64_t id = 0;
    assert(tenant_id > 0 && strcmp(v->stage, "app") == 0);
    int rc = store__refval_known(s, c, tenant_id, v, &known);
    if (rc != STORE_OK || known)
        return rc;
    return refval_insert(s, c, tenant_id, v, a, &id); /* UNIQUE: another value is a conflict */
}

int
store_refval_add(store *s, int64_t tenant_id, const struct store_measurement *v,
                 const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    json_t *obj = NULL;
    int64_t id = 0;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (tenant_id < 0 || !store__measurement_ok(v) || !store__actor_ok(a) ||
        platform_stage(v->stage) != (tenant_id == 0))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (tenant_id > 0 && (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK) ||
        (rc = refval_insert(s, c, tenant_id, v, a, &id)) != STORE_OK)
        goto out;
    rc = store__load_by_id(s, c, SQL_REFVAL_GET, id, tenant_id, refval_json, &obj);
out:
    return store__finish(s, c, rc, obj, out);
}

int
store_refval_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                  char *next_cursor)
{
    int64_t after = 0;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) || tenant_id < 0)
        goto out;
    if ((rc = store__int_cursor(pg, 0, &after)) != STORE_OK)
        goto out;
    rc = store__list_by_id(s, tenant_id, SQL_REFVAL_LIST, pg, after, 0, refval_json, items,
                           next_cursor);
out:
    return rc;
}

int
store_refval_delete(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (tenant_id < 0 || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__load_by_id(s, c, SQL_REFVAL_GET, id, tenant_id, refval_json, &obj)) !=
            STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_REFVAL_DELETE)) == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "refval delete")) != STORE_OK)
        goto out;
    if (tenant_id > 0) {
        json_t *detail = json_deep_copy(obj);
        if (detail != NULL) {
            json_object_del(detail, "id");
            json_object_del(detail, "scope");
            json_object_del(detail, "created_at");
        }
        rc = store__audit(s, c, tenant_id, a, "refval.delete", "refval", id, NULL, detail);
    }
out:
    json_decref(obj);
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

/* ?1 scope, then the measurement (bind_measurement). */
int
store__refval_known(store *s, struct conn *c, int64_t tenant_id, const struct store_measurement *m,
                    int *known)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_REFVAL_MATCH);
    int64_t scope = platform_stage(m->stage) ? 0 : tenant_id;
    int rc = STORE_ERR;

    assert(tenant_id > 0 && store__measurement_ok(m));
    *known = 0;
    if (st == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, scope) | bind_measurement(st, 2, m));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "refval match");
    if (rc == STORE_OK || rc == STORE_NOTFOUND) {
        *known = rc == STORE_OK;
        rc = STORE_OK;
    }
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

int
store_refval_accepts(store *s, int64_t tenant_id, const struct store_measurement *m, int *ok)
{
    int known = 0;
    int64_t min_svn = -1;
    *ok = 0;
    if (tenant_id <= 0 || !store__measurement_ok(m))
        return STORE_INVALID;
    struct conn *c = store__take(s);
    int rc = store__refval_known(s, c, tenant_id, m, &known);
    if (rc == STORE_OK && known)
        rc = store__minimum_of(s, c, tenant_id, m->component, &min_svn);
    store__give(s, c);
    *ok = rc == STORE_OK && known && m->svn >= min_svn;
    return rc;
}

/* --- Security minimums --- */

/* Loads the tenant's minimum of component into *out (may be NULL: existence only). */
static int
load_minimum(store *s, struct conn *c, int64_t tenant_id, const char *component, json_t **out)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_MINIMUM_GET);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, component));
    if (rc != STORE_OK || (rc = store__step_row(s, c, st, "minimum load")) != STORE_OK)
        goto out;
    if (out != NULL && (*out = minimum_json(st)) == NULL)
        rc = STORE_ERR;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

int
store_minimum_set(store *s, int64_t tenant_id, const char *component, int64_t min_svn,
                  const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *prev = NULL, *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (!component_ok(component) || !svn_ok(min_svn) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    rc = load_minimum(s, c, tenant_id, component, &prev);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_MINIMUM_SET)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, component) |
                          sqlite3_bind_int64(st, 3, min_svn) |
                          sqlite3_bind_int64(st, 4, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "minimum set")) != STORE_OK)
        goto out;
    json_t *before = prev != NULL ? json_object_get(prev, "min_svn") : NULL;
    if ((rc = store__audit(s, c, tenant_id, a, "minimum.set", "minimum", 0, component,
                           json_pack("{s:I, s:O?}", "min_svn", (json_int_t)min_svn,
                                     "previous_min_svn", before))) != STORE_OK)
        goto out;
    rc = load_minimum(s, c, tenant_id, component, &obj);
out:
    json_decref(prev);
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && out != NULL)
        *out = obj;
    else
        json_decref(obj);
    return rc;
}

int
store_minimum_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                   char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) ||
        (pg->cursor != NULL && !component_ok(pg->cursor)))
        goto out;
    c = store__take(s);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_MINIMUM_LIST)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) |
                          store__bind_text(st, 2, pg->cursor != NULL ? pg->cursor : "") |
                          sqlite3_bind_int(st, 3, pg->limit + 1));
    if (rc != STORE_OK)
        goto out;
    rc = store__collect(s, c, st, pg->limit, minimum_json, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

int
store_minimum_delete(store *s, int64_t tenant_id, const char *component,
                     const struct store_actor *a)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *prev = NULL;
    int rc = STORE_INVALID;

    if (!component_ok(component) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = load_minimum(s, c, tenant_id, component, &prev)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_MINIMUM_DELETE)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, component));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "minimum delete")) != STORE_OK)
        goto out;
    rc = store__audit(s, c, tenant_id, a, "minimum.delete", "minimum", 0, component,
                      json_pack("{s:O}", "min_svn", json_object_get(prev, "min_svn")));
out:
    json_decref(prev);
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

int
store__minimum_of(store *s, struct conn *c, int64_t tenant_id, const char *component,
                  int64_t *min_svn)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_MINIMUM_GET);
    int rc = STORE_ERR;

    *min_svn = -1;
    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, component));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "minimum check");
    if (rc == STORE_OK)
        *min_svn = sqlite3_column_int64(st, 1);
    else if (rc == STORE_NOTFOUND)
        rc = STORE_OK; /* no minimum for this component */
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}
