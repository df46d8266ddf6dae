/* Unit tests of ota_client: the director answer (docs/update.md 4) and the agreement of a director
 * target with the image repository (docs/update.md 3, steps 3 and 4), over repositories built with
 * ota_meta and fresh keys (test_ota_client_fx.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_ota_client_fx.h"

static void
test_director(void **state)
{
    (void)state;
    ota_client *c = client_of(director_roles());
    OK(ota_client_roots_done(c, NOW, err, sizeof(err)));
    OK(dir_step(c, answer_file(5, LATER, DEVICE, TENANT, KEYS(&DK))));
    assert_non_null(answer_signed);
    assert_non_null(json_object_get(json_object_get(answer_signed, "targets"), IMG_PATH));
    /* an equal version with other content is accepted, and is the answer now */
    OK(dir_step(c, answer_file(5, LATER - DAY, DEVICE, TENANT, KEYS(&DK))));
    assert_string_equal(json_string_value(json_object_get(answer_signed, "expires")),
                        "2029-12-31T00:00:00Z");

    REFUSED(c, dir_step(c, answer_file(4, LATER, DEVICE, TENANT, KEYS(&DK))), OTA_E_VERSION,
            "director_version");
    assert_null(answer_signed);
    REFUSED(c, dir_step(c, answer_file(6, LATER, DEVICE, TENANT, KEYS(&XK))), OTA_E_SIGNATURES,
            "director_signatures");
    /* the image repository's targets keys do not sign director answers */
    REFUSED(c, dir_step(c, answer_file(6, LATER, DEVICE, TENANT, KEYS(&TK[0], &TK[1]))),
            OTA_E_SIGNATURES, "director_signatures");
    REFUSED(c, dir_step(c, answer_file(6, NOW, DEVICE, TENANT, KEYS(&DK))), OTA_E_EXPIRED,
            "director_expired");
    REFUSED(c, dir_step(c, answer_file(6, LATER, OTHER_DEVICE, TENANT, KEYS(&DK))),
            OTA_CLIENT_E_DEVICE, "director_device");
    REFUSED(c, dir_step(c, answer_file(6, LATER, DEVICE, TENANT + 1, KEYS(&DK))),
            OTA_CLIENT_E_DEVICE, "director_device");
    REFUSED(c, dir_step(c, snapshot_file(6, LATER, 1, KEYS(&DK))), OTA_E_TYPE, "director_type");
    REFUSED(c, dir_step(c, answer_file(6, LATER, "5BE1", TENANT, KEYS(&DK))), OTA_E_FORMAT,
            "director_format");
    REFUSED(c, dir_step(c, targets_file(6, LATER, KEYS(&DK))), OTA_E_FORMAT, "director_format");
    REFUSED(c,
            dir_step(c, oversize(answer_file(6, LATER, DEVICE, TENANT, KEYS(&DK)),
                                 OTA_CLIENT_DIRECTOR_MAX)),
            OTA_E_FORMAT, "director_format");
    OK(dir_step(c, answer_file(6, LATER, DEVICE, TENANT, KEYS(&DK))));

    /* the last answer survives a restart, and so does its rollback floor */
    char *s = state_of(c);
    ota_client *back = reload(s);
    assert_non_null(back);
    REFUSED(back, dir_step(back, answer_file(5, LATER, DEVICE, TENANT, KEYS(&DK))), OTA_E_VERSION,
            "director_version");
    /* a new director key (the targets role): the last answer is forgotten with the old key */
    struct roles r = director_roles();
    r.k[OTA_ROLE_TARGETS] = KEYS(&XK);
    OK(root_step(back, root_file(2, LATER, &r, KEYS(&RK[0], &RK[1]))));
    assert_false(state_has(back, "director"));
    OK(dir_step(back, answer_file(1, LATER, DEVICE, TENANT, KEYS(&XK))));
    free(s);
    ota_client_free(back);
    ota_client_free(c);
}

static uint32_t
svn_of(const char *component, void *arg)
{
    assert_string_equal(component, "aegis-os");
    return *(const uint32_t *)arg;
}

/* ota_client_agree of the director's target changed by member: value, with the device facts. */
static int
agree_with(const ota_client *images, const json_t *dt, const char *obj, const char *member,
           json_t *value, const struct ota_device_facts *dev, char reason[OTA_REASON_MAX])
{
    json_t *t = json_deep_copy(dt);
    if (member != NULL) {
        json_t *o = obj != NULL ? json_object_get(t, obj) : t;
        json_object_set_new(o, member, value);
    }
    int rc = ota_client_agree(images, IMG_PATH, t, dev, reason, err, sizeof(err));
    json_decref(t);
    return rc;
}

static void
test_agree(void **state)
{
    (void)state;
    char reason[OTA_REASON_MAX];
    uint32_t svn = 7;
    struct ota_device_facts dev = {"gw-rev-b", 4, svn_of, &svn};
    ota_client *images = client_of(image_roles());
    ota_client *dir = client_of(director_roles());
    /* no trusted targets yet: nothing is in the repository */
    OK(dir_step(dir, answer_file(1, LATER, DEVICE, TENANT, KEYS(&DK))));
    const json_t *dt = json_object_get(json_object_get(answer_signed, "targets"), IMG_PATH);
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &dev, reason), -1);
    assert_string_equal(reason, "not_in_repository");
    publish(images, 1, 1, 1);

    /* equal svn (and the director's extra deployment_id) */
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &dev, reason), 0);
    assert_string_equal(reason, "");
    struct {
        const char *obj, *member;
        json_t *value;
    } change[] = {
        {NULL, "length", json_integer(1025)},
        {"hashes", "sha256",
         json_string("00000000000000000000000000000000000000000000000000000000"
                     "00000000")},
        {"custom", "component", json_string("aegis-app")},
        {"custom", "kind", json_string("app")},
        {"custom", "version", json_string("2.1.1")},
        {"custom", "svn", json_integer(8)},
        {"custom", "hardware", json_string("gw-rev-c")},
        {"custom", "product_id", json_integer(5)},
        {"custom", "product_id", json_string("4")},
    };
    for (size_t i = 0; i < sizeof(change) / sizeof(change[0]); i++) {
        assert_int_equal(
            agree_with(images, dt, change[i].obj, change[i].member, change[i].value, &dev, reason),
            -1);
        assert_string_equal(reason, "not_in_repository");
        assert_non_null(strstr(err, change[i].member));
    }
    assert_int_equal(ota_client_agree(images, "aegis-os/other", dt, &dev, reason, err, sizeof(err)),
                     -1);
    assert_string_equal(reason, "not_in_repository");

    struct ota_device_facts other_hw = {"gw-rev-c", 4, svn_of, &svn};
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &other_hw, reason), -1);
    assert_string_equal(reason, "not_in_repository");
    assert_non_null(strstr(err, "hardware"));
    struct ota_device_facts other_product = {"gw-rev-b", 5, svn_of, &svn};
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &other_product, reason), -1);
    assert_string_equal(reason, "not_in_repository");
    assert_non_null(strstr(err, "product"));

    svn = 8;
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &dev, reason), -1);
    assert_string_equal(reason, "rollback");
    svn = 0;
    assert_int_equal(agree_with(images, dt, NULL, NULL, NULL, &dev, reason), 0);
    ota_client_free(dir);
    ota_client_free(images);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_director),
        cmocka_unit_test(test_agree),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
