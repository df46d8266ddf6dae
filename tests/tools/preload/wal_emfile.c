/* wal_emfile.so: fault injection for the integration tests, loaded into aegisd with LD_PRELOAD
 * (test_lifecycle.py). While the environment has WAL_EMFILE=1, a read-only open(2) of a path that
 * ends in "-wal" fails with EMFILE, as it would for a daemon started with too few free file
 * descriptors: that is how the telemetry writer opens the write-ahead log to flush it, while
 * SQLite's own opens (read-write) and aegisd's O_PATH handle for its Landlock rule
 * (server/isolate.c) go through. Says so on stderr the first time. Built without sanitizers
 * (Makefile, PRELOAD_LIBS). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef int (*open_fn)(const char *, int, ...);

static atomic_int said;

static int
refused(const char *path, int flags)
{
    const char *on = getenv("WAL_EMFILE");
    size_t n = path != NULL ? strlen(path) : 0;
    if (on == NULL || strcmp(on, "1") != 0 || (flags & O_ACCMODE) != O_RDONLY ||
        (flags & O_PATH) != 0 || n < 4 || strcmp(path + n - 4, "-wal") != 0)
        return 0;
    if (atomic_exchange(&said, 1) == 0)
        fprintf(stderr, "wal_emfile: refusing %s with EMFILE\n", path);
    errno = EMFILE;
    return 1;
}

static int
pass(const char *name, const char *path, int flags, va_list ap)
{
    open_fn real = (open_fn)dlsym(RTLD_NEXT, name);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);

int
open(const char *path, int flags, ...)
{
    va_list ap;
    if (refused(path, flags))
        return -1;
    va_start(ap, flags);
    int fd = pass("open", path, flags, ap);
    va_end(ap);
    return fd;
}

int
open64(const char *path, int flags, ...)
{
    va_list ap;
    if (refused(path, flags))
        return -1;
    va_start(ap, flags);
    int fd = pass("open64", path, flags, ap);
    va_end(ap);
    return fd;
}
