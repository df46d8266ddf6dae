/* store_agg: the telemetry writer's in-memory aggregates (store_tel_ingest.c): a table of entries
 * by key, each applied to the database once per distinct key of a group, and the writer's cache of
 * known buckets (store_tel_writer.c). Internal to server/store. Not thread-safe: one table, one
 * user at a time. */
#ifndef AEGIS_STORE_AGG_H
#define AEGIS_STORE_AGG_H

#include <stddef.h>
#include <stdint.h>

/* In-memory aggregates of one group, each applied once per distinct key: an open-addressing hash
 * table over a dense array of entries (entry pointers are valid until the next insertion). */
#define STORE_AGG_KEY_MAX 200

struct store_agg_ent {
    uint64_t h;
    size_t klen;
    char key[STORE_AGG_KEY_MAX];
    int64_t id; /* bucket id */
    int64_t tenant_id;
    int64_t n1, n2, n3;  /* counts, per table (struct group of store_tel_ingest.c) */
    const char *s1, *s2; /* borrowed texts to bind */
    int64_t last;        /* buckets: id of the newest stored report, 0 when none */
};

struct store_agg {
    struct store_agg_ent *e; /* n entries in order of insertion */
    size_t n, ecap;
    uint32_t *slot; /* cap slots: index + 1 of an entry, 0 when free */
    size_t cap;
};

/* Frees what the table holds (not t itself); t is left invalid until zeroed again. */
void store__agg_free(struct store_agg *t);
/* The entry of key k (klen bytes), or NULL when absent. Borrowed from t until its next insertion.
 */
const struct store_agg_ent *store__agg_find(const struct store_agg *t, const char *k, size_t klen);
/* The entry of key k, added (zeroed but for its key) when absent: *added 1 then, *idx its index.
 * NULL when out of memory or when klen > STORE_AGG_KEY_MAX. Borrowed as above. */
struct store_agg_ent *store__agg_get(struct store_agg *t, const char *k, size_t klen, int *added,
                                     size_t *idx);
/* Key builders: append v to k (STORE_AGG_KEY_MAX bytes) at o; return the new length,
 * STORE_AGG_KEY_MAX + 1 once too long (store__agg_get then refuses the key). Texts keep their NUL
 * as separator. */
size_t store__agg_key_i64(char *k, size_t o, int64_t v);
size_t store__agg_key_str(char *k, size_t o, const char *v);

#endif
