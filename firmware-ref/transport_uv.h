/* transport_uv: the host transport and timers of adev_hal.h: libcurl's multi-socket interface
 * driven by a libuv loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION over uv_poll_t and
 * uv_timer_t), single-threaded.
 *
 * One adev_uvnet (one curl multi handle) serves any number of devices on one loop. Each device
 * gets its own adev_transport: its requests share one connection cache (HTTP keep-alive across
 * its calls), and never a connection of another device, as on real hardware; that is what
 * makes each device's own clock and client certificate matter to its own TLS sessions.
 *
 * TLS: peer and host name verification always on, trust only in the request's ca_pem
 * (CURLOPT_CAINFO_BLOB, no CA path), TLS 1.2 or newer, client certificate and key through
 * CURLOPT_SSLCERT_BLOB / CURLOPT_SSLKEY_BLOB, certificate validity checked at the request's
 * `now` (the device's clock). Response bodies over the request's max_body (else body_max) fail with
 * ADEV_NET_TOO_LARGE: curl refuses a declared length over it (CURLOPT_MAXFILESIZE) and the write
 * callback cuts any body (chunked, endless) at the first piece past it. ETag and Content-Range are
 * read with curl_easy_header once the transfer ends.
 *
 * Not thread-safe: use from the loop's thread only. */
#ifndef ADEV_TRANSPORT_UV_H
#define ADEV_TRANSPORT_UV_H

#include "adev_hal.h"

#include <uv.h>

struct adev_uvnet_opts {
    uint32_t timeout_ms;         /* default whole-request timeout; 0: 30000 */
    uint32_t connect_timeout_ms; /* 0: 10000 */
    size_t body_max;             /* largest response body in bytes; 0: 1 MiB */
    long max_connections;        /* most open connections of all devices; 0: no limit */
};

typedef struct adev_uvnet adev_uvnet;

/* Initialises libcurl (curl_global_init) and a multi handle on loop. opts may be NULL. */
adev_uvnet *adev_uvnet_new(uv_loop_t *loop, const struct adev_uvnet_opts *opts);
/* A transport for one device, with its own connection cache; free it with adev_transport_free
 * (which cancels its outstanding requests and closes its connections). NULL on failure. */
adev_transport *adev_uvnet_transport_new(adev_uvnet *net);
/* The timers of the loop (owned by net). */
adev_timers *adev_uvnet_timers(adev_uvnet *net);
/* Number of requests in flight and timers pending (for a caller deciding when to stop). */
size_t adev_uvnet_pending(const adev_uvnet *net);
/* Frees net once every transport of it is freed; cancels timers still pending. Its libuv
 * handles are closed, and their memory freed in their close callbacks: run the loop afterwards
 * (uv_run(loop, UV_RUN_DEFAULT)) before closing it. Not from inside a callback of net. */
void adev_uvnet_free(adev_uvnet *net);

#endif
