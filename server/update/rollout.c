/* rollout: wave assignment, the halt and advance checks, per-wave progress (rollout.h). */
#include "rollout.h"

#include "hmap.h"
#include "log.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROLLOUT_ACTOR "rollout"

int
rollout_position(const char *device_id, int64_t deployment_id)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char suffix[24];
    crypto_hash_sha256_state st;
    uint64_t v = 0;
    int n = snprintf(suffix, sizeof(suffix), ":%lld", (long long)deployment_id);
    assert(n > 0 && (size_t)n < sizeof(suffix));
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)device_id, strlen(device_id));
    crypto_hash_sha256_update(&st, (const unsigned char *)suffix, (size_t)n);
    crypto_hash_sha256_final(&st, h);
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return (int)(v % 10000);
}

int
rollout_wave_of(const char *device_id, const struct store_deployment *d)
{
    int pos = rollout_position(device_id, d->id);
    assert(d->nwaves >= 1 && d->waves[d->nwaves - 1] == 100);
    for (int i = 0; i < d->nwaves; i++)
        if (d->waves[i] * 100 > pos)
            return i + 1;
    return d->nwaves; /* not reached: the last wave is 100 % */
}

int
rollout_eligible(const char *device_id, const struct store_deployment *d)
{
    if (d->state == STORE_DEPLOY_COMPLETED)
        return 1;
    return d->state == STORE_DEPLOY_RUNNING && rollout_wave_of(device_id, d) <= d->current_wave;
}

/* The halt reason for d, if any, into reason (empty: none). */
static int
halt_reason(store *st, const struct store_deployment *d, char *reason, size_t len)
{
    int64_t finished = 0, bad = 0;
    struct store_deploy_flag f;
    reason[0] = '\0';
    if (store_attempt_failures(st, d->id, d->current_wave, d->checks_since, &finished, &bad) !=
        STORE_OK)
        return -1;
    if (finished >= d->min_attempts && finished > 0 && bad * 100 >= d->threshold_pct * finished) {
        snprintf(reason, len,
                 "halted: update failure rate %lld%% (%lld of %lld) in wave %d \xe2\x89\xa5 %d%%",
                 (long long)(bad * 100 / finished), (long long)bad, (long long)finished,
                 d->current_wave, d->threshold_pct);
        return 0;
    }
    if (store_deploy_flag_hit(st, d, d->checks_since, &f) != STORE_OK)
        return -1;
    if (f.found && strcmp(f.kind, "new_bucket") == 0)
        snprintf(reason, len, "halted: bucket %.8s\xe2\x80\xa6 on %lld devices in wave %d (%s %s)",
                 f.signature, (long long)f.devices, d->current_wave, f.component, f.version);
    else if (f.found)
        snprintf(reason, len,
                 "halted: crash rate of %s %s is %.2f per device-hour, above %s's %.2f, in wave %d",
                 f.component, f.version, f.crash_rate, f.previous_version, f.previous_crash_rate,
                 d->current_wave);
    return 0;
}

/* Runs the checks of one running deployment. */
static int
check_one(store *st, const struct store_deployment *d, int64_t now, struct rollout_run *run)
{
    struct store_actor a = {d->tenant_id, ROLLOUT_ACTOR};
    struct store_deployment after;
    char reason[STORE_DEPLOY_REASON_MAX];
    int rc;

    if (halt_reason(st, d, reason, sizeof(reason)) != 0)
        return -1;
    if (reason[0] != '\0') {
        rc = store_deploy_transition(st, d->tenant_id, d->id, STORE_DEPLOY_HALT, 0, reason, now, &a,
                                     NULL, NULL);
        if (rc == STORE_OK) {
            run->halted++;
            log_warn("msg=\"deployment halted\" tenant=%lld deployment=%lld reason=\"%s\"",
                     (long long)d->tenant_id, (long long)d->id, reason);
        }
        return rc == STORE_OK || rc == STORE_CONFLICT ? 0 : -1;
    }
    if (now - d->wave_started_at < d->soak_seconds)
        return 0;
    snprintf(reason, sizeof(reason), "%s: wave %d soaked %lld s",
             d->current_wave == d->nwaves ? "completed" : "advanced", d->current_wave,
             (long long)(now - d->wave_started_at));
    rc = store_deploy_transition(st, d->tenant_id, d->id, STORE_DEPLOY_AUTO_ADVANCE,
                                 d->current_wave, reason, now, &a, &after, NULL);
    if (rc == STORE_OK) {
        if (after.state == STORE_DEPLOY_COMPLETED)
            run->completed++;
        else
            run->advanced++;
        log_info("msg=\"deployment %s\" tenant=%lld deployment=%lld wave=%d",
                 after.state == STORE_DEPLOY_COMPLETED ? "completed" : "advanced",
                 (long long)d->tenant_id, (long long)d->id, after.current_wave);
    }
    return rc == STORE_OK || rc == STORE_CONFLICT ? 0 : -1;
}

int
rollout_check(store *st, int64_t now, struct rollout_run *run)
{
    struct store_deployment *ds = NULL;
    size_t n = 0;
    int rc = 0;
    memset(run, 0, sizeof(*run));
    if (store_deploy_running(st, &ds, &n) != STORE_OK)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (check_one(st, &ds[i], now, run) != 0)
            rc = -1;
    free(ds);
    return rc;
}

struct wave_counts {
    int64_t devices, by_state[STORE_ATTEMPT_NSTATES];
    json_t *reasons; /* {reason: devices} of the failed and rolled-back latest attempts */
};

static int64_t
in_progress(const struct wave_counts *w)
{
    const int64_t *s = w->by_state;
    return s[STORE_ATTEMPT_DOWNLOADING] + s[STORE_ATTEMPT_INSTALLED] + s[STORE_ATTEMPT_BOOTED];
}

static int64_t
waiting(const struct wave_counts *w)
{
    int64_t started = 0;
    for (int k = 0; k < STORE_ATTEMPT_NSTATES; k++)
        started += w->by_state[k];
    return w->devices - started;
}

static json_t *
progress_json(const struct store_deployment *d, const struct wave_counts *w)
{
    json_t *a = json_array();
    for (int i = 0; i < d->nwaves && a != NULL; i++) {
        const int64_t *s = w[i].by_state;
        json_array_append_new(
            a,
            json_pack("{s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "wave", i + 1, "percent",
                      d->waves[i] - (i > 0 ? d->waves[i - 1] : 0), "devices",
                      (json_int_t)w[i].devices, "committed", (json_int_t)s[STORE_ATTEMPT_COMMITTED],
                      "rolled_back", (json_int_t)s[STORE_ATTEMPT_ROLLED_BACK], "failed",
                      (json_int_t)s[STORE_ATTEMPT_FAILED], "in_progress",
                      (json_int_t)in_progress(&w[i]), "waiting", (json_int_t)waiting(&w[i])));
        json_object_set(json_array_get(a, (size_t)i), "reasons", w[i].reasons);
    }
    return a;
}

/* Frees what count_waves made (also after its failure). */
static void
wave_counts_clear(struct wave_counts *w)
{
    for (int i = 0; i < STORE_DEPLOY_WAVES_MAX; i++) {
        json_decref(w[i].reasons);
        w[i].reasons = NULL;
    }
}

/* The devices now in d's group per wave (w[0 .. nwaves)), each counted by its latest attempt. */
static int
count_waves(store *st, const struct store_deployment *d, struct wave_counts *w)
{
    char(*ids)[65] = NULL;
    struct store_device_attempt *at = NULL;
    struct hmap m = {0};
    size_t nids = 0, nat = 0;
    int rc = -1;

    memset(w, 0, sizeof(*w) * STORE_DEPLOY_WAVES_MAX);
    for (int i = 0; i < STORE_DEPLOY_WAVES_MAX; i++)
        if ((w[i].reasons = json_object()) == NULL)
            goto out;
    if (store_deploy_group_devices(st, d->tenant_id, d->group_id, &ids, &nids) != STORE_OK ||
        store_attempt_latest(st, d->id, &at, &nat) != STORE_OK)
        goto out;
    for (size_t i = 0; i < nat; i++) {
        size_t idx;
        int added;
        if (hmap_insert(&m, at[i].device_id, strlen(at[i].device_id), &idx, &added) != 0)
            goto out;
    }
    for (size_t i = 0; i < nids; i++) {
        struct wave_counts *c = &w[rollout_wave_of(ids[i], d) - 1];
        size_t idx = hmap_find(&m, ids[i], strlen(ids[i]));
        c->devices++;
        if (idx == HMAP_NONE)
            continue;
        c->by_state[at[idx].state]++;
        if (at[idx].state == STORE_ATTEMPT_FAILED || at[idx].state == STORE_ATTEMPT_ROLLED_BACK) {
            const char *why = at[idx].reason[0] != '\0' ? at[idx].reason : "unknown";
            json_t *n = json_object_get(c->reasons, why);
            json_object_set_new(c->reasons, why, json_integer(json_integer_value(n) + 1));
        }
    }
    rc = 0;
out:
    hmap_clear(&m);
    free(ids);
    free(at);
    return rc;
}

int
rollout_progress(store *st, const struct store_deployment *d, json_t **out)
{
    struct wave_counts w[STORE_DEPLOY_WAVES_MAX];
    int rc = -1;
    *out = NULL;
    if (count_waves(st, d, w) == 0)
        rc = (*out = progress_json(d, w)) != NULL ? 0 : -1;
    wave_counts_clear(w);
    return rc;
}

const char *
rollout_wave_state_name(enum rollout_wave_state s)
{
    static const char *const names[ROLLOUT_WAVE_NSTATES] = {
        "devices", "waiting", "in_progress", "committed", "rolled_back", "failed"};
    assert(s >= 0 && s < ROLLOUT_WAVE_NSTATES);
    return names[s];
}

int
rollout_wave_totals(store *st, int64_t totals[ROLLOUT_WAVE_NSTATES])
{
    struct store_deployment *ds = NULL;
    struct wave_counts w[STORE_DEPLOY_WAVES_MAX];
    size_t n = 0;
    int rc = 0;

    memset(totals, 0, sizeof(int64_t) * ROLLOUT_WAVE_NSTATES);
    if (store_deploy_running(st, &ds, &n) != STORE_OK)
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = count_waves(st, &ds[i], w);
        if (rc != 0) {
            wave_counts_clear(w);
            break;
        }
        const struct wave_counts *c = &w[ds[i].current_wave - 1];
        totals[ROLLOUT_WAVE_DEVICES] += c->devices;
        totals[ROLLOUT_WAVE_WAITING] += waiting(c);
        totals[ROLLOUT_WAVE_IN_PROGRESS] += in_progress(c);
        totals[ROLLOUT_WAVE_COMMITTED] += c->by_state[STORE_ATTEMPT_COMMITTED];
        totals[ROLLOUT_WAVE_ROLLED_BACK] += c->by_state[STORE_ATTEMPT_ROLLED_BACK];
        totals[ROLLOUT_WAVE_FAILED] += c->by_state[STORE_ATTEMPT_FAILED];
        wave_counts_clear(w);
    }
    free(ds);
    return rc;
}
