/* store_agg: open-addressing hash tables over a dense array of entries (store_agg.h). */
#include "store_agg.h"

#include <stdlib.h>
#include <string.h>

void
store__agg_free(struct store_agg *t)
{
    free(t->e);
    free(t->slot);
}

static uint64_t
agg_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    return h;
}

/* The slot of key (free when absent). */
static size_t
agg_slot(const struct store_agg *t, const char *k, size_t klen, uint64_t h)
{
    size_t i = (size_t)h & (t->cap - 1);
    while (t->slot[i] != 0) {
        const struct store_agg_ent *e = &t->e[t->slot[i] - 1];
        if (e->h == h && e->klen == klen && memcmp(e->key, k, klen) == 0)
            break;
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

/* The entry of key, or NULL when absent. */
const struct store_agg_ent *
store__agg_find(const struct store_agg *t, const char *k, size_t klen)
{
    if (t->cap == 0)
        return NULL;
    size_t i = agg_slot(t, k, klen, agg_hash(k, klen));
    return t->slot[i] != 0 ? &t->e[t->slot[i] - 1] : NULL;
}

/* The entry of key, added (zeroed) when absent (*added set). NULL when out of memory. */
struct store_agg_ent *
store__agg_get(struct store_agg *t, const char *k, size_t klen, int *added, size_t *idx)
{
    *added = 0;
    if (klen > STORE_AGG_KEY_MAX) /* a key_* call ran out of room: nothing of k may be read */
        return NULL;
    uint64_t h = agg_hash(k, klen);
    if (t->cap > 0) {
        size_t i = agg_slot(t, k, klen, h);
        if (t->slot[i] != 0) {
            *idx = t->slot[i] - 1;
            return &t->e[*idx];
        }
    }
    if (t->n == t->ecap) {
        size_t ncap = t->ecap == 0 ? 64 : t->ecap * 2;
        struct store_agg_ent *ne = realloc(t->e, ncap * sizeof(*ne));
        if (ne == NULL)
            return NULL;
        t->e = ne;
        t->ecap = ncap;
    }
    if ((t->n + 1) * 2 > t->cap) {
        size_t ncap = t->cap == 0 ? 128 : t->cap * 2;
        uint32_t *ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL)
            return NULL;
        free(t->slot);
        t->slot = ns;
        t->cap = ncap;
        for (size_t j = 0; j < t->n; j++)
            t->slot[agg_slot(t, t->e[j].key, t->e[j].klen, t->e[j].h)] = (uint32_t)(j + 1);
    }
    struct store_agg_ent *e = &t->e[t->n];
    memset(e, 0, sizeof(*e));
    e->h = h;
    e->klen = klen;
    memcpy(e->key, k, klen);
    t->slot[agg_slot(t, k, klen, h)] = (uint32_t)(t->n + 1);
    *idx = t->n++;
    *added = 1;
    return e;
}

/* Key builders: append to k (STORE_AGG_KEY_MAX bytes) at o; return the new length,
 * STORE_AGG_KEY_MAX + 1 once too long. Texts keep their NUL as separator. */
size_t
store__agg_key_i64(char *k, size_t o, int64_t v)
{
    if (o + sizeof(v) > STORE_AGG_KEY_MAX)
        return STORE_AGG_KEY_MAX + 1;
    memcpy(k + o, &v, sizeof(v));
    return o + sizeof(v);
}

size_t
store__agg_key_str(char *k, size_t o, const char *v)
{
    size_t n = strlen(v) + 1;
    if (o > STORE_AGG_KEY_MAX || n > STORE_AGG_KEY_MAX - o)
        return STORE_AGG_KEY_MAX + 1;
    memcpy(k + o, v, n);
    return o + n;
}
