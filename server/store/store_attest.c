/* store: device attestation (store.h "device attestation"): challenge nonces, reference values,
 * security minimums and attestation records. Same rules as store.c (store_int.h): one connection
 * per call, changes in one BEGIN IMMEDIATE transaction with their audit row, values only bound. */
#include "store.h"
#include "store_int.h"

#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT_MAX 64
#define VERSION_MAX 32
#define DIGEST_HEX_LEN 64
#define REASON_MAX 64
#define PEER_MAX 64
#define MEASUREMENTS_MAX 64 /* per match/check call; the protocol allows 8 events */

/* --- SQL --- */

static const char SQL_DEVICE_KNOWN[] = "SELECT 1 FROM devices WHERE id = ?1";
static const char SQL_DEVICE_VISIBLE[] =
    "SELECT 1 FROM devices WHERE id = ?1 AND "
    "(tenant_id = ?2 OR (tenant_id IS NULL AND registered_by = ?2))";
static const char SQL_DEVICE_RECORD_TENANT[] =
    "SELECT coalesce(tenant_id, registered_by) FROM devices WHERE id = ?1";
static const char SQL_DEVICE_SET_LAST[] =
    "UPDATE devices SET attest_at = ?2, attest_result = ?3, attest_reason = ?4 WHERE id = ?1";

static const char SQL_NONCE_DROP_EXPIRED[] =
    "DELETE FROM nonces WHERE device_id = ?1 AND expires_at <= ?2";
static const char SQL_NONCE_ADD[] =
    "INSERT INTO nonces (nonce, device_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
/* Keeps the ?2 newest of the device (rowids grow with each insert). */
static const char SQL_NONCE_CAP[] =
    "DELETE FROM nonces WHERE device_id = ?1 AND rowid NOT IN "
    "(SELECT rowid FROM nonces WHERE device_id = ?1 ORDER BY rowid DESC LIMIT ?2)";
static const char SQL_NONCE_CONSUME[] =
    "DELETE FROM nonces WHERE nonce = ?1 AND device_id = ?2 RETURNING expires_at";
static const char SQL_NONCE_PURGE[] =
    "DELETE FROM nonces WHERE rowid IN "
    "(SELECT rowid FROM nonces WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";

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
/* The oldest ?2 records by id, those of them created before ?1 (no index by time to maintain). */
/* Through attestations_by_time (migration 0007): only old records are read, whatever their ids. */
static const char SQL_ATTESTATION_PURGE[] =
    "DELETE FROM attestations WHERE id IN "
    "(SELECT id FROM attestations INDEXED BY attestations_by_time WHERE created_at < ?1 LIMIT ?2)";
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

#define ATTESTATION_COLS                                                                           \
    "id, device_id, created_at, result, reason, measurements, cert_serial, cert_not_after, peer"
static const char SQL_ATTESTATION_ADD[] =
    "INSERT INTO attestations (tenant_id, device_id, created_at, result, reason, measurements, "
    "cert_serial, cert_not_after, peer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
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

/* --- Argument checks (the schema's CHECK constraints say the same) --- */

static int
stage_ok(const char *stage)
{
    return stage != NULL && (strcmp(stage, "bootloader") == 0 || strcmp(stage, "os") == 0 ||
                             strcmp(stage, "app") == 0);
}

static int
platform_stage(const char *stage)
{
    return strcmp(stage, "app") != 0;
}

static int
component_ok(const char *c)
{
    if (c == NULL)
        return 0;
    size_t n = strlen(c);
    return n >= 1 && n <= COMPONENT_MAX &&
           strspn(c, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int
version_ok(const char *v)
{
    if (v == NULL)
        return 0;
    size_t n = 0;
    for (; v[n] != '\0'; n++)
        if (n == VERSION_MAX || (unsigned char)v[n] < 0x21 || (unsigned char)v[n] > 0x7e)
            return 0;
    return n >= 1;
}

static int
digest_ok(const char *d)
{
    return d != NULL && strlen(d) == DIGEST_HEX_LEN &&
           strspn(d, "0123456789abcdef") == DIGEST_HEX_LEN;
}

static int
svn_ok(int64_t svn)
{
    return svn >= 0 && svn <= STORE_SVN_MAX;
}

static int
measurement_ok(const struct store_measurement *m)
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

/* --- Nonces --- */

/* Runs one statement whose ?1 is the device id and ?2 an integer, to its end. */
static int
exec_device_int(store *s, struct conn *c, const char *sql, const char *device_id, int64_t v,
                const char *what)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c, store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, v));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, what);
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* STORE_OK when the query (?1 the device id, ?2 tenant_id when it has one) finds a row. */
static int
device_query(store *s, struct conn *c, const char *sql, const char *device_id, int64_t tenant_id)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) |
                          (sqlite3_bind_parameter_count(st) >= 2
                               ? sqlite3_bind_int64(st, 2, tenant_id)
                               : SQLITE_OK));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "device lookup");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

static int
nonce_insert(store *s, struct conn *c, const char *device_id, const unsigned char *nonce,
             int64_t created_at, int64_t expires_at)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_NONCE_ADD);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_blob(st, 1, nonce, STORE_NONCE_LEN, SQLITE_TRANSIENT) |
                          store__bind_text(st, 2, device_id) |
                          sqlite3_bind_int64(st, 3, created_at) |
                          sqlite3_bind_int64(st, 4, expires_at));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "nonce insert");
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st); /* no copy of the nonce lingers in the statement */
    }
    return rc;
}

int
store_nonce_issue(store *s, const char *device_id, const unsigned char nonce[STORE_NONCE_LEN],
                  int64_t created_at, int64_t expires_at)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    if (!store__device_id_ok(device_id) || nonce == NULL || expires_at <= created_at)
        goto out;
    c = store__take(s);
    if ((rc = store__begin_light(s, c)) != STORE_OK ||
        (rc = device_query(s, c, SQL_DEVICE_KNOWN, device_id, 0)) != STORE_OK)
        goto out;
    if ((rc = exec_device_int(s, c, SQL_NONCE_DROP_EXPIRED, device_id, created_at,
                              "nonce expiry")) != STORE_OK ||
        (rc = nonce_insert(s, c, device_id, nonce, created_at, expires_at)) != STORE_OK)
        goto out;
    rc = exec_device_int(s, c, SQL_NONCE_CAP, device_id, STORE_NONCES_PER_DEVICE, "nonce cap");
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

int
store_nonce_consume(store *s, const char *device_id, const unsigned char nonce[STORE_NONCE_LEN],
                    int64_t now)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t expires_at = 0;
    int rc = STORE_INVALID, found = 0, step;

    if (!store__device_id_ok(device_id) || nonce == NULL)
        goto out;
    c = store__take(s);
    if ((rc = store__begin_light(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_NONCE_CONSUME)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_blob(st, 1, nonce, STORE_NONCE_LEN, SQLITE_TRANSIENT) |
                          store__bind_text(st, 2, device_id));
    if (rc != STORE_OK)
        goto out;
    /* One statement, so the delete is atomic: of two concurrent uses, one sees the row. */
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        expires_at = sqlite3_column_int64(st, 0);
        found = 1;
    }
    if (step != SQLITE_DONE) {
        rc = store__write_error(s, c, step, "nonce consume");
        goto out;
    }
    rc = found && expires_at > now ? STORE_OK : STORE_NOTFOUND;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    /* The nonce is gone whether or not it was still valid: commit either way. */
    (void)store__end_tx(s, c, rc == STORE_NOTFOUND ? STORE_OK : rc);
    store__give(s, c);
    return rc;
}

int
store_nonce_purge(store *s, int64_t now, int max_rows, int *purged)
{
    return store__purge(s, SQL_NONCE_PURGE, now, max_rows, purged, "nonce purge");
}

int
store_attestation_purge(store *s, int64_t before, int max_rows, int *purged)
{
    return store__purge(s, SQL_ATTESTATION_PURGE, before, max_rows, purged, "attestation purge");
}

/* --- Reference values --- */

/* Binds the five fields of m to ?first .. ?first+4 (stage, component, version, svn, digest). */
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

int
store_refval_add(store *s, int64_t tenant_id, const struct store_measurement *v,
                 const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (tenant_id < 0 || !measurement_ok(v) || !store__actor_ok(a) ||
        platform_stage(v->stage) != (tenant_id == 0))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (tenant_id > 0 && (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK))
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_REFVAL_ADD)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | bind_measurement(st, 2, v) |
                          sqlite3_bind_int64(st, 7, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "refval insert")) != STORE_OK)
        goto out;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    if (tenant_id > 0 && (rc = store__audit(s, c, tenant_id, a, "refval.create", "refval", id, NULL,
                                            measurement_detail(v))) != STORE_OK)
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

static int
measurements_ok(const struct store_measurement *m, size_t n)
{
    if (m == NULL || n == 0 || n > MEASUREMENTS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!measurement_ok(&m[i]))
            return 0;
    return 1;
}

int
store_refval_match(store *s, int64_t tenant_id, const struct store_measurement *m, size_t n,
                   size_t *index)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    if (index != NULL)
        *index = 0;
    if (tenant_id < 1 || !measurements_ok(m, n))
        goto out;
    c = store__take(s);
    for (size_t i = 0; i < n; i++) {
        rc = STORE_ERR;
        if ((st = store__prep(s, c, SQL_REFVAL_MATCH)) == NULL)
            goto out;
        int64_t scope = platform_stage(m[i].stage) ? 0 : tenant_id;
        rc = store__bound(s, c, sqlite3_bind_int64(st, 1, scope) | bind_measurement(st, 2, &m[i]));
        if (rc != STORE_OK || (rc = store__step_row(s, c, st, "refval match")) != STORE_OK) {
            if (rc == STORE_NOTFOUND && index != NULL)
                *index = i;
            goto out;
        }
    }
out:
    if (st != NULL)
        sqlite3_reset(st);
    store__give(s, c);
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
store_minimum_check(store *s, int64_t tenant_id, const struct store_measurement *m, size_t n,
                    size_t *index, int64_t *min_svn)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    if (index != NULL)
        *index = 0;
    if (min_svn != NULL)
        *min_svn = 0;
    if (!measurements_ok(m, n))
        goto out;
    c = store__take(s);
    rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        rc = STORE_ERR;
        if ((st = store__prep(s, c, SQL_MINIMUM_GET)) == NULL)
            goto out;
        rc = store__bound(
            s, c, sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, m[i].component));
        if (rc != STORE_OK)
            goto out;
        rc = store__step_row(s, c, st, "minimum check");
        if (rc == STORE_NOTFOUND) {
            rc = STORE_OK; /* no minimum for this component */
        } else if (rc == STORE_OK && m[i].svn < sqlite3_column_int64(st, 1)) {
            if (index != NULL)
                *index = i;
            if (min_svn != NULL)
                *min_svn = sqlite3_column_int64(st, 1);
            rc = STORE_CONFLICT;
        }
        sqlite3_reset(st);
    }
out:
    store__give(s, c);
    return rc;
}

/* --- Attestation records --- */

static int
record_ok(const struct store_attestation *a)
{
    if (a == NULL || !store__device_id_ok(a->device_id) ||
        (a->measurements != NULL && !json_is_array(a->measurements)) ||
        (a->peer != NULL && !store__text_ok(a->peer, 1, PEER_MAX)))
        return 0;
    if (a->pass)
        return a->reason == NULL && store__text_ok(a->cert_serial, 1, 128);
    return store__text_ok(a->reason, 1, REASON_MAX);
}

static int
attestation_insert(store *s, struct conn *c, int64_t tenant_id, const struct store_attestation *a,
                   const char *measurements)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_ATTESTATION_ADD);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, a->device_id) |
            sqlite3_bind_int64(st, 3, a->at) | store__bind_text(st, 4, a->pass ? "pass" : "fail") |
            store__bind_text(st, 5, a->pass ? NULL : a->reason) |
            store__bind_text(st, 6, measurements) |
            store__bind_text(st, 7, a->pass ? a->cert_serial : NULL) |
            (a->pass ? sqlite3_bind_int64(st, 8, a->cert_not_after) : sqlite3_bind_null(st, 8)) |
            store__bind_text(st, 9, a->peer));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "attestation insert");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

static int
device_set_last(store *s, struct conn *c, const struct store_attestation *a)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_SET_LAST);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, a->device_id) | sqlite3_bind_int64(st, 2, a->at) |
                          store__bind_text(st, 3, a->pass ? "pass" : "fail") |
                          store__bind_text(st, 4, a->pass ? NULL : a->reason));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "device last attestation");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* The tenant a record of the device belongs to (owner, else importer). */
static int
record_tenant(store *s, struct conn *c, const char *device_id, int64_t *tenant_id)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_RECORD_TENANT);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, store__bind_text(st, 1, device_id))) != STORE_OK ||
        (rc = store__step_row(s, c, st, "device record tenant")) != STORE_OK)
        goto out;
    *tenant_id = sqlite3_column_int64(st, 0);
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

int
store_attestation_record(store *s, const struct store_attestation *a, int64_t *id)
{
    struct conn *c = NULL;
    char *measurements = NULL;
    int64_t tenant_id = 0, new_id = 0;
    int rc = STORE_INVALID;

    if (!record_ok(a))
        goto out;
    rc = STORE_ERR;
    measurements =
        a->measurements != NULL ? json_dumps(a->measurements, JSON_COMPACT) : strdup("[]");
    if (measurements == NULL)
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = record_tenant(s, c, a->device_id, &tenant_id)) != STORE_OK ||
        (rc = attestation_insert(s, c, tenant_id, a, measurements)) != STORE_OK)
        goto out;
    new_id = sqlite3_last_insert_rowid(c->db);
    rc = device_set_last(s, c, a);
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    free(measurements);
    if (rc == STORE_OK && id != NULL)
        *id = new_id;
    return rc;
}

/* Lists with one of the SQL_ATTESTATION_LIST statements; c is taken and given back by the caller.
 */
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
    if ((rc = device_query(s, c, SQL_DEVICE_VISIBLE, device_id, tenant_id)) != STORE_OK)
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
