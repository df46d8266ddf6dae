/* api_ui: the embedded dashboard (api_ui.h). */
#include "api_ui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No inline script or style, no eval, nothing from another origin, no framing: the dashboard runs
 * only the files below, so text from devices (crash messages, names) can never become code. */
static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
                          "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/* The headers of every /ui/ answer, found or not. */
static void
ui_headers(api_req *r)
{
    (void)api_reply_header(r, "Content-Security-Policy", CSP);
    (void)api_reply_header(r, "X-Frame-Options", "DENY");
    (void)api_reply_header(r, "Referrer-Policy", "no-referrer");
    /* Revalidated on each load (a cheap 304 by ETag), so a new binary's files show at once. */
    (void)api_reply_header(r, "Cache-Control", "no-cache");
}

static const struct api_ui_asset *
ui_find(const char *path)
{
    for (size_t i = 0; i < api_ui_asset_count; i++)
        if (strcmp(api_ui_assets[i].path, path) == 0)
            return &api_ui_assets[i];
    return NULL;
}

static void
ui_serve(api_req *r, const char *path)
{
    ui_headers(r);
    const struct api_ui_asset *a = ui_find(path);
    if (a == NULL) {
        api_error(r, 404, "not_found", "no such file of the dashboard");
        return;
    }
    (void)api_reply_header(r, "ETag", a->etag);
    if (api_if_none_match(r, a->etag)) {
        api_reply(r, 304, NULL);
        return;
    }
    char *body = malloc(a->len > 0 ? a->len : 1);
    if (body == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    memcpy(body, a->data, a->len);
    api_reply_text(r, 200, a->ctype, body, a->len);
}

void
api_ui_index(api_req *r)
{
    ui_serve(r, "index.html");
}

void
api_ui_file(api_req *r)
{
    char path[2 * API_PARAM_MAX + 2];
    /* The router's {x} segments hold no '/', so a path names a table entry or nothing: no file
     * system, no "..". */
    if (strcmp(r->route, "/ui/{file}") == 0)
        snprintf(path, sizeof(path), "%s", r->params[0]);
    else
        snprintf(path, sizeof(path), "%s/%s", r->params[0], r->params[1]);
    ui_serve(r, path);
}
