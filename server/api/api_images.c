/* REST handlers for update images (docs/api.md "Images"): an upload is streamed to disk as it
 * arrives (BODY_STREAM), never held in memory, and named by its SHA-256. */
#include "api_handlers.h"
#include "app.h"
#include "api.h"
#include "api_util.h"
#include "log.h"
#include "store.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SVN_MAX 4294967295LL

/* One upload in flight: the sink's context. */
struct image_upload {
    store_image_upload *u;
    struct store_image img;
};

static void
images_dir(const api_req *r, char *dir, size_t len)
{
    snprintf(dir, len, "%s/images", r->app->cfg->data_dir);
}

/* A required text query argument into out (outlen bytes with the NUL); -1 with a 400 set. */
static int
query_text(api_req *r, const char *key, char *out, size_t outlen)
{
    const char *v = api_query(r, key);
    if (v == NULL || v[0] == '\0' || strlen(v) >= outlen) {
        api_error(r, 400, "validation_failed", "'%s' is required (at most %zu bytes)", key,
                  outlen - 1);
        return -1;
    }
    snprintf(out, outlen, "%s", v);
    return 0;
}

/* The manufacturer's fields of an upload, from the query string. -1 with a 400 reply set. */
static int
parse_fields(api_req *r, struct store_image *img)
{
    memset(img, 0, sizeof(*img));
    if (api_query_i64(r, "product_id", 1, INT64_MAX, &img->product_id) != 1 ||
        api_query_i64(r, "svn", 0, SVN_MAX, &img->svn) != 1) {
        if (r->status == 0)
            api_error(r, 400, "validation_failed", "'product_id' and 'svn' are required");
        return -1;
    }
    if (query_text(r, "component", img->component, sizeof(img->component)) != 0 ||
        query_text(r, "kind", img->kind, sizeof(img->kind)) != 0 ||
        query_text(r, "version", img->version, sizeof(img->version)) != 0 ||
        query_text(r, "hardware", img->hardware, sizeof(img->hardware)) != 0)
        return -1;
    const char *reg = api_query(r, "register_refval");
    if (reg != NULL && strcmp(reg, "true") != 0 && strcmp(reg, "false") != 0) {
        api_error(r, 400, "validation_failed", "'register_refval' is true or false");
        return -1;
    }
    img->register_refval = reg != NULL && strcmp(reg, "true") == 0;
    if (img->register_refval && strcmp(img->kind, "app") != 0) {
        api_error(r, 400, "validation_failed",
                  "'register_refval' applies to app images only: bootloader and OS reference "
                  "values are the service operator's");
        return -1;
    }
    if (!store_image_ok(img)) {
        api_error(r, 400, "validation_failed",
                  "component and hardware: 1-64 of [a-z0-9._-]; kind: os or app; version: 1-32 "
                  "printable characters");
        return -1;
    }
    return 0;
}

static int
sink_data(void *ctx, api_req *r, const char *p, size_t n)
{
    struct image_upload *iu = ctx;
    char err[256];
    if (store_image_upload_write(iu->u, p, n, err, sizeof(err)) == 0)
        return 0;
    log_error("msg=\"image upload failed\" tenant=%lld err=\"%s\"", (long long)r->tenant_id, err);
    api_error(r, 500, "internal", "the image could not be stored");
    return -1;
}

static void
sink_abort(void *ctx)
{
    struct image_upload *iu = ctx;
    store_image_upload_abort(iu->u);
    free(iu);
}

static void
sink_done(void *ctx, api_req *r)
{
    struct image_upload *iu = ctx;
    struct store_actor a = api_actor(r);
    json_t *obj = NULL;
    int created = 0;
    int rc =
        store_image_upload_commit(r->app->st, iu->u, r->tenant_id, &iu->img, &a, &obj, &created);
    iu->u = NULL; /* freed by the commit */
    if (rc == STORE_CONFLICT && iu->img.register_refval)
        api_error(r, 409, "conflict",
                  "image %s exists with other fields, or the tenant has a reference value of %s "
                  "%s with another svn or digest",
                  iu->img.sha256, iu->img.component, iu->img.version);
    else if (rc == STORE_CONFLICT)
        api_error(r, 409, "conflict", "image %s exists with other fields", iu->img.sha256);
    else if (rc == STORE_NOTFOUND)
        api_error(r, 404, "not_found", "no such product");
    else
        api_reply_store(r, rc, created ? 201 : 200, obj, "image");
    free(iu);
}

void
api_images_upload(api_req *r)
{
    struct image_upload *iu = calloc(1, sizeof(*iu));
    const char *ctype = api_header(r, "Content-Type");
    char dir[PATH_MAX], err[256];
    if (iu == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    if (ctype == NULL || strcasecmp(ctype, "application/octet-stream") != 0) {
        api_error(r, 415, "unsupported_media_type",
                  "Content-Type must be application/octet-stream");
        goto fail;
    }
    if (parse_fields(r, &iu->img) != 0)
        goto fail;
    images_dir(r, dir, sizeof(dir));
    if ((iu->u = store_image_upload_begin(dir, err, sizeof(err))) == NULL) {
        log_error("msg=\"image upload failed\" tenant=%lld err=\"%s\"", (long long)r->tenant_id,
                  err);
        api_error(r, 500, "internal", "the image could not be stored");
        goto fail;
    }
    struct api_body_sink sink = {sink_data, sink_done, sink_abort, iu};
    api_stream_body(r, &sink);
    return;
fail:
    free(iu);
}

void
api_images_list(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    if (api_page(r, &pg) != 0)
        return;
    int rc = store_image_list(r->app->st, r->tenant_id, &pg, &items, next);
    api_reply_list(r, rc, items, next, "image");
}

void
api_images_get(api_req *r)
{
    json_t *obj = NULL;
    int rc = store_image_get(r->app->st, r->tenant_id, r->params[0], &obj);
    api_reply_store(r, rc, 200, obj, "image");
}

void
api_images_delete(api_req *r)
{
    char dir[PATH_MAX];
    struct store_actor a = api_actor(r);
    images_dir(r, dir, sizeof(dir));
    int rc = store_image_delete(r->app->st, dir, r->tenant_id, r->params[0], &a);
    api_reply_store(r, rc, 204, NULL, "image");
}
