/* store_tuf: the stored TUF metadata files of the tenants' repositories (docs/update.md sections
 * 2-3): every version of every role, kept as the exact bytes served. Files are added, never
 * changed; a publication adds several files (targets, snapshot, timestamp) in one transaction with
 * its audit row, and fails as a whole with STORE_CONFLICT when one of its versions exists already
 * (another publication won a race). What the files say is checked above (server/update). */
#ifndef AEGIS_STORE_TUF_H
#define AEGIS_STORE_TUF_H

#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The repositories: "image" (manufacturer-signed) and "director". */
#define STORE_TUF_IMAGE "image"
#define STORE_TUF_DIRECTOR "director"
/* Largest file stored (and so served). */
#define STORE_TUF_MAX_BYTES (64 * 1024 * 1024)

/* One metadata file. body is malloc'd by the loaders (store_tuf_file_free), borrowed when given
 * to store_tuf_publish. */
struct store_tuf_file {
    const char *role; /* "root", "targets", "snapshot", "timestamp" */
    int64_t version;  /* >= 1 */
    int64_t expires;  /* unix time */
    char *body;
    size_t len;
};

/* Frees f->body and zeroes f. Accepts a zeroed f. */
void store_tuf_file_free(struct store_tuf_file *f);

/* The file of role at version (version 0: the newest) of the tenant's repo. STORE_OK with *out
 * filled (role points to a static name), STORE_NOTFOUND, STORE_INVALID for an unknown repo or
 * role. */
int store_tuf_get(store *s, int64_t tenant_id, const char *repo, const char *role, int64_t version,
                  struct store_tuf_file *out);

/* What the newest version of a role of the tenant must still be when a publication commits (0:
 * none yet): what the caller verified the new files against. */
struct store_tuf_expect {
    const char *repo, *role;
    int64_t version;
};

/* Adds the n files (1..8) to the tenant's repo in one transaction, with the audit row action
 * (e.g. "ota.targets.publish") whose detail is stolen (NULL: out of memory). Inside the
 * transaction, each of the nexpect (0..8) expectations is checked first. STORE_CONFLICT when one
 * of them does not hold or one of the versions exists (another publication came first),
 * STORE_NOTFOUND when the tenant does not exist. */
int store_tuf_publish(store *s, int64_t tenant_id, const char *repo,
                      const struct store_tuf_file *files, size_t n,
                      const struct store_tuf_expect *expect, size_t nexpect,
                      const struct store_actor *a, const char *action, json_t *detail);

/* The ids of the tenants whose image repository has a timestamp (the online roles to keep
 * fresh): *ids malloc'd (NULL when none), caller frees. */
int store_tuf_tenants(store *s, int64_t **ids, size_t *n);

#endif
