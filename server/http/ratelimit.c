/* ratelimit: sharded fixed-size table of token buckets (ratelimit.h). */
#include "ratelimit.h"
#include "ratelimit_int.h"

#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1e9

ratelimit *
ratelimit_new(double rate, double burst, size_t capacity)
{
    ratelimit *rl = NULL;
    int ok = 0;

    if (!(rate > 0) || !(burst >= 1) || !isfinite(rate) || !isfinite(burst) || capacity < 1 ||
        capacity > SIZE_MAX / 2)
        goto out;
    if ((rl = calloc(1, sizeof(*rl))) == NULL)
        goto out;
    rl->rate = rate;
    rl->burst = burst;
    rl->nslots = (capacity + NSHARDS - 1) / NSHARDS;
    if (rl->nslots < PROBE)
        rl->nslots = PROBE;
    randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
    for (int i = 0; i < NSHARDS; i++) {
        rl->shards[i].slots = calloc(rl->nslots, sizeof(struct bucket));
        if (rl->shards[i].slots == NULL || pthread_mutex_init(&rl->shards[i].lock, NULL) != 0)
            goto out;
        rl->nlocks++;
    }
    ok = 1;
out:
    if (!ok) {
        ratelimit_free(rl);
        rl = NULL;
    }
    return rl;
}

void
ratelimit_free(ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (int i = 0; i < NSHARDS; i++) {
        if (i < rl->nlocks)
            pthread_mutex_destroy(&rl->shards[i].lock);
        free(rl->shards[i].slots);
    }
    free(rl);
}

/* Brings b's tokens up to now (a clock that went backwards refills nothing). */
static void
refill(const ratelimit *rl, struct bucket *b, uint64_t now_ns)
{
    if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) / NS_PER_S * rl->rate;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last_ns = now_ns;
    }
}

/* 1 if b would be full at now: forgetting it changes nothing. */
static int
stale(const ratelimit *rl, const struct bucket *b, uint64_t now_ns)
{
    double t = b->tokens;
    if (now_ns > b->last_ns)
        t += (double)(now_ns - b->last_ns) / NS_PER_S * rl->rate;
    return t >= rl->burst;
}

struct bucket *
ratelimit_find(const ratelimit *rl, struct shard *sh, size_t start, const char *key,
               uint64_t now_ns)
{
    struct bucket *victim = NULL;
    int victim_rank = 3; /* 0 empty, 1 stale, 2 least recently used */
    for (size_t i = 0; i < PROBE; i++) {
        struct bucket *b = &sh->slots[(start + i) % rl->nslots];
        if (b->key[0] != '\0' && strncmp(b->key, key, RATELIMIT_KEY_MAX) == 0)
            return b;
        int rank = b->key[0] == '\0' ? 0 : (stale(rl, b, now_ns) ? 1 : 2);
        if (rank < victim_rank || (rank == 2 && victim_rank == 2 && b->last_ns < victim->last_ns)) {
            victim = b;
            victim_rank = rank;
        }
    }
    size_t n = strnlen(key, RATELIMIT_KEY_MAX);
    memcpy(victim->key, key, n);
    victim->key[n] = '\0';
    victim->tokens = rl->burst;
    victim->last_ns = now_ns;
    return victim;
}

/* s rounded up to whole seconds, in 1..INT_MAX (no libm). */
static int
whole_seconds(double s)
{
    if (!(s < (double)INT_MAX))
        return INT_MAX;
    int w = (int)s;
    if ((double)w < s)
        w++;
    return w < 1 ? 1 : w;
}

int
ratelimit_take(ratelimit *rl, const char *key, uint64_t now_ns, int *retry_after_s)
{
    uint64_t h = 0;
    int allowed = 1;

    if (retry_after_s != NULL)
        *retry_after_s = 0;
    if (rl == NULL || key == NULL || key[0] == '\0')
        return 1;
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)key, strnlen(key, RATELIMIT_KEY_MAX),
                     rl->hash_key);
    memcpy(&h, out, sizeof(h));
    struct shard *sh = &rl->shards[h & (NSHARDS - 1)];

    pthread_mutex_lock(&sh->lock);
    struct bucket *b = ratelimit_find(rl, sh, (size_t)(h >> 8) % rl->nslots, key, now_ns);
    refill(rl, b, now_ns);
    if (b->tokens >= 1) {
        b->tokens -= 1;
    } else {
        allowed = 0;
        atomic_fetch_add(&rl->refused, 1);
        if (retry_after_s != NULL)
            *retry_after_s = whole_seconds((1 - b->tokens) / rl->rate);
    }
    pthread_mutex_unlock(&sh->lock);
    return allowed;
}

uint64_t
ratelimit_refused(const ratelimit *rl)
{
    return rl != NULL ? (uint64_t)atomic_load(&rl->refused) : 0;
}
