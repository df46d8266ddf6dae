/* lathist: a latency histogram that any thread records into without a lock (atomics), read as
 * Prometheus histogram buckets (cumulative at read time). Fixed bounds: 100 µs to 10 s, the
 * ladder a database commit or a disk flush spans. Zero-initialised storage is an empty
 * histogram; nothing to free. */
#ifndef AEGIS_LATHIST_H
#define AEGIS_LATHIST_H

#include <stdatomic.h>
#include <stdint.h>

#define LATHIST_BUCKETS 14

struct lathist {
    atomic_uint_fast64_t buckets[LATHIST_BUCKETS]; /* not cumulative; summed at read */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns;
};

/* The upper bound of bucket i in nanoseconds (i < LATHIST_BUCKETS). */
uint64_t lathist_bound_ns(int i);

/* Records one duration. */
void lathist_observe(struct lathist *h, uint64_t ns);

/* A consistent-enough copy for rendering: cum[i] the observations at or below bound i. */
struct lathist_snap {
    uint64_t cum[LATHIST_BUCKETS];
    uint64_t count;
    uint64_t sum_ns;
};
void lathist_read(const struct lathist *h, struct lathist_snap *out);

#endif
