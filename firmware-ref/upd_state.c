/* upd_state: the update agent's persistent state and status queue (upd_state.h). */
#include "upd_state.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAX (64u << 10)
#define OUTBOX_MAX_BYTES (512u << 10)

static const char *const ASTATE_NAMES[] = {"none", "downloading", "installed", "booted"};

const char *
upd_astate_name(enum upd_astate a)
{
    return (unsigned)a < sizeof(ASTATE_NAMES) / sizeof(ASTATE_NAMES[0]) ? ASTATE_NAMES[a] : "none";
}

/* Copies a string member of o into out[cap] (cap includes the NUL). 0, or -1 when missing, not a
 * string or too long. */
static int
get_str(const json_t *o, const char *key, char *out, size_t cap)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return -1;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int
get_int(const json_t *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int
image_from_json(const json_t *o, struct upd_image *im)
{
    int64_t svn, len;
    if (get_str(o, "sha", im->sha, sizeof(im->sha)) != 0 ||
        get_str(o, "component", im->component, sizeof(im->component)) != 0 ||
        get_str(o, "kind", im->kind, sizeof(im->kind)) != 0 ||
        get_str(o, "version", im->version, sizeof(im->version)) != 0 ||
        get_str(o, "attempt_id", im->attempt_id, sizeof(im->attempt_id)) != 0 ||
        get_int(o, "svn", 0, UINT32_MAX, &svn) != 0 ||
        get_int(o, "length", 0, INT64_MAX, &len) != 0)
        return -1;
    im->svn = (uint32_t)svn;
    im->length = (uint64_t)len;
    return 0;
}

static int
attempt_from_json(const json_t *o, struct upd_attempt *a)
{
    int64_t state, dep, slot;
    const json_t *imgs = json_object_get(o, "images");
    size_t i;
    const json_t *v;

    if (get_int(o, "state", UPD_DOWNLOADING, UPD_BOOTED, &state) != 0 ||
        get_int(o, "deployment_id", 1, INT64_MAX, &dep) != 0 ||
        get_int(o, "slot", 0, ADEV_SLOT_COUNT - 1, &slot) != 0 || !json_is_array(imgs) ||
        json_array_size(imgs) == 0 || json_array_size(imgs) > UPD_IMAGES_MAX)
        return -1;
    a->state = (enum upd_astate)state;
    a->deployment_id = dep;
    a->slot = (int)slot;
    a->n = json_array_size(imgs);
    json_array_foreach(imgs, i, v)
    {
        if (image_from_json(v, &a->img[i]) != 0)
            return -1;
    }
    return 0;
}

static int
backoff_from_json(const json_t *arr, struct upd_state *s)
{
    size_t i;
    const json_t *v;
    if (!json_is_array(arr) || json_array_size(arr) > UPD_BACKOFF_MAX)
        return -1;
    json_array_foreach(arr, i, v)
    {
        int64_t fails, at;
        struct upd_backoff *b = &s->bo[i];
        if (get_str(v, "sha", b->sha, sizeof(b->sha)) != 0 ||
            get_int(v, "fails", 1, 1000000, &fails) != 0 ||
            get_int(v, "next_at_ms", 0, INT64_MAX, &at) != 0)
            return -1;
        b->fails = (unsigned)fails;
        b->next_at_ms = at;
    }
    s->nbo = json_array_size(arr);
    return 0;
}

int
upd_state_load(adev_storage *st, struct upd_state *s)
{
    int rc = -1;
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *root = NULL;
    int64_t dep = 0, cnt = 0;

    memset(s, 0, sizeof(*s));
    int r = adev_storage_read(st, ADEV_BLOB_UPDATE, STATE_MAX, &data, &len);
    if (r == -2)
        return 0;
    if (r != 0)
        goto out;
    root = json_loadb((const char *)data, len, 0, NULL);
    if (!json_is_object(root))
        goto out;
    const json_t *etag = json_object_get(root, "etag");
    if (json_is_string(etag) && get_str(root, "etag", s->etag, sizeof(s->etag)) != 0)
        goto out;
    const json_t *at = json_object_get(root, "attempt");
    if (json_is_object(at) && attempt_from_json(at, &s->at) != 0)
        goto out;
    if (backoff_from_json(json_object_get(root, "backoff"), s) != 0 ||
        get_int(root, "counted_deployment", 0, INT64_MAX, &dep) != 0 ||
        get_int(root, "counted_attempts", 0, 1000000, &cnt) != 0)
        goto out;
    s->counted_deployment = dep;
    s->counted_attempts = (unsigned)cnt;
    rc = 0;
out:
    if (rc != 0)
        memset(s, 0, sizeof(*s));
    json_decref(root);
    free(data);
    return rc;
}

static json_t *
attempt_json(const struct upd_attempt *a)
{
    json_t *imgs = json_array();
    for (size_t i = 0; imgs != NULL && i < a->n; i++) {
        const struct upd_image *im = &a->img[i];
        json_array_append_new(imgs,
                              json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "sha", im->sha,
                                        "component", im->component, "kind", im->kind, "version",
                                        im->version, "svn", (json_int_t)im->svn, "length",
                                        (json_int_t)im->length, "attempt_id", im->attempt_id));
    }
    return json_pack("{s:i, s:I, s:i, s:o}", "state", (int)a->state, "deployment_id",
                     (json_int_t)a->deployment_id, "slot", a->slot, "images", imgs);
}

int
upd_state_save(adev_storage *st, const struct upd_state *s)
{
    int rc = -1;
    char *text = NULL;
    json_t *bo = json_array(), *root = NULL;

    for (size_t i = 0; bo != NULL && i < s->nbo; i++)
        json_array_append_new(bo, json_pack("{s:s, s:i, s:I}", "sha", s->bo[i].sha, "fails",
                                            (int)s->bo[i].fails, "next_at_ms",
                                            (json_int_t)s->bo[i].next_at_ms));
    root = json_pack("{s:i, s:o, s:o, s:o, s:I, s:i}", "version", 1, "etag",
                     s->etag[0] ? json_string(s->etag) : json_null(), "attempt",
                     s->at.state != UPD_NONE ? attempt_json(&s->at) : json_null(), "backoff", bo,
                     "counted_deployment", (json_int_t)s->counted_deployment, "counted_attempts",
                     (int)s->counted_attempts);
    bo = NULL;
    if (root == NULL || (text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        goto out;
    rc = adev_storage_write(st, ADEV_BLOB_UPDATE, text, strlen(text), 0);
out:
    free(text);
    json_decref(root);
    json_decref(bo);
    return rc;
}

struct upd_backoff *
upd_backoff_find(struct upd_state *s, const char *sha)
{
    for (size_t i = 0; i < s->nbo; i++)
        if (strcmp(s->bo[i].sha, sha) == 0)
            return &s->bo[i];
    return NULL;
}

/* Uniform in [0, n] from the platform's randomness (small n: the bias is irrelevant here). */
static uint64_t
jitter_below(uint64_t n)
{
    uint64_t r = 0;
    if (n == 0 || adev_random(&r, sizeof(r)) != 0)
        return 0;
    return r % (n + 1);
}

void
upd_backoff_fail(struct upd_state *s, const char *sha, int64_t now_ms, uint64_t base_ms,
                 uint64_t max_ms)
{
    struct upd_backoff *b = upd_backoff_find(s, sha);
    if (b == NULL) {
        if (s->nbo == UPD_BACKOFF_MAX) { /* forget the oldest */
            memmove(&s->bo[0], &s->bo[1], sizeof(s->bo[0]) * (UPD_BACKOFF_MAX - 1));
            s->nbo--;
        }
        b = &s->bo[s->nbo++];
        memset(b, 0, sizeof(*b));
        snprintf(b->sha, sizeof(b->sha), "%s", sha);
    }
    b->fails++;
    unsigned shift = b->fails - 1 > 20 ? 20 : b->fails - 1;
    uint64_t delay = base_ms << shift;
    if (delay > max_ms)
        delay = max_ms;
    delay = delay - delay / 5 + jitter_below(delay * 2 / 5); /* +-20 % */
    b->next_at_ms = now_ms + (int64_t)delay;
}

/* --- the status queue ------------------------------------------------------------------------ */

/* The queue as a JSON array (a missing blob: empty). NULL on error. */
static json_t *
outbox_load(adev_storage *st)
{
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *arr = NULL;
    int r = adev_storage_read(st, ADEV_BLOB_UPDATE_STATUS, OUTBOX_MAX_BYTES, &data, &len);
    if (r == -2)
        return json_array();
    if (r == 0)
        arr = json_loadb((const char *)data, len, 0, NULL);
    free(data);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int
outbox_store(adev_storage *st, const json_t *arr)
{
    char *text = json_dumps(arr, JSON_COMPACT);
    int rc =
        text != NULL ? adev_storage_write(st, ADEV_BLOB_UPDATE_STATUS, text, strlen(text), 0) : -1;
    free(text);
    return rc;
}

int
upd_outbox_push(adev_storage *st, const char *attempt_id, int64_t deployment_id, const char *sha,
                const char *state, const char *reason)
{
    int rc = -1;
    json_t *arr = outbox_load(st), *rep = NULL;

    if (arr == NULL)
        goto out;
    rep = json_pack("{s:s, s:I, s:s, s:s}", "attempt_id", attempt_id, "deployment_id",
                    (json_int_t)deployment_id, "image", sha, "state", state);
    if (rep == NULL)
        goto out;
    if (reason != NULL) {
        char r[UPD_REASON_MAX + 1];
        snprintf(r, sizeof(r), "%s", reason);
        json_object_set_new(rep, "reason", json_string(r));
    }
    while (json_array_size(arr) >= UPD_OUTBOX_MAX)
        json_array_remove(arr, 0);
    if (json_array_append_new(arr, rep) != 0) {
        rep = NULL;
        goto out;
    }
    rep = NULL;
    rc = outbox_store(st, arr);
out:
    json_decref(rep);
    json_decref(arr);
    return rc;
}

int
upd_outbox_peek(adev_storage *st, char **body, size_t *count)
{
    json_t *arr = outbox_load(st);
    *body = NULL;
    *count = 0;
    if (arr == NULL)
        return -1;
    *count = json_array_size(arr);
    if (*count > 0)
        *body = json_dumps(json_array_get(arr, 0), JSON_COMPACT);
    json_decref(arr);
    return *count > 0 && *body == NULL ? -1 : 0;
}

int
upd_outbox_pop(adev_storage *st)
{
    json_t *arr = outbox_load(st);
    int rc = -1;
    if (arr == NULL)
        return -1;
    if (json_array_size(arr) == 0)
        rc = 0;
    else if (json_array_remove(arr, 0) == 0)
        rc = outbox_store(st, arr);
    json_decref(arr);
    return rc;
}
