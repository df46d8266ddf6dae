/* http_addrs: open connections per client address (http_addrs.h). Linear probing with
 * backward-shift deletion (no tombstones), grown at half load. */
#include "http_addrs.h"

#include <assert.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_CAP 64

struct slot {
    unsigned char key[HTTP_ADDR_LEN];
    uint32_t n; /* 0: the slot is free */
    struct http_addr_list list;
};

struct http_addrs {
    struct slot *t;
    size_t cap, used; /* cap is a power of two */
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
};

static size_t
home(const http_addrs *a, const unsigned char key[HTTP_ADDR_LEN])
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, key, HTTP_ADDR_LEN, a->hash_key);
    memcpy(&v, h, sizeof(v));
    return (size_t)v & (a->cap - 1);
}

/* The slot of key, or of the free slot where it would go. */
static size_t
find(const http_addrs *a, const unsigned char key[HTTP_ADDR_LEN])
{
    size_t i = home(a, key);
    while (a->t[i].n != 0 && memcmp(a->t[i].key, key, HTTP_ADDR_LEN) != 0)
        i = (i + 1) & (a->cap - 1);
    return i;
}

static int
resize(http_addrs *a, size_t cap)
{
    struct slot *old = a->t;
    size_t old_cap = a->cap;
    struct slot *t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return -1;
    a->t = t;
    a->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].n != 0)
            a->t[find(a, old[i].key)] = old[i];
    free(old);
    return 0;
}

http_addrs *
http_addrs_new(void)
{
    http_addrs *a = calloc(1, sizeof(*a));
    if (a == NULL || sodium_init() < 0 || resize(a, INITIAL_CAP) != 0) {
        free(a);
        return NULL;
    }
    crypto_shorthash_keygen(a->hash_key);
    return a;
}

void
http_addrs_free(http_addrs *a)
{
    if (a == NULL)
        return;
    free(a->t);
    free(a);
}

int
http_addrs_key(const struct sockaddr *sa, unsigned char key[HTTP_ADDR_LEN])
{
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, HTTP_ADDR_LEN);
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(key, mapped, sizeof(mapped));
        memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 0;
    }
    return -1;
}

uint32_t
http_addrs_count(const http_addrs *a, const unsigned char key[HTTP_ADDR_LEN])
{
    return a->t[find(a, key)].n;
}

int
http_addrs_add(http_addrs *a, const unsigned char key[HTTP_ADDR_LEN])
{
    size_t i = find(a, key);
    if (a->t[i].n == 0) {
        if ((a->used + 1) * 2 > a->cap) {
            if (resize(a, a->cap * 2) != 0)
                return -1;
            i = find(a, key);
        }
        memcpy(a->t[i].key, key, HTTP_ADDR_LEN);
        a->t[i].list.oldest = a->t[i].list.newest = NULL;
        a->used++;
    }
    a->t[i].n++;
    return 0;
}

/* Whether home position h lies cyclically in (i, j]: then the entry at j may not move to i. */
static int
between(size_t i, size_t h, size_t j)
{
    return i <= j ? (i < h && h <= j) : (i < h || h <= j);
}

void
http_addrs_remove(http_addrs *a, const unsigned char key[HTTP_ADDR_LEN])
{
    size_t i = find(a, key);
    assert(a->t[i].n > 0);
    if (--a->t[i].n > 0)
        return;
    /* Backward shift: pull later entries of the run into the hole unless that moves one before
     * its home position. */
    for (size_t j = (i + 1) & (a->cap - 1); a->t[j].n != 0; j = (j + 1) & (a->cap - 1)) {
        if (between(i, home(a, a->t[j].key), j))
            continue;
        a->t[i] = a->t[j];
        a->t[j].n = 0;
        i = j;
    }
    a->used--;
}

struct http_addr_list *
http_addrs_list(http_addrs *a, const unsigned char key[HTTP_ADDR_LEN])
{
    size_t i = find(a, key);
    return a->t[i].n != 0 ? &a->t[i].list : NULL;
}

size_t
http_addrs_size(const http_addrs *a)
{
    return a->used;
}
