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

void
dev_trust_bundle(api_req *r)
{
    struct store_ca *cas = NULL;
    size_t ncas = 0;
    char *pem = NULL;
    size_t len = 0, cap = 0;
    int rc = store_ca_load_all(r->app->st, r->tenant_id, util_now(), &cas, &ncas);
    if (rc != STORE_OK) {
        api_store_error(r, rc, "trust bundle");
        goto out;
    }
    for (size_t i = 0; i < ncas; i++) {
        const char *c = cas[i].cert_pem;
        assert(c != NULL);
        size_t n = strlen(c);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *np = realloc(pem, cap);
            if (np == NULL) {
                api_error(r, 500, "internal", "out of memory");
                goto out;
            }
            pem = np;
        }
        memcpy(pem + len, c, n);
        len += n;
        pem[len] = '\0';
    }
    if (pem == NULL) {
        api_error(r, 404, "not_found", "the tenant has no issuing CA");
        goto out;
    }
    api_reply_text(r, 200, "application/x-pem-file", pem, len);
    pem = NULL;
out:
    free(pem);
    store_ca_free(cas, ncas);
}
