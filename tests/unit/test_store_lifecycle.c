/* Unit tests of the lifecycle operations of the store (store_devices.c filters and unclaim,
 * store_devices_life.c tags, store_devices_drop.c deletion, store_tenant_delete.c, token expiry in
 * store_tenant.c) on a fresh SQLite database per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_fx.h"

#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* The ids of the tenant's devices listed with filter f, pages of limit, into ids (at most max);
 * returns their number. */
static size_t
list_ids(struct fx *f, int64_t tenant, const struct store_device_filter *flt, int limit,
         char (*ids)[65], size_t max)
{
    struct store_page pg = {NULL, limit};
    char next[CURSOR_BUF], cursor[CURSOR_BUF];
    json_t *items = NULL;
    size_t n = 0;
    do {
        assert_int_equal(store_device_list_filtered(f->s, tenant, flt, &pg, &items, next),
                         STORE_OK);
        for (size_t i = 0; i < json_array_size(items); i++) {
            assert_true(n < max);
            snprintf(ids[n++], 65, "%s", jstr(json_array_get(items, i), "id"));
        }
        json_decref(items);
        memcpy(cursor, next, sizeof(cursor));
        pg.cursor = cursor;
    } while (next[0] != '\0');
    return n;
}

static void
test_id_prefix(void **state)
{
    struct fx *f = *state;
    char ids[64][65], got[64][65];
    for (int i = 0; i < 64; i++) {
        dev_id(1000 + (uint64_t)i, ids[i]);
        assert_int_equal(import1(f, f->ta, &f->a, ids[i], i % 2, 0), STORE_OK);
    }
    /* Made-up ids at the edges of the hex range. */
    char lo[65], hi[65], nine[65];
    memset(lo, '0', 64);
    memset(hi, 'f', 64);
    memcpy(nine, ids[0], 65);
    memcpy(nine, "09ff", 4);
    lo[64] = hi[64] = '\0';
    assert_int_equal(import1(f, f->ta, &f->a, lo, 1, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, hi, 1, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, nine, 1, 0), STORE_OK);
    /* A shadow of another tenant's device is listed by prefix too. */
    assert_int_equal(import1(f, f->tb, &f->b, ids[5], 1, 0), STORE_OK);

    for (int i = 0; i < 64; i++) {
        for (size_t len = 4; len <= 64; len += 30) {
            char pre[65];
            memcpy(pre, ids[i], len);
            pre[len] = '\0';
            struct store_device_filter flt = {0, NULL, pre, NULL, 0};
            size_t n = list_ids(f, f->ta, &flt, 1, got, 64);
            size_t want = 0;
            for (int j = 0; j < 64; j++)
                want += strncmp(ids[j], pre, len) == 0;
            assert_int_equal(n, want);
            for (size_t k = 0; k < n; k++)
                assert_memory_equal(got[k], pre, len);
        }
    }
    const char *edges[][2] = {{"0000", lo}, {"ffff", hi}, {"09ff", nine}};
    for (size_t e = 0; e < 3; e++) {
        struct store_device_filter flt = {0, NULL, edges[e][0], NULL, 0};
        assert_int_equal(list_ids(f, f->ta, &flt, 10, got, 64), 1);
        assert_string_equal(got[0], edges[e][1]);
    }
    struct store_device_filter shadow = {0, NULL, ids[5], NULL, 0};
    assert_int_equal(list_ids(f, f->tb, &shadow, 10, got, 64), 1);
    struct store_device_filter state_too = {0, "unclaimed", "0", NULL, 0};
    size_t n = list_ids(f, f->ta, &state_too, 100, got, 64);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(got[k][0], '0');

    struct store_page pg = {NULL, 10};
    char next[CURSOR_BUF];
    json_t *items = NULL;
    const char *bad[] = {"ABCD", "abcg", ""};
    for (size_t b = 0; b < 3; b++) {
        struct store_device_filter flt = {0, NULL, bad[b], NULL, 0};
        assert_int_equal(store_device_list_filtered(f->s, f->ta, &flt, &pg, &items, next),
                         STORE_INVALID);
    }
}

/* A tags patch from JSON text. */
static int
patch_tags(struct fx *f, int64_t tenant, const struct store_actor *a, const char *id,
           const char *tags_json, json_t **out)
{
    json_t *tags = json_loads(tags_json, 0, NULL);
    assert_non_null(tags);
    struct store_device_patch p = {0, 0, tags};
    int rc = store_device_patch(f->s, tenant, id, &p, a, out);
    json_decref(tags);
    return rc;
}

static void
test_tags(void **state)
{
    struct fx *f = *state;
    char id[65], other[65], got[4][65], actions[512];
    json_t *d = NULL;
    dev_id(1, id);
    dev_id(2, other);
    assert_int_equal(import1(f, f->ta, &f->a, id, 0, 0),
                     STORE_OK); /* unclaimed: tags all the same */
    assert_int_equal(import1(f, f->ta, &f->a, other, 1, 0), STORE_OK);
    assert_int_equal(import1(f, f->tb, &f->b, id, 1, 0), STORE_OK); /* B's own registration */

    assert_int_equal(patch_tags(f, f->ta, &f->a, id, "{\"site\": \"b\", \"rack\": \"4\"}", &d),
                     STORE_OK);
    assert_string_equal(jstr(json_object_get(d, "tags"), "site"), "b");
    json_decref(d);
    assert_int_equal(patch_tags(f, f->ta, &f->a, id, "{\"rack\": null, \"n\": \"\"}", &d),
                     STORE_OK);
    assert_int_equal(json_object_size(json_object_get(d, "tags")), 2);
    json_decref(d);
    /* B's registration of the same key has none; A's filter finds A's only. */
    assert_int_equal(store_device_get(f->s, f->tb, id, &d), STORE_OK);
    assert_int_equal(json_object_size(json_object_get(d, "tags")), 0);
    json_decref(d);
    struct store_device_tag t[2] = {{"site", "b"}, {"n", ""}};
    struct store_device_filter flt = {0, NULL, NULL, t, 2};
    assert_int_equal(list_ids(f, f->ta, &flt, 10, got, 4), 1);
    assert_string_equal(got[0], id);
    assert_int_equal(list_ids(f, f->tb, &flt, 10, got, 4), 0);
    struct store_device_tag clash[2] = {{"site", "b"}, {"site", "c"}};
    struct store_device_filter none = {0, NULL, NULL, clash, 2};
    assert_int_equal(list_ids(f, f->ta, &none, 10, got, 4), 0);
    struct store_device_filter claimed = {0, "active", NULL, t, 1};
    assert_int_equal(list_ids(f, f->ta, &claimed, 10, got, 4), 0);

    /* Bounds: 16 tags at most (nothing changed beyond), keys and values checked. */
    char many[1024] = "{";
    for (int i = 0; i < 15; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s\"k%d\": \"v\"",
                 i ? ", " : "", i);
    strcat(many, "}");
    assert_int_equal(patch_tags(f, f->ta, &f->a, id, many, &d), STORE_INVALID); /* 17 */
    assert_null(d);
    assert_int_equal(store_device_get(f->s, f->ta, id, &d), STORE_OK);
    assert_int_equal(json_object_size(json_object_get(d, "tags")), 2);
    json_decref(d);
    assert_int_equal(patch_tags(f, f->ta, &f->a, id, "{\"bad key\": \"v\"}", &d), STORE_INVALID);
    assert_int_equal(patch_tags(f, f->ta, &f->a, id, "{\"k\": 1}", &d), STORE_INVALID);
    assert_int_equal(patch_tags(f, f->ta, &f->a, id, "{\"k\": \"a\\u0007\"}", &d), STORE_INVALID);
    assert_int_equal(store_device_tag_ok("a/b.c_d-e", ""), 1);
    assert_int_equal(store_device_tag_ok("", "v"), 0);
    char key65[66];
    memset(key65, 'k', 65);
    key65[65] = '\0';
    assert_int_equal(store_device_tag_ok(key65, "v"), 0);
    /* A group needs a claimed device; the tags of a refused patch are not applied either. */
    json_t *xy = json_pack("{s:s}", "x", "y");
    struct store_device_patch both = {1, 0, xy};
    assert_int_equal(store_device_patch(f->s, f->ta, id, &both, &f->a, &d), STORE_NOTFOUND);
    json_decref(xy);
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_non_null(strstr(actions, "device.tag"));
    /* A transfer takes the registration without the sender's tags: imported again, it has none. */
    assert_int_equal(store_device_transfer_create(f->s, f->ta, id, HASH_B, util_now() + 60, &f->a),
                     STORE_OK);
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, id, 0, HASH_B, &f->b, NULL),
                     STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, id, 0, 0), STORE_OK);
    assert_int_equal(store_device_get(f->s, f->ta, id, &d), STORE_OK);
    assert_int_equal(json_object_size(json_object_get(d, "tags")), 0);
    json_decref(d);
}

static void
test_unclaim(void **state)
{
    struct fx *f = *state;
    char id[65], actions[512];
    json_t *d = NULL;
    struct store_device_auth au;
    dev_id(7, id);
    int64_t g = make_group(f, f->ta, make_product(f, f->ta, "p"), "g");
    assert_int_equal(import1(f, f->ta, &f->a, id, 1, g), STORE_OK);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, id, 1, &f->a, NULL), STORE_OK);
    uint64_t gen = store_device_gen(f->s, id);
    assert_int_equal(store_device_unclaim(f->s, f->tb, id, &f->b, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_unclaim(f->s, f->ta, id, &f->a, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "unclaimed");
    assert_true(json_is_null(json_object_get(d, "group_id")));
    json_decref(d);
    assert_true(store_device_gen(f->s, id) != gen); /* the devices' cache sees it at once */
    assert_int_equal(store_device_auth(f->s, id, &au), STORE_OK);
    assert_int_equal(au.tenant_id, 0);
    assert_int_equal(au.blocked, 0);
    assert_int_equal(store_device_unclaim(f->s, f->ta, id, &f->a, &d), STORE_OK); /* idempotent */
    json_decref(d);
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_non_null(strstr(actions, "device.unclaim"));
    assert_null(strstr(strstr(actions, "device.unclaim") + 1, "device.unclaim")); /* once */
    /* The group can go now; the device is the tenant's to claim again. */
    assert_int_equal(store_group_delete(f->s, f->ta, g, &f->a), STORE_OK);
    assert_int_equal(store_device_claim(f->s, f->ta, id, 0, &f->a, NULL), STORE_OK);
    assert_string_equal(dev_state(f, f->ta, id), "active");
    /* A shadow unclaims the same way. */
    assert_int_equal(import1(f, f->tb, &f->b, id, 1, 0), STORE_OK);
    assert_int_equal(store_device_unclaim(f->s, f->tb, id, &f->b, NULL), STORE_OK);
    assert_string_equal(dev_state(f, f->tb, id), "unclaimed");
    assert_string_equal(dev_state(f, f->ta, id), "active");
}

static void
test_delete_and_hand_over(void **state)
{
    struct fx *f = *state;
    char id[65], solo[65];
    struct store_device_dropped d;
    struct store_device_auth au;
    dev_id(11, id);
    dev_id(12, solo);
    assert_int_equal(import1(f, f->ta, &f->a, id, 1, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, solo, 0, 0), STORE_OK);
    assert_int_equal(import1(f, f->tb, &f->b, id, 1, 0), STORE_OK); /* B's shadow, claimed */
    assert_int_equal(store_device_transfer_create(f->s, f->tb, id, HASH_B, util_now() + 60, &f->b),
                     STORE_OK);

    assert_int_equal(store_device_delete(f->s, f->ta, solo, &f->a, &d), STORE_OK);
    assert_int_equal(store_device_auth(f->s, solo, &au), STORE_NOTFOUND);
    assert_null(dev_state(f, f->ta, solo));

    /* A's delete hands the row to B: B's registration is now the device's, claimed by B. */
    assert_int_equal(store_device_auth(f->s, id, &au), STORE_OK);
    assert_int_equal(au.tenant_id, f->ta);
    assert_int_equal(store_device_delete(f->s, f->ta, id, &f->a, &d), STORE_OK);
    assert_int_equal(d.handed_over, 1);
    assert_null(dev_state(f, f->ta, id));
    assert_string_equal(dev_state(f, f->tb, id), "active");
    assert_int_equal(store_device_auth(f->s, id, &au), STORE_OK);
    assert_int_equal(au.tenant_id, f->tb);
    /* B's transfer code still works (it is B's registration), so C could take it. */
    int64_t tc = 0;
    assert_int_equal(store_tenant_create(f->s, "third", &ctl, &tc), STORE_OK);
    struct store_actor c = {tc, "token:9"};
    assert_int_equal(store_device_claim_transfer(f->s, tc, id, 0, HASH_B, &c, NULL), STORE_OK);
    assert_int_equal(store_device_auth(f->s, id, &au), STORE_OK);
    assert_int_equal(au.tenant_id, tc);
    assert_int_equal(store_device_delete(f->s, tc, id, &c, &d), STORE_OK);
    assert_int_equal(d.handed_over, 0);
    assert_int_equal(store_device_auth(f->s, id, &au), STORE_NOTFOUND);
}

static void
test_tokens_expiry_and_touch(void **state)
{
    struct fx *f = *state;
    unsigned char h[32] = {1};
    int64_t id = 0, forever = 0;
    struct store_token t;
    json_t *list = NULL;
    int64_t now = util_now();
    assert_int_equal(
        store_token_create_expiring(f->s, f->ta, "t", "reader", h, now + 3600, &f->a, &id),
        STORE_OK);
    assert_int_equal(
        store_token_create_expiring(f->s, f->ta, "t", "reader", h, -1, &f->a, &forever),
        STORE_INVALID);
    assert_int_equal(store_token_create(f->s, f->ta, "f", "reader", h, &f->a, &forever), STORE_OK);
    assert_int_equal(store_token_get_auth(f->s, id, &t), STORE_OK);
    assert_int_equal(t.expires_at, now + 3600);
    assert_int_equal(t.last_used_at, 0);
    assert_int_equal(store_token_get_auth(f->s, forever, &t), STORE_OK);
    assert_int_equal(t.expires_at, 0);
    /* The first use writes; the minute's later uses do not; the next minute's does. */
    assert_int_equal(store_token_touch(f->s, id, now), STORE_OK);
    assert_int_equal(store_token_touch(f->s, id, now + 59), STORE_OK);
    assert_int_equal(store_token_get_auth(f->s, id, &t), STORE_OK);
    assert_int_equal(t.last_used_at, now);
    assert_int_equal(store_token_touch(f->s, id, now + 60), STORE_OK);
    assert_int_equal(store_token_get_auth(f->s, id, &t), STORE_OK);
    assert_int_equal(t.last_used_at, now + 60);
    assert_int_equal(store_token_list(f->s, f->ta, &list), STORE_OK);
    assert_non_null(json_string_value(json_object_get(json_array_get(list, 0), "expires_at")));
    assert_non_null(json_string_value(json_object_get(json_array_get(list, 0), "last_used_at")));
    assert_true(json_is_null(json_object_get(json_array_get(list, 1), "expires_at")));
    json_decref(list);
}

static void
test_tenant_delete(void **state)
{
    struct fx *f = *state;
    char mine[65], shared[65], theirs[65];
    int64_t devices = 0, id = 0;
    unsigned char h[32] = {2};
    json_t *items = NULL;
    dev_id(21, mine);
    dev_id(22, shared);
    dev_id(23, theirs);
    int64_t g = make_group(f, f->ta, make_product(f, f->ta, "p"), "g");
    assert_int_equal(import1(f, f->ta, &f->a, mine, 1, g), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, shared, 1, 0), STORE_OK);
    assert_int_equal(import1(f, f->tb, &f->b, shared, 0, 0), STORE_OK);
    assert_int_equal(import1(f, f->tb, &f->b, theirs, 1, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, theirs, 1, 0), STORE_OK); /* A's shadow */
    assert_int_equal(patch_tags(f, f->ta, &f->a, mine, "{\"a\": \"b\"}", NULL), STORE_OK);
    assert_int_equal(store_token_create(f->s, f->ta, "t", "admin", h, &f->a, &id), STORE_OK);
    assert_int_equal(store_ca_add(f->s, f->ta, "PEM", "tenants/1/ca-1", 1, 2, 1, &ctl, NULL),
                     STORE_OK);

    assert_int_equal(store_tenant_delete(f->s, f->ta, &devices), STORE_OK);
    assert_int_equal(devices, 2);
    struct store_tenant t;
    assert_int_equal(store_tenant_load(f->s, f->ta, &t), STORE_NOTFOUND);
    struct store_token tok;
    assert_int_equal(store_token_get_auth(f->s, id, &tok), STORE_NOTFOUND);
    struct store_device_auth au;
    assert_int_equal(store_device_auth(f->s, mine, &au), STORE_NOTFOUND);
    assert_int_equal(store_device_auth(f->s, shared, &au), STORE_OK); /* B's now */
    assert_int_equal(au.tenant_id, 0);
    assert_string_equal(dev_state(f, f->tb, shared), "unclaimed");
    assert_string_equal(dev_state(f, f->tb, theirs), "active");
    assert_int_equal(store_tenant_list(f->s, &items), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    assert_int_equal(store_tenant_delete(f->s, f->ta, NULL), STORE_NOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_id_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclaim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_hand_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_expiry_and_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
