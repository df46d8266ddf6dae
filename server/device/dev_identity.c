/* Device endpoints that only need the authenticated identity: who am I, and whom do I trust. */
#include "app.h"
#include "api.h"
#include "devauth.h"
#include "dev_handlers.h"
#include "util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static json_t *
id_or_null(int64_t v)
{
    return v > 0 ? json_integer(v) : json_null();
}

void
dev_whoami(api_req *r)
{
    const struct devauth_identity *id = r->device;
    char nb[32], na[32];
    json_t *body =
        json_pack("{s:s, s:I, s:o, s:o, s:{s:s, s:s, s:s}}", "device_id", id->device_id,
                  "tenant_id", (json_int_t)id->tenant_id, "group_id", id_or_null(id->group_id),
                  "product_id", id_or_null(id->product_id), "certificate", "serial", id->serial,
                  "not_before", util_rfc3339(id->not_before, nb, sizeof(nb)), "not_after",
                  util_rfc3339(id->not_after, na, sizeof(na)));
    if (body == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply(r, 200, body);
}

/* Appends pem and a newline if it lacks one to buf (len bytes used); -1 when out of memory. */
static int
bundle_append(char **buf, size_t *len, const char *pem)
{
    size_t n = strlen(pem);
    char *nb = realloc(*buf, *len + n + 2);
    if (nb == NULL)
        return -1;
    memcpy(nb + *len, pem, n);
    *len += n;
    if (n > 0 && pem[n - 1] != '\n')
        nb[(*len)++] = '\n';
    nb[*len] = '\0';
    *buf = nb;
    return 0;
}

/* The tenant's device root first (the anchor of docs/protocol.md §4), then its unexpired issuing
 * CAs: all of them the tenant's own. */
void
dev_trust_bundle(api_req *r)
{
    struct store_ca *cas = NULL;
    size_t ncas = 0, len = 0;
    char *root = NULL, *pem = NULL;
    int rc = store_tenant_device_root(r->app->st, r->tenant_id, &root);
    if (rc == STORE_OK)
        rc = store_ca_load_all(r->app->st, r->tenant_id, util_now(), &cas, &ncas);
    if (rc != STORE_OK) {
        api_store_error(r, rc, "trust bundle");
        goto out;
    }
    int oom = root != NULL && bundle_append(&pem, &len, root) != 0;
    for (size_t i = 0; i < ncas && !oom; i++) {
        assert(cas[i].cert_pem != NULL);
        oom = bundle_append(&pem, &len, cas[i].cert_pem) != 0;
    }
    if (oom) {
        api_error(r, 500, "internal", "out of memory");
        goto out;
    }
    if (pem == NULL) {
        api_error(r, 404, "not_found", "the tenant has no issuing CA");
        goto out;
    }
    api_reply_text(r, 200, "application/x-pem-file", pem, len);
    pem = NULL;
out:
    free(pem);
    free(root);
    store_ca_free(cas, ncas);
}
