/* The recovery path (docs/update.md 8): a device refused at attestation for its bootloader or OS
 * got a grant in the refusal (dev_attest.c); with it as a bearer token, and without a client
 * certificate, it may fetch its tenant's TUF metadata and the platform images the grant names,
 * and nothing else. */
#include "api.h"
#include "app.h"
#include "dev_handlers.h"
#include "devauth.h"
#include "upd_recovery.h"
#include "util.h"

#include <string.h>
#include <strings.h>

/* The grant of the request's bearer token: 0 with r->tenant_id set to its tenant, or -1 with a
 * 401 reply set. */
static int
granted(api_req *r, struct upd_recovery_grant *g)
{
    const char *h = api_header(r, "Authorization");
    const char *token = h != NULL && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
    /* The grant ends with the device's registration: unclaimed, transferred, blocked or deleted
     * since, it opens nothing. */
    if (token == NULL || upd_recovery_find(r->app->recovery, token, util_now(), g) != 0 ||
        !devauth_device_current(r->app->devauth, g->device_id, g->tenant_id)) {
        api_error(r, 401, "unauthorized", "a valid recovery grant is required");
        return -1;
    }
    r->tenant_id = g->tenant_id;
    return 0;
}

void
dev_recovery_tuf_file(api_req *r)
{
    struct upd_recovery_grant g;
    if (granted(r, &g) == 0)
        dev_tuf_file(r);
}

void
dev_recovery_director_file(api_req *r)
{
    struct upd_recovery_grant g;
    if (granted(r, &g) == 0)
        dev_tuf_director_file(r);
}

void
dev_recovery_image(api_req *r)
{
    struct upd_recovery_grant g;
    if (granted(r, &g) != 0)
        return;
    if (!upd_recovery_allows(&g, r->params[0])) {
        api_error(r, 404, "not_found", "image not found");
        return;
    }
    dev_image_serve(r, r->params[0]);
}
