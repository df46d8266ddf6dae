/* Unit tests of the store's catalog and device registry (store_catalog.c, store_devices.c) on a
 * fresh SQLite database in a temp directory per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_fx.h"

/* Transfer code hashes: the store only ever sees the hash, any 64 hex do. */
#define HASH1 "1111111111111111111111111111111111111111111111111111111111111111"
#define HASH2 "2222222222222222222222222222222222222222222222222222222222222222"
#define HASH3 "3333333333333333333333333333333333333333333333333333333333333333"

/* --- products and groups --- */

static void
test_products(void **state)
{
    struct fx *f = *state;
    json_t *p = NULL, *items = NULL;
    char next[CURSOR_BUF];

    assert_int_equal(store_product_create(f->s, f->ta, "sensor", NULL, &f->a, &p), STORE_OK);
    int64_t id = jint(p, "id");
    assert_string_equal(jstr(p, "name"), "sensor");
    assert_string_equal(jstr(p, "description"), "");
    assert_string_equal(jstr(p, "created_at"), jstr(p, "updated_at"));
    assert_int_equal(json_object_size(p), 5);
    json_decref(p);
    assert_int_equal(store_product_create(f->s, f->ta, "sensor", "again", &f->a, &p),
                     STORE_CONFLICT);
    assert_null(p);
    /* Names are per tenant. */
    int64_t bid = make_product(f, f->tb, "sensor");

    assert_int_equal(store_product_get(f->s, f->ta, id, &p), STORE_OK);
    assert_int_equal(jint(p, "id"), id);
    json_decref(p);
    assert_int_equal(store_product_get(f->s, f->tb, id, &p), STORE_NOTFOUND);
    assert_null(p);

    assert_int_equal(store_product_update(f->s, f->ta, id, NULL, "new text", &f->a, &p), STORE_OK);
    assert_string_equal(jstr(p, "name"), "sensor");
    assert_string_equal(jstr(p, "description"), "new text");
    json_decref(p);
    assert_int_equal(store_product_update(f->s, f->ta, id, "gateway", NULL, &f->a, &p), STORE_OK);
    assert_string_equal(jstr(p, "name"), "gateway");
    assert_string_equal(jstr(p, "description"), "new text");
    json_decref(p);
    make_product(f, f->ta, "camera");
    assert_int_equal(store_product_update(f->s, f->ta, id, "camera", NULL, &f->a, &p),
                     STORE_CONFLICT);
    assert_int_equal(store_product_update(f->s, f->tb, id, "x", NULL, &f->b, &p), STORE_NOTFOUND);
    assert_int_equal(store_product_delete(f->s, f->tb, id, &f->b), STORE_NOTFOUND);

    /* Pagination: 5 products, pages of 2. */
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "p%d", i);
        make_product(f, f->ta, name);
    }
    struct store_page pg = {NULL, 2};
    int pages = 0, total = 0;
    int64_t last = 0;
    char cursor[CURSOR_BUF];
    do {
        assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_OK);
        for (size_t i = 0; i < json_array_size(items); i++) {
            int64_t pid = jint(json_array_get(items, i), "id");
            assert_true(pid > last);
            assert_true(pid != bid);
            last = pid;
        }
        total += (int)json_array_size(items);
        pages++;
        json_decref(items);
        memcpy(cursor, next, sizeof(cursor));
        pg.cursor = cursor;
    } while (next[0] != '\0');
    assert_int_equal(total, 5);
    assert_int_equal(pages, 3);

    pg.cursor = "abc";
    assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_INVALID);
    assert_null(items);
    pg.cursor = "-1";
    assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_INVALID);
    pg.cursor = NULL;
    pg.limit = 0;
    assert_int_equal(store_product_list(f->s, f->ta, &pg, &items, next), STORE_INVALID);

    assert_int_equal(store_product_delete(f->s, f->ta, id, &f->a), STORE_OK);
    assert_int_equal(store_product_get(f->s, f->ta, id, &p), STORE_NOTFOUND);
    assert_int_equal(store_product_delete(f->s, f->ta, id, &f->a), STORE_NOTFOUND);

    char actions[1024];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "product.delete product.create product.create product.create "
                                 "product.create product.update product.update product.create "
                                 "tenant.create");
}

static void
test_groups(void **state)
{
    struct fx *f = *state;
    json_t *g = NULL, *items = NULL;
    char next[CURSOR_BUF];
    int64_t pa = make_product(f, f->ta, "sensor");
    int64_t pa2 = make_product(f, f->ta, "gateway");
    int64_t pb = make_product(f, f->tb, "sensor");

    assert_int_equal(store_group_create(f->s, f->ta, pa, "eu", "Europe", &f->a, &g), STORE_OK);
    int64_t ga = jint(g, "id");
    assert_int_equal(jint(g, "product_id"), pa);
    assert_string_equal(jstr(g, "name"), "eu");
    assert_string_equal(jstr(g, "description"), "Europe");
    jstr(g, "created_at");
    jstr(g, "updated_at");
    assert_int_equal(json_object_size(g), 6);
    json_decref(g);

    assert_int_equal(store_group_create(f->s, f->ta, pa, "eu", NULL, &f->a, &g), STORE_CONFLICT);
    assert_null(g);
    assert_int_equal(store_group_create(f->s, f->ta, pb, "x", NULL, &f->a, &g), STORE_NOTFOUND);
    assert_int_equal(store_group_create(f->s, f->tb, pa, "x", NULL, &f->b, &g), STORE_NOTFOUND);
    make_group(f, f->ta, pa2, "eu"); /* same name, other product */
    make_group(f, f->ta, pa, "us");
    int64_t gb = make_group(f, f->tb, pb, "eu");

    assert_int_equal(store_group_get(f->s, f->tb, ga, &g), STORE_NOTFOUND);
    assert_int_equal(store_group_update(f->s, f->tb, ga, "x", NULL, &f->b, &g), STORE_NOTFOUND);
    assert_int_equal(store_group_delete(f->s, f->tb, ga, &f->b), STORE_NOTFOUND);
    assert_int_equal(store_group_update(f->s, f->ta, ga, "us", NULL, &f->a, &g), STORE_CONFLICT);
    assert_int_equal(store_group_update(f->s, f->ta, ga, "europe", NULL, &f->a, &g), STORE_OK);
    assert_string_equal(jstr(g, "name"), "europe");
    assert_string_equal(jstr(g, "description"), "Europe");
    json_decref(g);

    struct store_page pg = {NULL, 100};
    assert_int_equal(store_group_list(f->s, f->ta, 0, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 3);
    assert_string_equal(next, "");
    json_decref(items);
    assert_int_equal(store_group_list(f->s, f->ta, pa, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 2);
    json_decref(items);
    assert_int_equal(store_group_list(f->s, f->ta, pb, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    assert_int_equal(store_group_list(f->s, f->tb, 0, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(jint(json_array_get(items, 0), "id"), gb);
    json_decref(items);

    /* Not empty: product with groups, group with devices. */
    assert_int_equal(store_product_delete(f->s, f->ta, pa, &f->a), STORE_CONFLICT);
    char id[65];
    dev_id(1, id);
    assert_int_equal(import1(f, f->ta, &f->a, id, 1, ga), STORE_OK);
    assert_int_equal(store_group_delete(f->s, f->ta, ga, &f->a), STORE_CONFLICT);
    assert_int_equal(store_device_move(f->s, f->ta, id, 0, &f->a, &g), STORE_OK);
    json_decref(g);
    assert_int_equal(store_group_delete(f->s, f->ta, ga, &f->a), STORE_OK);
    assert_int_equal(store_group_get(f->s, f->ta, ga, &g), STORE_NOTFOUND);

    char actions[1024];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "group.delete device.move device.import group.update "
                                 "group.create group.create group.create product.create "
                                 "product.create tenant.create");
}

/* --- devices --- */

static void
test_device_import_foreign_is_shadow(void **state)
{
    struct fx *f = *state;
    char ids[5][65];
    json_t *d = NULL;
    struct store_device_auth au;
    for (int i = 0; i < 5; i++)
        dev_id(100 + (uint64_t)i, ids[i]);

    /* A owns ids[1] (claimed) and ids[3] (unclaimed). */
    assert_int_equal(import1(f, f->ta, &f->a, ids[1], 1, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, ids[3], 0, 0), STORE_OK);

    /* B's import of all five answers as for five new devices. */
    struct store_import_entry e[5];
    for (int i = 0; i < 5; i++)
        e[i] = (struct store_import_entry){ids[i], PEM};
    json_t *errors = NULL;
    size_t created = 99;
    assert_int_equal(store_device_import(f->s, f->tb, e, 5, 0, 0, &f->b, &errors, &created),
                     STORE_OK);
    assert_null(errors);
    assert_int_equal(created, 5);
    assert_int_equal(count_devices(f, f->tb, 0, "unclaimed", 100), 5);
    /* B claims, moves, blocks its registrations; A's stay as they were. */
    int64_t pb = make_product(f, f->tb, "sensor");
    int64_t gb = make_group(f, f->tb, pb, "gb");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_device_claim(f->s, f->tb, ids[i], gb, &f->b, &d), STORE_OK);
        assert_string_equal(jstr(d, "state"), "active");
        assert_int_equal(jint(d, "group_id"), gb);
        assert_true(json_is_null(json_object_get(d, "attestation")));
        json_decref(d);
        assert_int_equal(store_device_set_blocked(f->s, f->tb, ids[i], 1, &f->b, &d), STORE_OK);
        json_decref(d);
    }
    assert_int_equal(count_devices(f, f->tb, gb, "blocked", 100), 5);
    assert_int_equal(store_group_delete(f->s, f->tb, gb, &f->b), STORE_CONFLICT);
    assert_string_equal(dev_state(f, f->ta, ids[1]), "active");
    assert_string_equal(dev_state(f, f->ta, ids[3]), "unclaimed");
    assert_null(dev_state(f, f->ta, ids[0]));
    /* The devices authenticate to their owners only. */
    assert_int_equal(store_device_auth(f->s, ids[1], &au), STORE_OK);
    assert_int_equal(au.tenant_id, f->ta);
    assert_int_equal(au.blocked, 0);
    assert_int_equal(store_device_auth(f->s, ids[3], &au), STORE_OK);
    assert_int_equal(au.tenant_id, 0);
    assert_int_equal(store_device_auth(f->s, ids[0], &au), STORE_OK);
    assert_int_equal(au.tenant_id, f->tb);
    /* Importing again is idempotent for both. */
    assert_int_equal(store_device_import(f->s, f->tb, e, 5, 1, 0, &f->b, &errors, &created),
                     STORE_OK);
    assert_int_equal(created, 0);
    assert_int_equal(import1(f, f->ta, &f->a, ids[3], 1, 0), STORE_OK);
    assert_string_equal(dev_state(f, f->ta, ids[3]), "active");
    assert_string_equal(dev_state(f, f->tb, ids[3]), "blocked");

    /* Bad arguments. */
    struct store_import_entry bad = {"ABC", PEM};
    assert_int_equal(store_device_import(f->s, f->tb, &bad, 1, 1, 0, &f->b, &errors, &created),
                     STORE_INVALID);
    assert_int_equal(store_device_import(f->s, f->tb, e, 0, 1, 0, &f->b, &errors, &created),
                     STORE_INVALID);
    assert_int_equal(store_device_import(f->s, f->tb, e, 1, 0, 5, &f->b, &errors, &created),
                     STORE_INVALID); /* a group needs claim */
}

static void
test_device_import_10k_and_paginate(void **state)
{
    struct fx *f = *state;
    enum { N = 10000 };
    char(*ids)[65] = calloc(N, sizeof(*ids));
    struct store_import_entry *e = calloc(N, sizeof(*e));
    assert_non_null(ids);
    assert_non_null(e);
    for (int i = 0; i < N; i++) {
        dev_id((uint64_t)i, ids[i]);
        e[i] = (struct store_import_entry){ids[i], PEM};
    }
    int64_t p = make_product(f, f->ta, "sensor");
    int64_t g = make_group(f, f->ta, p, "fleet");

    json_t *errors = NULL;
    size_t created = 0;
    uint64_t t0 = util_mono_ns();
    assert_int_equal(store_device_import(f->s, f->ta, e, N, 1, g, &f->a, &errors, &created),
                     STORE_OK);
    double secs = (double)(util_mono_ns() - t0) / 1e9;
    print_message("    import of %d devices: %.3f s\n", N, secs);
    assert_true(secs < 3.0);
    assert_null(errors);
    assert_int_equal(created, N);

    /* Every device exactly once, in id order, pages of 1000. */
    char cursor[CURSOR_BUF] = "", next[CURSOR_BUF], prev[65] = "";
    size_t total = 0;
    int pages = 0;
    for (;;) {
        struct store_page pg = {cursor[0] != '\0' ? cursor : NULL, 1000};
        json_t *items = NULL, *it;
        size_t i;
        assert_int_equal(store_device_list(f->s, f->ta, 0, NULL, &pg, &items, next), STORE_OK);
        json_array_foreach(items, i, it)
        {
            const char *id = jstr(it, "id");
            assert_true(strcmp(id, prev) > 0);
            snprintf(prev, sizeof(prev), "%s", id);
            assert_string_equal(jstr(it, "state"), "active");
            assert_int_equal(jint(it, "group_id"), g);
            assert_int_equal(jint(it, "product_id"), p);
        }
        total += json_array_size(items);
        pages++;
        json_decref(items);
        if (next[0] == '\0')
            break;
        assert_int_equal(strlen(next), 64);
        memcpy(cursor, next, sizeof(cursor));
    }
    assert_int_equal(total, N);
    assert_int_equal(pages, 10);
    assert_int_equal(count_devices(f, f->ta, g, "active", 1000), N);
    assert_int_equal(count_devices(f, f->ta, 0, "active", 999), N);
    assert_int_equal(count_devices(f, f->ta, 0, "unclaimed", 1000), 0);
    assert_int_equal(count_devices(f, f->tb, 0, NULL, 1000), 0);

    /* Importing the same batch again changes nothing. */
    assert_int_equal(store_device_import(f->s, f->ta, e, N, 1, g, &f->a, &errors, &created),
                     STORE_OK);
    assert_int_equal(created, 0);

    /* One audit row per import, with its counts. */
    struct store_page pg = {NULL, 1};
    json_t *items = NULL;
    assert_int_equal(store_audit_list(f->s, f->ta, &pg, &items, next), STORE_OK);
    json_t *row = json_array_get(items, 0), *d = json_object_get(row, "detail");
    assert_string_equal(jstr(row, "action"), "device.import");
    assert_true(json_is_null(json_object_get(row, "object_id")));
    assert_int_equal(jint(d, "count"), N);
    assert_int_equal(jint(d, "created"), 0);
    assert_true(json_is_true(json_object_get(d, "claimed")));
    assert_int_equal(jint(d, "group_id"), g);
    json_decref(items);
    char actions[256];
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions,
                        "device.import device.import group.create product.create tenant.create");
    free(ids);
    free(e);
}

static void
test_device_states_and_filters(void **state)
{
    struct fx *f = *state;
    char ids[5][65];
    json_t *d = NULL, *items = NULL;
    char next[CURSOR_BUF];
    int64_t p = make_product(f, f->ta, "sensor");
    int64_t g1 = make_group(f, f->ta, p, "g1");
    int64_t g2 = make_group(f, f->ta, p, "g2");

    for (int i = 0; i < 5; i++) {
        dev_id(200 + (uint64_t)i, ids[i]);
        assert_int_equal(import1(f, f->ta, &f->a, ids[i], 0, 0), STORE_OK);
    }
    assert_int_equal(store_device_get(f->s, f->ta, ids[0], &d), STORE_OK);
    assert_string_equal(jstr(d, "id"), ids[0]);
    assert_string_equal(jstr(d, "state"), "unclaimed");
    assert_true(json_is_null(json_object_get(d, "group_id")));
    assert_true(json_is_null(json_object_get(d, "product_id")));
    assert_true(json_is_null(json_object_get(d, "claimed_at")));
    assert_string_equal(jstr(d, "public_key"), PEM);
    jstr(d, "created_at");
    jstr(d, "updated_at");
    assert_true(json_is_null(json_object_get(d, "attestation"))); /* none yet */
    assert_int_equal(json_object_size(json_object_get(d, "tags")), 0);
    assert_int_equal(json_object_size(d), 10);
    json_decref(d);

    assert_int_equal(store_device_claim(f->s, f->ta, ids[0], g1, &f->a, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "active");
    assert_int_equal(jint(d, "group_id"), g1);
    assert_int_equal(jint(d, "product_id"), p);
    jstr(d, "claimed_at");
    json_decref(d);
    assert_int_equal(store_device_claim(f->s, f->ta, ids[1], 0, &f->a, &d), STORE_OK);
    json_decref(d);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, ids[1], 1, &f->a, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "blocked");
    json_decref(d);
    assert_int_equal(store_device_claim(f->s, f->ta, ids[2], g2, &f->a, &d), STORE_OK);
    json_decref(d);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, ids[2], 1, &f->a, &d), STORE_OK);
    json_decref(d);

    assert_int_equal(count_devices(f, f->ta, 0, NULL, 2), 5);
    assert_int_equal(count_devices(f, f->ta, 0, "unclaimed", 1), 2);
    assert_int_equal(count_devices(f, f->ta, 0, "active", 1), 1);
    assert_int_equal(count_devices(f, f->ta, 0, "blocked", 1), 2);
    assert_int_equal(count_devices(f, f->ta, g1, NULL, 1), 1);
    assert_int_equal(count_devices(f, f->ta, g1, "active", 1), 1);
    assert_int_equal(count_devices(f, f->ta, g1, "blocked", 1), 0);
    assert_int_equal(count_devices(f, f->ta, g2, "blocked", 1), 1);
    assert_int_equal(count_devices(f, f->ta, g1, "unclaimed", 1), 0);
    assert_int_equal(count_devices(f, f->tb, g1, NULL, 10), 0); /* A's group, seen from B */
    assert_int_equal(count_devices(f, f->tb, 0, NULL, 10), 0);

    struct store_page pg = {NULL, 10};
    assert_int_equal(store_device_list(f->s, f->ta, 0, "lost", &pg, &items, next), STORE_INVALID);
    assert_null(items);
    pg.cursor = "xyz";
    assert_int_equal(store_device_list(f->s, f->ta, 0, NULL, &pg, &items, next), STORE_INVALID);
    char upper[65];
    snprintf(upper, sizeof(upper), "%s", ids[0]);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    pg.cursor = upper;
    assert_int_equal(store_device_list(f->s, f->ta, 0, NULL, &pg, &items, next), STORE_INVALID);
    assert_int_equal(store_device_get(f->s, f->ta, upper, &d), STORE_INVALID);

    /* The cursor is exclusive: listing after the smallest id gives the other four. */
    char smallest[65];
    snprintf(smallest, sizeof(smallest), "%s", ids[0]);
    for (int i = 1; i < 5; i++)
        if (strcmp(ids[i], smallest) < 0)
            snprintf(smallest, sizeof(smallest), "%s", ids[i]);
    pg.cursor = smallest;
    assert_int_equal(store_device_list(f->s, f->ta, 0, NULL, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 4);
    assert_string_equal(next, "");
    json_decref(items);
}

static void
test_device_claim_move_block(void **state)
{
    struct fx *f = *state;
    char d1[65], d2[65], unknown[65];
    json_t *d = NULL;
    dev_id(300, d1);
    dev_id(301, d2);
    dev_id(302, unknown);
    int64_t pa = make_product(f, f->ta, "sensor");
    int64_t ga = make_group(f, f->ta, pa, "ga");
    int64_t pb = make_product(f, f->tb, "sensor");
    int64_t gb = make_group(f, f->tb, pb, "gb");

    assert_int_equal(store_device_claim(f->s, f->ta, unknown, 0, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_claim(f->s, f->ta, "nothex", 0, &f->a, &d), STORE_INVALID);

    /* A imports d1 and d2 without claiming: B does not see them. */
    assert_int_equal(import1(f, f->ta, &f->a, d1, 0, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, d2, 0, 0), STORE_OK);
    assert_null(dev_state(f, f->tb, d1));
    assert_string_equal(dev_state(f, f->ta, d1), "unclaimed");
    /* Unclaimed devices cannot be moved or blocked. */
    assert_int_equal(store_device_move(f->s, f->ta, d1, ga, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, d1, 1, &f->a, &d), STORE_NOTFOUND);

    /* B claims d1 with A's group: refused, nothing changes. */
    assert_int_equal(store_device_claim(f->s, f->tb, d1, ga, &f->b, &d), STORE_NOTFOUND);
    assert_string_equal(dev_state(f, f->ta, d1), "unclaimed");
    /* Nor without a group: only the owner claims. */
    assert_int_equal(store_device_claim(f->s, f->tb, d1, gb, &f->b, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_claim(f->s, f->tb, d1, 0, &f->b, &d), STORE_NOTFOUND);
    assert_null(d);
    /* A hands it to B with a transfer code; then it is B's only. */
    assert_int_equal(store_device_transfer_create(f->s, f->ta, d1, HASH1, util_now() + 60, &f->a),
                     STORE_OK);
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, d1, gb, HASH1, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "active");
    assert_int_equal(jint(d, "group_id"), gb);
    assert_int_equal(jint(d, "product_id"), pb);
    json_decref(d);
    assert_null(dev_state(f, f->ta, d1));
    assert_int_equal(store_device_claim(f->s, f->ta, d1, 0, &f->a, &d), STORE_NOTFOUND);
    assert_null(d);
    assert_int_equal(store_device_claim(f->s, f->tb, d1, 0, &f->b, &d), STORE_OK); /* idempotent */
    assert_int_equal(jint(d, "group_id"), gb);
    json_decref(d);
    /* A importing d1 now gets a registration of its own, which B's device never talks to. */
    assert_int_equal(import1(f, f->ta, &f->a, d1, 0, 0), STORE_OK);
    assert_string_equal(dev_state(f, f->ta, d1), "unclaimed");

    /* Move: only the owner, only into its own groups. */
    assert_int_equal(store_device_move(f->s, f->ta, d1, ga, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_move(f->s, f->tb, d1, ga, &f->b, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_move(f->s, f->tb, d1, 0, &f->b, &d), STORE_OK);
    assert_true(json_is_null(json_object_get(d, "group_id")));
    assert_true(json_is_null(json_object_get(d, "product_id")));
    json_decref(d);
    assert_int_equal(store_device_move(f->s, f->tb, d1, gb, &f->b, &d), STORE_OK);
    assert_int_equal(jint(d, "group_id"), gb);
    json_decref(d);
    assert_int_equal(store_device_move(f->s, f->tb, unknown, gb, &f->b, &d), STORE_NOTFOUND);

    /* Block/unblock: only the owner; idempotent. */
    assert_int_equal(store_device_set_blocked(f->s, f->ta, d1, 1, &f->a, &d), STORE_NOTFOUND);
    assert_int_equal(store_device_set_blocked(f->s, f->tb, d1, 1, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "blocked");
    json_decref(d);
    assert_int_equal(store_device_set_blocked(f->s, f->tb, d1, 1, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "blocked");
    json_decref(d);
    assert_int_equal(store_device_set_blocked(f->s, f->tb, d1, 0, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "active");
    json_decref(d);

    /* A claims d2 into its group. */
    assert_int_equal(store_device_claim(f->s, f->ta, d2, ga, &f->a, &d), STORE_OK);
    assert_int_equal(jint(d, "group_id"), ga);
    json_decref(d);

    char actions[512];
    audit_actions(f, f->tb, actions, sizeof(actions));
    assert_string_equal(actions, "device.unblock device.block device.move device.move device.claim "
                                 "group.create product.create tenant.create");
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_string_equal(actions, "device.claim device.import device.transfer device.import "
                                 "device.import group.create product.create tenant.create");

    /* The audit row of a device change names the device and the actor. */
    struct store_page pg = {NULL, 1};
    json_t *items = NULL;
    char next[CURSOR_BUF];
    assert_int_equal(store_audit_list(f->s, f->tb, &pg, &items, next), STORE_OK);
    json_t *row = json_array_get(items, 0);
    assert_string_equal(jstr(row, "object_type"), "device");
    assert_string_equal(jstr(row, "object_id"), d1);
    assert_string_equal(jstr(row, "actor"), "token:2");
    assert_true(strlen(next) > 0);
    json_decref(items);
    pg.cursor = "x1";
    assert_int_equal(store_audit_list(f->s, f->tb, &pg, &items, next), STORE_INVALID);
}

static void
test_audit_shapes(void **state)
{
    struct fx *f = *state;
    json_t *items = NULL, *p = NULL;
    char next[CURSOR_BUF];
    assert_int_equal(store_product_create(f->s, f->ta, "sensor", "x", &f->a, &p), STORE_OK);
    int64_t pid = jint(p, "id");
    json_decref(p);

    struct store_page pg = {NULL, 10};
    assert_int_equal(store_audit_list(f->s, f->ta, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(next, "");
    json_t *row = json_array_get(items, 0);
    assert_int_equal(json_object_size(row), 7);
    assert_string_equal(jstr(row, "action"), "product.create");
    assert_string_equal(jstr(row, "object_type"), "product");
    assert_int_equal(jint(row, "object_id"), pid);
    assert_string_equal(jstr(json_object_get(row, "detail"), "name"), "sensor");
    row = json_array_get(items, 1);
    assert_string_equal(jstr(row, "action"), "tenant.create");
    assert_string_equal(jstr(row, "actor"), "aegisctl");
    assert_int_equal(jint(row, "object_id"), f->ta);
    json_decref(items);

    /* B sees only its own rows. */
    assert_int_equal(store_audit_list(f->s, f->tb, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
}

static void
test_device_transfer_code(void **state)
{
    struct fx *f = *state;
    char dx[65], dy[65];
    json_t *d = NULL;
    struct store_device_auth au;
    int64_t now = util_now();
    dev_id(400, dx);
    dev_id(401, dy);
    int64_t ga = make_group(f, f->ta, make_product(f, f->ta, "sensor"), "ga");

    assert_int_equal(import1(f, f->ta, &f->a, dx, 1, ga), STORE_OK);
    /* Only a holder makes codes; bad arguments. */
    assert_int_equal(store_device_transfer_create(f->s, f->tb, dx, HASH1, now + 60, &f->b),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_transfer_create(f->s, f->ta, dx, "abc", now + 60, &f->a),
                     STORE_INVALID);
    assert_int_equal(store_device_transfer_create(f->s, f->ta, dx, HASH1, now - 1, &f->a),
                     STORE_INVALID);
    assert_int_equal(store_device_transfer_create(f->s, f->ta, dx, HASH1, now + 60, &f->a),
                     STORE_OK);
    /* A wrong code, or the code on another device, is the answer for an unknown device. */
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, dx, 0, HASH2, &f->b, &d),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, dy, 0, HASH1, &f->b, &d),
                     STORE_NOTFOUND);
    assert_null(d);
    /* A newer code replaces the older one. */
    assert_int_equal(store_device_transfer_create(f->s, f->ta, dx, HASH2, now + 60, &f->a),
                     STORE_OK);
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, dx, 0, HASH1, &f->b, &d),
                     STORE_NOTFOUND);
    assert_string_equal(dev_state(f, f->ta, dx), "active");
    /* The code works once: B gets the device, claimed, out of A's group, without A's history. */
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, dx, 0, HASH2, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "active");
    assert_true(json_is_null(json_object_get(d, "group_id")));
    assert_true(json_is_null(json_object_get(d, "attestation")));
    json_decref(d);
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, dx, 0, HASH2, &f->b, &d),
                     STORE_NOTFOUND);
    assert_null(dev_state(f, f->ta, dx));
    assert_int_equal(store_device_auth(f->s, dx, &au), STORE_OK);
    assert_int_equal(au.tenant_id, f->tb);
    assert_int_equal(au.group_id, 0);

    /* A shadow is transferred too: B owns dy, A's registration of it goes to B, which keeps its
     * own. */
    assert_int_equal(import1(f, f->tb, &f->b, dy, 0, 0), STORE_OK);
    assert_int_equal(import1(f, f->ta, &f->a, dy, 1, ga), STORE_OK);
    assert_int_equal(store_device_transfer_create(f->s, f->ta, dy, HASH3, now + 60, &f->a),
                     STORE_OK);
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, dy, 0, HASH3, &f->b, &d), STORE_OK);
    assert_string_equal(jstr(d, "state"), "active");
    json_decref(d);
    assert_null(dev_state(f, f->ta, dy));
    assert_int_equal(store_group_delete(f->s, f->ta, ga, &f->a), STORE_OK);
    assert_int_equal(store_device_auth(f->s, dy, &au), STORE_OK);
    assert_int_equal(au.tenant_id, f->tb);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_products, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_import_foreign_is_shadow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_import_10k_and_paginate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_states_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_claim_move_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_transfer_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_shapes, setup, teardown),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
