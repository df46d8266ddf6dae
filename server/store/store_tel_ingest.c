/* store: failure reporting (store.h "failure reporting"; docs/telemetry.md): reports, crash
 * buckets, usage per image version and hour, flags, retention. Same rules as store.c (store_int.h):
 * one connection per call, changes in one BEGIN IMMEDIATE transaction, values only bound.
 *
 * Ingest writes a whole group of reports (the ingest writer's group commit) in one synchronous=FULL
 * transaction: one fsync for thousands of reports. A report is looked up by (device, report_id)
 * first, so a duplicate touches no aggregate; the UNIQUE constraint backs this up. */
#include "store.h"
#include "store_int.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR 3600
#define SAMPLES_MAX 10
#define SIG_HEX_LEN 64
#define INGEST_MAX 100000 /* reports per call */
#define CURSOR_PAIR_BUF 48

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

#define BUCKET_COLS                                                                                \
    "b.id, b.signature, b.component, b.reason, b.pc, b.frames, b.first_seen, s.last_seen, "        \
    "s.count, s.devices"
#define BUCKETS "failure_buckets b JOIN bucket_stats s ON s.bucket_id = b.id"
/* ?1 tenant, ?2 component or NULL, ?3 row limit, ?4 sort, ?5 ?6 the keyset (sort key, id). */
static const char SQL_BUCKET_LIST[] =
    "SELECT " BUCKET_COLS
    ", CASE ?4 WHEN 1 THEN s.devices WHEN 2 THEN s.last_seen ELSE s.count END "
    "AS k FROM " BUCKETS " WHERE b.tenant_id = ?1 AND (?2 IS NULL OR b.component = ?2) "
    "AND (k < ?5 OR (k = ?5 AND b.id > ?6)) ORDER BY k DESC, b.id LIMIT ?3";
/* As above over the stored reports that match: ?7 since, ?8 until, ?9 image version or NULL, ?10
 * product (0 = any), ?11 group (0 = any). */
static const char SQL_BUCKET_LIST_REPORTS[] =
    "SELECT b.id, b.signature, b.component, b.reason, b.pc, b.frames, min(r.received_at), "
    "max(r.received_at), count(*), count(DISTINCT r.device_id), "
    "CASE ?4 WHEN 1 THEN count(DISTINCT r.device_id) WHEN 2 THEN max(r.received_at) "
    "ELSE count(*) END AS k "
    "FROM telemetry_reports r JOIN failure_buckets b ON b.id = r.bucket_id "
    "WHERE r.tenant_id = ?1 AND r.received_at >= ?7 AND r.received_at < ?8 "
    "AND r.bucket_id IS NOT NULL AND (?2 IS NULL OR r.component = ?2) "
    "AND (?9 IS NULL OR r.image_version = ?9) AND (?10 = 0 OR r.product_id = ?10) "
    "AND (?11 = 0 OR r.group_id = ?11) "
    "GROUP BY b.id HAVING k < ?5 OR (k = ?5 AND b.id > ?6) ORDER BY k DESC, b.id LIMIT ?3";
static const char SQL_BUCKET_GET[] =
    "SELECT " BUCKET_COLS " FROM " BUCKETS " WHERE b.id = ?1 AND b.tenant_id = ?2";
static const char SQL_BUCKET_VERSIONS[] =
    "SELECT image_version, count, first_seen, last_seen FROM bucket_versions WHERE bucket_id = ?1 "
    "ORDER BY count DESC, image_version LIMIT 1000";

#define REPORT_COLS                                                                                \
    "id, device_id, report_id, type, boot_id, uptime_s, received_at, component, image_version, "   \
    "reason, pc, lr, return_addresses, fault_registers, free_memory, message, period_s, images, "  \
    "counters, previous_boot_id, bucket_id"
/* The bucket's ?2 newest reports: its samples chain from last_report back through prev_in_bucket,
 * ending at a report retention deleted. */
static const char SQL_BUCKET_SAMPLES[] =
    "WITH RECURSIVE chain(id, n) AS (SELECT last_report, 1 FROM bucket_stats WHERE bucket_id = ?1 "
    "UNION ALL SELECT r.prev_in_bucket, chain.n + 1 FROM chain JOIN telemetry_reports r "
    "ON r.id = chain.id WHERE chain.n < ?2 AND r.prev_in_bucket IS NOT NULL) "
    "SELECT " REPORT_COLS " FROM telemetry_reports WHERE id IN (SELECT id FROM chain) "
    "ORDER BY id DESC LIMIT ?2";
static const char SQL_TEL_DEVICE_VISIBLE[] =
    "SELECT 1 FROM devices WHERE id = ?1 AND "
    "(tenant_id = ?2 OR (tenant_id IS NULL AND registered_by = ?2))";
/* ?1 device, ?2 tenant, ?3 before this report_id, ?4 type or NULL, ?5 row limit */
static const char SQL_DEVICE_REPORTS[] =
    "SELECT " REPORT_COLS " FROM telemetry_reports WHERE device_id = ?1 AND tenant_id = ?2 "
    "AND report_id < ?3 AND (?4 IS NULL OR type = ?4) ORDER BY report_id DESC LIMIT ?5";
static const char SQL_DEVICE_TELEMETRY[] =
    "SELECT dropped, reports, last_upload FROM telemetry_devices "
    "WHERE device_id = ?1 AND tenant_id = ?2";
static const char SQL_REPORT_EXPORT[] =
    "SELECT " REPORT_COLS " FROM telemetry_reports WHERE tenant_id = ?1 AND received_at >= ?2 "
    "AND received_at < ?3 AND (received_at, id) > (?4, ?5) ORDER BY received_at, id LIMIT ?6";

/* ?1 tenant, ?2 component or NULL, ?3 row limit, ?4 granularity, ?5 since, ?6 until */
static const char SQL_RATE_ITEMS[] =
    "SELECT component, image_version, (hour / ?4) * ?4 AS p, sum(device_seconds), sum(crashes) "
    "FROM telemetry_usage WHERE tenant_id = ?1 AND (?2 IS NULL OR component = ?2) "
    "AND hour >= ?5 AND hour < ?6 GROUP BY component, image_version, p "
    "ORDER BY p, component, image_version LIMIT ?3";
static const char SQL_RATE_VERSIONS[] =
    "SELECT u.component, u.image_version, v.first_seen, sum(u.device_seconds), sum(u.crashes) "
    "FROM telemetry_usage u LEFT JOIN telemetry_versions v ON v.tenant_id = u.tenant_id "
    "AND v.component = u.component AND v.image_version = u.image_version "
    "WHERE u.tenant_id = ?1 AND (?2 IS NULL OR u.component = ?2) AND u.hour >= ?5 "
    "AND u.hour < ?6 AND ?4 > 0 GROUP BY u.component, u.image_version "
    "ORDER BY u.component, v.first_seen, u.image_version LIMIT ?3";
static const char SQL_RATE_FLEET[] =
    "SELECT coalesce(sum(device_seconds), 0), coalesce(sum(crashes), 0), "
    "coalesce(sum(crash_hours), 0) FROM telemetry_fleet "
    "WHERE tenant_id = ?1 AND hour >= ?2 AND hour < ?3";

#define FLAG_COLS                                                                                  \
    "id, kind, created_at, bucket_id, component, image_version, previous_version, detail"
static const char SQL_FLAG_LIST[] = "SELECT " FLAG_COLS " FROM failure_flags "
                                    "WHERE tenant_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
static const char SQL_FLAG_NEW_BUCKETS[] =
    "INSERT OR IGNORE INTO failure_flags (tenant_id, kind, subject, bucket_id, component, "
    "image_version, previous_version, detail, created_at) "
    "SELECT b.tenant_id, 'new_bucket', CAST(b.id AS TEXT), b.id, b.component, NULL, NULL, "
    "json_object('devices_first_hour', s.devices_first_hour, 'threshold', ?2, 'reason', b.reason, "
    "'pc', b.pc, 'signature', b.signature), ?3 "
    "FROM " BUCKETS " WHERE b.first_seen >= ?1 AND s.devices_first_hour > ?2 ORDER BY b.id";
static const char SQL_FLAG_REGRESSIONS[] =
    "INSERT OR IGNORE INTO failure_flags (tenant_id, kind, subject, bucket_id, component, "
    "image_version, previous_version, detail, created_at) "
    "SELECT tenant_id, 'rate_regression', component || '@' || image_version, NULL, component, "
    "image_version, prev_version, "
    "json_object('crashes', crashes, 'device_hours', device_seconds / 3600.0, "
    "'crash_rate', crashes * 3600.0 / device_seconds, 'previous_crashes', prev_crashes, "
    "'previous_device_hours', prev_seconds / 3600.0, "
    "'previous_crash_rate', prev_crashes * 3600.0 / prev_seconds, 'factor_pct', ?1), ?3 "
    "FROM (SELECT tenant_id, component, image_version, device_seconds, crashes, "
    "lag(image_version) OVER w AS prev_version, lag(device_seconds) OVER w AS prev_seconds, "
    "lag(crashes) OVER w AS prev_crashes FROM telemetry_versions "
    "WINDOW w AS (PARTITION BY tenant_id, component ORDER BY first_seen, image_version)) "
    "WHERE prev_version IS NOT NULL AND device_seconds >= ?2 AND prev_seconds >= ?2 "
    "AND crashes > 0 AND crashes * 100.0 * prev_seconds > ?1 * 1.0 * max(prev_crashes, 1) * "
    "device_seconds "
    "ORDER BY tenant_id, component, image_version";

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

/* --- Addresses and signatures --- */

int
store_telemetry_addr(const char *in, size_t len, char out[STORE_TEL_ADDR_LEN])
{
    size_t i = 2, o = 2;
    if (in == NULL || len < 3 || len > 2 + PROTO_TEL_ADDR_HEX_MAX || in[0] != '0' || in[1] != 'x')
        return -1;
    for (size_t k = 2; k < len; k++) {
        char ch = in[k];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return -1;
    }
    while (i + 1 < len && in[i] == '0')
        i++;
    out[0] = '0';
    out[1] = 'x';
    for (; i < len; i++)
        out[o++] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] - 'A' + 'a' : in[i]);
    out[o] = '\0';
    return 0;
}

/* The text hashed into a signature into out (len bytes): its length, or -1 when too long. */
static int
sig_text(const char *component, const char *reason, const char *pc,
         const char (*ra)[STORE_TEL_ADDR_LEN], size_t nra, char *out, size_t len)
{
    int n = snprintf(out, len, "%s|%s|%s|%s|%s|%s", component, reason, pc, nra > 0 ? ra[0] : "",
                     nra > 1 ? ra[1] : "", nra > 2 ? ra[2] : "");
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* The signature of a text from sig_text. */
static void
sig_digest(const char *text, size_t n, char out[SIG_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(text, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        /* only with no memory in OpenSSL: never a valid signature */
        memset(out, 'x', SIG_HEX_LEN);
        out[SIG_HEX_LEN] = '\0';
        return;
    }
    util_hex(md, 32, out);
}

void
store_telemetry_signature(const char *component, const char *reason, const char *pc,
                          const char (*ra)[STORE_TEL_ADDR_LEN], size_t nra, char out[65])
{
    /* component (64) + reason (32) + 4 addresses (18 each) + 5 separators */
    char text[PROTO_COMPONENT_MAX + PROTO_TEL_REASON_MAX + 4 * STORE_TEL_ADDR_LEN + 8];
    int n = sig_text(component, reason, pc, ra, nra, text, sizeof(text));
    if (n < 0) {
        /* only with arguments beyond their bounds: never a valid signature */
        memset(out, 'x', SIG_HEX_LEN);
        out[SIG_HEX_LEN] = '\0';
        return;
    }
    sig_digest(text, (size_t)n, out);
}

/* --- Argument checks (the schema's CHECK constraints say the same; the rules are proto's) --- */

/* s (NUL-terminated, may be NULL) follows rule. */
static int
text_ok(const char *s, int (*rule)(const char *, size_t))
{
    return s != NULL && rule(s, strlen(s));
}

static int
hex32_ok(const char *s, size_t len)
{
    return proto_hex_ok(s, len, PROTO_TEL_BOOT_ID_HEX / 2);
}

static int
name_ok(const char *s, size_t len)
{
    return proto_chars_ok(s, len, 1, PROTO_TEL_REASON_MAX, PROTO_TEL_NAME_CHARS);
}

static int
addr_ok(const char *a)
{
    char norm[STORE_TEL_ADDR_LEN];
    return a != NULL && store_telemetry_addr(a, strlen(a), norm) == 0 && strcmp(a, norm) == 0;
}

/* period_s and the images that ran during it (a heartbeat's, or a crash's since its boot's last
 * heartbeat). */
static int
period_ok(const struct store_report *r)
{
    if (r->period_s < 1 || r->period_s > 86400 || r->nimages < 1 ||
        r->nimages > PROTO_TEL_IMAGES_MAX || r->images == NULL)
        return 0;
    for (size_t i = 0; i < r->nimages; i++)
        if (!text_ok(r->image_component[i], proto_component_ok) ||
            !text_ok(r->image_versions[i], proto_version_ok))
            return 0;
    return 1;
}

static int
report_ok(const struct store_report *r)
{
    if (r == NULL || r->tenant_id < 1 || !store__device_id_ok(r->device_id) || r->report_id < 1 ||
        r->report_id > PROTO_TEL_REPORT_ID_MAX || !text_ok(r->boot_id, hex32_ok) ||
        r->uptime_s < 0 || r->uptime_s > PROTO_TEL_U32_MAX || r->group_id < 0 || r->product_id < 0)
        return 0;
    switch (r->type) {
    case STORE_REPORT_CRASH:
        if (!text_ok(r->component, proto_component_ok) ||
            !text_ok(r->image_version, proto_version_ok) || !text_ok(r->reason, name_ok) ||
            !addr_ok(r->pc) || !addr_ok(r->lr) || r->nra > PROTO_TEL_FRAMES_MAX ||
            r->fault_registers == NULL || r->free_memory < 0 ||
            r->free_memory > PROTO_TEL_U32_MAX ||
            (r->message != NULL && r->message_len > PROTO_TEL_MESSAGE_MAX))
            return 0;
        for (size_t i = 0; i < r->nra; i++)
            if (!addr_ok(r->ra[i]))
                return 0;
        /* a period with what ran during it, or neither */
        return r->period_s == 0 ? r->nimages == 0 && r->images == NULL : period_ok(r);
    case STORE_REPORT_HEARTBEAT:
        return r->counters != NULL && r->free_memory >= 0 && r->free_memory <= PROTO_TEL_U32_MAX &&
               period_ok(r);
    case STORE_REPORT_REBOOT:
        return text_ok(r->reason, name_ok) && text_ok(r->previous_boot_id, hex32_ok);
    }
    return 0;
}

static const char *
type_name(enum store_report_type t)
{
    return t == STORE_REPORT_CRASH ? "crash" : t == STORE_REPORT_HEARTBEAT ? "heartbeat" : "reboot";
}

/* --- Ingest --- */

/* Steps a write statement whose bindings are set, resets it. */
static int
run_write(store *s, struct conn *c, sqlite3_stmt *st, int bind_rc, const char *what)
{
    int rc = store__bound(s, c, bind_rc);
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, what);
    sqlite3_reset(st);
    return rc;
}

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

/* In-memory aggregates of one group, each applied once per distinct key: an open-addressing hash
 * table over a dense array of entries (entry pointers are valid until the next insertion). */
#define AGG_KEY_MAX 200

struct agg_ent {
    uint64_t h;
    size_t klen;
    char key[AGG_KEY_MAX];
    int64_t id; /* bucket id */
    int64_t tenant_id;
    int64_t n1, n2, n3;  /* counts, per table (struct group) */
    const char *s1, *s2; /* borrowed texts to bind */
    int64_t last;        /* buckets: id of the newest stored report, 0 when none */
};

struct agg {
    struct agg_ent *e; /* n entries in order of insertion */
    size_t n, ecap;
    uint32_t *slot; /* cap slots: index + 1 of an entry, 0 when free */
    size_t cap;
};

/* The tables of a group and the meaning of their counts. */
struct group {
    struct agg buckets; /* tenant, signature text: id, last; n1 reports, n2 new devices */
    struct agg bdevs;   /* bucket id, device: id, s1 device; n1 the index in buckets */
    struct agg bvers;   /* bucket id, version: id, s1 version; n1 reports */
    struct agg chours;  /* tenant, device (the hour is the group's): s1 device */
    struct agg fleet;   /* tenant: n1 seconds, n2 crashes, n3 crash hours */
    struct agg usage;   /* tenant, component, version: s1, s2; n1 seconds, n2 crashes */
    struct agg devs;    /* device: tenant, s1 device; n2 reports */
    struct agg purged;  /* device: n1 its purged_through, read once per group */
};

static void
agg_free(struct agg *t)
{
    free(t->e);
    free(t->slot);
}

/* Buckets by (tenant, signature text) that the writer has seen committed, with their id and newest
 * report, so that a known bucket's first report in a group needs no upsert. Buckets are never
 * deleted, so an id once committed stays right; the newest report is this process's view (another
 * daemon writing to the same database only shortens the samples chain). The cache is emptied when
 * it reaches TEL_CACHE_MAX. */
#define TEL_CACHE_MAX 16384

struct tel_cache {
    struct agg ids;
};

void
store__tel_cache_free(struct tel_cache *t)
{
    if (t == NULL)
        return;
    agg_free(&t->ids);
    free(t);
}

static uint64_t
agg_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    return h;
}

/* The slot of key (free when absent). */
static size_t
agg_slot(const struct agg *t, const char *k, size_t klen, uint64_t h)
{
    size_t i = (size_t)h & (t->cap - 1);
    while (t->slot[i] != 0) {
        const struct agg_ent *e = &t->e[t->slot[i] - 1];
        if (e->h == h && e->klen == klen && memcmp(e->key, k, klen) == 0)
            break;
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

/* The entry of key, or NULL when absent. */
static const struct agg_ent *
agg_find(const struct agg *t, const char *k, size_t klen)
{
    if (t->cap == 0)
        return NULL;
    size_t i = agg_slot(t, k, klen, agg_hash(k, klen));
    return t->slot[i] != 0 ? &t->e[t->slot[i] - 1] : NULL;
}

/* The entry of key, added (zeroed) when absent (*added set). NULL when out of memory. */
static struct agg_ent *
agg_get(struct agg *t, const char *k, size_t klen, int *added, size_t *idx)
{
    *added = 0;
    if (klen > AGG_KEY_MAX) /* a key_* call ran out of room: nothing of k may be read */
        return NULL;
    uint64_t h = agg_hash(k, klen);
    if (t->cap > 0) {
        size_t i = agg_slot(t, k, klen, h);
        if (t->slot[i] != 0) {
            *idx = t->slot[i] - 1;
            return &t->e[*idx];
        }
    }
    if (t->n == t->ecap) {
        size_t ncap = t->ecap == 0 ? 64 : t->ecap * 2;
        struct agg_ent *ne = realloc(t->e, ncap * sizeof(*ne));
        if (ne == NULL)
            return NULL;
        t->e = ne;
        t->ecap = ncap;
    }
    if ((t->n + 1) * 2 > t->cap) {
        size_t ncap = t->cap == 0 ? 128 : t->cap * 2;
        uint32_t *ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL)
            return NULL;
        free(t->slot);
        t->slot = ns;
        t->cap = ncap;
        for (size_t j = 0; j < t->n; j++)
            t->slot[agg_slot(t, t->e[j].key, t->e[j].klen, t->e[j].h)] = (uint32_t)(j + 1);
    }
    struct agg_ent *e = &t->e[t->n];
    memset(e, 0, sizeof(*e));
    e->h = h;
    e->klen = klen;
    memcpy(e->key, k, klen);
    t->slot[agg_slot(t, k, klen, h)] = (uint32_t)(t->n + 1);
    *idx = t->n++;
    *added = 1;
    return e;
}

/* Key builders: append to k (AGG_KEY_MAX bytes) at o; return the new length, AGG_KEY_MAX + 1 once
 * too long. Texts keep their NUL as separator. */
static size_t
key_i64(char *k, size_t o, int64_t v)
{
    if (o + sizeof(v) > AGG_KEY_MAX)
        return AGG_KEY_MAX + 1;
    memcpy(k + o, &v, sizeof(v));
    return o + sizeof(v);
}

static size_t
key_str(char *k, size_t o, const char *v)
{
    size_t n = strlen(v) + 1;
    if (o > AGG_KEY_MAX || n > AGG_KEY_MAX - o)
        return AGG_KEY_MAX + 1;
    memcpy(k + o, v, n);
    return o + n;
}

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
           struct agg_ent *b)
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

/* As store__bind_text, without a copy: for texts that outlive the statement's step (every
 * statement here is stepped and reset before its texts go away). */
static int
bind_static(sqlite3_stmt *st, int i, const char *v)
{
    return v != NULL ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
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
    int b = sqlite3_bind_int64(st, 1, r->tenant_id) | bind_static(st, 2, r->device_id) |
            sqlite3_bind_int64(st, 3, r->report_id) | bind_static(st, 4, type_name(r->type)) |
            bind_static(st, 5, r->boot_id) | sqlite3_bind_int64(st, 6, r->uptime_s) |
            sqlite3_bind_int64(st, 7, r->group_id) | sqlite3_bind_int64(st, 8, r->product_id) |
            sqlite3_bind_int64(st, 22, now) | store__bind_id(st, 23, crash ? bucket_id : 0) |
            store__bind_id(st, 24, crash ? prev : 0);
    if (crash) {
        addr_array((const char(*)[STORE_TEL_ADDR_LEN])r->ra, r->nra, ra);
        b |= bind_static(st, 9, r->component) | bind_static(st, 10, r->image_version) |
             bind_static(st, 12, r->pc) | bind_static(st, 13, r->lr) | bind_static(st, 14, ra) |
             bind_static(st, 15, r->fault_registers) |
             (r->message != NULL
                  ? sqlite3_bind_text(st, 17, r->message, (int)r->message_len, SQLITE_STATIC)
                  : SQLITE_OK);
    }
    if (crash || r->type == STORE_REPORT_REBOOT)
        b |= bind_static(st, 11, r->reason);
    if (crash || hb)
        b |= sqlite3_bind_int64(st, 16, r->free_memory);
    if (r->period_s > 0) /* a heartbeat's, or a crash's since the last heartbeat */
        b |= sqlite3_bind_int64(st, 18, r->period_s) | bind_static(st, 19, r->images);
    if (hb)
        b |= bind_static(st, 20, r->counters);
    if (r->type == STORE_REPORT_REBOOT)
        b |= bind_static(st, 21, r->previous_boot_id);
    int rc = run_write(s, c, st, b, "report insert");
    if (rc == STORE_OK)
        *added = sqlite3_changes(c->db) > 0;
    return rc;
}

/* Counts seconds and crashes of (component, version) in the group's usage. */
static int
usage_count(struct group *g, int64_t tenant_id, const char *component, const char *version,
            int64_t seconds, int64_t crashes)
{
    char k[AGG_KEY_MAX];
    size_t klen = key_str(k, key_str(k, key_i64(k, 0, tenant_id), component), version), idx;
    int added;
    struct agg_ent *e = agg_get(&g->usage, k, klen, &added, &idx);
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

static struct agg_ent *
fleet_entry(struct group *g, int64_t tenant_id)
{
    char k[AGG_KEY_MAX];
    size_t klen = key_i64(k, 0, tenant_id), idx;
    int added;
    struct agg_ent *e = agg_get(&g->fleet, k, klen, &added, &idx);
    if (e != NULL)
        e->tenant_id = tenant_id;
    return e;
}

/* Counts the device-seconds of a heartbeat, or of a crash since its boot's last heartbeat, for the
 * fleet and each image version that ran. */
static int
period_count(struct group *g, const struct store_report *r)
{
    struct agg_ent *e = fleet_entry(g, r->tenant_id);
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
    char k[AGG_KEY_MAX];
    int64_t bucket_id = g->buckets.e[bidx].id;
    size_t klen = key_str(k, key_i64(k, 0, bucket_id), r->device_id), idx;
    int added;
    struct agg_ent *e = agg_get(&g->bdevs, k, klen, &added, &idx);
    if (e == NULL)
        return oom();
    if (added) {
        e->id = bucket_id;
        e->s1 = r->device_id;
        e->n1 = (int64_t)bidx;
    }
    klen = key_str(k, key_i64(k, 0, bucket_id), r->image_version);
    if ((e = agg_get(&g->bvers, k, klen, &added, &idx)) == NULL)
        return oom();
    if (added) {
        e->id = bucket_id;
        e->s1 = r->image_version;
    }
    e->n1++;
    klen = key_str(k, key_i64(k, 0, r->tenant_id), r->device_id);
    if ((e = agg_get(&g->chours, k, klen, &added, &idx)) == NULL)
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
    char k[AGG_KEY_MAX];
    size_t klen = key_str(k, 0, r->device_id), idx;
    int added;
    struct agg_ent *e = agg_get(&g->purged, k, klen, &added, &idx);
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
    struct agg_ent *b = NULL;
    size_t bidx = 0;
    int rc, added;

    if ((rc = report_purged(s, c, g, r)) != STORE_NOTFOUND) {
        if (rc == STORE_OK)
            r->result = STORE_REPORT_DUPLICATE;
        return rc;
    }
    if (r->type == STORE_REPORT_CRASH) {
        char k[AGG_KEY_MAX];
        size_t klen = key_i64(k, 0, r->tenant_id);
        int n = sig_text(r->component, r->reason, r->pc, (const char(*)[STORE_TEL_ADDR_LEN])r->ra,
                         r->nra, k + klen, AGG_KEY_MAX - klen);
        if (n < 0)
            return STORE_ERR;
        if ((b = agg_get(&g->buckets, k, klen + (size_t)n, &added, &bidx)) == NULL)
            return oom();
        if (b->id == 0 && s->ingest_buckets != NULL) {
            const struct agg_ent *known = agg_find(&s->ingest_buckets->ids, k, klen + (size_t)n);
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
            char sig[SIG_HEX_LEN + 1];
            sig_digest(k + klen, (size_t)n, sig);
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
device_counters(store *s, struct conn *c, const struct agg_ent *d, int64_t now)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TEL_DEVICE_UPSERT);
    if (st == NULL)
        return STORE_ERR;
    return run_write(s, c, st,
                     bind_static(st, 1, d->s1) | sqlite3_bind_int64(st, 2, d->tenant_id) |
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
        rc = run_write(s, c, st,
                       bind_static(st, 1, up[i].device_id) |
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
        char k[AGG_KEY_MAX];
        size_t klen = key_str(k, 0, up[i].device_id), idx;
        int added;
        struct agg_ent *d = agg_get(&g->devs, k, klen, &added, &idx);
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
    int64_t hour = now - now % HOUR;
    sqlite3_stmt *st;
    int rc = STORE_OK;

    for (size_t i = 0; i < g->bdevs.n && rc == STORE_OK; i++) {
        const struct agg_ent *e = &g->bdevs.e[i];
        if ((st = store__prep(s, c, SQL_TEL_BUCKET_DEVICE)) == NULL)
            return STORE_ERR;
        rc = run_write(s, c, st,
                       sqlite3_bind_int64(st, 1, e->id) | bind_static(st, 2, e->s1) |
                           sqlite3_bind_int64(st, 3, now),
                       "bucket device");
        if (rc == STORE_OK && sqlite3_changes(c->db) > 0)
            g->buckets.e[e->n1].n2++;
    }
    for (size_t i = 0; i < g->buckets.n && rc == STORE_OK; i++) {
        const struct agg_ent *e = &g->buckets.e[i];
        if (e->id == 0 || e->n1 == 0) /* no report of it stored */
            continue;
        if ((st = store__prep(s, c, SQL_TEL_BUCKET_COUNTS)) == NULL)
            return STORE_ERR;
        rc = run_write(s, c, st,
                       sqlite3_bind_int64(st, 1, e->id) | sqlite3_bind_int64(st, 2, e->n1) |
                           sqlite3_bind_int64(st, 3, e->n2) | sqlite3_bind_int64(st, 4, now) |
                           sqlite3_bind_int64(st, 5, e->last),
                       "bucket counts");
    }
    for (size_t i = 0; i < g->bvers.n && rc == STORE_OK; i++) {
        const struct agg_ent *e = &g->bvers.e[i];
        if ((st = store__prep(s, c, SQL_TEL_BUCKET_VERSION)) == NULL)
            return STORE_ERR;
        rc = run_write(s, c, st,
                       sqlite3_bind_int64(st, 1, e->id) | bind_static(st, 2, e->s1) |
                           sqlite3_bind_int64(st, 3, now) | sqlite3_bind_int64(st, 4, e->n1),
                       "bucket version");
    }
    for (size_t i = 0; i < g->chours.n && rc == STORE_OK; i++) {
        const struct agg_ent *e = &g->chours.e[i];
        if ((st = store__prep(s, c, SQL_TEL_CRASH_HOUR)) == NULL)
            return STORE_ERR;
        rc = run_write(s, c, st,
                       sqlite3_bind_int64(st, 1, e->tenant_id) | sqlite3_bind_int64(st, 2, hour) |
                           bind_static(st, 3, e->s1),
                       "crash hour");
        if (rc == STORE_OK && sqlite3_changes(c->db) > 0) {
            struct agg_ent *f = fleet_entry(g, e->tenant_id);
            if (f == NULL)
                return oom();
            f->n3++;
        }
    }
    for (size_t i = 0; i < g->fleet.n && rc == STORE_OK; i++) {
        const struct agg_ent *e = &g->fleet.e[i];
        if ((st = store__prep(s, c, SQL_TEL_FLEET)) == NULL)
            return STORE_ERR;
        rc = run_write(s, c, st,
                       sqlite3_bind_int64(st, 1, e->tenant_id) | sqlite3_bind_int64(st, 2, hour) |
                           sqlite3_bind_int64(st, 3, e->n1) | sqlite3_bind_int64(st, 4, e->n2) |
                           sqlite3_bind_int64(st, 5, e->n3),
                       "fleet upsert");
    }
    for (size_t i = 0; i < g->usage.n && rc == STORE_OK; i++) {
        const struct agg_ent *e = &g->usage.e[i];
        if ((st = store__prep(s, c, SQL_TEL_USAGE)) == NULL)
            return STORE_ERR;
        rc = run_write(s, c, st,
                       sqlite3_bind_int64(st, 1, e->tenant_id) | bind_static(st, 2, e->s1) |
                           bind_static(st, 3, e->s2) | sqlite3_bind_int64(st, 4, hour) |
                           sqlite3_bind_int64(st, 5, e->n1) | sqlite3_bind_int64(st, 6, e->n2),
                       "usage upsert");
        if (rc != STORE_OK)
            break;
        if ((st = store__prep(s, c, SQL_TEL_VERSION)) == NULL)
            return STORE_ERR;
        rc = run_write(s, c, st,
                       sqlite3_bind_int64(st, 1, e->tenant_id) | bind_static(st, 2, e->s1) |
                           bind_static(st, 3, e->s2) | sqlite3_bind_int64(st, 4, now) |
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
cache_buckets(store *s, const struct group *g)
{
    struct tel_cache *t = s->ingest_buckets;
    if (t == NULL && (t = s->ingest_buckets = calloc(1, sizeof(*t))) == NULL)
        return;
    if (t->ids.n + g->buckets.n > TEL_CACHE_MAX) {
        agg_free(&t->ids);
        memset(&t->ids, 0, sizeof(t->ids));
    }
    for (size_t i = 0; i < g->buckets.n; i++) {
        const struct agg_ent *b = &g->buckets.e[i];
        int added;
        size_t idx;
        struct agg_ent *e;
        if (b->id == 0 || (e = agg_get(&t->ids, b->key, b->klen, &added, &idx)) == NULL)
            continue;
        e->id = b->id;
        e->last = b->last;
    }
}

int
store_telemetry_ingest(store *s, struct store_report *const *reports, size_t n,
                       const struct store_upload *up, size_t nup, int64_t now)
{
    struct conn *c = NULL;
    struct group g = {0};
    int rc = STORE_INVALID;

    if ((n > 0 && reports == NULL) || (nup > 0 && up == NULL) || n > INGEST_MAX || nup > INGEST_MAX)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!report_ok(reports[i]))
            goto out;
        reports[i]->result = STORE_REPORT_PENDING;
    }
    for (size_t i = 0; i < nup; i++)
        if (up[i].tenant_id < 1 || !store__device_id_ok(up[i].device_id) || up[i].dropped < 0 ||
            up[i].dropped > PROTO_TEL_U32_MAX || up[i].last_report_id < 0 ||
            up[i].last_report_id > PROTO_TEL_REPORT_ID_MAX || up[i].first > n ||
            up[i].nreports > n - up[i].first)
            goto out;
    c = store__take_ingest(s);
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
    if (rc == STORE_OK) {
        cache_buckets(s, &g);
        atomic_store(&s->ingest_commit_ns, util_mono_ns());
    }
    store__give_ingest(s, c);
    agg_free(&g.buckets);
    agg_free(&g.bdevs);
    agg_free(&g.bvers);
    agg_free(&g.chours);
    agg_free(&g.fleet);
    agg_free(&g.usage);
    agg_free(&g.devs);
    agg_free(&g.purged);
    if (rc != STORE_OK)
        for (size_t i = 0; reports != NULL && i < n; i++)
            if (reports[i] != NULL)
                reports[i]->result = STORE_REPORT_PENDING;
    return rc;
}

/* --- JSON of rows --- */

/* Column i, JSON text, parsed (NULL column: JSON null). NULL when out of memory or invalid. */
static json_t *
col_json(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t != NULL ? json_loads(t, JSON_REJECT_DUPLICATES, NULL) : NULL;
}

static json_t *
col_text_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : store__col_text(st, i);
}

/* BUCKET_COLS (first_seen and last_seen at 6 and 7, count and devices at 8 and 9) */
static json_t *
bucket_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I}", "id",
                     store__col_id(st, 0), "signature", store__col_text(st, 1), "component",
                     store__col_text(st, 2), "reason", store__col_text(st, 3), "pc",
                     store__col_text(st, 4), "frames", col_json(st, 5), "first_seen",
                     store__col_time(st, 6), "last_seen", store__col_time(st, 7), "count",
                     store__col_id(st, 8), "devices", store__col_id(st, 9));
}

/* Sets key to v (stolen); 0, or -1 when v is NULL (out of memory). */
static int
set(json_t *o, const char *key, json_t *v)
{
    return v == NULL || json_object_set_new(o, key, v) != 0 ? -1 : 0;
}

/* REPORT_COLS */
static json_t *
report_json(sqlite3_stmt *st)
{
    const char *type = (const char *)sqlite3_column_text(st, 3);
    json_t *o = json_pack("{s:I, s:o, s:I, s:o, s:o, s:I, s:o}", "id", store__col_id(st, 0),
                          "device_id", store__col_text(st, 1), "report_id", store__col_id(st, 2),
                          "type", store__col_text(st, 3), "boot_id", store__col_text(st, 4),
                          "uptime_s", store__col_id(st, 5), "received_at", store__col_time(st, 6));
    int bad = o == NULL || type == NULL;
    if (!bad && strcmp(type, "crash") == 0) {
        const char *msg = (const char *)sqlite3_column_text(st, 15);
        bad = set(o, "component", store__col_text(st, 7)) ||
              set(o, "image_version", store__col_text(st, 8)) ||
              set(o, "reason", store__col_text(st, 9)) || set(o, "pc", store__col_text(st, 10)) ||
              set(o, "lr", store__col_text(st, 11)) ||
              set(o, "return_addresses", col_json(st, 12)) ||
              set(o, "fault_registers", col_json(st, 13)) ||
              set(o, "free_memory", store__col_int(st, 14)) ||
              set(o, "message",
                  msg != NULL ? json_stringn(msg, (size_t)sqlite3_column_bytes(st, 15))
                              : json_null()) ||
              set(o, "bucket_id", store__col_int(st, 20)) ||
              set(o, "period_s",
                  sqlite3_column_type(st, 16) == SQLITE_NULL ? json_null()
                                                             : store__col_int(st, 16)) ||
              set(o, "images", col_json(st, 17));
    } else if (!bad && strcmp(type, "heartbeat") == 0) {
        bad = set(o, "period_s", store__col_int(st, 16)) ||
              set(o, "free_memory", store__col_int(st, 14)) || set(o, "images", col_json(st, 17)) ||
              set(o, "counters", col_json(st, 18));
    } else if (!bad) {
        bad = set(o, "reason", col_text_or_null(st, 9)) ||
              set(o, "previous_boot_id", col_text_or_null(st, 19));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* FLAG_COLS */
static json_t *
flag_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "kind",
                     store__col_text(st, 1), "created_at", store__col_time(st, 2), "bucket_id",
                     store__col_int(st, 3), "component", store__col_text(st, 4), "image_version",
                     col_text_or_null(st, 5), "previous_version", col_text_or_null(st, 6), "detail",
                     col_json(st, 7));
}

/* --- Lists with their own cursors --- */

typedef void (*cursor_fn)(sqlite3_stmt *st, char *out, size_t len);

/* As store__collect, with the cursor of a row made by cursor. */
static int
collect(store *s, struct conn *c, sqlite3_stmt *st, int limit, store__row_json_fn row_json,
        cursor_fn cursor, json_t **items, char *next_cursor)
{
    char last[CURSOR_BUF] = "";
    json_t *arr = json_array();
    int rc = STORE_ERR, n = 0, step;

    next_cursor[0] = '\0';
    if (arr == NULL)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            memcpy(next_cursor, last, strlen(last) + 1);
            break;
        }
        json_t *row = row_json(st);
        if (row == NULL || json_array_append_new(arr, row) != 0) {
            log_error("msg=\"store: cannot build a JSON row (out of memory?)\"");
            goto out;
        }
        cursor(st, last, sizeof(last));
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

/* "<sort key>.<id>" of a bucket row (the key is the last column, 10). */
static void
bucket_cursor(sqlite3_stmt *st, char *out, size_t len)
{
    snprintf(out, len, "%lld.%lld", (long long)sqlite3_column_int64(st, 10),
             (long long)sqlite3_column_int64(st, 0));
}

/* The report_id of a report row. */
static void
report_cursor(sqlite3_stmt *st, char *out, size_t len)
{
    snprintf(out, len, "%lld", (long long)sqlite3_column_int64(st, 2));
}

/* Parses "<k>.<id>" (k may be negative? no: counts and times are >= 0). */
static int
pair_cursor(const char *cur, int64_t *k, int64_t *id)
{
    char a[CURSOR_PAIR_BUF];
    const char *dot = strchr(cur, '.');
    if (dot == NULL || (size_t)(dot - cur) >= sizeof(a))
        return STORE_INVALID;
    memcpy(a, cur, (size_t)(dot - cur));
    a[dot - cur] = '\0';
    if (util_parse_i64(a, 0, INT64_MAX, k) != 0 || util_parse_i64(dot + 1, 0, INT64_MAX, id) != 0)
        return STORE_INVALID;
    return STORE_OK;
}

/* --- Buckets --- */

int
store_bucket_list(store *s, int64_t tenant_id, const struct store_bucket_filter *f,
                  const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t k = INT64_MAX, after = 0;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || f == NULL || !store__page_ok(pg) ||
        (f->component != NULL && !text_ok(f->component, proto_component_ok)) ||
        (f->image_version != NULL && !text_ok(f->image_version, proto_version_ok)) ||
        f->product_id < 0 || f->group_id < 0 || f->since < 0 || f->until < 0 ||
        f->sort < STORE_BUCKETS_BY_COUNT || f->sort > STORE_BUCKETS_BY_RECENT)
        goto out;
    if (pg->cursor != NULL && (rc = pair_cursor(pg->cursor, &k, &after)) != STORE_OK)
        goto out;
    int scan = f->image_version != NULL || f->product_id > 0 || f->group_id > 0 || f->since > 0 ||
               f->until > 0;
    c = store__take(s);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, scan ? SQL_BUCKET_LIST_REPORTS : SQL_BUCKET_LIST)) == NULL)
        goto out;
    int b = sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, f->component) |
            sqlite3_bind_int(st, 3, pg->limit + 1) | sqlite3_bind_int(st, 4, (int)f->sort) |
            sqlite3_bind_int64(st, 5, k) | sqlite3_bind_int64(st, 6, after);
    if (scan)
        b |= sqlite3_bind_int64(st, 7, f->since) |
             sqlite3_bind_int64(st, 8, f->until > 0 ? f->until : INT64_MAX) |
             store__bind_text(st, 9, f->image_version) | sqlite3_bind_int64(st, 10, f->product_id) |
             sqlite3_bind_int64(st, 11, f->group_id);
    if ((rc = store__bound(s, c, b)) != STORE_OK)
        goto out;
    rc = collect(s, c, st, pg->limit, bucket_json, bucket_cursor, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

/* {"image_version", "count", "first_seen", "last_seen"} */
static json_t *
bucket_version_json(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:I, s:o, s:o}", "image_version", store__col_text(st, 0), "count",
                     store__col_id(st, 1), "first_seen", store__col_time(st, 2), "last_seen",
                     store__col_time(st, 3));
}

/* Runs st (bindings set) and returns its rows as a new array in *out. */
static int
rows(store *s, struct conn *c, sqlite3_stmt *st, store__row_json_fn row_json, json_t **out)
{
    char ignored[CURSOR_BUF];
    return store__collect(s, c, st, 0, row_json, out, ignored);
}

/* The rows of a statement whose ?1 is a bucket id (and ?2 a row limit when limit > 0), as a new
 * array. */
static int
bucket_rows(store *s, struct conn *c, const char *sql, int64_t id, int limit,
            store__row_json_fn row_json, json_t **out)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;
    if (st == NULL)
        return rc;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, id) |
                          (limit > 0 ? sqlite3_bind_int(st, 2, limit) : SQLITE_OK));
    if (rc == STORE_OK)
        rc = rows(s, c, st, row_json, out);
    sqlite3_reset(st);
    return rc;
}

int
store_bucket_get(store *s, int64_t tenant_id, int64_t id, json_t **out)
{
    struct conn *c = NULL;
    json_t *obj = NULL, *versions = NULL, *samples = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || id < 1)
        goto out;
    c = store__take(s);
    if ((rc = store__load_by_id(s, c, SQL_BUCKET_GET, id, tenant_id, bucket_json, &obj)) !=
            STORE_OK ||
        (rc = bucket_rows(s, c, SQL_BUCKET_VERSIONS, id, 0, bucket_version_json, &versions)) !=
            STORE_OK ||
        (rc = bucket_rows(s, c, SQL_BUCKET_SAMPLES, id, SAMPLES_MAX, report_json, &samples)) !=
            STORE_OK)
        goto out;
    /* json_object_set_new takes the value, even when it fails */
    int bad = json_object_set_new(obj, "versions", versions) != 0;
    bad |= json_object_set_new(obj, "samples", samples) != 0;
    versions = samples = NULL;
    if (bad) {
        rc = STORE_ERR;
        goto out;
    }
    *out = obj;
    obj = NULL;
out:
    json_decref(obj);
    json_decref(versions);
    json_decref(samples);
    store__give(s, c);
    return rc;
}

/* --- Reports --- */

static int
device_visible(store *s, struct conn *c, int64_t tenant_id, const char *device_id)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TEL_DEVICE_VISIBLE);
    if (st == NULL)
        return STORE_ERR;
    int rc = store__bound(
        s, c, store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "device lookup");
    sqlite3_reset(st);
    return rc;
}

int
store_device_reports(store *s, int64_t tenant_id, const char *device_id, const char *type,
                     const struct store_page *pg, json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t before = INT64_MAX;
    int rc = STORE_INVALID;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || next_cursor == NULL || !store__page_ok(pg) ||
        !store__device_id_ok(device_id) ||
        (type != NULL && strcmp(type, "crash") != 0 && strcmp(type, "heartbeat") != 0 &&
         strcmp(type, "reboot") != 0))
        goto out;
    if ((rc = store__int_cursor(pg, INT64_MAX, &before)) != STORE_OK)
        goto out;
    c = store__take(s);
    if ((rc = device_visible(s, c, tenant_id, device_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_DEVICE_REPORTS)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id) |
                          sqlite3_bind_int64(st, 3, before) | store__bind_text(st, 4, type) |
                          sqlite3_bind_int(st, 5, pg->limit + 1));
    if (rc == STORE_OK)
        rc = collect(s, c, st, pg->limit, report_json, report_cursor, items, next_cursor);
out:
    store__give(s, c);
    return rc;
}

int
store_device_telemetry(store *s, int64_t tenant_id, const char *device_id, json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || !store__device_id_ok(device_id))
        goto out;
    c = store__take(s);
    if ((rc = device_visible(s, c, tenant_id, device_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_DEVICE_TELEMETRY)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "device telemetry");
    if (rc == STORE_OK)
        *out = json_pack("{s:I, s:I, s:o}", "dropped", store__col_id(st, 0), "reports",
                         store__col_id(st, 1), "last_upload", store__col_time(st, 2));
    else if (rc == STORE_NOTFOUND)
        *out = json_pack("{s:i, s:i, s:n}", "dropped", 0, "reports", 0, "last_upload");
    else
        goto out;
    rc = *out != NULL ? STORE_OK : STORE_ERR;
out:
    store__give(s, c);
    return rc;
}

int
store_report_export(store *s, int64_t tenant_id, int64_t since, int64_t until, int64_t *after_time,
                    int64_t *after_id, int limit, json_t **items)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *arr = NULL;
    int rc = STORE_INVALID, step;

    if (items != NULL)
        *items = NULL;
    if (items == NULL || after_time == NULL || after_id == NULL || limit < 1 || limit > PAGE_MAX ||
        since < 0 || until < since)
        goto out;
    c = store__take(s);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_REPORT_EXPORT)) == NULL || (arr = json_array()) == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, since) |
                               sqlite3_bind_int64(st, 3, until) |
                               sqlite3_bind_int64(st, 4, *after_time) |
                               sqlite3_bind_int64(st, 5, *after_id) |
                               sqlite3_bind_int(st, 6, limit))) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    int64_t t = *after_time, id = *after_id;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = report_json(st);
        if (row == NULL || json_array_append_new(arr, row) != 0)
            goto out;
        id = sqlite3_column_int64(st, 0);
        t = sqlite3_column_int64(st, 6);
    }
    if (step != SQLITE_DONE) {
        store__db_error(s, c, "report export");
        goto out;
    }
    *after_time = t;
    *after_id = id;
    *items = arr;
    arr = NULL;
    rc = STORE_OK;
out:
    json_decref(arr);
    store__give(s, c);
    return rc;
}

/* --- Crash rates --- */

static json_t *
hours(int64_t seconds)
{
    return json_real((double)seconds / HOUR);
}

static json_t *
rate(int64_t crashes, int64_t seconds)
{
    return seconds > 0 ? json_real((double)crashes * HOUR / (double)seconds) : json_null();
}

/* SQL_RATE_ITEMS */
static json_t *
rate_item_json(sqlite3_stmt *st)
{
    int64_t secs = sqlite3_column_int64(st, 3), crashes = sqlite3_column_int64(st, 4);
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "component", store__col_text(st, 0),
                     "image_version", store__col_text(st, 1), "period_start",
                     store__col_time(st, 2), "device_hours", hours(secs), "crashes",
                     (json_int_t)crashes, "crash_rate", rate(crashes, secs));
}

/* SQL_RATE_VERSIONS */
static json_t *
rate_version_json(sqlite3_stmt *st)
{
    int64_t secs = sqlite3_column_int64(st, 3), crashes = sqlite3_column_int64(st, 4);
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "component", store__col_text(st, 0),
                     "image_version", store__col_text(st, 1), "first_seen", store__col_time(st, 2),
                     "device_hours", hours(secs), "crashes", (json_int_t)crashes, "crash_rate",
                     rate(crashes, secs));
}

/* Runs one of the rate statements (?1 tenant, ?2 component, ?3 limit, ?4 granularity, ?5 since, ?6
 * until) into *out; *more is set when a row beyond max was there. */
static int
rate_rows(store *s, struct conn *c, const char *sql, int64_t tenant_id, const char *component,
          int64_t granularity, int64_t since, int64_t until, int max, store__row_json_fn fn,
          json_t **out, int *more)
{
    char next[CURSOR_BUF];
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR;
    if (st == NULL)
        goto out;
    rc =
        store__bound(s, c,
                     sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, component) |
                         sqlite3_bind_int(st, 3, max + 1) | sqlite3_bind_int64(st, 4, granularity) |
                         sqlite3_bind_int64(st, 5, since) | sqlite3_bind_int64(st, 6, until));
    if (rc == STORE_OK)
        rc = store__collect(s, c, st, max, fn, out, next);
    if (rc == STORE_OK && next[0] != '\0')
        *more = 1;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

int
store_crash_rates(store *s, int64_t tenant_id, const char *component, int64_t since, int64_t until,
                  int64_t granularity, int max_items, json_t **out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *items = NULL, *versions = NULL, *fleet = NULL;
    int rc = STORE_INVALID, more = 0;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || (component != NULL && !text_ok(component, proto_component_ok)) ||
        since < 0 || until < since || (granularity != HOUR && granularity != 24 * HOUR) ||
        max_items < 1 || max_items > 100000)
        goto out;
    c = store__take(s);
    if ((rc = rate_rows(s, c, SQL_RATE_ITEMS, tenant_id, component, granularity, since, until,
                        max_items, rate_item_json, &items, &more)) != STORE_OK ||
        (rc = rate_rows(s, c, SQL_RATE_VERSIONS, tenant_id, component, granularity, since, until,
                        max_items, rate_version_json, &versions, &more)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_RATE_FLEET)) == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, since) |
                               sqlite3_bind_int64(st, 3, until))) != STORE_OK ||
        (rc = store__step_row(s, c, st, "fleet hours")) != STORE_OK)
        goto out;
    int64_t secs = sqlite3_column_int64(st, 0), crashes = sqlite3_column_int64(st, 1),
            crash_hours = sqlite3_column_int64(st, 2);
    double free_hours = (double)secs / HOUR - (double)crash_hours;
    fleet = json_pack("{s:o, s:I, s:I, s:f}", "device_hours", hours(secs), "crashes",
                      (json_int_t)crashes, "crash_hours", (json_int_t)crash_hours,
                      "crash_free_device_hours", free_hours > 0 ? free_hours : 0.0);
    rc = STORE_ERR;
    if (fleet == NULL)
        goto out;
    *out = json_pack("{s:o, s:o, s:o, s:b}", "items", items, "versions", versions, "fleet", fleet,
                     "truncated", more);
    items = versions = fleet = NULL;
    if (*out != NULL)
        rc = STORE_OK;
out:
    json_decref(items);
    json_decref(versions);
    json_decref(fleet);
    store__give(s, c);
    return rc;
}

/* --- Flags --- */

int
store_flag_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                char *next_cursor)
{
    return store__list_newest(s, tenant_id, SQL_FLAG_LIST, pg, flag_json, items, next_cursor);
}

/* Runs a flag-raising statement (?1 ?2 its arguments, ?3 now) in its own transaction. */
static int
raise_flags(store *s, const char *sql, int64_t a1, int64_t a2, int64_t now, int *raised)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = NULL;
    int rc;

    *raised = 0;
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, sql)) == NULL)
        goto out;
    rc = run_write(s, c, st,
                   sqlite3_bind_int64(st, 1, a1) | sqlite3_bind_int64(st, 2, a2) |
                       sqlite3_bind_int64(st, 3, now),
                   "flag detection");
    if (rc == STORE_OK)
        *raised = sqlite3_changes(c->db);
out:
    rc = store__end_tx(s, c, rc);
    if (rc != STORE_OK)
        *raised = 0;
    store__give(s, c);
    return rc;
}

int
store_flag_new_buckets(store *s, int64_t since, int64_t min_devices, int64_t now, int *raised)
{
    int ignored;
    if (raised == NULL)
        raised = &ignored;
    *raised = 0;
    if (since < 0 || min_devices < 0)
        return STORE_INVALID;
    return raise_flags(s, SQL_FLAG_NEW_BUCKETS, since, min_devices, now, raised);
}

int
store_flag_rate_regressions(store *s, int64_t factor_pct, int64_t min_device_seconds, int64_t now,
                            int *raised)
{
    int ignored;
    if (raised == NULL)
        raised = &ignored;
    *raised = 0;
    if (factor_pct < 100 || min_device_seconds < 1)
        return STORE_INVALID;
    return raise_flags(s, SQL_FLAG_REGRESSIONS, factor_pct, min_device_seconds, now, raised);
}

/* --- Retention --- */

/* The highest report_id deleted per device in one purge batch. */
struct purge_mark {
    char device_id[DEVICE_ID_LEN + 1];
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
        rc = run_write(s, c, st,
                       bind_static(st, 1, m[i].device_id) | sqlite3_bind_int64(st, 2, m[i].max),
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
    return store__purge(s, SQL_CRASH_HOURS_PURGE, now - now % HOUR - HOUR, max_rows, NULL,
                        "crash hour purge");
}
