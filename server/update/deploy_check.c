/* deploy_check: a deployment's images against the published targets (deploy_check.h). */
#include "deploy_check.h"

#include "store_tuf.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Whether targets (the "signed"."targets" object) lists sha256 at a path ending in "/<sha256>"
 * with that hash. */
static int
lists(json_t *targets, const char *sha256)
{
    const char *path;
    json_t *t;
    size_t n = strlen(sha256);
    json_object_foreach(targets, path, t)
    {
        size_t plen = strlen(path);
        const char *h = json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
        if (plen > n && path[plen - n - 1] == '/' && strcmp(path + plen - n, sha256) == 0 &&
            h != NULL && strcmp(h, sha256) == 0)
            return 1;
    }
    return 0;
}

int
deploy_check_published(store *st, int64_t tenant_id, const char *const *images, size_t n,
                       char missing[65], char *err, size_t errlen)
{
    struct store_tuf_file f = {0};
    json_t *doc = NULL, *targets;
    int rc = store_tuf_get(st, tenant_id, STORE_TUF_IMAGE, "targets", 0, &f);

    missing[0] = '\0';
    if (rc == STORE_NOTFOUND) {
        snprintf(missing, 65, "%s", n > 0 ? images[0] : "");
        rc = 1;
        goto out;
    }
    if (rc != STORE_OK) {
        snprintf(err, errlen, "cannot read the image repository's targets");
        rc = -1;
        goto out;
    }
    doc = json_loadb(f.body, f.len, 0, NULL);
    targets = json_object_get(json_object_get(doc, "signed"), "targets");
    if (!json_is_object(targets)) {
        snprintf(err, errlen, "the stored targets metadata cannot be read");
        rc = -1;
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!lists(targets, images[i])) {
            snprintf(missing, 65, "%s", images[i]);
            rc = 1;
        }
    }
out:
    json_decref(doc);
    store_tuf_file_free(&f);
    return rc;
}
