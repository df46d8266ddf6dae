/* store_deploy: deployments and staged rollouts, devices' update attempts and the director's
 * per-tenant generation (docs/update.md sections 4, 6, 7; docs/api.md "Deployments"). The SQL of
 * db/schema/0013_deployments.sql; conventions as store.h (STORE_* codes, tenant scoping, one
 * transaction and its audit row per change). What the rollout logic and the director read comes as
 * typed structs; the API shape is store_deploy_json. */
#ifndef AEGIS_STORE_DEPLOY_H
#define AEGIS_STORE_DEPLOY_H

#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_DEPLOY_WAVES_MAX 10
#define STORE_DEPLOY_IMAGES_MAX 16
#define STORE_DEPLOY_REASON_MAX 256 /* with the NUL */
#define STORE_ATTEMPT_ID_MAX 64
/* Attempts a device may record at one deployment (a bound on the rows one device can write). */
#define STORE_ATTEMPTS_MAX 32

enum store_deploy_state {
    STORE_DEPLOY_RUNNING = 0,
    STORE_DEPLOY_PAUSED,
    STORE_DEPLOY_HALTED,
    STORE_DEPLOY_ABORTED,
    STORE_DEPLOY_COMPLETED,
    STORE_DEPLOY_NSTATES
};
/* "running", "paused", "halted", "aborted", "completed". */
const char *store_deploy_state_name(enum store_deploy_state s);

/* An image of a deployment, as the director names it. */
struct store_deploy_image {
    char sha256[65];
    int64_t size;
    char component[65];
    char kind[4];
    char version[33];
    int64_t svn;
    char hardware[65];
    int64_t product_id;
};

struct store_deployment {
    int64_t id;
    int64_t tenant_id;
    int64_t group_id;
    char name[STORE_NAME_MAX + 1];
    int nwaves;
    int waves[STORE_DEPLOY_WAVES_MAX]; /* cumulative percents, strictly increasing, last 100 */
    int64_t soak_seconds;
    int threshold_pct;
    int64_t min_attempts;
    enum store_deploy_state state;
    int current_wave; /* 1 .. nwaves */
    int64_t wave_started_at;
    int64_t checks_since;
    char reason[STORE_DEPLOY_REASON_MAX]; /* "" when none */
    int64_t created_at;
    int64_t updated_at;
    size_t nimages;
    struct store_deploy_image images[STORE_DEPLOY_IMAGES_MAX];
};

/* What a manufacturer asks for (the fields of POST /v1/deployments). */
struct store_deploy_new {
    int64_t group_id;
    const char *name;
    size_t nimages;
    const char *images[STORE_DEPLOY_IMAGES_MAX]; /* sha256 hex */
    int nwaves;
    int waves[STORE_DEPLOY_WAVES_MAX];
    int64_t soak_seconds; /* 0 .. 31536000 */
    int threshold_pct;    /* 1 .. 100 */
    int64_t min_attempts; /* 1 .. 1000000 */
};
/* 1 if the waves are 1..10 cumulative percents, strictly increasing in 1..100, ending at 100. */
int store_deploy_waves_ok(const int *waves, int n);

/* Creates a running deployment in wave 1 and bumps the tenant's director generation (*gen, may be
 * NULL). STORE_INVALID: bad fields, two images of one component (*what "component"), or an image
 * of another product than the group's ("product"); STORE_NOTFOUND: the group or an image is not
 * the tenant's (what names which: "group" or "image", may be NULL); STORE_CONFLICT: the group has
 * a running, paused or halted deployment already. Whether the images are published is the
 * caller's check (deploy_check.h). */
int store_deploy_create(store *s, int64_t tenant_id, const struct store_deploy_new *d, int64_t now,
                        const struct store_actor *a, int64_t *id, int64_t *gen, const char **what);
/* The tenant's deployment. STORE_NOTFOUND for another tenant's. */
int store_deploy_get(store *s, int64_t tenant_id, int64_t id, struct store_deployment *out);
/* The API object of d: {"id", "group_id", "name", "images": [sha256...], "waves", "soak_seconds",
 * "failure_threshold_pct", "min_attempts", "state", "current_wave", "wave_started_at",
 * "soak_remaining_s", "reason" (null | text), "created_at", "updated_at"}; NULL when out of memory.
 */
json_t *store_deploy_json(const struct store_deployment *d, int64_t now);
/* A page of the tenant's deployments, newest first (cursor: the last id). */
int store_deploy_list(store *s, int64_t tenant_id, const struct store_page *pg, int64_t now,
                      json_t **items, char *next_cursor);

/* State changes (docs/update.md section 7). */
enum store_deploy_action {
    STORE_DEPLOY_PAUSE,        /* running -> paused */
    STORE_DEPLOY_RESUME,       /* paused | halted -> running, the wave's soak starts again */
    STORE_DEPLOY_ABORT,        /* running | paused | halted -> aborted */
    STORE_DEPLOY_ADVANCE,      /* running | paused: the next wave, or completed after the last */
    STORE_DEPLOY_HALT,         /* running -> halted (the rollout's own checks) */
    STORE_DEPLOY_AUTO_ADVANCE, /* running, still in wave expect_wave: as ADVANCE (soak over) */
};
/* Applies action to the tenant's deployment at time now, with reason (text, may be NULL for
 * none), audited as "deployment.<pause|resume|abort|advance|halt>", and bumps the director
 * generation (*gen, may be NULL). *out (may be NULL) gets the deployment after the change.
 * STORE_CONFLICT: the action does not apply in the deployment's state (or, for AUTO_ADVANCE, it
 * moved on already); STORE_NOTFOUND: not the tenant's. */
int store_deploy_transition(store *s, int64_t tenant_id, int64_t id, enum store_deploy_action act,
                            int expect_wave, const char *reason, int64_t now,
                            const struct store_actor *a, struct store_deployment *out,
                            int64_t *gen);

/* Every running deployment of every tenant (for the rollout step): *out malloc'd (caller frees),
 * NULL when none. */
int store_deploy_running(store *s, struct store_deployment **out, size_t *n);
/* Per tenant, each group's current deployment: its newest that is not aborted (docs/update.md
 * section 4). *out malloc'd (caller frees), NULL when none. */
int store_deploy_plan(store *s, int64_t tenant_id, struct store_deployment **out, size_t *n);
/* Deployments per state, over all tenants (a gauge for /metrics). */
int store_deploy_count_states(store *s, int64_t counts[STORE_DEPLOY_NSTATES]);
/* The device ids of the tenant's group (claimed devices), for per-wave progress: *ids malloc'd
 * (caller frees), NULL when none. */
int store_deploy_group_devices(store *s, int64_t tenant_id, int64_t group_id, char (**ids)[65],
                               size_t *n);

/* --- update attempts (docs/update.md section 6) --- */
enum store_attempt_state {
    STORE_ATTEMPT_DOWNLOADING = 0,
    STORE_ATTEMPT_INSTALLED,
    STORE_ATTEMPT_BOOTED,
    STORE_ATTEMPT_COMMITTED,   /* terminal */
    STORE_ATTEMPT_ROLLED_BACK, /* terminal */
    STORE_ATTEMPT_FAILED,      /* terminal */
    STORE_ATTEMPT_NSTATES
};
const char *store_attempt_state_name(enum store_attempt_state s);
/* The state of a name: 0, or -1 for any other text. */
int store_attempt_state_parse(const char *name, enum store_attempt_state *out);

struct store_attempt {
    int64_t tenant_id;
    const char *device_id;
    const char *attempt_id; /* 1..64 of [A-Za-z0-9._-] */
    int64_t deployment_id;
    int64_t group_id;  /* the device's group: the deployment's, else STORE_NOTFOUND */
    const char *image; /* sha256 hex, one of the deployment's */
    int wave;          /* the device's wave in the deployment (1-based) */
    enum store_attempt_state state;
    const char *reason; /* NULL or <= 200 bytes; required for failed and rolled_back */
};
/* 1 when attempt_id is 1..64 of [A-Za-z0-9._-]. */
int store_attempt_id_ok(const char *attempt_id);
/* What store_attempt_report did. */
enum store_attempt_outcome {
    STORE_ATTEMPT_SAME = 0,  /* the same state again (STORE_OK), or refused */
    STORE_ATTEMPT_MOVED = 1, /* a new attempt, or one moved forward (STORE_OK) */
    STORE_ATTEMPT_CAPPED,    /* a new attempt beyond STORE_ATTEMPTS_MAX (STORE_CONFLICT) */
};
/* Records a report at time now (*outcome: enum store_attempt_outcome). STORE_CONFLICT: the attempt
 * is in a later or another terminal state already, or was about another deployment or image, or
 * the device has STORE_ATTEMPTS_MAX attempts at the deployment already; STORE_NOTFOUND: the
 * deployment is not the tenant's, not of the device's group, or the image not one of its;
 * STORE_INVALID: bad fields. */
int store_attempt_report(store *s, const struct store_attempt *at, int64_t now, int *outcome);
/* Deletes (at most max_rows) attempts of deployments aborted or completed before `before`, in one
 * transaction; *purged (may be NULL) gets the count. */
int store_attempt_purge(store *s, int64_t before, int max_rows, int *purged);
/* The devices of the deployment's wave whose latest attempt finished (a terminal state) at or
 * after since: *finished, and *bad of them whose latest failed or rolled back. */
int store_attempt_failures(store *s, int64_t deployment_id, int wave, int64_t since,
                           int64_t *finished, int64_t *bad);
/* Each device's latest attempt at the deployment: device ids and states, malloc'd in one array
 * (caller frees), NULL when none. */
struct store_device_attempt {
    char device_id[65];
    enum store_attempt_state state;
    char reason[65]; /* of a failed or rolled-back attempt (its first 64 bytes), else "" */
};
int store_attempt_latest(store *s, int64_t deployment_id, struct store_device_attempt **out,
                         size_t *n);

/* A failure flag (store.h "failure reporting") raised at or after since on a version of one of
 * d's images. found 0: none. */
struct store_deploy_flag {
    int found;
    char kind[20]; /* "new_bucket" | "rate_regression" */
    char component[65];
    char version[33];
    char previous_version[33];
    char signature[65];                     /* new_bucket: the bucket's */
    int64_t devices;                        /* new_bucket: the bucket's devices */
    double crash_rate, previous_crash_rate; /* rate_regression, per device-hour */
};
int store_deploy_flag_hit(store *s, const struct store_deployment *d, int64_t since,
                          struct store_deploy_flag *out);

/* --- the director's generation (docs/update.md section 4) --- */
/* The tenant's generation (1 when it never changed) and when it was made (*at, 0 for 1). */
int store_director_generation(store *s, int64_t tenant_id, int64_t *gen, int64_t *at);
/* Bumps it by one (at time now) in its own transaction; *gen gets the new value. */
int store_director_bump(store *s, int64_t tenant_id, int64_t now, int64_t *gen);
/* Every tenant's generation that is not 1: tenant ids and generations, malloc'd (caller frees). */
struct store_generation {
    int64_t tenant_id;
    int64_t generation;
};
int store_director_generations(store *s, struct store_generation **out, size_t *n);

#endif
