/* The tenant's TUF metadata files as devices fetch them (docs/update.md 2-3): the stored bytes,
 * exactly as signed. The same handlers serve the manufacturer's token routes (/v1/ota/repo/...,
 * /v1/ota/director/...): they only use the caller's tenant. */
#include "api.h"
#include "app.h"
#include "dev_handlers.h"
#include "upd_repo.h"

static void
serve(api_req *r, const char *repo)
{
    struct store_tuf_file f;
    int rc = upd_file_get(r->app->st, r->tenant_id, repo, r->params[0], &f);
    if (rc == UPD_E_NOTFOUND) {
        api_error(r, 404, "not_found", "no such metadata file");
        return;
    }
    if (rc != UPD_OK) {
        api_error(r, 500, "internal", "the metadata could not be read");
        return;
    }
    api_reply_text(r, 200, "application/json", f.body, f.len);
    f.body = NULL; /* taken by the reply */
    store_tuf_file_free(&f);
}

void
dev_tuf_file(api_req *r)
{
    serve(r, STORE_TUF_IMAGE);
}

void
dev_tuf_director_file(api_req *r)
{
    serve(r, STORE_TUF_DIRECTOR);
}
