/* store: attestation records as the manufacturer API reads them (store.h "device attestation"):
 * a device's records, the tenant's records, and their retention. Same rules as every store file
 * (store_int.h): one connection per call, values only bound. */
#include "store.h"
#include "store_int.h"

#include <sqlite3.h>
#include <string.h>

/* --- SQL --- */

/* The tenant's registrations: its devices row, or its shadow (migration 0008). */
static const char SQL_DEVICE_VISIBLE[] =
    "SELECT 1 FROM devices WHERE id = ?1 AND "
    "(tenant_id = ?2 OR (tenant_id IS NULL AND registered_by = ?2)) "
    "UNION ALL SELECT 1 FROM device_shadows WHERE device_id = ?1 AND tenant_id = ?2";
/* Through attestations_by_time (migration 0007): only old records are read, whatever their ids. */
static const char SQL_ATTESTATION_PURGE[] =
    "DELETE FROM attestations WHERE id IN "
    "(SELECT id FROM attestations INDEXED BY attestations_by_time WHERE created_at < ?1 LIMIT ?2)";

#define ATTESTATION_COLS                                                                           \
    "id, device_id, created_at, result, reason, measurements, cert_serial, cert_not_after, peer"
/* The list statements share their parameters: ?1 tenant, ?2 cursor (before this id), ?3 row
 * limit, ?4 device id or result. */
static const char SQL_ATTESTATION_LIST_DEVICE[] =
    "SELECT " ATTESTATION_COLS " FROM attestations "
    "WHERE tenant_id = ?1 AND device_id = ?4 AND id < ?2 ORDER BY id DESC LIMIT ?3";
static const char SQL_ATTESTATION_LIST_RESULT[] =
    "SELECT " ATTESTATION_COLS " FROM attestations "
    "WHERE tenant_id = ?1 AND result = ?4 AND id < ?2 ORDER BY id DESC LIMIT ?3";
static const char SQL_ATTESTATION_LIST[] =
    "SELECT " ATTESTATION_COLS " FROM attestations "
    "WHERE tenant_id = ?1 AND id < ?2 AND ?4 IS NULL ORDER BY id DESC LIMIT ?3";
/* The device's current certificate: the one of its newest passed attestation since its claim (a
 * certificate counts only for the registration it was issued under, as devauth checks). One seek in
 * attestations_passed (migration 0016). ?1 the device, ?2 the tenant (store__device_row). */
static const char SQL_DEVICE_CERTIFICATE[] =
    "SELECT a.id, a.created_at, a.cert_serial, a.cert_not_after FROM attestations a "
    "JOIN devices d ON d.id = a.device_id AND d.tenant_id = a.tenant_id "
    "WHERE a.tenant_id = ?2 AND a.device_id = ?1 AND a.result = 'pass' "
    "AND a.created_at >= d.claimed_at ORDER BY a.id DESC LIMIT 1";
/* --- JSON of rows --- */

/* Column i: null, or the text as a string. */
static json_t *
col_text_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : store__col_text(st, i);
}

/* ATTESTATION_COLS */
static json_t *
attestation_json(sqlite3_stmt *st)
{
    const char *m = (const char *)sqlite3_column_text(st, 5);
    json_t *cert = json_null();
    if (sqlite3_column_type(st, 6) != SQLITE_NULL)
        cert = json_pack("{s:o, s:o}", "serial", store__col_text(st, 6), "not_after",
                         store__col_time(st, 7));
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0),
                     "device_id", store__col_text(st, 1), "created_at", store__col_time(st, 2),
                     "result", store__col_text(st, 3), "reason", col_text_or_null(st, 4),
                     "measurements", m != NULL ? json_loads(m, JSON_REJECT_DUPLICATES, NULL) : NULL,
                     "certificate", cert, "peer", col_text_or_null(st, 8));
}

/* STORE_OK when the device is visible to the tenant (owner, or importer while unclaimed). */
static int
device_visible(store *s, struct conn *c, const char *device_id, int64_t tenant_id)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_VISIBLE);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "device lookup");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

int
store_attestation_purge(store *s, int64_t before, int max_rows, int *purged)
{
    return store__purge(s, SQL_ATTESTATION_PURGE, before, max_rows, purged, "attestation purge");
}

/* Lists with one of the SQL_ATTESTATION_LIST statements; c is taken and given back by the
 * caller. */
static int
list_attestations(store *s, struct conn *c, const char *sql, int64_t tenant_id, const char *arg,
                  const struct store_page *pg, json_t **items, char *next_cursor)
{
    sqlite3_stmt *st = NULL;
    int64_t before = INT64_MAX;
    int rc;

    if ((rc = store__int_cursor(pg, INT64_MAX, &before)) != STORE_OK)
        return rc;
    if ((st = store__prep(s, c, sql)) == NULL)
        return STORE_ERR;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, before) |
                          sqlite3_bind_int(st, 3, pg->limit + 1) | store__bind_text(st, 4, arg));
    if (rc == STORE_OK)
        rc = store__collect(s, c, st, pg->limit, attestation_json, items, next_cursor);
    sqlite3_reset(st);
    return rc;
}

int
store_attestation_list_device(store *s, int64_t tenant_id, const char *device_id,
                              const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) ||
        !store__device_id_ok(device_id))
        goto out;
    c = store__take(s);
    if ((rc = device_visible(s, c, device_id, tenant_id)) != STORE_OK)
        goto out;
    rc = list_attestations(s, c, SQL_ATTESTATION_LIST_DEVICE, tenant_id, device_id, pg, items,
                           next_cursor);
out:
    store__give(s, c);
    return rc;
}

int
store_attestation_list(store *s, int64_t tenant_id, const char *result, const struct store_page *pg,
                       json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) ||
        (result != NULL && strcmp(result, "pass") != 0 && strcmp(result, "fail") != 0))
        goto out;
    c = store__take(s);
    rc =
        list_attestations(s, c, result != NULL ? SQL_ATTESTATION_LIST_RESULT : SQL_ATTESTATION_LIST,
                          tenant_id, result, pg, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

static json_t *
certificate_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o}", "attestation_id", store__col_id(st, 0), "issued_at",
                     store__col_time(st, 1), "serial", store__col_text(st, 2), "not_after",
                     store__col_time(st, 3));
}

int
store_device_certificate(store *s, int64_t tenant_id, const char *device_id, json_t **out)
{
    return store__device_row(s, tenant_id, device_id, SQL_DEVICE_CERTIFICATE, "device certificate",
                             certificate_json, json_null, out);
}
