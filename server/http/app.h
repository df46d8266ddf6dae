/* app: the daemon's long-lived state, handed to every request as r->app. main.c fills it before
 * the HTTP layer starts and never writes it again; the objects it points to are internally
 * synchronised (or read-only), so handlers on any thread may use them. */
#ifndef AEGIS_APP_H
#define AEGIS_APP_H

#include "config.h"
#include "store.h"

struct signer;
struct metrics;
struct devauth;
struct devauth_identity;
struct ratelimit;
struct ingest;
struct director;
struct upd_recovery;

/* Long-lived daemon state shared by all requests (read-only after start, or internally
 * synchronised). */
struct app {
    const struct config *cfg;
    store *st;
    struct signer *sg;
    struct metrics *metrics;
    struct devauth *devauth;
    /* attestation challenges and attempts per client address (NULL: no limit) */
    struct ratelimit *challenge_rl;
    /* telemetry uploads per device (NULL: no limit) */
    struct ratelimit *telemetry_rl;
    /* update status reports per device (NULL: no limit) */
    struct ratelimit *update_status_rl;
    /* the telemetry writer (ingest.h), never NULL while HTTP serves; stopped (uploads answer 503)
     * and freed only around http_stop (main.c close_all) */
    struct ingest *ingest;
    /* the update director (server/update/director.h): each device's signed answer, from memory */
    struct director *director;
    /* grants of the recovery path (server/update/upd_recovery.h) */
    struct upd_recovery *recovery;
    /* the MAC key of attestation nonces (the database's: attest_nonce.h); never logged */
    unsigned char nonce_key[STORE_NONCE_KEY_LEN];
};

#endif
