/* ctl_ota_targets: what aegisctl ota checks before it signs a targets proposal (docs/cli.md "ota"):
 * the proposal's shape, computed here and not taken from the server, and the changes against the
 * current targets it verified, also computed here. */
#ifndef AEGIS_CTL_OTA_TARGETS_H
#define AEGIS_CTL_OTA_TARGETS_H

#include "ctl.h"

#include <jansson.h>
#include <stdint.h>

/* The proposal's "signed" s must be exactly {_type "targets", spec_version OTA_SPEC_VERSION,
 * version, expires, targets} (ota_check_image_targets) with version == want_version and
 * now < expires <= now + (days + 1) days. Returns 0, or -1 with the error printed. */
int ctl_ota_check_proposal(const json_t *s, int64_t want_version, int64_t now, int64_t days);

/* The changes from the targets map cur (may be NULL: none) to next: new arrays of paths. */
struct ctl_ota_diff {
    json_t *added, *removed, *changed;
};
int ctl_ota_diff_make(const json_t *cur, const json_t *next, struct ctl_ota_diff *d);
void ctl_ota_diff_free(struct ctl_ota_diff *d);
/* 1 when nothing changes. */
int ctl_ota_diff_empty(const struct ctl_ota_diff *d);
/* Prints the changes: "+" added, "-" removed, "~" changed (its new values, then "was" the old),
 * each with component, kind, version, svn, hardware, SHA-256 and length. */
void ctl_ota_diff_print(const struct ctl_ota_diff *d, const json_t *cur, const json_t *next,
                        int64_t version);
/* --expect: the SHA-256s (comma-separated) of exactly the added targets, and no changed one.
 * Returns 0, or -1 with the error printed. */
int ctl_ota_diff_expect(const struct ctl_ota_diff *d, const json_t *next, const char *expect);

#endif
