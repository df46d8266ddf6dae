/* ratelimit: token buckets keyed by short strings (a client address, a device id), for request
 * limits such as challenges per client address (and, later, telemetry per device).
 *
 * Each key has a bucket of `burst` tokens that refills at `rate` tokens per second; a request takes
 * one token or is refused with the seconds until the next one. Buckets live in a fixed-size hash
 * table split into mutex-guarded shards, so memory is bounded at construction whatever the number
 * of keys: a new key takes an empty slot, else a slot whose bucket has refilled completely (as good
 * as absent), else the least recently used slot of its probe window. Keys are hashed with keyed
 * SipHash (libsodium), so a client cannot aim its keys at one slot. Thread-safe. */
#ifndef AEGIS_RATELIMIT_H
#define AEGIS_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_KEY_MAX 64 /* longer keys are limited by their first 64 bytes */
#define RATELIMIT_DEFAULT_CAPACITY 16384

typedef struct ratelimit ratelimit;

/* A limiter of rate tokens per second (> 0) and burst tokens (>= 1) per key, with room for about
 * capacity keys (>= 1). Needs sodium_init() first. Returns NULL on bad arguments or allocation
 * failure. Free with ratelimit_free (accepts NULL). */
ratelimit *ratelimit_new(double rate, double burst, size_t capacity);
void ratelimit_free(ratelimit *rl);

/* Takes a token from key's bucket at time now_ns (a monotonic clock, e.g. util_mono_ns). Returns 1
 * when allowed, 0 when over the limit with *retry_after_s (may be NULL) set to the whole seconds
 * (>= 1) until a token is back. A NULL rl or key allows everything. */
int ratelimit_take(ratelimit *rl, const char *key, uint64_t now_ns, int *retry_after_s);
/* Requests refused (ratelimit_take returned 0) since ratelimit_new, for /metrics. 0 for NULL. */
uint64_t ratelimit_refused(const ratelimit *rl);

#endif
