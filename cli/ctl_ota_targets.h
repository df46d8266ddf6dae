/* ctl_ota_targets: what aegisctl ota checks before it signs a targets proposal (docs/cli.md "ota"):
 * the proposal's shape, computed here and not taken from the server, and the changes against the
 * current targets it verified, also computed here. */
#ifndef AEGIS_CTL_OTA_TARGETS_H
#define AEGIS_CTL_OTA_TARGETS_H

#include "ctl.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

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
/* Refuses (-1, error printed) an added target of next whose SHA-256 another target of next has
 * too: one image is one target, so the same bytes under a second component are not an image the
 * manufacturer uploaded. 0 otherwise. */
int ctl_ota_check_added(const struct ctl_ota_diff *d, const json_t *next);
/* Prints the changes to f: "+" added, "-" removed, "~" changed (its new values, then "was" the
 * old), each with component, kind, version, svn, hardware, SHA-256 and length, one line each,
 * never truncated. */
void ctl_ota_diff_print(FILE *f, const struct ctl_ota_diff *d, const json_t *cur,
                        const json_t *next, int64_t version);
/* --expect: comma-separated entries SHA256 or SHA256:COMPONENT:VERSION:SVN[:KIND[:HARDWARE]]
 * (SHA-256 in either case; in VERSION, %XX stands for a byte, so ',' ':' '%' are %2C %3A %25),
 * each field under the image rules. Returns a new object (caller frees) SHA-256 (lower case) ->
 * the fields the entry names ({} for a bare SHA-256), or NULL with a usage error printed. */
json_t *ctl_ota_expect_parse(struct ctl *c, const char *expect);
/* Checks the diff against a parsed --expect: the added targets are exactly the entries' SHA-256s,
 * each with the fields its entry names, and nothing is changed. Returns 0, or -1 with the error
 * printed. */
int ctl_ota_diff_expect(const struct ctl_ota_diff *d, const json_t *next, const json_t *want);

#endif
