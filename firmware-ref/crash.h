/* crash: the reference device's failure reporting (docs/telemetry.md): a persistent, bounded
 * queue of reports in device storage, filled by the crash handler (crash), at every boot (reboot)
 * and periodically (heartbeat), and emptied only as the service acknowledges reports.
 *
 * Storage. One blob, "telemetry.json", replaced as a whole with one atomic adev_storage_write per
 * change, so that a power loss leaves the old queue or the new one, never a torn one:
 *   {"version": 1, "next_id": <next report_id>, "boot_id": "<32 hex>", "next_reason": "crash",
 *    "dropped": <lost, not yet sent>, "inflight_dropped": D, "inflight_first": <report_id>,
 *    "inflight_last": <report_id>, "sent_max": <report_id>, "counters": {"boots": n, ...},
 *    "reports": [<report as sent>, ...]}
 * Reports are kept oldest first in their wire form (docs/telemetry.md section 1); a crash may also
 * carry a local "repeats" (see below), which the upload turns into text in its "message".
 *
 * Report IDs are per device and strictly increasing. They are reserved in blocks in a second blob,
 * "telemetry-ids.json" ({"version": 1, "reserved": R}: every ID ever given is below R), written
 * once per block, so that a lost or unreadable queue blob never makes the device reuse an ID (the
 * service would take the new reports for duplicates). A device without either blob (first boot,
 * factory reset) starts at (unix time << 20) when its clock looks sane (later than every ID it gave
 * before, unless it made over 2^20 reports a second), else at a random point in [2^32, 2^52), which
 * reuses an old ID with negligible odds (a reused ID is answered "duplicate" and lost). Without a
 * clock in the options (tests), at 1.
 *
 * Bounds. At most `capacity` reports (default 32). A report made while the queue is full is
 * dropped and counted (sent as "dropped" with the next batch), except a crash-loop repeat: a crash
 * with the component, reason and pc of the newest queued crash only increments that crash's
 * repeat counter, so the first report of a loop stays and its repeats are not lost as "dropped".
 * (Not into a report of the batch in flight: its answer would delete the new count.)
 *
 * The "dropped" count (reports lost since the last acknowledged upload) travels with a batch and
 * stays with it until an answer is applied. The service adds a batch's count only when the
 * batch's highest report_id is above that of the last batch whose count it added (so a retry adds
 * nothing: docs/telemetry.md section 1), so: before each request the highest report_id ever sent
 * is written ("sent_max"); a count goes only with a batch holding a report never sent (its highest
 * report_id is above any counted before), and is written with that batch's report
 * IDs ("inflight_dropped", "inflight_first", "inflight_last") before it is first sent; every retry,
 * also after a power loss, sends exactly those reports with exactly that count. The service adds
 * it once. Reports dropped meanwhile wait for a later batch.
 *
 * Reboot reasons. A deliberate reset records its reason first (adev_crash_record records "crash",
 * or "watchdog" for a watchdog fault; adev_crash_set_reboot_reason "update", "user", ...); the
 * next adev_crash_boot reports it. Without a recorded reason the platform's reset cause is used,
 * else "unknown".
 *
 * Not thread-safe; on an MCU the fault handler calls adev_crash_record from its own context (no
 * other user of the queue runs then). Conventions of adev_hal.h: 0 / negative, NULL on failure. */
#ifndef ADEV_CRASH_H
#define ADEV_CRASH_H

#include "adev_hal.h"
#include "proto_telemetry.h"

#include <stddef.h>
#include <stdint.h>

#define ADEV_CRASH_BLOB "telemetry.json"
#define ADEV_CRASH_IDS_BLOB "telemetry-ids.json"
#define ADEV_CRASH_CAPACITY 32 /* default queue size */
#define ADEV_CRASH_CAPACITY_MAX 256

typedef struct adev_crashq adev_crashq;

struct adev_crash_opts {
    unsigned capacity; /* reports kept; 0: ADEV_CRASH_CAPACITY; at most ADEV_CRASH_CAPACITY_MAX */
    const adev_clock
        *clock; /* seeds the first report_id of a device (borrowed); NULL: start at 1 (tests) */
};

/* Opens the queue of st (borrowed; must outlive the queue), creating it when missing. An
 * unreadable or malformed queue blob is started afresh (IDs continue above the reservation);
 * a storage read error fails. NULL on failure. */
adev_crashq *adev_crash_open(adev_storage *st, const struct adev_crash_opts *opts);
/* Frees the in-memory state only: what is stored stays. Accepts NULL. */
void adev_crash_free(adev_crashq *q);

/* The start of a boot: a new boot_id, and (unless this is the device's first boot) a reboot report
 * whose reason is the one the previous boot recorded, else reset_cause (the platform's reset-cause
 * register: "watchdog", "power", ...; NULL when it cannot tell), else "unknown". Call once per
 * boot, before anything else is recorded. Returns what happened to the reboot report (enum
 * adev_crash_result, ADEV_CRASH_NONE on a first boot) or -1 (nothing changed). */
int adev_crash_boot(adev_crashq *q, const char *reset_cause, uint32_t uptime_s);

enum adev_crash_result {
    ADEV_CRASH_QUEUED = 0,  /* a new report with a new report_id */
    ADEV_CRASH_REPEAT = 1,  /* a crash-loop repeat: the newest queued crash counts one more */
    ADEV_CRASH_DROPPED = 2, /* the queue is full: counted in "dropped" */
    ADEV_CRASH_NONE = 3,    /* no report was due (first boot) */
};

/* A fault, as the platform's fault handler saw it. Strings are borrowed; they are cleaned to the
 * protocol's character sets and lengths (a crash report is never refused for its text): component
 * [a-z0-9._-] (1-64), image_version printable ASCII (1-32), reason and register names [a-z0-9_]
 * (1-32, 1-16), message valid UTF-8 of at most 256 bytes (cut at a character boundary). */
struct adev_crash_image {
    const char *component;
    const char *version;
};

struct adev_crash_info {
    const char *component;     /* the component that faulted, e.g. "aegis-app" */
    const char *image_version; /* its running version */
    const char *reason;        /* "hardfault", "watchdog", "assert", "stack_overflow", "oom", ... */
    uint64_t pc, lr;
    uint64_t return_addresses[PROTO_TEL_FRAMES_MAX];
    size_t n_return;
    struct {
        const char *name; /* "cfsr", "hfsr", "mmfar", "bfar", ... */
        uint64_t value;
    } regs[PROTO_TEL_REGISTERS_MAX];
    size_t n_regs;
    uint32_t uptime_s;
    uint32_t free_memory;
    const char *message; /* optional free text (e.g. an assertion), or NULL */
    /* What runs (optional: NULL/0 leaves it out). With it, the report also carries period_s, the
     * uptime since this boot's last heartbeat (or since boot), and images, so that the service
     * counts that running time, which no heartbeat will, in the crash rates (docs/telemetry.md
     * section 1): a version that crashes before its first heartbeat still has device-hours. */
    const struct adev_crash_image *images;
    size_t n_images;
};

/* Records a crash: a new report, a crash-loop repeat, or a drop (enum adev_crash_result), and the
 * next boot's reboot reason ("watchdog" when reason is "watchdog", else "crash"), in one write. A
 * repeat is counted on the newest queued crash of the same component, reason and pc if that report
 * was never sent (one sent may be stored already, and its repeats would be lost); its period_s
 * grows by the repeat's running time.
 * -1 on failure (nothing changed) or before adev_crash_boot. */
int adev_crash_record(adev_crashq *q, const struct adev_crash_info *ci);

struct adev_crash_counter {
    const char *name; /* [a-z0-9_], 1-32 */
    uint64_t value;   /* at most 2^53 - 1 */
};

/* A heartbeat: the device ran since the previous heartbeat of this boot (or since boot). */
struct adev_crash_heartbeat {
    uint32_t uptime_s;    /* now; period_s = uptime_s - the previous heartbeat's, in [1, 86400] */
    uint32_t free_memory; /* bytes */
    const struct adev_crash_image *images; /* what runs: 1 to PROTO_TEL_IMAGES_MAX */
    size_t n_images;
    /* extra counters of the platform (may be NULL/0); sent with the queue's own ("boots",
     * "crashes", "crash_repeats", "reports_dropped", "reports_rejected", "upload_batches"), at
     * most PROTO_TEL_COUNTERS_MAX in all */
    const struct adev_crash_counter *counters;
    size_t n_counters;
};

/* Queues a heartbeat (enum adev_crash_result), or -1. */
int adev_crash_heartbeat(adev_crashq *q, const struct adev_crash_heartbeat *hb);

/* Records why the device is about to reset: "crash", "watchdog", "power", "update", "user" or
 * "unknown" (reported by the next boot). 0 or -1. */
int adev_crash_set_reboot_reason(adev_crashq *q, const char *reason);

/* --- upload (device.c drives it; see docs/telemetry.md section 2) ---------------------------- */

/* The body of the next upload: {"version": 1, "dropped": D, "reports": [the oldest up to max
 * reports]} (max 1..PROTO_TEL_REPORTS_MAX; fewer when the body would pass PROTO_TEL_BODY_MAX, or
 * to repeat the batch a dropped count went with). Remembers the batch until adev_crash_ack or
 * adev_crash_abandon; may write the queue (a dropped count going in flight). Returns the body
 * (malloc'd, the caller frees it) and *n the number of reports, or NULL with *n = 0 when the queue
 * is empty, NULL with *n = 1 on failure. */
char *adev_crash_batch(adev_crashq *q, size_t max, size_t *n);

/* What one answer acknowledged. */
struct adev_crash_ack {
    unsigned stored, duplicates, rejected; /* results applied, by status */
    unsigned crashes;                      /* crash reports acknowledged (stored or duplicate) */
    unsigned crashes_rejected;
    size_t remaining; /* reports left in the queue */
};

/* Applies the 200 answer (body[0..len)) to the batch in flight: deletes every report of the batch
 * whose result is "stored", "duplicate" or "rejected" (counting the last) and the dropped count
 * it carried, in one write. Returns 0; -1 when the answer is malformed or acknowledges nothing of
 * the batch; -2 on a storage error (nothing changed then: the reports are sent again, and answered
 * "duplicate"). The batch is no longer in flight. */
int adev_crash_ack(adev_crashq *q, const char *body, size_t len, struct adev_crash_ack *out);

/* Forgets the batch in flight (its request failed); the reports stay queued. */
void adev_crash_abandon(adev_crashq *q);

/* --- state ----------------------------------------------------------------------------------- */

/* Number of reports in the queue. */
size_t adev_crash_pending(const adev_crashq *q);

struct adev_crash_stats {
    size_t queued;         /* reports in the queue */
    size_t queued_crashes; /* crash reports among them */
    uint64_t next_id;      /* the next report_id */
    uint64_t dropped;      /* lost and not yet sent (in flight included) */
    /* the queue's counters (cumulative for the device's storage) */
    uint64_t boots, crashes, crash_repeats, reports_dropped, reports_rejected, upload_batches;
    char boot_id[PROTO_TEL_BOOT_ID_HEX + 1]; /* "" before the first boot */
};

void adev_crash_get_stats(const adev_crashq *q, struct adev_crash_stats *out);

#endif
