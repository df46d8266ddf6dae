/* The one way the store's unit tests remove a test database: the file, its write-ahead log and
 * shared-memory files, the store's device-state generations, and the temporary directory that held
 * them. */
#ifndef AEGIS_TEST_DB_FILES_H
#define AEGIS_TEST_DB_FILES_H

#include <stdio.h>
#include <unistd.h>

static inline void
test_rm_db(const char *path, const char *dir)
{
    char p[4096];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-devgen", path);
    unlink(p);
    rmdir(dir);
}

#endif
