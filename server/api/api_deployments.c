/* REST handlers for deployments (docs/api.md "Deployments"): create, list, show with per-wave
 * progress, and the operator's transitions. Every change bumps the tenant's director generation in
 * the store; the handler then tells the director, so devices see it on their next check. */
#include "api_deploy.h"

#include "api_util.h"
#include "app.h"
#include "deploy_check.h"
#include "director.h"
#include "proto_fields.h"
#include "rollout.h"
#include "store_deploy.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void
note_generation(const api_req *r, int64_t gen)
{
    director *d = r->app->director;
    if (d != NULL && gen > 0)
        director_note(d, r->tenant_id, gen);
}

/* An integer field of r->json in [min, max] into *out: -1 with a 400 set. */
static int
int_field(api_req *r, const char *key, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(r->json, key);
    if (json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max) {
        *out = json_integer_value(v);
        return 0;
    }
    api_error(r, 400, "validation_failed", "'%s' must be an integer from %lld to %lld", key,
              (long long)min, (long long)max);
    return -1;
}

/* "images" and "waves" of the body into nd (strings borrowed): -1 with a 400 set. */
static int
arrays(api_req *r, struct store_deploy_new *nd)
{
    json_t *images = json_object_get(r->json, "images"), *waves = json_object_get(r->json, "waves");
    json_t *v;
    size_t i;
    if (!json_is_array(images) || json_array_size(images) < 1 ||
        json_array_size(images) > STORE_DEPLOY_IMAGES_MAX) {
        api_invalid(r, "'images' must be an array of 1-16 image sha256s");
        return -1;
    }
    json_array_foreach(images, i, v)
    {
        nd->images[i] = json_string_value(v);
    }
    nd->nimages = json_array_size(images);
    if (!json_is_array(waves) || json_array_size(waves) < 1 ||
        json_array_size(waves) > STORE_DEPLOY_WAVES_MAX)
        goto out;
    json_array_foreach(waves, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100)
            goto out;
        nd->waves[i] = (int)json_integer_value(v);
    }
    nd->nwaves = (int)json_array_size(waves);
    if (store_deploy_waves_ok(nd->waves, nd->nwaves))
        return 0;
out:
    api_invalid(r, "'waves' must be 1-10 cumulative percents, increasing, ending at 100");
    return -1;
}

static int
parse_new(api_req *r, struct store_deploy_new *nd)
{
    static const char *const keys[] = {
        "group_id",     "name", "images", "waves", "soak_seconds", "failure_threshold_pct",
        "min_attempts", NULL};
    int64_t pct = 0;
    memset(nd, 0, sizeof(*nd));
    if (api_body_object(r, keys) != 0 || int_field(r, "group_id", 1, INT64_MAX, &nd->group_id) ||
        int_field(r, "soak_seconds", 0, 31536000, &nd->soak_seconds) ||
        int_field(r, "failure_threshold_pct", 1, 100, &pct) ||
        int_field(r, "min_attempts", 1, 1000000, &nd->min_attempts) || arrays(r, nd) != 0)
        return -1;
    nd->threshold_pct = (int)pct;
    nd->name = json_string_value(json_object_get(r->json, "name"));
    if (nd->name == NULL || nd->name[0] == '\0' || strlen(nd->name) > STORE_NAME_MAX) {
        api_invalid(r, "'name' must be a string of 1-128 bytes");
        return -1;
    }
    return 0;
}

/* Replies the deployment with its per-wave progress. */
static void
reply_deployment(api_req *r, int status, const struct store_deployment *d)
{
    json_t *obj = store_deploy_json(d, util_now()), *progress = NULL;
    if (obj == NULL || rollout_progress(r->app->st, d, &progress) != 0) {
        json_decref(obj);
        api_error(r, 500, "internal", "cannot compute the deployment's progress");
        return;
    }
    json_object_set_new(obj, "progress", progress);
    api_reply(r, status, obj);
}

/* Whether every image is published (deploy_check.h): -1 with the answer set when not. An image
 * that is not the tenant's answers 404 as store_deploy_create would. */
static int
published(api_req *r, const struct store_deploy_new *nd)
{
    char missing[65], err[128];
    json_t *img = NULL;
    int rc = deploy_check_published(r->app->st, r->tenant_id, nd->images, nd->nimages, missing, err,
                                    sizeof(err));
    if (rc == 0)
        return 0;
    if (rc < 0) {
        api_error(r, 500, "internal", "%s", err);
        return -1;
    }
    rc = store_image_get(r->app->st, r->tenant_id, missing, &img);
    json_decref(img);
    if (rc != STORE_OK)
        api_store_error(r, rc, "image");
    else
        api_error(r, 409, "not_published",
                  "image %s is not in the tenant's signed targets, so no device would install it; "
                  "sign it first: aegisctl ota sign",
                  missing);
    return -1;
}

void
api_deployments_create(api_req *r)
{
    struct store_deploy_new nd;
    struct store_deployment *d = calloc(1, sizeof(*d));
    struct store_actor a = api_actor(r);
    const char *what = "group";
    int64_t id = 0, gen = 0;
    int rc;

    if (d == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    if (parse_new(r, &nd) != 0)
        goto out;
    for (size_t i = 0; i < nd.nimages; i++)
        if (nd.images[i] == NULL || !proto_digest_hex_ok(nd.images[i], strlen(nd.images[i]))) {
            api_invalid(r, "'images' must be lower-case hex sha256s");
            goto out;
        }
    if (published(r, &nd) != 0)
        goto out;
    rc = store_deploy_create(r->app->st, r->tenant_id, &nd, util_now(), &a, &id, &gen, &what);
    if (rc == STORE_CONFLICT)
        api_error(r, 409, "conflict", "group %lld has a running, paused or halted deployment",
                  (long long)nd.group_id);
    else if (rc == STORE_INVALID && strcmp(what, "product") == 0)
        api_invalid(r, "an image is of another product than the group's: no device of the group "
                       "would install it");
    else if (rc == STORE_INVALID)
        api_invalid(r, "bad fields: images must be sha256s, at most one per component");
    else if (rc != STORE_OK)
        api_store_error(r, rc, what);
    else if ((rc = store_deploy_get(r->app->st, r->tenant_id, id, d)) != STORE_OK)
        api_store_error(r, rc, "deployment");
    else {
        note_generation(r, gen);
        reply_deployment(r, 201, d);
    }
out:
    free(d);
}

void
api_deployments_list(api_req *r)
{
    struct store_page pg;
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;
    if (api_page(r, &pg) != 0)
        return;
    int rc = store_deploy_list(r->app->st, r->tenant_id, &pg, util_now(), &items, next);
    api_reply_list(r, rc, items, next, "deployment");
}

/* GET /v1/devices/{id}/update-attempts: the device's attempts in the tenant's deployments. */
void
api_device_update_attempts(api_req *r)
{
    api_device_page(r, store_device_update_attempts);
}

void
api_deployments_get(api_req *r)
{
    struct store_deployment *d = calloc(1, sizeof(*d));
    int64_t id;
    if (d == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    if (api_param_id(r, 0, "deployment", &id) == 0) {
        int rc = store_deploy_get(r->app->st, r->tenant_id, id, d);
        if (rc != STORE_OK)
            api_store_error(r, rc, "deployment");
        else
            reply_deployment(r, 200, d);
    }
    free(d);
}

/* An operator's transition, with the optional {"reason": text} of the body. */
static void
transition(api_req *r, enum store_deploy_action act, const char *verb)
{
    static const char *const keys[] = {"reason", NULL};
    struct store_deployment *d = calloc(1, sizeof(*d));
    struct store_actor a = api_actor(r);
    char reason[STORE_DEPLOY_REASON_MAX];
    const char *given = NULL;
    int64_t id, gen = 0;
    int rc;

    if (d == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    if (api_param_id(r, 0, "deployment", &id) != 0 ||
        (r->json != NULL && api_body_object(r, keys) != 0))
        goto out;
    if (r->json != NULL && json_object_get(r->json, "reason") != NULL) {
        given = json_string_value(json_object_get(r->json, "reason"));
        if (given == NULL || strlen(given) > 200) {
            api_invalid(r, "'reason' must be a string of at most 200 bytes");
            goto out;
        }
    }
    snprintf(reason, sizeof(reason), "%s by %s%s%s", verb, r->actor, given ? ": " : "",
             given ? given : "");
    rc = store_deploy_transition(r->app->st, r->tenant_id, id, act, 0, reason, util_now(), &a, d,
                                 &gen);
    if (rc == STORE_CONFLICT)
        api_error(r, 409, "conflict", "deployment %lld cannot be %s in its state", (long long)id,
                  verb);
    else if (rc != STORE_OK)
        api_store_error(r, rc, "deployment");
    else {
        note_generation(r, gen);
        reply_deployment(r, 200, d);
    }
out:
    free(d);
}

void
api_deployments_pause(api_req *r)
{
    transition(r, STORE_DEPLOY_PAUSE, "paused");
}

void
api_deployments_resume(api_req *r)
{
    transition(r, STORE_DEPLOY_RESUME, "resumed");
}

void
api_deployments_abort(api_req *r)
{
    transition(r, STORE_DEPLOY_ABORT, "aborted");
}

void
api_deployments_advance(api_req *r)
{
    transition(r, STORE_DEPLOY_ADVANCE, "advanced");
}
