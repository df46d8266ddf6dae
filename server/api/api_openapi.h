/* api_openapi: GET /openapi.yaml, the API's description (docs/openapi.yaml) as this binary was
 * built with it (the Makefile compiles the file in with server/api/embed_text.sh). */
#ifndef AEGIS_API_OPENAPI_H
#define AEGIS_API_OPENAPI_H

#include "api.h"

void api_openapi(api_req *r);

#endif
