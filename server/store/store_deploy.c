/* store_deploy: deployments and their state changes (store_deploy.h). A deployment row holds its
 * rollout policy and where it stands; its images are deployment_images rows, read joined with the
 * images table (an image deleted after the deployment finished is left out). Every change bumps
 * the tenant's director generation in the same transaction (store_deploy_gen.c). */
#include "store_deploy.h"
#include "store_deploy_int.h"
#include "store_int.h"

#include "proto_fields.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPLOY_COLS                                                                                \
    "id, tenant_id, group_id, name, waves, soak_seconds, failure_threshold_pct, min_attempts, "    \
    "state, current_wave, wave_started_at, checks_since, reason, created_at, updated_at"

static const char SQL_DEPLOY_ADD[] =
    "INSERT INTO deployments (tenant_id, group_id, name, waves, soak_seconds, "
    "failure_threshold_pct, min_attempts, state, current_wave, wave_started_at, checks_since, "
    "reason, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', 1, ?8, ?8, "
    "NULL, ?8, ?8)";
static const char SQL_DEPLOY_IMAGE_ADD[] =
    "INSERT INTO deployment_images (deployment_id, tenant_id, sha256) VALUES (?1, ?2, ?3)";
static const char SQL_DEPLOY_GROUP_OWNED[] =
    "SELECT 1 FROM device_groups WHERE id = ?1 AND tenant_id = ?2";
/* The image's component, and whether it is of the group's product. */
static const char SQL_DEPLOY_IMAGE_OWNED[] =
    "SELECT i.component, i.product_id = g.product_id FROM images i JOIN device_groups g "
    "ON g.tenant_id = i.tenant_id AND g.id = ?3 WHERE i.tenant_id = ?1 AND i.sha256 = ?2";
static const char SQL_DEPLOY_GET[] =
    "SELECT " DEPLOY_COLS " FROM deployments WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_DEPLOY_IMAGES[] =
    "SELECT d.sha256, i.size, i.component, i.kind, i.version, i.svn, i.hardware, i.product_id "
    "FROM deployment_images d LEFT JOIN images i ON i.tenant_id = d.tenant_id AND "
    "i.sha256 = d.sha256 WHERE d.deployment_id = ?1 ORDER BY i.component, d.sha256";
static const char SQL_DEPLOY_LIST[] = "SELECT " DEPLOY_COLS " FROM deployments "
                                      "WHERE tenant_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
static const char SQL_DEPLOY_RUNNING[] =
    "SELECT " DEPLOY_COLS " FROM deployments WHERE state = 'running' ORDER BY id";
static const char SQL_DEPLOY_PLAN[] =
    "SELECT " DEPLOY_COLS " FROM deployments WHERE id IN (SELECT max(id) FROM deployments "
    "WHERE tenant_id = ?1 AND state <> 'aborted' GROUP BY group_id) ORDER BY id";
static const char SQL_DEPLOY_SET[] =
    "UPDATE deployments SET state = ?2, current_wave = ?3, wave_started_at = ?4, "
    "checks_since = ?5, reason = ?6, updated_at = ?7 WHERE id = ?1";
static const char SQL_DEPLOY_STATES[] = "SELECT state, count(*) FROM deployments GROUP BY state";
static const char SQL_DEPLOY_DEVICES[] = "SELECT id FROM devices WHERE tenant_id = ?1 AND "
                                         "group_id = ?2 ORDER BY id";

static const char *const state_names[STORE_DEPLOY_NSTATES] = {"running", "paused", "halted",
                                                              "aborted", "completed"};

const char *
store_deploy_state_name(enum store_deploy_state s)
{
    assert(s >= 0 && s < STORE_DEPLOY_NSTATES);
    return state_names[s];
}

static int
state_parse(const char *name, enum store_deploy_state *out)
{
    int i = store__name_index(state_names, STORE_DEPLOY_NSTATES, name);
    if (i < 0)
        return -1;
    *out = (enum store_deploy_state)i;
    return 0;
}

int
store_deploy_waves_ok(const int *waves, int n)
{
    if (n < 1 || n > STORE_DEPLOY_WAVES_MAX || waves[n - 1] != 100)
        return 0;
    for (int i = 0; i < n; i++)
        if (waves[i] < 1 || waves[i] > 100 || (i > 0 && waves[i] <= waves[i - 1]))
            return 0;
    return 1;
}

static int
waves_parse(const char *text, struct store_deployment *d)
{
    json_t *a = text != NULL ? json_loads(text, 0, NULL) : NULL;
    size_t i;
    json_t *v;
    int rc = -1;
    if (!json_is_array(a) || json_array_size(a) > STORE_DEPLOY_WAVES_MAX)
        goto out;
    json_array_foreach(a, i, v)
    {
        d->waves[i] = (int)json_integer_value(v);
    }
    d->nwaves = (int)json_array_size(a);
    rc = store_deploy_waves_ok(d->waves, d->nwaves) ? 0 : -1;
out:
    json_decref(a);
    return rc;
}

/* DEPLOY_COLS into the zeroed deployment elem (images not yet). */
static int
deploy_row(sqlite3_stmt *st, void *elem)
{
    struct store_deployment *d = elem;
    d->id = sqlite3_column_int64(st, 0);
    d->tenant_id = sqlite3_column_int64(st, 1);
    d->group_id = sqlite3_column_int64(st, 2);
    store__copy_col(d->name, sizeof(d->name), st, 3);
    d->soak_seconds = sqlite3_column_int64(st, 5);
    d->threshold_pct = sqlite3_column_int(st, 6);
    d->min_attempts = sqlite3_column_int64(st, 7);
    d->current_wave = sqlite3_column_int(st, 9);
    d->wave_started_at = sqlite3_column_int64(st, 10);
    d->checks_since = sqlite3_column_int64(st, 11);
    store__copy_col(d->reason, sizeof(d->reason), st, 12);
    d->created_at = sqlite3_column_int64(st, 13);
    d->updated_at = sqlite3_column_int64(st, 14);
    if (waves_parse((const char *)sqlite3_column_text(st, 4), d) != 0 ||
        state_parse((const char *)sqlite3_column_text(st, 8), &d->state) != 0 ||
        d->current_wave < 1 || d->current_wave > d->nwaves)
        return -1;
    return 0;
}

/* The images of d (d->nimages, d->images). */
static int
deploy_images(store *s, struct conn *c, struct store_deployment *d)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEPLOY_IMAGES);
    int rc;
    if (st == NULL)
        return STORE_ERR;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, d->id))) != STORE_OK)
        return rc;
    d->nimages = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && d->nimages < STORE_DEPLOY_IMAGES_MAX) {
        struct store_deploy_image *im = &d->images[d->nimages++];
        memset(im, 0, sizeof(*im));
        store__copy_col(im->sha256, sizeof(im->sha256), st, 0);
        im->size = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1);
        store__copy_col(im->component, sizeof(im->component), st, 2);
        store__copy_col(im->kind, sizeof(im->kind), st, 3);
        store__copy_col(im->version, sizeof(im->version), st, 4);
        im->svn = sqlite3_column_int64(st, 5);
        store__copy_col(im->hardware, sizeof(im->hardware), st, 6);
        im->product_id = sqlite3_column_int64(st, 7);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK
                                                 : store__db_error(s, c, "deploy images");
}

/* Loads the tenant's deployment id with its images. */
static int
deploy_load(store *s, struct conn *c, int64_t tenant_id, int64_t id, struct store_deployment *out)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEPLOY_GET);
    int rc;
    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "deploy get");
    if (rc == STORE_OK && deploy_row(st, out) != 0)
        rc = store__db_error(s, c, "deploy row");
    sqlite3_reset(st);
    return rc == STORE_OK ? deploy_images(s, c, out) : rc;
}

/* Runs sql (typed DEPLOY_COLS rows; ?1 = arg when it has a parameter) with each row's images. */
static int
deploy_rows(store *s, const char *sql, int64_t arg, struct store_deployment **out, size_t *n)
{
    int rc = store__typed_rows(s, sql, arg, 0, sizeof(**out), deploy_row, (void **)out, n);
    struct conn *c = rc == STORE_OK && *n > 0 ? store__take(s) : NULL;
    for (size_t i = 0; i < *n && rc == STORE_OK; i++)
        rc = deploy_images(s, c, &(*out)[i]);
    if (c != NULL)
        store__give(s, c);
    if (rc != STORE_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

json_t *
store_deploy_json(const struct store_deployment *d, int64_t now)
{
    json_t *images = json_array(), *waves = json_array();
    int64_t remaining = 0;
    for (size_t i = 0; i < d->nimages && images != NULL; i++)
        json_array_append_new(images, json_string(d->images[i].sha256));
    for (int i = 0; i < d->nwaves && waves != NULL; i++)
        json_array_append_new(waves, json_integer(d->waves[i]));
    if (d->state == STORE_DEPLOY_RUNNING) {
        remaining = d->wave_started_at + d->soak_seconds - now;
        remaining = remaining < 0 ? 0 : remaining;
    }
    return json_pack(
        "{s:I, s:I, s:s, s:o, s:o, s:I, s:i, s:I, s:s, s:i, s:o, s:o, s:o, s:o, s:o}", "id",
        (json_int_t)d->id, "group_id", (json_int_t)d->group_id, "name", d->name, "images", images,
        "waves", waves, "soak_seconds", (json_int_t)d->soak_seconds, "failure_threshold_pct",
        d->threshold_pct, "min_attempts", (json_int_t)d->min_attempts, "state",
        store_deploy_state_name(d->state), "current_wave", d->current_wave, "wave_started_at",
        store__json_time(d->wave_started_at), "soak_remaining_s",
        d->state == STORE_DEPLOY_RUNNING ? json_integer(remaining) : json_null(), "reason",
        d->reason[0] != '\0' ? json_string(d->reason) : json_null(), "created_at",
        store__json_time(d->created_at), "updated_at", store__json_time(d->updated_at));
}

/* Checks and inserts the images of d for deployment id: STORE_NOTFOUND (an image not the
 * tenant's), STORE_INVALID (two of one component: *what "component"; of another product than the
 * group's: "product"). */
static int
add_images(store *s, struct conn *c, int64_t tenant_id, int64_t id,
           const struct store_deploy_new *d, const char **what)
{
    char comps[STORE_DEPLOY_IMAGES_MAX][65];
    int rc = STORE_OK, same_product = 0;
    for (size_t i = 0; i < d->nimages && rc == STORE_OK; i++) {
        sqlite3_stmt *st = store__prep(s, c, SQL_DEPLOY_IMAGE_OWNED);
        if (st == NULL)
            return STORE_ERR;
        rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, tenant_id) |
                              store__bind_text(st, 2, d->images[i]) |
                              sqlite3_bind_int64(st, 3, d->group_id));
        if (rc == STORE_OK && (rc = store__step_row(s, c, st, "deploy image")) == STORE_OK) {
            store__copy_col(comps[i], sizeof(comps[i]), st, 0);
            same_product = sqlite3_column_int(st, 1);
        }
        sqlite3_reset(st);
        if (rc == STORE_OK && !same_product) {
            *what = "product";
            rc = STORE_INVALID;
        }
        for (size_t j = 0; j < i && rc == STORE_OK; j++)
            if (strcmp(comps[j], comps[i]) == 0) {
                *what = "component";
                rc = STORE_INVALID;
            }
        if (rc != STORE_OK)
            break;
        if ((st = store__prep(s, c, SQL_DEPLOY_IMAGE_ADD)) == NULL)
            return STORE_ERR;
        rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id) |
                              store__bind_text(st, 3, d->images[i]));
        if (rc == STORE_OK)
            rc = store__step_done(s, c, st, "deploy image add");
    }
    return rc;
}

static int
new_ok(const struct store_deploy_new *d)
{
    if (d == NULL || d->group_id <= 0 || !store__text_ok(d->name, 1, STORE_NAME_MAX) ||
        d->nimages < 1 || d->nimages > STORE_DEPLOY_IMAGES_MAX ||
        !store_deploy_waves_ok(d->waves, d->nwaves) || d->soak_seconds < 0 ||
        d->soak_seconds > 31536000 || d->threshold_pct < 1 || d->threshold_pct > 100 ||
        d->min_attempts < 1 || d->min_attempts > 1000000)
        return 0;
    for (size_t i = 0; i < d->nimages; i++)
        if (d->images[i] == NULL || !proto_digest_hex_ok(d->images[i], strlen(d->images[i])))
            return 0;
    return 1;
}

static int
insert_deployment(store *s, struct conn *c, int64_t tenant_id, const struct store_deploy_new *d,
                  int64_t now, int64_t *id)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEPLOY_ADD);
    char waves[STORE_DEPLOY_WAVES_MAX * 5 + 3];
    size_t o = 0;
    int rc;
    o += (size_t)snprintf(waves, sizeof(waves), "[");
    for (int i = 0; i < d->nwaves; i++)
        o += (size_t)snprintf(waves + o, sizeof(waves) - o, "%s%d", i ? "," : "", d->waves[i]);
    snprintf(waves + o, sizeof(waves) - o, "]");
    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, d->group_id) |
            store__bind_text(st, 3, d->name) | store__bind_text(st, 4, waves) |
            sqlite3_bind_int64(st, 5, d->soak_seconds) | sqlite3_bind_int(st, 6, d->threshold_pct) |
            sqlite3_bind_int64(st, 7, d->min_attempts) | sqlite3_bind_int64(st, 8, now));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "deploy insert");
    *id = sqlite3_last_insert_rowid(c->db);
    return rc;
}

int
store_deploy_create(store *s, int64_t tenant_id, const struct store_deploy_new *d, int64_t now,
                    const struct store_actor *a, int64_t *id, int64_t *gen, const char **what)
{
    struct conn *c = NULL;
    const char *w = "group";
    int rc = STORE_INVALID;

    *id = 0;
    if (!new_ok(d) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__owned(s, c, SQL_DEPLOY_GROUP_OWNED, d->group_id, tenant_id)) != STORE_OK ||
        (rc = insert_deployment(s, c, tenant_id, d, now, id)) != STORE_OK)
        goto out;
    w = "image";
    if ((rc = add_images(s, c, tenant_id, *id, d, &w)) != STORE_OK)
        goto out;
    rc =
        store__audit(s, c, tenant_id, a, "deployment.create", "deployment", *id, NULL,
                     json_pack("{s:I, s:s}", "group_id", (json_int_t)d->group_id, "name", d->name));
    if (rc == STORE_OK)
        rc = store__director_bump(s, c, tenant_id, now, gen);
out:
    if (c != NULL) {
        rc = store__end_tx(s, c, rc);
        store__give(s, c);
    }
    if (what != NULL)
        *what = w;
    return rc;
}

int
store_deploy_get(store *s, int64_t tenant_id, int64_t id, struct store_deployment *out)
{
    struct conn *c = store__take(s);
    int rc = deploy_load(s, c, tenant_id, id, out);
    store__give(s, c);
    return rc;
}

int
store_deploy_list(store *s, int64_t tenant_id, const struct store_page *pg, int64_t now,
                  json_t **items, char *next_cursor)
{
    struct conn *c = NULL;
    sqlite3_stmt *st;
    void *rows = NULL;
    size_t n = 0;
    int64_t before = INT64_MAX;
    int rc = STORE_INVALID;

    *items = NULL;
    next_cursor[0] = '\0';
    if (!store__page_ok(pg) || (rc = store__int_cursor(pg, INT64_MAX, &before)) != STORE_OK)
        return rc;
    c = store__take(s);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_DEPLOY_LIST)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, before) |
                          sqlite3_bind_int(st, 3, pg->limit + 1));
    if (rc != STORE_OK || (rc = store__collect_rows(s, c, st, sizeof(struct store_deployment),
                                                    deploy_row, &rows, &n)) != STORE_OK)
        goto out;
    struct store_deployment *ds = rows;
    if (n > (size_t)pg->limit) {
        n = (size_t)pg->limit;
        snprintf(next_cursor, CURSOR_BUF, "%lld", (long long)ds[n - 1].id);
    }
    rc = (*items = json_array()) != NULL ? STORE_OK : STORE_ERR;
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        if ((rc = deploy_images(s, c, &ds[i])) == STORE_OK &&
            json_array_append_new(*items, store_deploy_json(&ds[i], now)) != 0)
            rc = STORE_ERR;
out:
    store__give(s, c);
    free(rows);
    if (rc != STORE_OK) {
        json_decref(*items);
        *items = NULL;
    }
    return rc;
}

/* The state after act on d (in place), or -1 when act does not apply. */
static int
apply(struct store_deployment *d, enum store_deploy_action act, int expect_wave, int64_t now)
{
    enum store_deploy_state st = d->state;
    int active = st == STORE_DEPLOY_RUNNING || st == STORE_DEPLOY_PAUSED;
    switch (act) {
    case STORE_DEPLOY_PAUSE:
    case STORE_DEPLOY_HALT:
        if (st != STORE_DEPLOY_RUNNING)
            return -1;
        d->state = act == STORE_DEPLOY_PAUSE ? STORE_DEPLOY_PAUSED : STORE_DEPLOY_HALTED;
        return 0;
    case STORE_DEPLOY_RESUME:
        if (st != STORE_DEPLOY_PAUSED && st != STORE_DEPLOY_HALTED)
            return -1;
        d->state = STORE_DEPLOY_RUNNING;
        d->wave_started_at = d->checks_since = now;
        return 0;
    case STORE_DEPLOY_ABORT:
        if (!active && st != STORE_DEPLOY_HALTED)
            return -1;
        d->state = STORE_DEPLOY_ABORTED;
        return 0;
    case STORE_DEPLOY_AUTO_ADVANCE:
        if (st != STORE_DEPLOY_RUNNING || d->current_wave != expect_wave)
            return -1;
        /* fall through */
    case STORE_DEPLOY_ADVANCE:
        if (!active)
            return -1;
        if (d->current_wave == d->nwaves)
            d->state = STORE_DEPLOY_COMPLETED;
        else
            d->current_wave++;
        /* checks_since stays: a flag raised before the advance and not yet checked still halts
         * (docs/update.md section 7); failures are counted per wave anyway. */
        d->wave_started_at = now;
        return 0;
    }
    return -1;
}

static const char *
action_name(enum store_deploy_action act)
{
    static const char *const names[] = {"deployment.pause", "deployment.resume",
                                        "deployment.abort", "deployment.advance",
                                        "deployment.halt",  "deployment.advance"};
    return names[act];
}

static int
save(store *s, struct conn *c, const struct store_deployment *d)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEPLOY_SET);
    if (st == NULL)
        return STORE_ERR;
    int rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, d->id) |
                              store__bind_text(st, 2, store_deploy_state_name(d->state)) |
                              sqlite3_bind_int(st, 3, d->current_wave) |
                              sqlite3_bind_int64(st, 4, d->wave_started_at) |
                              sqlite3_bind_int64(st, 5, d->checks_since) |
                              store__bind_text(st, 6, d->reason[0] != '\0' ? d->reason : NULL) |
                              sqlite3_bind_int64(st, 7, d->updated_at));
    return rc == STORE_OK ? store__step_done(s, c, st, "deploy update") : rc;
}

int
store_deploy_transition(store *s, int64_t tenant_id, int64_t id, enum store_deploy_action act,
                        int expect_wave, const char *reason, int64_t now,
                        const struct store_actor *a, struct store_deployment *out, int64_t *gen)
{
    struct store_deployment *d = calloc(1, sizeof(*d));
    struct conn *c = NULL;
    int rc = STORE_INVALID, from_wave;
    enum store_deploy_state from;

    if (d == NULL)
        return STORE_ERR;
    if (!store__actor_ok(a) || (reason != NULL && !store__text_ok(reason, 0, 255)))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = deploy_load(s, c, tenant_id, id, d)) != STORE_OK)
        goto out;
    from = d->state;
    from_wave = d->current_wave;
    if (apply(d, act, expect_wave, now) != 0) {
        rc = STORE_CONFLICT;
        goto out;
    }
    snprintf(d->reason, sizeof(d->reason), "%s", reason != NULL ? reason : "");
    d->updated_at = now;
    if ((rc = save(s, c, d)) != STORE_OK)
        goto out;
    rc = store__audit(s, c, tenant_id, a, action_name(act), "deployment", id, NULL,
                      json_pack("{s:s, s:s, s:i, s:i, s:s?}", "from", store_deploy_state_name(from),
                                "to", store_deploy_state_name(d->state), "from_wave", from_wave,
                                "wave", d->current_wave, "reason", reason));
    if (rc == STORE_OK)
        rc = store__director_bump(s, c, tenant_id, now, gen);
out:
    if (c != NULL) {
        rc = store__end_tx(s, c, rc);
        store__give(s, c);
    }
    if (rc == STORE_OK && out != NULL)
        *out = *d;
    free(d);
    return rc;
}

int
store_deploy_running(store *s, struct store_deployment **out, size_t *n)
{
    return deploy_rows(s, SQL_DEPLOY_RUNNING, 0, out, n);
}

int
store_deploy_plan(store *s, int64_t tenant_id, struct store_deployment **out, size_t *n)
{
    return deploy_rows(s, SQL_DEPLOY_PLAN, tenant_id, out, n);
}

int
store_deploy_count_states(store *s, int64_t counts[STORE_DEPLOY_NSTATES])
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_DEPLOY_STATES);
    int rc = SQLITE_ERROR;
    memset(counts, 0, sizeof(int64_t) * STORE_DEPLOY_NSTATES);
    while (st != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        enum store_deploy_state k;
        if (state_parse((const char *)sqlite3_column_text(st, 0), &k) == 0)
            counts[k] = sqlite3_column_int64(st, 1);
    }
    rc = rc == SQLITE_DONE ? STORE_OK : store__db_error(s, c, "deploy states");
    store__give(s, c);
    return rc;
}

static int
device_id_row(sqlite3_stmt *st, void *elem)
{
    store__copy_col(elem, 65, st, 0);
    return 0;
}

int
store_deploy_group_devices(store *s, int64_t tenant_id, int64_t group_id, char (**ids)[65],
                           size_t *n)
{
    return store__typed_rows(s, SQL_DEPLOY_DEVICES, tenant_id, group_id, sizeof(**ids),
                             device_id_row, (void **)ids, n);
}
