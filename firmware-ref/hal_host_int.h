/* hal_host_int: the host port's internals shared by hal_host.c and hal_host_slots.c (private to
 * the port: nothing else includes this). */
#ifndef ADEV_HAL_HOST_INT_H
#define ADEV_HAL_HOST_INT_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file of at most max bytes (malloc'd, NUL-terminated copy, owned by the caller).
 * Returns 0, -1, -2 (missing) or -3 (too large). */
int adev_host_read_file(const char *path, size_t max, uint8_t **data, size_t *len);
/* mkdir 0700, or an existing directory. 0 or -1. */
int adev_host_make_dir(const char *path);
/* Removes ".<name>.tmp.*" files of dir: writes interrupted by a crash. */
void adev_host_remove_stale_temps(const char *dir);
/* Calls the test hook of adev_host_set_write_hook, if any, before a change of path (data NULL:
 * a removal). */
void adev_host_hook(const char *path, const void *data, size_t len);

#endif
