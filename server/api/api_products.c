/* REST handlers for products and device groups (docs/api.md). Both are "named" objects of the same
 * shape (name 1..128 bytes, description 0..1024 bytes, no control characters), so they share body
 * validation and the finishing of create/update/delete. */
#include "api_handlers.h"
#include "app.h"
#include "api.h"
#include "api_util.h"
#include "jsonx.h"
#include "store.h"

#include <jansson.h>
#include <stdio.h>

#define NAME_MAX_LEN 128
#define DESCRIPTION_MAX_LEN 1024

struct named {
    const char *name;        /* NULL when absent (update only) */
    const char *description; /* NULL when absent */
};

/* Validates the name/description fields of a create (name required) or update (at least one of
 * them) body, whose keys were already checked. Returns 0, or -1 with the reason in err. */
static int
parse_named(const json_t *body, int create, struct named *out, char *err, size_t errlen)
{
    if (jsonx_str(body, "name", create, 1, NAME_MAX_LEN, &out->name, err, errlen) != 0 ||
        jsonx_str(body, "description", 0, 0, DESCRIPTION_MAX_LEN, &out->description, err, errlen) !=
            0)
        return -1;
    if (!create && out->name == NULL && out->description == NULL) {
        snprintf(err, errlen, "at least one of 'name' and 'description' is required");
        return -1;
    }
    return 0;
}

/* Checks the body's keys and validates it as above. Returns 0, or -1 with a 400 reply set. */
static int
named_body(api_req *r, const char *const *keys, int create, struct named *out)
{
    char err[API_ERR_LEN];
    if (api_body_object(r, keys) != 0)
        return -1;
    if (parse_named(r->json, create, out, err, sizeof(err)) != 0) {
        api_invalid(r, err);
        return -1;
    }
    return 0;
}

/* Finishes a create or update of a named object: STORE_CONFLICT is a duplicate name (scope says
 * where it must be unique, e.g. " in this product"), everything else as api_reply_store. */
static void
reply_named(api_req *r, int rc, int status, json_t *obj, const char *what, const char *name,
            const char *scope)
{
    if (rc == STORE_CONFLICT) {
        json_decref(obj);
        api_error(r, 409, "conflict", "a %s named '%s' already exists%s", what,
                  name != NULL ? name : "", scope);
        return;
    }
    api_reply_store(r, rc, status, obj, what);
}

/* Finishes a delete: STORE_CONFLICT means the object is not empty (busy is the message), else
 * 204. */
static void
reply_delete(api_req *r, int rc, const char *what, const char *busy)
{
    if (rc == STORE_CONFLICT)
        api_error(r, 409, "conflict", "%s", busy);
    else
        api_reply_store(r, rc, 204, NULL, what);
}

/* --- products --- */

static const char *const product_keys[] = {"name", "description", NULL};

void
api_products_create(api_req *r)
{
    struct named b = {NULL, NULL};
    json_t *obj = NULL;
    if (named_body(r, product_keys, 1, &b) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_product_create(r->app->st, r->tenant_id, b.name,
                                  b.description != NULL ? b.description : "", &a, &obj);
    reply_named(r, rc, 201, obj, "product", b.name, "");
}

void
api_products_list(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    if (api_page(r, &pg) != 0)
        return;
    int rc = store_product_list(r->app->st, r->tenant_id, &pg, &items, next);
    api_reply_list(r, rc, items, next, "product");
}

void
api_products_get(api_req *r)
{
    int64_t id;
    json_t *obj = NULL;
    if (api_param_id(r, 0, "product", &id) != 0)
        return;
    int rc = store_product_get(r->app->st, r->tenant_id, id, &obj);
    api_reply_store(r, rc, 200, obj, "product");
}

void
api_products_update(api_req *r)
{
    int64_t id;
    struct named b = {NULL, NULL};
    json_t *obj = NULL;
    if (api_param_id(r, 0, "product", &id) != 0 || named_body(r, product_keys, 0, &b) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_product_update(r->app->st, r->tenant_id, id, b.name, b.description, &a, &obj);
    reply_named(r, rc, 200, obj, "product", b.name, "");
}

void
api_products_delete(api_req *r)
{
    int64_t id;
    if (api_param_id(r, 0, "product", &id) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_product_delete(r->app->st, r->tenant_id, id, &a);
    reply_delete(r, rc, "product", "product still has device groups or images");
}

/* --- device groups --- */

static const char *const group_create_keys[] = {"product_id", "name", "description", NULL};
static const char *const group_update_keys[] = {"name", "description", NULL};

void
api_groups_create(api_req *r)
{
    struct named b = {NULL, NULL};
    int64_t product_id = 0;
    json_t *obj = NULL;
    char err[API_ERR_LEN];

    if (named_body(r, group_create_keys, 1, &b) != 0)
        return;
    if (jsonx_int(r->json, "product_id", 1, 0, 1, INT64_MAX, &product_id, NULL, err, sizeof(err)) !=
        0) {
        api_invalid(r, err);
        return;
    }
    struct store_actor a = api_actor(r);
    int rc = store_group_create(r->app->st, r->tenant_id, product_id, b.name,
                                b.description != NULL ? b.description : "", &a, &obj);
    if (rc == STORE_NOTFOUND)
        api_store_error(r, rc, "product");
    else
        reply_named(r, rc, 201, obj, "device group", b.name, " in this product");
}

void
api_groups_list(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    int64_t product_id = 0; /* 0: all products */

    if (api_query_i64(r, "product_id", 1, INT64_MAX, &product_id) < 0 || api_page(r, &pg) != 0)
        return;
    int rc = store_group_list(r->app->st, r->tenant_id, product_id, &pg, &items, next);
    api_reply_list(r, rc, items, next, "device group");
}

void
api_groups_get(api_req *r)
{
    int64_t id;
    json_t *obj = NULL;
    if (api_param_id(r, 0, "device group", &id) != 0)
        return;
    int rc = store_group_get(r->app->st, r->tenant_id, id, &obj);
    api_reply_store(r, rc, 200, obj, "device group");
}

void
api_groups_update(api_req *r)
{
    int64_t id;
    struct named b = {NULL, NULL};
    json_t *obj = NULL;
    if (api_param_id(r, 0, "device group", &id) != 0 ||
        named_body(r, group_update_keys, 0, &b) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_group_update(r->app->st, r->tenant_id, id, b.name, b.description, &a, &obj);
    reply_named(r, rc, 200, obj, "device group", b.name, " in this product");
}

void
api_groups_delete(api_req *r)
{
    int64_t id;
    if (api_param_id(r, 0, "device group", &id) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_group_delete(r->app->st, r->tenant_id, id, &a);
    reply_delete(r, rc, "device group", "device group still has devices");
}
