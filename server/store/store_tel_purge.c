/* store_tel_purge: retention of telemetry (store.h store_report_purge): old reports go in short
 * transactions, each device remembering up to which report_id they went (so that a report sent
 * again after its purge is a duplicate, store_tel_ingest.c), and old crash-hour marks. */
#include "store_tel.h"

#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Up to ?2 reports received before ?1, tenant by tenant through the index by (tenant, received_at)
 * (CROSS JOIN keeps tenants the outer loop, so each tenant is one index range, never a scan), so a
 * report stamped in the future (a clock that jumped) never holds up older ones. */
static const char SQL_REPORT_PURGE[] =
    "DELETE FROM telemetry_reports WHERE id IN (SELECT r.id FROM tenants t CROSS JOIN "
    "telemetry_reports r WHERE r.tenant_id = t.id AND r.received_at < ?1 LIMIT ?2) "
    "RETURNING device_id, report_id";
static const char SQL_PURGED_THROUGH[] =
    "UPDATE telemetry_devices SET purged_through = max(purged_through, ?2) WHERE device_id = ?1";
static const char SQL_CRASH_HOURS_PURGE[] =
    "DELETE FROM telemetry_crash_hours WHERE (tenant_id, hour, device_id) IN "
    "(SELECT tenant_id, hour, device_id FROM telemetry_crash_hours WHERE hour < ?1 LIMIT ?2)";

/* --- Retention --- */

/* The highest report_id deleted per device in one purge batch. */
struct purge_mark {
    char device_id[PROTO_HASH_HEX + 1];
    int64_t max;
};

/* Raises each device's purged_through to the highest report_id of its deleted reports. */
static int
mark_purged(store *s, struct conn *c, const struct purge_mark *m, size_t n)
{
    int rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *st = store__prep(s, c, SQL_PURGED_THROUGH);
        if (st == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(s, c, st,
                                  store__tel_bind_static(st, 1, m[i].device_id) |
                                      sqlite3_bind_int64(st, 2, m[i].max),
                                  "purge mark");
    }
    return rc;
}

/* One batch of old reports, and the devices' marks of what went, in one transaction. */
static int
purge_report_batch(store *s, int64_t before, int max_rows, int *purged)
{
    struct conn *c = store__take(s);
    struct purge_mark *m = calloc((size_t)max_rows, sizeof(*m));
    size_t n = 0;
    int deleted = 0, step, rc = STORE_ERR;
    sqlite3_stmt *st;

    if (m == NULL || store__begin_light(s, c) != STORE_OK ||
        (st = store__prep(s, c, SQL_REPORT_PURGE)) == NULL ||
        store__bound(s, c, sqlite3_bind_int64(st, 1, before) | sqlite3_bind_int(st, 2, max_rows)) !=
            STORE_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *dev = (const char *)sqlite3_column_text(st, 0);
        int64_t id = sqlite3_column_int64(st, 1);
        size_t i = 0;
        while (i < n && strcmp(m[i].device_id, dev != NULL ? dev : "") != 0)
            i++;
        if (i == n && n < (size_t)max_rows)
            snprintf(m[n++].device_id, sizeof(m->device_id), "%s", dev != NULL ? dev : "");
        if (i < n && id > m[i].max)
            m[i].max = id;
        deleted++;
    }
    sqlite3_reset(st);
    if (step != SQLITE_DONE) {
        rc = store__db_error(s, c, "report purge");
        goto out;
    }
    rc = mark_purged(s, c, m, n);
    *purged = deleted;
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    free(m);
    return rc;
}

int
store_report_purge(store *s, int64_t before, int max_rows, int *purged)
{
    int dummy;
    if (purged == NULL)
        purged = &dummy;
    *purged = 0;
    if (max_rows < 1 || max_rows > PURGE_MAX)
        return STORE_INVALID;
    int rc = purge_report_batch(s, before, max_rows, purged);
    if (rc != STORE_OK)
        return rc;
    /* crash-hour marks only matter for the current hour: two hours back is old enough */
    int64_t now = util_now();
    return store__purge(s, SQL_CRASH_HOURS_PURGE, now - now % STORE_TEL_HOUR - STORE_TEL_HOUR,
                        max_rows, NULL, "crash hour purge");
}
