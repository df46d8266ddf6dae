/* Unit tests of the token-bucket limiter (server/http/ratelimit.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratelimit_int.h"

#include <pthread.h>
#include <string.h>

#include <stdio.h>

#define S 1000000000ull /* one second in ns */

static void
test_bad_arguments(void **state)
{
    (void)state;
    assert_null(ratelimit_new(0, 10, 100));
    assert_null(ratelimit_new(-1, 10, 100));
    assert_null(ratelimit_new(1, 0.5, 100));
    assert_null(ratelimit_new(1, 10, 0));
    ratelimit_free(NULL);
    /* No limiter, or no key: everything passes. */
    int retry = -1;
    assert_int_equal(ratelimit_take(NULL, "k", 0, &retry), 1);
    assert_int_equal(retry, 0);
}

static void
test_burst_then_refill(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1, 2, 100);
    int retry = 0;
    uint64_t t = 1000 * S;
    assert_non_null(rl);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", t, &retry), 1);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", t, &retry), 1);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", t, &retry), 0);
    assert_int_equal(retry, 1);
    /* Half a second later: still no whole token; one second after that, one. */
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + S / 2, &retry), 0);
    assert_int_equal(retry, 1);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + S + S / 2, &retry), 1);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + S + S / 2, &retry), 0);
    /* Another key has its own bucket. */
    assert_int_equal(ratelimit_take(rl, "10.0.0.2", t, &retry), 1);
    /* A long pause refills to the burst, not beyond. */
    uint64_t later = t + 3600 * S;
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", later, &retry), 1);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", later, &retry), 1);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", later, &retry), 0);
    /* A clock going backwards refills nothing and breaks nothing. */
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", t, &retry), 0);
    ratelimit_free(rl);
}

static void
test_retry_after_slow_rate(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(0.1, 1, 10); /* one token every 10 s */
    int retry = 0;
    assert_int_equal(ratelimit_take(rl, "k", 5 * S, &retry), 1);
    assert_int_equal(ratelimit_take(rl, "k", 5 * S, &retry), 0);
    assert_int_equal(retry, 10);
    assert_int_equal(ratelimit_take(rl, "k", 8 * S, &retry), 0);
    assert_int_equal(retry, 7);
    assert_int_equal(ratelimit_take(rl, "k", 15 * S, &retry), 1);
    ratelimit_free(rl);
}

static void
test_long_keys_use_their_prefix(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1, 1, 100);
    char a[200], b[200];
    memset(a, 'x', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(b));
    b[150] = 'y'; /* differs after the first RATELIMIT_KEY_MAX bytes: the same bucket */
    assert_int_equal(ratelimit_take(rl, a, S, NULL), 1);
    assert_int_equal(ratelimit_take(rl, b, S, NULL), 0);
    /* A 64-character key (a device id) is kept whole. */
    char id1[65], id2[65];
    memset(id1, 'a', 64);
    id1[64] = '\0';
    memcpy(id2, id1, sizeof(id2));
    id2[63] = 'b';
    assert_int_equal(ratelimit_take(rl, id1, S, NULL), 1);
    assert_int_equal(ratelimit_take(rl, id2, S, NULL), 1);
    assert_int_equal(ratelimit_take(rl, id1, S, NULL), 0);
    ratelimit_free(rl);
}

/* Many more keys than slots: memory stays as allocated, every new key still gets a full bucket,
 * and a key that keeps being limited is not forgotten while it is among the recent ones. */
static void
test_bounded_table_evicts(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1, 1, 64);
    char key[32];
    uint64_t t = 10 * S;
    assert_non_null(rl);
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "198.51.%d.%d", i / 256, i % 256);
        assert_int_equal(ratelimit_take(rl, key, t, NULL), 1);
    }
    size_t used = 0;
    for (int s = 0; s < NSHARDS; s++)
        for (size_t j = 0; j < rl->nslots; j++)
            used += rl->shards[s].slots[j].key[0] != '\0';
    assert_true(used <= (size_t)NSHARDS * rl->nslots);
    assert_int_equal(rl->nslots, PROBE);
    /* The last key is still limited: it was just used, so it is not the one evicted. */
    assert_int_equal(ratelimit_take(rl, key, t, NULL), 0);
    ratelimit_free(rl);
}

/* Eviction order within a probe window: an empty slot, else a bucket that has refilled completely
 * (forgetting it changes nothing), else the least recently used. Checked on one shard directly. */
static void
test_eviction_order(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1, 5, 1); /* PROBE slots per shard */
    struct shard *sh = &rl->shards[0];
    for (size_t i = 0; i < PROBE; i++) {
        snprintf(sh->slots[i].key, sizeof(sh->slots[i].key), "k%zu", i);
        sh->slots[i].tokens = 4; /* full again one second after last_ns */
        sh->slots[i].last_ns = 1 * S + i;
    }
    sh->slots[0].tokens = 0; /* k0: the least recently used, but far from full */
    sh->slots[0].last_ns = 0;
    sh->slots[3].tokens = 0; /* k3: recent and far from full */
    sh->slots[3].last_ns = 3 * S;
    /* At 2.5 s every slot but k0 and k3 is full: a new key takes the first of those (k1). */
    struct bucket *b = ratelimit_find(rl, sh, 0, "new", 2 * S + S / 2);
    assert_ptr_equal(b, &sh->slots[1]);
    assert_string_equal(b->key, "new");
    assert_true(b->tokens == 5);
    /* A known key is found wherever it is in the window (here from start 6, wrapping). */
    assert_ptr_equal(ratelimit_find(rl, sh, 6, "k3", 3 * S), &sh->slots[3]);
    /* Nothing full: the least recently used goes (k0). */
    for (size_t i = 1; i < PROBE; i++) {
        sh->slots[i].tokens = 0;
        sh->slots[i].last_ns = 3 * S;
    }
    assert_ptr_equal(ratelimit_find(rl, sh, 0, "newer", 3 * S), &sh->slots[0]);
    /* An empty slot beats everything. */
    sh->slots[5].key[0] = '\0';
    assert_ptr_equal(ratelimit_find(rl, sh, 0, "newest", 3 * S), &sh->slots[5]);
    ratelimit_free(rl);
}

struct worker {
    ratelimit *rl;
    int allowed;
};

static void *
hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20000; i++)
        w->allowed += ratelimit_take(w->rl, "shared", 7 * S, NULL);
    return NULL;
}

static void
test_threads_share_one_bucket(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1, 100, 1000);
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){rl, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += w[i].allowed;
    }
    assert_int_equal(total, 100); /* exactly the burst, at one instant */
    ratelimit_free(rl);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_retry_after_slow_rate),
        cmocka_unit_test(test_long_keys_use_their_prefix),
        cmocka_unit_test(test_bounded_table_evicts),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_threads_share_one_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
