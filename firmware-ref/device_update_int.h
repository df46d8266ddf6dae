/* device_update_int: the update operation's state, shared by device_update.c (the check: status
 * queue, director, TUF chains, the plan) and device_update_dl.c (download, install, commit and
 * rollback). Private to firmware-ref/device_update*. */
#ifndef ADEV_DEVICE_UPDATE_INT_H
#define ADEV_DEVICE_UPDATE_INT_H

#include "device_int.h"
#include "ota_client.h"
#include "upd_state.h"

#include <jansson.h>

struct upd_ctx {
    struct upd_state st;
    ota_client *img, *dir;
    char *answer; /* the director answer's bytes as received */
    size_t answer_len;
    char etag[UPD_ETAG_MAX + 1]; /* of that answer */
    json_t *raw;             /* the answer parsed, unverified: what refusals are reported against */
    int64_t tenant;          /* of the device's certificate; 0 when it has none (recovery) */
    int recovery;            /* the check runs on a recovery grant (no client certificate) */
    const char *repo_prefix; /* the root loop's path prefix */
    void (*after_roots)(adev_device *);
    void (*after_flush)(adev_device *);
    int meta_step; /* image repository: 0 timestamp, 1 snapshot, 2 targets, 3 done */
    /* download */
    size_t cur;
    uint64_t have, asked, got;
    int over;      /* the body grew past the hard limit */
    int progress;  /* resumes in a row */
    int lost;      /* the test fault: the power went during a download */
    int restarted; /* the current image's download was started over once */
    int had_416;   /* the last answer was 416 (the stored bytes should be the whole image) */
    uint8_t *data[UPD_IMAGES_MAX];
    size_t len[UPD_IMAGES_MAX];
    struct adev_report rep;
};

/* The operation's state: the context, the stored state, the credential (not needed on a recovery
 * grant). NULL when the operation ended (reported). */
struct upd_ctx *upd_begin(adev_device *d);
/* Ends the update operation with one report (frees d->upd first). */
void upd_finish(adev_device *d, enum adev_outcome outcome, const char *reason, long status);
/* A refusal of docs/update.md 3 for the targets of the answer as received (the images not yet
 * run): a "failed" report with reason for each, a backoff, then the flush and the report. */
void upd_refuse(adev_device *d, const char *reason, const char *detail);
/* A failed request: retried after a backoff when it may pass, else the end of the operation. */
void upd_retry(adev_device *d, const struct adev_http_response *resp, void (*again)(adev_device *));
/* Sends the status queue, oldest first, then runs d->upd->after_flush. */
void upd_flush(adev_device *d);
/* Saves the agent's state; a failure ends the operation ("storage_error"). 0 or -1. */
int upd_save(adev_device *d);
/* Queues a report of state for every image of the attempt (reason may be NULL). 0 or -1. */
int upd_report_all(adev_device *d, const char *state, const char *reason);
/* Flushes the status queue, then ends the operation as refused with reason. */
void upd_end_refused(adev_device *d, const char *reason, const char *detail);
/* The power is gone: the operation stops with no report (the caller drops the device). */
void upd_drop(adev_device *d);
/* The test fault hook: 1 when the power is "lost" at point (the operation is then over, with no
 * report: the caller drops the device). */
int upd_power_lost(adev_device *d, const char *point);
/* A GET with the device's credential (or the recovery grant) and extra headers (NULL-terminated,
 * at most 4), a body cap, and on_body streaming when sink is set. 0 or -1. */
int upd_get(adev_device *d, const char *path, size_t max, const char *const *headers,
            int (*sink)(void *, const void *, size_t), adev_http_cb cb);

/* device_update_dl.c: the plan of what to install from the verified answer (docs/update.md 3,
 * steps 3 and 4, and "What a device does with an answer"), then the attempt. */
void upd_plan(adev_device *d);
/* Starts (or resumes) the attempt's downloads. */
void upd_download(adev_device *d);
/* Removes the download area of the attempt's images. */
void upd_drop_downloads(adev_device *d);
/* A request was answered: the retry budget of the operation starts again (max_attempts counts
 * failures in a row, not the check's many requests). */
void upd_progress(adev_device *d);
/* device_update_ab.c: the verified images into the inactive slot, and the switch. */
void upd_install(adev_device *d);
/* Brings the attempt's recorded state in line with the boot control block after a reboot or a
 * power loss (queues the reports of what happened). 0 or -1. */
int upd_reconcile(adev_device *d);

#endif
