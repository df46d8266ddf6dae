/* store_agg: the telemetry writer's in-memory aggregates (store_tel_ingest.c): a table of entries
 * by key, each applied to the database once per distinct key of a group, and the writer's cache of
 * known buckets (store_tel_writer.c). The keys are an hmap (lib/hmap.h); the entries are a dense
 * array indexed alike. Internal to server/store. Not thread-safe: one table, one user at a time. */
#ifndef AEGIS_STORE_AGG_H
#define AEGIS_STORE_AGG_H

#include "hmap.h"

#include <stddef.h>
#include <stdint.h>

struct store_agg_ent {
    int64_t id; /* bucket id */
    int64_t tenant_id;
    int64_t n1, n2, n3;  /* counts, per table (struct group of store_tel_ingest.c) */
    const char *s1, *s2; /* borrowed texts to bind */
    int64_t last;        /* buckets: id of the newest stored report, 0 when none */
};

/* All zero is an empty table. Entry pointers are valid until the next insertion. */
struct store_agg {
    struct hmap keys;        /* key -> index in e */
    struct store_agg_ent *e; /* n entries in order of insertion */
    size_t n, ecap;
};

/* Frees what the table holds (not t itself) and leaves t an empty table. */
void store__agg_free(struct store_agg *t);
/* The entry of key k (klen bytes), or NULL when absent. Borrowed from t until its next
 * insertion. */
const struct store_agg_ent *store__agg_find(const struct store_agg *t, const char *k, size_t klen);
/* The entry of key k, added (zeroed) when absent: *added 1 then, *idx its index. NULL when out of
 * memory or when klen > HMAP_KEY_MAX (hmap_key_* ran out of room). Borrowed as above. */
struct store_agg_ent *store__agg_get(struct store_agg *t, const char *k, size_t klen, int *added,
                                     size_t *idx);

#endif
