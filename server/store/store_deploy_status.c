/* store_deploy_status: devices' update attempts, what the rollout's halt checks count (failed
 * attempts, failure flags on a deployment's versions), and the director's generation
 * (store_deploy.h). */
#include "store_deploy.h"
#include "store_deploy_int.h"
#include "store_int.h"

#include "proto_fields.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_ATTEMPT_GET[] = "SELECT deployment_id, image, state FROM update_attempts "
                                      "WHERE device_id = ?1 AND attempt_id = ?2";
/* The image of the deployment of the tenant, offered to the device's group. */
static const char SQL_ATTEMPT_TARGET[] =
    "SELECT 1 FROM deployment_images d JOIN deployments p ON p.id = d.deployment_id "
    "WHERE d.deployment_id = ?1 AND p.tenant_id = ?2 AND d.sha256 = ?3 AND p.group_id = ?4";
static const char SQL_ATTEMPT_COUNT[] =
    "SELECT count(*) FROM update_attempts WHERE device_id = ?1 AND deployment_id = ?2";
static const char SQL_ATTEMPT_ADD[] =
    "INSERT INTO update_attempts (device_id, attempt_id, tenant_id, deployment_id, image, wave, "
    "state, reason, created_at, updated_at, finished_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)";
static const char SQL_ATTEMPT_SET[] =
    "UPDATE update_attempts SET state = ?3, reason = ?4, updated_at = ?5, finished_at = ?6 "
    "WHERE device_id = ?1 AND attempt_id = ?2";
/* Devices, not attempts: each device's latest finished attempt in the wave (a device that failed
 * and then committed counts as committed; one that fails ten times counts once). Ties within a
 * second go to the later attempt_id. */
static const char SQL_ATTEMPT_FAILURES[] =
    "SELECT count(*), coalesce(sum(state IN ('failed', 'rolled_back')), 0) FROM "
    "(SELECT state, row_number() OVER (PARTITION BY device_id ORDER BY finished_at DESC, "
    "updated_at DESC, attempt_id DESC) AS n FROM update_attempts "
    "WHERE deployment_id = ?1 AND wave = ?2 AND finished_at >= ?3) WHERE n = 1";
/* Attempts of deployments that ended (aborted, or completed) before ?1. */
static const char SQL_ATTEMPT_PURGE[] =
    "DELETE FROM update_attempts WHERE (device_id, attempt_id) IN (SELECT a.device_id, "
    "a.attempt_id FROM update_attempts a JOIN deployments p ON p.id = a.deployment_id "
    "WHERE p.state IN ('aborted', 'completed') AND p.updated_at < ?1 LIMIT ?2)";
static const char SQL_ATTEMPT_LATEST[] =
    "SELECT device_id, state, coalesce(reason, ''), max(updated_at) FROM update_attempts "
    "WHERE deployment_id = ?1 "
    "GROUP BY device_id";
/* A flag on one of the deployment's (component, version): rate_regression names the version,
 * new_bucket its bucket, which lists the versions it was seen on. */
static const char SQL_FLAG_HIT[] =
    "SELECT f.kind, f.component, i.version, coalesce(f.previous_version, ''), "
    "coalesce(b.signature, ''), coalesce(s.devices, 0), "
    "coalesce(json_extract(f.detail, '$.crash_rate'), 0), "
    "coalesce(json_extract(f.detail, '$.previous_crash_rate'), 0) "
    "FROM deployment_images d JOIN images i ON i.tenant_id = d.tenant_id AND i.sha256 = d.sha256 "
    "JOIN failure_flags f ON f.tenant_id = d.tenant_id AND f.component = i.component "
    "LEFT JOIN failure_buckets b ON b.id = f.bucket_id LEFT JOIN bucket_stats s ON s.bucket_id = "
    "b.id "
    "WHERE d.deployment_id = ?1 AND f.created_at >= ?2 AND "
    "((f.kind = 'rate_regression' AND f.image_version = i.version) OR (f.kind = 'new_bucket' AND "
    "EXISTS (SELECT 1 FROM bucket_versions v WHERE v.bucket_id = f.bucket_id AND "
    "v.image_version = i.version))) ORDER BY f.id LIMIT 1";
static const char SQL_GEN_BUMP[] =
    "INSERT INTO director_generations (tenant_id, generation, updated_at) VALUES (?1, 2, ?2) "
    "ON CONFLICT (tenant_id) DO UPDATE SET generation = generation + 1, updated_at = ?2 "
    "RETURNING generation";
static const char SQL_GEN_GET[] =
    "SELECT generation, updated_at FROM director_generations WHERE tenant_id = ?1";
static const char SQL_GEN_ALL[] = "SELECT tenant_id, generation FROM director_generations";

static const char *const attempt_names[STORE_ATTEMPT_NSTATES] = {
    "downloading", "installed", "booted", "committed", "rolled_back", "failed"};

const char *
store_attempt_state_name(enum store_attempt_state s)
{
    assert(s >= 0 && s < STORE_ATTEMPT_NSTATES);
    return attempt_names[s];
}

int
store__name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n && name != NULL; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void
store__copy_col(char *dst, size_t len, sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    snprintf(dst, len, "%s", t != NULL ? t : "");
}

int
store_attempt_state_parse(const char *name, enum store_attempt_state *out)
{
    int i = store__name_index(attempt_names, STORE_ATTEMPT_NSTATES, name);
    if (i < 0)
        return -1;
    *out = (enum store_attempt_state)i;
    return 0;
}

int
store_attempt_id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n < 1 || n > STORE_ATTEMPT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static int
terminal(enum store_attempt_state s)
{
    return s >= STORE_ATTEMPT_COMMITTED;
}

static int
attempt_ok(const struct store_attempt *at)
{
    int needs_reason = at->state == STORE_ATTEMPT_FAILED || at->state == STORE_ATTEMPT_ROLLED_BACK;
    return at->tenant_id > 0 && at->group_id > 0 && store__device_id_ok(at->device_id) &&
           store_attempt_id_ok(at->attempt_id) && at->deployment_id > 0 && at->image != NULL &&
           proto_digest_hex_ok(at->image, strlen(at->image)) && at->wave >= 1 && at->state >= 0 &&
           at->state < STORE_ATTEMPT_NSTATES &&
           (at->reason == NULL ? !needs_reason : store__text_ok(at->reason, 1, 200));
}

/* What the stored attempt allows: STORE_OK (*write 1: move forward; 0: the same state again) or
 * STORE_CONFLICT. */
static int
progress(sqlite3_stmt *st, const struct store_attempt *at, int *write)
{
    enum store_attempt_state was;
    if (sqlite3_column_int64(st, 0) != at->deployment_id ||
        strcmp((const char *)sqlite3_column_text(st, 1), at->image) != 0 ||
        store_attempt_state_parse((const char *)sqlite3_column_text(st, 2), &was) != 0)
        return STORE_CONFLICT;
    if (was == at->state) {
        *write = 0;
        return STORE_OK;
    }
    *write = 1;
    return terminal(was) || at->state < was ? STORE_CONFLICT : STORE_OK;
}

static int
attempt_write(store *s, struct conn *c, const char *sql, const struct store_attempt *at,
              int64_t now)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    sqlite3_int64 fin = now;
    int rc;
    if (st == NULL)
        return STORE_ERR;
    const char *state = store_attempt_state_name(at->state);
    if (sql == SQL_ATTEMPT_ADD)
        rc = sqlite3_bind_int64(st, 3, at->tenant_id) |
             sqlite3_bind_int64(st, 4, at->deployment_id) | store__bind_text(st, 5, at->image) |
             sqlite3_bind_int(st, 6, at->wave) | store__bind_text(st, 7, state) |
             store__bind_text(st, 8, at->reason) | sqlite3_bind_int64(st, 9, now) |
             (terminal(at->state) ? sqlite3_bind_int64(st, 10, fin) : sqlite3_bind_null(st, 10));
    else
        rc = store__bind_text(st, 3, state) | store__bind_text(st, 4, at->reason) |
             sqlite3_bind_int64(st, 5, now) |
             (terminal(at->state) ? sqlite3_bind_int64(st, 6, fin) : sqlite3_bind_null(st, 6));
    rc = store__bound(s, c,
                      rc | store__bind_text(st, 1, at->device_id) |
                          store__bind_text(st, 2, at->attempt_id));
    return rc == STORE_OK ? store__step_done(s, c, st, "attempt write") : rc;
}

/* Whether the deployment's image is offered to the device's group: STORE_OK or STORE_NOTFOUND. */
static int
attempt_target(store *s, struct conn *c, const struct store_attempt *at)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_ATTEMPT_TARGET);
    if (st == NULL)
        return STORE_ERR;
    int rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, at->deployment_id) | sqlite3_bind_int64(st, 2, at->tenant_id) |
            store__bind_text(st, 3, at->image) | sqlite3_bind_int64(st, 4, at->group_id));
    return rc == STORE_OK ? store__step_row(s, c, st, "attempt target") : rc;
}

/* A new attempt of the device at the deployment, unless it has STORE_ATTEMPTS_MAX already
 * (*outcome STORE_ATTEMPT_CAPPED, STORE_CONFLICT). */
static int
attempt_add(store *s, struct conn *c, const struct store_attempt *at, int64_t now, int *outcome)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_ATTEMPT_COUNT);
    if (st == NULL)
        return STORE_ERR;
    int rc = store__bound(s, c,
                          store__bind_text(st, 1, at->device_id) |
                              sqlite3_bind_int64(st, 2, at->deployment_id));
    if (rc == STORE_OK && (rc = store__step_row(s, c, st, "attempt count")) == STORE_OK &&
        sqlite3_column_int64(st, 0) >= STORE_ATTEMPTS_MAX) {
        *outcome = STORE_ATTEMPT_CAPPED;
        return STORE_CONFLICT;
    }
    return rc == STORE_OK ? attempt_write(s, c, SQL_ATTEMPT_ADD, at, now) : rc;
}

int
store_attempt_report(store *s, const struct store_attempt *at, int64_t now, int *outcome)
{
    struct conn *c = NULL;
    sqlite3_stmt *st;
    int rc = STORE_INVALID, write = 1;

    *outcome = STORE_ATTEMPT_SAME;
    if (at == NULL || !attempt_ok(at))
        return rc;
    c = store__take(s);
    if ((rc = store__begin_light(s, c)) != STORE_OK || (rc = attempt_target(s, c, at)) != STORE_OK)
        goto out;
    if ((st = store__prep(s, c, SQL_ATTEMPT_GET)) == NULL) {
        rc = STORE_ERR;
        goto out;
    }
    rc = store__bound(
        s, c, store__bind_text(st, 1, at->device_id) | store__bind_text(st, 2, at->attempt_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "attempt get");
    if (rc == STORE_OK) {
        if ((rc = progress(st, at, &write)) == STORE_OK && write)
            rc = attempt_write(s, c, SQL_ATTEMPT_SET, at, now);
    } else if (rc == STORE_NOTFOUND) {
        rc = attempt_add(s, c, at, now, outcome);
    }
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && write)
        *outcome = STORE_ATTEMPT_MOVED;
    return rc;
}

int
store_attempt_purge(store *s, int64_t before, int max_rows, int *purged)
{
    return store__purge(s, SQL_ATTEMPT_PURGE, before, max_rows, purged, "attempt purge");
}

int
store_attempt_failures(store *s, int64_t deployment_id, int wave, int64_t since, int64_t *finished,
                       int64_t *bad)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_ATTEMPT_FAILURES);
    int rc = STORE_ERR;
    *finished = *bad = 0;
    if (st != NULL)
        rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, deployment_id) | sqlite3_bind_int(st, 2, wave) |
                              sqlite3_bind_int64(st, 3, since));
    if (rc == STORE_OK && (rc = store__step_row(s, c, st, "attempt failures")) == STORE_OK) {
        *finished = sqlite3_column_int64(st, 0);
        *bad = sqlite3_column_int64(st, 1);
    }
    store__give(s, c);
    return rc;
}

static int
latest_row(sqlite3_stmt *st, void *elem)
{
    struct store_device_attempt *a = elem;
    store__copy_col(a->device_id, sizeof(a->device_id), st, 0);
    store__copy_col(a->reason, sizeof(a->reason), st, 2);
    return store_attempt_state_parse((const char *)sqlite3_column_text(st, 1), &a->state);
}

int
store_attempt_latest(store *s, int64_t deployment_id, struct store_device_attempt **out, size_t *n)
{
    return store__typed_rows(s, SQL_ATTEMPT_LATEST, deployment_id, 0, sizeof(**out), latest_row,
                             (void **)out, n);
}

int
store_deploy_flag_hit(store *s, const struct store_deployment *d, int64_t since,
                      struct store_deploy_flag *out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_FLAG_HIT);
    int rc = STORE_ERR;
    memset(out, 0, sizeof(*out));
    if (st != NULL)
        rc =
            store__bound(s, c, sqlite3_bind_int64(st, 1, d->id) | sqlite3_bind_int64(st, 2, since));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "deploy flags");
    if (rc == STORE_OK) {
        out->found = 1;
        store__copy_col(out->kind, sizeof(out->kind), st, 0);
        store__copy_col(out->component, sizeof(out->component), st, 1);
        store__copy_col(out->version, sizeof(out->version), st, 2);
        store__copy_col(out->previous_version, sizeof(out->previous_version), st, 3);
        store__copy_col(out->signature, sizeof(out->signature), st, 4);
        out->devices = sqlite3_column_int64(st, 5);
        out->crash_rate = sqlite3_column_double(st, 6);
        out->previous_crash_rate = sqlite3_column_double(st, 7);
    }
    store__give(s, c);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int
store__director_bump(store *s, struct conn *c, int64_t tenant_id, int64_t now, int64_t *gen)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_GEN_BUMP);
    int rc = STORE_ERR;
    if (st != NULL)
        rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, now));
    if (rc == STORE_OK && (rc = store__step_row(s, c, st, "director bump")) == STORE_OK &&
        gen != NULL)
        *gen = sqlite3_column_int64(st, 0);
    if (st != NULL)
        sqlite3_reset(st);
    return rc == STORE_NOTFOUND ? STORE_ERR : rc;
}

int
store_director_bump(store *s, int64_t tenant_id, int64_t now, int64_t *gen)
{
    struct conn *c = store__take(s);
    int rc = store__begin(s, c);
    if (rc == STORE_OK)
        rc = store__director_bump(s, c, tenant_id, now, gen);
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

int
store_director_generation(store *s, int64_t tenant_id, int64_t *gen, int64_t *at)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_GEN_GET);
    int rc = STORE_ERR;
    *gen = 1;
    *at = 0;
    if (st != NULL)
        rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id));
    if (rc == STORE_OK && (rc = store__step_row(s, c, st, "director generation")) == STORE_OK) {
        *gen = sqlite3_column_int64(st, 0);
        *at = sqlite3_column_int64(st, 1);
    }
    store__give(s, c);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

static int
gen_row(sqlite3_stmt *st, void *elem)
{
    struct store_generation *g = elem;
    g->tenant_id = sqlite3_column_int64(st, 0);
    g->generation = sqlite3_column_int64(st, 1);
    return 0;
}

int
store_director_generations(store *s, struct store_generation **out, size_t *n)
{
    return store__typed_rows(s, SQL_GEN_ALL, 0, 0, sizeof(**out), gen_row, (void **)out, n);
}

int
store__typed_rows(store *s, const char *sql, int64_t a1, int64_t a2, size_t elem_size,
                  store__row_fn row, void **rows, size_t *n)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc = STORE_ERR, np = st != NULL ? sqlite3_bind_parameter_count(st) : 0;
    *rows = NULL;
    *n = 0;
    if (st != NULL)
        rc = store__bound(s, c,
                          (np >= 1 ? sqlite3_bind_int64(st, 1, a1) : 0) |
                              (np >= 2 ? sqlite3_bind_int64(st, 2, a2) : 0));
    if (rc == STORE_OK)
        rc = store__collect_rows(s, c, st, elem_size, row, rows, n);
    store__give(s, c);
    if (rc != STORE_OK) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}
