/* hmap: open-addressing hash map from byte keys to dense indexes (hmap.h). */
#include "hmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct hmap_key {
    uint64_t h; /* cached: probes compare it first, growth rehashes without reading keys */
    size_t klen;
    char key[HMAP_KEY_MAX];
};

struct hmap *
hmap_new(void)
{
    return calloc(1, sizeof(struct hmap));
}

void
hmap_free(struct hmap *m)
{
    if (m == NULL)
        return;
    hmap_clear(m);
    free(m);
}

void
hmap_clear(struct hmap *m)
{
    free(m->keys);
    free(m->slot);
    memset(m, 0, sizeof(*m));
}

size_t
hmap_count(const struct hmap *m)
{
    return m->n;
}

/* FNV-1a. */
static uint64_t
hmap_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    return h;
}

/* The slot of key (a free one when absent). The table is at most half full, so a probe ends. */
static size_t
hmap_slot(const struct hmap *m, const char *k, size_t klen, uint64_t h)
{
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slot[i] != 0) {
        const struct hmap_key *e = &m->keys[m->slot[i] - 1];
        if (e->h == h && e->klen == klen && memcmp(e->key, k, klen) == 0)
            break;
        i = (i + 1) & (m->cap - 1);
    }
    return i;
}

size_t
hmap_find(const struct hmap *m, const void *k, size_t klen)
{
    if (m->cap == 0 || klen > HMAP_KEY_MAX)
        return HMAP_NONE;
    size_t i = hmap_slot(m, k, klen, hmap_hash(k, klen));
    return m->slot[i] != 0 ? m->slot[i] - 1 : HMAP_NONE;
}

/* Room for one more key: the key array and, past half load, a doubled slot table. */
static int
hmap_reserve(struct hmap *m)
{
    if (m->n == m->kcap) {
        size_t ncap = m->kcap == 0 ? 64 : m->kcap * 2;
        struct hmap_key *nk = realloc(m->keys, ncap * sizeof(*nk));
        if (nk == NULL)
            return -1;
        m->keys = nk;
        m->kcap = ncap;
    }
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap == 0 ? 128 : m->cap * 2;
        uint32_t *ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL)
            return -1;
        free(m->slot);
        m->slot = ns;
        m->cap = ncap;
        for (size_t j = 0; j < m->n; j++)
            m->slot[hmap_slot(m, m->keys[j].key, m->keys[j].klen, m->keys[j].h)] =
                (uint32_t)(j + 1);
    }
    return 0;
}

int
hmap_insert(struct hmap *m, const void *k, size_t klen, size_t *idx, int *added)
{
    *added = 0;
    if (klen > HMAP_KEY_MAX) /* a key_* call ran out of room: nothing of k may be read */
        return -1;
    uint64_t h = hmap_hash(k, klen);
    if (m->cap > 0) {
        size_t i = hmap_slot(m, k, klen, h);
        if (m->slot[i] != 0) {
            *idx = m->slot[i] - 1;
            return 0;
        }
    }
    assert(m->n < UINT32_MAX - 1); /* slots hold index + 1 in 32 bits */
    if (hmap_reserve(m) != 0)
        return -1;
    struct hmap_key *e = &m->keys[m->n];
    e->h = h;
    e->klen = klen;
    memcpy(e->key, k, klen);
    m->slot[hmap_slot(m, k, klen, h)] = (uint32_t)(m->n + 1);
    *idx = m->n++;
    *added = 1;
    return 0;
}

const void *
hmap_key(const struct hmap *m, size_t idx, size_t *klen)
{
    assert(idx < m->n);
    *klen = m->keys[idx].klen;
    return m->keys[idx].key;
}

size_t
hmap_key_i64(char *k, size_t o, int64_t v)
{
    if (o + sizeof(v) > HMAP_KEY_MAX)
        return HMAP_KEY_MAX + 1;
    memcpy(k + o, &v, sizeof(v));
    return o + sizeof(v);
}

size_t
hmap_key_str(char *k, size_t o, const char *v)
{
    size_t n = strlen(v) + 1;
    if (o > HMAP_KEY_MAX || n > HMAP_KEY_MAX - o)
        return HMAP_KEY_MAX + 1;
    memcpy(k + o, v, n);
    return o + n;
}
