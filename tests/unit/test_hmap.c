/* Unit tests of lib/hmap.h: the hash map behind the telemetry writer's aggregates and the device
 * import's duplicate check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "hmap.h"

#include <stdio.h>
#include <string.h>

/* Inserts key (a text, without its NUL) and returns its index; *added as hmap_insert's. */
static size_t
put(struct hmap *m, const char *key, int *added)
{
    size_t idx = HMAP_NONE;
    assert_int_equal(hmap_insert(m, key, strlen(key), &idx, added), 0);
    assert_true(idx < hmap_count(m));
    return idx;
}

static size_t
get(const struct hmap *m, const char *key)
{
    return hmap_find(m, key, strlen(key));
}

static void
test_insert_and_find(void **state)
{
    (void)state;
    struct hmap *m = hmap_new();
    int added;
    assert_non_null(m);
    assert_int_equal(hmap_count(m), 0);
    assert_true(get(m, "a") == HMAP_NONE); /* empty: no table yet */

    assert_int_equal(put(m, "alpha", &added), 0);
    assert_int_equal(added, 1);
    assert_int_equal(put(m, "beta", &added), 1);
    assert_int_equal(added, 1);
    assert_int_equal(put(m, "alpha", &added), 0); /* present: same index, nothing added */
    assert_int_equal(added, 0);
    assert_int_equal(hmap_count(m), 2);

    assert_int_equal(get(m, "alpha"), 0);
    assert_int_equal(get(m, "beta"), 1);
    assert_true(get(m, "gamma") == HMAP_NONE);
    assert_true(get(m, "alph") == HMAP_NONE); /* a prefix is another key */
    assert_true(get(m, "alphaa") == HMAP_NONE);

    size_t klen;
    const char *k = hmap_key(m, 1, &klen);
    assert_int_equal(klen, 4);
    assert_memory_equal(k, "beta", 4);
    hmap_free(m);
    hmap_free(NULL);
}

/* Keys are bytes: an empty key, and keys that differ only after a NUL. */
static void
test_byte_keys(void **state)
{
    (void)state;
    struct hmap m = {0}; /* embedded use: zero is an empty map */
    size_t a, b, e;
    int added;
    assert_int_equal(hmap_insert(&m, "x\0a", 3, &a, &added), 0);
    assert_int_equal(hmap_insert(&m, "x\0b", 3, &b, &added), 0);
    assert_int_equal(hmap_insert(&m, "", 0, &e, &added), 0);
    assert_int_equal(added, 1);
    assert_true(a != b && b != e && a != e);
    assert_int_equal(hmap_find(&m, "x\0b", 3), b);
    assert_int_equal(hmap_find(&m, "", 0), e);
    assert_true(hmap_find(&m, "x", 1) == HMAP_NONE);
    hmap_clear(&m);
    assert_int_equal(hmap_count(&m), 0);
    assert_true(hmap_find(&m, "", 0) == HMAP_NONE);
    assert_int_equal(hmap_insert(&m, "again", 5, &a, &added), 0); /* usable after a clear */
    assert_int_equal(a, 0);
    hmap_clear(&m);
}

/* Many keys: the table grows several times and every key keeps its index. */
static void
test_grow_many_keys(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct hmap *m = hmap_new();
    char key[32];
    int added;
    assert_non_null(m);
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "device-%zu", i);
        assert_int_equal(put(m, key, &added), i);
        assert_int_equal(added, 1);
    }
    assert_int_equal(hmap_count(m), N);
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "device-%zu", i);
        assert_int_equal(get(m, key), i);
        size_t klen;
        const char *k = hmap_key(m, i, &klen);
        assert_int_equal(klen, strlen(key));
        assert_memory_equal(k, key, klen);
    }
    snprintf(key, sizeof(key), "device-%d", N);
    assert_true(get(m, key) == HMAP_NONE);
    hmap_free(m);
}

/* FNV-1a, as hmap.c hashes: to pick keys that start their probe in the same slot. */
static uint64_t
fnv(const char *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *k != '\0'; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h;
}

/* Keys whose hashes share their low bits collide in the first table (128 slots): each is found
 * behind the others of its probe chain, before and after the table grows. */
static void
test_colliding_keys(void **state)
{
    (void)state;
    enum { C = 40 };
    char keys[C][16];
    size_t n = 0;
    for (unsigned i = 0; n < C; i++) {
        snprintf(keys[n], sizeof(keys[n]), "k%u", i);
        if ((fnv(keys[n]) & 127) == 5)
            n++;
    }
    struct hmap m = {0};
    int added;
    for (size_t i = 0; i < C; i++)
        assert_int_equal(put(&m, keys[i], &added), i);
    for (size_t i = 0; i < C; i++)
        assert_int_equal(get(&m, keys[i]), i);
    for (size_t i = C; i < 1000; i++) { /* grows the table: the chain is rehashed */
        char other[16];
        snprintf(other, sizeof(other), "o%zu", i);
        assert_int_equal(put(&m, other, &added), i);
    }
    for (size_t i = 0; i < C; i++)
        assert_int_equal(get(&m, keys[i]), i);
    hmap_clear(&m);
}

/* Composite keys: builders refuse what does not fit, and the map refuses over-long keys. */
static void
test_key_builders_and_limits(void **state)
{
    (void)state;
    char k[HMAP_KEY_MAX];
    char big[HMAP_KEY_MAX + 8];
    size_t idx;
    int added;
    size_t o = hmap_key_str(k, hmap_key_i64(k, 0, 42), "ab");
    assert_int_equal(o, 8 + 3);
    assert_int_equal(hmap_key_str(k, hmap_key_i64(k, 0, 42), "a"), 8 + 2);

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(hmap_key_str(k, 0, big), HMAP_KEY_MAX + 1);
    assert_int_equal(hmap_key_i64(k, HMAP_KEY_MAX - 4, 1), HMAP_KEY_MAX + 1);
    assert_int_equal(hmap_key_str(k, HMAP_KEY_MAX + 1, ""), HMAP_KEY_MAX + 1); /* stays too long */

    struct hmap m = {0};
    assert_int_equal(hmap_insert(&m, big, HMAP_KEY_MAX + 1, &idx, &added), -1);
    assert_int_equal(added, 0);
    assert_int_equal(hmap_count(&m), 0);
    assert_int_equal(hmap_insert(&m, big, HMAP_KEY_MAX, &idx, &added), 0); /* the longest */
    assert_int_equal(hmap_find(&m, big, HMAP_KEY_MAX), idx);
    assert_true(hmap_find(&m, big, HMAP_KEY_MAX + 1) == HMAP_NONE);
    hmap_clear(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_and_find),         cmocka_unit_test(test_byte_keys),
        cmocka_unit_test(test_grow_many_keys),          cmocka_unit_test(test_colliding_keys),
        cmocka_unit_test(test_key_builders_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
