/* store_devgen: the device-state generations (store.h store_device_gen).
 *
 * DEVGEN_SLOTS 64-bit counters, one per hash bucket of device ids, live in the file
 * <database>-devgen mapped shared by every process that opens the database (aegisd, another aegisd
 * on the same database, aegisctl), so a change committed by any of them is seen by all at their
 * next read of the counter: a load from shared memory, no system call. Processes sharing a database
 * already share a host: SQLite's write-ahead log needs its -shm file mapped the same way.
 *
 * When the file cannot be made or mapped (a read-only directory, another user's file), the
 * counters are private to the process and store_device_gen_shared says 0, so callers cannot take
 * them for news of other processes' changes. */
#include "store.h"
#include "store_int.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEVGEN_BYTES (STORE_DEVGEN_SLOTS * sizeof(atomic_uint_least64_t))

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "shared counters need lock-free 64-bit atomics");

static size_t
devgen_slot(const char *device_id)
{
    /* FNV-1a: device ids are SHA-256 digests already, any mix of their bytes spreads them. */
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)device_id; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h % STORE_DEVGEN_SLOTS);
}

/* Maps <path>-devgen, made with the database file's owner and mode; NULL when it cannot be. */
static atomic_uint_least64_t *
devgen_map(const char *path)
{
    char name[PATH_MAX];
    struct stat db, sb;
    void *m = MAP_FAILED;
    int fd = -1;

    if (snprintf(name, sizeof(name), "%s-devgen", path) >= (int)sizeof(name) ||
        stat(path, &db) != 0)
        goto out;
    fd = open(name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, db.st_mode & 0666);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        goto out;
    /* A root aegisctl must not leave a file the daemon's user cannot open. */
    if (geteuid() == 0 && (sb.st_uid != db.st_uid || sb.st_gid != db.st_gid) &&
        fchown(fd, db.st_uid, db.st_gid) != 0)
        goto out;
    /* Growing is safe against a concurrent opener: ftruncate to the same size keeps the bytes. */
    if ((size_t)sb.st_size < DEVGEN_BYTES && ftruncate(fd, (off_t)DEVGEN_BYTES) != 0)
        goto out;
    m = mmap(NULL, DEVGEN_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
out:
    if (m == MAP_FAILED)
        log_warn("msg=\"store: device-state generations not shared with other processes\" "
                 "path=%s error=\"%s\"",
                 path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return m == MAP_FAILED ? NULL : m;
}

int
store__devgen_open(store *s, const char *path)
{
    s->devgen = devgen_map(path);
    s->devgen_shared = s->devgen != NULL;
    if (s->devgen == NULL)
        s->devgen = calloc(STORE_DEVGEN_SLOTS, sizeof(*s->devgen));
    return s->devgen != NULL ? 0 : -1;
}

void
store__devgen_close(store *s)
{
    if (s->devgen == NULL)
        return;
    if (s->devgen_shared)
        munmap((void *)s->devgen, DEVGEN_BYTES);
    else
        free((void *)s->devgen);
    s->devgen = NULL;
}

void
store__device_changed(store *s, const char *device_id)
{
    atomic_fetch_add(&s->devgen[devgen_slot(device_id)], 1);
}

uint64_t
store_device_gen(store *s, const char *device_id)
{
    return atomic_load(&s->devgen[devgen_slot(device_id)]);
}

int
store_device_gen_shared(const store *s)
{
    return s->devgen_shared;
}

uint64_t
store_calls(const store *s)
{
    return atomic_load(&s->calls);
}
