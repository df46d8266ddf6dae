/* Unit tests of the upload operation of firmware-ref/device.c over the crash queue, against the
 * fake telemetry service of test_fw_crash_fake.h: batches of at most 10, deletion only of
 * acknowledged reports (partial answers, rejected reports), duplicates after a lost answer, the
 * dropped count sent once, backoff with full jitter and its bounds, Retry-After, 413, refusals,
 * attest -> upload.
 */
#include "test_fw_crash_fake.h"

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

/* The count of 2 dropped reports, sent once when the service counted it and the answer was lost
 * twice, and when the request never arrived. */
static void
dropped_lost_answers(struct fake *f, const struct adev_hal *hal,
                     const struct adev_crash_opts *small)
{
    struct adev_device_config cfg;
    struct adev_crash_stats s;
    static const struct action lost[] = {{A_LOST, 0, NULL, 0, 0, 0}, {A_LOST, 0, NULL, 0, 0, 0}};
    static const struct action neterr[] = {{A_NETERR, 0, NULL, 0, ADEV_NET_CONNECT, 0}};
    for (int variant = 0; variant < 2; variant++) {
        /* 3 queued, 2 dropped */
        adev_storage_remove(f->st, ADEV_CRASH_BLOB);
        f->q = adev_crash_open(f->st, small);
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
        f->dev = adev_device_new(hal, &cfg, on_report, f);
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
}

/* A power loss between sending the count and its answer: the next boot sends the same batch with
 * the same count (not the reboot report, dropped meanwhile, which waits). Leaves cfg set up for a
 * lost answer. */
static void
dropped_power_loss(struct fake *f, const struct adev_hal *hal, const struct adev_crash_opts *small,
                   struct adev_device_config *cfg)
{
    struct adev_crash_stats s;
    adev_storage_remove(f->st, ADEV_CRASH_BLOB);
    f->q = adev_crash_open(f->st, small);
    assert_true(adev_crash_boot(f->q, NULL, 0) >= 0);
    for (uint32_t i = 0; i < 4; i++)
        heartbeat(f->q, 60 * (i + 1));
    memset(cfg, 0, sizeof(*cfg));
    cfg->server_url = "https://aegis.test";
    cfg->server_ca_pem = "x";
    cfg->crashq = f->q;
    cfg->fault_lose_ack = lose_ack;
    cfg->upload_batch = 2; /* the count goes with reports 1 and 2 */
    f->lose_acks = 2;
    f->dropped_total = 0;
    f->script = NULL;
    f->n_script = 0;
    f->dev = adev_device_new(hal, cfg, on_report, f);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_string_equal(last_report(f)->reason, "power_loss");
    assert_int_equal(f->dropped_total, 1);
    for (int boot = 0; boot < 2; boot++) {
        power_off(f);
        f->q = adev_crash_open(f->st, small);
        assert_int_equal(adev_crash_boot(f->q, NULL, 0), ADEV_CRASH_DROPPED); /* full */
        adev_crash_get_stats(f->q, &s);
        assert_int_equal(s.dropped, 1 + (uint64_t)boot + 1); /* in flight and new */
        cfg->crashq = f->q;
        cfg->upload_batch = 10; /* bigger now: the batch of the count stays the same */
        f->dev = adev_device_new(hal, cfg, on_report, f);
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
}

/* A batch sent without a count and stored, its answer lost: reports dropped after that must not
 * go with the retry (all duplicates: the service would not add them) but with a batch holding a
 * report never sent. */
static void
dropped_not_with_duplicates(struct fake *f, const struct adev_hal *hal,
                            const struct adev_crash_opts *small, struct adev_device_config *cfg)
{
    struct adev_crash_stats s;
    power_off(f);
    adev_storage_remove(f->st, ADEV_CRASH_BLOB);
    f->q = adev_crash_open(f->st, small);
    assert_true(adev_crash_boot(f->q, NULL, 0) >= 0);
    for (uint32_t i = 0; i < 3; i++)
        heartbeat(f->q, 60 * (i + 1));
    cfg->crashq = f->q;
    f->lose_acks = 1;
    f->dropped_total = 0;
    f->dev = adev_device_new(hal, cfg, on_report, f);
    assert_int_equal(adev_device_upload(f->dev), 0);
    run(f);
    assert_string_equal(last_report(f)->reason, "power_loss");
    power_off(f);
    f->q = adev_crash_open(f->st, small);
    assert_int_equal(adev_crash_boot(f->q, NULL, 0), ADEV_CRASH_DROPPED);
    cfg->crashq = f->q;
    f->dev = adev_device_new(hal, cfg, on_report, f);
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

/* The dropped count reaches the service once: it stays with the batch it was first sent with
 * (same reports, same count) until an answer is applied, whether answers are lost after the
 * service counted it (timeouts, power losses, several in a row) or requests never arrive. */
static void
test_dropped_sent_once(void **state)
{
    struct fake *f = *state;
    struct adev_crash_opts small = {3, NULL};
    struct adev_hal hal = {f->ks, f->st, f->clk, &f->t, &f->tm, NULL};
    struct adev_device_config cfg;

    store_credential(f);
    dropped_lost_answers(f, &hal, &small);
    dropped_power_loss(f, &hal, &small, &cfg);
    dropped_not_with_duplicates(f, &hal, &small, &cfg);
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
    struct adev_hal hal = {f->ks, f->st, f->clk, &f->t, &f->tm, NULL};
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
