/* dev_update: the device side of update distribution (docs/update.md sections 4 and 6): the
 * director's answer and update status reports. Handlers for the route table (server/routes.c). */
#ifndef AEGIS_DEV_UPDATE_H
#define AEGIS_DEV_UPDATE_H

#include "api.h"

/* GET /v1/device/update (AUTH_DEVICE): the device's signed director metadata; ETag, and 304 for
 * a matching If-None-Match. */
void dev_update_check(api_req *r);
/* POST /v1/device/update/status (AUTH_DEVICE): one report about an update attempt. */
void dev_update_status(api_req *r);

#endif
