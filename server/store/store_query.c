/* store_query: the small helpers every store file uses to run a statement: stepping and binding,
 * argument checks, columns as JSON, and paged lists of rows (store_int.h). None takes a connection
 * of its own except store__list_by_id and store__list_newest. */
#include "store.h"
#include "store_int.h"

#include "jsonx.h"
#include "log.h"
#include "proto_fields.h"
#include "util.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- Small query helpers --- */

/* Steps a statement expected to return at most one row. Returns STORE_OK with a row, STORE_NOTFOUND
 * without, STORE_ERR on error (logged). */
int
store__step_row(store *s, struct conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    if (rc == SQLITE_DONE)
        return STORE_NOTFOUND;
    return store__db_error(s, c, what);
}

/* Steps a write statement to its end. */
int
store__step_done(store *s, struct conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? STORE_OK : store__write_error(s, c, rc, what);
}

/* rc is the OR of some sqlite3_bind_* results: anything but SQLITE_OK is a logged error. */
int
store__bound(store *s, struct conn *c, int rc)
{
    return rc == SQLITE_OK ? STORE_OK : store__db_error(s, c, "bind");
}

/* Binds text that may be NULL (as SQL NULL). */
int
store__bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v != NULL ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

/* Binds an id that is 0 when absent (as SQL NULL). */
int
store__bind_id(sqlite3_stmt *st, int i, int64_t v)
{
    return v > 0 ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

int
store__row_by_id(store *s, struct conn *c, const char *sql, int64_t id, const char *what,
                 sqlite3_stmt **st)
{
    int rc;
    if ((*st = store__prep(s, c, sql)) == NULL)
        return STORE_ERR;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(*st, 1, id))) != STORE_OK)
        return rc;
    return store__step_row(s, c, *st, what);
}

/* Runs an "is this id the tenant's" query (?1 id, ?2 tenant): STORE_OK or STORE_NOTFOUND. */
int
store__owned(store *s, struct conn *c, const char *sql, int64_t id, int64_t tenant_id)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    if (st == NULL)
        return STORE_ERR;
    int rc =
        store__bound(s, c, sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "ownership check");
    sqlite3_reset(st);
    return rc;
}

/* 1 if s is text of min..max bytes, valid UTF-8 without control characters. */
int
store__text_ok(const char *s, size_t min, size_t max)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n < min || n > max || !jsonx_text_ok(s, n))
        return 0;
    json_t *utf8 = json_stringn(s, n); /* NULL unless valid UTF-8 */
    json_decref(utf8);
    return utf8 != NULL;
}

int
store__actor_ok(const struct store_actor *a)
{
    return a != NULL && store__text_ok(a->who, 1, ACTOR_MAX_BYTES);
}

int
store__device_id_ok(const char *id)
{
    return id != NULL && proto_digest_hex_ok(id, strlen(id));
}

/* --- JSON of rows --- */
/* Each returns a new reference, or NULL when out of memory. */

json_t *
store__json_time(int64_t t)
{
    char buf[32];
    return json_string(util_rfc3339(t, buf, sizeof(buf)));
}

/* Column i as an RFC 3339 time, or JSON null when NULL. */
json_t *
store__col_time(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    return store__json_time(sqlite3_column_int64(st, i));
}

/* Column i as an integer, or JSON null when NULL. */
json_t *
store__col_int(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    return json_integer((json_int_t)sqlite3_column_int64(st, i));
}

/* Column i (NOT NULL text) as a string. */
json_t *
store__col_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    if (t == NULL)
        return NULL;
    return json_stringn(t, (size_t)sqlite3_column_bytes(st, i));
}

json_int_t
store__col_id(sqlite3_stmt *st, int i)
{
    return (json_int_t)sqlite3_column_int64(st, i);
}

/* Steps st to its end, appending row_json of each row to a new array *items. When limit > 0, st
 * must return up to limit + 1 rows: only limit are kept, and next_cursor gets column 0 of the last
 * kept row if a further row exists, else "". */
int
store__collect(store *s, struct conn *c, sqlite3_stmt *st, int limit, store__row_json_fn row_json,
               json_t **items, char *next_cursor)
{
    char last[CURSOR_BUF] = "";
    json_t *arr = json_array();
    int rc = STORE_ERR, n = 0, step;

    assert(st != NULL && row_json != NULL && items != NULL);
    if (next_cursor != NULL)
        next_cursor[0] = '\0';
    if (arr == NULL)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (limit > 0 && n == limit) {
            if (next_cursor != NULL)
                memcpy(next_cursor, last, strlen(last) + 1);
            break;
        }
        json_t *row = row_json(st);
        if (row == NULL || json_array_append_new(arr, row) != 0) {
            log_error("msg=\"store: cannot build a JSON row (out of memory?)\"");
            goto out;
        }
        const unsigned char *key = sqlite3_column_text(st, 0);
        snprintf(last, sizeof(last), "%s", key != NULL ? (const char *)key : "");
        n++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        store__db_error(s, c, "list");
        goto out;
    }
    *items = arr;
    arr = NULL;
    rc = STORE_OK;
out:
    json_decref(arr);
    return rc;
}

int
store__collect_rows(store *s, struct conn *c, sqlite3_stmt *st, size_t elem_size, store__row_fn row,
                    void **rows, size_t *n)
{
    size_t cap = 0;
    int rc = STORE_ERR, step = SQLITE_OK;

    assert(elem_size > 0 && rows != NULL && n != NULL);
    *rows = NULL;
    *n = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap > 0 ? 2 * cap : 8;
            void *grown = realloc(*rows, ncap * elem_size);
            if (grown == NULL)
                goto out;
            *rows = grown;
            cap = ncap;
        }
        void *elem = (char *)*rows + *n * elem_size;
        memset(elem, 0, elem_size);
        if (row(st, elem) != 0)
            goto out;
        (*n)++;
    }
    rc = step == SQLITE_DONE ? STORE_OK : store__db_error(s, c, "list");
out:
    if (rc != STORE_OK && step == SQLITE_ROW)
        log_error("msg=\"store: cannot build a row (out of memory?)\"");
    return rc;
}

json_t *
store__rows_json(const void *rows, size_t n, size_t elem_size, json_t *(*to_json)(const void *row))
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, to_json((const char *)rows + i * elem_size)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* Loads one row with a statement whose ?1 is an integer id and ?2 the tenant. */
int
store__load_by_id(store *s, struct conn *c, const char *sql, int64_t id, int64_t tenant_id,
                  store__row_json_fn row_json, json_t **out)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id))))
        goto out;
    if ((rc = store__step_row(s, c, st, "load")) != STORE_OK)
        goto out;
    if ((*out = row_json(st)) == NULL)
        rc = STORE_ERR;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* --- Pages --- */

int
store__page_ok(const struct store_page *pg)
{
    return pg != NULL && pg->limit >= 1 && pg->limit <= PAGE_MAX;
}

/* An integer-id cursor: dflt when absent, STORE_INVALID when malformed. */
int
store__int_cursor(const struct store_page *pg, int64_t dflt, int64_t *out)
{
    if (pg->cursor == NULL) {
        *out = dflt;
        return STORE_OK;
    }
    return util_parse_i64(pg->cursor, 0, INT64_MAX, out) == 0 ? STORE_OK : STORE_INVALID;
}

/* Lists with a statement whose ?1 is the tenant, ?2 the cursor and ?3 the row limit (limit + 1). */
int
store__list_by_id(store *s, int64_t tenant_id, const char *sql, const struct store_page *pg,
                  int64_t after, int64_t extra, store__row_json_fn row_json, json_t **items,
                  char *next_cursor)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, after) |
            sqlite3_bind_int(st, 3, pg->limit + 1) |
            (sqlite3_bind_parameter_count(st) >= 4 ? sqlite3_bind_int64(st, 4, extra) : 0));
    if (rc != STORE_OK)
        goto out;
    rc = store__collect(s, c, st, pg->limit, row_json, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

int
store__list_newest(store *s, int64_t tenant_id, const char *sql, const struct store_page *pg,
                   store__row_json_fn row_json, json_t **items, char *next_cursor)
{
    int64_t before = 0;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg))
        goto out;
    if ((rc = store__int_cursor(pg, INT64_MAX, &before)) != STORE_OK)
        goto out;
    rc = store__list_by_id(s, tenant_id, sql, pg, before, 0, row_json, items, next_cursor);
out:
    return rc;
}
