/* ratelimit_int: the table's layout, for ratelimit.c and its unit test (eviction order) only. */
#ifndef AEGIS_RATELIMIT_INT_H
#define AEGIS_RATELIMIT_INT_H

#include "ratelimit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define NSHARDS 64 /* a power of two */
#define PROBE 8    /* slots looked at for one key */

struct bucket {
    char key[RATELIMIT_KEY_MAX + 1]; /* "" = empty slot */
    double tokens;
    uint64_t last_ns; /* when tokens was last brought up to date */
};

struct shard {
    pthread_mutex_t lock;
    struct bucket *slots;
};

struct ratelimit {
    double rate, burst;
    size_t nslots; /* per shard */
    int nlocks;    /* shards whose lock is initialised */
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    atomic_uint_fast64_t refused; /* ratelimit_refused */
    struct shard shards[NSHARDS];
};

/* The bucket of key in shard sh (probe window from start), made fresh if it was not there. */
struct bucket *ratelimit_find(const ratelimit *rl, struct shard *sh, size_t start, const char *key,
                              uint64_t now_ns);

#endif
