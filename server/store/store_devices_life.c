/* store_devices_life: a registration's tags and the PATCH that changes them with its group
 * (store.h "device lifecycle"; migration 0014). Tags belong to the tenant's registration, so a
 * shadow has tags of its own and another tenant never sees them. */
#include "store.h"
#include "store_devices_int.h"
#include "store_int.h"

#include "util.h"

#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

static const char SQL_TAG_SET[] =
    "INSERT INTO device_tags (tenant_id, device_id, key, value) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (tenant_id, device_id, key) DO UPDATE SET value = excluded.value";
static const char SQL_TAG_DEL[] =
    "DELETE FROM device_tags WHERE tenant_id = ?1 AND device_id = ?2 AND key = ?3";
static const char SQL_TAG_COUNT[] =
    "SELECT count(*) FROM device_tags WHERE tenant_id = ?1 AND device_id = ?2";

int
store_device_tag_ok(const char *key, const char *value)
{
    size_t n = key != NULL ? strlen(key) : 0;
    if (n < 1 || n > STORE_DEVICE_TAG_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = key[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '/' || ch == '-'))
            return 0;
    }
    return value != NULL &&
           (value[0] == '\0' || store__text_ok(value, 1, STORE_DEVICE_TAG_VALUE_MAX));
}

/* 1 when every member of tags is a valid key with a valid string value or null. */
static int
tags_patch_ok(const json_t *tags)
{
    const char *k;
    const json_t *v;

    if (!json_is_object(tags))
        return 0;
    json_object_foreach((json_t *)tags, k, v)
    {
        if (!json_is_null(v) &&
            !(json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
              store_device_tag_ok(k, json_string_value(v))))
            return 0;
        if (json_is_null(v) && !store_device_tag_ok(k, ""))
            return 0;
    }
    return 1;
}

/* Runs one tag statement: ?1 tenant, ?2 device, ?3 key, ?4 value (when value != NULL). */
static int
tags_exec(store *s, struct conn *c, const char *sql, int64_t tenant_id, const char *device_id,
          const char *key, const char *value)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc;

    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, device_id) |
                          store__bind_text(st, 3, key) |
                          (value != NULL ? store__bind_text(st, 4, value) : SQLITE_OK));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "device tag");
    sqlite3_reset(st);
    return rc;
}

static int
tags_count(store *s, struct conn *c, int64_t tenant_id, const char *device_id, int64_t *n)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TAG_COUNT);
    int rc;

    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, device_id));
    if (rc == STORE_OK && (rc = store__step_row(s, c, st, "device tag count")) == STORE_OK)
        *n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc;
}

/* Applies the tag changes with their audit row (none when tags is empty). STORE_INVALID when the
 * registration would have more than STORE_DEVICE_TAGS_MAX tags. */
static int
tags_apply(store *s, struct conn *c, int64_t tenant_id, const char *device_id, const json_t *tags,
           const struct store_actor *a)
{
    const char *k;
    const json_t *v;
    int64_t n = 0;
    int rc = STORE_OK;

    if (json_object_size(tags) == 0)
        return STORE_OK;
    json_object_foreach((json_t *)tags, k, v)
    {
        rc = json_is_null(v)
                 ? tags_exec(s, c, SQL_TAG_DEL, tenant_id, device_id, k, NULL)
                 : tags_exec(s, c, SQL_TAG_SET, tenant_id, device_id, k, json_string_value(v));
        if (rc != STORE_OK)
            return rc;
    }
    if ((rc = tags_count(s, c, tenant_id, device_id, &n)) != STORE_OK)
        return rc;
    if (n > STORE_DEVICE_TAGS_MAX)
        return STORE_INVALID;
    return store__audit(s, c, tenant_id, a, "device.tag", "device", 0, device_id,
                        json_pack("{s:O}", "tags", (json_t *)tags));
}

int
store_device_patch(store *s, int64_t tenant_id, const char *device_id,
                   const struct store_device_patch *p, const struct store_actor *a, json_t **out)
{
    struct store__device_reg o;
    struct conn *c = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (!store__device_id_ok(device_id) || p == NULL || !store__actor_ok(a) ||
        (p->has_group && p->group_id < 0) || (p->tags != NULL && !tags_patch_ok(p->tags)))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__device_reg(s, c, tenant_id, device_id, &o)) != STORE_OK)
        goto out;
    /* Only a claimed device is in a group; tags go on any registration. */
    if (p->has_group && o.tenant_id != tenant_id) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (p->has_group &&
        (rc = store__device_apply_move(s, c, tenant_id, device_id, &o, p->group_id, a)) != STORE_OK)
        goto out;
    if (p->tags != NULL && (rc = tags_apply(s, c, tenant_id, device_id, p->tags, a)) != STORE_OK)
        goto out;
    rc = store__device_load(s, c, tenant_id, device_id, &obj);
out:
    return store__device_finish(s, c, rc, device_id, obj, out);
}
