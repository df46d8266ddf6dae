/* store_tenant_delete: deleting a tenant with everything it holds, in one transaction (store.h
 * store_tenant_delete). Its own devices go as store_device_delete deletes them (a key another
 * tenant also registered is handed to that tenant); then every row of the tenant, table by table,
 * children before parents (the foreign keys are on). The tables are listed here once: a new
 * tenant-scoped table must be added to TENANT_TABLES (tests/unit/test_store_devices.c checks that
 * no row of a deleted tenant is left in any table with a tenant_id column). */
#include "store.h"
#include "store_devices_int.h"
#include "store_int.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_OWN_DEVICES[] =
    "SELECT id, coalesce(tenant_id, 0) FROM devices WHERE registered_by = ?1 ORDER BY id";

#define BY_BUCKET "bucket_id IN (SELECT id FROM failure_buckets WHERE tenant_id = ?1)"
#define BY_DEPLOYMENT "deployment_id IN (SELECT id FROM deployments WHERE tenant_id = ?1)"
/* ?1 = the tenant. Run once each (not cached: a tenant is deleted rarely, and the statement cache
 * holds the daemon's statements). */
/* NOLINTBEGIN(bugprone-suspicious-missing-comma): BY_BUCKET and BY_DEPLOYMENT are concatenated */
static const char *const TENANT_TABLES[] = {
    "DELETE FROM device_tags WHERE tenant_id = ?1",
    "DELETE FROM device_transfers WHERE tenant_id = ?1",
    "DELETE FROM device_shadows WHERE tenant_id = ?1",
    "DELETE FROM update_attempts WHERE tenant_id = ?1 OR " BY_DEPLOYMENT,
    "DELETE FROM deployment_images WHERE tenant_id = ?1 OR " BY_DEPLOYMENT,
    "DELETE FROM deployments WHERE tenant_id = ?1",
    "DELETE FROM director_generations WHERE tenant_id = ?1",
    "DELETE FROM tuf_meta WHERE tenant_id = ?1",
    "DELETE FROM images WHERE tenant_id = ?1",
    "DELETE FROM telemetry_reports WHERE tenant_id = ?1",
    "DELETE FROM bucket_devices WHERE " BY_BUCKET,
    "DELETE FROM bucket_versions WHERE " BY_BUCKET,
    "DELETE FROM bucket_stats WHERE " BY_BUCKET,
    "DELETE FROM failure_flags WHERE tenant_id = ?1",
    "DELETE FROM failure_buckets WHERE tenant_id = ?1",
    "DELETE FROM telemetry_devices WHERE tenant_id = ?1",
    "DELETE FROM telemetry_usage WHERE tenant_id = ?1",
    "DELETE FROM telemetry_versions WHERE tenant_id = ?1",
    "DELETE FROM telemetry_fleet WHERE tenant_id = ?1",
    "DELETE FROM telemetry_crash_hours WHERE tenant_id = ?1",
    "DELETE FROM attestations WHERE tenant_id = ?1",
    "DELETE FROM security_minimums WHERE tenant_id = ?1",
    "DELETE FROM reference_values WHERE scope = ?1",
    "DELETE FROM device_groups WHERE tenant_id = ?1",
    "DELETE FROM products WHERE tenant_id = ?1",
    "DELETE FROM api_tokens WHERE tenant_id = ?1",
    "DELETE FROM tenant_cas WHERE tenant_id = ?1",
    "DELETE FROM audit_log WHERE tenant_id = ?1",
    "DELETE FROM tenants WHERE id = ?1",
};
/* NOLINTEND(bugprone-suspicious-missing-comma) */

struct own_device {
    char id[65];
    int claimed;
};

/* The tenant's devices rows (claimed or not) into *out (malloc'd) and *n. */
static int
own_devices(store *s, struct conn *c, int64_t tenant_id, struct own_device **out, size_t *n)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_OWN_DEVICES);
    size_t cap = 0;
    int rc = st != NULL ? STORE_OK : STORE_ERR, step = SQLITE_DONE;

    *out = NULL;
    *n = 0;
    if (rc == STORE_OK)
        rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id));
    while (rc == STORE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(st, 0);
        if (*n == cap) {
            void *p = realloc(*out, (cap = cap ? 2 * cap : 64) * sizeof(**out));
            if (p == NULL) {
                rc = STORE_ERR;
                break;
            }
            *out = p;
        }
        snprintf((*out)[*n].id, sizeof((*out)[*n].id), "%s", id != NULL ? (const char *)id : "");
        (*out)[(*n)++].claimed = sqlite3_column_int64(st, 1) != 0;
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = store__db_error(s, c, "tenant delete devices");
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* Runs one statement of TENANT_TABLES. */
static int
tenant_table_delete(store *s, struct conn *c, const char *sql, int64_t tenant_id)
{
    sqlite3_stmt *st = NULL;
    int rc = STORE_ERR;

    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = store__db_error(s, c, "tenant delete prepare");
        goto out;
    }
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id))) == STORE_OK)
        rc = store__step_done(s, c, st, "tenant delete");
out:
    sqlite3_finalize(st);
    return rc;
}

int
store_tenant_delete(store *s, int64_t tenant_id, int64_t *devices)
{
    struct own_device *own = NULL;
    struct store_device_dropped d;
    struct conn *c = store__take(s);
    size_t n = 0;
    int rc;

    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK ||
        (rc = own_devices(s, c, tenant_id, &own, &n)) != STORE_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        /* No group: the tenant's director answers go with it, nothing to bump. */
        struct store__device_reg o = {own[i].claimed ? tenant_id : 0, 0, 0, 0};
        if ((rc = store__device_drop(s, c, tenant_id, own[i].id, &o, &d)) != STORE_OK)
            goto out;
    }
    for (size_t i = 0; i < sizeof(TENANT_TABLES) / sizeof(TENANT_TABLES[0]); i++)
        if ((rc = tenant_table_delete(s, c, TENANT_TABLES[i], tenant_id)) != STORE_OK)
            goto out;
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    /* After the commit (store__device_changed): the devices' certificates stop working at once. */
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        store__device_changed(s, own[i].id);
    if (rc == STORE_OK && devices != NULL)
        *devices = (int64_t)n;
    free(own);
    return rc;
}
