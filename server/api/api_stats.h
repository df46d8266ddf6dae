/* api_stats: the figures of the dashboard's overviews (docs/api.md "Dashboard figures"), each one
 * read of the store (store_stats.h): attestations by period with their refusal reasons, devices by
 * state with certificates expiring, the fleet's crash-free hours by period, and a page of buckets'
 * daily crashes and per-version counts. All reader routes. */
#ifndef AEGIS_API_STATS_H
#define AEGIS_API_STATS_H

#include "api.h"

void api_attest_stats(api_req *r);
void api_device_stats(api_req *r);
void api_fleet_series(api_req *r);
void api_bucket_series(api_req *r);

#endif
