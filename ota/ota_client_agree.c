/* ota_client_agree: a director target checked against the trusted image targets
 * (ota_client.h; docs/update.md 3, steps 3 and 4). Apart from ota_client.c because it needs only
 * ota_client_find_target, not the client's state. */
#include "ota_client.h"

#include "errbuf.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The member of the director target dt that differs from the image target it (NULL: none). */
static const char *
differing_member(const json_t *it, const json_t *dt)
{
    static const char *const CUSTOM[] = {"component", "kind",     "version",
                                         "svn",       "hardware", "product_id"};
    const json_t *ic = json_object_get(it, "custom");
    const json_t *dc = json_object_get(dt, "custom");
    if (!json_equal(json_object_get(it, "length"), json_object_get(dt, "length")))
        return "length";
    if (!json_equal(json_object_get(json_object_get(it, "hashes"), "sha256"),
                    json_object_get(json_object_get(dt, "hashes"), "sha256")))
        return "hashes.sha256";
    for (size_t i = 0; i < sizeof(CUSTOM) / sizeof(CUSTOM[0]); i++) {
        if (!json_equal(json_object_get(ic, CUSTOM[i]), json_object_get(dc, CUSTOM[i])))
            return CUSTOM[i];
    }
    return NULL;
}

int
ota_client_agree(const ota_client *images, const char *path, const json_t *director_target,
                 const struct ota_device_facts *dev, char reason[OTA_REASON_MAX], char *err,
                 size_t errlen)
{
    assert(dev != NULL && dev->hardware != NULL && dev->svn_of != NULL);
    const json_t *it = ota_client_find_target(images, path);
    const json_t *ic = json_object_get(it, "custom");
    const char *hw = json_string_value(json_object_get(ic, "hardware"));
    const char *component = json_string_value(json_object_get(ic, "component"));
    const char *member = it != NULL ? differing_member(it, director_target) : NULL;
    snprintf(reason, OTA_REASON_MAX, "not_in_repository");
    if (it == NULL) {
        errbuf_set(err, errlen, "%.160s: not listed by the trusted image targets", path);
        return -1;
    }
    if (member != NULL) {
        errbuf_set(err, errlen, "%.160s: the director's %s is not the image repository's", path,
                   member);
        return -1;
    }
    /* the image targets' strict shape (ota_check_image_targets) gives every field below */
    assert(hw != NULL && component != NULL);
    if (strcmp(hw, dev->hardware) != 0) {
        errbuf_set(err, errlen, "%.160s: for hardware %s, the device is %.64s", path, hw,
                   dev->hardware);
        return -1;
    }
    if (json_integer_value(json_object_get(ic, "product_id")) != dev->product_id) {
        errbuf_set(err, errlen,
                   "%.160s: for product %" JSON_INTEGER_FORMAT ", the device is %" PRId64, path,
                   json_integer_value(json_object_get(ic, "product_id")), dev->product_id);
        return -1;
    }
    uint32_t have = dev->svn_of(component, dev->arg);
    if (json_integer_value(json_object_get(ic, "svn")) < (json_int_t)have) {
        snprintf(reason, OTA_REASON_MAX, "rollback");
        errbuf_set(err, errlen,
                   "%.160s: svn %" JSON_INTEGER_FORMAT " is below the device's %" PRIu32, path,
                   json_integer_value(json_object_get(ic, "svn")), have);
        return -1;
    }
    reason[0] = '\0';
    return 0;
}
