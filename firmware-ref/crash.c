/* crash: the persistent, bounded failure-report queue (see crash.h). */
#include "crash.h"
#include "crash_int.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_VERSION 1
#define ID_BLOCK 256                         /* report IDs reserved per write of the IDs blob */
#define ID_MAX (PROTO_TEL_REPORT_ID_MAX + 1) /* report_id < 2^53 */
#define IDS_BLOB_MAX 1024
#define REPORT_BYTES_MAX 4096 /* a stored report is far below this */
#define SANE_CLOCK 1500000000 /* 2017: an earlier clock was never set */

/* The queue's own counters, in heartbeats and in adev_crash_stats. */
static const char *const counter_names[] = {
    "boots", "crashes", "crash_repeats", "reports_dropped", "reports_rejected", "upload_batches"};
#define N_COUNTERS (sizeof(counter_names) / sizeof(counter_names[0]))

/* --- small helpers --------------------------------------------------------------------------- */

int64_t
crash_get_int(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int
crash_set_int(json_t *o, const char *key, int64_t v)
{
    return json_object_set_new(o, key, json_integer((json_int_t)v));
}

void
crash_bump(json_t *doc, const char *counter, int64_t by)
{
    json_t *c = json_object_get(doc, "counters");
    int64_t v = crash_get_int(c, counter);
    v = v > PROTO_TEL_COUNTER_MAX - by ? PROTO_TEL_COUNTER_MAX : v + by;
    crash_set_int(c, counter, v);
}

static int
is_reboot_reason(const char *s)
{
    return s != NULL && proto_tel_reboot_reason_ok(s, strlen(s));
}

enum charset { CS_COMPONENT, CS_CODE, CS_PRINTABLE };

/* Copies at most max characters of s into out (max + 1 bytes): upper case folded (component,
 * code), a character outside the set replaced ('_', or '?' for printable). Empty: fallback. */
static void
clean(const char *s, enum charset cs, size_t max, char *out, const char *fallback)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p != '\0' && o < max;
         p++) {
        unsigned char c = *p;
        int ok;
        if (cs == CS_PRINTABLE) {
            ok = proto_version_ok((const char *)&c, 1);
        } else {
            if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c - 'A' + 'a');
            ok = strchr(cs == CS_COMPONENT ? PROTO_COMPONENT_CHARS : PROTO_TEL_NAME_CHARS, c) !=
                 NULL;
        }
        out[o++] = ok ? (char)c : (cs == CS_PRINTABLE ? '?' : '_');
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, max + 1, "%s", fallback);
}

/* Length of the valid UTF-8 character at p (1-4), or 0 when p does not start one (overlong
 * forms, surrogates and code points past U+10FFFF are invalid). */
static size_t
utf8_len(const unsigned char *p)
{
    unsigned c = p[0], cp, min;
    size_t n;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Copies valid UTF-8 from s into out (max + 1 bytes): at most max bytes, never half a character,
 * each invalid byte replaced by '?'. Returns the length. */
size_t
crash_clean_utf8(const char *s, char *out, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (p != NULL && *p != '\0') {
        size_t n = utf8_len(p);
        if (n == 0) {
            if (o + 1 > max)
                break;
            out[o++] = '?';
            p++;
            continue;
        }
        if (o + n > max)
            break;
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
    return o;
}

/* --- the stored queue ------------------------------------------------------------------------ */

static json_t *
fresh_doc(int64_t next_id)
{
    json_t *doc = json_pack("{s:i, s:I, s:I, s:{}, s:[]}", "version", BLOB_VERSION, "next_id",
                            (json_int_t)next_id, "dropped", (json_int_t)0, "counters", "reports");
    json_t *c = json_object_get(doc, "counters");
    for (size_t i = 0; c != NULL && i < N_COUNTERS; i++)
        crash_set_int(c, counter_names[i], 0);
    return doc;
}

static int
is_hex32(const char *s)
{
    uint8_t b[16];
    return s != NULL && strlen(s) == PROTO_TEL_BOOT_ID_HEX &&
           proto_unhex(s, PROTO_TEL_BOOT_ID_HEX, b, sizeof(b), 0) == 0;
}

/* Checks the shape of a loaded queue: what the rest of this file relies on. */
static int
valid_doc(json_t *doc)
{
    json_t *reports = json_object_get(doc, "reports"), *r;
    json_t *boot = json_object_get(doc, "boot_id"), *reason = json_object_get(doc, "next_reason");
    int64_t next_id = crash_get_int(doc, "next_id"), prev = 0;
    size_t i;

    if (!json_is_object(doc) || crash_get_int(doc, "version") != BLOB_VERSION || next_id < 1 ||
        next_id > ID_MAX || crash_get_int(doc, "dropped") < 0 ||
        crash_get_int(doc, "inflight_dropped") < 0 || !json_is_array(reports) ||
        !json_is_object(json_object_get(doc, "counters")))
        return 0;
    if (boot != NULL && !is_hex32(json_string_value(boot)))
        return 0;
    if (reason != NULL && !is_reboot_reason(json_string_value(reason)))
        return 0;
    json_array_foreach(reports, i, r)
    {
        int64_t id = crash_get_int(r, "report_id");
        if (!json_is_object(r) || !json_is_string(json_object_get(r, "type")) || id <= prev ||
            id >= next_id)
            return 0;
        prev = id;
    }
    return 1;
}

/* Reads the ID reservation: 0, -2 when there is none (or it is unreadable), -1 on a read error. */
static int
load_reserved(adev_storage *st, int64_t *reserved)
{
    uint8_t *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    int rc = adev_storage_read(st, ADEV_CRASH_IDS_BLOB, IDS_BLOB_MAX, &text, &len);
    if (rc == -1)
        goto out;
    rc = -2;
    if (text == NULL)
        goto out;
    root = json_loadb((const char *)text, len, 0, NULL);
    int64_t r = crash_get_int(root, "reserved");
    if (crash_get_int(root, "version") != BLOB_VERSION || r < 1 || r > ID_MAX)
        goto out;
    *reserved = r;
    rc = 0;
out:
    json_decref(root);
    free(text);
    return rc;
}

/* Writes next (stolen) as the queue, reserving IDs first when next_id passes the reservation.
 * On success q->doc becomes next; on failure q is unchanged. */
int
crash_commit(adev_crashq *q, json_t *next)
{
    int rc = -1;
    char *text = NULL;
    char ids[96];

    if (next == NULL)
        goto out;
    int64_t next_id = crash_get_int(next, "next_id");
    if (next_id > q->reserved) {
        int64_t r = next_id + ID_BLOCK > ID_MAX ? ID_MAX : next_id + ID_BLOCK;
        int n = snprintf(ids, sizeof(ids), "{\"version\":%d,\"reserved\":%" PRId64 "}",
                         BLOB_VERSION, r);
        if (n <= 0 || (size_t)n >= sizeof(ids) ||
            adev_storage_write(q->st, ADEV_CRASH_IDS_BLOB, ids, (size_t)n, 0) != 0)
            goto out;
        q->reserved = r;
    }
    text = json_dumps(next, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL || adev_storage_write(q->st, ADEV_CRASH_BLOB, text, strlen(text), 0) != 0)
        goto out;
    json_decref(q->doc);
    q->doc = next;
    next = NULL;
    rc = 0;
out:
    json_decref(next);
    free(text);
    return rc;
}

json_t *
crash_copy_doc(const adev_crashq *q)
{
    return json_deep_copy(q->doc);
}

/* Appends r (stolen; its "report_id" is set here) to next's reports, or counts it as dropped when
 * the queue is full. Returns enum adev_crash_result or -1. */
static int
enqueue(adev_crashq *q, json_t *next, json_t *r)
{
    json_t *reports = json_object_get(next, "reports");
    int64_t id = crash_get_int(next, "next_id");

    assert(q->capacity >= 1 && q->capacity <= ADEV_CRASH_CAPACITY_MAX);
    if (r == NULL)
        return -1;
    if (json_array_size(reports) >= q->capacity) {
        json_decref(r);
        crash_set_int(next, "dropped", crash_get_int(next, "dropped") + 1);
        crash_bump(next, "reports_dropped", 1);
        return ADEV_CRASH_DROPPED;
    }
    if (id >= ID_MAX || crash_set_int(r, "report_id", id) != 0 ||
        crash_set_int(next, "next_id", id + 1) != 0 || json_array_append_new(reports, r) != 0)
        return -1;
    return ADEV_CRASH_QUEUED;
}

/* The first report_id of a device that lost its state and cannot tell the time: a random point in
 * [2^32, 2^52), so that it reuses none of its old IDs (which the service would answer "duplicate")
 * but with odds of about 2^-20 for a device that made a million reports. 1 if no randomness. */
static int64_t
random_first_id(void)
{
    uint64_t r = 0;
    if (adev_random(&r, sizeof(r)) != 0)
        return 1;
    return (int64_t)((1ULL << 32) + r % ((1ULL << 52) - (1ULL << 32)));
}

adev_crashq *
adev_crash_open(adev_storage *st, const struct adev_crash_opts *opts)
{
    adev_crashq *q = NULL, *res = NULL;
    uint8_t *text = NULL;
    size_t len = 0;
    int64_t reserved = 0;

    if (st == NULL || (opts != NULL && opts->capacity > ADEV_CRASH_CAPACITY_MAX))
        goto out;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        goto out;
    q->st = st;
    q->capacity = opts != NULL && opts->capacity > 0 ? opts->capacity : ADEV_CRASH_CAPACITY;
    int have_ids = load_reserved(st, &reserved);
    if (have_ids == -1)
        goto out;
    q->reserved = have_ids == 0 ? reserved : 0;
    size_t max = (size_t)ADEV_CRASH_CAPACITY_MAX * REPORT_BYTES_MAX + 65536;
    int r = adev_storage_read(st, ADEV_CRASH_BLOB, max, &text, &len);
    if (r == -1)
        goto out;
    if (r == 0) {
        q->doc = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
        if (!valid_doc(q->doc)) { /* unreadable: start afresh, above every ID given */
            json_decref(q->doc);
            q->doc = NULL;
        }
    }
    if (q->doc == NULL) {
        int64_t first = 1;
        if (have_ids == 0) {
            first = reserved;
        } else if (opts != NULL && opts->clock != NULL) {
            int64_t now = adev_clock_now(opts->clock);
            if (now >= SANE_CLOCK && now < ((int64_t)1 << 32))
                first = now << 20;
            else
                first = random_first_id();
        }
        q->doc = fresh_doc(first);
        if (q->doc == NULL)
            goto out;
    }
    res = q;
    q = NULL;
out:
    adev_crash_free(q);
    free(text);
    return res;
}

void
adev_crash_free(adev_crashq *q)
{
    if (q == NULL)
        return;
    json_decref(q->doc);
    free(q);
}

/* --- records --------------------------------------------------------------------------------- */

int
adev_crash_boot(adev_crashq *q, const char *reset_cause, uint32_t uptime_s)
{
    int rc = -1, result = ADEV_CRASH_NONE;
    json_t *next = NULL;
    uint8_t raw[16];
    char boot_id[PROTO_TEL_BOOT_ID_HEX + 1], prev[PROTO_TEL_BOOT_ID_HEX + 1] = "";
    const char *reason;

    if (q == NULL || q->booted || adev_random(raw, sizeof(raw)) != 0)
        goto out;
    proto_hex(raw, sizeof(raw), boot_id);
    next = crash_copy_doc(q);
    if (next == NULL)
        goto out;
    const char *old = json_string_value(json_object_get(next, "boot_id"));
    if (old != NULL)
        snprintf(prev, sizeof(prev), "%s", old);
    reason = json_string_value(json_object_get(next, "next_reason"));
    if (!is_reboot_reason(reason))
        reason = is_reboot_reason(reset_cause) ? reset_cause : "unknown";
    if (prev[0] != '\0') {
        result =
            enqueue(q, next,
                    json_pack("{s:s, s:I, s:s, s:I, s:s, s:s}", "type",
                              proto_tel_type_name(PROTO_TEL_REBOOT), "report_id", (json_int_t)0,
                              "boot_id", boot_id, "uptime_s", (json_int_t)uptime_s, "reason",
                              reason, "previous_boot_id", prev));
        if (result < 0)
            goto out;
    }
    json_object_del(next, "next_reason"); /* reason points into it: used above only */
    if (json_object_set_new(next, "boot_id", json_string(boot_id)) != 0)
        goto out;
    crash_bump(next, "boots", 1);
    rc = crash_commit(q, next);
    next = NULL;
    if (rc != 0)
        goto out;
    q->booted = 1;
    q->hb_uptime = 0;
    rc = result;
out:
    json_decref(next);
    return rc;
}

/* The newest crash of the queue, or NULL. */
static json_t *
newest_crash(json_t *reports)
{
    for (size_t i = json_array_size(reports); i > 0; i--) {
        json_t *r = json_array_get(reports, i - 1);
        if (crash_is_type(r, PROTO_TEL_CRASH))
            return r;
    }
    return NULL;
}

int
crash_same_str(json_t *o, const char *key, const char *s)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL && strcmp(v, s) == 0;
}

int
crash_is_type(json_t *r, enum proto_tel_type t)
{
    assert(proto_tel_type_name((int)t) != NULL);
    return crash_same_str(r, "type", proto_tel_type_name((int)t));
}

/* {"component": "version"} of what runs (cleaned), or NULL. */
static json_t *
images_json(const struct adev_crash_image *im, size_t n)
{
    char comp[PROTO_COMPONENT_MAX + 1], version[PROTO_VERSION_MAX + 1];
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n && i < PROTO_TEL_IMAGES_MAX; i++) {
        clean(im[i].component, CS_COMPONENT, PROTO_COMPONENT_MAX, comp, "unknown");
        clean(im[i].version, CS_PRINTABLE, PROTO_VERSION_MAX, version, "unknown");
        if (json_object_set_new(o, comp, json_string(version)) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

/* The running time a crash reports: its uptime since this boot's last heartbeat, when it says what
 * runs (0: none). */
static uint32_t
crash_period(const adev_crashq *q, const struct adev_crash_info *ci)
{
    if (ci->images == NULL || ci->n_images == 0 || ci->uptime_s <= q->hb_uptime)
        return 0;
    uint32_t p = ci->uptime_s - q->hb_uptime;
    return p > PROTO_TEL_PERIOD_MAX ? PROTO_TEL_PERIOD_MAX : p;
}

static json_t *
crash_report(adev_crashq *q, const struct adev_crash_info *ci, const char *component,
             const char *reason, const char *pc)
{
    json_t *r = NULL, *res = NULL, *ret = NULL, *regs = NULL;
    char version[PROTO_VERSION_MAX + 1], lr[PROTO_TEL_ADDR_LEN], a[PROTO_TEL_ADDR_LEN];
    char name[PROTO_TEL_REGISTER_NAME_MAX + 1];
    char message[PROTO_TEL_MESSAGE_MAX + 1];

    clean(ci->image_version, CS_PRINTABLE, PROTO_VERSION_MAX, version, "unknown");
    proto_tel_addr_format(ci->lr, lr);
    r = json_pack("{s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "type",
                  proto_tel_type_name(PROTO_TEL_CRASH), "report_id", (json_int_t)0, "boot_id",
                  json_string_value(json_object_get(q->doc, "boot_id")), "uptime_s",
                  (json_int_t)ci->uptime_s, "component", component, "image_version", version,
                  "reason", reason, "pc", pc, "lr", lr);
    ret = json_array();
    regs = json_object();
    if (r == NULL || ret == NULL || regs == NULL)
        goto out;
    for (size_t i = 0; i < ci->n_return && i < PROTO_TEL_FRAMES_MAX; i++) {
        proto_tel_addr_format(ci->return_addresses[i], a);
        if (json_array_append_new(ret, json_string(a)) != 0)
            goto out;
    }
    for (size_t i = 0; i < ci->n_regs && i < PROTO_TEL_REGISTERS_MAX; i++) {
        clean(ci->regs[i].name, CS_CODE, PROTO_TEL_REGISTER_NAME_MAX, name, "reg");
        proto_tel_addr_format(ci->regs[i].value, a);
        if (json_object_set_new(regs, name, json_string(a)) != 0)
            goto out;
    }
    if (json_object_set(r, "return_addresses", ret) != 0 ||
        json_object_set(r, "fault_registers", regs) != 0 ||
        crash_set_int(r, "free_memory", ci->free_memory) != 0)
        goto out;
    if (ci->message != NULL) {
        size_t n = crash_clean_utf8(ci->message, message, PROTO_TEL_MESSAGE_MAX);
        if (json_object_set_new(r, "message", json_stringn(message, n)) != 0)
            goto out;
    }
    uint32_t period = crash_period(q, ci);
    if (period > 0 &&
        (crash_set_int(r, "period_s", period) != 0 ||
         json_object_set_new(r, "images", images_json(ci->images, ci->n_images)) != 0))
        goto out;
    res = r;
    r = NULL;
out:
    json_decref(ret);
    json_decref(regs);
    json_decref(r);
    return res;
}

int
adev_crash_record(adev_crashq *q, const struct adev_crash_info *ci)
{
    int rc = -1, result;
    json_t *next = NULL;
    char component[PROTO_COMPONENT_MAX + 1], reason[PROTO_TEL_REASON_MAX + 1],
        pc[PROTO_TEL_ADDR_LEN];

    if (q == NULL || ci == NULL || !q->booted)
        goto out;
    clean(ci->component, CS_COMPONENT, PROTO_COMPONENT_MAX, component, "unknown");
    clean(ci->reason, CS_CODE, PROTO_TEL_REASON_MAX, reason, "unknown");
    proto_tel_addr_format(ci->pc, pc);
    next = crash_copy_doc(q);
    if (next == NULL)
        goto out;
    json_t *reports = json_object_get(next, "reports");
    json_t *last = newest_crash(reports);
    uint32_t period = crash_period(q, ci);
    int counted = 0; /* the period is in a report */
    if (json_array_size(reports) >= q->capacity && last != NULL &&
        crash_get_int(last, "report_id") > crash_get_int(q->doc, "sent_max") &&
        crash_same_str(last, "component", component) && crash_same_str(last, "reason", reason) &&
        crash_same_str(last, "pc", pc)) {
        int64_t p = crash_get_int(last, "period_s") + period;
        counted = period > 0 && json_object_get(last, "images") != NULL;
        if (crash_set_int(last, "repeats", crash_get_int(last, "repeats") + 1) != 0 ||
            (counted && crash_set_int(last, "period_s",
                                      p > PROTO_TEL_PERIOD_MAX ? PROTO_TEL_PERIOD_MAX : p) != 0))
            goto out;
        crash_bump(next, "crash_repeats", 1);
        result = ADEV_CRASH_REPEAT;
    } else {
        result = enqueue(q, next, crash_report(q, ci, component, reason, pc));
        if (result < 0)
            goto out;
        counted = period > 0 && result == ADEV_CRASH_QUEUED;
    }
    crash_bump(next, "crashes", 1);
    if (json_object_set_new(next, "next_reason",
                            json_string(strcmp(reason, "watchdog") == 0 ? "watchdog" : "crash")) !=
        0)
        goto out;
    rc = crash_commit(q, next);
    next = NULL;
    if (rc == 0) {
        rc = result;
        if (counted) /* a later heartbeat of this boot counts from here, else from before */
            q->hb_uptime = ci->uptime_s;
    }
out:
    json_decref(next);
    return rc;
}

int
adev_crash_heartbeat(adev_crashq *q, const struct adev_crash_heartbeat *hb)
{
    int rc = -1, result;
    json_t *next = NULL, *r = NULL, *images = NULL, *counters = NULL;
    char name[PROTO_TEL_COUNTER_NAME_MAX + 1];

    if (q == NULL || hb == NULL || !q->booted || hb->n_images == 0 ||
        (hb->n_counters > 0 && hb->counters == NULL) || hb->images == NULL)
        goto out;
    images = images_json(hb->images, hb->n_images);
    counters = json_object();
    if (images == NULL || counters == NULL)
        goto out;
    json_t *own = json_object_get(q->doc, "counters");
    for (size_t i = 0; i < N_COUNTERS; i++) {
        if (crash_set_int(counters, counter_names[i], crash_get_int(own, counter_names[i])) != 0)
            goto out;
    }
    for (size_t i = 0; i < hb->n_counters && json_object_size(counters) < PROTO_TEL_COUNTERS_MAX;
         i++) {
        clean(hb->counters[i].name, CS_CODE, PROTO_TEL_COUNTER_NAME_MAX, name, "counter");
        uint64_t v = hb->counters[i].value;
        if (json_object_get(counters, name) == NULL &&
            crash_set_int(counters, name,
                          v > (uint64_t)PROTO_TEL_COUNTER_MAX ? PROTO_TEL_COUNTER_MAX
                                                              : (int64_t)v) != 0)
            goto out;
    }
    uint32_t period = hb->uptime_s > q->hb_uptime ? hb->uptime_s - q->hb_uptime : 1;
    period = period > PROTO_TEL_PERIOD_MAX ? PROTO_TEL_PERIOD_MAX : period;
    r = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:O, s:O}", "type",
                  proto_tel_type_name(PROTO_TEL_HEARTBEAT), "report_id", (json_int_t)0, "boot_id",
                  json_string_value(json_object_get(q->doc, "boot_id")), "uptime_s",
                  (json_int_t)hb->uptime_s, "period_s", (json_int_t)period, "free_memory",
                  (json_int_t)hb->free_memory, "images", images, "counters", counters);
    next = crash_copy_doc(q);
    if (r == NULL || next == NULL)
        goto out;
    result = enqueue(q, next, r);
    r = NULL;
    if (result < 0)
        goto out;
    rc = crash_commit(q, next);
    next = NULL;
    if (rc != 0)
        goto out;
    q->hb_uptime = hb->uptime_s;
    rc = result;
out:
    json_decref(r);
    json_decref(next);
    json_decref(images);
    json_decref(counters);
    return rc;
}

int
adev_crash_set_reboot_reason(adev_crashq *q, const char *reason)
{
    json_t *next = NULL;
    if (q == NULL || !is_reboot_reason(reason))
        return -1;
    next = crash_copy_doc(q);
    if (next == NULL || json_object_set_new(next, "next_reason", json_string(reason)) != 0) {
        json_decref(next);
        return -1;
    }
    return crash_commit(q, next);
}

/* --- state ----------------------------------------------------------------------------------- */

size_t
adev_crash_pending(const adev_crashq *q)
{
    return q != NULL ? json_array_size(json_object_get(q->doc, "reports")) : 0;
}

void
adev_crash_get_stats(const adev_crashq *q, struct adev_crash_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (q == NULL)
        return;
    json_t *reports = json_object_get(q->doc, "reports"), *r, *c;
    size_t i;
    out->queued = json_array_size(reports);
    json_array_foreach(reports, i, r)
    {
        out->queued_crashes += crash_is_type(r, PROTO_TEL_CRASH);
    }
    out->next_id = (uint64_t)crash_get_int(q->doc, "next_id");
    out->dropped =
        (uint64_t)(crash_get_int(q->doc, "dropped") + crash_get_int(q->doc, "inflight_dropped"));
    c = json_object_get(q->doc, "counters");
    out->boots = (uint64_t)crash_get_int(c, "boots");
    out->crashes = (uint64_t)crash_get_int(c, "crashes");
    out->crash_repeats = (uint64_t)crash_get_int(c, "crash_repeats");
    out->reports_dropped = (uint64_t)crash_get_int(c, "reports_dropped");
    out->reports_rejected = (uint64_t)crash_get_int(c, "reports_rejected");
    out->upload_batches = (uint64_t)crash_get_int(c, "upload_batches");
    const char *b = json_string_value(json_object_get(q->doc, "boot_id"));
    snprintf(out->boot_id, sizeof(out->boot_id), "%s", b != NULL ? b : "");
}
