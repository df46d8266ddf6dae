/* ctl_store: the data directory's database for the local commands (aegisctl on the daemon's
 * machine, as the user that owns the data directory). */
#ifndef AEGIS_CTL_STORE_H
#define AEGIS_CTL_STORE_H

#include "ctl.h"
#include "store.h"

/* Creates the directory holding path (mode 0700) if missing. Returns 0 / -1 (error printed). */
int ctl_make_parent_dir(const char *path);

/* Opens the database and migrates it. create: make the database (and its directory) when missing;
 * else a missing database is an error. *applied (may be NULL) gets the number of migrations
 * applied. Returns CTL_EXIT_OK with *out (store_close it), or CTL_EXIT_LOCAL (error printed). */
int ctl_store_open(struct ctl *c, int create, store **out, int *applied);

#endif
