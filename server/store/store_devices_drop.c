/* store_devices_drop: deleting a tenant's registration of a device (store.h store_device_delete),
 * also what deleting a tenant does to each of its devices (store_tenant_delete).
 *
 * The registry row (devices) is named by every per-device record, so it goes last, with all of
 * them. When another tenant registered the same key (a shadow), the row is not deleted: the oldest
 * shadow takes its place, as though the deleting tenant had never imported the key, and only the
 * deleting tenant's records go (the others' stay with the row). Telemetry reports are deleted but
 * the aggregates they fed (bucket counts, device-hours, crash rates) keep their contribution, as
 * after retention; a bucket's sample chain (migration 0004: each crash report names the previous of
 * its bucket) is relinked around the deleted reports first. */
#include "store.h"
#include "store_deploy_int.h"
#include "store_devices_int.h"
#include "store_int.h"

#include "util.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES_KEPT 10 /* the bucket detail's samples (store_tel_query.c SAMPLES_MAX) */

/* Every statement below binds ?1 = the device and ?2 = the scope: a tenant whose records go, or 0
 * for every tenant's (the registry row goes). */
#define SCOPE(col) "(?2 = 0 OR " col " = ?2)"
static const char SQL_DROP_BUCKETS[] =
    "SELECT bucket_id, count(*) FROM telemetry_reports WHERE device_id = ?1 AND "
    "bucket_id IS NOT NULL AND " SCOPE("tenant_id") " GROUP BY bucket_id";
/* The bucket's chain from its newest report, ?3 links long, without the reports that go. */
static const char SQL_DROP_CHAIN[] =
    "WITH RECURSIVE chain(id, n) AS (SELECT last_report, 1 FROM bucket_stats WHERE bucket_id = ?3 "
    "AND last_report > 0 UNION ALL SELECT r.prev_in_bucket, chain.n + 1 FROM chain JOIN "
    "telemetry_reports r ON r.id = chain.id WHERE chain.n < ?4 AND r.prev_in_bucket IS NOT NULL) "
    "SELECT r.id FROM chain JOIN telemetry_reports r ON r.id = chain.id "
    "WHERE NOT (r.device_id = ?1 AND " SCOPE("r.tenant_id") ") ORDER BY chain.n";
static const char SQL_DROP_RELINK[] =
    "UPDATE telemetry_reports SET prev_in_bucket = ?2 WHERE id = ?1";
static const char SQL_DROP_HEAD[] =
    "UPDATE bucket_stats SET last_report = coalesce(?2, 0) WHERE bucket_id = ?1";
static const char SQL_DROP_REPORTS[] =
    "DELETE FROM telemetry_reports WHERE device_id = ?1 AND " SCOPE("tenant_id");
static const char SQL_DROP_ATTESTATIONS[] =
    "DELETE FROM attestations WHERE device_id = ?1 AND tenant_id IN "
    "(SELECT id FROM tenants WHERE " SCOPE("id") ")";
static const char SQL_DROP_ATTEMPTS[] =
    "DELETE FROM update_attempts WHERE device_id = ?1 AND " SCOPE("tenant_id");
static const char SQL_DROP_TRANSFERS[] =
    "DELETE FROM device_transfers WHERE device_id = ?1 AND " SCOPE("tenant_id");
static const char SQL_DROP_TAGS[] =
    "DELETE FROM device_tags WHERE device_id = ?1 AND " SCOPE("tenant_id");
/* The rest of what names the device. */
static const char *const SQL_DROP_MARKS[] = {
    "DELETE FROM telemetry_devices WHERE device_id = ?1 AND " SCOPE("tenant_id"),
    "DELETE FROM bucket_devices WHERE device_id = ?1 AND (?2 = 0 OR bucket_id IN "
    "(SELECT id FROM failure_buckets WHERE tenant_id = ?2))",
    "DELETE FROM telemetry_crash_hours WHERE device_id = ?1 AND " SCOPE("tenant_id"),
    SQL_DROP_TRANSFERS,
    SQL_DROP_TAGS,
};
static const char SQL_DROP_SHADOW[] =
    "DELETE FROM device_shadows WHERE device_id = ?1 AND tenant_id = ?2";
static const char SQL_DROP_HAS_SHADOW[] = "SELECT 1 FROM device_shadows WHERE device_id = ?1 "
                                          "AND ?2 = ?2 LIMIT 1";
/* The oldest other registration becomes the registry row, fresh (no attestation: the device never
 * talked to its tenant through it); its shadow goes. */
static const char SQL_DROP_HAND_OVER[] =
    "UPDATE devices SET (registered_by, tenant_id, group_id, blocked, created_at, claimed_at, "
    "updated_at, attest_at, attest_result, attest_reason) = (SELECT s.tenant_id, CASE WHEN "
    "s.claimed_at IS NOT NULL THEN s.tenant_id END, s.group_id, s.blocked, s.created_at, "
    "s.claimed_at, ?2, NULL, NULL, NULL FROM device_shadows s WHERE s.device_id = ?1 "
    "ORDER BY s.created_at, s.tenant_id LIMIT 1) WHERE id = ?1 RETURNING registered_by";
static const char SQL_DROP_DEVICE[] = "DELETE FROM devices WHERE id = ?1 AND ?2 = ?2";

/* Prepares sql and binds ?1 device, ?2 v. NULL on error (logged). */
static sqlite3_stmt *
drop_prep(store *s, struct conn *c, const char *sql, const char *device_id, int64_t v)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    if (st == NULL)
        return NULL;
    if (store__bound(s, c, store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, v)) !=
        STORE_OK)
        return NULL;
    return st;
}

/* Runs a write with ?1 device, ?2 v; *changed (may be NULL) gets the rows it changed. */
static int
drop_exec(store *s, struct conn *c, const char *sql, const char *device_id, int64_t v,
          int64_t *changed)
{
    sqlite3_stmt *st = drop_prep(s, c, sql, device_id, v);
    int rc;

    if (st == NULL)
        return STORE_ERR;
    rc = store__step_done(s, c, st, "device drop");
    sqlite3_reset(st);
    if (rc == STORE_OK && changed != NULL)
        *changed = sqlite3_changes64(c->db);
    return rc;
}

/* Runs an update with ?1 and ?2 integers. */
static int
drop_set(store *s, struct conn *c, const char *sql, int64_t id, int64_t v)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc;

    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, id) |
                          (v > 0 ? sqlite3_bind_int64(st, 2, v) : sqlite3_bind_null(st, 2)));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "device drop relink");
    sqlite3_reset(st);
    return rc;
}

/* Relinks bucket's chain around the reports that go (n of them in the bucket): its newest
 * SAMPLES_KEPT reports that stay are linked newest first, the last ending the chain (the samples
 * never reach further back). */
static int
drop_relink_bucket(store *s, struct conn *c, const char *device_id, int64_t scope, int64_t bucket,
                   int64_t n)
{
    int64_t keep[SAMPLES_KEPT];
    size_t nkeep = 0;
    sqlite3_stmt *st = drop_prep(s, c, SQL_DROP_CHAIN, device_id, scope);
    int rc, step;

    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(
        s, c, sqlite3_bind_int64(st, 3, bucket) | sqlite3_bind_int64(st, 4, SAMPLES_KEPT + n));
    while (rc == STORE_OK && nkeep < SAMPLES_KEPT && (step = sqlite3_step(st)) == SQLITE_ROW)
        keep[nkeep++] = sqlite3_column_int64(st, 0);
    if (rc == STORE_OK && nkeep < SAMPLES_KEPT && step != SQLITE_DONE)
        rc = store__db_error(s, c, "device drop chain");
    sqlite3_reset(st);
    if (rc != STORE_OK)
        return rc;
    rc = drop_set(s, c, SQL_DROP_HEAD, bucket, nkeep > 0 ? keep[0] : 0);
    for (size_t i = 0; rc == STORE_OK && i < nkeep; i++)
        rc = drop_set(s, c, SQL_DROP_RELINK, keep[i], i + 1 < nkeep ? keep[i + 1] : 0);
    return rc;
}

/* Deletes the device's reports in scope, relinking their buckets' chains first. */
static int
drop_reports(store *s, struct conn *c, const char *device_id, int64_t scope, int64_t *deleted)
{
    int64_t(*buckets)[2] = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = drop_prep(s, c, SQL_DROP_BUCKETS, device_id, scope);
    int rc = st != NULL ? STORE_OK : STORE_ERR, step = SQLITE_DONE;

    /* Read all first: the relinking writes the table the query reads. */
    while (rc == STORE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            void *p = realloc(buckets, (cap = cap ? 2 * cap : 16) * sizeof(*buckets));
            if (p == NULL) {
                rc = STORE_ERR;
                break;
            }
            buckets = p;
        }
        buckets[n][0] = sqlite3_column_int64(st, 0);
        buckets[n++][1] = sqlite3_column_int64(st, 1);
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = store__db_error(s, c, "device drop buckets");
    if (st != NULL)
        sqlite3_reset(st);
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        rc = drop_relink_bucket(s, c, device_id, scope, buckets[i][0], buckets[i][1]);
    free(buckets);
    if (rc == STORE_OK)
        rc = drop_exec(s, c, SQL_DROP_REPORTS, device_id, scope, deleted);
    return rc;
}

/* Deletes the records of the device in scope (see SCOPE). */
static int
drop_records(store *s, struct conn *c, const char *device_id, int64_t scope,
             struct store_device_dropped *d)
{
    int rc;

    if ((rc = drop_reports(s, c, device_id, scope, &d->reports)) != STORE_OK ||
        (rc = drop_exec(s, c, SQL_DROP_ATTESTATIONS, device_id, scope, &d->attestations)) !=
            STORE_OK ||
        (rc = drop_exec(s, c, SQL_DROP_ATTEMPTS, device_id, scope, &d->update_attempts)) !=
            STORE_OK)
        return rc;
    for (size_t i = 0; i < sizeof(SQL_DROP_MARKS) / sizeof(SQL_DROP_MARKS[0]); i++)
        if ((rc = drop_exec(s, c, SQL_DROP_MARKS[i], device_id, scope, NULL)) != STORE_OK)
            return rc;
    return STORE_OK;
}

/* The registry row of a device the tenant holds: handed to the oldest shadow's tenant (its shadow
 * going), or deleted with every record that names it. */
static int
drop_registry_row(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                  struct store_device_dropped *d)
{
    sqlite3_stmt *st = drop_prep(s, c, SQL_DROP_HAS_SHADOW, device_id, 0);
    int rc;

    if (st == NULL)
        return STORE_ERR;
    rc = store__step_row(s, c, st, "device drop shadows");
    sqlite3_reset(st);
    if (rc == STORE_NOTFOUND) {
        if ((rc = drop_records(s, c, device_id, 0, d)) != STORE_OK)
            return rc;
        return drop_exec(s, c, SQL_DROP_DEVICE, device_id, 0, NULL);
    }
    if (rc != STORE_OK || (rc = drop_records(s, c, device_id, tenant_id, d)) != STORE_OK)
        return rc;
    if ((st = drop_prep(s, c, SQL_DROP_HAND_OVER, device_id, util_now())) == NULL)
        return STORE_ERR;
    int64_t heir = 0;
    if ((rc = store__step_row(s, c, st, "device hand over")) == STORE_OK)
        heir = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    d->handed_over = 1;
    return drop_exec(s, c, SQL_DROP_SHADOW, device_id, heir, NULL);
}

int
store__device_drop(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                   const struct store__device_reg *o, struct store_device_dropped *d)
{
    int rc;

    memset(d, 0, sizeof(*d));
    if (o->shadow) {
        /* Only the tenant's own marks: the registry row and its records are another's. */
        if ((rc = drop_exec(s, c, SQL_DROP_TRANSFERS, device_id, tenant_id, NULL)) != STORE_OK ||
            (rc = drop_exec(s, c, SQL_DROP_TAGS, device_id, tenant_id, NULL)) != STORE_OK)
            return rc;
        return drop_exec(s, c, SQL_DROP_SHADOW, device_id, tenant_id, NULL);
    }
    if ((rc = drop_registry_row(s, c, tenant_id, device_id, d)) != STORE_OK)
        return rc;
    /* A device of a group leaves its deployments' waves: a new version of the director's answers
     * (docs/update.md section 4). */
    return o->group_id > 0 ? store__director_bump(s, c, tenant_id, util_now(), NULL) : STORE_OK;
}

int
store_device_delete(store *s, int64_t tenant_id, const char *device_id, const struct store_actor *a,
                    struct store_device_dropped *out)
{
    struct store__device_reg o;
    struct store_device_dropped d;
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    memset(&d, 0, sizeof(d));
    if (!store__device_id_ok(device_id) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__device_reg(s, c, tenant_id, device_id, &o)) != STORE_OK ||
        (rc = store__device_drop(s, c, tenant_id, device_id, &o, &d)) != STORE_OK)
        goto out;
    /* Neither what was handed over nor the counts (a former owner's records are among them) are in
     * the detail: the tenant must not learn what other tenants hold. */
    rc = store__audit(s, c, tenant_id, a, "device.delete", "device", 0, device_id,
                      json_pack("{s:b}", "was_claimed", o.tenant_id != 0));
out:
    rc = store__device_finish(s, c, rc, device_id, NULL, NULL);
    if (rc == STORE_OK && out != NULL)
        *out = d;
    return rc;
}
