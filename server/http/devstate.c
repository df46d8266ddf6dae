/* devstate: see devstate.h. A chained hash table of entries with striped locks: a lookup holds one
 * stripe's mutex for a walk of a short chain and a copy. */
#include "devstate.h"

#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS (1u << 16)
#define STRIPES 256u
#define TTL_NS ((uint64_t)DEVSTATE_TTL_S * 1000000000ull)

struct entry {
    struct entry *next;
    char id[65];
    int found; /* 0: the registry does not know the device */
    struct devstate_dev dev;
    uint64_t gen;       /* store_device_gen read before the load */
    uint64_t loaded_ns; /* util_mono_ns of the load */
};

struct devstate {
    store *st;
    int shared; /* store_device_gen_shared: else every call reads the database */
    atomic_uint entries;
    pthread_mutex_t locks[STRIPES];
    struct entry *buckets[BUCKETS];
};

devstate *
devstate_new(store *st)
{
    devstate *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->st = st;
    d->shared = store_device_gen_shared(st);
    if (!d->shared)
        log_warn("msg=\"devauth: device state read from the database on every request (the "
                 "device-state generations are not shared)\"");
    for (unsigned i = 0; i < STRIPES; i++)
        pthread_mutex_init(&d->locks[i], NULL);
    return d;
}

void
devstate_free(devstate *d)
{
    if (d == NULL)
        return;
    for (unsigned i = 0; i < BUCKETS; i++) {
        struct entry *e = d->buckets[i];
        while (e != NULL) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    for (unsigned i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&d->locks[i]);
    free(d);
}

static unsigned
bucket_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return h % BUCKETS;
}

/* A current entry's state: STORE_OK or STORE_NOTFOUND, or 1 when there is none. */
static int
lookup(devstate *d, unsigned b, const char *id, uint64_t now_ns, struct devstate_dev *out)
{
    int rc = 1;
    pthread_mutex_t *lock = &d->locks[b % STRIPES];
    pthread_mutex_lock(lock);
    for (const struct entry *e = d->buckets[b]; e != NULL; e = e->next) {
        if (strcmp(e->id, id) != 0)
            continue;
        if (e->gen == store_device_gen(d->st, id) && now_ns - e->loaded_ns < TTL_NS) {
            *out = e->dev;
            rc = e->found ? STORE_OK : STORE_NOTFOUND;
        }
        break;
    }
    pthread_mutex_unlock(lock);
    return rc;
}

/* Caches what a load that began at generation gen found. The newest store wins even when an older
 * load finishes later: its generation is then older than the current one, so it is never used. */
static void
put(devstate *d, unsigned b, const char *id, uint64_t gen, uint64_t now_ns, int found,
    const struct devstate_dev *dev)
{
    pthread_mutex_t *lock = &d->locks[b % STRIPES];
    pthread_mutex_lock(lock);
    struct entry *e = d->buckets[b];
    while (e != NULL && strcmp(e->id, id) != 0)
        e = e->next;
    if (e == NULL && atomic_load(&d->entries) >= DEVSTATE_MAX_ENTRIES)
        e = d->buckets[b]; /* full: take over the bucket's first entry (if any) */
    if (e == NULL && (e = calloc(1, sizeof(*e))) != NULL) {
        atomic_fetch_add(&d->entries, 1);
        e->next = d->buckets[b];
        d->buckets[b] = e;
    }
    if (e != NULL) {
        memcpy(e->id, id, sizeof(e->id));
        e->found = found;
        e->dev = *dev;
        e->gen = gen;
        e->loaded_ns = now_ns;
    }
    pthread_mutex_unlock(lock);
}

int
devstate_get(devstate *d, const char *device_id, struct devstate_dev *out)
{
    struct store_device_auth a;
    memset(out, 0, sizeof(*out));
    if (strlen(device_id) != 64) /* also bounds the copy into an entry */
        return STORE_INVALID;
    unsigned b = bucket_of(device_id);
    uint64_t now_ns = util_mono_ns();
    if (d->shared) {
        int hit = lookup(d, b, device_id, now_ns, out);
        if (hit != 1)
            return hit;
    }
    /* The generation before the read: a change committed after it changes it again. */
    uint64_t gen = store_device_gen(d->st, device_id);
    int rc = store_device_auth(d->st, device_id, &a);
    if (rc == STORE_OK) {
        out->tenant_id = a.tenant_id;
        out->group_id = a.group_id;
        out->product_id = a.product_id;
        out->blocked = a.blocked;
        out->claimed_at = a.claimed_at;
    }
    if (d->shared && (rc == STORE_OK || rc == STORE_NOTFOUND))
        put(d, b, device_id, gen, now_ns, rc == STORE_OK, out);
    return rc;
}
