/* store_catalog: a tenant's products and device groups (store.h). A product holds groups and a
 * group holds devices; neither can be deleted while it holds anything. */
#include "store.h"
#include "store_int.h"

#include "util.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* --- SQL --- */

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
    "SELECT EXISTS (SELECT 1 FROM device_groups WHERE product_id = ?1) "
    "OR EXISTS (SELECT 1 FROM images WHERE product_id = ?1)";
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
    "SELECT EXISTS (SELECT 1 FROM devices WHERE group_id = ?1) "
    "OR EXISTS (SELECT 1 FROM device_shadows WHERE group_id = ?1)";
static const char SQL_GROUP_DELETE[] = "DELETE FROM device_groups WHERE id = ?1 AND tenant_id = ?2";

static const char SQL_PRODUCT_OWNED[] = "SELECT 1 FROM products WHERE id = ?1 AND tenant_id = ?2";

/* --- JSON of rows --- */

/* PRODUCT_COLS */
static json_t *
catalog_product_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "name",
                     store__col_text(st, 1), "description", store__col_text(st, 2), "created_at",
                     store__col_time(st, 3), "updated_at", store__col_time(st, 4));
}

/* GROUP_COLS */
static json_t *
catalog_group_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "product_id",
                     store__col_id(st, 1), "name", store__col_text(st, 2), "description",
                     store__col_text(st, 3), "created_at", store__col_time(st, 4), "updated_at",
                     store__col_time(st, 5));
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
    rc = store__load_by_id(s, c, SQL_PRODUCT_GET, id, tenant_id, catalog_product_json, &obj);
out:
    return store__finish(s, c, rc, obj, out);
}

int
store_product_get(store *s, int64_t tenant_id, int64_t id, json_t **out)
{
    struct conn *c = store__take(s);
    *out = NULL;
    int rc = store__load_by_id(s, c, SQL_PRODUCT_GET, id, tenant_id, catalog_product_json, out);
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
    rc = store__list_by_id(s, tenant_id, SQL_PRODUCT_LIST, pg, after, 0, catalog_product_json,
                           items, next_cursor);
out:
    return rc;
}

/* The detail of an update: the fields that were given. NULL when out of memory. */
static json_t *
catalog_update_detail(const char *name, const char *description)
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
catalog_update_named(store *s, int64_t tenant_id, int64_t id, const char *name,
                     const char *description, const struct store_actor *a, const char *sql,
                     const char *get_sql, store__row_json_fn row_json, const char *action,
                     const char *object_type, json_t **out)
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
                               catalog_update_detail(name, description))) != STORE_OK)
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
    return catalog_update_named(s, tenant_id, id, name, description, a, SQL_PRODUCT_UPDATE,
                                SQL_PRODUCT_GET, catalog_product_json, "product.update", "product",
                                out);
}

/* The shared body of product and group deletes: get_sql loads the row (for its name), busy_sql
 * tells whether it still has children (?1 id), del_sql deletes it (?1 id, ?2 tenant). */
static int
catalog_delete_named(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a,
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
    return catalog_delete_named(s, tenant_id, id, a, SQL_PRODUCT_GET, catalog_product_json,
                                SQL_PRODUCT_HAS_GROUPS, SQL_PRODUCT_DELETE, "product.delete",
                                "product");
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
    rc = store__load_by_id(s, c, SQL_GROUP_GET, id, tenant_id, catalog_group_json, &obj);
out:
    return store__finish(s, c, rc, obj, out);
}

int
store_group_get(store *s, int64_t tenant_id, int64_t id, json_t **out)
{
    struct conn *c = store__take(s);
    *out = NULL;
    int rc = store__load_by_id(s, c, SQL_GROUP_GET, id, tenant_id, catalog_group_json, out);
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
                           pg, after, product_id, catalog_group_json, items, next_cursor);
out:
    return rc;
}

int
store_group_update(store *s, int64_t tenant_id, int64_t id, const char *name,
                   const char *description, const struct store_actor *a, json_t **out)
{
    return catalog_update_named(s, tenant_id, id, name, description, a, SQL_GROUP_UPDATE,
                                SQL_GROUP_GET, catalog_group_json, "group.update", "group", out);
}

int
store_group_delete(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a)
{
    return catalog_delete_named(s, tenant_id, id, a, SQL_GROUP_GET, catalog_group_json,
                                SQL_GROUP_HAS_DEVICES, SQL_GROUP_DELETE, "group.delete", "group");
}
