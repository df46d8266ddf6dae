#include "lathist.h"

#include <assert.h>

/* Seconds: 0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 10. */
static const uint64_t bounds_ns[LATHIST_BUCKETS] = {
    100000,   250000,   500000,    1000000,   2500000,   5000000,    10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 10000000000ULL};

uint64_t
lathist_bound_ns(int i)
{
    assert(i >= 0 && i < LATHIST_BUCKETS);
    return bounds_ns[i];
}

void
lathist_observe(struct lathist *h, uint64_t ns)
{
    for (int i = 0; i < LATHIST_BUCKETS; i++) {
        if (ns <= bounds_ns[i]) {
            atomic_fetch_add(&h->buckets[i], 1);
            break;
        }
    }
    atomic_fetch_add(&h->sum_ns, ns);
    atomic_fetch_add(&h->count, 1);
}

void
lathist_read(const struct lathist *h, struct lathist_snap *out)
{
    /* The count is read first and the buckets clamped to it: a scrape racing an observation never
     * shows a bucket above +Inf (promtool and Prometheus refuse a non-monotonic histogram). */
    uint64_t cum = 0;
    out->count = atomic_load(&h->count);
    out->sum_ns = atomic_load(&h->sum_ns);
    for (int i = 0; i < LATHIST_BUCKETS; i++) {
        cum += atomic_load(&h->buckets[i]);
        out->cum[i] = cum < out->count ? cum : out->count;
    }
}
