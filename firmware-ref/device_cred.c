/* device_cred: the device's stored credential (device.h): the operational key, its certificate,
 * chain and trust bundle, in one secret blob. */
#include "device.h"
#include "device_int.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define CREDENTIAL_MAX (256 * 1024)

static char *
dup_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static int
get_time(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int
adev_credential_load(adev_storage *st, struct adev_credential *c)
{
    int rc = -1;
    uint8_t *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    adev_opkey *k = NULL;

    memset(c, 0, sizeof(*c));
    int r = adev_storage_read(st, ADEV_BLOB_CREDENTIAL, CREDENTIAL_MAX, &text, &len);
    if (r != 0) {
        rc = r == -2 ? -2 : -1;
        goto out;
    }
    root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root) || json_integer_value(json_object_get(root, "version")) != 1)
        goto out;
    c->key_pem = dup_member(root, "key");
    c->cert_pem = dup_member(root, "certificate");
    c->chain_pem = dup_member(root, "chain");
    c->bundle_pem = dup_member(root, "trust_bundle");
    if (c->key_pem == NULL || c->cert_pem == NULL || c->chain_pem == NULL ||
        c->bundle_pem == NULL || get_time(root, "not_before", &c->not_before) != 0 ||
        get_time(root, "not_after", &c->not_after) != 0 ||
        get_time(root, "renew_at", &c->renew_at) != 0)
        goto out;
    k = adev_opkey_from_pem(c->key_pem, strlen(c->key_pem));
    if (k == NULL || adev_opkey_matches_cert(k, c->cert_pem) != 1 ||
        adev_opkey_matches_cert(k, c->chain_pem) != 1)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        adev_credential_clear(c);
    adev_opkey_free(k);
    if (root != NULL) {
        json_t *key = json_object_get(root, "key");
        if (json_is_string(key)) /* wipe jansson's copy of the key */
            OPENSSL_cleanse((void *)json_string_value(key), json_string_length(key));
    }
    json_decref(root);
    adev_storage_free_secret(text, len);
    return rc;
}

void
adev_credential_clear(struct adev_credential *c)
{
    if (c == NULL)
        return;
    adev_free_secret_str(c->key_pem);
    free(c->cert_pem);
    free(c->chain_pem);
    free(c->bundle_pem);
    memset(c, 0, sizeof(*c));
}

void
device_drop_credential(adev_device *d)
{
    adev_credential_clear(&d->cred);
    d->have_cred = 0;
}

/* Loads the stored credential into d. */
int
device_load_credential(adev_device *d)
{
    device_drop_credential(d);
    if (adev_credential_load(d->hal.storage, &d->cred) != 0)
        return -1;
    d->have_cred = 1;
    return 0;
}

/* Stores the new credential: one atomic write of one secret blob. */
int
device_store_credential(adev_device *d, const char *cert, const char *chain, const char *bundle,
                        const struct adev_report *times)
{
    int rc = -1;
    char *key = adev_opkey_pem(d->op_key), *text = NULL;
    json_t *root = NULL;

    if (key == NULL)
        goto out;
    root = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "version", 1, "key", key,
                     "certificate", cert, "chain", chain, "trust_bundle", bundle, "not_before",
                     (json_int_t)times->not_before, "not_after", (json_int_t)times->not_after,
                     "renew_at", (json_int_t)times->renew_at);
    if (root == NULL || (text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) == NULL)
        goto out;
    if (adev_storage_write(d->hal.storage, ADEV_BLOB_CREDENTIAL, text, strlen(text),
                           ADEV_STORAGE_SECRET) != 0)
        goto out;
    rc = 0;
out:
    if (root != NULL) {
        json_t *k = json_object_get(root, "key");
        if (json_is_string(k))
            OPENSSL_cleanse((void *)json_string_value(k), json_string_length(k));
    }
    json_decref(root);
    adev_free_secret_str(text);
    adev_free_secret_str(key);
    return rc;
}
