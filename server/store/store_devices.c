/* store_devices: the device registry (store.h): import, claim, move, block, list, get, and the
 * lookup that authenticates a device. */
#include "store.h"
#include "store_deploy_int.h"
#include "store_devices_int.h"
#include "store_int.h"

#include "util.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- SQL --- */

/* Device rows: id, tenant_id, blocked, group_id, product_id, public_key_pem, created_at,
 * claimed_at, updated_at, attest_at, attest_result, attest_reason, tags (a JSON object). A tenant
 * sees its registrations: the devices row while it owns it (claimed by it, or unclaimed and
 * imported by it), and its device_shadows rows (the same columns; a shadow never has an
 * attestation, since the device never authenticates to it). Every statement that uses them binds
 * the tenant as ?2. */
#define DEVICE_TAGS(col)                                                                           \
    "(SELECT json_group_object(t.key, t.value) FROM device_tags t WHERE t.tenant_id = ?2 AND "     \
    "t.device_id = " col ") "
#define DEVICE_SELECT                                                                              \
    "SELECT d.id, d.tenant_id, d.blocked, d.group_id, g.product_id, d.public_key_pem, "            \
    "d.created_at, d.claimed_at, d.updated_at, d.attest_at, d.attest_result, "                     \
    "d.attest_reason, " DEVICE_TAGS(                                                               \
        "d.id") "FROM devices d LEFT JOIN device_groups g ON g.id = d.group_id "
#define SHADOW_SELECT                                                                              \
    "SELECT s.device_id, CASE WHEN s.claimed_at IS NOT NULL THEN s.tenant_id END, s.blocked, "     \
    "s.group_id, g.product_id, d.public_key_pem, s.created_at, s.claimed_at, s.updated_at, NULL, " \
    "NULL, NULL, " DEVICE_TAGS(                                                                    \
        "s.device_id") "FROM device_shadows s JOIN devices d ON "                                  \
                       "d.id = s.device_id LEFT JOIN device_groups g ON g.id = s.group_id "
static const char SQL_DEVICE_GET[] =
    DEVICE_SELECT "WHERE d.id = ?1 AND (d.tenant_id = ?2 OR "
                  "(d.tenant_id IS NULL AND d.registered_by = ?2)) "
                  "UNION ALL " SHADOW_SELECT "WHERE s.device_id = ?1 AND s.tenant_id = ?2";
/* The list statements share their parameters (each binds all eight, whether it uses them or not):
 * ?1 group, ?2 tenant, ?3 the lower bound (from this id on), ?4 blocked (-1 = any), ?5 row limit,
 * ?6 the upper bound (below this id), ?7 the tag filter (a JSON array of distinct-keyed [key,
 * value] pairs) and ?8 its length (0: none). The bounds hold both the cursor and the id prefix, so
 * that a page is one range of each statement's index (devices_id_bounds). */
#define TAGS_MATCH(col)                                                                            \
    "AND (?8 = 0 OR (SELECT count(*) FROM json_each(?7) j JOIN device_tags t ON t.tenant_id = ?2 " \
    "AND t.device_id = " col " AND t.key = json_extract(j.value, '$[0]') "                         \
    "AND t.value = json_extract(j.value, '$[1]')) = ?8) "
#define D_RANGE "AND d.id >= ?3 AND d.id < ?6 " TAGS_MATCH("d.id")
#define S_RANGE "AND s.device_id >= ?3 AND s.device_id < ?6 " TAGS_MATCH("s.device_id")
static const char SQL_DEVICE_LIST_ALL[] = DEVICE_SELECT
    "WHERE d.tenant_id = ?2 " D_RANGE "UNION ALL " DEVICE_SELECT
    "WHERE d.tenant_id IS NULL AND d.registered_by = ?2 " D_RANGE "UNION ALL " SHADOW_SELECT
    "WHERE s.tenant_id = ?2 " S_RANGE "ORDER BY 1 LIMIT ?5";
static const char SQL_DEVICE_LIST_UNCLAIMED[] = DEVICE_SELECT
    "WHERE d.tenant_id IS NULL AND d.registered_by = ?2 " D_RANGE "UNION ALL " SHADOW_SELECT
    "WHERE s.tenant_id = ?2 AND s.claimed_at IS NULL " S_RANGE "ORDER BY 1 LIMIT ?5";
static const char SQL_DEVICE_LIST_CLAIMED[] =
    DEVICE_SELECT "WHERE d.tenant_id = ?2 AND d.blocked = ?4 " D_RANGE "UNION ALL " SHADOW_SELECT
                  "WHERE s.tenant_id = ?2 AND s.claimed_at IS NOT NULL "
                  "AND s.blocked = ?4 " S_RANGE "ORDER BY 1 LIMIT ?5";
static const char SQL_DEVICE_LIST_GROUP[] = DEVICE_SELECT
    "WHERE d.group_id = ?1 AND d.tenant_id = ?2 AND (?4 = -1 OR d.blocked = ?4) " D_RANGE
    "UNION ALL " SHADOW_SELECT "WHERE s.group_id = ?1 AND s.tenant_id = ?2 "
    "AND (?4 = -1 OR s.blocked = ?4) " S_RANGE "ORDER BY 1 LIMIT ?5";
/* The tenant's registration of a device: the devices row if it owns it, else its shadow. */
static const char SQL_DEVICE_REG[] =
    "SELECT coalesce(tenant_id, 0), coalesce(group_id, 0), blocked, 0 FROM devices WHERE id = ?1 "
    "AND (tenant_id = ?2 OR (tenant_id IS NULL AND registered_by = ?2)) UNION ALL "
    "SELECT CASE WHEN claimed_at IS NOT NULL THEN tenant_id ELSE 0 END, coalesce(group_id, 0), "
    "blocked, 1 FROM device_shadows WHERE device_id = ?1 AND tenant_id = ?2";
static const char SQL_DEVICE_KNOWN[] = "SELECT 1 FROM devices WHERE id = ?1";
static const char SQL_DEVICE_ADD[] =
    "INSERT INTO devices (id, public_key_pem, registered_by, tenant_id, group_id, blocked, "
    "created_at, claimed_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?6)";
static const char SQL_SHADOW_ADD[] =
    "INSERT INTO device_shadows (device_id, tenant_id, group_id, blocked, created_at, claimed_at, "
    "updated_at) VALUES (?1, ?3, ?5, 0, ?6, ?7, ?6)";
/* The last attestation stays only when the claiming tenant is the one that could already see it. */
static const char SQL_DEVICE_CLAIM[] =
    "UPDATE devices SET tenant_id = ?2, group_id = ?3, claimed_at = ?4, updated_at = ?4, "
    "attest_at = CASE WHEN registered_by = ?2 THEN attest_at END, "
    "attest_result = CASE WHEN registered_by = ?2 THEN attest_result END, "
    "attest_reason = CASE WHEN registered_by = ?2 THEN attest_reason END "
    "WHERE id = ?1 AND tenant_id IS NULL AND registered_by = ?2";
static const char SQL_SHADOW_CLAIM[] =
    "UPDATE device_shadows SET group_id = ?3, claimed_at = ?4, updated_at = ?4 "
    "WHERE device_id = ?1 AND tenant_id = ?2 AND claimed_at IS NULL";
static const char SQL_DEVICE_MOVE[] =
    "UPDATE devices SET group_id = ?3, updated_at = ?4 WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_SHADOW_MOVE[] =
    "UPDATE device_shadows SET group_id = ?3, updated_at = ?4 WHERE device_id = ?1 "
    "AND tenant_id = ?2";
static const char SQL_DEVICE_BLOCK[] =
    "UPDATE devices SET blocked = ?3, updated_at = ?4 WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_SHADOW_BLOCK[] =
    "UPDATE device_shadows SET blocked = ?3, updated_at = ?4 WHERE device_id = ?1 "
    "AND tenant_id = ?2";
/* Unclaim keeps the registration (registered_by is the tenant: a claim needs it) and its last
 * attestation, which an unclaimed device's importer sees. ?3 is 0 (blocked). */
static const char SQL_DEVICE_UNCLAIM[] =
    "UPDATE devices SET tenant_id = NULL, group_id = NULL, blocked = ?3, claimed_at = NULL, "
    "updated_at = ?4 WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_SHADOW_UNCLAIM[] =
    "UPDATE device_shadows SET group_id = NULL, blocked = ?3, claimed_at = NULL, updated_at = ?4 "
    "WHERE device_id = ?1 AND tenant_id = ?2";
static const char SQL_DEVICE_AUTH[] =
    "SELECT coalesce(d.tenant_id, 0), coalesce(d.group_id, 0), coalesce(g.product_id, 0), "
    "d.blocked, d.public_key_pem, coalesce(d.claimed_at, 0) FROM devices d "
    "LEFT JOIN device_groups g ON g.id = d.group_id WHERE d.id = ?1";
static const char SQL_GROUP_OWNED[] =
    "SELECT 1 FROM device_groups WHERE id = ?1 AND tenant_id = ?2";

/* --- JSON of rows --- */

/* Columns 9..11 of DEVICE_SELECT: null before the first attestation, else {"at", "result",
 * "reason" (null on pass)}. */
static json_t *
devices_attestation_json(sqlite3_stmt *st)
{
    if (sqlite3_column_type(st, 9) == SQLITE_NULL || sqlite3_column_type(st, 10) == SQLITE_NULL)
        return json_null();
    json_t *reason =
        sqlite3_column_type(st, 11) == SQLITE_NULL ? json_null() : store__col_text(st, 11);
    return json_pack("{s:o, s:o, s:o}", "at", store__col_time(st, 9), "result",
                     store__col_text(st, 10), "reason", reason);
}

/* Column 12 of DEVICE_SELECT: the registration's tags as an object ({} without any). */
static json_t *
devices_tags_json(sqlite3_stmt *st)
{
    const char *text = (const char *)sqlite3_column_text(st, 12);
    json_t *tags = text != NULL ? json_loads(text, 0, NULL) : NULL;
    if (json_is_object(tags))
        return tags;
    json_decref(tags);
    return json_object();
}

/* DEVICE_SELECT */
static json_t *
devices_json(sqlite3_stmt *st)
{
    const char *state = "active";
    if (sqlite3_column_type(st, 1) == SQLITE_NULL)
        state = "unclaimed";
    else if (sqlite3_column_int(st, 2) != 0)
        state = "blocked";
    return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     store__col_text(st, 0), "state", state, "group_id", store__col_int(st, 3),
                     "product_id", store__col_int(st, 4), "public_key", store__col_text(st, 5),
                     "created_at", store__col_time(st, 6), "claimed_at", store__col_time(st, 7),
                     "updated_at", store__col_time(st, 8), "attestation",
                     devices_attestation_json(st), "tags", devices_tags_json(st));
}

int
store__device_load(store *s, struct conn *c, int64_t tenant_id, const char *device_id, json_t **out)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_GET);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    if ((rc = store__bound(
             s, c, store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id))) != 0)
        goto out;
    if ((rc = store__step_row(s, c, st, "device load")) != STORE_OK)
        goto out;
    if ((*out = devices_json(st)) == NULL)
        rc = STORE_ERR;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* --- Devices --- */

int
store__device_reg(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                  struct store__device_reg *o)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_REG);
    int rc = STORE_ERR;

    memset(o, 0, sizeof(*o));
    if (st == NULL)
        goto out;
    if ((rc = store__bound(
             s, c, store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id))) !=
            STORE_OK ||
        (rc = store__step_row(s, c, st, "device registration")) != STORE_OK)
        goto out;
    o->tenant_id = sqlite3_column_int64(st, 0);
    o->group_id = sqlite3_column_int64(st, 1);
    o->blocked = sqlite3_column_int(st, 2);
    o->shadow = sqlite3_column_int(st, 3);
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* Runs a registration update: ?1 device, ?2 tenant, ?3 group (0 = NULL), ?4 now, or with
 * blocked >= 0 ?3 blocked instead of the group. */
static int
devices_update(store *s, struct conn *c, const char *sql, const char *device_id, int64_t tenant_id,
               int64_t group_id, int blocked, int64_t now, const char *what)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc;

    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(
        s, c,
        store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id) |
            (blocked >= 0 ? sqlite3_bind_int(st, 3, blocked) : store__bind_id(st, 3, group_id)) |
            sqlite3_bind_int64(st, 4, now));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, what);
    sqlite3_reset(st);
    return rc;
}

int
store__device_claim_row(store *s, struct conn *c, const char *device_id, int64_t tenant_id,
                        int shadow, int64_t group_id, int64_t now)
{
    return devices_update(s, c, shadow ? SQL_SHADOW_CLAIM : SQL_DEVICE_CLAIM, device_id, tenant_id,
                          group_id, -1, now, "device claim");
}

int
store__device_register(store *s, struct conn *c, const char *device_id, const char *pem,
                       int64_t tenant_id, int claim, int64_t group_id, int64_t now)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_KNOWN);
    int rc = STORE_ERR;

    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(s, c, store__bind_text(st, 1, device_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "device known");
    sqlite3_reset(st);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return rc;
    /* Known to the registry but not the tenant's: a shadow, so that the tenant's view is the one
     * of a new device and tells nothing of the owner. */
    if ((st = store__prep(s, c, rc == STORE_OK ? SQL_SHADOW_ADD : SQL_DEVICE_ADD)) == NULL)
        return STORE_ERR;
    rc = store__bound(
        s, c,
        store__bind_text(st, 1, device_id) | store__bind_text(st, 2, pem) |
            sqlite3_bind_int64(st, 3, tenant_id) | store__bind_id(st, 4, claim ? tenant_id : 0) |
            store__bind_id(st, 5, claim ? group_id : 0) | sqlite3_bind_int64(st, 6, now) |
            (claim ? sqlite3_bind_int64(st, 7, now) : sqlite3_bind_null(st, 7)));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "device insert");
    sqlite3_reset(st);
    return rc;
}

struct devices_import_ctx {
    int64_t tenant_id;
    int claim;
    int64_t group_id;
    int64_t now;
    size_t created;
};

/* Imports one entry: the tenant's registration is kept as it is (claimed if asked), or made. */
static int
devices_import_one(store *s, struct conn *c, struct devices_import_ctx *x,
                   const struct store_import_entry *e)
{
    struct store__device_reg o;
    int rc = store__device_reg(s, c, x->tenant_id, e->device_id, &o);

    if (rc == STORE_OK) {
        if (o.tenant_id == 0 && x->claim)
            return store__device_claim_row(s, c, e->device_id, x->tenant_id, o.shadow, x->group_id,
                                           x->now);
        return STORE_OK; /* known: kept as it is */
    }
    if (rc != STORE_NOTFOUND)
        return rc;
    rc = store__device_register(s, c, e->device_id, e->public_key_pem, x->tenant_id, x->claim,
                                x->group_id, x->now);
    if (rc == STORE_OK)
        x->created++;
    return rc;
}

static int
devices_import_args_ok(const struct store_import_entry *e, size_t n, int claim, int64_t group_id,
                       const struct store_actor *a)
{
    if (e == NULL || n == 0 || group_id < 0 || (group_id > 0 && !claim) || !store__actor_ok(a))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!store__device_id_ok(e[i].device_id) || e[i].public_key_pem == NULL)
            return 0;
    return 1;
}

int
store_device_import(store *s, int64_t tenant_id, const struct store_import_entry *e, size_t n,
                    int claim, int64_t group_id, const struct store_actor *a, json_t **errors,
                    size_t *created)
{
    struct devices_import_ctx x = {tenant_id, claim != 0, group_id, util_now(), 0};
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    if (errors != NULL)
        *errors = NULL;
    if (created != NULL)
        *created = 0;
    if (!devices_import_args_ok(e, n, claim, group_id, a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    if (group_id > 0 && (rc = store__owned(s, c, SQL_GROUP_OWNED, group_id, tenant_id)) != STORE_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        if ((rc = devices_import_one(s, c, &x, &e[i])) != STORE_OK)
            goto out;
    /* Devices claimed into a group get that group's answer (docs/update.md section 4). */
    if (x.claim && group_id > 0 &&
        (rc = store__director_bump(s, c, tenant_id, x.now, NULL)) != STORE_OK)
        goto out;
    rc = store__audit(s, c, tenant_id, a, "device.import", "device", 0, NULL,
                      json_pack("{s:I, s:I, s:b, s:o}", "count", (json_int_t)n, "created",
                                (json_int_t)x.created, "claimed", x.claim, "group_id",
                                group_id > 0 ? json_integer(group_id) : json_null()));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        store__device_changed(s, e[i].device_id);
    if (rc == STORE_OK && created != NULL)
        *created = x.created;
    return rc;
}

int
store__device_finish(store *s, struct conn *c, int rc, const char *device_id, json_t *obj,
                     json_t **out)
{
    rc = store__finish(s, c, rc, obj, out);
    /* After the commit (see store__device_changed); a rollback changed nothing. */
    if (rc == STORE_OK)
        store__device_changed(s, device_id);
    return rc;
}

int
store_device_get(store *s, int64_t tenant_id, const char *device_id, json_t **out)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    *out = NULL;
    if (!store__device_id_ok(device_id))
        goto out;
    c = store__take(s);
    rc = store__device_load(s, c, tenant_id, device_id, out);
out:
    store__give(s, c);
    return rc;
}

int
store_device_auth(store *s, const char *device_id, struct store_device_auth *out)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    memset(out, 0, sizeof(*out));
    if (!store__device_id_ok(device_id))
        goto out;
    c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_AUTH);
    rc = STORE_ERR;
    if (st == NULL || sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC) != SQLITE_OK)
        goto out;
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = store__db_error(s, c, "device auth");
        goto out;
    }
    out->tenant_id = sqlite3_column_int64(st, 0);
    out->group_id = sqlite3_column_int64(st, 1);
    out->product_id = sqlite3_column_int64(st, 2);
    out->blocked = sqlite3_column_int(st, 3) != 0;
    out->claimed_at = sqlite3_column_int64(st, 5);
    const unsigned char *pem = sqlite3_column_text(st, 4);
    snprintf(out->public_key_pem, sizeof(out->public_key_pem), "%s", pem ? (const char *)pem : "");
    rc = STORE_OK;
out:
    store__give(s, c);
    return rc;
}

/* The list statement for a filter, and the blocked value it binds (-1 = any). NULL: the filter
 * matches nothing (unclaimed devices are in no group). */
static const char *
devices_list_sql(int64_t group_id, const char *state, int *blocked)
{
    *blocked = -1;
    if (state != NULL && strcmp(state, "active") == 0)
        *blocked = 0;
    else if (state != NULL && strcmp(state, "blocked") == 0)
        *blocked = 1;
    int unclaimed = state != NULL && strcmp(state, "unclaimed") == 0;

    if (group_id > 0)
        return unclaimed ? NULL : SQL_DEVICE_LIST_GROUP;
    if (unclaimed)
        return SQL_DEVICE_LIST_UNCLAIMED;
    return *blocked >= 0 ? SQL_DEVICE_LIST_CLAIMED : SQL_DEVICE_LIST_ALL;
}

static int
devices_state_ok(const char *state)
{
    return state == NULL || strcmp(state, "unclaimed") == 0 || strcmp(state, "active") == 0 ||
           strcmp(state, "blocked") == 0;
}

/* 1 for 1..64 lower-case hex characters. */
static int
devices_prefix_ok(const char *p)
{
    size_t n = p != NULL ? strlen(p) : 0;
    return n >= 1 && n <= 64 && strspn(p, "0123456789abcdef") == n;
}

/* The id bounds of a page (the list statements' ?3 and ?6): the ids from lo on and below hi.
 * An id is above a cursor (another 64-character id) exactly when it is at or above the cursor
 * followed by '0', so one bound holds both the cursor and the prefix. An id that starts with the
 * prefix (may be NULL) sorts from the prefix itself on and before the prefix with its last
 * character that is not 'f' raised by one (and what follows dropped); "g" is above every id. */
static void
devices_id_bounds(const char *cursor, const char *prefix, char lo[66], char hi[66])
{
    snprintf(lo, 66, "%s%s", cursor != NULL ? cursor : "", cursor != NULL ? "0" : "");
    snprintf(hi, 66, "g");
    if (prefix == NULL)
        return;
    if (strcmp(prefix, lo) > 0)
        snprintf(lo, 66, "%s", prefix);
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == 'f')
        n--;
    if (n == 0)
        return; /* all 'f': no id above the prefix's range */
    memcpy(hi, prefix, n);
    hi[n] = '\0';
    hi[n - 1] = hi[n - 1] == '9' ? 'a' : (char)(hi[n - 1] + 1);
}

/* The tag filter as *text, a JSON array of [key, value] pairs with each key once (malloc'd), and
 * *n their number. Returns 0, 1 when one key is asked with two values (nothing matches; *text
 * NULL), or -1 when out of memory. */
static int
devices_tag_filter(const struct store_device_tag *tags, size_t ntags, char **text, size_t *n)
{
    json_t *pairs = json_array(), *seen = json_object();
    int rc = -1;

    *text = NULL;
    *n = 0;
    if (pairs == NULL || seen == NULL)
        goto out;
    for (size_t i = 0; i < ntags; i++) {
        const json_t *v = json_object_get(seen, tags[i].key);
        if (v != NULL && strcmp(json_string_value(v), tags[i].value) != 0) {
            rc = 1; /* key=a and key=b: nothing has both */
            goto out;
        }
        if (v == NULL &&
            (json_object_set_new(seen, tags[i].key, json_string(tags[i].value)) != 0 ||
             json_array_append_new(pairs, json_pack("[s, s]", tags[i].key, tags[i].value)) != 0))
            goto out;
    }
    if ((*text = json_dumps(pairs, JSON_COMPACT)) == NULL)
        goto out;
    *n = json_array_size(pairs);
    rc = 0;
out:
    json_decref(pairs);
    json_decref(seen);
    return rc;
}

static int
devices_filter_ok(const struct store_device_filter *f)
{
    if (f == NULL || f->group_id < 0 || !devices_state_ok(f->state) ||
        (f->id_prefix != NULL && !devices_prefix_ok(f->id_prefix)) ||
        f->ntags > STORE_DEVICE_TAG_FILTERS_MAX || (f->ntags > 0 && f->tags == NULL))
        return 0;
    for (size_t i = 0; i < f->ntags; i++)
        if (!store_device_tag_ok(f->tags[i].key, f->tags[i].value))
            return 0;
    return 1;
}

/* Binds the eight parameters of a list statement (see the SQL). */
static int
devices_list_bind(sqlite3_stmt *st, const struct store_device_filter *f, int64_t tenant_id,
                  int blocked, const struct store_page *pg, const char *tags, size_t ntags)
{
    char lo[66], hi[66];
    devices_id_bounds(pg->cursor, f->id_prefix, lo, hi);
    return sqlite3_bind_int64(st, 1, f->group_id) | sqlite3_bind_int64(st, 2, tenant_id) |
           sqlite3_bind_text(st, 3, lo, -1, SQLITE_TRANSIENT) | sqlite3_bind_int(st, 4, blocked) |
           sqlite3_bind_int(st, 5, pg->limit + 1) |
           sqlite3_bind_text(st, 6, hi, -1, SQLITE_TRANSIENT) |
           sqlite3_bind_text(st, 7, tags != NULL ? tags : "[]", -1, SQLITE_TRANSIENT) |
           sqlite3_bind_int64(st, 8, (sqlite3_int64)ntags);
}

int
store_device_list_filtered(store *s, int64_t tenant_id, const struct store_device_filter *f,
                           const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    const char *sql = NULL;
    char *tags = NULL;
    size_t ntags = 0;
    int blocked = -1, none = 0, rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) || !devices_filter_ok(f) ||
        (pg->cursor != NULL && !store__device_id_ok(pg->cursor)))
        goto out;
    next_cursor[0] = '\0';
    rc = STORE_ERR;
    if (f->ntags > 0 && (none = devices_tag_filter(f->tags, f->ntags, &tags, &ntags)) < 0)
        goto out;
    sql = devices_list_sql(f->group_id, f->state, &blocked);
    if (sql == NULL || none) { /* the filter matches nothing */
        *items = json_array();
        rc = *items != NULL ? STORE_OK : STORE_ERR;
        goto out;
    }
    c = store__take(s);
    if ((st = store__prep(s, c, sql)) == NULL)
        goto out;
    rc = store__bound(s, c, devices_list_bind(st, f, tenant_id, blocked, pg, tags, ntags));
    if (rc != STORE_OK)
        goto out;
    rc = store__collect(s, c, st, pg->limit, devices_json, items, next_cursor);
out:
    free(tags);
    store__give(s, c);
    return rc;
}

int
store_device_list(store *s, int64_t tenant_id, int64_t group_id, const char *state,
                  const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct store_device_filter f = {group_id, state, NULL, NULL, 0};
    return store_device_list_filtered(s, tenant_id, &f, pg, items, next_cursor);
}

int
store__device_claim_own(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                        int64_t group_id, json_t *detail, const struct store_actor *a)
{
    struct store__device_reg o;
    int rc;

    if (detail == NULL)
        return STORE_ERR;
    if ((rc = store__device_reg(s, c, tenant_id, device_id, &o)) != STORE_OK ||
        (group_id > 0 &&
         (rc = store__owned(s, c, SQL_GROUP_OWNED, group_id, tenant_id)) != STORE_OK) ||
        o.tenant_id != 0) { /* claimed: ours, kept as it is */
        json_decref(detail);
        return rc;
    }
    if ((rc = store__device_claim_row(s, c, device_id, tenant_id, o.shadow, group_id,
                                      util_now())) != STORE_OK ||
        (group_id > 0 &&
         (rc = store__director_bump(s, c, tenant_id, util_now(), NULL)) != STORE_OK)) {
        json_decref(detail);
        return rc;
    }
    json_object_set_new(detail, "group_id", group_id > 0 ? json_integer(group_id) : json_null());
    return store__audit(s, c, tenant_id, a, "device.claim", "device", 0, device_id, detail);
}

int
store_device_claim(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                   const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (!store__device_id_ok(device_id) || group_id < 0 || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__device_claim_own(s, c, tenant_id, device_id, group_id, json_object(), a)) !=
            STORE_OK)
        goto out;
    rc = store__device_load(s, c, tenant_id, device_id, &obj);
out:
    return store__device_finish(s, c, rc, device_id, obj, out);
}

/* The shared body of move and block/unblock: the device must be claimed by the tenant; change()
 * decides from the current row whether anything changes, and applies it with its audit row. */
struct devices_change_req {
    int64_t group_id;  /* move: the new group (0 = none) */
    int blocked;       /* block/unblock: the new flag */
    int unclaimed_too; /* change() also runs on an unclaimed registration */
};
typedef int (*devices_change_fn)(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                                 const struct store__device_reg *o,
                                 const struct devices_change_req *ch, const struct store_actor *a);

static int
devices_change(store *s, int64_t tenant_id, const char *device_id,
               const struct devices_change_req *ch, devices_change_fn change,
               const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    struct store__device_reg o;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (!store__device_id_ok(device_id) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__device_reg(s, c, tenant_id, device_id, &o)) != STORE_OK)
        goto out;
    if (o.tenant_id != tenant_id && !ch->unclaimed_too) { /* unclaimed */
        rc = STORE_NOTFOUND;
        goto out;
    }
    if ((rc = change(s, c, tenant_id, device_id, &o, ch, a)) != STORE_OK)
        goto out;
    rc = store__device_load(s, c, tenant_id, device_id, &obj);
out:
    return store__device_finish(s, c, rc, device_id, obj, out);
}

int
store__device_apply_move(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                         const struct store__device_reg *o, int64_t group_id,
                         const struct store_actor *a)
{
    int rc;

    if (group_id > 0 && (rc = store__owned(s, c, SQL_GROUP_OWNED, group_id, tenant_id)) != STORE_OK)
        return rc;
    if (o->group_id == group_id)
        return STORE_OK; /* already there */
    /* Another group, another director answer: a new version of the tenant's answers
     * (docs/update.md section 4). */
    if ((rc = devices_update(s, c, o->shadow ? SQL_SHADOW_MOVE : SQL_DEVICE_MOVE, device_id,
                             tenant_id, group_id, -1, util_now(), "device move")) != STORE_OK ||
        (rc = store__director_bump(s, c, tenant_id, util_now(), NULL)) != STORE_OK)
        return rc;
    return store__audit(
        s, c, tenant_id, a, "device.move", "device", 0, device_id,
        json_pack("{s:o, s:o}", "group_id", group_id > 0 ? json_integer(group_id) : json_null(),
                  "previous_group_id", o->group_id > 0 ? json_integer(o->group_id) : json_null()));
}

static int
devices_apply_move(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                   const struct store__device_reg *o, const struct devices_change_req *ch,
                   const struct store_actor *a)
{
    return store__device_apply_move(s, c, tenant_id, device_id, o, ch->group_id, a);
}

static int
devices_apply_unclaim(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                      const struct store__device_reg *o, const struct devices_change_req *ch,
                      const struct store_actor *a)
{
    int rc;

    (void)ch;
    if (o->tenant_id == 0)
        return STORE_OK; /* unclaimed already */
    if ((rc = devices_update(s, c, o->shadow ? SQL_SHADOW_UNCLAIM : SQL_DEVICE_UNCLAIM, device_id,
                             tenant_id, 0, 0, util_now(), "device unclaim")) != STORE_OK ||
        (o->group_id > 0 &&
         (rc = store__director_bump(s, c, tenant_id, util_now(), NULL)) != STORE_OK))
        return rc;
    return store__audit(s, c, tenant_id, a, "device.unclaim", "device", 0, device_id,
                        json_pack("{s:o, s:b}", "previous_group_id",
                                  o->group_id > 0 ? json_integer(o->group_id) : json_null(),
                                  "was_blocked", o->blocked));
}

static int
devices_apply_blocked(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                      const struct store__device_reg *o, const struct devices_change_req *ch,
                      const struct store_actor *a)
{
    int rc;

    if (o->blocked == ch->blocked)
        return STORE_OK; /* idempotent */
    if ((rc = devices_update(s, c, o->shadow ? SQL_SHADOW_BLOCK : SQL_DEVICE_BLOCK, device_id,
                             tenant_id, 0, ch->blocked, util_now(), "device block")) != STORE_OK)
        return rc;
    return store__audit(s, c, tenant_id, a, ch->blocked ? "device.block" : "device.unblock",
                        "device", 0, device_id, json_object());
}

int
store_device_move(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                  const struct store_actor *a, json_t **out)
{
    struct devices_change_req ch = {group_id, 0, 0};
    if (group_id < 0) {
        if (out != NULL)
            *out = NULL;
        return STORE_INVALID;
    }
    return devices_change(s, tenant_id, device_id, &ch, devices_apply_move, a, out);
}

int
store_device_set_blocked(store *s, int64_t tenant_id, const char *device_id, int blocked,
                         const struct store_actor *a, json_t **out)
{
    struct devices_change_req ch = {0, blocked != 0, 0};
    return devices_change(s, tenant_id, device_id, &ch, devices_apply_blocked, a, out);
}

int
store_device_unclaim(store *s, int64_t tenant_id, const char *device_id,
                     const struct store_actor *a, json_t **out)
{
    struct devices_change_req ch = {0, 0, 1};
    return devices_change(s, tenant_id, device_id, &ch, devices_apply_unclaim, a, out);
}
