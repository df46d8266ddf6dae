/* store_tel_ingest: the telemetry writer's group commit (store.h store_telemetry_ingest;
 * docs/telemetry.md): a whole group of reports in one transaction on the writer's own connection
 * (store_tel_writer.c), made durable later by store_telemetry_sync: one flush for thousands of
 * reports. A report is looked up by (device, report_id) first, so a duplicate touches no aggregate;
 * the UNIQUE constraint backs this up. Aggregates (buckets, usage per image version and hour, the
 * fleet's, per device) are summed in memory per group (store_agg.h) and written once per key. */
#include "store_tel.h"

#include "log.h"
#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INGEST_MAX 100000 /* reports per call */

/* --- SQL --- */

static const char SQL_TEL_EXISTS[] =
    "SELECT 1 FROM telemetry_reports WHERE device_id = ?1 AND report_id = ?2";
/* A bucket by signature, created when new (the no-op update makes RETURNING answer for an existing
 * one too). */
static const char SQL_TEL_BUCKET_UPSERT[] =
    "INSERT INTO failure_buckets (tenant_id, signature, component, reason, pc, frames, first_seen) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (tenant_id, signature) DO UPDATE SET tenant_id = excluded.tenant_id RETURNING id";
/* Its counters, created when new; answers the newest stored report (the samples chain's head). */
static const char SQL_TEL_BUCKET_STATS_ADD[] =
    "INSERT INTO bucket_stats (bucket_id, last_seen) VALUES (?1, ?2) "
    "ON CONFLICT (bucket_id) DO UPDATE SET bucket_id = excluded.bucket_id RETURNING last_report";
static const char SQL_TEL_BUCKET_DEVICE[] =
    "INSERT OR IGNORE INTO bucket_devices (bucket_id, device_id, first_seen) VALUES (?1, ?2, ?3)";
/* The group's reports (?2), new devices (?3) and newest report (?5) of a bucket, ?4 the time. */
static const char SQL_TEL_BUCKET_COUNTS[] =
    "UPDATE bucket_stats SET count = count + ?2, devices = devices + ?3, "
    "last_seen = max(last_seen, ?4), last_report = max(last_report, ?5), "
    "devices_first_hour = devices_first_hour + CASE WHEN ?4 < "
    "(SELECT first_seen FROM failure_buckets WHERE id = ?1) + 3600 THEN ?3 ELSE 0 END "
    "WHERE bucket_id = ?1";
static const char SQL_TEL_BUCKET_VERSION[] =
    "INSERT INTO bucket_versions (bucket_id, image_version, count, first_seen, last_seen) "
    "VALUES (?1, ?2, ?4, ?3, ?3) ON CONFLICT (bucket_id, image_version) DO UPDATE SET "
    "count = count + excluded.count, last_seen = max(last_seen, excluded.last_seen)";
static const char SQL_TEL_REPORT_ADD[] =
    "INSERT INTO telemetry_reports (tenant_id, device_id, report_id, type, boot_id, uptime_s, "
    "group_id, product_id, component, image_version, reason, pc, lr, return_addresses, "
    "fault_registers, free_memory, message, period_s, images, counters, previous_boot_id, "
    "received_at, bucket_id, prev_in_bucket) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
    "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24) "
    "ON CONFLICT (device_id, report_id) DO NOTHING";
/* Up to which report_id retention deleted a device's reports (each was stored once). */
static const char SQL_TEL_PURGED_THROUGH[] =
    "SELECT purged_through FROM telemetry_devices WHERE device_id = ?1";
static const char SQL_TEL_USAGE[] =
    "INSERT INTO telemetry_usage (tenant_id, component, image_version, hour, device_seconds, "
    "crashes) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT (tenant_id, component, hour, image_version) DO UPDATE SET "
    "device_seconds = device_seconds + excluded.device_seconds, "
    "crashes = crashes + excluded.crashes";
static const char SQL_TEL_VERSION[] =
    "INSERT INTO telemetry_versions (tenant_id, component, image_version, first_seen, "
    "device_seconds, crashes) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT (tenant_id, component, image_version) DO UPDATE SET "
    "device_seconds = device_seconds + excluded.device_seconds, "
    "crashes = crashes + excluded.crashes";
static const char SQL_TEL_FLEET[] =
    "INSERT INTO telemetry_fleet (tenant_id, hour, device_seconds, crashes, crash_hours) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id, hour) DO UPDATE SET "
    "device_seconds = device_seconds + excluded.device_seconds, "
    "crashes = crashes + excluded.crashes, crash_hours = crash_hours + excluded.crash_hours";
static const char SQL_TEL_CRASH_HOUR[] =
    "INSERT OR IGNORE INTO telemetry_crash_hours (tenant_id, hour, device_id) VALUES (?1, ?2, ?3)";
/* A device that changed tenants starts its counters again. */
static const char SQL_TEL_DEVICE_UPSERT[] =
    "INSERT INTO telemetry_devices (device_id, tenant_id, reports, last_upload) "
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device_id) DO UPDATE SET "
    "dropped = CASE WHEN tenant_id = excluded.tenant_id THEN dropped ELSE 0 END, "
    "dropped_through = CASE WHEN tenant_id = excluded.tenant_id THEN dropped_through ELSE 0 END, "
    "purged_through = CASE WHEN tenant_id = excluded.tenant_id THEN purged_through ELSE 0 END, "
    "reports = CASE WHEN tenant_id = excluded.tenant_id THEN reports + excluded.reports "
    "ELSE excluded.reports END, "
    "tenant_id = excluded.tenant_id, last_upload = excluded.last_upload";
/* An upload's dropped count, once per upload (store.h struct store_upload). */
static const char SQL_TEL_DEVICE_DROPPED[] =
    "UPDATE telemetry_devices SET dropped = dropped + ?3, dropped_through = ?4 "
    "WHERE device_id = ?1 AND tenant_id = ?2 AND dropped_through < ?4";

/* --- Ingest --- */

/* STORE_OK when (device, report_id) is stored already (in the database or earlier in this
 * transaction), STORE_NOTFOUND when not. */
static int
report_exists(store *s, struct conn *c, const struct store_report *r)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TEL_EXISTS);
    if (st == NULL)
        return STORE_ERR;
    int rc = store__bound(
        s, c, store__bind_text(st, 1, r->device_id) | sqlite3_bind_int64(st, 2, r->report_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "report lookup");
    sqlite3_reset(st);
    return rc;
}

/* The first n normalised addresses of ra as a compact JSON array text (what json_dumps with
 * JSON_COMPACT gives: the addresses need no escaping) into out. */
#define ADDR_ARRAY_BUF (2 + PROTO_TEL_FRAMES_MAX * (STORE_TEL_ADDR_LEN + 2))
static const char *
addr_array(const char (*ra)[STORE_TEL_ADDR_LEN], size_t n, char out[ADDR_ARRAY_BUF])
{
    size_t o = 0;
    out[o++] = '[';
    for (size_t i = 0; i < n && i < PROTO_TEL_FRAMES_MAX; i++) {
        size_t len = strnlen(ra[i], STORE_TEL_ADDR_LEN - 1);
        if (i > 0)
            out[o++] = ',';
        out[o++] = '"';
        memcpy(out + o, ra[i], len);
        o += len;
        out[o++] = '"';
    }
    out[o++] = ']';
    out[o] = '\0';
    return out;
}

/* The tables of a group and the meaning of their counts. */
struct group {
    struct store_agg buckets; /* tenant, signature text: id, last; n1 reports, n2 new devices */
    struct store_agg bdevs;   /* bucket id, device: id, s1 device; n1 the index in buckets */
    struct store_agg bvers;   /* bucket id, version: id, s1 version; n1 reports */
    struct store_agg chours;  /* tenant, device (the hour is the group's): s1 device */
    struct store_agg fleet;   /* tenant: n1 seconds, n2 crashes, n3 crash hours */
    struct store_agg usage;   /* tenant, component, version: s1, s2; n1 seconds, n2 crashes */
    struct store_agg devs;    /* device: tenant, s1 device; n2 reports */
    struct store_agg purged;  /* device: n1 its purged_through, read once per group */
    struct store_agg *known;  /* the writer's cache of committed buckets (store_tel.h) */
};

static int
oom(void)
{
    log_error("msg=\"telemetry ingest: out of memory\"");
    return STORE_ERR;
}

/* The crash's bucket, whose signature is sig, created when new (with its counters): its id and
 * newest stored report into b. */
static int
bucket_add(store *s, struct conn *c, const struct store_report *r, const char *sig, int64_t now,
           struct store_agg_ent *b)
{
    char frames[ADDR_ARRAY_BUF];
    sqlite3_stmt *st = store__prep(s, c, SQL_TEL_BUCKET_UPSERT), *stats = NULL;
    int rc = STORE_ERR, step;

    if (st == NULL)
        goto out;
    addr_array((const char(*)[STORE_TEL_ADDR_LEN])r->ra,
               r->nra < PROTO_TEL_SIG_FRAMES ? r->nra : PROTO_TEL_SIG_FRAMES, frames);
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, r->tenant_id) | store__bind_text(st, 2, sig) |
                          store__bind_text(st, 3, r->component) |
                          store__bind_text(st, 4, r->reason) | store__bind_text(st, 5, r->pc) |
                          store__bind_text(st, 6, frames) | sqlite3_bind_int64(st, 7, now));
    if (rc != STORE_OK)
        goto out;
    if ((step = sqlite3_step(st)) != SQLITE_ROW) {
        rc = store__write_error(s, c, step, "bucket upsert");
        goto out;
    }
    b->id = sqlite3_column_int64(st, 0);
    if ((step = sqlite3_step(st)) != SQLITE_DONE) {
        rc = store__write_error(s, c, step, "bucket upsert");
        goto out;
    }
    rc = STORE_ERR;
    if ((stats = store__prep(s, c, SQL_TEL_BUCKET_STATS_ADD)) == NULL)
        goto out;
    rc =
        store__bound(s, c, sqlite3_bind_int64(stats, 1, b->id) | sqlite3_bind_int64(stats, 2, now));
    if (rc != STORE_OK)
        goto out;
    if ((step = sqlite3_step(stats)) != SQLITE_ROW) {
        rc = store__write_error(s, c, step, "bucket stats");
        goto out;
    }
    b->last = sqlite3_column_int64(stats, 0);
    if ((step = sqlite3_step(stats)) != SQLITE_DONE)
        rc = store__write_error(s, c, step, "bucket stats");
out:
    if (st != NULL)
        sqlite3_reset(st);
    if (stats != NULL)
        sqlite3_reset(stats);
    return rc;
}

/* Inserts the report unless (device, report_id) is stored already: *added 1 when inserted. A
 * crash goes to bucket_id, after the bucket's report prev (0: none). */
static int
report_insert(store *s, struct conn *c, const struct store_report *r, int64_t now,
              int64_t bucket_id, int64_t prev, int *added)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TEL_REPORT_ADD);
    /* bound without a copy: it must live until the statement has run */
    char ra[ADDR_ARRAY_BUF]; // cppcheck-suppress variableScope
    int crash = r->type == STORE_REPORT_CRASH, hb = r->type == STORE_REPORT_HEARTBEAT;

    *added = 0;
    if (st == NULL)
        return STORE_ERR;
    int b = sqlite3_bind_int64(st, 1, r->tenant_id) | store__tel_bind_static(st, 2, r->device_id) |
            sqlite3_bind_int64(st, 3, r->report_id) |
            store__tel_bind_static(st, 4, proto_tel_type_name((int)r->type)) |
            store__tel_bind_static(st, 5, r->boot_id) | sqlite3_bind_int64(st, 6, r->uptime_s) |
            sqlite3_bind_int64(st, 7, r->group_id) | sqlite3_bind_int64(st, 8, r->product_id) |
            sqlite3_bind_int64(st, 22, now) | store__bind_id(st, 23, crash ? bucket_id : 0) |
            store__bind_id(st, 24, crash ? prev : 0);
    if (crash) {
        addr_array((const char(*)[STORE_TEL_ADDR_LEN])r->ra, r->nra, ra);
        b |= store__tel_bind_static(st, 9, r->component) |
             store__tel_bind_static(st, 10, r->image_version) |
             store__tel_bind_static(st, 12, r->pc) | store__tel_bind_static(st, 13, r->lr) |
             store__tel_bind_static(st, 14, ra) |
             store__tel_bind_static(st, 15, r->fault_registers) |
             (r->message != NULL
                  ? sqlite3_bind_text(st, 17, r->message, (int)r->message_len, SQLITE_STATIC)
                  : SQLITE_OK);
    }
    if (crash || r->type == STORE_REPORT_REBOOT)
        b |= store__tel_bind_static(st, 11, r->reason);
    if (crash || hb)
        b |= sqlite3_bind_int64(st, 16, r->free_memory);
    if (r->period_s > 0) /* a heartbeat's, or a crash's since the last heartbeat */
        b |= sqlite3_bind_int64(st, 18, r->period_s) | store__tel_bind_static(st, 19, r->images);
    if (hb)
        b |= store__tel_bind_static(st, 20, r->counters);
    if (r->type == STORE_REPORT_REBOOT)
        b |= store__tel_bind_static(st, 21, r->previous_boot_id);
    int rc = store__tel_run_write(s, c, st, b, "report insert");
    if (rc == STORE_OK)
        *added = sqlite3_changes(c->db) > 0;
    return rc;
}

/* Counts seconds and crashes of (component, version) in the group's usage. */
static int
usage_count(struct group *g, int64_t tenant_id, const char *component, const char *version,
            int64_t seconds, int64_t crashes)
{
    char k[HMAP_KEY_MAX];
    size_t idx, klen = hmap_key_i64(k, 0, tenant_id);
    klen = hmap_key_str(k, hmap_key_str(k, klen, component), version);
    int added;
    struct store_agg_ent *e = store__agg_get(&g->usage, k, klen, &added, &idx);
    if (e == NULL)
        return oom();
    if (added) {
        e->tenant_id = tenant_id;
        e->s1 = component;
        e->s2 = version;
    }
    e->n1 += seconds;
    e->n2 += crashes;
    return STORE_OK;
}

static struct store_agg_ent *
fleet_entry(struct group *g, int64_t tenant_id)
{
    char k[HMAP_KEY_MAX];
    size_t klen = hmap_key_i64(k, 0, tenant_id), idx;
    int added;
    struct store_agg_ent *e = store__agg_get(&g->fleet, k, klen, &added, &idx);
    if (e != NULL)
        e->tenant_id = tenant_id;
    return e;
}

/* Counts the device-seconds of a heartbeat, or of a crash since its boot's last heartbeat, for the
 * fleet and each image version that ran. */
static int
period_count(struct group *g, const struct store_report *r)
{
    struct store_agg_ent *e = fleet_entry(g, r->tenant_id);
    int rc = e != NULL ? STORE_OK : oom();
    if (e != NULL)
        e->n1 += r->period_s;
    for (size_t i = 0; rc == STORE_OK && i < r->nimages; i++)
        rc = usage_count(g, r->tenant_id, r->image_component[i], r->image_versions[i], r->period_s,
                         0);
    return rc;
}

/* Counts a stored crash of bucket bidx (index in g->buckets) in the group's aggregates. */
static int
crash_count(struct group *g, const struct store_report *r, size_t bidx)
{
    char k[HMAP_KEY_MAX];
    int64_t bucket_id = g->buckets.e[bidx].id;
    size_t klen = hmap_key_str(k, hmap_key_i64(k, 0, bucket_id), r->device_id), idx;
    int added;
    struct store_agg_ent *e = store__agg_get(&g->bdevs, k, klen, &added, &idx);
    if (e == NULL)
        return oom();
    if (added) {
        e->id = bucket_id;
        e->s1 = r->device_id;
        e->n1 = (int64_t)bidx;
    }
    klen = hmap_key_str(k, hmap_key_i64(k, 0, bucket_id), r->image_version);
    if ((e = store__agg_get(&g->bvers, k, klen, &added, &idx)) == NULL)
        return oom();
    if (added) {
        e->id = bucket_id;
        e->s1 = r->image_version;
    }
    e->n1++;
    klen = hmap_key_str(k, hmap_key_i64(k, 0, r->tenant_id), r->device_id);
    if ((e = store__agg_get(&g->chours, k, klen, &added, &idx)) == NULL)
        return oom();
    if (added) {
        e->tenant_id = r->tenant_id;
        e->s1 = r->device_id;
    }
    if ((e = fleet_entry(g, r->tenant_id)) == NULL)
        return oom();
    e->n2++;
    int rc = usage_count(g, r->tenant_id, r->component, r->image_version, 0, 1);
    return rc == STORE_OK && r->period_s > 0 ? period_count(g, r) : rc;
}

/* How far below a device's purged_through a report counts as one retention deleted. A device back
 * after months re-sends what it sent last, just below the mark; a device that lost its ID state and
 * starts again lower down (firmware-ref: at its clock << 20, or at random) must not have its new
 * reports taken for old ones. */
#define PURGED_WINDOW ((int64_t)1 << 20)

/* STORE_OK when retention deleted reports of the device up to r's report_id or beyond (r was stored
 * once already: within PURGED_WINDOW below the mark), STORE_NOTFOUND when not. The device's mark is
 * read once per group. */
static int
report_purged(store *s, struct conn *c, struct group *g, const struct store_report *r)
{
    char k[HMAP_KEY_MAX];
    size_t klen = hmap_key_str(k, 0, r->device_id), idx;
    int added;
    struct store_agg_ent *e = store__agg_get(&g->purged, k, klen, &added, &idx);
    if (e == NULL)
        return oom();
    if (added) {
        sqlite3_stmt *st = store__prep(s, c, SQL_TEL_PURGED_THROUGH);
        if (st == NULL)
            return STORE_ERR;
        int rc = store__bound(s, c, store__bind_text(st, 1, r->device_id));
        if (rc == STORE_OK)
            rc = store__step_row(s, c, st, "purge mark lookup");
        e->n1 = rc == STORE_OK ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
    }
    return r->report_id <= e->n1 && r->report_id > e->n1 - PURGED_WINDOW ? STORE_OK
                                                                         : STORE_NOTFOUND;
}

/* Stores one report unless it is a duplicate (sets r->result) and counts it in the group. */
static int
ingest_one(store *s, struct conn *c, struct group *g, struct store_report *r, int64_t now)
{
    struct store_agg_ent *b = NULL;
    size_t bidx = 0;
    int rc, added;

    if ((rc = report_purged(s, c, g, r)) != STORE_NOTFOUND) {
        if (rc == STORE_OK)
            r->result = STORE_REPORT_DUPLICATE;
        return rc;
    }
    if (r->type == STORE_REPORT_CRASH) {
        char k[HMAP_KEY_MAX];
        size_t klen = hmap_key_i64(k, 0, r->tenant_id);
        int n = store__tel_sig_text(r->component, r->reason, r->pc,
                                    (const char(*)[STORE_TEL_ADDR_LEN])r->ra, r->nra, k + klen,
                                    HMAP_KEY_MAX - klen);
        if (n < 0)
            return STORE_ERR;
        if ((b = store__agg_get(&g->buckets, k, klen + (size_t)n, &added, &bidx)) == NULL)
            return oom();
        if (b->id == 0) {
            const struct store_agg_ent *known = store__agg_find(g->known, k, klen + (size_t)n);
            if (known != NULL) {
                b->id = known->id;
                b->last = known->last;
            }
        }
        if (b->id == 0) {
            /* An unknown bucket is created only for a new report: a report id sent again with
             * other contents (a device whose ids restarted) must not leave an empty bucket. */
            if ((rc = report_exists(s, c, r)) == STORE_OK) {
                r->result = STORE_REPORT_DUPLICATE;
                return STORE_OK;
            }
            if (rc != STORE_NOTFOUND)
                return rc;
            char sig[STORE_TEL_SIG_HEX + 1];
            store__tel_sig_digest(k + klen, (size_t)n, sig);
            if ((rc = bucket_add(s, c, r, sig, now, b)) != STORE_OK)
                return rc;
        }
    }
    if ((rc = report_insert(s, c, r, now, b != NULL ? b->id : 0, b != NULL ? b->last : 0,
                            &added)) != STORE_OK)
        return rc;
    if (!added) {
        r->result = STORE_REPORT_DUPLICATE;
        return STORE_OK;
    }
    r->result = STORE_REPORT_STORED;
    if (b != NULL) {
        b->n1++;
        b->last = sqlite3_last_insert_rowid(c->db);
        return crash_count(g, r, bidx);
    }
    if (r->type == STORE_REPORT_HEARTBEAT)
        return period_count(g, r);
    return STORE_OK;
}

/* The device's counter of stored reports after uploads. */
static int
device_counters(store *s, struct conn *c, const struct store_agg_ent *d, int64_t now)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TEL_DEVICE_UPSERT);
    if (st == NULL)
        return STORE_ERR;
    return store__tel_run_write(
        s, c, st,
        store__tel_bind_static(st, 1, d->s1) | sqlite3_bind_int64(st, 2, d->tenant_id) |
            sqlite3_bind_int64(st, 3, d->n2) | sqlite3_bind_int64(st, 4, now),
        "device counters");
}

/* Adds the uploads' dropped counts, each once (after the device rows exist). Rare: a device sends
 * one only after its queue overflowed. */
static int
uploads_dropped(store *s, struct conn *c, const struct store_upload *up, size_t nup)
{
    int rc = STORE_OK;
    for (size_t i = 0; i < nup && rc == STORE_OK; i++) {
        if (up[i].dropped == 0 || up[i].last_report_id < 1)
            continue;
        sqlite3_stmt *st = store__prep(s, c, SQL_TEL_DEVICE_DROPPED);
        if (st == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(s, c, st,
                                  store__tel_bind_static(st, 1, up[i].device_id) |
                                      sqlite3_bind_int64(st, 2, up[i].tenant_id) |
                                      sqlite3_bind_int64(st, 3, up[i].dropped) |
                                      sqlite3_bind_int64(st, 4, up[i].last_report_id),
                                  "device dropped count");
    }
    return rc;
}

/* Counts the uploads per device. The counters of a device that changed tenants within the group
 * are written at the change, so that they start again as they would upload by upload. */
static int
uploads_count(store *s, struct conn *c, struct group *g, struct store_report *const *reports,
              const struct store_upload *up, size_t nup, int64_t now)
{
    for (size_t i = 0; i < nup; i++) {
        int64_t stored = 0;
        for (size_t k = up[i].first; k < up[i].first + up[i].nreports; k++)
            stored += reports[k]->result == STORE_REPORT_STORED;
        char k[HMAP_KEY_MAX];
        size_t klen = hmap_key_str(k, 0, up[i].device_id), idx;
        int added;
        struct store_agg_ent *d = store__agg_get(&g->devs, k, klen, &added, &idx);
        if (d == NULL)
            return oom();
        if (!added && d->tenant_id != up[i].tenant_id) {
            int rc = device_counters(s, c, d, now);
            if (rc != STORE_OK)
                return rc;
            added = 1;
        }
        if (added) {
            d->tenant_id = up[i].tenant_id;
            d->s1 = up[i].device_id;
            d->n2 = 0;
        }
        d->n2 += stored;
    }
    return STORE_OK;
}

/* Writes the group's aggregates: one statement (or two) per distinct key. */
static int
group_apply(store *s, struct conn *c, struct group *g, int64_t now)
{
    int64_t hour = now - now % STORE_TEL_HOUR;
    sqlite3_stmt *st;
    int rc = STORE_OK;

    for (size_t i = 0; i < g->bdevs.n && rc == STORE_OK; i++) {
        const struct store_agg_ent *e = &g->bdevs.e[i];
        if ((st = store__prep(s, c, SQL_TEL_BUCKET_DEVICE)) == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(s, c, st,
                                  sqlite3_bind_int64(st, 1, e->id) |
                                      store__tel_bind_static(st, 2, e->s1) |
                                      sqlite3_bind_int64(st, 3, now),
                                  "bucket device");
        if (rc == STORE_OK && sqlite3_changes(c->db) > 0)
            g->buckets.e[e->n1].n2++;
    }
    for (size_t i = 0; i < g->buckets.n && rc == STORE_OK; i++) {
        const struct store_agg_ent *e = &g->buckets.e[i];
        if (e->id == 0 || e->n1 == 0) /* no report of it stored */
            continue;
        if ((st = store__prep(s, c, SQL_TEL_BUCKET_COUNTS)) == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(
            s, c, st,
            sqlite3_bind_int64(st, 1, e->id) | sqlite3_bind_int64(st, 2, e->n1) |
                sqlite3_bind_int64(st, 3, e->n2) | sqlite3_bind_int64(st, 4, now) |
                sqlite3_bind_int64(st, 5, e->last),
            "bucket counts");
    }
    for (size_t i = 0; i < g->bvers.n && rc == STORE_OK; i++) {
        const struct store_agg_ent *e = &g->bvers.e[i];
        if ((st = store__prep(s, c, SQL_TEL_BUCKET_VERSION)) == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(
            s, c, st,
            sqlite3_bind_int64(st, 1, e->id) | store__tel_bind_static(st, 2, e->s1) |
                sqlite3_bind_int64(st, 3, now) | sqlite3_bind_int64(st, 4, e->n1),
            "bucket version");
    }
    for (size_t i = 0; i < g->chours.n && rc == STORE_OK; i++) {
        const struct store_agg_ent *e = &g->chours.e[i];
        if ((st = store__prep(s, c, SQL_TEL_CRASH_HOUR)) == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(s, c, st,
                                  sqlite3_bind_int64(st, 1, e->tenant_id) |
                                      sqlite3_bind_int64(st, 2, hour) |
                                      store__tel_bind_static(st, 3, e->s1),
                                  "crash hour");
        if (rc == STORE_OK && sqlite3_changes(c->db) > 0) {
            struct store_agg_ent *f = fleet_entry(g, e->tenant_id);
            if (f == NULL)
                return oom();
            f->n3++;
        }
    }
    for (size_t i = 0; i < g->fleet.n && rc == STORE_OK; i++) {
        const struct store_agg_ent *e = &g->fleet.e[i];
        if ((st = store__prep(s, c, SQL_TEL_FLEET)) == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(
            s, c, st,
            sqlite3_bind_int64(st, 1, e->tenant_id) | sqlite3_bind_int64(st, 2, hour) |
                sqlite3_bind_int64(st, 3, e->n1) | sqlite3_bind_int64(st, 4, e->n2) |
                sqlite3_bind_int64(st, 5, e->n3),
            "fleet upsert");
    }
    for (size_t i = 0; i < g->usage.n && rc == STORE_OK; i++) {
        const struct store_agg_ent *e = &g->usage.e[i];
        if ((st = store__prep(s, c, SQL_TEL_USAGE)) == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(
            s, c, st,
            sqlite3_bind_int64(st, 1, e->tenant_id) | store__tel_bind_static(st, 2, e->s1) |
                store__tel_bind_static(st, 3, e->s2) | sqlite3_bind_int64(st, 4, hour) |
                sqlite3_bind_int64(st, 5, e->n1) | sqlite3_bind_int64(st, 6, e->n2),
            "usage upsert");
        if (rc != STORE_OK)
            break;
        if ((st = store__prep(s, c, SQL_TEL_VERSION)) == NULL)
            return STORE_ERR;
        rc = store__tel_run_write(
            s, c, st,
            sqlite3_bind_int64(st, 1, e->tenant_id) | store__tel_bind_static(st, 2, e->s1) |
                store__tel_bind_static(st, 3, e->s2) | sqlite3_bind_int64(st, 4, now) |
                sqlite3_bind_int64(st, 5, e->n1) | sqlite3_bind_int64(st, 6, e->n2),
            "version upsert");
    }
    for (size_t i = 0; i < g->devs.n && rc == STORE_OK; i++)
        rc = device_counters(s, c, &g->devs.e[i], now);
    return rc;
}

/* Remembers the buckets of a committed group in the writer's cache. A failure only costs a later
 * lookup. */
static void
cache_buckets(struct store_agg *known, const struct group *g)
{
    if (known->n + g->buckets.n > STORE_TELW_BUCKETS_MAX)
        store__agg_free(known);
    for (size_t i = 0; i < g->buckets.n; i++) {
        const struct store_agg_ent *b = &g->buckets.e[i];
        int added;
        size_t idx, klen;
        const char *k = hmap_key(&g->buckets.keys, i, &klen);
        struct store_agg_ent *e;
        if (b->id == 0 || (e = store__agg_get(known, k, klen, &added, &idx)) == NULL)
            continue;
        e->id = b->id;
        e->last = b->last;
    }
}

/* 1 when the arguments of store_telemetry_ingest are well formed (the reports' results reset). */
static int
ingest_args_ok(struct store_report *const *reports, size_t n, const struct store_upload *up,
               size_t nup)
{
    if ((n > 0 && reports == NULL) || (nup > 0 && up == NULL) || n > INGEST_MAX || nup > INGEST_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!store__tel_report_ok(reports[i]))
            return 0;
        reports[i]->result = STORE_REPORT_PENDING;
    }
    for (size_t i = 0; i < nup; i++)
        if (up[i].tenant_id < 1 || !store__device_id_ok(up[i].device_id) || up[i].dropped < 0 ||
            up[i].dropped > PROTO_TEL_U32_MAX || up[i].last_report_id < 0 ||
            up[i].last_report_id > PROTO_TEL_REPORT_ID_MAX || up[i].first > n ||
            up[i].nreports > n - up[i].first)
            return 0;
    return 1;
}

static void
group_free(struct group *g)
{
    store__agg_free(&g->buckets);
    store__agg_free(&g->bdevs);
    store__agg_free(&g->bvers);
    store__agg_free(&g->chours);
    store__agg_free(&g->fleet);
    store__agg_free(&g->usage);
    store__agg_free(&g->devs);
    store__agg_free(&g->purged);
}

int
store_telemetry_ingest(store_tel_writer *w, struct store_report *const *reports, size_t n,
                       const struct store_upload *up, size_t nup, int64_t now)
{
    store *s = store__telw_store(w);
    struct conn *c = NULL;
    struct group g = {0};
    int rc = STORE_INVALID;

    if (!ingest_args_ok(reports, n, up, nup))
        goto out;
    c = store__telw_take(w);
    g.known = store__telw_buckets(w);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = ingest_one(s, c, &g, reports[i], now);
    if (rc == STORE_OK)
        rc = uploads_count(s, c, &g, reports, up, nup, now);
    if (rc == STORE_OK)
        rc = group_apply(s, c, &g, now);
    if (rc == STORE_OK)
        rc = uploads_dropped(s, c, up, nup);
out:
    rc = store__end_tx(s, c, rc);
    if (c != NULL) {
        if (rc == STORE_OK) {
            cache_buckets(g.known, &g);
            store__telw_committed(w);
        }
        store__telw_give(w, c);
    }
    group_free(&g);
    if (rc != STORE_OK)
        for (size_t i = 0; reports != NULL && i < n; i++)
            if (reports[i] != NULL)
                reports[i]->result = STORE_REPORT_PENDING;
    return rc;
}
