/* upd_state: what the update agent (device_update*.c) keeps in device storage between boots, and
 * its queue of status reports (docs/update.md 6 and "The device's state machine").
 *
 *   update.json         the attempt in progress (its images, attempt ids, state and slot), the
 *                       director's last ETag, the retry backoff per image, and the attempts
 *                       counted per deployment; replaced atomically on every change
 *   update-status.json  the status reports not yet answered by the service, oldest first, as
 *                       their request bodies; replaced atomically on every push and pop, so a
 *                       report is lost only once the service answered it
 *   tuf-image.json, tuf-director.json   the trusted TUF state (ota_client_save)
 *
 * Pure storage and JSON: no network. Functions return 0 or -1 unless said. */
#ifndef ADEV_UPD_STATE_H
#define ADEV_UPD_STATE_H

#include "adev_hal.h"

#include <stddef.h>
#include <stdint.h>

#define ADEV_BLOB_UPDATE "update.json"
#define ADEV_BLOB_UPDATE_STATUS "update-status.json"
#define ADEV_BLOB_TUF_IMAGE "tuf-image.json"
#define ADEV_BLOB_TUF_DIRECTOR "tuf-director.json"

#define UPD_IMAGES_MAX 16   /* targets of one answer (a deployment's limit) */
#define UPD_BACKOFF_MAX 16  /* images with a retry backoff remembered */
#define UPD_OUTBOX_MAX 128  /* queued status reports; the oldest is dropped beyond */
#define UPD_ATTEMPTS_MAX 32 /* attempts per deployment (docs/update.md 4) */
#define UPD_ETAG_MAX 96
#define UPD_ID_MAX 64
#define UPD_REASON_MAX 200

enum upd_astate {
    UPD_NONE = 0,
    UPD_DOWNLOADING = 1, /* fetching into the download area; nothing in the inactive slot */
    UPD_INSTALLED = 2,   /* staged and armed: the next boot is a trial boot */
    UPD_BOOTED = 3,      /* running on trial */
};

struct upd_image {
    char sha[65];
    char component[65];
    char kind[8];
    char version[33];
    uint32_t svn;
    uint64_t length;
    char attempt_id[UPD_ID_MAX + 1];
};

struct upd_attempt {
    enum upd_astate state;
    int64_t deployment_id;
    int slot; /* the slot it installs into (the inactive one when it started) */
    size_t n;
    struct upd_image img[UPD_IMAGES_MAX];
};

struct upd_backoff {
    char sha[65];
    unsigned fails;
    int64_t next_at_ms; /* wall clock (device time) in ms */
};

struct upd_state {
    char etag[UPD_ETAG_MAX + 1];
    struct upd_attempt at;
    struct upd_backoff bo[UPD_BACKOFF_MAX];
    size_t nbo;
    int64_t counted_deployment; /* the deployment whose attempts are counted */
    unsigned counted_attempts;
};

/* Loads the state (a missing blob is the empty state). -1 on a malformed or unreadable one. */
int upd_state_load(adev_storage *st, struct upd_state *s);
int upd_state_save(adev_storage *st, const struct upd_state *s);

/* The backoff entry of sha (NULL when none). */
struct upd_backoff *upd_backoff_find(struct upd_state *s, const char *sha);
/* Counts a failure of sha at now_ms: the next try not before now + min(max, base * 2^(fails-1))
 * with +-20 % jitter. A full table forgets its oldest entry. */
void upd_backoff_fail(struct upd_state *s, const char *sha, int64_t now_ms, uint64_t base_ms,
                      uint64_t max_ms);

/* The name of a state ("downloading", "installed", "booted"). */
const char *upd_astate_name(enum upd_astate a);

/* Appends a status report (docs/update.md 6): reason may be NULL (required for "failed" and
 * "rolled_back"). A full queue drops its oldest report. */
int upd_outbox_push(adev_storage *st, const char *attempt_id, int64_t deployment_id,
                    const char *sha, const char *state, const char *reason);
/* The oldest report's request body (malloc'd, caller frees) into *body, or *body = NULL when the
 * queue is empty; *count gets the queue's length. */
int upd_outbox_peek(adev_storage *st, char **body, size_t *count);
/* Removes the oldest report. */
int upd_outbox_pop(adev_storage *st);

#endif
