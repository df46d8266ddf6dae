/* api_session: the dashboard's sign-in (docs/api.md "Sessions"): an API token exchanged for a
 * session cookie (POST), the session as the page sees it (GET), sign-out (DELETE). The routes are
 * AUTH_NONE; each handler authenticates what it needs itself (http_auth.h). */
#ifndef AEGIS_API_SESSION_H
#define AEGIS_API_SESSION_H

#include "api.h"

void api_session_create(api_req *r);
void api_session_get(api_req *r);
void api_session_delete(api_req *r);

#endif
