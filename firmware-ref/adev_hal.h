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
};

struct adev_http_response {
    int err;          /* ADEV_NET_OK or a negative enum adev_net_err */
    long status;      /* HTTP status when err == ADEV_NET_OK, else 0 */
    const char *body; /* NUL-terminated; owned by the transport, valid during the callback */
    size_t body_len;
    long retry_after_s; /* Retry-After in seconds, or -1 when absent */
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
/* One device's platform, as the attestation client sees it. Borrowed: the owner keeps every part
 * alive until the device is freed. */
struct adev_hal {
    adev_keystore *keys;
    adev_storage *storage;
    adev_clock *clock;
    adev_transport *transport;
    adev_timers *timers;
};

#endif
