/* The shared fixture of the reference device's crash-queue tests (test_fw_crash.c: the queue and
 * its records; test_fw_crash_upload.c: batches, answers and retries): the wire contract of
 * docs/telemetry.md section 1 that every report the queue writes must keep, and records made the
 * same way by both. The field rules and limits are proto's; which fields are checked, and that
 * every body is, is the tests'. Functions are static inline so that each file compiles only what
 * it uses. */
#ifndef AEGIS_TEST_FW_CRASH_FX_H
#define AEGIS_TEST_FW_CRASH_FX_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crash.h"
#include "proto_fields.h"
#include "proto_telemetry.h"

#include <jansson.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- the wire contract (docs/telemetry.md section 1), checked on every body ------------------ */

static inline size_t
len_of(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

static inline const char *
str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A name of registers, counters and reasons: 1..max of [a-z0-9_]. */
static inline int
name_ok(const char *s, size_t max)
{
    return proto_chars_ok(s, len_of(s), 1, max, PROTO_TEL_NAME_CHARS);
}

static inline int
boot_id_ok(const char *s)
{
    return proto_hex_ok(s, len_of(s), PROTO_TEL_BOOT_ID_HEX / 2);
}

/* An address as the device must write it: already in the normal form the service stores. */
static inline int
addr_ok(json_t *v)
{
    const char *s = json_string_value(v);
    char norm[PROTO_TEL_ADDR_LEN];
    return s != NULL && proto_tel_addr_norm(s, strlen(s), norm) == 0 && strcmp(s, norm) == 0;
}

static inline int
int_in(json_t *o, const char *key, int64_t lo, int64_t hi)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

/* Only these keys (and each required one unless marked optional with '?'). */
static inline int
keys_ok(json_t *o, const char *const *keys, size_t n)
{
    const char *k;
    json_t *v;
    size_t required = 0, found = 0;
    for (size_t i = 0; i < n; i++)
        required += keys[i][0] != '?';
    json_object_foreach(o, k, v)
    {
        int known = 0;
        for (size_t i = 0; i < n; i++) {
            const char *name = keys[i][0] == '?' ? keys[i] + 1 : keys[i];
            if (strcmp(k, name) == 0) {
                known = 1;
                found += keys[i][0] != '?';
            }
        }
        if (!known)
            return 0;
    }
    return found == required;
}

/* {"component": "version"} of 1..PROTO_TEL_IMAGES_MAX images. */
static inline int
images_ok(json_t *im)
{
    const char *k;
    json_t *v;
    if (!json_is_object(im) || json_object_size(im) < 1 ||
        json_object_size(im) > PROTO_TEL_IMAGES_MAX)
        return 0;
    json_object_foreach(im, k, v)
    {
        const char *version = json_string_value(v);
        if (!proto_component_ok(k, strlen(k)) || !proto_version_ok(version, len_of(version)))
            return 0;
    }
    return 1;
}

static inline const char *
crash_problem(json_t *r)
{
    static const char *const keys[] = {
        "type",     "report_id", "boot_id", "uptime_s",         "component",       "image_version",
        "reason",   "pc",        "lr",      "return_addresses", "fault_registers", "free_memory",
        "?message", "?period_s", "?images"};
    if (!keys_ok(r, keys, N(keys)))
        return "crash keys";
    json_t *cim = json_object_get(r, "images");
    if ((json_object_get(r, "period_s") != NULL) != (cim != NULL) ||
        (cim != NULL && (!int_in(r, "period_s", 1, PROTO_TEL_PERIOD_MAX) || !images_ok(cim))))
        return "crash period";
    const char *component = str_of(r, "component"), *version = str_of(r, "image_version");
    if (!proto_component_ok(component, len_of(component)) ||
        !proto_version_ok(version, len_of(version)) ||
        !name_ok(str_of(r, "reason"), PROTO_TEL_REASON_MAX) || !addr_ok(json_object_get(r, "pc")) ||
        !addr_ok(json_object_get(r, "lr")) || !int_in(r, "free_memory", 0, PROTO_TEL_U32_MAX))
        return "crash fields";
    json_t *ra = json_object_get(r, "return_addresses"), *v;
    size_t i;
    const char *k;
    if (!json_is_array(ra) || json_array_size(ra) > PROTO_TEL_FRAMES_MAX)
        return "return_addresses";
    json_array_foreach(ra, i, v)
    {
        if (!addr_ok(v))
            return "return address";
    }
    json_t *fr = json_object_get(r, "fault_registers");
    if (!json_is_object(fr) || json_object_size(fr) > PROTO_TEL_REGISTERS_MAX)
        return "fault_registers";
    json_object_foreach(fr, k, v)
    {
        if (!name_ok(k, PROTO_TEL_REGISTER_NAME_MAX) || !addr_ok(v))
            return "fault register";
    }
    json_t *m = json_object_get(r, "message");
    if (m != NULL && (!json_is_string(m) || json_string_length(m) > PROTO_TEL_MESSAGE_MAX))
        return "message";
    return NULL;
}

static inline const char *
heartbeat_problem(json_t *r)
{
    static const char *const keys[] = {"type",     "report_id",   "boot_id", "uptime_s",
                                       "period_s", "free_memory", "images",  "counters"};
    if (!keys_ok(r, keys, N(keys)) || !int_in(r, "period_s", 1, PROTO_TEL_PERIOD_MAX) ||
        !int_in(r, "free_memory", 0, PROTO_TEL_U32_MAX))
        return "heartbeat fields";
    if (!images_ok(json_object_get(r, "images")))
        return "images";
    json_t *co = json_object_get(r, "counters"), *v;
    const char *k;
    if (!json_is_object(co) || json_object_size(co) > PROTO_TEL_COUNTERS_MAX)
        return "counters";
    json_object_foreach(co, k, v)
    {
        if (!name_ok(k, PROTO_TEL_COUNTER_NAME_MAX) || !int_in(co, k, 0, PROTO_TEL_COUNTER_MAX))
            return "counter";
    }
    return NULL;
}

static inline const char *
reboot_problem(json_t *r)
{
    static const char *const keys[] = {"type",     "report_id", "boot_id",
                                       "uptime_s", "reason",    "previous_boot_id"};
    const char *reason = str_of(r, "reason");
    if (!keys_ok(r, keys, N(keys)) || !proto_tel_reboot_reason_ok(reason, len_of(reason)) ||
        !boot_id_ok(str_of(r, "previous_boot_id")))
        return "reboot fields";
    return NULL;
}

/* NULL when r is a valid report, else what is wrong. */
static inline const char *
report_problem(json_t *r)
{
    const char *type = str_of(r, "type");
    if (type == NULL || !int_in(r, "report_id", 1, PROTO_TEL_REPORT_ID_MAX) ||
        !boot_id_ok(str_of(r, "boot_id")) || !int_in(r, "uptime_s", 0, PROTO_TEL_U32_MAX))
        return "common fields";
    switch (proto_tel_type_parse(type, strlen(type))) {
    case PROTO_TEL_CRASH:
        return crash_problem(r);
    case PROTO_TEL_HEARTBEAT:
        return heartbeat_problem(r);
    case PROTO_TEL_REBOOT:
        return reboot_problem(r);
    }
    return "type";
}

/* --- records ---------------------------------------------------------------------------------- */

static inline struct adev_crash_info
crash_at(const char *component, const char *reason, uint64_t pc)
{
    struct adev_crash_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.component = component;
    ci.image_version = "1.2.3";
    ci.reason = reason;
    ci.pc = pc;
    ci.lr = pc + 0x10;
    ci.uptime_s = 77;
    ci.free_memory = 1234;
    return ci;
}

static inline int
heartbeat(adev_crashq *q, uint32_t uptime)
{
    static const struct adev_crash_image img[] = {{"aegis-os", "2.1.0"}, {"aegis-app", "1.0.0"}};
    struct adev_crash_heartbeat hb = {uptime, 5000, img, N(img), NULL, 0};
    return adev_crash_heartbeat(q, &hb);
}

#endif
