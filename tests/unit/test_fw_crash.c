/* Unit tests of firmware-ref/crash.c, the persistent failure-report queue and its records:
 * persistence across re-open, reboot reasons, bounded queue and the dropped count, the crash-loop
 * rule, text cleaning, IDs never reused after a lost queue, a writer killed at random moments
 * (SIGKILL as the power loss of the process). Every report the queue stores is checked against the
 * wire contract (test_fw_crash_fx.h); the upload of the queue is test_fw_crash_upload.c's.
 */
#include "test_fw_crash_fx.h"

#include "hal_host.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
