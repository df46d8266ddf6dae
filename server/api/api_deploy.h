/* api_deploy: the manufacturer REST handlers for deployments (docs/api.md "Deployments"), one line
 * each in the route table (server/routes.c). */
#ifndef AEGIS_API_DEPLOY_H
#define AEGIS_API_DEPLOY_H

#include "api.h"

void api_deployments_create(api_req *r);
void api_deployments_list(api_req *r);
void api_device_update_attempts(api_req *r);
void api_deployments_get(api_req *r);
void api_deployments_pause(api_req *r);
void api_deployments_resume(api_req *r);
void api_deployments_abort(api_req *r);
void api_deployments_advance(api_req *r);

#endif
