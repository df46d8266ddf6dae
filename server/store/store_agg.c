/* store_agg: aggregate entries over an hmap of their keys (store_agg.h). */
#include "store_agg.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void
store__agg_free(struct store_agg *t)
{
    hmap_clear(&t->keys);
    free(t->e);
    memset(t, 0, sizeof(*t));
}

const struct store_agg_ent *
store__agg_find(const struct store_agg *t, const char *k, size_t klen)
{
    size_t i = hmap_find(&t->keys, k, klen);
    return i != HMAP_NONE ? &t->e[i] : NULL;
}

struct store_agg_ent *
store__agg_get(struct store_agg *t, const char *k, size_t klen, int *added, size_t *idx)
{
    /* Room first, so that a key is never in the map without its entry. */
    if (t->n == t->ecap) {
        size_t ncap = t->ecap == 0 ? 64 : t->ecap * 2;
        struct store_agg_ent *ne = realloc(t->e, ncap * sizeof(*ne));
        if (ne == NULL) {
            *added = 0;
            return NULL;
        }
        t->e = ne;
        t->ecap = ncap;
    }
    if (hmap_insert(&t->keys, k, klen, idx, added) != 0)
        return NULL;
    if (*added) {
        assert(*idx == t->n);
        memset(&t->e[t->n++], 0, sizeof(t->e[0]));
    }
    return &t->e[*idx];
}
