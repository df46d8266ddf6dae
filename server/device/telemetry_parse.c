/* telemetry_parse: the upload body of POST /v1/device/telemetry (docs/telemetry.md 1) into a
 * batch for the writer. Pure: no SQL, no HTTP, no global state. */
#include "telemetry_parse.h"

#include "jsonx.h"
#include "proto_fields.h"
#include "proto_telemetry.h"
#include "util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- field checks: each returns 0, or -1 with the reason in it->error --- */

static int reject(struct ingest_item *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
reject(struct ingest_item *it, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->error, sizeof(it->error), fmt, ap);
    va_end(ap);
    util_utf8_repair(it->error); /* a quoted key may have been cut inside a character */
    it->rejected = 1;
    return -1;
}

/* The service could not check the item for want of memory: the whole upload is answered 503, so
 * that the device keeps the report and sends it again (a "rejected" one would be deleted). */
static int
oom(struct ingest_item *it)
{
    it->oom = 1;
    return reject(it, "out of memory");
}

/* A string field; *out borrowed from the report. */
static int
str_field(struct ingest_item *it, const json_t *rep, const char *key, const char **out, size_t *len)
{
    const json_t *v = json_object_get(rep, key);
    if (v == NULL)
        return reject(it, "%s: required", key);
    if (!json_is_string(v))
        return reject(it, "%s: must be a string", key);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static int
int_field(struct ingest_item *it, const json_t *rep, const char *key, int64_t min, int64_t max,
          int64_t *out)
{
    const json_t *v = json_object_get(rep, key);
    if (v == NULL)
        return reject(it, "%s: required", key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return reject(it, "%s: must be an integer from %lld to %lld", key, (long long)min,
                      (long long)max);
    *out = json_integer_value(v);
    return 0;
}

/* A string of set characters. */
static int
name_field(struct ingest_item *it, const json_t *rep, const char *key, size_t max, const char *set,
           const char *what, const char **out)
{
    size_t len = 0;
    if (str_field(it, rep, key, out, &len) != 0)
        return -1;
    if (!proto_chars_ok(*out, len, 1, max, set))
        return reject(it, "%s: must be 1 to %zu characters of %s", key, max, what);
    return 0;
}

static int
hex_id_field(struct ingest_item *it, const json_t *rep, const char *key, const char **out)
{
    size_t len = 0;
    if (str_field(it, rep, key, out, &len) != 0)
        return -1;
    if (!proto_hex_ok(*out, len, PROTO_TEL_BOOT_ID_HEX / 2))
        return reject(it, "%s: must be 32 lower-case hex characters", key);
    return 0;
}

static int
addr_value(struct ingest_item *it, const json_t *v, const char *what, char out[STORE_TEL_ADDR_LEN])
{
    if (!json_is_string(v) ||
        proto_tel_addr_norm(json_string_value(v), json_string_length(v), out) != 0)
        return reject(it, "%s: must be \"0x\" and 1 to 16 hex digits", what);
    return 0;
}

static int
addr_field(struct ingest_item *it, const json_t *rep, const char *key, char out[STORE_TEL_ADDR_LEN])
{
    const json_t *v = json_object_get(rep, key);
    if (v == NULL)
        return reject(it, "%s: required", key);
    return addr_value(it, v, key, out);
}

/* Keys of a report: the common ones and those of its type. */
static int
keys_ok(struct ingest_item *it, const json_t *rep, const char *const *extra)
{
    static const char *const common[] = {"type", "report_id", "boot_id", "uptime_s", NULL};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)rep, key, v)
    {
        int known = 0;
        for (size_t i = 0; common[i] != NULL && !known; i++)
            known = strcmp(key, common[i]) == 0;
        for (size_t i = 0; extra[i] != NULL && !known; i++)
            known = strcmp(key, extra[i]) == 0;
        if (!known)
            return reject(it, "unknown field '%.32s'", key);
    }
    return 0;
}

/* Dumps o compactly with sorted keys into a new text owned by the item. */
static int
own_json(struct ingest_item *it, size_t slot, const json_t *o, const char **out)
{
    it->owned[slot] = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (it->owned[slot] == NULL)
        return oom(it);
    *out = it->owned[slot];
    return 0;
}

/* --- report types --- */

/* "images": what ran during the report's period_s, {"component": "version"}, into r->image_*;
 * its normalised JSON text into the item's owned[1]. */
static int
images_field(struct ingest_item *it, const json_t *rep)
{
    struct store_report *r = &it->rep;
    const json_t *images = json_object_get(rep, "images"), *v;
    const char *key;
    if (images == NULL || !json_is_object(images) || json_object_size(images) < 1 ||
        json_object_size(images) > PROTO_TEL_IMAGES_MAX)
        return reject(it, "images: must be an object of 1 to %d component versions",
                      PROTO_TEL_IMAGES_MAX);
    json_object_foreach((json_t *)images, key, v)
    {
        if (!proto_component_ok(key, strlen(key)))
            return reject(it, "images: components must be 1 to 64 characters of [a-z0-9._-]");
        if (!json_is_string(v) || !proto_version_ok(json_string_value(v), json_string_length(v)))
            return reject(it, "images.%s: must be 1 to 32 printable ASCII characters", key);
        r->image_component[r->nimages] = key;
        r->image_versions[r->nimages] = json_string_value(v);
        r->nimages++;
    }
    return own_json(it, 1, images, &r->images);
}

static int
parse_crash(struct ingest_item *it, const json_t *rep)
{
    static const char *const keys[] = {
        "component",       "image_version", "reason",  "pc",       "lr",     "return_addresses",
        "fault_registers", "free_memory",   "message", "period_s", "images", NULL};
    struct store_report *r = &it->rep;
    const json_t *ra, *regs, *msg, *v;
    json_t *norm = NULL;
    const char *key;
    size_t len = 0, i;
    int rc = -1;

    if (keys_ok(it, rep, keys) != 0 ||
        name_field(it, rep, "component", PROTO_COMPONENT_MAX, PROTO_COMPONENT_CHARS, "[a-z0-9._-]",
                   &r->component) != 0)
        goto out;
    if (str_field(it, rep, "image_version", &r->image_version, &len) != 0)
        goto out;
    if (!proto_version_ok(r->image_version, len)) {
        reject(it, "image_version: must be 1 to 32 printable ASCII characters");
        goto out;
    }
    if (name_field(it, rep, "reason", PROTO_TEL_REASON_MAX, PROTO_TEL_NAME_CHARS, "[a-z0-9_]",
                   &r->reason) != 0 ||
        addr_field(it, rep, "pc", r->pc) != 0 || addr_field(it, rep, "lr", r->lr) != 0 ||
        int_field(it, rep, "free_memory", 0, PROTO_TEL_U32_MAX, &r->free_memory) != 0)
        goto out;
    ra = json_object_get(rep, "return_addresses");
    if (ra == NULL || !json_is_array(ra) || json_array_size(ra) > PROTO_TEL_FRAMES_MAX) {
        reject(it, "return_addresses: must be an array of 0 to %d addresses", PROTO_TEL_FRAMES_MAX);
        goto out;
    }
    json_array_foreach(ra, i, v)
    {
        char what[48];
        snprintf(what, sizeof(what), "return_addresses[%zu]", i);
        if (addr_value(it, v, what, r->ra[i]) != 0)
            goto out;
    }
    r->nra = json_array_size(ra);
    regs = json_object_get(rep, "fault_registers");
    if (regs == NULL || !json_is_object(regs) || json_object_size(regs) > PROTO_TEL_REGISTERS_MAX) {
        reject(it, "fault_registers: must be an object of 0 to %d registers",
               PROTO_TEL_REGISTERS_MAX);
        goto out;
    }
    if ((norm = json_object()) == NULL) {
        oom(it);
        goto out;
    }
    json_object_foreach((json_t *)regs, key, v)
    {
        char addr[STORE_TEL_ADDR_LEN], what[48];
        if (!proto_chars_ok(key, strlen(key), 1, PROTO_TEL_REGISTER_NAME_MAX,
                            PROTO_TEL_NAME_CHARS)) {
            reject(it, "fault_registers: names must be 1 to %d characters of [a-z0-9_]",
                   PROTO_TEL_REGISTER_NAME_MAX);
            goto out;
        }
        snprintf(what, sizeof(what), "fault_registers.%s", key);
        if (addr_value(it, v, what, addr) != 0)
            goto out;
        if (json_object_set_new(norm, key, json_string(addr)) != 0) {
            oom(it);
            goto out;
        }
    }
    if (own_json(it, 0, norm, &r->fault_registers) != 0)
        goto out;
    msg = json_object_get(rep, "message");
    if (msg != NULL) {
        if (!json_is_string(msg) || json_string_length(msg) > PROTO_TEL_MESSAGE_MAX) {
            reject(it, "message: must be a string of at most %d bytes", PROTO_TEL_MESSAGE_MAX);
            goto out;
        }
        r->message = json_string_value(msg);
        r->message_len = json_string_length(msg);
    }
    /* the uptime since the boot's last heartbeat, which no heartbeat will count: both or neither */
    if (json_object_get(rep, "period_s") != NULL || json_object_get(rep, "images") != NULL) {
        if (int_field(it, rep, "period_s", 1, PROTO_TEL_PERIOD_MAX, &r->period_s) != 0 ||
            images_field(it, rep) != 0)
            goto out;
    }
    r->type = STORE_REPORT_CRASH;
    rc = 0;
out:
    json_decref(norm);
    return rc;
}

static int
parse_heartbeat(struct ingest_item *it, const json_t *rep)
{
    static const char *const keys[] = {"period_s", "free_memory", "images", "counters", NULL};
    struct store_report *r = &it->rep;
    const json_t *counters, *v;
    const char *key;

    if (keys_ok(it, rep, keys) != 0 ||
        int_field(it, rep, "period_s", 1, PROTO_TEL_PERIOD_MAX, &r->period_s) != 0 ||
        int_field(it, rep, "free_memory", 0, PROTO_TEL_U32_MAX, &r->free_memory) != 0)
        return -1;
    if (images_field(it, rep) != 0)
        return -1;
    counters = json_object_get(rep, "counters");
    if (counters == NULL || !json_is_object(counters) ||
        json_object_size(counters) > PROTO_TEL_COUNTERS_MAX)
        return reject(it, "counters: must be an object of 0 to %d counters",
                      PROTO_TEL_COUNTERS_MAX);
    json_object_foreach((json_t *)counters, key, v)
    {
        if (!proto_chars_ok(key, strlen(key), 1, PROTO_TEL_COUNTER_NAME_MAX, PROTO_TEL_NAME_CHARS))
            return reject(it, "counters: names must be 1 to %d characters of [a-z0-9_]",
                          PROTO_TEL_COUNTER_NAME_MAX);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > PROTO_TEL_COUNTER_MAX)
            return reject(it, "counters.%s: must be an integer from 0 to %lld", key,
                          PROTO_TEL_COUNTER_MAX);
    }
    if (own_json(it, 2, counters, &r->counters) != 0)
        return -1;
    r->type = STORE_REPORT_HEARTBEAT;
    return 0;
}

static int
parse_reboot(struct ingest_item *it, const json_t *rep)
{
    static const char *const keys[] = {"reason", "previous_boot_id", NULL};
    struct store_report *r = &it->rep;
    size_t len = 0;

    if (keys_ok(it, rep, keys) != 0 || str_field(it, rep, "reason", &r->reason, &len) != 0)
        return -1;
    if (strlen(r->reason) != len || !proto_tel_reboot_reason_ok(r->reason, len))
        return reject(it, "reason: must be crash, watchdog, power, update, user or unknown");
    if (hex_id_field(it, rep, "previous_boot_id", &r->previous_boot_id) != 0)
        return -1;
    r->type = STORE_REPORT_REBOOT;
    return 0;
}

/* One report of the batch into it (rejected with a reason when malformed). */
static void
parse_report(struct ingest_item *it, const json_t *rep, const struct ingest_batch *b,
             const struct devauth_identity *dev)
{
    struct store_report *r = &it->rep;
    const json_t *id = json_object_get(rep, "report_id");
    const char *type = NULL;
    size_t len = 0;

    it->report_id = -1;
    if (!json_is_object(rep)) {
        reject(it, "a report must be a JSON object");
        return;
    }
    if (json_is_integer(id) && json_integer_value(id) >= 1 &&
        json_integer_value(id) <= PROTO_TEL_REPORT_ID_MAX)
        it->report_id = json_integer_value(id);
    r->tenant_id = dev->tenant_id;
    r->device_id = b->device_id;
    r->group_id = dev->group_id;
    r->product_id = dev->product_id;
    if (str_field(it, rep, "type", &type, &len) != 0 ||
        int_field(it, rep, "report_id", 1, PROTO_TEL_REPORT_ID_MAX, &r->report_id) != 0 ||
        hex_id_field(it, rep, "boot_id", &r->boot_id) != 0 ||
        int_field(it, rep, "uptime_s", 0, PROTO_TEL_U32_MAX, &r->uptime_s) != 0)
        return;
    switch (proto_tel_type_parse(type, len)) {
    case PROTO_TEL_CRASH:
        (void)parse_crash(it, rep);
        break;
    case PROTO_TEL_HEARTBEAT:
        (void)parse_heartbeat(it, rep);
        break;
    case PROTO_TEL_REBOOT:
        (void)parse_reboot(it, rep);
        break;
    default:
        reject(it, "type: must be crash, heartbeat or reboot");
    }
}

int
telemetry_parse_batch(json_t *body, const struct devauth_identity *dev, struct ingest_batch **out,
                      char *err, size_t errlen)
{
    static const char *const keys[] = {"version", "dropped", "reports", NULL};
    const json_t *reports, *rep;
    int64_t version = 0, dropped = 0;
    size_t i;

    *out = NULL;
    if (jsonx_only_keys(body, keys, err, errlen) != 0 ||
        jsonx_int(body, "version", 1, 0, PROTO_VERSION, PROTO_VERSION, &version, NULL, err,
                  errlen) != 0 ||
        jsonx_int(body, "dropped", 1, 0, 0, PROTO_TEL_U32_MAX, &dropped, NULL, err, errlen) != 0) {
        return TELEMETRY_PARSE_INVALID;
    }
    reports = json_object_get(body, "reports");
    if (!json_is_array(reports) || json_array_size(reports) < 1 ||
        json_array_size(reports) > PROTO_TEL_REPORTS_MAX) {
        snprintf(err, errlen, "field 'reports' must be an array of 1 to %d reports",
                 PROTO_TEL_REPORTS_MAX);
        return TELEMETRY_PARSE_INVALID;
    }
    struct ingest_batch *b = ingest_batch_new(json_array_size(reports));
    if (b == NULL)
        goto oom;
    b->json = json_incref(body);
    b->n = json_array_size(reports);
    snprintf(b->device_id, sizeof(b->device_id), "%s", dev->device_id);
    b->upload.tenant_id = dev->tenant_id;
    b->upload.device_id = b->device_id;
    b->upload.dropped = dropped;
    json_array_foreach(reports, i, rep)
    {
        parse_report(&b->items[i], rep, b, dev);
        if (b->items[i].oom)
            goto oom;
        b->nvalid += !b->items[i].rejected;
        if (b->items[i].report_id > b->upload.last_report_id)
            b->upload.last_report_id = b->items[i].report_id;
    }
    *out = b;
    return TELEMETRY_PARSE_OK;
oom:
    ingest_batch_free(b);
    snprintf(err, errlen, "out of memory");
    return TELEMETRY_PARSE_OOM;
}
