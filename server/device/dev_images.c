/* Image download for devices (docs/update.md 5): GET and HEAD /v1/device/images/{sha256}, mutual
 * TLS. The file is streamed from disk with single byte ranges (api_reply_file_ranged), so an
 * interrupted download resumes where it stopped. Only the device's tenant's images exist here:
 * anything else (another tenant's image, a malformed digest, a file gone from disk) is one 404. */
#include "api.h"
#include "app.h"
#include "dev_handlers.h"

#include <limits.h>
#include <stdio.h>

void
dev_image_get(api_req *r)
{
    const char *sha256 = r->params[0];
    char dir[PATH_MAX], etag[API_PARAM_MAX + 3];
    int fd = -1;
    int64_t size = 0;

    snprintf(dir, sizeof(dir), "%s/images", r->app->cfg->data_dir);
    /* Authorisation of this device for this image goes here, before the file is opened: today
     * every image of its tenant; with the director, only those its director metadata names (a
     * refusal answers the same 404 as an unknown image). */
    int rc = store_image_open(r->app->st, dir, r->tenant_id, sha256, &fd, &size);
    if (rc != STORE_OK) {
        api_store_error(r, rc, "image");
        return;
    }
    /* The digest names the bytes for ever (images are immutable): the strongest entity tag. */
    snprintf(etag, sizeof(etag), "\"%s\"", sha256);
    api_reply_file_ranged(r, fd, (uint64_t)size, etag, "application/octet-stream");
}
