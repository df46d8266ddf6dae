#include "ctl_store.h"

#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
ctl_make_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        ctl_err("path too long: %.64s...", path);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    if (util_mkdirs(dir, 0700) != 0) {
        ctl_err("cannot create directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int
ctl_store_open(struct ctl *c, int create, store **out, int *applied)
{
    char err[512];
    store *st = NULL;
    int n = 0;
    *out = NULL;
    if (ctl_config(c) != 0)
        return CTL_EXIT_LOCAL;
    if (!create && access(c->cfg.database, F_OK) != 0) {
        ctl_err("no database at %s (aegisctl migrate or aegisctl tenant create makes one)",
                c->cfg.database);
        return CTL_EXIT_LOCAL;
    }
    if (create && ctl_make_parent_dir(c->cfg.database) != 0)
        return CTL_EXIT_LOCAL;
    err[0] = '\0';
    if (store_open(c->cfg.database, 1, &st, err, sizeof(err)) != STORE_OK) {
        ctl_err("cannot open database %s: %s", c->cfg.database, err);
        return CTL_EXIT_LOCAL;
    }
    err[0] = '\0';
    if (store_migrate(st, &n, err, sizeof(err)) != STORE_OK) {
        ctl_err("%s: %s", c->cfg.database, err[0] ? err : "migration failed");
        store_close(st);
        return CTL_EXIT_LOCAL;
    }
    if (applied != NULL)
        *applied = n;
    *out = st;
    return CTL_EXIT_OK;
}
