/* A device's update attempts, for the manufacturer's API (docs/api.md "Devices"). */
#include "store.h"
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ?1 device, ?2 tenant, ?3/?4 the keyset (created_at, attempt_id) to start below, ?5 row limit.
 * Column 0 is the cursor: "<created_at>.<attempt_id>". The primary key (device_id, attempt_id)
 * finds the device's rows; a device has one or a few per deployment. */
static const char SQL_DEVICE_ATTEMPTS[] =
    "SELECT printf('%d.%s', created_at, attempt_id), deployment_id, attempt_id, image, wave, "
    "state, "
    "reason, created_at, updated_at, finished_at FROM update_attempts "
    "WHERE device_id = ?1 AND tenant_id = ?2 AND (created_at, attempt_id) < (?3, ?4) "
    "ORDER BY created_at DESC, attempt_id DESC LIMIT ?5";

static json_t *
attempt_json(sqlite3_stmt *st)
{
    return json_pack(
        "{s:I, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o}", "deployment_id", store__col_id(st, 1),
        "attempt_id", store__col_text(st, 2), "image", store__col_text(st, 3), "wave",
        store__col_id(st, 4), "state", store__col_text(st, 5), "reason",
        sqlite3_column_type(st, 6) == SQLITE_NULL ? json_null() : store__col_text(st, 6),
        "created_at", store__col_time(st, 7), "updated_at", store__col_time(st, 8), "finished_at",
        store__col_time(st, 9));
}

/* The keyset of a cursor "<created_at>.<attempt_id>" (attempt_id 1-64 bytes), or the start. */
static int
attempt_cursor(const struct store_page *pg, int64_t *created, const char **attempt)
{
    *created = INT64_MAX;
    *attempt = "";
    if (pg->cursor == NULL)
        return STORE_OK;
    char *dot = NULL;
    long long v = strtoll(pg->cursor, &dot, 10);
    size_t rest = dot != NULL && *dot == '.' ? strlen(dot + 1) : 0;
    if (dot == pg->cursor || rest < 1 || rest > 64 || v < 0 || pg->cursor[0] == '-')
        return STORE_INVALID;
    *created = v;
    *attempt = dot + 1;
    return STORE_OK;
}

int
store_device_update_attempts(store *s, int64_t tenant_id, const char *device_id,
                             const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t created;
    const char *attempt;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) ||
        !store__device_id_ok(device_id) || attempt_cursor(pg, &created, &attempt) != STORE_OK)
        goto out;
    c = store__take(s);
    if ((rc = store__device_visible(s, c, tenant_id, device_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_DEVICE_ATTEMPTS)) == NULL)
        goto out;
    /* An empty attempt_id sorts below every real one: with INT64_MAX the start takes all rows. */
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id) |
                          sqlite3_bind_int64(st, 3, created) | store__bind_text(st, 4, attempt) |
                          sqlite3_bind_int(st, 5, pg->limit + 1));
    if (rc == STORE_OK)
        rc = store__collect(s, c, st, pg->limit, attempt_json, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}
