/* adev_hal: the hardware abstraction layer of the reference device stack.
 *
 * The attestation client (device.c), measured boot (boot.c) and evidence (evidence.c) reach the
 * platform only through this header. A port supplies:
 *
 *   - key store, storage, clock and randomness: the functions declared below, linked in (the host
 *     port is hal_host.c; its constructors are in hal_host.h);
 *   - transport and timers: objects with an operations table (the host port is transport_uv.c),
 *     because one event loop may serve many devices and tests substitute fakes.
 *
 * Conventions: functions return 0 or a negative value on failure; functions returning a pointer
 * return NULL on failure. Every _free accepts NULL. Nothing here logs secrets.
 */
#ifndef ADEV_HAL_H
#define ADEV_HAL_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------ */
/* Key store: the device's identity key (ECDSA P-256), made at manufacturing inside the key store.
 * The interface can sign and give out the public key; there is deliberately no way to read the
 * private key out. */

typedef struct adev_keystore adev_keystore;

#define ADEV_SPKI_LEN 91 /* DER SubjectPublicKeyInfo of a P-256 key, uncompressed point */
#define ADEV_SIG_MAX 72  /* largest DER ECDSA P-256 signature */

/* The identity public key as DER SubjectPublicKeyInfo into out[ADEV_SPKI_LEN]. */
int adev_keystore_public_der(adev_keystore *ks, uint8_t out[ADEV_SPKI_LEN]);
/* ECDSA P-256 with SHA-256 over msg[0..len), DER-encoded into sig (cap bytes, at least
 * ADEV_SIG_MAX); *sig_len gets the length. */
int adev_keystore_sign(adev_keystore *ks, const uint8_t *msg, size_t len, uint8_t *sig, size_t cap,
                       size_t *sig_len);
void adev_keystore_free(adev_keystore *ks);

/* ------------------------------------------------------------------------------------------ */
/* Storage: named blobs. Names are 1-64 characters of [A-Za-z0-9._-] not starting with '.'. Every
 * write is atomic: after a crash a reader sees the old content or the new, never a mix. */

typedef struct adev_storage adev_storage;

#define ADEV_STORAGE_NAME_MAX 64
#define ADEV_STORAGE_SECRET 1 /* flag: readable by the device only (0600 on the host) */

/* Reads a whole blob of at most max bytes. *data (malloc'd, NUL-terminated after *len bytes) is
 * owned by the caller (free; use adev_storage_free_secret for secrets). Returns 0, -1 on
 * error, -2 when the blob does not exist, -3 when it is larger than max. */
int adev_storage_read(adev_storage *st, const char *name, size_t max, uint8_t **data, size_t *len);
/* Replaces (or creates) a blob atomically; flags: 0 or ADEV_STORAGE_SECRET. */
int adev_storage_write(adev_storage *st, const char *name, const void *data, size_t len, int flags);
/* Removes a blob; removing a missing blob succeeds. */
int adev_storage_remove(adev_storage *st, const char *name);
/* 1 when the blob exists, 0 when not. */
int adev_storage_exists(adev_storage *st, const char *name);
/* Appends len bytes to a blob, creating it when missing (not secret). NOT atomic: after a crash
 * the blob holds its old bytes plus any prefix of the new ones, never other bytes; for partial
 * downloads, which are checked by their digest before use. 0 or -1. */
int adev_storage_append(adev_storage *st, const char *name, const void *data, size_t len);
/* The size of a blob in bytes into *size. 0, -1 on error, -2 when the blob does not exist. */
int adev_storage_size(adev_storage *st, const char *name, uint64_t *size);
/* Wipes and frees a buffer returned by adev_storage_read that held a secret (accepts NULL). */
void adev_storage_free_secret(uint8_t *data, size_t len);
void adev_storage_free(adev_storage *st);

/* ------------------------------------------------------------------------------------------ */
/* Clock: wall time in unix seconds, as the device believes it (a device clock can be wrong). */

typedef struct adev_clock adev_clock;

int64_t adev_clock_now(const adev_clock *c);
/* A monotonic time in microseconds (for latencies and delays; never jumps with the wall clock). */
uint64_t adev_clock_monotonic_us(const adev_clock *c);
void adev_clock_free(adev_clock *c);

/* ------------------------------------------------------------------------------------------ */
/* Randomness: cryptographically strong bytes. */

int adev_random(void *buf, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* Transport: asynchronous HTTPS requests. TLS verification of the server is always on, against
 * ca_pem only (never a system store). The request is copied: the caller may free everything it
 * passed as soon as request() returns. */

enum adev_net_err {
    ADEV_NET_OK = 0,           /* a complete HTTP response arrived (any status) */
    ADEV_NET_TLS = -1,         /* TLS handshake or server certificate verification failed */
    ADEV_NET_CLOCK = -2,       /* the server certificate is not yet valid or expired by the
                                  device's clock (the device's clock is probably wrong) */
    ADEV_NET_TIMEOUT = -3,     /* no complete answer within the timeout */
    ADEV_NET_CONNECT = -4,     /* could not connect */
    ADEV_NET_TOO_LARGE = -5,   /* the response body is over the transport's cap */
    ADEV_NET_CLIENT_CERT = -6, /* the client certificate or key could not be used */
    ADEV_NET_OTHER = -7,       /* any other network or protocol failure */
};

/* A stable reason string for an adev_net_err ("tls_error", "clock_skew", "timeout", ...). */
const char *adev_net_err_reason(int err);

struct adev_http_request {
    const char *method;       /* "GET" or "POST" */
    const char *url;          /* https://... */
    const char *content_type; /* of body, or NULL */
    const void *body;         /* or NULL */
    size_t body_len;
    const char *ca_pem;          /* trust anchors for the server certificate (required) */
    const char *client_cert_pem; /* certificate chain (leaf first) for mutual TLS, or NULL */
    const char *client_key_pem;  /* its private key, PEM; required with client_cert_pem */
    int64_t now;                 /* the device's clock for validity checks; 0: the platform's */
    uint32_t timeout_ms;         /* whole request; 0: the transport's default */
    /* Extra request headers, "Name: value" each (e.g. "If-None-Match: \"x\"", "Range:
     * bytes=5-"), NULL-terminated array, or NULL. At most 8, each under 256 bytes. */
    const char *const *headers;
    /* Largest response body accepted, in bytes; 0: the transport's default (1 MiB). A body that
     * grows past it is cut off at once (endless data costs at most max_body + one network read)
     * and the request fails with ADEV_NET_TOO_LARGE. */
    size_t max_body;
    /* When set, the body is not buffered: each piece is passed to on_body as it arrives (2xx
     * answers only; other statuses are buffered as usual, up to the default cap), and the
     * response's body is then NULL / 0. A nonzero return aborts the request with
     * ADEV_NET_OTHER. Bytes passed before a failure (a timeout, a cut connection) stay passed:
     * that is what a download resumes from. */
    int (*on_body)(void *arg, const void *data, size_t len);
    void *on_body_arg;
};

struct adev_http_response {
    int err;          /* ADEV_NET_OK or a negative enum adev_net_err */
    long status;      /* HTTP status when err == ADEV_NET_OK, else 0 */
    const char *body; /* NUL-terminated; owned by the transport, valid during the callback */
    size_t body_len;
    long retry_after_s;        /* Retry-After in seconds, or -1 when absent */
    const char *etag;          /* the ETag header's value as sent (quotes included), or NULL */
    const char *content_range; /* the Content-Range header's value, or NULL */
    /* bytes received (passed to on_body, or in body), also when err != ADEV_NET_OK */
    uint64_t received;
    const char *detail; /* the transport's error text for logs, "" when none (no secrets) */
};

/* Called exactly once per request that was not cancelled, from the event loop, never from
 * within request(). */
typedef void (*adev_http_cb)(const struct adev_http_response *resp, void *arg);

typedef struct adev_http_call adev_http_call; /* an outstanding request, owned by the transport */
typedef struct adev_transport adev_transport;

struct adev_transport_ops {
    /* Starts a request; returns its handle (valid until its callback runs or it is cancelled),
     * or NULL on failure (the callback is then never called). */
    adev_http_call *(*request)(adev_transport *t, const struct adev_http_request *req,
                               adev_http_cb cb, void *arg);
    /* Cancels an outstanding request: its callback is never called. */
    void (*cancel)(adev_transport *t, adev_http_call *call);
    /* Cancels every outstanding request and frees the transport. */
    void (*free)(adev_transport *t);
};

/* Implementations embed this as their first member. */
struct adev_transport {
    const struct adev_transport_ops *ops;
};

static inline adev_http_call *
adev_transport_request(adev_transport *t, const struct adev_http_request *req, adev_http_cb cb,
                       void *arg)
{
    return t->ops->request(t, req, cb, arg);
}

static inline void
adev_transport_cancel(adev_transport *t, adev_http_call *call)
{
    t->ops->cancel(t, call);
}

static inline void
adev_transport_free(adev_transport *t)
{
    if (t != NULL)
        t->ops->free(t);
}

/* ------------------------------------------------------------------------------------------ */
/* Timers: one-shot, on the platform's event loop. */

typedef struct adev_timer adev_timer; /* owned by the timers object */
typedef struct adev_timers adev_timers;

struct adev_timers_ops {
    /* Calls cb(arg) once after ms milliseconds, from the event loop. The timer is spent when its
     * callback runs (do not cancel it afterwards). Returns NULL on failure. */
    adev_timer *(*start)(adev_timers *t, uint64_t ms, void (*cb)(void *arg), void *arg);
    /* Cancels a timer that has not fired: its callback is never called. */
    void (*cancel)(adev_timers *t, adev_timer *timer);
};

struct adev_timers {
    const struct adev_timers_ops *ops;
};

static inline adev_timer *
adev_timer_start(adev_timers *t, uint64_t ms, void (*cb)(void *arg), void *arg)
{
    return t->ops->start(t, ms, cb, arg);
}

static inline void
adev_timer_cancel(adev_timers *t, adev_timer *timer)
{
    if (timer != NULL)
        t->ops->cancel(t, timer);
}

/* ------------------------------------------------------------------------------------------ */
/* A/B slots and the boot control block (the bootloader's environment), and the security-version
 * counters. Two slots each hold a complete bootable system: the boot manifest and its images in
 * the layout of boot.h, reached as an adev_storage (so measured boot reads a slot as it reads any
 * storage). The boot control block says which slot is committed and which one, if any, boots on
 * trial; abboot.h is the state machine over it (the bootloader's choice, install, commit,
 * rollback). Writes of the control block and of each counter are atomic. */

typedef struct adev_slots adev_slots;

#define ADEV_SLOT_COUNT 2
#define ADEV_BOOTCTL_REASON_MAX 64

struct adev_bootctl {
    int active;       /* the committed slot (0 or 1): what boots without a trial */
    int trial;        /* the slot to boot on trial, or -1 */
    unsigned tries;   /* trial boots left; the bootloader decrements it before each one */
    int booted;       /* the slot the bootloader chose for the running boot */
    int booted_trial; /* 1 when the running boot is a trial boot */
    /* why the last trial ended without a commit ("" when none, or once the agent reported it) */
    char rollback_reason[ADEV_BOOTCTL_REASON_MAX];
    uint64_t seq; /* bumped by every write (for tests and logs) */
};

/* The storage of slot i (0 or 1), borrowed from s. */
adev_storage *adev_slots_storage(adev_slots *s, int i);
/* Reads the boot control block. 0, -1 on error, -2 when there is none (factory state). */
int adev_bootctl_read(adev_slots *s, struct adev_bootctl *out);
/* Replaces it atomically (a power loss leaves the old block or the new one). 0 or -1. */
int adev_bootctl_write(adev_slots *s, const struct adev_bootctl *c);
/* The security version of a component (its anti-rollback counter, like a fuse): 0 when never
 * raised. 0 or -1. */
int adev_svn_read(adev_slots *s, const char *component, uint32_t *svn);
/* Raises the counter of component to svn; a value at or below the current one changes nothing
 * (counters never go down). Atomic. 0 or -1. */
int adev_svn_raise(adev_slots *s, const char *component, uint32_t svn);
void adev_slots_free(adev_slots *s);

/* ------------------------------------------------------------------------------------------ */
/* One device's platform, as the attestation client sees it. Borrowed: the owner keeps every part
 * alive until the device is freed. */
struct adev_hal {
    adev_keystore *keys;
    adev_storage *storage;
    adev_clock *clock;
    adev_transport *transport;
    adev_timers *timers;
    adev_slots *slots; /* A/B slots, or NULL: a device without updates (boots from storage) */
};

#endif
