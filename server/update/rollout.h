/* rollout: the staged rollout of deployments (docs/update.md section 7): which wave a device is in,
 * the periodic checks that halt a running deployment by themselves or advance it when its wave
 * has soaked, and the per-wave progress the API shows. Stateless: everything is in the store. */
#ifndef AEGIS_ROLLOUT_H
#define AEGIS_ROLLOUT_H

#include "store.h"
#include "store_deploy.h"

#include <jansson.h>
#include <stdint.h>

/* The device's position in the deployment, in basis points 0..9999: the first 8 bytes of
 * SHA-256(device_id ":" decimal deployment_id), big-endian, modulo 10000. */
int rollout_position(const char *device_id, int64_t deployment_id);
/* The device's wave in d (1-based): the first wave whose cumulative percent * 100 exceeds its
 * position. So a device never moves to a later wave. */
int rollout_wave_of(const char *device_id, const struct store_deployment *d);
/* 1 when d offers its images to the device now: d is running and the device's wave is at most
 * the current one, or d is completed. */
int rollout_eligible(const char *device_id, const struct store_deployment *d);

/* What one run of the checks did. */
struct rollout_run {
    int halted;
    int advanced;
    int completed;
};
/* Checks every running deployment at time now: halts it when its current wave's update failure
 * rate reaches its threshold (with at least min_attempts finished attempts) or when failure
 * reporting raised a flag on one of its versions since it (re)started; else advances it once the
 * current wave has soaked (the last wave: completed). Each change is audited with its reason and
 * bumps the tenant's director generation. Returns 0, or -1 when the store failed (logged). */
int rollout_check(store *st, int64_t now, struct rollout_run *run);

/* The per-wave progress of d: [{"wave", "percent", "devices", "committed", "rolled_back",
 * "failed", "in_progress", "waiting"}] over the devices now in d's group, each counted by its
 * latest attempt. *out is the caller's. */
int rollout_progress(store *st, const struct store_deployment *d, json_t **out);

/* The series of /metrics' per-wave progress (aegis_rollout_wave_devices{state}). */
enum rollout_wave_state {
    ROLLOUT_WAVE_DEVICES = 0, /* in the current wave */
    ROLLOUT_WAVE_WAITING,     /* of them: no attempt yet */
    ROLLOUT_WAVE_IN_PROGRESS, /* latest attempt downloading, installed or booted */
    ROLLOUT_WAVE_COMMITTED,
    ROLLOUT_WAVE_ROLLED_BACK,
    ROLLOUT_WAVE_FAILED,
    ROLLOUT_WAVE_NSTATES
};
/* "devices", "waiting", "in_progress", "committed", "rolled_back", "failed". */
const char *rollout_wave_state_name(enum rollout_wave_state s);
/* The devices of every running deployment's current wave, summed per state (as
 * rollout_progress counts them). Returns 0, or -1 when the store failed. */
int rollout_wave_totals(store *st, int64_t totals[ROLLOUT_WAVE_NSTATES]);

#endif
