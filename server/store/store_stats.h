/* store_stats: the figures the dashboard's overviews draw (docs/api.md "Dashboard figures"): one
 * read each, per tenant, over indexed ranges. Every *out is a new JSON value owned by the caller
 * (NULL on failure). Periods are whole multiples of step seconds since the epoch (UTC). */
#ifndef AEGIS_STORE_STATS_H
#define AEGIS_STORE_STATS_H

#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The tenant's attestation records created in [since, until) (since a multiple of step) by
 * period: *out = {"items": [{"period_start", "pass", "fail", "reasons": {reason: n}}] (every
 * period of the window, empty ones included), "totals": {"pass", "fail", "reasons"}}. */
int store_attest_stats(store *s, int64_t tenant_id, int64_t since, int64_t until, int64_t step,
                       json_t **out);

/* The tenant's devices by state and its claimed, unblocked devices' certificates (from each one's
 * last passed attestation) at now: *out = {"states": {"unclaimed", "active", "blocked"},
 * "attestation": {"pass", "fail", "never"}, "certificates": {"valid", "expiring", "expired",
 * "none"}, "expiring": [{"device_id", "not_after"}]} where expiring means not_after in
 * (now, now + within] and the list holds up to max of the expired and expiring, soonest first. */
int store_device_stats(store *s, int64_t tenant_id, int64_t now, int64_t within, size_t max,
                       json_t **out);

/* The fleet's device-hours, crashes and crash hours per period of [since, until): *out = [{
 * "period_start", "device_hours", "crashes", "crash_hours", "crash_free_device_hours"}] for every
 * period, empty ones included. */
int store_fleet_series(store *s, int64_t tenant_id, int64_t since, int64_t until, int64_t step,
                       json_t **out);

/* For each of the n buckets ids that is the tenant's (others are left out, as if absent): its
 * crashes per day over the days days from since (a whole day) and its counts per image version:
 * *out = [{"bucket_id", "daily": [n per day], "versions": [{"image_version", "count"}] (most
 * first)}] in the order of ids. */
int store_bucket_series(store *s, int64_t tenant_id, const int64_t *ids, size_t n, int64_t since,
                        int days, json_t **out);

#endif
