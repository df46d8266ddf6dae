/* ctl_ota_trust: the roots aegisctl ota trusts, kept in the key directory and never taken from the
 * server on its word (docs/cli.md "ota", docs/update.md 2.3). DIR/trusted/image-root.json and
 * DIR/trusted/director-root.json hold the newest root of each repository that aegisctl built or
 * verified; every command first brings them up to the server's newest root through the root
 * chain (ota_verify_root_update), so a server that shows another root, an older one, or one not
 * signed by a threshold of the trusted root keys is refused, and the keys a rotation keeps, the
 * thresholds and the targets keys come from the trusted root only. */
#ifndef AEGIS_CTL_OTA_TRUST_H
#define AEGIS_CTL_OTA_TRUST_H

#include "ctl.h"
#include "ota_verify.h"

#include <jansson.h>

/* Most roots one sync walks (roots published from elsewhere since this directory last synced). */
#define CTL_OTA_MAX_CHAIN 1024

/* A trusted root: its envelope and its parse (both owned: ctl_ota_trusted_free). */
struct ctl_ota_trusted {
    json_t *env;
    ota_root *root;
};
void ctl_ota_trusted_free(struct ctl_ota_trusted *t);
/* The trusted root's "signed" (borrowed). */
const json_t *ctl_ota_trusted_signed(const struct ctl_ota_trusted *t);

/* Saves env as the trusted root of repo ("image" or "director") in dir: DIR/trusted (0700) /
 * <repo>-root.json (0644), written atomically. Returns 0, or -1 with the error printed. */
int ctl_ota_trust_save(const char *dir, const char *repo, const json_t *env);

/* Loads the trusted root of repo in dir and verifies the server's roots from its version up to the
 * server's newest (GET /v1/ota/status, /v1/ota/{repo|director}/N.root.json), saving the newest
 * verified. Refuses (CTL_EXIT_API, with the reason) a server whose newest root is older than the
 * trusted one, whose root of the trusted version is another, or whose next root does not follow
 * the chain; CTL_EXIT_LOCAL without a trusted root in dir. *t filled on CTL_EXIT_OK. */
int ctl_ota_trust_sync(struct ctl *c, const char *dir, const char *repo, struct ctl_ota_trusted *t);

#endif
