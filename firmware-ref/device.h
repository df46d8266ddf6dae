/* device: the reference device's attestation client, an asynchronous state machine over the HAL
 * (docs/protocol.md sections 3 and 4).
 *
 *   adev_device_attest:  boot (measure) -> POST /v1/device/attest/challenge -> fresh operational
 *                        key + CSR, evidence signed by the identity key -> POST /v1/device/attest
 *                        -> store the key, certificate, chain and trust bundle -> (whoami) ->
 *                        (arm the renewal timer)
 *   adev_device_whoami:  GET /v1/device/whoami over mutual TLS with the stored certificate
 *   adev_device_upload:  POST /v1/device/telemetry over mutual TLS: the failure-report queue
 *                        (crash.h) in batches, oldest first, until it is empty
 *                        (docs/telemetry.md)
 *
 * Failures that may pass on a later try (429 and 503, honouring Retry-After; timeouts, refused
 * connections, other network errors) are retried with exponential backoff and jitter, up to
 * max_attempts requests per operation; an attestation retry starts again from a fresh challenge.
 * TLS failures, a wrong clock and refusals are final for the operation.
 *
 * Uploads delete a report from the queue only when the service acknowledged it ("stored" or
 * "duplicate"; "rejected" reports are deleted and counted). A failed request (timeouts, refused
 * connections, 429, 5xx) is retried after an exponential backoff with full jitter (uniform in
 * [0, min(max, base * 2^n)], base 1 s and max 5 min by default), or after Retry-After plus up to
 * half of it again when the service sends one; upload_max_attempts failures in a row end the
 * operation (the queue is kept for the next one). A 413 halves the batch.
 *
 * Every operation ends with exactly one report to the callback, always from the event loop (never
 * from inside adev_device_attest/whoami). The callback may start the next operation or free the
 * device.
 *
 * Device storage used: the boot manifest and images (boot.h), and the credential: one secret blob
 * "credential.json" written atomically, so that the operational key and its certificate can never
 * disagree after a crash, and one write (one fsync) per certificate:
 *   {"version": 1, "key": "<PEM operational private key>", "certificate": "<PEM leaf>",
 *    "chain": "<PEM leaf, issuing CA>", "trust_bundle": "<PEM>", "not_before": <unix s>,
 *    "not_after": <unix s>, "renew_at": <unix s>} */
#ifndef ADEV_DEVICE_H
#define ADEV_DEVICE_H

#include "adev_hal.h"
#include "boot.h"
#include "crash.h"

#include <stdint.h>

#define ADEV_BLOB_CREDENTIAL "credential.json"

/* A stored credential; every string malloc'd and NUL-terminated. */
struct adev_credential {
    char *key_pem; /* secret */
    char *cert_pem;
    char *chain_pem;
    char *bundle_pem;
    int64_t not_before, not_after, renew_at;
};

/* Loads the credential of st into c and checks that the key belongs to the certificate. Returns
 * 0; -2 when there is none; -1 when it is unreadable. Release with adev_credential_clear. */
int adev_credential_load(adev_storage *st, struct adev_credential *c);
/* Wipes the key and frees every field (c itself is the caller's). */
void adev_credential_clear(struct adev_credential *c);

typedef struct adev_device adev_device;

struct adev_device_config {
    const char *server_url;     /* base URL, e.g. "https://127.0.0.1:8443" (copied) */
    const char *server_ca_pem;  /* trust anchor(s) of the service's TLS certificate (copied) */
    uint32_t timeout_ms;        /* per request; 0: the transport's default */
    unsigned max_attempts;      /* requests per operation, retries included; 0: 5 */
    uint32_t backoff_base_ms;   /* first retry delay without Retry-After; 0: 500 */
    uint32_t backoff_max_ms;    /* 0: 30000 */
    uint32_t retry_after_max_s; /* longest Retry-After honoured; 0: 300 */
    int whoami_after_attest;    /* call whoami after each successful attestation */
    int auto_renew;             /* arm a timer for the renewal point after each pass */
    struct adev_boot_opts boot;
    /* Test fault: after a passing attestation, throw the answer away and send the very same
     * evidence again (a replayed, already-used nonce); the second answer is the outcome. */
    int fault_replay;

    /* Failure reporting: the queue adev_device_upload sends (borrowed; NULL: none). */
    adev_crashq *crashq;
    int upload_after_attest;         /* upload after each passing attestation (after its whoami
                                        when chained) when the queue holds reports */
    unsigned upload_batch;           /* reports per request; 0: 10 (at most 100) */
    unsigned upload_max_attempts;    /* failed requests in a row that end an upload; 0: 8 */
    uint32_t upload_backoff_base_ms; /* 0: 1000 */
    uint32_t upload_backoff_max_ms;  /* 0: 300000 */
    /* Test fault: called when an upload's 200 answer arrives, with the callback's arg; when it
     * returns nonzero the answer is thrown away unapplied (power lost after the request went out)
     * and the upload ends with ADEV_FAILED "power_loss". */
    int (*fault_lose_ack)(adev_device *d, void *arg);

    /* Updates (docs/update.md; device_update.c): on when the HAL has slots and hardware is set.
     * The director's answers are checked against the device's own identity: its device id, the
     * tenant id of its certificate's SAN URI, hardware and product_id. */
    const char *hardware;           /* the device's hardware class (copied), or NULL */
    int64_t product_id;             /* the product it was provisioned as */
    const char *image_root_json;    /* the trusted 1.root.json (or later) of the tenant's image
                                       repository, used when none is stored yet (copied) */
    const char *director_root_json; /* the same for the director repository (copied) */
    unsigned update_tries; /* trial boots of a new slot before the bootloader gives up; 0: 2 */
    uint64_t update_backoff_base_ms; /* retry backoff after a failed attempt; 0: 300000 (5 min) */
    uint64_t update_backoff_max_ms;  /* 0: 86400000 (24 h) */
    size_t download_chunk_max;       /* test fault: a download request asks for at most this many
                                        bytes (Range), so downloads take several requests; 0: all */
    /* Test fault: called at each named point of an update (docs/update.md "power loss"):
     * "download" (after each received piece is stored), "downloaded", "staged", "armed",
     * "committing" (before the commit's or rejection's control-block write), "committed" (after
     * it and the counters),
     * "reported"; a nonzero return means the power is lost there: the operation stops at once
     * (nothing more is written; no report follows) and the caller drops the device. */
    int (*fault_point)(adev_device *d, const char *point, void *arg);
};

enum adev_op {
    ADEV_OP_ATTEST = 1,
    ADEV_OP_WHOAMI = 2,
    ADEV_OP_UPLOAD = 3,
    ADEV_OP_UPDATE = 4,  /* adev_device_update: one update check */
    ADEV_OP_CONFIRM = 5, /* adev_device_update_commit / _reject: end a trial boot */
};

enum adev_outcome {
    ADEV_PASS = 0,     /* reason "pass" (attest) or "ok" (whoami; upload: the queue is empty) */
    ADEV_REJECTED = 1, /* the service refused: reason is its "reason" or "error" code */
    ADEV_FAILED = 2,   /* the device could not complete it: a client-side reason (tls_error,
                          clock_skew, timeout, connect_error, boot_failed, bad_response, ...) */
};

struct adev_report {
    enum adev_op op;
    int renewal; /* an attestation while holding a certificate */
    enum adev_outcome outcome;
    const char *reason; /* see enum adev_outcome; valid during the callback */
    const char *detail; /* the service's message or the transport's error text, or "" */
    long http_status;   /* status of the last answer, 0 if none */
    unsigned attempts;  /* requests made for this operation */
    double latency_ms;  /* start of the operation to this report, retries included */
    int64_t not_before; /* of the new certificate (attest pass), else 0 */
    int64_t not_after;
    int64_t renew_at;     /* the chosen renewal point (attest pass), else 0 */
    enum adev_op next_op; /* the operation the device chained after this one (its report
                             follows), or 0 */
    /* upload: what the service acknowledged during this operation */
    unsigned batches; /* answers applied */
    unsigned stored, duplicates, rejected;
    unsigned crashes_acked; /* crash reports among stored and duplicates */
    size_t remaining;       /* reports left in the queue */
    /* update and confirm: reason is "up_to_date" (nothing to install), "installed" (reboot to
     * try it: reboot == 1), "committed", "rolled_back", or a refusal code of docs/update.md 3
     * ("timestamp_expired", "not_in_repository", "rollback", "hash_mismatch", "too_large", ...:
     * ADEV_REJECTED) or a client-side failure (ADEV_FAILED) */
    int reboot;
    int64_t deployment_id;       /* of the director answer acted on, or 0 */
    char update_version[32 + 1]; /* the version of the (first) target installed, or "" */
    unsigned status_sent;        /* status reports the service answered during the operation */
    size_t status_queued;        /* status reports still queued */
};

typedef void (*adev_report_cb)(adev_device *dev, const struct adev_report *r, void *arg);

/* A device over hal (borrowed: every part must outlive the device). Reads the identity public
 * key. NULL on failure. */
adev_device *adev_device_new(const struct adev_hal *hal, const struct adev_device_config *cfg,
                             adev_report_cb cb, void *arg);
/* The device ID (64 lower-case hex characters). */
const char *adev_device_id_hex(const adev_device *d);
/* Starts an attestation (a renewal when a certificate is held). 0, or -1 when an operation is
 * already running (no report then). */
int adev_device_attest(adev_device *d);
/* Starts a whoami call with the stored certificate. 0, or -1 when busy. */
int adev_device_whoami(adev_device *d);
/* Starts uploading the failure-report queue (cfg.crashq) with the stored certificate; reports
 * ADEV_PASS "ok" once the queue is empty (at once when it was). 0, or -1 when busy or without a
 * queue. */
int adev_device_upload(adev_device *d);
/* One update check (docs/update.md 3-6; needs hal->slots and cfg.hardware): sends the queued
 * status reports, then asks the director (If-None-Match with the last ETag), verifies the image
 * repository's TUF chain and the director's answer, and for the targets both agree on that the
 * device does not run: downloads each (resuming with Range), checks length and SHA-256, stages
 * them into the inactive slot and arms it for a trial boot; reports "installed" with reboot = 1.
 * Refused while the running boot is a trial (commit or reject it first). 0, or -1 when busy. */
int adev_device_update(adev_device *d);
/* Ends a trial boot after its health period: commits it (the attestation of this boot must have
 * passed; else it rejects with "attestation_<reason>"), raises the security-version counters and
 * reports "committed". 0, or -1 when busy or not on trial. */
int adev_device_update_commit(adev_device *d);
/* Ends a trial boot without a commit (a failed health check): the next boot is the old slot;
 * reports "rolled_back" with reason (1-63 printable ASCII). 0, or -1 when busy or not on trial. */
int adev_device_update_reject(adev_device *d, const char *reason);
/* 1 when the last attestation refusal carried a recovery grant (docs/update.md 8): the next
 * adev_device_update then fetches through the recovery routes with its bearer token and installs
 * what its director answer names (the grant is spent by an install). */
int adev_device_has_recovery(const adev_device *d);
/* A poll delay: period_ms +-20 %, uniformly (so a fleet's checks spread out). */
uint64_t adev_update_poll_ms(uint64_t period_ms);
/* The measurements of the last boot the device ran (n == 0 before any). */
const struct adev_boot_log *adev_device_boot_log(const adev_device *d);
/* 1 when the device holds a credential (in storage). */
int adev_device_has_certificate(adev_device *d);
/* Cancels what is in flight (no report) and frees the device. Accepts NULL. */
void adev_device_free(adev_device *d);

/* A uniformly random renewal point in [not_before + 50 % of the lifetime, not_before + 80 %],
 * lifetime = not_after - not_before, drawn with adev_random (no modulo bias). */
int adev_renew_point(int64_t not_before, int64_t not_after, int64_t *at);

/* The delay in ms before retry number retry (0 for the first) of an upload: with a Retry-After of
 * s > 0 seconds (at most retry_after_max_s), uniform in [s, 1.5 s]; else ("full jitter") uniform
 * in [0, min(max_ms, base_ms * 2^retry)]. Drawn with adev_random, without modulo bias. */
uint64_t adev_upload_delay_ms(uint32_t base_ms, uint32_t max_ms, unsigned retry, long retry_after_s,
                              uint32_t retry_after_max_s);

#endif
