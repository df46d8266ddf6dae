/* Unit tests of firmware-ref/crash.c (the persistent failure-report queue) and of the upload
 * operation of firmware-ref/device.c, against a fake telemetry service that checks every body
 * against docs/telemetry.md section 1 and answers as section 2 says (stored once per report_id,
 * duplicate afterwards), over a scripted fake transport with virtual-time timers (the pattern of
 * test_fw_device.c).
 *
 *   queue:  persistence across re-open, reboot reasons, bounded queue and the dropped count,
 *           the crash-loop rule, text cleaning, IDs never reused after a lost queue, a writer
 *           killed at random moments (SIGKILL as the power loss of the process)
 *   upload: batches of at most 10, deletion only of acknowledged reports (partial answers,
 *           rejected reports), duplicates after a lost answer, the dropped count sent once,
 *           backoff with full jitter and its bounds, Retry-After, 413, refusals, attest -> upload
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crash.h"
#include "device.h"
#include "evidence.h"
#include "hal_host.h"
#include "proto_fields.h"
#include "proto_telemetry.h"

#include <dirent.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_STORED 4096

/* --- the wire contract (docs/telemetry.md section 1), checked on every body ------------------ */
/* The field rules and limits are proto's (proto_fields.h, proto_telemetry.h), the definitions the
 * service checks with; what is checked here, and that every body is checked, is the test's. */

static size_t
len_of(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

static const char *
str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A name of registers, counters and reasons: 1..max of [a-z0-9_]. */
static int
name_ok(const char *s, size_t max)
{
    return proto_chars_ok(s, len_of(s), 1, max, PROTO_TEL_NAME_CHARS);
}

static int
boot_id_ok(const char *s)
{
    return proto_hex_ok(s, len_of(s), PROTO_TEL_BOOT_ID_HEX / 2);
}

/* An address as the device must write it: already in the normal form the service stores. */
static int
addr_ok(json_t *v)
{
    const char *s = json_string_value(v);
    char norm[PROTO_TEL_ADDR_LEN];
    return s != NULL && proto_tel_addr_norm(s, strlen(s), norm) == 0 && strcmp(s, norm) == 0;
}

static int
int_in(json_t *o, const char *key, int64_t lo, int64_t hi)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

/* Only these keys (and each required one unless marked optional with '?'). */
static int
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
static int
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

static const char *
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

static const char *
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

static const char *
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
static const char *
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

/* --- a queue on a temporary storage ---------------------------------------------------------- */

struct env {
    char dir[64];
    adev_storage *st;
    adev_crashq *q;
};

static int
env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -1;
    snprintf(e->dir, sizeof(e->dir), "/tmp/test_fw_crash.XXXXXX");
    if (mkdtemp(e->dir) == NULL || (e->st = adev_host_storage_open(e->dir)) == NULL)
        return -1;
    *state = e;
    return 0;
}

static int
env_teardown(void **state)
{
    struct env *e = *state;
    char cmd[128];
    adev_crash_free(e->q);
    adev_storage_free(e->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    int rc = system(cmd);
    free(e);
    return rc == 0 ? 0 : -1;
}

static void
reopen(struct env *e, unsigned capacity)
{
    struct adev_crash_opts o = {capacity, NULL};
    adev_crash_free(e->q);
    e->q = adev_crash_open(e->st, &o);
    assert_non_null(e->q);
}

/* The stored queue blob, parsed. */
static json_t *
stored(struct env *e)
{
    uint8_t *text = NULL;
    size_t len = 0;
    assert_int_equal(adev_storage_read(e->st, ADEV_CRASH_BLOB, 1 << 22, &text, &len), 0);
    json_t *doc = json_loadb((const char *)text, len, 0, NULL);
    free(text);
    assert_non_null(doc);
    return doc;
}

static struct adev_crash_info
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

static int
heartbeat(adev_crashq *q, uint32_t uptime)
{
    static const struct adev_crash_image img[] = {{"aegis-os", "2.1.0"}, {"aegis-app", "1.0.0"}};
    struct adev_crash_heartbeat hb = {uptime, 5000, img, N(img), NULL, 0};
    return adev_crash_heartbeat(q, &hb);
}

/* --- queue tests ----------------------------------------------------------------------------- */

static void
test_persist_and_reboot_reasons(void **state)
{
    struct env *e = *state;
    struct adev_crash_stats s;

    reopen(e, 0);
    struct adev_crash_info ci = crash_at("aegis-app", "hardfault", 0x8001234);
    assert_int_equal(adev_crash_record(e->q, &ci), -1);                /* not booted yet */
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE); /* the first boot */
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), -1);              /* once per boot */
    adev_crash_get_stats(e->q, &s);
    assert_int_equal(s.queued, 0);
    assert_int_equal(s.next_id, 1); /* no clock: IDs start at 1 */
    assert_int_equal(strlen(s.boot_id), PROTO_TEL_BOOT_ID_HEX);
    char boot1[PROTO_TEL_BOOT_ID_HEX + 1];
    snprintf(boot1, sizeof(boot1), "%s", s.boot_id);

    ci.return_addresses[0] = 0x8000100;
    ci.return_addresses[1] = 0x8000200;
    ci.n_return = 2;
    ci.regs[0].name = "CFSR";
    ci.regs[0].value = 0x8200;
    ci.regs[1].name = "hfsr";
    ci.regs[1].value = 0x40000000;
    ci.n_regs = 2;
    ci.message = "assert x > 0 \xff in caf\xc3\xa9";
    assert_int_equal(heartbeat(e->q, 3600), ADEV_CRASH_QUEUED);
    assert_int_equal(heartbeat(e->q, 3600 + 1800), ADEV_CRASH_QUEUED);
    assert_int_equal(adev_crash_record(e->q, &ci), ADEV_CRASH_QUEUED);

    /* a power cycle: the object goes, what is stored stays */
    reopen(e, 0);
    adev_crash_get_stats(e->q, &s);
    assert_int_equal(s.queued, 3);
    assert_int_equal(s.queued_crashes, 1);
    assert_int_equal(s.crashes, 1);
    assert_int_equal(s.next_id, 4);
    assert_string_equal(s.boot_id, boot1);
    assert_int_equal(adev_crash_boot(e->q, "power", 0), ADEV_CRASH_QUEUED);
    adev_crash_get_stats(e->q, &s);
    assert_string_not_equal(s.boot_id, boot1);
    assert_int_equal(s.boots, 2);

    json_t *doc = stored(e), *r;
    json_t *reports = json_object_get(doc, "reports");
    assert_int_equal(json_array_size(reports), 4);
    size_t i;
    json_array_foreach(reports, i, r)
    {
        const char *why = report_problem(r);
        if (why != NULL)
            fail_msg("report %zu: %s", i, why);
        assert_int_equal(json_integer_value(json_object_get(r, "report_id")), (json_int_t)i + 1);
    }
    json_t *hb1 = json_array_get(reports, 0), *hb2 = json_array_get(reports, 1);
    assert_int_equal(json_integer_value(json_object_get(hb1, "period_s")), 3600);
    assert_int_equal(json_integer_value(json_object_get(hb2, "period_s")), 1800);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(hb1, "images"), "aegis-app")), "1.0.0");
    json_t *c = json_array_get(reports, 2);
    assert_string_equal(json_string_value(json_object_get(c, "boot_id")), boot1);
    assert_string_equal(json_string_value(json_object_get(c, "pc")), "0x8001234");
    assert_string_equal(json_string_value(json_object_get(c, "lr")), "0x8001244");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(c, "return_addresses"), 1)), "0x8000200");
    json_t *regs = json_object_get(c, "fault_registers");
    assert_string_equal(json_string_value(json_object_get(regs, "cfsr")), "0x8200"); /* folded */
    assert_string_equal(json_string_value(json_object_get(c, "message")),
                        "assert x > 0 ? in caf\xc3\xa9"); /* the invalid byte replaced */
    json_t *rb = json_array_get(reports, 3);
    assert_string_equal(json_string_value(json_object_get(rb, "type")), "reboot");
    /* the recorded reason ("crash") wins over the platform's reset cause */
    assert_string_equal(json_string_value(json_object_get(rb, "reason")), "crash");
    assert_string_equal(json_string_value(json_object_get(rb, "previous_boot_id")), boot1);
    assert_string_equal(json_string_value(json_object_get(rb, "boot_id")), s.boot_id);
    json_decref(doc);

    /* no recorded reason: the reset cause, else "unknown"; a planned reset records its own */
    const char *expect[] = {"power", "unknown", "update", "watchdog"};
    for (int k = 0; k < 4; k++) {
        if (k == 2)
            assert_int_equal(adev_crash_set_reboot_reason(e->q, "update"), 0);
        if (k == 3) {
            struct adev_crash_info w = crash_at("aegis-os", "watchdog", 0x1000);
            assert_int_equal(adev_crash_record(e->q, &w), ADEV_CRASH_QUEUED);
        }
        assert_int_equal(adev_crash_set_reboot_reason(e->q, "bogus"), -1);
        reopen(e, 0);
        assert_int_equal(adev_crash_boot(e->q,
                                         k == 0   ? "power"
                                         : k == 1 ? NULL
                                                  : "power",
                                         0),
                         ADEV_CRASH_QUEUED);
        doc = stored(e);
        reports = json_object_get(doc, "reports");
        r = json_array_get(reports, json_array_size(reports) - 1);
        assert_string_equal(json_string_value(json_object_get(r, "reason")), expect[k]);
        json_decref(doc);
    }
}

static void
test_text_is_cleaned(void **state)
{
    struct env *e = *state;
    char longname[100], longmsg[400];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    /* 2-byte characters: 256 bytes hold 128 of them exactly; start odd to force a cut */
    longmsg[0] = 'a';
    for (size_t i = 1; i + 2 < sizeof(longmsg); i += 2)
        memcpy(longmsg + i, "\xc3\xa9", 2);
    longmsg[sizeof(longmsg) - 1] = '\0';

    reopen(e, 0);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
    struct adev_crash_info ci = crash_at("Aegis App!", "Hard Fault", UINT64_MAX);
    ci.image_version = "1.0 beta\x01";
    ci.message = longmsg;
    ci.n_return = PROTO_TEL_FRAMES_MAX + 4; /* more than the protocol allows: cut */
    ci.n_regs = 1;
    ci.regs[0].name = "";
    assert_int_equal(adev_crash_record(e->q, &ci), ADEV_CRASH_QUEUED);
    ci = crash_at(longname, "", 0);
    ci.component = longname;
    ci.image_version = NULL;
    assert_int_equal(adev_crash_record(e->q, &ci), ADEV_CRASH_QUEUED);
    json_t *doc = stored(e);
    json_t *r1 = json_array_get(json_object_get(doc, "reports"), 0);
    json_t *r2 = json_array_get(json_object_get(doc, "reports"), 1);
    assert_null(report_problem(r1));
    assert_null(report_problem(r2));
    assert_string_equal(json_string_value(json_object_get(r1, "component")), "aegis_app_");
    assert_string_equal(json_string_value(json_object_get(r1, "reason")), "hard_fault");
    assert_string_equal(json_string_value(json_object_get(r1, "image_version")), "1.0?beta?");
    assert_string_equal(json_string_value(json_object_get(r1, "pc")), "0xffffffffffffffff");
    assert_int_equal(json_array_size(json_object_get(r1, "return_addresses")),
                     PROTO_TEL_FRAMES_MAX);
    assert_non_null(json_object_get(json_object_get(r1, "fault_registers"), "reg"));
    assert_int_equal(json_string_length(json_object_get(r1, "message")), 255); /* "a" + 127 x 2 */
    assert_int_equal(strlen(json_string_value(json_object_get(r2, "component"))),
                     PROTO_COMPONENT_MAX);
    assert_string_equal(json_string_value(json_object_get(r2, "reason")), "unknown");
    assert_string_equal(json_string_value(json_object_get(r2, "image_version")), "unknown");
    assert_string_equal(json_string_value(json_object_get(r2, "pc")), "0x0");
    json_decref(doc);
}

static void
test_bounded_and_dropped(void **state)
{
    struct env *e = *state;
    struct adev_crash_stats s;
    size_t n = 0;

    reopen(e, 4);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
    for (uint32_t i = 1; i <= 4; i++)
        assert_int_equal(heartbeat(e->q, i * 60), ADEV_CRASH_QUEUED);
    assert_int_equal(heartbeat(e->q, 300), ADEV_CRASH_DROPPED);
    struct adev_crash_info ci = crash_at("aegis-app", "assert", 0x100);
    assert_int_equal(adev_crash_record(e->q, &ci), ADEV_CRASH_DROPPED); /* no crash to repeat */
    reopen(e, 4);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_DROPPED);
    adev_crash_get_stats(e->q, &s);
    assert_int_equal(s.queued, 4);
    assert_int_equal(s.dropped, 3);
    assert_int_equal(s.reports_dropped, 3);
    assert_int_equal(s.next_id, 5); /* dropped reports take no ID */

    /* the next batch carries the count; the answer settles it */
    char *body = adev_crash_batch(e->q, 10, &n);
    assert_non_null(body);
    assert_int_equal(n, 4);
    json_t *b = json_loads(body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(b, "dropped")), 3);
    assert_int_equal(json_integer_value(json_object_get(b, "version")), 1);
    json_decref(b);
    free(body);
    const char *ans = "{\"stored\": 4, \"duplicates\": 0, \"rejected\": 0, \"results\": ["
                      "{\"report_id\": 1, \"status\": \"stored\"},"
                      "{\"report_id\": 2, \"status\": \"stored\"},"
                      "{\"report_id\": 3, \"status\": \"stored\"},"
                      "{\"report_id\": 4, \"status\": \"stored\"}]}";
    struct adev_crash_ack a;
    assert_int_equal(adev_crash_ack(e->q, ans, strlen(ans), &a), 0);
    assert_int_equal(a.stored, 4);
    assert_int_equal(a.remaining, 0);
    adev_crash_get_stats(e->q, &s);
    assert_int_equal(s.dropped, 0);
    assert_int_equal(s.reports_dropped, 3); /* the counter stays */
    assert_int_equal(s.upload_batches, 1);
    /* an empty queue has no batch; an answer without a batch is refused */
    assert_null(adev_crash_batch(e->q, 10, &n));
    assert_int_equal(n, 0);
    assert_int_equal(adev_crash_ack(e->q, ans, strlen(ans), &a), -1);
    /* the heartbeat reports the counters */
    assert_int_equal(heartbeat(e->q, 400), ADEV_CRASH_QUEUED);
    json_t *doc = stored(e);
    json_t *co = json_object_get(json_array_get(json_object_get(doc, "reports"), 0), "counters");
    assert_int_equal(json_integer_value(json_object_get(co, "reports_dropped")), 3);
    assert_int_equal(json_integer_value(json_object_get(co, "boots")), 2);
    assert_int_equal(json_integer_value(json_object_get(co, "crashes")), 1);
    json_decref(doc);
}

static void
test_crash_loop(void **state)
{
    struct env *e = *state;
    struct adev_crash_stats s;
    size_t n = 0;

    reopen(e, 4);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
    struct adev_crash_info a = crash_at("aegis-app", "hardfault", 0x8004000);
    struct adev_crash_info b = crash_at("aegis-app", "hardfault", 0x8004444);
    /* with room, an identical crash is a report of its own */
    assert_int_equal(heartbeat(e->q, 60), ADEV_CRASH_QUEUED);
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_QUEUED);
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_QUEUED);
    /* the loop: each crash reboots the device */
    for (int i = 0; i < 6; i++) {
        reopen(e, 4);
        int r = adev_crash_boot(e->q, NULL, 0);
        assert_int_equal(r, i == 0 ? ADEV_CRASH_QUEUED : ADEV_CRASH_DROPPED); /* then full */
        assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_REPEAT);
    }
    adev_crash_get_stats(e->q, &s);
    assert_int_equal(s.queued, 4);
    assert_int_equal(s.crash_repeats, 6);
    assert_int_equal(s.crashes, 8);
    assert_int_equal(s.reports_dropped, 5); /* the reboot reports of the loop */
    /* the newest queued crash is report 3 (the reboot report 4 came after it): the repeats are
     * counted on it, nothing of the queue is overwritten */
    json_t *doc = stored(e);
    json_t *reports = json_object_get(doc, "reports");
    json_t *r3 = json_array_get(reports, 2);
    assert_int_equal(json_integer_value(json_object_get(r3, "report_id")), 3);
    assert_int_equal(json_integer_value(json_object_get(r3, "repeats")), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(reports, 3), "type")),
                        "reboot");
    json_decref(doc);
    /* another crash site is not a repeat: dropped */
    assert_int_equal(adev_crash_record(e->q, &b), ADEV_CRASH_DROPPED);
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_REPEAT);

    /* on the wire the count is text in the message (the protocol has no field for it), and the
     * local key never leaves the device */
    char *body = adev_crash_batch(e->q, 10, &n);
    assert_non_null(body);
    json_t *bj = json_loads(body, 0, NULL);
    json_t *w3 = json_array_get(json_object_get(bj, "reports"), 2);
    assert_null(report_problem(w3));
    assert_null(json_object_get(w3, "repeats"));
    assert_string_equal(json_string_value(json_object_get(w3, "message")),
                        "[crash loop: repeated 7 more times]");
    /* a report of the batch in flight is not changed: the repeat is dropped instead */
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_DROPPED);
    json_decref(bj);
    free(body);
}

/* The uptime a crash reports (period_s, with images): since the boot's last heartbeat, or since
 * boot; a later heartbeat of the boot counts from the crash. Without images, none. */
static void
test_crash_period(void **state)
{
    struct env *e = *state;
    static const struct adev_crash_image img[] = {{"aegis-os", "2.1.0"}, {"aegis-app", "1.0.0"}};
    struct adev_crash_info a = crash_at("aegis-app", "hardfault", 0x8004000);
    a.images = img;
    a.n_images = N(img);
    reopen(e, 16);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_QUEUED); /* at 77 s, no heartbeat */
    reopen(e, 16);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_QUEUED);
    assert_int_equal(heartbeat(e->q, 60), ADEV_CRASH_QUEUED);
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_QUEUED); /* 17 s after it */
    assert_int_equal(heartbeat(e->q, 100), ADEV_CRASH_QUEUED);        /* 23 s after the crash */
    struct adev_crash_info plain = crash_at("aegis-os", "assert", 0x8001000);
    plain.uptime_s = 150;
    assert_int_equal(adev_crash_record(e->q, &plain), ADEV_CRASH_QUEUED);
    json_t *doc = stored(e), *reports = json_object_get(doc, "reports");
    static const int64_t want[] = {77, -1, 60,
                                   17, 23, -1}; /* crash, reboot, hb, crash, hb, crash */
    assert_int_equal(json_array_size(reports), N(want));
    for (size_t i = 0; i < N(want); i++) {
        json_t *r = json_array_get(reports, i);
        assert_null(report_problem(r));
        json_t *p = json_object_get(r, "period_s");
        if (want[i] < 0) {
            assert_null(p);
            continue;
        }
        assert_int_equal(json_integer_value(p), want[i]);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(r, "images"), "aegis-app")), "1.0.0");
    }
    json_decref(doc);
}

/* A crash-loop repeat is never counted on a report that was sent: after a power loss its answer
 * may be "duplicate" (already stored), and the repeat would be lost. */
static void
test_repeat_not_on_a_sent_report(void **state)
{
    struct env *e = *state;
    size_t n = 0;
    struct adev_crash_info a = crash_at("aegis-app", "hardfault", 0x8004000);
    reopen(e, 2);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
    assert_int_equal(heartbeat(e->q, 60), ADEV_CRASH_QUEUED);
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_QUEUED); /* full */
    char *body = adev_crash_batch(e->q, 10, &n); /* sent, then the power goes */
    assert_non_null(body);
    free(body);
    reopen(e, 2);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_DROPPED);
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_DROPPED);
    json_t *doc = stored(e);
    assert_null(json_object_get(json_array_get(json_object_get(doc, "reports"), 1), "repeats"));
    json_decref(doc);
}

/* A queue whose blob is lost or unreadable starts again without reusing an ID. */
static void
test_ids_survive_a_lost_queue(void **state)
{
    struct env *e = *state;
    struct adev_crash_stats s;

    reopen(e, 0);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
    for (uint32_t i = 1; i <= 3; i++)
        assert_int_equal(heartbeat(e->q, i), ADEV_CRASH_QUEUED);
    /* torn (not by this storage, which is atomic: by a bad flash) */
    assert_int_equal(adev_storage_write(e->st, ADEV_CRASH_BLOB, "{\"version\":1,\"rep", 17, 0), 0);
    reopen(e, 0);
    adev_crash_get_stats(e->q, &s);
    assert_int_equal(s.queued, 0);
    assert_true(s.next_id > 3); /* above the reservation */
    uint64_t resumed = s.next_id;
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE); /* no previous boot known */
    assert_int_equal(heartbeat(e->q, 5), ADEV_CRASH_QUEUED);
    adev_crash_get_stats(e->q, &s);
    assert_int_equal(s.next_id, resumed + 1);
    /* lost altogether */
    assert_int_equal(adev_storage_remove(e->st, ADEV_CRASH_BLOB), 0);
    reopen(e, 0);
    adev_crash_get_stats(e->q, &s);
    assert_true(s.next_id > resumed);
    /* a device without any state (factory reset) with a sane clock starts at (time << 20) */
    assert_int_equal(adev_storage_remove(e->st, ADEV_CRASH_IDS_BLOB), 0);
    assert_int_equal(adev_storage_remove(e->st, ADEV_CRASH_BLOB), 0);
    adev_clock *clk = adev_host_clock_new(0);
    struct adev_crash_opts o = {0, clk};
    adev_crash_free(e->q);
    e->q = adev_crash_open(e->st, &o);
    assert_non_null(e->q);
    adev_crash_get_stats(e->q, &s);
    assert_true(s.next_id >= (uint64_t)(time(NULL) - 5) << 20);
    assert_true(s.next_id < ((uint64_t)1 << 53));
    adev_clock_free(clk);
    /* with a clock that was never set (1970), at a random point in [2^32, 2^52): not at 1, where
     * it would reuse the IDs of its previous life */
    clk = adev_host_clock_new(-(int64_t)time(NULL));
    o.clock = clk;
    uint64_t starts[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(adev_storage_remove(e->st, ADEV_CRASH_IDS_BLOB), 0);
        assert_int_equal(adev_storage_remove(e->st, ADEV_CRASH_BLOB), 0);
        adev_crash_free(e->q);
        e->q = adev_crash_open(e->st, &o);
        assert_non_null(e->q);
        adev_crash_get_stats(e->q, &s);
        starts[i] = s.next_id;
        assert_true(s.next_id >= ((uint64_t)1 << 32) && s.next_id < ((uint64_t)1 << 52));
    }
    assert_true(starts[0] != starts[1]);
    adev_clock_free(clk);
    /* the capacity has a ceiling */
    struct adev_crash_opts big = {ADEV_CRASH_CAPACITY_MAX + 1, NULL};
    assert_null(adev_crash_open(e->st, &big));
}

/* Takes a batch of at most max reports and acknowledges all of it ("stored"). */
static void
ack_all(adev_crashq *q, size_t max)
{
    size_t n = 0;
    char *body = adev_crash_batch(q, max, &n);
    if (body == NULL)
        return;
    json_t *b = json_loads(body, 0, NULL), *r;
    json_t *results = json_array();
    size_t i;
    json_array_foreach(json_object_get(b, "reports"), i, r)
    {
        json_array_append_new(results,
                              json_pack("{s:O, s:s}", "report_id", json_object_get(r, "report_id"),
                                        "status", "stored"));
    }
    json_t *ans = json_pack("{s:o}", "results", results);
    char *text = json_dumps(ans, 0);
    struct adev_crash_ack a;
    adev_crash_ack(q, text, strlen(text), &a);
    free(text);
    json_decref(ans);
    json_decref(b);
    free(body);
}

/* A crash dropped for want of room carries no running time: the boot's next heartbeat counts it. */
static void
test_dropped_crash_leaves_its_period(void **state)
{
    struct env *e = *state;
    static const struct adev_crash_image img[] = {{"aegis-app", "1.0.0"}};
    struct adev_crash_info a = crash_at("aegis-app", "hardfault", 0x8004000);
    struct adev_crash_info b = crash_at("aegis-app", "assert", 0x8005000);
    a.images = b.images = img;
    a.n_images = b.n_images = N(img);
    b.uptime_s = 90;
    reopen(e, 2);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
    assert_int_equal(heartbeat(e->q, 60), ADEV_CRASH_QUEUED);
    assert_int_equal(adev_crash_record(e->q, &a), ADEV_CRASH_QUEUED); /* 17 s, full */
    assert_int_equal(adev_crash_record(e->q, &b), ADEV_CRASH_DROPPED);
    ack_all(e->q, 10);
    assert_int_equal(heartbeat(e->q, 100), ADEV_CRASH_QUEUED);
    json_t *doc = stored(e);
    json_t *hb = json_array_get(json_object_get(doc, "reports"), 0);
    assert_string_equal(json_string_value(json_object_get(hb, "type")), "heartbeat");
    assert_int_equal(json_integer_value(json_object_get(hb, "period_s")), 100 - 77);
    json_decref(doc);
}

static int
count_temps(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        n += de->d_name[0] == '.' && strstr(de->d_name, ".tmp.") != NULL;
    if (d != NULL)
        closedir(d);
    return n;
}

/* The process is killed (SIGKILL: its memory is lost, as in a power loss) at random moments while
 * it records crashes: the queue reopens intact, holding every crash whose write completed and at
 * most the one in progress, with IDs in order. */
static void
test_killed_writer(void **state)
{
    struct env *e = *state;
    char sdir[128];
    int completed_total = 0;

    snprintf(sdir, sizeof(sdir), "%s/storage", e->dir);
    srand((unsigned)time(NULL));
    reopen(e, 200);
    assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
    for (int round = 0; round < 20; round++) {
        int fds[2];
        struct adev_crash_stats before, after;
        adev_crash_get_stats(e->q, &before);
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            for (uint64_t i = 0;; i++) {
                struct adev_crash_info ci = crash_at("aegis-app", "hardfault", 0x1000 + i);
                if (adev_crash_record(e->q, &ci) >= 0 && write(fds[1], "c", 1) != 1)
                    _exit(1);
                if (i % 4 == 3) /* and uploads: the oldest reports acknowledged */
                    ack_all(e->q, 2);
            }
        }
        close(fds[1]);
        struct timespec ts = {0, (long)(rand() % 20000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        int completed = 0;
        char buf[256];
        ssize_t k;
        while ((k = read(fds[0], buf, sizeof(buf))) > 0)
            completed += (int)k;
        close(fds[0]);
        completed_total += completed;
        reopen(e, 200); /* the power comes back */
        adev_crash_get_stats(e->q, &after);
        uint64_t made = after.crashes - before.crashes;
        if (made != (uint64_t)completed && made != (uint64_t)completed + 1)
            fail_msg("round %d: %d crashes completed, the queue holds %llu more", round, completed,
                     (unsigned long long)made);
        json_t *doc = stored(e), *r;
        size_t i;
        int64_t prev = 0;
        json_array_foreach(json_object_get(doc, "reports"), i, r)
        {
            int64_t id = json_integer_value(json_object_get(r, "report_id"));
            assert_true(id > prev);
            prev = id;
            assert_null(report_problem(r));
        }
        assert_true((uint64_t)prev < after.next_id);
        json_decref(doc);
        assert_int_equal(adev_crash_boot(e->q, NULL, 0), after.queued < 200 ? 0 : 2);
        if (after.queued > 150) { /* make room */
            adev_storage_remove(e->st, ADEV_CRASH_BLOB);
            reopen(e, 200);
            assert_int_equal(adev_crash_boot(e->q, NULL, 0), ADEV_CRASH_NONE);
        }
    }
    assert_true(count_temps(sdir) >= 0);
    adev_crash_free(e->q);
    e->q = NULL;
    adev_storage_free(e->st);
    e->st = adev_host_storage_open(e->dir); /* removes what killed writes left */
    assert_non_null(e->st);
    assert_int_equal(count_temps(sdir), 0);
    print_message("killed writer: %d crash writes completed over 20 kills\n", completed_total);
}

/* --- upload: a fake telemetry service over a fake transport ---------------------------------- */

enum act {
    A_SERVE = 0, /* the service: stored once per report_id, then duplicate */
    A_STATUS,    /* a canned status and body, nothing stored */
    A_NETERR,    /* the request never reaches the service */
    A_LOST,      /* the service stores it, the answer is lost (timeout) */
    A_PARTIAL,   /* the service stores it but answers results for the first `keep` only */
};

struct action {
    enum act a;
    long status;
    const char *body;
    long retry_after;
    int err;
    size_t keep;
};

struct adev_http_call {
    int used;
    adev_http_cb cb;
    void *arg;
    char method[8];
    char path[64];
    char *body;
    char content_type[40];
    int has_cert;
};

struct adev_timer {
    int active;
    uint64_t due;
    void (*cb)(void *);
    void *arg;
};

#define MAX_CALLS 4
#define MAX_TIMERS 8
#define MAX_LOG 64

struct fake {
    adev_transport t;
    adev_timers tm;
    struct adev_http_call calls[MAX_CALLS];
    struct adev_timer timers[MAX_TIMERS];
    uint64_t now_ms;
    const struct action *script;
    size_t n_script, pos;
    uint64_t delays[MAX_LOG];
    size_t n_delays;
    /* the service's state */
    int64_t stored_ids[MAX_STORED];
    size_t n_stored;
    size_t stored_crashes;
    int64_t dropped_total;
    int64_t reject_id; /* answer this report_id "rejected" */
    size_t requests, batch_sizes[MAX_LOG];
    unsigned lose_acks; /* fault_lose_ack answers 1 this many times */
    struct adev_report reports[16];
    char reasons[16][64];
    size_t n_reports;
    EVP_PKEY *ca_key;
    X509 *ca;
    char dir[64];
    adev_keystore *ks;
    adev_storage *st;
    adev_clock *clk;
    adev_crashq *q;
    adev_device *dev;
};

static struct fake *
fake_of_t(adev_transport *t)
{
    return (struct fake *)((char *)t - offsetof(struct fake, t));
}

static struct fake *
fake_of_tm(adev_timers *tm)
{
    return (struct fake *)((char *)tm - offsetof(struct fake, tm));
}

static adev_http_call *
fake_request(adev_transport *t, const struct adev_http_request *req, adev_http_cb cb, void *arg)
{
    struct fake *f = fake_of_t(t);
    for (int i = 0; i < MAX_CALLS; i++) {
        struct adev_http_call *c = &f->calls[i];
        if (c->used)
            continue;
        memset(c, 0, sizeof(*c));
        c->used = 1;
        c->cb = cb;
        c->arg = arg;
        snprintf(c->method, sizeof(c->method), "%s", req->method);
        const char *path = strstr(req->url, "/v1/");
        snprintf(c->path, sizeof(c->path), "%s", path ? path : req->url);
        snprintf(c->content_type, sizeof(c->content_type), "%s",
                 req->content_type ? req->content_type : "");
        c->body = req->body ? strndup(req->body, req->body_len) : NULL;
        c->has_cert = req->client_cert_pem != NULL && req->client_key_pem != NULL;
        return c;
    }
    fail_msg("more than %d requests in flight", MAX_CALLS);
    return NULL;
}

static void
fake_cancel(adev_transport *t, adev_http_call *c)
{
    (void)t;
    free(c->body);
    c->body = NULL;
    c->used = 0;
}

static void
fake_free(adev_transport *t)
{
    (void)t;
}

static const struct adev_transport_ops fake_tops = {fake_request, fake_cancel, fake_free};

static adev_timer *
fake_timer_start(adev_timers *tm, uint64_t ms, void (*cb)(void *), void *arg)
{
    struct fake *f = fake_of_tm(tm);
    if (f->n_delays < MAX_LOG) { /* every timer: 0 for the start of an operation */
        f->delays[f->n_delays++] = ms;
    }
    for (int i = 0; i < MAX_TIMERS; i++) {
        if (!f->timers[i].active) {
            f->timers[i] = (struct adev_timer){1, f->now_ms + ms, cb, arg};
            return &f->timers[i];
        }
    }
    fail_msg("too many timers");
    return NULL;
}

static void
fake_timer_cancel(adev_timers *tm, adev_timer *t)
{
    (void)tm;
    t->active = 0;
}

static const struct adev_timers_ops fake_tmops = {fake_timer_start, fake_timer_cancel};

static int
seen(struct fake *f, int64_t id)
{
    for (size_t i = 0; i < f->n_stored; i++) {
        if (f->stored_ids[i] == id)
            return 1;
    }
    return 0;
}

/* The service's side of POST /v1/device/telemetry: validates the batch (a malformed one fails the
 * test: the device must never send one), stores new reports, answers section 2. */
static char *
serve_telemetry(struct fake *f, const char *body, size_t keep)
{
    json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(root);
    static const char *const keys[] = {"version", "dropped", "reports"};
    assert_true(keys_ok(root, keys, N(keys)));
    assert_int_equal(json_integer_value(json_object_get(root, "version")), PROTO_VERSION);
    assert_true(int_in(root, "dropped", 0, PROTO_TEL_U32_MAX));
    json_t *reports = json_object_get(root, "reports"), *r;
    assert_true(json_is_array(reports));
    assert_true(json_array_size(reports) >= 1 && json_array_size(reports) <= PROTO_TEL_REPORTS_MAX);
    assert_true(strlen(body) <= PROTO_TEL_BODY_MAX);
    if (f->requests < MAX_LOG)
        f->batch_sizes[f->requests] = json_array_size(reports);
    f->requests++;
    json_t *results = json_array();
    int64_t prev = 0;
    size_t i, st = 0, dup = 0, rej = 0;
    json_array_foreach(reports, i, r)
    {
        const char *why = report_problem(r);
        if (why != NULL)
            fail_msg("report %zu of the batch: %s", i, why);
        int64_t id = json_integer_value(json_object_get(r, "report_id"));
        assert_true(id > prev); /* oldest first */
        prev = id;
        const char *status;
        if (id == f->reject_id) {
            status = "rejected";
            rej++;
        } else if (seen(f, id)) {
            status = "duplicate";
            dup++;
        } else {
            assert_true(f->n_stored < MAX_STORED);
            f->stored_ids[f->n_stored++] = id;
            f->stored_crashes += proto_tel_type_parse(str_of(r, "type"),
                                                      len_of(str_of(r, "type"))) == PROTO_TEL_CRASH;
            status = "stored";
            st++;
        }
        if (i < keep)
            json_array_append_new(
                results, json_pack("{s:I, s:s}", "report_id", (json_int_t)id, "status", status));
    }
    /* as the service does: a batch of duplicates only is a retry of one it stored, whose count
     * it added then */
    if (!(st == 0 && dup > 0))
        f->dropped_total += json_integer_value(json_object_get(root, "dropped"));
    json_t *ans = json_pack("{s:I, s:I, s:I, s:o}", "stored", (json_int_t)st, "duplicates",
                            (json_int_t)dup, "rejected", (json_int_t)rej, "results", results);
    char *text = json_dumps(ans, 0);
    json_decref(ans);
    json_decref(root);
    return text;
}

/* A certificate for the CSR of an evidence body, signed by the fake CA (as test_fw_device.c). */
static char *
issue(struct fake *f, const char *evidence, char **ca_pem)
{
    json_t *root = json_loads(evidence, 0, NULL);
    assert_non_null(root);
    BIO *in = BIO_new_mem_buf(json_string_value(json_object_get(root, "csr")), -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
    assert_non_null(req);
    X509 *cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_set_version(cert, 2);
    X509_set_issuer_name(cert, X509_get_subject_name(f->ca));
    X509_set_subject_name(cert, X509_get_subject_name(f->ca));
    X509_gmtime_adj(X509_getm_notBefore(cert), -300);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, X509_REQ_get0_pubkey(req));
    assert_true(X509_sign(cert, f->ca_key, EVP_sha256()) > 0);
    BIO *out = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    char *data = NULL;
    PEM_write_bio_X509(out, cert);
    long n = BIO_get_mem_data(out, &data);
    char *pem = strndup(data, (size_t)n);
    PEM_write_bio_X509(cb, f->ca);
    n = BIO_get_mem_data(cb, &data);
    *ca_pem = strndup(data, (size_t)n);
    BIO_free(cb);
    BIO_free(out);
    X509_free(cert);
    X509_REQ_free(req);
    BIO_free(in);
    json_decref(root);
    return pem;
}

static void
respond(struct fake *f, struct adev_http_call *c)
{
    struct adev_http_response r;
    char *body = NULL;

    memset(&r, 0, sizeof(r));
    r.retry_after_s = -1;
    r.detail = "";
    if (strcmp(c->path, "/v1/device/attest/challenge") == 0) {
        r.status = 200;
        body = strdup("{\"nonce\": \"000102030405060708090a0b0c0d0e0f"
                      "101112131415161718191a1b1c1d1e1f\", \"ttl_s\": 60}");
    } else if (strcmp(c->path, "/v1/device/attest") == 0) {
        char *ca = NULL, *cert = issue(f, c->body, &ca);
        json_t *o =
            json_pack("{s:s, s:s, s:s+, s:s, s:s, s:s}", "result", "pass", "certificate", cert,
                      "chain", cert, ca, "trust_bundle", ca, "not_before", "x", "not_after", "y");
        body = json_dumps(o, 0);
        json_decref(o);
        free(cert);
        free(ca);
        r.status = 200;
    } else if (strcmp(c->path, "/v1/device/whoami") == 0) {
        char buf[160];
        snprintf(buf, sizeof(buf), "{\"device_id\": \"%s\"}", adev_device_id_hex(f->dev));
        body = strdup(buf);
        r.status = 200;
    } else {
        assert_string_equal(c->path, "/v1/device/telemetry");
        assert_string_equal(c->method, "POST");
        assert_string_equal(c->content_type, "application/json");
        assert_true(c->has_cert); /* mutual TLS with the stored certificate */
        struct action def = {A_SERVE, 0, NULL, 0, 0, 0};
        const struct action *s = f->pos < f->n_script ? &f->script[f->pos++] : &def;
        r.retry_after_s = s->retry_after ? s->retry_after : -1;
        switch (s->a) {
        case A_SERVE:
            body = serve_telemetry(f, c->body, SIZE_MAX);
            r.status = 200;
            break;
        case A_PARTIAL:
            body = serve_telemetry(f, c->body, s->keep);
            r.status = 200;
            break;
        case A_LOST:
            free(serve_telemetry(f, c->body, SIZE_MAX));
            r.err = ADEV_NET_TIMEOUT;
            r.detail = "the answer was lost";
            break;
        case A_NETERR:
            r.err = s->err;
            r.detail = "simulated network failure";
            break;
        case A_STATUS:
            r.status = s->status;
            body = strdup(s->body ? s->body : "");
            break;
        }
    }
    r.body = body ? body : "";
    r.body_len = strlen(r.body);
    adev_http_cb cb = c->cb;
    void *arg = c->arg;
    free(c->body);
    c->body = NULL;
    c->used = 0;
    cb(&r, arg);
    free(body);
}

static void
run(struct fake *f)
{
    for (int guard = 0; guard < 5000; guard++) {
        int did = 0;
        for (int i = 0; i < MAX_CALLS && !did; i++) {
            if (f->calls[i].used) {
                respond(f, &f->calls[i]);
                did = 1;
            }
        }
        if (did)
            continue;
        struct adev_timer *next = NULL;
        for (int i = 0; i < MAX_TIMERS; i++) {
            if (f->timers[i].active && (next == NULL || f->timers[i].due < next->due))
                next = &f->timers[i];
        }
        if (next == NULL)
            return;
        f->now_ms = next->due;
        next->active = 0;
        next->cb(next->arg);
    }
    fail_msg("the device does not settle");
}

static void
on_report(adev_device *dev, const struct adev_report *r, void *arg)
{
    struct fake *f = arg;
    (void)dev;
    assert_true(f->n_reports < N(f->reports));
    f->reports[f->n_reports] = *r;
    snprintf(f->reasons[f->n_reports], sizeof(f->reasons[0]), "%s", r->reason);
    f->reports[f->n_reports].reason = f->reasons[f->n_reports];
    f->reports[f->n_reports].detail = "";
    f->n_reports++;
}

static int
lose_ack(adev_device *d, void *arg)
{
    struct fake *f = arg;
    (void)d;
    if (f->lose_acks == 0)
        return 0;
    f->lose_acks--;
    return 1;
}

/* A credential in storage: an operational key and a self-signed certificate for it. */
static void
store_credential(struct fake *f)
{
    adev_opkey *k = adev_opkey_generate();
    char *key = adev_opkey_pem(k);
    BIO *b = BIO_new_mem_buf(key, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    assert_non_null(pk);
    X509 *c = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(c), 9);
    X509_set_version(c, 2);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               (const unsigned char *)"device", -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(c));
    X509_gmtime_adj(X509_getm_notBefore(c), -300);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509_set_pubkey(c, pk);
    assert_true(X509_sign(c, pk, EVP_sha256()) > 0);
    BIO *out = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(out, c);
    char *data = NULL;
    long n = BIO_get_mem_data(out, &data);
    char *cert = strndup(data, (size_t)n);
    json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "version", 1, "key", key,
                          "certificate", cert, "chain", cert, "trust_bundle", cert, "not_before",
                          (json_int_t)1, "not_after", (json_int_t)2, "renew_at", (json_int_t)2);
    char *text = json_dumps(o, 0);
    assert_int_equal(
        adev_storage_write(f->st, ADEV_BLOB_CREDENTIAL, text, strlen(text), ADEV_STORAGE_SECRET),
        0);
    free(text);
    json_decref(o);
    free(cert);
    BIO_free(out);
    X509_free(c);
    EVP_PKEY_free(pk);
    BIO_free(b);
    adev_free_secret_str(key);
    adev_opkey_free(k);
}

static int
up_setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->t.ops = &fake_tops;
    f->tm.ops = &fake_tmops;
    f->reject_id = -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_fw_crash.XXXXXX");
    if (mkdtemp(f->dir) == NULL || adev_host_keystore_create(f->dir, NULL) != 0)
        return -1;
    f->ks = adev_host_keystore_open(f->dir);
    f->st = adev_host_storage_open(f->dir);
    f->clk = adev_host_clock_new(0);
    uint8_t img[64];
    memset(img, 7, sizeof(img));
    const struct adev_image boot[3] = {
        {PROTO_STAGE_BOOTLOADER, "aegis-bl", "1.0.0", 1, img, sizeof(img)},
        {PROTO_STAGE_OS, "aegis-os", "2.1.0", 3, img, sizeof(img)},
        {PROTO_STAGE_APP, "thermo", "1.0.0", 1, img, sizeof(img)},
    };
    if (f->ks == NULL || f->st == NULL || f->clk == NULL ||
        adev_boot_install(f->st, boot, 3, NULL, 0) != 0)
        return -1;
    f->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f->ca = X509_new();
    X509_NAME *name = X509_get_subject_name(f->ca);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fake CA", -1, -1,
                               0);
    X509_set_issuer_name(f->ca, name);
    X509_set_version(f->ca, 2);
    X509_gmtime_adj(X509_getm_notBefore(f->ca), -3600);
    X509_gmtime_adj(X509_getm_notAfter(f->ca), 86400 * 30);
    X509_set_pubkey(f->ca, f->ca_key);
    if (X509_sign(f->ca, f->ca_key, EVP_sha256()) <= 0)
        return -1;
    *state = f;
    return 0;
}

static int
up_teardown(void **state)
{
    struct fake *f = *state;
    char cmd[128];
    adev_device_free(f->dev);
    adev_crash_free(f->q);
    for (int i = 0; i < MAX_CALLS; i++)
        free(f->calls[i].body);
    adev_clock_free(f->clk);
    adev_storage_free(f->st);
    adev_keystore_free(f->ks);
    X509_free(f->ca);
    EVP_PKEY_free(f->ca_key);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Power on: the queue from storage (a new boot), and a device over it. */
static void
power_on(struct fake *f, const struct action *script, size_t n, struct adev_device_config *cfg)
{
    struct adev_hal hal = {f->ks, f->st, f->clk, &f->t, &f->tm};
    struct adev_device_config def;
    memset(&def, 0, sizeof(def));
    if (cfg == NULL)
        cfg = &def;
    f->q = adev_crash_open(f->st, NULL);
    assert_non_null(f->q);
    assert_true(adev_crash_boot(f->q, NULL, 0) >= 0);
    cfg->server_url = "https://aegis.test";
    cfg->server_ca_pem = "-----BEGIN CERTIFICATE-----\n(not parsed by the fake)\n";
    cfg->crashq = f->q;
    cfg->fault_lose_ack = lose_ack;
    f->script = script;
    f->n_script = n;
    f->pos = 0;
    f->dev = adev_device_new(&hal, cfg, on_report, f);
    assert_non_null(f->dev);
}

/* Power off: everything in memory is lost. */
static void
power_off(struct fake *f)
{
    adev_device_free(f->dev);
    f->dev = NULL;
    adev_crash_free(f->q);
    f->q = NULL;
}

static void
queue_crashes(struct fake *f, int n)
{
    for (int i = 0; i < n; i++) {
        struct adev_crash_info ci =
            crash_at(i % 2 ? "aegis-os" : "aegis-app", "hardfault", 0x8000000 + (uint64_t)i * 4);
        assert_int_equal(adev_crash_record(f->q, &ci), ADEV_CRASH_QUEUED);
    }
}

static struct adev_report *
last_report(struct fake *f)
{
    assert_true(f->n_reports > 0);
    return &f->reports[f->n_reports - 1];
}

static void
test_upload_batches(void **state)
{
    struct fake *f = *state;
    store_credential(f);
    power_on(f, NULL, 0, NULL);
    queue_crashes(f, 23);
    assert_int_equal(heartbeat(f->q, 3600), ADEV_CRASH_QUEUED);
    assert_int_equal(adev_device_upload(f->dev), 0);
    assert_int_equal(adev_device_upload(f->dev), -1); /* busy */
    run(f);
    struct adev_report *r = last_report(f);
    assert_int_equal(f->n_reports, 1);
    assert_int_equal(r->op, ADEV_OP_UPLOAD);
    assert_int_equal(r->outcome, ADEV_PASS);
    assert_string_equal(r->reason, "ok");
    assert_int_equal(r->batches, 3);
    assert_int_equal(r->stored, 24);
    assert_int_equal(r->duplicates, 0);
    assert_int_equal(r->crashes_acked, 23);
    assert_int_equal(r->remaining, 0);
    assert_int_equal(r->attempts, 3);
    assert_int_equal(f->requests, 3);
    assert_int_equal(f->batch_sizes[0], 10); /* at most 10 per batch by default */
    assert_int_equal(f->batch_sizes[1], 10);
    assert_int_equal(f->batch_sizes[2], 4);
    assert_int_equal(f->stored_crashes, 23);
    assert_int_equal(adev_crash_pending(f->q), 0);
    assert_int_equal(f->n_delays, 1); /* the start of the upload, no retry */
    /* an empty queue: done at once, no request */
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_int_equal(last_report(f)->outcome, ADEV_PASS);
    assert_int_equal(last_report(f)->batches, 0);
    assert_int_equal(f->requests, 3);
}

/* Only acknowledged reports leave the queue: a partial answer, a rejected report. */
static void
test_upload_deletes_only_acknowledged(void **state)
{
    struct fake *f = *state;
    static const struct action script[] = {{A_PARTIAL, 0, NULL, 0, 0, 6}};
    struct adev_crash_stats s;

    store_credential(f);
    power_on(f, script, N(script), NULL);
    queue_crashes(f, 10);
    f->reject_id = 9;
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    struct adev_report *r = last_report(f);
    assert_int_equal(r->outcome, ADEV_PASS);
    /* 6 acknowledged by the first answer; the other 4 (stored by the service, unanswered) sent
     * again: 3 duplicates and 1 rejected */
    assert_int_equal(f->requests, 2);
    assert_int_equal(f->batch_sizes[1], 4);
    assert_int_equal(r->stored, 6);
    assert_int_equal(r->duplicates, 3);
    assert_int_equal(r->rejected, 1);
    assert_int_equal(r->crashes_acked, 9);
    assert_int_equal(f->n_stored, 9);
    adev_crash_get_stats(f->q, &s);
    assert_int_equal(s.queued, 0);
    assert_int_equal(s.reports_rejected, 1);
    assert_int_equal(s.upload_batches, 2);

    /* an answer that acknowledges nothing of the batch deletes nothing */
    static const struct action junk[] = {
        {A_STATUS, 200, "{\"results\": [{\"report_id\": 999, \"status\": \"stored\"}]}", 0, 0, 0}};
    power_off(f);
    power_on(f, junk, N(junk), NULL);
    assert_int_equal(adev_crash_pending(f->q), 1); /* the reboot report */
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_int_equal(last_report(f)->outcome, ADEV_FAILED);
    assert_string_equal(last_report(f)->reason, "bad_response");
    assert_int_equal(adev_crash_pending(f->q), 1);
}

/* Power is lost after the service stored a batch and before its answer was applied: the next
 * boot sends the same reports again, the service answers "duplicate", the device deletes them;
 * every report is stored once. */
static void
test_upload_power_loss_duplicates(void **state)
{
    struct fake *f = *state;
    store_credential(f);
    power_on(f, NULL, 0, NULL);
    queue_crashes(f, 15);
    f->lose_acks = 1;
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_int_equal(last_report(f)->outcome, ADEV_FAILED);
    assert_string_equal(last_report(f)->reason, "power_loss");
    assert_int_equal(f->n_stored, 10); /* the service has the first batch */
    power_off(f);
    power_on(f, NULL, 0, NULL); /* + a reboot report */
    assert_int_equal(adev_crash_pending(f->q), 16);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    struct adev_report *r = last_report(f);
    assert_int_equal(r->outcome, ADEV_PASS);
    assert_int_equal(r->duplicates, 10);
    assert_int_equal(r->stored, 6);
    assert_int_equal(r->crashes_acked, 15); /* each crash acknowledged once on the device */
    assert_int_equal(f->stored_crashes, 15);
    assert_int_equal(f->n_stored, 16);
    assert_int_equal(adev_crash_pending(f->q), 0);
}

/* The dropped count reaches the service once: it stays with the batch it was first sent with
 * (same reports, same count) until an answer is applied, whether answers are lost after the
 * service counted it (timeouts, power losses, several in a row) or requests never arrive. */
static void
test_dropped_sent_once(void **state)
{
    struct fake *f = *state;
    struct adev_crash_opts small = {3, NULL};
    struct adev_hal hal = {f->ks, f->st, f->clk, &f->t, &f->tm};
    struct adev_device_config cfg;
    struct adev_crash_stats s;

    store_credential(f);
    static const struct action lost[] = {{A_LOST, 0, NULL, 0, 0, 0}, {A_LOST, 0, NULL, 0, 0, 0}};
    static const struct action neterr[] = {{A_NETERR, 0, NULL, 0, ADEV_NET_CONNECT, 0}};
    for (int variant = 0; variant < 2; variant++) {
        /* 3 queued, 2 dropped */
        adev_storage_remove(f->st, ADEV_CRASH_BLOB);
        f->q = adev_crash_open(f->st, &small);
        assert_non_null(f->q);
        assert_true(adev_crash_boot(f->q, NULL, 0) >= 0);
        for (uint32_t i = 0; i < 5; i++)
            heartbeat(f->q, 60 * (i + 1));
        adev_crash_get_stats(f->q, &s);
        assert_int_equal(s.dropped, 2);
        f->dropped_total = 0;
        /* variant 0: counted, the answer lost twice; variant 1: the request never arrives */
        memset(&cfg, 0, sizeof(cfg));
        cfg.server_url = "https://aegis.test";
        cfg.server_ca_pem = "x";
        cfg.crashq = f->q;
        f->script = variant == 0 ? lost : neterr;
        f->n_script = variant == 0 ? N(lost) : N(neterr);
        f->pos = 0;
        f->dev = adev_device_new(&hal, &cfg, on_report, f);
        assert_int_equal(adev_device_upload(f->dev), 0);
        run(f);
        assert_int_equal(last_report(f)->outcome, ADEV_PASS);
        assert_int_equal(last_report(f)->attempts, variant == 0 ? 3 : 2);
        assert_int_equal(f->dropped_total, 2);
        adev_crash_get_stats(f->q, &s);
        assert_int_equal(s.dropped, 0);
        assert_int_equal(last_report(f)->duplicates, variant == 0 ? 3 : 0);
        power_off(f);
    }
    /* a power loss between sending the count and its answer: the next boot sends the same batch
     * with the same count (not the reboot report, dropped meanwhile, which waits) */
    adev_storage_remove(f->st, ADEV_CRASH_BLOB);
    f->q = adev_crash_open(f->st, &small);
    assert_true(adev_crash_boot(f->q, NULL, 0) >= 0);
    for (uint32_t i = 0; i < 4; i++)
        heartbeat(f->q, 60 * (i + 1));
    memset(&cfg, 0, sizeof(cfg));
    cfg.server_url = "https://aegis.test";
    cfg.server_ca_pem = "x";
    cfg.crashq = f->q;
    cfg.fault_lose_ack = lose_ack;
    cfg.upload_batch = 2; /* the count goes with reports 1 and 2 */
    f->lose_acks = 2;
    f->dropped_total = 0;
    f->script = NULL;
    f->n_script = 0;
    f->dev = adev_device_new(&hal, &cfg, on_report, f);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_string_equal(last_report(f)->reason, "power_loss");
    assert_int_equal(f->dropped_total, 1);
    for (int boot = 0; boot < 2; boot++) {
        power_off(f);
        f->q = adev_crash_open(f->st, &small);
        assert_int_equal(adev_crash_boot(f->q, NULL, 0), ADEV_CRASH_DROPPED); /* full */
        adev_crash_get_stats(f->q, &s);
        assert_int_equal(s.dropped, 1 + (uint64_t)boot + 1); /* in flight and new */
        cfg.crashq = f->q;
        cfg.upload_batch = 10; /* bigger now: the batch of the count stays the same */
        f->dev = adev_device_new(&hal, &cfg, on_report, f);
        assert_int_equal(adev_device_upload(f->dev), 0);
        run(f);
        if (boot == 0) {
            assert_string_equal(last_report(f)->reason, "power_loss"); /* lost again */
            assert_int_equal(f->batch_sizes[f->requests - 1], 2);
        }
    }
    assert_int_equal(last_report(f)->outcome, ADEV_PASS);
    assert_int_equal(f->batch_sizes[f->requests - 2], 2); /* the batch of the count, then */
    assert_int_equal(f->batch_sizes[f->requests - 1], 1); /* the rest, with the new count */
    assert_int_equal(f->dropped_total, 3);                /* 1 + 2 reboot reports, once each */
    adev_crash_get_stats(f->q, &s);
    assert_int_equal(s.dropped, 0);
    assert_int_equal(s.queued, 0);

    /* a batch sent without a count and stored, its answer lost; reports dropped after that must
     * not go with the retry (all duplicates: the service would not add them) but with a batch
     * holding a report never sent */
    power_off(f);
    adev_storage_remove(f->st, ADEV_CRASH_BLOB);
    f->q = adev_crash_open(f->st, &small);
    assert_true(adev_crash_boot(f->q, NULL, 0) >= 0);
    for (uint32_t i = 0; i < 3; i++)
        heartbeat(f->q, 60 * (i + 1));
    cfg.crashq = f->q;
    f->lose_acks = 1;
    f->dropped_total = 0;
    f->dev = adev_device_new(&hal, &cfg, on_report, f);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_string_equal(last_report(f)->reason, "power_loss");
    power_off(f);
    f->q = adev_crash_open(f->st, &small);
    assert_int_equal(adev_crash_boot(f->q, NULL, 0), ADEV_CRASH_DROPPED);
    cfg.crashq = f->q;
    f->dev = adev_device_new(&hal, &cfg, on_report, f);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_int_equal(last_report(f)->outcome, ADEV_PASS);
    assert_int_equal(last_report(f)->duplicates, 3);
    assert_int_equal(f->dropped_total, 0);
    adev_crash_get_stats(f->q, &s);
    assert_int_equal(s.dropped, 1); /* waits */
    heartbeat(f->q, 100);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_int_equal(last_report(f)->stored, 1);
    assert_int_equal(f->dropped_total, 1);
    adev_crash_get_stats(f->q, &s);
    assert_int_equal(s.dropped, 0);
}

/* Retries: full-jitter backoff windows doubling from the base, Retry-After honoured (never
 * earlier, at most half again later), and the end after upload_max_attempts failures in a row. */
static void
test_upload_backoff_and_retry_after(void **state)
{
    struct fake *f = *state;
    static const struct action script[] = {
        {A_NETERR, 0, NULL, 0, ADEV_NET_CONNECT, 0},
        {A_NETERR, 0, NULL, 0, ADEV_NET_TIMEOUT, 0},
        {A_STATUS, 500, "{\"error\": \"internal\"}", 0, 0, 0},
        {A_STATUS, 429, "{\"error\": \"rate_limited\"}", 7, 0, 0},
        {A_STATUS, 503, "{\"error\": \"overloaded\"}", 2, 0, 0},
        {A_NETERR, 0, NULL, 0, ADEV_NET_OTHER, 0},
        {A_SERVE, 0, NULL, 0, 0, 0},
    };
    store_credential(f);
    power_on(f, script, N(script), NULL);
    queue_crashes(f, 3);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    struct adev_report *r = last_report(f);
    assert_int_equal(r->outcome, ADEV_PASS);
    assert_int_equal(r->attempts, 7);
    assert_int_equal(r->stored, 3);
    assert_int_equal(f->n_delays, 7); /* the start, then 6 retries */
    /* default base 1 s: windows 1, 2, 4 s; Retry-After 7 and 2; then the window of retry 5 */
    assert_true(f->delays[1] <= 1000);
    assert_true(f->delays[2] <= 2000);
    assert_true(f->delays[3] <= 4000);
    assert_true(f->delays[4] >= 7000 && f->delays[4] <= 10500);
    assert_true(f->delays[5] >= 2000 && f->delays[5] <= 3000);
    assert_true(f->delays[6] <= 32000);

    /* nothing but failures: the upload ends after upload_max_attempts, the queue kept */
    static const struct action down[] = {{A_NETERR, 0, NULL, 0, ADEV_NET_CONNECT, 0},
                                         {A_NETERR, 0, NULL, 0, ADEV_NET_CONNECT, 0},
                                         {A_NETERR, 0, NULL, 0, ADEV_NET_CONNECT, 0},
                                         {A_NETERR, 0, NULL, 0, ADEV_NET_CONNECT, 0}};
    power_off(f);
    struct adev_device_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.upload_max_attempts = 4;
    cfg.upload_backoff_base_ms = 10; /* the simulator's scaled-down timing */
    cfg.upload_backoff_max_ms = 25;
    power_on(f, down, N(down), &cfg);
    f->n_delays = 0;
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    r = last_report(f);
    assert_int_equal(r->outcome, ADEV_FAILED);
    assert_string_equal(r->reason, "connect_error");
    assert_int_equal(r->attempts, 4);
    assert_int_equal(r->remaining, 1);
    assert_int_equal(f->n_delays, 4);
    assert_true(f->delays[1] <= 10 && f->delays[2] <= 20 && f->delays[3] <= 25); /* capped */
    assert_int_equal(adev_crash_pending(f->q), 1);
}

static void
test_delay_distribution(void **state)
{
    (void)state;
    const int draws = 20000;
    for (unsigned retry = 0; retry < 12; retry++) {
        uint64_t window = 1000ull << retry, lo = UINT64_MAX, hi = 0;
        if (window > 300000)
            window = 300000;
        double sum = 0;
        for (int i = 0; i < draws; i++) {
            uint64_t d = adev_upload_delay_ms(1000, 300000, retry, -1, 300);
            if (d > window)
                fail_msg("retry %u: %llu ms over the window %llu", retry, (unsigned long long)d,
                         (unsigned long long)window);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += (double)d;
        }
        /* full jitter: the whole window is used, uniformly (mean at half) */
        assert_true(lo < window / 100 + 1);
        assert_true(hi > window - window / 100 - 1);
        double mean = sum / draws / (double)window;
        assert_true(mean > 0.48 && mean < 0.52);
    }
    /* Retry-After: never earlier, at most half again later, capped by retry_after_max_s */
    for (int i = 0; i < draws; i++) {
        uint64_t d = adev_upload_delay_ms(1000, 300000, 3, 10, 300);
        assert_true(d >= 10000 && d <= 15000);
        d = adev_upload_delay_ms(1000, 300000, 0, 3600, 300);
        assert_true(d >= 300000 && d <= 450000);
    }
    assert_int_equal(adev_upload_delay_ms(0, 0, 5, -1, 300), 0);
    assert_true(adev_upload_delay_ms(1000, 300000, 1000, -1, 300) <= 300000); /* no overflow */
}

static void
test_upload_refusals(void **state)
{
    struct fake *f = *state;
    /* no certificate yet */
    power_on(f, NULL, 0, NULL);
    queue_crashes(f, 1);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_string_equal(last_report(f)->reason, "no_certificate");
    assert_int_equal(f->requests, 0);
    power_off(f);
    /* 413: smaller batches; 401: final, the queue kept */
    static const struct action script[] = {
        {A_STATUS, 413, "", 0, 0, 0},
        {A_SERVE, 0, NULL, 0, 0, 0},
        {A_STATUS, 401, "{\"error\": \"unauthorized\"}", 0, 0, 0},
    };
    store_credential(f);
    power_on(f, script, N(script), NULL);
    queue_crashes(f, 7); /* + the crash and the reboot report: 9 */
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    struct adev_report *r = last_report(f);
    assert_int_equal(r->outcome, ADEV_REJECTED);
    assert_string_equal(r->reason, "unauthorized");
    assert_int_equal(r->http_status, 401);
    assert_int_equal(r->stored, 5); /* the halved batch */
    assert_int_equal(r->remaining, 4);
    assert_int_equal(f->batch_sizes[0], 5); /* the 413 batch of 9 was not served */
    assert_int_equal(f->requests, 1);
    /* without a queue there is no upload */
    struct adev_hal hal = {f->ks, f->st, f->clk, &f->t, &f->tm};
    struct adev_device_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server_url = "https://aegis.test";
    cfg.server_ca_pem = "x";
    adev_device *d = adev_device_new(&hal, &cfg, on_report, f);
    assert_int_equal(adev_device_upload(d), -1);
    adev_device_free(d);
}

/* After a passing attestation the device uploads by itself (cfg.upload_after_attest). */
static void
test_attest_then_upload(void **state)
{
    struct fake *f = *state;
    struct adev_device_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.upload_after_attest = 1;
    power_on(f, NULL, 0, &cfg);
    queue_crashes(f, 12);
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 2);
    assert_int_equal(f->reports[0].op, ADEV_OP_ATTEST);
    assert_int_equal(f->reports[0].outcome, ADEV_PASS);
    assert_int_equal(f->reports[0].next_op, ADEV_OP_UPLOAD);
    assert_int_equal(f->reports[1].op, ADEV_OP_UPLOAD);
    assert_int_equal(f->reports[1].outcome, ADEV_PASS);
    assert_int_equal(f->reports[1].crashes_acked, 12);
    assert_int_equal(f->reports[1].next_op, 0);
    /* with whoami chained, the upload comes after it; an empty queue chains nothing */
    power_off(f);
    cfg.whoami_after_attest = 1;
    power_on(f, NULL, 0, &cfg);
    assert_int_equal(adev_crash_pending(f->q), 1); /* the reboot report */
    f->n_reports = 0;
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 3);
    assert_int_equal(f->reports[0].next_op, ADEV_OP_WHOAMI);
    assert_int_equal(f->reports[1].op, ADEV_OP_WHOAMI);
    assert_int_equal(f->reports[1].outcome, ADEV_PASS);
    assert_int_equal(f->reports[1].next_op, ADEV_OP_UPLOAD);
    assert_int_equal(f->reports[2].op, ADEV_OP_UPLOAD);
    assert_int_equal(f->reports[2].stored, 1);
    /* an empty queue chains nothing */
    f->n_reports = 0;
    assert_int_equal(adev_device_attest(f->dev), 0);
    run(f);
    assert_int_equal(f->n_reports, 2);
    assert_int_equal(f->reports[1].op, ADEV_OP_WHOAMI);
    assert_int_equal(f->reports[1].next_op, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_persist_and_reboot_reasons, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_text_is_cleaned, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_bounded_and_dropped, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_crash_loop, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_crash_period, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_repeat_not_on_a_sent_report, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_dropped_crash_leaves_its_period, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_ids_survive_a_lost_queue, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_killed_writer, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_upload_batches, up_setup, up_teardown),
        cmocka_unit_test_setup_teardown(test_upload_deletes_only_acknowledged, up_setup,
                                        up_teardown),
        cmocka_unit_test_setup_teardown(test_upload_power_loss_duplicates, up_setup, up_teardown),
        cmocka_unit_test_setup_teardown(test_dropped_sent_once, up_setup, up_teardown),
        cmocka_unit_test_setup_teardown(test_upload_backoff_and_retry_after, up_setup, up_teardown),
        cmocka_unit_test(test_delay_distribution),
        cmocka_unit_test_setup_teardown(test_upload_refusals, up_setup, up_teardown),
        cmocka_unit_test_setup_teardown(test_attest_then_upload, up_setup, up_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
