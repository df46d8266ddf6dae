/* Image download for devices (docs/update.md 5): GET and HEAD /v1/device/images/{sha256}, and the
 * same bytes at the image repository's consistent target path GET
 * /v1/device/tuf/targets/{component}/{sha256}.{sha256} (what TUF clients such as tuf-js fetch),
 * mutual TLS. A device gets only the images its director answer names (the images of its group's
 * deployment once its wave is in); anything else (another tenant's image, an image not offered to
 * it, a malformed digest, a file gone from disk) is one 404. The file is streamed from disk with
 * single byte ranges (api_reply_file_ranged), so an interrupted download resumes where it stopped.
 * The recovery path (dev_recovery.c) serves through dev_image_serve with its own authorisation. */
#include "api.h"
#include "app.h"
#include "dev_handlers.h"
#include "devauth.h"
#include "director.h"
#include "proto_fields.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

void
dev_image_serve(api_req *r, const char *sha256)
{
    char dir[PATH_MAX], etag[80];
    int fd = -1;
    int64_t size = 0;

    snprintf(dir, sizeof(dir), "%s/images", r->app->cfg->data_dir);
    int rc = store_image_open(r->app->st, dir, r->tenant_id, sha256, &fd, &size);
    if (rc != STORE_OK) {
        api_store_error(r, rc, "image");
        return;
    }
    /* The digest names the bytes for ever (images are immutable): the strongest entity tag. */
    snprintf(etag, sizeof(etag), "\"%s\"", sha256);
    api_reply_file_ranged(r, fd, (uint64_t)size, etag, "application/octet-stream");
}

/* Whether the device's director answer names sha256: 1, or 0 with the reply set (404, or 503 when
 * the plan cannot be read). */
static int
offered(api_req *r, const char *sha256)
{
    const struct devauth_identity *id = r->device;
    struct director_device dev = {id->tenant_id, id->device_id, id->group_id};
    int named = director_names_image(r->app->director, &dev, sha256);
    if (named < 0)
        api_error(r, 503, "unavailable", "the update plan cannot be read now");
    else if (named == 0)
        api_error(r, 404, "not_found", "image not found");
    return named > 0;
}

void
dev_image_get(api_req *r)
{
    const char *sha256 = r->params[0];
    if (offered(r, sha256))
        dev_image_serve(r, sha256);
}

void
dev_tuf_target(api_req *r)
{
    const char *component = r->params[0], *file = r->params[1];
    char sha256[PROTO_HASH_HEX + 1];
    json_t *img = NULL;

    /* "<sha256>.<sha256>": the consistent-snapshot name of the target "<component>/<sha256>" */
    if (strlen(file) != 2 * PROTO_HASH_HEX + 1 || file[PROTO_HASH_HEX] != '.' ||
        memcmp(file, file + PROTO_HASH_HEX + 1, PROTO_HASH_HEX) != 0) {
        api_error(r, 404, "not_found", "no such target");
        return;
    }
    memcpy(sha256, file, PROTO_HASH_HEX);
    sha256[PROTO_HASH_HEX] = '\0';
    if (!offered(r, sha256))
        return;
    int rc = store_image_get(r->app->st, r->tenant_id, sha256, &img);
    const char *have = json_string_value(json_object_get(img, "component"));
    if (rc == STORE_OK && (have == NULL || strcmp(have, component) != 0))
        rc = STORE_NOTFOUND;
    json_decref(img);
    if (rc != STORE_OK)
        api_store_error(r, rc, "target");
    else
        dev_image_serve(r, sha256);
}
