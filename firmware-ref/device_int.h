/* device_int: the device's internals, shared by device.c (operations, attestation, whoami,
 * lifetime), device_upload.c (telemetry uploads) and device_cred.c (the stored credential).
 * Private to firmware-ref/device*. */
#ifndef ADEV_DEVICE_INT_H
#define ADEV_DEVICE_INT_H

#include "device.h"
#include "evidence.h"

#include <stddef.h>
#include <stdint.h>

#define REASON_MAX 64
#define DETAIL_MAX 256

struct adev_device {
    struct adev_hal hal;
    struct adev_device_config cfg; /* strings point to url and ca below */
    char *url;
    char *ca;
    adev_report_cb cb;
    void *arg;
    uint8_t id[32];
    char id_hex[PROTO_HASH_HEX + 1];

    /* the operation in progress */
    int busy;
    enum adev_op op;
    int renewal;
    int replayed;
    unsigned attempts; /* requests made */
    unsigned retries;  /* retries scheduled (the backoff exponent) */
    uint64_t t0_us;
    adev_http_call *call;
    adev_timer *step_timer;             /* start of an operation, or a retry delay */
    void (*step)(struct adev_device *); /* what step_timer runs */
    adev_timer *renew_timer;

    /* attestation state */
    struct adev_boot_log boot;
    adev_opkey *op_key;
    char *evidence;

    /* the credential whoami and uploads use (loaded from storage) */
    struct adev_credential cred;
    int have_cred;

    /* upload state */
    int upload_next;   /* chain an upload after the whoami that follows an attestation */
    size_t batch_size; /* reports per request (halved by a 413) */
    unsigned fails;    /* failed upload requests in a row */
    char *upload_body;
    struct adev_report up; /* acknowledgements counted so far */

    /* updates (device_update*.c) */
    int attested;                    /* an attestation passed since this device object was made (on
                                        this boot, with this boot's measurements) */
    struct upd_ctx *upd;             /* the update operation in progress, or NULL */
    char rec_token[65];              /* a recovery grant from an attestation refusal ("" none) */
    char *rec_director;              /* its director answer (JSON text), or NULL */
    char trial_reason[64];           /* adev_device_update_reject's reason */
    char attest_refusal[REASON_MAX]; /* the last attestation's refusal code on this boot, or "" */
    char *hw, *img_root, *dir_root;  /* copies of cfg.hardware, image_ and director_root_json */

    char reason[REASON_MAX];
    char detail[DETAIL_MAX];
};

/* Schedules again after a backoff when the failed request may pass and attempts remain: 1, else 0
 * (nothing done; d->detail has the failure). */
int device_retry_later(adev_device *d, const struct adev_http_response *resp,
                       void (*again)(adev_device *));
/* Retries a failed request (again) when the failure may pass and attempts remain, else ends the
 * operation with the failure (device.c). */
void device_retry_or_fail(adev_device *d, const struct adev_http_response *resp,
                          void (*again)(adev_device *));
/* Keeps the recovery grant of an attestation refusal's body (docs/update.md 8), if any. */
void device_take_recovery(adev_device *d, const struct adev_http_response *resp);
/* Frees the update operation's state (accepts none). */
void device_update_free(adev_device *d);

/* d->detail gets s, printable ASCII only (it ends up in logs and summaries). */
void device_set_detail(adev_device *d, const char *s);
/* The service's code of a refusal into d->reason ("reason", else "error", else "http_<status>");
 * its "message" into d->detail. Returns d->reason. */
const char *device_refusal_code(adev_device *d, const struct adev_http_response *resp);
/* Ends the operation with one report (extra: counts to report, may be NULL). The callback runs
 * last and may free the device. */
void device_finish(adev_device *d, enum adev_outcome outcome, const char *reason, long status,
                   const struct adev_report *extra);
/* Starts operation op (the device is idle); start runs on the next loop turn. 0 or -1. */
int device_begin_op(adev_device *d, enum adev_op op, void (*start)(adev_device *));
/* Runs step after ms. 0 or -1. */
int device_schedule(adev_device *d, uint64_t ms, void (*step)(adev_device *));
/* The service's URL of path into out. 0, or -1 when it does not fit. */
int device_url_of(const adev_device *d, const char *path, char *out, size_t len);
/* Sends a request with the stored credential as client certificate (d->have_cred); cb gets the
 * answer. body: JSON (borrowed until the answer), or NULL. 0, or -1 when it could not be sent. */
int device_send_mtls(adev_device *d, const char *method, const char *path, const char *body,
                     adev_http_cb cb);
/* The first step of an upload (device_upload.c). */
void device_start_upload(adev_device *d);

/* Loads the stored credential into d->cred. 0 or -1. */
int device_load_credential(adev_device *d);
/* Forgets the credential in memory. */
void device_drop_credential(adev_device *d);
/* Stores the new credential (d->op_key and the certificates): one atomic write of one secret
 * blob. 0 or -1. */
int device_store_credential(adev_device *d, const char *cert, const char *chain, const char *bundle,
                            const struct adev_report *times);

#endif
