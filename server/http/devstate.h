/* devstate: the registry state of devices (store_device_auth: tenant, group, product, blocked) kept
 * in memory for device authentication, so that a request of a known device reads no database.
 *
 * An entry is filled on first use and is current while the device's generation
 * (store_device_gen) is the one read just before the entry was loaded: every store function that
 * changes a device's state changes its generation after its commit, in this process or any other
 * on the database (the generations are a file mapped shared beside it), so a block made through
 * any daemon's API takes effect on the next request that starts after the API answered. A change
 * made around the store (a hand-edited database) is seen after at most DEVSTATE_TTL_S seconds.
 * When the store's generations are not shared with other processes (store_device_gen_shared), the
 * cache is not used: every call reads the database, as before the cache.
 *
 * Unknown devices are cached too (an import changes their generation). Memory: one entry of about
 * 150 bytes per device seen (1.5 MiB for 10,000 devices), at most DEVSTATE_MAX_ENTRIES (then an
 * entry of the same hash bucket is replaced), plus a 512 KiB bucket array. Thread-safe. */
#ifndef AEGIS_DEVSTATE_H
#define AEGIS_DEVSTATE_H

#include "store.h"

#include <stdint.h>

#define DEVSTATE_TTL_S 60
#define DEVSTATE_MAX_ENTRIES (1u << 20)

struct devstate_dev {
    int64_t tenant_id; /* 0 while unclaimed */
    int64_t group_id;
    int64_t product_id;
    int blocked;
    int64_t claimed_at; /* when the current claim began (unix s); 0 while unclaimed */
};

typedef struct devstate devstate;

/* NULL when out of memory. st must outlive it. Free with devstate_free (accepts NULL). */
devstate *devstate_new(store *st);
void devstate_free(devstate *d);

/* The device's state now: STORE_OK with *out, STORE_NOTFOUND for a device the registry does not
 * know, STORE_INVALID for a malformed id, STORE_ERR when the database could not be read. */
int devstate_get(devstate *d, const char *device_id, struct devstate_dev *out);

#endif
