/* hmap: the one hash map of the tree. It maps byte keys of at most HMAP_KEY_MAX bytes to dense
 * indexes 0, 1, 2... in order of insertion, so a caller keeps its values in an array of its own
 * (indexed alike) and the map only answers "which index is this key". Open addressing with linear
 * probing over a dense array of keys with their cached hashes; the slot table doubles at half load.
 * Lookups never allocate. Not thread-safe: one map, one user at a time.
 *
 * Ownership: the map owns copies of its keys; hmap_new's map is the caller's (hmap_free), a map
 * embedded in a caller's struct starts zeroed and its contents are freed with hmap_clear. */
#ifndef AEGIS_HMAP_H
#define AEGIS_HMAP_H

#include <stddef.h>
#include <stdint.h>

#define HMAP_KEY_MAX 200
#define HMAP_NONE SIZE_MAX /* hmap_find: no such key */

struct hmap_key; /* hmap.c */

/* The fields are hmap.c's; all zero is an empty map. */
struct hmap {
    struct hmap_key *keys; /* n keys in order of insertion: key i has index i */
    size_t n, kcap;
    uint32_t *slot; /* cap slots (a power of two): index + 1 of a key, 0 when free */
    size_t cap;
};

/* A new empty map (caller frees with hmap_free), or NULL when out of memory. */
struct hmap *hmap_new(void);
void hmap_free(struct hmap *m);
/* Frees what m holds (not m itself) and leaves m an empty map. */
void hmap_clear(struct hmap *m);

/* The number of keys: their indexes are 0 .. hmap_count - 1. */
size_t hmap_count(const struct hmap *m);
/* The index of key k (klen bytes), or HMAP_NONE when absent (or klen > HMAP_KEY_MAX). */
size_t hmap_find(const struct hmap *m, const void *k, size_t klen);
/* The index of key k in *idx, the key added with index hmap_count() when absent (*added 1 then,
 * else 0). Returns 0, or -1 when out of memory or when klen > HMAP_KEY_MAX (m unchanged). */
int hmap_insert(struct hmap *m, const void *k, size_t klen, size_t *idx, int *added);
/* The key of index idx (< hmap_count) and its length. Borrowed from m until its next insertion. */
const void *hmap_key(const struct hmap *m, size_t idx, size_t *klen);

/* Builders of composite keys: append v to k (HMAP_KEY_MAX bytes) at o; return the new length,
 * HMAP_KEY_MAX + 1 once too long (hmap_insert and hmap_find then refuse the key, and nothing
 * further is written). Texts keep their NUL as separator, so ("ab", "c") and ("a", "bc") differ. */
size_t hmap_key_i64(char *k, size_t o, int64_t v);
size_t hmap_key_str(char *k, size_t o, const char *v);

#endif
