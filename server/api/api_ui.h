/* api_ui: the dashboard's files (ui/), compiled into the binary at build time by
 * server/api/embed_ui.sh ($(BUILD)/gen/ui.c) and served under /ui/ with a strict
 * Content-Security-Policy (docs/api.md "Dashboard"). Nothing is read from disk at run time. */
#ifndef AEGIS_API_UI_H
#define AEGIS_API_UI_H

#include "api.h"

#include <stddef.h>

/* One embedded file: its path under ui/ ("index.html", "vendor/x.js"), media type, bytes and a
 * quoted strong entity tag (from its SHA-256). */
struct api_ui_asset {
    const char *path;
    const char *ctype;
    const unsigned char *data;
    size_t len;
    const char *etag;
};
/* The table the build generates, sorted by path. */
extern const struct api_ui_asset api_ui_assets[];
extern const size_t api_ui_asset_count;

/* GET /ui/: index.html. */
void api_ui_index(api_req *r);
/* GET /ui/{file} and GET /ui/{dir}/{file}: that file, or 404. */
void api_ui_file(api_req *r);

#endif
