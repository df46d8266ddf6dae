/* upd_online: snapshot and timestamp signed online (upd_online.h). */
#include "upd_online.h"

#include "log.h"
#include "ota_meta.h"
#include "signer.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
upd_sign_online(struct signer *sg, int64_t tenant_id, upd_key k, json_t *env, char *err,
                size_t errlen)
{
    char name[64], sig[OTA_SIG_HEX_LEN], keyid[OTA_KEYID_HEX_LEN];
    char *msg = NULL;
    size_t len = 0;
    int rc = UPD_E_INTERNAL;
    json_t *sigs = json_object_get(env, "signatures");
    if (upd_key_name(tenant_id, k, name, sizeof(name)) != 0 || !json_is_array(sigs) ||
        ota_meta_signed_bytes(env, &msg, &len, err, errlen) != 0)
        goto out;
    if (signer_ed25519_sign(sg, name, (const unsigned char *)msg, len, sig, keyid, err, errlen) !=
        0) {
        log_error("msg=\"online TUF signature failed\" tenant=%lld key=%s err=\"%s\"",
                  (long long)tenant_id, name, err);
        goto out;
    }
    if (json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid", keyid, "sig", sig)) == 0)
        rc = UPD_OK;
out:
    free(msg);
    if (rc != UPD_OK)
        snprintf(err, errlen, "the online metadata could not be signed");
    return rc;
}

/* Signs the "signed" object s (taken) with key k into the file *out. */
static int
sign_into(struct signer *sg, int64_t tenant_id, upd_key k, json_t *s, struct store_tuf_file *out,
          char *err, size_t errlen)
{
    json_t *env = s != NULL ? ota_meta_envelope(s) : NULL;
    int rc = UPD_E_INTERNAL;
    memset(out, 0, sizeof(*out));
    if (env != NULL && (rc = upd_sign_online(sg, tenant_id, k, env, err, errlen)) == UPD_OK)
        rc = upd_file_of(env, out, err, errlen) == UPD_OK ? UPD_OK : UPD_E_INTERNAL;
    json_decref(env);
    return rc;
}

int
upd_new_snapshot(struct signer *sg, int64_t tenant_id, int64_t version, int64_t targets_version,
                 int64_t now, struct store_tuf_file *out, char *err, size_t errlen)
{
    return sign_into(sg, tenant_id, UPD_KEY_SNAPSHOT,
                     ota_meta_new_snapshot(version, now + UPD_SNAPSHOT_LIFE_S, targets_version),
                     out, err, errlen);
}

int
upd_new_timestamp(struct signer *sg, int64_t tenant_id, int64_t version,
                  const struct store_tuf_file *snap, int64_t now, struct store_tuf_file *out,
                  char *err, size_t errlen)
{
    unsigned char d[crypto_hash_sha256_BYTES];
    char hex[OTA_SHA256_HEX_LEN];
    crypto_hash_sha256(d, (const unsigned char *)snap->body, snap->len);
    sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
    return sign_into(sg, tenant_id, UPD_KEY_TIMESTAMP,
                     ota_meta_new_timestamp(version, now + UPD_TIMESTAMP_LIFE_S, snap->version,
                                            (int64_t)snap->len, hex),
                     out, err, errlen);
}

/* The newest files of the online roles and of targets; UPD_E_NOTFOUND without a timestamp. */
static int
load_current(store *st, int64_t tenant_id, struct store_tuf_file cur[3])
{
    static const char *const roles[] = {"timestamp", "snapshot", "targets"};
    for (int i = 0; i < 3; i++) {
        int rc = store_tuf_get(st, tenant_id, STORE_TUF_IMAGE, roles[i], 0, &cur[i]);
        if (rc != STORE_OK)
            return rc == STORE_NOTFOUND ? UPD_E_NOTFOUND : UPD_E_INTERNAL;
    }
    return UPD_OK;
}

int
upd_refresh(store *st, struct signer *sg, int64_t tenant_id, int64_t now, int *resigned, char *err,
            size_t errlen)
{
    struct store_tuf_file cur[3], out[2]; /* cur: timestamp, snapshot, targets */
    size_t n = 0;
    int rc;
    memset(cur, 0, sizeof(cur));
    memset(out, 0, sizeof(out));
    *resigned = 0;
    if ((rc = load_current(st, tenant_id, cur)) != UPD_OK) {
        rc = rc == UPD_E_NOTFOUND ? UPD_OK : rc;
        goto out;
    }
    const struct store_tuf_file *snap = &cur[1];
    if (cur[1].expires - now < UPD_SNAPSHOT_LIFE_S / 2) {
        if ((rc = upd_new_snapshot(sg, tenant_id, cur[1].version + 1, cur[2].version, now, &out[n],
                                   err, errlen)) != UPD_OK)
            goto out;
        snap = &out[n++];
    }
    if (n == 0 && cur[0].expires - now >= UPD_TIMESTAMP_LIFE_S / 2)
        goto out; /* nothing due */
    if ((rc = upd_new_timestamp(sg, tenant_id, cur[0].version + 1, snap, now, &out[n], err,
                                errlen)) != UPD_OK)
        goto out;
    n++;
    /* only on top of what it was made from: a publication meanwhile wins */
    const struct store_tuf_expect e[] = {{STORE_TUF_IMAGE, "timestamp", cur[0].version},
                                         {STORE_TUF_IMAGE, "snapshot", cur[1].version},
                                         {STORE_TUF_IMAGE, "targets", cur[2].version}};
    rc = store_tuf_publish(st, tenant_id, STORE_TUF_IMAGE, out, n, e, 3, NULL, NULL, NULL);
    if (rc == STORE_OK)
        *resigned = (int)n;
    rc = rc == STORE_OK ? UPD_OK : rc == STORE_CONFLICT ? UPD_E_CONFLICT : UPD_E_INTERNAL;
out:
    for (int i = 0; i < 3; i++)
        store_tuf_file_free(&cur[i]);
    for (int i = 0; i < 2; i++)
        store_tuf_file_free(&out[i]);
    return rc;
}

int
upd_refresh_all(store *st, struct signer *sg, int64_t now, int *resigned)
{
    int64_t *ids = NULL;
    size_t n = 0;
    char err[256];
    *resigned = 0;
    if (store_tuf_tenants(st, &ids, &n) != STORE_OK)
        return UPD_E_INTERNAL;
    for (size_t i = 0; i < n; i++) {
        int done = 0;
        int rc = upd_refresh(st, sg, ids[i], now, &done, err, sizeof(err));
        if (rc != UPD_OK && rc != UPD_E_CONFLICT)
            log_error("msg=\"online TUF re-signing failed\" tenant=%lld err=\"%s\"",
                      (long long)ids[i], err);
        *resigned += done;
    }
    free(ids);
    return UPD_OK;
}
