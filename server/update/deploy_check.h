/* deploy_check: what a deployment may offer, checked before it is created (docs/update.md
 * section 7): only images the manufacturer published, i.e. listed in the newest targets metadata
 * of the tenant's image repository (signed offline). A device installs only what both the director
 * and that repository name (section 3), so an unpublished image would be refused by every device
 * of the group and halt the rollout; refusing it at creation says why, at once. */
#ifndef AEGIS_DEPLOY_CHECK_H
#define AEGIS_DEPLOY_CHECK_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* Whether each of the n images (sha256 hex) is a target `<component>/<sha256>` of the tenant's
 * newest image-repository targets with that SHA-256: 0 all are, 1 one is not (its digest copied to
 * missing, 65 bytes; also when nothing was ever published), -1 the store failed or the stored
 * targets cannot be read (with a reason in err). */
int deploy_check_published(store *st, int64_t tenant_id, const char *const *images, size_t n,
                           char missing[65], char *err, size_t errlen);

#endif
