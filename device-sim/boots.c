/* boots: the boot cycle of `aegis-sim run --boots N` (device-sim/README.md "Failure reporting").
 *
 * Each device lives N simulated boots. A boot: power on (the failure-report queue opened from
 * storage, a reboot report with the previous boot's reason), attest, upload the queue (chained by
 * the device after a passing attestation), then "run": a heartbeat for --uptime seconds, and with
 * the probabilities of --crash a crash in a component, which resets the device; otherwise a
 * planned ("user") reboot. Power-off drops everything in memory (device, queue object, transport
 * with its connections); only storage survives.
 *
 * Faults: --power-loss P per upload answer: the power goes after the service answered and before
 * the device applied the answer (the device reports "power_loss"); the next boot re-sends the
 * reports, which the service answers "duplicate". --offline P per boot: the network goes away at
 * the boot's first upload request for a while (a transport wrapper fails requests with
 * connect_error) and comes back; the device backs off and retries, or keeps its queue for a later
 * boot. --drain: after the N boots, boot again (and upload) until the queue is empty.
 *
 * The run's random choices come from one generator seeded by --seed (splitmix64); the devices' own
 * randomness (boot IDs, backoff jitter) is theirs. */
#include "fleet.h"

#include "hal_host.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UPTIME_DEFAULT 3600
#define BACKOFF_BASE_DEFAULT 50 /* the device's 1 s and 5 min, scaled down */
#define BACKOFF_MAX_DEFAULT 2000
#define UPLOAD_ATTEMPTS_DEFAULT 8
#define ATTEST_BACKOFF_MS 200
#define OFFLINE_MIN_MS 200
#define OFFLINE_MAX_MS 3000
#define DRAIN_BOOTS_MAX 50
#define DRAIN_TRIES_MAX 20 /* uploads per drain boot */
#define DRAIN_RETRY_MS 250
#define SITES 3 /* crash sites per component and version */

enum { T_CRASH, T_HEARTBEAT, T_REBOOT };

static const char *const site_reasons[SITES] = {"hardfault", "assert", "watchdog"};

static void power_on(void *arg);

/* --- the run's random numbers ---------------------------------------------------------------- */

static uint64_t
next_u64(struct sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double
boots_uniform(struct sim *s)
{
    return (double)(next_u64(s) >> 11) / 9007199254740992.0; /* 2^53 */
}

static uint64_t
fnv1a(const char *a, const char *b)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = a; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
    for (const char *p = b; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    return h;
}

/* --- options --------------------------------------------------------------------------------- */

int
boots_parse_crash(const char *arg, struct crash_spec *out)
{
    char buf[160];
    memset(out, 0, sizeof(*out));
    if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
        return -1;
    char *at = strchr(buf, '@');
    if (at != NULL) {
        *at++ = '\0';
        char *colon = strchr(at, ':');
        if (colon != NULL) {
            *colon++ = '\0';
            /* a version has no ':' here, which would make the option ambiguous */
            if (!proto_version_ok(colon, strlen(colon)) || strchr(colon, ':') != NULL)
                return -1;
            snprintf(out->version, sizeof(out->version), "%s", colon);
        }
        if (!proto_component_ok(at, strlen(at)))
            return -1;
        snprintf(out->component, sizeof(out->component), "%s", at);
    }
    return sim_parse_prob(buf, &out->rate);
}

void
boots_defaults(struct boots_opts *o)
{
    if (o->uptime_s == 0)
        o->uptime_s = UPTIME_DEFAULT;
    if (o->backoff_base_ms == 0)
        o->backoff_base_ms = BACKOFF_BASE_DEFAULT;
    if (o->backoff_max_ms == 0)
        o->backoff_max_ms =
            o->backoff_base_ms > BACKOFF_MAX_DEFAULT ? o->backoff_base_ms : BACKOFF_MAX_DEFAULT;
    if (o->upload_attempts == 0)
        o->upload_attempts = UPLOAD_ATTEMPTS_DEFAULT;
    if (o->offline_min_ms == 0)
        o->offline_min_ms = OFFLINE_MIN_MS;
    if (o->offline_max_ms == 0)
        o->offline_max_ms = OFFLINE_MAX_MS;
    if (o->seed == 0)
        o->seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
}

/* --- the offline fault: a transport that fails requests while the network is away ----------- */

struct adev_http_call {
    struct offline_tr *tr;
    void *inner;         /* the wrapped transport's call, or NULL */
    adev_timer *failing; /* the timer that delivers the failure, or NULL */
    adev_http_cb cb;
    void *arg;
    struct adev_http_call *prev, *next;
};

struct offline_tr {
    adev_transport t; /* first: the adev_transport of the device */
    adev_transport *inner;
    adev_timers *timers;
    struct boots_dev *bd;
    struct adev_http_call *calls; /* outstanding */
};

static void
call_unlink(struct adev_http_call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->tr->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
}

static void
on_inner(const struct adev_http_response *resp, void *arg)
{
    struct adev_http_call *c = arg;
    adev_http_cb cb = c->cb;
    void *cb_arg = c->arg;
    call_unlink(c);
    free(c);
    cb(resp, cb_arg); /* may free the transport */
}

static void
on_failing(void *arg)
{
    struct adev_http_call *c = arg;
    struct adev_http_response r;
    adev_http_cb cb = c->cb;
    void *cb_arg = c->arg;

    memset(&r, 0, sizeof(r));
    r.err = ADEV_NET_CONNECT;
    r.body = "";
    r.retry_after_s = -1;
    r.detail = "offline (simulated)";
    call_unlink(c);
    free(c);
    cb(&r, cb_arg);
}

static adev_http_call *
offline_request(adev_transport *t, const struct adev_http_request *req, adev_http_cb cb, void *arg)
{
    struct offline_tr *o = (struct offline_tr *)t;
    struct boots_dev *bd = o->bd;
    struct adev_http_call *c = calloc(1, sizeof(*c));
    double now = sim_now_ms();

    if (c == NULL)
        return NULL;
    c->tr = o;
    c->cb = cb;
    c->arg = arg;
    if (bd->offline_armed && strstr(req->url, "/v1/device/telemetry") != NULL) {
        bd->offline_armed = 0; /* the network goes away now, for offline_until_ms */
        bd->offline_until_ms += now;
    }
    if (now < bd->offline_until_ms)
        c->failing = adev_timer_start(o->timers, 0, on_failing, c);
    else
        c->inner = adev_transport_request(o->inner, req, on_inner, c);
    if (c->failing == NULL && c->inner == NULL) {
        free(c);
        return NULL;
    }
    c->next = o->calls;
    if (o->calls != NULL)
        o->calls->prev = c;
    o->calls = c;
    return c;
}

static void
offline_cancel(adev_transport *t, adev_http_call *c)
{
    struct offline_tr *o = (struct offline_tr *)t;
    if (c->inner != NULL)
        adev_transport_cancel(o->inner, c->inner);
    adev_timer_cancel(o->timers, c->failing);
    call_unlink(c);
    free(c);
}

static void
offline_free(adev_transport *t)
{
    struct offline_tr *o = (struct offline_tr *)t;
    while (o->calls != NULL)
        offline_cancel(t, o->calls);
    adev_transport_free(o->inner);
    free(o);
}

static const struct adev_transport_ops offline_ops = {offline_request, offline_cancel,
                                                      offline_free};

/* Wraps inner (owned from here on, also on failure). */
static adev_transport *
offline_tr_new(adev_transport *inner, adev_timers *timers, struct boots_dev *bd)
{
    struct offline_tr *o = inner != NULL ? calloc(1, sizeof(*o)) : NULL;
    if (o == NULL) {
        adev_transport_free(inner);
        return NULL;
    }
    o->t.ops = &offline_ops;
    o->inner = inner;
    o->timers = timers;
    o->bd = bd;
    return &o->t;
}

/* --- one device's boots ---------------------------------------------------------------------- */

void
boots_tally(json_t *obj, const char *key, json_int_t by)
{
    json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) + by));
}

static void
count_result(struct boots_dev *bd, int r, int type)
{
    if (r == ADEV_CRASH_QUEUED)
        bd->reports_made[type]++;
    else if (r == ADEV_CRASH_DROPPED)
        bd->dropped++;
}

static int
lose_ack(adev_device *d, void *arg)
{
    struct simdev *sd = arg;
    (void)d;
    return sd->sim->bt.power_loss > 0 && boots_uniform(sd->sim) < sd->sim->bt.power_loss;
}

void
boots_dev_destroy(struct simdev *sd)
{
    struct boots_dev *bd = &sd->bd;
    if (bd->timer != NULL && sd->sim != NULL && sd->sim->net != NULL)
        adev_timer_cancel(adev_uvnet_timers(sd->sim->net), bd->timer);
    bd->timer = NULL;
    adev_crash_free(bd->q);
    bd->q = NULL;
}

/* A setup failure during the cycle: counted like one at the start. */
static void
device_broken(struct simdev *sd, const char *what)
{
    fprintf(stderr, "aegis-sim: device %zu: %s\n", sd->index, what);
    sd->sim->setup_errors++;
    if (sd->res->code[S_ATTEST][0] == '\0')
        snprintf(sd->res->code[S_ATTEST], CODE_MAX, "setup_error");
    fleet_dev_done(sd); /* its counts are final */
}

/* Power off (everything in memory is lost), then the next boot, or the end. */
static void
power_off(struct simdev *sd, const char *reset_cause)
{
    struct sim *s = sd->sim;
    struct boots_dev *bd = &sd->bd;
    struct adev_crash_stats st;

    adev_crash_get_stats(bd->q, &st);
    bd->queued_end = st.queued;
    bd->queued_crashes_end = st.queued_crashes;
    bd->dropped_pending_end = st.dropped;
    adev_device_free(sd->dev);
    sd->dev = NULL;
    adev_transport_free(sd->tr);
    sd->tr = NULL;
    adev_crash_free(bd->q);
    bd->q = NULL;
    bd->reset_cause = reset_cause;
    if (bd->draining)
        bd->drain_boots++;
    else
        bd->boot++;
    if (bd->boot < s->bt.boots) {
        /* the next regular boot */
    } else if (s->bt.drain && st.queued > 0 && bd->drain_boots < DRAIN_BOOTS_MAX) {
        bd->draining = 1;
        bd->drain_tries = 0;
    } else {
        fleet_dev_done(sd); /* its counts are final */
        return;
    }
    bd->timer = adev_timer_start(adev_uvnet_timers(s->net), 0, power_on, sd);
    if (bd->timer == NULL)
        device_broken(sd, "cannot schedule the next boot");
}

/* The device's app: the last app of its boot log (the default component of --crash). */
static void
running(const struct adev_boot_log *log, const char *component, const char **app,
        const char **version)
{
    *app = "aegis-app";
    *version = NULL;
    for (size_t i = 0; log != NULL && i < log->n; i++) {
        if (log->events[i].stage == PROTO_STAGE_APP)
            *app = log->events[i].component;
    }
    const char *want = component[0] != '\0' ? component : *app;
    for (size_t i = 0; log != NULL && i < log->n; i++) {
        if (strcmp(log->events[i].component, want) == 0)
            *version = log->events[i].version;
    }
}

/* A crash of spec at uptime (since boot), period seconds after the boot's last heartbeat, with
 * what runs (images): one of SITES deterministic crash sites of the component and version. */
void
boots_crash(struct simdev *sd, const struct crash_spec *spec, uint32_t uptime, uint32_t period,
            const struct adev_crash_image *images, size_t n_images)
{
    struct sim *s = sd->sim;
    struct boots_dev *bd = &sd->bd;
    const struct adev_boot_log *log = adev_device_boot_log(sd->dev);
    const char *app, *version;
    char site_key[PROTO_COMPONENT_MAX + PROTO_VERSION_MAX + 2], message[96];
    struct adev_crash_info ci;

    running(log, spec->component, &app, &version);
    memset(&ci, 0, sizeof(ci));
    ci.component = spec->component[0] != '\0' ? spec->component : app;
    ci.image_version = spec->version[0] != '\0' ? spec->version : version ? version : "1.0.0";
    uint64_t h = fnv1a(ci.component, ci.image_version);
    unsigned site = (unsigned)(next_u64(s) % SITES);
    uint64_t base = 0x08000000ULL + ((h >> 8) % 0x100000) * 4;
    ci.reason = site_reasons[site];
    ci.pc = base + site * 0x40;
    ci.lr = base + site * 0x40 + 0x1d;
    ci.n_return = 3 + site;
    for (size_t i = 0; i < ci.n_return; i++)
        ci.return_addresses[i] = 0x08000000ULL + ((h >> (i * 4)) % 0x80000) * 4 + i * 0x100;
    if (site == 0) {
        static const char *const regs[] = {"cfsr", "hfsr", "mmfar", "bfar"};
        for (size_t i = 0; i < 4; i++) {
            ci.regs[i].name = regs[i];
            ci.regs[i].value = i == 0 ? 0x8200 : i == 1 ? 0x40000000 : 0x20001000 + i;
        }
        ci.n_regs = 4;
    }
    if (site == 1) {
        snprintf(message, sizeof(message), "assert failed: %s.c:%u", ci.component,
                 (unsigned)(h % 900 + 100));
        ci.message = message;
    }
    ci.uptime_s = uptime;
    ci.images = images;
    ci.n_images = n_images;
    ci.free_memory = 16384 + (uint32_t)(next_u64(s) % 49152);
    snprintf(site_key, sizeof(site_key), "%s@%s", ci.component, ci.image_version);
    boots_tally(s->crash_sites, site_key, 1);
    bd->crashes_made++;
    int r = adev_crash_record(bd->q, &ci);
    if (r == ADEV_CRASH_QUEUED || r == ADEV_CRASH_REPEAT) /* a repeat adds to the report's */
        bd->device_seconds += period;
    if (r == ADEV_CRASH_QUEUED) {
        bd->crash_reports++;
        bd->reports_made[T_CRASH]++;
    } else if (r == ADEV_CRASH_REPEAT) {
        bd->crash_repeats++;
    } else if (r == ADEV_CRASH_DROPPED) {
        bd->crash_dropped++;
        bd->dropped++;
    } else {
        fprintf(stderr, "aegis-sim: device %zu: the crash could not be recorded\n", sd->index);
    }
}

size_t
boots_images(const struct simdev *sd, struct adev_crash_image *images)
{
    const struct adev_boot_log *log = adev_device_boot_log(sd->dev);
    size_t n = 0;
    for (size_t i = 0; log != NULL && i < log->n && n < PROTO_TEL_IMAGES_MAX; i++) {
        images[n].component = log->events[i].component;
        images[n].version = log->events[i].version;
        n++;
    }
    if (n == 0) { /* the boot failed: what the manifest would have run */
        images[0].component = "aegis-app";
        images[0].version = "1.0.0";
        n = 1;
    }
    return n;
}

/* The boot runs: a heartbeat after --uptime, then a crash (the device resets) or a planned
 * reboot. */
static void
boot_runs(struct simdev *sd)
{
    struct sim *s = sd->sim;
    struct boots_dev *bd = &sd->bd;
    struct adev_crash_image images[PROTO_TEL_IMAGES_MAX];
    struct adev_crash_heartbeat hb;

    if (bd->draining) {
        power_off(sd, NULL);
        return;
    }
    memset(&hb, 0, sizeof(hb));
    hb.n_images = boots_images(sd, images);
    hb.images = images;
    hb.uptime_s = s->bt.uptime_s;
    hb.free_memory = 16384 + (uint32_t)(next_u64(s) % 49152);
    /* A crash, if any, comes at a uniform time in the boot's first 1.5 uptimes: before the
     * heartbeat (the only report of that running time is the crash's) or after it. */
    const struct crash_spec *spec = NULL;
    for (size_t k = 0; k < s->bt.n_crash && spec == NULL; k++)
        if (boots_uniform(s) < s->bt.crash[k].rate)
            spec = &s->bt.crash[k];
    uint32_t at = 1 + (uint32_t)(next_u64(s) % (s->bt.uptime_s + s->bt.uptime_s / 2));
    uint32_t since_hb = at;
    if (spec == NULL || at > s->bt.uptime_s) {
        int r = adev_crash_heartbeat(bd->q, &hb);
        count_result(bd, r, T_HEARTBEAT);
        if (r == ADEV_CRASH_QUEUED)
            bd->device_seconds += s->bt.uptime_s;
        since_hb = at - s->bt.uptime_s;
    } else {
        bd->early_crashes++;
    }
    if (spec != NULL) {
        boots_crash(sd, spec, at, since_hb, images, hb.n_images);
        power_off(sd, NULL); /* the crash recorded the reason */
        return;
    }
    adev_crash_set_reboot_reason(bd->q, "user");
    power_off(sd, NULL);
}

static void
retry_drain(void *arg)
{
    struct simdev *sd = arg;
    sd->bd.timer = NULL;
    if (adev_device_upload(sd->dev) != 0)
        power_off(sd, NULL);
}

void
boots_on_report(struct simdev *sd, const struct adev_report *r)
{
    struct sim *s = sd->sim;
    struct boots_dev *bd = &sd->bd;

    if (r->op == ADEV_OP_ATTEST) {
        fleet_record(sd, S_ATTEST, r);
        boots_tally(s->attest_outcomes, r->reason, 1);
        if (r->next_op == ADEV_OP_UPLOAD)
            return; /* the upload's report follows */
        boot_runs(sd);
        return;
    }
    if (r->op != ADEV_OP_UPLOAD) {
        boot_runs(sd);
        return;
    }
    boots_tally(s->upload_outcomes, r->reason, 1);
    bd->uploads++;
    bd->upload_requests += r->attempts;
    bd->batches += r->batches;
    bd->stored += r->stored;
    bd->duplicates += r->duplicates;
    bd->rejected += r->rejected;
    bd->crashes_acked += r->crashes_acked;
    if (r->outcome == ADEV_PASS)
        bd->upload_ok++;
    else if (sd->res->detail[0] == '\0')
        snprintf(sd->res->detail, sizeof(sd->res->detail), "upload: %s (HTTP %ld)",
                 r->detail[0] ? r->detail : r->reason, r->http_status);
    if (strcmp(r->reason, "power_loss") == 0) {
        bd->power_losses++;
        power_off(sd, "power");
        return;
    }
    if (bd->draining && r->outcome != ADEV_PASS && adev_crash_pending(bd->q) > 0 &&
        ++bd->drain_tries < DRAIN_TRIES_MAX) {
        bd->timer = adev_timer_start(adev_uvnet_timers(s->net), DRAIN_RETRY_MS, retry_drain, sd);
        if (bd->timer != NULL)
            return;
    }
    boot_runs(sd);
}

int
boots_open_queue(struct sim *s, struct simdev *sd)
{
    struct boots_dev *bd = &sd->bd;
    struct adev_crash_opts qo = {s->bt.queue, sd->clk};

    bd->q = adev_crash_open(sd->st, &qo);
    if (bd->q == NULL)
        return -1;
    if (bd->boot == 0 && !bd->draining) {
        struct adev_crash_stats st;
        adev_crash_get_stats(bd->q, &st);
        bd->queued_start = st.queued;
        bd->queued_crashes_start = st.queued_crashes;
    }
    int r = adev_crash_boot(bd->q, bd->reset_cause, 0);
    if (r < 0)
        return -1;
    count_result(bd, r, T_REBOOT);
    bd->reset_cause = NULL;
    return 0;
}

void
boots_device_setup(struct sim *s, struct simdev *sd, struct adev_device_config *cfg,
                   struct adev_hal *hal)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->server_url = s->server;
    cfg->server_ca_pem = s->ca_pem;
    cfg->timeout_ms = s->timeout_ms;
    cfg->max_attempts = s->attempts;
    cfg->backoff_base_ms = ATTEST_BACKOFF_MS;
    cfg->boot.tamper_os = sd->fault == F_TAMPERED_OS;
    cfg->boot.boot_previous_os = sd->fault == F_OLD_OS;
    cfg->fault_replay = sd->fault == F_REPLAY;
    cfg->crashq = sd->bd.q;
    cfg->upload_after_attest = 1;
    cfg->upload_max_attempts = s->bt.upload_attempts;
    cfg->upload_backoff_base_ms = s->bt.backoff_base_ms;
    cfg->upload_backoff_max_ms = s->bt.backoff_max_ms;
    cfg->fault_lose_ack = lose_ack;
    hal->keys = sd->ks;
    hal->storage = sd->st;
    hal->clock = sd->clk;
    hal->transport = sd->tr;
    hal->timers = adev_uvnet_timers(s->net);
    hal->slots = NULL;
}

/* Power on: the queue from storage, the reboot report, a device, its attestation. */
static int
boot(struct sim *s, struct simdev *sd)
{
    struct boots_dev *bd = &sd->bd;
    struct adev_device_config cfg;
    struct adev_hal hal;

    if (boots_open_queue(s, sd) != 0)
        return -1;
    bd->offline_armed = 0;
    bd->offline_until_ms = 0;
    if (!bd->draining && s->bt.offline > 0 && boots_uniform(s) < s->bt.offline) {
        bd->offline_armed = 1; /* from the first upload request, for this long: */
        bd->offline_until_ms =
            s->bt.offline_min_ms +
            boots_uniform(s) * (double)(s->bt.offline_max_ms - s->bt.offline_min_ms);
        bd->offline_boots++;
    }
    sd->tr = offline_tr_new(adev_uvnet_transport_new(s->net), adev_uvnet_timers(s->net), bd);
    if (sd->tr == NULL)
        return -1;
    boots_device_setup(s, sd, &cfg, &hal);
    sd->dev = adev_device_new(&hal, &cfg, fleet_on_report, sd);
    if (sd->dev == NULL)
        return -1;
    if (strcmp(adev_device_id_hex(sd->dev), s->ids[sd->index]) != 0) {
        fprintf(stderr, "aegis-sim: device %zu: key store does not match devices.json\n",
                sd->index);
        return -1;
    }
    sd->step = S_ATTEST;
    return adev_device_attest(sd->dev);
}

static void
power_on(void *arg)
{
    struct simdev *sd = arg;
    sd->bd.timer = NULL;
    if (boot(sd->sim, sd) != 0)
        device_broken(sd, "a boot failed to start");
}

int
boots_start(struct sim *s, struct simdev *sd)
{
    return boot(s, sd); /* on failure the caller frees what was made */
}

/* --- summary --------------------------------------------------------------------------------- */

json_t *
boots_device_json(const struct simdev *sd)
{
    const struct boots_dev *bd = &sd->bd;
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "boots", (json_int_t)bd->boot, "drain_boots", (json_int_t)bd->drain_boots, "crashes_made",
        (json_int_t)bd->crashes_made, "crash_reports_made", (json_int_t)bd->crash_reports,
        "crash_repeats", (json_int_t)bd->crash_repeats, "reports_made",
        (json_int_t)(bd->reports_made[0] + bd->reports_made[1] + bd->reports_made[2]), "dropped",
        (json_int_t)bd->dropped, "stored", (json_int_t)bd->stored, "duplicates",
        (json_int_t)bd->duplicates, "rejected", (json_int_t)bd->rejected, "crash_reports_acked",
        (json_int_t)bd->crashes_acked, "power_losses", (json_int_t)bd->power_losses,
        "offline_boots", (json_int_t)bd->offline_boots, "uploads", (json_int_t)bd->uploads,
        "queued", (json_int_t)bd->queued_end, "queued_crashes", (json_int_t)bd->queued_crashes_end,
        "dropped_unsent", (json_int_t)bd->dropped_pending_end);
}

static void
put(json_t *o, const char *key, uint64_t v)
{
    json_object_set_new(o, key, json_integer((json_int_t)v));
}

json_t *
boots_summary(struct sim *s)
{
    struct boots_dev t; /* the sums */
    uint64_t boots = 0, undrained = 0;
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    memset(&t, 0, sizeof(t));
    for (size_t i = 0; i < s->n; i++) {
        const struct boots_dev *bd = &s->devs[i].bd;
        boots += (uint64_t)bd->boot + (uint64_t)bd->drain_boots;
        t.drain_boots += bd->drain_boots;
        t.crashes_made += bd->crashes_made;
        t.crash_reports += bd->crash_reports;
        t.crash_repeats += bd->crash_repeats;
        t.crash_dropped += bd->crash_dropped;
        t.early_crashes += bd->early_crashes;
        t.device_seconds += bd->device_seconds;
        for (int k = 0; k < 3; k++)
            t.reports_made[k] += bd->reports_made[k];
        t.dropped += bd->dropped;
        t.stored += bd->stored;
        t.duplicates += bd->duplicates;
        t.rejected += bd->rejected;
        t.crashes_acked += bd->crashes_acked;
        t.power_losses += bd->power_losses;
        t.offline_boots += bd->offline_boots;
        t.uploads += bd->uploads;
        t.batches += bd->batches;
        t.upload_requests += bd->upload_requests;
        t.queued_start += bd->queued_start;
        t.queued_crashes_start += bd->queued_crashes_start;
        t.queued_end += bd->queued_end;
        t.queued_crashes_end += bd->queued_crashes_end;
        t.dropped_pending_end += bd->dropped_pending_end;
        undrained += bd->queued_end > 0;
    }
    /* every crash is a report, a repeat counted on one, or dropped; every crash report (made in
     * the run or queued before it) is acknowledged, rejected (the rest) or still queued */
    uint64_t in = t.crash_reports + t.queued_crashes_start;
    uint64_t out = t.crashes_acked + t.queued_crashes_end;
    uint64_t crashes_rejected = in >= out ? in - out : 0;
    int balanced = t.crashes_made == t.crash_reports + t.crash_repeats + t.crash_dropped &&
                   in >= out && crashes_rejected <= t.rejected;
    put(o, "seed", s->bt.seed & 0x7fffffffffffffffULL);
    put(o, "boots_per_device", (uint64_t)s->bt.boots);
    put(o, "boots", boots);
    put(o, "drain_boots", (uint64_t)t.drain_boots);
    put(o, "crashes_made", t.crashes_made);
    put(o, "crash_reports_made", t.crash_reports);
    put(o, "crash_repeats", t.crash_repeats);
    put(o, "crashes_dropped", t.crash_dropped);
    put(o, "early_crashes", t.early_crashes);
    put(o, "device_seconds", t.device_seconds);
    put(o, "reports_made", t.reports_made[0] + t.reports_made[1] + t.reports_made[2]);
    json_object_set_new(o, "reports_made_by_type",
                        json_pack("{s:I, s:I, s:I}", "crash", (json_int_t)t.reports_made[T_CRASH],
                                  "heartbeat", (json_int_t)t.reports_made[T_HEARTBEAT], "reboot",
                                  (json_int_t)t.reports_made[T_REBOOT]));
    put(o, "dropped", t.dropped);
    put(o, "reports_acked", t.stored + t.duplicates);
    put(o, "stored", t.stored);
    put(o, "duplicates", t.duplicates);
    put(o, "rejected", t.rejected);
    put(o, "crash_reports_acked", t.crashes_acked);
    put(o, "crash_reports_rejected", crashes_rejected);
    put(o, "power_losses", t.power_losses);
    put(o, "offline_boots", t.offline_boots);
    put(o, "upload_batches", t.batches);
    put(o, "upload_requests", t.upload_requests);
    put(o, "queued_at_start", t.queued_start);
    put(o, "queued", t.queued_end);
    put(o, "queued_crashes", t.queued_crashes_end);
    put(o, "dropped_unsent", t.dropped_pending_end);
    put(o, "undrained_devices", undrained);
    json_object_set_new(o, "drained", json_boolean(t.queued_end == 0));
    json_object_set_new(o, "balanced", json_boolean(balanced));
    json_object_set_new(
        o, "uploads",
        json_pack("{s:I, s:O}", "count", (json_int_t)t.uploads, "outcomes", s->upload_outcomes));
    json_object_set_new(o, "boot_attest", json_pack("{s:O}", "outcomes", s->attest_outcomes));
    json_object_set(o, "crashes_by_component", s->crash_sites);
    return o;
}

void
boots_print(json_t *t)
{
    const char *k;
    json_t *v;
#define G(key) ((long long)json_integer_value(json_object_get(t, key)))
    printf(
        "  boots %lld (drain %lld); crashes made %lld: reports %lld, repeats %lld, dropped %lld\n",
        G("boots"), G("drain_boots"), G("crashes_made"), G("crash_reports_made"),
        G("crash_repeats"), G("crashes_dropped"));
    printf("  reports made %lld, dropped %lld; acknowledged %lld (stored %lld, duplicate %lld), "
           "rejected %lld; crash reports acknowledged %lld\n",
           G("reports_made"), G("dropped"), G("reports_acked"), G("stored"), G("duplicates"),
           G("rejected"), G("crash_reports_acked"));
    printf(
        "  power losses %lld, offline boots %lld, batches %lld; still queued %lld (%lld crashes) "
        "on %lld devices; %s\n",
        G("power_losses"), G("offline_boots"), G("upload_batches"), G("queued"),
        G("queued_crashes"), G("undrained_devices"),
        json_is_true(json_object_get(t, "balanced")) ? "balanced" : "NOT BALANCED");
    printf("  uploads:");
    json_object_foreach(json_object_get(json_object_get(t, "uploads"), "outcomes"), k, v)
    {
        printf(" %s %lld", k, (long long)json_integer_value(v));
    }
    printf("\n  crashes by component:");
    json_object_foreach(json_object_get(t, "crashes_by_component"), k, v)
    {
        printf(" %s %lld", k, (long long)json_integer_value(v));
    }
    printf("\n");
    const json_t *svc = json_object_get(t, "service");
    if (svc == NULL) {
        printf("  service: not asked (--token-file or AEGIS_TOKEN)\n");
        return;
    }
#define S(key) ((long long)json_integer_value(json_object_get(svc, key)))
    printf(
        "  crashes on devices %lld; the service holds %lld crash reports and %lld reports of this "
        "run (devices had %lld and %lld acknowledged): %s\n",
        G("crashes_made"), S("crash_reports"), S("reports"), G("crash_reports_acked"),
        G("reports_acked"), json_is_true(json_object_get(svc, "equal")) ? "equal" : "NOT EQUAL");
#undef S
#undef G
}
